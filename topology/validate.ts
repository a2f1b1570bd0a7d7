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
import { LINODE_TYPE_MEMORY_MB } from "./linodeTypes";
import { preferredMaster, regionNames, runsRedis, runsSentinel, sentinelMajority } from "./plan";
import { CONFIG_NAMESPACE, type StackConfig } from "./schema";

/**
 * Validators: each checks one concern of schema-valid stack config and returns every problem it finds (never
 * throws), so that `buildTopology` can report all of them at once.
 */

/** The fully qualified config key, as problems name it. */
export const configKey = (k: string): string => `${CONFIG_NAMESPACE}:${k}`;

/** Node names are unique; `promotable` only on Redis nodes. */
export function validateNodes(config: StackConfig): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const seen = new Set<string>();
    config.nodes.forEach((n, i) => {
        if (seen.has(n.name))
            problems.push({
                key: configKey(`nodes[${i}].name`),
                message: `"${n.name}" is used twice; give every node its own name`,
            });
        seen.add(n.name);
        if (!runsRedis(n) && n.promotable !== undefined)
            problems.push({
                key: configKey(`nodes[${i}].promotable`),
                message: "applies only to nodes with the redis role; remove it",
            });
    });
    return problems;
}

/** Every Redis node's plan has a known RAM size (maxmemory is derived from it), or the node gives `memoryMb`. */
export function validateMemory(config: StackConfig): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const known = (type: string) => type in LINODE_TYPE_MEMORY_MB;
    if (
        !known(config.nodeType) &&
        config.nodes.some((n) => runsRedis(n) && n.type === undefined && n.memoryMb === undefined)
    )
        problems.push({
            key: configKey("nodeType"),
            message: `plan "${config.nodeType}" is not in this kit's memory table; use a known plan or give its nodes type and memoryMb`,
        });
    config.nodes.forEach((n, i) => {
        if (runsRedis(n) && n.type !== undefined && n.memoryMb === undefined && !known(n.type))
            problems.push({
                key: configKey(`nodes[${i}].type`),
                message: `plan "${n.type}" is not in this kit's memory table; set nodes[${i}].memoryMb to its RAM in MiB`,
            });
    });
    return problems;
}

/** An odd number of Sentinels, at least 3, and a quorum that is a majority of them (0 = the majority). */
export function validateSentinels(config: StackConfig): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const count = config.nodes.filter(runsSentinel).length;
    const majority = sentinelMajority(count);
    if (count < 3 || count % 2 === 0)
        problems.push({
            key: configKey("nodes"),
            message: `${count} Sentinel${count === 1 ? "" : "s"} configured; use an odd number, at least 3, so that a majority survives the loss of any one`,
        });
    if (config.quorum !== 0 && (config.quorum < majority || config.quorum > count))
        problems.push({
            key: configKey("quorum"),
            message: `${config.quorum} is not a majority of ${count} Sentinels; set it to a value from ${majority} to ${count}, or to 0 for the majority (${majority})`,
        });
    return problems;
}

/** In a multi-region stack no region holds a Sentinel majority; the primary region holds a Redis node. */
export function validateRegions(config: StackConfig): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const sentinels = config.nodes.filter(runsSentinel);
    const count = sentinels.length;
    const majority = sentinelMajority(count);
    const regions = regionNames(config);
    if (regions.length > 1 && count >= 3)
        for (const region of regions) {
            const here = sentinels.filter((n) => n.region === region).length;
            if (here >= majority)
                problems.push({
                    key: configKey("nodes"),
                    message: `region ${region} holds ${here} of ${count} Sentinels, a majority: losing it would block every failover; move Sentinels so no region holds ${majority}`,
                });
        }
    if (!preferredMaster(config))
        problems.push({
            key: configKey("primaryRegion"),
            message: regions.includes(config.primaryRegion)
                ? `region ${config.primaryRegion} has no node with the redis role; add one there or pick another primaryRegion`
                : `region ${config.primaryRegion} has no nodes; set it to one of ${regions.join(", ")}`,
        });
    return problems;
}

