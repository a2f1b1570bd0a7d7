import { Outcome, RedisClientError } from "./errors";

/**
 * Stable labels for error kinds (the `class` label of the `errors_total` and `retries_total` metrics).
 */
export type ErrorClass =
    | "readonly"
    | "loading"
    | "masterdown"
    | "noreplicas"
    | "tryagain"
    | "not_connected"
    | "connection"
    | "timeout"
    | "auth"
    | "command"
    | "circuit_open"
    | "deadline"
    | "not_acknowledged"
    | "closed"
    | "other";

export interface Classification {
    readonly errorClass: ErrorClass;
    readonly outcome: Outcome;
    /**
     * The error says Redis (or the path to it) is unavailable right now, as opposed to the caller
     * having sent a bad command. These errors feed the circuit breaker and the stale-read fallback.
     */
    readonly unavailable: boolean;
}

const c = (errorClass: ErrorClass, outcome: Outcome, unavailable: boolean): Classification => ({
    errorClass,
    outcome,
    unavailable,
});

/**
 * Redis error prefixes that mean "refused before execution". All are transient during a failover:
 * - `READONLY`: we reached a replica (a demoted master). `reconnectOnError` re-resolves the master.
 * - `LOADING`: the node is loading its dataset after a restart or full sync.
 * - `MASTERDOWN`: a replica with `replica-serve-stale-data no` lost its master.
 * - `NOREPLICAS`: `min-replicas-to-write` not met; right after a failover the new master has
 *   no attached replica until Sentinel has reconfigured them (a few hundred ms to seconds), so a
 *   retry within the deadline usually succeeds, and the write was not applied, so retrying even a
 *   non-idempotent command is safe.
 * - `TRYAGAIN` / `CLUSTERDOWN`: cluster-only, harmless to include.
 */
const REFUSED_PREFIXES: ReadonlyArray<[string, ErrorClass]> = [
    ["READONLY", "readonly"],
    ["LOADING", "loading"],
    ["MASTERDOWN", "masterdown"],
    ["NOREPLICAS", "noreplicas"],
    ["TRYAGAIN", "tryagain"],
    ["CLUSTERDOWN", "tryagain"],
];

/** The class of a refused-before-execution reply, or undefined. */
function refusedClass(message: string): ErrorClass | undefined {
    for (const [prefix, cls] of REFUSED_PREFIXES) if (message.startsWith(prefix)) return cls;
    return undefined;
}

/** Script commands that may write (the `_RO` variants cannot). ioredis names the failed command on the error. */
const SCRIPT_COMMANDS = new Set(["eval", "evalsha", "fcall"]);

function isScriptWithWrites(err: Error): boolean {
    const name = (err as Error & { command?: { name?: unknown } }).command?.name;
    return typeof name === "string" && SCRIPT_COMMANDS.has(name.toLowerCase());
}

/** Configuration/permission problems: retrying cannot help and the breaker must not hide them. */
const AUTH_PREFIXES = ["NOAUTH", "WRONGPASS", "NOPERM"];

/** ioredis' rejection when `enableOfflineQueue` is false and the socket is not writable. */
const NOT_WRITABLE = "Stream isn't writeable";
const CONNECTION_CLOSED = "Connection is closed.";
const COMMAND_TIMED_OUT = "Command timed out";
const COMMAND_ABORTED = "Command aborted due to connection close";
const CONNECTION_CODES = new Set([
    "ECONNRESET",
    "ECONNREFUSED",
    "EPIPE",
    "ETIMEDOUT",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "ECONNABORTED",
]);

/**
 * Sorts any error thrown while talking to Redis into what the retry policy, the breaker and the
 * metrics need to know. Pure; see `tests/client/unit/classify.test.ts`.
 */
export function classifyError(err: unknown): Classification {
    if (err instanceof RedisClientError) return c(err.errorClass as ErrorClass, err.outcome, err.unavailable);
    if (!(err instanceof Error)) return c("other", "unknown", false);

    const message = err.message;
    if (err.name === "ReplyError") {
        const refused = refusedClass(message);
        if (refused) {
            // A script's error says nothing about what it did before failing: it may have written,
            // then returned (or hit) LOADING, NOREPLICAS... Retried only when declared idempotent.
            if (isScriptWithWrites(err)) return c(refused, "unknown", true);
            return c(refused, "not-executed", true);
        }
        if (message.startsWith("EXECABORT")) {
            // Nothing of the transaction ran. Refused at queue time (NOREPLICAS, READONLY, ...): as
            // safe to send again as the refusal itself; otherwise a bad command, not retried.
            const previous = (err as Error & { previousErrors?: unknown[] }).previousErrors ?? [];
            for (const p of previous) {
                const cls = p instanceof Error ? refusedClass(p.message) : undefined;
                if (cls) return c(cls, "not-executed", true);
            }
            return c("command", "not-executed", false);
        }
        // WAIT sent to a replica (the master was demoted under us): nothing was applied by WAIT itself.
        if (message.includes("WAIT cannot be used with replica instances")) return c("readonly", "not-executed", true);
        for (const prefix of AUTH_PREFIXES) {
            if (message.startsWith(prefix)) return c("auth", "failed", false);
        }
        return c("command", "failed", false);
    }
    if (message.startsWith(NOT_WRITABLE)) return c("not_connected", "not-executed", true);
    if (message === COMMAND_TIMED_OUT) return c("timeout", "unknown", true);
    // In-flight commands flushed when the socket closed (maxRetriesPerRequest: 0), aborted pipeline
    // fragments, "Connection is closed." (either never sent after end, or flushed in flight: assume
    // the worse) and raw socket errors: the command may have run.
    if (
        err.name === "MaxRetriesPerRequestError" ||
        message === CONNECTION_CLOSED ||
        message.startsWith(COMMAND_ABORTED) ||
        message.startsWith("Socket timeout") ||
        CONNECTION_CODES.has((err as NodeJS.ErrnoException).code ?? "")
    ) {
        return c("connection", "unknown", true);
    }
    return c("other", "unknown", false);
}

/**
 * The retry decision: a call is sent again only if the error is transient and either nothing was
 * executed, or the caller declared the call idempotent. Errors Redis answered (`WRONGTYPE`, auth)
 * are never retried.
 */
export function isRetryable(cls: Classification, idempotent: boolean): boolean {
    if (!cls.unavailable) return false;
    if (cls.errorClass === "circuit_open" || cls.errorClass === "deadline") return false;
    if (cls.outcome === "not-executed") return true;
    return cls.outcome === "unknown" && idempotent;
}
