import {
    BrokenCircuitError,
    circuitBreaker,
    CircuitBreakerPolicy,
    CircuitState,
    ConsecutiveBreaker,
    decorrelatedJitterGenerator,
    ExponentialBackoff,
    handleWhen,
    IPolicy,
    IsolatedCircuitError,
    retry,
    RetryPolicy,
    TaskCancelledError,
    wrap,
} from "cockatiel";
import { DeadlinePolicy, deadlineError, DeadlineWaiter, joinDeadline } from "./deadline";
import { classifyError, ErrorClass, isRetryable } from "./classify";
import {
    CircuitOpenError,
    DeadlineExceededError,
    OutcomeUnknownError,
    RedisClientError,
    WriteNotAcknowledgedError,
} from "./errors";
import type { BreakerOptions, RetryOptions } from "./options";

/** Circuit breaker state as reported in events, health and metrics. */
export type BreakerState = "closed" | "open" | "half-open" | "isolated";

export function breakerStateName(s: CircuitState): BreakerState {
    switch (s) {
        case CircuitState.Closed:
            return "closed";
        case CircuitState.Open:
            return "open";
        case CircuitState.HalfOpen:
            return "half-open";
        case CircuitState.Isolated:
            return "isolated";
        default: {
            const never: never = s;
            throw new Error(`unknown circuit state ${String(never)}`);
        }
    }
}

/** What a call tells the policies about itself. */
export interface CallOptions {
    /** Safe to send twice? Decides whether "outcome unknown" errors are retried. */
    readonly idempotent: boolean;
    /** Deadline of the whole call, retries included. */
    readonly deadlineMs: number;
}

/** Per-call bookkeeping the attempt function updates, read when the call fails. */
export class CallState {
    /** An attempt has written (or is writing) commands and has not settled yet. */
    inFlight = false;
    /** An earlier attempt ended without knowing whether its commands ran. */
    sawUnknown = false;
    lastError: unknown = undefined;
    /** Set by durable writes once the master has applied the write. */
    applied: { acknowledged: number; required: number } | undefined = undefined;
}

export interface PolicyEvents {
    retry?(info: { errorClass: ErrorClass; attempt: number; delayMs: number; error: unknown }): void;
    breakerStateChange?(state: BreakerState): void;
}

/**
 * The resilience stack of every call:
 *
 *     deadline (aggressive timeout)  →  circuit breaker  →  retry (backoff + jitter)  →  attempt
 *
 * - The deadline is outermost so it bounds everything: waiting for a master, retries, backoff,
 *   and waiting behind a half-open probe. It is aggressive: the caller gets its answer at the
 *   deadline, and the abort signal stops the inner retry loop and any wait for readiness.
 *   It is {@link DeadlinePolicy}, a cockatiel-compatible policy with the semantics of
 *   `timeout(ms, TimeoutStrategy.Aggressive)` at a fraction of its cost (see deadline.ts).
 *   Cockatiel 3.2.1's retry sleeps its backoff without watching the signal, so the breaker
 *   records a call that hit its deadline up to `retry.maxDelayMs` later.
 * - The breaker sees one result per call (after retries), and counts only "Redis unavailable"
 *   results: a failover the retries rode through is a success, a `WRONGTYPE` is not a failure.
 * - Retries happen only for errors where sending again is safe (see {@link isRetryable}); two
 *   retry policies (idempotent or not) share the backoff settings.
 */
export class CallPolicies {
    readonly breaker: CircuitBreakerPolicy;
    /** The breaker's failure counter, updated directly by the closed-breaker path (see {@link execute}). */
    private readonly counter: ConsecutiveBreaker;
    private readonly retryIdempotent: RetryPolicy;
    private readonly retryOnce: RetryPolicy;
    private readonly stacks = new Map<string, IPolicy>();

