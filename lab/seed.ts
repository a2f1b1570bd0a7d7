import { createHash } from "node:crypto";
import { stringify } from "yaml";

/**
 * The NoCloud seed a lab node boots with: what Linode's metadata service
 * would hand cloud-init, as files in /var/lib/cloud/seed/nocloud/.
 * user-data is written byte for byte as given and never rendered here.
 */

export type MetaData = Record<string, string | number | boolean>;

export interface SeedNetwork {
    ifname: string;
    address: string;
    prefixLen: number;
    gateway: string;
}

/**
 * Derived from the node name and the user-data, so changing the user-data
 * means a new instance (as on Linode, where new user-data replaces the VM)
 * and cloud-init runs its per-instance modules again.
 */
export function instanceIdFor(name: string, userData: string): string {
    const digest = createHash("sha256").update(userData, "utf8").digest("hex").slice(0, 12);
    return `rhl-${name}-${digest}`;
}

export function renderMetaData(name: string, userData: string, extra: MetaData = {}): string {
    return stringify({ "instance-id": instanceIdFor(name, userData), "local-hostname": name, ...extra });
}

/**
 * Network config v2: the node's static lab address and its region router as
 * the default gateway. No nameservers: there is no DNS in the lab, and a
 * node must not try to reach one outside it. (No "accept-ra: false" either:
 * cloud-init 22.4 renders it for systemd-networkd only on DHCPv6 links, so
 * the image turns router advertisements off instead.)
 */
export function renderNetworkConfig(net: SeedNetwork): string {
    return stringify({
        version: 2,
        ethernets: {
            [net.ifname]: {
                dhcp4: false,
                dhcp6: false,
                addresses: [`${net.address}/${net.prefixLen}`],
                routes: [{ to: "0.0.0.0/0", via: net.gateway }],
            },
        },
    });
}
