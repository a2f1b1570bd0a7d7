import { z } from "zod";
import { formatCidr, isCidr, parseCidr } from "./cidr";
import { isCalendarEvent } from "./calendar";
import type { ConfigProblem } from "./errors";

/**
 * The stack configuration, as a schema. Every key here is documented in `Pulumi.yaml` and the README's reference;
 * unknown keys are rejected so that a typo never silently falls back to a default.
 */

export const NODE_ROLES = ["redis", "sentinel"] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

export const MAXMEMORY_POLICIES = [
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
] as const;

/** `tls-auth-clients`: yes = every client presents a certificate of the cluster's CA; optional = may present one. */
export const TLS_AUTH_CLIENTS = ["yes", "optional", "no"] as const;
export type TlsAuthClients = (typeof TLS_AUTH_CLIENTS)[number];

export const FAILOVER_DRILL_MODES = ["onCreate", "always", "never"] as const;
export type FailoverDrillMode = (typeof FAILOVER_DRILL_MODES)[number];

/**
 * How nodes get their public IPv4. `reserved`: a reserved IPv4 per node, created before the Linodes so user-data names
 * every peer and a replaced node keeps its address (billed, and "not currently available to all users" per the
 * Linode provider). `ephemeral`: each Linode's own address; a bootstrap step over SSH hands every node its peers'
 * addresses once all Linodes exist (components/bootstrap.ts).
 */
export const ADDRESSING_MODES = ["reserved", "ephemeral"] as const;
export type AddressingMode = (typeof ADDRESSING_MODES)[number];

/** Linode region ids: `us-east`, `eu-central`, `de-fra-2`. */
export const REGION_PATTERN = /^[a-z]{2}-[a-z]+(-[0-9]+)?$/;
const REGION_ERROR = "must be a Linode region id such as us-east or eu-central";

/**
 * A list of CIDRs as Linode firewall rules take them, each normalised to its network address. What they may open
 * (never the whole internet) is `validateCidrs`' job: a refusal there still lets `review` run the policy pack.
 */
const cidrList = (example: string) =>
    z
        .array(
            z
                .string({ error: `must be a CIDR such as ${example}` })
                .refine(isCidr, { error: `must be a CIDR such as ${example}` })
                .transform((c) => formatCidr(parseCidr(c))),
            { error: `must be a list of CIDRs such as ["${example}"]` },
        )
        .default([]);

const SSH_PUBLIC_KEY =
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( \S.*)?$/;

/** Pulumi.yaml declares "" as the default of keys whose real default is computed (a name, a generated secret). */
const emptyIsUnset = (v: unknown) => (v === "" ? undefined : v);

const int = (what: string, min: number, max: number) =>
    z
        .number({ error: `must be a number (${what})` })
        .int({ error: `must be a whole number (${what})` })
        .min(min, { error: `must be at least ${min} (${what})` })
        .max(max, { error: `must be at most ${max} (${what})` });

const port = (dflt: number) => int("a TCP port", 1024, 65535).default(dflt);

export const NodeConfigSchema = z.strictObject({
    name: z.string({ error: "must be a string" }).regex(/^[a-z][a-z0-9-]{0,22}[a-z0-9]$/, {
        error: "must be 2-24 characters of lowercase letters, digits and dashes, starting with a letter",
    }),
    region: z.string({ error: REGION_ERROR }).regex(REGION_PATTERN, { error: REGION_ERROR }),
    type: z
        .string({ error: "must be a Linode plan id such as g6-standard-2" })
        .regex(/^g\d-[a-z0-9-]+$/, {
            error: "must be a Linode plan id such as g6-standard-2",
        })
        .optional(),
    roles: z
        .array(z.enum(NODE_ROLES, { error: `must be one of ${NODE_ROLES.join(", ")}` }), {
            error: "must be a list such as [redis, sentinel]",
        })
        .min(1, { error: "must name at least one of redis, sentinel" })
        .refine((r) => new Set(r).size === r.length, { error: "must not repeat a role" }),
    promotable: z.boolean({ error: "must be true or false" }).optional(),
    memoryMb: int("MiB of RAM of a plan this kit does not know", 512, 1048576).optional(),
});
export type NodeConfig = z.infer<typeof NodeConfigSchema>;

