import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type Redis from "ioredis";
import type { ChainableCommander } from "ioredis";
import type { Registry } from "prom-client";
import { classifyError, ErrorClass } from "./classify";
import { ManagedConnection } from "./connection";
import { NotConnectedError } from "./errors";
import {
    DEFAULT_DURABLE_REPLICAS,
    DEFAULT_WAIT_TIMEOUT_MS,
    durableWriteAttempt,
    DurableWriteOptions,
    DurableWriteResult,
} from "./durableWrite";
import { FailoverEvent, FailoverWatcher } from "./failoverWatcher";
import { collectHealth, createHealthHandler, HealthReport } from "./health";
import { CallKind, ClientMetrics } from "./metrics";
import { ResolvedOptions, resolveOptions, SentinelClientOptions } from "./options";
import { BreakerState, CallOptions, CallPolicies, CallState } from "./policies";
import { ReadResult, StaleCache } from "./staleCache";

/** Options of one call (`run`, `read`, `write`, `readThrough`). */
export interface RunOptions {
    /**
     * `"read"` calls are idempotent by default and may go to a replica; `"write"` calls are not
     * idempotent by default and always go to the master.
     * @default "write" for run() and write(), "read" for read() and readThrough()
     */
    readonly kind?: "read" | "write";
    /**
     * Whether sending the call twice is harmless. Decides whether it is retried after an error that
     * leaves the outcome unknown (timeout, connection lost in flight). Errors that prove nothing ran
     * (READONLY, LOADING, MASTERDOWN, NOREPLICAS, not connected) are retried either way; this assumes
     * `fn` sends one command, or one pipeline/transaction, per attempt.
     * @default true for reads, false for writes
     */
    readonly idempotent?: boolean;
    /** Deadline of the whole call, retries included, ms. @default timeouts.deadlineMs */
    readonly deadlineMs?: number;
    /** Reads only: `"replica"` reads from a replica when one is ready. @default options.readFrom */
    readonly readFrom?: "master" | "replica";
}

/** Events of {@link SentinelClient}. */
export interface SentinelClientEvents {
    /** Sentinel announced a new master (or the client reconnected to a different one). */
    failover: [event: FailoverEvent];
    breakerStateChange: [state: BreakerState];
    /** A call is retried after `delayMs`. */
    retry: [info: { errorClass: ErrorClass; attempt: number; delayMs: number; error: unknown }];
    /** The master or replica connection became ready or went down. */
    connectionStateChange: [
        info: {
            role: "master" | "replica";
            state: "ready" | "down";
            address: string | null;
            epoch: number;
            reason?: string;
        },
    ];
    /** `readThrough` served a stale value because Redis was unavailable. */
    staleServed: [info: { key: string; ageMs: number; errorClass: ErrorClass }];
    /** ioredis connection errors (refused, Sentinel unreachable): expected during failovers. */
    connectionError: [info: { role: "master" | "replica"; error: Error }];
}

/**
 * A Redis client for a Sentinel-managed master: see {@link createSentinelClient}.
 */
export class SentinelClient extends EventEmitter<SentinelClientEvents> {
    readonly options: ResolvedOptions;
    /** The managed master connection. */
    readonly master: ManagedConnection;
    /** The managed replica connection, when `readFrom` is `"replica"`. */
    readonly replica: ManagedConnection | undefined;
    /** Registry holding this client's metrics (undefined with `metrics: false`). */
    readonly metricsRegistry: Registry | undefined;
    /** Last master switch seen. */
    lastFailover: FailoverEvent | null = null;

    private readonly policies: CallPolicies;
    private readonly metrics: ClientMetrics | undefined;
    /** Metrics recorders of each kind of call (undefined with `metrics: false`). */
    private readonly settled: Record<CallKind, SettledRecorder | undefined>;
    /** Call options of `read`/`write`/`run` called without options: the usual case, no object per call. */
    private readonly defaultCalls: Record<"read" | "write", CallOptions>;
    private readonly cache: StaleCache | undefined;
    private readonly watcher: FailoverWatcher;
    private closed = false;
    private probeTimer: NodeJS.Timeout | undefined;

