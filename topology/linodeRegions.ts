/**
 * Linode's core regions and their capabilities, as `GET /v4beta/regions` returned them on 2024-07-09: transcribed from
 * the API recording in linode/linodego (`test/integration/fixtures/TestRegions_List.yaml`, 27 regions). Placement
 * groups were still rolling out then, so a region listed without "Placement Group" may have gained it since; the real
 * answer comes from `linode.getRegion` at preview. Tests and mocks answer that invoke from this table.
 *
 * The capabilities this program needs: "Metadata" (user-data reaches cloud-init) in every region, and
 * "Placement Group" in every region with two or more nodes.
 */

export const METADATA = "Metadata";
export const PLACEMENT_GROUP = "Placement Group";

/** One region as `linode.getRegion` describes it (the fields this program reads). */
export interface LinodeRegion {
    readonly id: string;
    readonly label: string;
    readonly country: string;
    readonly status: "ok";
    readonly capabilities: readonly string[];
}

// [id, label, country, capabilities in the API's order]; one line per region.
// prettier-ignore
const RECORDED: readonly (readonly [string, string, string, string])[] = [
    ["ap-west", "Mumbai, IN", "in", "Linodes, Backups, NodeBalancers, Block Storage, GPU Linodes, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata"],
    ["ca-central", "Toronto, CA", "ca", "Linodes, Backups, NodeBalancers, Block Storage, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata"],
    ["ap-southeast", "Sydney, AU", "au", "Linodes, Backups, NodeBalancers, Block Storage, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata"],
    ["us-iad", "Washington, DC", "us", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Managed Databases, Metadata, Premium Plans, Placement Group"],
    ["us-ord", "Chicago, IL", "us", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, GPU Linodes, Kubernetes, Cloud Firewall, Vlans, VPCs, Managed Databases, Metadata, Premium Plans, Placement Group"],
    ["fr-par", "Paris, FR", "fr", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, GPU Linodes, Kubernetes, Cloud Firewall, Vlans, VPCs, Managed Databases, Metadata, Premium Plans"],
    ["us-sea", "Seattle, WA", "us", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, GPU Linodes, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["br-gru", "Sao Paulo, BR", "br", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["nl-ams", "Amsterdam, NL", "nl", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["se-sto", "Stockholm, SE", "se", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans, Placement Group"],
    ["es-mad", "Madrid, ES", "es", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["in-maa", "Chennai, IN", "in", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["jp-osa", "Osaka, JP", "jp", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, GPU Linodes, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["it-mil", "Milan, IT", "it", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["us-mia", "Miami, FL", "us", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans, Placement Group"],
    ["id-cgk", "Jakarta, ID", "id", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["us-lax", "Los Angeles, CA", "us", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["gb-lon", "London 2, UK", "gb", "Linodes, Backups, NodeBalancers, Block Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["au-mel", "Melbourne, AU", "au", "Linodes, Backups, NodeBalancers, Block Storage, Kubernetes, Cloud Firewall, Vlans, VPCs, Metadata, Premium Plans"],
    ["us-central", "Dallas, TX", "us", "Linodes, Backups, NodeBalancers, Block Storage, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata, Placement Group"],
    ["us-west", "Fremont, CA", "us", "Linodes, Backups, NodeBalancers, Block Storage, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata, Placement Group"],
    ["us-southeast", "Atlanta, GA", "us", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, GPU Linodes, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata, Placement Group"],
    ["us-east", "Newark, NJ", "us", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, GPU Linodes, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata, Placement Group"],
    ["eu-west", "London, UK", "gb", "Linodes, Backups, NodeBalancers, Block Storage, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata, Placement Group"],
    ["ap-south", "Singapore, SG", "sg", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, GPU Linodes, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata, Placement Group"],
    ["eu-central", "Frankfurt, DE", "de", "Linodes, Backups, NodeBalancers, Block Storage, Object Storage, GPU Linodes, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata"],
    ["ap-northeast", "Tokyo, JP", "jp", "Linodes, Backups, NodeBalancers, Block Storage, Kubernetes, Cloud Firewall, Vlans, Block Storage Migrations, Managed Databases, Metadata"],
];

export const LINODE_REGIONS: readonly LinodeRegion[] = RECORDED.map(([id, label, country, capabilities]) => ({
    id,
    label,
    country,
    status: "ok",
    capabilities: capabilities.split(", "),
}));

/** The recorded region with this id, or undefined (an unknown or newer region). */
export function linodeRegion(id: string): LinodeRegion | undefined {
    return LINODE_REGIONS.find((r) => r.id === id);
}

/** Capabilities this program needs in a region: Metadata always, Placement Group where it holds two or more nodes. */
export function requiredCapabilities(nodesInRegion: number): string[] {
    return nodesInRegion >= 2 ? [METADATA, PLACEMENT_GROUP] : [METADATA];
}

/** Capabilities of `needed` that `region` lacks. */
export function missingCapabilities(region: LinodeRegion, needed: readonly string[]): string[] {
    return needed.filter((c) => !region.capabilities.includes(c));
}
