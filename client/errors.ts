/**
 * What is known about whether a failed call changed data on the server.
 *
 * - `"not-executed"`: Redis refused the command before running it (`READONLY`, `LOADING`, ...)
 *   or the client never wrote it to a socket. Safe to send again, even for `INCR`.
 * - `"unknown"`: the command was written but no reply came back (timeout, connection lost).
 *   It may have run. Only idempotent calls may be sent again.
 * - `"failed"`: Redis ran the command and answered with an error (`WRONGTYPE`, syntax, ...).
 *   Sending it again gives the same error.
 */
export type Outcome = "not-executed" | "unknown" | "failed";

/**
 * Base class of every error this module throws. `errorClass` is a short, stable label
 * (also used as the `class` label of the `errors_total` metric).
 */
export abstract class RedisClientError extends Error {
    abstract readonly errorClass: string;
    abstract readonly outcome: Outcome;
    /** The error says Redis is unreachable/unavailable (feeds the breaker and the stale fallback). */
    abstract readonly unavailable: boolean;
    constructor(message: string, options?: { cause?: unknown }) {
        super(message, options);
        this.name = new.target.name;
    }
}

/**
 * The call's deadline passed. When the client had already written the command, whether it ran is
 * unknown: it may have been applied, it will not be sent again by this client, and the caller must
 * treat the write as "maybe applied" (read back, or make the write idempotent).
 * Change the deadline with the `deadlineMs` call option or `timeouts.deadlineMs`.
 */
export class DeadlineExceededError extends RedisClientError {
    readonly errorClass = "deadline";
    readonly unavailable = true;
    constructor(
        readonly deadlineMs: number,
        readonly outcome: "unknown" | "not-executed",
        options?: { cause?: unknown },
    ) {
        super(
            outcome === "unknown"
                ? `Redis call exceeded its ${deadlineMs} ms deadline; outcome unknown: the command was sent and may or may not have been applied. ` +
                      `It will not be replayed. Raise "deadlineMs" if failovers take longer here.`
                : `Redis call exceeded its ${deadlineMs} ms deadline before any command was sent (no ready master connection); nothing was applied. ` +
                      `Raise "deadlineMs" if failovers take longer here.`,
            options,
        );
    }
}

/**
 * The circuit breaker is open (Redis looked unreachable for `breaker.consecutiveFailures` calls in a
 * row), or it is half-open and its one probe call is still out: the call was refused without
 * contacting Redis. Nothing was applied.
 */
export class CircuitOpenError extends RedisClientError {
    readonly errorClass = "circuit_open";
    readonly outcome = "not-executed" as const;
    readonly unavailable = true;
    constructor() {
        super(
            `Redis circuit breaker is open: recent calls found Redis unreachable, so this call was refused without being sent. ` +
                `A probe call is let through after "breaker.halfOpenAfterMs".`,
        );
    }
}

/**
 * A durable write ran on the master but fewer replicas than required confirmed it (via `WAIT`)
 * before the deadline, or the connection was replaced before confirmation, so the write may be lost
 * in a failover. `applied` says whether the master answered the write itself.
 */
export class WriteNotAcknowledgedError extends RedisClientError {
    readonly errorClass = "not_acknowledged";
    readonly outcome: Outcome;
    /** A replaced connection is an availability problem (retried for idempotent writes); a WAIT shortfall is not. */
    readonly unavailable: boolean;
    /**
     * @param required replicas asked for (`WAIT numreplicas`)
     * @param acknowledged replicas that confirmed before the deadline (0 when unknown)
     * @param reason `"timeout"`: applied on the master, too few replicas confirmed before the deadline;
     *   `"wait-error"`: applied on the master, `WAIT` itself failed; `"connection-lost"`: the
     *   connection changed before confirmation, outcome unknown.
     */
    constructor(
        readonly required: number,
        readonly acknowledged: number,
        readonly reason: "timeout" | "wait-error" | "connection-lost" | "failover-started" | "replicas-unverified",
        options?: { cause?: unknown },
    ) {
        super(
            reason === "connection-lost" || reason === "failover-started" || reason === "replicas-unverified"
                ? (reason === "connection-lost"
                      ? `Durable write: the master connection was lost or replaced before ${required} replica(s) acknowledged it; `
                      : reason === "failover-started"
                        ? `Durable write: Sentinel started a failover before the acknowledgement arrived, and the acknowledging replica may not be the one promoted; `
                        : `Durable write: ${acknowledged} replica(s) acknowledged it, but a replica of this master left or stopped acknowledging ` +
                          `(${options?.cause instanceof Error ? options.cause.message : "unknown"}): a failover may be under way and the new master may lack the write; `) +
                      `outcome unknown, the write may be lost. It was not replayed.`
                : `Durable write reached ${acknowledged} of ${required} required replica(s)` +
                      (reason === "timeout" ? " before the deadline" : " (WAIT failed)") +
                      `; it is applied on the master but may be lost if the master fails now.`,
            options,
        );
        const unknown =
            reason === "connection-lost" || reason === "failover-started" || reason === "replicas-unverified";
        this.outcome = unknown ? "unknown" : "failed";
        this.unavailable = unknown;
    }
}

