/* eslint-disable @typescript-eslint/no-non-null-assertion, @typescript-eslint/require-await -- test fakes implement async APIs without awaiting; a missing value fails the test where it is used */
/**
 * The client against real redis-server / redis-sentinel processes (loopback fixture, or the
 * cluster named by REDIS_HA_CLUSTER_MODULE). Faults: SIGKILL of the master, SIGSTOP of the master
 * past a failover, a manual failover (READONLY path), and every Redis node down.
 *
 * Invariants asserted (no timings):
 * - no caller-visible error that a retry would have fixed (idempotent durable writes: none at all);
 * - every write reported acknowledged (WAIT ≥ 1) is readable on the new master;
 * - non-idempotent writes are never applied twice: acked ≤ counter ≤ acked + errors;
 * - READONLY never reaches the caller.
 */
import { createServer, Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
    CircuitOpenError,
    classifyError,
    createSentinelClient,
    FailoverEvent,
    OutcomeUnknownError,
    SentinelClient,
    SentinelClientOptions,
    WriteNotAcknowledgedError,
} from "../../client";
import { ClusterHandle, NodeAddress, openCluster } from "../../client/testing/cluster";
import {
    addr,
    masterFromSentinels,
    roleOf,
    waitFor,
    waitUntilHealthy,
    withConnection,
} from "../../client/testing/sentinelQueries";
import { DurableWriteLoad, missingWrites, startCounter, startDurableWrites } from "../../client/testing/durableWrites";
import { describeWithServers } from "./serverTier";
import { testClientOptions } from "./testClient";

function clientOptions(c: ClusterHandle, extra: Partial<SentinelClientOptions> = {}): SentinelClientOptions {
    return testClientOptions(c, { connectionName: "client-test", ...extra });
}

async function readBack(c: ClusterHandle, master: NodeAddress, keys: string[]): Promise<string[]> {
    return withConnection(master, c.password, (r) => missingWrites(r, keys), 5000);
}

/** Runs writers and a counter, applies `fault` to the current master, returns what they saw. */
async function underFault(
    c: ClusterHandle,
    client: SentinelClient,
    prefix: string,
    fault: (master: NodeAddress, writes: DurableWriteLoad) => Promise<void>,
) {
    const failovers: FailoverEvent[] = [];
    client.on("failover", (e) => failovers.push(e));
    const oldMaster = (await masterFromSentinels(c))!;
    const writes = startDurableWrites(client, { prefix, writers: 4, idempotent: true });
    const counter = startCounter(client, `${prefix}:counter`);
    await waitFor("the first acknowledged writes", async () => writes.acks.length >= 50, 10_000, 20);
    const faultAt = Date.now();
    await fault(oldMaster, writes);
    await writes.stop();
    const report = writes;
    const counted = await counter.stop();
    const newMaster = (await masterFromSentinels(c))!;
    return { oldMaster, newMaster, report, counted, failovers, faultAt };
}

/** Waits until `n` more writes were acknowledged from now on: the writers are (again) making progress. */
async function writesResume(writes: DurableWriteLoad, n = 50): Promise<void> {
    const from = writes.acks.length;
    await waitFor("acknowledged writes to resume", async () => writes.acks.length >= from + n, 20_000, 20);
}

function expectCounterInvariant(counterValue: number, counted: { acked: number; errors: Error[] }) {
    // Every error of a non-idempotent write must be one that a retry could NOT safely fix.
    for (const e of counted.errors) {
        expect(
            e instanceof OutcomeUnknownError || (e instanceof WriteNotAcknowledgedError && e.outcome === "unknown"),
        ).toBe(true);
    }
    expect(counterValue).toBeGreaterThanOrEqual(counted.acked);
    expect(counterValue).toBeLessThanOrEqual(counted.acked + counted.errors.length);
}

