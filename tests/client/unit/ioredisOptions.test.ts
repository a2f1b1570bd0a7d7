/* eslint-disable @typescript-eslint/no-non-null-assertion -- test fakes implement async APIs without awaiting; a missing value fails the test where it is used */
import { replyError } from "./replyError";
import { resolveOptions } from "../../../client/options";
import { createServer, Socket } from "node:net";
import {
    buildIoredisOptions,
    lastKnownMasterConnector,
    preferLocalReplica,
    reconnectDelay,
} from "../../../client/ioredisOptions";

const opts = resolveOptions({
    sentinels: [
        { host: "s1", port: 26379 },
        { host: "s2", port: 26380 },
    ],
    masterName: "mymaster",
    redis: { username: "app", password: "rpass", tls: { servername: "redis.internal" } },
    sentinel: { password: "spass" },
    localReplicas: [{ host: "10.0.0.2", port: 6379 }],
    timeouts: { connectMs: 1500, commandMs: 900, sentinelCommandMs: 400, disconnectMs: 100, keepAliveMs: 3000 },
    retry: { reconnectMaxDelayMs: 400 },
});

describe("buildIoredisOptions", () => {
    const o = buildIoredisOptions(opts, "master");

    test("finds the master through the Sentinels, with separate credentials and TLS", () => {
        expect(o).toMatchObject({
            sentinels: [
                { host: "s1", port: 26379 },
                { host: "s2", port: 26380 },
            ],
            name: "mymaster",
            role: "master",
            username: "app",
            password: "rpass",
            sentinelPassword: "spass",
            tls: { servername: "redis.internal" },
            enableTLSForSentinelMode: true,
            sentinelTLS: undefined,
        });
    });

    test("never replays: no offline queue, no resend of in-flight commands, in-flight flushed at close", () => {
        expect(o.enableOfflineQueue).toBe(false);
        expect(o.autoResendUnfulfilledCommands).toBe(false);
        expect(o.maxRetriesPerRequest).toBe(0);
    });

    test("never stuck: explicit timeouts, no socketTimeout (its timer outlives the socket in 5.8.2)", () => {
        expect(o).toMatchObject({
            connectTimeout: 1500,
            sentinelCommandTimeout: 400,
            disconnectTimeout: 100,
            keepAlive: 3000,
            failoverDetector: false,
            disableClientInfo: true,
        });
        expect(o.socketTimeout).toBeUndefined();
        // Commands time out through ManagedConnection's CommandTimer, not a timer per command.
        expect(o.commandTimeout).toBeUndefined();
        expect(
            buildIoredisOptions(resolveOptions({ ...opts, failoverDetection: "ioredis" }), "master").failoverDetector,
        ).toBe(true);
    });

    test("reconnect strategies never give up and stay under their caps", () => {
        for (let times = 1; times < 200; times++) {
            // null would end the client for good: every attempt must return a delay.
            const d = o.retryStrategy!(times);
            expect(d).toBeGreaterThanOrEqual(1);
            expect(d).toBeLessThanOrEqual(400 * 1.2);
            const s = o.sentinelRetryStrategy!(times);
            expect(s).toBeGreaterThanOrEqual(0);
            expect(s).toBeLessThanOrEqual(1000);
        }
        expect(o.sentinelRetryStrategy!(1)).toBe(0); // first wrap-around of the Sentinel list is free
    });

    test("no Sentinel answering twice over: a master connection that knows its last master ends the pass, to fall back on it", () => {
        let last: string | null = null;
        const m = buildIoredisOptions(opts, "master", { lastKnownMaster: () => last });
        expect(m.Connector).toBeDefined();
        expect(m.sentinelRetryStrategy!(2)).toBe(100); // never reached a master: keep asking the Sentinels
        last = "10.0.0.1:6379";
        expect(m.sentinelRetryStrategy!(1)).toBe(0);
        expect(m.sentinelRetryStrategy!(2)).toBeNull();
        // Replica connections and ioredis' own detector keep ioredis' connector.
        expect(buildIoredisOptions(opts, "replica", { lastKnownMaster: () => last }).Connector).toBeUndefined();
        const ioredisMode = resolveOptions({ ...opts, failoverDetection: "ioredis" });
        expect(buildIoredisOptions(ioredisMode, "master", { lastKnownMaster: () => last }).Connector).toBeUndefined();
    });

    test("refused credentials: reconnect delays come from the override", () => {
        const m = buildIoredisOptions(opts, "master", { backoffOverrideMs: () => 8000 });
        expect(m.retryStrategy!(1)).toBe(8000);
        expect(m.sentinelRetryStrategy!(1)).toBe(8000);
    });

    test("reconnects on READONLY (master only), rejects the command (1, not 2), and tells the connection", () => {
        const seen: Error[] = [];
        const m = buildIoredisOptions(opts, "master", { onReconnectOnError: (e) => seen.push(e) });
        const readonly = replyError("READONLY You can't write against a read only replica.");
        expect(m.reconnectOnError!(readonly)).toBe(1);
        expect(seen).toEqual([readonly]);
        expect(m.reconnectOnError!(replyError("WRONGTYPE x"))).toBe(false);
        expect(buildIoredisOptions(opts, "replica").reconnectOnError!(readonly)).toBe(false);
    });

    test("replica connections prefer same-region replicas", () => {
        const r = buildIoredisOptions(opts, "replica");
        expect(r.role).toBe("slave");
        const choose = r.preferredSlaves as (replicas: Array<{ ip: string; port: string }>) => unknown;
        const local = { ip: "10.0.0.2", port: "6379" };
        expect(choose([{ ip: "10.1.0.9", port: "6379" }, local])).toEqual(local);
        expect(o.preferredSlaves).toBeUndefined();
    });

    test("TLS: true means TLS with system CAs; plain TCP when unset", () => {
        const t = buildIoredisOptions(
            resolveOptions({
                sentinels: [{ host: "s" }],
                masterName: "m",
                redis: { tls: true },
                sentinel: { tls: true },
            }),
            "master",
        );
        expect(t).toMatchObject({ tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true });
        const p = buildIoredisOptions(resolveOptions({ sentinels: [{ host: "s" }], masterName: "m" }), "master");
        expect(p).toMatchObject({ tls: undefined, sentinelTLS: undefined, enableTLSForSentinelMode: false });
    });
});

