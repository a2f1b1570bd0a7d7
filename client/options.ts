import type { ConnectionOptions } from "node:tls";
import type { Registry } from "prom-client";
import { z } from "zod";
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
     * Per-command timeout (one coarse timer per connection, see `commandTimer.ts`; fires up to about
     * 50 ms late, never early). A command without a reply by then is rejected
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
     * Sentinels to ask for the master. The master connection asks all of them at once and follows the
     * master a majority names (list every Sentinel of the stack: the majority is of this list); order
     * decides ties. Replica connections (and `failoverDetection: "ioredis"`) use ioredis' connector,
     * which asks them in turn and moves the one that answered to the front. List the application's own
     * region first (or tag them with `region` and set `region`; they are then sorted own-region-first,
     * order kept otherwise).
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

/** Sentinel's and Redis' standard ports, used when an endpoint gives none. */
export const DEFAULT_SENTINEL_PORT = 26379;
export const DEFAULT_REDIS_PORT = 6379;

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

const got = (v: unknown) => JSON.stringify(v);

/** An integer ≥ `min`, with the documented default when unset. */
const intAtLeast = (min: number, dflt: number) =>
    z
        .any()
        .refine((v) => typeof v === "number" && Number.isInteger(v) && v >= min, {
            error: (iss) => `must be an integer ≥ ${min}, got ${got(iss.input)}`,
        })
        .default(dflt)
        .transform((v) => v as number);

const endpointSchema = z
    .object(
        {
            host: z.any().refine((h) => typeof h === "string" && h.trim() !== "", {
                error: (iss) => `must be a non-empty host name or IP, got ${got(iss.input)}`,
            }),
            port: z
                .any()
                .refine(
                    (p) => p === undefined || (Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535),
                    {
                        error: (iss) => `must be an integer port 1–65535, got ${got(iss.input)}`,
                    },
                )
                .optional(),
            region: z.string().optional(),
        },
        { error: (iss) => `must be an object { host, port? }, got ${got(iss.input)}` },
    )
    .transform((e) => ({ host: e.host as string, port: e.port as number | undefined, region: e.region }));

const authSchema = z
    .object({
        username: z.string().optional(),
        password: z.string().optional(),
        tls: z.custom<ConnectionOptions | true>((v) => v === true || (typeof v === "object" && v !== null)).optional(),
    })
    .optional();

function withDefaults<T extends Record<string, number>>(defaults: T, min: (key: keyof T) => number) {
    const shape = Object.fromEntries(
        Object.entries(defaults).map(([k, v]) => [k, intAtLeast(min(k as keyof T), v)]),
    ) as { [K in keyof T]: ReturnType<typeof intAtLeast> };
    // Unset: every default (prefault parses `{}`, so each key's default applies).
    return z.object(shape).prefault({} as never);
}

const optionsSchema = z.object(
    {
        sentinels: z
            .array(endpointSchema, {
                error: "must list at least one Sentinel { host, port }, own region first (e.g. from REDIS_SENTINELS=host:port,host:port)",
            })
            .min(1, {
                error: "must list at least one Sentinel { host, port }, own region first (e.g. from REDIS_SENTINELS=host:port,host:port)",
            }),
        masterName: z.any().refine((m) => typeof m === "string" && /^[A-Za-z0-9._-]+$/.test(m), {
            error: (iss) =>
                `must be the name used in "sentinel monitor <name>" (letters, digits, . _ -), got ${got(iss.input)}`,
        }),
        region: z.string().optional(),
        redis: authSchema,
        sentinel: authSchema,
        failoverDetection: z
            .enum(["watcher", "ioredis"], {
                error: (iss) => `must be "watcher" or "ioredis", got ${got(iss.input)}`,
            })
            .default("watcher"),
        readFrom: z
            .enum(["master", "replica"], { error: (iss) => `must be "master" or "replica", got ${got(iss.input)}` })
            .default("master"),
        localReplicas: z.array(endpointSchema).default([]),
        timeouts: withDefaults(DEFAULT_TIMEOUTS, (k) => (k === "keepAliveMs" ? 0 : 1)),
        retry: withDefaults(DEFAULT_RETRY, (k) => (k === "maxAttempts" ? 0 : 1)),
        breaker: withDefaults(DEFAULT_BREAKER, () => 1),
        staleCache: z
            .union([z.literal(false), withDefaults(DEFAULT_STALE_CACHE, () => 1)])
            .default({ ...DEFAULT_STALE_CACHE }),
        metrics: z
            .union([
                z.literal(false),
                z.object({
                    registry: z.custom<Registry>((r) => typeof r === "object" && r !== null).optional(),
                    prefix: z
                        .string()
                        .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, {
                            error: (iss) =>
                                `must match [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus metric names), got ${got(iss.input)}`,
                        })
                        .optional(),
                }),
            ])
            .default({}),
        connectionName: z.string().optional(),
        updateSentinels: z.boolean().default(true),
    },
    { error: "must be an object" },
);

