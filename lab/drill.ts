import { spawn } from "node:child_process";
import path from "node:path";
import Redis from "ioredis";
import { createSentinelClient, type Durability } from "../client";
import { errorsByName, missingWrites, startDurableWrites } from "../client/testing/durableWrites";
import { drillRunner, PATHS } from "../cloud-init";
import {
    agreedMaster,
    countMastersInside,
    labNode,
    nodeAt,
    nodeByAddress,
    redisNodes,
    sentinelEndpoints,
} from "./labCluster";
import { DrillTimeoutError, LabError } from "./errors";
import { typescriptArgv } from "./exec";
import {
    crashRedis,
    crashSentinel,
    heal,
    partitionNode,
    partitionRegion,
    pauseRedis,
    rebootNode,
    resumeRedis,
    startRedis,
    stopRedis,
} from "./faults";
import type { NetnsWriterConfig, NetnsWriterResult } from "./netnsWriter";
import { execInNode } from "./nodes";
import { nodeNetns } from "./paths";
import { ckquorum, info, loginOptions, withRedis } from "./probe";
import { startPythonWriter } from "./pythonWriter";
import { ssh } from "./ssh";
import { labLogin, type LabStack } from "./stack";

/** Scenarios in which Sentinel must elect a new master. */
const FAILOVER_SCENARIOS = [
    "master-crash",
    "master-stop",
    "master-reboot",
    "master-hang",
    "master-partition",
    "region-loss",
    "region-loss-lagging",
] as const;
export const SCENARIOS = [...FAILOVER_SCENARIOS, "sentinel-crash", "replica-crash"] as const;
export type Scenario = (typeof SCENARIOS)[number];
const FAILOVER: ReadonlySet<Scenario> = new Set(FAILOVER_SCENARIOS);

/**
 * Which path promoted the replica: the start guard's crash handover, the stop hook's planned handover, or the
 * Sentinels' own down-after failover. The old master's node records the first two (and a crash the Sentinels
 * handled) in PATHS.lastHandover; a failover the node took no part in (a hang, a partition) leaves nothing there.
 */
export const HANDOVERS = ["crash", "planned", "sentinel"] as const;
export type Handover = (typeof HANDOVERS)[number];

/**
 * How the drill's writer acknowledges a write: the write and its WAIT on one connection, as one unit, confirmed by
 * every replica attached to the master (the client's default durability, "attached"); region scenarios use "region".
 */
const DURABILITY: WriterDurability = { durability: "attached", replicas: 1 };
const WAIT_TIMEOUT_MS = 200;
/** Region scenarios: the cut region's loss is what the writers must survive. */
const REGION: ReadonlySet<Scenario> = new Set(["region-loss", "region-loss-lagging"]);
/** Scenarios that partition the master; a second writer runs on the cut-off side, in the master's network. */
const PARTITIONED: ReadonlySet<Scenario> = new Set(["master-partition", "region-loss", "region-loss-lagging"]);
/** region-loss-lagging: how long the DR region's Redis nodes are stopped before the primary region is cut. */
const LAG_MS = 1_500;
/** The plain writer of region-loss-lagging: the issue's `WAIT 1`, to measure what region durability prevents. */
const PLAIN: WriterDurability = { durability: "count", replicas: 1 };
/** How long the master may take to come home after the heal: the hold-down plus two controlled failovers. */
const HOME_SLACK_MS = 60_000;
/** Region targets (printed): writes resume within down-after + 3 s of the cut, home within 60 s of catching up. */
const TARGET_REGION_RTO_OVER_DOWN_AFTER_MS = 3_000;
const TARGET_HOME_AFTER_CATCH_UP_MS = 60_000;

interface WriterDurability {
    durability: Durability;
    replicas: number;
}

const durabilityText = (d: WriterDurability) =>
    `durability ${d.durability}, ${d.durability === "attached" ? "at least " : ""}${d.replicas} replica(s) (WAIT ${WAIT_TIMEOUT_MS} ms per round), write and WAIT on one connection`;

/** Connection changes and switches of the drill's writer kept for the message of a stalled run. */
const RECENT_EVENTS = 12;

/** Slack on top of two whole Sentinel failovers (down-after + failover-timeout each) for any wait after a fault. */
const FAILOVER_BUDGET_SLACK_MS = 30_000;
/** How long the Sentinels may take to agree on a master before a run starts (a previous run's fail-back settling). */
const AGREED_MASTER_TIMEOUT_MS = 60_000;
/**
 * Acknowledged writes before the fault, so the writer is past its connection set-up and writing steadily (a few
 * seconds of writes in the lab here: about 400 a second with TLS on CI's two cores). A count, not a time: a slower
 * machine waits longer and verifies as much.
 */
const WARMUP_ACKS = 2_000;
const WARMUP_TIMEOUT_MS = 30_000;
/** After a partition: how long writes may take to resume with the partition still in place before it is healed. */
const RESUME_BEFORE_HEAL_MS = 5_000;
/**
 * The same for a region loss: a host writer's write in flight to the cut-off master ends only at the client's deadline
 * (10 s by default; measured: writes resumed 12.6 s after +switch-master), so the drill waits that long before the heal.
 */
