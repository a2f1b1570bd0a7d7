import type { ChainableCommander } from "ioredis";
import { classifyError } from "./classify";
import type { ManagedConnection } from "./connection";
import { NotConnectedError, PartiallyAppliedError, WriteNotAcknowledgedError } from "./errors";
import type { CallState } from "./policies";
import { cannotLackWrites, MasterRole, parseMasterRole } from "./replicaGuard";

/** Default `WAIT` replicas of a durable write. */
export const DEFAULT_DURABLE_REPLICAS = 1;
/** Default `WAIT` timeout of one round, ms. */
export const DEFAULT_WAIT_TIMEOUT_MS = 200;

/** Options of `client.durableWrite`. */
/**
 * Which replicas must confirm a durable write.
 * - `"attached"`: every replica attached to the master and acknowledging (as the last `ROLE` showed
 *   it), and at least `replicas`. Whatever replica a failover promotes has the write, even a failover
 *   this client never heard of that promotes a replica while the old master still takes writes
 *   (`SENTINEL FAILOVER` run elsewhere, a partition). Costs the slowest replica's round trip. The set
 *   of replicas is fixed when the write goes out: one forgotten while the write waits must be proven
 *   unable to lack it (see `verifyForgotten`), or the write fails with an unknown outcome.
 * - `"count"`: `replicas` replicas (plain `WAIT replicas`). Cheaper with far replicas, but in that
 *   same failover the others can acknowledge a write the promoted replica never got, and it is lost.
 * - `"region"`: `replicas` is the stack's region-safe count (its `regionSafeReplicas` output: the
 *   largest number of Redis nodes in one region), so at least one confirming replica lives outside the
 *   master's region and a whole region's loss cannot take the only copies. Costs one cross-region
 *   round trip per write, not the slowest replica's. While fewer replicas are attached than that
 *   (the other data region is lost), every attached replica: writes go on in the surviving region.
 *   The count is fixed when the write goes out: replicas forgotten while it waits do not lower it.
 *   Verified by the same `ROLE` guard.
 */
export type Durability = "attached" | "count" | "region";

export interface DurableWriteOptions {
    /**
     * Which replicas must confirm (see {@link Durability}).
     * @default "attached"
     */
    readonly durability?: Durability;
    /**
     * The least number of replicas that must confirm (`WAIT numreplicas`); with `"count"`, the number.
     * @default 1
     */
    readonly replicas?: number;
    /**
     * `WAIT` timeout of one round, ms (> 0: `WAIT ... 0` would block forever). Must be below
     * `timeouts.commandMs`. If fewer replicas confirm, `WAIT` is sent again on the same connection
     * until the call's deadline.
     * @default 200
     */
    readonly timeoutMs?: number;
    /**
     * The write may be applied twice without harm (`SET k v`, `HSET`, `DEL`), so when its outcome is
     * unknown (connection lost in flight, connection replaced before `WAIT` answered) the whole write
     * is sent again. Otherwise the caller gets the error.
     * @default false
     */
    readonly idempotent?: boolean;
    /** Deadline of the whole call, ms. @default timeouts.deadlineMs */
    readonly deadlineMs?: number;
}

/** Result of an acknowledged durable write. */
export interface DurableWriteResult {
    /** Replicas that confirmed (≥ the number asked for). */
    readonly acknowledged: number;
    /** Replies of the commands the callback queued, in order. */
    readonly results: unknown[];
    /** Connection epoch the write and its acknowledgement travelled on. */
    readonly epoch: number;
}

/**
 * One attempt of a durable write: the caller's commands and `WAIT` go out as ONE pipeline in one
 * socket write on one connection, so the acknowledgement can only be about this write. Should the
 * count fall short, only `WAIT` is repeated, and only while the connection (stream object and
 * epoch) is still the one the write went out on: a `WAIT` on any other connection would count
 * nothing of ours and could report a lost write as acknowledged. An acknowledgement that arrives
 * after Sentinel started a failover is refused too: the replica that acknowledged may not be the
 * one promoted (measured with `SENTINEL FAILOVER`: the old master kept taking writes for ~1 s
 * after the promotion, acknowledged by the other replica, which then resynced from the new master
 * and dropped them). ioredis' replay of in-flight
 * commands is off (`autoResendUnfulfilledCommands: false`), so a write is never sent twice by
 * ioredis; the retry policy re-sends it only for idempotent writes.
 */
