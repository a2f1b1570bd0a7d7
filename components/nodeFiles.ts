import { nodeOf, packagesFor, PATHS, writeFilesFor, type RenderInput, type WriteFile } from "../cloud-init";

/** root's authorized_keys, which Linode writes from `authorizedKeys` at creation only. */
export const AUTHORIZED_KEYS_PATH = "/root/.ssh/authorized_keys";

/**
 * The files of a node that the settings rollout keeps current on a running node: the shipped scripts, the systemd
 * units and drop-ins, the sysctl file (exactly as user-data writes them at first boot), and root's authorized keys.
 *
 * Why: user-data, `authorizedKeys` and the image are in the Linode's `ignoreChanges` (a change would replace the VM
 * and its data), and the engine keeps the OLD value of an ignored input on a replacement too. So neither a node
 * created last month nor a node replaced today runs the scripts, units and keys of this release unless something
 * delivers them after boot: the rollout does, one node at a time.
 *
 * Not delivered: node.env and the Redis/Sentinel configs (the rollout's `env`, `redis` and `sentinel` lines apply
 * their live settings; the rest of them is fixed at creation), and the first-boot-only policy-rc.d.
 */
export function deliveredFiles(input: RenderInput, authorizedKeys: readonly string[]): WriteFile[] {
    const files = writeFilesFor(input).filter(
        (f) => f.owner === "root:root" && f.path !== PATHS.nodeEnv && f.path !== PATHS.policyRcD,
    );
    const keys = [...authorizedKeys].map((k) => k.trim()).filter((k) => k !== "");
    files.push({
        path: AUTHORIZED_KEYS_PATH,
        owner: "root:root",
        permissions: "0600",
        content: `${keys.join("\n")}\n`,
    });
    return files;
}

/** `apply-settings` input lines delivering files: `file <path> <mode> <base64 content>`. */
export function fileLines(files: readonly WriteFile[]): string {
    return files
        .map((f) => `file ${f.path} ${f.permissions} ${Buffer.from(f.content, "utf8").toString("base64")}\n`)
        .join("");
}

/**
 * `apply-settings` input lines installing the packages this release's user-data installs on the node: a package a
 * release adds (the exporters) reaches nodes created before it, whose user-data Linode never re-runs.
 */
export function packageLines(input: RenderInput): string {
    return packagesFor(nodeOf(input))
        .map((p) => `package ${p}\n`)
        .join("");
}

/** Users that log in by key only: their password is removed on every node (docs/security.md, "Hosts"). */
export const KEY_ONLY_USERS = ["root"] as const;

/**
 * `apply-settings` input lines removing a password: Linode gives root a random one at creation, and a node created
 * before this release still has it (first boot removes it on newer nodes, cloud-init/hosts.ts).
 */
export function lockPasswordLines(): string {
    return KEY_ONLY_USERS.map((u) => `lock-password ${u}\n`).join("");
}
