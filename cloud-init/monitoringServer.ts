import { stringify } from "yaml";
import type { ExporterKind, MonitoringServerPlan, Topology } from "../topology";
import { exporterKinds } from "./monitoringExporters";
import { renderAlertRules, RULES_FILE_NAME } from "./monitoringRules";
import { renderUnit } from "./units";
import { hostFiles, LOCK_ROOT_PASSWORD, UNATTENDED_UPGRADES_PACKAGE } from "./hosts";

/**
 * The monitoring node: Prometheus and Alertmanager from Debian's packages, configured by cloud-init from the same
 * model as the Redis nodes. Its configs live under /etc/redis-ha/monitoring (not Debian's conffiles in
 * /etc/prometheus, which dpkg would ask about) and Debian's units get drop-ins pointing at them.
 */

export const MONITORING_PATHS = {
    dir: "/etc/redis-ha/monitoring",
    prometheusConfig: "/etc/redis-ha/monitoring/prometheus.yml",
    rules: `/etc/redis-ha/monitoring/${RULES_FILE_NAME}`,
    alertmanagerConfig: "/etc/redis-ha/monitoring/alertmanager.yml",
    prometheusDropIn: "/etc/systemd/system/prometheus.service.d/10-redis-ha.conf",
    alertmanagerDropIn: "/etc/systemd/system/prometheus-alertmanager.service.d/10-redis-ha.conf",
} as const;

export const MONITORING_PACKAGES = ["prometheus", "prometheus-alertmanager", UNATTENDED_UPGRADES_PACKAGE] as const;

/** Credentials of the Alertmanager receivers; the program hands them over as Pulumi secrets. */
export interface ReceiverSecrets {
    readonly webhookUrl?: string;
    readonly smtpPassword?: string;
}

/** One exporter target as the scrape config lists it. */
export interface ScrapeTarget {
    readonly job: ExporterKind;
    readonly address: string;
    readonly labels: {
        readonly cluster: string;
        readonly node: string;
        readonly region: string;
        readonly role: string;
    };
}

/** Every exporter of the cluster, in node order: what Prometheus scrapes, and what the lab checks it scraped. */
export function scrapeTargets(t: Topology, addresses: Readonly<Record<string, string>>): ScrapeTarget[] {
    return t.nodes.flatMap((n) => {
        const address = addresses[n.name];
        if (!address) throw new Error(`no address for node ${n.name}`);
        return exporterKinds(n).map((job) => ({
            job,
            address: `${address}:${String(t.monitoring.ports[job])}`,
            labels: { cluster: t.cluster, node: n.name, region: n.region, role: n.roles.join(",") },
        }));
    });
}

export interface PrometheusConfigOptions {
    /** Where the rules file is, as Prometheus will read it. @default MONITORING_PATHS.rules */
    readonly rulesFile?: string;
    /** Alertmanager's `host:port`. @default 127.0.0.1:9093 */
    readonly alertmanager?: string;
}

/**
 * prometheus.yml: one job per exporter kind (`node`, `redis`, `sentinel`), every target labelled with cluster, node,
 * region and role, the rules, and the local Alertmanager.
 */
export function renderPrometheusConfig(
    t: Topology,
    addresses: Readonly<Record<string, string>>,
    opts: PrometheusConfigOptions = {},
): string {
    const targets = scrapeTargets(t, addresses);
    const interval = `${String(t.monitoring.scrapeIntervalSec)}s`;
    const jobs = (["node", "redis", "sentinel"] as const).map((job) => ({
        job_name: job,
        static_configs: targets
            .filter((x) => x.job === job)
            .map((x) => ({ targets: [x.address], labels: { ...x.labels } })),
        ...(job === "node"
            ? {}
            : {
                  // redis_instance_info's own `role` (master/slave) clashes with the target's `role` label and arrives
                  // as `exported_role`: keep it as `redis_role`, which the rules use.
                  metric_relabel_configs: [
                      { source_labels: ["exported_role"], regex: "(.+)", target_label: "redis_role" },
                      { regex: "exported_role", action: "labeldrop" },
                  ],
              }),
    }));
    const doc = {
        global: {
            scrape_interval: interval,
            evaluation_interval: interval,
            // Below the interval, so one slow target never overlaps its next scrape.
            scrape_timeout: `${String(Math.max(1, Math.floor(t.monitoring.scrapeIntervalSec * 0.8)))}s`,
            external_labels: { cluster: t.cluster },
        },
        rule_files: [opts.rulesFile ?? MONITORING_PATHS.rules],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [opts.alertmanager ?? "127.0.0.1:9093"] }] }] },
        scrape_configs: jobs,
    };
    return `# Rendered by redis-ha from the topology model (cloud-init/monitoringServer.ts).\n${stringify(doc, { lineWidth: 0 })}`;
}

/** Alertmanager's receiver name for the team that runs the cluster. */
export const TEAM_RECEIVER = "redis-ha-team";

/**
 * alertmanager.yml: every alert of the cluster to one receiver (webhook and/or email, from config), grouped by
 * cluster and alert; a master that is down silences the replica-side noise it causes.
 */
