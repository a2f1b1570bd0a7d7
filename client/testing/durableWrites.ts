import type Redis from "ioredis";
import type { SentinelClient } from "../client";
import type { Durability } from "../durableWrite";

/**
 * The one durable-write load and read-back that the tests, the benchmark and the lab drill use to
 * count acknowledged writes and check that none was lost. Not part of the client's public API.
 */

/** One write the client reported acknowledged (its `durableWrite` resolved). */
export interface Ack {
    readonly key: string;
    /** Wall-clock time of the acknowledgement, ms. */
    readonly at: number;
}

export interface DurableWriteLoadOptions {
    /** Keys are `<prefix>:<n>`, each written once, with the key itself as the value. */
    readonly prefix: string;
    /** Concurrent loops, each one write at a time. @default 1 */
    readonly writers?: number;
    /** Declared idempotent (a `SET` of a fresh key is): re-sent after an unknown outcome. @default false */
    readonly idempotent?: boolean;
    /** Which replicas must confirm. @default the client's ("attached") */
    readonly durability?: Durability;
    /** `WAIT` replicas (the least, or with `"count"` the number). @default 1 */
    readonly replicas?: number;
    /** `WAIT` timeout per round, ms. @default 200 */
    readonly timeoutMs?: number;
    /** Deadline of each call, ms. @default the client's */
    readonly deadlineMs?: number;
    /** Pause after an error, so a loop does not spin on errors returned at once (breaker open). @default 1 */
    readonly pauseAfterErrorMs?: number;
}

export interface DurableWriteLoad {
    /** Acknowledged writes so far, in order. */
    readonly acks: Ack[];
    /** Errors the callers got, in order. */
    readonly errors: Array<{ key: string; error: Error }>;
    /** Stops the loops after their current write. */
    stop(): Promise<void>;
}

/** Starts `writers` loops of durable `SET key key` + `WAIT`, with unique keys. */
export function startDurableWrites(client: SentinelClient, options: DurableWriteLoadOptions): DurableWriteLoad {
    const { prefix, writers = 1, idempotent = false, durability, replicas = 1, timeoutMs = 200, deadlineMs } = options;
    const pauseMs = options.pauseAfterErrorMs ?? 1;
    const acks: Ack[] = [];
    const errors: Array<{ key: string; error: Error }> = [];
    let stopped = false;
    let n = 0;
    const loops = Array.from({ length: writers }, async () => {
        while (!stopped) {
            const key = `${prefix}:${n++}`;
            try {
                await client.durableWrite((p) => p.set(key, key), {
                    durability,
                    replicas,
                    timeoutMs,
                    idempotent,
                    deadlineMs,
                });
                // Resolved means acknowledged as `durability` asks: with "region", by every attached replica while
                // fewer than `replicas` are attached (a region lost): fewer than `replicas` confirmed, and it counts.
                acks.push({ key, at: Date.now() });
            } catch (error) {
                errors.push({ key, error: error as Error });
                if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
            }
        }
    });
    return {
        acks,
        errors,
        async stop() {
            stopped = true;
            await Promise.all(loops);
        },
    };
}

/** Error counts by error name, `:READONLY` appended when the message is a READONLY reply. */
export function errorsByName(errors: ReadonlyArray<{ error: Error }>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { error } of errors) {
        const name = `${error.name}${/READONLY/.test(error.message) ? ":READONLY" : ""}`;
        out[name] = (out[name] ?? 0) + 1;
    }
    return out;
}

/** Batch size of the read-back's `MGET`s. */
const READ_BACK_BATCH = 1000;

/** The keys among `keys` (written with the key as the value) that `redis` does not hold. */
export async function missingWrites(redis: Redis, keys: readonly string[]): Promise<string[]> {
    const missing: string[] = [];
    for (let i = 0; i < keys.length; i += READ_BACK_BATCH) {
        const chunk = keys.slice(i, i + READ_BACK_BATCH);
        const values = await redis.mget(...chunk);
        chunk.forEach((k, j) => {
            if (values[j] !== k) missing.push(k);
        });
    }
    return missing;
}

/** What a loop of non-idempotent durable `INCR`s saw. */
export interface CounterReport {
    readonly acked: number;
    readonly errors: Error[];
}

/**
 * One loop of durable `INCR key` (not idempotent: never re-sent after an unknown outcome). Checks
 * that nothing is applied twice: acked ≤ counter ≤ acked + errors.
 */
export function startCounter(
    client: SentinelClient,
    key: string,
    deadlineMs?: number,
): { stop(): Promise<CounterReport> } {
    const run = { stopped: false };
    let acked = 0;
    const errors: Error[] = [];
    const loop = (async () => {
        while (!run.stopped) {
            try {
                await client.durableWrite((p) => p.incr(key), { replicas: 1, timeoutMs: 200, deadlineMs });
                acked++;
            } catch (error) {
                errors.push(error as Error);
            }
        }
    })();
    return {
        async stop() {
            run.stopped = true;
            await loop;
            return { acked, errors };
        },
    };
}
