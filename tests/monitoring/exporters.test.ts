import { spawnSync } from "node:child_process";
import {
    chmodSync,
    copyFileSync,
    mkdirSync,
    mkdtempSync,
    readFileSync,
    rmSync,
    statSync,
    writeFileSync,
} from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import {
    EXPORTER_PATHS,
    EXPORTER_UNITS,
    filesInUserData,
    PATHS,
    PATHS_LIB,
    renderNodeEnv,
    renderPathsLib,
    renderUserData,
} from "../../cloud-init";
import { exporterInbounds, firewallInbounds } from "../../components/firewall";
import { deliveredFiles, fileLines, packageLines } from "../../components/nodeFiles";
import { topologyFromConfig, type Topology } from "../../topology";
import { configWith, pathsUnder } from "../helpers";

const secrets = { redisPassword: "redis-pw-0123456789", sentinelPassword: "sentinel-pw-0123456789" };
// The shared-password exporters (`tls: false`); with TLS they log in as the exporter user (tests/security/tls.test.ts).
const prod = (changes: Record<string, unknown> = {}) =>
    topologyFromConfig(configWith("prod", { tls: false, ...changes }), "redis-ha", "prod");
const addressesOf = (t: Topology) => Object.fromEntries(t.nodes.map((n, i) => [n.name, `192.0.2.${String(i + 10)}`]));
const userData = (t: Topology, node: string) =>
    renderUserData({ topology: t, node, addresses: addressesOf(t), secrets });

interface Doc {
    packages: string[];
    runcmd: (string | string[])[];
}

describe("exporters in user-data", () => {
    const t = prod();

    it("installs the node exporter everywhere and the redis exporter for Redis and Sentinel", () => {
        for (const n of t.nodes) {
            const doc = parse(userData(t, n.name)) as Doc;
            expect(doc.packages).toEqual(
                expect.arrayContaining(["prometheus-node-exporter", "prometheus-redis-exporter"]),
            );
            const paths = filesInUserData(userData(t, n.name)).map((f) => f.path);
            expect(paths).toEqual(
                expect.arrayContaining([
                    EXPORTER_PATHS.aptPreferences,
                    EXPORTER_PATHS.nodeExporterDropIn,
                    EXPORTER_PATHS.redisExporterDropIn,
                ]),
            );
            // Only a node with both services needs the second (Sentinel) exporter unit.
            expect(paths.includes(EXPORTER_PATHS.sentinelExporterUnit)).toBe(n.runsRedis && n.runsSentinel);
            const start = doc.runcmd.find((c) => Array.isArray(c) && c.includes(EXPORTER_UNITS.node));
            expect(start).toEqual([
                "systemctl",
                "enable",
                "--now",
                "--no-block",
                EXPORTER_UNITS.node,
                EXPORTER_UNITS.primary,
                ...(n.runsRedis && n.runsSentinel ? [EXPORTER_UNITS.sentinel] : []),
            ]);
        }
    });

    it("points each exporter at its own service and port, with the password in a file, never in argv", () => {
        const file = (node: string, path: string) => {
            const f = filesInUserData(userData(t, node)).find((x) => x.path === path);
            if (!f) throw new Error(`${path} missing on ${node}`);
            return f.content;
        };
        const both = file("east-a", EXPORTER_PATHS.redisExporterDropIn);
        expect(both).toContain(
            `ExecStart=/usr/bin/prometheus-redis-exporter -redis.addr redis://127.0.0.1:${t.ports.redis} -redis.password-file ${PATHS.exporterCredentialsDir}/redis.json -web.listen-address 127.0.0.1:9121`,
        );
        expect(both).toContain(`ExecStartPre=+${PATHS.scriptsDir}/exporter-credentials redis`);
        expect(file("east-a", EXPORTER_PATHS.sentinelExporterUnit)).toContain(
            `-redis.addr redis://127.0.0.1:${t.ports.sentinel} -redis.password-file ${PATHS.exporterCredentialsDir}/sentinel.json -web.listen-address 127.0.0.1:9355`,
        );
        // The witness runs Sentinel only: Debian's unit scrapes its Sentinel, on the Sentinel exporter's port.
        expect(file("witness", EXPORTER_PATHS.redisExporterDropIn)).toContain(
            `-redis.addr redis://127.0.0.1:${t.ports.sentinel} -redis.password-file ${PATHS.exporterCredentialsDir}/sentinel.json -web.listen-address 127.0.0.1:9355`,
        );
        expect(file("east-a", EXPORTER_PATHS.nodeExporterDropIn)).toContain(
            `--collector.textfile.directory=${EXPORTER_PATHS.textfileDir}`,
        );
        for (const n of t.nodes)
            for (const f of filesInUserData(userData(t, n.name)).filter((x) => x.path.includes("exporter")))
                for (const pw of Object.values(secrets)) expect(`${f.path}: ${f.content}`).not.toContain(pw);
    });

    it("listens on every address only when someone may scrape (monitoringCidrs or the monitoring node)", () => {
        const listen = (model: Topology) =>
            filesInUserData(userData(model, "east-a"))
                .filter((f) => f.path.includes("exporter"))
                .flatMap((f) => [...f.content.matchAll(/-?-web\.listen-address[= ](\S*)/g)].map((m) => m[1]));
        // prod sets neither: the firewall opens no exporter port, so nothing listens beyond loopback.
        expect(listen(t)).toEqual(["127.0.0.1:9100", "127.0.0.1:9121", "127.0.0.1:9355"]);
        expect(listen(prod({ monitoringCidrs: ["198.51.100.7/32"] }))).toEqual([":9100", ":9121", ":9355"]);
        expect(listen(prod({ monitoringEnabled: true, monitoringWebhookUrl: "https://hooks.example.com/x" }))).toEqual([
            ":9100",
            ":9121",
            ":9355",
        ]);
    });

    it("blocks the collectors package that the node exporter recommends", () => {
        const prefs = filesInUserData(userData(t, "east-a")).find((f) => f.path === EXPORTER_PATHS.aptPreferences);
        expect(prefs?.content).toMatch(
            /^Package: prometheus-node-exporter-collectors\nPin: release \*\nPin-Priority: -1$/m,
        );
    });

    it("renders the same bytes for the same model", () => {
        expect(userData(prod(), "east-b")).toBe(userData(prod(), "east-b"));
    });
});

