import Redis from "ioredis";
import { createSentinelClient } from "../client";
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
import { ckquorum, info, loginOptions, withRedis } from "./probe";
import { startPythonWriter } from "./pythonWriter";
import { runCheck, ssh } from "./ssh";
import { labLogin, type LabStack } from "./stack";

/** Scenarios in which Sentinel must elect a new master. */
const FAILOVER_SCENARIOS = [
    "master-crash",
    "master-stop",
    "master-reboot",
    "master-hang",
    "master-partition",
    "region-loss",
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
 * every replica attached to the master (the client's default durability, "attached").
 */
const DURABILITY = { replicas: 1, timeoutMs: 200 };

/** Slack on top of two whole Sentinel failovers (down-after + failover-timeout each) for any wait after a fault. */
const FAILOVER_BUDGET_SLACK_MS = 30_000;
/** How long the Sentinels may take to agree on a master before a run starts (a previous run's fail-back settling). */
const AGREED_MASTER_TIMEOUT_MS = 60_000;
/**
 * Acknowledged writes before the fault, so the writer is past its connection set-up and writing steadily (about a
 * second of writes in the lab here). A count, not a time: a slower machine waits longer and verifies as much.
 */
const WARMUP_ACKS = 4_000;
const WARMUP_TIMEOUT_MS = 30_000;
/** After a partition: how long writes may take to resume with the partition still in place before it is healed. */
const RESUME_BEFORE_HEAL_MS = 5_000;
/** A hung master stays hung this much longer than the failover took, so the new master serves writes meanwhile. */
const HANG_AFTER_FAILOVER_MS = 1_500;
/**
 * Acknowledged writes after the fault is over (about three seconds of writes here, the window in which a resumed or
 * restarted old master could still take some), read back from the new master like every other one.
 */
const ACKS_AFTER_RECOVERY = 12_000;
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
    newMaster: string;
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
function watchSwitch(s: LabStack): { after: (t: number) => number | undefined; close: () => void } {
    const seen: number[] = [];
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
        sub.on("message", () => {
            seen.push(Date.now());
        });
        return sub;
    });
    return {
        after: (t) => seen.find((x) => x > t),
        close: () => {
            for (const x of subs) x.disconnect();
        },
    };
}

/** Which client the drill's writer uses: the TypeScript client (`client/`) or the Python one (`clients/python`). */
export type DrillWriter = "ts" | "python";

