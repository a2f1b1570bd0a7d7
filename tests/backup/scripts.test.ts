/**
 * redis-backup and redis-restore run by bash against real servers on 127.0.0.1: a loopback Redis + Sentinel cluster
 * (client/testing) and a local S3-compatible server (s3rver, from npm) driven by the real rclone and s3cmd. Covers a backup,
 * the master-skip and stand-in rules, a failed upload leaving no final object, a restore refusing a backup whose
 * checksum does not match, and a full restore into the running cluster after FLUSHALL.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
    chmodSync,
    copyFileSync,
    existsSync,
    mkdirSync,
    mkdtempSync,
    readFileSync,
    rmSync,
    writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Redis from "ioredis";
import { NODE_SCRIPTS, PATHS, PATHS_LIB, renderBackupEnv, renderPathsLib, renderS3cmdConfig } from "../../cloud-init";
import { shellAssignments } from "../../cloud-init/shell";
import { startLoopbackCluster, type LoopbackCluster } from "../../client/testing/loopbackCluster";
import type { NodeAddress } from "../../client/testing/cluster";
import { LOCAL_S3_KEYS, startLocalS3, type LocalS3 } from "../../lab/s3";
import { topologyFromConfig } from "../../topology";
import { configWith } from "../helpers";
import { describeTier, firstMissing } from "../tiers";

const SCRIPTS_DIR = join(__dirname, "..", "..", "cloud-init", "scripts");
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const missing = firstMissing([
    [
        has("redis-server") && has("redis-sentinel") && has("redis-cli"),
        "redis-server, redis-sentinel, redis-cli missing",
    ],
    [has("s3cmd"), "s3cmd missing (apt-get install s3cmd)"],
    [has("rclone"), "rclone missing (apt-get install rclone)"],
]);

const topology = topologyFromConfig(configWith("prod", { "backup.enabled": true }), "redis-ha", "prod");
const BUCKET = "redis-ha-test-backups";
const PREFIX = topology.backup.prefix;

interface Run {
    status: number | null;
    stdout: string;
    stderr: string;
}

/** One node's script directory: the shipped scripts, a rendered paths.sh, node.env and the backup files. */
class ScriptNode {
    readonly dir = mkdtempSync(join(tmpdir(), "rha-backup-node-"));
    readonly paths = {
        ...PATHS,
        nodeEnv: join(this.dir, "node.env"),
        scriptsDir: join(this.dir, "bin"),
        stateDir: join(this.dir, "state"),
        redisState: join(this.dir, "state", "redis-server.state"),
        lastHandover: join(this.dir, "state", "last-handover"),
        backupEnv: join(this.dir, "backup.env"),
        backupS3cfg: join(this.dir, "s3cfg"),
        backupMetrics: join(this.dir, "metrics", "redis_ha_backup.prom"),
        restoreDir: join(this.dir, "restore"),
    };

    constructor(
        readonly name: "ord-a" | "east-b",
        cluster: LoopbackCluster,
        own: NodeAddress,
        s3cfg: string,
        extraEnv: [string, string][] = [],
    ) {
        mkdirSync(this.paths.scriptsDir);
        for (const s of NODE_SCRIPTS) copyFileSync(join(SCRIPTS_DIR, s), join(this.paths.scriptsDir, s));
        writeFileSync(join(this.paths.scriptsDir, PATHS_LIB), renderPathsLib(this.paths));
        const env: [string, string | number][] = [
            ["CLUSTER", topology.cluster],
            ["NODE_NAME", name],
            ["NODE_ADDRESS", own.host],
            ["REDIS_PORT", own.port],
            ["SENTINEL_PORT", cluster.sentinels[0].port],
            ["MASTER_NAME", cluster.masterName],
            ["SENTINELS", cluster.sentinels.map((s) => `${s.host}:${String(s.port)}`).join(" ")],
            ["REDIS_NODES", cluster.nodes.map((n) => `${n.host}:${String(n.port)}`).join(" ")],
            ["REDIS_PASSWORD", cluster.password],
            ["SENTINEL_PASSWORD", cluster.sentinelPassword ?? ""],
            ...extraEnv,
        ];
        writeFileSync(this.paths.nodeEnv, shellAssignments(env), { mode: 0o600 });
        writeFileSync(
            this.paths.backupEnv,
            renderBackupEnv(topology, name, { bucket: BUCKET, endpoint: "", accessKey: "", secretKey: "" }),
        );
        writeFileSync(this.paths.backupS3cfg, s3cfg, { mode: 0o600 });
    }

