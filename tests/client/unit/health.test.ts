/* eslint-disable @typescript-eslint/require-await -- test fakes implement async APIs without awaiting; a missing value fails the test where it is used */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type Redis from "ioredis";
import { collectHealth, createHealthHandler, HealthReport, HealthSource } from "../../../client/health";
import { resolveOptions } from "../../../client/options";
import type { BreakerState } from "../../../client/policies";

// Sentinels on a closed port: probes fail fast with ECONNREFUSED.
const options = resolveOptions({
    sentinels: [
        { host: "127.0.0.1", port: 1, region: "eu" },
        { host: "127.0.0.1", port: 2 },
    ],
    masterName: "mymaster",
    region: "eu",
    timeouts: { healthMs: 200 },
});

function source(
    opts: { ready?: boolean; role?: string; breaker?: BreakerState; pingFails?: boolean } = {},
): HealthSource {
    const redis = {
        status: opts.ready === false ? "reconnecting" : "ready",
        ping: async () => {
            if (opts.pingFails) throw new Error("Command timed out");
            return "PONG";
        },
        call: async () => [opts.role ?? "master", 0, []],
    } as unknown as Redis;
    return {
        options,
        master: {
            redis,
            address: "10.0.0.1:6379",
            epoch: 3,
            statusText: redis.status,
            isReady: () => opts.ready !== false,
        },
        breakerState: opts.breaker ?? "closed",
        lastFailover: {
            masterName: "mymaster",
            from: "10.0.0.9:6379",
            to: "10.0.0.1:6379",
            at: new Date("2025-01-01T00:00:00Z"),
            source: "sentinel",
        },
    };
}

describe("collectHealth", () => {
    test("healthy master: 200, with role, latency, Sentinels n of m and the last failover", async () => {
        const h = await collectHealth(source());
        expect(h).toMatchObject({
            status: "ok",
            httpStatus: 200,
            masterName: "mymaster",
            region: "eu",
            master: { address: "10.0.0.1:6379", connection: "ready", role: "master", epoch: 3 },
            sentinels: { reachable: 0, total: 2 },
            breaker: "closed",
            lastFailover: {
                at: "2025-01-01T00:00:00.000Z",
                from: "10.0.0.9:6379",
                to: "10.0.0.1:6379",
                source: "sentinel",
            },
        });
        expect(h.master.pingMs).toEqual(expect.any(Number));
        expect(h.sentinels.nodes).toEqual([
            expect.objectContaining({
                address: "127.0.0.1:1",
                region: "eu",
                reachable: false,
                error: expect.any(String) as unknown,
            }),
            expect.objectContaining({ address: "127.0.0.1:2", reachable: false }),
        ]);
    });

    test.each<[string, Parameters<typeof source>[0]]>([
        ["no master connection", { ready: false }],
        ["connected to a demoted master", { role: "slave" }],
        ["master does not answer PING", { pingFails: true }],
        ["breaker open", { breaker: "open" }],
    ])("503 when %s", async (_name, o) => {
        const h = await collectHealth(source(o));
        expect(h).toMatchObject({ status: "down", httpStatus: 503 });
    });
});

describe("createHealthHandler", () => {
    async function get(health: () => Promise<HealthReport>) {
        const server = createServer(createHealthHandler(health));
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        try {
            const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/health`, {
                headers: { connection: "close" },
            });
            return {
                status: res.status,
                type: res.headers.get("content-type"),
                body: (await res.json()) as Record<string, unknown>,
            };
        } finally {
            server.closeAllConnections();
            await new Promise((r) => server.close(r));
        }
    }

    test("serves the report as JSON with its status code", async () => {
        const report = await collectHealth(source({ breaker: "open" }));
        const r = await get(async () => report);
        expect(r.status).toBe(503);
        expect(r.type).toBe("application/json");
        expect(r.body).toMatchObject({ status: "down", breaker: "open" });
        const ok = await get(async () => collectHealth(source()));
        expect(ok.status).toBe(200);
    });

    test("a failing health check is a 503, not a crash", async () => {
        const r = await get(async () => {
            throw new Error("boom");
        });
        expect(r).toMatchObject({ status: 503, body: { status: "down", error: "boom" } });
    });
});
