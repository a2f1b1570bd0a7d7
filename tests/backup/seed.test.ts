/**
 * backup.seedFrom: config validation, and under mocks what a new cluster seeded from a backup declares and renders.
 * The seed's read-only key reaches the first master's user-data only, as a secret; every other node's user-data is
 * byte-identical to an unseeded cluster's. Then redis-seed itself, by bash against a real redis-server and a local S3
 * server (s3rver, real s3cmd): a seeded node starts with every key (appendonly yes and no), a second seed is refused,
 * and a checksum mismatch is refused with one line and nothing installed.
 */
import * as pulumi from "@pulumi/pulumi";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
    copyFileSync,
    existsSync,
    mkdirSync,
    mkdtempSync,
    readdirSync,
    readFileSync,
    rmSync,
    writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { filesInUserData, PATHS, PATHS_LIB, renderPathsLib, renderS3cmdConfig } from "../../cloud-init";
import { shellAssignments } from "../../cloud-init/shell";
import { LOCAL_S3_KEYS, startLocalS3, type LocalS3 } from "../../lab/s3";
import { resourceNames as names } from "../../components/names";
import { resourceNamed, runUnderMocks, unwrapSecrets, type MockRun } from "../../engine/mockRun";
import { ConfigError, topologyFromConfig } from "../../topology";
import { configWith, programConfigWith } from "../helpers";
import { describeTier, firstMissing } from "../tiers";

const SCRIPTS = join(__dirname, "..", "..", "cloud-init", "scripts");

const SEED = "s3://redis-prod-backup-abc123/redis-prod/ord-a/20261130T033000Z.rdb";

function problemsOf(changes: Record<string, unknown>): string[] {
    try {
        topologyFromConfig(configWith("prod", changes), "redis-ha", "prod");
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).message.split("\n");
    }
    throw new Error("expected a ConfigError");
}

describe("backup.seedFrom", () => {
    it.each([
        [
            { "backup.enabled": true, "backup.seedFrom": "latest" },
            /^redis-ha:backup\.seedFrom: must name one backup as s3:\/\/<bucket>\//,
        ],
        [
            { "backup.enabled": true, "backup.seedFrom": "s3://b/redis-prod/ord-a/x.rdb.sha256" },
            /^redis-ha:backup\.seedFrom: must name one backup as s3:\/\/<bucket>\/<cluster>\/<node>\/<time>\.rdb/,
        ],
        [
            { "backup.seedFrom": SEED },
            /^redis-ha:backup\.seedFrom: needs backup\.enabled true .*run: pulumi config set backup\.enabled true$/,
        ],
    ])("refuses %j with one line naming the key and the fix", (changes, expected) => {
        const lines = problemsOf(changes);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(expected);
    });

    it("plans the seed's bucket and key; empty (Pulumi.yaml's default) means none", () => {
        const t = topologyFromConfig(
            configWith("prod", { "backup.enabled": true, "backup.seedFrom": SEED }),
            "redis-ha",
            "prod",
        );
        expect(t.backup.seed).toEqual({
            bucket: "redis-prod-backup-abc123",
            key: "redis-prod/ord-a/20261130T033000Z.rdb",
        });
        const none = topologyFromConfig(
            configWith("prod", { "backup.enabled": true, "backup.seedFrom": "" }),
            "redis-ha",
            "prod",
        );
        expect(none.backup.seed).toBeUndefined();
    });
});

/** Every value as text, user-data decoded; values inside a secret wrapper left out unless `secrets`. */
function text(value: unknown, secrets: boolean): string {
    if (pulumi.runtime.isRpcSecret(value)) return secrets ? text(unwrapSecrets(value), secrets) : "";
    if (Array.isArray(value)) return value.map((v) => text(v, secrets)).join("\n");
    if (value !== null && typeof value === "object")
        return Object.values(value)
            .map((v) => text(v, secrets))
            .join("\n");
    const s = String(value);
    const whole = Buffer.from(s, "base64").toString();
    return whole.startsWith("#cloud-config") ? `${s}\n${whole}` : s;
}

