import { createHash } from "node:crypto";
import type { NodePlan, Topology } from "../topology";
import { liveRedisSettings } from "./redisConf";
import { quoteArg } from "./confSyntax";
import { liveSentinelSettings } from "./sentinelConf";
import { liveNodeEnv } from "./userData";

/**
 * The settings of one node that a stack config change rolls out in place, as the stdin of the node's
 * `apply-settings` script: `redis <directive> <value>`, `sentinel <option> <value>` and `env <NAME> <value>` lines.
 */
export function liveSettingsText(t: Topology, node: NodePlan, addresses: Readonly<Record<string, string>>): string {
    const lines = [
        ...liveNodeEnv(t, node, addresses).map(([k, v]) => `env ${k} ${v}`),
        ...liveRedisSettings(t, node).map(([k, ...v]) => `redis ${k} ${v.map(String).join(" ")}`),
        ...liveSentinelSettings(t, node).map(([k, ...v]) => `sentinel ${k} ${v.map(quoteArg).join(" ")}`),
    ];
    return `${lines.join("\n")}\n`;
}

/** A short stable hash of a node's live settings: the trigger of its rollout step. */
export function liveSettingsHash(t: Topology, node: NodePlan, addresses: Readonly<Record<string, string>>): string {
    return createHash("sha256")
        .update(liveSettingsText(t, node, addresses))
        .digest("hex")
        .slice(0, 16);
}
