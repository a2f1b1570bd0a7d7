import * as linode from "@pulumi/linode";
import * as pulumi from "@pulumi/pulumi";
import type { RegionPlan, Topology } from "../topology";
import { METADATA, PLACEMENT_GROUP, requiredCapabilities } from "../topology/linodeRegions";

/** Why each capability matters, for the error line. */
const WHY: Readonly<Record<string, string>> = {
    [METADATA]: "cloud-init reads each node's user-data from the metadata service",
    [PLACEMENT_GROUP]: "its nodes are spread across hosts by a placement group",
};

/**
 * The one-line refusal for a region that lacks what the plan needs, or undefined when it has everything. Names the
 * region, the missing capabilities and why they matter, the nodes placed there and the way out.
 */
export function regionCapabilityProblem(region: RegionPlan, capabilities: readonly string[]): string | undefined {
    // Placement Group is required exactly where RegionNetwork creates one: regions with two or more nodes.
    const missing = requiredCapabilities(region.nodes.length).filter((c) => !capabilities.includes(c));
    if (missing.length === 0) return undefined;
    const what = missing.map((c) => `"${c}" (${WHY[c] ?? "needed by this program"})`).join(" and ");
    return (
        `redis-ha:nodes: region ${region.name} lacks the Linode capability ${what}; ` +
        `move node${region.nodes.length > 1 ? "s" : ""} ${region.nodes.join(", ")} to a region that offers it ` +
        "(linode-cli regions list shows each region's capabilities)"
    );
}

/** Object Storage, which `backup.enabled` needs in `backup.region`. */
export const OBJECT_STORAGE = "Object Storage";

/** The one-line refusal for a backup region without Object Storage, or undefined. */
export function backupRegionProblem(t: Topology, capabilities: readonly string[]): string | undefined {
    if (!t.backup.enabled || capabilities.includes(OBJECT_STORAGE)) return undefined;
    return (
        `redis-ha:backup.region: region ${t.backup.region} lacks the Linode capability "${OBJECT_STORAGE}" (the backup ` +
        "bucket lives there); set backup.region to a region that offers it (linode-cli regions list)"
    );
}

/** Regions that cannot host their part of the plan: one line per region. Pulumi prints it without a stack trace. */
export class RegionCapabilityError extends pulumi.RunError {
    constructor(public readonly problems: readonly string[]) {
        super(problems.join("\n"));
        this.name = "RegionCapabilityError";
    }
}

/**
 * Asks Linode (`linode.getRegion`, which runs during preview too) whether every region of the stack offers what its
 * nodes need, and throws RegionCapabilityError naming every region that does not. Called before any resource is
 * declared, so a region that cannot work fails preview and `pulumi up` creates nothing.
 */
export async function assertRegionCapabilities(t: Topology): Promise<void> {
    const answers = await Promise.all(t.regions.map((r) => linode.getRegion({ id: r.name })));
    const problems = t.regions.flatMap((r, i) => regionCapabilityProblem(r, answers[i].capabilities) ?? []);
    const server = t.monitoring.server;
    if (server) {
        const region = await linode.getRegion({ id: server.region });
        const problem = monitoringRegionProblem(server.region, region.capabilities);
        if (problem) problems.push(problem);
    }
    if (t.backup.enabled) {
        const backupRegion = await linode.getRegion({ id: t.backup.region });
        const problem = backupRegionProblem(t, backupRegion.capabilities);
        if (problem !== undefined) problems.push(problem);
    }
    if (problems.length > 0) throw new RegionCapabilityError(problems);
}

/** The monitoring node is configured by cloud-init too: its region needs the metadata service. */
export function monitoringRegionProblem(region: string, capabilities: readonly string[]): string | undefined {
    if (capabilities.includes(METADATA)) return undefined;
    return (
        `redis-ha:monitoringRegion: region ${region} lacks the Linode capability "${METADATA}" (cloud-init reads the ` +
        "monitoring node's user-data from the metadata service); set monitoringRegion to a region that offers it"
    );
}
