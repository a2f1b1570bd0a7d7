import { readStackConfig } from "../../engine/stackFile";
import {
    fenceIntervalMs,
    parseStackConfig,
    planDr,
    planNodes,
    planRedis,
    planRegions,
    planSentinel,
    preferredMaster,
    PROMOTABLE_PRIORITY,
    regionSafeReplicas,
    replicaPriority,
    rolloutOrder,
    sentinelMajority,
    startGuardWaitSec,
    type StackConfig,
} from "../../topology";

const base: StackConfig = parseStackConfig(readStackConfig("prod"));
const found = preferredMaster(base);
if (!found) throw new Error("the prod stack has a preferred master");
const master = found;

describe("each planner alone", () => {
    it("sentinelMajority is more than half", () => {
        expect([1, 2, 3, 4, 5, 7].map(sentinelMajority)).toEqual([1, 2, 2, 3, 3, 4]);
    });

    it("preferredMaster is the first Redis node of the primary region", () => {
        expect(master.name).toBe("east-a");
        expect(preferredMaster({ ...base, primaryRegion: "us-ord" })?.name).toBe("ord-a");
        expect(preferredMaster({ ...base, primaryRegion: "us-central" })).toBeUndefined();
    });

    it("planSentinel turns quorum 0 into the majority and parallelSyncs 0 into every replica, and keeps given values", () => {
        expect(planSentinel(base)).toEqual({
            count: 3,
            quorum: 2,
            majority: 2,
            downAfterMs: 5000,
            failoverTimeoutMs: 10000,
            parallelSyncs: 3, // 0 in config: every replica of the 4 Redis nodes at once
        });
        expect(planSentinel({ ...base, quorum: 3 }).quorum).toBe(3);
        expect(planSentinel({ ...base, parallelSyncs: 1 }).parallelSyncs).toBe(1);
    });

    it("replicaPriority: 100 for promotable Redis nodes, 0 for promotable: false, none without Redis", () => {
        expect(base.nodes.map(replicaPriority)).toEqual([
            PROMOTABLE_PRIORITY,
            PROMOTABLE_PRIORITY,
            100,
            100,
            undefined,
        ]);
        expect(replicaPriority({ ...base.nodes[1], promotable: false })).toBe(0);
    });

    it("rolloutOrder: Sentinel-only first, then replicas in config order, the preferred master last", () => {
        const order = rolloutOrder(base, master);
        expect([...order.entries()].sort((a, b) => a[1] - b[1]).map(([n]) => n.name)).toEqual([
            "witness",
            "east-b",
            "ord-a",
            "ord-b",
            "east-a",
        ]);
    });

    it("planNodes: roles, initial roles, memory and labels", () => {
        const nodes = planNodes(base, "redis-prod", master);
        expect(nodes.map((n) => [n.name, n.initialRole, n.memoryMb, n.label])).toEqual([
            ["east-a", "master", 4096, "redis-prod-east-a"],
            ["east-b", "replica", 4096, "redis-prod-east-b"],
            ["ord-a", "replica", 4096, "redis-prod-ord-a"],
            ["ord-b", "replica", 4096, "redis-prod-ord-b"],
            ["witness", "sentinel-only", 1024, "redis-prod-witness"],
        ]);
        expect(nodes[4].maxmemoryBytes).toBeUndefined();
        expect(nodes[4].tags).toEqual(["redis-ha", "cluster:redis-prod", "region:us-central", "role:sentinel"]);
    });

    it("planRegions: primary, secondary and witness regions in first-appearance order", () => {
        const regions = planRegions(base, planNodes(base, "redis-prod", master));
        expect(regions.map((r) => [r.name, r.kind, r.sentinels, r.redisNodes])).toEqual([
            ["us-east", "primary", 1, 2],
            ["us-ord", "secondary", 1, 2],
            ["us-central", "witness", 1, 0],
        ]);
    });

    it("planRedis copies persistence and write safety; startGuardWaitSec covers two failover timeouts", () => {
        expect(planRedis(base).minReplicasToWrite).toBe(1);
        expect(planRedis(base).save).not.toBe(base.save);
        expect(startGuardWaitSec(base)).toBe(Math.ceil((5000 + 2 * 10000) / 1000) + 10);
    });
});

describe("disaster recovery planner", () => {
    const nodes = planNodes(base, "redis-prod", master);
    it("regionSafeReplicas: the largest number of Redis nodes in one region, capped at the replicas", () => {
        // prod: two in us-east, two in us-ord: WAIT 2 reaches at least one replica in the other data region.
        expect(regionSafeReplicas(nodes)).toBe(2);
        const node = (name: string, region: string) => ({
            name,
            region,
            runsRedis: true,
            runsSentinel: false,
            promotable: true,
        });
        expect(regionSafeReplicas([node("a", "x"), node("b", "x"), node("c", "x"), node("d", "y")])).toBe(3);
        // One data region: no outside; every replica.
        expect(regionSafeReplicas([node("a", "x"), node("b", "x"), node("c", "x")])).toBe(2);
    });

    it("fence: asks ten times per down-after, between every 100 ms and every second, reacting within half of it", () => {
        expect([1000, 5000, 20000].map(fenceIntervalMs)).toEqual([100, 500, 1000]);
        const dr = planDr(base, nodes);
        expect(dr).toMatchObject({ regionSafeReplicas: 2, fenceIntervalMs: 500, fenceTimeoutMs: 500 });
        expect(dr.fenceReactionMs).toBe(1100);
        expect(dr.fencedMinReplicas).toBeGreaterThan(16);
        expect(dr.failbackHoldDownSec).toBe(30);
    });
});