describe("a new cluster seeded from a backup, under mocks (prod)", () => {
    let seeded: MockRun;
    let plain: MockRun;
    beforeAll(async () => {
        seeded = await runUnderMocks({
            stack: "prod",
            config: programConfigWith("prod", { "backup.enabled": true, "backup.seedFrom": SEED }),
        });
        plain = await runUnderMocks({ stack: "prod", config: programConfigWith("prod", { "backup.enabled": true }) });
    });

    it("declares a read-only key limited to the seed's bucket, under the backup component", () => {
        const key = resourceNamed(seeded, names.backupSeedKey);
        expect(key.parent).toBe(names.backup);
        expect(unwrapSecrets(key.inputs.bucketAccesses)).toEqual([
            { bucketName: "redis-prod-backup-abc123", region: "us-ord", permissions: "read_only" },
        ]);
        expect(plain.resources.map((r) => r.name)).not.toContain(names.backupSeedKey);
    });

    it("gives the first master the seed (plan, read-only key in a 0600 file, the unit Redis requires); nothing else changes", () => {
        const files = new Map(filesInUserData(seeded.userData["east-a"]).map((f) => [f.path, f]));
        const secretKey = String(resourceNamed(seeded, names.backupSeedKey).state.secretKey);
        expect(secretKey.length).toBeGreaterThan(20);
        expect(files.get(PATHS.seedS3cfg)?.permissions).toBe("0600");
        expect(files.get(PATHS.seedS3cfg)?.content).toContain(`secret_key = ${secretKey}`);
        expect(files.get(PATHS.seedS3cfg)?.content).toContain("host_base = us-ord-1.linodeobjects.com");
        expect(files.get(PATHS.seedEnv)?.content).toContain("SEED_BUCKET='redis-prod-backup-abc123'\n");
        expect(files.get(PATHS.seedEnv)?.content).toContain("SEED_KEY='redis-prod/ord-a/20261130T033000Z.rdb'\n");
        expect(files.get(PATHS.seedScript)?.permissions).toBe("0755");
        const unit = files.get(PATHS.seedUnit)?.content ?? "";
        expect(unit).toContain("Before=redis-server.service");
        expect(unit).toContain("RequiredBy=redis-server.service");
        expect(unit).toContain(`ConditionPathExists=!${PATHS.seedMarker}`);
        const doc = parse(seeded.userData["east-a"]) as { packages: string[]; runcmd: unknown[] };
        expect(doc.packages).toContain("s3cmd");
        // Enabled before Redis first starts, so that start pulls the seed in.
        const enable = doc.runcmd.findIndex(
            (c) => JSON.stringify(c) === '["systemctl","enable","redis-ha-seed.service"]',
        );
        const restart = doc.runcmd.findIndex((c) => Array.isArray(c) && c[0] === "systemctl" && c[1] === "restart");
        expect(enable).toBeGreaterThan(-1);
        expect(enable).toBeLessThan(restart);
        // The other nodes' user-data is exactly the unseeded cluster's: seeding replaces no other Linode.
        for (const node of ["east-b", "ord-a", "witness"]) expect(seeded.userData[node]).toBe(plain.userData[node]);
        // The seed's key: in east-a's user-data only, and only inside secrets.
        const holders = seeded.resources.filter((r) => text(r.inputs, true).includes(secretKey));
        expect(holders.map((r) => r.name)).toEqual([names.instance("east-a")]);
        for (const r of seeded.resources) expect(`${r.name}: ${text(r.inputs, false)}`).not.toContain(secretKey);
        expect(JSON.stringify(seeded.stackOutputs)).not.toContain(secretKey);
    });
});

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const missing = firstMissing([
    [has("redis-server") && has("redis-cli") && has("redis-check-rdb"), "redis-server, redis-cli missing"],
    [has("s3cmd"), "s3cmd missing (apt-get install s3cmd)"],
]);

