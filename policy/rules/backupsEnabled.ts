import type { StackValidationPolicy } from "@pulumi/policy";
import { clustersOf, linodesOf, NS } from "../lib/summary";

/** Resource types that mean "this stack ships backups to Object Storage". */
const OBJECT_STORAGE_BACKUP = (type: string) =>
    type === "linode:index/objectStorageBucket:ObjectStorageBucket" || type.startsWith("redis-ha:backup:");

/**
 * Linode backups on the Redis nodes, or Object Storage backups.
 *
 * Severity: medium (advisory). Replication protects against a lost node, not against a lost region's disks at once
 * or a bad write replicated everywhere; only a copy outside the cluster does.
 */
export const backupsEnabled: StackValidationPolicy = {
    name: "redis-ha-backups-enabled",
    description: "Linode backups or Object Storage backups are on.",
    enforcementLevel: "advisory",
    severity: "medium",
    validateStack: (args, reportViolation) => {
        const objectStorage = args.resources.some((r) => OBJECT_STORAGE_BACKUP(r.type));
        for (const { resource, summary } of clustersOf(args)) {
            const redis = linodesOf(args.resources, summary.cluster).filter((l) => l.roles.includes("redis"));
            const withBackups = redis.filter((l) => (l.resource.props as { backupsEnabled?: boolean }).backupsEnabled);
            if (objectStorage || (redis.length > 0 && withBackups.length === redis.length)) continue;
            const without = redis.filter((l) => !withBackups.includes(l)).map((l) => l.resource.name);
            reportViolation(
                `cluster ${summary.cluster} (${resource.name}) has neither Linode backups on all its Redis nodes (off on ${without.join(", ") || "every node"}) nor Object Storage backups; expected one of them, so that data survives a lost region or a bad write. Fix: ${NS}:backups: true (or the backup.* keys for Object Storage).`,
                resource.urn,
            );
        }
    },
};