export function durableWriteAttempt(...args: Parameters<typeof attempt>): Promise<DurableWriteResult> {
    const conn = args[0];
    // The connection's hung-socket detection sees every failure, the cause of a short acknowledgement included.
    return attempt(...args).catch((err: unknown) => {
        conn.noteCommandError(err instanceof WriteNotAcknowledgedError && err.cause !== undefined ? err.cause : err);
        throw err;
    });
}

async function attempt(
    conn: ManagedConnection,
    build: (pipeline: ChainableCommander) => unknown,
    demand: { readonly replicas: number; readonly durability: Durability },
    timeoutMs: number,
    signal: AbortSignal,
    state: CallState,
): Promise<DurableWriteResult> {
    await conn.whenReady(signal);
    // "region": the replicas attached as this write went out (as the guard last saw them), frozen at the first view
    // of this master if there was none yet. Never lowered while the write waits: on a master cut off with its region,
    // the other region's replicas stop acknowledging and the guard forgets them after its grace (about 7 s), while a
    // write applied before the fence (redis-fence, about 1 s) is still waiting; lowering the count then let a
    // same-region replica acknowledge a write the region's return discards (the lab's region-loss drill lost one).
    let regionBasis: number | undefined;
    // Computed again before every WAIT: the guard's view of the attached replicas changes with each ROLE.
    const required = () => {
        if (demand.durability === "count" || conn.address === null) return demand.replicas;
        const attached = conn.replicaGuard.expectedReplicas(conn.address);
        if (demand.durability === "attached") return Math.max(demand.replicas, attached);
        // "region": the region-safe count; fewer only if fewer replicas were attached when the write went out (a
        // region is gone), never before this master's first ROLE (0 seen yet).
        if (regionBasis === undefined && attached > 0) regionBasis = attached;
        return regionBasis === undefined ? demand.replicas : Math.min(demand.replicas, regionBasis);
    };
    let replicas = required();
    // "attached": the replicas this write must reach, frozen as it goes out. The count above follows the guard
    // down when it forgets one while the write waits (so a crash does not fail every waiting write), and each
    // forgotten member is then asked whether it can lack the write before the write resolves.
    const basis =
        demand.durability === "attached" && conn.address !== null
            ? conn.replicaGuard.expected(conn.address)
            : new Set<string>();
    const sentAt = conn.replicaGuard.clock();
    const redis = conn.redis;
    const stream = redis.stream;
    const epoch = conn.epoch;
    const fences = conn.fenceCount;
    const sameConnection = () => redis.stream === stream && conn.epoch === epoch && conn.fenceCount === fences;
    const lost = () => (conn.fenceCount !== fences ? "failover-started" : "connection-lost");

    const pipeline = redis.pipeline();
    await build(pipeline);
    const userCount = pipeline.length;
    if (userCount === 0)
        throw new RangeError("durableWrite: the callback queued no command on the pipeline it was given");
    pipeline.wait(replicas, timeoutMs);
    // Right after WAIT, on the same connection: which replicas are still attached (see ReplicaGuard).
    pipeline.role();
    if (signal.aborted || !sameConnection() || !conn.isReady()) {
        // The deadline passed (the caller was told "not executed"), or an async builder yielded and
        // the connection changed meanwhile: nothing is sent.
        throw new NotConnectedError(conn.role);
    }
    state.inFlight = true;
    const replies = (await pipeline.exec()) ?? [];

    const results: unknown[] = [];
    let firstError: Error | undefined;
    let applied = 0;
    const userReplies = replies.slice(0, userCount);
    const inAbortedTransaction = abortedTransactionReplies(userReplies);
    for (let i = 0; i < userCount; i++) {
        const [err, value] = replies[i] ?? [new Error("missing pipeline reply"), undefined];
        if (err) firstError ??= err;
        else if (!inAbortedTransaction.has(i) && value !== "QUEUED") applied += 1;
        results.push(value);
    }
    if (firstError) {
        // All refused (READONLY, NOREPLICAS, a MULTI/EXEC discarded with EXECABORT...): nothing
        // applied, the retry policy may send it again. Some applied and some refused: partly
        // applied, never retried.
        if (applied > 0 && classifyError(firstError).outcome === "not-executed") {
            throw new PartiallyAppliedError(applied, userCount, { cause: firstError });
        }
        throw firstError;
    }
    // Applied on the master: from here on only WAIT is outstanding, which applies nothing.
    state.inFlight = false;
    state.applied = { acknowledged: 0, required: replicas };
    const [waitErr, waitValue] = replies[userCount] ?? [new Error("missing WAIT reply"), undefined];
    if (!sameConnection()) throw new WriteNotAcknowledgedError(replicas, 0, lost());
    if (waitErr) {
        // The write was applied; WAIT failed. A connection failure leaves replication unknown (an
        // idempotent write is then sent again); a refusal (WAIT on a replica) is final.
        const reason =
            classifyError(waitErr).unavailable && classifyError(waitErr).errorClass !== "readonly"
                ? "connection-lost"
                : "wait-error";
        throw new WriteNotAcknowledgedError(replicas, 0, reason, { cause: waitErr });
    }

    let acknowledged = Number(waitValue);
    state.applied = { acknowledged, required: replicas };
    // The master's offset right after our write (ROLE follows it in the pipeline): a replica acked at or past it holds it.
    const writeOffset = masterRoleOf(replies[userCount + 1])?.offset;
    let lastRole = masterRoleOf(replies[userCount + 1]);
    replicas = judgeAcknowledgement(conn, acknowledged, replicas, required, replies[userCount + 1]);
    while (acknowledged < replicas) {
        if (aborted(signal)) throw new WriteNotAcknowledgedError(replicas, acknowledged, "timeout");
        if (!sameConnection() || !conn.isReady()) {
            throw new WriteNotAcknowledgedError(replicas, acknowledged, lost());
        }
        // Same connection, checked synchronously right before sending: WAIT covers every write this
        // connection made, so our write is included without sending it again.
        let again: Array<[Error | null, unknown]>;
        try {
            again = (await redis.pipeline().wait(replicas, timeoutMs).role().exec()) ?? [];
        } catch (err) {
            throw new WriteNotAcknowledgedError(replicas, acknowledged, "connection-lost", { cause: err });
        }
        if (!sameConnection()) throw new WriteNotAcknowledgedError(replicas, acknowledged, lost());
        const [againErr, more] = again[0] ?? [new Error("missing WAIT reply"), undefined];
        if (againErr)
            throw new WriteNotAcknowledgedError(replicas, acknowledged, "connection-lost", { cause: againErr });
        // WAIT's count is of replicas at our offset now; with "attached", replicas may have been forgotten since.
        acknowledged = Number(more);
        state.applied = { acknowledged, required: replicas };
        lastRole = masterRoleOf(again[1]);
        replicas = judgeAcknowledgement(conn, acknowledged, replicas, required, again[1]);
    }
    await verifyForgotten(conn, basis, { writeOffset, lastRole, sentAt, replicas, acknowledged });
    return { acknowledged, results, epoch };
}

