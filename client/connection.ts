import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import type Redis from "ioredis";
import { classifyError } from "./classify";
import { CommandTimer, TimedRedis } from "./commandTimer";
import { AuthenticationError, ClientClosedError, NotConnectedError } from "./errors";
import type { ResolvedOptions } from "./options";
import { buildIoredisOptions, reconnectDelay } from "./ioredisOptions";
import { ReplicaGuard, roleProbe } from "./replicaGuard";
import { askSentinels, sentinelAsker, type MajorityVerdict } from "./sentinelMajority";

/** State changes of one managed connection. */
export interface ConnectionEvents {
    /** ioredis finished the handshake (AUTH, INFO role check) with `address`. */
    ready: [info: { address: string | null; epoch: number; previousAddress: string | null }];
    /** The connection stopped being usable (socket closed, READONLY seen, hung). */
    down: [info: { reason: string }];
    /** ioredis error events (connection refused, Sentinel unreachable...): expected during failovers. */
    error: [err: Error];
}

/**
 * A replica whose acked offset has not moved for this long while the master's did counts as gone
 * for durable writes. Replicas acknowledge every second, and at once while a WAIT is pending.
 */
const REPLICA_STALL_MS = 2000;

/**
 * A master that has refused writes with `NOREPLICAS` for this long (a streak: refusals less than
 * {@link REFUSAL_STREAK_GAP_MS} apart) makes the client ask every Sentinel whether a majority still names it. A master
 * Sentinel has just promoted refuses for a few hundred ms, until a replica attaches; one fenced by redis-fence (cut
 * off from the Sentinel majority) refuses for as long as the cut lasts.
 */
const REFUSAL_STREAK_MS = 1000;
const REFUSAL_STREAK_GAP_MS = 1000;
/** Least time between two such questions while the refusals go on. */
const MAJORITY_CHECK_INTERVAL_MS = 1000;

/** First reconnect delay after refused credentials; doubles per failure. */
const AUTH_BACKOFF_FIRST_MS = 1000;
/** Longest reconnect delay after refused credentials: a fixed password is picked up within this. */
const AUTH_BACKOFF_MAX_MS = 30_000;

/** Reconnect delay after `failures` refused logins in a row. */
export function authBackoffMs(failures: number): number {
    return Math.min(AUTH_BACKOFF_MAX_MS, AUTH_BACKOFF_FIRST_MS * 2 ** Math.max(0, failures - 1));
}

/** Whose credentials an ioredis connection error says were refused, if any. */
export function refusedCredentials(err: Error): "redis" | "sentinel" | undefined {
    if (classifyError(err).errorClass === "auth") return "redis";
    // ioredis' Sentinel connector: "All sentinels are unreachable. ... Last error: WRONGPASS ..."
    if (/^All sentinels are unreachable\b.*Last error: (WRONGPASS|NOAUTH|NOPERM)/.test(err.message)) return "sentinel";
    return undefined;
}

/** `host:port` of a socket's peer, IPv4-mapped IPv6 unwrapped; null when not connected. */
export function peerAddress(stream: { remoteAddress?: string; remotePort?: number } | undefined): string | null {
    if (!stream?.remoteAddress || !stream.remotePort) return null;
    return `${stream.remoteAddress.replace(/^::ffff:/, "")}:${stream.remotePort}`;
}

/** How far an upload on a socket has got: see {@link uploadProgress}. */
export interface UploadProgress {
    /** Bytes of writes the socket has finished (handed to the kernel). Never decreases. */
    readonly completed: number;
    /** Bytes of the write in progress still waiting in libuv. */
    readonly chunkLeft: number;
}

/**
 * Progress of `stream`'s writes. `writableLength` alone does not move while one large write (a
 * 24 MB SET is one Buffer) trickles out: Node counts the whole chunk until it is done. libuv's
 * queue size does move, byte by byte; Node's own socket timeout reads it for the same reason
 * (`_handle.writeQueueSize`, net.js `_onTimeout`).
 */
export function uploadProgress(stream: {
    bytesWritten?: number;
    writableLength: number;
    _handle?: { writeQueueSize?: unknown } | null;
}): UploadProgress {
    const queued = stream._handle?.writeQueueSize;
    return {
        // bytesWritten counts dispatched plus buffered bytes, writableLength the in-flight plus buffered ones.
        completed: (stream.bytesWritten ?? 0) - stream.writableLength,
        chunkLeft: typeof queued === "number" ? queued : stream.writableLength,
    };
}

