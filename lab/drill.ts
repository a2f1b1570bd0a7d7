import Redis from "ioredis";
import { createSentinelClient } from "../client";
import { errorsByName, missingWrites, startDurableWrites } from "../client/testing/durableWrites";
import { agreedMaster, countMastersInside, nodeByAddress, redisNodes, sentinelEndpoints } from "./labCluster";
import { crashRedis, crashSentinel, heal, partitionNode, partitionRegion, pauseRedis, resumeRedis } from "./faults";
import { ckquorum, info, withRedis } from "./probe";
import { runCheck } from "./ssh";
import type { LabStack } from "./stack";

export const SCENARIOS = [
    "master-crash",
    "master-hang",
    "master-partition",
    "region-loss",
    "sentinel-crash",
    "replica-crash",
] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Scenarios in which Sentinel must elect a new master. */
const FAILOVER: ReadonlySet<Scenario> = new Set(["master-crash", "master-hang", "master-partition", "region-loss"]);

/** How the drill's writer acknowledges a write: the write and its WAIT on one connection, as one unit. */
const DURABILITY = { replicas: 1, timeoutMs: 200 };
/** The writer's pause after an error, so it does not spin on errors returned at once. */
const PAUSE_AFTER_ERROR_MS = 2;

export interface DrillRun {
    run: number;
    faultNode: string;
    oldMaster: string;
    newMaster: string;
    /** Fault to the first `+switch-master`; null when no failover is expected or none happened. */
    switchMs: number | null;
    /** Last acknowledged write before the fault to the first acknowledged write after it. */
    rtoMs: number;
    /** Writes resumed only after the fault was undone (no replica on the new master's side of a partition). */
    resumedAfterRestore: boolean;
    ackedWrites: number;
    failedWrites: number;
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
    oldMasterRejoinedAsReplica: boolean | null;
    maxSimultaneousMasters: number;
    quorumOk: boolean;
    /** True when every correctness condition holds (what CI asserts). */
    correct: boolean;
    targets: { name: string; target: string; measured: string; met: boolean | null }[];
    perRun: DrillRun[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
        if (Date.now() > deadline)
            throw new Error(`drill: timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
        await sleep(intervalMs);
    }
}

/** `+switch-master` events seen by any Sentinel the host can reach; `after(t)` is the first one after t. */
function watchSwitch(s: LabStack): { after: (t: number) => number | undefined; close: () => void } {
    const seen: number[] = [];
    const subs = sentinelEndpoints(s).map((e) => {
        const sub = new Redis({
            host: e.host,
            port: e.port,
            password: s.credentials.sentinelPassword,
            connectTimeout: 1000,
            retryStrategy: () => 500,
            maxRetriesPerRequest: null,
        });
        sub.on("error", () => undefined);
        sub.subscribe("+switch-master").catch(() => undefined);
        sub.on("message", () => seen.push(Date.now()));
        return sub;
    });
    return { after: (t) => seen.find((x) => x > t), close: () => subs.forEach((x) => x.disconnect()) };
}

/** Numbered durable writes through Sentinel discovery, as an application does. */
function startWriter(s: LabStack, runId: string) {
    const primary = s.topology.primaryRegion;
    const sentinels = [...sentinelEndpoints(s)].sort(
        (a, b) => Number(b.region === primary) - Number(a.region === primary),
    );
    const client = createSentinelClient({
        sentinels: sentinels.map(({ host, port }) => ({ host, port })),
        masterName: s.topology.masterName,
        region: primary,
        redis: { password: s.credentials.redisPassword },
        sentinel: { password: s.credentials.sentinelPassword },
        staleCache: false,
        metrics: false,
        connectionName: "redis-ha-drill",
    });
    const load = startDurableWrites(client, {
        prefix: `drill:${runId}`,
        ...DURABILITY,
        pauseAfterErrorMs: PAUSE_AFTER_ERROR_MS,
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

async function readBack(s: LabStack, master: string, keys: string[]): Promise<number> {
    const [host, port] = master.split(":");
    const missing = await withRedis(
        host,
        Number(port),
        s.credentials.redisPassword,
        async (r) => (await missingWrites(r, keys)).length,
        10_000,
    );
    if (missing === undefined) throw new Error(`drill: cannot read back from ${master}`);
    return missing;
}

async function oneRun(s: LabStack, scenario: Scenario, run: number, log: (m: string) => void): Promise<DrillRun> {
    const t = s.topology;
    const budget = 2 * (t.sentinel.downAfterMs + t.sentinel.failoverTimeoutMs) + 30_000;
    const master = await waitFor("the Sentinels to agree on a master", 60_000, () => agreedMaster(s));
    const masterNode = nodeByAddress(s, master)!;
    const masterRegion = s.nodes.find((n) => n.name === masterNode)!.region;
    const replicas = redisNodes(s).filter((n) => n.name !== masterNode);
    const sentinelOnly = s.topology.nodes.filter((n) => n.runsSentinel && n.name !== masterNode).map((n) => n.name);
    const faultNode =
        scenario === "replica-crash"
            ? replicas[0].name
            : scenario === "sentinel-crash"
              ? sentinelOnly[sentinelOnly.length - 1]
              : masterNode;
    const runId = `${Date.now().toString(36)}-${run}`;

    const sw = watchSwitch(s);
    const writer = startWriter(s, runId);
    let maxMasters = 1;
    let sampling = true;
    const sampler = (async () => {
        while (sampling) {
            maxMasters = Math.max(maxMasters, await countMastersInside(s));
            await sleep(250);
        }
    })();
    try {
        await waitFor("the writer's first acknowledged writes", 30_000, async () => writer.acks.length >= 50);
        await sleep(1000);
        const faultAt = Date.now();
        log(`run ${run}: ${scenario} on ${faultNode} (master ${masterNode})`);
        switch (scenario) {
            case "master-crash":
            case "replica-crash":
                await crashRedis(faultNode);
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
        if (failover) await waitFor("Sentinel's +switch-master", budget, async () => sw.after(faultAt));
        const ackedAfterFault = async () =>
            writer.acks.find((a) => a.at > faultAt && (!failover || a.at >= (sw.after(faultAt) ?? Infinity)));
        let resumedAfterRestore = false;
        if (partitioned) {
            // The new master may have no replica left on its side (a whole region lost with min-replicas-to-write):
            // then writes resume only once the partition heals, and the report says so.
            const early = await waitFor("an acknowledged write", 5000, ackedAfterFault).catch(() => undefined);
            await heal();
            resumedAfterRestore = early === undefined;
        }
        const ackAfter = await waitFor("an acknowledged write after the fault", budget, ackedAfterFault);
        // Keep a hang a little longer than the failover took, then resume the old master.
        await sleep(1500);
        if (scenario === "master-hang") await resumeRedis(faultNode);
        await sleep(1500);
        await writer.stop();

        const before = [...writer.acks].reverse().find((a) => a.at <= faultAt);
        const rtoMs = ackAfter.at - (before?.at ?? faultAt);
        const newMaster = await waitFor("the Sentinels to agree on the master after recovery", budget, () =>
            agreedMaster(s),
        );
        let rejoined: boolean | null = null;
        if (failover || scenario === "replica-crash") {
            const old = s.nodes.find((n) => n.name === faultNode)!;
            rejoined = await waitFor(
                `${faultNode} to rejoin as a replica`,
                budget,
                async () => {
                    const i = await info(old.address, t.ports.redis, s.credentials.redisPassword);
                    return (
                        i?.role === "slave" &&
                        `${i.master_host}:${i.master_port}` === newMaster &&
                        i.master_link_status === "up"
                    );
                },
                500,
            ).catch(() => false);
        }
        const mastersAfter = await countMastersInside(s);
        const lost = await readBack(
            s,
            newMaster,
            writer.acks.map((a) => a.key),
        );
        const quorum = await Promise.all(
            sentinelEndpoints(s).map((e) => ckquorum(e.host, e.port, s.credentials.sentinelPassword, t.masterName)),
        );
        const switchAt = sw.after(faultAt);
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
            writerErrors: { ...writer.errors },
            lostAckedWrites: lost,
            oldMasterRejoinedAsReplica: rejoined,
            maxSimultaneousMasters: maxMasters,
            mastersAfter,
            quorumOk: quorum.every((q) => q.startsWith("OK")),
        };
    } finally {
        sampling = false;
        await sampler;
        sw.close();
        await writer.stop().catch(() => undefined);
        if (scenario === "master-hang") await resumeRedis(faultNode).catch(() => undefined);
        if (scenario === "master-partition" || scenario === "region-loss") await heal().catch(() => undefined);
    }
}

/** Brings the master home to the preferred node with the shipped drill script, so every run starts alike. */
async function failBack(s: LabStack, log: (m: string) => void): Promise<void> {
    const runner =
        s.topology.nodes.find((n) => n.runsSentinel && n.region === s.topology.primaryRegion) ??
        s.topology.nodes.find((n) => n.runsSentinel)!;
    const r = await runCheck(s, runner.name, "failover-drill", ["failback-only"]);
    if (r.code !== 0) throw new Error(`drill: fail-back failed on ${runner.name}: ${(r.stdout + r.stderr).trim()}`);
    log(r.stdout.trim().split("\n").pop() ?? "");
}

export async function drill(
    s: LabStack,
    scenario: Scenario,
    runs: number,
    log: (m: string) => void,
): Promise<DrillReport> {
    const perRun: DrillRun[] = [];
    for (let i = 1; i <= runs; i++) {
        perRun.push(await oneRun(s, scenario, i, log));
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
    const resume = perRun.filter((r) => r.switchMs !== null).map((r) => r.rtoMs - r.switchMs!);
    const targets = [
        {
            name: "writes resume after +switch-master",
            target: "<= 500 ms",
            measured: resume.length ? `${Math.max(...resume)} ms (max)` : "n/a",
            met: timed && resume.length ? Math.max(...resume) <= 500 : null,
        },
        {
            name: "rtoMs.max",
            target: `<= ${down + 2500} ms (down-after + 2500)`,
            measured: `${rto.max} ms`,
            met: timed ? rto.max <= down + 2500 : null,
        },
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
        durability: `WAIT ${DURABILITY.replicas} (${DURABILITY.timeoutMs} ms), write and WAIT on one connection`,
        newMaster: perRun[perRun.length - 1].newMaster,
        oldMasterRejoinedAsReplica: rejoined,
        maxSimultaneousMasters: Math.max(...perRun.map((r) => r.maxSimultaneousMasters)),
        quorumOk,
        correct: lost === 0 && quorumOk && rejoined !== false && perRun.every((r) => r.mastersAfter === 1),
        targets,
        perRun,
    };
}
