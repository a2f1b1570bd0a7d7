import { LINODE_TYPE_MEMORY_MB, maxmemoryBytes } from "./linodeTypes";
import { nodeLabel, nodeTags } from "./labels";
import type { DrPlan, InitialRole, NodePlan, RedisPlan, RegionKind, RegionPlan, SentinelPlan } from "./model";
import type { NodeConfig, NodeRole, StackConfig } from "./schema";

/**
 * Planners: each turns one concern of valid stack config into plain data for the topology. They assume the
 * validators passed; the few facts both need (who runs what, the majority, the preferred master) live here.
 */

/** Sentinel's default (and our) `replica-priority` for nodes it may promote. */
export const PROMOTABLE_PRIORITY = 100;

/** Roles in the order the model lists them. */
export const NODE_ROLE_ORDER: readonly NodeRole[] = ["redis", "sentinel"];

export const runsRedis = (n: NodeConfig): boolean => n.roles.includes("redis");
export const runsSentinel = (n: NodeConfig): boolean => n.roles.includes("sentinel");

/** Sentinels needed to authorise a failover. */
export function sentinelMajority(count: number): number {
    return Math.floor(count / 2) + 1;
}

/** The Redis node that starts as master: the first one in the primary region. */
export function preferredMaster(config: StackConfig): NodeConfig | undefined {
    return config.nodes.find((n) => runsRedis(n) && n.region === config.primaryRegion);
}

/** Regions in the order their first node appears. */
export function regionNames(config: StackConfig): string[] {
    return [...new Set(config.nodes.map((n) => n.region))];
}

/** RAM of a node's plan: its own `memoryMb`, else the plan table's; undefined for a plan the table lacks. */
export function nodeMemoryMb(config: StackConfig, n: NodeConfig): number | undefined {
    return n.memoryMb ?? LINODE_TYPE_MEMORY_MB[n.type ?? config.nodeType];
}

/**
 * Sentinel count, quorum (0 in config means the majority) and timings. `parallelSyncs` 0 means every replica at once:
 * Sentinel reconfigures replicas in batches of `parallel-syncs` and sends the next batch only when one finishes or after
 * 10 s. After a region loss it may pick an unreachable replica first (its link still looks up), so with 1 the surviving
 * replica follows the new master 10 s late, and region-durable writes wait for it (measured in the lab). After a
 * failover, replicas resync partially (PSYNC with the old replication ID), so all at once is cheap.
 */
export function planSentinel(config: StackConfig): SentinelPlan {
    const count = config.nodes.filter(runsSentinel).length;
    const majority = sentinelMajority(count);
    return {
        count,
        quorum: config.quorum === 0 ? majority : config.quorum,
        majority,
        downAfterMs: config.downAfterMs,
        failoverTimeoutMs: config.failoverTimeoutMs,
        parallelSyncs:
            config.parallelSyncs === 0 ? Math.max(1, config.nodes.filter(runsRedis).length - 1) : config.parallelSyncs,
    };
}

/** `replica-priority`: the same for every promotable node, so Sentinel promotes the most up-to-date; 0 = never. */
export function replicaPriority(n: NodeConfig): number | undefined {
    if (!runsRedis(n)) return undefined;
    return n.promotable === false ? 0 : PROMOTABLE_PRIORITY;
}

/** Rollout order: Sentinel-only nodes, then replicas, the preferred master last (stable within each group). */
export function rolloutOrder(config: StackConfig, master: NodeConfig): Map<NodeConfig, number> {
    const rank = (n: NodeConfig) => (n === master ? 2 : runsRedis(n) ? 1 : 0);
    const ordered = [...config.nodes].sort((a, b) => rank(a) - rank(b));
    return new Map(ordered.map((n, i) => [n, i]));
}

/** Every node's plan: roles, initial role, priority, memory, label, tags and rollout position. */
export function planNodes(config: StackConfig, cluster: string, master: NodeConfig): NodePlan[] {
    const persistent = config.appendonly || config.save.length > 0;
    const order = rolloutOrder(config, master);
    return config.nodes.map((n, i) => {
        const redis = runsRedis(n);
        const roles = NODE_ROLE_ORDER.filter((r) => n.roles.includes(r));
        const memoryMb = nodeMemoryMb(config, n) ?? 0;
        const initialRole: InitialRole = !redis ? "sentinel-only" : n === master ? "master" : "replica";
        return {
            name: n.name,
            region: n.region,
            type: n.type ?? config.nodeType,
            memoryMb,
            label: nodeLabel(cluster, n.name),
            roles,
            runsRedis: redis,
            runsSentinel: runsSentinel(n),
            initialRole,
            promotable: redis && n.promotable !== false,
            replicaPriority: replicaPriority(n),
            maxmemoryBytes: redis ? maxmemoryBytes(memoryMb, persistent) : undefined,
            tags: nodeTags(cluster, n.region, roles, config.tags),
            rolloutOrder: order.get(n) ?? i,
        };
    });
}

