import { StaleCache } from "../../../client/staleCache";

function clock(start = 1_000) {
    let now = start;
    return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("StaleCache", () => {
    test("returns the last value with its age", () => {
        const t = clock();
        const c = new StaleCache<string>(10, 1000, t.now);
        c.set("a", "1");
        t.advance(250);
        expect(c.get("a")).toEqual({ value: "1", ageMs: 250 });
        c.set("a", "2");
        expect(c.get("a")).toEqual({ value: "2", ageMs: 0 });
    });

    test("never serves a value older than the TTL, and forgets it", () => {
        const t = clock();
        const c = new StaleCache<string>(10, 1000, t.now);
        c.set("a", "1");
        t.advance(1000);
        expect(c.get("a")).toEqual({ value: "1", ageMs: 1000 });
        t.advance(1);
        expect(c.get("a")).toBeUndefined();
        expect(c.size).toBe(0);
    });

    test("evicts the least recently used entry beyond maxEntries", () => {
        const c = new StaleCache<number>(3, 60_000);
        c.set("a", 1);
        c.set("b", 2);
        c.set("c", 3);
        expect(c.get("a")?.value).toBe(1); // a is now the most recently used
        c.set("d", 4);
        expect(c.size).toBe(3);
        expect(c.get("b")).toBeUndefined();
        expect(c.get("a")?.value).toBe(1);
        expect(c.get("c")?.value).toBe(3);
        expect(c.get("d")?.value).toBe(4);
    });

    test("re-setting a key refreshes its position", () => {
        const c = new StaleCache<number>(2, 60_000);
        c.set("a", 1);
        c.set("b", 2);
        c.set("a", 10);
        c.set("c", 3);
        expect(c.get("b")).toBeUndefined();
        expect(c.get("a")?.value).toBe(10);
    });

    test("stores null and falsy values as values", () => {
        const c = new StaleCache<unknown>(5, 60_000);
        c.set("n", null);
        c.set("z", 0);
        expect(c.get("n")).toMatchObject({ value: null });
        expect(c.get("z")).toMatchObject({ value: 0 });
    });

    test("rejects nonsensical bounds", () => {
        expect(() => new StaleCache(0, 1000)).toThrow("StaleCache maxEntries must be an integer ≥ 1, got 0");
        expect(() => new StaleCache(1, 0)).toThrow("StaleCache ttlMs must be > 0, got 0");
    });
});
