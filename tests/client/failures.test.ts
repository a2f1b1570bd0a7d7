/**
 * Failures that must say what they are, against real redis-server / redis-sentinel processes:
 * deadlines under refusal (nothing sent after "not executed"), transactions and scripts refused
 * or failing, and refused credentials.
 */
import {
    AuthenticationError,
    createSentinelClient,
    DeadlineExceededError,
    OutcomeUnknownError,
    SentinelClient,
    SentinelClientOptions,
} from "../../client";
import { ClusterHandle, NodeAddress, openCluster } from "../../client/testing/cluster";
import { addr, masterFromSentinels, waitFor, withConnection } from "../../client/testing/sentinelQueries";
import { describeWithServers } from "./serverTier";
import { TEST_DEADLINE_MS, testClientOptions } from "./testClient";

/**
 * How long the tests watch for a call sent late (after its caller got "not executed"). The old
 * client sent such calls within 700 ms of the error (its retry sleep ignored the deadline); the
 * longest backoff sleep is `retry.maxDelayMs` (500 ms), so a late send shows up well within this.
 */
const LATE_SEND_WINDOW_MS = 1500;
const DEADLINE_MS = TEST_DEADLINE_MS;

function clientOptions(c: ClusterHandle, extra: Partial<SentinelClientOptions> = {}): SentinelClientOptions {
    return testClientOptions(c, {
        metrics: false,
        // These tests make many calls fail on purpose; the breaker must not refuse the next test's calls.
        breaker: { consecutiveFailures: 1000 },
        ...extra,
    });
}

