/**
 * Benchmarks the Sentinel client against plain ioredis on the same cluster, in the same run.
 *
 *   npx tsx bench/client.ts                 # starts a loopback cluster (client/testing/loopbackCluster.ts)
 *   REDIS_HA_CLUSTER_MODULE=./lab/x.ts npx tsx bench/client.ts   # a lab cluster with fault injection
 *   REDIS_SENTINELS=h:p,h:p REDIS_MASTER_NAME=... REDIS_PASSWORD=... REDIS_SENTINEL_PASSWORD=... \
 *     npx tsx bench/client.ts               # given Sentinels: throughput/latency only (no faults)
 *
 * 1. Throughput and p50/p99 latency, client vs plain ioredis (defaults), same master, interleaved
 *    rounds, at 1 and 64 commands in flight: on loopback, then (loopback cluster only) with the
 *    master behind a proxy that adds BENCH_DELAY_MS (default 1) to every round trip. Ratios
 *    client/plain per round, medians over rounds. On loopback, the same two sides also run over TLS
 *    (a second loopback cluster whose Redis nodes serve TLS, certificates made with OpenSSL) in the
 *    same rounds: client/plain over TLS, and TLS/plaintext for each.
 * 2. A master crash (SIGKILL) and a master hang (SIGSTOP past the failover, then SIGCONT), with
 *    three writers running at once through the same fault: this client, this client with ioredis'
 *    own failover detector, and plain ioredis with default options. Each does `SET k k` then
 *    `WAIT 1 200`, one at a time, and counts a write as acknowledged only when WAIT returned ≥ 1.
 *    Printed: write unavailability (the longest gap between two acknowledged writes that survived),
 *    when writing resumed relative to Sentinel's first `+switch-master` (the floor for any client),
 *    acknowledged writes lost, caller-visible errors and reconnects.
 *
 * Prints numbers; asserts nothing. Env: BENCH_SECONDS (per side and round, default 0.5),
 * BENCH_ROUNDS (default 9), BENCH_DELAY_MS (default 1; 0 skips the proxied run), BENCH_FAULTS=0 (throughput only, skip the fault scenarios),
 * BENCH_TLS=0 (skip the TLS sides),
 * BENCH_PLAIN_COMMAND_TIMEOUT=1000 (plain ioredis with the client's commandTimeout, see plainIoredis).
 */
import type { ConnectionOptions } from "node:tls";
import Redis from "ioredis";
import { createSentinelClient, SentinelClient, SentinelClientOptions } from "../client";
import { ClusterHandle, NodeAddress, openCluster } from "../client/testing/cluster";
import {
    addr,
    masterFromSentinels,
    roleOf,
    sleep,
    waitFor,
    waitUntilHealthy,
    withConnection,
} from "../client/testing/sentinelQueries";
import { errorsByName, missingWrites, startDurableWrites } from "../client/testing/durableWrites";
import { parseEndpointList } from "../client/options";
import { startLoopbackCluster } from "../client/testing/loopbackCluster";
import { startDelayProxy } from "./delayProxy";

interface Target {
    sentinels: NodeAddress[];
    masterName: string;
    password?: string;
    sentinelPassword?: string;
    /** TLS to the Redis nodes (the Sentinels stay plaintext). */
    tls?: ConnectionOptions;
}

const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
/** Added round trip of the proxied run, ms (BENCH_DELAY_MS=0 skips it). */
const DELAY_MS = Number(process.env.BENCH_DELAY_MS ?? 1);
/** Loopback also over TLS (BENCH_TLS=0 skips it). */
const TLS = process.env.BENCH_TLS !== "0";

function clientOptions(t: Target, extra: Partial<SentinelClientOptions> = {}): SentinelClientOptions {
    return {
        sentinels: t.sentinels,
        masterName: t.masterName,
        redis: { password: t.password, ...(t.tls ? { tls: t.tls } : {}) },
        sentinel: { password: t.sentinelPassword },
        timeouts: { commandMs: 1000, deadlineMs: 15_000 },
        ...extra,
    };
}

function untilReady(r: Redis): Promise<void> {
    if (r.status === "ready") return Promise.resolve();
    return new Promise<void>((resolve) => {
        r.once("ready", () => {
            resolve();
        });
    });
}

