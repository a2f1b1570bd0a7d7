/**
 * End-to-end proof of the lab infrastructure: build the base image, make a
 * two-region network, boot three real Debian 12 nodes from cloud-init
 * user-data, talk to them, partition and heal, and tear everything down.
 *
 * Runs only as root on a host with the lab's tools; elsewhere it is skipped and says why, and under CI=true it fails
 * instead. RHL_LAB=skip skips it too (it takes about a minute with a cached image).
 * Traffic goes only to lab addresses, each checked with assertRoutesViaLab
 * before the host sends anything.
 */
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { statSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { destroyAll } from "../../lab/cleanup";
import { run } from "../../lab/exec";
import { ensureBaseImage, readImageManifest } from "../../lab/image";
import {
    assertRoutesViaLab,
    createNetwork,
    heal,
    HOST_LINK,
    LAB_PREFIX,
    type LabNetwork,
    partitionNode,
    partitionRegion,
} from "../../lab/network";
import { bootNode, execInNode, nodeRoot, nodeRunning, stopNode, waitForCloudInit } from "../../lab/nodes";
import { NODE_TOOLS } from "../../lab/preflight";
import { processAlive, sleep } from "../../lab/processes";
import { describeLab, labLeftovers } from "./labTier";

const describeInfra = describeLab("lab infrastructure (image, network, full-boot nodes)", NODE_TOOLS);

const PACKAGES = ["redis-server", "redis-sentinel", "redis-tools"];
// The brief's minimal user-data, plus opening Redis to the lab so nodes can talk.
const USER_DATA = `#cloud-config
package_update: true
packages: [redis-server, redis-tools]
runcmd:
  - [sh, -c, "redis-cli ping > /root/ping.txt"]
  - [sh, -c, "redis-cli CONFIG SET protected-mode no && redis-cli CONFIG SET bind '* -::*'"]
`;

const timings: Record<string, number> = {};

/** An OpenSSH public key line, made without ssh-keygen. */
function sshPublicKey(comment: string): string {
    const der = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" });
    const raw = der.subarray(der.length - 32);
    const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const blob = Buffer.concat([field(Buffer.from("ssh-ed25519")), field(raw)]);
    return `ssh-ed25519 ${blob.toString("base64")} ${comment}`;
}

/** Reads the SSH banner; false when nothing answers in time. Lab addresses only. */
async function sshBanner(host: string, timeoutMs = 3_000): Promise<string | false> {
    await assertRoutesViaLab([host]);
    return new Promise((resolve) => {
        const socket = net.createConnection({ host, port: 22 });
        const done = (v: string | false) => {
            socket.destroy();
            resolve(v);
        };
        socket.setTimeout(timeoutMs, () => {
            done(false);
        });
        socket.once("data", (d) => {
            done(d.toString("utf8").trim());
        });
        socket.once("error", () => {
            done(false);
        });
    });
}

async function pings(from: string, to: string): Promise<boolean> {
    return (await execInNode(from, ["ping", "-c", "1", "-W", "1", to], { allowFailure: true })).code === 0;
}

describeInfra("local lab on this host (root, full-boot containers)", () => {
    let imageDir = "";
    let lab: LabNetwork;
    const addr = (name: string) => {
        const node = lab.nodes.find((n) => n.name === name);
        if (!node) throw new Error(`the test's network has no node ${name}`);
        return node.address;
    };

    beforeAll(async () => {
        await destroyAll(); // a previous run may have crashed
    }, 120_000);

    afterAll(async () => {
        await destroyAll();
        console.log(`lab timings (s): ${JSON.stringify(timings)}`);
    }, 120_000);

    it("builds or reuses the base image", async () => {
        const t = Date.now();
        imageDir = await ensureBaseImage({
            packages: PACKAGES,
            onProgress: (m) => {
                console.log(m);
            },
        });
        timings.image = (Date.now() - t) / 1000;
        const manifest = await readImageManifest(imageDir);
        timings.imageBuild = manifest.buildSeconds;
        expect(manifest.packages).toEqual([...PACKAGES].sort());
        expect(manifest.repoDebs.some((d) => d.startsWith("redis-server_"))).toBe(true);
        expect(statSync(path.join(imageDir, "etc/machine-id")).size).toBe(0);
    }, 900_000);

    it("creates a two-region network that the host reaches only through its lab leg", async () => {
        lab = await createNetwork({
            regions: [
                { name: "us-east", nodes: ["a", "b"] },
                { name: "eu-west", nodes: ["c"] },
            ],
        });
        await assertRoutesViaLab(lab.nodes.map((n) => n.address));
        const { stdout } = await run(["ip", "-j", "route", "show", LAB_PREFIX]);
        expect(JSON.parse(stdout)).toEqual([
            expect.objectContaining({ dst: LAB_PREFIX, gateway: lab.routerAddress, dev: HOST_LINK }),
        ]);
        await expect(assertRoutesViaLab(["192.0.2.1"])).rejects.toThrow(/not a lab address/);
        await expect(createNetwork({ regions: [{ name: "x", nodes: ["z"] }] })).rejects.toThrow(/already exists/);
    });

    it("boots three nodes and cloud-init finishes without errors", async () => {
        const key = sshPublicKey("lab-e2e");
        const t = Date.now();
        for (const n of lab.nodes) await bootNode({ ...n, userData: USER_DATA, authorizedKeys: [key] }, imageDir);
        const results = await Promise.all(
            lab.nodes.map(async (n) => {
                const r = await waitForCloudInit(n.name, 180_000);
                timings[`cloudInitDone_${n.name}`] = (Date.now() - t) / 1000;
                return { name: n.name, ...r };
            }),
        );
        for (const r of results) {
            if (!r.ok) console.log(`${r.name}: ${r.errors.join("; ")}\n${r.detail}`);
            expect({ name: r.name, ok: r.ok, errors: r.errors }).toEqual({ name: r.name, ok: true, errors: [] });
        }
        for (const n of lab.nodes) {
            expect((await execInNode(n.name, ["cat", "/root/ping.txt"])).stdout.trim()).toBe("PONG");
            expect((await execInNode(n.name, ["hostname"])).stdout.trim()).toBe(n.name);
            // user-data reached the node byte for byte; Linode-style key provisioning
            const seeded = await execInNode(n.name, ["cat", "/var/lib/cloud/seed/nocloud/user-data"]);
            expect(seeded.stdout).toBe(USER_DATA);
            expect((await execInNode(n.name, ["cat", "/root/.ssh/authorized_keys"])).stdout).toBe(`${key}\n`);
            expect(statSync(path.join(nodeRoot(n.name), "root/.ssh/authorized_keys")).mode & 0o777).toBe(0o600);
        }
        // Each node its own identity: machine-id and SSH host keys made at first boot.
        const ids = await Promise.all(lab.nodes.map((n) => execInNode(n.name, ["cat", "/etc/machine-id"])));
        expect(new Set(ids.map((r) => r.stdout.trim())).size).toBe(lab.nodes.length);
        const hostKeys = await Promise.all(
            lab.nodes.map((n) => execInNode(n.name, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])),
        );
        expect(new Set(hostKeys.map((r) => r.stdout.split(" ")[1])).size).toBe(lab.nodes.length);
    }, 300_000);

    it("routes host traffic to every node via rhl-* and reaches each sshd", async () => {
        await assertRoutesViaLab(lab.nodes.map((n) => n.address));
        for (const n of lab.nodes) expect(await sshBanner(n.address)).toMatch(/^SSH-2\.0-OpenSSH/);
    });

    it("lets nodes talk to each other's Redis, within and across regions", async () => {
        const redisPing = (from: string, to: string) =>
            execInNode(from, ["redis-cli", "-h", addr(to), "ping"], { allowFailure: true });
        expect((await redisPing("a", "b")).stdout.trim()).toBe("PONG");
        expect((await redisPing("a", "c")).stdout.trim()).toBe("PONG");
        expect((await redisPing("c", "a")).stdout.trim()).toBe("PONG");
    });

    it("lets a node set its own net.* sysctls but not host-wide ones, nor the host's clock", async () => {
        const hostSomaxconn = (await run(["sysctl", "-n", "net.core.somaxconn"])).stdout.trim();
        await execInNode("a", ["sysctl", "-w", "net.core.somaxconn=1021"]);
        expect((await execInNode("a", ["sysctl", "-n", "net.core.somaxconn"])).stdout.trim()).toBe("1021");
        expect((await run(["sysctl", "-n", "net.core.somaxconn"])).stdout.trim()).toBe(hostSomaxconn);
        expect(
            (await execInNode("a", ["sysctl", "-w", "vm.overcommit_memory=1"], { allowFailure: true })).code,
        ).not.toBe(0);
        expect((await execInNode("a", ["date", "-s", "2001-01-01"], { allowFailure: true })).code).not.toBe(0);
    });

    it("partitions a node from everything, then heals", async () => {
        await partitionNode("b");
        expect(await pings("a", addr("b"))).toBe(false); // same region
        expect(await pings("c", addr("b"))).toBe(false); // other region
        expect(await sshBanner(addr("b"), 1_500)).toBe(false); // host
        expect(await pings("a", addr("c"))).toBe(true); // everyone else unaffected
        await heal();
        expect(await pings("a", addr("b"))).toBe(true);
        expect(await sshBanner(addr("b"))).toMatch(/^SSH-2\.0/);
    });

    it("partitions a region from other regions and the host, not from itself, then heals", async () => {
        await partitionRegion("us-east");
        expect(await pings("a", addr("b"))).toBe(true); // inside the region
        expect(await pings("a", addr("c"))).toBe(false); // across regions, both ways
        expect(await pings("c", addr("b"))).toBe(false);
        expect(await sshBanner(addr("a"), 1_500)).toBe(false); // host
        expect(await sshBanner(addr("c"))).toMatch(/^SSH-2\.0/); // the other region stays reachable
        await heal();
        expect(await pings("a", addr("c"))).toBe(true);
        expect(await sshBanner(addr("a"))).toMatch(/^SSH-2\.0/);
    });

    it("powers a node off and boots it again from its own disk", async () => {
        const t = Date.now();
        await stopNode("c");
        timings.poweroff_c = (Date.now() - t) / 1000;
        expect(nodeRunning("c")).toBe(false);
        const node = lab.nodes.find((n) => n.name === "c");
        if (!node) throw new Error("the test's network has no node c");
        const t2 = Date.now();
        await bootNode({ ...node, userData: USER_DATA, authorizedKeys: [] }, imageDir);
        const r = await waitForCloudInit("c", 120_000);
        timings.reboot_c = (Date.now() - t2) / 1000;
        expect(r).toEqual(expect.objectContaining({ ok: true, errors: [] }));
        // Same instance: Redis still installed and per-instance runcmd output kept.
        expect((await execInNode("c", ["cat", "/root/ping.txt"])).stdout.trim()).toBe("PONG");
        expect((await execInNode("c", ["redis-cli", "ping"])).stdout.trim()).toBe("PONG");
        await expect(bootNode({ ...node, userData: USER_DATA + "\n", authorizedKeys: [] }, imageDir)).rejects.toThrow(
            /already running/,
        );
    }, 180_000);

    it("destroyAll leaves nothing behind, not even a process left inside a node's namespace, and a second run is a no-op", async () => {
        // What a killed drill leaves: its writer, started by `ip netns exec` in a node's namespace, outlives the
        // namespace's deletion unless it is ended.
        const netns = lab.nodes[0]?.netns ?? "";
        const stray = spawn("ip", ["netns", "exec", netns, "sleep", "600"], { detached: true, stdio: "ignore" });
        const exited = new Promise((r) => stray.once("exit", r));
        stray.unref();
        await sleep(200);
        expect(await labLeftovers()).toContain(`pid ${String(stray.pid)} in netns ${netns}`);
        const t = Date.now();
        await destroyAll();
        timings.destroyAll = (Date.now() - t) / 1000;
        await exited;
        expect(processAlive(stray.pid ?? 0)).toBe(false);
        expect(await labLeftovers()).toEqual([]);
        expect(await destroyAll()).toEqual([]);
    }, 120_000);
});
