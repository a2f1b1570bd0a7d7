/**
 * The lab's pure parts: address plan, seed files, cache key, nspawn flags.
 * No root needed; the end-to-end run is lab.e2e.test.ts.
 */
import { writableOverlap } from "../../lab/drill";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { capabilityNames, setprivBoundingSet } from "../../lab/capabilities";
import { InvalidNodeNameError, LabError } from "../../lab/errors";
import { lastMeaningfulLine, typescriptArgv } from "../../lab/exec";
import { imageKey, normalizePackages } from "../../lab/image";
import { findClash, HostNetState, LAB_PREFIX, planNetwork } from "../../lab/network";
import { nspawnArgs } from "../../lab/nodes";
import { assertNodeName } from "../../lab/paths";
import { installHint } from "../../lab/preflight";
import { instanceIdFor, renderMetaData, renderNetworkConfig } from "../../lab/seed";
import { CidrError, cidrContains, cidrsOverlap, parseAddress, parseCidr, parsePrefix } from "../../topology/cidr";

describe("lab network plan", () => {
    const plan = {
        regions: [
            { name: "us-east", nodes: ["redis-a", "redis-b"] },
            { name: "eu-central", nodes: ["redis-c"] },
        ],
    };

    it("gives each region its own /24 in 198.18.0.0/15 with the router on .1", () => {
        const net = planNetwork(plan);
        expect(net.regions.map((r) => [r.name, r.subnet, r.gateway])).toEqual([
            ["us-east", "198.18.1.0/24", "198.18.1.1"],
            ["eu-central", "198.18.2.0/24", "198.18.2.1"],
        ]);
        expect(net.nodes.map((n) => [n.name, n.address, n.gateway, n.netns])).toEqual([
            ["redis-a", "198.18.1.10", "198.18.1.1", "rhl-redis-a"],
            ["redis-b", "198.18.1.11", "198.18.1.1", "rhl-redis-b"],
            ["redis-c", "198.18.2.10", "198.18.2.1", "rhl-redis-c"],
        ]);
        const lab = parseCidr(LAB_PREFIX);
        for (const a of [net.hostAddress, net.routerAddress, ...net.nodes.map((n) => n.address)]) {
            expect(cidrContains(lab, a)).toBe(true);
        }
    });

    it("names every interface with the rhl- prefix and within Linux's 15 characters", () => {
        const net = planNetwork(plan);
        const names = [
            ...net.regions.flatMap((r) => [r.bridge, r.routerIf, r.routerPort]),
            ...net.nodes.map((n) => n.routerPort),
        ];
        for (const n of names) {
            expect(n.startsWith("rhl-")).toBe(true);
            expect(n.length).toBeLessThanOrEqual(15);
        }
        expect(new Set(names).size).toBe(names.length);
    });

    it("is deterministic, MACs included", () => {
        expect(planNetwork(plan)).toEqual(planNetwork(plan));
        for (const n of planNetwork(plan).nodes) expect(n.mac).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    });

    it("rejects duplicate nodes, duplicate regions and bad names", () => {
        expect(() => planNetwork({ regions: [{ name: "r", nodes: ["a", "a"] }] })).toThrow(/appears twice/);
        expect(() =>
            planNetwork({
                regions: [
                    { name: "r", nodes: ["a"] },
                    { name: "r", nodes: ["b"] },
                ],
            }),
        ).toThrow(/appears twice/);
        expect(() => planNetwork({ regions: [{ name: "r", nodes: ["Bad_Name"] }] })).toThrow(LabError);
        expect(() => planNetwork({ regions: [] })).toThrow(/no regions/);
    });
});

describe("lab network clash check", () => {
    const net = planNetwork({ regions: [{ name: "r", nodes: ["a"] }] });
    const clean: HostNetState = {
        netns: ["other"],
        links: ["lo", "eth0"],
        addrs: [{ ifname: "eth0", addr_info: [{ local: "192.0.2.2", prefixlen: 24 }] }],
        routes: [
            { dst: "default", dev: "eth0" },
            { dst: "192.0.2.0/24", dev: "eth0" },
            { dst: "198.0.0.0/8", dev: "eth0" },
        ],
    };

    it("accepts a host with nothing in the lab's names or prefix (covering routes are fine)", () => {
        expect(findClash(net, clean)).toBeUndefined();
    });
    it("refuses existing lab namespaces and links", () => {
        expect(findClash(net, { ...clean, netns: ["rhl-a"] })).toMatch(/namespace rhl-a already exists/);
        expect(findClash(net, { ...clean, links: ["rhl-host"] })).toMatch(/link rhl-host already exists/);
    });
    it("refuses an address or a route inside 198.18.0.0/15", () => {
        const addr = { ifname: "dummy0", addr_info: [{ local: "198.19.4.4", prefixlen: 32 }] };
        expect(findClash(net, { ...clean, addrs: [...clean.addrs, addr] })).toMatch(/dummy0 already has 198.19.4.4/);
        expect(findClash(net, { ...clean, routes: [...clean.routes, { dst: "198.18.7.0/24", dev: "wg0" }] })).toMatch(
            /routes 198.18.7.0\/24 via wg0/,
        );
        expect(
            findClash(net, { ...clean, routes: [...clean.routes, { dst: "198.18.0.9", dev: "tun0", table: "local" }] }),
        ).toMatch(/table local/);
    });
});

