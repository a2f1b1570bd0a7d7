/**
 * durableWrite with durability "attached" when a replica is forgotten while writes wait. Real redis-server /
 * redis-sentinel processes on loopback.
 *
 * (a) A replica cut off from the master (its replication link refused: the master's ACL user for that link is
 *     deleted, which drops the link and fails every reconnect, while the replica stays alive and reachable) and
 *     then promoted by `SENTINEL FAILOVER`: no acknowledged write may be lost. The cut-off replica still says
 *     "replica of this master"; the guard used to forget it at once, so the other replica alone acknowledged
 *     writes the promotion then discarded.
 * (b) A replica crash (SIGKILL) under durable write load: writes go on with the replica left once the guard's
 *     grace has passed; the writes in flight at the crash are counted and printed.
 */
import { createSentinelClient, SentinelClient } from "../../client";
import { ClusterHandle, NodeAddress, openCluster } from "../../client/testing/cluster";
import { DurableWriteLoad, errorsByName, missingWrites, startDurableWrites } from "../../client/testing/durableWrites";
import {
    addr,
    masterFromSentinels,
    sleep,
    waitFor,
    waitUntilPromotable,
    withConnection,
} from "../../client/testing/sentinelQueries";
import { WriteNotAcknowledgedError } from "../../client/errors";
import { describeWithServers } from "./serverTier";
import { testClientOptions } from "./testClient";

/** ACL user the cut-off replica replicates as, so that the master can refuse that one link. */
const LINK_USER = "cutlink";

async function replicasOf(c: ClusterHandle, master: NodeAddress): Promise<NodeAddress[]> {
    const role = await withConnection(master, c.password, (r) => r.call("ROLE") as Promise<unknown[]>);
    const list = (role[2] ?? []) as string[][];
    return list.map((x) => ({ host: x[0], port: Number(x[1]) }));
}

/** The guard's grace (`timeouts.failoverFenceMs`, its default) in (a') and (b). */
const GRACE_MS = 5000;

/**
 * Prepares the partition of (a): the first replica replicates as its own ACL user (same password), so that the
 * master can refuse just its link, and the other gets replica-priority 0, so that `SENTINEL FAILOVER` can promote
 * only the cut-off one. Returns the cut and the failover.
 */
async function prepareCutOff(c: ClusterHandle) {
    const master = await masterFromSentinels(c);
    if (!master) throw new Error("no master");
    const [cutOff, other] = await replicasOf(c, master);
    await withConnection(master, c.password, (r) =>
        r.call("ACL", "SETUSER", LINK_USER, "on", `>${c.password}`, "~*", "&*", "+@all"),
    );
    await withConnection(cutOff, c.password, async (r) => {
        await r.call("CONFIG", "SET", "masteruser", LINK_USER);
        await r.call("CLIENT", "KILL", "TYPE", "master");
    });
    await withConnection(other, c.password, (r) => r.call("CONFIG", "SET", "replica-priority", "0"));
    const failoverBy = c.sentinels[c.sentinels.length - 1];
    await waitUntilPromotable(c, failoverBy, cutOff, [other]);
    return {
        cutOff,
        /** The link drops and every reconnect fails authentication; the replica stays up, and reachable. */
        cut: () => withConnection(master, c.password, (r) => r.call("ACL", "DELUSER", LINK_USER)),
        /** Promotes the cut-off replica and waits until `client` writes there. */
        promote: async (client: SentinelClient) => {
            await withConnection(failoverBy, c.sentinelPassword, (r) => r.call("SENTINEL", "FAILOVER", c.masterName));
            await waitFor(
                "the client on the promoted replica",
                () => Promise.resolve(client.master.address === addr(cutOff)),
                30_000,
                50,
            );
        },
        /** Acknowledged keys the promoted replica does not hold. */
        lost: (writes: DurableWriteLoad) =>
            withConnection(
                cutOff,
                c.password,
                (r) =>
                    missingWrites(
                        r,
                        writes.acks.map((x) => x.key),
                    ),
                10_000,
            ),
    };
}

const resumed = async (writes: DurableWriteLoad, n: number, timeoutMs = 30_000) => {
    const from = writes.acks.length;
    await waitFor("acknowledged writes", () => Promise.resolve(writes.acks.length >= from + n), timeoutMs, 20);
};

