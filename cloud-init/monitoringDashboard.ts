/**
 * A Grafana dashboard for any Prometheus that scrapes this kit's exporters with its labels (cluster, node, region,
 * role, and the exporter job): one row per role (Redis, Sentinel, node). Rendered here and shipped as
 * monitoring/grafana-dashboard.json (a test keeps the file equal to this rendering), loadable into any Grafana
 * (Dashboards > Import). The `cluster` variable picks the cluster; the data source is chosen at import.
 */

export interface DashboardPanel {
    readonly title: string;
    /** PromQL; `$cluster` is the dashboard variable. */
    readonly expr: string;
    readonly legend: string;
    readonly unit: string;
    /** May return nothing on a healthy cluster (no backup job yet, no replication lag series on a lone master). */
    readonly mayBeEmpty?: boolean;
}

export interface DashboardRow {
    readonly title: string;
    readonly panels: readonly DashboardPanel[];
}

const c = (job: string, ...extra: string[]) => `{${[`cluster="$cluster"`, `job="${job}"`, ...extra].join(",")}}`;

export const DASHBOARD_ROWS: readonly DashboardRow[] = [
    {
        title: "Redis",
        panels: [
            {
                title: "Master (1) per node",
                expr: `max by (node) (redis_instance_info${c("redis", `redis_role="master"`)}) or max by (node) (redis_up${c("redis")}) * 0`,
                legend: "{{node}}",
                unit: "none",
            },
            { title: "Redis up", expr: `redis_up${c("redis")}`, legend: "{{node}}", unit: "none" },
            {
                title: "Memory used / maxmemory",
                expr: `redis_memory_used_bytes${c("redis")} / (redis_memory_max_bytes${c("redis")} > 0)`,
                legend: "{{node}}",
                unit: "percentunit",
            },
            {
                title: "Commands per second",
                expr: `rate(redis_commands_processed_total${c("redis")}[1m])`,
                legend: "{{node}}",
                unit: "ops",
            },
            {
                title: "Connected clients",
                expr: `redis_connected_clients${c("redis")}`,
                legend: "{{node}}",
                unit: "none",
            },
            {
                title: "Replica lag (s, on the master)",
                expr: `redis_connected_slave_lag_seconds${c("redis")}`,
                legend: "{{node}} → {{slave_ip}}",
                unit: "s",
                mayBeEmpty: true,
            },
            {
                title: "Rejected connections (5m)",
                expr: `increase(redis_rejected_connections_total${c("redis")}[5m])`,
                legend: "{{node}}",
                unit: "none",
            },
        ],
    },
    {
        title: "Sentinel",
        panels: [
            {
                title: "CKQUORUM ok",
                expr: `redis_sentinel_master_ckquorum_status${c("sentinel")}`,
                legend: "{{node}}",
                unit: "none",
            },
            {
                title: "Sentinels that agree the master is ok",
                expr: `redis_sentinel_master_ok_sentinels${c("sentinel")}`,
                legend: "{{node}}",
                unit: "none",
            },
            {
                title: "Master each Sentinel names",
                expr: `redis_sentinel_master_status${c("sentinel")}`,
                legend: "{{node}}: {{master_address}} {{master_status}}",
                unit: "none",
            },
            { title: "TILT", expr: `redis_sentinel_tilt${c("sentinel")}`, legend: "{{node}}", unit: "none" },
        ],
    },
    {
        title: "Node",
        panels: [
            {
                title: "CPU busy",
                expr: `1 - avg by (node) (rate(node_cpu_seconds_total${c("node", `mode="idle"`)}[1m]))`,
                legend: "{{node}}",
                unit: "percentunit",
            },
            {
                title: "Memory available",
                expr: `node_memory_MemAvailable_bytes${c("node")} / node_memory_MemTotal_bytes${c("node")}`,
                legend: "{{node}}",
                unit: "percentunit",
            },
            { title: "Load (5m)", expr: `node_load5${c("node")}`, legend: "{{node}}", unit: "none" },
            {
                title: "Disk free",
                expr: `node_filesystem_avail_bytes${c("node", `fstype!~"tmpfs|ramfs|overlay|squashfs"`)} / node_filesystem_size_bytes${c("node", `fstype!~"tmpfs|ramfs|overlay|squashfs"`)}`,
                legend: "{{node}} {{mountpoint}}",
                unit: "percentunit",
                mayBeEmpty: true,
            },
            {
                title: "Last successful backup (age)",
                expr: `time() - redis_ha_backup_last_success_timestamp_seconds${c("node")}`,
                legend: "{{node}}",
                unit: "s",
                mayBeEmpty: true,
            },
        ],
    },
];

/** The dashboard JSON (Grafana's schema 38 model), stable key order, two-space indentation. */
export function renderGrafanaDashboard(): string {
    const datasource = { type: "prometheus", uid: "${datasource}" };
    const panels: unknown[] = [];
    let id = 1;
    let y = 0;
    for (const row of DASHBOARD_ROWS) {
        panels.push({
            id: id++,
            type: "row",
            title: row.title,
            collapsed: false,
            gridPos: { h: 1, w: 24, x: 0, y },
            panels: [],
        });
        y += 1;
        row.panels.forEach((p, i) => {
            panels.push({
                id: id++,
                type: "timeseries",
                title: p.title,
                datasource,
                gridPos: { h: 8, w: 8, x: (i % 3) * 8, y: y + Math.floor(i / 3) * 8 },
                fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
                options: { legend: { displayMode: "list", placement: "bottom", showLegend: true } },
                targets: [{ refId: "A", datasource, expr: p.expr, legendFormat: p.legend }],
            });
        });
        y += Math.ceil(row.panels.length / 3) * 8;
    }
    const dashboard = {
        title: "redis-ha",
        uid: "redis-ha",
        tags: ["redis-ha", "redis", "sentinel"],
        timezone: "browser",
        schemaVersion: 38,
        refresh: "30s",
        time: { from: "now-1h", to: "now" },
        templating: {
            list: [
                { name: "datasource", label: "Prometheus", type: "datasource", query: "prometheus" },
                {
                    name: "cluster",
                    label: "Cluster",
                    type: "query",
                    datasource,
                    query: { query: "label_values(redis_up, cluster)", refId: "cluster" },
                    refresh: 2,
                },
            ],
        },
        panels,
    };
    return `${JSON.stringify(dashboard, null, 2)}\n`;
}