/**
 * Checks across options, on the raw input so that they are reported together with every other
 * problem (zod skips refinements of an object whose fields failed).
 */
function crossProblems(o: SentinelClientOptions): OptionProblem[] {
    const problems: OptionProblem[] = [];
    const seen = new Set<string>();
    (Array.isArray(o.sentinels) ? o.sentinels : []).forEach((s: Partial<Endpoint> | undefined, i) => {
        const key = `${String(s?.host)}:${String(s?.port ?? DEFAULT_SENTINEL_PORT)}`;
        if (seen.has(key))
            problems.push({ path: `sentinels[${i}]`, reason: `duplicate Sentinel ${key}; list each once` });
        seen.add(key);
    });
    const t = { ...DEFAULT_TIMEOUTS, ...stripUndefined(o.timeouts) };
    if (t.deadlineMs < t.commandMs) {
        problems.push({
            path: "timeouts.deadlineMs",
            reason: `(${t.deadlineMs}) must be ≥ timeouts.commandMs (${t.commandMs}); a call could never see a command time out and retry`,
        });
    }
    const r = { ...DEFAULT_RETRY, ...stripUndefined(o.retry) };
    if (r.maxDelayMs < r.initialDelayMs) {
        problems.push({
            path: "retry.maxDelayMs",
            reason: `(${r.maxDelayMs}) must be ≥ retry.initialDelayMs (${r.initialDelayMs})`,
        });
    }
    for (const which of ["redis", "sentinel"] as const) {
        const auth = o[which];
        if (auth?.username !== undefined && auth.password === undefined) {
            problems.push({
                path: `${which}.password`,
                reason: `is required when ${which}.username is set (ACL users authenticate with AUTH user password)`,
            });
        }
    }
    return problems;
}

function stripUndefined<T extends object>(o: T | undefined): Partial<T> {
    const out: Partial<T> = {};
    if (!o || typeof o !== "object") return out;
    for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
    return out;
}

/** `a.b[0].c` from a zod issue path. */
function formatPath(path: ReadonlyArray<PropertyKey>): string {
    if (path.length === 0) return "(options)";
    return path.map((k, i) => (typeof k === "number" ? `[${k}]` : `${i === 0 ? "" : "."}${String(k)}`)).join("");
}

/**
 * Validates `options` and applies defaults. Reports every problem at once in one
 * {@link InvalidOptionsError}, before any socket is opened.
 */
export function resolveOptions(options: SentinelClientOptions): ResolvedOptions {
    const parsed = optionsSchema.safeParse(options);
    const problems = parsed.success
        ? []
        : parsed.error.issues.map((issue) => ({ path: formatPath(issue.path), reason: issue.message }));
    const raw: unknown = options; // callers from plain JavaScript may pass anything
    if (typeof raw === "object" && raw !== null) problems.push(...crossProblems(options));
    if (!parsed.success || problems.length > 0) throw new InvalidOptionsError(problems);
    const o = parsed.data;
    const sentinels = o.sentinels.map((s) => ({
        host: s.host,
        port: s.port ?? DEFAULT_SENTINEL_PORT,
        region: s.region,
    }));
    if (o.region !== undefined) {
        // Stable sort: own region first, configured order otherwise.
        sentinels.sort((a, b) => Number(b.region === o.region) - Number(a.region === o.region));
    }
    return {
        sentinels,
        masterName: o.masterName as string,
        region: o.region,
        redis: o.redis ?? {},
        sentinel: o.sentinel ?? {},
        readFrom: o.readFrom,
        localReplicas: o.localReplicas.map((r) => ({ host: r.host, port: r.port ?? DEFAULT_REDIS_PORT })),
        timeouts: o.timeouts,
        retry: o.retry,
        breaker: o.breaker,
        staleCache: o.staleCache,
        metrics: o.metrics,
        connectionName: o.connectionName,
        updateSentinels: o.updateSentinels,
        failoverDetection: o.failoverDetection,
    };
}

/**
 * Parses `host:port,host:port` (e.g. `REDIS_SENTINELS`) into endpoints, in order.
 * Bracketed IPv6 (`[::1]:26379`) is accepted.
 */
export function parseEndpointList(text: string, defaultPort = DEFAULT_SENTINEL_PORT): Endpoint[] {
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
            return { host: m[1], port: m[2] ? Number(m[2]) : defaultPort };
        });
}