export function renderAlertmanagerConfig(server: MonitoringServerPlan, secrets: ReceiverSecrets): string {
    const { webhook, email } = server.receivers;
    if (webhook && !secrets.webhookUrl) throw new Error("monitoringWebhookUrl is enabled but no URL was given");
    const receiver = {
        name: TEAM_RECEIVER,
        ...(webhook && secrets.webhookUrl
            ? { webhook_configs: [{ url: secrets.webhookUrl, send_resolved: true }] }
            : {}),
        ...(email
            ? {
                  email_configs: [
                      {
                          to: email.to,
                          from: email.from,
                          smarthost: email.smarthost,
                          send_resolved: true,
                          ...(email.auth && secrets.smtpPassword
                              ? { auth_username: email.from, auth_password: secrets.smtpPassword }
                              : {}),
                      },
                  ],
              }
            : {}),
    };
    const doc = {
        route: {
            receiver: TEAM_RECEIVER,
            group_by: ["cluster", "alertname"],
            group_wait: "30s",
            group_interval: "5m",
            repeat_interval: "4h",
            // A failover is news, not a page: once, no repeats.
            routes: [{ matchers: ['severity="info"'], receiver: TEAM_RECEIVER, repeat_interval: "7d" }],
        },
        inhibit_rules: [
            {
                source_matchers: ['alertname="RedisHaMasterDown"'],
                target_matchers: ['alertname=~"RedisHaReplicaLinkDown|RedisHaTooFewInSyncReplicas|RedisHaNoMaster"'],
                equal: ["cluster"],
            },
        ],
        receivers: [receiver],
    };
    return `# Rendered by redis-ha (cloud-init/monitoringServer.ts). Holds receiver credentials: root:prometheus 0640.\n${stringify(doc, { lineWidth: 0 })}`;
}

export function renderPrometheusDropIn(server: MonitoringServerPlan): string {
    return renderUnit(
        {
            Service: [
                ["ExecStart", ""],
                [
                    "ExecStart",
                    [
                        "/usr/bin/prometheus",
                        `--config.file=${MONITORING_PATHS.prometheusConfig}`,
                        "--storage.tsdb.path=/var/lib/prometheus/metrics2/",
                        "--storage.tsdb.retention.time=30d",
                        `--web.listen-address=:${String(server.uiPorts.prometheus)}`,
                    ].join(" "),
                ],
            ],
        },
        ["Rendered by redis-ha: Prometheus with the cluster's generated config."],
    );
}

export function renderAlertmanagerDropIn(server: MonitoringServerPlan): string {
    return renderUnit(
        {
            Service: [
                ["ExecStart", ""],
                [
                    "ExecStart",
                    [
                        "/usr/bin/prometheus-alertmanager",
                        `--config.file=${MONITORING_PATHS.alertmanagerConfig}`,
                        "--storage.path=/var/lib/prometheus/alertmanager/",
                        `--web.listen-address=:${String(server.uiPorts.alertmanager)}`,
                        // One Alertmanager: no gossip port to open or secure.
                        "--cluster.listen-address=",
                    ].join(" "),
                ],
            ],
        },
        ["Rendered by redis-ha: Alertmanager with the cluster's generated routes."],
    );
}

export interface MonitoringUserDataInput {
    readonly topology: Topology;
    /** Every Redis node's address, by node name. */
    readonly addresses: Readonly<Record<string, string>>;
    readonly secrets: ReceiverSecrets;
}

/**
 * The monitoring node's `#cloud-config`. Pure and byte-stable. A change replaces the monitoring Linode (its user-data
 * is not in ignoreChanges, unlike a Redis node's): it holds no data the cluster needs, only metrics history, and a
 * replaced node is always configured from the current model.
 */
export function renderMonitoringUserData(input: MonitoringUserDataInput): string {
    const { topology: t } = input;
    const server = t.monitoring.server;
    if (!server) throw new Error("monitoring is not enabled (monitoringEnabled: false)");
    const upgradeHour = t.securityUpgrades.monitoringHourUtc;
    if (upgradeHour === undefined) throw new Error("no upgrade slot for the monitoring node");
    const root = (path: string, content: string) => ({ path, owner: "root:root", permissions: "0644", content });
    const doc = {
        package_update: true,
        package_upgrade: false,
        packages: [...MONITORING_PACKAGES],
        // The same host hardening as the Redis nodes (cloud-init/hosts.ts): keys only, no root password, security
        // upgrades in a slot after every cluster node's.
        ssh_pwauth: false,
        write_files: [
            ...hostFiles(t.securityUpgrades, upgradeHour).map((f) => root(f.path, f.content)),
            root(MONITORING_PATHS.prometheusConfig, renderPrometheusConfig(t, input.addresses)),
            root(MONITORING_PATHS.rules, renderAlertRules(t)),
            root(MONITORING_PATHS.prometheusDropIn, renderPrometheusDropIn(server)),
            root(MONITORING_PATHS.alertmanagerDropIn, renderAlertmanagerDropIn(server)),
            {
                path: MONITORING_PATHS.alertmanagerConfig,
                // Receiver credentials: readable by Alertmanager's user only; the group exists after packages.
                owner: "root:prometheus",
                permissions: "0640",
                defer: true,
                content: renderAlertmanagerConfig(server, input.secrets),
            },
        ],
        runcmd: [
            "set -eu",
            [...LOCK_ROOT_PASSWORD],
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "prometheus.service", "prometheus-alertmanager.service"],
            ["systemctl", "restart", "prometheus-alertmanager.service", "prometheus.service"],
        ],
    };
    return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}
