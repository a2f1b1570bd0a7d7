/* eslint-disable @typescript-eslint/no-non-null-assertion, @typescript-eslint/require-await -- test fakes implement async APIs without awaiting; a missing value fails the test where it is used */
import { replyError } from "./replyError";
import {
    CircuitOpenError,
    DeadlineExceededError,
    NotConnectedError,
    OutcomeUnknownError,
    WriteNotAcknowledgedError,
} from "../../../client/errors";
import { BreakerState, CallPolicies, CallState, NOREPLICAS_MAX_DELAY_MS } from "../../../client/policies";

const RETRY = { initialDelayMs: 20, maxDelayMs: 200, maxAttempts: 50, reconnectMaxDelayMs: 500 };
const BREAKER = { consecutiveFailures: 3, halfOpenAfterMs: 1000 };
const readonly = () => replyError("READONLY You can't write against a read only replica.");

function setup(retry = RETRY, breaker = BREAKER) {
    const retries: Array<{ errorClass: string; delayMs: number }> = [];
    const states: BreakerState[] = [];
    const policies = new CallPolicies(retry, breaker, {
        retry: (r) => retries.push({ errorClass: r.errorClass, delayMs: r.delayMs }),
        breakerStateChange: (s) => states.push(s),
    });
    return { policies, retries, states };
}

