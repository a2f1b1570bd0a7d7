import type { Topology } from "./model";
import { lossOutcome } from "./plan";

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
    /**
     * Will that master accept writes: a Sentinel majority on its side (redis-fence refuses writes on a master that
     * cannot see one) and enough replicas for `min-replicas-to-write`?
     */
    readonly writable: boolean;
    /** One line; starts with "writes continue" exactly when `writable`. */
    readonly verdict: string;
}

function evaluate(t: Topology, lost: string, lostNodes: readonly string[]): FailureCase {
    const o = lossOutcome(t.nodes, new Set(lostNodes), t.preferredMaster, t.redis.minReplicasToWrite);
    const min = t.redis.minReplicasToWrite;
    const replicasLeft = o.redisLeft - 1;
    let survives: boolean;
    let verdict: string;
    if (!o.masterLost) {
        survives = true;
        verdict = !o.majorityLeft
            ? `writes stop: the master is fenced (it sees ${o.sentinelsLeft} of ${t.sentinel.count} Sentinels, ${t.sentinel.majority} needed) and no failover is possible`
            : o.writable
              ? "writes continue: the master keeps serving; Sentinel can still fail over"
              : `writes stop: fewer than minReplicasToWrite=${min} replicas left`;
    } else if (!o.majorityLeft) {
        survives = false;
        verdict = `writes stop: no failover, ${o.sentinelsLeft} of ${t.sentinel.count} Sentinels left, ${t.sentinel.majority} needed`;
    } else if (o.promotableLeft.length === 0) {
        survives = false;
        verdict = "writes stop: no failover, no promotable replica left";
    } else {
        survives = true;
        const candidates = `${o.promotableLeft.length > 1 ? "one of " : ""}${o.promotableLeft.join(", ")}`;
        verdict = o.writable
            ? `writes continue: failover to ${candidates} (the most up-to-date wins), ${replicasLeft} replica(s) left for it`
            : `writes stop: failover to ${candidates}, but the new master refuses writes until a replica returns (minReplicasToWrite=${min})`;
    }
    return {
        lost,
        lostNodes,
        sentinelsLeft: o.sentinelsLeft,
        majorityLeft: o.majorityLeft,
        masterLost: o.masterLost,
        promotableLeft: o.promotableLeft,
        survives,
        writable: o.writable,
        verdict,
    };
}

/** Every single-node loss and every whole-region loss. */
export function analyseFailures(t: Topology): FailureCase[] {
    const cases = t.nodes.map((n) => evaluate(t, `node ${n.name}`, [n.name]));
    if (t.regions.length > 1) for (const r of t.regions) cases.push(evaluate(t, `region ${r.name}`, r.nodes));
    return cases;
}
