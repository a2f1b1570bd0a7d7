/** A value served from the stale cache, or fresh from Redis. */
export type ReadResult<T> =
    | { readonly value: T; readonly stale: false }
    | {
          readonly value: T;
          readonly stale: true;
          /** Age of the value, ms since it was read from Redis. */ readonly ageMs: number;
      };

interface Entry<T> {
    value: T;
    storedAt: number;
}

/**
 * Bounded LRU with a TTL, holding the last value read for each key so that it can be served,
 * marked stale, while Redis is unreachable. A `Map` keeps insertion order: re-inserting on every
 * hit makes the first key the least recently used one. Not a general cache: values are only read
 * back on failure.
 */
export class StaleCache<T = unknown> {
    private readonly entries = new Map<string, Entry<T>>();

    constructor(
        /** Most entries kept; the least recently used is evicted first. */
        readonly maxEntries: number,
        /** Entries older than this are dropped instead of served. */
        readonly ttlMs: number,
        private readonly now: () => number = Date.now,
    ) {
        if (!Number.isInteger(maxEntries) || maxEntries < 1)
            throw new RangeError(`StaleCache maxEntries must be an integer ≥ 1, got ${maxEntries}`);
        if (!(ttlMs > 0)) throw new RangeError(`StaleCache ttlMs must be > 0, got ${ttlMs}`);
    }

    get size(): number {
        return this.entries.size;
    }

    /** Remembers `value` as read from Redis now. */
    set(key: string, value: T): void {
        this.entries.delete(key);
        this.entries.set(key, { value, storedAt: this.now() });
        while (this.entries.size > this.maxEntries) {
            const oldest = this.entries.keys().next().value as string;
            this.entries.delete(oldest);
        }
    }

    /** The last value for `key` and its age, or `undefined` when absent or older than the TTL. */
    get(key: string): { value: T; ageMs: number } | undefined {
        const entry = this.entries.get(key);
        if (!entry) return undefined;
        const ageMs = this.now() - entry.storedAt;
        if (ageMs > this.ttlMs) {
            this.entries.delete(key);
            return undefined;
        }
        this.entries.delete(key);
        this.entries.set(key, entry);
        return { value: entry.value, ageMs };
    }

    delete(key: string): void {
        this.entries.delete(key);
    }

    clear(): void {
        this.entries.clear();
    }
}