describe("preflight messages", () => {
    it("names the Debian package to install, once per package", () => {
        expect(installHint(["systemd-nspawn", "ip", "bridge"])).toBe(
            "install systemd-container iproute2 (missing: systemd-nspawn, ip, bridge)",
        );
    });
});

describe("ipv4 helpers", () => {
    it("detects overlaps with the lab prefix", () => {
        const lab = parseCidr(LAB_PREFIX);
        expect(cidrsOverlap(lab, parseCidr("198.19.3.0/24"))).toBe(true);
        expect(cidrsOverlap(lab, parseCidr("198.0.0.0/8"))).toBe(true);
        expect(cidrsOverlap(lab, parseCidr("198.20.0.0/16"))).toBe(false);
        expect(cidrsOverlap(lab, parsePrefix("192.0.2.1"))).toBe(false);
    });
    it("rejects malformed input", () => {
        expect(() => parseAddress("198.18.1")).toThrow(CidrError);
        expect(() => parseAddress("198.18.1.256")).toThrow(CidrError);
        expect(() => parseCidr("198.18.0.0/33")).toThrow(CidrError);
    });
});

describe("NoCloud seed", () => {
    const userData = "#cloud-config\npackages: [redis-server]\n";

    it("derives the instance-id from the node name and the user-data", () => {
        expect(instanceIdFor("a", userData)).toMatch(/^rhl-a-[0-9a-f]{12}$/);
        expect(instanceIdFor("a", userData)).not.toBe(instanceIdFor("a", userData + "\n"));
        expect(instanceIdFor("a", userData)).not.toBe(instanceIdFor("b", userData));
    });

    it("renders meta-data with the hostname and lets callers add or override keys", () => {
        expect(parse(renderMetaData("a", userData))).toEqual({
            "instance-id": instanceIdFor("a", userData),
            "local-hostname": "a",
        });
        expect(parse(renderMetaData("a", userData, { "instance-id": "fixed", region: "us-east" }))).toEqual({
            "instance-id": "fixed",
            "local-hostname": "a",
            region: "us-east",
        });
    });

    it("renders a static v2 network config with a default route and no DNS", () => {
        const cfg: unknown = parse(
            renderNetworkConfig({ ifname: "eth0", address: "198.18.1.10", prefixLen: 24, gateway: "198.18.1.1" }),
        );
        expect(cfg).toEqual({
            version: 2,
            ethernets: {
                eth0: {
                    dhcp4: false,
                    dhcp6: false,
                    addresses: ["198.18.1.10/24"],
                    routes: [{ to: "0.0.0.0/0", via: "198.18.1.1" }],
                },
            },
        });
    });
});

describe("base image cache key", () => {
    it("ignores package order and duplicates", () => {
        expect(imageKey(["redis-tools", "redis-server"])).toBe(
            imageKey(["redis-server", "redis-tools", "redis-server"]),
        );
        expect(imageKey(["redis-server"])).not.toBe(imageKey(["redis-server", "redis-sentinel"]));
    });
    it("refuses names that are not Debian package names (they reach a shell word list)", () => {
        expect(() => normalizePackages(["redis-server; rm -rf /"])).toThrow(/invalid Debian package name/);
        expect(() => normalizePackages(["$(id)"])).toThrow(LabError);
    });
});

