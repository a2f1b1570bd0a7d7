import { PATHS } from "../cloud-init";
import { run, type RunResult } from "./exec";
import type { LabStack } from "./stack";

/**
 * Real SSH into a lab node, as the post-deploy checks reach a Linode: root, the stack's key, and the node's own host
 * key pinned (the program generates it, cloud-init installs it, the stack publishes it): a node presenting any other
 * key is refused, never learned.
 */
export function sshArgv(stack: LabStack, node: string, command: readonly string[] = []): string[] {
    const spec = stack.nodes.find((n) => n.name === node);
    if (!spec)
        throw new Error(`no node ${node} in stack ${stack.stack}; nodes: ${stack.nodes.map((n) => n.name).join(", ")}`);
    return [
        "ssh",
        "-i",
        stack.credentials.keyFile,
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        `UserKnownHostsFile=${stack.knownHostsFile}`,
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        // Only the pinned key type: no fallback to another key the node might offer.
        "-o",
        "HostKeyAlgorithms=ssh-ed25519",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=5",
        `root@${spec.address}`,
        ...command,
    ];
}

export function ssh(
    stack: LabStack,
    node: string,
    command: readonly string[],
    timeoutMs = 120_000,
): Promise<RunResult> {
    return run(sshArgv(stack, node, command), { allowFailure: true, timeoutMs });
}

/** Runs one of the shipped check scripts on a node over SSH, exactly as the Pulumi command resources do. */
export function runCheck(
    stack: LabStack,
    node: string,
    script: string,
    args: readonly string[] = [],
    timeoutMs = 300_000,
): Promise<RunResult> {
    return ssh(stack, node, [`${PATHS.scriptsDir}/${script}`, ...args], timeoutMs);
}
