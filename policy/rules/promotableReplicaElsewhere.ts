import type { StackValidationPolicy } from "@pulumi/policy";
import { clustersOf, NS } from "../lib/summary";

/**
 * In a multi-region stack some promotable replica lives outside the master's region.
 *
 * Severity: high. When the master's region goes, Sentinel can only promote a replica it can reach: with every
 * promotable replica beside the master, the region's loss leaves no master anywhere.
 */
export const promotableReplicaElsewhere: StackValidationPolicy = {
    name: "redis-ha-promotable-replica-elsewhere",
    description: "A multi-region stack has a promotable replica outside the master's region.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateStack: (args, reportViolation) => {
        for (const { resource, summary } of clustersOf(args)) {
            if (!summary.multiRegion) continue;
            const master = summary.nodes.find((n) => n.name === summary.preferredMaster);
            const region = master?.region ?? summary.primaryRegion;
            const replicas = summary.nodes.filter((n) => n.roles.includes("redis") && n.name !== master?.name);
            if (replicas.some((n) => n.promotable && n.region !== region)) continue;
            const found = replicas.map((n) => `${n.name} in ${n.region}${n.promotable ? "" : " (promotable: false)"}`);
            reportViolation(
                `cluster ${summary.cluster} (${resource.name}) has no promotable replica outside ${region}, the master's region (replicas: ${found.join(", ") || "none"}); expected at least one in another region, so losing ${region} leaves a node to promote. Fix: ${NS}:nodes (a redis node in another region, without promotable: false).`,
                resource.urn,
            );
        }
    },
};