/**
 * Promotion: the preferred master is promotable (fail-back returns to it), some replica is promotable (Sentinel has
 * somewhere to fail over to), and `minReplicasToWrite` does not exceed the replicas.
 */
export function validatePriorities(config: StackConfig): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const master = preferredMaster(config);
    if (master?.promotable === false)
        problems.push({
            key: configKey(`nodes[${config.nodes.indexOf(master)}].promotable`),
            message: `${master.name} is the preferred master and must be promotable, or fail-back could never return the master home; remove promotable: false`,
        });
    const replicas = config.nodes.filter((n) => runsRedis(n) && n !== master);
    if (master && !replicas.some((n) => n.promotable !== false))
        problems.push({
            key: configKey("nodes"),
            message:
                "no promotable replica: add a second node with the redis role (and without promotable: false) so Sentinel has a node to fail over to",
        });
    if (config.minReplicasToWrite > replicas.length)
        problems.push({
            key: configKey("minReplicasToWrite"),
            message: `${config.minReplicasToWrite} exceeds the ${replicas.length} replica(s) in this stack, so the master would refuse every write; lower it or add replicas`,
        });
    return problems;
}

/** Sentinel's failover timeout is at least its down-after period. */
export function validateTimings(config: StackConfig): ConfigProblem[] {
    if (config.failoverTimeoutMs >= config.downAfterMs) return [];
    return [
        {
            key: configKey("failoverTimeoutMs"),
            message: `${config.failoverTimeoutMs} is shorter than downAfterMs (${config.downAfterMs}); set it to at least ${config.downAfterMs} (the seed uses twice downAfterMs)`,
        },
    ];
}

/** Redis and Sentinel listen on different ports. */
export function validatePorts(config: StackConfig): ConfigProblem[] {
    return config.redisPort === config.sentinelPort
        ? [{ key: configKey("sentinelPort"), message: "must differ from redisPort" }]
        : [];
}

/** The widest union of client or admin networks accepted without `allowWideCidrs`, per family. */
export const WIDEST_PREFIX: Readonly<Record<IpFamily, number>> = { ipv4: 8, ipv6: 32 };

/** What each CIDR list opens, and whose networks it should list instead of the whole internet. */
const OPENED_BY = { adminCidrs: "SSH as root", clientCidrs: "Redis and Sentinel", monitoringCidrs: "the exporters" };
const OWNER_OF = {
    adminCidrs: "your admin networks",
    clientCidrs: "your application subnets",
    monitoringCidrs: "your Prometheus servers",
};

/**
 * No entry of a CIDR list may be the whole internet (`/0`, however written). `clientCidrs` and `adminCidrs`: the union of each list may cover at most a /8 of IPv4 and a /32 of IPv6 unless
 * `allowWideCidrs` is set, and never the whole internet (`0.0.0.0/1` + `128.0.0.0/1` is `/0` in two halves).
 */
export function validateCidrs(config: StackConfig): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    for (const [key, opens] of Object.entries(OPENED_BY) as [keyof typeof OPENED_BY, string][])
        config[key].forEach((c, i) => {
            if (parseCidr(c).prefixLength === 0)
                problems.push({
                    key: `${configKey(key)}[${String(i)}]`,
                    message: `must not open ${opens} to the whole internet; list ${OWNER_OF[key]}`,
                });
        });
    for (const key of ["clientCidrs", "adminCidrs"] as const) {
        const cidrs = config[key].map(parseCidr);
        if (cidrs.some((c) => c.prefixLength === 0)) continue;
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

/** Every validator, in the order their problems are reported. */
export function validateStackConfig(config: StackConfig, cluster: string): ConfigProblem[] {
    return [
        ...validateMemory(config),
        ...validateNodes(config),
        ...validateSentinels(config),
        ...validateRegions(config),
        ...validatePriorities(config),
        ...validateTimings(config),
        ...validatePorts(config),
        ...validateCidrs(config),
        ...validateAdminAccess(config),
        ...validateLabels(config, cluster),
    ];
}
