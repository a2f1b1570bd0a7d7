/**
 * The contract between the program and this pack: what `RedisCluster` registers as its `topologySummary` output
 * (built by components/summary.ts). It lives here, free of imports, because the pack is published from this folder
 * alone; the program imports these types (type-only) so the two cannot drift apart.
 */

/** One node as the summary lists it. */
export interface NodeSummary {
    readonly name: string;
    readonly region: string;
    readonly roles: readonly string[];
    readonly initialRole: "master" | "replica" | "sentinel-only";
    readonly promotable: boolean;
    /** The Linode plan and its RAM in MiB. */
    readonly type: string;
    readonly memoryMb: number;
    /** `maxmemory` in bytes; absent on Sentinel-only nodes. */
    readonly maxmemoryBytes?: number;
    /** Name of the node's `linode.Instance`, so a reader can find the resource it describes. */
    readonly instance: string;
}

/**
 * The deployment's safety-relevant facts as plain data. Stack rules read it instead of re-parsing user-data: it is
 * computed from the same topology the renderers use, and every value is known at preview (no addresses, no secrets).
 */
export interface TopologySummary {
    readonly cluster: string;
    readonly masterName: string;
    readonly primaryRegion: string;
    readonly preferredMaster: string;
    readonly multiRegion: boolean;
    readonly ports: { readonly redis: number; readonly sentinel: number };
    readonly sentinel: { readonly count: number; readonly quorum: number; readonly majority: number };
    /** Replicas of the initial master (every other Redis node). */
    readonly replicas: number;
    /** `min-replicas-to-write` as rendered into every redis.conf. */
    readonly minReplicasToWrite: number;
    readonly minReplicasMaxLagSec: number;
    /** Linode's backup service on the Redis nodes (`backups`). */
    readonly linodeBackups: boolean;
    /** RAM in MiB of every Linode plan the program knows, by plan id (so a rule can judge a plan changed elsewhere). */
    readonly planMemoryMb: Readonly<Record<string, number>>;
    readonly nodes: readonly NodeSummary[];
}