describe("exporters on running nodes (the settings rollout)", () => {
    const t = prod();
    const input = { topology: t, node: "east-a", addresses: addressesOf(t), secrets };

    it("delivers the exporter units and drop-ins, and lists the packages to install", () => {
        const paths = deliveredFiles(input, []).map((f) => f.path);
        expect(paths).toEqual(
            expect.arrayContaining([
                EXPORTER_PATHS.aptPreferences,
                EXPORTER_PATHS.nodeExporterDropIn,
                EXPORTER_PATHS.redisExporterDropIn,
                EXPORTER_PATHS.sentinelExporterUnit,
                `${PATHS.scriptsDir}/exporter-credentials`,
            ]),
        );
        expect(packageLines(input).split("\n")).toEqual(
            expect.arrayContaining(["package prometheus-node-exporter", "package prometheus-redis-exporter"]),
        );
    });
});

describe("exporter firewall rules", () => {
    it("opens the exporter ports only to monitoringCidrs and the monitoring node", () => {
        const t = prod({ monitoringCidrs: ["198.51.100.7/32", "2001:db8::/64"] });
        expect(exporterInbounds(t, "192.0.2.99")).toEqual([
            {
                label: "exporters-monitoring",
                action: "ACCEPT",
                protocol: "TCP",
                ports: "9100,9121,9355",
                ipv4s: ["198.51.100.7/32", "192.0.2.99/32"],
                ipv6s: ["2001:db8::/64"],
            },
        ]);
        const rules = firewallInbounds(t, ["192.0.2.10"], "192.0.2.99");
        const ports = rules.map((r) => `${r.label as string} ${(r.ports as string | undefined) ?? ""}`);
        expect(ports.filter((p) => p.includes("9100"))).toEqual(["exporters-monitoring 9100,9121,9355"]);
    });

    it("opens nothing when no monitoring address is configured", () => {
        const t = prod();
        expect(exporterInbounds(t)).toEqual([]);
        const ports = firewallInbounds(t, ["192.0.2.10"]).map((r) => (r.ports as string | undefined) ?? "");
        expect(ports.some((p) => /9100|9121|9355/.test(p))).toBe(false);
    });
});

describe("exporter-credentials", () => {
    let dir: string;
    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "exporter-credentials-"));
        mkdirSync(join(dir, "scripts"));
        const scripts = join(__dirname, "..", "..", "cloud-init", "scripts");
        for (const s of ["exporter-credentials", "lib.sh"]) copyFileSync(join(scripts, s), join(dir, "scripts", s));
        chmodSync(join(dir, "scripts", "exporter-credentials"), 0o755);
        const t = prod();
        writeFileSync(
            join(dir, "scripts", PATHS_LIB),
            renderPathsLib({
                ...pathsUnder(dir),
                nodeEnv: join(dir, "node.env"),
                scriptsDir: join(dir, "scripts"),
                exporterCredentialsDir: join(dir, "creds"),
            }),
        );
        writeFileSync(
            join(dir, "node.env"),
            renderNodeEnv({ topology: t, node: "east-a", addresses: addressesOf(t), secrets }),
        );
    });
    afterEach(() => {
        rmSync(dir, { recursive: true });
    });
    const run = (...args: string[]) =>
        spawnSync(join(dir, "scripts", "exporter-credentials"), args, {
            encoding: "utf8",
            // The exporter's user on a node is prometheus; here the file goes to whoever runs the test.
            env: { PATH: "/usr/bin:/bin", EXPORTER_USER: userInfo().username },
        });

    it("writes the redis_exporter password file, mode 0600, for Redis and for Sentinel", () => {
        const t = prod();
        for (const [kind, port, pw] of [
            ["redis", t.ports.redis, secrets.redisPassword],
            ["sentinel", t.ports.sentinel, secrets.sentinelPassword],
        ] as const) {
            const r = run(kind);
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            const path = join(dir, "creds", `${kind}.json`);
            expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ [`redis://127.0.0.1:${String(port)}`]: pw });
            expect(statSync(path).mode & 0o777).toBe(0o600);
        }
    });

    it("refuses an unknown kind", () => {
        const r = run("node");
        expect(r.status).toBe(2);
        expect(r.stderr.trim()).toBe("usage: exporter-credentials redis|sentinel");
    });
});