    constructor(
        retryOpts: Required<RetryOptions>,
        breakerOpts: Required<BreakerOptions>,
        private readonly events: PolicyEvents = {},
    ) {
        this.counter = new ConsecutiveBreaker(breakerOpts.consecutiveFailures);
        this.breaker = circuitBreaker(
            handleWhen((err) => classifyError(err).unavailable),
            { halfOpenAfter: breakerOpts.halfOpenAfterMs, breaker: this.counter },
        );
        this.breaker.onStateChange((s) => this.events.breakerStateChange?.(breakerStateName(s)));
        const backoff = new ExponentialBackoff({
            initialDelay: retryOpts.initialDelayMs,
            maxDelay: retryOpts.maxDelayMs,
            generator: decorrelatedJitterGenerator,
        });
        const make = (idempotent: boolean) => {
            const p = retry(
                handleWhen((err) => isRetryable(classifyError(err), idempotent)),
                { maxAttempts: retryOpts.maxAttempts, backoff },
            );
            p.onRetry((r) => {
                const error = "error" in r ? r.error : undefined;
                this.events.retry?.({
                    errorClass: classifyError(error).errorClass,
                    attempt: r.attempt,
                    delayMs: r.delay,
                    error,
                });
            });
            return p;
        };
        this.retryIdempotent = make(true);
        this.retryOnce = make(false);
    }

    get breakerState(): BreakerState {
        return breakerStateName(this.breaker.state);
    }

    /** The composed stack for one deadline and idempotency (cached: few distinct deadlines). */
    private stackFor(call: CallOptions): IPolicy {
        const key = `${call.deadlineMs}|${call.idempotent}`;
        let p = this.stacks.get(key);
        if (!p) {
            p = wrap(
                new DeadlinePolicy(call.deadlineMs),
                this.breaker,
                call.idempotent ? this.retryIdempotent : this.retryOnce,
            );
            if (this.stacks.size > 64) this.stacks.clear();
            this.stacks.set(key, p);
        }
        return p;
    }

    /**
     * Runs `attempt` under the stack. `attempt` gets the abort signal (aborted at the deadline) and
     * must record in `state` whether it may have reached Redis. Errors reaching the caller are
     * translated: deadline → {@link DeadlineExceededError}, open breaker → {@link CircuitOpenError},
     * in-flight failure of a non-idempotent call → {@link OutcomeUnknownError}.
     *
     * While the breaker is closed (the normal case) the stack is run by hand, with the same
     * semantics as the composed cockatiel stack at a fraction of its cost: the first attempt runs
     * directly under a shared-slot deadline; only if it fails does the call enter cockatiel's retry
     * policy (which sees that failure as its first attempt: same decision, backoff and events), and
     * the call's final result is then counted by the breaker exactly as `CircuitBreakerPolicy` does
     * for a call admitted while closed: success resets the consecutive count, an "unavailable" error
     * counts as a failure and opens the breaker at the threshold, other errors count as neither.
     * In any other breaker state (open, half-open, isolated) the composed cockatiel stack decides.
     */
    execute<T>(
        attempt: (signal: AbortSignal, state: CallState) => Promise<T>,
        call: CallOptions,
        state: CallState = new CallState(),
    ): Promise<T> {
        if (this.breaker.state !== CircuitState.Closed) return this.executeStack(attempt, call, state);
        return new Promise<T>((resolve, reject) => {
            const d = new CallDeadline(call, state, reject);
            const signal = joinDeadline(call.deadlineMs, d);
            this.runClosed(attempt, call, state, signal).then(
                (value) => {
                    d.leave();
                    if (d.settled) return;
                    d.settled = true;
                    resolve(value);
                },
                (err) => {
                    d.leave();
                    if (d.settled) return;
                    d.settled = true;
                    reject(translateError(err, call, state));
                },
            );
        });
    }

    /**
     * Retry policy → breaker accounting, for a call admitted while the breaker was closed. Written
     * with `then` rather than `async`/`await`: a successful first attempt costs one promise here.
     */
    private runClosed<T>(
        attempt: (signal: AbortSignal, state: CallState) => Promise<T>,
        call: CallOptions,
        state: CallState,
        signal: AbortSignal,
    ): Promise<T> {
        let first: Promise<T>;
        try {
            first = attempt(signal, state);
        } catch (err) {
            first = Promise.reject(err);
        }
        return first.then(
            (value) => {
                state.inFlight = false;
                // CircuitBreakerPolicy (closed): `breaker.success(CircuitState.Closed)` on success.
                this.counter.success();
                return value;
            },
            (err: unknown) =>
                this.afterFirstFailure(attemptFailed(err, call, state), attempt, call, state, signal).then((value) => {
                    this.counter.success();
                    return value;
                }),
        );
    }

