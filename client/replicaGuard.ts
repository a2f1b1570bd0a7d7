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
    | {
          readonly kind: "replica-of";
          readonly master: string;
          /**
           * Its link to that master, as its `ROLE` says: `"connected"` (streaming) or `"sync"` (loading a
           * snapshot taken from it) mean it holds, or is fetching, everything the master applied; `"connect"`,
           * `"connecting"`, `"handshake"` mean it is cut off from it (and Sentinel may still promote it).
           */
          readonly link: string;
      }
    | { readonly kind: "master" }
    | {
          readonly kind: "unreachable";
          /** Nothing listens at its address (connection refused): the process is gone, not merely cut off. */
          readonly refused?: boolean;
      };

/**
 * True when `state` proves that the replica cannot be promoted without the writes `master` applied so far: it
 * streams from `master` or loads a snapshot of it (it gets them unless promoted before it has), or its process is
 * gone (connection refused; a restarted process comes back as a replica and resyncs). Alive and cut off from the
 * master, unreachable by timeout (a partition looks the same), or following another master proves nothing.
 */
export function cannotLackWrites(state: ReplicaState, master: string): boolean {
    return state.kind === "unreachable" ? state.refused === true : streamsFrom(state, master);
}

/** A replica of `master` whose link to it is up (streaming) or loading its snapshot. */
function streamsFrom(state: ReplicaState, master: string): boolean {
    return (
        state.kind === "replica-of" && state.master === master && (state.link === "connected" || state.link === "sync")
    );
}

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
 * - a replica of this master streaming from it or loading its snapshot (resyncing): forgotten until it
 *   attaches again (it gets every write the master applied);
 * - a master, or a replica of another master: a failover is under way; no acknowledgement on this
 *   master counts until that replica is attached to it again (or the client has moved to the new master);
 * - a replica of this master cut off from it (link down), or unreachable: acknowledgements are refused for
 *   `graceMs`, then it is forgotten (a crashed replica; or one cut off for longer than that, which Sentinel
 *   could still promote: the window client/README.md states). It is never forgotten at once while alive and
 *   cut off: that is exactly the replica a failover on the far side of a partition promotes.
 *
 * Forgetting changes what later writes wait for, never what a write already sent needs: durableWrite
 * freezes {@link ReplicaGuard.expected} as the write goes out and asks each forgotten member again
 * ({@link ReplicaGuard.ask}) before it resolves.
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
    /** The latest fresh `ROLE` asked of each replica by {@link ask}, shared by the writes waiting at the same time. */
    private readonly asked = new Map<string, { at: number; answer: Promise<ReplicaState> }>();

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

    /** The replicas {@link expectedReplicas} counts, by address (a copy). */
    expected(master: string): ReadonlySet<string> {
        return new Set(master === this.master ? this.seen.keys() : []);
    }

    /**
     * The replica's state asked now: a probe started at or after `notBefore` (this clock) is shared, so the writes
     * that waited together ask once. Never a cached answer from before `notBefore`.
     */
    ask(address: string, notBefore: number): Promise<ReplicaState> {
        const last = this.asked.get(address);
        if (last && last.at >= notBefore) return last.answer;
        const answer = this.probe(address).catch((): ReplicaState => ({ kind: "unreachable" }));
        this.asked.set(address, { at: this.now(), answer });
        return answer;
    }

    /** This guard's clock (the one {@link ask}'s `notBefore` is on). */
    clock(): number {
        return this.now();
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
        if (streamsFrom(state, master) || now - g.since > this.graceMs) {
            // Streaming or resyncing from this master, or gone (or cut off) for longer than the grace: no longer
            // expected by the writes sent from now on. A refused connection waits out the grace too: the process
            // may be restarting, and comes back with older data.
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
        let refused = false;
        conn.on("error", (err: NodeJS.ErrnoException) => {
            if (err.code === "ECONNREFUSED") refused = true;
        });
        try {
            await conn.connect();
            const role = (await conn.call("ROLE")) as unknown[];
            if (role[0] === "master") return { kind: "master" };
            return { kind: "replica-of", master: `${String(role[1])}:${String(role[2])}`, link: String(role[3]) };
        } catch (err) {
            refused ||= (err as NodeJS.ErrnoException | null)?.code === "ECONNREFUSED";
            return { kind: "unreachable", refused };
        } finally {
            if (conn.status !== "end") conn.disconnect();
        }
    };
}
