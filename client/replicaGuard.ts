import Redis from "ioredis";
import { probeConnectionOptions } from "./ioredisOptions";
import type { ResolvedOptions } from "./options";

/** A master's `ROLE` reply: its replication offset and the replicas attached to it, with their acked offsets. */
export interface MasterRole {
    readonly offset: number;
    readonly replicas: ReadonlyArray<{ readonly address: string; readonly offset: number }>;
}

/** Parses `ROLE` (`["master", offset, [[ip, port, offset], ...]]`); null when the node is not a master. */
export function parseMasterRole(reply: unknown): MasterRole | null {
    if (!Array.isArray(reply) || reply[0] !== "master") return null;
    const list: unknown = reply[2];
    const replicas = (Array.isArray(list) ? list : []).flatMap((r: unknown) =>
        Array.isArray(r) && r.length >= 3 ? [{ address: `${String(r[0])}:${String(r[1])}`, offset: Number(r[2]) }] : [],
    );
    return { offset: Number(reply[1]), replicas };
}

/** What a replica that left the master says about itself. */
export type ReplicaState =
    | { readonly kind: "replica-of"; readonly master: string }
    | { readonly kind: "master" }
    | { readonly kind: "unreachable" };

/** Asks `address` (`host:port`) for its `ROLE` on a short-lived connection. */
export type RoleProbe = (address: string) => Promise<ReplicaState>;

/** Why a durable write's acknowledgement is not trusted. */
export interface GuardRefusal {
    readonly replica: string;
    readonly why: "left the master" | "stopped acknowledging" | "was promoted or follows another master";
}

/**
 * Decides whether a `WAIT` acknowledgement on a master can be trusted, from the `ROLE` reply sent in
 * the same pipeline right after `WAIT`. Sentinel promotes a replica without telling the old master
 * (FACTS: "The old master is not fenced by Sentinel"): the old master keeps taking writes, and the
 * replicas not yet moved keep acknowledging them, so `WAIT` alone can count a write that the new
 * master never gets. A promoted replica leaves the old master's replica list at once (REPLICAOF NO ONE
 * closes its link), and a replica cut off with the master's side stops advancing its acked offset.
 * So an acknowledgement counts only while every replica this client has seen on this master is still
 * attached and acknowledging. A replica that left is asked for its `ROLE`:
 *
 * - a replica of this master (restarting, resyncing): forgotten until it attaches again;
 * - a master, or a replica of another master: a failover is under way; no acknowledgement on this
 *   master counts until that replica is attached to it again (or the client has moved to the new master);
 * - unreachable: acknowledgements are refused for `graceMs`, then it is forgotten (a crashed replica).
 */
export class ReplicaGuard {
    private master: string | null = null;
    private readonly seen = new Map<string, { offset: number; advancedAt: number }>();
    /** Replicas that left, with the time they were first missed and what they said. */
    private readonly gone = new Map<string, { since: number; state: ReplicaState | "asking" }>();
    /**
     * Replicas forgotten while the master still lists them (a host that died without closing its
     * link stays listed until `repl-timeout`), with the acked offset they were forgotten at: not
     * expected again until that offset moves.
     */
    private readonly forgotten = new Map<string, number>();

    constructor(
        private readonly probe: RoleProbe,
        /** A listed replica whose acked offset has not moved for this long, while the master's has, counts as gone. */
        private readonly stallMs: number,
        /** How long an unreachable replica that left keeps acknowledgements refused. */
        private readonly graceMs: number,
        private readonly now: () => number = Date.now,
    ) {}