describe("reconnectDelay", () => {
    test("grows exponentially to the cap, with ±20 % jitter", () => {
        expect(reconnectDelay(1, 500, () => 0.5)).toBe(25);
        expect(reconnectDelay(2, 500, () => 0.5)).toBe(50);
        expect(reconnectDelay(5, 500, () => 0.5)).toBe(400);
        expect(reconnectDelay(6, 500, () => 0.5)).toBe(500);
        expect(reconnectDelay(60, 500, () => 0.5)).toBe(500);
        expect(reconnectDelay(60, 500, () => 0)).toBe(400);
        expect(reconnectDelay(60, 500, () => 0.999999)).toBe(600);
    });
});

describe("preferLocalReplica", () => {
    const replicas = [
        { ip: "10.1.0.2", port: "6379", flags: "slave" },
        { ip: "10.0.0.2", port: "6379", flags: "slave" },
        { ip: "10.0.0.3", port: "6379", flags: "slave" },
    ];
    test("picks among the local replicas only", () => {
        const pick = preferLocalReplica(
            [
                { host: "10.0.0.2", port: 6379 },
                { host: "10.0.0.3", port: 6379 },
            ],
            () => 0.99,
        );
        expect(pick(replicas)).toEqual(replicas[2]);
        expect(preferLocalReplica([{ host: "10.0.0.2", port: 6379 }])(replicas)).toEqual(replicas[1]);
    });
    test("no local replica available: null, so ioredis picks any healthy one", () => {
        expect(preferLocalReplica([{ host: "10.9.9.9", port: 6379 }])(replicas)).toBeNull();
        expect(preferLocalReplica([])(replicas)).toBeNull();
    });
    test("matches the port too", () => {
        expect(preferLocalReplica([{ host: "10.0.0.2", port: 6380 }])(replicas)).toBeNull();
    });
});

describe("lastKnownMasterConnector", () => {
    test("connects straight to a master announced by +switch-master, once, without asking a Sentinel", async () => {
        const accepted: Socket[] = [];
        const server = createServer((sock) => accepted.push(sock));
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const port = (server.address() as { port: number }).port;
        let announced: string | null = `127.0.0.1:${port}`;
        const Connector = lastKnownMasterConnector(
            () => null,
            () => {
                const a = announced;
                announced = null;
                return a;
            },
        );
        // The only Sentinel listed does not exist: reaching the server proves no Sentinel was asked.
        const connector = new Connector({
            sentinels: [{ host: "127.0.0.1", port: 1 }],
            name: "m",
            connectTimeout: 200,
            sentinelRetryStrategy: () => null,
        });
        const stream = await connector.connect(() => undefined);
        await new Promise<void>((resolve) => stream.once("connect", resolve));
        expect(accepted).toHaveLength(1);
        expect(announced).toBeNull();
        stream.destroy();
        // Next attempt: back to the Sentinels (which here are all unreachable).
        await expect(connector.connect(() => undefined)).rejects.toThrow(/All sentinels are unreachable/);
        for (const sock of accepted) sock.destroy();
        await new Promise<void>((resolve) => {
            server.close(() => {
                resolve();
            });
        });
    });
});
