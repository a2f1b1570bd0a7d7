import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { PATHS } from "../cloud-init";
import { LabError } from "./errors";
import { labNode } from "./labCluster";
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
    /** `systemctl start redis-ha-backup.service`: BGSAVE, upload, read-back, move. */
    backupMs: number;
    /** A plain `s3cmd put` of the same RDB from the same node, in the same run. */
    rawUploadMs: number;
    restoreMs: number;
    /** The object in the bucket matched its .sha256 (the restore verified it before loading it). */
    checksumOk: boolean;
    correct: boolean;
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
 * The `backup-restore` drill on a lab stack booted with backups on: write a known dataset (about `mb` MiB, keys of
 * five types), run the real timer's service on the first backup node, time a plain `s3cmd put` of the same RDB,
 * FLUSHALL through the master, restore with the real `redis-restore`, and compare every key.
 */
export async function backupDrill(s: LabStack, mb: number, log: (m: string) => void): Promise<BackupDrillReport> {
    const backupNode = s.topology.backup.nodes.at(0);
    if (!s.topology.backup.enabled || backupNode === undefined)
        throw new LabError("the stack is not up with backups on; run: npm run lab -- up --stack <stack> --backup");
    const s3 = await startLabS3(s.network.hostAddress);
    const onNode = async (node: string, command: string, timeoutMs = 600_000) => {
        const r = await ssh(s, node, [command], timeoutMs);
        if (r.code !== 0) throw new LabError(`${command} failed on ${node}`, r.stdout + r.stderr);
        return r.stdout;
    };
    try {
        const bucket = (await onNode(backupNode, `. ${PATHS.backupEnv}; echo "$BACKUP_BUCKET"`)).trim();
        await makeLabBucket(s.network.hostAddress, bucket);
        const masterName = s.topology.preferredMaster;
        const master = new Redis({
            host: labNode(s, masterName).address,
            port: s.topology.ports.redis,
            ...loginOptions(labLogin(s, "redis")),
            lazyConnect: true,
        });
        try {
            const data = dataset(mb);
            log(`writing ${String(data.size)} keys (about ${String(mb)} MiB) to ${masterName}`);
            await write(master, data);
            const datasetBytes = Number(/used_memory_dataset:(\d+)/.exec(await master.info("memory"))?.[1] ?? 0);
            // Every replica holds it before the backup (the backup node backs up what it has).
            await onNode(
                backupNode,
                `for i in $(seq 600); do [ "$(. ${PATHS.scriptsDir}/lib.sh; rcli 127.0.0.1 "$REDIS_PORT" DBSIZE)" = ${String(data.size)} ] && exit 0; sleep 0.1; done; exit 1`,
            );

            log(`backup: systemctl start redis-ha-backup.service on ${backupNode}`);
            let t0 = Date.now();
            await onNode(backupNode, "systemctl start redis-ha-backup.service");
            const backupMs = Date.now() - t0;
            const journal = await onNode(
                backupNode,
                "journalctl -u redis-ha-backup.service -o cat --no-pager | grep 'redis-backup: ok' | tail -n 1",
            );
            const backupBytes = Number(/ size=(\d+)/.exec(journal)?.[1] ?? NaN);
            log(journal.trim());

            t0 = Date.now();
            await onNode(
                backupNode,
                `cp /var/lib/redis/dump.rdb /var/lib/redis/raw-upload.rdb && s3cmd -c ${PATHS.backupS3cfg} --no-progress --acl-private put /var/lib/redis/raw-upload.rdb s3://${bucket}/raw-upload-test >/dev/null; rc=$?; rm -f /var/lib/redis/raw-upload.rdb; exit $rc`,
            );
            const rawUploadMs = Date.now() - t0;

            log(`FLUSHALL on ${masterName}`);
            await master.flushall();
            await onNode(
                backupNode,
                `for i in $(seq 600); do [ "$(. ${PATHS.scriptsDir}/lib.sh; rcli 127.0.0.1 "$REDIS_PORT" DBSIZE)" = 0 ] && exit 0; sleep 0.1; done; exit 1`,
            );

            log(`restore: redis-restore on ${backupNode}`);
            t0 = Date.now();
            const restored = await onNode(backupNode, `${PATHS.scriptsDir}/redis-restore`);
            const restoreMs = Date.now() - t0;
            log(restored.trim());
            const checksumOk = /checksum ok/.test(restored);
            const keysRestored = await master.dbsize();
            const bad = await mismatches(master, data);
            return {
                stack: s.stack,
                backupNode,
                keys: data.size,
                keysRestored,
                mismatches: bad,
                datasetBytes,
                backupBytes,
                backupMs,
                rawUploadMs,
                restoreMs,
                checksumOk,
                correct: bad === 0 && checksumOk && keysRestored === data.size,
            };
        } finally {
            master.disconnect();
        }
    } finally {
        await s3.stop();
    }
}