/** Numbered durable writes through Sentinel discovery, as an application does. */
function startWriter(s: LabStack, runId: string, writer: DrillWriter = "ts") {
    const primary = s.topology.primaryRegion;
    if (writer === "python") {
        return startPythonWriter(s, {
            prefix: `drill:${runId}`,
            region: primary,
            ...DURABILITY,
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
    const load = startDurableWrites(client, {
        prefix: `drill:${runId}`,
        ...DURABILITY,
        pauseAfterErrorMs: WRITE_RETRY_PAUSE_MS,
    });
    return {
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

    // A record left by an earlier run must not be read as this run's.
    await ssh(s, faultNode, ["rm", "-f", PATHS.lastHandover], 30_000);
    const sw = watchSwitch(s);
    const writer = startWriter(s, runId, writerKind);
    let maxMasters = 1;
    // An object, not a `let`: the sampler reads what the finally block writes later.
    const sampling = { on: true };
    const sampler = (async () => {
        while (sampling.on) {
            maxMasters = Math.max(maxMasters, await countMastersInside(s));
            await sleep(MASTER_SAMPLE_MS);
        }
    })();
    try {
        await waitFor("the writer's first acknowledged writes", WARMUP_TIMEOUT_MS, () =>
            Promise.resolve(writer.acks.length >= WARMUP_ACKS),
        );
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
            case "sentinel-crash":
                await crashSentinel(faultNode);
                break;
        }
        const failover = FAILOVER.has(scenario);
        const partitioned = scenario === "master-partition" || scenario === "region-loss";
        if (failover) await waitFor("Sentinel's +switch-master", budget, () => Promise.resolve(sw.after(faultAt)));
        const ackedAfterFault = () =>
            Promise.resolve(
                writer.acks.find((a) => a.at > faultAt && (!failover || a.at >= (sw.after(faultAt) ?? Infinity))),
            );
        let resumedAfterRestore = false;
        if (partitioned) {
            // The new master may have no replica left on its side (a whole region lost with min-replicas-to-write):
            // then writes resume only once the partition heals, and the report says so.
            const early = await waitFor("an acknowledged write", RESUME_BEFORE_HEAL_MS, ackedAfterFault).catch(
                onTimeout(undefined),
            );
            await heal();
            resumedAfterRestore = early === undefined;
        }
        const ackAfter = await waitFor("an acknowledged write after the fault", budget, ackedAfterFault);
        if (scenario === "master-hang") {
            // A fault of fixed length on purpose: the old master stays hung a little after the new one took over.
            await sleep(HANG_AFTER_FAILOVER_MS);
            await resumeRedis(faultNode);
        }
        if (scenario === "master-stop") await startRedis(faultNode);
        // Writes go on after the fault is over (a resumed old master must not take any of them): read back below.
        const acksAtRecovery = writer.acks.length;
        await waitFor("acknowledged writes after the fault was over", budget, () =>
            Promise.resolve(writer.acks.length - acksAtRecovery >= ACKS_AFTER_RECOVERY),
        );
        await writer.stop();

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
            const old = labNode(s, faultNode);
            rejoined = await waitFor(
                `${faultNode} to rejoin as a replica`,
                budget,
                async () => {
                    const i = await info(old.address, t.ports.redis, labLogin(s, "redis"));
                    return (
                        i?.role === "slave" &&
                        `${i.master_host}:${i.master_port}` === newMaster &&
                        i.master_link_status === "up"
                    );
                },
                REJOIN_POLL_MS,
            ).catch(onTimeout(false));
        }
        const mastersAfter = await countMastersInside(s);
        const lost = await readBack(
            s,
            newMaster,
            writer.acks.map((a) => a.key),
        );
        const quorum = await Promise.all(
            sentinelEndpoints(s).map((e) => ckquorum(e.host, e.port, labLogin(s, "sentinel"), t.masterName)),
        );
        const switchAt = sw.after(faultAt);
        const handover = failover ? ((await lastHandover(s, faultNode)) ?? "sentinel") : null;
        return {
            run,
            faultNode,
            oldMaster: masterNode,
            newMaster: nodeByAddress(s, newMaster) ?? newMaster,
            switchMs: failover && switchAt !== undefined ? switchAt - faultAt : null,
            rtoMs,
            resumedAfterRestore,
            ackedWrites: writer.acks.length,
            failedWrites: writer.failed(),
            handover,
            writerErrors: { ...writer.errors },
            lostAckedWrites: lost,
            oldMasterRejoinedAsReplica: rejoined,
            maxSimultaneousMasters: maxMasters,
            mastersAfter,
            quorumOk: quorum.every((q) => q.startsWith("OK")),
        };
    } finally {
        sampling.on = false;
        await sampler;
        sw.close();
        await writer.stop().catch(() => undefined);
        if (scenario === "master-hang") await resumeRedis(faultNode).catch(() => undefined);
        if (scenario === "master-stop") await startRedis(faultNode).catch(() => undefined);
        if (scenario === "master-partition" || scenario === "region-loss") await heal().catch(() => undefined);
    }
}

/** Brings the master home to the preferred node with the shipped drill script, so every run starts alike. */
async function failBack(s: LabStack, log: (m: string) => void): Promise<void> {
    const runner = drillRunner(s.topology);
    const r = await runCheck(s, runner.name, "failover-drill", ["failback-only"]);
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
        durability: `every attached replica, at least ${String(DURABILITY.replicas)} (WAIT rounds of ${String(DURABILITY.timeoutMs)} ms), write and WAIT on one connection`,
        newMaster: perRun[perRun.length - 1].newMaster,
        handover: paths.length === 1 ? paths[0] : "mixed",
        oldMasterRejoinedAsReplica: rejoined,
        maxSimultaneousMasters: Math.max(...perRun.map((r) => r.maxSimultaneousMasters)),
        quorumOk,
        correct: lost === 0 && quorumOk && rejoined !== false && perRun.every((r) => r.mastersAfter === 1),
        targets,
        perRun,
    };
}
