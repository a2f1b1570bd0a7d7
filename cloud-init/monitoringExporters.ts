import type { ExporterKind, NodePlan, Topology } from "../topology";
import { PATHS } from "./paths";
import { renderUnit } from "./units";

/**
 * The exporters every node runs, from Debian's packages: prometheus-node-exporter everywhere, and
 * prometheus-redis-exporter once for the node's Redis and once for its Sentinel (Sentinel metrics come only from a
 * Sentinel target). Debian's `prometheus-redis-exporter.service` serves the node's first service (Redis, or Sentinel
 * on a Sentinel-only node); `redis-ha-sentinel-exporter.service` serves the Sentinel of a node that runs both. Each
 * target kind keeps its port on every node (EXPORTER_PORTS), so the scrape config and the firewall need no per-node
 * cases.
 *
 * Credentials: until ACL users and TLS exist (the `exporter` user), an exporter logs in with the service's password,
 * read from a JSON file (`-redis.password-file`) that only the exporters' user `prometheus` can read, written from
 * node.env by `exporter-credentials` before each start. Never in argv, where `ps` shows it to every user.
 */

export const EXPORTER_PATHS = {
    /** Keeps apt from pulling prometheus-node-exporter-collectors (python3, smartmontools, timers) as a Recommends. */
    aptPreferences: "/etc/apt/preferences.d/60-redis-ha-exporters",
    nodeExporterDropIn: "/etc/systemd/system/prometheus-node-exporter.service.d/10-redis-ha.conf",
    redisExporterDropIn: "/etc/systemd/system/prometheus-redis-exporter.service.d/10-redis-ha.conf",
    sentinelExporterUnit: "/etc/systemd/system/redis-ha-sentinel-exporter.service",
    /** `<kind>.json` password files, owned by prometheus, mode 0600. */
    credentialsDir: PATHS.exporterCredentialsDir,
    /**
     * Debian's textfile-collector directory: `*.prom` files here become node-exporter metrics. The backup job writes
     * `redis_ha_backup_last_success_timestamp_seconds` here.
     */
    textfileDir: "/var/lib/prometheus/node-exporter",
} as const;

export const EXPORTER_BINARIES = {
    node: "/usr/bin/prometheus-node-exporter",
    redis: "/usr/bin/prometheus-redis-exporter",
} as const;

/** The exporter's user in Debian's packages. */
export const EXPORTER_USER = "prometheus";

/** Debian units of the exporters a node runs, and our own Sentinel exporter unit. */
export const EXPORTER_UNITS = {
    node: "prometheus-node-exporter.service",
    primary: "prometheus-redis-exporter.service",
    sentinel: "redis-ha-sentinel-exporter.service",
} as const;

/** The exporter targets a node serves: `node` always, then `redis` and/or `sentinel`. */
export function exporterKinds(node: NodePlan): ExporterKind[] {
    return [
        "node",
        ...(node.runsRedis ? (["redis"] as const) : []),
        ...(node.runsSentinel ? (["sentinel"] as const) : []),
    ];
}

export function exporterPackages(node: NodePlan): string[] {
    return ["prometheus-node-exporter", ...(node.runsRedis || node.runsSentinel ? ["prometheus-redis-exporter"] : [])];
}

/** The units a node's exporters run as, in start order. */
export function exporterUnits(node: NodePlan): string[] {
    return [
        EXPORTER_UNITS.node,
        ...(node.runsRedis || node.runsSentinel ? [EXPORTER_UNITS.primary] : []),
        ...(node.runsRedis && node.runsSentinel ? [EXPORTER_UNITS.sentinel] : []),
    ];
}

export function renderAptPreferences(): string {
    return [
        "# Rendered by redis-ha. prometheus-node-exporter recommends its collectors package, which brings python3,",
        "# smartmontools and timers a Redis node does not need: never install it.",
        "Package: prometheus-node-exporter-collectors",
        "Pin: release *",
        "Pin-Priority: -1",
        "",
    ].join("\n");
}

/**
 * Where the exporters listen: every address when someone may scrape them (`monitoringCidrs`, the monitoring node:
 * the firewall opens their ports to exactly those), loopback only otherwise, so that no node listens on a public
 * address the firewall does not open (docs/security.md, "Hosts"). Live: the rollout delivers the changed units.
 */
export function exporterListenHost(t: Topology): string {
    return t.monitoring.cidrs.length > 0 || t.monitoring.server ? "" : "127.0.0.1";
}

