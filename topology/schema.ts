import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";

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

export const FAILOVER_DRILL_MODES = ["onCreate", "always", "never"] as const;
export type FailoverDrillMode = (typeof FAILOVER_DRILL_MODES)[number];

/** `a.b.c.d/n` or `x::y/n`, as Linode firewall rules take them. */
export function isCidr(value: string): boolean {
    const [addr, prefix, ...rest] = value.split("/");
    if (rest.length > 0 || prefix === undefined || !/^\d{1,3}$/.test(prefix)) return false;
    const bits = Number(prefix);
    if (isIPv4(addr)) return bits <= 32;
    if (isIPv6(addr)) return bits <= 128;
    return false;
}

export function isOpenToWorld(cidr: string): boolean {
    return cidr.endsWith("/0");
}

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
    region: z.string({ error: "must be a Linode region id such as us-east" }).regex(/^[a-z]{2}-[a-z]+(-[0-9]+)?$/, {
        error: "must be a Linode region id such as us-east or eu-central",
    }),
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
    primaryRegion: z.string({
        error: "is required: the region whose Redis node starts as master (for example us-east)",
    }),
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
    parallelSyncs: int("replicas resyncing at once, 1-16", 1, 16).default(1),
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
    adminCidrs: z.array(z.string().refine(isCidr, { error: "must be a CIDR such as 203.0.113.7/32" })).default([]),
    clientCidrs: z
        .array(
            z
                .string()
                .refine(isCidr, { error: "must be a CIDR such as 203.0.113.0/24" })
                .refine((c) => !isOpenToWorld(c), {
                    error: "must not open Redis and Sentinel to the whole internet; list your application subnets",
                }),
        )
        .default([]),
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
    backups: z.boolean({ error: "must be true or false" }).default(false),
    tags: z
        .array(z.string().regex(/^[A-Za-z0-9:._-]{3,50}$/, { error: "must be 3-50 letters, digits or :._-" }))
        .default([]),
});

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
]);

/** Keys that carry credentials: read as Pulumi secrets, never printed. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(["redisPassword", "sentinelPassword", "checksPrivateKey"]);