function masterRoleOf(reply: [Error | null, unknown] | undefined): MasterRole | null {
    return reply && !reply[0] ? parseMasterRole(reply[1]) : null;
}

/**
 * The last step of an `"attached"` acknowledgement: every replica that was expected when the write went out
 * (`basis`) and that the guard has forgotten since (the count no longer waited for it) must be proven unable to
 * lack the write, or the write fails with `"replicas-unverified"` (outcome unknown: an idempotent write is sent
 * again, and the new attempt expects only the replicas left). Proof: the last `ROLE` lists it acked at or past
 * the write's offset; or, asked now, it streams from this master or loads its snapshot, or nothing listens at its
 * address (the process is gone). A replica alive but cut off from the master, or that does not answer, is exactly
 * the one a failover on the far side of a partition promotes: not proven. Costs nothing unless a replica was
 * forgotten while the write waited; then one `ROLE` per forgotten replica, shared by the writes waiting with it.
 */
async function verifyForgotten(
    conn: ManagedConnection,
    basis: ReadonlySet<string>,
    at: {
        readonly writeOffset: number | undefined;
        readonly lastRole: MasterRole | null;
        readonly sentAt: number;
        readonly replicas: number;
        readonly acknowledged: number;
    },
): Promise<void> {
    const master = conn.address;
    if (basis.size === 0 || master === null) return;
    const expected = conn.replicaGuard.expected(master);
    for (const replica of basis) {
        if (expected.has(replica)) continue; // counted by WAIT, trusted by the guard
        const listed = at.lastRole?.replicas.find((r) => r.address === replica);
        if (listed && at.writeOffset !== undefined && listed.offset >= at.writeOffset) continue;
        const state = await conn.replicaGuard.ask(replica, at.sentAt);
        if (cannotLackWrites(state, master)) continue;
        if (state.kind === "master" || (state.kind === "replica-of" && state.master !== master)) {
            conn.leaveSuspectedMaster(replica);
        }
        const said =
            state.kind === "unreachable"
                ? "does not answer"
                : state.kind === "master"
                  ? "is a master"
                  : state.master === master
                    ? `is cut off from the master (link ${state.link})`
                    : `follows ${state.master}`;
        throw new WriteNotAcknowledgedError(at.replicas, at.acknowledged, "replicas-unverified", {
            cause: new Error(`replica ${replica} was forgotten while the write waited and ${said}`),
        });
    }
}

