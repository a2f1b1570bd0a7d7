import { labNode } from "./labCluster";
import { LabError } from "./errors";
import { heal, partitionNode, partitionRegion } from "./network";
import { bootNode, execInNode, nodeRunning, readNodeState, stopNode, waitForCloudInit } from "./nodes";
import type { LabStack } from "./stack";

/**
 * Faults the lab injects, each the way it happens on a real Linode: signals go through the node's own systemd, so
 * what follows (restart, start guard, Sentinel) is what the rendered units say.
 */
async function signalUnit(node: string, unit: string, signal: "SIGKILL" | "SIGSTOP" | "SIGCONT"): Promise<void> {
    await execInNode(node, ["systemctl", "kill", `--signal=${signal}`, unit]);
}

/** SIGKILL the node's Redis process; systemd restarts it as the rendered unit says. */
export const crashRedis = (node: string) => signalUnit(node, "redis-server.service", "SIGKILL");
/** SIGSTOP: a hung master whose sockets stay open. */
export const pauseRedis = (node: string) => signalUnit(node, "redis-server.service", "SIGSTOP");
export const resumeRedis = (node: string) => signalUnit(node, "redis-server.service", "SIGCONT");
export const crashSentinel = (node: string) => signalUnit(node, "redis-sentinel.service", "SIGKILL");
export async function startRedis(node: string): Promise<void> {
    await execInNode(node, ["systemctl", "start", "redis-server.service"]);
}
export async function stopRedis(node: string): Promise<void> {
    await execInNode(node, ["systemctl", "stop", "redis-server.service"]);
}

/** How long a rebooting node may take to stop (its units' stop hooks included) and to boot back through cloud-init. */
const REBOOT_STOP_TIMEOUT_MS = 120_000;
const REBOOT_BOOT_TIMEOUT_MS = 300_000;

/**
 * `systemctl reboot` inside the node: its systemd stops every unit (Redis's stop hook included) as on a Linode. An
 * nspawn container that reboots ends its nspawn (exit 133) instead of booting again, so the lab, playing the
 * hypervisor, boots it again from its own disk once it is down, and waits for cloud-init like a real boot.
 */
export async function rebootNode(s: LabStack, node: string): Promise<void> {
    const state = readNodeState(node);
    if (!state) throw new LabError(`${node} has no state on disk; bring the stack up again: npm run lab -- up`);
    // The command may lose its connection to the node while the node goes down: its exit status says nothing.
    await execInNode(node, ["systemctl", "reboot"], { allowFailure: true });
    const deadline = Date.now() + REBOOT_STOP_TIMEOUT_MS;
    while (nodeRunning(node)) {
        if (Date.now() > deadline) throw new LabError(`${node} did not go down within ${REBOOT_STOP_TIMEOUT_MS} ms`);
        await new Promise((r) => setTimeout(r, 100));
    }
    // Nothing is left to kill: this clears what an ended nspawn leaves behind (its pid file, cgroups, propagation dir).
    await stopNode(node, { mode: "kill" });
    await bootNode(labNode(s, node), state.imageDir);
    const r = await waitForCloudInit(node, REBOOT_BOOT_TIMEOUT_MS);
    if (!r.ok) throw new LabError(`${node} after reboot: ${r.errors.join("; ")}`, r.detail);
}

export { heal, partitionNode, partitionRegion };
