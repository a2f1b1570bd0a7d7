import * as command from "@pulumi/command";
import * as linode from "@pulumi/linode";
import * as pulumi from "@pulumi/pulumi";
import { PATHS } from "../cloud-init";
import type { NodePlan, Topology } from "../topology";
import { COMMAND_TIMEOUTS, sshConnection } from "./connection";
import { resizeChildren } from "./names";

/** One node whose Linode plan changes in this deployment. */
export interface ResizeStep {
    readonly node: string;
    /** The plan the running Linode has. */
    readonly from: string;
    /** The plan the configuration asks for. */
    readonly to: string;
    /**
     * Redis nodes that may take mastership over before this node goes down, best first: nodes resized earlier in this
     * rollout (latest first), then nodes that keep their plan, then, only as a last resort, nodes resized later.
     * Empty for a Sentinel-only node (it never holds mastership).
     */
    readonly handoverTo: readonly string[];
}

/**
 * The resizes a deployment performs, in the order it performs them: one node at a time, replicas and Sentinel-only
 * nodes first and the preferred master last (`rolloutOrder`, as the settings rollout). `deployed` is each running
 * node's current plan (nodes not yet created are absent and are not resized, they are created).
 *
 * Why one at a time: Linode resizes a Linode with a cold migration (it powers off, moves its disks, boots), so every
 * resized node is down for minutes. Two at once can take a majority of Redis nodes or Sentinels down together.
 */
export function planResizes(t: Topology, deployed: Readonly<Partial<Record<string, string>>>): ResizeStep[] {
    const changing = [...t.nodes]
        .filter((n) => deployed[n.name] !== undefined && deployed[n.name] !== n.type)
        .sort((a, b) => a.rolloutOrder - b.rolloutOrder);
    const candidates = t.nodes.filter((n) => n.runsRedis && n.promotable);
    return changing.map((n, i) => {
        const earlier = changing.slice(0, i).map((c) => c.name);
        // Last resort, the node resized last (normally the preferred master): it keeps mastership longest and hands it
        // to an already resized node at its own turn.
        const later = changing
            .slice(i + 1)
            .map((c) => c.name)
            .reverse();
        const rank = (c: NodePlan) =>
            earlier.includes(c.name)
                ? earlier.length - earlier.indexOf(c.name) // the latest resized first
                : later.includes(c.name)
                  ? 2 * t.nodes.length + later.indexOf(c.name)
                  : t.nodes.length + 1;
        const handoverTo = n.runsRedis
            ? candidates
                  .filter((c) => c.name !== n.name)
                  .sort((a, b) => rank(a) - rank(b))
                  .map((c) => c.name)
            : [];
        return { node: n.name, from: deployed[n.name] ?? "", to: n.type, handoverTo };
    });
}

export interface ResizeRolloutArgs {
    topology: Topology;
    /** The resizes of this deployment, in order (`planResizes`). */
    steps: readonly ResizeStep[];
    /** Each node's address, by node name. */
    addresses: Readonly<Record<string, pulumi.Input<string>>>;
    /** Private key of the checks key pair (secret). */
    privateKey: pulumi.Input<string>;
    /** Each node's pinned SSH host key, by node name. */
    hostKeys: Readonly<Record<string, pulumi.Input<string>>>;
}

/**
 * Serialises plan changes (`nodeType`, a node's `type`): Pulumi would otherwise resize every affected Linode at once.
 * For each resized node, in `planResizes` order: a handover (a Redis node that is master gives mastership to a node
 * already resized, by a controlled failover that loses no acknowledged write: `failover-drill handover`), then the
 * resize itself (the Linode depends on the handover), then a readiness wait (the node's own checks pass again) that
 * the next node's handover depends on.
 *
 * These commands exist only in a deployment that resizes (the program reads each Linode's running plan at preview,
 * `deployedPlans`), so creating a cluster stays parallel; the next deployment deletes them, which runs nothing.
 */
export class ResizeRollout extends pulumi.ComponentResource {
    /** Handover commands by node name (Redis nodes only). */
    public readonly handovers: Record<string, command.remote.Command> = {};
    /** Readiness waits by node name. */
    public readonly ready: Record<string, command.remote.Command> = {};
    private readonly args: ResizeRolloutArgs;
    private readonly name: string;
    private next = 0;