const REGION_RESUME_BEFORE_HEAL_MS = 15_000;
/** A hung master stays hung this much longer than the failover took, so the new master serves writes meanwhile. */
const HANG_AFTER_FAILOVER_MS = 1_500;
/**
 * Acknowledged writes after the fault is over (3-10 s of writes here, the window in which a resumed or restarted old
 * master could still take some; the old master's rejoin is awaited on its own), read back from the new master like
 * every other one.
 */
const ACKS_AFTER_RECOVERY = 4_000;
/**
 * Region scenarios run four writers and a sampler on the lab's two cores, each region write waiting for two replicas:
 * measured 25-45 acknowledged writes a second here. Their writers count as steady after this many acknowledged
 * writes and this long (before the fault, and again after it is over).
 */
const STEADY_ACKS = 100;
const STEADY_MS = 5_000;
/** The writer's pause after a failed write, so a refusing master is not hammered. */
const WRITE_RETRY_PAUSE_MS = 2;
/** How often the masters inside the cluster are counted during a run (split-brain watch). */
const MASTER_SAMPLE_MS = 250;
const READ_BACK_TIMEOUT_MS = 10_000;
/** Poll interval while waiting for the old master to rejoin. */
const REJOIN_POLL_MS = 500;
/** Targets the report prints (benchmark figures, never asserted by CI). */
const TARGET_RESUME_AFTER_SWITCH_MS = 500;
const TARGET_RTO_OVER_DOWN_AFTER_MS = 2_500;
/** Issue 12's targets: a crash handed over by the node itself, and a planned stop or reboot of the master. */
const TARGET_RTO_CRASH_MS = 1_500;
const TARGET_RTO_PLANNED_MS = 1_000;
const PLANNED: ReadonlySet<Scenario> = new Set(["master-stop", "master-reboot"]);

export interface DrillRun {
    run: number;
    faultNode: string;
    oldMaster: string;
    /** The master once the run is over: in a stack with redis-homing it may be the old one again, back home. */
    newMaster: string;
    /** The node the first `+switch-master` after the fault named (where the failover went); null if none. */
    switchedTo: string | null;
    /** Fault to the first `+switch-master`; null when no failover is expected or none happened. */
    switchMs: number | null;
    /**
     * The longest time without an acknowledged write, from the last one before the fault to the first one after the
     * failover: for a crash, simply the time between those two; a planned stop or reboot goes on acknowledging
     * writes until its handover pauses them, so the wait writers saw starts there, not at the command.
     */
    rtoMs: number;
    /** Writes resumed only after the fault was undone (no replica on the new master's side of a partition). */
    resumedAfterRestore: boolean;
    /** Partitions: writes resumed while the partition was still in place; null for other faults. */
    writesResumedWithoutHeal: boolean | null;
    /** Region scenarios: heal to the Sentinels agreeing on a master in the primary region again (redis-homing). */
    timeToHomeMs: number | null;
    /**
     * Redis nodes that executed a write while role master, in the same sampling interval (never more than one:
     * the minority fence and the fail-back's fence; a fenced or hung old master may still say master).
     */
    maxSimultaneousWritableMasters: number;
    /**
     * When that is more than one: the overlapping windows, ms from the fault, to tell a real second writable master
     * from a handover faster than the sampling.
     */
    writableOverlapWindows: WriteWindow[] | null;
    /** region-loss-lagging: the plain `WAIT 1` writer beside the region-durability one (measured, not asserted). */
    plainWriter: { durability: string; ackedWrites: number; lostAckedWrites: number } | null;
    /**
     * Region scenarios: a writer in the DR region's network (its own Sentinels first), at the drill's durability;
     * `ackedAfterFault` counts its acknowledged writes after the cut.
     */
    drWriter: { node: string; ackedWrites: number; ackedAfterFault: number; lostAckedWrites: number } | null;
    /** Partitions: the writer inside the cut-off master's network, through the client, at the drill's durability. */
    cutOffWriter: {
        node: string;
        durability: string;
        ackedWrites: number;
        lostAckedWrites: number;
        errors: Record<string, number>;
    } | null;
    ackedWrites: number;
    failedWrites: number;
    /** Which path promoted the replica; null when no failover happened. */
    handover: Handover | null;
    /** Errors the writer saw, by name (`X:READONLY` when the message was a READONLY reply). */
    writerErrors: Record<string, number>;
    lostAckedWrites: number;
    /** null when the scenario does not demote the master. */
    oldMasterRejoinedAsReplica: boolean | null;
    maxSimultaneousMasters: number;
    mastersAfter: number;
    quorumOk: boolean;
}

export interface Stat {
    p50: number;
    max: number;
}

export interface DrillReport {
    stack: string;
    scenario: Scenario;
    runs: number;
    downAfterMs: number;
    switchMs: Stat | null;
    rtoMs: Stat;
    ackedWrites: number;
    lostAckedWrites: number;
    durability: string;
    newMaster: string;
    /** The path that promoted the replica in every run, "mixed" when runs differ, null without a failover. */
    handover: Handover | "mixed" | null;
    oldMasterRejoinedAsReplica: boolean | null;
    maxSimultaneousMasters: number;
    maxSimultaneousWritableMasters: number;
    /** Every run resumed writes before the heal (partitions), else null. */
    writesResumedWithoutHeal: boolean | null;
    /** The longest heal-to-home time of the runs (region scenarios), else null. */
    timeToHomeMs: number | null;
    quorumOk: boolean;
    /** True when every correctness condition holds (what CI asserts). */
    correct: boolean;
    targets: { name: string; target: string; measured: string; met: boolean | null }[];
    perRun: DrillRun[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The longest gap between consecutive times (sorted). */
function longestGap(times: readonly number[]): number {
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
    return gap;
}

function stat(values: number[]): Stat {
    const sorted = [...values].sort((a, b) => a - b);
    return { p50: sorted[Math.floor((sorted.length - 1) / 2)], max: sorted[sorted.length - 1] };
}

async function waitFor<T>(
    what: string,
    timeoutMs: number,
    probe: () => Promise<T | undefined | false>,
    intervalMs = 250,
): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await probe();
        if (v !== undefined && v !== false) return v;
        if (Date.now() > deadline) throw new DrillTimeoutError(what, timeoutMs);
        await sleep(intervalMs);
    }
}

