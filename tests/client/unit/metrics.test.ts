/* eslint-disable @typescript-eslint/no-non-null-assertion -- test fakes implement async APIs without awaiting; a missing value fails the test where it is used */
import { Histogram, Registry } from "prom-client";
import { CallDurations } from "../../../client/callDurations";
import { ClientMetrics } from "../../../client/metrics";

async function values(registry: Registry, name: string) {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    return (m?.values ?? []) as Array<{ labels: Record<string, string>; value: number; metricName?: string }>;
}

describe("ClientMetrics", () => {
    test("registers on the application's registry with the given prefix", async () => {
        const registry = new Registry();
        const m = new ClientMetrics({ registry, prefix: "app_redis_" });
        m.call("write", "success", 0.002);
        m.call("write", "error", 0.5);
        m.call("read", "stale", 0.1);
        m.error("deadline");
        m.retry("readonly");
        m.retry("readonly");
        m.breakerState("open");
        m.failover();
        m.connectionReady("master", true);
        expect(await values(registry, "app_redis_commands_total")).toEqual(
            expect.arrayContaining([
                expect.objectContaining({ labels: { op: "write", outcome: "success" }, value: 1 }),
                expect.objectContaining({ labels: { op: "write", outcome: "error" }, value: 1 }),
                expect.objectContaining({ labels: { op: "read", outcome: "stale" }, value: 1 }),
            ]),
        );
        expect(await values(registry, "app_redis_errors_total")).toEqual([
            expect.objectContaining({ labels: { class: "deadline" }, value: 1 }),
        ]);
        expect(await values(registry, "app_redis_retries_total")).toEqual([
            expect.objectContaining({ labels: { class: "readonly" }, value: 2 }),
        ]);
        expect((await values(registry, "app_redis_breaker_state"))[0].value).toBe(2);
        expect((await values(registry, "app_redis_failovers_total"))[0].value).toBe(1);
        expect(await values(registry, "app_redis_connection_ready")).toEqual([
            expect.objectContaining({ labels: { role: "master" }, value: 1 }),
        ]);
        const count = (await values(registry, "app_redis_command_duration_seconds")).find(
            (v) => v.metricName === "app_redis_command_duration_seconds_count" && v.labels.op === "write",
        );
        expect(count?.value).toBe(2);
    });

    test("a second client on the same registry shares the metrics instead of throwing", async () => {
        const registry = new Registry();
        const a = new ClientMetrics({ registry });
        const b = new ClientMetrics({ registry });
        a.failover();
        b.failover();
        expect((await values(registry, "redis_client_failovers_total"))[0].value).toBe(2);
    });

    test("without a registry it makes its own", () => {
        const m = new ClientMetrics();
        expect(m.registry).toBeInstanceOf(Registry);
    });
});

describe("ClientMetrics call counts", () => {
    test("are added up between reads and appear in every read (scrape text, JSON, get())", async () => {
        const registry = new Registry();
        const m = new ClientMetrics({ registry });
        for (let i = 0; i < 5; i++) m.call("read", "success", 0.001);
        expect(await registry.metrics()).toMatch(/redis_client_commands_total\{op="read",outcome="success"\} 5/);
        m.call("read", "success", 0.001);
        m.call("write", "rejected", 0.001);
        expect(await values(registry, "redis_client_commands_total")).toEqual(
            expect.arrayContaining([
                expect.objectContaining({ labels: { op: "read", outcome: "success" }, value: 6 }),
                expect.objectContaining({ labels: { op: "write", outcome: "rejected" }, value: 1 }),
            ]),
        );
        m.call("read", "success", 0.001);
        const counter = registry.getSingleMetric("redis_client_commands_total")!;
        expect((await counter.get()).values).toEqual(
            expect.arrayContaining([expect.objectContaining({ labels: { op: "read", outcome: "success" }, value: 7 })]),
        );
    });

    test("two clients sharing the metric both count", async () => {
        const registry = new Registry();
        const a = new ClientMetrics({ registry });
        const b = new ClientMetrics({ registry });
        a.call("write", "success", 0.001);
        b.call("write", "success", 0.001);
        b.call("write", "success", 0.001);
        expect(await values(registry, "redis_client_commands_total")).toEqual([
            expect.objectContaining({ labels: { op: "write", outcome: "success" }, value: 3 }),
        ]);
    });

    test("call durations export what prom-client's Histogram exports for the same observations", async () => {
        const buckets = [0.0005, 0.001, 0.01, 0.1, 1];
        const observed: Array<[string, number]> = [
            ["read", 0.0002],
            ["read", 0.0005],
            ["read", 0.0007],
            ["write", 0.05],
            ["write", 3],
            ["read", 1],
            ["durable_write", 0.001],
        ];
        const theirs = new Registry();
        const h = new Histogram({ name: "d_seconds", help: "h", labelNames: ["op"], buckets, registers: [theirs] });
        const ours = new Registry();
        const d = new CallDurations("d_seconds", "h", "op", buckets, ours);
        for (const [op, v] of observed) {
            h.labels({ op }).observe(v);
            d.series(op).observe(v);
        }
        expect(await ours.metrics()).toBe(await theirs.metrics());
        // prom-client adds an empty `exemplar` to each value.
        const json = async (r: Registry) =>
            (await r.getMetricsAsJSON()).map((m) => ({
                ...m,
                values: m.values.map((v) => ({
                    labels: v.labels,
                    value: v.value,
                    metricName: (v as { metricName?: string }).metricName,
                })),
            }));
        expect(await json(ours)).toEqual(await json(theirs));
        ours.resetMetrics();
        expect(await ours.metrics()).toContain('d_seconds_count{op="read"} 0');
    });
});
