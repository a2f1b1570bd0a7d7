import type { MonitoringPlan } from "./monitoring";
import type { SecurityUpgradesPlan } from "./hosts";
import type { AddressingMode, FailoverDrillMode, NodeRole, TlsAuthClients } from "./schema";

/** Where a node starts out. Sentinel moves the master later; this is only the bootstrap state. */
export type InitialRole = "master" | "replica" | "sentinel-only";

/** Why a region exists: the primary holds the preferred master, a secondary holds replicas, a witness only votes. */
export type RegionKind = "primary" | "secondary" | "witness";

export interface NodePlan {
    readonly name: string;
    readonly region: string;
    /** Linode plan id. */
    readonly type: string;
    readonly memoryMb: number;
    /** Linode label: `<cluster>-<name>`. */
    readonly label: string;
    readonly roles: readonly NodeRole[];
    readonly runsRedis: boolean;
    readonly runsSentinel: boolean;
    readonly initialRole: InitialRole;
    /** May Sentinel promote this node? Always false for a Sentinel-only node. */
    readonly promotable: boolean;
    /** `replica-priority` (0 = never promote); undefined on Sentinel-only nodes. */
    readonly replicaPriority?: number;
    /** `maxmemory` in bytes; undefined on Sentinel-only nodes. */
    readonly maxmemoryBytes?: number;
    /** Linode tags: the cluster, region and roles, then the stack's extra `tags`. */
    readonly tags: readonly string[];
    /** Position in one-node-at-a-time rollouts: replicas and Sentinel-only nodes first, the preferred master last. */
    readonly rolloutOrder: number;
}

export interface RegionPlan {
    readonly name: string;
    readonly kind: RegionKind;
    readonly nodes: readonly string[];
    readonly sentinels: number;
    readonly redisNodes: number;
}

export interface SentinelPlan {
    readonly count: number;
    /** Sentinels that must agree the master is down (`sentinel monitor ... <quorum>`). */
    readonly quorum: number;
    /** Sentinels needed to authorise a failover: floor(count / 2) + 1. */
    readonly majority: number;
    readonly downAfterMs: number;
    readonly failoverTimeoutMs: number;
    readonly parallelSyncs: number;
}

export interface RedisPlan {
    readonly appendonly: boolean;
    readonly appendfsync: "always" | "everysec" | "no";
    readonly save: readonly string[];
    readonly maxmemoryPolicy: string;
    readonly minReplicasToWrite: number;
    readonly minReplicasMaxLagSec: number;
}

/**
 * Disaster recovery: how many replicas make a write region-safe, how fast a master cut off from the Sentinel majority
 * stops acknowledging writes, and when mastership returns to the primary region (docs/dr.md).
 */
export interface DrPlan {
    /**
     * Replicas a write must reach so that at least one copy lives outside the master's region, wherever the master
     * is: the largest number of Redis nodes in any one region (the master's own region holds at most that many minus
     * one replicas). Capped at the stack's replica count: with one data region there is no outside, and the count is
     * every replica.
     */
    readonly regionSafeReplicas: number;
    /** The node-local fence (redis-fence): how often it asks every Sentinel, and how long it waits for each, ms. */
    readonly fenceIntervalMs: number;
    readonly fenceTimeoutMs: number;
    /**
     * The fence's worst case from the cut to a refusing master: one interval, one timeout (the Sentinels are asked in
     * parallel) and the CONFIG SET. The majority side cannot promote before down-after (validated to be at least twice
     * this).
     */
    readonly fenceReactionMs: number;
    /** `min-replicas-to-write` of a fenced master: more replicas than any stack has, so every write gets NOREPLICAS. */
    readonly fencedMinReplicas: number;
    /**
     * Seconds a caught-up preferred master must stay a healthy replica of a master outside the primary region before
     * mastership returns to it (redis-homing); 0 = fail-back only by hand (failover-drill failback-only).
     */
    readonly failbackHoldDownSec: number;
}

