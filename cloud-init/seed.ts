import type { Topology } from "../topology";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { renderS3cmdConfig } from "./backup";
import { nodeOf, type RenderInput } from "./inputs";
import { FIRST_MASTER_SCRIPTS, PATHS } from "./paths";
import { shellAssignments } from "./shell";
import { renderUnit } from "./units";
import type { WriteFile } from "./userData";
import { rootFile } from "./rootFile";

/** Unit name of the seed (`backup.seedFrom`). */
export const SEED_SERVICE = "redis-ha-seed.service";

/** Does this node load `backup.seedFrom` before its Redis first starts? Only the first master, and only with a seed. */
export function seedsFromBackup(t: Topology, node: string): boolean {
    return t.backup.seed !== undefined && node === t.preferredMaster;
}

/**
 * seed.env: the backup to load and where the seed's own files are, as redis-seed reads it (its argument). The seed's
 * paths live here rather than in paths.sh, which every node carries: a seed changes the first master's user-data only.
 */
export function renderSeedEnv(t: Topology): string {
    const seed = t.backup.seed;
    if (!seed) throw new Error("renderSeedEnv needs backup.seedFrom");
    const vars: [string, string][] = [
        ["SEED_BUCKET", seed.bucket],
        ["SEED_KEY", seed.key],
        ["SEED_S3CFG", PATHS.seedS3cfg],
        ["SEED_MARKER_FILE", PATHS.seedMarker],
    ];
    return `# Rendered by redis-ha from backup.seedFrom: the backup this first master loads before it takes writes.\n${shellAssignments(vars)}`;
}

/** The redis-seed script as shipped (cloud-init/scripts). */
export function seedScript(): string {
    const [name] = FIRST_MASTER_SCRIPTS;
    return readFileSync(join(__dirname, "scripts", name), "utf8");
}

/**
 * The oneshot that loads the seed. redis-server.service requires it (`RequiredBy`, enabled at first boot) and starts
 * after it, so a refused or failed seed keeps Redis down instead of starting an empty master. Once done it is skipped.
 */
export function renderSeedService(): string {
    return renderUnit(
        {
            Unit: [
                ["Description", "Seed this new cluster's first master from an off-site backup (redis-ha)"],
                ["ConditionPathExists", `!${PATHS.seedMarker}`],
                ["After", "network-online.target"],
                ["Wants", "network-online.target"],
                ["Before", "redis-server.service"],
            ],
            Service: [
                ["Type", "oneshot"],
                ["RemainAfterExit", "yes"],
                ["ExecStart", `${PATHS.seedScript} ${PATHS.seedEnv}`],
                // The script bounds its own waits; this bounds a stuck download.
                ["TimeoutStartSec", "6h"],
            ],
            Install: [["RequiredBy", "redis-server.service"]],
        },
        ["Rendered by redis-ha from backup.seedFrom. Runs once, before the first start of redis-server."],
    );
}

/**
 * The seed's files on the first master's user-data: the backup to load, s3cmd's config with the read-only key, the
 * script and the unit. Nothing for other nodes, without `backup.seedFrom`, or without the key (the settings rollout).
 */
export function seedFiles(input: RenderInput): WriteFile[] {
    const t = input.topology;
    const node = nodeOf(input);
    const target = input.secrets.seed;
    // The settings rollout renders without the seed's key: a seed is for a new Linode's first boot, never delivered to
    // a running node.
    if (!seedsFromBackup(t, node.name) || !target) return [];
    return [
        rootFile(PATHS.seedEnv, renderSeedEnv(t), "0600"),
        rootFile(PATHS.seedScript, seedScript(), "0755"),
        rootFile(PATHS.seedS3cfg, renderS3cmdConfig(target), "0600"),
        rootFile(PATHS.seedUnit, renderSeedService(), "0644"),
    ];
}
