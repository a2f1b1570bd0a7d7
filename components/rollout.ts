import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { liveSettingsHash, liveSettingsText, PATHS } from "../cloud-init";
import type { Topology } from "../topology";
import { COMMAND_TIMEOUTS, sshConnection } from "./connection";
import { rolloutChildren } from "./names";

export interface SettingsRolloutArgs {
    topology: Topology;
    /** Each node's reserved address, by node name. */
    addresses: Readonly<Record<string, pulumi.Input<string>>>;
    /** Private key of the checks key pair (secret). */
    privateKey: pulumi.Input<string>;
    /** Each node's SSH host key (`ssh-ed25519 AAAA...`), by node name: every connection pins it. */
    hostKeys: Readonly<Record<string, pulumi.Input<string>>>;
    /** Per node, what must have happened before its settings may be applied (its cloud-init wait). */
    after: Readonly<Record<string, pulumi.Input<pulumi.Resource>[]>>;
}

/**
 * Rolls live Redis/Sentinel settings out to running nodes one at a time: replicas and Sentinel-only nodes first, the
 * preferred master last, each step starting only after the previous one succeeded. Each step runs the node's
 * `apply-settings` (CONFIG SET + CONFIG REWRITE, SENTINEL SET), so nothing restarts and no data moves; a node whose
 * settings did not change keeps its step untouched (its trigger is the hash of its own settings).
 */
export class SettingsRollout extends pulumi.ComponentResource {
    /** The steps in rollout order. */
    public readonly steps: command.remote.Command[];

    constructor(name: string, args: SettingsRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:rollout:SettingsRollout", name, {}, opts);
        const { topology: t } = args;
        const ordered = [...t.nodes].sort((a, b) => a.rolloutOrder - b.rolloutOrder);
        this.steps = [];
        const addresses = pulumi.all(args.addresses);
        let previous: command.remote.Command | undefined;
        for (const node of ordered) {
            const step: command.remote.Command = new command.remote.Command(
                rolloutChildren.step(name, node.name),
                {
                    connection: sshConnection(args.addresses[node.name], args.privateKey, args.hostKeys[node.name]),
                    create: `${PATHS.scriptsDir}/apply-settings`,
                    stdin: addresses.apply((a) => liveSettingsText(t, node, a)),
                    triggers: [addresses.apply((a) => liveSettingsHash(t, node, a))],
                },
                {
                    parent: this,
                    dependsOn: [...(args.after[node.name] ?? []), ...(previous ? [previous] : [])],
                    customTimeouts: COMMAND_TIMEOUTS,
                },
            );
            this.steps.push(step);
            previous = step;
        }
        this.registerOutputs({ steps: this.steps.map((s) => s.urn) });
    }
}
