import * as linode from "@pulumi/linode";
import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";

/** Is this firewall attached to this Linode, by `Instance.firewallId`, `Firewall.linodes` or a `FirewallDevice`? */
function attached(firewall: PolicyResource, instance: PolicyResource, devices: readonly PolicyResource[]): boolean {
    const deps = (r: PolicyResource, key: string) =>
        (r.propertyDependencies as Partial<Record<string, PolicyResource[]>>)[key] ?? [];
    // Dependencies first: they are known at preview, when the ids of new resources are not.
    if (deps(instance, "firewallId").some((d) => d.urn === firewall.urn)) return true;
    if (deps(firewall, "linodes").some((d) => d.urn === instance.urn)) return true;
    const instanceId = Number((instance.props as { id?: unknown }).id);
    const firewallId = Number((firewall.props as { id?: unknown }).id);
    if ((instance.props as { firewallId?: unknown }).firewallId === firewallId) return true;
    if (((firewall.props as { linodes?: unknown[] }).linodes ?? []).includes(instanceId)) return true;
    return devices.some((d) => {
        const device = d.props as { firewallId?: unknown; entityId?: unknown; entityType?: unknown };
        return device.firewallId === firewallId && device.entityId === instanceId && device.entityType === "linode";
    });
}

/**
 * Every Linode of the stack sits behind a Cloud Firewall whose inbound policy is DROP.
 *
 * Severity: critical. A Linode's public interface takes traffic from anywhere until a firewall says otherwise; with
 * DROP as the default, only the rules the program writes (peers, clients, admins) let anything in.
 * https://techdocs.akamai.com/cloud-computing/docs/cloud-firewall
 */
export const firewallDropInbound: StackValidationPolicy = {
    name: "redis-ha-firewall-drop-inbound",
    description: "Every Linode is behind a Cloud Firewall whose inbound policy is DROP.",
    enforcementLevel: "mandatory",
    severity: "critical",
    validateStack: (args, reportViolation) => {
        const instances = args.resources.filter((r) => r.isType(linode.Instance));
        if (instances.length === 0) args.notApplicable("no linode.Instance in this stack");
        const firewalls = args.resources.filter((r) => r.isType(linode.Firewall));
        const devices = args.resources.filter((r) => r.isType(linode.FirewallDevice));
        const fix =
            "the program attaches the cluster's firewall itself (components/cluster.ts); no config key turns it off, so restore that code";
        for (const fw of firewalls) {
            const policy = (fw.props as { inboundPolicy?: string }).inboundPolicy;
            if (policy !== "DROP")
                reportViolation(
                    `linode.Firewall ${fw.name} has inbound policy ${policy ?? "(none)"}; expected DROP, so that only its ACCEPT rules let traffic in. Fix: ${fix}.`,
                    fw.urn,
                );
        }
        for (const instance of instances) {
            const label = (instance.props as { label?: string }).label ?? instance.name;
            const behind = firewalls.filter((fw) => attached(fw, instance, devices));
            if (behind.length === 0)
                reportViolation(
                    `linode.Instance ${instance.name} (${label}) is behind no Cloud Firewall; expected a firewall with inbound policy DROP attached. Fix: ${fix}.`,
                    instance.urn,
                );
        }
    },
};
