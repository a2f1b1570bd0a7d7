import type { StackValidationPolicy } from "@pulumi/policy";
import { clustersOf, count, NS } from "../lib/summary";

/**
 * `min-replicas-to-write` is at least 1 wherever the stack has replicas.
 *
 * Severity: high. With 0, a master cut off from all its replicas keeps acknowledging writes; Sentinel promotes a
 * replica on the other side and the old master's writes are discarded when it rejoins.
 * https://redis.io/docs/latest/operate/oss_and_stack/management/replication/#allow-writes-only-with-n-attached-replicas
 */
export const minReplicasToWrite: StackValidationPolicy = {
    name: "redis-ha-min-replicas-to-write",
    description: "min-replicas-to-write is at least 1 where the stack has replicas.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateStack: (args, reportViolation) => {
        for (const { resource, summary } of clustersOf(args)) {
            if (summary.replicas < 1 || summary.minReplicasToWrite >= 1) continue;
            reportViolation(
                `cluster ${summary.cluster} (${resource.name}) has ${count(summary.replicas, "replica")} but min-replicas-to-write ${String(summary.minReplicasToWrite)}; expected at least 1, so a master cut off from every replica stops acknowledging writes a failover would discard. Fix: ${NS}:minReplicasToWrite: 1.`,
                resource.urn,
            );
        }
    },
};