    constructor(name: string, args: ResizeRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:resize:ResizeRollout", name, {}, opts);
        this.name = name;
        this.args = args;
        this.registerOutputs({ steps: args.steps.map((s) => `${s.node}: ${s.from} -> ${s.to}`) });
    }

    /** The last readiness wait: everything that must follow the whole rollout depends on it. */
    public finished(): pulumi.Resource[] {
        const last = this.args.steps.at(-1);
        return last && this.next === this.args.steps.length ? [this.ready[last.node]] : [];
    }

    /** Whether this deployment resizes the node. */
    public resizes(node: string): boolean {
        return this.args.steps.some((s) => s.node === node);
    }

    /**
     * What the node's Linode must wait for before it is resized: its own handover, or, for a Sentinel-only node, the
     * previous node's readiness. Call once per resized node, in step order.
     */
    public before(node: string): pulumi.Resource[] {
        const { topology: t, steps } = this.args;
        const step = steps[this.next] as ResizeStep | undefined;
        if (step?.node !== node) throw new Error(`resize steps out of order: ${node} before ${step?.node ?? "none"}`);
        const previous = this.next > 0 ? [this.ready[steps[this.next - 1].node]] : [];
        const plan = t.nodes.find((n) => n.name === node);
        if (!plan?.runsRedis) return previous;
        // Sentinel runs the failover; the node itself when it has one, else the first other Sentinel node.
        const runner = plan.runsSentinel ? plan : t.nodes.find((n) => n.runsSentinel && n.name !== node);
        if (!runner) throw new Error(`no Sentinel node to hand over from ${node}`);
        const endpoint = (n: string) => pulumi.interpolate`${this.args.addresses[n]}:${String(t.ports.redis)}`;
        const argv = pulumi.all([endpoint(node), ...step.handoverTo.map(endpoint)]);
        this.handovers[node] = new command.remote.Command(
            resizeChildren.handover(this.name, node),
            {
                connection: sshConnection(
                    this.args.addresses[runner.name],
                    this.args.privateKey,
                    this.args.hostKeys[runner.name],
                ),
                create: argv.apply((a) => `${PATHS.scriptsDir}/failover-drill handover ${a.join(" ")}`),
                triggers: [step.from, step.to],
            },
            { parent: this, dependsOn: previous, customTimeouts: COMMAND_TIMEOUTS },
        );
        return [this.handovers[node]];
    }

    /** Registers the readiness wait after the node's (resized) Linode. Call right after `before(node)`. */
    public after(node: string, instance: linode.Instance): void {
        const { topology: t, steps } = this.args;
        const step = steps[this.next];
        const plan = t.nodes.find((n) => n.name === node);
        if (step.node !== node || !plan) throw new Error(`resize steps out of order: ${node} after ${step.node}`);
        const checks = [
            ...(plan.runsRedis ? [`${PATHS.scriptsDir}/check-node`] : []),
            ...(plan.runsSentinel ? [`${PATHS.scriptsDir}/check-quorum`] : []),
        ].join(" && ");
        // A resized Linode boots again; Redis restarts and resyncs: wait (up to 5 minutes) until its checks pass.
        this.ready[node] = new command.remote.Command(
            resizeChildren.ready(this.name, node),
            {
                connection: sshConnection(this.args.addresses[node], this.args.privateKey, this.args.hostKeys[node]),
                create: `for i in $(seq 1 60); do ${checks} >/dev/null 2>&1 && break; sleep 5; done; ${checks}`,
                triggers: [step.from, step.to],
            },
            { parent: this, dependsOn: [instance], customTimeouts: COMMAND_TIMEOUTS },
        );
        this.next++;
    }
}

/**
 * Each running node's current Linode plan, by node name, read from Linode at preview (`linode.getInstances` by label;
 * labels are unique in an account). Nodes that do not exist yet are absent.
 */
export async function deployedPlans(t: Topology): Promise<Record<string, string>> {
    const found = await linode.getInstances({ filters: [{ name: "label", values: t.nodes.map((n) => n.label) }] });
    return Object.fromEntries(
        t.nodes.flatMap((n) => {
            const running = found.instances.find((i) => i.label === n.label);
            return running ? [[n.name, running.type]] : [];
        }),
    );
}
