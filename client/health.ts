import type { IncomingMessage, ServerResponse } from "node:http";
import Redis from "ioredis";
import type { FailoverEvent } from "./failoverWatcher";
import { probeConnectionOptions } from "./ioredisOptions";
import type { ResolvedOptions } from "./options";
import type { BreakerState } from "./policies";

/** One Sentinel as seen by a health probe. */
export interface SentinelHealth {
    readonly address: string;
    readonly region?: string;
    readonly reachable: boolean;
    readonly pingMs?: number;
    /** The master this Sentinel names (`SENTINEL GET-MASTER-ADDR-BY-NAME`), `host:port`. */
    readonly master?: string | null;
    readonly error?: string;
}

/** The JSON body of the health endpoint. */
export interface HealthReport {
    /** `"ok"`: master reachable and breaker not open. `"down"`: otherwise (HTTP 503). */
    readonly status: "ok" | "down";
    readonly httpStatus: 200 | 503;
    readonly masterName: string;
    readonly region?: string;
    readonly master: {
        /** `host:port` the client's master connection is connected to (null if never connected). */
        readonly address: string | null;
        /** Connection state ("ready", "reconnecting", ..., or "fenced (failover in progress)"). */
        readonly connection: string;
        /** Role the server reports (`ROLE`); anything but "master" means the client is on a demoted node. */
        readonly role: string | null;
        readonly pingMs: number | null;
        readonly epoch: number;
        readonly error?: string;
    };
    readonly replica?: { readonly address: string | null; readonly connection: string };
    readonly sentinels: {
        readonly reachable: number;
        readonly total: number;
        readonly nodes: readonly SentinelHealth[];
    };
    readonly breaker: BreakerState;
    readonly lastFailover: {
        readonly at: string;
        readonly from: string | null;
        readonly to: string;
        readonly source: string;
    } | null;
    readonly checkedAt: string;
}

/** What `collectHealth` needs from the client. */
export interface HealthSource {
    readonly options: ResolvedOptions;
    readonly master: {
        readonly redis: Redis;
        readonly address: string | null;
        readonly epoch: number;
        readonly statusText: string;
        isReady(): boolean;
    };
    readonly replica?: { readonly redis: Redis; readonly address: string | null };
    readonly breakerState: BreakerState;
    readonly lastFailover: FailoverEvent | null;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
        p,
        new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
                reject(new Error(`${what} timed out after ${ms} ms`));
            }, ms);
        }),
    ]).finally(() => {
        clearTimeout(timer);
    });
}

/** PINGs one Sentinel on a short-lived connection and asks it for the master's address. */
export async function probeSentinel(
    opts: ResolvedOptions,
    s: { host: string; port: number; region?: string },
): Promise<SentinelHealth> {
    const address = `${s.host}:${s.port}`;
    const ms = opts.timeouts.healthMs;
    const conn = new Redis(probeConnectionOptions(s, opts.sentinel, ms));
    conn.on("error", () => undefined);
    try {
        const started = performance.now();
        await withTimeout(conn.connect(), ms, "connect");
        await conn.ping();
        const pingMs = round(performance.now() - started);
        const reply = (await conn.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", opts.masterName)) as
            [string, string] | null;
        return { address, region: s.region, reachable: true, pingMs, master: reply ? `${reply[0]}:${reply[1]}` : null };
    } catch (err) {
        return { address, region: s.region, reachable: false, error: (err as Error).message };
    } finally {
        // disconnect() on an already closed client arms a destroy timer that nothing clears.
        if (conn.status !== "end") conn.disconnect();
    }
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Health of the client: the master connection (address, `ROLE`, PING latency), every Sentinel
 * (reachable n of m), breaker state and the last failover seen. 503 when no master is reachable
 * or the breaker is open. Probes bypass the call policies (no retries, no breaker).
 */
export async function collectHealth(src: HealthSource): Promise<HealthReport> {
    const { options } = src;
    const ms = options.timeouts.healthMs;
    const sentinelsP = Promise.all(options.sentinels.map((s) => probeSentinel(options, s)));

    let role: string | null = null;
    let pingMs: number | null = null;
    let error: string | undefined;
    if (src.master.isReady()) {
        try {
            const started = performance.now();
            await withTimeout(src.master.redis.ping(), ms, "PING");
            pingMs = round(performance.now() - started);
            const r = (await withTimeout(src.master.redis.call("ROLE"), ms, "ROLE")) as unknown[];
            role = String(r[0]);
        } catch (err) {
            error = (err as Error).message;
        }
    } else {
        error = `master connection is ${src.master.statusText}`;
    }
    const nodes = await sentinelsP;
    const masterOk = role === "master" && pingMs !== null;
    const breakerOpen = src.breakerState === "open";
    const ok = masterOk && !breakerOpen;
    const f = src.lastFailover;
    return {
        status: ok ? "ok" : "down",
        httpStatus: ok ? 200 : 503,
        masterName: options.masterName,
        region: options.region,
        master: {
            address: src.master.address,
            connection: src.master.statusText,
            role,
            pingMs,
            epoch: src.master.epoch,
            ...(error !== undefined ? { error } : {}),
        },
        ...(src.replica ? { replica: { address: src.replica.address, connection: src.replica.redis.status } } : {}),
        sentinels: { reachable: nodes.filter((n) => n.reachable).length, total: nodes.length, nodes },
        breaker: src.breakerState,
        lastFailover: f ? { at: f.at.toISOString(), from: f.from, to: f.to, source: f.source } : null,
        checkedAt: new Date().toISOString(),
    };
}

/**
 * A `node:http` request listener answering every request with the health report as JSON:
 * 200 when healthy, 503 otherwise. Mount it on the path you choose.
 */
export function createHealthHandler(
    health: () => Promise<HealthReport>,
): (req: IncomingMessage, res: ServerResponse) => void {
    return (_req, res) => {
        health().then(
            (report) => {
                res.writeHead(report.httpStatus, { "content-type": "application/json", "cache-control": "no-store" });
                res.end(JSON.stringify(report));
            },
            (err: unknown) => {
                res.writeHead(503, { "content-type": "application/json", "cache-control": "no-store" });
                res.end(
                    JSON.stringify({
                        status: "down",
                        httpStatus: 503,
                        error: err instanceof Error ? err.message : String(err),
                    }),
                );
            },
        );
    };
}
