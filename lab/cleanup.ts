import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { nodesWithCgroups, removeNodeCgroups } from "./cgroups";
import { InvalidNodeNameError, LabError } from "./errors";
import { run } from "./exec";
import { removeStaleBuilds } from "./image";
import { removeTree } from "./mounts";
import { destroyNetwork, hostLinks, listNetns, netnsPids, readNetwork } from "./network";
import { listNodes, stopNode } from "./nodes";
import { IMAGES_DIR, NODES_DIR, PREFIX } from "./paths";
import { requireHost } from "./preflight";
import { childPids, innermostPid, nspawnProcesses, readCmdline, signal, waitForExit } from "./processes";

/**
 * Teardown that works from any state: a clean lab, a half-created one, or
 * one whose controlling process crashed. It finds the lab's pieces by where
 * they live and what they are called (state under /var/lib/redis-ha-lab,
 * names starting with rhl-, cgroups under redis-ha-lab/), never by killing
 * processes by a broad name.
 */

/** Stops every lab node and removes nodes, mounts, namespaces and links. Safe to repeat. */
export async function destroyAll(): Promise<string[]> {
    requireHost(["ip", "umount"]);
    const done: string[] = [];

    // 1. Containers: every node we know of from disk, cgroups or the network plan.
    const names = new Set<string>([
        ...listNodes(),
        ...nodesWithCgroups(),
        ...(readNetwork()?.nodes.map((n) => n.name) ?? []),
    ]);
    for (const p of nspawnProcesses(PREFIX)) names.add(p.machine.slice(PREFIX.length));
    names.delete("router");
    for (const name of names) {
        try {
            await stopNode(name, { mode: "kill" });
            done.push(`stopped node ${name}`);
        } catch (e) {
            // A name that is not a valid node name cannot be ours by construction; skip it.
            if (!(e instanceof InvalidNodeNameError)) throw e;
        }
    }
    // nspawns we could not map to a node (e.g. state deleted by hand while running).
    for (const { pid, machine } of nspawnProcesses(PREFIX)) {
        for (const child of childPids(pid)) if (innermostPid(child) === 1) signal(child, "SIGKILL");
        signal(pid, "SIGKILL");
        await waitForExit(pid, 5_000);
        done.push(`killed stray nspawn ${machine} (pid ${pid})`);
    }
    for (const name of nodesWithCgroups()) await removeNodeCgroups(name);

    // 2. Node disks: unmount every overlay, then delete.
    if (existsSync(NODES_DIR)) {
        await removeTree(NODES_DIR);
        done.push(`removed ${NODES_DIR}`);
    }

    // 3. Network. First what still runs inside a lab namespace once the nodes are stopped (a drill's writers, the
    // monitoring tools, left by a drill that was itself killed): deleting the namespace would not end them, and a
    // writer left so keeps its connections and CPU. Found by namespace, so nothing outside the lab is touched.
    for (const netns of (await listNetns()).filter((n) => n.startsWith(PREFIX))) {
        for (const pid of await netnsPids(netns)) {
            const command = (readCmdline(pid) ?? []).join(" ");
            signal(pid, "SIGKILL");
            await waitForExit(pid, 5_000);
            done.push(`killed pid ${String(pid)} in netns ${netns} (${command})`);
        }
    }
    // Then what the plan recorded, then anything else carrying our prefix.
    if (readNetwork()) {
        await destroyNetwork();
        done.push("removed the recorded lab network");
    }
    for (const netns of (await listNetns()).filter((n) => n.startsWith(PREFIX))) {
        await run(["ip", "netns", "del", netns]);
        done.push(`deleted netns ${netns}`);
    }
    for (const link of (await hostLinks()).filter((l) => l.startsWith(PREFIX))) {
        await run(["ip", "link", "del", link]);
        done.push(`deleted link ${link}`);
    }

    // 4. Leftovers of nspawn (its propagation dirs) and of interrupted image builds.
    const propagate = "/run/systemd/nspawn/propagate";
    if (existsSync(propagate)) {
        for (const entry of readdirSync(propagate).filter((e) => e.startsWith(PREFIX))) {
            await removeTree(path.join(propagate, entry));
        }
    }
    await removeStaleBuilds();
    return done;
}

/** Deletes the base image cache. Refuses while any node still uses an image. */
export async function purgeImages(): Promise<void> {
    requireHost(["umount"]);
    const inUse = readFileSync("/proc/self/mountinfo", "utf8").includes(`lowerdir=${IMAGES_DIR}/`);
    if (inUse || listNodes().length > 0)
        throw new LabError("lab nodes still use the image cache: run destroyAll first");
    await removeTree(IMAGES_DIR);
}
