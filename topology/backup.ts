import type { ConfigProblem } from "./errors";
import type { BackupPlan, NodePlan } from "./model";
import { regionNames, runsRedis } from "./plan";
import { CONFIG_NAMESPACE, type StackConfig } from "./schema";

/** Folder under the prefix where an upload waits until it is verified (and where a failed one expires). */
export const BACKUP_INCOMING = ".incoming";

/**
 * The DR region: the first region after the primary that holds a Redis node (a secondary region), or the primary
 * region when no other region holds data. Backups go there by default so that losing the primary region loses no
 * backup, and are taken there so that the upload crosses no region boundary.
 */
export function drRegion(config: StackConfig): string {
    const secondary = regionNames(config).find(
        (r) => r !== config.primaryRegion && config.nodes.some((n) => n.region === r && runsRedis(n)),
    );
    return secondary ?? config.primaryRegion;
}

/**
 * Where the backup job runs, chosen once here. The first node takes the backup whenever it is a replica: a replica of
 * the DR region, else any replica, else (a single Redis node) the master itself. The second, another Redis node
 * (replicas first, the preferred master last), takes it only when the first is master or unreachable at that moment:
 * after a failover the old master is usually a replica again, so the job moves instead of being lost. Both carry the
 * bucket credentials; no other node does.
 */
export function planBackup(
    config: StackConfig,
    cluster: string,
    nodes: readonly NodePlan[],
    preferredMaster: string,
): BackupPlan {
    const dr = drRegion(config);
    const redis = nodes.filter((n) => n.runsRedis);
    const replicas = redis.filter((n) => n.name !== preferredMaster);
    const first = replicas.find((n) => n.region === dr) ?? replicas.at(0) ?? redis[0];
    const second = [...replicas, ...redis.filter((n) => n.name === preferredMaster)].find((n) => n !== first);
    const backupNodes = [first, ...(second ? [second] : [])].map((n) => n.name);
    return {
        enabled: config.backup.enabled,
        schedule: config.backup.schedule,
        retentionDays: config.backup.retentionDays,
        compress: config.backup.compress,
        region: config.backup.region ?? dr,
        prefix: cluster,
        nodes: config.backup.enabled ? backupNodes : [],
        allowMaster: redis.length === 1,
        ...(config.backup.seedFrom !== undefined ? { seed: parseSeed(config.backup.seedFrom) } : {}),
    };
}

/** s3://bucket/key (validated by SEED_PATTERN) into its bucket and key. */
export function parseSeed(uri: string): { bucket: string; key: string } {
    const rest = uri.slice("s3://".length);
    const slash = rest.indexOf("/");
    return { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
}

/**
 * Backup keys that are valid alone but not together. A seed is read in `backup.region`'s Object Storage with a key the
 * program makes beside the new cluster's own bucket, so it needs backups on.
 */
export function validateBackup(config: StackConfig): ConfigProblem[] {
    if (config.backup.seedFrom === undefined || config.backup.enabled) return [];
    return [
        {
            key: `${CONFIG_NAMESPACE}:backup.seedFrom`,
            message:
                "needs backup.enabled true (the seed is read from backup.region's Object Storage beside the new cluster's bucket); run: pulumi config set backup.enabled true",
        },
    ];
}
