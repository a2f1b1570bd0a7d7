import { TaskCancelledError } from "cockatiel";
import { DeadlinePolicy } from "../../../client/deadline";

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe("DeadlinePolicy", () => {
    test("passes results and errors through; back-to-back calls share one slot timer", async () => {
        const p = new DeadlinePolicy(1000);
        await expect(p.execute(async () => 42)).resolves.toBe(42);
        await expect(p.execute(() => 7)).resolves.toBe(7);
        const boom = new Error("boom");
        await expect(p.execute(async () => Promise.reject(boom))).rejects.toBe(boom);
        expect(jest.getTimerCount()).toBe(1);
        await jest.advanceTimersByTimeAsync(1010); // the slot expires with no call left in it
        expect(jest.getTimerCount()).toBe(0);
    });

    test("rejects at the deadline (never before) and aborts the inner signal", async () => {
        const p = new DeadlinePolicy(1000);
        let inner: AbortSignal | undefined;
        let settled: unknown;
        p.execute(({ signal }) => {
            inner = signal;
            return new Promise(() => undefined);
        }).catch((e) => (settled = e));
        await jest.advanceTimersByTimeAsync(999);
        expect(settled).toBeUndefined();
        expect(inner!.aborted).toBe(false);
        await jest.advanceTimersByTimeAsync(10); // slots are 5 ms wide
        expect(settled).toBeInstanceOf(TaskCancelledError);
        expect((settled as Error).message).toBe("Operation timed out after 1000ms");
        expect(inner!.aborted).toBe(true);
    });

    test("calls whose deadlines fall in the same slot share one timer", async () => {
        const p = new DeadlinePolicy(1000);
        const pending = Array.from({ length: 100 }, () =>
            p.execute(() => new Promise(() => undefined)).catch((e) => e),
        );
        expect(jest.getTimerCount()).toBe(1);
        await jest.advanceTimersByTimeAsync(1010);
        for (const e of await Promise.all(pending)) expect(e).toBeInstanceOf(TaskCancelledError);
    });

    test("a result that arrives after the deadline is dropped", async () => {
        const p = new DeadlinePolicy(100);
        let release!: (v: string) => void;
        const r = p.execute(() => new Promise<string>((res) => (release = res))).catch((e) => e);
        await jest.advanceTimersByTimeAsync(110);
        release("late");
        expect(await r).toBeInstanceOf(TaskCancelledError);
    });

    test("a parent signal aborts the call early", async () => {
        const p = new DeadlinePolicy(10_000);
        const parent = new AbortController();
        let inner: AbortSignal | undefined;
        const r = p
            .execute(({ signal }) => {
                inner = signal;
                return new Promise(() => undefined);
            }, parent.signal)
            .catch((e) => e);
        await jest.advanceTimersByTimeAsync(1);
        parent.abort();
        expect(await r).toBeInstanceOf(TaskCancelledError);
        expect(inner!.aborted).toBe(true);
    });
});
