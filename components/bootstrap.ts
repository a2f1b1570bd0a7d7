import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { addressListHash, BOOTSTRAP_SCRIPT, bootstrapInput, PATHS, type NodeSecrets } from "../cloud-init";
import type { NodePlan, Topology } from "../topology";
import { COMMAND_TIMEOUTS, sshConnection } from "./connection";
import { bootstrapChildren } from "./names";

export interface AddressBootstrapArgs {
    topology: Topology;
    /** Each node's address (the Linode's own public IPv4), by node name. */
    addresses: Readonly<Record<string, pulumi.Input<string>>>;
    /** Each node's Linode id: a new id (a created or replaced node) runs the node's first bootstrap. */
    instanceIds: Readonly<Record<string, pulumi.Input<number>>>;
    /** The cluster's passwords (secret): node.env, redis.conf and sentinel.conf carry them. */
    secrets: pulumi.Input<NodeSecrets>;
    /** Private key of the checks key pair (secret). */
    privateKey: pulumi.Input<string>;
    /** Each node's SSH host key (`ssh-ed25519 AAAA...`), by node name: every connection pins it. */
    hostKeys: Readonly<Record<string, pulumi.Input<string>>>;
    /**
     * What every step waits for: every Linode (their addresses are the input) and the firewall that admits them to
     * each other (its rules are made from those addresses).
     */
    after: readonly pulumi.Input<pulumi.Resource>[];
    /** Per node, what must have happened before its step (its cloud-init wait: the script must be installed). */
    afterNode: Readonly<Record<string, readonly pulumi.Input<pulumi.Resource>[]>>;
}

/**
 * `addressing: ephemeral`: hands every node its peers' addresses once all Linodes exist, one node at a time.
 *
 * Why a step and not user-data: without reserved IPv4 an address exists only once its Linode does, so a node's
 * user-data naming its peers would make every Linode depend on every other (a cycle), and user-data is a replacing
 * input. Each step runs `bootstrap-node` over SSH (host key pinned) with the node's node.env, redis.conf and
 * sentinel.conf on stdin, rendered by the same renderers as reserved mode's user-data; the units start Redis and
 * Sentinel only once node.env exists, so no node serves with a missing or wrong master before its step.
 *
 * Order: the preferred master first (it starts as master while no Sentinel names one), then the rollout order. A
 * replaced node comes back with a new address: the trigger (the whole address list) changes for every node, so
 * every step runs again in this order. The new node gets its first bootstrap (its start guard asks the Sentinels who
 * the master is); every other node gets the new list in node.env and resets its Sentinel to forget the old address.
 */
export class AddressBootstrap extends pulumi.ComponentResource {
    /** The steps in bootstrap order. */
    public readonly steps: command.remote.Command[];

    constructor(name: string, args: AddressBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:bootstrap:AddressBootstrap", name, {}, opts);
        const { topology: t } = args;
        const addresses = pulumi.all(args.addresses);
        const listHash = addresses.apply((a) => addressListHash(t, a));
        this.steps = [];
        let previous: command.remote.Command | undefined;
        for (const node of bootstrapOrder(t)) {
            const step: command.remote.Command = new command.remote.Command(
                bootstrapChildren.step(name, node.name),
                {
                    connection: sshConnection(args.addresses[node.name], args.privateKey, args.hostKeys[node.name]),
                    create: `${PATHS.scriptsDir}/${BOOTSTRAP_SCRIPT}`,
                    // Secret: the files carry the passwords.
                    stdin: pulumi.secret(
                        pulumi
                            .all([addresses, args.secrets])
                            .apply(([a, secrets]) =>
                                bootstrapInput({ topology: t, node: node.name, addresses: a, secrets }),
                            ),
                    ),
                    triggers: [listHash, args.instanceIds[node.name]],
                },
                {
                    parent: this,
                    dependsOn: [...args.after, ...(args.afterNode[node.name] ?? []), ...(previous ? [previous] : [])],
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

/** The preferred master first, then the one-node-at-a-time rollout order. */
export function bootstrapOrder(t: Topology): NodePlan[] {
    const rank = (n: NodePlan) => (n.name === t.preferredMaster ? -1 : n.rolloutOrder);
    return [...t.nodes].sort((a, b) => rank(a) - rank(b));
}
