import type { PolicyResource, StackValidationArgs } from "@pulumi/policy";

/** The component the program declares for a cluster; its `topologySummary` output is what stack rules read. */
export const CLUSTER_TYPE = "redis-ha:cluster:RedisCluster";

/** The project's config namespace: every config key a message names is `redis-ha:<key>`. */
export const NS = "redis-ha";

/** One node of `topologySummary` (components/summary.ts in the program; repeated here so the pack stands alone). */
export interface NodeSummary {
    readonly name: string;
    readonly region: string;
    readonly roles: readonly string[];
    readonly initialRole: "master" | "replica" | "sentinel-only";
    readonly promotable: boolean;
    readonly type: string;
    readonly memoryMb: number;
    readonly maxmemoryBytes?: number;
    readonly instance: string;
}

/** `RedisCluster.topologySummary`: roles, regions, replicas and write safety, known at preview. */
export interface TopologySummary {
    readonly cluster: string;
    readonly primaryRegion: string;
    readonly preferredMaster: string;
    readonly multiRegion: boolean;
    readonly ports: { readonly redis: number; readonly sentinel: number };
    readonly sentinel: { readonly count: number; readonly quorum: number; readonly majority: number };
    readonly replicas: number;
    readonly minReplicasToWrite: number;
    readonly linodeBackups: boolean;
    readonly nodes: readonly NodeSummary[];
}

export interface Cluster {
    readonly resource: PolicyResource;
    readonly summary: TopologySummary;
}

/**
 * Every RedisCluster in the stack with its summary. A cluster whose summary is missing was declared by a program
 * older than this pack: the stack rules cannot judge it and say so (notApplicable) instead of passing it silently.
 */
export function clustersOf(args: StackValidationArgs): Cluster[] {
    const clusters = args.resources.filter((r) => r.type === CLUSTER_TYPE);
    if (clusters.length === 0) args.notApplicable(`no ${CLUSTER_TYPE} in this stack`);
    return clusters.map((resource) => {
        const summary = (resource.props as { topologySummary?: TopologySummary }).topologySummary;
        if (summary === undefined)
            args.notApplicable(
                `${CLUSTER_TYPE} ${resource.name} has no topologySummary output; upgrade the program (components/summary.ts)`,
            );
        return { resource, summary };
    });
}

/** "3 Sentinels" / "1 Sentinel". */
export function count(n: number, noun: string): string {
    return `${String(n)} ${noun}${n === 1 ? "" : "s"}`;
}

/** A Linode of a cluster, as its resource says: the cluster's tags mark it, its roles are tags, its region an input. */
export interface ClusterLinode {
    readonly resource: PolicyResource;
    readonly region: string;
    readonly roles: readonly string[];
}

/** The cluster's Linodes, found by the `cluster:<name>` tag the program puts on each of them. */
export function linodesOf(resources: readonly PolicyResource[], cluster: string): ClusterLinode[] {
    return resources
        .filter((r) => r.type === "linode:index/instance:Instance")
        .map((r) => ({ r, props: r.props as { tags?: string[]; region?: string } }))
        .filter(({ props }) => (props.tags ?? []).includes(`cluster:${cluster}`))
        .map(({ r, props }) => ({
            resource: r,
            region: props.region ?? "",
            roles: (props.tags ?? []).filter((t) => t.startsWith("role:")).map((t) => t.slice("role:".length)),
        }));
}