/** Resolves after `ms`: only for watching that something does NOT happen (see LATE_SEND_WINDOW_MS). */
const quietPeriod = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeWithServers("failures against a real cluster", () => {
    let c: ClusterHandle;
    let client: SentinelClient;
    let master: NodeAddress;
    const onMaster = <T>(fn: Parameters<typeof withConnection<T>>[2]) => withConnection(master, c.password, fn);
    const refuseWrites = () => onMaster((r) => r.config("SET", "min-replicas-to-write", "3"));
    const allowWrites = () => onMaster((r) => r.config("SET", "min-replicas-to-write", "0"));

    beforeAll(async () => {
        c = await openCluster();
        client = createSentinelClient(clientOptions(c));
        await client.master.whenReady();
        const m = await masterFromSentinels(c);
        if (!m) throw new Error("no master");
        master = m;
    });
    afterAll(async () => {
        await (client as SentinelClient | undefined)?.close();
        await (c as ClusterHandle | undefined)?.close();
    });
    afterEach(async () => {
        await allowWrites();
    });

    test("refused (NOREPLICAS) past the deadline: 'not executed' at the deadline, and never sent afterwards", async () => {
        await refuseWrites();
        const writes = Array.from({ length: 10 }, () =>
            client.write((r) => r.incr("late:write"), { deadlineMs: 1000 }).catch((e: unknown) => e),
        );
        const durable = Array.from({ length: 5 }, () =>
            client
                .durableWrite((p) => p.incr("late:durable"), { deadlineMs: 1000, timeoutMs: 100 })
                .catch((e: unknown) => e),
        );
        const errors = await Promise.all([...writes, ...durable]);
        for (const e of errors) expect(e).toBeInstanceOf(DeadlineExceededError);
        // Between attempts (the usual case) the deadline says "not executed"; an attempt still on the wire at the
        // deadline (refusals are retried every 50 ms at most; more likely on a loaded machine) honestly says "unknown".
        expect(errors.map((e) => (e as DeadlineExceededError).outcome)).toContain("not-executed");
        // Writes are accepted again right after the callers were told "nothing was applied".
        await allowWrites();
        await quietPeriod(LATE_SEND_WINDOW_MS);
        expect(await onMaster((r) => r.mget("late:write", "late:durable"))).toEqual([null, null]);
    });

    test("MULTI/EXEC discarded with EXECABORT after NOREPLICAS is retried, and applied once", async () => {
        await refuseWrites();
        const retried: string[] = [];
        const onRetry = (r: { errorClass: string }) => retried.push(r.errorClass);
        client.on("retry", onRetry);
        try {
            const tx = client.write((r) => r.multi().incr("tx:write").exec());
            const durableTx = client.durableWrite((p) => p.call("MULTI").incr("tx:durable").call("EXEC"));
            await waitFor("both transactions retried", () => Promise.resolve(retried.length >= 4), 5000, 20);
            await allowWrites();
            expect(await tx).toEqual([[null, 1]]);
            const d = await durableTx;
            expect(d.acknowledged).toBeGreaterThanOrEqual(1);
            expect(retried).toContain("noreplicas");
            expect(await onMaster((r) => r.mget("tx:write", "tx:durable"))).toEqual(["1", "1"]);
        } finally {
            client.off("retry", onRetry);
        }
    });

    test("a script that wrote, then failed with a 'refused' error, is not sent again unless declared idempotent", async () => {
        const script = "redis.call('INCR', KEYS[1]); return redis.error_reply('LOADING fake: the script wrote first')";
        const once = await client.write((r) => r.eval(script, 1, "script:once")).catch((e: unknown) => e);
        expect(once).toBeInstanceOf(OutcomeUnknownError);
        expect(await onMaster((r) => r.get("script:once"))).toBe("1");
        // Declared idempotent: retried (the caller said sending it twice is harmless) until the deadline.
        const again = await client
            .write((r) => r.eval(script, 1, "script:idem"), { idempotent: true, deadlineMs: 1000 })
            .catch((e: unknown) => e);
        expect(again).toBeInstanceOf(DeadlineExceededError);
        expect(Number(await onMaster((r) => r.get("script:idem")))).toBeGreaterThan(1);
    });

    test("a wrong Redis password fails fast with AuthenticationError naming the option, and reconnects back off", async () => {
        const before = await connectionsReceived(c, [master], c.password);
        const bad = createSentinelClient(clientOptions(c, { redis: { password: "wrong" } }));
        try {
            const err = await bad.write((r) => r.set("k", "v")).catch((e: unknown) => e);
            expect(err).toBeInstanceOf(AuthenticationError);
            expect(err).toMatchObject({ server: "redis", outcome: "not-executed" });
            expect((err as Error).message).toMatch(/WRONGPASS.*Check the "redis.username"\/"redis.password" options/);
            expect(bad.breakerState).toBe("closed");
            // Calls keep failing at once with the same error, long before their deadline.
            const started = Date.now();
            await expect(bad.read((r) => r.get("k"))).rejects.toBeInstanceOf(AuthenticationError);
            expect(Date.now() - started).toBeLessThan(DEADLINE_MS);
            await quietPeriod(5000);
        } finally {
            await bad.close();
        }
        // Reconnects 1 s, 2 s, 4 s apart (the old client: about 2 per second).
        expect((await connectionsReceived(c, [master], c.password)) - before).toBeLessThanOrEqual(5);
    });

    test("a wrong Sentinel password fails fast with AuthenticationError naming the option, and reconnects back off", async () => {
        const before = await connectionsReceived(c, c.sentinels, c.sentinelPassword);
        const bad = createSentinelClient(clientOptions(c, { sentinel: { password: "wrong" } }));
        try {
            const err = await bad.write((r) => r.set("k", "v")).catch((e: unknown) => e);
            expect(err).toBeInstanceOf(AuthenticationError);
            expect(err).toMatchObject({ server: "sentinel" });
            expect((err as Error).message).toMatch(/Check the "sentinel.username"\/"sentinel.password" options/);
            await quietPeriod(5000);
        } finally {
            await bad.close();
        }
        // The old client: about 19 connections a second to the Sentinels.
        expect((await connectionsReceived(c, c.sentinels, c.sentinelPassword)) - before).toBeLessThanOrEqual(25);
    });

    test("every Sentinel down, master healthy: after its connection closes the client reconnects to the master it knows", async () => {
        const { killSentinel, restartSentinel } = c;
        if (!killSentinel || !restartSentinel) throw new Error("this cluster provider cannot stop Sentinels");
        await client.write((r) => r.set("no-sentinel", "before"));
        for (const s of c.sentinels) await killSentinel(s);
        try {
            // The client's connection to the master closes (as after a network blip or a server timeout).
            const epoch = client.connectionEpoch;
            await onMaster((r) => r.call("CLIENT", "KILL", "TYPE", "normal"));
            await waitFor(
                "the client to reconnect with no Sentinel answering",
                () => Promise.resolve(client.connectionEpoch > epoch && client.master.isReady()),
                10_000,
                20,
            );
            await expect(client.write((r) => r.set("no-sentinel", "after"), { deadlineMs: 5000 })).resolves.toBe("OK");
            expect(client.master.address).toBe(addr(master));
            // Durable writes keep their checks on that connection: the replicas are attached.
            const d = await client.durableWrite((p) => p.set("no-sentinel:durable", "x"), { deadlineMs: 5000 });
            expect(d.acknowledged).toBeGreaterThanOrEqual(1);
            expect(await onMaster((r) => r.get("no-sentinel"))).toBe("after");
        } finally {
            for (const s of c.sentinels) await restartSentinel(s);
        }
    });
});

/** Sum of `total_connections_received` over `nodes` (minus the connection asking). */
async function connectionsReceived(
    c: ClusterHandle,
    nodes: readonly NodeAddress[],
    password: string | undefined,
): Promise<number> {
    let total = 0;
    for (const n of nodes) {
        const info = await withConnection(n, password, (r) => r.info("stats"));
        total += Number(/total_connections_received:(\d+)/.exec(info)?.[1] ?? NaN) - 1;
    }
    return total;
}
