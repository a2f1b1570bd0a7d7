import { PATHS } from "./paths";
import { SENTINEL_DEBUG_TIMINGS } from "./sentinelConf";

/** systemd unit text from sections of key/value pairs (repeated keys allowed, order kept). */
export function renderUnit(
    sections: Readonly<Record<string, readonly (readonly [string, string])[]>>,
    comment: readonly string[] = [],
): string {
    const out = comment.map((c) => `# ${c}`);
    for (const [name, entries] of Object.entries(sections)) {
        if (out.length > 0) out.push("");
        out.push(`[${name}]`, ...entries.map(([k, v]) => `${k}=${v}`));
    }
    return `${out.join("\n")}\n`;
}

/** Kernel settings for Redis, applied by redis-ha-tuning.service before Redis starts, on every boot. */
export function renderSysctl(): string {
    return [
        "# Kernel settings for Redis, applied by redis-ha-tuning.service before Redis and Sentinel start.",
        "# Redis forks for RDB snapshots and AOF rewrites; without overcommit the fork can fail under memory pressure.",
        "# The leading '-' lets systemd-sysctl skip a key it may not set (vm.* is read-only inside a container).",
        "-vm.overcommit_memory = 1",
        "# Room for connection bursts during a failover, above Redis's tcp-backlog 511.",
        "net.core.somaxconn = 1024",
        "",
    ].join("\n");
}

/** A oneshot that applies the sysctl file and turns transparent huge pages off, ordered before Redis and Sentinel. */
export function renderTuningUnit(): string {
    return renderUnit(
        {
            Unit: [
                ["Description", "Kernel settings for Redis (overcommit, somaxconn, transparent huge pages)"],
                ["After", "systemd-sysctl.service"],
                ["Before", "redis-server.service redis-sentinel.service"],
            ],
            Service: [
                ["Type", "oneshot"],
                ["RemainAfterExit", "yes"],
                // systemd-sysctl applies a written file at the right point of every boot; on first boot the file is
                // written after systemd-sysctl.service has already run, which is why this unit exists.
                ["ExecStart", `/usr/lib/systemd/systemd-sysctl ${PATHS.sysctl}`],
                ["ExecStart", `${PATHS.scriptsDir}/disable-thp`],
            ],
            Install: [["WantedBy", "multi-user.target"]],
        },
        ["Rendered by redis-ha."],
    );
}

/**
 * With `addressing: ephemeral` a node learns its peers only in the bootstrap step (cloud-init/bootstrap.ts), which
 * writes node.env last. Debian's packages enable redis-server and redis-sentinel at install, so without this
 * condition a reboot before the bootstrap would start them with Debian's defaults (a Sentinel monitoring 127.0.0.1,
 * a Redis with no replicaof): a skipped condition starts nothing and is no failure, so Restart= does not loop.
 */
export interface DropInOptions {
    /** Start only once node.env exists (addressing: ephemeral). @default false */
    readonly afterBootstrap?: boolean;
    /** Sentinel drop-in: this node runs redis-homing (it is the drill runner). @default false */
    readonly homing?: boolean;
}

function bootstrapCondition(opts: DropInOptions): [string, string][] {
    return opts.afterBootstrap ? [["ConditionPathExists", PATHS.nodeEnv]] : [];
}