    run(script: "redis-backup" | "redis-restore", args: string[] = [], env: Record<string, string> = {}): Run {
        const r = spawnSync("bash", [join(this.paths.scriptsDir, script), ...args], {
            encoding: "utf8",
            env: { ...process.env, ...env },
            timeout: 120_000,
        });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    }

    close(): void {
        rmSync(this.dir, { recursive: true, force: true });
    }
}

describeTier("backup scripts (real redis-server, Sentinel and a local S3 server)", missing)("backup scripts", () => {
    let work: string;
    let s3: LocalS3 | undefined;
    let s3cfg: string;
    let cluster: LoopbackCluster;
    let master: NodeAddress;
    let replica: NodeAddress;
    let other: NodeAddress;
    const cleanups: (() => void)[] = [];
    const s3cmd = (...args: string[]) =>
        spawnSync("s3cmd", ["-c", join(work, "s3cfg"), "--no-progress", "--acl-private", ...args], {
            encoding: "utf8",
        });
    const objects = () =>
        s3cmd("ls", "--recursive", `s3://${BUCKET}/`)
            .stdout.split("\n")
            .filter((l) => l.trim() !== "")
            .map((l) => l.trim().split(/\s+/)[3].slice(`s3://${BUCKET}/`.length));
    const client = (n: NodeAddress) => {
        const c = new Redis({ host: n.host, port: n.port, password: cluster.password, lazyConnect: true });
        cleanups.push(() => {
            c.disconnect();
        });
        return c;
    };
    const node = (name: "ord-a" | "east-b", own: NodeAddress, extraEnv: [string, string][] = [], cfg = s3cfg) => {
        const n = new ScriptNode(name, cluster, own, cfg, extraEnv);
        cleanups.push(() => {
            n.close();
        });
        return n;
    };
    const waitFor = async (what: string, ok: () => Promise<boolean>, ms = 20_000) => {
        const until = Date.now() + ms;
        while (!(await ok())) {
            if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 100));
        }
    };

    beforeAll(async () => {
        work = mkdtempSync(join(tmpdir(), "rha-backup-"));
        s3 = await startLocalS3("127.0.0.1", 0);
        s3cfg = renderS3cmdConfig({ bucket: BUCKET, endpoint: s3.endpoint, ...LOCAL_S3_KEYS });
        writeFileSync(join(work, "s3cfg"), s3cfg);
        expect(s3cmd("mb", `s3://${BUCKET}`).status).toBe(0);
        cluster = await startLoopbackCluster();
        [master, replica, other] = cluster.nodes;
        const m = client(master);
        const pipeline = m.pipeline();
        for (let i = 0; i < 2000; i++) pipeline.set(`k:${String(i)}`, `v${String(i)}`);
        // One value LZF would shrink: the backup's snapshot must hold it as it is (backup.compress false).
        pipeline.set("big", "a".repeat(20_000));
        pipeline.hset("h", { a: "1", b: "2" }).rpush("l", "x", "y", "z").sadd("s", "p", "q").zadd("z", 1, "one");
        await pipeline.exec();
        for (const n of [replica, other]) {
            const c = client(n);
            await waitFor("replication", async () => (await c.dbsize()) === 2005);
        }
    }, 60_000);

    afterAll(async () => {
        for (const c of cleanups.reverse()) c();
        await cluster.close();
        await s3?.stop();
        rmSync(work, { recursive: true, force: true });
    });

    it("skips on the master with a logged reason and uploads nothing", () => {
        const r = node("ord-a", master).run("redis-backup");
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(
            /^redis-backup: skipped: this node \(ord-a\) is the master; backups are taken on a replica$/m,
        );
        expect(objects()).toEqual([]);
    });

    it("as the stand-in, skips while the first backup node is a replica, takes over while it is master", () => {
        const first = (n: NodeAddress): [string, string] => ["BACKUP_FIRST_ADDRESS", `${n.host}:${String(n.port)}`];
        const skipped = node("east-b", other, [first(replica)]).run("redis-backup");
        expect(skipped.status).toBe(0);
        expect(skipped.stdout).toMatch(/skipped: ord-a is a replica and takes the backup/);
        expect(objects()).toEqual([]);
        const taken = node("east-b", other, [first(master)]).run("redis-backup");
        expect(taken.stderr).toBe("");
        expect(taken.status).toBe(0);
        expect(taken.stdout).toMatch(/taking the backup instead of ord-a \(master\)/);
        expect(objects().filter((k) => k.startsWith(`${PREFIX}/east-b/`))).toHaveLength(2);
    });

    it("takes a verified backup on a replica: RDB and SHA-256 under the final key, nothing left incoming, metrics", async () => {
        const n = node("ord-a", replica);
        const started = Date.now();
        const r = n.run("redis-backup");
        process.stdout.write(`backup on a replica: ${String(Date.now() - started)} ms\n${r.stdout}`);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        const mine = objects().filter((k) => k.startsWith(`${PREFIX}/ord-a/`));
        expect(mine).toHaveLength(2);
        const [rdbKey, sumKey] = mine;
        expect(rdbKey).toMatch(/^redis-prod\/ord-a\/\d{8}T\d{6}Z\.rdb$/);
        expect(sumKey).toBe(`${rdbKey}.sha256`);
        expect(objects().filter((k) => k.includes("/.incoming/"))).toEqual([]);
        const body = join(work, "got.rdb");
        expect(s3cmd("get", "--force", `s3://${BUCKET}/${rdbKey}`, body).status).toBe(0);
        const sum = s3cmd("get", `s3://${BUCKET}/${sumKey}`, "-").stdout;
        const sha = createHash("sha256").update(readFileSync(body)).digest("hex");
        expect(sum).toBe(`${sha}  ${rdbKey.split("/").pop() ?? ""}\n`);
        expect(readFileSync(body).includes("a".repeat(20_000))).toBe(true);
        expect(r.stdout).toMatch(/ compression=no bgsave_ms=\d+ /);
        // transfer_ms (what the lab drill compares with a plain put): from the snapshot on disk to a verified pair.
        const ms = (name: string) => Number(new RegExp(` ${name}_ms=(\\d+)\\b`).exec(r.stdout)?.[1]);
        expect(ms("transfer")).toBeGreaterThanOrEqual(ms("sha256") + ms("upload") + ms("verify"));
        expect(ms("transfer")).toBeLessThan(ms("total"));
        // The replica's own setting is back once the snapshot is taken.
        expect(await client(replica).config("GET", "rdbcompression")).toEqual(["rdbcompression", "yes"]);
        const metrics = readFileSync(n.paths.backupMetrics, "utf8");
        const size = readFileSync(body).length;
        expect(metrics).toContain(
            `redis_ha_backup_last_size_bytes{cluster="redis-prod",node="ord-a"} ${String(size)}\n`,
        );
        const ts = /redis_ha_backup_last_success_timestamp_seconds\{[^}]*\} (\d+)/.exec(metrics);
        expect(Math.abs(Number(ts?.[1]) - Date.now() / 1000)).toBeLessThan(60);
    });

    it("uploads an RDB above BACKUP_SINGLE_MB in parts and verifies it the same way", () => {
        const r = node("ord-a", replica).run("redis-backup", [], { BACKUP_SINGLE_MB: "0", BACKUP_PART_MB: "5" });
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        const key = /redis-backup: ok s3:\/\/[^/]+\/(\S+\.rdb) /.exec(r.stdout)?.[1] ?? "";
        expect(objects()).toEqual(expect.arrayContaining([key, `${key}.sha256`]));
    });

    /** A directory whose rclone changes the RDB it uploads (`change` gets the file and writes the bytes to send). */
    const badRclone = (name: string, change: string) => {
        const bin = join(work, name);
        mkdirSync(bin, { recursive: true });
        writeFileSync(
            join(bin, "rclone"),
            [
                "#!/bin/bash",
                "# rclone copy OPTIONS... STAGE_DIR backup:BUCKET/PREFIX/: the stage directory swapped for a changed copy.",
                "args=()",
                'for a in "$@"; do',
                '    if [ -d "$a" ]; then',
                '        copy=$(mktemp -d); cp "$a"/* "$copy"/',
                `        for f in "$copy"/*.rdb; do ${change} "$a/$(basename "$f")" >"$f"; done`,
                "        a=$copy",
                "    fi",
                '    args+=("$a")',
                "done",
                'exec /usr/bin/rclone "${args[@]}"',
                "",
            ].join("\n"),
        );
        chmodSync(join(bin, "rclone"), 0o755);
        return { PATH: `${bin}:${process.env.PATH ?? ""}` };
    };

    it("exits non-zero with one line and leaves no final object when the upload is cut short", () => {
        // A client that stores only half of the file, as a dropped connection that the server took as complete would.
        const env = badRclone("half", 'f() { head -c $(( $(stat -c %s "$1") / 2 )) "$1"; }; f');
        const before = objects();
        const r = node("ord-a", replica).run("redis-backup", [], env);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/^redis-backup: uploaded object is \d+ bytes, expected \d+: not kept\n$/);
        expect(objects()).toEqual(before);
    });

    it("exits non-zero with one line and leaves no final object when the stored bytes differ (same size)", () => {
        // The first 16 bytes replaced: the server's checksum of what it stored is not the snapshot's.
        const env = badRclone("flip", 'f() { head -c 16 /dev/zero; tail -c +17 "$1"; }; f');
        const before = objects();
        const r = node("ord-a", replica).run("redis-backup", [], env);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(
            /^redis-backup: uploaded object reads back with checksum [0-9a-f]{32}, expected [0-9a-f]{32}: not kept\n$/,
        );
        expect(objects()).toEqual(before);
    });

    it("exits non-zero with one line and leaves no final object when a multipart upload stores other bytes", () => {
        // The multipart path reads back through s3cmd (the server's ETag, not rclone's MD5 in the metadata).
        const env = {
            ...badRclone("flip-parts", 'f() { head -c 16 /dev/zero; tail -c +17 "$1"; }; f'),
            BACKUP_SINGLE_MB: "0",
            BACKUP_PART_MB: "5",
        };
        const before = objects();
        const r = node("ord-a", replica).run("redis-backup", [], env);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(
            /^redis-backup: uploaded object reads back with checksum [0-9a-f]{32}(-\d+)?, expected [0-9a-f]{32}-\d+: not kept\n$/,
        );
        expect(objects()).toEqual(before);
    });

    it("exits non-zero with one line when the bucket cannot be written", () => {
        const n = node("ord-a", replica);
        writeFileSync(n.paths.backupEnv, `${readFileSync(n.paths.backupEnv, "utf8")}BACKUP_BUCKET='no-such-bucket'\n`);
        const r = n.run("redis-backup");
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(
            /^redis-backup: upload of \d+ bytes to s3:\/\/no-such-bucket\/redis-prod\/ord-a\/\d{8}T\d{6}Z\.rdb failed\n$/,
        );
    });

    it("lists complete backups, and refuses to restore one whose checksum does not match, touching nothing", async () => {
        const n = node("ord-a", replica);
        const list = n.run("redis-restore", ["--list"]);
        expect(list.status).toBe(0);
        const keys = list.stdout.trim().split("\n");
        expect(keys.length).toBeGreaterThanOrEqual(2);
        // A tampered copy under a later key, with the checksum of the real one beside it.
        const [good] = keys.filter((k) => k.startsWith(`${PREFIX}/ord-a/`));
        const bad = `${PREFIX}/ord-a/29991231T235959Z.rdb`;
        const tampered = join(work, "tampered.rdb");
        writeFileSync(tampered, "REDIS0009 not the backup");
        expect(s3cmd("put", tampered, `s3://${BUCKET}/${bad}`).status).toBe(0);
        expect(s3cmd("cp", `s3://${BUCKET}/${good}.sha256`, `s3://${BUCKET}/${bad}.sha256`).status).toBe(0);
        const r = n.run("redis-restore");
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(
            /^redis-restore: checksum mismatch for redis-prod\/ord-a\/29991231T235959Z\.rdb: SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}: refusing to restore\n$/,
        );
        expect(await client(replica).config("GET", "replica-priority")).toEqual(["replica-priority", "100"]);
        expect(s3cmd("del", `s3://${BUCKET}/${bad}`, `s3://${BUCKET}/${bad}.sha256`).status).toBe(0);
    });

    it("restores the latest backup into the running cluster after FLUSHALL: every key back on every node, same master", async () => {
        const m = client(master);
        await m.flushall();
        for (const n of [replica, other]) {
            const c = client(n);
            await waitFor("FLUSHALL to replicate", async () => (await c.dbsize()) === 0);
        }
        // Where no systemd runs Redis: stop and start the loopback replica by hand (pid file, killed at the end).
        const conf = join(cluster.dir, `redis-${String(replica.port)}`, "redis.conf");
        const pidfile = join(work, "replica.pid");
        cleanups.push(() => {
            if (existsSync(pidfile)) spawnSync("kill", [readFileSync(pidfile, "utf8").trim()]);
        });
        const n = node("ord-a", replica);
        const started = Date.now();
        const r = n.run("redis-restore", [], {
            REDISCLI_AUTH: cluster.password,
            REDIS_STOP_CMD: `redis-cli --no-auth-warning -p ${String(replica.port)} SHUTDOWN NOSAVE || true`,
            REDIS_START_CMD: `redis-server ${conf} --daemonize yes --pidfile ${pidfile}`,
            RESTORE_RUN_AS: "",
        });
        process.stdout.write(`restore into the loopback cluster: ${String(Date.now() - started)} ms\n${r.stdout}`);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(/restored redis-prod\/ord-a\/\d{8}T\d{6}Z\.rdb: 2005 keys on master/);
        for (const x of [master, replica, other]) {
            const c = client(x);
            await waitFor("the restored dataset", async () => (await c.dbsize()) === 2005);
            expect(await c.get("k:1999")).toBe("v1999");
            expect(await c.hgetall("h")).toEqual({ a: "1", b: "2" });
            expect(await c.lrange("l", 0, -1)).toEqual(["x", "y", "z"]);
            expect(await c.config("GET", "replica-priority")).toEqual(["replica-priority", "100"]);
        }
        expect((await m.role())[0]).toBe("master");
        const s = new Redis({
            host: cluster.sentinels[0].host,
            port: cluster.sentinels[0].port,
            password: cluster.sentinelPassword,
            lazyConnect: true,
        });
        cleanups.push(() => {
            s.disconnect();
        });
        expect(await s.call("SENTINEL", "get-master-addr-by-name", cluster.masterName)).toEqual([
            master.host,
            String(master.port),
        ]);
    }, 120_000);
});