async function currentMaster(c: ClusterHandle): Promise<NodeAddress> {
    const m = await masterFromSentinels(c);
    if (!m) throw new Error("no Sentinel names a master");
    return m;
}

function plainIoredis(t: Target): Redis {
    // ioredis defaults, as an application would write it.
    const r = new Redis({
        sentinels: t.sentinels,
        name: t.masterName,
        password: t.password,
        sentinelPassword: t.sentinelPassword,
        // ioredis applies `tls` to the Redis socket in Sentinel mode only with enableTLSForSentinelMode.
        ...(t.tls ? { tls: t.tls, enableTLSForSentinelMode: true } : {}),
        // BENCH_PLAIN_COMMAND_TIMEOUT=ms: give plain ioredis the client's per-command timer too, to
        // separate its cost (one setTimeout per command inside ioredis) from the client's own.
        commandTimeout: process.env.BENCH_PLAIN_COMMAND_TIMEOUT
            ? Number(process.env.BENCH_PLAIN_COMMAND_TIMEOUT)
            : undefined,
    });
    r.on("error", () => undefined);
    return r;
}

const pct = (sorted: number[], p: number) =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;

interface RunResult {
    ops: number;
    seconds: number;
    latencies: number[];
    /** CPU time (user + system) of this process during the run, µs: the client's own cost, unlike ops/s not skewed by other load. */
    cpuMicros: number;
}

/** `concurrency` loops calling `op` for `seconds`. */
async function run(op: (i: number) => Promise<unknown>, concurrency: number, seconds: number): Promise<RunResult> {
    const latencies: number[] = [];
    let i = 0;
    const end = performance.now() + seconds * 1000;
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    await Promise.all(
        Array.from({ length: concurrency }, async () => {
            while (performance.now() < end) {
                const t = performance.now();
                await op(i++);
                latencies.push(performance.now() - t);
            }
        }),
    );
    const cpu = process.cpuUsage(cpu0);
    return {
        ops: latencies.length,
        seconds: (performance.now() - start) / 1000,
        latencies,
        cpuMicros: cpu.user + cpu.system,
    };
}

/** One round's figures of one side. */
interface RoundStats {
    opsPerSec: number;
    p50: number;
    p99: number;
    cpuPerOp: number;
}

function stats(r: RunResult): RoundStats {
    const lat = [...r.latencies].sort((a, b) => a - b);
    return { opsPerSec: r.ops / r.seconds, p50: pct(lat, 50), p99: pct(lat, 99), cpuPerOp: r.cpuMicros / r.ops };
}

const median = (xs: number[]) =>
    pct(
        [...xs].sort((a, b) => a - b),
        50,
    );
const range = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

/** One workload: the same operation made by plain ioredis and by the client. */
interface Workload {
    name: string;
    concurrency: number;
    plain: (i: number) => Promise<unknown>;
    client: (i: number) => Promise<unknown>;
}

function workloads(plain: Redis, client: SentinelClient): Workload[] {
    const value = "x".repeat(64);
    return [
        {
            name: "GET, 1 in flight",
            concurrency: 1,
            plain: (i) => plain.get(`b:${i % 1000}`),
            client: (i) => client.read((r) => r.get(`b:${i % 1000}`)),
        },
        {
            name: "GET, 64 in flight",
            concurrency: 64,
            plain: (i) => plain.get(`b:${i % 1000}`),
            client: (i) => client.read((r) => r.get(`b:${i % 1000}`)),
        },
        {
            name: "SET, 1 in flight",
            concurrency: 1,
            plain: (i) => plain.set(`b:${i % 1000}`, value),
            client: (i) => client.write((r) => r.set(`b:${i % 1000}`, value)),
        },
        {
            name: "SET, 64 in flight",
            concurrency: 64,
            plain: (i) => plain.set(`b:${i % 1000}`, value),
            client: (i) => client.write((r) => r.set(`b:${i % 1000}`, value)),
        },
        {
            // Not like for like: the durable write also sends ROLE and checks the replicas (see durableWrite.ts).
            name: "SET+WAIT 1, 1 in flight (durableWrite vs SET+WAIT pipeline)",
            concurrency: 1,
            plain: (i) =>
                plain
                    .pipeline()
                    .set(`d:${i % 1000}`, value)
                    .wait(1, 200)
                    .exec(),
            client: (i) => client.durableWrite((p) => p.set(`d:${i % 1000}`, value), { replicas: 1, timeoutMs: 200 }),
        },
    ];
}

