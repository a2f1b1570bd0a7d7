import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import {
    drillRunner,
    encodeUserData,
    filesInUserData,
    liveSettingsText,
    parseConfig,
    PATHS,
    PATHS_LIB,
    renderPathsLib,
    renderUserData,
    type RenderInput,
} from "../cloud-init";
import { readStackConfig } from "../engine/stackFile";
import { topologyFromConfig } from "../topology";
import { itTier } from "./tiers";

// The shared-password rendering (`tls: false`); the TLS and ACL rendering is tests/security/tls.test.ts's.
const PLAIN = { "redis-ha:tls": "false" };
const t = topologyFromConfig({ ...readStackConfig("prod"), ...PLAIN }, "redis-ha", "prod");
const addresses = {
    "east-a": "192.0.2.10",
    "east-b": "192.0.2.11",
    "ord-a": "192.0.2.12",
    witness: "192.0.2.13",
    "ord-b": "192.0.2.14",
};
const secrets = { redisPassword: "redis-password-0123456789", sentinelPassword: "sentinel-password-0123456789" };
const input = (node: string): RenderInput => ({ topology: t, node, addresses, secrets });
const file = (node: string, path: string) => filesInUserData(renderUserData(input(node))).find((f) => f.path === path);
/** The file's entry, which the test needs to exist. */
const written = (node: string, path: string) => {
    const f = file(node, path);
    if (!f) throw new Error(`${node}'s user-data writes no ${path}`);
    return f;
};
const directives = (node: string, path: string) => parseConfig(written(node, path).content);
const values = (node: string, path: string, name: string) =>
    directives(node, path)
        .filter((d) => d[0] === name)
        .map((d) => d.slice(1).join(" "));

describe("redis.conf", () => {
    it("carries everything the seed's config sets, plus production settings", () => {
        const conf = (name: string) => values("east-b", PATHS.redisConf, name);
        expect(conf("bind")).toEqual(["* -::*"]);
        expect(conf("port")).toEqual(["6379"]);
        expect(conf("pidfile")).toEqual(["/run/redis/redis-server.pid"]);
        expect(conf("logfile")).toEqual(["/var/log/redis/redis-server.log"]);
        expect(conf("dir")).toEqual(["/var/lib/redis"]);
        expect(conf("requirepass")).toEqual([secrets.redisPassword]);
        expect(conf("masterauth")).toEqual([secrets.redisPassword]);
        expect(conf("appendonly")).toEqual(["yes"]);
        expect(conf("appendfsync")).toEqual(["everysec"]);
        expect(conf("save")).toEqual(["900 1", "300 10", "60 10000"]);
        expect(conf("min-replicas-to-write")).toEqual(["1"]);
        expect(conf("min-replicas-max-lag")).toEqual(["10"]);
        expect(conf("replica-priority")).toEqual(["100"]);
        expect(conf("maxmemory-policy")).toEqual(["noeviction"]);
        expect(Number(conf("maxmemory")[0])).toBe(t.nodes.find((n) => n.name === "east-b")?.maxmemoryBytes);
        expect(conf("replica-announce-ip")).toEqual(["192.0.2.11"]);
    });

    it("makes replicas replicate the preferred master and leaves the master without replicaof", () => {
        expect(values("east-b", PATHS.redisConf, "replicaof")).toEqual(["192.0.2.10 6379"]);
        expect(values("ord-a", PATHS.redisConf, "replicaof")).toEqual(["192.0.2.10 6379"]);
        expect(values("east-a", PATHS.redisConf, "replicaof")).toEqual([]);
    });

    it("turns RDB snapshots off with an empty save list", () => {
        const noRdb = topologyFromConfig(
            { ...readStackConfig("prod"), ...PLAIN, "redis-ha:save": "[]" },
            "redis-ha",
            "prod",
        );
        const text =
            filesInUserData(renderUserData({ topology: noRdb, node: "east-a", addresses, secrets })).find(
                (f) => f.path === PATHS.redisConf,
            )?.content ?? "";
        expect(parseConfig(text).filter((d) => d[0] === "save")).toEqual([["save", ""]]);
    });
});

