import { createHash } from "node:crypto";
import type { Topology } from "../topology";

const hash = (value: unknown) => createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);

/**
 * The settings that change how a failover goes, and so re-run the failover drill (with `failoverDrill: onCreate`):
 * the nodes, their regions, roles and promotability (replica-priority), the master name and ports, the primary
 * region and preferred master, every Sentinel setting (quorum, downAfterMs, failoverTimeoutMs, parallelSyncs), the
 * write guard (minReplicasToWrite, minReplicasMaxLagSec) and the start guard's wait derived from them.
 *
 * Deliberately not: clusterName, labels, tags, adminCidrs, clientCidrs, backups, nodeType/type, persistence and
 * memory settings. None of them moves a failover, and a drill is a real failover and fail-back in production.
 */
export function failoverSettingsHash(t: Topology): string {
    return hash({
        masterName: t.masterName,
        ports: t.ports,
        primaryRegion: t.primaryRegion,
        preferredMaster: t.preferredMaster,
        nodes: t.nodes.map((n) => ({
            name: n.name,
            region: n.region,
            roles: n.roles,
            promotable: n.promotable,
            replicaPriority: n.replicaPriority,
        })),
        sentinel: t.sentinel,
        minReplicasToWrite: t.redis.minReplicasToWrite,
        minReplicasMaxLagSec: t.redis.minReplicasMaxLagSec,
        startGuardWaitSec: t.startGuardWaitSec,
    });
}

/**
 * Everything the health and quorum checks verify: the topology without what only names or reaches the nodes
 * (clusterName, labels, tags, adminCidrs, clientCidrs, authorized keys, backups and backup.*, the drill mode). Changing those
 * leaves every node as it was, so the checks do not re-run.
 */
export function checkedSettingsHash(t: Topology): string {
    const omit = (value: object, keys: readonly string[]) =>
        Object.fromEntries(Object.entries(value).filter(([k]) => !keys.includes(k)));
    return hash({
        ...omit(t, ["cluster", "access", "tags", "backups", "backup", "failoverDrill"]),
        nodes: t.nodes.map((n) => omit(n, ["label", "tags"])),
    });
}