/**
 * One ioredis connection managed through Sentinel, plus what the policies need that ioredis does
 * not give: a ready flag that flips synchronously on READONLY, a connection epoch (incremented on
 * every 'ready'), one promise to await readiness (instead of ioredis' offline queue), hung-socket
 * detection, and reaction to Sentinel's `+switch-master`.
 */
export class ManagedConnection extends EventEmitter<ConnectionEvents> {
    readonly redis: Redis;
    /** Incremented on every 'ready': two results with the same epoch came over the same connection generation. */
    epoch = 0;
    /** `host:port` of the server of the current (or last) ready connection. */
    address: string | null = null;
    private ready = false;
    private readonly waiters = new Set<() => void>();
    private closing = false;
    private restartTimer: NodeJS.Timeout | undefined;
    private endCount = 0;
    /** Last time any byte arrived on the current socket. */
    private lastDataAt = 0;
    /** Incremented whenever a failover of this connection's server starts (see {@link fence}). */
    fenceCount = 0;
    private fencedUntil = 0;
    private fenceTimer: NodeJS.Timeout | undefined;
    /** Set by `+switch-master`: where the next connection attempt goes first (see {@link followSwitch}). */
    private announcedMaster: string | null = null;
    /** The socket the connector is opening and where it goes (see {@link followSwitch}). */
    private attempt: { readonly address: string; readonly stream: Socket } | undefined;
    /** Skip ioredis' reconnect backoff once: the socket was dropped because Sentinel named a new master. */
    private reconnectNow = false;
    private readonly commandMs: number;
    /** Pending second look at a socket whose command timed out while an upload was under way. */
    private hangCheck: NodeJS.Timeout | undefined;
    private readonly failoverFenceMs: number;
    /** Times out this connection's commands (ioredis' per-command timer is off). */
    private readonly commandTimer: CommandTimer;
    /** Which replicas of the master durable-write acknowledgements can be trusted from (see durableWrite). */
    readonly replicaGuard: ReplicaGuard;
    /** Asks every Sentinel which master they name (see {@link noteRefusedWrite}). */
    private readonly askMajority: () => Promise<MajorityVerdict>;
    private refusalsSince = 0;
    private lastRefusalAt = 0;
    private lastMajorityCheckAt = 0;
    private majorityCheck: Promise<void> | undefined;
    /** Set while the last connection attempt failed on refused credentials; cleared by 'ready'. */
    authError: AuthenticationError | undefined;
    private authFailures = 0;

