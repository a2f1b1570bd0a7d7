import type { InitialRole, Topology } from "../topology";
import { resourceNames } from "./names";

/** One node as the summary lists it. */
export interface NodeSummary {
    readonly name: string;
    readonly region: string;
    readonly roles: readonly string[];
    readonly initialRole: InitialRole;
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
 * The deployment's safety-relevant facts as plain data, registered as the `topologySummary` output of `RedisCluster`.
 * The policy pack (policy/) reads it instead of re-parsing user-data: it is computed from the same topology the
 * renderers use, and every value is known at preview (no addresses, no secrets).
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
    readonly nodes: readonly NodeSummary[];
}

export function topologySummary(t: Topology): TopologySummary {
    const redisNodes = t.nodes.filter((n) => n.runsRedis);
    return {
        cluster: t.cluster,
        masterName: t.masterName,
        primaryRegion: t.primaryRegion,
        preferredMaster: t.preferredMaster,
        multiRegion: t.regions.length > 1,
        ports: { redis: t.ports.redis, sentinel: t.ports.sentinel },
        sentinel: { count: t.sentinel.count, quorum: t.sentinel.quorum, majority: t.sentinel.majority },
        replicas: Math.max(0, redisNodes.length - 1),
        minReplicasToWrite: t.redis.minReplicasToWrite,
        minReplicasMaxLagSec: t.redis.minReplicasMaxLagSec,
        linodeBackups: t.backups,
        nodes: t.nodes.map((n) => ({
            name: n.name,
            region: n.region,
            roles: [...n.roles],
            initialRole: n.initialRole,
            promotable: n.promotable,
            type: n.type,
            memoryMb: n.memoryMb,
            ...(n.maxmemoryBytes !== undefined ? { maxmemoryBytes: n.maxmemoryBytes } : {}),
            instance: resourceNames.instance(n.name),
        })),
    };
}
