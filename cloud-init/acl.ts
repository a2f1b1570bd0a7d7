import { createHash } from "node:crypto";
import type { Topology } from "../topology";

/**
 * The ACL users of a cluster with `tls: true` (docs/security.md). Each has its own generated password; the `default`
 * user is off, so a connection that does not authenticate can run nothing.
 */
export const ACL_USERS = ["admin", "replication", "sentinel", "exporter", "app"] as const;
export type AclUser = (typeof ACL_USERS)[number];

/**
 * A user's passwords: `current` is what clients and nodes send; every password in `accepted` (current included) is
 * accepted, so that during a rotation a node that already sends the next password and a node that still sends the
 * previous one both get in (cloud-init/acl.ts `acceptedGenerations`).
 */
export interface UserPasswords {
    readonly current: string;
    readonly accepted: readonly string[];
}
export type AclPasswords = Readonly<Record<AclUser, UserPasswords>>;

/** Commands the `app` user never gets, whatever `appCommands` says (issue 13; docs/security.md). */
export const APP_DENIED = ["flushall", "flushdb", "config", "debug", "keys", "shutdown", "module", "acl"] as const;

/**
 * The password generations a node accepts while `current` is in use: the one before and the one after it too. A
 * rotation raises the generation by one and rolls out one node at a time: an updated node sends generation g+1, which
 * every node not yet updated already accepts; a node not yet updated sends g, which the updated ones still accept.
 */
export function acceptedGenerations(current: number): number[] {
    return [current - 1, current, current + 1].filter((g) => g >= 1);
}

/** The generations the program generates passwords for. */
export const passwordGenerations = acceptedGenerations;

/** `#<sha256>`: how ACL rules name a password without holding it (Redis compares the hash). */
export function passwordHashRule(password: string): string {
    return `#${createHash("sha256").update(password).digest("hex")}`;
}

/** Command rules of each user on a Redis node. */
export function redisUserRules(t: Topology): Readonly<Record<AclUser, readonly string[]>> {
    return {
        admin: ["~*", "&*", "+@all"],
        // What a replica sends to its master (https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/).
        replication: ["+psync", "+replconf", "+ping"],
        // Redis's Sentinel documentation's list: what a Sentinel sends to the Redis nodes it monitors.
        sentinel: [
            "&*",
            "+multi",
            "+slaveof",
            "+ping",
            "+exec",
            "+subscribe",
            "+config|rewrite",
            "+role",
            "+publish",
            "+info",
            "+client|setname",
            "+client|kill",
            "+script|kill",
        ],
        // What prometheus-redis-exporter reads: INFO, CONFIG GET, SLOWLOG, LATENCY and the like; no key is readable.
        exporter: [
            "+auth",
            "+hello",
            "+ping",
            "+select",
            "+client|setname",
            "+info",
            "+config|get",
            "+slowlog",
            "+latency",
            "+client|list",
            "+dbsize",
            "+cluster|info",
            "+memory|stats",
        ],
        // The application: its key patterns and command categories from config, never the commands that wipe data,
        // reconfigure or stall a node; INFO and ROLE stay allowed (the client's ready check and role check).
        app: [
            ...t.security.app.keyPatterns.map((p) => `~${p}`),
            "&*",
            ...t.security.app.commands,
            ...APP_DENIED.map((c) => `-${c}`),
            "+info",
            "+role",
        ],
    };
}

/** Command rules of each user on a Sentinel. Sentinel has no keys: only commands and channels matter. */
export function sentinelUserRules(): Readonly<Record<Exclude<AclUser, "replication">, readonly string[]>> {
    return {
        admin: ["~*", "&*", "+@all"],
        // Sentinel to Sentinel (`sentinel sentinel-user`): PING, hello messages, the leader vote.
        sentinel: ["&*", "+@all"],
        exporter: [
            "-@all",
            "+auth",
            "+hello",
            "+ping",
            "+info",
            "+client|setname",
            "+sentinel|masters",
            "+sentinel|master",
            "+sentinel|ckquorum",
            "+sentinel|sentinels",
            "+sentinel|slaves",
            "+sentinel|replicas",
        ],
        // The clients' discovery: Redis's documented client profile plus what ioredis and our client use
        // (`sentinel|slaves` for role: slave, the +switch-master/+try-failover subscriptions, INFO for the health view).
        app: [
            "-@all",
            "&*",
            "+auth",
            "+client|getname",
            "+client|id",
            "+client|setname",
            "+command",
            "+hello",
            "+ping",
            "+role",
            "+info",
            "+sentinel|get-master-addr-by-name",
            "+sentinel|master",
            "+sentinel|masters",
            "+sentinel|myid",
            "+sentinel|replicas",
            "+sentinel|slaves",
            "+sentinel|sentinels",
            "+sentinel|ckquorum",
            "+subscribe",
            "+psubscribe",
            "+unsubscribe",
            "+punsubscribe",
        ],
    };
}

/** Every password a user is accepted with, as ACL hash rules (`#<sha256>`), in generation order. */
export function acceptedHashRules(passwords: AclPasswords, user: AclUser): string[] {
    return [...new Set(passwords[user].accepted)].map(passwordHashRule);
}

/** `user <name> on #<hash>... <rules>` lines; passwords only as hashes. */
export function aclUserLines(
    rules: Readonly<Partial<Record<AclUser, readonly string[]>>>,
    passwords: AclPasswords,
): [string, ...string[]][] {
    const lines: [string, ...string[]][] = [
        ["user", "default", "off", "resetpass", "resetkeys", "resetchannels", "-@all"],
    ];
    for (const user of ACL_USERS) {
        const r = rules[user];
        if (!r) continue;
        lines.push([
            "user",
            user,
            "on",
            "resetpass",
            ...acceptedHashRules(passwords, user),
            "resetkeys",
            "resetchannels",
            "-@all",
            ...r,
        ]);
    }
    return lines;
}

/**
 * /etc/redis/users.acl of a Redis node (`aclfile`). Users live here and not in redis.conf, so Sentinel's CONFIG
 * REWRITE on failover never rewrites them, and a rotation changes this file alone (`ACL LOAD` would drop every
 * connection in 7.0: apply-settings uses `ACL SETUSER` + `ACL SAVE`).
 */
export function renderAclFile(t: Topology, passwords: AclPasswords): string {
    return `${aclUserLines(redisUserRules(t), passwords)
        .map((l) => l.join(" "))
        .join("\n")}\n`;
}