/** The two sides of one transport (plaintext, or TLS to a second cluster): plain ioredis and the client. */
interface Transport {
    name: string;
    plain: Redis;
    client: SentinelClient;
    workloads: Workload[];
}

async function openTransport(t: Target, name: string): Promise<Transport> {
    const client = createSentinelClient(clientOptions(t));
    const plain = plainIoredis(t);
    await client.master.whenReady();
    await untilReady(plain);
    return { name, plain, client, workloads: workloads(plain, client) };
}

async function closeTransport(x: Transport): Promise<void> {
    await x.client.close();
    x.plain.disconnect();
}

/** Figures of one side over the rounds. */
type Rounds = RoundStats[];

/** `a[k] / b[k]` of `f` per round: median and range. */
function ratio(a: Rounds, b: Rounds, f: (x: RoundStats) => number): string {
    const r = a.map((x, k) => f(x) / f(b[k]));
    return `${median(r).toFixed(3)} (${range(r, 2)})`;
}

/**
 * Client against plain ioredis (defaults) on the same master: `ROUNDS` rounds of `SECONDS` each,
 * the sides alternating (and which goes first rotating), so load from elsewhere on the machine hits
 * them alike. With `tls`, the same two sides over TLS to a second cluster join the rounds, so TLS
 * and plaintext are compared in the same rounds too. Every ratio is computed per round and the
 * median over rounds is printed, with the range.
 */
async function throughput(t: Target, network: string, tls?: Target): Promise<void> {
    const transports = [await openTransport(t, "plaintext")];
    if (tls) transports.push(await openTransport(tls, "TLS"));
    console.log(
        `\n## Throughput and latency, ${network} (same master; ${ROUNDS} rounds of ${SECONDS} s per side, sides alternating)\n`,
    );
    console.log(
        "Ratios are client / plain ioredis per round; median over rounds, range in brackets. " +
            "Target: ops ratio ≥ 0.95, p99 ratio ≤ 1.10. CPU µs/op is this process's CPU per call (the proxy runs in its own process).\n",
    );
    const header =
        "| workload | plain ops/s | client ops/s | ops ratio | plain p50 / p99 ms | client p50 / p99 ms | p99 ratio | CPU µs/op plain / client |\n" +
        "|---|---:|---:|---:|---:|---:|---:|---:|";
    const m = (xs: Rounds, f: (x: RoundStats) => number) => median(xs.map(f));
    const row = (name: string, p: Rounds, c: Rounds) =>
        `| ${name} | ${m(p, (x) => x.opsPerSec).toFixed(0)} | ${m(c, (x) => x.opsPerSec).toFixed(0)} | ` +
        `${ratio(c, p, (x) => x.opsPerSec)} | ` +
        `${m(p, (x) => x.p50).toFixed(3)} / ${m(p, (x) => x.p99).toFixed(3)} | ` +
        `${m(c, (x) => x.p50).toFixed(3)} / ${m(c, (x) => x.p99).toFixed(3)} | ` +
        `${ratio(c, p, (x) => x.p99)} | ` +
        `${m(p, (x) => x.cpuPerOp).toFixed(1)} / ${m(c, (x) => x.cpuPerOp).toFixed(1)} |`;
    /** Per workload, per transport: [plain rounds, client rounds]. */
    const results: Array<Array<[Rounds, Rounds]>> = [];
    for (let w = 0; w < transports[0].workloads.length; w++) {
        const sides = transports.flatMap((x) => [x.workloads[w].plain, x.workloads[w].client]);
        const concurrency = transports[0].workloads[w].concurrency;
        for (const side of sides) await run(side, concurrency, 0.3); // warm-up
        const rounds: Rounds[] = sides.map(() => []);
        for (let k = 0; k < ROUNDS; k++) {
            // Rotate which side goes first, and reverse the order every other round.
            const order = sides.map((_, j) => (j + k) % sides.length);
            if (k % 2 === 1) order.reverse();
            for (const j of order) rounds[j].push(stats(await run(sides[j], concurrency, SECONDS)));
        }
        results.push(transports.map((_, x) => [rounds[2 * x], rounds[2 * x + 1]]));
    }
    for (const [x, tr] of transports.entries()) {
        if (transports.length > 1) console.log(`\n### ${tr.name}\n`);
        console.log(header);
        for (const [w, wl] of tr.workloads.entries()) console.log(row(wl.name, results[w][x][0], results[w][x][1]));
    }
    if (transports.length > 1) {
        console.log(
            "\n### TLS against plaintext, same rounds (TLS / plaintext per round; ops < 1 and p99 > 1 are the cost of TLS)\n",
        );
        console.log(
            "| workload | plain ioredis ops ratio | plain ioredis p99 ratio | client ops ratio | client p99 ratio |",
        );
        console.log("|---|---:|---:|---:|---:|");
        for (const [w, wl] of transports[0].workloads.entries()) {
            const [[pp, pc], [tp, tc]] = results[w];
            console.log(
                `| ${wl.name} | ${ratio(tp, pp, (x) => x.opsPerSec)} | ${ratio(tp, pp, (x) => x.p99)} | ` +
                    `${ratio(tc, pc, (x) => x.opsPerSec)} | ${ratio(tc, pc, (x) => x.p99)} |`,
            );
        }
    }
    for (const tr of transports)
        await alternating(
            tr.workloads.filter((w) => w.concurrency === 1),
            tr.name,
        );
    for (const tr of transports) await closeTransport(tr);
}

