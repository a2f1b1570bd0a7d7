import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { drillRunner, PATHS } from "../cloud-init";
import type { Topology } from "../topology";
import { COMMAND_TIMEOUTS, sshConnection } from "./connection";
import { checkChildren } from "./names";
import { reachCommand } from "./reach";

export interface PostDeployChecksArgs {
    topology: Topology;
    addresses: Readonly<Record<string, pulumi.Input<string>>>;
    /** Instance id of each node: a replaced node re-runs its checks and the drill. */
    instanceIds: Readonly<Record<string, pulumi.Input<number>>>;
    privateKey: pulumi.Input<string>;
    /** Each node's SSH host key (`ssh-ed25519 AAAA...`), by node name: every connection pins it. */
    hostKeys: Readonly<Record<string, pulumi.Input<string>>>;
    /** `checkedSettingsHash`: what the health and quorum checks verify; a change re-runs them. */
    checkedHash: string;
    /** `failoverSettingsHash`: what decides how a failover goes; a change re-runs the drill (`onCreate`). */
    failoverHash: string;
    /** Resources that run between a node's wait and its checks (the settings rollout). */
    beforeChecks?: (waits: Record<string, command.remote.Command>) => pulumi.Resource[];
}

/**
 * Post-deploy assertions over SSH, with the scripts that ship on every node (cloud-init/scripts): `pulumi up` succeeds
 * only when every node finished cloud-init, every Redis node is healthy, every Sentinel passes CKQUORUM and agrees on
 * the master, and (per `failoverDrill`) a real failover and fail-back worked.
 */
export class PostDeployChecks extends pulumi.ComponentResource {
    /** First contact with each node (components/reach.ts): fails at once on a refused key. */
    public readonly reach: Record<string, command.local.Command> = {};
    public readonly waits: Record<string, command.remote.Command> = {};
    public readonly health: Record<string, command.remote.Command> = {};
    public readonly quorum: Record<string, command.remote.Command> = {};
    public readonly drill?: command.remote.Command;

    constructor(name: string, args: PostDeployChecksArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:checks:PostDeployChecks", name, {}, opts);
        const { topology: t } = args;
        const run = (
            resource: string,
            node: string,
            script: string,
            triggers: pulumi.Input<unknown>[],
            dependsOn: pulumi.Resource[],
        ) =>
            new command.remote.Command(
                resource,
                {
                    connection: sshConnection(args.addresses[node], args.privateKey, args.hostKeys[node]),
                    create: `${PATHS.scriptsDir}/${script}`,
                    triggers,
                },
                { parent: this, dependsOn, customTimeouts: COMMAND_TIMEOUTS },
            );

        for (const n of t.nodes) {
            this.reach[n.name] = reachCommand(
                checkChildren.reach(name, n.name),
                {
                    node: n.name,
                    host: args.addresses[n.name],
                    hostKey: args.hostKeys[n.name],
                    privateKey: args.privateKey,
                    instanceId: args.instanceIds[n.name],
                },
                { parent: this },
            );
            // `cloud-init status --wait` first: SSH may answer before write_files has installed the scripts.
            this.waits[n.name] = new command.remote.Command(
                checkChildren.wait(name, n.name),
                {
                    connection: sshConnection(args.addresses[n.name], args.privateKey, args.hostKeys[n.name]),
                    create: `cloud-init status --wait >/dev/null 2>&1; ${PATHS.scriptsDir}/check-cloud-init`,
                    triggers: [args.instanceIds[n.name]],
                },
                { parent: this, dependsOn: [this.reach[n.name]], customTimeouts: COMMAND_TIMEOUTS },
            );
        }
        const between = args.beforeChecks?.(this.waits) ?? [];
        // Sentinels agree only once every node is up, so each quorum check waits for all nodes (its own included).
        const allWaits = Object.values(this.waits);
        for (const n of t.nodes) {
            const triggers = [args.checkedHash, args.instanceIds[n.name]];
            if (n.runsRedis)
                this.health[n.name] = run(checkChildren.health(name, n.name), n.name, "check-node", triggers, [
                    this.waits[n.name],
                    ...between,
                ]);
            if (n.runsSentinel)
                this.quorum[n.name] = run(checkChildren.quorum(name, n.name), n.name, "check-quorum", triggers, [
                    ...allWaits,
                    ...between,
                ]);
        }
        if (t.failoverDrill !== "never") {
            const runner = drillRunner(t);
            // `onCreate`: a created or replaced node (a new instance id) or a change of failover behaviour re-runs the
            // drill; nothing else does (see failoverSettingsHash for the keys), since it is a real failover.
            const triggers: pulumi.Input<unknown>[] = [
                args.failoverHash,
                ...t.nodes.map((n) => args.instanceIds[n.name]),
            ];
            // `always`: a new trigger on every run, so every `pulumi up` re-runs the drill.
            if (t.failoverDrill === "always") triggers.push(new Date().toISOString());
            this.drill = run(checkChildren.drill(name), runner.name, "failover-drill", triggers, [
                ...Object.values(this.quorum),
                ...Object.values(this.health),
            ]);
        }
        this.registerOutputs({
            waits: Object.keys(this.waits),
            drill: this.drill?.stdout,
        });
    }
}
