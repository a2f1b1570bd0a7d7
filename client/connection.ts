import { EventEmitter } from "node:events";
import Redis from "ioredis";
import { classifyError } from "./classify";
import { ClientClosedError, NotConnectedError } from "./errors";
import type { ResolvedOptions } from "./options";
import { buildIoredisOptions, reconnectDelay } from "./ioredisOptions";

/** State changes of one managed connection. */
export interface ConnectionEvents {
    /** ioredis finished the handshake (AUTH, INFO role check) with `address`. */
    ready: [info: { address: string | null; epoch: number; previousAddress: string | null }];
    /** The connection stopped being usable (socket closed, READONLY seen, hung). */
    down: [info: { reason: string }];
    /** ioredis error events (connection refused, Sentinel unreachable...): expected during failovers. */
    error: [err: Error];
}

/** `host:port` of a socket's peer, IPv4-mapped IPv6 unwrapped; null when not connected. */
export function peerAddress(stream: { remoteAddress?: string; remotePort?: number } | undefined): string | null {
    if (!stream?.remoteAddress || !stream.remotePort) return null;
    return `${stream.remoteAddress.replace(/^::ffff:/, "")}:${stream.remotePort}`;
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
    /** Skip ioredis' reconnect backoff once: the socket was dropped because Sentinel named a new master. */
    private reconnectNow = false;
    private readonly commandMs: number;

    constructor(
        opts: ResolvedOptions,
        readonly role: "master" | "replica",
    ) {
        super();
        this.commandMs = opts.timeouts.commandMs;
        this.redis = new Redis(
            buildIoredisOptions(opts, role, {
                onReconnectOnError: () => {
                    this.markDown("READONLY: connected to a demoted master");
                },
            }),
        );
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
        if (classifyError(err).errorClass !== "timeout") return;
        // ioredis types `stream` as always set; it is undefined before the first connect.
        const stream = this.redis.stream as Redis["stream"] | undefined;
        if (!stream || Date.now() - this.lastDataAt < this.commandMs) return;
        if (this.redis.status === "ready" || this.redis.status === "connect") {
            this.markDown(`no reply for ${this.commandMs} ms: server hung`);
            this.dropSocket();
        }
    }

    /**
     * Sentinel announced `to` (`host:port`) as the new master. A master connection that is on
     * another node (or handshaking with it) is dropped, so ioredis asks Sentinel again; one waiting
     * between reconnect attempts is woken now rather than after its backoff. A replica connection
     * on the promoted node moves to a replica. Late copies of the announcement change nothing.
     */
    followSwitch(to: string): void {
        if (this.closing) return;
        const status = this.redis.status;
        const here = peerAddress(this.redis.stream);
        const onNewMaster = here === to;
        const mustMove = this.role === "master" ? !onNewMaster : onNewMaster;
        if ((status === "ready" || status === "connect") && mustMove) {
            this.markDown(`Sentinel switched the master to ${to}`);
            this.reconnectNow = true;
            this.dropSocket();
        } else if (status === "reconnecting" && this.role === "master") {
            // ioredis' pending reconnect timer then finds the client connecting and does nothing.
            this.redis.connect().catch(() => undefined);
        }
    }

    /**
     * Sentinel started a failover of `master` (`host:port`). If that is where this master
     * connection is, stop sending on it (calls wait as if disconnected) until it reconnects (to the
     * new master, after `+switch-master`) or `ms` passes (the failover was aborted). Sentinel does
     * not stop the old master from taking writes while it promotes a replica; writes sent then are
     * lost, even if a replica acknowledged them. Bumps `fenceCount` so durable writes in flight
     * refuse their acknowledgement.
     */
    fence(master: string, ms: number): void {
        if (this.role !== "master" || this.closing) return;
        const here = peerAddress(this.redis.stream) ?? this.address;
        if (here !== null && here !== master) return;
        this.fenceCount += 1;
        this.fencedUntil = Date.now() + ms;
        if (this.ready) this.emit("down", { reason: `Sentinel started a failover of ${master}` });
        if (this.fenceTimer) clearTimeout(this.fenceTimer);
        this.fenceTimer = setTimeout(() => {
            this.clearFence();
            if (this.isReady()) this.wakeWaiters();
        }, ms);
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