/**
 * Judges one `WAIT` count with the `ROLE` that followed it on the same connection, and returns the
 * count to wait for next (the loop ends once `acknowledged` reaches it).
 *
 * The count is trusted only if the guard trusts every replica it has seen on this master (see
 * {@link ReplicaGuard}); otherwise the acknowledged write may be one the next master never gets, and
 * the call fails with `"replicas-unverified"`. With `"attached"`, the count to reach follows the
 * guard: a replica seen for the first time (the first write on a new master) raises it; a replica
 * forgotten (crashed, resyncing) lowers it. A short count is not final: the loop asks again until the
 * deadline. A `"count"` demand never changes.
 */
function judgeAcknowledgement(
    conn: ManagedConnection,
    acknowledged: number,
    replicas: number,
    required: () => number,
    roleReply: [Error | null, unknown] | undefined,
): number {
    const met = acknowledged >= replicas;
    const [err, value] = roleReply ?? [new Error("missing ROLE reply"), undefined];
    const role = err ? null : parseMasterRole(value);
    if (!role || conn.address === null) {
        if (!met) return replicas;
        throw new WriteNotAcknowledgedError(replicas, acknowledged, "replicas-unverified", { cause: err ?? undefined });
    }
    const refusal = conn.replicaGuard.check(conn.address, role);
    const next = met ? Math.max(replicas, required()) : Math.min(replicas, required());
    if (refusal && (met || acknowledged >= next)) {
        if (conn.replicaGuard.failoverSuspected(conn.address)) conn.leaveSuspectedMaster(refusal.replica);
        throw new WriteNotAcknowledgedError(replicas, acknowledged, "replicas-unverified", {
            cause: new Error(`replica ${refusal.replica} ${refusal.why}`),
        });
    }
    return next;
}

/** `signal.aborted`, read through a call: TypeScript would otherwise keep an earlier check's narrowing across awaits. */
function aborted(signal: AbortSignal): boolean {
    return signal.aborted;
}

/**
 * Indexes of replies that belong to a `MULTI … EXEC` discarded with `EXECABORT` (its `MULTI`'s `OK`,
 * the queued commands' `QUEUED` or refusals, the `EXECABORT`): none of them applied anything.
 */
function abortedTransactionReplies(replies: ReadonlyArray<[Error | null, unknown]>): Set<number> {
    const out = new Set<number>();
    replies.forEach(([err], execAt) => {
        if (!err?.message.startsWith("EXECABORT")) return;
        out.add(execAt);
        let i = execAt - 1;
        for (; i >= 0; i--) {
            const [e, v] = replies[i] ?? [null, undefined];
            if (!e && v !== "QUEUED") break;
            out.add(i);
        }
        if (i >= 0 && replies[i]?.[1] === "OK") out.add(i); // the MULTI
    });
    return out;
}
