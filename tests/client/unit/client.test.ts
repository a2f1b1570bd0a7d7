import {
    ClientClosedError,
    createSentinelClient,
    DeadlineExceededError,
    InvalidOptionsError,
    SentinelClientOptions,
} from "../../../client";

// Port 1 on loopback: nothing listens, every connection attempt is refused at once.
const unreachable: SentinelClientOptions = {
    sentinels: [{ host: "127.0.0.1", port: 1 }],
    masterName: "mymaster",
    timeouts: { connectMs: 100, commandMs: 100, deadlineMs: 300, sentinelCommandMs: 100, disconnectMs: 50 },
    metrics: false,
};

describe("createSentinelClient", () => {
    test("bad options throw before anything connects, listing every problem", () => {
        expect(() => createSentinelClient({ sentinels: [], masterName: "" })).toThrow(InvalidOptionsError);
    });

    test("no master: a call fails at its deadline saying nothing was sent", async () => {
        const client = createSentinelClient(unreachable);
        try {
            const err = await client.write((r) => r.incr("k")).catch((e: unknown) => e);
            expect(err).toBeInstanceOf(DeadlineExceededError);
            expect((err as DeadlineExceededError).outcome).toBe("not-executed");
        } finally {
            await client.close();
        }
    });

    test("durableWrite rejects bad arguments without sending anything", async () => {
        const client = createSentinelClient(unreachable);
        try {
            await expect(client.durableWrite((p) => p.set("k", "v"), { replicas: 0 })).rejects.toThrow(
                "durableWrite: replicas must be an integer ≥ 1, got 0",
            );
            await expect(client.durableWrite((p) => p.set("k", "v"), { timeoutMs: 100 })).rejects.toThrow(
                "durableWrite: timeoutMs must be an integer between 1 and timeouts.commandMs - 1 (99), got 100; WAIT blocks for up to timeoutMs and would otherwise be cut off as a command timeout",
            );
        } finally {
            await client.close();
        }
    });

    test("after close(), calls fail at once with ClientClosedError, and waiting calls are released", async () => {
        const client = createSentinelClient({
            ...unreachable,
            timeouts: { ...unreachable.timeouts, deadlineMs: 60_000 },
        });
        const waiting = client.read((r) => r.get("k")).catch((e: unknown) => e);
        // The call is waiting for a master (none is reachable) from the moment it is made.
        await client.close();
        expect(await waiting).toBeInstanceOf(ClientClosedError);
        await expect(client.read((r) => r.get("k"))).rejects.toBeInstanceOf(ClientClosedError);
    });
});

// ioredis' Sentinel connector sleeps between passes over the Sentinel list (sentinelRetryStrategy,
// ≤ 1 s) and does not cancel that sleep on disconnect; let it run out so Jest exits cleanly.
afterAll(() => new Promise((r) => setTimeout(r, 1100)));
