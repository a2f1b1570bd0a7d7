import { heal, partitionNode, partitionRegion } from "./network";
import { execInNode } from "./nodes";

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

export { heal, partitionNode, partitionRegion };
