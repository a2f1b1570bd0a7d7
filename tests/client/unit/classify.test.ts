import { replyError } from "./replyError";
import { classifyError, isRetryable } from "../../../client/classify";
import {
    CircuitOpenError,
    ClientClosedError,
    DeadlineExceededError,
    NotConnectedError,
    OutcomeUnknownError,
    WriteNotAcknowledgedError,
} from "../../../client/errors";

const reply = (message: string): Error => replyError(message);
const errno = (code: string): Error => Object.assign(new Error(`connect ${code}`), { code });
const named = (name: string, message: string): Error => {
    const e = new Error(message);
    Object.defineProperty(e, "name", { value: name });
    return e;
};

const fromCommand = (e: Error, name: string): Error => Object.assign(e, { command: { name, args: [] } });
const withPrevious = (e: Error, previousErrors: Error[]): Error => Object.assign(e, { previousErrors });

describe("classifyError", () => {
    test.each<[string, Error, string, string, boolean]>([
        ["READONLY", reply("READONLY You can't write against a read only replica."), "readonly", "not-executed", true],
        ["LOADING", reply("LOADING Redis is loading the dataset in memory"), "loading", "not-executed", true],
        [
            "MASTERDOWN",
            reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
            "masterdown",
            "not-executed",
            true,
        ],
        ["NOREPLICAS", reply("NOREPLICAS Not enough good replicas to write."), "noreplicas", "not-executed", true],
        // A script may have written before it failed, whatever its error says.
        ["LOADING from EVAL", fromCommand(reply("LOADING fake"), "eval"), "loading", "unknown", true],
        ["NOREPLICAS from EVALSHA", fromCommand(reply("NOREPLICAS x"), "evalsha"), "noreplicas", "unknown", true],
        ["READONLY from FCALL", fromCommand(reply("READONLY x"), "fcall"), "readonly", "unknown", true],
        [
            "LOADING from EVAL_RO (cannot write)",
            fromCommand(reply("LOADING x"), "eval_ro"),
            "loading",
            "not-executed",
            true,
        ],
        ["LOADING from GET", fromCommand(reply("LOADING x"), "get"), "loading", "not-executed", true],
        // EXECABORT: nothing of the transaction ran; refused at queue time is retried like the refusal.
        [
            "EXECABORT after NOREPLICAS",
            withPrevious(reply("EXECABORT Transaction discarded because of previous errors."), [
                reply("NOREPLICAS Not enough good replicas to write."),
            ]),
            "noreplicas",
            "not-executed",
            true,
        ],
        [
            "EXECABORT after a syntax error",
            withPrevious(reply("EXECABORT Transaction discarded because of previous errors."), [
                reply("ERR wrong number of arguments for 'incr' command"),
            ]),
            "command",
            "not-executed",
            false,
        ],
        [
            "TRYAGAIN",
            reply("TRYAGAIN Multiple keys request during rehashing of slot"),
            "tryagain",
            "not-executed",
            true,
        ],
        [
            "WAIT on a replica",
            reply("ERR WAIT cannot be used with replica instances. Please also note..."),
            "readonly",
            "not-executed",
            true,
        ],
        [
            "WRONGTYPE",
            reply("WRONGTYPE Operation against a key holding the wrong kind of value"),
            "command",
            "failed",
            false,
        ],
        ["syntax error", reply("ERR syntax error"), "command", "failed", false],
        ["NOAUTH", reply("NOAUTH Authentication required."), "auth", "failed", false],
        ["WRONGPASS", reply("WRONGPASS invalid username-password pair or user is disabled."), "auth", "failed", false],
        [
            "offline queue off",
            new Error("Stream isn't writeable and enableOfflineQueue options is false"),
            "not_connected",
            "not-executed",
            true,
        ],
        ["command timeout", new Error("Command timed out"), "timeout", "unknown", true],
        [
            "flushed in flight",
            named("MaxRetriesPerRequestError", "Reached the max retries per request limit (which is 0)."),
            "connection",
            "unknown",
            true,
        ],
        ["connection closed", new Error("Connection is closed."), "connection", "unknown", true],
        [
            "pipeline aborted",
            named("AbortError", "Command aborted due to connection close"),
            "connection",
            "unknown",
            true,
        ],
        ["ECONNRESET", errno("ECONNRESET"), "connection", "unknown", true],
        ["ECONNREFUSED", errno("ECONNREFUSED"), "connection", "unknown", true],
        ["not connected", new NotConnectedError("master"), "not_connected", "not-executed", true],
        ["deadline, unknown", new DeadlineExceededError(100, "unknown"), "deadline", "unknown", true],
        ["circuit open", new CircuitOpenError(), "circuit_open", "not-executed", true],
        ["WAIT shortfall", new WriteNotAcknowledgedError(1, 0, "timeout"), "not_acknowledged", "failed", false],
        [
            "ack on a replaced connection",
            new WriteNotAcknowledgedError(1, 0, "connection-lost"),
            "not_acknowledged",
            "unknown",
            true,
        ],
        [
            "ack during a failover",
            new WriteNotAcknowledgedError(1, 1, "failover-started"),
            "not_acknowledged",
            "unknown",
            true,
        ],
        ["outcome unknown (named)", new OutcomeUnknownError("timeout"), "timeout", "unknown", false],
        ["client closed", new ClientClosedError(), "closed", "not-executed", false],
        ["anything else", new TypeError("x is not a function"), "other", "unknown", false],
    ])("%s", (_name, err, errorClass, outcome, unavailable) => {
        expect(classifyError(err)).toEqual({ errorClass, outcome, unavailable });
    });

    test("non-errors", () => {
        expect(classifyError("boom")).toEqual({ errorClass: "other", outcome: "unknown", unavailable: false });
    });
});

describe("isRetryable", () => {
    const cls = (e: Error) => classifyError(e);
    test("refused before execution: retried whether or not the call is idempotent", () => {
        for (const e of [
            reply("READONLY x"),
            reply("NOREPLICAS x"),
            reply("LOADING x"),
            new NotConnectedError("master"),
        ]) {
            expect(isRetryable(cls(e), false)).toBe(true);
            expect(isRetryable(cls(e), true)).toBe(true);
        }
    });
    test("outcome unknown: retried only when idempotent", () => {
        for (const e of [
            new Error("Command timed out"),
            new Error("Connection is closed."),
            new WriteNotAcknowledgedError(1, 0, "connection-lost"),
        ]) {
            expect(isRetryable(cls(e), false)).toBe(false);
            expect(isRetryable(cls(e), true)).toBe(true);
        }
    });
    test("answered errors, deadlines, open circuits and WAIT shortfalls are never retried", () => {
        for (const e of [
            reply("WRONGTYPE x"),
            reply("NOAUTH x"),
            new DeadlineExceededError(1, "not-executed"),
            new CircuitOpenError(),
            new WriteNotAcknowledgedError(1, 0, "timeout"),
            new OutcomeUnknownError("timeout"),
        ]) {
            expect(isRetryable(cls(e), true)).toBe(false);
        }
    });
});
