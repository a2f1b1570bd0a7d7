import { EventEmitter } from "node:events";
import Redis from "ioredis";
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
    private readonly recent = new Map<string, number>();

    constructor(opts: ResolvedOptions) {
        super();
        const tls = opts.sentinel.tls === true ? {} : opts.sentinel.tls;
        for (const s of opts.sentinels) {
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
                retryStrategy: (times) => Math.min(times * SUBSCRIBER_RETRY_STEP_MS, SUBSCRIBER_RETRY_MAX_MS),
                // Sentinel speaks RESP2 pub/sub; no INFO ready check needed on a subscriber.
                enableReadyCheck: false,
                // SUBSCRIBE is issued before the socket is up; the offline queue holds it until connect.
                enableOfflineQueue: true,
                maxRetriesPerRequest: null,
                disableClientInfo: true,
            });
            sub.on("error", () => undefined); // unreachable Sentinels are reported by health(), not here
            // +try-failover: a Sentinel starts a failover (the first sign, ~100 ms before it promotes a
            // replica); +switch-master: it is done.
            sub.subscribe("+switch-master", "+try-failover").catch(() => undefined);
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

    /** Emits `failover` unless the same `from→to` switch was reported in the last minute. */
    report(event: FailoverEvent): void {
        const key = `${event.from}->${event.to}`;
        const now = event.at.getTime();
        for (const [k, t] of this.recent) if (now - t > 60_000) this.recent.delete(k);
        if (this.recent.has(key)) return;
        this.recent.set(key, now);
        this.emit("failover", event);
    }

    close(): void {
        for (const s of this.subscribers) s.disconnect();
        this.subscribers.length = 0;
    }
}
