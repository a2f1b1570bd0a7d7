/* eslint-disable @typescript-eslint/require-await -- test fakes implement async APIs without awaiting; a missing value fails the test where it is used */
import { replyError } from "./replyError";
import type { ManagedConnection } from "../../../client/connection";
import { durableWriteAttempt } from "../../../client/durableWrite";
import { classifyError } from "../../../client/classify";
import { NotConnectedError, PartiallyAppliedError, WriteNotAcknowledgedError } from "../../../client/errors";
import { CallState } from "../../../client/policies";
import { parseMasterRole, ReplicaGuard, ReplicaState } from "../../../client/replicaGuard";

type Reply = [Error | null, unknown];

interface FakeConn {
    role: string;
    epoch: number;
    fenceCount: number;
    ready: boolean;
    noted: unknown[];
    redis: { stream: object };
}

/**
 * A fake connection: `pipeline().exec()` answers with `replies` (after running `duringExec`, to
 * simulate what happens on the wire), and `wait()` answers from `waits`.
 */
function fakeConnection(
    replies: Reply[],
    waits: Array<number | Error | (() => number)> = [],
    duringExec?: (c: FakeConn) => void,
    /** The ROLE that follows a repeated WAIT. */
    repeatRole: Reply = MASTER_ROLE,
) {
    const sent: string[][] = [];
    const conn = {
        role: "master",
        address: "127.0.0.1:6379",
        replicaGuard: new ReplicaGuard(async () => ({ kind: "unreachable" }), 2000, 5000),
        leaveSuspectedMaster() {},
        epoch: 1,
        fenceCount: 0,
        ready: true,
        noted: [] as unknown[],
        redis: {
            stream: { id: 1 } as object,
            pipeline() {
                const queued: string[][] = [];
                const p = {
                    get length() {
                        return queued.length;
                    },
                    set: (k: string, v: string) => (queued.push(["set", k, v]), p),
                    incr: (k: string) => (queued.push(["incr", k]), p),
                    wait: (n: number, t: number) => (queued.push(["wait", String(n), String(t)]), p),
                    role: () => (queued.push(["role"]), p),
                    exec: async () => {
                        sent.push(...queued.filter((c) => c[0] !== "role"));
                        if (queued[0]?.[0] === "wait") {
                            // WAIT repeated alone (with its ROLE), after a short count.
                            const next = waits.shift();
                            if (next === undefined) throw new Error("unexpected WAIT");
                            if (next instanceof Error) throw next;
                            return [[null, typeof next === "function" ? next() : next], repeatRole];
                        }
                        duringExec?.(conn);
                        return replies.length < queued.length ? [...replies, MASTER_ROLE] : replies;
                    },
                };
                return p;
            },
        },
        whenReady: async () => undefined,
        isReady() {
            return conn.ready;
        },
        noteCommandError(err: unknown) {
            conn.noted.push(err);
        },
    };
    return { conn, sent, asManaged: conn as unknown as ManagedConnection };
}

const signal = () => new AbortController().signal;
/** ROLE of a master with one replica attached. */
const MASTER_ROLE: Reply = [null, ["master", 100, [["127.0.0.1", "6380", "100"]]]];
const withPrevious = (e: Error, previousErrors: Error[]): Error => Object.assign(e, { previousErrors });

