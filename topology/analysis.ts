import type { Topology } from "./model";

/** What is left after losing some nodes: can Sentinel still act, and can writes continue? */
export interface FailureCase {
    /** `node <name>` or `region <name>`. */
    readonly lost: string;
    readonly lostNodes: readonly string[];
    readonly sentinelsLeft: number;
    readonly majorityLeft: boolean;
    /** True if the preferred master is among the lost nodes (a failover is needed). */
    readonly masterLost: boolean;
    /** Promotable Redis nodes that survive, other than the preferred master. */
    readonly promotableLeft: readonly string[];
    /** Does the cluster keep (or regain) a master without a human? */
    readonly survives: boolean;
    /** Will that master accept writes (enough replicas for `min-replicas-to-write`)? */
    readonly writable: boolean;
    readonly verdict: string;
}

function evaluate(t: Topology, lost: string, lostNodes: readonly string[]): FailureCase {
    const gone = new Set(lostNodes);
    const alive = t.nodes.filter((n) => !gone.has(n.name));
    const sentinelsLeft = alive.filter((n) => n.runsSentinel).length;
    const majorityLeft = sentinelsLeft >= t.sentinel.majority;
    const masterLost = gone.has(t.preferredMaster);
    const promotableLeft = alive.filter((n) => n.promotable && n.name !== t.preferredMaster).map((n) => n.name);
    const replicasLeft = alive.filter((n) => n.runsRedis && n.name !== t.preferredMaster).length;
    // Replicas the current master needs for min-replicas-to-write (before any failover).
    const enoughReplicas = replicasLeft >= t.redis.minReplicasToWrite;
    let survives: boolean;
    let writesAccepted = enoughReplicas;
    let verdict: string;
    if (!masterLost) {
        survives = true;
        verdict = enoughReplicas
            ? majorityLeft
                ? "master keeps serving; Sentinel can still fail over"
                : "master keeps serving, but no Sentinel majority is left to fail over"
            : `master refuses writes: fewer than minReplicasToWrite=${t.redis.minReplicasToWrite} replicas left`;
    } else if (!majorityLeft) {
        survives = false;
        writesAccepted = false;
        verdict = `no failover: ${sentinelsLeft} of ${t.sentinel.count} Sentinels left, ${t.sentinel.majority} needed`;
    } else if (promotableLeft.length === 0) {
        survives = false;
        writesAccepted = false;
        verdict = "no failover: no promotable replica left";
    } else {
        survives = true;
        writesAccepted = replicasLeft - 1 >= t.redis.minReplicasToWrite;
        verdict = writesAccepted
            ? `failover to one of ${promotableLeft.join(", ")} (the most up-to-date wins)`
            : `failover to ${promotableLeft.join(", ")}, but the new master refuses writes until a replica returns (minReplicasToWrite=${t.redis.minReplicasToWrite})`;
    }
    return {
        lost,
        lostNodes,
        sentinelsLeft,
        majorityLeft,
        masterLost,
        promotableLeft,
        survives,
        writable: writesAccepted,
        verdict,
    };
}

/** Every single-node loss and every whole-region loss. */
export function analyseFailures(t: Topology): FailureCase[] {
    const cases = t.nodes.map((n) => evaluate(t, `node ${n.name}`, [n.name]));
    if (t.regions.length > 1) for (const r of t.regions) cases.push(evaluate(t, `region ${r.name}`, r.nodes));
    return cases;
}
