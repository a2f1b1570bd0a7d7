/**
 * How long Sentinel takes to see the promotion it ordered, by its INFO period: `SENTINEL FAILOVER` to
 * `+failover-state-wait-promotion` (Sentinel sent `SLAVEOF NO ONE`) and to `+promoted-slave` (it read the promoted
 * replica's INFO), on a loopback cluster (client/testing/loopbackCluster.ts: real redis-server and redis-sentinel).
 *
 *   npx tsx bench/sentinelPromotion.ts       # or: npm run bench:promotion
 *
 * During a failover Sentinel reads a replica every second, counted from its last read, so the promotion shows a second
 * after its last read before the command; `SENTINEL DEBUG info-period` sets how often it reads outside failovers, and
 * so how old that last read can be (cloud-init/sentinelConf.ts, where the nodes' period is chosen).
 *
 * Prints numbers; asserts nothing. Env: BENCH_INFO_PERIODS (comma-separated ms, default "1000,600": Sentinel's own
 * reading period during a failover, and the one the nodes use outside failovers),
 * BENCH_FAILOVERS (per period, default 12).
 */
import Redis from "ioredis";
import { startLoopbackCluster } from "../client/testing/loopbackCluster";
import { addr, sleep, waitUntilHealthy } from "../client/testing/sentinelQueries";

const PERIODS = (process.env.BENCH_INFO_PERIODS ?? "1000,600")
    .split(",")
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
const FAILOVERS = Number(process.env.BENCH_FAILOVERS ?? 12);
/** Between failovers: the replicas resync and Sentinel's reads settle into their period again. */
const SETTLE_MS = 3000;

interface Sample {
    /** Sentinel's own `info-refresh` of the replicas when the command was sent: the age of its last read. */
    readonly lastReadAgeMs: number;
    readonly slaveofMs: number;
    readonly promotedMs: number;
}

function summary(values: readonly number[]): string {
    const v = [...values].sort((a, b) => a - b);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const p50 = v[Math.floor((v.length - 1) / 2)];
    return `min ${String(v[0])}, p50 ${String(p50)}, mean ${mean.toFixed(0)}, max ${String(v[v.length - 1])}`;
}

async function main(): Promise<void> {
    const cluster = await startLoopbackCluster({ downAfterMs: 5000, failoverTimeoutMs: 10_000 });
    const sentinels = cluster.sentinels.map(
        (s) => new Redis({ host: s.host, port: s.port, password: cluster.sentinelPassword }),
    );
    const [leader] = sentinels;
    const events = new Redis({
        host: cluster.sentinels[0].host,
        port: cluster.sentinels[0].port,
        password: cluster.sentinelPassword,
    });
    const seen = new Map<string, number>();
    events.on("message", (channel: string) => {
        if (!seen.has(channel)) seen.set(channel, performance.now());
    });
    await events.subscribe("+failover-state-wait-promotion", "+promoted-slave", "+switch-master");
    console.log(
        `# Sentinel promotion latency (${new Date().toISOString()}), ${String(FAILOVERS)} failovers per period`,
    );
    console.log(
        `cluster: Redis ${cluster.nodes.map(addr).join(", ")}; command and events on Sentinel ${addr(cluster.sentinels[0])}\n`,
    );
    console.log(
        "| info-period ms | failovers | last read's age at the command | to SLAVEOF NO ONE | to +promoted-slave |",
    );
    console.log("|---:|---:|---|---|---|");
    try {
        for (const period of PERIODS) {
            for (const s of sentinels) await s.call("SENTINEL", "DEBUG", "info-period", String(period));
            const samples: Sample[] = [];
            for (let i = 0; i < FAILOVERS; i++) {
                await waitUntilHealthy(cluster, cluster.nodes.length - 1);
                await sleep(SETTLE_MS + Math.random() * period);
                const replicas = (await leader.call("SENTINEL", "REPLICAS", cluster.masterName)) as string[][];
                const ages = replicas.map((r) => Number(r[r.indexOf("info-refresh") + 1]));
                seen.clear();
                const sent = performance.now();
                await leader.call("SENTINEL", "FAILOVER", cluster.masterName);
                while (!seen.has("+switch-master") && performance.now() - sent < 15_000) await sleep(5);
                const at = (channel: string) => Math.round((seen.get(channel) ?? NaN) - sent);
                samples.push({
                    lastReadAgeMs: Math.min(...ages),
                    slaveofMs: at("+failover-state-wait-promotion"),
                    promotedMs: at("+promoted-slave"),
                });
            }
            console.log(
                `| ${String(period)} | ${String(samples.length)} | ${summary(samples.map((s) => s.lastReadAgeMs))} | ` +
                    `${summary(samples.map((s) => s.slaveofMs))} | ${summary(samples.map((s) => s.promotedMs))} |`,
            );
        }
    } finally {
        events.disconnect();
        for (const s of sentinels) s.disconnect();
        await cluster.close();
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
});