function nodeExporterArgs(t: Topology): string {
    return [
        EXPORTER_BINARIES.node,
        `--web.listen-address=${exporterListenHost(t)}:${t.monitoring.ports.node}`,
        `--collector.textfile.directory=${EXPORTER_PATHS.textfileDir}`,
    ].join(" ");
}

function redisExporterArgs(t: Topology, kind: "redis" | "sentinel"): string {
    const port = kind === "redis" ? t.ports.redis : t.ports.sentinel;
    return [
        EXPORTER_BINARIES.redis,
        `-redis.addr ${t.security.tls ? "rediss" : "redis"}://127.0.0.1:${port}`,
        `-redis.password-file ${EXPORTER_PATHS.credentialsDir}/${kind}.json`,
        // tls: the ACL user `exporter`, with copies of the node's certificate that exporter-credentials makes.
        ...(t.security.tls
            ? [
                  "-redis.user exporter",
                  `-tls-ca-cert-file ${EXPORTER_PATHS.credentialsDir}/ca.crt`,
                  `-tls-client-cert-file ${EXPORTER_PATHS.credentialsDir}/node.crt`,
                  `-tls-client-key-file ${EXPORTER_PATHS.credentialsDir}/node.key`,
              ]
            : []),
        `-web.listen-address ${exporterListenHost(t)}:${t.monitoring.ports[kind]}`,
    ].join(" ");
}

/** Restart forever, every few seconds: with addressing ephemeral node.env appears only in the bootstrap step. */
const RESTART: [string, string][] = [
    ["Restart", "always"],
    ["RestartSec", "5s"],
];

/** Drop-in for Debian's prometheus-node-exporter.service: our arguments instead of /etc/default's `$ARGS`. */
export function renderNodeExporterDropIn(t: Topology): string {
    return renderUnit(
        {
            Service: [
                ["ExecStart", ""],
                ["ExecStart", nodeExporterArgs(t)],
            ],
        },
        ["Rendered by redis-ha: the node exporter on its port, with the textfile collector the backup job writes to."],
    );
}

/**
 * Drop-in for Debian's prometheus-redis-exporter.service: it scrapes the node's Redis, or its Sentinel on a
 * Sentinel-only node.
 */
export function renderRedisExporterDropIn(t: Topology, node: NodePlan): string {
    const kind = node.runsRedis ? "redis" : "sentinel";
    return renderUnit(
        {
            Unit: [["StartLimitIntervalSec", "0"]],
            Service: [
                // '+': root reads node.env and hands the password file to the exporter's user.
                ["ExecStartPre", `+${PATHS.scriptsDir}/exporter-credentials ${kind}`],
                ["ExecStart", ""],
                ["ExecStart", redisExporterArgs(t, kind)],
                ...RESTART,
            ],
        },
        [`Rendered by redis-ha: prometheus-redis-exporter for this node's ${kind === "redis" ? "Redis" : "Sentinel"}.`],
    );
}

/** A second redis exporter for the Sentinel of a node that also runs Redis (Debian ships one unit). */
export function renderSentinelExporterUnit(t: Topology): string {
    return renderUnit(
        {
            Unit: [
                ["Description", "Prometheus exporter for the node's Redis Sentinel (redis-ha)"],
                ["After", "network.target redis-sentinel.service"],
                ["StartLimitIntervalSec", "0"],
            ],
            Service: [
                ["User", EXPORTER_USER],
                ["ExecStartPre", `+${PATHS.scriptsDir}/exporter-credentials sentinel`],
                ["ExecStart", redisExporterArgs(t, "sentinel")],
                ...RESTART,
                ["NoNewPrivileges", "yes"],
                ["ProtectSystem", "strict"],
                ["ProtectHome", "yes"],
                ["PrivateTmp", "yes"],
            ],
            Install: [["WantedBy", "multi-user.target"]],
        },
        ["Rendered by redis-ha."],
    );
}

/** The exporter files of a node's user-data (root-owned, so the settings rollout delivers them to running nodes). */
export function exporterFiles(t: Topology, node: NodePlan): { path: string; content: string }[] {
    return [
        { path: EXPORTER_PATHS.aptPreferences, content: renderAptPreferences() },
        { path: EXPORTER_PATHS.nodeExporterDropIn, content: renderNodeExporterDropIn(t) },
        ...(node.runsRedis || node.runsSentinel
            ? [{ path: EXPORTER_PATHS.redisExporterDropIn, content: renderRedisExporterDropIn(t, node) }]
            : []),
        ...(node.runsRedis && node.runsSentinel
            ? [{ path: EXPORTER_PATHS.sentinelExporterUnit, content: renderSentinelExporterUnit(t) }]
            : []),
    ];
}
