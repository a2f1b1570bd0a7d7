import { createHash } from "node:crypto";
import type { Topology } from "../topology";
import { nodeOf, type RenderInput } from "./inputs";
import { PATHS } from "./paths";
import { renderNodeEnv, serviceConfigs, type WriteFile } from "./userData";

/** The node script that takes the bootstrap input on stdin (cloud-init/scripts/bootstrap-node). */
export const BOOTSTRAP_SCRIPT = "bootstrap-node";

/** When the bootstrap writes a file: on the node's first bootstrap only, or on every run. */
export type BootstrapWhen = "once" | "always";

export interface BootstrapFile extends WriteFile {
    readonly when: BootstrapWhen;
}

/**
 * What the bootstrap step hands a node with `addressing: ephemeral`: the files that name addresses, rendered by the
 * same renderers as reserved mode's user-data, so both modes run the same configuration.
 * - redis.conf, sentinel.conf: first bootstrap only. Redis and Sentinel own them afterwards (Sentinel rewrites
 *   `replicaof` and its known peers; a re-run must not undo a failover).
 * - node.env: every run, and last. It names the peers (what the start guard and the checks ask) and its existence is
 *   what lets the units start (`ConditionPathExists`, cloud-init/units.ts).
 */
export function bootstrapFiles(input: RenderInput): BootstrapFile[] {
    nodeOf(input);
    return [
        ...serviceConfigs(input).map((f) => ({ ...f, when: "once" as const })),
        { path: PATHS.nodeEnv, owner: "root:root", permissions: "0600", content: renderNodeEnv(input), when: "always" },
    ];
}

/** The stdin of `bootstrap-node`: `file <once|always> <path> <mode> <owner> <base64 content>` per file, in order. */
export function bootstrapInput(input: RenderInput): string {
    return bootstrapFiles(input)
        .map(
            (f) =>
                `file ${f.when} ${f.path} ${f.permissions} ${f.owner} ${Buffer.from(f.content, "utf8").toString("base64")}\n`,
        )
        .join("");
}

/**
 * The trigger of every node's bootstrap step: the whole address list. A replaced node comes back with a new address,
 * which changes this for every node, so every node's bootstrap runs again (one node at a time) and hands out the new
 * list; settings changes do not touch it (the settings rollout carries them).
 */
export function addressListHash(t: Topology, addresses: Readonly<Record<string, string>>): string {
    const list = t.nodes.map((n) => `${n.name}=${addresses[n.name] ?? ""}`).join("\n");
    return createHash("sha256").update(list).digest("hex").slice(0, 16);
}
