import type { StackValidationPolicy } from "@pulumi/policy";
import { clustersOf, linodesOf, NS } from "../lib/summary";

/**
 * In a multi-region stack no region holds a majority of the Sentinels.
 *
 * Severity: critical. Losing that region would leave fewer Sentinels than a majority, and with no majority Sentinel
 * authorises no failover: the cluster would stay without a master until the region came back.
 */
export const sentinelMajoritySpread: StackValidationPolicy = {
    name: "redis-ha-sentinel-majority-spread",
    description: "In a multi-region stack no region holds a majority of the Sentinels.",
    enforcementLevel: "mandatory",
    severity: "critical",
    validateStack: (args, reportViolation) => {
        for (const { resource, summary } of clustersOf(args)) {
            const linodes = linodesOf(args.resources, summary.cluster);
            const regions = [...new Set(linodes.map((l) => l.region))];
            if (regions.length < 2) continue;
            const sentinels = linodes.filter((l) => l.roles.includes("sentinel"));
            const majority = Math.floor(sentinels.length / 2) + 1;
            for (const region of regions) {
                const here = sentinels.filter((s) => s.region === region);
                if (here.length < majority) continue;
                reportViolation(
                    `cluster ${summary.cluster} (${resource.name}): region ${region} holds ${String(here.length)} of ${String(sentinels.length)} Sentinels (${here.map((s) => s.resource.name).join(", ")}), a majority, so losing ${region} blocks every failover; expected at most ${String(majority - 1)} per region. Fix: ${NS}:nodes (move a Sentinel to another region, e.g. a witness node).`,
                    resource.urn,
                );
            }
        }
    },
};
