import type { NodePlan, Topology } from "../topology";
import type { RenderInput } from "./inputs";
import { addressOf, nodeOf, securityOf } from "./inputs";
import { renderConfig, type Directive, type Section } from "./confSyntax";
import { PATHS } from "./paths";

/**
 * TLS directives shared by redis.conf and sentinel.conf: TLS only (`port 0`), the node's certificate for serving and,
 * as Redis uses `tls-cert-file` as its client certificate too, for replication and Sentinel links (`tls-replication`).
 */
export function tlsDirectives(t: Topology, port: number): Directive[] {
    return [
        ["port", 0],
        ["tls-port", port],
        ["tls-cert-file", PATHS.tlsCert],
        ["tls-key-file", PATHS.tlsKey],
        ["tls-ca-cert-file", PATHS.tlsCa],
        ["tls-auth-clients", t.security.tlsAuthClients],
        ["tls-replication", "yes"],
        ["tls-protocols", "TLSv1.2 TLSv1.3"],
    ];
}

function authSection(input: RenderInput): Section {
    const { topology: t } = input;
    if (!t.security.tls)
        return {
            comment:
                "Authentication. The same password on every Redis node, so any node can replicate from a promoted one.",
            directives: [
                ["requirepass", input.secrets.redisPassword],
                ["masterauth", input.secrets.redisPassword],
            ],
        };
    const { acl } = securityOf(input);
    return {
        comment:
            "Authentication: ACL users in their own file (Sentinel's CONFIG REWRITE leaves it alone); replicas log in as\nthe replication user.",
        directives: [
            ["aclfile", PATHS.aclFile],
            ["masteruser", "replication"],
            ["masterauth", acl.replication.current],
        ],
    };
}

/**
 * The Redis settings that can change on a running node (CONFIG SET) and that a stack config change rolls out one node
 * at a time, without a restart. Everything else in redis.conf is fixed when the node is created.
 */
export function liveRedisSettings(t: Topology, node: NodePlan): Directive[] {
    if (!node.runsRedis) return [];
    return [
        ["appendonly", t.redis.appendonly ? "yes" : "no"],
        ["appendfsync", t.redis.appendfsync],
        ["save", t.redis.save.join(" ")],
        ["maxmemory", node.maxmemoryBytes ?? 0],
        ["maxmemory-policy", t.redis.maxmemoryPolicy],
        ["min-replicas-to-write", t.redis.minReplicasToWrite],
        ["min-replicas-max-lag", t.redis.minReplicasMaxLagSec],
        ["replica-priority", node.replicaPriority ?? 0],
    ];
}

export function renderRedisConf(input: RenderInput): string {
    const { topology: t } = input;
    const node = nodeOf(input);
    const self = addressOf(input, node.name);
    const live = new Map(liveRedisSettings(t, node).map(([k, ...v]) => [k, v]));
    const d = (name: string): Directive => [name, ...(live.get(name) ?? [])];
    const saveLines: Directive[] =
        t.redis.save.length > 0 ? t.redis.save.map((s) => ["save", ...s.split(" ")] as Directive) : [["save", ""]];
    return renderConfig(
        [
            `redis.conf of ${node.label} (${node.region}), rendered by redis-ha for stack ${t.stack}.`,
            "Settings marked live are changed in place by apply-settings; Sentinel rewrites replicaof on failover.",
        ],
        [
            {
                comment: t.security.tls
                    ? "Network: TLS only. Every node is reached on its own address; the Cloud Firewall limits who may connect."
                    : "Network. Every node is reached on its own address; the Cloud Firewall limits who may connect.",
                directives: [
                    ["bind", "*", "-::*"],
                    ["protected-mode", "yes"],
                    ...(t.security.tls ? tlsDirectives(t, t.ports.redis) : [["port", t.ports.redis] as Directive]),
                    ["tcp-backlog", 511],
                    ["tcp-keepalive", 60],
                    ["timeout", 0],
                    // Announce the reachable address so Sentinel and replicas never learn a second address of the node.
                    ["replica-announce-ip", self],
                    ["replica-announce-port", t.ports.redis],
                ],
            },
            {
                comment: "Process: run under systemd (Debian's unit starts redis-server with --supervised systemd).",
                directives: [
                    ["daemonize", "no"],
                    ["supervised", "systemd"],
                    ["pidfile", "/run/redis/redis-server.pid"],
                    ["loglevel", "notice"],
                    ["logfile", "/var/log/redis/redis-server.log"],
                    ["databases", 16],
                ],
            },
            authSection(input),
            {
                comment:
                    "Persistence (live). AOF everysec plus RDB snapshots; a crashed master is held back by redis-start-guard\nuntil Sentinel has promoted a replica, so it never serves older data than its replicas acknowledged.",
                directives: [
                    ["dir", "/var/lib/redis"],
                    ["dbfilename", "dump.rdb"],
                    ...saveLines,
                    ["stop-writes-on-bgsave-error", "yes"],
                    d("appendonly"),
                    ["appendfilename", "appendonly.aof"],
                    ["appenddirname", "appendonlydir"],
                    d("appendfsync"),
                    ["aof-use-rdb-preamble", "yes"],
                    ["no-appendfsync-on-rewrite", "no"],
                ],
            },
            {
                comment:
                    "Replication. Equal replica-priority on every promotable node makes Sentinel promote the replica with the\nlargest replication offset, so a write acknowledged by any one replica survives a failover.",
                directives: [
                    ...(node.initialRole === "replica"
                        ? [["replicaof", addressOf(input, t.preferredMaster), t.ports.redis] as Directive]
                        : []),
                    d("replica-priority"),
                    ["replica-serve-stale-data", "yes"],
                    ["replica-read-only", "yes"],
                    ["repl-diskless-sync", "yes"],
                    // After a failover, a returning replica needs a full sync: start it within a second instead of
                    // Redis's default 5 s, or at once when every replica is waiting.
                    ["repl-diskless-sync-delay", 1],
                    ["repl-diskless-sync-max-replicas", Math.max(1, t.nodes.filter((n) => n.runsRedis).length - 1)],
                    // Cross-region links drop now and then; a larger backlog lets a replica resume instead of full-syncing.
                    ["repl-backlog-size", "64mb"],
                    ["repl-timeout", 60],
                    // A master cut off from its replicas stops taking writes, which bounds what a partition can lose.
                    d("min-replicas-to-write"),
                    d("min-replicas-max-lag"),
                ],
            },
            {
                comment:
                    "Memory (live). maxmemory leaves room for the OS and for fork copy-on-write during persistence.",
                directives: [d("maxmemory"), d("maxmemory-policy")],
            },
            {
                comment: "Operations.",
                directives: [
                    ["latency-monitor-threshold", 100],
                    ["slowlog-log-slower-than", 10000],
                    ["slowlog-max-len", 256],
                ],
            },
        ],
    );
}