describeWithServers("client against a Sentinel cluster: master crash", () => {
    let c: ClusterHandle;
    let client: SentinelClient;
    beforeAll(async () => {
        c = await openCluster({ downAfterMs: 2000, failoverTimeoutMs: 5000 });
        client = createSentinelClient(clientOptions(c));
        await client.master.whenReady();
    });
    afterAll(async () => {
        // beforeAll may have failed before assigning them.
        await (client as SentinelClient | undefined)?.close();
        await (c as ClusterHandle | undefined)?.close();
    });

    test("health reports the master, its role and every Sentinel", async () => {
        const h = await client.health();
        expect(h.httpStatus).toBe(200);
        expect(h.master.role).toBe("master");
        expect(h.master.address).toBe(addr((await masterFromSentinels(c))!));
        expect(h.sentinels).toMatchObject({ reachable: 3, total: 3 });
        expect(h.sentinels.nodes.every((n) => n.master === h.master.address)).toBe(true);
        expect(h.breaker).toBe("closed");
    });

    test("replica reads go to the same-region replica; writes still go to the master", async () => {
        const local = c.nodes[2];
        const rc = createSentinelClient(
            clientOptions(c, { readFrom: "replica", localReplicas: [local], metrics: false }),
        );
        try {
            await rc.replica!.whenReady();
            expect(rc.replica!.address).toBe(addr(local));
            const role = await rc.read((r) => r.call("ROLE") as Promise<unknown[]>);
            expect(role[0]).toBe("slave");
            await rc.durableWrite((p) => p.set("replica-read", "x"), { replicas: 2, timeoutMs: 500 });
            expect(await rc.read((r) => r.get("replica-read"))).toBe("x");
            expect((await rc.write((r) => r.call("ROLE") as Promise<unknown[]>))[0]).toBe("master");
        } finally {
            await rc.close();
        }
    });

    test("NOREPLICAS (refused before execution) is retried even for non-idempotent writes: none lost, none doubled", async () => {
        const master = (await masterFromSentinels(c))!;
        const retried: string[] = [];
        const onRetry = (r: { errorClass: string }) => retried.push(r.errorClass);
        client.on("retry", onRetry);
        const writes = startDurableWrites(client, { prefix: "noreplicas", writers: 2, idempotent: true });
        const counter = startCounter(client, "noreplicas:counter");
        await waitFor("the first acknowledged writes", async () => writes.acks.length >= 20, 10_000, 20);
        await withConnection(master, c.password, (r) => r.config("SET", "min-replicas-to-write", "3"));
        await waitFor("writes refused with NOREPLICAS and retried", async () => retried.length >= 10, 10_000, 20);
        await withConnection(master, c.password, (r) => r.config("SET", "min-replicas-to-write", "0"));
        await writesResume(writes);
        await writes.stop();
        const report = writes;
        const counted = await counter.stop();
        client.off("retry", onRetry);
        expect(retried).toContain("noreplicas");
        expect(report.errors).toEqual([]);
        expect(counted.errors).toEqual([]);
        expect(Number(await withConnection(master, c.password, (r) => r.get("noreplicas:counter")))).toBe(
            counted.acked,
        );
    });

    test("SIGKILL of the master: writes resume on the new master, no retryable error, no acknowledged write lost", async () => {
        const { oldMaster, newMaster, report, counted, failovers, faultAt } = await underFault(
            c,
            client,
            "crash",
            async (m, writes) => {
                await c.kill(m);
                await waitFor(
                    "a new master",
                    async () => {
                        const now = await masterFromSentinels(c);
                        return now && addr(now) !== addr(m) && client.master.address === addr(now);
                    },
                    20_000,
                );
                await writesResume(writes);
            },
        );
        expect(addr(newMaster)).not.toBe(addr(oldMaster));
        expect(report.errors.map((e) => `${e.key}: ${e.error.message}`)).toEqual([]);
        expect(report.acks.some((a) => a.at > faultAt + 500)).toBe(true); // writes resumed after the crash
        expect(failovers.some((f) => f.from === addr(oldMaster) && f.to === addr(newMaster))).toBe(true);
        expect(client.lastFailover?.to).toBe(addr(newMaster));
        expect(
            await readBack(
                c,
                newMaster,
                report.acks.map((a) => a.key),
            ),
        ).toEqual([]);
        const counterValue = Number(await withConnection(newMaster, c.password, (r) => r.get("crash:counter")));
        expectCounterInvariant(counterValue, counted);
    });
});

