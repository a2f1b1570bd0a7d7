import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { PATHS } from "../cloud-init";
import { LabError } from "./errors";
import { agreedMaster, labNode, nodeAt } from "./labCluster";
import { ssh } from "./ssh";
import { loginOptions } from "./probe";
import { labLogin, type LabStack } from "./stack";
import { makeLabBucket, startLabS3 } from "./s3";

/** What `lab backup-drill --json` reports. */
export interface BackupDrillReport {
    stack: string;
    /** The node whose timer's service took the backup. */
    backupNode: string;
    keys: number;
    keysRestored: number;
    /** Keys whose type or value differs after the restore (missing keys included). */
    mismatches: number;
    datasetBytes: number;
    backupBytes: number;
    /**
     * The backup job's upload and verification of its snapshot, as redis-backup measured it (`transfer_ms`: the
     * SHA-256, the upload of the RDB and its checksum, the read-back), the mean of two runs of the real service timed
     * around the plain put. BGSAVE is not in it: the plain put uploads a file that is already there.
     */
    backupMs: number;
    /** Where the first run's time went: BGSAVE, the SHA-256, the upload, the read-back, `transfer` and the whole script. */
    backupPhasesMs: BackupPhases;
    /** Both runs of `systemctl start redis-ha-backup.service`: the whole unit (placement and BGSAVE too) and its phases. */
    backupRuns: { serviceMs: number; phasesMs: BackupPhases }[];
    /**
     * A plain `s3cmd put` of the first run's RDB (s3cmd's default 15 MiB parts) from the same node, with the same
     * s3cmd configuration, run between the two backups as a transient unit with the backup unit's Nice and I/O
     * scheduling.
     */
    rawUploadMs: number;
    /** The same `s3cmd put` in one request (as the backup's rclone sends an RDB up to 1 GiB), after the second run. */
    rawUploadSameOptionsMs: number;
    /** rawUploadMs / backupMs: the backup's throughput as a fraction of the plain put's (the target is 0.8). */
    throughputRatio: number;
    restoreMs: number;
    /** The object in the bucket matched its .sha256 (the restore verified it before loading it). */
    checksumOk: boolean;
    /** A new cluster booted with `backup.seedFrom` naming this backup; absent with `--skip-seed`. */
    seed?: SeedReport;
    correct: boolean;
}

/** What redis-backup's ok line reports, in ms. */
export interface BackupPhases {
    bgsave: number;
    sha256: number;
    upload: number;
    verify: number;
    /** From the snapshot on disk to a verified RDB and checksum in the bucket (SHA-256, upload, read-back). */
    transfer: number;
    total: number;
}

/** The second restore case: a new cluster whose first master loads the backup before it takes writes. */
export interface SeedReport {
    /** `backup.seedFrom` of the new cluster. */
    seedFrom: string;
    /** Keys on the new cluster's master once it answers. */
    keysSeeded: number;
    mismatches: number;
    /** Every Redis node of the new cluster holds every key. */
    replicasInSync: boolean;
    /** From `down` of the old cluster until the new one's master and replicas hold every key (boot included). */
    seedMs: number;
    /** What redis-seed printed on the first master. */
    seedLog: string;
}

export interface BackupDrillOptions {
    /** Boots a new cluster of the same stack with `backup.seedFrom` set (the lab's `up`); omitted: no seed phase. */
    reseed?: (seedFrom: string) => Promise<LabStack>;
}

type Expected =
    | { type: "string"; value: Buffer }
    | { type: "hash"; value: Record<string, string> }
    | { type: "list"; value: string[] }
    | { type: "set"; value: string[] }
    | { type: "zset"; value: string[] };

/** About `mb` MiB of incompressible data in strings, hashes, lists, sets and sorted sets, kept here to compare. */
function dataset(mb: number): Map<string, Expected> {
    const out = new Map<string, Expected>();
    const hex = (n: number) => randomBytes(n / 2).toString("hex");
    const strings = Math.floor((mb * 0.8 * 1024) / 4);
    for (let i = 0; i < strings; i++) out.set(`drill:s:${String(i)}`, { type: "string", value: randomBytes(4096) });
    const groups = Math.floor((mb * 0.05 * 1024) / 10);
    for (let i = 0; i < groups; i++) {
        const fields: Record<string, string> = {};
        for (let f = 0; f < 10; f++) fields[`f${String(f)}`] = hex(1024);
        out.set(`drill:h:${String(i)}`, { type: "hash", value: fields });
        out.set(`drill:l:${String(i)}`, { type: "list", value: Array.from({ length: 10 }, () => hex(1024)) });
        out.set(`drill:t:${String(i)}`, { type: "set", value: Array.from({ length: 10 }, () => hex(1024)).sort() });
        out.set(`drill:z:${String(i)}`, { type: "zset", value: Array.from({ length: 10 }, () => hex(1024)) });
    }
    return out;
}

