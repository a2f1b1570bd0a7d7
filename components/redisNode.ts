import * as linode from "@pulumi/linode";
import * as pulumi from "@pulumi/pulumi";
import { cidrContains, parseCidr, type NodePlan, type Topology } from "../topology";
import { nodeChildren } from "./names";

export interface RedisNodeArgs {
    topology: Topology;
    /** This node's plan. */
    node: NodePlan;
    /**
     * Reserved IPv4 assigned to the Linode at creation (`addressing: reserved`). Absent with `addressing: ephemeral`:
     * the Linode keeps the public IPv4 Linode gives it, read back from `ipv4s`.
     */
    address?: pulumi.Input<string>;
    /** The node's `#cloud-config`, base64 without line breaks. Marked secret: it carries passwords. */
    userDataBase64: pulumi.Input<string>;
    /** OpenSSH public keys for root (config keys plus the checks key). */
    authorizedKeys: pulumi.Input<pulumi.Input<string>[]>;
    /**
     * The cluster's Cloud Firewall, attached at creation so the node is never reachable without it
     * (`addressing: reserved`). Absent with `addressing: ephemeral`: the firewall's rules are made from the Linodes'
     * own addresses, so it attaches itself to them afterwards (`linodes`) instead of being an input of the Linode.
     */
    firewallId?: pulumi.Input<number>;
    /** Strict anti-affinity placement group of the node's region, if any. */
    placementGroupId?: pulumi.Input<number>;
    /**
     * When this deployment changes the node's plan: what must finish before Linode resizes it (its mastership handed
     * over, the previously resized node healthy again). See components/resize.ts.
     */
    resizeAfter?: pulumi.Resource[];
}

/**
 * One Linode of the cluster. Its user-data carries the node's whole Redis/Sentinel configuration; cloud-init applies
 * it at first boot.
 *
 * Day-2 safety: Linode replaces an instance (and destroys its data) when user-data, authorizedKeys or image change.
 * Those only matter at creation, so changes to them are ignored here; setting changes reach running nodes through
 * the one-node-at-a-time rollout (components/rollout.ts) instead. A deliberately replaced node (`pulumi up --replace`)
 * is created from the current rendering and keeps its reserved address (with `addressing: ephemeral` it gets a new
 * one, and components/bootstrap.ts hands it to every node).
 */
export class RedisNode extends pulumi.ComponentResource {
    public readonly instance: linode.Instance;
    public readonly address: pulumi.Output<string>;
    public readonly instanceId: pulumi.Output<number>;

    constructor(name: string, args: RedisNodeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:node:RedisNode", name, {}, opts);
        const { topology: t, node } = args;
        this.instance = new linode.Instance(
            nodeChildren.instance(name),
            {
                label: node.label,
                region: node.region,
                type: node.type,
                image: t.image,
                tags: [...node.tags],
                authorizedKeys: args.authorizedKeys,
                // Linode's metadata service (which cloud-init reads) serves user-data to the instance.
                metadatas: [{ userData: args.userDataBase64 }],
                // cloud-init reaches the metadata service over the public interface.
                interfaces: [{ purpose: "public" }],
                ...(args.address !== undefined ? { ipv4s: [args.address] } : {}),
                ...(args.firewallId !== undefined ? { firewallId: args.firewallId } : {}),
                backupsEnabled: t.backups && node.runsRedis,
                privateIp: false,
                ...(args.placementGroupId !== undefined ? { placementGroup: { id: args.placementGroupId } } : {}),
            },
            {
                parent: this,
                ...(args.resizeAfter ? { dependsOn: args.resizeAfter } : {}),
                ignoreChanges: ["metadatas", "authorizedKeys", "image", "rootPass"],
                // The user-data carries passwords and the host's private key: secret in the state too (the provider
                // marks only rootPass and stackscriptData).
                additionalSecretOutputs: ["metadatas"],
                // A reserved IPv4 and a label can belong to one Linode at a time: a replacement deletes the old one
                // first (with ephemeral addresses the label alone requires it).
                deleteBeforeReplace: true,
            },
        );
        this.address = args.address !== undefined ? pulumi.output(args.address) : this.instance.ipv4s.apply(publicIpv4);
        this.instanceId = this.instance.id.apply(Number);
        this.registerOutputs({ address: this.address, instanceId: this.instanceId });
    }
}

/** Linode's private range: `ipv4s` lists a private address too when one is assigned. */
const LINODE_PRIVATE = parseCidr("192.168.128.0/17");

/** The Linode's public IPv4 from its `ipv4s` (which lists the private one too, in no promised order). */
export function publicIpv4(ipv4s: readonly string[]): string {
    const address = ipv4s.find((a) => !cidrContains(LINODE_PRIVATE, a));
    if (address === undefined) throw new Error(`no public IPv4 among ${ipv4s.join(", ") || "no addresses"}`);
    return address;
}
