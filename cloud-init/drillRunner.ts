import type { NodePlan, Topology } from "../topology";

/**
 * The node that runs the shipped `failover-drill` script: for the post-deploy drill (components/checks.ts) and the
 * lab's fail-back between drill runs (lab/drill.ts). A Sentinel node, because the script asks its own Sentinel for
 * the failover; in the primary region when there is one there, so the drill's traffic stays next to the preferred
 * master it fails back to.
 */
export function drillRunner(t: Topology): NodePlan {
    const sentinels = t.nodes.filter((n) => n.runsSentinel);
    const runner = sentinels.find((n) => n.region === t.primaryRegion) ?? sentinels.at(0);
    // The topology guarantees Sentinels (an odd number, at least one); this only keeps the type honest.
    if (runner === undefined) throw new Error(`stack ${t.stack} has no Sentinel node to run the failover drill`);
    return runner;
}
