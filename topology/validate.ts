import { coveredAddresses, parseCidr, prefixSize, type IpFamily } from "./cidr";
import type { ConfigProblem } from "./errors";
import {
    FIREWALL_LABEL_MAX,
    firewallLabel,
    labelProblem,
    nodeLabel,
    nodeTags,
    placementGroupLabel,
    tagProblem,
} from "./labels";
import { CONFIG_NAMESPACE, type StackConfig } from "./schema";

/**
 * Validators: each checks one concern of schema-valid stack config and returns every problem it finds (never
 * throws), so that `buildTopology` can report all of them at once.
 */

/** The fully qualified config key, as problems name it. */
export const configKey = (k: string): string => `${CONFIG_NAMESPACE}:${k}`;

/** The widest union of client or admin networks accepted without `allowWideCidrs`, per family. */
export const WIDEST_PREFIX: Readonly<Record<IpFamily, number>> = { ipv4: 8, ipv6: 32 };

/**
 * `clientCidrs` and `adminCidrs`: the union of each list may cover at most a /8 of IPv4 and a /32 of IPv6 unless
 * `allowWideCidrs` is set, and never the whole internet (`0.0.0.0/1` + `128.0.0.0/1` is `/0` in two halves).
 */
export function validateCidrs(config: StackConfig): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    for (const key of ["clientCidrs", "adminCidrs"] as const) {
        const cidrs = config[key].map(parseCidr);
        for (const family of ["ipv4", "ipv6"] as const) {
            const covered = coveredAddresses(cidrs, family);
            const name = family === "ipv4" ? "IPv4" : "IPv6";
            if (covered === prefixSize(family, 0))
                problems.push({
                    key: configKey(key),
                    message: `together cover the whole ${name} internet; list only your own networks`,
                });
            else if (!config.allowWideCidrs && covered > prefixSize(family, WIDEST_PREFIX[family]))
                problems.push({
                    key: configKey(key),
                    message:
                        family === "ipv4"
                            ? `together cover ${covered.toString()} IPv4 addresses, more than a /8; narrow them or set allowWideCidrs: true`
                            : `together cover more than a /32 of IPv6; narrow them or set allowWideCidrs: true`,
                });
        }
    }
    return problems;
}

/**
 * The post-deploy checks and the settings rollout reach every node over SSH from where `pulumi up` runs, and the
 * firewall drops SSH from anywhere not in `adminCidrs`: with none, every command would retry until its timeout.
 */
export function validateAdminAccess(config: StackConfig): ConfigProblem[] {
    if (config.adminCidrs.length > 0) return [];
    return [
        {
            key: configKey("adminCidrs"),
            message:
                'is empty, so the post-deploy checks and the settings rollout cannot reach the nodes over SSH; set it to networks that include the machine running pulumi up, e.g. ["203.0.113.7/32"]',
        },
    ];
}

/**
 * Labels and tags as the components build them (see `labels.ts`), checked against Linode's rules. A fault of the
 * cluster name is reported once, on `clusterName`; the rest on the node or region that causes it.
 */
export function validateLabels(config: StackConfig, cluster: string): ConfigProblem[] {
    const fw = labelProblem(firewallLabel(cluster), FIREWALL_LABEL_MAX);
    if (fw) return [{ key: configKey("clusterName"), message: fw }];
    const problems: ConfigProblem[] = [];
    const regionsSeen = new Set<string>();
    config.nodes.forEach((n, i) => {
        const label = labelProblem(nodeLabel(cluster, n.name));
        if (label) problems.push({ key: configKey(`nodes[${String(i)}].name`), message: label });
        if (regionsSeen.has(n.region)) return;
        regionsSeen.add(n.region);
        const region =
            nodeTags(cluster, n.region, [], [])
                .map(tagProblem)
                .find((p) => p !== undefined) ?? labelProblem(placementGroupLabel(cluster, n.region));
        if (region) problems.push({ key: configKey(`nodes[${String(i)}].region`), message: region });
    });
    return problems;
}
