import { EventEmitter } from "node:events";
import Redis from "ioredis";
import { classifyError } from "./classify";
import { authBackoffMs } from "./connection";
import type { ResolvedOptions } from "./options";

/** A master switch announced by Sentinel (`+switch-master`) or seen by the client's own reconnect. */
export interface FailoverEvent {
    readonly masterName: string;
    /** `host:port` of the old master (null if unknown). */
    readonly from: string | null;
    /** `host:port` of the new master. */
    readonly to: string;
    readonly at: Date;
    /** `"sentinel"`: a `+switch-master` message; `"reconnect"`: the client reconnected to a different master. */
    readonly source: "sentinel" | "reconnect";
}

/**
 * Parses a `+switch-master` payload: `<master-name> <old-ip> <old-port> <new-ip> <new-port>`.
 * Returns null for other masters or malformed messages.
 */
export function parseSwitchMaster(message: string, masterName: string, at = new Date()): FailoverEvent | null {
    const parts = message.trim().split(/\s+/);
    if (parts.length !== 5 || parts[0] !== masterName) return null;
    return { masterName, from: `${parts[1]}:${parts[2]}`, to: `${parts[3]}:${parts[4]}`, at, source: "sentinel" };
}

/**
 * Parses a `+try-failover` payload (`master <name> <ip> <port>`): a Sentinel starts a failover of
 * `<name>`. Returns the master's `host:port`, or null for other masters.
 */
export function parseTryFailover(message: string, masterName: string): string | null {
    const parts = message.trim().split(/\s+/);
    if (parts.length < 4 || parts[0] !== "master" || parts[1] !== masterName) return null;
    return `${parts[2]}:${parts[3]}`;
}

/** Resubscribe backoff of the Sentinel subscriptions: a restarted Sentinel is heard again within a second. */
const SUBSCRIBER_RETRY_STEP_MS = 200;
const SUBSCRIBER_RETRY_MAX_MS = 1000;

export interface FailoverWatcherEvents {
    failover: [FailoverEvent];
    /** A Sentinel started a failover of the master at `master` (`+try-failover`). */
    failoverStarted: [info: { master: string; at: Date }];
}

/**
 * Subscribes to `+try-failover` and `+switch-master` on every configured Sentinel. Each Sentinel
 * publishes `+switch-master` once it updates its configuration, so several copies arrive, up to a
 * second or more apart; see {@link FailoverWatcher.report} for which ones are passed on.
 */
export class FailoverWatcher extends EventEmitter<FailoverWatcherEvents> {
    private readonly subscribers: Redis[] = [];
    /** New master of the last switch emitted. */
    private lastTo: string | null = null;

    constructor(opts: ResolvedOptions) {
        super();
        const tls = opts.sentinel.tls === true ? {} : opts.sentinel.tls;
        for (const s of opts.sentinels) {
            // Refused credentials: reconnects back off like the client's own (not 5 a second per Sentinel).
            let authFailures = 0;
            const sub = new Redis({
                host: s.host,
                port: s.port,
                username: opts.sentinel.username,
                password: opts.sentinel.password,
                tls,
                connectTimeout: opts.timeouts.connectMs,
                disconnectTimeout: opts.timeouts.disconnectMs,
                keepAlive: opts.timeouts.keepAliveMs || undefined,
                // A restarted Sentinel should resume telling us about failovers within a second.
                retryStrategy: (times) =>
                    authFailures > 0
                        ? authBackoffMs(authFailures)
                        : Math.min(times * SUBSCRIBER_RETRY_STEP_MS, SUBSCRIBER_RETRY_MAX_MS),
                // Sentinel speaks RESP2 pub/sub; no INFO ready check needed on a subscriber.
                enableReadyCheck: false,
                // Subscribed below on every connect, which tells a working login from a refused one.
                autoResubscribe: false,
                enableOfflineQueue: true,
                maxRetriesPerRequest: null,
                disableClientInfo: true,
            });
            // Unreachable Sentinels are reported by health(), not here.
            sub.on("error", (err: Error) => {
                if (classifyError(err).errorClass === "auth") authFailures += 1;
            });
            // +try-failover: a Sentinel starts a failover (the first sign, ~100 ms before it promotes a
            // replica); +switch-master: it is done.
            sub.on("ready", () => {
                sub.subscribe("+switch-master", "+try-failover").then(
                    () => (authFailures = 0),
                    (err: unknown) => {
                        if (err instanceof Error && classifyError(err).errorClass === "auth") authFailures += 1;
                    },
                );
            });
            sub.on("message", (channel: string, message: string) => {
                if (channel === "+switch-master") {
                    const event = parseSwitchMaster(message, opts.masterName);
                    if (event) this.report(event);
                } else if (channel === "+try-failover") {
                    const master = parseTryFailover(message, opts.masterName);
                    if (master) this.emit("failoverStarted", { master, at: new Date() });
                }
            });
            this.subscribers.push(sub);
        }
    }

    /**
     * Emits `failover` unless it names the same new master as the last switch emitted: the other
     * Sentinels' copies of one switch arrive up to a second or more apart. A switch to another master
     * is always news, however recently the same pair was seen (A→B, B→A, A→B). A copy of an old
     * switch arriving after a newer one (the failover leader publishes last) is emitted again; it
     * costs one reconnect, after which Sentinel names the current master.
     */
    report(event: FailoverEvent): void {
        if (event.to === this.lastTo) return;
        this.lastTo = event.to;
        this.emit("failover", event);
    }

    close(): void {
        for (const s of this.subscribers) s.disconnect();
        this.subscribers.length = 0;
    }
}
