import { stringify } from "yaml";
import type { ExporterKind, Topology } from "../topology";

/**
 * The alert rules, rendered from the model: thresholds and `for:` durations come from the stack's settings
 * (replication lag from `minReplicasMaxLagSec`, the failover budget from Sentinel's timings, memory and backup from
 * the monitoring keys), every selector is scoped to the cluster, so one Prometheus can watch several clusters. Each
 * alert has a runbook section in docs/monitoring.md (its anchor is the alert name in lower case).
 *
 * The scrape config (monitoringServer.ts) gives every series `cluster`, `node`, `region`, `role` and a `job` that is
 * the exporter kind (`node`, `redis`, `sentinel`); the rules rely on exactly those. The exporter's own `role` label
 * (master/slave on `redis_instance_info`) clashes with the target's `role`, so the scrape config renames it
 * `redis_role`.
 */

export type Severity = "critical" | "warning" | "info";

export interface AlertRule {
    readonly alert: string;
    readonly expr: string;
    /** Prometheus duration, e.g. `1m`, `30s`, `0s`. */
    readonly for: string;
    readonly severity: Severity;
    readonly summary: string;
    readonly description: string;
}

/** Where each alert's runbook lives in this repository: one section per alert, anchored by its name in lower case. */
export const RUNBOOK_DOC = "docs/monitoring.md";

/** The file Prometheus loads; the monitoring node writes the rules here. */
export const RULES_FILE_NAME = "redis-ha.rules.yml";

const seconds = (s: number) => `${String(Math.max(0, Math.round(s)))}s`;

/** The selector of one exporter kind's series in this cluster, with extra matchers. */
function sel(t: Topology, job: ExporterKind, ...extra: string[]): string {
    return `{${[`cluster="${t.cluster}"`, `job="${job}"`, ...extra].join(",")}}`;
}

/** A Redis series of this cluster that was a master within the last 10 minutes (what `on (node)` joins use). */
function wasMaster(t: Topology): string {
    return `last_over_time(redis_instance_info${sel(t, "redis", `redis_role="master"`)}[10m])`;
}

/** Redis down as its exporter says it (redis_up 0) or as Prometheus sees it (the exporter unreachable). */
function redisDown(t: Topology): string {
    return `max by (cluster, node, region, instance) (redis_up${sel(t, "redis")} == 0 or up${sel(t, "redis")} == 0)`;
}