async function write(r: Redis, data: Map<string, Expected>): Promise<void> {
    let p = r.pipeline();
    let n = 0;
    for (const [k, e] of data) {
        if (e.type === "string") p.set(k, e.value);
        else if (e.type === "hash") p.hset(k, e.value);
        else if (e.type === "list") p.rpush(k, ...e.value);
        else if (e.type === "set") p.sadd(k, ...e.value);
        else p.zadd(k, ...e.value.flatMap((m, i) => [i, m]));
        if (++n % 500 === 0) {
            await p.exec();
            p = r.pipeline();
        }
    }
    await p.exec();
}

async function mismatches(r: Redis, data: Map<string, Expected>): Promise<number> {
    let bad = 0;
    const keys = [...data.keys()];
    for (let i = 0; i < keys.length; i += 500) {
        const chunk = keys.slice(i, i + 500);
        const p = r.pipeline();
        for (const k of chunk) {
            const e = data.get(k);
            if (e?.type === "string") p.getBuffer(k);
            else if (e?.type === "hash") p.hgetall(k);
            else if (e?.type === "list") p.lrange(k, 0, -1);
            else if (e?.type === "set") p.smembers(k);
            else p.zrange(k, 0, -1);
        }
        const replies = (await p.exec()) ?? [];
        chunk.forEach((k, j) => {
            const [err, got] = replies[j] ?? [new Error("no reply"), null];
            const e = data.get(k);
            if (err || !e) {
                bad++;
                return;
            }
            // Sets and hashes have no order (a hash above the listpack limits is a hash table): compare them sorted.
            const sortedEntries = (h: unknown) => JSON.stringify(Object.entries(h as object).sort());
            const same =
                e.type === "string"
                    ? Buffer.isBuffer(got) && got.equals(e.value)
                    : e.type === "set"
                      ? JSON.stringify([...(got as string[])].sort()) === JSON.stringify(e.value)
                      : e.type === "hash"
                        ? sortedEntries(got) === sortedEntries(e.value)
                        : JSON.stringify(got) === JSON.stringify(e.value);
            if (!same) bad++;
        });
    }
    return bad;
}

/**
 * The `backup-restore` drill on a lab stack booted with backups on: on the master the Sentinels name, emptied first,
 * write a known dataset (about `mb` MiB, keys of five types), run the real timer's service on the first backup node,
 * time a plain `s3cmd put` of the same RDB, FLUSHALL through the master, restore with the real `redis-restore`, and
 * compare every key.
 */
