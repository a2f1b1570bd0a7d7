import type { ConnectionOptions } from "node:tls";
import type { Registry } from "prom-client";
import { InvalidOptionsError, OptionProblem } from "./errors";

/** A host and port. */
export interface Endpoint {
    readonly host: string;
    /** @default 26379 for Sentinels, 6379 for Redis nodes */
    readonly port?: number;
}

/** A Sentinel, optionally tagged with its region so the client can try its own region first. */
export interface SentinelEndpoint extends Endpoint {
    /** Region the Sentinel runs in (e.g. `"eu-central"`). Sentinels in `region` are tried first. */
    readonly region?: string;
}

/** Credentials and TLS for one kind of server (Redis nodes, or Sentinels). */
export interface ServerAuth {
    /** ACL user. Leave unset for the `default` user. */
    readonly username?: string;
    /** Password (`requirepass`, or the ACL user's password). */
    readonly password?: string;
    /**
     * TLS options (`node:tls` `ConnectionOptions`, e.g. `{ ca, servername }`), or `true` for TLS with
     * the system CAs. Unset: plain TCP.
     * @link https://nodejs.org/api/tls.html#tlsconnectoptions-callback
     */
    readonly tls?: ConnectionOptions | true;
}

/** Timeouts, all in milliseconds. */
export interface TimeoutOptions {
    /**
     * TCP (and TLS) connect timeout for Redis and Sentinel sockets. A dead host otherwise holds a
     * reconnect attempt for ioredis' 10 s default.
     * @default 2000
     */
    readonly connectMs?: number;
    /**
     * Per-command timeout (ioredis `commandTimeout`). A command without a reply by then is rejected
     * with an "outcome unknown" error, and when the socket has received nothing for that long the
     * client drops it and asks Sentinel again (hung-master detection: a SIGSTOPped master keeps its
     * sockets open). Must exceed the `WAIT` timeout of durable writes. Blocking commands (`BLPOP`)
     * longer than this are not supported on this client.
     * @default 2000
     */
    readonly commandMs?: number;
    /**
     * Timeout of each command sent to a Sentinel while resolving the master (ioredis
     * `sentinelCommandTimeout`; unset in ioredis, so a hung Sentinel stalls master resolution).
     * @default 1000
     */
    readonly sentinelCommandMs?: number;
    /**
     * How long a closing socket may wait for the server's FIN before it is destroyed (ioredis
     * `disconnectTimeout`). A hung master never answers the FIN, so this is added to every failover
     * away from a hung master (measured: ~2 s of the 8.5 s with ioredis' 2000 ms default).
     * @default 200
     */
    readonly disconnectMs?: number;
    /**
     * TCP keep-alive initial delay for idle sockets (ioredis `keepAlive`; 0 = off in ioredis 5).
     * Catches dead peers (host loss, NAT drop) on connections that carry no commands.
     * @default 5000
     */
    readonly keepAliveMs?: number;
    /**
     * Default deadline for a whole call, retries and waiting for a master included. It must cover a
     * failover (Sentinel's `down-after-milliseconds` plus election, ~1–2 s more) for calls to ride
     * through one without an error. Per call: `deadlineMs` option.
     * @default 10000
     */
    readonly deadlineMs?: number;
    /**
     * When a Sentinel starts a failover of the master this client is on (`+try-failover`), the
     * client stops sending to it until it has reconnected to the new master, or for at most this
     * long (a failover that was aborted). Sentinel lets the old master take writes while it promotes
     * a replica (measured: ~1 s during `SENTINEL FAILOVER`), and those writes are lost even when a
     * replica acknowledged them.
     * @default 5000
     */
    readonly failoverFenceMs?: number;
    /**
     * Timeout of each health probe (PING of the master and of every Sentinel).
     * @default 500
     */
    readonly healthMs?: number;
}

/** Backoff between reconnect attempts and between retries of a call. */
export interface RetryOptions {
    /**
     * First retry delay of a call; later ones grow exponentially with decorrelated jitter.
     * @default 20
     */
    readonly initialDelayMs?: number;
    /** @default 500 */
    readonly maxDelayMs?: number;
    /**
     * Maximum retries of one call (the deadline usually ends it first).
     * @default 50
     */
    readonly maxAttempts?: number;
    /**
     * Cap of ioredis' reconnect delay (its `retryStrategy`). Each reconnect asks Sentinel afresh,
     * so a small cap finds a new master soon after `+switch-master`. ioredis never gives up.
     * @default 500
     */
    readonly reconnectMaxDelayMs?: number;
}