    constructor(options: SentinelClientOptions) {
        super();
        const opts = (this.options = resolveOptions(options));
        this.metrics = opts.metrics === false ? undefined : new ClientMetrics(opts.metrics);
        this.metricsRegistry = this.metrics?.registry;
        const m = this.metrics;
        this.settled = {
            read: m && recorder(m, "read"),
            write: m && recorder(m, "write"),
            durable_write: m && recorder(m, "durable_write"),
        };
        this.defaultCalls = {
            read: { idempotent: true, deadlineMs: opts.timeouts.deadlineMs, onSettled: this.settled.read },
            write: { idempotent: false, deadlineMs: opts.timeouts.deadlineMs, onSettled: this.settled.write },
        };
        this.cache =
            opts.staleCache === false ? undefined : new StaleCache(opts.staleCache.maxEntries, opts.staleCache.ttlMs);
        this.policies = new CallPolicies(opts.retry, opts.breaker, {
            retry: (info) => {
                // A master that keeps refusing writes may be one only a cut-off minority of Sentinels still names.
                if (info.errorClass === "noreplicas") this.master.noteRefusedWrite();
                this.metrics?.retry(info.errorClass);
                this.emit("retry", info);
            },
            breakerStateChange: (state) => {
                this.metrics?.breakerState(state);
                if (state === "open") this.scheduleProbe();
                this.emit("breakerStateChange", state);
            },
        });
        this.master = this.manage(new ManagedConnection(opts, "master"));
        this.replica = opts.readFrom === "replica" ? this.manage(new ManagedConnection(opts, "replica")) : undefined;
        this.watcher = new FailoverWatcher(opts);
        this.watcher.on("failoverStarted", ({ master }) => {
            this.master.fence(master, opts.timeouts.failoverFenceMs);
        });
        this.watcher.on("failover", (e) => {
            if (e.source === "sentinel" && opts.failoverDetection === "watcher") {
                this.master.followSwitch(e.to);
                this.replica?.followSwitch(e.to);
            }
            this.recordFailover(e);
        });
    }

    private manage(conn: ManagedConnection): ManagedConnection {
        conn.on("ready", ({ address, epoch, previousAddress }) => {
            this.metrics?.connectionReady(conn.role, true);
            this.emit("connectionStateChange", { role: conn.role, state: "ready", address, epoch });
            // Reconnected to a different master: a failover happened even if no +switch-master reached us.
            if (conn.role === "master" && previousAddress && address && previousAddress !== address) {
                this.watcher.report({
                    masterName: this.options.masterName,
                    from: previousAddress,
                    to: address,
                    at: new Date(),
                    source: "reconnect",
                });
            }
        });
        conn.on("down", ({ reason }) => {
            this.metrics?.connectionReady(conn.role, false);
            this.emit("connectionStateChange", {
                role: conn.role,
                state: "down",
                address: conn.address,
                epoch: conn.epoch,
                reason,
            });
        });
        conn.on("error", (error) => {
            if (this.listenerCount("connectionError") > 0) this.emit("connectionError", { role: conn.role, error });
        });
        return conn;
    }

    /**
     * While the breaker is open, the client probes Redis by itself once `breaker.halfOpenAfterMs` has
     * passed (a PING as the half-open probe), so health turns 200 again when Redis is back, even for
     * an instance a load balancer took out of rotation and that receives no calls.
     */
    private scheduleProbe(): void {
        if (this.closed) return;
        if (this.probeTimer) clearTimeout(this.probeTimer);
        this.probeTimer = setTimeout(() => {
            this.probeTimer = undefined;
            if (this.closed || !this.policies.breaker.probeDue) return;
            // Its result moves the breaker (a failure opens it again and schedules the next probe).
            this.execute((r) => r.ping(), { idempotent: true }, "write").catch(() => undefined);
        }, this.options.breaker.halfOpenAfterMs);
        this.probeTimer.unref();
    }

    private recordFailover(e: FailoverEvent): void {
        this.lastFailover = e;
        this.metrics?.failover();
        this.emit("failover", e);
    }

    /** The raw ioredis master connection: no retries, breaker or deadline. For what this API lacks. */
    get redis(): Redis {
        return this.master.redis;
    }

    get breakerState(): BreakerState {
        return this.policies.breakerState;
    }

    /** Epoch of the master connection, incremented on every (re)connect. */
    get connectionEpoch(): number {
        return this.master.epoch;
    }

    /**
     * Runs `fn` against the master (or a replica, for reads) under the deadline, breaker and retry
     * policies. `fn` may run more than once (retries) and must issue its commands on the connection
     * it is given.
     *
     * ```ts
     * await client.run((r) => r.incr("visits"));                        // not retried if outcome unknown
     * await client.run((r) => r.set("k", "v"), { idempotent: true });   // retried
     * ```
     */
    run<T>(fn: (redis: Redis) => Promise<T>, options: RunOptions = NO_OPTIONS): Promise<T> {
        return this.call(fn, options, options.kind ?? "write");
    }

