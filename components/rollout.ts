import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { liveSecretsText, liveSettingsText, PATHS, type NodeSecrets } from "../cloud-init";
import type { Topology } from "../topology";
import { COMMAND_TIMEOUTS, sshConnection } from "./connection";
import { rolloutChildren } from "./names";
import { deliveredFiles, fileLines, lockPasswordLines, packageLines } from "./nodeFiles";

export interface SettingsRolloutArgs {
    topology: Topology;
    /** Each node's reserved address, by node name. */
    addresses: Readonly<Record<string, pulumi.Input<string>>>;
    /** Each node's Linode id: a new id (a created or replaced node) runs the node's step. */
    instanceIds: Readonly<Record<string, pulumi.Input<number>>>;
    /** The cluster's passwords (secret), which the delivered files are rendered with. */
    secrets: pulumi.Input<NodeSecrets>;
    /** root's current authorized keys (config keys plus the checks key). */
    authorizedKeys: pulumi.Input<pulumi.Input<string>[]>;
    /** Private key of the checks key pair (secret). */
    privateKey: pulumi.Input<string>;
    /** Each node's SSH host key (`ssh-ed25519 AAAA...`), by node name: every connection pins it. */
    hostKeys: Readonly<Record<string, pulumi.Input<string>>>;
    /** Per node, what must have happened before its settings may be applied (its cloud-init wait). */
    after: Readonly<Record<string, pulumi.Input<pulumi.Resource>[]>>;
}

/**
 * Brings running nodes to the current configuration one at a time: replicas and Sentinel-only nodes first, the
 * preferred master last, each step starting only after the previous one succeeded. Each step runs the node's
 * `apply-settings` with the node's live settings (CONFIG SET + CONFIG REWRITE, SENTINEL SET, node.env), the current
 * scripts, units and authorized keys (components/nodeFiles.ts) and, with tls, its secret material (ACL password
 * hashes, the passwords it sends, its tools' password files, its certificate: `liveSecretsText`); it rewrites only
 * what differs and restarts a service only when one of its own units changed (or Sentinel, for a new certificate),
 * so a settings change or a password rotation restarts nothing and moves no data.
 *
 * Engine rule this relies on: the Linode's user-data, keys and image are ignored inputs, and the engine keeps an
 * ignored input's OLD value even when it replaces the Linode. A created or replaced node therefore boots from the
 * user-data it was first created with. Its step's trigger includes its instance id, so the step runs on every new
 * Linode and converges it to the current settings, scripts, units and keys; the trigger also includes the hash of
 * what the step delivers, so a node whose delivery did not change keeps its step untouched.
 */
export class SettingsRollout extends pulumi.ComponentResource {
    /** The steps in rollout order. */
    public readonly steps: command.remote.Command[];

    constructor(name: string, args: SettingsRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:rollout:SettingsRollout", name, {}, opts);
        const { topology: t } = args;
        const ordered = [...t.nodes].sort((a, b) => a.rolloutOrder - b.rolloutOrder);
        this.steps = [];
        const inputs = pulumi.all([pulumi.all(args.addresses), args.secrets, args.authorizedKeys]);
        let previous: command.remote.Command | undefined;
        for (const node of ordered) {
            const stdin = inputs.apply(
                ([addresses, secrets, keys]) =>
                    fileLines(deliveredFiles({ topology: t, node: node.name, addresses, secrets }, keys)) +
                    // After the files: a package's units start with the drop-ins already in place.
                    packageLines({ topology: t, node: node.name, addresses, secrets }) +
                    liveSettingsText(t, node, addresses) +
                    // Last: a node whose apply-settings predates these lines has applied everything else when it
                    // stops at the first one, and runs them with the script just delivered at the next `pulumi up`.
                    liveSecretsText({ topology: t, node: node.name, addresses, secrets }) +
                    // After the secrets, for the same reason (an apply-settings older than the line stops there).
                    lockPasswordLines(),
            );
            const step: command.remote.Command = new command.remote.Command(
                rolloutChildren.step(name, node.name),
                {
                    connection: sshConnection(args.addresses[node.name], args.privateKey, args.hostKeys[node.name]),
                    create: `${PATHS.scriptsDir}/apply-settings`,
                    stdin,
                    // A digest of everything delivered, the secret material included, so a rotated password,
                    // certificate or key re-runs the step; and the instance. Not secret: a sha256 prefix of a text
                    // holding 32-character random passwords and private keys gives none of them away.
                    triggers: [pulumi.unsecret(stdin).apply(digest), args.instanceIds[node.name]],
                },
                {
                    parent: this,
                    dependsOn: [...(args.after[node.name] ?? []), ...(previous ? [previous] : [])],
                    customTimeouts: COMMAND_TIMEOUTS,
                    // stdin carries the passwords: secret in the state as well.
                    additionalSecretOutputs: ["stdin"],
                },
            );
            this.steps.push(step);
            previous = step;
        }
        this.registerOutputs({ steps: this.steps.map((s) => s.urn) });
    }
}

function digest(text: string): string {
    return createHash("sha256").update(text).digest("hex").slice(0, 16);
}
