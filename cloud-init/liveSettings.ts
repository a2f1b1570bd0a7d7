import { createHash } from "node:crypto";
import type { NodePlan, Topology } from "../topology";
import { ACL_USERS, acceptedHashRules, redisUserRules, sentinelUserRules } from "./acl";
import { quoteArg } from "./confSyntax";
import { nodeOf, securityOf, type RenderInput } from "./inputs";
import { EXPORTER_UNITS, exporterUnits } from "./monitoringExporters";
import { liveRedisSettings } from "./redisConf";
import { liveSentinelSettings } from "./sentinelConf";
import { liveNodeEnv, NODE_TOOL_USERS } from "./userData";

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

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/**
 * `tls: true`: the node's secret material as `apply-settings` input (secret: it holds passwords and the node's key),
 * which the script applies live and only where it differs (docs/security.md, "Rotation"):
 *
 *     acl redis|sentinel <user> #<sha256>...       every password the user is accepted with (hashes only)
 *     auth masterauth|auth-pass|sentinel-pass <b64> what this node sends to the other nodes
 *     passfile <user> <b64>                        the password file of the node's own tools (admin, exporter)
 *     tls ca|cert|key <b64>                        the CA, this node's certificate and key (PEM)
 *     secret-unit <unit>                           a unit that reads those files at start: restarted when they change
 *
 * Order matters during a rotation: the node first accepts the new passwords, then sends them, then its own tools use
 * them. Empty without tls: the shared passwords have no generations to roll (docs/security.md).
 */
export function liveSecretsText(input: RenderInput): string {
    const { topology: t } = input;
    if (!t.security.tls) return "";
    const node = nodeOf(input);
    const { acl, tls, node: own } = securityOf(input);
    const users = (scope: "redis" | "sentinel", rules: Readonly<Partial<Record<string, unknown>>>) =>
        ACL_USERS.filter((u) => u in rules).map((u) => `acl ${scope} ${u} ${acceptedHashRules(acl, u).join(" ")}`);
    const lines = [
        ...(node.runsRedis ? users("redis", redisUserRules(t)) : []),
        ...(node.runsSentinel ? users("sentinel", sentinelUserRules()) : []),
        ...(node.runsRedis ? [`auth masterauth ${b64(acl.replication.current)}`] : []),
        ...(node.runsSentinel
            ? [`auth auth-pass ${b64(acl.sentinel.current)}`, `auth sentinel-pass ${b64(acl.sentinel.current)}`]
            : []),
        ...NODE_TOOL_USERS.map((u) => `passfile ${u} ${b64(`${acl[u].current}\n`)}`),
        `tls ca ${b64(tls.caCert)}`,
        `tls cert ${b64(own.cert)}`,
        `tls key ${b64(own.key)}`,
        // The exporters read the exporter password and copies of the certificate when they start (exporter-credentials).
        ...exporterUnits(node)
            .filter((u) => u !== EXPORTER_UNITS.node)
            .map((u) => `secret-unit ${u}`),
    ];
    return `${lines.join("\n")}\n`;
}
