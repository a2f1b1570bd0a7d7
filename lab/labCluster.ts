import { PATHS } from "../cloud-init";
import { execInNode } from "./nodes";
import { info, sentinelMaster, ckquorum } from "./probe";
import { LabError } from "./errors";
import type { LabNodeSpec } from "./nodes";
import { labLogin, type LabStack } from "./stack";

export interface NodeStatus {
    name: string;
    region: string;
    address: string;
    role: string;
    offset?: number;
    /** master: replicas' lags (s); replica: link status and seconds since the last I/O with the master. */
    replication: string;
}

export interface SentinelStatus {
    name: string;
    address: string;
    master: string;
    ckquorum: string;
}

/** The lab node of that name (the topology and the lab plan the same nodes, so a miss is a bug). */
export function labNode(s: LabStack, name: string): LabNodeSpec {
    const node = s.nodes.find((x) => x.name === name);
    if (!node)
        throw new LabError(`no node ${name} in stack ${s.stack}; nodes: ${s.nodes.map((n) => n.name).join(", ")}`);
    return node;
}

/** The lab node at an address ("host" or "host:port"). */
export function nodeAt(s: LabStack, address: string): LabNodeSpec {
    const name = nodeByAddress(s, address);
    if (name === undefined) throw new LabError(`${address} is not the address of a node of stack ${s.stack}`);
    return labNode(s, name);
}

function sentinelNodes(s: LabStack) {
    return s.topology.nodes.filter((n) => n.runsSentinel).map((n) => labNode(s, n.name));
}

export function sentinelEndpoints(s: LabStack): { host: string; port: number; region: string }[] {
    return sentinelNodes(s).map((n) => ({ host: n.address, port: s.topology.ports.sentinel, region: n.region }));
}

export function redisNodes(s: LabStack) {
    return s.topology.nodes.filter((n) => n.runsRedis).map((n) => labNode(s, n.name));
}

export function nodeByAddress(s: LabStack, address: string): string | undefined {
    return s.nodes.find((n) => n.address === address.split(":")[0])?.name;
}

export async function redisStatus(s: LabStack): Promise<NodeStatus[]> {
    return Promise.all(
        redisNodes(s).map(async (n) => {
            const i = await info(n.address, s.topology.ports.redis, labLogin(s, "redis"));
            if (!i)
                return { name: n.name, region: n.region, address: n.address, role: "unreachable", replication: "-" };
            const role = i.role === "slave" ? "replica" : i.role;
            const replication =
                i.role === "master"
                    ? `${i.connected_slaves} replica(s), lag ${
                          Object.entries(i)
                              .filter(([k]) => /^slave\d+$/.test(k))
                              .map(([, v]) => /lag=(\d+)/.exec(v)?.[1] ?? "?")
                              .join(",") || "-"
                      }s`
                    : `master ${nodeByAddress(s, i.master_host) ?? i.master_host} link ${i.master_link_status}, last io ${i.master_last_io_seconds_ago}s`;
            return {
                name: n.name,
                region: n.region,
                address: n.address,
                role,
                offset: Number(i.master_repl_offset),
                replication,
            };
        }),
    );
}

export async function sentinelStatus(s: LabStack): Promise<SentinelStatus[]> {
    return Promise.all(
        sentinelNodes(s).map(async (n) => {
            const m = await sentinelMaster(
                n.address,
                s.topology.ports.sentinel,
                labLogin(s, "sentinel"),
                s.topology.masterName,
            );
            return {
                name: n.name,
                address: n.address,
                master: m ? `${nodeByAddress(s, m) ?? "?"} (${m})` : "unreachable",
                ckquorum: await ckquorum(
                    n.address,
                    s.topology.ports.sentinel,
                    labLogin(s, "sentinel"),
                    s.topology.masterName,
                ),
            };
        }),
    );
}

/** The master every reachable Sentinel names, if they all agree (and at least a majority answered). */
export async function agreedMaster(s: LabStack): Promise<string | undefined> {
    const views = await Promise.all(
        sentinelNodes(s).map((n) =>
            sentinelMaster(n.address, s.topology.ports.sentinel, labLogin(s, "sentinel"), s.topology.masterName),
        ),
    );
    const answered = views.filter((v): v is string => v !== undefined);
    if (answered.length < s.topology.sentinel.majority || new Set(answered).size !== 1) return undefined;
    return answered[0];
}

/**
 * How many Redis nodes say they are master right now, asked from inside each node (a partition cuts the host off
 * too, and an isolated old master is exactly the one to count).
 */
export async function countMastersInside(s: LabStack): Promise<number> {
    const roles = await Promise.all(
        redisNodes(s).map((n) =>
            execInNode(
                n.name,
                // The node's own lib.sh: its login (TLS and admin, or the shared password), never in argv.
                ["bash", "-c", `. ${PATHS.scriptsDir}/lib.sh && rcli 127.0.0.1 "$REDIS_PORT" ROLE`],
                {
                    allowFailure: true,
                    timeoutMs: 2000,
                },
            ).then(
                (r) => r.stdout.split("\n")[0]?.trim(),
                () => undefined,
            ),
        ),
    );
    return roles.filter((r) => r === "master").length;
}
