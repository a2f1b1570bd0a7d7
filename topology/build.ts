import type { z } from "zod";
import { ConfigError, type ConfigProblem } from "./errors";
import type { Topology } from "./model";
import { planMonitoring, validateMonitoring } from "./monitoring";
import { planDr, planNodes, planRedis, planRegions, planSentinel, preferredMaster, startGuardWaitSec } from "./plan";
import { planBackup, validateBackup } from "./backup";
import { planSecurityUpgrades, validateSecurityUpgrades } from "./hosts";
import { CONFIG_NAMESPACE, KEY_GROUPS, STRING_KEYS, StackConfigSchema, type StackConfig } from "./schema";
import { validateStackConfig } from "./validate";

/** A key as the user wrote it, JSON-quoted unless plain: a newline in an unknown key cannot forge a second line. */
function keyText(part: PropertyKey): string {
    const text = String(part);
    return /^[A-Za-z0-9_-]+$/.test(text) ? text : JSON.stringify(text);
}

function formatPath(path: readonly PropertyKey[]): string {
    return path.reduce<string>(
        (out, part) => (typeof part === "number" ? `${out}[${part}]` : out ? `${out}.${keyText(part)}` : keyText(part)),
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
                    key: `${CONFIG_NAMESPACE}:${base ? `${base}.` : ""}${keyText(key)}`,
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
        if (key in KEY_GROUPS) {
            // `pulumi config set --path backup.enabled` stores one object under `backup`, and the CLI still passes
            // Pulumi.yaml's flat `backup.*` defaults beside it: which one wins would depend on key order. Refuse it.
            throw new ConfigError([
                {
                    key: fullKey,
                    message: `set the keys one by one without --path (pulumi config rm ${fullKey}; pulumi config set ${key}.enabled true), as Pulumi.yaml declares them: ${KEY_GROUPS[key].map((k) => `${key}.${k}`).join(", ")}`,
                },
            ]);
        }
        const parsed = typeof value === "string" && !STRING_KEYS.has(key) ? parseJsonish(value) : value;
        // `backup.enabled` (Pulumi.yaml declares grouped keys flat) becomes `backup: { enabled }`, so zod names the
        // path `backup.enabled` and validates the group as one object.
        const dot = key.indexOf(".");
        const group = key.slice(0, dot);
        if (dot > 0 && group in KEY_GROUPS) {
            const existing = ours[group];
            const into = typeof existing === "object" && existing !== null ? existing : {};
            ours[group] = { ...into, [key.slice(dot + 1)]: parsed };
        } else ours[key] = parsed;
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

/** What `buildTopology` does with the validators' problems: refuse the config (the default), or only report them. */
export type ProblemHandling = "refuse" | ((problems: readonly ConfigProblem[]) => void);

/**
 * Computes the deployment from schema-valid config: every validator first (all problems at once, in one
 * ConfigError), then the planners. Pure: same config in, same topology out. `review` passes a reporting
 * `problems` handler to show what the policy pack says about a refused stack; the program always refuses.
 */
export function buildTopology(
    config: StackConfig,
    project: string,
    stack: string,
    problemHandling: ProblemHandling = "refuse",
): Topology {
    const cluster = config.clusterName ?? defaultClusterName(stack);
    const problems = [
        ...validateStackConfig(config, cluster),
        ...validateMonitoring(config, cluster),
        ...validateBackup(config),
        ...validateSecurityUpgrades(config),
    ];
    const master = preferredMaster(config);
    if (!master || (problems.length > 0 && problemHandling === "refuse")) throw new ConfigError(problems);
    if (problems.length > 0 && problemHandling !== "refuse") problemHandling(problems);
    const nodes = planNodes(config, cluster, master);
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
        regions: planRegions(config, nodes),
        sentinel: planSentinel(config),
        redis: planRedis(config),
        access: {
            authorizedKeys: [...config.authorizedKeys],
            adminCidrs: [...config.adminCidrs],
            clientCidrs: [...config.clientCidrs],
        },
        failoverDrill: config.failoverDrill,
        addressing: config.addressing,
        backups: config.backups,
        backup: planBackup(config, cluster, nodes, master.name),
        tags: [...config.tags],
        startGuardWaitSec: startGuardWaitSec(config),
        dr: planDr(config, nodes),
        monitoring: planMonitoring(config, cluster),
        securityUpgrades: planSecurityUpgrades(config, nodes),
        security: {
            tls: config.tls,
            tlsAuthClients: config.tlsAuthClients,
            certValidityDays: config.tlsCertValidityDays,
            app: { keyPatterns: [...config.appKeyPatterns], commands: [...config.appCommands] },
            generation: config.credentialsGeneration,
        },
    };
}

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
export function topologyFromConfig(
    raw: Readonly<Record<string, unknown>>,
    project: string,
    stack: string,
    problemHandling: ProblemHandling = "refuse",
): Topology {
    return buildTopology(parseStackConfig(raw), project, stack, problemHandling);
}
