import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { LabError } from "./errors";
import { run } from "./exec";

/**
 * Mount bookkeeping for trees the lab deletes.
 *
 * A recursive delete follows bind mounts: removing a half-built rootfs that
 * still has mmdebstrap's /dev or /proc mounted inside would delete the host's
 * device nodes. So nothing is removed until nothing is mounted under it.
 */

/** Mount points at or below `dir`, deepest first (the order to unmount them). */
export function mountPointsUnder(dir: string): string[] {
    const root = path.resolve(dir);
    const text = readFileSync("/proc/self/mountinfo", "utf8");
    const points = new Set<string>();
    for (const line of text.split("\n")) {
        const field = line.split(" ")[4];
        if (!field) continue;
        const point = unescapeMountField(field);
        if (point === root || point.startsWith(root + "/")) points.add(point);
    }
    return [...points].sort((a, b) => b.length - a.length);
}

export function isMountPoint(dir: string): boolean {
    return mountPointsUnder(dir).includes(path.resolve(dir));
}

/** Unmounts everything at or below `dir`; a busy mount is detached lazily. */
export async function unmountAllUnder(dir: string): Promise<void> {
    // Stacked mounts on one point need one umount each, hence the loop.
    for (let round = 0; round < 8; round++) {
        const points = mountPointsUnder(dir);
        if (points.length === 0) return;
        for (const point of points) {
            const plain = await run(["umount", point], { allowFailure: true });
            if (plain.code !== 0) await run(["umount", "--lazy", point], { allowFailure: true });
        }
    }
    const left = mountPointsUnder(dir);
    if (left.length > 0) throw new LabError(`cannot unmount ${left[0]} (${left.length} mounts left under ${dir})`);
}

/** Deletes a tree after unmounting everything inside it; refuses if that failed. */
export async function removeTree(dir: string): Promise<void> {
    await unmountAllUnder(dir);
    if (mountPointsUnder(dir).length > 0)
        throw new LabError(`refusing to delete ${dir}: something is still mounted in it`);
    await rm(dir, { recursive: true, force: true });
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountField(field: string): string {
    return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
