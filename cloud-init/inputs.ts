import type { NodePlan, Topology } from "../topology";

/** Where backups go, and the key limited to that bucket (components/backup.ts). */
export interface BackupTarget {
    readonly bucket: string;
    /** Linode's S3 endpoint host (`us-ord-1.linodeobjects.com`); `http://host:port` for a plain-HTTP lab server. */
    readonly endpoint: string;
    readonly accessKey: string;
    readonly secretKey: string;
}

/** Credentials baked into a node's configuration. Always handled as Pulumi secrets by the program. */
export interface NodeSecrets {
    /** `requirepass`/`masterauth` of every Redis node, `auth-pass` of every Sentinel. */
    readonly redisPassword: string;
    /** `requirepass` of every Sentinel, and `sentinel-pass` between Sentinels. */
    readonly sentinelPassword: string;
    /** The backup bucket and its key: rendered only into the backup nodes' files. Absent when backups are off. */
    readonly backup?: BackupTarget;
    /**
     * `backup.seedFrom`: the seed's bucket (`topology.backup.seed`), its endpoint and a read-only key for it: rendered
     * only into the first master's files. Absent when the cluster starts empty.
     */
    readonly seed?: BackupTarget;
}

/** Everything a node's user-data depends on. Same input, byte-identical output. */
export interface RenderInput {
    readonly topology: Topology;
    /** The node to render. */
    readonly node: string;
    /**
     * Every node's reachable IPv4 address (a reserved public IPv4 on Linode, a lab address in the lab), by node name.
     * All Redis and Sentinel traffic, cross-region included, uses these.
     */
    readonly addresses: Readonly<Record<string, string>>;
    readonly secrets: NodeSecrets;
}

export function nodeOf(input: RenderInput): NodePlan {
    const node = input.topology.nodes.find((n) => n.name === input.node);
    if (!node) throw new Error(`unknown node ${input.node}`);
    return node;
}

export function addressOf(input: RenderInput, name: string): string {
    const address = input.addresses[name];
    if (!address) throw new Error(`no address for node ${name}`);
    return address;
}
