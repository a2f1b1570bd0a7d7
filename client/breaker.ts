/**
 * States of the circuit breaker, as reported in events, health and metrics.
 *
 * - `closed`: calls go through; consecutive "Redis unavailable" results are counted.
 * - `open`: calls are refused at once ({@link CircuitOpenError}) until `halfOpenAfterMs` has passed.
 * - `half-open`: one call (the probe) goes through; every other call is refused at once, as while
 *   open. The probe's result decides: unavailable → open again; anything else → closed.
 */
export const BreakerState = {
    Closed: "closed",
    Open: "open",
    HalfOpen: "half-open",
} as const;
export type BreakerState = (typeof BreakerState)[keyof typeof BreakerState];

/** How a call was let through: as an ordinary call (closed breaker) or as the half-open probe. */
export const Admission = {
    Refused: 0,
    Call: 1,
    Probe: 2,
} as const;
export type Admission = (typeof Admission)[keyof typeof Admission];

/** What a finished call tells the breaker. */
export const CallResult = {
    /** The call succeeded: resets the count of consecutive failures. */
    Success: 0,
    /** Redis was unavailable (deadline without a master, connection errors after retries). */
    Unavailable: 1,
    /**
     * Any other error (`WRONGTYPE`, a non-idempotent call of unknown outcome): leaves the count as it
     * is while closed; as a probe's result it shows Redis answering, and closes the breaker.
     */
    Neutral: 2,
} as const;
export type CallResult = (typeof CallResult)[keyof typeof CallResult];

/**
 * A consecutive-failures circuit breaker with a single half-open probe. Our own, rather than
 * cockatiel's `CircuitBreakerPolicy`, because that one lets calls that arrive while a probe runs
 * wait for it and then re-runs them without their abort signal (cockatiel 3.2.1
 * `CircuitBreakerPolicy.execute`, HalfOpen case: `return this.execute(fn)`), so they run after the
 * caller's deadline; and because its closed-state path costs more than a whole loopback GET.
 * For calls made one after another this breaker makes the same transitions as cockatiel's
 * `circuitBreaker(handleWhen(unavailable), { halfOpenAfter, breaker: new ConsecutiveBreaker(n) })`
 * (tests/client/unit/breaker.test.ts runs both on the same sequence).
 */
export class CircuitBreaker {
    private current: BreakerState = BreakerState.Closed;
    private failures = 0;
    private openedAt = 0;

    constructor(
        /** Consecutive unavailable results that open the breaker. */
        readonly threshold: number,
        /** Time the breaker stays open before it lets one probe through, ms. */
        readonly halfOpenAfterMs: number,
        private readonly onStateChange: (state: BreakerState) => void = () => undefined,
        private readonly now: () => number = Date.now,
    ) {}

    get state(): BreakerState {
        return this.current;
    }

    /** True when the breaker is open and its half-open time has come (the next call will be the probe). */
    get probeDue(): boolean {
        return this.current === BreakerState.Open && this.now() - this.openedAt >= this.halfOpenAfterMs;
    }

    /** Decides whether a call may go through now; a call admitted must report back with {@link record}. */
    admit(): Admission {
        if (this.current === BreakerState.Closed) return Admission.Call;
        if (this.current === BreakerState.Open && this.probeDue) {
            this.set(BreakerState.HalfOpen);
            return Admission.Probe;
        }
        return Admission.Refused;
    }

    /** Reports the result of a call admitted by {@link admit}. */
    record(admission: Admission, result: CallResult): void {
        if (admission === Admission.Probe) {
            if (this.current !== BreakerState.HalfOpen) return;
            if (result === CallResult.Unavailable) this.open();
            else this.close();
            return;
        }
        // A call admitted while closed that finishes after the breaker opened changes nothing.
        if (admission !== Admission.Call || this.current !== BreakerState.Closed) return;
        if (result === CallResult.Success) this.failures = 0;
        else if (result === CallResult.Unavailable && ++this.failures >= this.threshold) this.open();
    }

    private open(): void {
        this.openedAt = this.now();
        this.set(BreakerState.Open);
    }

    private close(): void {
        this.failures = 0;
        this.set(BreakerState.Closed);
    }

    private set(state: BreakerState): void {
        if (state === this.current) return;
        this.current = state;
        this.onStateChange(state);
    }
}