/** For `.catch`: a timed-out wait gives `fallback`; any other error still fails the run. */
function onTimeout<T>(fallback: T): (e: unknown) => T {
    return (e) => {
        if (e instanceof DrillTimeoutError) return fallback;
        throw e;
    };
}

/** `+switch-master` events seen by any Sentinel the host can reach; `after(t)` is the first one after t. */
function watchSwitch(s: LabStack): {
    after: (t: number) => number | undefined;
    toAfter: (t: number) => string | undefined;
    close: () => void;
} {
    const seen: Array<{ at: number; to: string }> = [];
    const subs = sentinelEndpoints(s).map((e) => {
        const sub = new Redis({
            host: e.host,
            port: e.port,
            ...loginOptions(labLogin(s, "sentinel")),
            connectTimeout: 1000,
            retryStrategy: () => 500,
            maxRetriesPerRequest: null,
        });
        sub.on("error", () => undefined);
        sub.subscribe("+switch-master").catch(() => undefined);
        // `<name> <old-ip> <old-port> <new-ip> <new-port>`
        sub.on("message", (_channel: string, message: string) => {
            const parts = message.trim().split(/\s+/);
            seen.push({ at: Date.now(), to: `${parts[3] ?? ""}:${parts[4] ?? ""}` });
        });
        return sub;
    });
    return {
        after: (t) => seen.find((x) => x.at > t)?.at,
        toAfter: (t) => seen.find((x) => x.at > t)?.to,
        close: () => {
            for (const x of subs) x.disconnect();
        },
    };
}

/** Which client the drill's writer uses: the TypeScript client (`client/`) or the Python one (`clients/python`). */
export type DrillWriter = "ts" | "python";

/** Numbered durable writes through Sentinel discovery, as an application does. */
function startWriter(
    s: LabStack,
    runId: string,
    durability: WriterDurability = DURABILITY,
    writer: DrillWriter = "ts",
) {
    const primary = s.topology.primaryRegion;
    if (writer === "python") {
        return startPythonWriter(s, {
            prefix: `drill:${runId}`,
            region: primary,
            replicas: durability.replicas,
            timeoutMs: WAIT_TIMEOUT_MS,
            pauseAfterErrorMs: WRITE_RETRY_PAUSE_MS,
        });
    }
    const sentinels = [...sentinelEndpoints(s)].sort(
        (a, b) => Number(b.region === primary) - Number(a.region === primary),
    );
    const client = createSentinelClient({
        sentinels: sentinels.map(({ host, port }) => ({ host, port })),
        masterName: s.topology.masterName,
        region: primary,
        // The application's own ACL user over TLS (tls), or the shared passwords.
        redis: labLogin(s, "redis", "app"),
        sentinel: labLogin(s, "sentinel", "app"),
        staleCache: false,
        metrics: false,
        connectionName: "redis-ha-drill",
    });
    // The client's last connection changes and switches, for the message of a run that stalls.
    const recent: string[] = [];
    const note = (what: string) => {
        recent.push(`${new Date().toISOString().slice(11, 23)} ${what}`);
        if (recent.length > RECENT_EVENTS) recent.shift();
    };
    client.on("connectionStateChange", (c) => {
        note(`${c.role} ${c.state} ${c.address ?? "?"}${c.reason ? ` (${c.reason})` : ""}`);
    });
    client.on("failover", (e) => {
        note(`switch ${e.from ?? "?"} -> ${e.to} (${e.source})`);
    });
    // The master socket's own steps, to tell where a slow resumption went: "connect" is TCP (and TLS) done, "ready"
    // above follows the handshake (AUTH, the ready check).
    for (const step of ["connect", "close", "reconnecting"] as const) {
        client.master.redis.on(step, () => {
            note(`master socket ${step}`);
        });
    }
    const load = startDurableWrites(client, {
        prefix: `drill:${runId}`,
        ...durability,
        timeoutMs: WAIT_TIMEOUT_MS,
        pauseAfterErrorMs: WRITE_RETRY_PAUSE_MS,
    });
    return {
        /** What the writer is doing: for the message of a run that timed out waiting for it. */
        describe: () => {
            const last = load.acks.at(-1);
            return (
                `${String(load.acks.length)} acknowledged (last ${last ? `${String(Date.now() - last.at)} ms ago` : "never"}), ` +
                `errors ${JSON.stringify(errorsByName(load.errors))}, master connection ${client.master.address ?? "?"} ` +
                `${client.master.statusText}; recent: ${recent.join("; ")}`
            );
        },
        acks: load.acks,
        /** Errors that reached the writer (the application), by error name; READONLY separately. */
        get errors() {
            return errorsByName(load.errors);
        },
        failed: () => load.errors.length,
        async stop() {
            await load.stop();
            await client.close();
        },
    };
}