    constructor(
        opts: ResolvedOptions,
        readonly role: "master" | "replica",
    ) {
        super();
        this.commandMs = opts.timeouts.commandMs;
        this.failoverFenceMs = opts.timeouts.failoverFenceMs;
        this.replicaGuard = new ReplicaGuard(roleProbe(opts), REPLICA_STALL_MS, opts.timeouts.failoverFenceMs);
        const sentinels = opts.sentinels.map((x) => `${x.host}:${String(x.port)}`);
        const ask = sentinelAsker(opts.masterName, {
            username: opts.sentinel.username,
            password: opts.sentinel.password,
            tls: opts.sentinel.tls === true ? {} : opts.sentinel.tls,
            connectMs: opts.timeouts.connectMs,
            commandMs: opts.timeouts.sentinelCommandMs,
        });
        this.askMajority = () => askSentinels(sentinels, ask);
        const redis = new TimedRedis(
            buildIoredisOptions(opts, role, {
                onReconnectOnError: () => {
                    this.markDown("READONLY: connected to a demoted master");
                },
                backoffOverrideMs: () => (this.authError ? authBackoffMs(this.authFailures) : undefined),
                lastKnownMaster: () => this.address,
                announcedMaster: () => this.takeAnnouncedMaster(),
                connectingTo: (address, stream) => {
                    this.connectingTo(address, stream);
                },
            }),
            opts.timeouts.commandMs,
            () => {
                this.commandsTimedOut();
            },
        );
        this.redis = redis;
        this.commandTimer = redis.commandTimer;
        this.redis.on("connect", () => {
            const stream = this.redis.stream;
            this.lastDataAt = Date.now();
            stream.on("data", () => {
                if (this.redis.stream === stream) this.lastDataAt = Date.now();
            });
        });
        this.redis.on("ready", () => {
            const previousAddress = this.address;
            this.address = peerAddress(this.redis.stream);
            this.epoch += 1;
            this.ready = true;
            this.authError = undefined;
            this.authFailures = 0;
            this.announcedMaster = null; // on a master now; a later failover announces itself again
            this.clearFence();
            this.endCount = 0;
            this.emit("ready", { address: this.address, epoch: this.epoch, previousAddress });
            this.wakeWaiters();
        });
        this.redis.on("close", () => {
            this.markDown("socket closed");
        });
        this.redis.on("reconnecting", () => {
            if (!this.reconnectNow || this.closing) return;
            this.reconnectNow = false;
            // ioredis' own reconnect timer then finds the client connecting and does nothing.
            this.redis.connect().catch(() => undefined);
        });
        this.redis.on("error", (err: Error) => {
            const server = refusedCredentials(err);
            if (server) {
                this.authError = new AuthenticationError(server, { cause: err });
                this.authFailures += 1;
                this.wakeWaiters(); // they fail with the authentication error now
            }
            if (this.listenerCount("error") > 0) this.emit("error", err);
        });
        // ioredis ends a client for good when the Sentinel connector's promise rejects, which happens
        // when a disconnect lands while it is resolving the master. The application must never be
        // left with a dead client: connect again.
        this.redis.on("end", () => {
            this.markDown("connection ended");
            if (this.closing) return;
            this.endCount += 1;
            this.restartTimer = setTimeout(
                () => {
                    this.restartTimer = undefined;
                    if (!this.closing && this.redis.status === "end") this.redis.connect().catch(() => undefined);
                },
                reconnectDelay(this.endCount, opts.retry.reconnectMaxDelayMs),
            );
        });
    }

    /** ioredis' connection status, or "fenced" while a failover of this node is in progress. */
    get statusText(): string {
        return this.fencedUntil !== 0 && this.redis.status === "ready"
            ? "fenced (failover in progress)"
            : this.redis.status;
    }

    /** Ready for commands now (handshake done, not known to be demoted, hung or closed). */
    isReady(): boolean {
        return this.ready && this.redis.status === "ready" && this.fencedUntil === 0;
    }

    /**
     * Resolves when the connection is ready; rejects with {@link NotConnectedError} when `signal`
     * aborts first (the caller's deadline). Nothing is queued in ioredis meanwhile, so an abandoned
     * call can never be sent later.
     */
    whenReady(signal?: AbortSignal): Promise<void> {
        if (this.isReady()) return Promise.resolve();
        if (this.closing) return Promise.reject(new ClientClosedError());
        if (this.authError) return Promise.reject(this.authError);
        if (signal?.aborted) return Promise.reject(new NotConnectedError(this.role));
        return new Promise<void>((resolve, reject) => {
            const onAbort = () => {
                this.waiters.delete(onReady);
                reject(new NotConnectedError(this.role));
            };
            const onReady = () => {
                signal?.removeEventListener("abort", onAbort);
                // 'ready' may have been followed by a close in the same tick: check again.
                if (this.isReady()) resolve();
                else if (this.closing) reject(new ClientClosedError());
                else if (this.authError) reject(this.authError);
                else this.whenReady(signal).then(resolve, reject);
            };
            this.waiters.add(onReady);
            signal?.addEventListener("abort", onAbort, { once: true });
        });
    }

    /**
     * Called with every error a command on this connection failed with. A command timeout on a
     * socket that has received nothing for `commandMs` means the server is hung (SIGSTOP, frozen
     * VM) while the socket stays open: drop it so ioredis asks Sentinel again. Replies still
     * flowing means a slow command, not a hung server: keep the connection.
     */
    noteCommandError(err: unknown): void {
        if (classifyError(err).errorClass === "timeout") this.commandsTimedOut();
    }

    /**
     * Commands on this connection timed out (called by its CommandTimer as it rejects them, so
     * whichever way a command was sent, its timeout is looked at): see {@link noteCommandError}.
     */
    private commandsTimedOut(): void {
        // ioredis types `stream` as always set; it is undefined before the first connect.
        const stream = this.redis.stream as Redis["stream"] | undefined;
        if (!stream || this.hangCheck !== undefined) return;
        this.judgeHang(stream, undefined);
    }

