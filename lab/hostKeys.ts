import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { renderKnownHosts, type HostKeyPair } from "../cloud-init";
import { run } from "./exec";

/**
 * Each node's SSH host key for a lab stack, generated once with ssh-keygen (ED25519, as @pulumi/tls makes them) and
 * kept in the stack's directory until `lab down`, like Pulumi keeps the tls.PrivateKey resources in state. The lab
 * hands them to the program under mocks, so they reach the nodes the way they reach a Linode: in the user-data.
 */
export async function ensureHostKeys(dir: string, nodes: readonly string[]): Promise<Record<string, HostKeyPair>> {
    const keys: Record<string, HostKeyPair> = {};
    for (const node of nodes) {
        const file = path.join(dir, `host_${node}_ed25519`);
        if (!existsSync(file))
            await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", `root@${node}`, "-f", file]);
        keys[node] = {
            privateKey: readFileSync(file, "utf8"),
            publicKey: readFileSync(`${file}.pub`, "utf8").trim(),
        };
    }
    return keys;
}

/**
 * Writes the known_hosts file lab SSH pins against, from the host keys the program publishes (its `hostKeys` output):
 * a node that does not present exactly its key is refused, as the post-deploy commands refuse it.
 */
export function writeKnownHosts(dir: string, hosts: readonly { address: string; publicKey: string }[]): string {
    const file = path.join(dir, "known_hosts");
    writeFileSync(file, renderKnownHosts(hosts), { mode: 0o600 });
    return file;
}
