import type { NodePlan, Topology } from "../topology";
import type { RenderInput } from "./inputs";
import { addressOf, nodeOf, securityOf } from "./inputs";
import { renderConfig, type Directive, type Section } from "./confSyntax";
import { aclUserLines, sentinelUserRules } from "./acl";
import { tlsDirectives } from "./redisConf";

/** [how clients and Sentinels log in to this Sentinel, how it logs in to the Redis nodes (after `monitor`)]. */
function sentinelAuth(input: RenderInput): [Section, Directive[]] {
    const m = input.topology.masterName;
    if (!input.topology.security.tls)
        return [
            {
                comment: "Authentication: clients and other Sentinels need this password to talk to this Sentinel.",
                directives: [
                    ["requirepass", input.secrets.sentinelPassword],
                    ["sentinel", "sentinel-pass", input.secrets.sentinelPassword],
                ],
            },
            [["sentinel", "auth-pass", m, input.secrets.redisPassword]],
        ];
    const { acl } = securityOf(input);
    return [
        {
            comment:
                "ACL users of this Sentinel (passwords as hashes): clients log in as app, other Sentinels as sentinel.",
            directives: [
                ...aclUserLines(sentinelUserRules(), acl),
                ["sentinel", "sentinel-user", "sentinel"],
                ["sentinel", "sentinel-pass", acl.sentinel.current],
            ],
        },
        [
            ["sentinel", "auth-user", m, "sentinel"],
            ["sentinel", "auth-pass", m, acl.sentinel.current],
        ],
    ];
}

/**
 * Sentinel timings that its configuration file cannot hold, set with `SENTINEL DEBUG` at every start of Sentinel
 * (`cloud-init/scripts/sentinel-tune`, run by the redis-ha drop-in).
 *
 * `info-period`: how often Sentinel reads INFO from each Redis node while no failover runs (10 s by default). During a
 * failover it reads a replica every second, counted from its last read, and sees a promotion only in that read: the
 * promotion shows a second after the last read before the failover began. With the default, that last read is the one
 * the failover itself sets off, so the promotion shows a whole second after SLAVEOF NO ONE. Every second, the last read
 * falls anywhere in the second before, but one less than about 0.3 s before the next is due lands before SLAVEOF NO
 * ONE (Sentinel sends that three timer ticks, 0.15-0.3 s, after SENTINEL FAILOVER), and the promotion then shows
 * a second after it: up to 1.3 s. At 600 ms the last read is at most 0.7 s old, so the next one always comes after
 * SLAVEOF NO ONE: the promotion shows 0.3-1 s after SENTINEL FAILOVER. Measured on loopback (bench/sentinelPromotion.ts),
 * SENTINEL FAILOVER to +promoted-slave in two runs: 178-1278 and 219-1186 ms at 1000, 421-988 and 494-1045 ms at
 * 600: about the same mean, without the tail past a second. It also keeps the replica offsets that Sentinel picks the new master by at
 * most 0.7 s old. The cost: one INFO every 0.6 s per Sentinel and node. The stop handover reads the phase of these
 * reads (node.env SENTINEL_INFO_PERIOD_MS) to time its SENTINEL FAILOVER.
 */
export const SENTINEL_INFO_PERIOD_MS = 600;
export const SENTINEL_DEBUG_TIMINGS: readonly (readonly [name: string, ms: number])[] = [
    ["info-period", SENTINEL_INFO_PERIOD_MS],
];

/** Sentinel settings that `SENTINEL SET` changes on a running Sentinel. */
export function liveSentinelSettings(t: Topology, node: NodePlan): Directive[] {
    if (!node.runsSentinel) return [];
    return [
        ["quorum", t.sentinel.quorum],
        ["down-after-milliseconds", t.sentinel.downAfterMs],
        ["failover-timeout", t.sentinel.failoverTimeoutMs],
        ["parallel-syncs", t.sentinel.parallelSyncs],
    ];
}

/**
 * The initial sentinel.conf. Sentinel owns the file afterwards: it rewrites it with its id, the epoch and the replicas
 * and Sentinels it discovers, which is why the file belongs to the redis user.
 */
export function renderSentinelConf(input: RenderInput): string {
    const { topology: t } = input;
    const node = nodeOf(input);
    const m = t.masterName;
    const live = new Map(liveSentinelSettings(t, node).map(([k, ...v]) => [k, v]));
    const option = (name: string): Directive => ["sentinel", name, m, ...(live.get(name) ?? [])];
    const auth = sentinelAuth(input);
    return renderConfig(
        [
            `sentinel.conf of ${node.label} (${node.region}), rendered by redis-ha for stack ${t.stack}.`,
            "Sentinel rewrites this file; edit the stack config instead.",
        ],
        [
            {
                comment: "Network. The announced address is the one every other Sentinel and every client uses.",
                directives: [
                    ["bind", "*", "-::*"],
                    ["protected-mode", "no"],
                    ...(t.security.tls
                        ? tlsDirectives(t, t.ports.sentinel)
                        : [["port", t.ports.sentinel] as Directive]),
                    ["sentinel", "announce-ip", addressOf(input, node.name)],
                    ["sentinel", "announce-port", t.ports.sentinel],
                    ["sentinel", "resolve-hostnames", "no"],
                    ["sentinel", "announce-hostnames", "no"],
                ],
            },
            {
                comment: "Process.",
                directives: [
                    ["daemonize", "no"],
                    ["supervised", "systemd"],
                    ["pidfile", "/run/sentinel/redis-sentinel.pid"],
                    ["logfile", "/var/log/redis/redis-sentinel.log"],
                    ["dir", "/var/lib/redis"],
                ],
            },
            auth[0],
            {
                comment: `The monitored master: ${t.preferredMaster} starts as master; quorum ${t.sentinel.quorum} of ${t.sentinel.count} Sentinels.`,
                directives: [
                    ["sentinel", "monitor", m, addressOf(input, t.preferredMaster), t.ports.redis, t.sentinel.quorum],
                    ...auth[1],
                    option("down-after-milliseconds"),
                    option("failover-timeout"),
                    option("parallel-syncs"),
                    ["sentinel", "deny-scripts-reconfig", "yes"],
                ],
            },
        ],
    );
}