/**
 * Off-site backups to Linode Object Storage (`backup.<key>` in stack config; topology/backup.ts plans them). Declared
 * in Pulumi.yaml as flat keys `backup.enabled`, ...; `parseStackConfig` folds a dotted key into its group.
 */
/** `backup.seedFrom`: one backup, as `redis-restore --list` prints it with its bucket: s3://<bucket>/<key>.rdb. */
export const SEED_PATTERN = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[A-Za-z0-9._/-]+\.rdb$/;
const SEED_ERROR =
    'must name one backup as s3://<bucket>/<cluster>/<node>/<time>.rdb (redis-restore --list prints the keys), or "" for an empty new cluster';

const BackupObjectSchema = z.strictObject({
    enabled: z.boolean({ error: "must be true or false" }).default(false),
    schedule: z
        .string({ error: "must be a systemd calendar event such as daily or *-*-* 03:30:00" })
        .refine(isCalendarEvent, {
            error: 'must be a systemd calendar event such as "daily" or "*-*-* 03:30:00" (see systemd.time(7); check it with systemd-analyze calendar)',
        })
        .default("*-*-* 03:30:00"),
    retentionDays: int("days a backup is kept, 1-3650", 1, 3650).default(14),
    compress: z.boolean({ error: "must be true or false" }).default(false),
    // "" (Pulumi.yaml's default) means the DR region: topology/backup.ts.
    region: z.preprocess(
        emptyIsUnset,
        z.string({ error: REGION_ERROR }).regex(REGION_PATTERN, { error: REGION_ERROR }).optional(),
    ),
    // "" (Pulumi.yaml's default): a new cluster starts empty. Otherwise the backup its first master loads before it
    // takes writes (cloud-init/seed.ts); the bucket is read with a read-only key of its own (components/backup.ts).
    seedFrom: z.preprocess(
        emptyIsUnset,
        z.string({ error: SEED_ERROR }).regex(SEED_PATTERN, { error: SEED_ERROR }).optional(),
    ),
});
export const BackupConfigSchema = BackupObjectSchema.default({
    enabled: false,
    schedule: "*-*-* 03:30:00",
    retentionDays: 14,
    compress: false,
});
export type BackupConfig = z.output<typeof BackupConfigSchema>;

/**
 * Unattended security upgrades on every node (`securityUpgrades.<key>`; topology/hosts.ts plans the slots, docs/security.md
 * "Hosts"). Live: the settings rollout delivers the apt configuration and the timer's slot to running nodes.
 */
const SecurityUpgradesObjectSchema = z.strictObject({
    enabled: z.boolean({ error: "must be true or false" }).default(true),
    startHourUtc: int("the UTC hour of the first node's upgrade slot, 0-23", 0, 23).default(3),
});
export const SecurityUpgradesConfigSchema = SecurityUpgradesObjectSchema.default({ enabled: true, startHourUtc: 3 });
export type SecurityUpgradesConfig = z.output<typeof SecurityUpgradesConfigSchema>;

/** Groups of keys that Pulumi.yaml declares flat as `<group>.<key>` (the CLI's typed config has no objects). */
export const KEY_GROUPS: Readonly<Record<string, readonly string[]>> = {
    backup: Object.keys(BackupObjectSchema.shape),
    securityUpgrades: Object.keys(SecurityUpgradesObjectSchema.shape),
};