describe("sentinel.conf", () => {
    it("monitors the preferred master with the stack's quorum and timings", () => {
        const s = (name: string) => values("ord-a", PATHS.sentinelConf, name);
        expect(s("port")).toEqual(["26379"]);
        expect(s("sentinel")).toEqual(
            expect.arrayContaining([
                "announce-ip 192.0.2.12",
                "monitor mymaster 192.0.2.10 6379 2",
                `auth-pass mymaster ${secrets.redisPassword}`,
                "down-after-milliseconds mymaster 5000",
                "failover-timeout mymaster 10000",
                "parallel-syncs mymaster 3",
                `sentinel-pass ${secrets.sentinelPassword}`,
            ]),
        );
        expect(s("requirepass")).toEqual([secrets.sentinelPassword]);
    });

    it("exists only on Sentinel nodes, redis.conf only on Redis nodes", () => {
        expect(file("east-b", PATHS.sentinelConf)).toBeUndefined();
        expect(file("witness", PATHS.redisConf)).toBeUndefined();
        expect(file("witness", PATHS.sentinelConf)).toBeDefined();
    });
});

describe("user-data", () => {
    const doc = (node: string) =>
        parse(renderUserData(input(node))) as { packages: string[]; runcmd: (string | string[])[] };

    it("is a #cloud-config that installs the node's packages and starts its services last", () => {
        const ud = renderUserData(input("east-a"));
        expect(ud.startsWith("#cloud-config\n")).toBe(true);
        const exporters = ["prometheus-node-exporter", "prometheus-redis-exporter"];
        const host = ["unattended-upgrades"];
        expect(doc("east-a").packages).toEqual([
            "redis-server",
            "redis-sentinel",
            "redis-tools",
            ...host,
            ...exporters,
        ]);
        expect(doc("witness").packages).toEqual(["redis-sentinel", "redis-tools", ...host, ...exporters]);
        const runcmd = doc("east-a").runcmd.map((c: string | string[]) => (Array.isArray(c) ? c.join(" ") : c));
        expect(runcmd).toEqual([
            "set -eu",
            "usermod --password ! root",
            `rm -f ${PATHS.policyRcD}`,
            "systemctl daemon-reload",
            "systemctl enable --now redis-ha-tuning.service",
            "systemctl enable --now --no-block prometheus-node-exporter.service prometheus-redis-exporter.service redis-ha-sentinel-exporter.service",
            "systemctl enable redis-server.service redis-sentinel.service",
            "systemctl restart redis-server.service redis-sentinel.service",
            `${PATHS.scriptsDir}/node-ready`,
        ]);
    });

    it("writes Redis-owned configs after packages (defer), everything else as root before them", () => {
        for (const f of filesInUserData(renderUserData(input("east-a")))) {
            if (f.owner === "redis:redis") {
                expect(f.defer).toBe(true);
                expect(f.permissions).toBe("0640");
            } else {
                expect(f.owner).toBe("root:root");
                expect(f.defer).toBeUndefined();
            }
        }
        expect(written("east-a", PATHS.nodeEnv).permissions).toBe("0600");
        expect(written("east-a", PATHS.policyRcD).content).toContain("exit 101");
    });

    it("sets overcommit and somaxconn, and a restart policy guarded against stale masters", () => {
        expect(written("east-a", PATHS.sysctl).content).toMatch(/^-vm\.overcommit_memory = 1$/m);
        expect(written("east-a", PATHS.sysctl).content).toMatch(/^net\.core\.somaxconn = 1024$/m);
        const dropIn = written("east-a", PATHS.redisDropIn).content;
        expect(dropIn).toContain(`ExecStartPre=+${PATHS.scriptsDir}/redis-start-guard`);
        // The planned-stop handover runs before systemd's stop signal, the stop recorder after the process ended.
        expect(dropIn.indexOf(`ExecStop=+${PATHS.scriptsDir}/redis-stop-handover`)).toBeGreaterThan(-1);
        expect(dropIn.indexOf(`ExecStop=+${PATHS.scriptsDir}/redis-stop-handover`)).toBeLessThan(
            dropIn.indexOf(`ExecStopPost=+${PATHS.scriptsDir}/redis-stop-record`),
        );
        expect(dropIn).toContain("RestartSec=100ms");
        expect(dropIn).toContain("TimeoutStopSec=60s");
        expect(dropIn).toContain("Restart=always");
        expect(written("east-a", PATHS.tuningUnit).content).toContain("disable-thp");
    });

    it("is byte-stable and encodes as base64 without line breaks", () => {
        const a = renderUserData(input("ord-a"));
        expect(renderUserData(input("ord-a"))).toBe(a);
        const reordered = {
            "ord-b": "192.0.2.14",
            witness: "192.0.2.13",
            "ord-a": "192.0.2.12",
            "east-b": "192.0.2.11",
            "east-a": "192.0.2.10",
        };
        expect(renderUserData({ ...input("ord-a"), addresses: reordered })).toBe(a);
        expect(encodeUserData(a)).toMatch(/^[A-Za-z0-9+/]+=*$/);
        expect(Buffer.from(encodeUserData(a), "base64").toString("utf8")).toBe(a);
    });

    const hasCloudInit = spawnSync("cloud-init", ["--version"]).status === 0;
    itTier("cloud-init schema", hasCloudInit ? undefined : "cloud-init is not installed (apt-get install cloud-init)")(
        "passes `cloud-init schema` for every node",
        () => {
            const dir = mkdtempSync(join(tmpdir(), "ud-"));
            try {
                for (const n of t.nodes) {
                    const f = join(dir, n.name);
                    writeFileSync(f, renderUserData(input(n.name)));
                    const r = spawnSync("cloud-init", ["schema", "--config-file", f], { encoding: "utf8" });
                    expect(`${n.name}: ${String(r.status)} ${r.stdout}${r.stderr}`).toMatch(
                        new RegExp(`^${n.name}: 0 Valid cloud-config`),
                    );
                }
            } finally {
                rmSync(dir, { recursive: true, force: true });
            }
        },
    );

    it("ships paths.sh rendered from paths.ts beside the scripts", () => {
        const lib = written("east-a", `${PATHS.scriptsDir}/${PATHS_LIB}`);
        expect(lib.content).toBe(renderPathsLib());
        expect(lib.content).toContain(`NODE_ENV_FILE='${PATHS.nodeEnv}'\n`);
        expect(lib.permissions).toBe("0644");
    });
});