/** Circuit breaker (cockatiel `ConsecutiveBreaker`). */
export interface BreakerOptions {
    /**
     * Open after this many calls in a row failed because Redis was unavailable (deadline passed with
     * no master, or retries exhausted on connection errors). Command errors (`WRONGTYPE`) and
     * "outcome unknown" errors of non-idempotent calls do not count.
     * @default 5
     */
    readonly consecutiveFailures?: number;
    /**
     * Time the breaker stays open before letting one probe call through (half-open).
     * @default 5000
     */
    readonly halfOpenAfterMs?: number;
}

/** Bounded in-memory cache behind `readThrough`, used only while Redis is unavailable. */
export interface StaleCacheOptions {
    /** @default 1000 */
    readonly maxEntries?: number;
    /**
     * Values older than this are never served.
     * @default 300000 (5 minutes)
     */
    readonly ttlMs?: number;
}

/** Where and how metrics are registered. */
export interface MetricsOptions {
    /** prom-client registry to register on. @default a new `Registry` (see `client.metricsRegistry`) */
    readonly registry?: Registry;
    /** Metric name prefix. @default "redis_client_" */
    readonly prefix?: string;
}

/** Options of {@link createSentinelClient}. */
export interface SentinelClientOptions {
    /**
     * Sentinels to ask for the master. Order matters: ioredis asks them in turn and moves the one
     * that answered to the front. List the application's own region first (or tag them with
     * `region` and set `region`; they are then sorted own-region-first, order kept otherwise).
     */
    readonly sentinels: readonly SentinelEndpoint[];
    /** Name of the monitored master (`sentinel monitor <name> ...`). */
    readonly masterName: string;
    /** Region this application runs in; orders `sentinels` and labels health output. */
    readonly region?: string;
    /** Credentials and TLS for the Redis nodes. */
    readonly redis?: ServerAuth;
    /** Credentials and TLS for the Sentinels (separate from `redis`). */
    readonly sentinel?: ServerAuth;
    /**
     * Where `read()`/`readThrough()` go by default. `"replica"` opens a second connection to a
     * replica (preferring `localReplicas`) and falls back to the master when no replica is ready.
     * Replica reads may be slightly stale (asynchronous replication).
     * @default "master"
     */
    readonly readFrom?: "master" | "replica";
    /**
     * Replicas in this application's region (addresses as Sentinel reports them), preferred for
     * replica reads; if none is available a random healthy replica is used.
     * @default []
     */
    readonly localReplicas?: readonly Endpoint[];
    readonly timeouts?: TimeoutOptions;
    readonly retry?: RetryOptions;
    readonly breaker?: BreakerOptions;
    /** Options of the stale-value cache, or `false` to disable `readThrough` fallbacks. */
    readonly staleCache?: StaleCacheOptions | false;
    /** Metrics options, or `false` for none. */
    readonly metrics?: MetricsOptions | false;
    /**
     * Name shown in `CLIENT LIST` on Redis (ioredis `connectionName`).
     * @default unset
     */
    readonly connectionName?: string;
    /**
     * Add Sentinels that the configured ones report (`SENTINEL SENTINELS`) to the list (ioredis
     * `updateSentinels`). Turn off when Sentinels announce addresses this client cannot reach.
     * @default true
     */
    readonly updateSentinels?: boolean;
    /**
     * How a failover announced by Sentinel (`+switch-master`) moves the connections.
     *
     * - `"watcher"`: this client subscribes to `+switch-master` on every Sentinel and reconnects a
     *   connection only if it is not already on the announced master (and wakes a connection that is
     *   waiting between reconnect attempts). Every Sentinel publishes its own `+switch-master`, up to
     *   a second or more apart; ioredis' detector reconnects on each copy, so after a failover it
     *   dropped the fresh connection to the new master again (measured here: 1–2 extra reconnects per
     *   failover, each failing the commands in flight as "outcome unknown").
     * - `"ioredis"`: ioredis' own `failoverDetector: true` (the watcher then only reports events).
     * @default "watcher"
     */
    readonly failoverDetection?: "watcher" | "ioredis";
}