export const StackConfigSchema = z.strictObject({
    clusterName: z.preprocess(
        emptyIsUnset,
        z
            .string()
            .regex(/^[a-z][a-z0-9-]{1,18}[a-z0-9]$/, {
                error: "must be 3-20 characters of lowercase letters, digits and dashes, starting with a letter",
            })
            .optional(),
    ),
    masterName: z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: "must be 1-64 letters, digits, dots, dashes or underscores" })
        .default("mymaster"),
    primaryRegion: z
        .string({ error: "is required: the region whose Redis node starts as master (for example us-east)" })
        .regex(REGION_PATTERN, { error: REGION_ERROR }),
    nodes: z
        .array(NodeConfigSchema, {
            error: (iss) =>
                iss.input === undefined
                    ? "is required: a list of nodes with name, region, roles"
                    : "must be a list of nodes with name, region, roles",
        })
        .min(1, { error: "must list at least one node" }),
    nodeType: z
        .string()
        .regex(/^g\d-[a-z0-9-]+$/, { error: "must be a Linode plan id such as g6-standard-2" })
        .default("g6-standard-2"),
    image: z
        .string()
        .regex(/^(linode|private)\/[A-Za-z0-9._-]+$/, { error: "must be an image id such as linode/debian12" })
        .default("linode/debian12"),
    redisPort: port(6379),
    sentinelPort: port(26379),
    // 0 (Pulumi.yaml's default) means "the majority of the Sentinels".
    quorum: int("Sentinels that must agree the master is down; 0 for the majority", 0, 99).default(0),
    downAfterMs: int("milliseconds, 1000-60000", 1000, 60000).default(5000),
    failoverTimeoutMs: int("milliseconds, 3000-900000", 3000, 900000).default(10000),
    // 0 (Pulumi.yaml's default) means "every replica at once" (see planSentinel).
    parallelSyncs: int("replicas reconfigured at once after a failover; 0 for all of them", 0, 16).default(0),
    appendonly: z.boolean({ error: "must be true or false" }).default(true),
    appendfsync: z.enum(["always", "everysec", "no"], { error: "must be always, everysec or no" }).default("everysec"),
    save: z
        .array(z.string().regex(/^[1-9]\d* [1-9]\d*$/, { error: 'must be "<seconds> <changes>", e.g. "900 1"' }), {
            error: 'must be a list such as ["900 1", "300 10"] ([] turns RDB snapshots off)',
        })
        .default(["900 1", "300 10", "60 10000"]),
    maxmemoryPolicy: z
        .enum(MAXMEMORY_POLICIES, { error: `must be one of ${MAXMEMORY_POLICIES.join(", ")}` })
        .default("noeviction"),
    minReplicasToWrite: int("replicas a master needs to accept writes, 0-16", 0, 16).default(1),
    minReplicasMaxLagSec: int("seconds, 1-120", 1, 120).default(10),
    authorizedKeys: z
        .array(
            z
                .string()
                .regex(SSH_PUBLIC_KEY, { error: "must be an OpenSSH public key line (ssh-ed25519 AAAA... comment)" }),
        )
        .default([]),
    adminCidrs: cidrList("203.0.113.7/32"),
    clientCidrs: cidrList("203.0.113.0/24"),
    allowWideCidrs: z.boolean({ error: "must be true or false" }).default(false),
    redisPassword: z.preprocess(
        emptyIsUnset,
        z
            .string()
            .min(16, { error: "must be at least 16 characters" })
            .regex(/^[A-Za-z0-9._~+=-]+$/, {
                error: "may only use letters, digits and ._~+=- (it is written into redis.conf and sentinel.conf)",
            })
            .optional(),
    ),
    sentinelPassword: z.preprocess(
        emptyIsUnset,
        z
            .string()
            .min(16, { error: "must be at least 16 characters" })
            .regex(/^[A-Za-z0-9._~+=-]+$/, {
                error: "may only use letters, digits and ._~+=- (it is written into sentinel.conf)",
            })
            .optional(),
    ),
    checksPrivateKey: z.preprocess(
        emptyIsUnset,
        z.string().includes("PRIVATE KEY", { error: "must be an OpenSSH or PEM private key" }).optional(),
    ),
    failoverDrill: z
        .enum(FAILOVER_DRILL_MODES, { error: `must be one of ${FAILOVER_DRILL_MODES.join(", ")}` })
        .default("onCreate"),
    addressing: z
        .enum(ADDRESSING_MODES, {
            error: `must be reserved (a reserved IPv4 per node) or ephemeral (no IP reservation needed; peers handed over by a bootstrap step)`,
        })
        .default("reserved"),
    backups: z.boolean({ error: "must be true or false" }).default(false),
    // Disaster recovery (docs/dr.md): 0 turns the automatic return of mastership to the primary region off.
    failbackHoldDownSec: int(
        "seconds a caught-up primary region waits before mastership returns; 0 = off",
        0,
        3600,
    ).default(30),
    backup: BackupConfigSchema,
    tags: z
        .array(z.string().regex(/^[A-Za-z0-9:._-]{3,50}$/, { error: "must be 3-50 letters, digits or :._-" }))
        .default([]),
    // Monitoring (docs/monitoring.md). Flat keys: Pulumi's typed config has no object type and marks secrets per key.
    monitoringCidrs: cidrList("198.51.100.10/32"),
    monitoringEnabled: z.boolean({ error: "must be true or false" }).default(false),
    monitoringRegion: z.preprocess(
        emptyIsUnset,
        z.string({ error: REGION_ERROR }).regex(REGION_PATTERN, { error: REGION_ERROR }).optional(),
    ),
    monitoringPlan: z
        .string()
        .regex(/^g\d-[a-z0-9-]+$/, { error: "must be a Linode plan id such as g6-standard-1" })
        .default("g6-standard-1"),
    monitoringScrapeIntervalSec: int("seconds between scrapes, 5-300", 5, 300).default(15),
    monitoringMemoryPercent: int("percent of maxmemory that raises the memory alert, 50-99", 50, 99).default(90),
    // 0: twice the longest gap between two runs of backup.schedule (topology/monitoring.ts).
    monitoringBackupMaxAgeHours: int(
        "hours after the last good backup that raise the backup alert, 1-720, or 0 for twice the backup schedule",
        0,
        720,
    ).default(0),
    monitoringWebhookUrl: z.preprocess(
        emptyIsUnset,
        z
            .url({ protocol: /^https?$/, error: "must be an http(s) URL such as https://hooks.example.com/alerts" })
            .optional(),
    ),
    monitoringEmailTo: z.preprocess(
        emptyIsUnset,
        z.email({ error: "must be an email address such as oncall@example.com" }).optional(),
    ),
    monitoringEmailFrom: z.preprocess(
        emptyIsUnset,
        z.email({ error: "must be an email address such as alertmanager@example.com" }).optional(),
    ),
    monitoringSmtpSmarthost: z.preprocess(
        emptyIsUnset,
        z
            .string()
            .regex(/^[A-Za-z0-9.-]+:[0-9]{1,5}$/, { error: "must be host:port such as smtp.example.com:587" })
            .optional(),
    ),
    monitoringSmtpPassword: z.preprocess(
        emptyIsUnset,
        z
            .string()
            .regex(/^[^\n]+$/, { error: "must be one line" })
            .optional(),
    ),
    // Encryption and ACL users (docs/security.md).
    tls: z.boolean({ error: "must be true or false" }).default(true),
    tlsAuthClients: z
        .enum(TLS_AUTH_CLIENTS, { error: `must be one of ${TLS_AUTH_CLIENTS.join(", ")}` })
        .default("optional"),
    tlsCertValidityDays: int("days a node certificate is valid, 30-825", 30, 825).default(365),
    appKeyPatterns: z
        .array(z.string().regex(/^[!-~]+$/, { error: "must be a Redis key pattern without spaces, such as app:*" }), {
            error: 'must be a list of key patterns such as ["app:*"]',
        })
        .min(1, { error: 'must list at least one key pattern, such as ["*"]' })
        .default(["*"]),
    appCommands: z
        .array(
            z.string().regex(/^[+-](@[a-z]+|[a-z]+(\|[a-z-]+)?)$/, {
                error: "must be an ACL command rule such as +@all, -@admin or +get",
            }),
            { error: 'must be a list of ACL command rules such as ["+@all"]' },
        )
        .default(["+@all"]),
    securityUpgrades: SecurityUpgradesConfigSchema,
    credentialsGeneration: int("the password generation; raise it by one to rotate every password", 1, 1000000).default(
        1,
    ),
});

