import { calendarMaxGapSec } from "./calendar";
import { coveredAddresses, parseCidr, prefixSize } from "./cidr";
import type { ConfigProblem } from "./errors";
import { FIREWALL_LABEL_MAX, labelProblem } from "./labels";
import { CONFIG_NAMESPACE, type StackConfig } from "./schema";

/**
 * Monitoring in the model: the exporters every node runs, who may scrape them, the thresholds the alert rules use,
 * and the optional monitoring Linode. Secrets (webhook URL, SMTP password) stay out of the model; the program hands
 * them to the monitoring component as Pulumi secrets.
 */

/** Exporter ports. Fixed, not config: the firewall, the units and the scrape config all read them from here. */
export const EXPORTER_PORTS = {
    /** prometheus-node-exporter's default. */
    node: 9100,
    /** prometheus-redis-exporter's default, scraping the node's Redis. */
    redis: 9121,
    /** A second prometheus-redis-exporter, scraping the node's Sentinel (the port redis_sentinel_exporter made usual). */
    sentinel: 9355,
} as const;
export type ExporterKind = keyof typeof EXPORTER_PORTS;

/** Ports of the monitoring node's UIs (Debian's defaults). */
export const MONITORING_UI_PORTS = { prometheus: 9090, alertmanager: 9093 } as const;

export interface AlertThresholds {
    /** Replication lag (s) above which a replica is "lagging": the stack's `minReplicasMaxLagSec`. */
    readonly replicationLagSec: number;
    /** In-sync replicas a master needs: the stack's `minReplicasToWrite` (0: no such alert). */
    readonly minReplicasToWrite: number;
    /** Percent of `maxmemory` that raises the memory alert. */
    readonly memoryPercent: number;
    /** Age (s) of the last successful backup that raises the backup alert. */
    readonly backupMaxAgeSec: number;
    /** Time (s) Sentinel may take to replace a failed master: down-after + failover-timeout. */
    readonly failoverBudgetSec: number;
}

export interface MonitoringPlan {
    /** Networks that may scrape the exporters (besides the monitoring node). */
    readonly cidrs: readonly string[];
    readonly ports: typeof EXPORTER_PORTS;
    readonly scrapeIntervalSec: number;
    readonly thresholds: AlertThresholds;
    /** The monitoring Linode; undefined when `monitoringEnabled` is false. */
    readonly server?: MonitoringServerPlan;
}

export interface MonitoringServerPlan {
    readonly region: string;
    /** Linode plan id. */
    readonly type: string;
    /** Linode label: `<cluster>-monitoring`. */
    readonly label: string;
    /** Label of its own Cloud Firewall. */
    readonly firewallLabel: string;
    readonly tags: readonly string[];
    readonly uiPorts: typeof MONITORING_UI_PORTS;
    /** Alertmanager receivers that config enables (their secrets are not in the model). */
    readonly receivers: { readonly webhook: boolean; readonly email?: EmailReceiverPlan };
}

export interface EmailReceiverPlan {
    readonly to: string;
    readonly from: string;
    /** `host:port` of the SMTP relay. */
    readonly smarthost: string;
    /** Does the relay need a login (`monitoringSmtpPassword` given; the user is `from`)? */
    readonly auth: boolean;
}

const key = (k: string) => `${CONFIG_NAMESPACE}:${k}`;

export function monitoringLabel(cluster: string): string {
    return `${cluster}-monitoring`;
}

export function monitoringFirewallLabel(cluster: string): string {
    return `${cluster}-mon-fw`;
}