    /**
     * Drops `stream` as hung only if nothing arrived on it for `commandMs` and nothing left it
     * either: a large value still being uploaded (bytes leaving the socket) is a slow write, not a
     * hung server, so it is looked at again `commandMs` later. A server that stopped reading stops
     * the upload too, and is dropped then.
     */
    private judgeHang(stream: Redis["stream"], before: UploadProgress | undefined): void {
        if (this.redis.stream !== stream) return;
        if (Date.now() - this.lastDataAt < this.commandMs) return;
        const now = uploadProgress(stream);
        // First look: an upload is under way. Later looks: it moved on since the previous one.
        const uploading =
            before === undefined
                ? stream.writableLength > 0
                : now.completed > before.completed ||
                  (now.completed === before.completed && now.chunkLeft < before.chunkLeft);
        if (uploading) {
            this.hangCheck = setTimeout(() => {
                this.hangCheck = undefined;
                this.judgeHang(stream, now);
            }, this.commandMs);
            this.hangCheck.unref();
            return;
        }
        if (this.redis.status === "ready" || this.redis.status === "connect") {
            this.markDown(`no reply for ${this.commandMs} ms and nothing sent: server hung`);
            this.dropSocket();
        }
    }

    /**
     * Sentinel announced `to` (`host:port`) as the new master. A master connection that is on
     * another node (or handshaking with it) is dropped, so ioredis asks Sentinel again; one waiting
     * between reconnect attempts is woken now rather than after its backoff. A replica connection
     * on the promoted node moves to a replica. Late copies of the announcement change nothing.
     * A master connection's next attempt connects straight to `to` (its role is checked on
     * connect as always), rather than asking a Sentinel first, which after a partition may be the
     * cut-off one (a whole `connectMs` lost).
     */
    followSwitch(to: string): void {
        if (this.closing) return;
        const status = this.redis.status;
        // ioredis types `stream` as always set; it is undefined before the first connect.
        const stream = this.redis.stream as Redis["stream"] | undefined;
        const here = peerAddress(stream);
        const onNewMaster = here === to;
        const mustMove = this.role === "master" ? !onNewMaster : onNewMaster;
        if (this.role === "master" && mustMove) this.announcedMaster = to;
        if ((status === "ready" || status === "connect") && mustMove) {
            this.markDown(`Sentinel switched the master to ${to}`);
            this.reconnectNow = true;
            this.dropSocket();
        } else if (status === "connecting" && this.role === "master" && this.openingElsewhere(stream, to)) {
            // A socket still being opened to the master Sentinel named before the switch: after a partition its SYNs
            // go nowhere; with TLS, a hung master's kernel completes the TCP connect and the handshake never ends.
            // Either would hold the client for up to timeouts.connectMs. Abandon it; the next attempt goes straight
            // to the announced master.
            this.reconnectNow = true;
            this.dropSocket();
        } else if (status === "reconnecting" && this.role === "master") {
            // ioredis' pending reconnect timer then finds the client connecting and does nothing.
            this.redis.connect().catch(() => undefined);
        }
    }

    /**
     * A write on this master connection was refused with `NOREPLICAS`. Once that has gone on for
     * {@link REFUSAL_STREAK_MS}, every Sentinel is asked (at most once per {@link MAJORITY_CHECK_INTERVAL_MS}) and,
     * if a majority of them names another master, the connection moves there as on `+switch-master`. This finds the
     * new master when the client is on an old one that a cut-off minority of Sentinels still names (redis-fence makes
     * it refuse writes) and no `+switch-master` reached the client. Only refused writes cost this; the write path
     * itself is unchanged.
     */
    noteRefusedWrite(): void {
        if (this.role !== "master" || this.closing) return;
        const now = Date.now();
        if (now - this.lastRefusalAt > REFUSAL_STREAK_GAP_MS) this.refusalsSince = now;
        this.lastRefusalAt = now;
        if (now - this.refusalsSince < REFUSAL_STREAK_MS || this.majorityCheck !== undefined) return;
        if (now - this.lastMajorityCheckAt < MAJORITY_CHECK_INTERVAL_MS) return;
        this.lastMajorityCheckAt = now;
        const here = this.address;
        this.majorityCheck = this.askMajority()
            .then((verdict) => {
                const to = verdict.majority;
                // Still where the refusals came from: a reconnect meanwhile already asked the majority.
                if (to !== null && here !== null && to !== here && this.address === here) this.followSwitch(to);
            })
            .finally(() => {
                this.majorityCheck = undefined;
            });
    }