/**
 * A writer inside a node's network namespace (lab/netnsWriter.ts through `ip netns exec`): it reaches what that node
 * reaches, so in a partition it writes on the cut-off side, through the same client as every application.
 */
function startNetnsWriter(s: LabStack, node: string, prefix: string, durability: WriterDurability) {
    const region = labNode(s, node).region;
    const config: NetnsWriterConfig = {
        sentinels: sentinelEndpoints(s),
        masterName: s.topology.masterName,
        region,
        redis: labLogin(s, "redis", "app"),
        sentinel: labLogin(s, "sentinel", "app"),
        prefix,
        ...durability,
    };
    // Its own process group, so that a kill reaches whatever it started.
    const child = spawn(
        "ip",
        ["netns", "exec", nodeNetns(node), ...typescriptArgv(path.join(__dirname, "netnsWriter.ts"))],
        {
            stdio: ["pipe", "pipe", "pipe"],
            detached: true,
        },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
    const state = { exit: undefined as number | null | undefined };
    const exited = new Promise<number | null>((resolve) =>
        child.on("close", (code) => {
            state.exit = code;
            resolve(code);
        }),
    );
    // A writer that exits without reading its config closes the pipe; its exit and stderr tell why, not the EPIPE.
    child.stdin.on("error", () => undefined);
    child.stdin.end(JSON.stringify(config));
    return {
        started: () => {
            if (state.exit !== undefined)
                throw new LabError(
                    `drill: the writer inside ${node}'s network exited ${String(state.exit)}`,
                    err + out,
                );
            return out.startsWith("started\n");
        },
        /** What it printed so far (for a report of a stalled start). */
        detail: () => `${node}: stdout ${JSON.stringify(out.slice(0, 200))}, stderr ${JSON.stringify(err.slice(-500))}`,
        async stop(): Promise<NetnsWriterResult> {
            child.kill("SIGTERM");
            const code = await exited;
            const last = out.trim().split("\n").pop() ?? "";
            if (code !== 0 || !last.startsWith("{"))
                throw new LabError(`drill: the writer inside ${node}'s network exited ${String(code)}`, err + out);
            return JSON.parse(last) as NetnsWriterResult;
        },
        kill: () => {
            if (child.pid !== undefined && state.exit === undefined) {
                try {
                    process.kill(-child.pid, "SIGKILL");
                } catch {
                    // Already gone.
                }
            }
        },
    };
}

/** One sample of a Redis node, read from inside it: its role and how many SETs it has executed. */
interface WriteSample {
    node: string;
    at: number;
    master: boolean;
    setCalls: number;
}

async function sampleWrites(s: LabStack): Promise<WriteSample[]> {
    const samples = await Promise.all(
        redisNodes(s).map(async (n) => {
            const r = await execInNode(
                n.name,
                // The node's own lib.sh: its login (TLS and admin, or the shared password), never in argv.
                [
                    "bash",
                    "-c",
                    `. ${PATHS.scriptsDir}/lib.sh && rcli 127.0.0.1 "$REDIS_PORT" INFO replication commandstats`,
                ],
                { allowFailure: true, timeoutMs: 2000 },
            ).catch(() => undefined);
            const text = r?.stdout ?? "";
            const role = /^role:(\w+)/m.exec(text)?.[1];
            if (role === undefined) return undefined;
            const calls = Number(/^cmdstat_set:calls=(\d+)/m.exec(text)?.[1] ?? 0);
            return { node: n.name, at: Date.now(), master: role === "master", setCalls: calls };
        }),
    );
    return samples.filter((x): x is WriteSample => x !== undefined);
}

/** A node's interval in which it executed writes as master (see {@link writableOverlap}). */
export interface WriteWindow {
    node: string;
    from: number;
    to: number;
}

/**
 * The largest set of Redis nodes that executed a write as master in overlapping intervals, one window per node (its
 * length is maxSimultaneousWritableMasters; empty when no node executed a write as master). A node's interval runs
 * from its previous sample to this one, but no further back than two sampling periods: a hung node (SIGSTOP) answers no
 * sample and executes nothing meanwhile, so its writes after it resumes belong to the last moments only. Only an
 * interval with the node master at both ends counts: a replica's `cmdstat_set` grows with the writes it replicates, so
 * a node promoted between two samples would otherwise count its last replicated writes as its own, overlapping the
 * old master's last writes in every handover faster than the sampling. A second writable master lasting longer than
 * two sampling periods is still counted.
 */
export function writableOverlap(samples: readonly WriteSample[], periodMs: number): WriteWindow[] {
    const last = new Map<string, WriteSample>();
    const windows: WriteWindow[] = [];
    for (const x of [...samples].sort((a, b) => a.at - b.at)) {
        const prev = last.get(x.node);
        if (prev?.master && x.master && x.setCalls > prev.setCalls)
            windows.push({ node: x.node, from: Math.max(prev.at, x.at - 2 * periodMs), to: x.at });
        last.set(x.node, x);
    }
    let worst: WriteWindow[] = windows.slice(0, 1);
    for (const w of windows) {
        const overlapping = windows.filter((o) => o.from < w.to && w.from < o.to);
        const byNode = new Map(overlapping.map((o) => [o.node, o]));
        if (byNode.size > new Set(worst.map((o) => o.node)).size) worst = [...byNode.values()];
    }
    return worst;
}

/** The handover record on a node, over SSH as an operator reads it; undefined when there is none. */
async function lastHandover(s: LabStack, node: string): Promise<Handover | undefined> {
    const r = await ssh(s, node, ["cat", PATHS.lastHandover], 30_000);
    const path = r.stdout.trim().split(" ")[0];
    return r.code === 0 ? HANDOVERS.find((h) => h === path) : undefined;
}

async function readBack(s: LabStack, master: string, keys: string[]): Promise<number> {
    const [host, port] = master.split(":");
    const missing = await withRedis(
        host,
        Number(port),
        labLogin(s, "redis"),
        async (r) => (await missingWrites(r, keys)).length,
        READ_BACK_TIMEOUT_MS,
    );
    if (missing === undefined) throw new LabError(`drill: cannot read back from ${master}`);
    return missing;
}

async function oneRun(
    s: LabStack,
    scenario: Scenario,
    run: number,
    log: (m: string) => void,
    writerKind: DrillWriter = "ts",
): Promise<DrillRun> {
    const t = s.topology;
    const budget = 2 * (t.sentinel.downAfterMs + t.sentinel.failoverTimeoutMs) + FAILOVER_BUDGET_SLACK_MS;
    const master = await waitFor("the Sentinels to agree on a master", AGREED_MASTER_TIMEOUT_MS, () => agreedMaster(s));
    const masterNode = nodeAt(s, master).name;
    const masterRegion = nodeAt(s, master).region;
    const replicas = redisNodes(s).filter((n) => n.name !== masterNode);
    // Nodes running a Sentinel other than the master's (Sentinel-only nodes and replicas with a Sentinel alike).
    const otherSentinels = s.topology.nodes.filter((n) => n.runsSentinel && n.name !== masterNode).map((n) => n.name);
    const faultNode =
        scenario === "replica-crash"
            ? replicas[0].name
            : scenario === "sentinel-crash"
              ? otherSentinels[otherSentinels.length - 1]
              : masterNode;
    const runId = `${Date.now().toString(36)}-${run}`;
    const regional = REGION.has(scenario);
    const partitioned = PARTITIONED.has(scenario);
    const durability = writerDurability(s, scenario);
    // The DR region's Redis nodes: every Redis node outside the master's region.
    const drNodes = redisNodes(s).filter((n) => n.region !== masterRegion);

    // A record left by an earlier run must not be read as this run's.
    await ssh(s, faultNode, ["rm", "-f", PATHS.lastHandover], 30_000);
    const sw = watchSwitch(s);
    const writer = startWriter(s, runId, durability, writerKind);
    const plain = scenario === "region-loss-lagging" ? startWriter(s, `${runId}-plain`, PLAIN) : undefined;
    const cutOff = partitioned ? startNetnsWriter(s, masterNode, `drill:${runId}-cut`, durability) : undefined;
    const drNode = regional ? drNodes[0]?.name : undefined;
    const dr = drNode ? startNetnsWriter(s, drNode, `drill:${runId}-dr`, durability) : undefined;
    let maxMasters = 1;
    const samples: WriteSample[] = [];
    // An object, not a `let`: the sampler reads what the finally block writes later.
    const sampling = { on: true };
    const sampler = (async () => {
        while (sampling.on) {
            const now = await sampleWrites(s);
            samples.push(...now);
            maxMasters = Math.max(maxMasters, now.filter((x) => x.master).length);
            await sleep(MASTER_SAMPLE_MS);
        }
    })();
    let healed = false;
    try {
        const warmupStart = Date.now();
        // Enough writes to call the writer steady: the count, or (region scenarios) a smaller count and some time.
        const steady = (acks: number, from: number, since: number, count: number) =>
            acks - from >= count || (regional && acks - from >= STEADY_ACKS && Date.now() - since >= STEADY_MS);
        await waitFor("the writer's first acknowledged writes", WARMUP_TIMEOUT_MS, () =>
            Promise.resolve(
                steady(writer.acks.length, 0, warmupStart, WARMUP_ACKS) &&
                    (cutOff?.started() ?? true) &&
                    (dr?.started() ?? true),
            ),
        ).catch((e: unknown) => {
            if (!(e instanceof DrillTimeoutError)) throw e;
            const netns = [cutOff, dr].map((w) => w?.detail() ?? "").filter((x) => x !== "");
            throw new LabError(
                `drill: warm-up: ${writer.acks.length} of ${WARMUP_ACKS} acknowledged writes in ${WARMUP_TIMEOUT_MS} ms, errors ${JSON.stringify(writer.errors)}`,
                netns.join("\n"),
            );
        });
        log(`run ${run}: warm-up ${Date.now() - warmupStart} ms (${writer.acks.length} acknowledged writes)`);
        if (scenario === "region-loss-lagging") {
            // Only same-region replicas can acknowledge meanwhile: a WAIT 1 write may now live in one region only.
            log(`run ${run}: stopping ${drNodes.map((n) => n.name).join(", ")} for ${LAG_MS} ms`);
            await Promise.all(drNodes.map((n) => pauseRedis(n.name)));
            await sleep(LAG_MS);
        }
        const faultAt = Date.now();
        log(`run ${run}: ${scenario} on ${faultNode} (master ${masterNode})`);
        switch (scenario) {
            case "master-crash":
            case "replica-crash":
                await crashRedis(faultNode);
                break;
            case "master-stop":
                // Returns once the unit has stopped, i.e. after the stop hook's handover and Redis's shutdown.
                await stopRedis(faultNode);
                break;
            case "master-reboot":
                // Returns once the node is back up through cloud-init; the writer and the watchers run meanwhile.
                await rebootNode(s, faultNode);
                break;
            case "master-hang":
                await pauseRedis(faultNode);
                break;
            case "master-partition":
                await partitionNode(faultNode);
                break;
            case "region-loss":
                await partitionRegion(masterRegion);
                break;
            case "region-loss-lagging":
                await partitionRegion(masterRegion);
                // Resumed on the far side of the cut: what they had not received by now is gone with the region.
                await Promise.all(drNodes.map((n) => resumeRedis(n.name)));
                break;
            case "sentinel-crash":
                await crashSentinel(faultNode);
                break;
        }
        const failover = FAILOVER.has(scenario);
        if (failover) await waitFor("Sentinel's +switch-master", budget, () => Promise.resolve(sw.after(faultAt)));
        const ackedAfterFault = () =>
            Promise.resolve(
                writer.acks.find((a) => a.at > faultAt && (!failover || a.at >= (sw.after(faultAt) ?? Infinity))),
            );
        let resumedAfterRestore = false;
        let healAt = 0;
        if (partitioned) {
            // The new master may have no replica left on its side (a whole region lost with min-replicas-to-write):
            // then writes resume only once the partition heals, and the report says so.
            const window = regional ? REGION_RESUME_BEFORE_HEAL_MS : RESUME_BEFORE_HEAL_MS;
            const early = await waitFor("an acknowledged write", window, ackedAfterFault).catch(onTimeout(undefined));
            healAt = Date.now();
            await heal();
            healed = true;
            resumedAfterRestore = early === undefined;
        }
        const ackAfter = await waitFor("an acknowledged write after the fault", budget, ackedAfterFault);
        // The writer's connection changes around the fault: what a slow resumption is read from.
        if ("describe" in writer) log(`run ${run}: writer resumed: ${writer.describe()}`);
        if (scenario === "master-hang") {
            // A fault of fixed length on purpose: the old master stays hung a little after the new one took over.
            await sleep(HANG_AFTER_FAILOVER_MS);
            await resumeRedis(faultNode);
        }
        if (scenario === "master-stop") await startRedis(faultNode);
        let timeToHomeMs: number | null = null;
        if (regional) {
            // The lost region is back: its nodes rejoin as replicas and redis-homing brings the master home after
            // its hold-down, while the writers go on.
            const home = await waitFor(
                "the master to come home to the primary region",
                t.dr.failbackHoldDownSec * 1000 + budget + HOME_SLACK_MS,
                async () => {
                    const m = await agreedMaster(s);
                    return m !== undefined && nodeAt(s, m).region === t.primaryRegion ? Date.now() : undefined;
                },
                REJOIN_POLL_MS,
            );
            timeToHomeMs = home - healAt;
        }
        // Writes go on after the fault is over (a resumed old master must not take any of them): read back below.
        const acksAtRecovery = writer.acks.length;
        const recoveredAt = Date.now();
        await waitFor("acknowledged writes after the fault was over", budget, () =>
            Promise.resolve(steady(writer.acks.length, acksAtRecovery, recoveredAt, ACKS_AFTER_RECOVERY)),
        ).catch((err: unknown) => {
            const what = "describe" in writer ? writer.describe() : JSON.stringify(writer.errors);
            throw new LabError(`${err instanceof Error ? err.message : String(err)}; the writer: ${what}`);
        });
        await writer.stop();
        await plain?.stop();
        const cutOffResult = await cutOff?.stop();
        const drStoppedAt = Date.now();
        const drResult = await dr?.stop();

        const before = [...writer.acks].reverse().find((a) => a.at <= faultAt);
        const during = writer.acks
            .map((a) => a.at)
            .filter((at) => at >= (before?.at ?? faultAt) && at <= ackAfter.at)
            .sort((a, b) => a - b);
        const rtoMs = longestGap([before?.at ?? faultAt, ...during]);
        const newMaster = await waitFor("the Sentinels to agree on the master after recovery", budget, () =>
            agreedMaster(s),
        );
        let rejoined: boolean | null = null;
        if (failover || scenario === "replica-crash") {
            // Every Redis node must be a replica of the new master again: the node the fault hit, and in a
            // multi-region stack a master that redis-homing failed back from (a region loss's DR master, or the DR
            // replica a planned handover picked), which is fenced and still says master until Sentinel demotes it
            // about 10 s after the fail-back.
            const returning = redisNodes(s).map((n) => n.name);
            const expected = returning.filter((n) => labNode(s, n).address !== newMaster.split(":")[0]);
            rejoined = await waitFor(
                `${expected.join(", ")} to rejoin as replicas`,
                budget,
                async () => {
                    const views = await Promise.all(
                        expected.map((n) => info(labNode(s, n).address, t.ports.redis, labLogin(s, "redis"))),
                    );
                    return views.every(
                        (i) =>
                            i?.role === "slave" &&
                            `${i.master_host}:${i.master_port}` === newMaster &&
                            i.master_link_status === "up",
                    );
                },
                REJOIN_POLL_MS,
            ).catch(onTimeout(false));
        }
        // Stopped before counting: nothing below writes, and the last samples cover the last writes.
        sampling.on = false;
        await sampler;
        const mastersAfter = await countMastersInside(s);
        const lost = await readBack(
            s,
            newMaster,
            writer.acks.map((a) => a.key),
        );
        const plainLost = plain
            ? await readBack(
                  s,
                  newMaster,
                  plain.acks.map((a) => a.key),
              )
            : 0;
        const cutOffLost = cutOffResult ? await readBack(s, newMaster, cutOffResult.acks) : 0;
        const drLost = drResult ? await readBack(s, newMaster, drResult.acks) : 0;
        const quorum = await Promise.all(
            sentinelEndpoints(s).map((e) => ckquorum(e.host, e.port, labLogin(s, "sentinel"), t.masterName)),
        );
        const switchAt = sw.after(faultAt);
        const switchedTo = sw.toAfter(faultAt);
        const overlap = writableOverlap(samples, MASTER_SAMPLE_MS);
        const handover = failover ? ((await lastHandover(s, faultNode)) ?? "sentinel") : null;
        return {
            run,
            faultNode,
            oldMaster: masterNode,
            newMaster: nodeByAddress(s, newMaster) ?? newMaster,
            switchedTo: failover && switchedTo !== undefined ? (nodeByAddress(s, switchedTo) ?? switchedTo) : null,
            switchMs: failover && switchAt !== undefined ? switchAt - faultAt : null,
            rtoMs,
            resumedAfterRestore,
            writesResumedWithoutHeal: partitioned ? !resumedAfterRestore : null,
            timeToHomeMs,
            ackedWrites: writer.acks.length,
            failedWrites: writer.failed(),
            handover,
            writerErrors: { ...writer.errors },
            lostAckedWrites: lost,
            oldMasterRejoinedAsReplica: rejoined,
            maxSimultaneousMasters: maxMasters,
            maxSimultaneousWritableMasters: overlap.length,
            writableOverlapWindows:
                overlap.length > 1
                    ? overlap.map((w) => ({ node: w.node, from: w.from - faultAt, to: w.to - faultAt }))
                    : null,
            plainWriter: plain
                ? { durability: durabilityText(PLAIN), ackedWrites: plain.acks.length, lostAckedWrites: plainLost }
                : null,
            drWriter:
                drResult && drNode
                    ? {
                          node: drNode,
                          ackedWrites: drResult.acks.length,
                          ackedAfterFault: drResult.ackTimes.filter((at) => at > faultAt && at <= drStoppedAt).length,
                          lostAckedWrites: drLost,
                      }
                    : null,
            cutOffWriter: cutOffResult
                ? {
                      node: masterNode,
                      durability: durabilityText(durability),
                      ackedWrites: cutOffResult.acks.length,
                      lostAckedWrites: cutOffLost,
                      errors: cutOffResult.errors,
                  }
                : null,
            mastersAfter,
            quorumOk: quorum.every((q) => q.startsWith("OK")),
        };
    } finally {
        sampling.on = false;
        await sampler;
        sw.close();
        await writer.stop().catch(() => undefined);
        await plain?.stop().catch(() => undefined);
        cutOff?.kill();
        dr?.kill();
        if (scenario === "master-hang") await resumeRedis(faultNode).catch(() => undefined);
        if (scenario === "region-loss-lagging")
            await Promise.all(drNodes.map((n) => resumeRedis(n.name).catch(() => undefined)));
        if (scenario === "master-stop") await startRedis(faultNode).catch(() => undefined);
        if (partitioned && !healed) await heal().catch(() => undefined);
    }
}

/** The drill writer's durability: region scenarios write at the region level, with the stack's region-safe count. */
function writerDurability(s: LabStack, scenario: Scenario): WriterDurability {
    return REGION.has(scenario) ? { durability: "region", replicas: s.topology.dr.regionSafeReplicas } : DURABILITY;
}

/**
 * Brings the master home to the preferred node with the shipped drill script, so every run starts alike; under the
 * lock redis-homing takes, so the two never run a controlled failover at once.
 */
async function failBack(s: LabStack, log: (m: string) => void): Promise<void> {
    const runner = drillRunner(s.topology);
    const r = await ssh(
        s,
        runner.name,
        ["flock", "-w", "120", PATHS.failoverLock, `${PATHS.scriptsDir}/failover-drill`, "failback-only"],
        300_000,
    );
    if (r.code !== 0) throw new LabError(`drill: fail-back failed on ${runner.name}`, r.stdout + r.stderr);
    log(r.stdout.trim().split("\n").pop() ?? "");
}

export async function drill(
    s: LabStack,
    scenario: Scenario,
    runs: number,
    log: (m: string) => void,
    writer: DrillWriter = "ts",
): Promise<DrillReport> {
    const perRun: DrillRun[] = [];
    for (let i = 1; i <= runs; i++) {
        perRun.push(await oneRun(s, scenario, i, log, writer));
        await failBack(s, log);
    }
    const switches = perRun.map((r) => r.switchMs).filter((x): x is number => x !== null);
    const rto = stat(perRun.map((r) => r.rtoMs));
    const sw = switches.length ? stat(switches) : null;
    const lost = perRun.reduce((a, r) => a + r.lostAckedWrites, 0);
    const rejoined = perRun.every((r) => r.oldMasterRejoinedAsReplica !== false)
        ? perRun[0].oldMasterRejoinedAsReplica === null
            ? null
            : true
        : false;
    const quorumOk = perRun.every((r) => r.quorumOk);
    const down = s.topology.sentinel.downAfterMs;
    const timed = scenario === "master-crash" || scenario === "master-hang";
    const planned = PLANNED.has(scenario);
    const resume = perRun.flatMap((r) => (r.switchMs === null ? [] : [r.rtoMs - r.switchMs]));
    const rtoTarget =
        scenario === "master-crash"
            ? TARGET_RTO_CRASH_MS
            : planned
              ? TARGET_RTO_PLANNED_MS
              : down + TARGET_RTO_OVER_DOWN_AFTER_MS;
    const rtoTargetText =
        scenario === "master-crash" || planned
            ? `<= ${rtoTarget} ms`
            : `<= ${rtoTarget} ms (down-after + ${TARGET_RTO_OVER_DOWN_AFTER_MS})`;
    const surfaced = perRun.reduce((a, r) => a + r.failedWrites, 0);
    const writable = Math.max(...perRun.map((r) => r.maxSimultaneousWritableMasters));
    const resumedWithoutHeal = PARTITIONED.has(scenario) ? perRun.every((r) => r.writesResumedWithoutHeal) : null;
    const homes = perRun.flatMap((r) => (r.timeToHomeMs === null ? [] : [r.timeToHomeMs]));
    const timeToHomeMs = homes.length ? Math.max(...homes) : null;
    const cutOffLost = PARTITIONED.has(scenario)
        ? perRun.reduce((a, r) => a + (r.cutOffWriter?.lostAckedWrites ?? 0), 0)
        : null;
    const paths = [...new Set(perRun.map((r) => r.handover))];
    const targets = [
        {
            name: "writes resume after +switch-master",
            target: `<= ${TARGET_RESUME_AFTER_SWITCH_MS} ms`,
            measured: resume.length ? `${Math.max(...resume)} ms (max)` : "n/a",
            met: timed && resume.length ? Math.max(...resume) <= TARGET_RESUME_AFTER_SWITCH_MS : null,
        },
        {
            name: "rtoMs.max",
            target: rtoTargetText,
            measured: `${rto.max} ms`,
            met: timed || planned ? rto.max <= rtoTarget : null,
        },
        ...(planned
            ? [
                  {
                      name: "errors surfaced to the application",
                      target: "0",
                      measured: String(surfaced),
                      met: surfaced === 0,
                  },
              ]
            : []),
        { name: "acknowledged writes lost", target: "0", measured: String(lost), met: lost === 0 },
        ...(REGION.has(scenario)
            ? [
                  {
                      name: "region loss: writes resume without the heal, rtoMs.max",
                      target: `<= ${down + TARGET_REGION_RTO_OVER_DOWN_AFTER_MS} ms (down-after + ${TARGET_REGION_RTO_OVER_DOWN_AFTER_MS})`,
                      measured: `${rto.max} ms${resumedWithoutHeal ? "" : ", resumed only after the heal"}`,
                      met: resumedWithoutHeal === true && rto.max <= down + TARGET_REGION_RTO_OVER_DOWN_AFTER_MS,
                  },
                  {
                      name: "heal to master home (hold-down included)",
                      target: `<= ${s.topology.dr.failbackHoldDownSec * 1000 + TARGET_HOME_AFTER_CATCH_UP_MS} ms (hold-down + ${TARGET_HOME_AFTER_CATCH_UP_MS})`,
                      measured: `${String(timeToHomeMs)} ms`,
                      met:
                          timeToHomeMs !== null &&
                          timeToHomeMs <= s.topology.dr.failbackHoldDownSec * 1000 + TARGET_HOME_AFTER_CATCH_UP_MS,
                  },
              ]
            : []),
        ...(cutOffLost === null
            ? []
            : [
                  {
                      name: "acknowledged writes lost by the cut-off side's writer",
                      target: "0",
                      measured: String(cutOffLost),
                      met: cutOffLost === 0,
                  },
              ]),
        { name: "maxSimultaneousWritableMasters", target: "1", measured: String(writable), met: writable <= 1 },
    ];
    return {
        stack: s.stack,
        scenario,
        runs,
        downAfterMs: down,
        switchMs: sw,
        rtoMs: rto,
        ackedWrites: perRun.reduce((a, r) => a + r.ackedWrites, 0),
        lostAckedWrites: lost,
        durability: durabilityText(writerDurability(s, scenario)),
        newMaster: perRun[perRun.length - 1].newMaster,
        handover: paths.length === 1 ? paths[0] : "mixed",
        oldMasterRejoinedAsReplica: rejoined,
        maxSimultaneousMasters: Math.max(...perRun.map((r) => r.maxSimultaneousMasters)),
        maxSimultaneousWritableMasters: writable,
        writesResumedWithoutHeal: resumedWithoutHeal,
        timeToHomeMs,
        quorumOk,
        // A partition must also leave the cut-off side's writer nothing lost and never two writable masters (the
        // fence's promise). Other scenarios report the writable masters; a resumed hung master can run one held
        // write after it was replaced (refused acknowledgement by the client's guard), which a sample may catch.
        correct:
            lost === 0 &&
            quorumOk &&
            rejoined !== false &&
            perRun.every((r) => r.mastersAfter === 1) &&
            (!PARTITIONED.has(scenario) || (cutOffLost === 0 && writable === 1)),
        targets,
        perRun,
    };
}
