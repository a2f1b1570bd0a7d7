import type { StackValidationPolicy } from "@pulumi/policy";
import { clustersOf, count, linodesOf, NS } from "../lib/summary";

/**
 * An odd number of Sentinels, at least three, counted on the Linodes that carry the `role:sentinel` tag.
 *
 * Severity: critical. A failover needs a majority of all Sentinels: with 2, losing either blocks every failover; with
 * 4, the loss of 2 does, which 3 survive as well. https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/
 */
export const sentinelCount: StackValidationPolicy = {
    name: "redis-ha-sentinel-count",
    description: "Sentinels are odd in number and at least three.",
    enforcementLevel: "mandatory",
    severity: "critical",
    validateStack: (args, reportViolation) => {
        for (const { resource, summary } of clustersOf(args)) {
            const sentinels = linodesOf(args.resources, summary.cluster).filter((l) => l.roles.includes("sentinel"));
            const n = sentinels.length;
            if (n >= 3 && n % 2 === 1) continue;
            const names = sentinels.map((s) => s.resource.name).join(", ");
            reportViolation(
                `cluster ${summary.cluster} (${resource.name}) has ${count(n, "Sentinel")}${names ? ` (${names})` : ""}; expected an odd number, at least 3, so that a majority survives the loss of any one. Fix: ${NS}:nodes (give the sentinel role to ${n < 3 ? String(3 - n) : "one"} more node, or remove one).`,
                resource.urn,
            );
        }
    },
};