describeWithServers("client against a Sentinel cluster: master hang, then a manual failover", () => {
    let c: ClusterHandle;
    let client: SentinelClient;
    const readonlySeen: string[] = [];
    beforeAll(async () => {
        c = await openCluster({ downAfterMs: 2000, failoverTimeoutMs: 5000 });
        client = createSentinelClient(clientOptions(c));
        client.on("retry", (r) => r.errorClass === "readonly" && readonlySeen.push(String(r.error)));
        await client.master.whenReady();
    });
    afterAll(async () => {
        // beforeAll may have failed before assigning them.
        await (client as SentinelClient | undefined)?.close();
        await (c as ClusterHandle | undefined)?.close();
    });

    test("SIGSTOP of the master past a failover, then SIGCONT: no retryable error, no READONLY, no acknowledged write lost", async () => {
        const { oldMaster, newMaster, report, counted, failovers } = await underFault(
            c,
            client,
            "hang",
            async (m, writes) => {
                await c.pause(m);
                // Hung until the Sentinels have promoted another node; the writes must move there meanwhile.
                await waitFor(
                    "a failover away from the hung master",
                    async () => {
                        const now = await masterFromSentinels(c);
                        return now && addr(now) !== addr(m) && client.master.address === addr(now);
                    },
                    30_000,
                    100,
                );
                await writesResume(writes);
                await c.resume(m);
                // Sentinel converts the returning old master into a replica (~8 s later): keep writing
                // through the conversion.
                await waitFor(
                    "the old master to be converted to a replica",
                    async () => (await roleOf(c, m)) === "slave",
                    30_000,
                    250,
                );
                await writesResume(writes);
            },
        );
        expect(addr(newMaster)).not.toBe(addr(oldMaster));
        expect(report.errors.map((e) => `${e.key}: ${e.error.message}`)).toEqual([]);
        expect(
            counted.errors.filter((e) => /READONLY/.test(e.message) || classifyError(e).errorClass === "readonly"),
        ).toEqual([]);
        expect(failovers.some((f) => f.to === addr(newMaster))).toBe(true);
        expect(client.master.address).toBe(addr(newMaster));
        expect(
            await readBack(
                c,
                newMaster,
                report.acks.map((a) => a.key),
            ),
        ).toEqual([]);
        const counterValue = Number(await withConnection(newMaster, c.password, (r) => r.get("hang:counter")));
        expectCounterInvariant(counterValue, counted);
    });

    test("manual failover (SENTINEL FAILOVER, old master still alive): no error, no acknowledged write lost", async () => {
        await waitUntilHealthy(c, 2, 30_000);
        const { oldMaster, newMaster, report, counted } = await underFault(c, client, "manual", async (m, writes) => {
            await withConnection(c.sentinels[0], c.sentinelPassword, (r) =>
                r.call("SENTINEL", "FAILOVER", c.masterName),
            );
            await waitFor(
                "the manual failover",
                async () => {
                    const now = await masterFromSentinels(c);
                    return now && addr(now) !== addr(m) && client.master.address === addr(now);
                },
                20_000,
            );
            await writesResume(writes);
        });
        expect(addr(newMaster)).not.toBe(addr(oldMaster));
        expect(report.errors.map((e) => `${e.key}: ${e.error.message}`)).toEqual([]);
        expect(counted.errors.filter((e) => /READONLY/.test(e.message))).toEqual([]);
        expect(
            await readBack(
                c,
                newMaster,
                report.acks.map((a) => a.key),
            ),
        ).toEqual([]);
        const counterValue = Number(await withConnection(newMaster, c.password, (r) => r.get("manual:counter")));
        expectCounterInvariant(counterValue, counted);
    });
});