/** Each region's kind and members: the primary holds the preferred master, a witness only votes. */
export function planRegions(config: StackConfig, nodes: readonly NodePlan[]): RegionPlan[] {
    return regionNames(config).map((name) => {
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
}

/** Redis persistence, memory policy and write safety. */
export function planRedis(config: StackConfig): RedisPlan {
    return {
        appendonly: config.appendonly,
        appendfsync: config.appendfsync,
        save: [...config.save],
        maxmemoryPolicy: config.maxmemoryPolicy,
        minReplicasToWrite: config.minReplicasToWrite,
        minReplicasMaxLagSec: config.minReplicasMaxLagSec,
    };
}

/**
 * How long a crashed master's start guard waits for a successor: down-after + 2 x failover-timeout (Sentinel retries
 * a failed election after that) + 10 s, in whole seconds.
 */
export function startGuardWaitSec(config: StackConfig): number {
    return Math.ceil((config.downAfterMs + 2 * config.failoverTimeoutMs) / 1000) + 10;
}

/** A node as the loss analysis needs it (config and plan alike). */
export interface LossNode {
    readonly name: string;
    readonly region: string;
    readonly runsRedis: boolean;
    readonly runsSentinel: boolean;
    readonly promotable: boolean;
}

/** What is left after losing some nodes, and whether a master that takes writes is among it. */
export interface LossOutcome {
    readonly sentinelsLeft: number;
    readonly majorityLeft: boolean;
    readonly masterLost: boolean;
    /** Promotable Redis nodes that survive, other than the preferred master. */
    readonly promotableLeft: readonly string[];
    /** Redis nodes that survive, the master (old or new) included. */
    readonly redisLeft: number;
    /**
     * Does a master keep (or regain) writes without a human? It needs a Sentinel majority on its side (to be
     * promoted, and because redis-fence refuses writes on a master that cannot see one) and, beside itself,
     * `minReplicasToWrite` replicas.
     */
    readonly writable: boolean;
}

/** The one rule for "writes continue after losing these nodes", shared by the validator and the failure analysis. */
export function lossOutcome(
    nodes: readonly LossNode[],
    lost: ReadonlySet<string>,
    master: string,
    minReplicasToWrite: number,
): LossOutcome {
    const alive = nodes.filter((n) => !lost.has(n.name));
    const sentinelsLeft = alive.filter((n) => n.runsSentinel).length;
    const majorityLeft = sentinelsLeft >= sentinelMajority(nodes.filter((n) => n.runsSentinel).length);
    const masterLost = lost.has(master);
    const promotableLeft = alive.filter((n) => n.promotable && n.name !== master).map((n) => n.name);
    const redisLeft = alive.filter((n) => n.runsRedis).length;
    const hasMaster = !masterLost || promotableLeft.length > 0;
    const writable = majorityLeft && hasMaster && redisLeft - 1 >= minReplicasToWrite;
    return { sentinelsLeft, majorityLeft, masterLost, promotableLeft, redisLeft, writable };
}

/** The largest number of Redis nodes in one region, capped at the replica count (see DrPlan.regionSafeReplicas). */
export function regionSafeReplicas(nodes: readonly LossNode[]): number {
    const perRegion = new Map<string, number>();
    for (const n of nodes) if (n.runsRedis) perRegion.set(n.region, (perRegion.get(n.region) ?? 0) + 1);
    const total = [...perRegion.values()].reduce((a, b) => a + b, 0);
    return Math.min(Math.max(0, ...perRegion.values()), Math.max(0, total - 1));
}

/** The fence asks the Sentinels ten times per down-after, at least every second and at most every 100 ms. */
export function fenceIntervalMs(downAfterMs: number): number {
    return Math.min(1000, Math.max(100, Math.floor(downAfterMs / 10)));
}

/** Allowance for the fence's CONFIG SET on the local Redis. */
export const FENCE_APPLY_MS = 100;
/** A fenced master's min-replicas-to-write: above any replica count the schema allows. */
export const FENCED_MIN_REPLICAS = 1000;

export function planDr(config: StackConfig, nodes: readonly NodePlan[]): DrPlan {
    const interval = fenceIntervalMs(config.downAfterMs);
    return {
        regionSafeReplicas: regionSafeReplicas(nodes),
        fenceIntervalMs: interval,
        fenceTimeoutMs: interval,
        fenceReactionMs: 2 * interval + FENCE_APPLY_MS,
        fencedMinReplicas: FENCED_MIN_REPLICAS,
        failbackHoldDownSec: config.failbackHoldDownSec,
    };
}
