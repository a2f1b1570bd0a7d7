import { DEADLINE_PASSED, DeadlineWaiter, joinDeadline, slotWidthMs } from "../../../client/deadline";

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

class Recorder extends DeadlineWaiter {
    expiredAt: number | undefined;
    expired(): void {
        this.expiredAt = Date.now();
    }
}

describe("deadline slots", () => {
    test("expires at the deadline (never before, at most one slot later) and aborts the signal first", async () => {
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
        await jest.advanceTimersByTimeAsync(slotWidthMs(1000) + 1);
        expect(signal.aborted).toBe(true);
        expect(signal.reason).toBe(DEADLINE_PASSED);
        // The signal is aborted before the waiter hears of it: whatever the waiter does, the call's
        // senders already see the deadline.
        expect(abortedWhenExpired).toBe(true);
        expect(Date.now() - started).toBeLessThanOrEqual(1000 + slotWidthMs(1000));
    });

    test("a slot is 1/64 of the deadline, between 5 and 50 ms wide", () => {
        expect([100, 320, 1000, 3200, 10_000, 60_000].map(slotWidthMs)).toEqual([5, 5, 15, 50, 50, 50]);
    });

    test("long deadlines of calls made one after another share a slot; short ones fire within 5 ms", async () => {
        const long = Array.from({ length: 10 }, () => new Recorder());
        const started = Date.now();
        const longSignals: AbortSignal[] = [];
        for (const w of long) {
            longSignals.push(joinDeadline(10_000, w));
            await jest.advanceTimersByTimeAsync(1);
        }
        // Ten calls 1 ms apart: at most two 50 ms slots (one if none straddles a slot boundary).
        expect(new Set(longSignals).size).toBeLessThanOrEqual(2);
        const short = new Recorder();
        joinDeadline(100, short);
        await jest.advanceTimersByTimeAsync(10_100);
        const after = (w: Recorder): number => (w.expiredAt ?? Infinity) - started;
        expect(after(short)).toBeGreaterThanOrEqual(110);
        expect(after(short)).toBeLessThanOrEqual(115);
        for (const [i, w] of long.entries()) {
            expect(after(w)).toBeGreaterThanOrEqual(10_000 + i);
            expect(after(w)).toBeLessThanOrEqual(10_000 + i + 50);
        }
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
