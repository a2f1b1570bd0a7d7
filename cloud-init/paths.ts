import { shellAssignments } from "./shell";

/** Where things live on a node. Debian's packages own /etc/redis; our scripts and state live beside them. */
export const PATHS = {
    redisConf: "/etc/redis/redis.conf",
    sentinelConf: "/etc/redis/sentinel.conf",
    nodeEnv: "/etc/redis-ha/node.env",
    scriptsDir: "/usr/local/lib/redis-ha",
    /** What the start guard and the stop recorder keep between runs of redis-server. */
    stateDir: "/var/lib/redis-ha",
    /** `clean`, `running` or `crashed:...`: how redis-server last ended (written by redis-stop-record). */
    redisState: "/var/lib/redis-ha/redis-server.state",
    /** `crash|planned|sentinel <epoch ms> <new master>`: which path last moved mastership off this node. */
    lastHandover: "/var/lib/redis-ha/last-handover",
    /**
     * The pid of a redis-server whose writes redis-stop-handover refuses while it hands mastership over: redis-fence
     * keeps that process fenced, whichever Sentinels still name it. redis-stop-record removes it once Redis has ended.
     */
    handoverFence: "/var/lib/redis-ha/handover-fence",
    /**
     * `<epoch ms> <Sentinel>`: redis-stop-record asked that Sentinel for the crash handover as a crashed master ended;
     * the start guard reads it (the handover is under way, its path is `crash`) and removes it.
     */
    crashHandover: "/var/lib/redis-ha/crash-handover",
    sysctl: "/etc/sysctl.d/60-redis-ha.conf",
    tuningUnit: "/etc/systemd/system/redis-ha-tuning.service",
    redisDropIn: "/etc/systemd/system/redis-server.service.d/10-redis-ha.conf",
    sentinelDropIn: "/etc/systemd/system/redis-sentinel.service.d/10-redis-ha.conf",
    policyRcD: "/usr/sbin/policy-rc.d",
    /** The minority fence (redis-fence) on every Redis node, and the return home (redis-homing) on the drill runner. */
    fenceUnit: "/etc/systemd/system/redis-ha-fence.service",
    homingUnit: "/etc/systemd/system/redis-ha-homing.service",
    /** Taken by every controlled failover a node starts on its own (redis-homing) and by the lab drill's fail-back. */
    failoverLock: "/var/lib/redis-ha/failover.lock",
    /**
     * Touched by apply-settings once a rollout has changed the scripts or node.env: the loops (redis-fence,
     * redis-homing), which read them when they start, exec the new release at the end of their current round.
     */
    scriptsReleased: "/var/lib/redis-ha/scripts-released",
    /** The exporters' password files (cloud-init/monitoringExporters.ts), written by exporter-credentials. */
    exporterCredentialsDir: "/etc/redis-ha/exporter",
    /** The backup plan as this node takes part in it (backup nodes only). */
    backupEnv: "/etc/redis-ha/backup.env",
    /** s3cmd's configuration with the bucket's limited key (backup nodes only, root only). */
    backupS3cfg: "/etc/redis-ha/backup.s3cfg",
    backupUnit: "/etc/systemd/system/redis-ha-backup.service",
    backupTimer: "/etc/systemd/system/redis-ha-backup.timer",
    /** The last successful backup, for node_exporter's textfile collector (Debian's default directory). */
    backupMetrics: "/var/lib/prometheus/node-exporter/redis_ha_backup.prom",
    /**
     * Where a restore downloads and checks a backup and its temporary Redis (user redis) serves it: inside Redis's own
     * directory, which the redis user can reach (the state directory above is root's).
     */
    restoreDir: "/var/lib/redis/redis-ha-restore",
    /** `backup.seedFrom`: the seed's bucket and key (the first master only). */
    seedEnv: "/etc/redis-ha/seed.env",
    /** s3cmd's configuration with the seed's read-only key (the first master only, root only). */
    seedS3cfg: "/etc/redis-ha/seed.s3cfg",
    seedUnit: "/etc/systemd/system/redis-ha-seed.service",
    /** The seed script: shipped to the first master only, so no other node's user-data changes with it. */
    seedScript: "/usr/local/lib/redis-ha/redis-seed",
    /** Written once the seed is installed: later starts of Redis skip the seed. */
    seedMarker: "/var/lib/redis-ha/seeded",
    /** tls: the cluster's CA, this node's certificate and key (owner redis, the key 0640). */
    tlsCa: "/etc/redis/tls/ca.crt",
    tlsCert: "/etc/redis/tls/node.crt",
    tlsKey: "/etc/redis/tls/node.key",
    /** tls: the ACL users of a Redis node (`aclfile`), passwords as hashes only. */
    aclFile: "/etc/redis/users.acl",
    /** tls: the current passwords the node's own tools use, one file per user (owner redis, 0640). */
    secretsDir: "/etc/redis/secrets",
} as const;

