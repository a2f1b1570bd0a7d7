/* eslint-disable @typescript-eslint/require-await -- test fakes implement async APIs without awaiting; a missing value fails the test where it is used */
import { replyError } from "./replyError";
import { circuitBreaker, CircuitState, ConsecutiveBreaker, handleWhen } from "cockatiel";
import fc from "fast-check";
import { Admission, BreakerState, CallResult, CircuitBreaker } from "../../../client/breaker";
import { CircuitOpenError, NotConnectedError } from "../../../client/errors";
import { CallPolicies, CallState } from "../../../client/policies";

const THRESHOLD = 3;
const HALF_OPEN_AFTER_MS = 1000;

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

/** One step of a sequence: a call ending in `result`, or time passing. */
type Step = { call: "success" | "unavailable" | "other-error" } | { waitMs: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ call: fc.constantFrom("success" as const, "unavailable" as const, "other-error" as const) }),
    fc.record({ waitMs: fc.constantFrom(10, 500, HALF_OPEN_AFTER_MS) }),
);

const cockatielName: Record<CircuitState, string> = {
    [CircuitState.Closed]: "closed",
    [CircuitState.Open]: "open",
    [CircuitState.HalfOpen]: "half-open",
    [CircuitState.Isolated]: "isolated",
};

class Unavailable extends Error {}

/** Runs `steps` through cockatiel 3.2.1's public breaker: the reference for sequential calls. */
async function throughCockatiel(steps: Step[]): Promise<{ states: string[]; events: string[]; calls: number }> {
    const policy = circuitBreaker(
        handleWhen((e) => e instanceof Unavailable),
        { halfOpenAfter: HALF_OPEN_AFTER_MS, breaker: new ConsecutiveBreaker(THRESHOLD) },
    );
    const events: string[] = [];
    policy.onStateChange((s) => events.push(cockatielName[s]));
    const states: string[] = [];
    let calls = 0;
    for (const step of steps) {
        if ("waitMs" in step) await jest.advanceTimersByTimeAsync(step.waitMs);
        else {
            await policy
                .execute(async () => {
                    calls++;
                    if (step.call === "unavailable") throw new Unavailable();
                    if (step.call === "other-error") throw new Error("WRONGTYPE");
                })
                .catch(() => undefined);
        }
        states.push(cockatielName[policy.state]);
    }
    return { states, events, calls };
}

/**
 * Runs `steps` through CallPolicies. `path: "fast"`: each call's result comes from its first
 * attempt; `"retried"`: each call first fails with READONLY (refused, retried) and its result comes
 * from the retry, so the call goes through the general retry loop.
 */
async function throughPolicies(
    steps: Step[],
    path: "fast" | "retried",
): Promise<{ states: string[]; events: string[]; calls: number }> {
    const events: string[] = [];
    const policies = new CallPolicies(
        { initialDelayMs: 1, maxDelayMs: 1, maxAttempts: path === "fast" ? 0 : 1, reconnectMaxDelayMs: 500 },
        { consecutiveFailures: THRESHOLD, halfOpenAfterMs: HALF_OPEN_AFTER_MS },
        { breakerStateChange: (s) => events.push(s) },
    );
    const states: string[] = [];
    let calls = 0;
    for (const step of steps) {
        if ("waitMs" in step) await jest.advanceTimersByTimeAsync(step.waitMs);
        else {
            let attempts = 0;
            const p = policies
                .execute(
                    async (_s: AbortSignal, state: CallState) => {
                        attempts++;
                        if (path === "retried" && attempts === 1) throw replyError("READONLY replica");
                        calls++;
                        state.inFlight = true;
                        if (step.call === "unavailable") throw new NotConnectedError("master");
                        if (step.call === "other-error") throw replyError("WRONGTYPE x");
                        return "ok";
                    },
                    { idempotent: true, deadlineMs: 60_000 },
                )
                .catch((e: unknown) => e);
            await jest.advanceTimersByTimeAsync(5);
            await p;
        }
        states.push(policies.breakerState);
    }
    return { states, events, calls };
}

describe("CircuitBreaker", () => {
    test("opens at the threshold, refuses, lets one probe through after halfOpenAfterMs, closes on its success", () => {
        let now = 0;
        const events: BreakerState[] = [];
        const b = new CircuitBreaker(
            THRESHOLD,
            HALF_OPEN_AFTER_MS,
            (s) => events.push(s),
            () => now,
        );
        for (let i = 0; i < THRESHOLD; i++) b.record(b.admit(), CallResult.Unavailable);
        expect(b.state).toBe("open");
        expect(b.admit()).toBe(Admission.Refused);
        now += HALF_OPEN_AFTER_MS;
        expect(b.admit()).toBe(Admission.Probe);
        // While the probe is out every other call is refused at once, not queued behind it.
        expect(b.admit()).toBe(Admission.Refused);
        b.record(Admission.Probe, CallResult.Success);
        expect(b.state).toBe("closed");
        expect(events).toEqual(["open", "half-open", "closed"]);
    });

    test("for any sequence of calls made one after another: the same states and events as cockatiel's breaker", async () => {
        await fc.assert(
            fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 40 }), async (steps) => {
                const reference = await throughCockatiel(steps);
                const fast = await throughPolicies(steps, "fast");
                const retried = await throughPolicies(steps, "retried");
                expect(fast).toEqual(reference);
                expect(retried).toEqual(reference);
            }),
            { numRuns: 60 },
        );
    });
});

describe("half-open: calls beside the probe", () => {
    test("are refused at once and never run, even after the probe ends (cockatiel re-ran them without their deadline)", async () => {
        const policies = new CallPolicies(
            { initialDelayMs: 20, maxDelayMs: 200, maxAttempts: 0, reconnectMaxDelayMs: 500 },
            { consecutiveFailures: 1, halfOpenAfterMs: 100 },
        );
        await policies
            .execute(() => Promise.reject(new NotConnectedError("master")), { idempotent: true, deadlineMs: 1000 })
            .catch(() => undefined);
        expect(policies.breakerState).toBe("open");
        await jest.advanceTimersByTimeAsync(100);
        let releaseProbe!: () => void;
        const probe = policies.execute(
            () =>
                new Promise<string>(
                    (resolve) =>
                        (releaseProbe = () => {
                            resolve("pong");
                        }),
                ),
            {
                idempotent: true,
                deadlineMs: 5000,
            },
        );
        expect(policies.breakerState).toBe("half-open");
        let ran = 0;
        const others = Array.from({ length: 5 }, () =>
            policies
                .execute(
                    async () => {
                        ran++;
                        return "applied";
                    },
                    { idempotent: false, deadlineMs: 300 },
                )
                .catch((e: unknown) => e),
        );
        for (const r of await Promise.all(others)) expect(r).toBeInstanceOf(CircuitOpenError);
        releaseProbe();
        expect(await probe).toBe("pong");
        expect(policies.breakerState).toBe("closed");
        await jest.advanceTimersByTimeAsync(10_000);
        expect(ran).toBe(0);
    });
});