describe("nspawn command line", () => {
    it("boots without machined or a host systemd, in the node's namespace", () => {
        const args = nspawnArgs("redis-a", "/var/lib/redis-ha-lab/nodes/redis-a/merged");
        expect(args).toEqual(
            expect.arrayContaining([
                "--boot",
                "--machine=rhl-redis-a",
                "--network-namespace-path=/run/netns/rhl-redis-a",
                "--register=no",
                "--keep-unit",
                "--capability=CAP_NET_ADMIN",
                "--resolv-conf=off",
                "--link-journal=no",
            ]),
        );
    });
    it("validates node names before they reach paths and namespaces", () => {
        expect(() => {
            assertNodeName("../etc");
        }).toThrow(InvalidNodeNameError);
        expect(() => {
            assertNodeName("-a");
        }).toThrow(InvalidNodeNameError);
        expect(() => {
            assertNodeName("redis-eu-1");
        }).not.toThrow();
    });
});

describe("capabilities", () => {
    it("decodes a CapBnd mask into setpriv's names", () => {
        // The bounding set nspawn gave a node here: no sys_module (16), sys_time (25) …
        const mask = 0x00000000fcecbfffn;
        const names = capabilityNames(mask);
        expect(names).toContain("net_admin");
        expect(names).toContain("sys_admin");
        expect(names).not.toContain("sys_module");
        expect(names).not.toContain("sys_time");
        expect(setprivBoundingSet(0b101n)).toBe("-all,+chown,+dac_read_search");
    });
});

describe("command errors", () => {
    it("reports apt's first E: line rather than mmdebstrap's trailer", () => {
        const stderr = "I: running apt-get update...\nE: Unable to locate package nosuch\nE: mmdebstrap failed\n";
        expect(lastMeaningfulLine(stderr)).toBe("E: Unable to locate package nosuch");
        expect(lastMeaningfulLine("")).toBe("(no output)");
    });
    it("keeps LabError messages on one line", () => {
        expect(new LabError("a\nb\n  c").message).toBe("a b c");
    });
});

describe("TypeScript children (the drill's writers)", () => {
    // A writer's event loop is busy for long stretches on a loaded machine; its SIGTERM handler must still run and
    // print its report however late it gets to it.
    const script = [
        'process.once("SIGTERM", () => { process.stdout.write("report\\n", () => process.exit(0)); });',
        "const busy = (ms: number): void => { const end = Date.now() + ms; while (Date.now() < end); };",
        'process.stdout.write("started\\n");',
        "setInterval(() => busy(300), 1);",
    ].join("\n");

    it("get a SIGTERM that a busy event loop handles late, and exit with their report", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rhl-ts-child-"));
        const file = path.join(dir, "busy.ts");
        fs.writeFileSync(file, script);
        const [cmd, ...args] = typescriptArgv(file);
        const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
        let out = "";
        child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
        const exit = new Promise<number | null>((resolve) => child.on("close", resolve));
        while (!out.includes("started")) await new Promise((r) => setTimeout(r, 20));
        child.kill("SIGTERM");
        expect({ code: await exit, out }).toEqual({ code: 0, out: "started\nreport\n" });
        fs.rmSync(dir, { recursive: true, force: true });
    });
});

describe("writableOverlap (the drill's maxSimultaneousWritableMasters)", () => {
    const sample = (node: string, at: number, master: boolean, setCalls: number) => ({ node, at, master, setCalls });
    test("a handover whose windows do not overlap counts one; a stale master still writing counts two, with its windows", () => {
        const clean = [
            sample("a", 0, true, 0),
            sample("b", 0, false, 0),
            sample("a", 250, true, 10),
            sample("b", 250, false, 10),
            sample("a", 1000, false, 10),
            sample("b", 1000, false, 10),
            sample("b", 1250, true, 20),
            sample("a", 1250, false, 20),
        ];
        expect(writableOverlap(clean, 250).map((w) => w.node)).toEqual(["a"]);
        const split = [...clean, sample("a", 1300, true, 25), sample("a", 1550, true, 30), sample("b", 1550, true, 30)];
        const both = writableOverlap(split, 250);
        expect(both.map((w) => w.node).sort()).toEqual(["a", "b"]);
        expect(both.find((w) => w.node === "b")).toEqual({ node: "b", from: 1250, to: 1550 });
        expect(writableOverlap([], 250)).toEqual([]);
    });
    test("a promotion between two samples: the new master's replicated writes before it are not counted as its own", () => {
        const handover = [
            sample("a", 0, true, 0),
            sample("b", 0, false, 0),
            // a wrote until the handover at ~120 ms; b replicated those writes, then became master.
            sample("a", 250, true, 10),
            sample("b", 260, true, 10),
            sample("a", 500, false, 12),
            sample("b", 510, true, 20),
        ];
        expect(writableOverlap(handover, 250)).toEqual([{ node: "a", from: 0, to: 250 }]);
    });
});