/** Drop-in for Debian's redis-server.service: keeps its hardening, adds the start guard and the restart policy. */
export function renderRedisDropIn(opts: DropInOptions = {}): string {
    return renderUnit(
        {
            Unit: [
                ...bootstrapCondition(opts),
                // The minority fence runs wherever Redis does, pulled in by Redis so that no enable step (first boot,
                // bootstrap, a rollout to a running node) can miss it; it does not wait for Redis to be up.
                ["Wants", "redis-ha-tuning.service redis-ha-fence.service"],
                ["After", "redis-ha-tuning.service"],
                // Never give up restarting a data node: the guard already spaces out restarts of a crashed master.
                ["StartLimitIntervalSec", "0"],
            ],
            Service: [
                // '+' runs these as root outside the unit's sandbox (NoExecPaths=/ would forbid bash and redis-cli).
                ["ExecStartPre", `+${PATHS.scriptsDir}/redis-start-guard`],
                // ExecStop= runs before systemd's stop signal, which still follows (KillMode=control-group sends
                // SIGTERM to whatever is left): the hook hands mastership over and exits, then Redis shuts down as
                // Debian's unit has it. The hook does not stop Redis itself, so that a failed or skipped handover
                // still ends in the usual clean shutdown.
                ["ExecStop", `+${PATHS.scriptsDir}/redis-stop-handover`],
                ["ExecStopPost", `+${PATHS.scriptsDir}/redis-stop-record`],
                ["Restart", "always"],
                // Short so a crashed master restarts as soon as its handover (asked by redis-stop-record) allows;
                // systemd fires it 100-350 ms after the stop (its timers' default 250 ms accuracy). The guard spaces
                // out every other restart after a crash by a second.
                ["RestartSec", "100ms"],
                // The guard may wait for a whole failover before Redis starts, and bounds that wait itself (its
                // bound follows live timing changes, which a number here would not).
                ["TimeoutStartSec", "infinity"],
                // Redis ignores a SIGTERM that lands while it writes its first AOF after a full sync ("Writing
                // initial AOF, can't exit"), and Debian's unit would wait for it forever: bound the stop. After the
                // bound systemd kills it, and the next start goes through the guard's after-a-crash path.
                ["TimeoutStopSec", "60s"],
            ],
        },
        [
            "Rendered by redis-ha. A crashed master restarts only after redis-start-guard has let Sentinel promote a replica,",
            "so it comes back as that replica instead of a master with older data than its replicas acknowledged.",
            "A stop of the master first hands mastership to a caught-up replica (redis-stop-handover).",
        ],
    );
}

/** Drop-in for Debian's redis-sentinel.service. */
export function renderSentinelDropIn(opts: DropInOptions = {}): string {
    return renderUnit(
        {
            Unit: [
                ...bootstrapCondition(opts),
                ["Wants", `redis-ha-tuning.service${opts.homing ? " redis-ha-homing.service" : ""}`],
                ["After", "redis-ha-tuning.service"],
                // Started before Redis, so stopped after it: a reboot's stop handover (redis-stop-handover) asks this
                // node's Sentinel first, and the start guard finds it up.
                ["Before", "redis-server.service"],
                ["StartLimitIntervalSec", "0"],
            ],
            Service: [
                // '-': a Sentinel that cannot be tuned still runs, with its default timings.
                [
                    "ExecStartPost",
                    `-+${PATHS.scriptsDir}/sentinel-tune ${SENTINEL_DEBUG_TIMINGS.map(([k, v]) => `${k} ${v}`).join(" ")}`,
                ],
                ["Restart", "always"],
                ["RestartSec", "1s"],
            ],
        },
        [
            "Rendered by redis-ha. sentinel-tune sets the Sentinel timings that sentinel.conf cannot hold (SENTINEL DEBUG).",
        ],
    );
}

/** A node-local loop of the redis-ha scripts (the fence, the return home): restarted whenever it ends. */
function loopUnit(description: string, script: string, opts: DropInOptions, comment: readonly string[]): string {
    return renderUnit(
        {
            Unit: [["Description", description], ...bootstrapCondition(opts), ["StartLimitIntervalSec", "0"]],
            Service: [
                ["ExecStart", `${PATHS.scriptsDir}/${script}`],
                ["Restart", "always"],
                ["RestartSec", "1s"],
            ],
        },
        ["Rendered by redis-ha.", ...comment],
    );
}

/** redis-ha-fence.service: a master that no Sentinel majority names refuses writes (cloud-init/scripts/redis-fence). */
export function renderFenceUnit(opts: DropInOptions = {}): string {
    return loopUnit("redis-ha minority fence", "redis-fence", opts, [
        "Started by redis-server.service (Wants=); refuses writes on a master cut off from the Sentinel majority.",
    ]);
}

/** redis-ha-homing.service: mastership back to the primary region after a hold-down (cloud-init/scripts/redis-homing). */
export function renderHomingUnit(opts: DropInOptions = {}): string {
    return loopUnit("redis-ha return of mastership to the primary region", "redis-homing", opts, [
        "Started by redis-sentinel.service (Wants=) on the drill runner; fails back after the hold-down.",
    ]);
}