export async function backupDrill(
    s: LabStack,
    mb: number,
    log: (m: string) => void,
    opts: BackupDrillOptions = {},
): Promise<BackupDrillReport> {
    const backupNode = s.topology.backup.nodes.at(0);
    if (!s.topology.backup.enabled || backupNode === undefined)
        throw new LabError("the stack is not up with backups on; run: npm run lab -- up --stack <stack> --backup");
    // Stays up through the seed phase: its socket is bound to the host's lab address, which the new cluster's network
    // gives back.
    const s3 = await startLabS3(s.network.hostAddress);
    const onNode = async (node: string, command: string, timeoutMs = 600_000) => {
        const r = await ssh(s, node, [command], timeoutMs);
        if (r.code !== 0) throw new LabError(`${command} failed on ${node}`, r.stdout + r.stderr);
        return r.stdout;
    };
    try {
        const bucket = (await onNode(backupNode, `. ${PATHS.backupEnv}; echo "$BACKUP_BUCKET"`)).trim();
        await makeLabBucket(s.network.hostAddress, bucket);
        // The master the Sentinels name, not the preferred one: the drill may run on a lab whose failover drills
        // just moved mastership.
        const masterAddress = await agreedMaster(s);
        if (masterAddress === undefined) throw new LabError("the Sentinels do not agree on a master");
        const masterNode = nodeAt(s, masterAddress);
        const masterName = masterNode.name;
        const master = new Redis({
            host: masterNode.address,
            port: s.topology.ports.redis,
            ...loginOptions(labLogin(s, "redis")),
            lazyConnect: true,
        });
        try {
            const data = dataset(mb);
            // Only the drill's keys: a lab that ran other drills holds their writers' keys too.
            await master.flushall();
            log(`writing ${String(data.size)} keys (about ${String(mb)} MiB) to ${masterName}`);
            await write(master, data);
            const datasetBytes = Number(/used_memory_dataset:(\d+)/.exec(await master.info("memory"))?.[1] ?? 0);
            // Every replica holds it before the backup (the backup node backs up what it has).
            await onNode(
                backupNode,
                `for i in $(seq 600); do [ "$(. ${PATHS.scriptsDir}/lib.sh; rcli 127.0.0.1 "$REDIS_PORT" DBSIZE)" = ${String(data.size)} ] && exit 0; sleep 0.1; done; exit 1`,
            );

            // The dataset just written grew every node's AOF past auto-aof-rewrite's threshold: let the backup node's
            // rewrite finish first, or the backup's BGSAVE SCHEDULE waits for it and the drill times the rewrite.
            await onNode(
                backupNode,
                `. ${PATHS.scriptsDir}/lib.sh; for i in $(seq 1200); do p=$(rcli 127.0.0.1 "$REDIS_PORT" INFO persistence | tr -d '\\r'); ` +
                    `if [ -n "$p" ] && ! printf '%s\\n' "$p" | grep -qE '^(aof_rewrite_in_progress|aof_rewrite_scheduled|rdb_bgsave_in_progress):1'; ` +
                    `then exit 0; fi; sleep 0.1; done; exit 1`,
            );

            // Every duration is measured on the node (no SSH in it), the same way for the backup and the plain put.
            const timed = async (command: string) =>
                Number(
                    (
                        await onNode(
                            backupNode,
                            `t0=$(date +%s%3N); ${command} >/dev/null; echo $(($(date +%s%3N) - t0))`,
                        )
                    ).trim(),
                );
            // The real service, twice, with the plain put between them: the three back to back on the same node.
            const runBackup = async () => {
                log(`backup: systemctl start redis-ha-backup.service on ${backupNode}`);
                const serviceMs = await timed("systemctl start redis-ha-backup.service");
                const journal = await onNode(
                    backupNode,
                    "journalctl -u redis-ha-backup.service -o cat --no-pager | grep 'redis-backup: ok' | tail -n 1",
                );
                log(journal.trim());
                const phase = (name: string) => Number(new RegExp(` ${name}_ms=(\\d+)`).exec(journal)?.[1] ?? NaN);
                const phasesMs: BackupPhases = {
                    bgsave: phase("bgsave"),
                    sha256: phase("sha256"),
                    upload: phase("upload"),
                    verify: phase("verify"),
                    transfer: phase("transfer"),
                    total: phase("total"),
                };
                return { journal, serviceMs, phasesMs };
            };
            // The plain put runs as the backup does: a transient unit with the backup unit's Nice and I/O scheduling
            // (on a busy node a nice 10 upload against a nice 0 one would measure the scheduler, not the upload),
            // timed inside the unit as redis-backup times its own phases.
            const unitLimits = await Promise.all(
                ["Nice", "IOSchedulingClass", "IOSchedulingPriority"].map(
                    async (p) =>
                        `-p ${p}=${(await onNode(backupNode, `systemctl show -p ${p} --value redis-ha-backup.service`)).trim()}`,
                ),
            );
            const raw = "/var/lib/redis/raw-upload.rdb";
            const put = async (options: string) =>
                Number(
                    (
                        await onNode(
                            backupNode,
                            `systemd-run --wait --pipe --quiet --collect ${unitLimits.join(" ")} /bin/sh -c ` +
                                `'t0=$(date +%s%3N); s3cmd -c ${PATHS.backupS3cfg} --no-progress --acl-private ${options} ` +
                                `put ${raw} s3://${bucket}/raw-upload-test >/dev/null && echo $(($(date +%s%3N) - t0))'`,
                        )
                    ).trim(),
                );

            const first = await runBackup();
            // The snapshot the backup took, hard-linked (not copied: no time of its own), put plainly.
            await onNode(backupNode, `ln -f /var/lib/redis/dump.rdb ${raw}`);
            const rawUploadMs = await put("");
            const second = await runBackup();
            const rawUploadSameOptionsMs = await put("--multipart-chunk-size-mb=1024");
            await onNode(
                backupNode,
                `rm -f ${raw}; s3cmd -c ${PATHS.backupS3cfg} --no-progress del s3://${bucket}/raw-upload-test`,
            );
            const journal = second.journal;
            const backupBytes = Number(/ size=(\d+)/.exec(journal)?.[1] ?? NaN);
            const backupUri = /redis-backup: ok (s3:\/\/\S+\.rdb) /.exec(journal)?.[1];
            const backupRuns = [first, second].map(({ serviceMs, phasesMs }) => ({ serviceMs, phasesMs }));
            const backupMs = Math.round((first.phasesMs.transfer + second.phasesMs.transfer) / 2);
            const throughputRatio = Number((rawUploadMs / backupMs).toFixed(2));
            log(
                `backup upload and verification ${String(first.phasesMs.transfer)} and ${String(second.phasesMs.transfer)} ms ` +
                    `around a plain s3cmd put of ${String(rawUploadMs)} ms: ${String(throughputRatio)} of its throughput ` +
                    `(in one request ${String(rawUploadSameOptionsMs)} ms)`,
            );

            log(`FLUSHALL on ${masterName}`);
            await master.flushall();
            await onNode(
                backupNode,
                `for i in $(seq 600); do [ "$(. ${PATHS.scriptsDir}/lib.sh; rcli 127.0.0.1 "$REDIS_PORT" DBSIZE)" = 0 ] && exit 0; sleep 0.1; done; exit 1`,
            );

            log(`restore: redis-restore on ${backupNode}`);
            const t0 = Date.now();
            const restored = await onNode(backupNode, `${PATHS.scriptsDir}/redis-restore`);
            const restoreMs = Date.now() - t0;
            log(restored.trim());
            const checksumOk = /checksum ok/.test(restored);
            const keysRestored = await master.dbsize();
            const bad = await mismatches(master, data);
            master.disconnect();
            if (opts.reseed && !backupUri)
                throw new LabError("the backup's log line names no s3:// key to seed from", journal);
            const seed = opts.reseed && backupUri ? await seedPhase(opts.reseed, backupUri, data, log) : undefined;
            return {
                stack: s.stack,
                backupNode,
                keys: data.size,
                keysRestored,
                mismatches: bad,
                datasetBytes,
                backupBytes,
                backupMs,
                backupPhasesMs: first.phasesMs,
                backupRuns,
                rawUploadMs,
                rawUploadSameOptionsMs,
                throughputRatio,
                restoreMs,
                checksumOk,
                ...(seed ? { seed } : {}),
                correct:
                    bad === 0 &&
                    checksumOk &&
                    keysRestored === data.size &&
                    (seed === undefined ||
                        (seed.mismatches === 0 && seed.keysSeeded === data.size && seed.replicasInSync)),
            };
        } finally {
            master.disconnect();
        }
    } finally {
        await s3.stop();
    }
}

