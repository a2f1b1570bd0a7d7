import * as linode from "@pulumi/linode";
import type { StackValidationPolicy } from "@pulumi/policy";
import { coversWholeInternet, type Family } from "../lib/cidr";
import { withDefaults } from "../lib/config";
import { portsCover } from "../lib/ports";
import { CLUSTER_TYPE, NS, type TopologySummary } from "../lib/summary";

export interface NoPublicDataPortsConfig {
    /** Ports of the metrics exporters (node_exporter, redis_exporter). */
    exporterPorts: number[];
    /** Ports of sshd. */
    sshPorts: number[];
}

const DEFAULTS: NoPublicDataPortsConfig = { exporterPorts: [9100, 9121], sshPorts: [22] };

/** Ports the cluster itself declares, read from its summary; Redis's and Sentinel's defaults without one. */
function dataPorts(resources: readonly { type: string; props: Record<string, unknown> }[]): Map<number, string> {
    const ports = new Map<number, string>();
    const summaries = resources
        .filter((r) => r.type === CLUSTER_TYPE)
        .map((r) => (r.props as { topologySummary?: TopologySummary }).topologySummary)
        .filter((s): s is TopologySummary => s !== undefined);
    for (const s of summaries.length > 0 ? summaries : [{ ports: { redis: 6379, sentinel: 26379 } }]) {
        ports.set(s.ports.redis, "Redis");
        ports.set(s.ports.sentinel, "Sentinel");
    }
    return ports;
}

/**
 * No Redis, Sentinel, exporter or SSH port open to the whole internet (0.0.0.0/0, ::/0, or rules that add up to it).
 *
 * Severity: critical. Redis and Sentinel answer anyone who reaches them (a password is the only gate, and
 * `SENTINEL SET`/`CONFIG SET` through a leaked one reconfigure the cluster); exporters tell an attacker the layout.
 * https://redis.io/docs/latest/operate/oss_and_stack/management/security/
 */
export const noPublicDataPorts: StackValidationPolicy = {
    name: "redis-ha-no-public-data-ports",
    description: "No Redis, Sentinel, exporter or SSH port is open to 0.0.0.0/0 or ::/0.",
    enforcementLevel: "mandatory",
    severity: "critical",
    configSchema: {
        properties: {
            exporterPorts: {
                type: "array",
                items: { type: "integer", minimum: 1, maximum: 65535 },
                default: DEFAULTS.exporterPorts,
                description: "TCP ports of the metrics exporters.",
            },
            sshPorts: {
                type: "array",
                items: { type: "integer", minimum: 1, maximum: 65535 },
                default: DEFAULTS.sshPorts,
                description: "TCP ports of sshd.",
            },
        },
    },
    validateStack: (args, reportViolation) => {
        const config = withDefaults(args.getConfig<Partial<NoPublicDataPortsConfig>>(), DEFAULTS);
        const protectedPorts = dataPorts(args.resources);
        for (const p of config.exporterPorts) protectedPorts.set(p, "exporter");
        for (const p of config.sshPorts) protectedPorts.set(p, "SSH");
        const fixKey = (what: string) =>
            what === "SSH" ? `${NS}:adminCidrs` : what === "exporter" ? `${NS}:monitoringCidrs` : `${NS}:clientCidrs`;

        for (const r of args.resources) {
            const firewall = r.asType(linode.Firewall);
            if (!firewall) continue;
            const accepting = (firewall.inbounds ?? []).filter(
                (rule) => rule.action === "ACCEPT" && rule.protocol === "TCP",
            );
            for (const [port, what] of [...protectedPorts].sort((a, b) => a[0] - b[0]))
                for (const family of ["ipv4", "ipv6"] as Family[]) {
                    const rules = accepting.filter((rule) => portsCover(rule.ports, port));
                    const cidrs = rules.flatMap((rule) => (family === "ipv4" ? rule.ipv4s : rule.ipv6s) ?? []);
                    if (!coversWholeInternet(cidrs, family)) continue;
                    const found = rules
                        .filter((rule) => ((family === "ipv4" ? rule.ipv4s : rule.ipv6s) ?? []).length > 0)
                        .map(
                            (rule) =>
                                `"${rule.label}": ${((family === "ipv4" ? rule.ipv4s : rule.ipv6s) ?? []).join(", ")}`,
                        )
                        .join("; ");
                    reportViolation(
                        `linode.Firewall ${r.name} accepts ${what} port ${String(port)} from the whole ${family === "ipv4" ? "IPv4" : "IPv6"} internet (${found}); expected only your own networks. Fix: narrow ${fixKey(what)}.`,
                        r.urn,
                    );
                }
        }
    },
};
