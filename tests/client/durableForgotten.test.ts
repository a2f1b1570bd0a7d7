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
import { describeWithServers } from "./serverTier";
import { testClientOptions } from "./testClient";

/** ACL user the cut-off replica replicates as, so that the master can refuse that one link. */
const LINK_USER = "cutlink";

async function replicasOf(c: ClusterHandle, master: NodeAddress): Promise<NodeAddress[]> {
    const role = await withConnection(master, c.password, (r) => r.call("ROLE") as Promise<unknown[]>);
    const list = (role[2] ?? []) as string[][];
    return list.map((x) => ({ host: x[0], port: Number(x[1]) }));
}

const resumed = async (writes: DurableWriteLoad, n: number, timeoutMs = 30_000) => {
    const from = writes.acks.length;
    await waitFor("acknowledged writes", () => Promise.resolve(writes.acks.length >= from + n), timeoutMs, 20);
};

describeWithServers("durableWrite 'attached': a replica forgotten while writes wait", () => {
    let c: ClusterHandle;
    let client: SentinelClient;
    beforeEach(async () => {
        c = await openCluster();
        client = createSentinelClient(testClientOptions(c, { metrics: false }));
        await client.master.whenReady();
    });
    afterEach(async () => {
        await (client as SentinelClient | undefined)?.close();
        await (c as ClusterHandle | undefined)?.close();
    });

    test("(a) a replica cut off from the master, then promoted while writes wait: 0 acknowledged writes lost", async () => {
        const master = await masterFromSentinels(c);
        if (!master) throw new Error("no master");
        const [cutOff, other] = await replicasOf(c, master);
        // The cut-off replica replicates as its own ACL user (same password), so the master can refuse just it.
        await withConnection(master, c.password, (r) =>
            r.call("ACL", "SETUSER", LINK_USER, "on", `>${c.password}`, "~*", "&*", "+@all"),
        );
        await withConnection(cutOff, c.password, async (r) => {
            await r.call("CONFIG", "SET", "masteruser", LINK_USER);
            await r.call("CLIENT", "KILL", "TYPE", "master");
        });
        // Only the cut-off replica may be promoted.
        await withConnection(other, c.password, (r) => r.call("CONFIG", "SET", "replica-priority", "0"));
        const failoverBy = c.sentinels[c.sentinels.length - 1];
        await waitUntilPromotable(c, failoverBy, cutOff, [other]);

        const writes = startDurableWrites(client, { prefix: "cut", writers: 4, idempotent: true });
        try {
            await resumed(writes, 200);
            // The cut: the link drops and every reconnect fails authentication; the replica stays up, a replica of
            // the master that no longer gets its writes.
            const ackedBefore = writes.acks.length;
            await withConnection(master, c.password, (r) => r.call("ACL", "DELUSER", LINK_USER));
            const cutAt = Date.now();
            // Well inside the guard's grace (timeouts.failoverFenceMs, 5 s): writes wait for the cut-off replica.
            await sleep(1000);
            const ackedDuringCut = writes.acks.length - ackedBefore;
            await withConnection(failoverBy, c.sentinelPassword, (r) => r.call("SENTINEL", "FAILOVER", c.masterName));
            await waitFor(
                "the client on the promoted replica",
                () => Promise.resolve(client.master.address === addr(cutOff)),
                30_000,
                50,
            );
            const movedAfterMs = Date.now() - cutAt;
            await resumed(writes, 200);
            await writes.stop();
            const missing = await withConnection(
                cutOff,
                c.password,
                (r) =>
                    missingWrites(
                        r,
                        writes.acks.map((x) => x.key),
                    ),
                10_000,
            );
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

    test("(b) a replica crash under durable write load: writes go on after the grace, 0 lost", async () => {
        const master = await masterFromSentinels(c);
        if (!master) throw new Error("no master");
        const [crashed] = await replicasOf(c, master);
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