describe("durableWriteAttempt", () => {
    test("sends the write and WAIT as one pipeline and returns the acknowledged count", async () => {
        const f = fakeConnection([
            [null, "OK"],
            [null, 2],
        ]);
        const r = await durableWriteAttempt(
            f.asManaged,
            (p) => p.set("k", "v"),
            { replicas: 2, durability: "count" },
            200,
            signal(),
            new CallState(),
        );
        expect(r).toEqual({ acknowledged: 2, results: ["OK"], epoch: 1 });
        expect(f.sent).toEqual([
            ["set", "k", "v"],
            ["wait", "2", "200"],
        ]);
    });

    test("too few replicas: only WAIT is repeated, on the same connection, never the write", async () => {
        const f = fakeConnection(
            [
                [null, "OK"],
                [null, 0],
            ],
            [0, 1],
        );
        const state = new CallState();
        const r = await durableWriteAttempt(
            f.asManaged,
            (p) => p.set("k", "v"),
            { replicas: 1, durability: "count" },
            200,
            signal(),
            state,
        );
        expect(r.acknowledged).toBe(1);
        expect(f.sent).toEqual([
            ["set", "k", "v"],
            ["wait", "1", "200"],
            ["wait", "1", "200"],
            ["wait", "1", "200"],
        ]);
        expect(state.applied).toEqual({ acknowledged: 1, required: 1 });
    });

    test("a WAIT answered after the connection was replaced is refused (no replayed acknowledgement)", async () => {
        const f = fakeConnection(
            [
                [null, "OK"],
                [null, 1],
            ],
            [],
            (c) => {
                c.epoch = 2;
                c.redis.stream = { id: 2 };
            },
        );
        const err = await durableWriteAttempt(
            f.asManaged,
            (p) => p.set("k", "v"),
            { replicas: 1, durability: "count" },
            200,
            signal(),
            new CallState(),
        ).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WriteNotAcknowledgedError);
        expect(err).toMatchObject({ reason: "connection-lost", outcome: "unknown", acknowledged: 0 });
    });

    test("no second WAIT on a different connection after a short count", async () => {
        const f = fakeConnection(
            [
                [null, "OK"],
                [null, 0],
            ],
            [5],
            (c) => (c.ready = false),
        );
        const err = await durableWriteAttempt(
            f.asManaged,
            (p) => p.set("k", "v"),
            { replicas: 1, durability: "count" },
            200,
            signal(),
            new CallState(),
        ).catch((e: unknown) => e);
        expect(err).toMatchObject({ reason: "connection-lost" });
        expect(f.sent.filter((c) => c[0] === "wait")).toHaveLength(1);
    });

    test("an acknowledgement that arrives after Sentinel started a failover is refused", async () => {
        const f = fakeConnection(
            [
                [null, "OK"],
                [null, 1],
            ],
            [],
            (c) => (c.fenceCount += 1),
        );
        const err = await durableWriteAttempt(
            f.asManaged,
            (p) => p.set("k", "v"),
            { replicas: 1, durability: "count" },
            200,
            signal(),
            new CallState(),
        ).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WriteNotAcknowledgedError);
        expect(err).toMatchObject({ reason: "failover-started", outcome: "unknown" });
    });

    test("a write refused with READONLY is thrown as is (retryable: nothing applied)", async () => {
        const readonly = replyError("READONLY You can't write against a read only replica.");
        const f = fakeConnection([
            [readonly, null],
            [replyError("ERR WAIT cannot be used with replica instances"), null],
        ]);
        await expect(
            durableWriteAttempt(
                f.asManaged,
                (p) => p.set("k", "v"),
                { replicas: 1, durability: "count" },
                200,
                signal(),
                new CallState(),
            ),
        ).rejects.toBe(readonly);
    });

    test("MULTI/EXEC refused at queue time (NOREPLICAS, then EXECABORT): nothing applied, thrown as the retryable refusal", async () => {
        const noreplicas = replyError("NOREPLICAS Not enough good replicas to write.");
        const f = fakeConnection([
            [null, "OK"], // MULTI
            [noreplicas, null], // INCR, refused while queueing
            [replyError("NOREPLICAS Not enough good replicas to write."), null], // SET
            [
                withPrevious(replyError("EXECABORT Transaction discarded because of previous errors."), [noreplicas]),
                null,
            ],
            [null, 0], // WAIT
        ]);
        const err = await durableWriteAttempt(
            f.asManaged,
            (p) => p.incr("multi").incr("a").incr("b").incr("exec"), // four commands, as MULTI INCR SET EXEC
            { replicas: 1, durability: "count" },
            200,
            signal(),
            new CallState(),
        ).catch((e: unknown) => e);
        expect(err).toBe(noreplicas);
        expect(classifyError(err)).toEqual({ errorClass: "noreplicas", outcome: "not-executed", unavailable: true });
    });

    test("partly applied (one command applied, one refused): PartiallyAppliedError, never retried as 'not executed'", async () => {
        const f = fakeConnection([
            [null, 1],
            [replyError("READONLY x"), null],
            [null, 1],
        ]);
        const err = await durableWriteAttempt(
            f.asManaged,
            (p) => p.incr("a").incr("b"),
            { replicas: 1, durability: "count" },
            200,
            signal(),
            new CallState(),
        ).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PartiallyAppliedError);
        expect(err).toMatchObject({ applied: 1, commands: 2, outcome: "failed" });
        expect((err as Error).message).toMatch(/^Durable write partly applied: 1 of 2 command\(s\) ran on the master/);
    });

    test("WAIT lost with the connection after the write applied: outcome unknown", async () => {
        const f = fakeConnection([
            [null, "OK"],
            [new Error("Connection is closed."), null],
        ]);
        const err = await durableWriteAttempt(
            f.asManaged,
            (p) => p.set("k", "v"),
            { replicas: 1, durability: "count" },
            200,
            signal(),
            new CallState(),
        ).catch((e: unknown) => e);
        expect(err).toMatchObject({ reason: "connection-lost", outcome: "unknown" });
    });

    test("command timeouts are reported to the connection (hung-master detection)", async () => {
        const timeout = new Error("Command timed out");
        const f = fakeConnection([
            [timeout, null],
            [timeout, null],
        ]);
        await expect(
            durableWriteAttempt(
                f.asManaged,
                (p) => p.set("k", "v"),
                { replicas: 1, durability: "count" },
                200,
                signal(),
                new CallState(),
            ),
        ).rejects.toBe(timeout);
        expect(f.conn.noted).toEqual([timeout]);
    });

    test("at the deadline with too few replicas: WriteNotAcknowledgedError('timeout')", async () => {
        const ctrl = new AbortController();
        const f = fakeConnection(
            [
                [null, "OK"],
                [null, 0],
            ],
            [
                () => {
                    ctrl.abort(); // the deadline passes while the repeated WAIT is out
                    return 0;
                },
            ],
        );
        const err = await durableWriteAttempt(
            f.asManaged,
            (p) => p.set("k", "v"),
            { replicas: 1, durability: "count" },
            200,
            ctrl.signal,
            new CallState(),
        ).catch((e: unknown) => e);
        expect(err).toMatchObject({ reason: "timeout", outcome: "failed", acknowledged: 0, required: 1 });
    });

    test("connection changed while an async builder yielded: nothing sent, NotConnectedError (retryable)", async () => {
        const f = fakeConnection([
            [null, "OK"],
            [null, 1],
        ]);
        const err = await durableWriteAttempt(
            f.asManaged,
            async (p) => {
                await Promise.resolve();
                f.conn.epoch = 7;
                p.set("k", "v");
            },
            { replicas: 1, durability: "count" },
            200,
            signal(),
            new CallState(),
        ).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(NotConnectedError);
        expect(f.sent).toEqual([]);
    });

    test("an empty builder is a programming error", async () => {
        const f = fakeConnection([]);
        await expect(
            durableWriteAttempt(
                f.asManaged,
                () => undefined,
                { replicas: 1, durability: "count" },
                200,
                signal(),
                new CallState(),
            ),
        ).rejects.toThrow("durableWrite: the callback queued no command on the pipeline it was given");
    });

    describe('durability "attached"', () => {
        /** ROLE of the master at `offset` with replicas on ports 6380 (R2) and/or 6381 (R1) at the given acked offsets. */
        const roleReply = (offset: number, acked: Record<string, number>): Reply => [
            null,
            ["master", offset, Object.entries(acked).map(([port, o]) => ["127.0.0.1", port, String(o)])],
        ];
        /** `SET k v` as a durable write asking for at least one replica. */
        const setK = (f: ReturnType<typeof fakeConnection>, durability: "attached" | "count", sig = signal()) =>
            durableWriteAttempt(
                f.asManaged,
                (p) => p.set("k", "v"),
                { replicas: 1, durability },
                200,
                sig,
                new CallState(),
            );
        const masterRole = (r: Reply) => {
            const role = parseMasterRole(r[1]);
            if (!role) throw new Error("not a master's ROLE");
            return role;
        };
        /** A fake whose guard has seen both replicas attached, R1 (6381) answering as a master when asked. */
        function withTwoReplicas(replies: Reply[], waits: Array<number | (() => number)>) {
            const f = fakeConnection(replies, waits);
            const guard = new ReplicaGuard(async () => ({ kind: "master" }), 2000, 5000);
            guard.check(f.conn.address, masterRole(roleReply(100, { 6380: 100, 6381: 100 })));
            f.conn.replicaGuard = guard;
            return f;
        }

        test("a replica promoted before the old master noticed: the other's acknowledgement is not enough, the write is refused", async () => {
            // The race a missed +try-failover leaves open: R1 ran REPLICAOF NO ONE before our write reached
            // it; R2 acknowledges, and the master still lists R1 because it has not read R1's close yet.
            const ctrl = new AbortController();
            const replies: Reply[] = [[null, "OK"], [null, 1], roleReply(200, { 6380: 200, 6381: 100 })];
            const attached = withTwoReplicas(replies, [
                1, // MASTER_ROLE: R1 no longer listed
                () => {
                    ctrl.abort();
                    return 1;
                },
            ]);
            const err = await setK(attached, "attached", ctrl.signal).catch((e: unknown) => e);
            expect(err).toMatchObject({ reason: "timeout", required: 2, acknowledged: 1 });
            expect(attached.sent.filter((c) => c[0] === "wait").map((c) => c[1])).toEqual(["2", "2", "2"]);

            // The same replies under "count": acknowledged, the write the new master never got.
            const counted = withTwoReplicas(replies, []);
            await expect(setK(counted, "count")).resolves.toMatchObject({ acknowledged: 1 });
        });

        test("the first write on a master waits for every replica its ROLE lists", async () => {
            const f = fakeConnection(
                [[null, "OK"], [null, 1], roleReply(100, { 6380: 100, 6381: 90 })],
                [2],
                undefined,
                roleReply(100, { 6380: 100, 6381: 100 }),
            );
            const r = await setK(f, "attached");
            expect(r.acknowledged).toBe(2);
            expect(f.sent.filter((c) => c[0] === "wait").map((c) => c[1])).toEqual(["1", "2"]);
        });

        /**
         * A guard that has seen R1 (6381) and R2 (6380) on the master, then R1 stop acknowledging (still listed: its host
         * died or it is cut off) and be asked, its grace not yet over; `answer` is what R1 says when asked.
         */
        function withSilentReplica(answer: ReplicaState, waits: Array<number | (() => number)> = []) {
            const clock = { now: 0 };
            const f = fakeConnection([[null, "OK"], [null, 1], roleReply(5000, { 6380: 5000, 6381: 100 })], waits);
            const guard = new ReplicaGuard(
                async () => answer,
                2000,
                5000,
                () => clock.now,
            );
            guard.check(f.conn.address, masterRole(roleReply(100, { 6380: 100, 6381: 100 })));
            f.conn.replicaGuard = guard;
            clock.now = 10_000; // R1 has not acknowledged for 10 s: stalled, asked, grace not yet over
            guard.check(f.conn.address, masterRole(roleReply(4000, { 6380: 4000, 6381: 100 })));
            return { f, guard, clock };
        }

        test("a replica forgotten after the grace is not waited for by the writes sent afterwards", async () => {
            const { f, guard, clock } = withSilentReplica({ kind: "unreachable" });
            await new Promise((r) => setImmediate(r));
            clock.now = 20_000; // grace over: forgotten while still listed
            guard.check(f.conn.address, masterRole(roleReply(4500, { 6380: 4500, 6381: 100 })));
            const r = await setK(f, "attached");
            expect(r.acknowledged).toBe(1);
            expect(f.sent.filter((c) => c[0] === "wait").map((c) => c[1])).toEqual(["1"]);
        });

        test("a write sent while R1 was expected, R1 forgotten while it waits and not answering: unknown outcome, not acknowledged", async () => {
            // The hole the frozen set closes: R1 may be alive on the far side of a partition, and promoted there.
            const { f, guard, clock } = withSilentReplica({ kind: "unreachable" });
            await new Promise((r) => setImmediate(r));
            clock.now = 20_000; // grace over while our write waits: the count drops to 1, R2 alone acknowledges
            const err = await setK(f, "attached").catch((e: unknown) => e);
            expect(err).toBeInstanceOf(WriteNotAcknowledgedError);
            expect(err).toMatchObject({ reason: "replicas-unverified", outcome: "unknown" });
            expect(String((err as Error).cause)).toMatch(
                /127\.0\.0\.1:6381 was forgotten while the write waited and does not answer/,
            );
            expect(guard.expectedReplicas(f.conn.address)).toBe(1);
        });

        test.each<[string, ReplicaState]>([
            ["its process is gone (connection refused)", { kind: "unreachable", refused: true }],
            ["it streams from this master again", { kind: "replica-of", master: "127.0.0.1:6379", link: "connected" }],
            ["it loads a snapshot of this master", { kind: "replica-of", master: "127.0.0.1:6379", link: "sync" }],
        ])("R1 forgotten while the write waits, and %s: acknowledged by R2", async (_what, answer) => {
            const { f, clock } = withSilentReplica(answer);
            await new Promise((r) => setImmediate(r));
            clock.now = 20_000;
            await expect(setK(f, "attached")).resolves.toMatchObject({ acknowledged: 1 });
        });

        test("R1 forgotten while the write waits and cut off from the master (link down): unknown outcome", async () => {
            const { f, clock } = withSilentReplica({ kind: "replica-of", master: "127.0.0.1:6379", link: "connect" });
            await new Promise((r) => setImmediate(r));
            clock.now = 20_000;
            await expect(setK(f, "attached")).rejects.toMatchObject({ reason: "replicas-unverified" });
        });
    });
    describe('durability "region"', () => {
        const roleOf = (ports: number[]): Reply => [
            null,
            ["master", 100, ports.map((port) => ["127.0.0.1", String(port), "100"])],
        ];
        const regionWrite = (f: ReturnType<typeof fakeConnection>) =>
            durableWriteAttempt(
                f.asManaged,
                (p) => p.set("k", "v"),
                { replicas: 2, durability: "region" },
                200,
                signal(),
                new CallState(),
            );
        const seeing = (ports: number[]) => {
            const f = fakeConnection([[null, "OK"], [null, 2], roleOf(ports)], []);
            const role = parseMasterRole(roleOf(ports)[1]);
            if (!role) throw new Error("not a master's ROLE");
            f.conn.replicaGuard.check(f.conn.address, role);
            return f;
        };

        test("waits for the region-safe count, not for every attached replica (three attached, two asked)", async () => {
            const f = seeing([6380, 6381, 6382]);
            await expect(regionWrite(f)).resolves.toMatchObject({ acknowledged: 2 });
            expect(f.sent.filter((c) => c[0] === "wait").map((c) => c[1])).toEqual(["2"]);
        });

        test("asks the region-safe count before this master's first ROLE", async () => {
            const f = fakeConnection([[null, "OK"], [null, 2], roleOf([6380, 6381, 6382])], []);
            await expect(regionWrite(f)).resolves.toMatchObject({ acknowledged: 2 });
            expect(f.sent.filter((c) => c[0] === "wait").map((c) => c[1])).toEqual(["2"]);
        });

        test("a write sent while both replicas were attached is never acknowledged by one after the other is forgotten", async () => {
            // The cut-off side of a region loss: R1 (the other region) stops acknowledging; the guard forgets it
            // after its grace while this write, applied before the fence, still waits. R2 (same region) alone must
            // not acknowledge it: the region's return discards it.
            let now = 0;
            const ctrl = new AbortController();
            const f = fakeConnection(
                [[null, "OK"], [null, 1], roleOf([6380, 6381])],
                [
                    () => {
                        now = 10_000; // R1 silent past the stall time: asked (unreachable), its grace starts
                        return 1;
                    },
                    () => {
                        now = 20_000; // grace over: forgotten
                        return 1;
                    },
                    () => {
                        ctrl.abort();
                        return 1;
                    },
                ],
                undefined,
                [
                    null,
                    [
                        "master",
                        5000,
                        [
                            ["127.0.0.1", "6380", "5000"],
                            ["127.0.0.1", "6381", "100"],
                        ],
                    ],
                ],
            );
            const guard = new ReplicaGuard(
                async () => ({ kind: "unreachable" }),
                2000,
                5000,
                () => now,
            );
            const role = parseMasterRole(roleOf([6380, 6381])[1]);
            if (!role) throw new Error("not a master's ROLE");
            guard.check(f.conn.address, role);
            f.conn.replicaGuard = guard;
            const err = await durableWriteAttempt(
                f.asManaged,
                (p) => p.set("k", "v"),
                { replicas: 2, durability: "region" },
                200,
                ctrl.signal,
                new CallState(),
            ).catch((e: unknown) => e);
            expect(err).toMatchObject({ reason: "timeout", required: 2, acknowledged: 1 });
            expect(guard.expectedReplicas(f.conn.address)).toBe(1);
        });

        test("with fewer replicas attached than the count (the other region is lost), every attached one", async () => {
            const f = fakeConnection([[null, "OK"], [null, 1], roleOf([6380])], []);
            const role = parseMasterRole(roleOf([6380])[1]);
            if (!role) throw new Error("not a master's ROLE");
            f.conn.replicaGuard.check(f.conn.address, role);
            await expect(regionWrite(f)).resolves.toMatchObject({ acknowledged: 1 });
            expect(f.sent.filter((c) => c[0] === "wait").map((c) => c[1])).toEqual(["1"]);
        });
    });
});
