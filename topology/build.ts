import type { z } from "zod";
import { ConfigError, type ConfigProblem } from "./errors";
import { LINODE_TYPE_MEMORY_MB, maxmemoryBytes } from "./linodeTypes";
import type { InitialRole, NodePlan, RegionKind, RegionPlan, Topology } from "./model";
import { nodeLabel, nodeTags } from "./labels";
import { CONFIG_NAMESPACE, STRING_KEYS, StackConfigSchema, type StackConfig } from "./schema";
import { validateAdminAccess, validateCidrs, validateLabels } from "./validate";

/** Sentinel's default (and our) `replica-priority` for nodes it may promote. */
export const PROMOTABLE_PRIORITY = 100;

function formatPath(path: readonly PropertyKey[]): string {
    return path.reduce<string>(
        (out, part) => (typeof part === "number" ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part)),
        "",
    );
}

function zodProblems(error: z.ZodError): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    for (const issue of error.issues) {
        const base = formatPath(issue.path);
        if (issue.code === "unrecognized_keys") {
            for (const key of issue.keys) {
                problems.push({
                    key: `${CONFIG_NAMESPACE}:${base ? `${base}.` : ""}${key}`,
                    message:
                        "unknown key; remove it or correct its spelling (see the README's configuration reference)",
                });
            }
            continue;
        }
        problems.push({ key: `${CONFIG_NAMESPACE}:${base || "(config)"}`, message: issue.message });
    }
    return problems;
}

/**
 * Turns the raw config map (`pulumi.runtime.allConfig()` or a stack file's `config:` block) into typed stack config.
 * Values arrive as strings (Pulumi serialises structured values as JSON); keys of other projects are ignored.
 */
export function parseStackConfig(raw: Readonly<Record<string, unknown>>): StackConfig {
    const ours: Record<string, unknown> = {};
    const prefix = `${CONFIG_NAMESPACE}:`;
    for (const [fullKey, value] of Object.entries(raw)) {
        if (!fullKey.startsWith(prefix)) continue;
        const key = fullKey.slice(prefix.length);
        ours[key] = typeof value === "string" && !STRING_KEYS.has(key) ? parseJsonish(value) : value;
    }
    const parsed = StackConfigSchema.safeParse(ours);
    if (!parsed.success) throw new ConfigError(zodProblems(parsed.error));
    return parsed.data;
}

function parseJsonish(value: string): unknown {
    try {
        return JSON.parse(value);
    } catch {
        return value;
    }
}

/**
 * Computes the deployment from validated config, or throws a ConfigError listing every problem at once.
 * Pure: same config in, same topology out.
 */
