import type { SentinelClientOptions } from "../../client";
import type { ClusterHandle } from "../../client/testing/cluster";

/** Every real-server test's per-call deadline: long enough for a whole failover of the loopback cluster. */
export const TEST_DEADLINE_MS = 10_000;

/** Client options for a loopback cluster: its Sentinels and credentials, and the tests' timeouts; `extra` wins. */
export function testClientOptions(c: ClusterHandle, extra: Partial<SentinelClientOptions> = {}): SentinelClientOptions {
    return {
        sentinels: c.sentinels,
        masterName: c.masterName,
        redis: { password: c.password },
        sentinel: { password: c.sentinelPassword },
        // sentinelCommandMs 500: ioredis leaves the timer of each rejected CLIENT SETINFO (unknown to
        // Redis 7.0) on its internal Sentinel connections running; shorter than Jest's 1 s exit check.
        timeouts: { commandMs: 1000, deadlineMs: TEST_DEADLINE_MS, healthMs: 300, sentinelCommandMs: 500 },
        ...extra,
    };
}