/** The Pulumi config namespace of this project (the `name` in Pulumi.yaml). */
export const CONFIG_NAMESPACE = "redis-ha";

export type StackConfigInput = z.input<typeof StackConfigSchema>;
export type StackConfig = z.output<typeof StackConfigSchema>;

/** Config keys whose values are strings even when they look like JSON numbers. */
export const STRING_KEYS: ReadonlySet<string> = new Set([
    "clusterName",
    "masterName",
    "primaryRegion",
    "nodeType",
    "image",
    "appendfsync",
    "maxmemoryPolicy",
    "redisPassword",
    "sentinelPassword",
    "checksPrivateKey",
    "failoverDrill",
    "addressing",
    "monitoringRegion",
    "monitoringPlan",
    "monitoringWebhookUrl",
    "monitoringEmailTo",
    "monitoringEmailFrom",
    "monitoringSmtpSmarthost",
    "monitoringSmtpPassword",
    "tlsAuthClients",
    "backup.schedule",
    "backup.region",
    "backup.seedFrom",
]);

export const SECRET_KEY_NAMES = [
    "redisPassword",
    "sentinelPassword",
    "checksPrivateKey",
    // A webhook URL usually carries its token; the SMTP password is a credential.
    "monitoringWebhookUrl",
    "monitoringSmtpPassword",
] as const;
export type SecretKey = (typeof SECRET_KEY_NAMES)[number];

