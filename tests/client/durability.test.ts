/**
 * durableWrite's guarantee does not depend on hearing any one Sentinel message: an unpaused
 * `SENTINEL FAILOVER` run by a Sentinel the client is not subscribed to (so no `+try-failover`
 * reaches it) loses no acknowledged write. Real redis-server / redis-sentinel processes.
 */
import { createSentinelClient, SentinelClient } from "../../client";
import { ClusterHandle, openCluster } from "../../client/testing/cluster";
import { DurableWriteLoad, missingWrites, startDurableWrites } from "../../client/testing/durableWrites";
import { addr, masterFromSentinels, waitFor, withConnection } from "../../client/testing/sentinelQueries";
import { describeWithServers } from "./serverTier";
import { testClientOptions } from "./testClient";

describeWithServers("durableWrite when a failover announcement is missed", () => {
    let c: ClusterHandle;
    let client: SentinelClient;
    beforeAll(async () => {
        c = await openCluster();
        client = createSentinelClient(
            testClientOptions(c, {
                // Only the first Sentinel: the failover below is run by another one, whose +try-failover
                // this client never hears.
                sentinels: [c.sentinels[0]],
                metrics: false,
            }),
        );
        await client.master.whenReady();
    });
    afterAll(async () => {
        await (client as SentinelClient | undefined)?.close();
        await (c as ClusterHandle | undefined)?.close();
    });

    const resumed = async (writes: DurableWriteLoad, n: number) => {
        const from = writes.acks.length;
        await waitFor("acknowledged writes", () => Promise.resolve(writes.acks.length >= from + n), 30_000, 20);
    };

    test("an unpaused SENTINEL FAILOVER on an unsubscribed Sentinel, four writer loops: 0 acknowledged writes lost", async () => {
        const oldMaster = await masterFromSentinels(c);
        if (!oldMaster) throw new Error("no master");
        const writes = startDurableWrites(client, { prefix: "missed", writers: 4, idempotent: true });
        try {
            await resumed(writes, 200);
            const failoverBy = c.sentinels[c.sentinels.length - 1];
            await withConnection(failoverBy, c.sentinelPassword, (r) => r.call("SENTINEL", "FAILOVER", c.masterName));
            const newMaster = await waitFor(
                "the failover",
                async () => {
                    const now = await masterFromSentinels(c);
                    return now && addr(now) !== addr(oldMaster) && client.master.address === addr(now) ? now : null;
                },
                30_000,
                50,
            );
            await resumed(writes, 200);
            await writes.stop();
            const missing = await withConnection(
                newMaster,
                c.password,
                (r) =>
                    missingWrites(
                        r,
                        writes.acks.map((a) => a.key),
                    ),
                10_000,
            );
            console.log(
                `missed-announcement failover: ${writes.acks.length} acknowledged, ${missing.length} lost, ` +
                    `${writes.errors.length} errors (${[...new Set(writes.errors.map((e) => e.error.name))].join(", ")})`,
            );
            expect(missing.slice(0, 10)).toEqual([]); // the first few, not thousands
        } finally {
            await writes.stop();
        }
    });
});