describeTier("redis-seed (real redis-server and a local S3 server)", missing)("redis-seed", () => {
    const BUCKET = "old-cluster-backups";
    const KEY = "redis-prod/ord-a/20261130T033000Z.rdb";
    let work: string;
    let s3: LocalS3 | undefined;
    const pids: number[] = [];
    const s3cmd = (...args: string[]) =>
        spawnSync("s3cmd", ["-c", join(work, "s3cfg"), "--no-progress", ...args], { encoding: "utf8" });
    const cli = (sock: string, ...args: string[]) =>
        spawnSync("redis-cli", ["-s", sock, "--raw", ...args], { encoding: "utf8" }).stdout.trim();
    const waitFor = async (what: string, ok: () => boolean) => {
        for (let i = 0; i < 300; i++) {
            if (ok()) return;
            await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`timed out waiting for ${what}`);
    };
    /** A Redis on a unix socket in `dir`, started from `conf`; returns the socket. */
    const startRedis = async (dir: string, conf: string[]): Promise<string> => {
        const sock = join(dir, "redis.sock");
        const pidfile = join(dir, "redis.pid");
        const args = ["--port", "0", "--unixsocket", sock, "--daemonize", "yes", "--pidfile", pidfile, ...conf];
        expect(spawnSync("redis-server", args, { encoding: "utf8" }).status).toBe(0);
        await waitFor("redis-server", () => existsSync(pidfile) && cli(sock, "PING") === "PONG");
        pids.push(Number(readFileSync(pidfile, "utf8").trim()));
        await waitFor("loading", () => /loading:0/.test(cli(sock, "INFO", "persistence")));
        return sock;
    };
    /** One first master's files: scripts, paths.sh, node.env, redis.conf, seed.env, s3cfg. */
    const node = (appendonly: "yes" | "no") => {
        const dir = mkdtempSync(join(work, "node-"));
        const data = join(dir, "data");
        mkdirSync(data);
        const paths = { ...PATHS, nodeEnv: join(dir, "node.env"), redisConf: join(dir, "redis.conf") };
        mkdirSync(join(dir, "bin"));
        copyFileSync(join(SCRIPTS, "lib.sh"), join(dir, "bin", "lib.sh"));
        copyFileSync(join(SCRIPTS, "redis-seed"), join(dir, "bin", "redis-seed"));
        writeFileSync(join(dir, "bin", PATHS_LIB), renderPathsLib(paths));
        writeFileSync(
            paths.nodeEnv,
            shellAssignments([
                ["REDIS_PASSWORD", "unused"],
                ["SENTINEL_PASSWORD", "unused"],
                ["NODE_ADDRESS", "127.0.0.1"],
                ["REDIS_PORT", 6379],
                ["MASTER_NAME", "mymaster"],
                // Nothing listens there: no Sentinel answers, as in a new cluster whose Sentinels are still booting.
                ["SENTINELS", "127.0.0.1:1 127.0.0.1:2 127.0.0.1:3"],
            ]),
        );
        const conf = [`dir ${data}`, "dbfilename dump.rdb", `appendonly ${appendonly}`, "appenddirname appendonlydir"];
        writeFileSync(paths.redisConf, `${conf.join("\n")}\nappendfilename "appendonly.aof"\n`);
        const env = shellAssignments([
            ["SEED_BUCKET", BUCKET],
            ["SEED_KEY", KEY],
            ["SEED_S3CFG", join(work, "s3cfg")],
            ["SEED_MARKER_FILE", join(dir, "state", "seeded")],
        ]);
        writeFileSync(join(dir, "seed.env"), env);
        const run = (env: Record<string, string> = {}) =>
            spawnSync("bash", [join(dir, "bin", "redis-seed"), join(dir, "seed.env")], {
                encoding: "utf8",
                env: { ...process.env, SEED_RUN_AS: "", RCLI_TIMEOUT: "1", ...env },
                timeout: 120_000,
            });
        return { dir, data, conf: conf.flatMap((l) => [`--${l.split(" ")[0]}`, l.split(" ")[1]]), run };
    };

    beforeAll(async () => {
        work = mkdtempSync(join(tmpdir(), "rha-seed-"));
        s3 = await startLocalS3("127.0.0.1", 0);
        writeFileSync(
            join(work, "s3cfg"),
            renderS3cmdConfig({ bucket: BUCKET, endpoint: s3.endpoint, ...LOCAL_S3_KEYS }),
        );
        expect(s3cmd("mb", `s3://${BUCKET}`).status).toBe(0);
        // The backup: an RDB of a Redis holding keys of several types, with its .sha256 as redis-backup writes it.
        const src = mkdtempSync(join(work, "src-"));
        const sock = await startRedis(src, ["--dir", src, "--save", ""]);
        for (let i = 0; i < 1000; i++) cli(sock, "SET", `k:${String(i)}`, `v${String(i)}`);
        cli(sock, "HSET", "h", "a", "1", "b", "2");
        cli(sock, "RPUSH", "l", "x", "y", "z");
        expect(cli(sock, "SAVE")).toBe("OK");
        const rdb = join(src, "dump.rdb");
        const sha = createHash("sha256").update(readFileSync(rdb)).digest("hex");
        writeFileSync(join(work, "sha256"), `${sha}  ${KEY.split("/").pop() ?? ""}\n`);
        expect(s3cmd("put", rdb, `s3://${BUCKET}/${KEY}`).status).toBe(0);
        expect(s3cmd("put", join(work, "sha256"), `s3://${BUCKET}/${KEY}.sha256`).status).toBe(0);
    });
    afterAll(async () => {
        // SIGKILL: on SIGTERM a Redis with save points writes a final RDB, and when that fails (its directory is
        // removed just below) Redis 7 refuses to exit.
        for (const pid of pids)
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // already gone
            }
        await s3?.stop();
        rmSync(work, { recursive: true, force: true });
    });

    it.each(["yes", "no"] as const)(
        "with appendonly %s, installs the backup so that redis-server starts with every key",
        async (aof) => {
            const n = node(aof);
            const r = n.run();
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            expect(r.stdout).toMatch(/^redis-seed: checksum ok \([0-9a-f]{64}, \d+ bytes\)$/m);
            expect(r.stdout).toMatch(
                new RegExp(`seeded from s3://${BUCKET}/${KEY} \\(1002 keys, appendonly ${aof}\\)`),
            );
            expect(existsSync(join(n.dir, "state", "seeded"))).toBe(true);
            expect(readdirSync(n.data).sort()).toEqual(aof === "yes" ? ["appendonlydir", "dump.rdb"] : ["dump.rdb"]);
            const sock = await startRedis(n.data, n.conf);
            expect(cli(sock, "DBSIZE")).toBe("1002");
            expect(cli(sock, "GET", "k:999")).toBe("v999");
            expect(cli(sock, "LRANGE", "l", "0", "-1")).toBe("x\ny\nz");
            expect(cli(sock, "CONFIG", "GET", "appendonly")).toBe(`appendonly\n${aof}`);
            // A second run finds a dataset and refuses to seed over it.
            const again = n.run();
            expect(again.status).toBe(1);
            expect(again.stderr).toMatch(
                /^redis-seed: \S+\/dump\.rdb exists: this node already has a dataset, not seeding over it/,
            );
        },
    );

    it("skips, installing nothing, when the Sentinels already agree on another master (a first master replaced later)", () => {
        // A redis-cli whose Sentinels all name 10.0.0.9:6379 as the master; everything else is the real one.
        const bin = join(work, "sentinels-elsewhere");
        mkdirSync(bin, { recursive: true });
        writeFileSync(
            join(bin, "redis-cli"),
            '#!/bin/bash\nif [[ " $* " == *" get-master-addr-by-name "* ]]; then printf "10.0.0.9\\n6379\\n"; exit 0; fi\nexec /usr/bin/redis-cli "$@"\n',
            { mode: 0o755 },
        );
        const n = node("yes");
        const r = n.run({ PATH: `${bin}:${process.env.PATH ?? ""}` });
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toBe(
            "redis-seed: skipped: the Sentinels agree on master 10.0.0.9:6379, so this cluster is not new; this node joins it without the seed\n",
        );
        expect(readdirSync(n.data)).toEqual([]);
        expect(readFileSync(join(n.dir, "state", "seeded"), "utf8")).toMatch(/skipped: the cluster already has master/);
    });

    it("refuses a backup whose checksum does not match, with one line, installing nothing", () => {
        const wrong = join(work, "wrong.sha256");
        writeFileSync(wrong, `${"0".repeat(64)}  x.rdb\n`);
        const good = join(work, "good.sha256");
        expect(s3cmd("get", "--force", `s3://${BUCKET}/${KEY}.sha256`, good).status).toBe(0);
        expect(s3cmd("put", wrong, `s3://${BUCKET}/${KEY}.sha256`).status).toBe(0);
        try {
            const n = node("yes");
            const r = n.run();
            expect(r.status).toBe(1);
            expect(r.stderr).toMatch(
                new RegExp(
                    `^redis-seed: checksum mismatch for ${KEY}: SHA-256 [0-9a-f]{64}, expected 0{64}: refusing to seed\\n$`,
                ),
            );
            expect(readdirSync(n.data)).toEqual([]);
            expect(existsSync(join(n.dir, "state", "seeded"))).toBe(false);
        } finally {
            expect(s3cmd("put", good, `s3://${BUCKET}/${KEY}.sha256`).status).toBe(0);
        }
    });
});
