import {
    cannotLackWrites,
    MasterRole,
    parseMasterRole,
    ReplicaGuard,
    ReplicaState,
} from "../../../client/replicaGuard";

const M = "10.0.0.1:6379";
const R1 = "10.0.0.2:6379";
const R2 = "10.0.0.3:6379";

function role(offset: number, replicas: Record<string, number>): MasterRole {
    return { offset, replicas: Object.entries(replicas).map(([address, o]) => ({ address, offset: o })) };
}

/** A guard whose probe answers from `answers` (resolved when the test says so) and whose clock the test moves. */
function setup(answers: Record<string, ReplicaState>) {
    let now = 0;
    const asked: string[] = [];
    const guard = new ReplicaGuard(
        (address) => {
            asked.push(address);
            return Promise.resolve(answers[address] ?? { kind: "unreachable" });
        },
        2000,
        5000,
        () => now,
    );
    return { guard, asked, advance: (ms: number) => (now += ms) };
}

const settle = () => new Promise((r) => setImmediate(r));

describe("parseMasterRole", () => {
    test("a master's ROLE: offset and replicas with their acked offsets; a replica's: null", () => {
        expect(parseMasterRole(["master", 300, [["10.0.0.2", "6379", "290"]]])).toEqual({
            offset: 300,
            replicas: [{ address: R1, offset: 290 }],
        });
        expect(parseMasterRole(["slave", "10.0.0.1", 6379, "connected", 300])).toBeNull();
    });
});

describe("ReplicaGuard", () => {
    test("trusts acknowledgements while every replica seen on this master is attached and acknowledging", () => {
        const { guard, advance } = setup({});
        expect(guard.check(M, role(100, { [R1]: 100, [R2]: 100 }))).toBeNull();
        advance(1000);
        expect(guard.check(M, role(200, { [R1]: 200, [R2]: 150 }))).toBeNull();
    });

    test("a promoted replica (left, answers as a master) refuses every acknowledgement on this master until it is back", async () => {
        const { guard, asked } = setup({ [R1]: { kind: "master" } });
        guard.check(M, role(100, { [R1]: 100, [R2]: 100 }));
        // R1 ran REPLICAOF NO ONE: it is gone from the master's list; R2 still acknowledges.
        expect(guard.check(M, role(200, { [R2]: 200 }))).toEqual({ replica: R1, why: "left the master" });
        expect(asked).toEqual([R1]);
        await settle();
        expect(guard.check(M, role(300, { [R2]: 300 }))).toEqual({
            replica: R1,
            why: "was promoted or follows another master",
        });
        expect(guard.failoverSuspected(M)).toBe(true);
        // Attached again (the failover was undone): trusted again.
        expect(guard.check(M, role(400, { [R1]: 400, [R2]: 400 }))).toBeNull();
        expect(guard.failoverSuspected(M)).toBe(false);
    });

    test("a replica that left but is resyncing from this master (its snapshot) is forgotten once it says so", async () => {
        const { guard } = setup({ [R1]: { kind: "replica-of", master: M, link: "sync" } });
        guard.check(M, role(100, { [R1]: 100, [R2]: 100 }));
        expect(guard.check(M, role(200, { [R2]: 200 }))).not.toBeNull();
        await settle();
        expect(guard.check(M, role(300, { [R2]: 300 }))).toBeNull();
        expect(guard.expected(M)).toEqual(new Set([R2]));
    });

    test("a replica alive but cut off from this master (link down) is not forgotten before the grace: Sentinel may promote it", async () => {
        const { guard, advance } = setup({ [R1]: { kind: "replica-of", master: M, link: "connect" } });
        guard.check(M, role(100, { [R1]: 100, [R2]: 100 }));
        expect(guard.check(M, role(200, { [R2]: 200 }))).not.toBeNull();
        await settle();
        advance(4000);
        expect(guard.check(M, role(300, { [R2]: 300 }))).toEqual({ replica: R1, why: "left the master" });
        expect(guard.expectedReplicas(M)).toBe(2);
        advance(1001);
        expect(guard.check(M, role(400, { [R2]: 400 }))).toBeNull();
        expect(guard.expectedReplicas(M)).toBe(1);
    });

    test("ask: a fresh ROLE, shared by the writes that wait together, never one from before they were sent", async () => {
        const { guard, asked, advance } = setup({ [R1]: { kind: "unreachable", refused: true } });
        advance(100);
        await expect(guard.ask(R1, 100)).resolves.toEqual({ kind: "unreachable", refused: true });
        await guard.ask(R1, 50);
        expect(asked).toEqual([R1]);
        await guard.ask(R1, 101);
        expect(asked).toEqual([R1, R1]);
    });

    test("cannotLackWrites: streaming or syncing from this master, or a gone process; nothing else", () => {
        expect(cannotLackWrites({ kind: "replica-of", master: M, link: "connected" }, M)).toBe(true);
        expect(cannotLackWrites({ kind: "replica-of", master: M, link: "sync" }, M)).toBe(true);
        expect(cannotLackWrites({ kind: "unreachable", refused: true }, M)).toBe(true);
        expect(cannotLackWrites({ kind: "replica-of", master: M, link: "connecting" }, M)).toBe(false);
        expect(cannotLackWrites({ kind: "replica-of", master: R2, link: "connected" }, M)).toBe(false);
        expect(cannotLackWrites({ kind: "unreachable" }, M)).toBe(false);
        expect(cannotLackWrites({ kind: "master" }, M)).toBe(false);
    });

    test("an unreachable replica that left refuses acknowledgements for the grace period, then is forgotten", async () => {
        const { guard, advance } = setup({});
        guard.check(M, role(100, { [R1]: 100, [R2]: 100 }));
        expect(guard.check(M, role(200, { [R2]: 200 }))).not.toBeNull();
        await settle();
        advance(4000);
        expect(guard.check(M, role(300, { [R2]: 300 }))).toEqual({ replica: R1, why: "left the master" });
        advance(1001);
        expect(guard.check(M, role(400, { [R2]: 400 }))).toBeNull();
    });

    test("a listed replica whose acked offset stopped while the master's moved on counts as gone (cut off with the other side)", async () => {
        const { guard, advance } = setup({ [R1]: { kind: "master" } });
        guard.check(M, role(100, { [R1]: 100, [R2]: 100 }));
        advance(1000);
        expect(guard.check(M, role(200, { [R1]: 100, [R2]: 200 }))).toBeNull();
        advance(1500);
        expect(guard.check(M, role(300, { [R1]: 100, [R2]: 300 }))).toEqual({
            replica: R1,
            why: "stopped acknowledging",
        });
        await settle();
        expect(guard.failoverSuspected(M)).toBe(true);
    });

    test("a new master starts a new record", () => {
        const { guard } = setup({});
        guard.check(M, role(100, { [R1]: 100 }));
        expect(guard.check(R2, role(5, { [M]: 5 }))).toBeNull();
    });
});