    private async afterFirstFailure<T>(
        first: unknown,
        attempt: (signal: AbortSignal, state: CallState) => Promise<T>,
        call: CallOptions,
        state: CallState,
        signal: AbortSignal,
    ): Promise<T> {
        const retryPolicy = call.idempotent ? this.retryIdempotent : this.retryOnce;
        try {
            // The retry policy sees the failure that already happened as its first attempt.
            return await retryPolicy.execute(
                (ctx) => (ctx.attempt === 0 ? Promise.reject(first) : runAttempt(attempt, ctx.signal, call, state)),
                signal,
            );
        } catch (err) {
            if (classifyError(err).unavailable) this.countFailure(err, signal);
            throw err;
        }
    }

    /**
     * What `CircuitBreakerPolicy.execute` does with a handled failure of a call admitted while
     * closed: `breaker.failure(Closed)`, and `open()` when that reaches the threshold.
     * It reaches into cockatiel 3.2.1's internals (pinned exactly in package.json); the fast-path
     * tests in tests/client/unit/policies.test.ts fail if an upgrade changes them.
     */
    private countFailure(error: unknown, signal: AbortSignal): void {
        const b = this.breaker as unknown as {
            innerLastFailure: unknown;
            open(reason: unknown, signal: AbortSignal): void;
        };
        const reason = { error };
        b.innerLastFailure = reason;
        if (this.counter.failure()) b.open(reason, signal);
    }

    /** The composed cockatiel stack: deadline → breaker → retry → attempt. */
    private async executeStack<T>(
        attempt: (signal: AbortSignal, state: CallState) => Promise<T>,
        call: CallOptions,
        state: CallState,
    ): Promise<T> {
        const policy = this.stackFor(call);
        try {
            return await policy.execute(({ signal }) => runAttempt(attempt, signal, call, state));
        } catch (err) {
            throw translateError(err, call, state);
        }
    }
}

/** One attempt, with the bookkeeping the error translation needs. */
async function runAttempt<T>(
    attempt: (signal: AbortSignal, state: CallState) => Promise<T>,
    signal: AbortSignal,
    call: CallOptions,
    state: CallState,
): Promise<T> {
    try {
        const value = await attempt(signal, state);
        state.inFlight = false;
        return value;
    } catch (err) {
        throw attemptFailed(err, call, state);
    }
}

/** Bookkeeping of a failed attempt; returns the error to throw in its place. */
function attemptFailed(err: unknown, call: CallOptions, state: CallState): unknown {
    state.lastError = err;
    const cls = classifyError(err);
    if (state.inFlight && cls.outcome === "unknown") state.sawUnknown = true;
    state.inFlight = false;
    // Not retried (not idempotent) and possibly applied: say so, by name.
    if (!call.idempotent && cls.outcome === "unknown" && cls.unavailable && !(err instanceof RedisClientError)) {
        return new OutcomeUnknownError(cls.errorClass, { cause: err });
    }
    return err;
}

/** The deadline of one call on the closed-breaker path: rejects the caller at the deadline. */
class CallDeadline extends DeadlineWaiter {
    settled = false;
    constructor(
        private readonly call: CallOptions,
        private readonly state: CallState,
        private readonly reject: (err: unknown) => void,
    ) {
        super();
    }
    expired(): void {
        if (this.settled) return;
        this.settled = true;
        this.reject(translateError(deadlineError(this.call.deadlineMs), this.call, this.state));
    }
}

/** Maps cockatiel's errors to this module's named errors; others pass through. */
export function translateError(err: unknown, call: CallOptions, state: CallState): unknown {
    if (err instanceof TaskCancelledError) {
        // A durable write whose master applied it but whose replicas did not confirm in time.
        if (state.applied && !state.inFlight) {
            return new WriteNotAcknowledgedError(state.applied.required, state.applied.acknowledged, "timeout", {
                cause: state.lastError,
            });
        }
        const outcome = state.inFlight || state.sawUnknown ? "unknown" : "not-executed";
        return new DeadlineExceededError(call.deadlineMs, outcome, { cause: state.lastError });
    }
    if (err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError) {
        return new CircuitOpenError({ cause: err });
    }
    return err;
}