export function buildTopology(config: StackConfig, project: string, stack: string): Topology {
    const problems: ConfigProblem[] = [];
    const key = (k: string) => `${CONFIG_NAMESPACE}:${k}`;
    const cluster = config.clusterName ?? defaultClusterName(stack);

    const typeKnown = (type: string) => LINODE_TYPE_MEMORY_MB[type] !== undefined;
    if (
        !typeKnown(config.nodeType) &&
        config.nodes.some((n) => n.roles.includes("redis") && n.type === undefined && n.memoryMb === undefined)
    )
        problems.push({
            key: key("nodeType"),
            message: `plan "${config.nodeType}" is not in this kit's memory table; use a known plan or give its nodes type and memoryMb`,
        });
    const seen = new Set<string>();
    config.nodes.forEach((n, i) => {
        if (seen.has(n.name))
            problems.push({
                key: key(`nodes[${i}].name`),
                message: `"${n.name}" is used twice; give every node its own name`,
            });
        seen.add(n.name);
        const redis = n.roles.includes("redis");
        if (!redis && n.promotable !== undefined)
            problems.push({
                key: key(`nodes[${i}].promotable`),
                message: "applies only to nodes with the redis role; remove it",
            });
        if (redis && n.type !== undefined && n.memoryMb === undefined && !typeKnown(n.type))
            problems.push({
                key: key(`nodes[${i}].type`),
                message: `plan "${n.type}" is not in this kit's memory table; set nodes[${i}].memoryMb to its RAM in MiB`,
            });
    });

    const redisNodes = config.nodes.filter((n) => n.roles.includes("redis"));
    const sentinelNodes = config.nodes.filter((n) => n.roles.includes("sentinel"));
    const count = sentinelNodes.length;
    const majority = Math.floor(count / 2) + 1;

    if (count < 3 || count % 2 === 0)
        problems.push({
            key: key("nodes"),
            message: `${count} Sentinel${count === 1 ? "" : "s"} configured; use an odd number, at least 3, so that a majority survives the loss of any one`,
        });
    const quorum = config.quorum || majority;
    if (config.quorum !== 0 && (config.quorum < majority || config.quorum > count))
        problems.push({
            key: key("quorum"),
            message: `${config.quorum} is not a majority of ${count} Sentinels; set it to a value from ${majority} to ${count}, or to 0 for the majority (${majority})`,
        });

    const regionNames = [...new Set(config.nodes.map((n) => n.region))];
    if (regionNames.length > 1 && count >= 3) {
        for (const region of regionNames) {
            const here = sentinelNodes.filter((n) => n.region === region).length;
            if (here >= majority)
                problems.push({
                    key: key("nodes"),
                    message: `region ${region} holds ${here} of ${count} Sentinels, a majority: losing it would block every failover; move Sentinels so no region holds ${majority}`,
                });
        }
    }

    const preferred = redisNodes.find((n) => n.region === config.primaryRegion);
    if (!preferred) {
        problems.push({
            key: key("primaryRegion"),
            message: regionNames.includes(config.primaryRegion)
                ? `region ${config.primaryRegion} has no node with the redis role; add one there or pick another primaryRegion`
                : `region ${config.primaryRegion} has no nodes; set it to one of ${regionNames.join(", ")}`,
        });
    } else if (preferred.promotable === false) {
        problems.push({
            key: key(`nodes[${config.nodes.indexOf(preferred)}].promotable`),
            message: `${preferred.name} is the preferred master and must be promotable, or fail-back could never return the master home; remove promotable: false`,
        });
    }
    const replicas = redisNodes.filter((n) => n !== preferred);
    if (preferred && !replicas.some((n) => n.promotable !== false))
        problems.push({
            key: key("nodes"),
            message:
                "no promotable replica: add a second node with the redis role (and without promotable: false) so Sentinel has a node to fail over to",
        });
    if (config.minReplicasToWrite > replicas.length)
        problems.push({
            key: key("minReplicasToWrite"),
            message: `${config.minReplicasToWrite} exceeds the ${replicas.length} replica(s) in this stack, so the master would refuse every write; lower it or add replicas`,
        });
    if (config.failoverTimeoutMs < config.downAfterMs)
        problems.push({
            key: key("failoverTimeoutMs"),
            message: `${config.failoverTimeoutMs} is shorter than downAfterMs (${config.downAfterMs}); set it to at least ${config.downAfterMs} (the seed uses twice downAfterMs)`,
        });
    if (config.redisPort === config.sentinelPort)
        problems.push({ key: key("sentinelPort"), message: "must differ from redisPort" });
    problems.push(...validateCidrs(config), ...validateAdminAccess(config), ...validateLabels(config, cluster));

    if (problems.length > 0) throw new ConfigError(problems);
    const master = preferred!;

    const persistent = config.appendonly || config.save.length > 0;
    const ordered = [...config.nodes].sort((a, b) => rank(a) - rank(b));
    function rank(n: (typeof config.nodes)[number]): number {
        if (n === master) return 2;
        return n.roles.includes("redis") ? 1 : 0;
    }

    const nodes: NodePlan[] = config.nodes.map((n) => {
        const runsRedis = n.roles.includes("redis");
        const runsSentinel = n.roles.includes("sentinel");
        const type = n.type ?? config.nodeType;
        const memoryMb = n.memoryMb ?? LINODE_TYPE_MEMORY_MB[type] ?? 0;
        const initialRole: InitialRole = !runsRedis ? "sentinel-only" : n === master ? "master" : "replica";
        const promotable = runsRedis && n.promotable !== false;
        return {
            name: n.name,
            region: n.region,
            type,
            memoryMb,
            label: nodeLabel(cluster, n.name),
            roles: [...NODE_ROLE_ORDER.filter((r) => n.roles.includes(r))],
            runsRedis,
            runsSentinel,
            initialRole,
            promotable,
            replicaPriority: runsRedis ? (promotable ? PROMOTABLE_PRIORITY : 0) : undefined,
            maxmemoryBytes: runsRedis ? maxmemoryBytes(memoryMb, persistent) : undefined,
            tags: nodeTags(
                cluster,
                n.region,
                NODE_ROLE_ORDER.filter((r) => n.roles.includes(r)),
                config.tags,
            ),
            rolloutOrder: ordered.indexOf(n),
        };
    });

    const regions: RegionPlan[] = regionNames.map((name) => {
        const here = nodes.filter((n) => n.region === name);
        const redisHere = here.filter((n) => n.runsRedis).length;
        const kind: RegionKind = name === config.primaryRegion ? "primary" : redisHere > 0 ? "secondary" : "witness";
        return {
            name,
            kind,
            nodes: here.map((n) => n.name),
            sentinels: here.filter((n) => n.runsSentinel).length,
            redisNodes: redisHere,
        };
    });

    return {
        project,
        stack,
        cluster,
        masterName: config.masterName,
        primaryRegion: config.primaryRegion,
        preferredMaster: master.name,
        image: config.image,
        ports: { redis: config.redisPort, sentinel: config.sentinelPort },
        nodes,
        regions,
        sentinel: {
            count,
            quorum,
            majority,
            downAfterMs: config.downAfterMs,
            failoverTimeoutMs: config.failoverTimeoutMs,
            parallelSyncs: config.parallelSyncs,
        },
        redis: {
            appendonly: config.appendonly,
            appendfsync: config.appendfsync,
            save: [...config.save],
            maxmemoryPolicy: config.maxmemoryPolicy,
            minReplicasToWrite: config.minReplicasToWrite,
            minReplicasMaxLagSec: config.minReplicasMaxLagSec,
        },
        access: {
            authorizedKeys: [...config.authorizedKeys],
            adminCidrs: [...config.adminCidrs],
            clientCidrs: [...config.clientCidrs],
        },
        failoverDrill: config.failoverDrill,
        backups: config.backups,
        tags: [...config.tags],
        startGuardWaitSec: Math.ceil((config.downAfterMs + 2 * config.failoverTimeoutMs) / 1000) + 10,
    };
}

const NODE_ROLE_ORDER = ["redis", "sentinel"] as const;

/** `redis-<stack>`, cut to a valid Linode label prefix. */
export function defaultClusterName(stack: string): string {
    const cleaned = `redis-${stack}`
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, "-")
        .replace(/-+/g, "-")
        .slice(0, 20);
    return cleaned.replace(/-$/, "");
}

/** Config map in, topology out: the one entry point the program, review and lab use. */
export function topologyFromConfig(raw: Readonly<Record<string, unknown>>, project: string, stack: string): Topology {
    return buildTopology(parseStackConfig(raw), project, stack);
}