export type NodePaths = { readonly [K in keyof typeof PATHS]: string };

/** Scripts under cloud-init/scripts that every node carries, installed into PATHS.scriptsDir. */
export const NODE_SCRIPTS = [
    "lib.sh",
    "redis-start-guard",
    "redis-stop-record",
    "redis-stop-handover",
    "sentinel-tune",
    "disable-thp",
    "apply-settings",
    "node-ready",
    "check-cloud-init",
    "check-node",
    "check-quorum",
    "failover-drill",
    "bootstrap-node",
    "redis-fence",
    "redis-homing",
    "exporter-credentials",
    "redis-backup",
    "redis-restore",
] as const;
export type NodeScript = (typeof NODE_SCRIPTS)[number];

/** Scripts under cloud-init/scripts that only some nodes carry (`backup.seedFrom`: the first master, cloud-init/seed.ts). */
export const FIRST_MASTER_SCRIPTS = ["redis-seed"] as const;

/**
 * The rendered file beside the scripts that tells them where everything else is. A script finds it next to itself
 * (`$(dirname "$0")/paths.sh`), so no path is written twice: this module is the only place that spells them.
 */
export const PATHS_LIB = "paths.sh";

/** The shell names the scripts read, and the path each one stands for. */
const SHELL_NAMES = {
    NODE_ENV_FILE: "nodeEnv",
    REDIS_CONF: "redisConf",
    SENTINEL_CONF: "sentinelConf",
    SCRIPTS_DIR: "scriptsDir",
    STATE_DIR: "stateDir",
    REDIS_STATE_FILE: "redisState",
    LAST_HANDOVER_FILE: "lastHandover",
    HANDOVER_FENCE_FILE: "handoverFence",
    CRASH_HANDOVER_FILE: "crashHandover",
    FAILOVER_LOCK: "failoverLock",
    SCRIPTS_RELEASED_FILE: "scriptsReleased",
    EXPORTER_CREDENTIALS_DIR: "exporterCredentialsDir",
    BACKUP_ENV_FILE: "backupEnv",
    BACKUP_S3CFG: "backupS3cfg",
    BACKUP_METRICS_FILE: "backupMetrics",
    RESTORE_DIR: "restoreDir",
    TLS_CA: "tlsCa",
    TLS_CERT: "tlsCert",
    TLS_KEY: "tlsKey",
    ACL_FILE: "aclFile",
    SECRETS_DIR: "secretsDir",
} as const satisfies Record<string, keyof typeof PATHS>;

/** paths.sh: the node's paths as shell variables. `paths` is replaced only by tests that run the scripts elsewhere. */
export function renderPathsLib(paths: NodePaths = PATHS): string {
    const vars = Object.entries(SHELL_NAMES).map(([name, key]) => [name, paths[key]] as const);
    return `# Rendered by redis-ha from cloud-init/paths.ts: where things live on this node (sourced by lib.sh).\n${shellAssignments(vars)}`;
}