/**
 * 1 in flight, plain and client calls alternating one by one for as long as all the rounds above:
 * any disturbance lands on both sides within a millisecond. Pairs go plain-client then
 * client-plain (ABBA), so neither side always follows the other: a call that starts right after
 * the other side's reply meets the event loop, and the proxy's millisecond timers, in the same
 * phase every time, which with a fixed order biased one side by tens of µs behind the proxy.
 * With one call in flight, throughput is 1 / mean latency, so the ops ratio is plain mean / client mean.
 */
async function alternating(workloads: Workload[], transport: string): Promise<void> {
    console.log(
        `\nSame workloads at 1 in flight, ${transport}, plain and client calls alternating one by one (${(ROUNDS * SECONDS).toFixed(1)} s each):\n`,
    );
    console.log("| workload | plain mean / p99 ms | client mean / p99 ms | ops ratio | p99 ratio |");
    console.log("|---|---:|---:|---:|---:|");
    for (const w of workloads) {
        const lp: number[] = [];
        const lc: number[] = [];
        const end = performance.now() + ROUNDS * SECONDS * 1000;
        const timed = async (call: (i: number) => Promise<unknown>, i: number, into: number[]) => {
            const t = performance.now();
            await call(i);
            into.push(performance.now() - t);
        };
        for (let i = 0; performance.now() < end; i++) {
            if (i % 2 === 0) {
                await timed(w.plain, i, lp);
                await timed(w.client, i, lc);
            } else {
                await timed(w.client, i, lc);
                await timed(w.plain, i, lp);
            }
        }
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
        const p99 = (xs: number[]) =>
            pct(
                [...xs].sort((a, b) => a - b),
                99,
            );
        console.log(
            `| ${w.name} | ${mean(lp).toFixed(3)} / ${p99(lp).toFixed(3)} | ${mean(lc).toFixed(3)} / ${p99(lc).toFixed(3)} | ` +
                `${(mean(lp) / mean(lc)).toFixed(3)} | ${(p99(lc) / p99(lp)).toFixed(3)} |`,
        );
    }
}

/** The same comparison with the master behind {@link startDelayProxy}: every round trip `delayMs` longer. */
async function throughputDelayed(delayMs: number): Promise<void> {
    const proxy = await startDelayProxy(delayMs);
    try {
        const c = await startLoopbackCluster({
            masterVia: (m) => {
                proxy.setTarget(m);
                return proxy.address;
            },
        });
        try {
            await throughput(
                {
                    sentinels: [...c.sentinels],
                    masterName: c.masterName,
                    password: c.password,
                    sentinelPassword: c.sentinelPassword,
                },
                `master behind a proxy adding ${delayMs} ms per round trip`,
            );
        } finally {
            await c.close();
        }
    } finally {
        await proxy.close();
    }
}

interface Writer {
    name: string;
    acks: Array<{ key: string; at: number }>;
    errors: Map<string, number>;
    reconnects: number;
    stop(): Promise<void>;
    close(): Promise<void>;
}