/** The monitoring part of the model, from schema-valid config that passed `validateMonitoring`. */
export function planMonitoring(config: StackConfig, cluster: string): MonitoringPlan {
    const email =
        config.monitoringEmailTo && config.monitoringEmailFrom && config.monitoringSmtpSmarthost
            ? {
                  to: config.monitoringEmailTo,
                  from: config.monitoringEmailFrom,
                  smarthost: config.monitoringSmtpSmarthost,
                  auth: config.monitoringSmtpPassword !== undefined,
              }
            : undefined;
    return {
        cidrs: [...config.monitoringCidrs],
        ports: EXPORTER_PORTS,
        scrapeIntervalSec: config.monitoringScrapeIntervalSec,
        thresholds: {
            replicationLagSec: config.minReplicasMaxLagSec,
            minReplicasToWrite: config.minReplicasToWrite,
            memoryPercent: config.monitoringMemoryPercent,
            backupMaxAgeSec: backupMaxAgeSec(config),
            failoverBudgetSec: Math.ceil((config.downAfterMs + config.failoverTimeoutMs) / 1000),
        },
        ...(config.monitoringEnabled
            ? {
                  server: {
                      region: config.monitoringRegion ?? config.primaryRegion,
                      type: config.monitoringPlan,
                      label: monitoringLabel(cluster),
                      firewallLabel: monitoringFirewallLabel(cluster),
                      tags: ["redis-ha", `cluster:${cluster}`, "role:monitoring", ...config.tags],
                      uiPorts: MONITORING_UI_PORTS,
                      receivers: {
                          webhook: config.monitoringWebhookUrl !== undefined,
                          ...(email ? { email } : {}),
                      },
                  },
              }
            : {}),
    };
}

/** A backup is overdue after `monitoringBackupMaxAgeHours`, or by default once two runs of its schedule were missed. */
function backupMaxAgeSec(config: StackConfig): number {
    if (config.monitoringBackupMaxAgeHours > 0) return config.monitoringBackupMaxAgeHours * 3600;
    // A schedule fixed to a single date has no period: two days, the daily default's threshold.
    return 2 * (calendarMaxGapSec(config.backup.schedule) ?? DAY_SEC);
}

const DAY_SEC = 86_400;

/**
 * Monitoring keys that only make sense together: email needs its three keys, a monitoring node needs a receiver
 * (alerts that page nobody are silence) and admin networks (its UIs open to nobody else), and `monitoringCidrs` may
 * not be wide. Every problem at once, each naming the key and the fix.
 */
export function validateMonitoring(config: StackConfig, cluster: string): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const emailKeys = ["monitoringEmailTo", "monitoringEmailFrom", "monitoringSmtpSmarthost"] as const;
    const givenEmail = emailKeys.filter((k) => config[k] !== undefined);
    if (givenEmail.length > 0)
        for (const k of emailKeys)
            if (config[k] === undefined)
                problems.push({
                    key: key(k),
                    message: `is required when ${givenEmail.join(" and ")} is set (email alerts need To, From and the SMTP relay)`,
                });
    if (config.monitoringSmtpPassword !== undefined && config.monitoringSmtpSmarthost === undefined)
        problems.push({
            key: key("monitoringSmtpPassword"),
            message: "applies only with monitoringSmtpSmarthost; set the relay or remove the password",
        });
    if (config.monitoringEnabled) {
        if (config.monitoringWebhookUrl === undefined && config.monitoringEmailTo === undefined)
            problems.push({
                key: key("monitoringEnabled"),
                message:
                    "needs a receiver so alerts reach someone; set monitoringWebhookUrl (pulumi config set --secret) or monitoringEmailTo with monitoringEmailFrom and monitoringSmtpSmarthost",
            });
        const label =
            labelProblem(monitoringLabel(cluster)) ??
            labelProblem(monitoringFirewallLabel(cluster), FIREWALL_LABEL_MAX);
        if (label) problems.push({ key: key("clusterName"), message: label });
    } else {
        for (const k of ["monitoringRegion", "monitoringWebhookUrl", "monitoringEmailTo"] as const)
            if (config[k] !== undefined)
                problems.push({
                    key: key(k),
                    message: "applies only with monitoringEnabled: true; enable it or remove the key",
                });
    }
    const cidrs = config.monitoringCidrs.map(parseCidr);
    // An entry that is the whole internet is validateCidrs' one line; its width is not a second problem.
    if (cidrs.some((c) => c.prefixLength === 0)) return problems;
    for (const family of ["ipv4", "ipv6"] as const) {
        const covered = coveredAddresses(cidrs, family);
        // Exporters reveal the topology and load; a scraper is a few hosts, never a /8.
        if (!config.allowWideCidrs && covered > prefixSize(family, family === "ipv4" ? 16 : 48))
            problems.push({
                key: key("monitoringCidrs"),
                message: `cover more than a /${family === "ipv4" ? 16 : 48} of ${family === "ipv4" ? "IPv4" : "IPv6"}; list only your Prometheus servers or set allowWideCidrs: true`,
            });
    }
    return problems;
}
