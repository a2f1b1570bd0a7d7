/**
 * Application client for the Redis 7 + Sentinel cluster this kit deploys.
 *
 * ```ts
 * import { createSentinelClient } from "./client";
 * const client = createSentinelClient({ sentinels: [{ host: "10.0.0.1" }], masterName: "mymaster", redis: { password } });
 * await client.durableWrite((p) => p.set("k", "v"), { timeoutMs: 200 }); // every attached replica confirms
 * ```
 */
export { createSentinelClient, SentinelClient } from "./client";
export type { RunOptions, SentinelClientEvents } from "./client";
export type { Durability, DurableWriteOptions, DurableWriteResult } from "./durableWrite";
export {
    AuthenticationError,
    CircuitOpenError,
    ClientClosedError,
    DeadlineExceededError,
    InvalidOptionsError,
    NotConnectedError,
    OutcomeUnknownError,
    PartiallyAppliedError,
    RedisClientError,
    WriteNotAcknowledgedError,
} from "./errors";
export type { OptionProblem, Outcome } from "./errors";
export { classifyError, isRetryable } from "./classify";
export type { Classification, ErrorClass } from "./classify";
export type { FailoverEvent } from "./failoverWatcher";
export { createHealthHandler } from "./health";
export type { HealthReport, SentinelHealth } from "./health";
export { ClientMetrics } from "./metrics";
export { parseEndpointList, resolveOptions } from "./options";
export type {
    BreakerOptions,
    Endpoint,
    MetricsOptions,
    RetryOptions,
    SentinelClientOptions,
    SentinelEndpoint,
    ServerAuth,
    StaleCacheOptions,
    TimeoutOptions,
} from "./options";
export type { BreakerState } from "./policies";
export type { ReadResult } from "./staleCache";
export { buildIoredisOptions } from "./ioredisOptions";
