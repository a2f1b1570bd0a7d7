/** Where things live on a node. Debian's packages own /etc/redis; our scripts and state live beside them. */
export const PATHS = {
    redisConf: "/etc/redis/redis.conf",
    sentinelConf: "/etc/redis/sentinel.conf",
    nodeEnv: "/etc/redis-ha/node.env",
    scriptsDir: "/usr/local/lib/redis-ha",
    sysctl: "/etc/sysctl.d/60-redis-ha.conf",
    tuningUnit: "/etc/systemd/system/redis-ha-tuning.service",
    redisDropIn: "/etc/systemd/system/redis-server.service.d/10-redis-ha.conf",
    sentinelDropIn: "/etc/systemd/system/redis-sentinel.service.d/10-redis-ha.conf",
    policyRcD: "/usr/sbin/policy-rc.d",
} as const;

/** Scripts under cloud-init/scripts that every node carries, installed into PATHS.scriptsDir. */
export const NODE_SCRIPTS = [
    "lib.sh",
    "redis-start-guard",
    "redis-stop-record",
    "disable-thp",
    "apply-settings",
    "node-ready",
    "check-cloud-init",
    "check-node",
    "check-quorum",
    "failover-drill",
] as const;
