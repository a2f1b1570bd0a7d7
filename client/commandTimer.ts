import Redis from "ioredis";
import type { RedisOptions } from "ioredis";

/** The error ioredis' own `commandTimeout` rejects with; `classify.ts` maps it to "timeout", outcome unknown. */
export const COMMAND_TIMED_OUT = "Command timed out";

/** What {@link CommandTimer} reads of ioredis' queue of sent, unanswered commands (`Redis.commandQueue`). */
export interface SentQueue {
    readonly length: number;
    peekAt(i: number): { command: { reject(err: Error): void } } | undefined;
}

/**
 * How often the timer looks at the oldest unanswered command. A command times out between
 * `timeoutMs` and `timeoutMs + 2 × TICK_MS` after it was written (plus event-loop lag), never before.
 */
export const COMMAND_TIMER_TICK_MS = 25;

/**
 * Command timeouts for one connection without a timer per command. ioredis' `commandTimeout` arms
 * a `setTimeout` for every command and clears it on the reply: at 64 commands in flight on
 * loopback that timer was most of this client's own cost per call.
 *
 * Redis answers the commands of one connection in order, so ioredis' command queue is oldest
 * first. The timer counts the commands written to it and, every {@link COMMAND_TIMER_TICK_MS}
 * while any is unanswered, notes how many had been written by then. A command that was written
 * before a note at least `timeoutMs` old has waited at least `timeoutMs`: it is rejected with
 * ioredis' own "Command timed out" error (its reply, if one ever comes, is then ignored, as with
 * ioredis' timer). Per command this costs one counter increment.
 *
 * A verdict waits for the socket to be read: Node runs due timers before it polls its sockets, so
 * after this process stalled (a long synchronous task, a GC pause) the first tick finds commands
 * "unanswered" whose replies came in time and wait unread in the socket. Rejecting them then, and
 * judging the server hung (ManagedConnection drops the socket), fails a healthy connection's
 * calls: the lab's rotation test lost its master connection that way while it rendered the
 * program in the writer's process (docs/security.md, "Rotation"). So a tick that finds commands
 * due looks again from `setImmediate`, which runs after the poll phase has read every socket.
 */
export class CommandTimer {
    /** Commands written to the queue so far. The oldest unanswered one is number `written - queue.length`. */
    private written = 0;
    /** Commands numbered below this were already rejected. */
    private rejectedBelow = 0;
    /** Notes `[at, written]`, oldest first; the first is the newest one at least `timeoutMs` old, once there is one. */
    private notes: Array<readonly [number, number]> = [];
    private interval: NodeJS.Timeout | undefined;
    /** The second look of a tick that found commands due, pending until the event loop has read its sockets. */
    private secondLook: NodeJS.Immediate | undefined;

    constructor(
        private readonly queue: () => SentQueue,
        readonly timeoutMs: number,
        private readonly tickMs = COMMAND_TIMER_TICK_MS,
        private readonly now: () => number = Date.now,
        /** Called after a tick rejected commands (the connection then judges whether its server hung). */
        private readonly onTimedOut: () => void = () => undefined,
    ) {}

    /** A command was just appended to the queue. */
    noteWritten(): void {
        this.written += 1;
        if (this.interval !== undefined) return;
        this.notes = [[this.now(), this.written]];
        this.interval = setInterval(() => {
            this.tick();
        }, this.tickMs);
        // The socket holds the process open while commands are in flight; this timer need not.
        this.interval.unref();
    }

    /**
     * Rejects every queued command that has waited `timeoutMs`; stops while nothing is unanswered.
     * `afterPoll`: this is the second look (see the class comment); a first look that finds commands due
     * only schedules it.
     */
    tick(afterPoll = false): void {
        if (!afterPoll && this.secondLook !== undefined) return;
        const q = this.queue();
        if (q.length === 0) {
            this.stop();
            return;
        }
        const now = this.now();
        const notes = this.notes;
        notes.push([now, this.written]);
        const limit = now - this.timeoutMs;
        while (notes.length >= 2 && notes[1][0] <= limit) notes.shift();
        const [at, writtenBy] = notes[0];
        if (at > limit || writtenBy <= this.rejectedBelow) return;
        if (!afterPoll) {
            this.secondLook = setImmediate(() => {
                this.secondLook = undefined;
                this.tick(true);
            });
            return;
        }
        const oldest = this.written - q.length;
        for (let n = Math.max(oldest, this.rejectedBelow); n < writtenBy; n++) {
            q.peekAt(n - oldest)?.command.reject(new Error(COMMAND_TIMED_OUT));
        }
        this.rejectedBelow = writtenBy;
        this.onTimedOut();
    }

    stop(): void {
        if (this.interval !== undefined) clearInterval(this.interval);
        if (this.secondLook !== undefined) clearImmediate(this.secondLook);
        this.interval = undefined;
        this.secondLook = undefined;
        this.notes = [];
    }
}

/**
 * ioredis with its per-command timer replaced by one {@link CommandTimer}: pass the timeout here,
 * not as `commandTimeout`. Every command, handshake (AUTH, the ready check's INFO) and pipelines
 * included, goes through `sendCommand`; one that ioredis rejects instead of writing (not
 * connected) never reaches the queue and is not counted.
 */
export class TimedRedis extends Redis {
    readonly commandTimer: CommandTimer;
    /** The socket corked in this tick, if any. */
    corked: Redis["stream"] | undefined;

    constructor(options: RedisOptions, commandTimeoutMs: number, onTimedOut?: () => void) {
        super(options);
        this.commandTimer = new CommandTimer(
            () => this.commandQueue,
            commandTimeoutMs,
            COMMAND_TIMER_TICK_MS,
            Date.now,
            onTimedOut,
        );
    }

    override sendCommand(...args: Parameters<Redis["sendCommand"]>): unknown {
        const q = this.commandQueue;
        const before = q.length;
        // ioredis writes each command to the socket at once: one syscall per command. Commands
        // issued in the same tick (many callers answered by one read) are gathered into one write:
        // the socket is corked at the first and uncorked once this tick's callbacks and promise
        // continuations have run, before any I/O or timer, so nothing waits longer than that.
        // ioredis types `stream` as always set; it is undefined before the first connect.
        const stream = this.stream as Redis["stream"] | undefined;
        if (stream && before > 0 && this.corked !== stream) {
            this.corked = stream;
            stream.cork();
            process.nextTick(uncork, this, stream);
        }
        const result = super.sendCommand(...args);
        // Undefined only while ioredis' own constructor runs (nothing is written then).
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (q.length > before) this.commandTimer?.noteWritten();
        return result;
    }
}

function uncork(r: TimedRedis, stream: Redis["stream"]): void {
    if (r.corked === stream) r.corked = undefined;
    stream.uncork();
}