/** No master (or replica) connection became ready in time; the command was never sent. */
export class NotConnectedError extends RedisClientError {
    readonly errorClass = "not_connected";
    readonly outcome = "not-executed" as const;
    readonly unavailable = true;
    constructor(role: string, options?: { cause?: unknown }) {
        super(`No ready Redis ${role} connection; the command was not sent.`, options);
    }
}

/**
 * Redis or the Sentinels refused the client's credentials (`WRONGPASS`, `NOAUTH`, `NOPERM` while
 * connecting): a configuration error, not an outage. Calls fail with it at once instead of waiting
 * for their deadline, the breaker does not count it, and reconnects back off (up to 30 s apart)
 * until the credentials work. `cause` is the server's reply.
 */
export class AuthenticationError extends RedisClientError {
    readonly errorClass = "auth";
    readonly outcome = "not-executed" as const;
    readonly unavailable = false;
    constructor(
        /** Whose credentials were refused. */
        readonly server: "redis" | "sentinel",
        options?: { cause?: unknown },
    ) {
        const reply =
            options?.cause instanceof Error ? options.cause.message.replace(/^.*Last error: /, "") : "refused";
        super(
            server === "redis"
                ? `Redis refused the client's credentials (${reply}); nothing was sent. Check the "redis.username"/"redis.password" options.`
                : `The Sentinels refused the client's credentials (${reply}); nothing was sent. Check the "sentinel.username"/"sentinel.password" options.`,
            options,
        );
    }
}

/** The application closed this client; nothing was sent. */
export class ClientClosedError extends RedisClientError {
    readonly errorClass = "closed";
    readonly outcome = "not-executed" as const;
    readonly unavailable = false;
    constructor() {
        super("The Redis client was closed (client.close()); nothing was sent.");
    }
}

/**
 * The connection failed while a non-idempotent command was in flight (timeout, socket closed):
 * it may or may not have been applied, and it was not sent again because the call was not
 * declared idempotent. Pass `{ idempotent: true }` for commands that are safe to repeat
 * (`SET k v`, `DEL k`), or read back to find out. `cause` is the ioredis error.
 */
export class OutcomeUnknownError extends RedisClientError {
    readonly outcome = "unknown" as const;
    readonly unavailable = false;
    constructor(
        readonly errorClass: string,
        options?: { cause?: unknown },
    ) {
        super(
            `Redis connection failed while the command was in flight (${errorClass}); outcome unknown: it may or may not have been applied. ` +
                `It was not retried because the call is not idempotent (pass { idempotent: true } if repeating it is safe).`,
            options,
        );
    }
}

/**
 * A durable write's pipeline was partly applied: some of its commands ran on the master, others
 * were refused before running (`READONLY`, `NOREPLICAS`...). It is not retried (the applied part
 * would run twice) and its replication was not confirmed. `cause` is the first refusal.
 */
export class PartiallyAppliedError extends RedisClientError {
    readonly errorClass = "partially_applied";
    readonly outcome = "failed" as const;
    readonly unavailable = false;
    constructor(
        readonly applied: number,
        readonly commands: number,
        options?: { cause?: unknown },
    ) {
        super(
            `Durable write partly applied: ${applied} of ${commands} command(s) ran on the master and the others were refused ` +
                `(${options?.cause instanceof Error ? options.cause.message : "refused"}); not retried, replication not confirmed. ` +
                `Wrap the commands in MULTI/EXEC to apply all or none.`,
            options,
        );
    }
}

/** One problem found in the options given to `createSentinelClient`. */
export interface OptionProblem {
    /** Dotted path of the option, e.g. `timeouts.commandMs`. */
    readonly path: string;
    /** What is wrong, with the bad value and the way out. */
    readonly reason: string;
}

/** Every problem in the client options, reported at once before anything connects. */
export class InvalidOptionsError extends Error {
    constructor(readonly problems: readonly OptionProblem[]) {
        super(
            `Invalid Redis client options (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
                problems.map((p) => `  - ${p.path}: ${p.reason}`).join("\n"),
        );
        this.name = "InvalidOptionsError";
    }
}
