import type { TopologySummary } from "../policy/lib/topologySummary";

export type { NodeSummary, TopologySummary } from "../policy/lib/topologySummary";
import { LINODE_TYPE_MEMORY_MB, type Topology } from "../topology";
import { resourceNames } from "./names";

/**
 * The deployment's safety-relevant facts as plain data, registered as the `topologySummary` output of `RedisCluster`.
 * The policy pack (policy/) reads it instead of re-parsing user-data; the type is the pack's, so the two agree.
 */
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
        planMemoryMb: { ...LINODE_TYPE_MEMORY_MB, ...Object.fromEntries(t.nodes.map((n) => [n.type, n.memoryMb])) },
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