    /** `run` for reads: idempotent, and sent to a replica when `readFrom` is `"replica"`. */
    read<T>(fn: (redis: Redis) => Promise<T>, options: Omit<RunOptions, "kind"> = NO_OPTIONS): Promise<T> {
        return this.call(fn, options, "read");
    }

    /** `run` for writes: master only, not idempotent unless said so. */
    write<T>(
        fn: (redis: Redis) => Promise<T>,
        options: Omit<RunOptions, "kind" | "readFrom"> = NO_OPTIONS,
    ): Promise<T> {
        return this.call(fn, options, "write");
    }

    private call<T>(fn: (redis: Redis) => Promise<T>, options: RunOptions, kind: "read" | "write"): Promise<T> {
        return this.execute(fn, options, kind, this.settled[kind]);
    }

    /**
     * A read that remembers its result under `cacheKey` and, while Redis is unavailable (breaker
     * open, deadline passed without a master, connection errors), returns the last remembered value
     * (not older than `staleCache.ttlMs`) marked `stale: true` with its age. Other errors, and
     * unavailability with nothing cached, are thrown.
     */
    async readThrough<T>(
        cacheKey: string,
        fn: (redis: Redis) => Promise<T>,
        options: Omit<RunOptions, "kind"> = {},
    ): Promise<ReadResult<T>> {
        const started = performance.now();
        if (this.policies.breakerState !== "closed") {
            // Open or half-open: serve the stale value at once rather than wait for (or be) the probe.
            // A due probe still goes out, in the background, and refreshes the cache when it succeeds.
            const cached = this.cache?.get(cacheKey);
            if (cached) {
                if (this.policies.breaker.probeDue) {
                    this.execute(fn, options, "read").then(
                        (value) => this.cache?.set(cacheKey, value),
                        () => undefined,
                    );
                }
                this.metrics?.call("read", "stale", (performance.now() - started) / 1000);
                this.emit("staleServed", { key: cacheKey, ageMs: cached.ageMs, errorClass: "circuit_open" });
                return { value: cached.value as T, stale: true, ageMs: cached.ageMs };
            }
        }
        try {
            const value = await this.execute(fn, options, "read");
            this.cache?.set(cacheKey, value);
            this.metrics?.call("read", "success", (performance.now() - started) / 1000);
            return { value, stale: false };
        } catch (err) {
            const cls = classifyError(err);
            const cached = cls.unavailable ? this.cache?.get(cacheKey) : undefined;
            if (cached) {
                this.metrics?.call("read", "stale", (performance.now() - started) / 1000);
                this.emit("staleServed", { key: cacheKey, ageMs: cached.ageMs, errorClass: cls.errorClass });
                return { value: cached.value as T, stale: true, ageMs: cached.ageMs };
            }
            this.metrics?.error(cls.errorClass);
            this.metrics?.call(
                "read",
                cls.errorClass === "circuit_open" ? "rejected" : "error",
                (performance.now() - started) / 1000,
            );
            throw err;
        }
    }

