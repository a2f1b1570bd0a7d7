import type { WriteFile } from "./userData";

/** A file cloud-init writes owned by root (the node's configs, units and scripts; 0600 for credentials). */
export function rootFile(path: string, content: string, permissions = "0644"): WriteFile {
    return { path, owner: "root:root", permissions, content };
}