/** Keys that carry credentials: `secret: true` in Pulumi.yaml, read as Pulumi secrets, never printed. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(SECRET_KEY_NAMES);

/**
 * Did the stack give this secret? The CLI passes Pulumi.yaml's declared default (`""`) for every key the stack does
 * not set, so `config.getSecret()` returns a secret `""` then: an empty value means "absent" (generate one).
 */
export function secretGiven(raw: Readonly<Record<string, unknown>>, key: SecretKey): boolean {
    const value = raw[`${CONFIG_NAMESPACE}:${key}`];
    return value !== undefined && value !== "";
}

/**
 * Problems of a stack file's raw `config:` block that the CLI refuses but the flat string map Pulumi hands the program
 * would hide, so that review and the lab refuse them too:
 * - a string key written as a YAML number or boolean (`12345678901234567890` reads as 12345678901234567000); the CLI
 *   refuses it for a key Pulumi.yaml declares `type: string`;
 * - a plaintext value for a key Pulumi.yaml declares `secret: true` ("must be encrypted as it's secret").
 */
export function stackFileProblems(config: Readonly<Record<string, unknown>>): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const prefix = `${CONFIG_NAMESPACE}:`;
    for (const [fullKey, value] of Object.entries(config)) {
        if (!fullKey.startsWith(prefix)) continue;
        const key = fullKey.slice(prefix.length);
        const secure = typeof value === "object" && value !== null && "secure" in value;
        if (STRING_KEYS.has(key) && typeof value !== "string" && !secure)
            problems.push({
                key: fullKey,
                message:
                    "must be a string; quote it (YAML reads an unquoted number or true/false as another type and may change it)",
            });
        else if (SECRET_KEYS.has(key) && !secure)
            problems.push({
                key: fullKey,
                message: `is a secret written in plaintext; remove it and run: pulumi config set --secret ${key}`,
            });
    }
    return problems;
}