function clientWriter(name: string, client: SentinelClient, prefix: string): Writer {
    const load = startDurableWrites(client, { prefix, idempotent: true });
    const w: Writer = {
        name,
        acks: load.acks,
        errors: new Map(),
        reconnects: 0,
        stop: async () => {
            await load.stop();
            for (const [k, v] of Object.entries(errorsByName(load.errors))) w.errors.set(k, v);
        },
        close: () => client.close(),
    };
    client.on("connectionStateChange", (e) => {
        if (e.role === "master" && e.state === "ready" && e.epoch > 1) w.reconnects++;
    });
    return w;
}

function plainWriter(t: Target, prefix: string): Writer {
    const redis = plainIoredis(t);
    const run = { stopped: false };
    let n = 0;
    let readies = 0;
    const w: Writer = {
        name: "plain ioredis (defaults)",
        acks: [],
        errors: new Map(),
        reconnects: 0,
        stop: async () => {
            run.stopped = true;
            await loop;
        },
        close: () => {
            redis.disconnect();
            return Promise.resolve();
        },
    };
    redis.on("ready", () => ++readies > 1 && w.reconnects++);
    const loop = (async () => {
        await untilReady(redis);
        while (!run.stopped) {
            const key = `${prefix}:${n++}`;
            try {
                await redis.set(key, key);
                const acked = await redis.wait(1, 200);
                if (acked >= 1) w.acks.push({ key, at: Date.now() });
            } catch (err) {
                const m = (err as Error).message.split(" ")[0] ?? "error";
                w.errors.set(m, (w.errors.get(m) ?? 0) + 1);
                await sleep(10); // errors come back at once while disconnected: don't spin
            }
        }
    })();
    return w;
}

/** Sentinel's own view: the first `+switch-master` published by any Sentinel, and every distinct switch. */
async function switchMasterWatch(
    c: ClusterHandle,
): Promise<{ at(): number | null; switches(): string[]; close(): void }> {
    let at: number | null = null;
    const switches: string[] = [];
    const subs = c.sentinels.map((s) => {
        const sub = new Redis({ host: s.host, port: s.port, password: c.sentinelPassword });
        sub.on("error", () => undefined);
        sub.on("message", (_ch: string, msg: string) => {
            at ??= Date.now();
            const [, fh, fp, th, tp] = msg.split(" ");
            const sw = `${fh}:${fp} -> ${th}:${tp}`;
            if (!switches.includes(sw)) switches.push(sw);
        });
        return sub;
    });
    await Promise.all(subs.map((s) => s.subscribe("+switch-master")));
    return {
        at: () => at,
        switches: () => switches,
        close: () => {
            subs.forEach((s) => {
                s.disconnect();
            });
        },
    };
}

