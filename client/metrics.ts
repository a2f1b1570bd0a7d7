import { Counter, Gauge, Registry } from "prom-client";
import { CallDurations } from "./callDurations";
import type { ErrorClass } from "./classify";
import type { MetricsOptions } from "./options";
import type { BreakerState } from "./policies";

/** Kind of call, the `op` label. */
export type CallKind = "read" | "write" | "durable_write";
/**
 * Final outcome of a call, the `outcome` label: `success`; `stale` (served from the stale cache);
 * `error` (the caller got an error); `rejected` (breaker open, not sent).
 */
export type CallOutcome = "success" | "stale" | "error" | "rejected";

/** Numeric encoding of the breaker-state gauge. */
export const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, "half-open": 1, open: 2 };

/** Per `commands_total` counter, the flush function of every client counting into it. */
const callFlushers = new WeakMap<object, Set<() => void>>();

/**
 * The client's Prometheus metrics, registered on the application's registry (or a new one).
 * Registering twice on one registry (two clients) reuses the existing metrics.
 *
 * - `<prefix>commands_total{op,outcome}`
 * - `<prefix>errors_total{class}`: errors returned to callers, by class (see `ErrorClass`); retried errors are in `retries_total`
 * - `<prefix>retries_total{class}`: retries, by the class of the error that caused them
 * - `<prefix>breaker_state`: 0 closed, 1 half-open, 2 open
 * - `<prefix>failovers_total`: master switches seen (Sentinel `+switch-master` or reconnect)
 * - `<prefix>command_duration_seconds{op}`: call duration, retries included
 * - `<prefix>connection_ready{role}`: 1 when the master/replica connection is ready
 */
export class ClientMetrics {
    readonly registry: Registry;
    private readonly commands: Counter<"op" | "outcome">;
    private readonly errors: Counter<"class">;
    private readonly retries: Counter<"class">;
    private readonly breaker: Gauge;
    private readonly failovers: Counter;
    private readonly duration: CallDurations;
    private readonly ready: Gauge<"role">;

    constructor(options: MetricsOptions = {}) {
        this.registry = options.registry ?? new Registry();
        const prefix = options.prefix ?? "redis_client_";
        const registers = [this.registry];
        const get = <M>(name: string, make: () => M): M =>
            (this.registry.getSingleMetric(prefix + name) as M | undefined) ?? make();
        this.commands = get(
            "commands_total",
            () =>
                new Counter({
                    name: `${prefix}commands_total`,
                    help: "Redis client calls by kind and final outcome (success, stale, error, rejected).",
                    labelNames: ["op", "outcome"] as const,
                    registers,
                    // prom-client calls `collect` before every read (scrape, get(), getMetricsAsJSON).
                    collect() {
                        for (const flush of callFlushers.get(this) ?? []) flush();
                    },
                }),
        );
        this.errors = get(
            "errors_total",
            () =>
                new Counter({
                    name: `${prefix}errors_total`,
                    help: "Errors returned to callers by class (readonly, connection, timeout, deadline, circuit_open, ...).",
                    labelNames: ["class"] as const,
                    registers,
                }),
        );
        this.retries = get(
            "retries_total",
            () =>
                new Counter({
                    name: `${prefix}retries_total`,
                    help: "Retries of Redis calls, by the class of the error that caused them.",
                    labelNames: ["class"] as const,
                    registers,
                }),
        );
        this.breaker = get(
            "breaker_state",
            () =>
                new Gauge({
                    name: `${prefix}breaker_state`,
                    help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
                    registers,
                }),
        );
        this.failovers = get(
            "failovers_total",
            () =>
                new Counter({
                    name: `${prefix}failovers_total`,
                    help: "Master switches seen (Sentinel +switch-master, or a reconnect to a different master).",
                    registers,
                }),
        );
        this.duration = get(
            "command_duration_seconds",
            () =>
                new CallDurations(
                    `${prefix}command_duration_seconds`,
                    "Duration of Redis client calls, retries and waiting for a master included.",
                    "op",
                    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
                    this.registry,
                ),
        );
        this.ready = get(
            "connection_ready",
            () =>
                new Gauge({
                    name: `${prefix}connection_ready`,
                    help: "1 when the client's connection of this role is ready for commands.",
                    labelNames: ["role"] as const,
                    registers,
                }),
        );
        this.breaker.set(0);
        // Call counts are added up here and handed to prom-client when the counter is read:
        // prom-client validates and hashes the labels on every inc(). Every client sharing the
        // counter (two clients on one registry) flushes its own counts.
        let flushers = callFlushers.get(this.commands);
        if (!flushers) callFlushers.set(this.commands, (flushers = new Set()));
        flushers.add(() => {
            this.flushCalls();
        });
    }

    // Label children are looked up once: prom-client hashes the label object on every inc/observe.
    private readonly pendingCalls: Partial<
        Record<CallKind, Partial<Record<CallOutcome, { child: { inc(n: number): void }; n: number }>>>
    > = {};
    private readonly durationChildren: Partial<Record<CallKind, { observe(v: number): void }>> = {};

    call(op: CallKind, outcome: CallOutcome, seconds: number): void {
        const byOutcome = (this.pendingCalls[op] ??= {});
        const c = (byOutcome[outcome] ??= { child: this.commands.labels({ op, outcome }), n: 0 });
        c.n += 1;
        const d = (this.durationChildren[op] ??= this.duration.series(op));
        d.observe(seconds);
    }

    /** Adds the call counts accumulated since the last read to `commands_total`. */
    private flushCalls(): void {
        for (const byOutcome of Object.values(this.pendingCalls)) {
            for (const c of Object.values(byOutcome)) {
                if (c.n === 0) continue;
                const n = c.n;
                c.n = 0;
                c.child.inc(n);
            }
        }
    }

    error(cls: ErrorClass): void {
        this.errors.inc({ class: cls });
    }

    retry(cls: ErrorClass): void {
        this.retries.inc({ class: cls });
    }

    breakerState(state: BreakerState): void {
        this.breaker.set(BREAKER_STATE_VALUE[state]);
    }

    failover(): void {
        this.failovers.inc();
    }

    connectionReady(role: "master" | "replica", ready: boolean): void {
        this.ready.set({ role }, ready ? 1 : 0);
    }
}