/** Off-site backups: where they go, when, for how long, and which nodes take them (topology/backup.ts). */
export interface BackupPlan {
    readonly enabled: boolean;
    /** systemd calendar event of the backup timer. */
    readonly schedule: string;
    /** Days a backup (and a superseded version of it) is kept by the bucket's lifecycle rule. */
    readonly retentionDays: number;
    /**
     * `backup.compress`: the backup's snapshot is LZF-compressed (Redis's `rdbcompression`, set for that BGSAVE only).
     * Off by default: LZF doubled the fork's time for 0.7 % fewer bytes of incompressible values (docs/backups.md).
     */
    readonly compress: boolean;
    /** Object Storage region of the bucket: `backup.region`, else the DR region. */
    readonly region: string;
    /** Every object key starts with `<prefix>/` (the cluster name). */
    readonly prefix: string;
    /**
     * Nodes that carry the job and the bucket credentials, in order (none when disabled): the first runs it while it
     * is a replica; the second only when the first is master or unreachable at that moment.
     */
    readonly nodes: readonly string[];
    /** The only Redis node is the master, so it backs itself up; otherwise a master never does. */
    readonly allowMaster: boolean;
    /**
     * `backup.seedFrom`: the backup a new cluster's first master (the preferred master) loads before it takes writes,
     * read from Object Storage in `region`; undefined: the cluster starts empty.
     */
    readonly seed?: { readonly bucket: string; readonly key: string };
}

/** TLS on every link and ACL users instead of shared passwords (docs/security.md). */
export interface SecurityPlan {
    /** Redis and Sentinel serve TLS only (`port 0`), replication and Sentinel links included, with ACL users. */
    readonly tls: boolean;
    readonly tlsAuthClients: TlsAuthClients;
    /** Validity of a node certificate; it is renewed 30 days before it ends (one `pulumi up`). */
    readonly certValidityDays: number;
    /** The `app` user's key patterns (`~<pattern>`) and command rules (`+@all`, `-@admin`, `+get`). */
    readonly app: { readonly keyPatterns: readonly string[]; readonly commands: readonly string[] };
    /**
     * The password generation clients and nodes use. Every node also accepts the generations before and after it, so
     * raising it by one rotates every password without a moment in which a node refuses another's password.
     */
    readonly generation: number;
}

/** The whole deployment as plain, validated data. Everything else (resources, user-data, lab, checks) reads this. */
export interface Topology {
    readonly project: string;
    readonly stack: string;
    readonly cluster: string;
    readonly masterName: string;
    readonly primaryRegion: string;
    /** The Redis node that starts as master and that fail-back returns the master to. */
    readonly preferredMaster: string;
    readonly image: string;
    readonly ports: { readonly redis: number; readonly sentinel: number };
    readonly nodes: readonly NodePlan[];
    readonly regions: readonly RegionPlan[];
    readonly sentinel: SentinelPlan;
    readonly redis: RedisPlan;
    readonly access: {
        readonly authorizedKeys: readonly string[];
        readonly adminCidrs: readonly string[];
        readonly clientCidrs: readonly string[];
    };
    readonly failoverDrill: FailoverDrillMode;
    /**
     * `reserved`: every address exists before the Linodes and user-data carries the whole cluster. `ephemeral`: the
     * Linodes' own addresses; user-data carries no address and a bootstrap step hands each node its peers.
     */
    readonly addressing: AddressingMode;
    /** The Linode Backup service on Redis nodes (disk snapshots, not a consistent dataset). */
    readonly backups: boolean;
    readonly backup: BackupPlan;
    readonly tags: readonly string[];
    /**
     * How long a crashed master's start guard waits for Sentinel to elect a successor before it gives up and starts
     * with its own data: down-after + 2 x failover-timeout (Sentinel retries a failed election after that) + 10 s.
     */
    readonly startGuardWaitSec: number;
    readonly dr: DrPlan;
    /** Exporters, who may scrape them, alert thresholds and the optional monitoring node (topology/monitoring.ts). */
    readonly monitoring: MonitoringPlan;
    readonly security: SecurityPlan;
    /** Unattended security upgrades and each node's slot (topology/hosts.ts). */
    readonly securityUpgrades: SecurityUpgradesPlan;
}
