import * as linode from "@pulumi/linode";
import * as pulumi from "@pulumi/pulumi";
import { encodeUserData, renderMonitoringUserData } from "../cloud-init";
import { ipFamily, type Topology } from "../topology";
import { monitoringChildren } from "./names";
import { publicIpv4 } from "./redisNode";

type Rule = linode.types.input.FirewallInbound;

export interface MonitoringServerArgs {
    /** The deployment; `topology.monitoring.server` must be set (`monitoringEnabled: true`). */
    topology: Topology;
    /** Every Redis node's address, by node name: the scrape targets. */
    addresses: Readonly<Record<string, pulumi.Input<string>>>;
    /** Alertmanager webhook URL (secret: it usually carries a token); required when the model enables the webhook. */
    webhookUrl?: pulumi.Input<string>;
    /** Password of the SMTP login (secret); used when the model's email receiver has `auth`. */
    smtpPassword?: pulumi.Input<string>;
    /** OpenSSH public keys for root (the stack's `authorizedKeys`). */
    authorizedKeys: pulumi.Input<pulumi.Input<string>[]>;
}

/** Inbound rules of the monitoring node: its UIs and SSH from `adminCidrs` only. Pure, for tests and the policy pack. */
export function monitoringInbounds(t: Topology): Rule[] {
    const server = t.monitoring.server;
    if (!server || t.access.adminCidrs.length === 0) return [];
    const v4 = t.access.adminCidrs.filter((c) => ipFamily(c) === "ipv4");
    const v6 = t.access.adminCidrs.filter((c) => ipFamily(c) === "ipv6");
    const from = { ...(v4.length ? { ipv4s: v4 } : {}), ...(v6.length ? { ipv6s: v6 } : {}) };
    return [
        {
            label: "monitoring-ui-admin",
            action: "ACCEPT",
            protocol: "TCP",
            ports: `${String(server.uiPorts.prometheus)},${String(server.uiPorts.alertmanager)}`,
            ...from,
        },
        { label: "ssh-admin", action: "ACCEPT", protocol: "TCP", ports: "22", ...from },
    ];
}

/**
 * The optional monitoring Linode: Prometheus scraping every exporter of the cluster, the alert rules, Alertmanager
 * routing to the configured receivers; behind a firewall of its own that opens the UIs to `adminCidrs` only. The
 * cluster's firewall opens the exporter ports to its address (components/firewall.ts).
 *
 * Unlike a Redis node, its user-data is NOT ignored: a change of the scrape targets, rules or receivers replaces the
 * monitoring Linode, which is configured from scratch by cloud-init. It holds only metrics history (lost on
 * replacement, a deliberate trade for a node that can never drift from the model).
 */
export class MonitoringServer extends pulumi.ComponentResource {
    public readonly instance: linode.Instance;
    public readonly address: pulumi.Output<string>;
    public readonly prometheusUrl: pulumi.Output<string>;
    public readonly alertmanagerUrl: pulumi.Output<string>;

    constructor(name: string, args: MonitoringServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:monitoring:MonitoringServer", name, {}, opts);
        const { topology: t } = args;
        const server = t.monitoring.server;
        if (!server) throw new pulumi.ResourceError("monitoringEnabled is false: no monitoring node to declare", this);
        const firewall = new linode.Firewall(
            monitoringChildren.firewall(name),
            {
                label: server.firewallLabel,
                inboundPolicy: "DROP",
                outboundPolicy: "ACCEPT",
                inbounds: monitoringInbounds(t),
                tags: ["redis-ha", `cluster:${t.cluster}`],
            },
            { parent: this },
        );
        const userData = pulumi
            .all([pulumi.all(args.addresses), args.webhookUrl ?? "", args.smtpPassword ?? ""])
            .apply(([addresses, webhookUrl, smtpPassword]) =>
                encodeUserData(
                    renderMonitoringUserData({
                        topology: t,
                        addresses,
                        secrets: {
                            ...(webhookUrl ? { webhookUrl } : {}),
                            ...(smtpPassword ? { smtpPassword } : {}),
                        },
                    }),
                ),
            );
        this.instance = new linode.Instance(
            monitoringChildren.instance(name),
            {
                label: server.label,
                region: server.region,
                type: server.type,
                image: t.image,
                tags: [...server.tags],
                authorizedKeys: args.authorizedKeys,
                // It carries the receivers' credentials.
                metadatas: [{ userData: pulumi.secret(userData) }],
                interfaces: [{ purpose: "public" }],
                firewallId: firewall.id.apply(Number),
                privateIp: false,
            },
            // The label belongs to one Linode at a time.
            { parent: this, deleteBeforeReplace: true },
        );
        this.address = this.instance.ipv4s.apply(publicIpv4);
        this.prometheusUrl = this.address.apply((a) => `http://${a}:${String(server.uiPorts.prometheus)}`);
        this.alertmanagerUrl = this.address.apply((a) => `http://${a}:${String(server.uiPorts.alertmanager)}`);
        this.registerOutputs({
            address: this.address,
            prometheusUrl: this.prometheusUrl,
            alertmanagerUrl: this.alertmanagerUrl,
        });
    }
}