describeWithServers("client against a Sentinel cluster: every Redis node down", () => {
    let c: ClusterHandle;
    let client: SentinelClient;
    let server: Server;
    let url: string;
    beforeAll(async () => {
        c = await openCluster({ downAfterMs: 2000, failoverTimeoutMs: 5000 });
        client = createSentinelClient(
            clientOptions(c, {
                timeouts: { commandMs: 500, deadlineMs: 1500, healthMs: 300, sentinelCommandMs: 500 },
                // halfOpenAfterMs well above the deadline: the breaker must still be open when the test
                // looks at it after the call that opened it.
                breaker: { consecutiveFailures: 3, halfOpenAfterMs: 4000 },
            }),
        );
        await client.master.whenReady();
        server = createServer(client.healthHandler());
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
    });
    afterAll(async () => {
        await new Promise((r) => (server as Server | undefined)?.close(r));
        // beforeAll may have failed before assigning them.
        await (client as SentinelClient | undefined)?.close();
        await (c as ClusterHandle | undefined)?.close();
    });

    test("breaker opens, stale reads are served, health turns 503, then everything recovers", async () => {
        const states: string[] = [];
        client.on("breakerStateChange", (s) => states.push(s));
        const stale: string[] = [];
        client.on("staleServed", (s) => stale.push(s.errorClass));

        await client.write((r) => r.set("greeting", "hello"));
        expect(await client.readThrough("greeting", (r) => r.get("greeting"))).toEqual({
            value: "hello",
            stale: false,
        });
        let res = await fetch(url);
        expect(res.status).toBe(200);

        for (const n of c.nodes) await c.kill(n);

        // Each read fails (deadline, no master) and is answered from the stale cache until the
        // breaker opens; then reads are refused at once and still answered from the cache.
        for (let i = 0; i < 10 && client.breakerState !== "open"; i++) {
            const r = await client.readThrough("greeting", (x) => x.get("greeting"));
            expect(r).toMatchObject({ value: "hello", stale: true });
        }
        expect(client.breakerState).toBe("open");
        const whileOpen = await client.readThrough("greeting", (x) => x.get("greeting"));
        expect(whileOpen).toMatchObject({ value: "hello", stale: true });
        expect(whileOpen.stale && whileOpen.ageMs).toBeGreaterThan(0);
        expect(stale).toContain("circuit_open");
        await expect(client.write((r) => r.set("x", "y"))).rejects.toBeInstanceOf(CircuitOpenError);
        await expect(client.read((r) => r.get("not-cached"))).rejects.toBeInstanceOf(CircuitOpenError);

        res = await fetch(url);
        expect(res.status).toBe(503);
        const body = (await res.json()) as { breaker: string; sentinels: { reachable: number } };
        expect(body.breaker).toBe("open");
        expect(body.sentinels.reachable).toBe(3);

        // Half-open (the client's own probe is out, and fails: every node is still down). Calls
        // beside the probe do not wait for it: reads are answered from the stale cache at once
        // (each while the breaker is still half-open), writes are refused at once and never run.
        await waitFor(
            "the client's own half-open probe",
            () => Promise.resolve(client.breakerState === "half-open"),
            10_000,
            5,
        );
        const during = await Promise.all(
            Array.from({ length: 11 }, () =>
                client
                    .readThrough("greeting", (x) => x.get("greeting"))
                    .then((r) => ({ r, state: client.breakerState })),
            ),
        );
        for (const { r, state } of during) {
            expect(r).toMatchObject({ value: "hello", stale: true });
            expect(state).toBe("half-open");
        }
        const refused = await Promise.all(
            Array.from({ length: 5 }, () => client.write((r) => r.incr("beside-probe")).catch((e: unknown) => e)),
        );
        for (const e of refused) expect(e).toBeInstanceOf(CircuitOpenError);

        for (const n of c.nodes) await c.restart(n);
        await waitUntilHealthy(c, 2, 30_000);

        // No call is made: the client probes by itself while its breaker is open, so health returns to 200.
        await waitFor("health 200 without any call", async () => (await fetch(url)).status === 200, 20_000, 200);
        expect(client.breakerState).toBe("closed");

        // The restarted nodes have no persistence: the key is gone, and the answer is fresh. The
        // INCRs refused beside the probe never ran.
        const fresh = await waitFor(
            "a fresh read",
            async () => {
                const r = await client.readThrough("greeting", (x) => x.get("greeting"));
                return r.stale ? null : r;
            },
            20_000,
            200,
        );
        expect(fresh).toEqual({ value: null, stale: false });
        expect(await client.read((r) => r.get("beside-probe"))).toBeNull();
        expect(client.breakerState).toBe("closed");
        expect(states).toEqual(expect.arrayContaining(["open", "half-open", "closed"]));
        res = await fetch(url);
        expect(res.status).toBe(200);

        const metrics = await client.metricsRegistry!.getSingleMetricAsString("redis_client_commands_total");
        expect(metrics).toMatch(/outcome="stale"/);
    });
});