    /**
     * A write that succeeds only once the replicas that `durability` asks for confirmed it (by
     * default every replica attached to the master, at least `replicas`). `build` queues the write on
     * a pipeline; `WAIT n timeoutMs` and `ROLE` are appended and all go out in one socket write on one
     * connection. Returns the acknowledged count, or throws `WriteNotAcknowledgedError` (too few
     * replicas before the deadline, connection replaced before confirmation, or replicas the guard
     * does not trust) or another error.
     *
     * ```ts
     * const { acknowledged } = await client.durableWrite((p) => p.set("order:1", json), { timeoutMs: 200 });
     * ```
     */
    durableWrite(
        build: (pipeline: ChainableCommander) => unknown,
        options: DurableWriteOptions = {},
    ): Promise<DurableWriteResult> {
        const replicas = options.replicas ?? DEFAULT_DURABLE_REPLICAS;
        const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
        if (!Number.isInteger(replicas) || replicas < 1) {
            return Promise.reject(new RangeError(`durableWrite: replicas must be an integer ≥ 1, got ${replicas}`));
        }
        if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs >= this.options.timeouts.commandMs) {
            return Promise.reject(
                new RangeError(
                    `durableWrite: timeoutMs must be an integer between 1 and timeouts.commandMs - 1 (${this.options.timeouts.commandMs - 1}), got ${timeoutMs}; ` +
                        `WAIT blocks for up to timeoutMs and would otherwise be cut off as a command timeout`,
                ),
            );
        }
        const call = {
            idempotent: options.idempotent ?? false,
            deadlineMs: options.deadlineMs ?? this.options.timeouts.deadlineMs,
            onSettled: this.settled.durable_write,
        };
        return this.policies.execute(
            (signal, state) =>
                durableWriteAttempt(
                    this.master,
                    build,
                    { replicas, durability: options.durability ?? "attached" },
                    timeoutMs,
                    signal,
                    state,
                ),
            call,
        );
    }

    private execute<T>(
        fn: (redis: Redis) => Promise<T>,
        options: RunOptions,
        kind: "read" | "write",
        onSettled?: SettledRecorder,
    ): Promise<T> {
        const replica =
            kind === "read" && (options.readFrom ?? this.options.readFrom) === "replica" ? this.replica : undefined;
        const call =
            options === NO_OPTIONS && onSettled === this.settled[kind]
                ? this.defaultCalls[kind]
                : {
                      idempotent: options.idempotent ?? kind === "read",
                      deadlineMs: options.deadlineMs ?? this.options.timeouts.deadlineMs,
                      onSettled,
                  };
        return this.policies.execute(
            (signal, state) => {
                const conn = replica?.isReady() ? replica : this.master;
                // Ready now (the usual case): send in this tick instead of awaiting a resolved promise.
                if (conn.isReady()) return sendOn(conn, fn, state, signal);
                return conn.whenReady(signal).then(() => sendOn(conn, fn, state, signal));
            },
            call,
            new CallState(),
        );
    }

    /** Health report: see {@link HealthReport}. */
    health(): Promise<HealthReport> {
        return collectHealth({
            options: this.options,
            master: this.master,
            replica: this.replica,
            breakerState: this.breakerState,
            lastFailover: this.lastFailover,
        });
    }

    /** A `node:http` request listener serving {@link health} as JSON (200, or 503 when down). */
    healthHandler(): (req: IncomingMessage, res: ServerResponse) => void {
        return createHealthHandler(() => this.health());
    }

    /** Closes every connection (master, replica, Sentinel subscriptions). Calls after this fail. */
    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        if (this.probeTimer) clearTimeout(this.probeTimer);
        this.watcher.close();
        await Promise.all([this.master.close(), this.replica?.close()]);
    }
}

/** Records a call's outcome and duration in the metrics (see `CallOptions.onSettled`). */
type SettledRecorder = (ok: boolean, error: unknown, seconds: number) => void;

/** Default options of `run`/`read`/`write`: recognised by identity, so such calls share one options object. */
const NO_OPTIONS: RunOptions = Object.freeze({});

function recorder(metrics: ClientMetrics, op: CallKind): SettledRecorder {
    return (ok, err, seconds) => {
        if (ok) {
            metrics.call(op, "success", seconds);
            return;
        }
        const cls = classifyError(err);
        metrics.error(cls.errorClass);
        metrics.call(op, cls.errorClass === "circuit_open" ? "rejected" : "error", seconds);
    };
}

/**
 * Sends `fn` on `conn` (an attempt that may have reached Redis from here on), unless the call's
 * deadline has passed: the caller was then told "not executed", so nothing may be sent.
 */
function sendOn<T>(
    conn: ManagedConnection,
    fn: (redis: Redis) => Promise<T>,
    state: CallState,
    signal: AbortSignal,
): Promise<T> {
    if (signal.aborted) return Promise.reject(new NotConnectedError(conn.role));
    state.inFlight = true;
    let sent: Promise<T>;
    try {
        sent = fn(conn.redis);
        // `fn` is typed to return a promise; tolerate plain values and foreign thenables as `await` did.
        if (!(sent instanceof Promise)) sent = Promise.resolve(sent);
    } catch (err) {
        conn.noteCommandError(err);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the caller's own error, passed on unchanged
        return Promise.reject(err);
    }
    // A timeout of what it sent reaches the connection through its CommandTimer: no handler here.
    return sent;
}

/**
 * Creates a client for the master named `masterName`, found through `sentinels`.
 *
 * - Finds the master via Sentinel and follows failovers (`+switch-master`, READONLY, hung master).
 * - Every call runs under a deadline, a circuit breaker and retries of errors that are safe to retry.
 * - `durableWrite` confirms writes with `WAIT` on the same connection, or fails as one unit.
 * - `readThrough` serves the last known value, marked stale, while Redis is unavailable.
 * - `health()` / `healthHandler()` and prom-client metrics on `metrics.registry`.
 *
 * Throws `InvalidOptionsError` listing every problem in `options` before connecting.
 */
export function createSentinelClient(options: SentinelClientOptions): SentinelClient {
    return new SentinelClient(options);
}
