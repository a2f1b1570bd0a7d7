import { InvalidOptionsError } from "../../../client/errors";
import {
    DEFAULT_BREAKER,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    parseEndpointList,
    resolveOptions,
    SentinelClientOptions,
} from "../../../client/options";

const valid: SentinelClientOptions = { sentinels: [{ host: "10.0.0.1" }], masterName: "mymaster" };

function problems(o: unknown): string[] {
    try {
        resolveOptions(o as SentinelClientOptions);
    } catch (err) {
        expect(err).toBeInstanceOf(InvalidOptionsError);
        return (err as InvalidOptionsError).problems.map((p) => `${p.path}: ${p.reason}`);
    }
    throw new Error("expected InvalidOptionsError");
}

describe("resolveOptions", () => {
    test("applies the documented defaults", () => {
        const r = resolveOptions(valid);
        expect(r.sentinels).toEqual([{ host: "10.0.0.1", port: 26379, region: undefined }]);
        expect(r.timeouts).toEqual(DEFAULT_TIMEOUTS);
        expect(r.retry).toEqual(DEFAULT_RETRY);
        expect(r.breaker).toEqual(DEFAULT_BREAKER);
        expect(r.readFrom).toBe("master");
        expect(r.failoverDetection).toBe("watcher");
        expect(r.staleCache).toEqual({ maxEntries: 1000, ttlMs: 300_000 });
        expect(r.metrics).toEqual({});
        expect(r.updateSentinels).toBe(true);
    });

    test("partial timeouts keep the other defaults", () => {
        const r = resolveOptions({ ...valid, timeouts: { commandMs: 500, deadlineMs: undefined } });
        expect(r.timeouts).toEqual({ ...DEFAULT_TIMEOUTS, commandMs: 500 });
    });

    test("sorts Sentinels of the own region first and keeps the given order otherwise", () => {
        const r = resolveOptions({
            ...valid,
            region: "eu",
            sentinels: [
                { host: "us-1", region: "us" },
                { host: "eu-1", region: "eu" },
                { host: "ap-1", region: "ap" },
                { host: "eu-2", region: "eu", port: 26380 },
            ],
        });
        expect(r.sentinels.map((s) => `${s.host}:${s.port}`)).toEqual([
            "eu-1:26379",
            "eu-2:26380",
            "us-1:26379",
            "ap-1:26379",
        ]);
    });

    test("without a region the order is the caller's", () => {
        const r = resolveOptions({
            ...valid,
            sentinels: [
                { host: "b", region: "x" },
                { host: "a", region: "y" },
            ],
        });
        expect(r.sentinels.map((s) => s.host)).toEqual(["b", "a"]);
    });

    test("reports every problem at once, naming the option, the value and the fix", () => {
        expect(
            problems({
                sentinels: [{ host: "" }, { host: "s", port: 70000 }, { host: "s", port: 70000 }],
                masterName: "my master",
                readFrom: "primary",
                failoverDetection: "both",
                timeouts: { commandMs: 0, deadlineMs: 500, keepAliveMs: -1 },
                retry: { initialDelayMs: 100, maxDelayMs: 50 },
                breaker: { consecutiveFailures: 1.5 },
                staleCache: { maxEntries: 0 },
                metrics: { prefix: "9bad" },
                redis: { username: "app" },
            }),
        ).toEqual([
            'sentinels[0].host: must be a non-empty host name or IP, got ""',
            "sentinels[1].port: must be an integer port 1–65535, got 70000",
            "sentinels[2].port: must be an integer port 1–65535, got 70000",
            'masterName: must be the name used in "sentinel monitor <name>" (letters, digits, . _ -), got "my master"',
            'failoverDetection: must be "watcher" or "ioredis", got "both"',
            'readFrom: must be "master" or "replica", got "primary"',
            "timeouts.commandMs: must be an integer ≥ 1, got 0",
            "timeouts.keepAliveMs: must be an integer ≥ 0, got -1",
            "breaker.consecutiveFailures: must be an integer ≥ 1, got 1.5",
            "staleCache.maxEntries: must be an integer ≥ 1, got 0",
            'metrics.prefix: must match [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus metric names), got "9bad"',
            "sentinels[2]: duplicate Sentinel s:70000; list each once",
            "retry.maxDelayMs: (50) must be ≥ retry.initialDelayMs (100)",
            "redis.password: is required when redis.username is set (ACL users authenticate with AUTH user password)",
        ]);
    });

    test("wrong types name the option: a string where a list belongs, a non-object", () => {
        expect(problems({ sentinels: "10.0.0.1:26379", masterName: "m", updateSentinels: "yes" })).toEqual([
            "sentinels: must list at least one Sentinel { host, port }, own region first (e.g. from REDIS_SENTINELS=host:port,host:port)",
            "updateSentinels: Invalid input: expected boolean, received string",
        ]);
        expect(problems(null)).toEqual(["(options): must be an object"]);
    });

    test("the deadline must leave room for a command timeout", () => {
        expect(problems({ ...valid, timeouts: { commandMs: 3000, deadlineMs: 2000 } })).toEqual([
            "timeouts.deadlineMs: (2000) must be ≥ timeouts.commandMs (3000); a call could never see a command time out and retry",
        ]);
    });

    test("an empty Sentinel list says where the list comes from", () => {
        expect(problems({ sentinels: [], masterName: "m" })).toEqual([
            "sentinels: must list at least one Sentinel { host, port }, own region first (e.g. from REDIS_SENTINELS=host:port,host:port)",
        ]);
    });

    test("the error message lists every problem", () => {
        expect(() => resolveOptions({ sentinels: [], masterName: "" })).toThrow(
            /Invalid Redis client options \(2 problems\):\n {2}- sentinels: .*\n {2}- masterName: /,
        );
    });

    test("staleCache: false and metrics: false switch them off", () => {
        const r = resolveOptions({ ...valid, staleCache: false, metrics: false });
        expect(r.staleCache).toBe(false);
        expect(r.metrics).toBe(false);
    });
});

describe("parseEndpointList", () => {
    test("host:port lists, default port, IPv6 in brackets, blanks ignored", () => {
        expect(parseEndpointList(" 10.0.0.1:26380, sentinel-b ,[::1]:26381,,")).toEqual([
            { host: "10.0.0.1", port: 26380 },
            { host: "sentinel-b", port: 26379 },
            { host: "::1", port: 26381 },
        ]);
    });
    test("rejects garbage", () => {
        expect(() => parseEndpointList("a:b:c")).toThrow(InvalidOptionsError);
    });
});