describe("apply-settings: packages and new units (how running nodes get the exporters)", () => {
    let dir: string;
    const scripts = join(__dirname, "..", "..", "cloud-init", "scripts");
    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "apply-packages-"));
        for (const d of ["bin", "scripts", "root"]) mkdirSync(join(dir, d));
        for (const s of ["apply-settings", "lib.sh"]) copyFileSync(join(scripts, s), join(dir, "scripts", s));
        writeFileSync(
            join(dir, "scripts", PATHS_LIB),
            renderPathsLib({ ...pathsUnder(dir), nodeEnv: join(dir, "node.env"), scriptsDir: join(dir, "scripts") }),
        );
        writeFileSync(join(dir, "node.env"), "NODE_NAME='east-a'\nRUNS_REDIS=0\nRUNS_SENTINEL=0\n");
        // Stand-ins that record their calls; dpkg-query says "installed" only for names listed in installed.txt.
        const stub = (name: string, body: string) => {
            writeFileSync(
                join(dir, "bin", name),
                `#!/bin/bash --norc\necho "${name} $*" >>"${dir}/calls.log"\n${body}\n`,
            );
            chmodSync(join(dir, "bin", name), 0o755);
        };
        stub("systemctl", "");
        stub("apt-get", "");
        stub(
            "dpkg-query",
            `grep -qx "\${@: -1}" "${dir}/installed.txt" 2>/dev/null && printf 'install ok installed' || exit 1`,
        );
    });
    afterEach(() => {
        rmSync(dir, { recursive: true });
    });
    const unit = () => ({
        path: join(dir, "root", EXPORTER_PATHS.sentinelExporterUnit),
        owner: "root:root",
        permissions: "0644",
        content: "[Service]\nExecStart=/bin/true\n",
    });
    function apply(input: string) {
        const r = spawnSync("/bin/bash", ["--norc", join(dir, "scripts", "apply-settings")], {
            input,
            encoding: "utf8",
            env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin` },
        });
        let calls = "";
        try {
            calls = readFileSync(join(dir, "calls.log"), "utf8");
        } catch {
            // nothing was called
        }
        rmSync(join(dir, "calls.log"), { force: true });
        return { ...r, calls: calls.trim().split("\n").filter(Boolean) };
    }

    it("installs missing packages once, after the files, then enables and starts a unit the release adds", () => {
        const first = apply(
            `${fileLines([unit()])}package prometheus-node-exporter\npackage prometheus-redis-exporter\n`,
        );
        expect(first.stderr).toBe("");
        expect(first.status).toBe(0);
        expect(first.calls.filter((c) => !c.startsWith("dpkg-query"))).toEqual([
            "apt-get update -qq",
            "apt-get install -y -qq -o Dpkg::Options::=--force-confold prometheus-node-exporter",
            "apt-get install -y -qq -o Dpkg::Options::=--force-confold prometheus-redis-exporter",
            "systemctl daemon-reload",
            `systemctl enable --quiet ${EXPORTER_UNITS.sentinel}`,
            `systemctl restart ${EXPORTER_UNITS.sentinel}`,
        ]);
    });

    it("installs nothing and restarts nothing on a node that already has everything", () => {
        apply(fileLines([unit()]));
        writeFileSync(join(dir, "installed.txt"), "prometheus-node-exporter\nprometheus-redis-exporter\n");
        const again = apply(
            `${fileLines([unit()])}package prometheus-node-exporter\npackage prometheus-redis-exporter\n`,
        );
        expect(again.status).toBe(0);
        expect(again.calls.filter((c) => !c.startsWith("dpkg-query"))).toEqual([]);
    });

    it("refuses a package name that is not a Debian package name", () => {
        const r = apply("package foo;reboot\n");
        expect(r.status).toBe(2);
        expect(r.stderr.trim()).toBe("apply-settings: bad package line 'foo;reboot'");
    });
});
