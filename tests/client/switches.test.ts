/**
 * Repeated master switches (A→B, B→A, A→B) against real redis-server / redis-sentinel processes:
 * each one is followed, none is dropped as a copy of an earlier one.
 */
import { createSentinelClient, FailoverEvent, SentinelClient } from "../../client";
import { ClusterHandle, NodeAddress, openCluster } from "../../client/testing/cluster";
import {
    addr,
    masterFromSentinels,
    roleOf,
    waitFor,
    waitUntilHealthy,
    waitUntilPromotable,
    withConnection,
} from "../../client/testing/sentinelQueries";
import { describeWithServers } from "./serverTier";
import { testClientOptions } from "./testClient";

describeWithServers("repeated master switches", () => {
    let c: ClusterHandle;
    let client: SentinelClient;
    beforeAll(async () => {
        c = await openCluster();
        client = createSentinelClient(testClientOptions(c, { metrics: false }));
        await client.master.whenReady();
    });
    afterAll(async () => {
        await (client as SentinelClient | undefined)?.close();
        await (c as ClusterHandle | undefined)?.close();
    });

    /**
     * SENTINEL FAILOVER from `from` to `to` (the only promotable replica), then waits until the client is
     * on the new master and `from` is a replica again.
     */
    async function switchFrom(from: NodeAddress, to: NodeAddress, excluded: NodeAddress): Promise<NodeAddress> {
        await waitUntilHealthy(c, 2, 30_000);
        await waitUntilPromotable(c, c.sentinels[0], to, [excluded]);
        await withConnection(c.sentinels[0], c.sentinelPassword, (r) => r.call("SENTINEL", "FAILOVER", c.masterName));
        const promoted = await waitFor(
            `a failover away from ${addr(from)}`,
            async () => {
                const m = await masterFromSentinels(c);
                return m && addr(m) !== addr(from) ? m : null;
            },
            20_000,
            50,
        );
        await waitFor(
            `the client on ${addr(promoted)}`,
            async () => {
                if (client.master.address !== addr(promoted)) return false;
                await client.write((r) => r.set("switch", addr(promoted)));
                return true;
            },
            20_000,
            50,
        );
        await waitFor(`${addr(from)} demoted`, async () => (await roleOf(c, from)) === "slave", 30_000, 250);
        return promoted;
    }

    test("A→B, B→A, A→B within a minute: every switch is reported and followed", async () => {
        const a = await masterFromSentinels(c);
        if (!a) throw new Error("no master");
        // Only A and B may be promoted, so the switches go back and forth between them.
        const others = c.nodes.filter((n) => addr(n) !== addr(a));
        await withConnection(others[1], c.password, (r) => r.config("SET", "replica-priority", "0"));
        const seen: FailoverEvent[] = [];
        client.on("failover", (e) => seen.push(e));

        const [b, excluded] = others;
        expect(addr(await switchFrom(a, b, excluded))).toBe(addr(b));
        expect(addr(await switchFrom(b, a, excluded))).toBe(addr(a));
        expect(addr(await switchFrom(a, b, excluded))).toBe(addr(b));

        expect(seen.filter((e) => e.source === "sentinel").map((e) => `${e.from ?? "?"}->${e.to}`)).toEqual([
            `${addr(a)}->${addr(b)}`,
            `${addr(b)}->${addr(a)}`,
            `${addr(a)}->${addr(b)}`,
        ]);
        expect(client.master.address).toBe(addr(b));
    });
});