describe("failover drill runner", () => {
    it("is a Sentinel node in the primary region, the same for the checks and the lab", () => {
        const runner = drillRunner(t);
        expect(runner.runsSentinel).toBe(true);
        expect(runner.region).toBe(t.primaryRegion);
        const sentinelsElsewhere = topologyFromConfig(
            { ...readStackConfig("prod"), ...PLAIN, "redis-ha:primaryRegion": "us-ord" },
            "redis-ha",
            "prod",
        );
        expect(drillRunner(sentinelsElsewhere).region).toBe("us-ord");
    });
});

describe("live settings", () => {
    const node = (name: string) => {
        const n = t.nodes.find((x) => x.name === name);
        if (!n) throw new Error(`no node ${name} in the prod topology`);
        return n;
    };
    it("lists what apply-settings changes in place, per role, and the node.env entries that follow them", () => {
        const witness = liveSettingsText(t, node("witness"), addresses);
        expect(witness).toContain(
            "sentinel quorum 2\nsentinel down-after-milliseconds 5000\nsentinel failover-timeout 10000\nsentinel parallel-syncs 3\n",
        );
        expect(witness).not.toMatch(/^redis /m);
        expect(witness).toMatch(/^env START_GUARD_WAIT_SEC 35$/m); // 5 s + 2 x 10 s + 10 s
        expect(witness).toMatch(/^env SENTINELS 192\.0\.2\.10:26379 192\.0\.2\.12:26379 192\.0\.2\.13:26379$/m);
        const eastB = liveSettingsText(t, node("east-b"), addresses);
        expect(eastB).toMatch(/^redis save 900 1 300 10 60 10000$/m);
        expect(eastB).toMatch(/^env REPLICA_PRIORITY 100$/m);
        expect(eastB).not.toMatch(/^sentinel /m);
    });

    it("writes the same node.env values at creation as apply-settings writes later", () => {
        const env = written("east-b", PATHS.nodeEnv).content;
        for (const line of liveSettingsText(t, node("east-b"), addresses)
            .split("\n")
            .filter((l) => l.startsWith("env "))) {
            const [, name, ...value] = line.split(" ");
            expect(env).toContain(`${name}='${value.join(" ")}'`);
        }
    });
});
