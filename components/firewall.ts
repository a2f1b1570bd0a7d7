import type * as linode from "@pulumi/linode";
import { ipFamily, type Topology } from "../topology";

type Rule = linode.types.input.FirewallInbound;

function split(cidrs: readonly string[]): { ipv4s?: string[]; ipv6s?: string[] } {
    const v4 = cidrs.filter((c) => ipFamily(c) === "ipv4");
    const v6 = cidrs.filter((c) => ipFamily(c) === "ipv6");
    return { ...(v4.length ? { ipv4s: v4 } : {}), ...(v6.length ? { ipv6s: v6 } : {}) };
}

/**
 * Inbound rules of the cluster's Cloud Firewall (inbound policy DROP): Redis and Sentinel ports only from the
 * cluster's own nodes and the configured client networks, SSH only from the admin networks. Pure, so the policy
 * pack and tests check exactly what the program creates.
 */
export function firewallInbounds(t: Topology, addresses: readonly string[], monitoringAddress?: string): Rule[] {
    const ports = `${t.ports.redis},${t.ports.sentinel}`;
    const peers = [...addresses].sort().map((a) => `${a}/32`);
    const rules: Rule[] = [
        { label: "redis-peers", action: "ACCEPT", protocol: "TCP", ports, ipv4s: peers },
        { label: "icmp-peers", action: "ACCEPT", protocol: "ICMP", ipv4s: peers },
    ];
    if (t.access.clientCidrs.length > 0)
        rules.push({
            label: "redis-clients",
            action: "ACCEPT",
            protocol: "TCP",
            ports,
            ...split(t.access.clientCidrs),
        });
    if (t.access.adminCidrs.length > 0)
        rules.push({
            label: "ssh-admin",
            action: "ACCEPT",
            protocol: "TCP",
            ports: "22",
            ...split(t.access.adminCidrs),
        });
    rules.push(...exporterInbounds(t, monitoringAddress));
    return rules;
}

/**
 * The exporter ports (docs/monitoring.md), only from `monitoringCidrs` and the monitoring node: exporters show the
 * topology and load to whoever can scrape them, and answer without a password.
 */
export function exporterInbounds(t: Topology, monitoringAddress?: string): Rule[] {
    const sources = [...t.monitoring.cidrs, ...(monitoringAddress ? [`${monitoringAddress}/32`] : [])];
    if (sources.length === 0) return [];
    const p = t.monitoring.ports;
    return [
        {
            label: "exporters-monitoring",
            action: "ACCEPT",
            protocol: "TCP",
            ports: `${p.node},${p.redis},${p.sentinel}`,
            ...split(sources),
        },
    ];
}