/** DBSIZE of Redis on `node`, asked on the node itself. */
async function dbsizeOn(s: LabStack, node: string): Promise<number> {
    const r = await ssh(
        s,
        node,
        // The node's own lib.sh: its login (TLS and admin, or the shared password), never in argv.
        [`. ${PATHS.scriptsDir}/lib.sh && rcli 127.0.0.1 "$REDIS_PORT" DBSIZE`],
        30_000,
    );
    return Number(r.stdout.trim());
}

/**
 * The new-cluster case: the old cluster goes, a new one of the same stack boots with `backup.seedFrom` naming the
 * backup, and its first master must hold every key (compared one by one) and every replica the same count.
 */
async function seedPhase(
    reseed: (seedFrom: string) => Promise<LabStack>,
    seedFrom: string,
    data: Map<string, Expected>,
    log: (m: string) => void,
): Promise<SeedReport> {
    log(`new cluster with backup.seedFrom ${seedFrom}`);
    const t0 = Date.now();
    const s = await reseed(seedFrom);
    const redisNodes = s.topology.nodes.filter((n) => n.runsRedis).map((n) => n.name);
    const deadline = Date.now() + 300_000;
    let sizes: number[];
    for (;;) {
        sizes = await Promise.all(redisNodes.map((n) => dbsizeOn(s, n)));
        if (sizes.every((n) => n === data.size) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 500));
    }
    const seedMs = Date.now() - t0;
    const first = s.topology.preferredMaster;
    const seedLog = (
        await ssh(s, first, ["journalctl -u redis-ha-seed.service -o cat --no-pager | grep redis-seed:"], 30_000)
    ).stdout;
    log(seedLog.trim());
    const master = new Redis({
        host: labNode(s, first).address,
        port: s.topology.ports.redis,
        ...loginOptions(labLogin(s, "redis")),
        lazyConnect: true,
    });
    try {
        return {
            seedFrom,
            keysSeeded: await master.dbsize(),
            mismatches: await mismatches(master, data),
            replicasInSync: sizes.every((n) => n === data.size),
            seedMs,
            seedLog: seedLog.trim(),
        };
    } finally {
        master.disconnect();
    }
}
