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
import { DeadlinePolicy } from "./deadline";
import { classifyError, ErrorClass, isRetryable } from "./classify";
import { CircuitOpenError, DeadlineExceededError, OutcomeUnknownError, RedisClientError, WriteNotAcknowledgedError } from "./errors";
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
  private readonly retryIdempotent: RetryPolicy;
  private readonly retryOnce: RetryPolicy;
  private readonly stacks = new Map<string, IPolicy>();

  constructor(
    retryOpts: Required<RetryOptions>,
    breakerOpts: Required<BreakerOptions>,
    private readonly events: PolicyEvents = {},
  ) {
    this.breaker = circuitBreaker(
      handleWhen((err) => classifyError(err).unavailable),
      { halfOpenAfter: breakerOpts.halfOpenAfterMs, breaker: new ConsecutiveBreaker(breakerOpts.consecutiveFailures) },
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
        this.events.retry?.({ errorClass: classifyError(error).errorClass, attempt: r.attempt, delayMs: r.delay, error });
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
      p = wrap(new DeadlinePolicy(call.deadlineMs), this.breaker, call.idempotent ? this.retryIdempotent : this.retryOnce);
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
   */
  async execute<T>(
    attempt: (signal: AbortSignal, state: CallState) => Promise<T>,
    call: CallOptions,
    state: CallState = new CallState(),
  ): Promise<T> {
    const policy = this.stackFor(call);
    try {
      return await policy.execute(async ({ signal }) => {
        try {
          const value = await attempt(signal, state);
          state.inFlight = false;
          return value;
        } catch (err) {
          state.lastError = err;
          const cls = classifyError(err);
          if (state.inFlight && cls.outcome === "unknown") state.sawUnknown = true;
          state.inFlight = false;
          // Not retried (not idempotent) and possibly applied: say so, by name.
          if (!call.idempotent && cls.outcome === "unknown" && cls.unavailable && !(err instanceof RedisClientError)) {
            throw new OutcomeUnknownError(cls.errorClass, { cause: err });
          }
          throw err;
        }
      });
    } catch (err) {
      throw translateError(err, call, state);
    }
  }
}

/** Maps cockatiel's errors to this module's named errors; others pass through. */
export function translateError(err: unknown, call: CallOptions, state: CallState): unknown {
  if (err instanceof TaskCancelledError) {
    // A durable write whose master applied it but whose replicas did not confirm in time.
    if (state.applied && !state.inFlight) {
      return new WriteNotAcknowledgedError(state.applied.required, state.applied.acknowledged, "timeout", { cause: state.lastError });
    }
    const outcome = state.inFlight || state.sawUnknown ? "unknown" : "not-executed";
    return new DeadlineExceededError(call.deadlineMs, outcome, { cause: state.lastError });
  }
  if (err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError) {
    return new CircuitOpenError({ cause: err });
  }
  return err;
}