async function faultScenario(c: ClusterHandle, kind: "crash" | "hang"): Promise<void> {
    const t: Target = {
        sentinels: [...c.sentinels],
        masterName: c.masterName,
        password: c.password,
        sentinelPassword: c.sentinelPassword,
    };
    await waitUntilHealthy(c, 2, 30_000);
    const writers = [
        clientWriter(
            "this client (watcher, default)",
            createSentinelClient(clientOptions(t, { metrics: false })),
            `${kind}:w`,
        ),
        clientWriter(
            "this client, failoverDetection: ioredis",
            createSentinelClient(clientOptions(t, { metrics: false, failoverDetection: "ioredis" })),
            `${kind}:i`,
        ),
        plainWriter(t, `${kind}:p`),
    ];
    const watch = await switchMasterWatch(c);
    await sleep(1500);
    const oldMaster = await currentMaster(c);
    const faultAt = Date.now();
    if (kind === "crash") {
        await c.kill(oldMaster);
        await waitFor("+switch-master", () => Promise.resolve(watch.at()), 30_000);
        await sleep(6000);
    } else {
        const pauseMs = 8000;
        await c.pause(oldMaster);
        await sleep(pauseMs);
        await c.resume(oldMaster);
        await waitFor(
            "the old master to be converted",
            async () => (await roleOf(c, oldMaster)) === "slave",
            40_000,
            250,
        );
        await sleep(3000);
    }
    await Promise.all(writers.map((w) => w.stop()));
    const newMaster = await currentMaster(c);
    const switchAt = watch.at();
    const switches = watch.switches();
    watch.close();

    const label = kind === "crash" ? "Master crash (SIGKILL, kept down)" : "Master hang (SIGSTOP 8 s, then SIGCONT)";
    console.log(
        `\n## ${label}: down-after ${c.downAfterMs} ms; first Sentinel +switch-master ${switchAt ? ((switchAt - faultAt) / 1000).toFixed(2) + " s" : "not seen"} after the fault` +
            (switches.length > 1 ? `; NOTE: ${switches.length} failovers (${switches.join(", ")})` : "") +
            "\n",
    );
    console.log(
        "| writer | writes unavailable (longest gap between surviving acks) | resumed after +switch-master | acked | acked but lost | caller-visible errors | reconnects |",
    );
    console.log("|---|---:|---:|---:|---:|---|---:|");
    for (const w of writers) {
        const keys = w.acks.map((a) => a.key);
        const missing = new Set(await withConnection(newMaster, c.password, (r) => missingWrites(r, keys), 10_000));
        const lost = missing.size;
        // The gap that matters: between two acknowledged writes that survived, ending after the fault.
        const surviving = w.acks.filter((a) => !missing.has(a.key));
        let gap = 0;
        let resumedAt: number | undefined;
        for (let i = 1; i < surviving.length; i++) {
            const g = surviving[i].at - surviving[i - 1].at;
            if (surviving[i].at > faultAt && g > gap) {
                gap = g;
                resumedAt = surviving[i].at;
            }
        }
        const behind = resumedAt !== undefined && switchAt ? `${((resumedAt - switchAt) / 1000).toFixed(2)} s` : "n/a";
        const errors = [...w.errors].map(([k, v]) => `${k} ×${v}`).join(", ") || "none";
        console.log(
            `| ${w.name} | ${(gap / 1000).toFixed(2)} s | ${behind} | ${w.acks.length} | ${lost} | ${errors} | ${w.reconnects} |`,
        );
    }
    await Promise.all(writers.map((w) => w.close()));
    if (kind === "crash") await c.restart(oldMaster); // back as a replica for the next scenario
}

async function main(): Promise<void> {
    console.log(`# Redis Sentinel client benchmark (${new Date().toISOString()}, node ${process.version})`);
    if (process.env.REDIS_SENTINELS && !process.env.REDIS_HA_CLUSTER_MODULE) {
        await throughput(
            {
                sentinels: parseEndpointList(process.env.REDIS_SENTINELS).map((e) => ({
                    host: e.host,
                    port: e.port ?? 26379,
                })),
                masterName: process.env.REDIS_MASTER_NAME ?? "mymaster",
                password: process.env.REDIS_PASSWORD,
                sentinelPassword: process.env.REDIS_SENTINEL_PASSWORD,
            },
            "given Sentinels",
        );
        console.log("\n(fault scenarios need a cluster with fault injection: run without REDIS_SENTINELS)");
        return;
    }
    const c = await openCluster({ downAfterMs: 2000, failoverTimeoutMs: 5000 });
    try {
        console.log(`cluster: Redis ${c.nodes.map(addr).join(", ")}; Sentinels ${c.sentinels.map(addr).join(", ")}`);
        const tlsCluster =
            TLS && !process.env.REDIS_HA_CLUSTER_MODULE ? await startLoopbackCluster({ tls: true }) : undefined;
        try {
            await throughput(
                {
                    sentinels: [...c.sentinels],
                    masterName: c.masterName,
                    password: c.password,
                    sentinelPassword: c.sentinelPassword,
                },
                tlsCluster ? "loopback, plaintext and TLS (a second loopback cluster serving TLS)" : "loopback",
                tlsCluster && {
                    sentinels: [...tlsCluster.sentinels],
                    masterName: tlsCluster.masterName,
                    password: tlsCluster.password,
                    sentinelPassword: tlsCluster.sentinelPassword,
                    tls: tlsCluster.redisTls,
                },
            );
        } finally {
            await tlsCluster?.close();
        }
        if (DELAY_MS > 0 && !process.env.REDIS_HA_CLUSTER_MODULE) await throughputDelayed(DELAY_MS);
        if (process.env.BENCH_FAULTS !== "0") {
            await faultScenario(c, "crash");
            await faultScenario(c, "hang");
        }
    } finally {
        await c.close();
    }
}

main().then(
    () => process.exit(0),
    (err: unknown) => {
        console.error(err);
        process.exit(1);
    },
);