    /** Checks `role`, taken on `master` right after a `WAIT`. Returns why the acknowledgement cannot be trusted, or null. */
    check(master: string, role: MasterRole): GuardRefusal | null {
        if (master !== this.master) {
            this.master = master;
            this.seen.clear();
            this.gone.clear();
            this.forgotten.clear();
        }
        const now = this.now();
        const listed = new Set<string>();
        for (const r of role.replicas) {
            const forgottenAt = this.forgotten.get(r.address);
            if (forgottenAt !== undefined && r.offset <= forgottenAt) continue;
            this.forgotten.delete(r.address);
            listed.add(r.address);
            const known = this.seen.get(r.address);
            const advanced = !known || r.offset > known.offset;
            if (advanced) this.seen.set(r.address, { offset: r.offset, advancedAt: now });
            // Attached and acknowledging again: whatever it said before no longer matters. A listed replica
            // that is not (a host that died keeps its link until repl-timeout) keeps its record, so its
            // grace runs out and it is forgotten instead of being asked again on every check.
            if (advanced || r.offset >= role.offset) this.gone.delete(r.address);
        }
        let refusal: GuardRefusal | null = null;
        for (const [address, s] of this.seen) {
            const missing = !listed.has(address);
            const stalled = !missing && s.offset < role.offset && now - s.advancedAt > this.stallMs;
            if (!missing && !stalled) continue;
            const why = this.judge(master, address, now);
            if (why) refusal ??= { replica: address, why: missing ? why : "stopped acknowledging" };
            else if (!missing) this.forgotten.set(address, s.offset);
        }
        return refusal;
    }

    /**
     * How many replicas of `master` a durable write must reach so that no replica a failover could
     * promote lacks it: every replica this client has seen attached and acknowledging, and not
     * forgotten (crashed, or resyncing). A replica that Sentinel promotes leaves the old master at
     * once, so a `WAIT` for this many can no longer be met by the others alone, whether or not the
     * master has noticed the departure yet.
     */
    expectedReplicas(master: string): number {
        return master === this.master ? this.seen.size : 0;
    }

    /** True once a replica that left this master said it is a master or follows another one. */
    failoverSuspected(master: string): boolean {
        if (master !== this.master) return false;
        for (const g of this.gone.values()) if (g.state !== "asking" && isElsewhere(g.state, master)) return true;
        return false;
    }

    /** The refusal reason for a replica that is gone or stalled, or null once it may be forgotten. */
    private judge(master: string, address: string, now: number): GuardRefusal["why"] | null {
        const g = this.gone.get(address);
        if (!g) {
            const entry: { since: number; state: ReplicaState | "asking" } = { since: now, state: "asking" };
            this.gone.set(address, entry);
            this.probe(address).then(
                (state) => {
                    if (this.gone.get(address) === entry) entry.state = state;
                },
                () => {
                    if (this.gone.get(address) === entry) entry.state = { kind: "unreachable" };
                },
            );
            return "left the master";
        }
        const state = g.state;
        if (state === "asking") return "left the master";
        if (isElsewhere(state, master)) return "was promoted or follows another master";
        if (state.kind === "replica-of" || now - g.since > this.graceMs) {
            // Resyncing with this master, or crashed long enough ago: no longer expected.
            this.seen.delete(address);
            this.gone.delete(address);
            return null;
        }
        return "left the master";
    }
}

function isElsewhere(state: ReplicaState, master: string): boolean {
    return state.kind === "master" || (state.kind === "replica-of" && state.master !== master);
}

/** A {@link RoleProbe} over a short-lived ioredis connection with the client's Redis credentials and TLS. */
export function roleProbe(opts: ResolvedOptions): RoleProbe {
    return async (address) => {
        const i = address.lastIndexOf(":");
        const conn = new Redis(
            probeConnectionOptions(
                { host: address.slice(0, i), port: Number(address.slice(i + 1)) },
                opts.redis,
                opts.timeouts.healthMs,
            ),
        );
        conn.on("error", () => undefined);
        try {
            await conn.connect();
            const role = (await conn.call("ROLE")) as unknown[];
            if (role[0] === "master") return { kind: "master" };
            return { kind: "replica-of", master: `${String(role[1])}:${String(role[2])}` };
        } catch {
            return { kind: "unreachable" };
        } finally {
            if (conn.status !== "end") conn.disconnect();
        }
    };
}
