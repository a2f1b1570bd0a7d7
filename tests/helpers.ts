import { join } from "node:path";
import { PATHS, type NodePaths } from "../cloud-init";
import { programConfig, readStackConfig, type ProgramConfig } from "../engine/stackFile";
import { ConfigError, topologyFromConfig } from "../topology";

/** A stack file's config with some keys replaced (JSON-encoded like Pulumi does) or removed (undefined). */
export function configWith(stack: string, changes: Record<string, unknown>): Record<string, string> {
    const config = readStackConfig(stack);
    for (const [key, value] of Object.entries(changes)) {
        const full = `redis-ha:${key}`;
        if (value === undefined) Reflect.deleteProperty(config, full);
        else config[full] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return config;
}

/** What the program receives from the CLI for a stack file changed like `configWith` does (defaults filled in). */
export function programConfigWith(stack: string, changes: Record<string, unknown>): ProgramConfig {
    return programConfig(configWith(stack, changes));
}

/** The lines of the ConfigError a stack file changed like `configWith` does is refused with; fails if it is accepted. */
export function configProblems(changes: Record<string, unknown>, stack = "prod"): string[] {
    try {
        topologyFromConfig(configWith(stack, changes), "redis-ha", stack);
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).message.split("\n");
    }
    throw new Error("expected a ConfigError");
}

export const PROD_NODES = [
    { name: "east-a", region: "us-east", roles: ["redis", "sentinel"] },
    { name: "east-b", region: "us-east", roles: ["redis"] },
    { name: "ord-a", region: "us-ord", roles: ["redis", "sentinel"] },
    { name: "ord-b", region: "us-ord", roles: ["redis"] },
    { name: "witness", region: "us-central", type: "g6-nanode-1", roles: ["sentinel"] },
];

/**
 * Every node path moved under `root`, the layout kept (`/var/lib/redis-ha/...` becomes `<root>/var/lib/redis-ha/...`):
 * the base of the paths.sh a test renders for a script it runs on this machine, so that a path the test does not name
 * (the state directory, the release file, the failover lock) is still the test's own, never the host's.
 */
export function pathsUnder(root: string): NodePaths {
    return Object.fromEntries(Object.entries(PATHS).map(([key, path]) => [key, join(root, path)])) as NodePaths;
}