describeWithServers("durableWrite 'attached': a replica forgotten while writes wait", () => {
    let c: ClusterHandle;
    let client: SentinelClient;
    /** Opens the test's client; `graceMs` is its `timeouts.failoverFenceMs`, the guard's grace. */
    const openClient = async (graceMs = GRACE_MS) => {
        const options = testClientOptions(c, { metrics: false });
        client = createSentinelClient({ ...options, timeouts: { ...options.timeouts, failoverFenceMs: graceMs } });
        await client.master.whenReady();
    };
    beforeEach(async () => {
        c = await openCluster();
    });
    afterEach(async () => {
        await (client as SentinelClient | undefined)?.close();
        await (c as ClusterHandle | undefined)?.close();
    });

    test("(a) a replica cut off from the master, then promoted while writes wait: 0 acknowledged writes lost", async () => {
        const cutOff = await prepareCutOff(c);
        // A grace long enough that the promotion surely comes inside it, even on a loaded machine.
        await openClient(20_000);
        const writes = startDurableWrites(client, { prefix: "cut", writers: 4, idempotent: true });
        try {
            await resumed(writes, 200);
            const ackedBefore = writes.acks.length;
            await cutOff.cut();
            const cutAt = Date.now();
            // Inside the guard's grace: writes wait for the cut-off replica.
            await sleep(1000);
            const ackedDuringCut = writes.acks.length - ackedBefore;
            await cutOff.promote(client);
            const movedAfterMs = Date.now() - cutAt;
            await resumed(writes, 200);
            await writes.stop();
            const missing = await cutOff.lost(writes);
            console.log(
                `cut-off replica promoted: ${writes.acks.length} acknowledged (${ackedDuringCut} in the 1 s after the cut), ` +
                    `${missing.length} lost; client on the new master ${movedAfterMs} ms after the cut; ` +
                    `errors ${JSON.stringify(errorsByName(writes.errors))}`,
            );
            expect(missing.slice(0, 10)).toEqual([]);
        } finally {
            await writes.stop();
        }
    });

    test("(a') writes in flight when a cut-off replica is forgotten (after the grace) are not acknowledged; the writes sent afterwards are the stated window", async () => {
        const cutOff = await prepareCutOff(c);
        await openClient();
        // Not idempotent, so that the caller sees the unknown outcome instead of a retry; a deadline past the grace.
        const writes = startDurableWrites(client, { prefix: "late", writers: 4, deadlineMs: 15_000 });
        try {
            await resumed(writes, 100);
            const errorsBefore = writes.errors.length;
            await cutOff.cut();
            const cutAt = Date.now();
            // The guard forgets the cut-off replica after its grace; the writes sent from then on expect only the other.
            await resumed(writes, 100);
            await cutOff.promote(client);
            await writes.stop();
            const missing = new Set(await cutOff.lost(writes));
            const unverified = writes.errors
                .slice(errorsBefore)
                .filter(
                    (e) => e.error instanceof WriteNotAcknowledgedError && e.error.reason === "replicas-unverified",
                );
            // A write acknowledged in the first 100 ms after the cut went out before it (the cut-off replica acked it).
            const waited = writes.acks.filter((a) => a.at > cutAt + 100 && a.at < cutAt + GRACE_MS - 500);
            const lostBeforeGrace = writes.acks.filter((a) => missing.has(a.key) && a.at < cutAt + GRACE_MS - 500);
            console.log(
                `cut-off replica forgotten after the grace, then promoted: ${unverified.length} writes in flight failed ` +
                    `replicas-unverified (${String(unverified[0]?.error.cause)}); ${waited.length} acknowledged inside ` +
                    `the grace; lost: ${lostBeforeGrace.length} acknowledged inside the grace, ${missing.size - lostBeforeGrace.length} ` +
                    `acknowledged after it (sent after the guard forgot the replica: the window client/README.md states)`,
            );
            // Each of the 4 loops had one write waiting through the grace: every one fails, none is acknowledged.
            expect(unverified.length).toBe(4);
            expect(String(unverified[0].error.cause)).toMatch(
                /was forgotten while the write waited and is cut off from the master/,
            );
            expect(waited).toEqual([]);
            expect(lostBeforeGrace).toEqual([]);
        } finally {
            await writes.stop();
        }
    });

    test("(b) a replica crash under durable write load: writes go on after the grace, 0 lost", async () => {
        const master = await masterFromSentinels(c);
        if (!master) throw new Error("no master");
        const [crashed] = await replicasOf(c, master);
        await openClient();
        const writes = startDurableWrites(client, { prefix: "crash", writers: 4, idempotent: false });
        try {
            await resumed(writes, 200);
            const errorsBefore = writes.errors.length;
            const ackedBefore = writes.acks.length;
            await c.kill(crashed);
            const crashAt = Date.now();
            await resumed(writes, 200);
            const firstAfter = writes.acks.slice(ackedBefore).find((x) => x.at > crashAt);
            await writes.stop();
            const failed = writes.errors.slice(errorsBefore);
            const missing = await withConnection(
                master,
                c.password,
                (r) =>
                    missingWrites(
                        r,
                        writes.acks.map((x) => x.key),
                    ),
                10_000,
            );
            console.log(
                `replica crash: ${writes.acks.length} acknowledged, ${missing.length} lost; first acknowledgement ` +
                    `${firstAfter ? firstAfter.at - crashAt : -1} ms after the SIGKILL; ${failed.length} writes failed ` +
                    `after it ${JSON.stringify(errorsByName(failed))}`,
            );
            expect(missing.slice(0, 10)).toEqual([]);
            // Writes go on with the replica left: the 200 acknowledged after the crash prove it. A write is in flight
            // in each of the 4 loops at most; none may fail beyond those (the breaker stays closed).
            expect(failed.length).toBeLessThanOrEqual(4);
        } finally {
            await writes.stop();
        }
    });
});
