import type { StackValidationPolicy } from "@pulumi/policy";
import { withDefaults } from "../lib/config";
import { clustersOf, NS } from "../lib/summary";

export interface MemoryHeadroomConfig {
    /** Memory beyond maxmemory, as a share of the plan's RAM, in percent. */
    minHeadroomPercent: number;
    /** ... and at least this many MiB. */
    minHeadroomMb: number;
    /** RAM of plans the program's table (`topologySummary.planMemoryMb`) lacks, in MiB, by plan id. */
    planMemoryMb: Record<string, number>;
}

const DEFAULTS: MemoryHeadroomConfig = { minHeadroomPercent: 25, minHeadroomMb: 256, planMemoryMb: {} };
const MiB = 1024 * 1024;

/**
 * The plan of each Redis Linode holds `maxmemory` plus headroom for the OS, Sentinel, the exporters and the
 * copy-on-write pages of a snapshot fork.
 *
 * Severity: medium (advisory). Without headroom the kernel's OOM killer ends Redis under a write-heavy snapshot.
 * https://redis.io/docs/latest/operate/oss_and_stack/management/admin/
 */
export const memoryHeadroom: StackValidationPolicy = {
    name: "redis-ha-memory-headroom",
    description: "Each Redis node's plan covers maxmemory plus headroom.",
    enforcementLevel: "advisory",
    severity: "medium",
    configSchema: {
        properties: {
            minHeadroomPercent: {
                type: "number",
                minimum: 0,
                maximum: 90,
                default: DEFAULTS.minHeadroomPercent,
                description: "RAM beyond maxmemory, as a share of the plan's RAM (percent).",
            },
            minHeadroomMb: {
                type: "integer",
                minimum: 0,
                default: DEFAULTS.minHeadroomMb,
                description: "RAM beyond maxmemory, at least (MiB).",
            },
            planMemoryMb: {
                type: "object",
                additionalProperties: { type: "integer", minimum: 1 },
                default: DEFAULTS.planMemoryMb,
                description: "RAM in MiB of plans the program's table lacks, by plan id.",
            },
        },
    },
    validateStack: (args, reportViolation) => {
        const config = withDefaults(args.getConfig<Partial<MemoryHeadroomConfig>>(), DEFAULTS);
        for (const { summary } of clustersOf(args)) {
            const known: Partial<Record<string, number>> = { ...summary.planMemoryMb, ...config.planMemoryMb };
            for (const node of summary.nodes) {
                if (node.maxmemoryBytes === undefined) continue;
                const instance = args.resources.find((r) => r.name === node.instance);
                // The plan the Linode really gets; the summary's when the resource is not in the stack.
                const plan = (instance?.props as { type?: string } | undefined)?.type ?? node.type;
                const planMb = known[plan] ?? node.memoryMb;
                const maxmemoryMb = Math.ceil(node.maxmemoryBytes / MiB);
                const needMb = Math.max(config.minHeadroomMb, Math.ceil((planMb * config.minHeadroomPercent) / 100));
                const leftMb = planMb - maxmemoryMb;
                if (leftMb >= needMb) continue;
                reportViolation(
                    `linode.Instance ${node.instance}: plan ${plan} has ${String(planMb)} MiB and maxmemory is ${String(maxmemoryMb)} MiB, leaving ${String(leftMb)} MiB; expected at least ${String(needMb)} MiB for the OS, Sentinel and a snapshot's fork. Fix: a larger ${NS}:nodeType (or nodes[].type), or nodes[].memoryMb equal to the plan's RAM.`,
                    instance?.urn,
                );
            }
        }
    },
};
