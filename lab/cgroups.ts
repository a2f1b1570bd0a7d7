import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, rmdir } from "node:fs/promises";
import path from "node:path";
import { assertNodeName } from "./paths";

/**
 * A cgroup of our own for each node container.
 *
 * The host's PID 1 is not systemd, so there is no machined or scope unit to
 * put a container in. nspawn (with --keep-unit) runs the container in the
 * cgroup it was started in and creates payload/ and supervisor/ below it; if
 * that were the root cgroup, every container's systemd would manage the same
 * tree. So each nspawn is started inside <hierarchy>/redis-ha-lab/<node> in
 * every hierarchy systemd uses: the named "systemd" v1 hierarchy and the v2
 * one (hybrid hosts have both, others one of them). This also gives teardown
 * an exact list of a node's processes, whatever became of its nspawn.
 */

const LAB_CGROUP = "redis-ha-lab";

/** Mount points of the hierarchies systemd runs on: cgroup2 and/or v1 name=systemd. */
export function systemdHierarchies(): string[] {
    const found: string[] = [];
    for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
        const [, mountPoint = "", fsType = "", options = ""] = line.split(" ");
        if (!mountPoint || !fsType) continue;
        if (fsType === "cgroup2") found.push(mountPoint);
        if (fsType === "cgroup" && options.split(",").includes("name=systemd")) found.push(mountPoint);
    }
    return found;
}

export function nodeCgroupDirs(name: string): string[] {
    assertNodeName(name);
    return systemdHierarchies().map((h) => path.join(h, LAB_CGROUP, name));
}

/** Creates the node's cgroups; returns the cgroup.procs files to join before exec'ing nspawn. */
export async function createNodeCgroups(name: string): Promise<string[]> {
    const dirs = nodeCgroupDirs(name);
    for (const dir of dirs) await mkdir(dir, { recursive: true });
    return dirs.map((d) => path.join(d, "cgroup.procs"));
}

/** Every process in a cgroup subtree. */
export function cgroupPids(dir: string): number[] {
    if (!existsSync(dir)) return [];
    const pids: number[] = [];
    const walk = (d: string) => {
        try {
            for (const line of readFileSync(path.join(d, "cgroup.procs"), "utf8").split("\n")) {
                if (line.trim()) pids.push(Number(line));
            }
            for (const entry of readdirSync(d, { withFileTypes: true })) {
                if (entry.isDirectory()) walk(path.join(d, entry.name));
            }
        } catch {
            // the container's systemd removes its own cgroups as units stop
        }
    };
    walk(dir);
    return [...new Set(pids)];
}

export function nodeCgroupPids(name: string): number[] {
    return [...new Set(nodeCgroupDirs(name).flatMap(cgroupPids))];
}

/** Node names that have lab cgroups, in any hierarchy (for teardown after a crash). */
export function nodesWithCgroups(): string[] {
    const names = new Set<string>();
    for (const h of systemdHierarchies()) {
        const root = path.join(h, LAB_CGROUP);
        if (!existsSync(root)) continue;
        for (const e of readdirSync(root, { withFileTypes: true })) if (e.isDirectory()) names.add(e.name);
    }
    return [...names];
}

/**
 * Removes the node's cgroups (deepest first). Only empty cgroups can be
 * removed, so callers kill the processes first; a cgroup still busy is left
 * for the next teardown rather than failing this one.
 */
export async function removeNodeCgroups(name: string): Promise<void> {
    for (const dir of nodeCgroupDirs(name)) await removeCgroupTree(dir);
    for (const h of systemdHierarchies()) {
        const root = path.join(h, LAB_CGROUP);
        if (existsSync(root) && readdirSync(root, { withFileTypes: true }).every((e) => !e.isDirectory())) {
            await rmdir(root).catch(() => undefined);
        }
    }
}

async function removeCgroupTree(dir: string): Promise<void> {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) await removeCgroupTree(path.join(dir, entry.name));
    }
    await rmdir(dir).catch(() => undefined);
}