/** Options with every default applied. */
export interface ResolvedOptions {
    readonly sentinels: ReadonlyArray<{ host: string; port: number; region?: string }>;
    readonly masterName: string;
    readonly region?: string;
    readonly redis: ServerAuth;
    readonly sentinel: ServerAuth;
    readonly readFrom: "master" | "replica";
    readonly localReplicas: ReadonlyArray<{ host: string; port: number }>;
    readonly timeouts: Required<TimeoutOptions>;
    readonly retry: Required<RetryOptions>;
    readonly breaker: Required<BreakerOptions>;
    readonly staleCache: Required<StaleCacheOptions> | false;
    readonly metrics: MetricsOptions | false;
    readonly connectionName?: string;
    readonly updateSentinels: boolean;
    readonly failoverDetection: "watcher" | "ioredis";
}

export const DEFAULT_TIMEOUTS: Required<TimeoutOptions> = Object.freeze({
    connectMs: 2000,
    commandMs: 2000,
    sentinelCommandMs: 1000,
    disconnectMs: 200,
    keepAliveMs: 5000,
    deadlineMs: 10000,
    failoverFenceMs: 5000,
    healthMs: 500,
});

export const DEFAULT_RETRY: Required<RetryOptions> = Object.freeze({
    initialDelayMs: 20,
    maxDelayMs: 500,
    maxAttempts: 50,
    reconnectMaxDelayMs: 500,
});

export const DEFAULT_BREAKER: Required<BreakerOptions> = Object.freeze({
    consecutiveFailures: 5,
    halfOpenAfterMs: 5000,
});

export const DEFAULT_STALE_CACHE: Required<StaleCacheOptions> = Object.freeze({
    maxEntries: 1000,
    ttlMs: 300_000,
});

function positiveInt(problems: OptionProblem[], path: string, value: unknown, min = 1): void {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
        problems.push({ path, reason: `must be an integer ≥ ${min}, got ${JSON.stringify(value)}` });
    }
}

function checkEndpoint(problems: OptionProblem[], path: string, e: Endpoint | undefined): void {
    if (!e || typeof e !== "object") {
        problems.push({ path, reason: `must be an object { host, port? }, got ${JSON.stringify(e)}` });
        return;
    }
    if (typeof e.host !== "string" || e.host.trim() === "") {
        problems.push({
            path: `${path}.host`,
            reason: `must be a non-empty host name or IP, got ${JSON.stringify(e.host)}`,
        });
    }
    if (e.port !== undefined && (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535)) {
        problems.push({
            path: `${path}.port`,
            reason: `must be an integer port 1–65535, got ${JSON.stringify(e.port)}`,
        });
    }
}

/**
 * Validates `options` and applies defaults. Reports every problem at once in one
 * {@link InvalidOptionsError}, before any socket is opened.
 */
