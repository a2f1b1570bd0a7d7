import type { PolicyResource, StackValidationArgs } from "@pulumi/policy";
import type { TopologySummary } from "./topologySummary";

export type { NodeSummary, TopologySummary } from "./topologySummary";

/** The component the program declares for a cluster; its `topologySummary` output is what stack rules read. */
export const CLUSTER_TYPE = "redis-ha:cluster:RedisCluster";

/** The project's config namespace: every config key a message names is `redis-ha:<key>`. */
export const NS = "redis-ha";

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
