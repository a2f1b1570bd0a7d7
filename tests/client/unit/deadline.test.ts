import { DeadlineWaiter, joinDeadline } from "../../../client/deadline";

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

class Recorder extends DeadlineWaiter {
    expiredAt: number | undefined;
    expired(): void {
        this.expiredAt = Date.now();
    }
}

describe("deadline slots", () => {
    test("expires at the deadline (never before, at most one 5 ms slot later) and aborts the signal first", async () => {
        const started = Date.now();
        let abortedWhenExpired: boolean | undefined;
        const w = new (class extends DeadlineWaiter {
            expired(): void {
                abortedWhenExpired = signal.aborted;
            }
        })();
        const signal = joinDeadline(1000, w);
        await jest.advanceTimersByTimeAsync(999);
        expect(signal.aborted).toBe(false);
        await jest.advanceTimersByTimeAsync(6);
        expect(signal.aborted).toBe(true);
        // The signal is aborted before the waiter hears of it: whatever the waiter does, the call's
        // senders already see the deadline.
        expect(abortedWhenExpired).toBe(true);
        expect(Date.now() - started).toBeLessThanOrEqual(1005);
    });

    test("deadlines in the same slot share one timer and one signal; a waiter that left is not called", async () => {
        const waiters = Array.from({ length: 100 }, () => new Recorder());
        const signals = waiters.map((w) => joinDeadline(1000, w));
        expect(jest.getTimerCount()).toBe(1);
        expect(new Set(signals).size).toBe(1);
        waiters[0].leave();
        await jest.advanceTimersByTimeAsync(1010);
        expect(waiters[0].expiredAt).toBeUndefined();
        expect(waiters.slice(1).every((w) => w.expiredAt !== undefined)).toBe(true);
        expect(jest.getTimerCount()).toBe(0);
    });

    test("a slot whose calls all left no longer holds the process open", async () => {
        const w = new Recorder();
        const signal = joinDeadline(1000, w);
        w.leave();
        w.leave(); // twice is harmless
        await jest.advanceTimersByTimeAsync(1010);
        expect(w.expiredAt).toBeUndefined();
        expect(signal.aborted).toBe(true);
    });
});