export function resolveOptions(options: SentinelClientOptions): ResolvedOptions {
    const problems: OptionProblem[] = [];
    if (!options || typeof options !== "object") {
        throw new InvalidOptionsError([{ path: "(options)", reason: "must be an object" }]);
    }
    if (!Array.isArray(options.sentinels) || options.sentinels.length === 0) {
        problems.push({
            path: "sentinels",
            reason: "must list at least one Sentinel { host, port }, own region first (e.g. from REDIS_SENTINELS=host:port,host:port)",
        });
    } else {
        options.sentinels.forEach((s, i) => checkEndpoint(problems, `sentinels[${i}]`, s));
        const seen = new Set<string>();
        options.sentinels.forEach((s, i) => {
            const key = `${s?.host}:${s?.port ?? 26379}`;
            if (seen.has(key))
                problems.push({ path: `sentinels[${i}]`, reason: `duplicate Sentinel ${key}; list each once` });
            seen.add(key);
        });
    }
    if (typeof options.masterName !== "string" || !/^[A-Za-z0-9._-]+$/.test(options.masterName)) {
        problems.push({
            path: "masterName",
            reason: `must be the name used in "sentinel monitor <name>" (letters, digits, . _ -), got ${JSON.stringify(options.masterName)}`,
        });
    }
    if (
        options.failoverDetection !== undefined &&
        options.failoverDetection !== "watcher" &&
        options.failoverDetection !== "ioredis"
    ) {
        problems.push({
            path: "failoverDetection",
            reason: `must be "watcher" or "ioredis", got ${JSON.stringify(options.failoverDetection)}`,
        });
    }
    if (options.readFrom !== undefined && options.readFrom !== "master" && options.readFrom !== "replica") {
        problems.push({
            path: "readFrom",
            reason: `must be "master" or "replica", got ${JSON.stringify(options.readFrom)}`,
        });
    }
    (options.localReplicas ?? []).forEach((r, i) => checkEndpoint(problems, `localReplicas[${i}]`, r));

    const timeouts = { ...DEFAULT_TIMEOUTS, ...stripUndefined(options.timeouts) };
    for (const [k, v] of Object.entries(timeouts))
        positiveInt(problems, `timeouts.${k}`, v, k === "keepAliveMs" ? 0 : 1);
    if (timeouts.deadlineMs < timeouts.commandMs) {
        problems.push({
            path: "timeouts.deadlineMs",
            reason: `(${timeouts.deadlineMs}) must be ≥ timeouts.commandMs (${timeouts.commandMs}); a call could never see a command time out and retry`,
        });
    }

    const retry = { ...DEFAULT_RETRY, ...stripUndefined(options.retry) };
    positiveInt(problems, "retry.initialDelayMs", retry.initialDelayMs);
    positiveInt(problems, "retry.maxDelayMs", retry.maxDelayMs);
    positiveInt(problems, "retry.maxAttempts", retry.maxAttempts, 0);
    positiveInt(problems, "retry.reconnectMaxDelayMs", retry.reconnectMaxDelayMs);
    if (retry.maxDelayMs < retry.initialDelayMs) {
        problems.push({
            path: "retry.maxDelayMs",
            reason: `(${retry.maxDelayMs}) must be ≥ retry.initialDelayMs (${retry.initialDelayMs})`,
        });
    }

    const breaker = { ...DEFAULT_BREAKER, ...stripUndefined(options.breaker) };
    positiveInt(problems, "breaker.consecutiveFailures", breaker.consecutiveFailures);
    positiveInt(problems, "breaker.halfOpenAfterMs", breaker.halfOpenAfterMs);

    let staleCache: Required<StaleCacheOptions> | false = false;
    if (options.staleCache !== false) {
        staleCache = { ...DEFAULT_STALE_CACHE, ...stripUndefined(options.staleCache || undefined) };
        positiveInt(problems, "staleCache.maxEntries", staleCache.maxEntries);
        positiveInt(problems, "staleCache.ttlMs", staleCache.ttlMs);
    }
    if (
        options.metrics &&
        options.metrics.prefix !== undefined &&
        !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(options.metrics.prefix)
    ) {
        problems.push({
            path: "metrics.prefix",
            reason: `must match [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus metric names), got ${JSON.stringify(options.metrics.prefix)}`,
        });
    }
    for (const which of ["redis", "sentinel"] as const) {
        const auth = options[which];
        if (auth?.username !== undefined && auth.password === undefined) {
            problems.push({
                path: `${which}.password`,
                reason: `is required when ${which}.username is set (ACL users authenticate with AUTH user password)`,
            });
        }
    }
    if (problems.length > 0) throw new InvalidOptionsError(problems);

    const sentinels = options.sentinels.map((s) => ({ host: s.host, port: s.port ?? 26379, region: s.region }));
    if (options.region !== undefined) {
        // Stable sort: own region first, configured order otherwise.
        sentinels.sort((a, b) => Number(b.region === options.region) - Number(a.region === options.region));
    }
    return {
        sentinels,
        masterName: options.masterName,
        region: options.region,
        redis: options.redis ?? {},
        sentinel: options.sentinel ?? {},
        readFrom: options.readFrom ?? "master",
        localReplicas: (options.localReplicas ?? []).map((r) => ({ host: r.host, port: r.port ?? 6379 })),
        timeouts,
        retry,
        breaker,
        staleCache,
        metrics: options.metrics === false ? false : (options.metrics ?? {}),
        connectionName: options.connectionName,
        updateSentinels: options.updateSentinels ?? true,
        failoverDetection: options.failoverDetection ?? "watcher",
    };
}

function stripUndefined<T extends object>(o: T | undefined): Partial<T> {
    const out: Partial<T> = {};
    if (!o) return out;
    for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
    return out;
}

/**
 * Parses `host:port,host:port` (e.g. `REDIS_SENTINELS`) into endpoints, in order.
 * Bracketed IPv6 (`[::1]:26379`) is accepted.
 */
export function parseEndpointList(text: string, defaultPort = 26379): Endpoint[] {
    return text
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
        .map((s) => {
            const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
            if (!m)
                throw new InvalidOptionsError([
                    { path: "sentinels", reason: `cannot parse ${JSON.stringify(s)} as host:port` },
                ]);
            return { host: m[1]!, port: m[2] ? Number(m[2]) : defaultPort };
        });
}