    /** The connector opened `stream` to `address`; ioredis reports 'connect' once TCP and any TLS handshake are done. */
    private connectingTo(address: string, stream: Socket): void {
        this.attempt = { address, stream };
    }

    /** ioredis' current socket is one the connector is still opening, to a master other than `to`. */
    private openingElsewhere(stream: Redis["stream"] | undefined, to: string): boolean {
        const a = this.attempt;
        return a !== undefined && stream !== undefined && a.stream === stream && !stream.destroyed && a.address !== to;
    }

    /**
     * The master announced by the last `+switch-master` that this master connection has not
     * tried yet, handed out once (see `ConnectionHooks.announcedMaster`).
     */
    private takeAnnouncedMaster(): string | null {
        const a = this.announcedMaster;
        this.announcedMaster = null;
        return a;
    }

    /**
     * Sentinel started a failover of `master` (`host:port`). If that is where this master
     * connection is, stop sending on it (calls wait as if disconnected) until it reconnects (to the
     * new master, after `+switch-master`) or `ms` passes (the failover was aborted). Sentinel does
     * not stop the old master from taking writes while it promotes a replica; writes sent then are
     * lost, even if a replica acknowledged them. Bumps `fenceCount` so durable writes in flight
     * refuse their acknowledgement.
     */
    fence(master: string, ms: number, why = `Sentinel started a failover of ${master}`): void {
        if (this.role !== "master" || this.closing) return;
        const here = peerAddress(this.redis.stream) ?? this.address;
        if (here !== null && here !== master) return;
        this.fenceCount += 1;
        this.fencedUntil = Date.now() + ms;
        if (this.ready) this.emit("down", { reason: why });
        if (this.fenceTimer) clearTimeout(this.fenceTimer);
        this.fenceTimer = setTimeout(() => {
            this.clearFence();
            if (this.isReady()) this.wakeWaiters();
        }, ms);
    }

    /**
     * A replica that left this master says it is a master now (or follows another one): Sentinel is
     * failing this master over without this client having heard of it. Stop sending here, as for
     * `+try-failover`, and ask Sentinel again.
     */
    leaveSuspectedMaster(replica: string): void {
        const here = this.address;
        if (this.role !== "master" || here === null || this.fencedUntil !== 0) return;
        this.fence(here, this.failoverFenceMs, `replica ${replica} left ${here} for another master`);
        this.reconnectNow = true;
        this.dropSocket();
    }

    private clearFence(): void {
        this.fencedUntil = 0;
        if (this.fenceTimer) clearTimeout(this.fenceTimer);
        this.fenceTimer = undefined;
    }

    private wakeWaiters(): void {
        const waiters = [...this.waiters];
        this.waiters.clear();
        for (const w of waiters) w();
    }

    /**
     * Destroys the current socket; ioredis sees it close and reconnects through Sentinel. Not
     * `disconnect(true)`: that ends the socket gracefully and waits `disconnectTimeout` for the
     * server's FIN, which a hung or dead server never sends. Commands in flight on it fail as
     * "outcome unknown" (they are not replayed).
     */
    private dropSocket(): void {
        (this.redis.stream as Redis["stream"] | undefined)?.destroy();
    }

    private markDown(reason: string): void {
        if (!this.ready) return;
        if (this.fencedUntil !== 0) {
            this.ready = false;
            return; // "down" was already reported by fence()
        }
        this.ready = false;
        this.emit("down", { reason });
    }

    /** Closes the connection; pending waiters are rejected by their deadlines. */
    close(): Promise<void> {
        this.closing = true;
        if (this.restartTimer) clearTimeout(this.restartTimer);
        if (this.hangCheck) clearTimeout(this.hangCheck);
        this.commandTimer.stop();
        this.clearFence();
        this.markDown("closed by the application");
        this.redis.disconnect();
        // Calls waiting for a connection fail now rather than at their deadline.
        const waiters = [...this.waiters];
        this.waiters.clear();
        for (const w of waiters) w();
        return Promise.resolve();
    }
}
