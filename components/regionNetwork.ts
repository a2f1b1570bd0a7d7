import * as linode from "@pulumi/linode";
import * as pulumi from "@pulumi/pulumi";
import { placementGroupLabel, type RegionPlan, type Topology } from "../topology";
import { regionChildren } from "./names";

export interface RegionNetworkArgs {
    /** The cluster's topology. */
    topology: Topology;
    /** The region this component provisions. */
    region: RegionPlan;
}

/**
 * What a region provides before its nodes exist: with `addressing: reserved`, a reserved public IPv4 per node (so every
 * node's user-data can name every peer, and a replaced node keeps its address) and, where a region has two or more nodes, a strict
 * anti-affinity placement group so one host failure takes out at most one node.
 *
 * Linode VPCs and VLANs are region-scoped, so Redis and Sentinel traffic, which crosses regions, uses these public
 * addresses; the Cloud Firewall limits it to the cluster's own nodes.
 */
export class RegionNetwork extends pulumi.ComponentResource {
    /** Reserved IPv4 address of each node in this region, by node name; empty with `addressing: ephemeral`. */
    public readonly addresses: Record<string, pulumi.Output<string>>;
    /** The placement group's id, when the region has two or more nodes. */
    public readonly placementGroupId?: pulumi.Output<number>;

    constructor(name: string, args: RegionNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:network:RegionNetwork", name, {}, opts);
        const { topology: t, region } = args;
        this.addresses = {};
        // addressing: ephemeral reserves nothing: each Linode keeps the address it is created with.
        const reserved = t.addressing === "reserved" ? region.nodes : [];
        for (const nodeName of reserved) {
            const ip = new linode.NetworkingIp(
                regionChildren.reservedIp(name, nodeName),
                { type: "ipv4", public: true, reserved: true, region: region.name },
                { parent: this },
            );
            this.addresses[nodeName] = ip.address;
        }
        if (region.nodes.length >= 2) {
            const pg = new linode.PlacementGroup(
                regionChildren.placementGroup(name),
                {
                    label: placementGroupLabel(t.cluster, region.name),
                    region: region.name,
                    placementGroupType: "anti_affinity:local",
                    placementGroupPolicy: "strict",
                },
                { parent: this },
            );
            this.placementGroupId = pg.id.apply(Number);
        }
        this.registerOutputs({ addresses: this.addresses, placementGroupId: this.placementGroupId });
    }
}