export function alertRules(t: Topology): AlertRule[] {
    const th = t.monitoring.thresholds;
    const scrape = t.monitoring.scrapeIntervalSec;
    // Longer than a normal failover: Sentinel needs down-after + the election, and demotes the old master ~10 s later.
    const settle = seconds(Math.max(60, 2 * th.failoverBudgetSec));
    const redis = (...m: string[]) => sel(t, "redis", ...m);
    const sentinel = (...m: string[]) => sel(t, "sentinel", ...m);
    const node = (...m: string[]) => sel(t, "node", ...m);
    const rules: AlertRule[] = [
        {
            alert: "RedisHaNoMaster",
            expr: `(count by (cluster) (redis_instance_info${redis(`redis_role="master"`)}) or count by (cluster) (redis_up${redis()}) * 0) == 0`,
            for: seconds(th.failoverBudgetSec),
            severity: "critical",
            summary: "No Redis master in cluster {{ $labels.cluster }}",
            description: `No Redis node of {{ $labels.cluster }} reports role master for longer than Sentinel's failover budget (${String(th.failoverBudgetSec)} s): writes fail.`,
        },
        {
            alert: "RedisHaMultipleMasters",
            expr: `count by (cluster) (redis_instance_info${redis(`redis_role="master"`)}) > 1`,
            for: settle,
            severity: "critical",
            summary: "More than one Redis master in cluster {{ $labels.cluster }}",
            description:
                "Several Redis nodes of {{ $labels.cluster }} report role master for longer than a failover takes: writes to the wrong one will be lost.",
        },
        {
            alert: "RedisHaMasterDown",
            expr: `${redisDown(t)} and on (cluster, node) ${wasMaster(t)}`,
            for: seconds(scrape),
            severity: "critical",
            summary: "Redis master {{ $labels.node }} is down",
            description:
                "{{ $labels.node }} ({{ $labels.region }}) was the master of {{ $labels.cluster }} and does not answer: Sentinel should promote a replica.",
        },
        {
            alert: "RedisHaFailover",
            expr: `redis_instance_info${redis(`redis_role="master"`)} and on (cluster, node) last_over_time(redis_instance_info${redis(`redis_role="slave"`)}[10m])`,
            for: "0s",
            severity: "info",
            summary: "Failover: {{ $labels.node }} is the new master",
            description:
                "{{ $labels.node }} ({{ $labels.region }}) was a replica of {{ $labels.cluster }} within the last 10 minutes and is master now.",
        },
        {
            alert: "RedisHaRedisDown",
            expr: `${redisDown(t)} unless on (cluster, node) ${wasMaster(t)}`,
            for: "1m",
            severity: "warning",
            summary: "Redis replica {{ $labels.node }} is down",
            description:
                "Redis on {{ $labels.node }} ({{ $labels.region }}) does not answer: {{ $labels.cluster }} has one replica fewer to fail over to.",
        },
        {
            alert: "RedisHaReplicaLinkDown",
            expr: `redis_master_link_up${redis()} == 0`,
            for: "1m",
            severity: "warning",
            summary: "Replica {{ $labels.node }} lost its master link",
            description: "{{ $labels.node }} runs but is not replicating from the master of {{ $labels.cluster }}.",
        },
        {
            alert: "RedisHaReplicationLag",
            expr: `redis_connected_slave_lag_seconds${redis()} > ${String(th.replicationLagSec)}`,
            for: "1m",
            severity: "warning",
            summary: "Replica {{ $labels.slave_ip }} lags behind master {{ $labels.node }}",
            description: `The replica at {{ $labels.slave_ip }} last acknowledged more than ${String(th.replicationLagSec)} s ago (minReplicasMaxLagSec): the master does not count it for min-replicas-to-write.`,
        },
    ];
    if (th.minReplicasToWrite > 0)
        rules.push({
            alert: "RedisHaTooFewInSyncReplicas",
            expr: `(count by (cluster) (redis_connected_slave_lag_seconds${redis()} <= ${String(th.replicationLagSec)}) or count by (cluster) (redis_instance_info${redis(`redis_role="master"`)}) * 0) < ${String(th.minReplicasToWrite)}`,
            for: "1m",
            severity: "critical",
            summary: "Master of {{ $labels.cluster }} has fewer in-sync replicas than minReplicasToWrite",
            description: `Fewer than ${String(th.minReplicasToWrite)} replicas acknowledged within ${String(th.replicationLagSec)} s: the master refuses writes (NOREPLICAS).`,
        });
    rules.push(
        {
            alert: "RedisHaSentinelQuorumLost",
            expr: `redis_sentinel_master_ckquorum_status${sentinel()} == 0`,
            for: "1m",
            severity: "critical",
            summary: "Sentinel on {{ $labels.node }} cannot reach quorum",
            description:
                "SENTINEL CKQUORUM fails on {{ $labels.node }}: {{ $labels.message }}. A master failure now would not be failed over.",
        },
        {
            alert: "RedisHaSentinelTilt",
            expr: `redis_sentinel_tilt${sentinel()} == 1`,
            for: "0s",
            severity: "warning",
            summary: "Sentinel on {{ $labels.node }} is in TILT mode",
            description:
                "Sentinel on {{ $labels.node }} saw its clock jump or the process stall and stops acting for 30 s.",
        },
        {
            alert: "RedisHaSentinelDisagreement",
            expr: `count by (cluster) (count by (cluster, master_address) (redis_sentinel_master_status${sentinel()})) > 1`,
            for: settle,
            severity: "warning",
            summary: "Sentinels of {{ $labels.cluster }} name different masters",
            description:
                "The Sentinels of {{ $labels.cluster }} have not agreed on one master address for longer than a failover takes.",
        },
        {
            alert: "RedisHaMemoryNearMax",
            expr: `redis_memory_used_bytes${redis()} / (redis_memory_max_bytes${redis()} > 0) > ${String(th.memoryPercent / 100)}`,
            for: "5m",
            severity: "warning",
            summary: "Redis on {{ $labels.node }} uses over " + String(th.memoryPercent) + " % of maxmemory",
            description: `Redis on {{ $labels.node }} is close to maxmemory: with maxmemoryPolicy ${t.redis.maxmemoryPolicy} it ${t.redis.maxmemoryPolicy === "noeviction" ? "will refuse writes (OOM)" : "evicts keys"}.`,
        },
        {
            alert: "RedisHaRejectedConnections",
            expr: `increase(redis_rejected_connections_total${redis()}[5m]) > 0`,
            for: "0s",
            severity: "warning",
            summary: "Redis on {{ $labels.node }} rejects connections",
            description: "Redis on {{ $labels.node }} refused connections in the last 5 minutes (maxclients reached).",
        },
        {
            alert: "RedisHaPersistenceError",
            // A `check` label per source: without it two failures at once would collide once __name__ is dropped.
            expr: [
                ["redis_rdb_last_bgsave_status", "rdb_bgsave"],
                ["redis_aof_last_write_status", "aof_write"],
                ["redis_aof_last_bgrewrite_status", "aof_rewrite"],
            ]
                .map(([metric, check]) => `label_replace(${metric}${redis()} == 0, "check", "${check}", "", "")`)
                .join(" or "),
            for: "0s",
            severity: "critical",
            summary: "Redis on {{ $labels.node }} failed to persist ({{ $labels.check }})",
            description:
                "The last RDB snapshot, AOF write or AOF rewrite failed on {{ $labels.node }}: a restart would lose data, and a master with stop-writes-on-bgsave-error refuses writes.",
        },
        {
            alert: "RedisHaExporterDown",
            expr: `up{cluster="${t.cluster}"} == 0`,
            for: seconds(Math.max(60, 3 * scrape)),
            severity: "warning",
            summary: "Exporter {{ $labels.job }} on {{ $labels.node }} is unreachable",
            description:
                "Prometheus cannot scrape the {{ $labels.job }} exporter on {{ $labels.node }} ({{ $labels.instance }}): the node, the exporter or the firewall is down, and its alerts are blind.",
        },
        {
            alert: "RedisHaBackupStale",
            expr: `time() - redis_ha_backup_last_success_timestamp_seconds${node()} > ${String(th.backupMaxAgeSec)}`,
            for: "0s",
            severity: "warning",
            summary: "Last successful backup on {{ $labels.node }} is too old",
            description: `The backup job on {{ $labels.node }} last succeeded more than ${String(th.backupMaxAgeSec / 3600)} h ago (monitoringBackupMaxAgeHours; by default twice the longest gap between runs of backup.schedule).`,
        },
        {
            alert: "RedisHaNodeDiskFull",
            expr: `node_filesystem_avail_bytes${node(`fstype!~"tmpfs|ramfs|overlay|squashfs"`)} / node_filesystem_size_bytes${node(`fstype!~"tmpfs|ramfs|overlay|squashfs"`)} < 0.1`,
            for: "5m",
            severity: "warning",
            summary: "Less than 10 % disk left on {{ $labels.node }} ({{ $labels.mountpoint }})",
            description:
                "{{ $labels.mountpoint }} on {{ $labels.node }} is nearly full: RDB snapshots and AOF rewrites need room for a second copy of the data.",
        },
        {
            alert: "RedisHaNodeMemoryLow",
            expr: `node_memory_MemAvailable_bytes${node()} / node_memory_MemTotal_bytes${node()} < 0.1`,
            for: "5m",
            severity: "warning",
            summary: "Less than 10 % memory available on {{ $labels.node }}",
            description:
                "{{ $labels.node }} is short of memory: a fork for a snapshot can push it into the OOM killer.",
        },
        {
            alert: "RedisHaNodeLoadHigh",
            expr: `node_load5${node()} / count without (cpu, mode) (node_cpu_seconds_total${node(`mode="idle"`)}) > 2`,
            for: "15m",
            severity: "warning",
            summary: "Load on {{ $labels.node }} is over twice its CPUs",
            description:
                "{{ $labels.node }} has been overloaded for 15 minutes: Sentinel pings may time out and cause a failover.",
        },
        {
            alert: "RedisHaClockSkew",
            // `== bool` drops the metric name, so both conditions at once give one series, not two that clash.
            expr: `abs(node_timex_offset_seconds${node()}) > 0.05 or (node_timex_sync_status${node()} == bool 0) == 1`,
            for: "10m",
            severity: "warning",
            summary: "Clock of {{ $labels.node }} is off or not synchronised",
            description:
                "{{ $labels.node }}'s clock is more than 50 ms off or not synchronised: Sentinel enters TILT on clock jumps, and timestamps in logs and backups mislead.",
        },
    );
    return rules;
}

/** The Prometheus rule file: one group per cluster, evaluated at the scrape interval. */
export function renderAlertRules(t: Topology): string {
    const rules = alertRules(t).map((r) => ({
        alert: r.alert,
        expr: r.expr,
        for: r.for,
        labels: { severity: r.severity },
        annotations: {
            summary: r.summary,
            description: r.description,
            runbook: `${RUNBOOK_DOC}#${r.alert.toLowerCase()}`,
        },
    }));
    const doc = {
        groups: [{ name: `redis-ha-${t.cluster}`, interval: seconds(t.monitoring.scrapeIntervalSec), rules }],
    };
    return `# Rendered by redis-ha from the topology model (cloud-init/monitoringRules.ts).\n${stringify(doc, { lineWidth: 0 })}`;
}