/** An attempt that fails with the given errors in turn, then returns "ok". */
function scripted(...errors: Array<() => Error>) {
    let calls = 0;
    const fn = async (_signal: AbortSignal, state: CallState) => {
        state.inFlight = true;
        const e = errors.at(calls++);
        if (e) throw e();
        return "ok";
    };
    return { fn, calls: () => calls };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

/** Runs `p` while advancing fake time until it settles. */
async function settle<T>(p: Promise<T>, stepMs = 10, maxMs = 60_000): Promise<{ value?: T; error?: unknown }> {
    let out: { value?: T; error?: unknown } | undefined;
    p.then(
        (value) => (out = { value }),
        (error: unknown) => (out = { error }),
    );
    for (let t = 0; t < maxMs && !out; t += stepMs) await jest.advanceTimersByTimeAsync(stepMs);
    if (!out) throw new Error("did not settle");
    return out;
}

describe("retry decisions", () => {
    test("READONLY (refused, not applied) is retried even for a non-idempotent call, with jittered backoff", async () => {
        const { policies, retries } = setup();
        const a = scripted(readonly, readonly, readonly);
        const r = await settle(policies.execute(a.fn, { idempotent: false, deadlineMs: 10_000 }));
        expect(r.value).toBe("ok");
        expect(a.calls()).toBe(4);
        expect(retries.map((x) => x.errorClass)).toEqual(["readonly", "readonly", "readonly"]);
        for (const x of retries) {
            expect(x.delayMs).toBeGreaterThanOrEqual(0);
            expect(x.delayMs).toBeLessThanOrEqual(RETRY.maxDelayMs);
        }
    });

    test("NOREPLICAS (a just-promoted master waiting for its replica) is retried at short intervals, other refusals back off further", async () => {
        const noreplicas = () => replyError("NOREPLICAS Not enough good replicas to write.");
        const slow = { ...RETRY, maxDelayMs: 1000 };
        const { policies, retries } = setup(slow);
        const a = scripted(...Array.from({ length: 12 }, () => noreplicas));
        const r = await settle(policies.execute(a.fn, { idempotent: false, deadlineMs: 10_000 }), 1);
        expect(r.value).toBe("ok");
        expect(retries).toHaveLength(12);
        for (const x of retries) expect(x.delayMs).toBeLessThanOrEqual(NOREPLICAS_MAX_DELAY_MS);
        // The same number of READONLY refusals grows past that (decorrelated jitter, cap 1000 ms).
        const other = setup(slow);
        const b = scripted(...Array.from({ length: 12 }, () => readonly));
        await settle(other.policies.execute(b.fn, { idempotent: false, deadlineMs: 60_000 }), 5);
        expect(Math.max(...other.retries.map((x) => x.delayMs))).toBeGreaterThan(NOREPLICAS_MAX_DELAY_MS);
    });

    test("a timed-out command of a non-idempotent call is not retried: OutcomeUnknownError", async () => {
        const { policies, retries } = setup();
        const a = scripted(() => new Error("Command timed out"));
        const r = await settle(policies.execute(a.fn, { idempotent: false, deadlineMs: 10_000 }));
        expect(r.error).toBeInstanceOf(OutcomeUnknownError);
        expect((r.error as Error).message).toMatch(/outcome unknown.*not retried because the call is not idempotent/);
        expect(((r.error as Error).cause as Error).message).toBe("Command timed out");
        expect(a.calls()).toBe(1);
        expect(retries).toEqual([]);
    });

    test("the same error is retried for an idempotent call", async () => {
        const { policies } = setup();
        const a = scripted(
            () => new Error("Command timed out"),
            () => new Error("Connection is closed."),
        );
        const r = await settle(policies.execute(a.fn, { idempotent: true, deadlineMs: 10_000 }));
        expect(r.value).toBe("ok");
        expect(a.calls()).toBe(3);
    });

    test("errors Redis answered pass through unchanged and are not retried", async () => {
        const { policies } = setup();
        const wrongtype = replyError("WRONGTYPE Operation against a key holding the wrong kind of value");
        const a = scripted(() => wrongtype);
        const r = await settle(policies.execute(a.fn, { idempotent: true, deadlineMs: 10_000 }));
        expect(r.error).toBe(wrongtype);
        expect(a.calls()).toBe(1);
    });

    test("maxAttempts bounds retries", async () => {
        const { policies } = setup({ ...RETRY, maxAttempts: 2 });
        const a = scripted(readonly, readonly, readonly, readonly);
        const r = await settle(policies.execute(a.fn, { idempotent: true, deadlineMs: 10_000 }));
        expect((r.error as Error).message).toMatch(/^READONLY/);
        expect(a.calls()).toBe(3);
    });
});

describe("deadline", () => {
    test("nothing sent before the deadline: DeadlineExceededError says nothing was applied", async () => {
        const { policies } = setup();
        const waitForever = (signal: AbortSignal) =>
            new Promise<string>((_, reject) => {
                signal.addEventListener("abort", () => {
                    reject(new NotConnectedError("master"));
                });
            });
        const r = await settle(policies.execute(waitForever, { idempotent: false, deadlineMs: 1500 }));
        expect(r.error).toBeInstanceOf(DeadlineExceededError);
        expect((r.error as DeadlineExceededError).outcome).toBe("not-executed");
        expect((r.error as Error).message).toBe(
            'Redis call exceeded its 1500 ms deadline before any command was sent (no ready master connection); nothing was applied. Raise "deadlineMs" if failovers take longer here.',
        );
    });

    test("deadline while a command is in flight: outcome unknown, not replayed", async () => {
        const { policies } = setup();
        let calls = 0;
        const hang = (_signal: AbortSignal, state: CallState) => {
            calls++;
            state.inFlight = true;
            return new Promise<string>(() => undefined);
        };
        const r = await settle(policies.execute(hang, { idempotent: true, deadlineMs: 800 }));
        expect(r.error).toBeInstanceOf(DeadlineExceededError);
        expect((r.error as DeadlineExceededError).outcome).toBe("unknown");
        expect((r.error as Error).message).toMatch(
            /^Redis call exceeded its 800 ms deadline; outcome unknown: the command was sent and may or may not have been applied\. It will not be replayed\./,
        );
        await jest.advanceTimersByTimeAsync(10_000);
        expect(calls).toBe(1);
    });

    test("an earlier attempt of unknown outcome keeps the deadline's outcome unknown", async () => {
        const { policies } = setup();
        let calls = 0;
        const fn = (signal: AbortSignal, state: CallState) => {
            calls++;
            if (calls === 1) {
                state.inFlight = true;
                return Promise.reject(new Error("Command timed out"));
            }
            return new Promise<string>((_, reject) => {
                signal.addEventListener("abort", () => {
                    reject(new NotConnectedError("master"));
                });
            });
        };
        const r = await settle(policies.execute(fn, { idempotent: true, deadlineMs: 1000 }));
        expect((r.error as DeadlineExceededError).outcome).toBe("unknown");
    });

    test("a durable write applied but not confirmed by the deadline: WriteNotAcknowledgedError", async () => {
        const { policies } = setup();
        const fn = (signal: AbortSignal, state: CallState) => {
            state.applied = { acknowledged: 0, required: 1 };
            return new Promise<string>((_, reject) => {
                signal.addEventListener("abort", () => {
                    reject(new WriteNotAcknowledgedError(1, 0, "timeout"));
                });
            });
        };
        const r = await settle(policies.execute(fn, { idempotent: false, deadlineMs: 500 }));
        expect(r.error).toBeInstanceOf(WriteNotAcknowledgedError);
        expect(r.error).toMatchObject({ required: 1, acknowledged: 0, reason: "timeout", outcome: "failed" });
    });
});

describe("circuit breaker", () => {
    const unreachable = (n: { calls: number }) => async () => {
        n.calls++;
        throw new NotConnectedError("master");
    };

    test("opens after consecutive unavailability, refuses without calling, half-opens, closes on a good probe", async () => {
        const { policies, states } = setup({ ...RETRY, maxAttempts: 0 });
        const n = { calls: 0 };
        for (let i = 0; i < 3; i++) {
            const r = await settle(policies.execute(unreachable(n), { idempotent: true, deadlineMs: 5000 }));
            expect(r.error).toBeInstanceOf(NotConnectedError);
        }
        expect(policies.breakerState).toBe("open");
        const refused = await settle(policies.execute(unreachable(n), { idempotent: true, deadlineMs: 5000 }));
        expect(refused.error).toBeInstanceOf(CircuitOpenError);
        expect((refused.error as CircuitOpenError).outcome).toBe("not-executed");
        expect(n.calls).toBe(3);

        await jest.advanceTimersByTimeAsync(BREAKER.halfOpenAfterMs);
        const probe = await settle(policies.execute(async () => "pong", { idempotent: true, deadlineMs: 5000 }));
        expect(probe.value).toBe("pong");
        expect(policies.breakerState).toBe("closed");
        expect(states).toEqual(["open", "half-open", "closed"]);
    });

    test("a failed probe opens it again", async () => {
        const { policies, states } = setup({ ...RETRY, maxAttempts: 0 });
        const n = { calls: 0 };
        for (let i = 0; i < 3; i++)
            await settle(policies.execute(unreachable(n), { idempotent: true, deadlineMs: 5000 }));
        await jest.advanceTimersByTimeAsync(BREAKER.halfOpenAfterMs);
        await settle(policies.execute(unreachable(n), { idempotent: true, deadlineMs: 5000 }));
        expect(states).toEqual(["open", "half-open", "open"]);
        expect(n.calls).toBe(4);
    });

    test("deadlines count as unavailability", async () => {
        const { policies } = setup();
        const waitForever = (signal: AbortSignal) =>
            new Promise<string>((_, reject) => {
                signal.addEventListener("abort", () => {
                    reject(new NotConnectedError("master"));
                });
            });
        for (let i = 0; i < 3; i++) await settle(policies.execute(waitForever, { idempotent: true, deadlineMs: 300 }));
        expect(policies.breakerState).toBe("open");
    });

    test("command errors and unknown outcomes of non-idempotent calls do not open it", async () => {
        const { policies } = setup({ ...RETRY, maxAttempts: 0 });
        for (let i = 0; i < 5; i++) {
            await settle(
                policies.execute(async () => Promise.reject(replyError("WRONGTYPE x")), {
                    idempotent: true,
                    deadlineMs: 5000,
                }),
            );
            const r = await settle(
                policies.execute(
                    async (_s, st) => {
                        st.inFlight = true;
                        throw new Error("Command timed out");
                    },
                    { idempotent: false, deadlineMs: 5000 },
                ),
            );
            expect(r.error).toBeInstanceOf(OutcomeUnknownError);
        }
        expect(policies.breakerState).toBe("closed");
    });

    test("a success resets the count", async () => {
        const { policies } = setup({ ...RETRY, maxAttempts: 0 });
        const n = { calls: 0 };
        for (let round = 0; round < 3; round++) {
            for (let i = 0; i < 2; i++)
                await settle(policies.execute(unreachable(n), { idempotent: true, deadlineMs: 5000 }));
            await settle(policies.execute(async () => "ok", { idempotent: true, deadlineMs: 5000 }));
        }
        expect(policies.breakerState).toBe("closed");
    });
});

// The first attempt runs without the retry loop's async frame; only a failure enters the loop.
// These pin that both keep the breaker's counting, the retry semantics and the deadline.
describe("first attempt and retry loop", () => {
    const down = () => new NotConnectedError("master") as Error;

    test("failures that were not retried away are counted: the breaker opens at the threshold", async () => {
        const { policies, states } = setup({ ...RETRY, maxAttempts: 0 });
        const a = scripted(down, down, down, down);
        for (let i = 0; i < 2; i++) {
            const r = await settle(policies.execute(a.fn, { idempotent: true, deadlineMs: 5000 }));
            expect(r.error).toBeInstanceOf(NotConnectedError);
            expect(policies.breakerState).toBe("closed");
        }
        await settle(policies.execute(a.fn, { idempotent: true, deadlineMs: 5000 }));
        expect(policies.breakerState).toBe("open");
        expect(states).toEqual(["open"]);
        const refused = await settle(policies.execute(a.fn, { idempotent: true, deadlineMs: 5000 }));
        expect(refused.error).toBeInstanceOf(CircuitOpenError);
        expect(a.calls()).toBe(3);
    });

    test("a call that failed first and then succeeded on retry counts once, as a success", async () => {
        const { policies, retries } = setup({ ...RETRY, maxAttempts: 3 });
        const n = { fail: 0 };
        const failing = async () => {
            n.fail++;
            throw down();
        };
        for (let round = 0; round < 3; round++) {
            // Two counted failures (retries exhausted) ...
            for (let i = 0; i < 2; i++) await settle(policies.execute(failing, { idempotent: true, deadlineMs: 5000 }));
            // ... then a call whose first attempt fails but whose retry succeeds: resets the count.
            const a = scripted(down);
            const r = await settle(policies.execute(a.fn, { idempotent: false, deadlineMs: 5000 }));
            expect(r.value).toBe("ok");
            expect(a.calls()).toBe(2);
        }
        expect(policies.breakerState).toBe("closed");
        expect(n.fail).toBe(3 * 2 * 4); // each failing call: 1 attempt + 3 retries
        expect(retries.length).toBe(3 * 2 * 3 + 3);
    });

    test("a hung first attempt gets the deadline, which the breaker counts at once; its late failure changes nothing", async () => {
        const { policies } = setup({ ...RETRY, maxAttempts: 0 });
        const rejects: Array<(e: Error) => void> = [];
        const hang = (_s: AbortSignal, state: CallState) => {
            state.inFlight = true;
            return new Promise<string>((_, reject) => rejects.push(reject));
        };
        for (let i = 0; i < 3; i++) {
            const started = Date.now();
            const r = await settle(policies.execute(hang, { idempotent: true, deadlineMs: 300 }), 1);
            expect(r.error).toBeInstanceOf(DeadlineExceededError);
            expect((r.error as DeadlineExceededError).outcome).toBe("unknown");
            expect(Date.now() - started).toBeGreaterThanOrEqual(300);
            expect(Date.now() - started).toBeLessThanOrEqual(310);
        }
        // The breaker counts what the caller got, when the caller got it.
        expect(policies.breakerState).toBe("open");
        for (const reject of rejects) reject(new Error("Command timed out"));
        await jest.advanceTimersByTimeAsync(1);
        expect(policies.breakerState).toBe("open");
    });

    test("no attempt starts after the deadline: the backoff sleep wakes on the deadline and the loop stops", async () => {
        const { policies } = setup();
        let seen: AbortSignal | undefined;
        let calls = 0;
        const fn = (signal: AbortSignal) => {
            seen = signal;
            calls++;
            return Promise.reject(down());
        };
        const r = await settle(policies.execute(fn, { idempotent: false, deadlineMs: 1000 }), 1);
        expect(r.error).toBeInstanceOf(DeadlineExceededError);
        expect((r.error as DeadlineExceededError).outcome).toBe("not-executed");
        expect(seen!.aborted).toBe(true);
        const atDeadline = calls;
        await jest.advanceTimersByTimeAsync(5000);
        expect(calls).toBe(atDeadline);
    });
});
