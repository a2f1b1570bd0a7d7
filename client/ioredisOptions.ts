import { createConnection, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { SentinelConnector } from "ioredis";
import type { RedisOptions, SentinelConnectionOptions } from "ioredis";
import type { ResolvedOptions } from "./options";
import { askSentinels, sentinelAsker } from "./sentinelMajority";

/**
 * Options of a short-lived probe connection (health checks, role checks): one attempt, no retries, no queue, no
 * ready check, every wait bounded by `timeoutMs`, so a probe of a dead or hung node fails within that time.
 */
export function probeConnectionOptions(
    endpoint: { host: string; port: number },
    auth: { username?: string; password?: string; tls?: RedisOptions["tls"] | true },
    timeoutMs: number,
): RedisOptions {
    return {
        host: endpoint.host,
        port: endpoint.port,
        username: auth.username,
        password: auth.password,
        tls: auth.tls === true ? {} : auth.tls,
        lazyConnect: true,
        connectTimeout: timeoutMs,
        commandTimeout: timeoutMs,
        disconnectTimeout: timeoutMs,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
        enableReadyCheck: false,
        disableClientInfo: true,
    };
}

/** Address entry as ioredis passes replicas to `preferredSlaves` (from `SENTINEL REPLICAS`). */
interface ReplicaFromSentinel {
    ip: string;
    port: string;
    flags?: string;
}

/**
 * Hooks the managed connection installs into ioredis' options: called synchronously from inside
 * ioredis so the connection can mark itself not-ready before the next command is sent.
 */
export interface ConnectionHooks {
    /** A reply error made ioredis drop the connection (see `reconnectOnError`). */
    onReconnectOnError?(err: Error): void;
    /** A longer reconnect delay to use instead of the usual one (after refused credentials), or undefined. */
    backoffOverrideMs?(): number | undefined;
    /** The master this connection last reached (`host:port`), to fall back on while no Sentinel answers. */
    lastKnownMaster?: () => string | null;
    /**
     * The master a `+switch-master` just named (`host:port`) that the connection has not tried yet,
     * or null; each call hands it out once. The next attempt connects straight to it.
     */
    announcedMaster?: () => string | null;
    /**
     * The connector opened a socket to `address` (`host:port`). ioredis reports 'connect' only once the TCP connect and,
     * with TLS, the handshake are done; until then this is the attempt under way.
     */
    connectingTo?: (address: string, stream: Socket) => void;
}

/**
 * Capped exponential reconnect delay with ±20 % jitter (so many clients do not reconnect in
 * lock-step after a failover). Never returns null: the client keeps trying until `close()`.
 */
/** First reconnect delay; it doubles per attempt up to the cap. */
const RECONNECT_FIRST_MS = 25;
/** Reconnect delays are spread ±20 % around their nominal value. */
const RECONNECT_JITTER = 0.2;
/** Step and cap of the pause before walking the Sentinel list again (see `sentinelRetryStrategy`). */
const SENTINEL_RETRY_STEP_MS = 100;
const SENTINEL_RETRY_MAX_MS = 1000;
/** Full passes over the Sentinel list without an answer before a master connection falls back on the last known master. */
const SENTINEL_PASSES_BEFORE_FALLBACK = 2;
/**
 * Passes over the Sentinels without a majority before a master connection settles for the master most of those that
 * answered name (see `lastKnownMasterConnector`).
 */
const PASSES_BEFORE_PLURALITY = 2;
/** ioredis' own default connect timeout, for a Sentinel question when none is configured. */
const SENTINEL_CONNECT_DEFAULT_MS = 10_000;
/** Resubscribe delay of ioredis' failover detector (its default is 60 s). */
const DETECTOR_RESUBSCRIBE_MS = 1000;

export function reconnectDelay(times: number, capMs: number, random: () => number = Math.random): number {
    const base = Math.min(capMs, RECONNECT_FIRST_MS * 2 ** Math.max(0, times - 1));
    return Math.max(1, Math.round(base * (1 - RECONNECT_JITTER + 2 * RECONNECT_JITTER * random())));
}

/**
 * Replica chooser for ioredis `preferredSlaves`: a random healthy replica among `localReplicas`,
 * else `null` (ioredis then picks a random healthy replica). ioredis has already dropped replicas
 * flagged `s_down`/`o_down`/`disconnected`. A function, not ioredis' array form, because the array
 * form sorts and mutates the array it is given.
 */
export function preferLocalReplica(
    localReplicas: ReadonlyArray<{ host: string; port: number }>,
    random: () => number = Math.random,
): (replicas: ReplicaFromSentinel[]) => ReplicaFromSentinel | null {
    const wanted = new Set(localReplicas.map((r) => `${r.host}:${r.port}`));
    return (replicas) => {
        const local = replicas.filter((r) => wanted.has(`${r.ip}:${r.port}`));
        if (local.length === 0) return null;
        return local[Math.floor(random() * local.length)] ?? null;
    };
}

/**
 * ioredis options for a Sentinel-managed connection to the master (or a replica).
 *
 * Every value that differs from ioredis 5.8.2's default is set on purpose; the reason is next to it.
 * (Read against `built/redis/event_handler.js`, `built/Redis.js` and
 * `built/connectors/SentinelConnector/{index,FailoverDetector}.js`.)
 */
export function buildIoredisOptions(
    opts: ResolvedOptions,
    role: "master" | "replica",
    hooks: ConnectionHooks = {},
): RedisOptions {
    const { timeouts, retry } = opts;
    // Only for master connections, and not with ioredis' own failover detector (it needs ioredis'
    // built-in connector, to which ioredis hands itself as the event emitter).
    const lastKnown = hooks.lastKnownMaster;
    const fallback =
        role === "master" && opts.failoverDetection === "watcher" && lastKnown
            ? lastKnownMasterConnector(lastKnown, hooks.announcedMaster, hooks.connectingTo)
            : undefined;
    const redisTls = opts.redis.tls === true ? {} : opts.redis.tls;
    const sentinelTls = opts.sentinel.tls === true ? {} : opts.sentinel.tls;
    const options: RedisOptions = {
        sentinels: opts.sentinels.map((s) => ({ host: s.host, port: s.port })),
        name: opts.masterName,
        role: role === "master" ? "master" : "slave",
        username: opts.redis.username,
        password: opts.redis.password,
        sentinelUsername: opts.sentinel.username,
        sentinelPassword: opts.sentinel.password,
        // Sentinel connections get their own TLS settings (`sentinelTLS`); the Redis socket gets `tls`
        // only when `enableTLSForSentinelMode` is on (SentinelConnector ignores `tls` otherwise).
        sentinelTLS: sentinelTls,
        tls: redisTls,
        enableTLSForSentinelMode: redisTls !== undefined,
        connectionName: opts.connectionName,
        // Default false: ioredis sends CLIENT SETINFO twice on every (re)connect. Redis 7.0 does not
        // know it (7.2+), so that is two wasted round trips per reconnect during a failover, and
        // ioredis leaves the rejected commands' timeout timers running.
        disableClientInfo: true,

        // ioredis waits 10 s for a TCP connect; a dead host would hold each reconnect attempt that long.
        connectTimeout: timeouts.connectMs,
        // No `commandTimeout`: ioredis arms a timer per command, most of this client's own cost per call.
        // ManagedConnection times commands out with one CommandTimer per connection instead (same
        // error, same "outcome unknown"; see commandTimer.ts), which also bounds the AUTH/INFO
        // handshake: a timed-out handshake makes ioredis drop the socket and reconnect. A timed-out
        // command leaves an established socket open; ManagedConnection drops it when nothing arrived
        // on it for commandMs (a hung master).
        // Not `socketTimeout`: in 5.8.2 its timer is per client, not per socket, and is not cleared on
        // close, so a timer armed on the hung master's socket fired on the fresh socket to the new
        // master and destroyed it (measured here, twice in one failover).
        // Default: no timeout on Sentinel commands, so one hung Sentinel stalls master resolution.
        sentinelCommandTimeout: timeouts.sentinelCommandMs,
        // A hung master never answers our FIN; ioredis destroys the socket only after this (2000 ms by
        // default: measured ~2 s of an 8.5 s failover away from a hung master). ManagedConnection
        // destroys sockets itself when it leaves a hung or replaced master; this covers the cases where
        // ioredis disconnects on its own: READONLY (below) and a timed-out handshake with a hung master.
        disconnectTimeout: timeouts.disconnectMs,
        // ioredis 5 default: keep-alive off. Lets TCP find dead peers on idle sockets.
        keepAlive: timeouts.keepAliveMs > 0 ? timeouts.keepAliveMs : undefined,

        // Default min(times*50, 2000): up to 2 s between asking Sentinel again. Capped lower and
        // jittered; never null, so a client outliving a long outage reconnects by itself.
        retryStrategy: (times: number) =>
            hooks.backoffOverrideMs?.() ?? reconnectDelay(times, retry.reconnectMaxDelayMs),
        // Called when the connector has walked past the last Sentinel. It does not rewind its list after
        // a success (only ioredis' failover detector does), so the first call after a reconnect often
        // means "reached the end of the list", not "all Sentinels down", yet ioredis sleeps this long
        // first (measured: 100 ms added to a failover with min(times*100, 1000)). First pass free, then
        // up to 1 s apart; never null (null would end the client for good).
        sentinelRetryStrategy: (times: number) => {
            const override = hooks.backoffOverrideMs?.();
            if (override !== undefined) return override;
            // No Sentinel answered twice over: end this attempt, so that LastKnownMasterConnector
            // connects to the master it knows (its role is checked on connect, as always).
            if (times >= SENTINEL_PASSES_BEFORE_FALLBACK && fallback !== undefined && hooks.lastKnownMaster?.())
                return null;
            return times <= 1 ? 0 : Math.min((times - 1) * SENTINEL_RETRY_STEP_MS, SENTINEL_RETRY_MAX_MS);
        },
        // The failover detector's Sentinel subscriptions reconnect after 60 s by default; a Sentinel
        // that restarted would not tell us about a failover for a minute.
        sentinelReconnectStrategy: () => DETECTOR_RESUBSCRIBE_MS,
        // ioredis' detector (off by default) subscribes to +switch-master and drops the connection on
        // every copy of the message, including late copies from other Sentinels that arrive after we
        // are already on the new master. The default "watcher" mode does the same job without those
        // extra reconnects (see FailoverWatcher and ManagedConnection.followSwitch).
        failoverDetector: opts.failoverDetection === "ioredis",
        updateSentinels: opts.updateSentinels,

        // Default true: commands issued while disconnected are queued and sent after reconnecting,
        // with their commandTimeout already running, so a call the caller saw time out could still
        // run later. Off: a command is either written now or rejected now ("not sent", retried by the
        // policy, which waits for 'ready' itself).
        enableOfflineQueue: false,
        // Default true: commands in flight when the socket died are sent again on the new connection
        // (measured: a replayed WAIT answered by the new master reported a lost write as acknowledged).
        autoResendUnfulfilledCommands: false,
        // Default 20. With the offline queue off this only decides when in-flight commands of a dead
        // socket are rejected: 0 = at once on close (as "outcome unknown"), instead of at commandTimeout.
        maxRetriesPerRequest: 0,
        // A demoted master answers writes with READONLY: drop the connection (ioredis then asks Sentinel
        // for the current master) and reject the command (1, not 2: the call's retry policy resends it,
        // and a pipeline must not be half-resent). Replica connections never write, so never match.
        reconnectOnError: (err: Error) => {
            if (role === "master" && err.message.startsWith("READONLY")) {
                hooks.onReconnectOnError?.(err);
                return 1;
            }
            return false;
        },
        // Kept at defaults, listed for the reader: enableReadyCheck (true) makes ioredis check ROLE
        // via INFO, so a Sentinel answer that is already stale (a replica) is rejected and retried;
        // lazyConnect (false) connects at once.
        enableReadyCheck: true,
    };
    if (fallback !== undefined) options.Connector = fallback;
    if (role === "replica") {
        options.preferredSlaves = preferLocalReplica(opts.localReplicas);
    }
    return options;
}

/**
 * ioredis' Sentinel connector, but it follows the master a MAJORITY of the configured Sentinels names instead of the
 * first Sentinel that answers. ioredis asks its Sentinels one after another and believes the first answer: a Sentinel
 * cut off with the old master's region (the client's "own" Sentinel, listed first) keeps naming the old master, which
 * after a region loss is fenced (redis-fence: NOREPLICAS) or unreachable, while the majority elsewhere has promoted
 * another. So every Sentinel is asked at once; the attempt connects as soon as more than half of them name one master
 * (the slowest and the unreachable ones are not waited for). Without a majority (Sentinels down, or mid-failover and
 * disagreeing) the question is asked again after `sentinelRetryStrategy`'s pause; after
 * {@link PASSES_BEFORE_PLURALITY} passes it settles for the master most answering Sentinels name (no majority can be
 * reached from here to say otherwise; the role check and the fence still apply), and when no Sentinel answers at all,
 * for the master it reached last. The usual checks apply on every connection: ioredis verifies `role:master` before
 * 'ready' (`SentinelConnector.check`; a failed check reconnects, asking the majority again), `READONLY` drops it,
 * durable writes verify their replicas. Without the last-known fallback the client could not reconnect to a healthy
 * master while the Sentinels were down.
 *
 * It also connects straight to a master just announced by `+switch-master` (`announcedMaster`), once, with the same
 * checks: asking the Sentinels again would cost a round trip, or a whole `connectTimeout` without a majority. If that
 * announcement arrives while the Sentinels are being asked, their answer is dropped for it.
 */
export function lastKnownMasterConnector(
    lastKnownMaster: () => string | null,
    announcedMaster: () => string | null = () => null,
    connectingTo?: (address: string, stream: Socket) => void,
): NonNullable<RedisOptions["Connector"]> {
    return class MajorityMasterConnector extends SentinelConnector {
        // ioredis constructs a Connector with the client's whole options, Sentinel options included.
        constructor(options: unknown) {
            super(options as SentinelConnectionOptions);
        }

        override async connect(eventEmitter: Parameters<SentinelConnector["connect"]>[0]) {
            this.connecting = true;
            const o = this.options;
            const sentinels = (o.sentinels ?? []).map((s) => `${s.host ?? "127.0.0.1"}:${String(s.port ?? 26379)}`);
            const ask = sentinelAsker(o.name ?? "", {
                username: o.sentinelUsername ?? undefined,
                password: o.sentinelPassword ?? undefined,
                tls: o.sentinelTLS,
                connectMs: o.connectTimeout ?? SENTINEL_CONNECT_DEFAULT_MS,
                commandMs: o.sentinelCommandTimeout ?? SENTINEL_CONNECT_DEFAULT_MS,
            });
            for (let pass = 1; ; pass++) {
                const announced = announcedMaster();
                if (announced) return this.connectTo(announced);
                const verdict = await askSentinels(sentinels, ask);
                // ioredis' own connector checks the same after each Sentinel: disconnect() was called meanwhile.
                if (this.closed()) throw new Error("Connection is closed.");
                const meanwhile = announcedMaster();
                if (meanwhile) return this.connectTo(meanwhile);
                if (verdict.majority !== null) return this.connectTo(verdict.majority);
                // A refused login wins over an unreachable Sentinel: it is what the application must be told.
                const failures = verdict.answers.flatMap((a) => ("error" in a ? [a.error] : []));
                const lastError = failures.find((e) => /^(WRONGPASS|NOAUTH|NOPERM)/.test(e.message)) ?? failures.at(-1);
                const delay = o.sentinelRetryStrategy?.(pass);
                if (verdict.plurality !== null && (pass >= PASSES_BEFORE_PLURALITY || typeof delay !== "number")) {
                    return this.connectTo(verdict.plurality);
                }
                // sentinelRetryStrategy gives up (null) once no Sentinel answered twice over and a master is known.
                const last = typeof delay === "number" ? null : lastKnownMaster();
                if (last !== null) return this.connectTo(last);
                // Worded as ioredis words it: refusedCredentials() reads a refused Sentinel login from it.
                const what =
                    verdict.plurality === null
                        ? "All sentinels are unreachable."
                        : `No majority of the ${String(sentinels.length)} sentinels names a master.`;
                const tail = lastError ? ` Last error: ${lastError.message}` : "";
                if (typeof delay !== "number") throw new Error(`${what} Retry is disabled.${tail}`);
                eventEmitter("error", new Error(`${what} Retrying after ${String(delay)}ms.${tail}`));
                await new Promise((resolve) => setTimeout(resolve, delay));
                if (this.closed()) throw new Error("Connection is closed.");
            }
        }

        /** disconnect() was called (read through a call: TypeScript keeps the narrowing of `connecting` across awaits). */
        private closed(): boolean {
            return !this.connecting;
        }

        /** Connects to `address` (`host:port`) without asking a Sentinel. */
        private connectTo(address: string) {
            const i = address.lastIndexOf(":");
            const target = { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
            const o = this.options;
            this.connecting = true;
            const stream =
                o.enableTLSForSentinelMode && o.tls ? tlsConnect({ ...o.tls, ...target }) : createConnection(target);
            this.stream = stream;
            connectingTo?.(address, stream);
            return stream;
        }
    };
}
