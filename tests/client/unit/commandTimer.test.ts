import { createServer, Server, Socket } from "node:net";
import { Worker } from "node:worker_threads";
import { COMMAND_TIMER_TICK_MS, CommandTimer, SentQueue, TimedRedis } from "../../../client/commandTimer";

/** A TimedRedis on loopback that connects when told and never reconnects. */
function timedRedis(port: number, timeoutMs: number, onTimeout?: () => void): TimedRedis {
    return new TimedRedis(
        {
            host: "127.0.0.1",
            port,
            enableReadyCheck: false,
            retryStrategy: () => null,
            lazyConnect: true,
            disableClientInfo: true,
        },
        timeoutMs,
        onTimeout,
    );
}

/** ioredis' command queue, reduced to what the timer reads: oldest first. */
class FakeQueue implements SentQueue {
    readonly items: Array<{ command: { name: string; reject(err: Error): void } }> = [];
    readonly rejected: Array<{ name: string; at: number }> = [];
    constructor(private readonly clock: () => number) {}
    get length(): number {
        return this.items.length;
    }
    peekAt(i: number) {
        return this.items[i];
    }
    write(name: string, timer: CommandTimer): void {
        this.items.push({
            command: {
                name,
                reject: () => {
                    this.rejected.push({ name, at: this.clock() });
                },
            },
        });
        timer.noteWritten();
    }
    /** The reply to the oldest command arrived. */
    reply(): void {
        this.items.shift();
    }
}

describe("CommandTimer", () => {
    const TIMEOUT = 1000;
    // Jest's fake timers also move Date.now, so each tick sees its own time.
    const clock = () => Date.now();
    const advance = (ms: number) => {
        jest.advanceTimersByTime(ms);
    };

    beforeEach(() => {
        jest.useFakeTimers({ now: 10_000 });
    });
    afterEach(() => {
        jest.useRealTimers();
    });

    test("a command is rejected no earlier than the timeout and at most two ticks after it", () => {
        const q = new FakeQueue(clock);
        const t = new CommandTimer(() => q, TIMEOUT, COMMAND_TIMER_TICK_MS, clock);
        for (const offset of [0, 1, 7, 13, 24]) {
            advance(offset);
            const sentAt = clock();
            q.write(`c${offset}`, t);
            advance(TIMEOUT - 1);
            expect(q.rejected).toEqual([]);
            advance(2 * COMMAND_TIMER_TICK_MS + 1);
            expect(q.rejected).toHaveLength(1);
            const r = q.rejected[0];
            expect(r.name).toBe(`c${offset}`);
            expect(r.at - sentAt).toBeGreaterThanOrEqual(TIMEOUT);
            expect(r.at - sentAt).toBeLessThanOrEqual(TIMEOUT + 2 * COMMAND_TIMER_TICK_MS);
            q.rejected.length = 0;
            q.reply(); // a late reply removes it from ioredis' queue
            advance(COMMAND_TIMER_TICK_MS); // the timer stops once nothing is unanswered
        }
    });

    test("answered commands are never rejected; older ones time out before newer ones, each once", () => {
        const q = new FakeQueue(clock);
        const t = new CommandTimer(() => q, TIMEOUT, COMMAND_TIMER_TICK_MS, clock);
        q.write("answered", t);
        advance(100);
        q.reply();
        q.write("a", t);
        advance(300);
        q.write("b", t);
        advance(TIMEOUT - 300 + 2 * COMMAND_TIMER_TICK_MS);
        expect(q.rejected.map((r) => r.name)).toEqual(["a"]);
        advance(300);
        expect(q.rejected.map((r) => r.name)).toEqual(["a", "b"]);
        advance(5 * TIMEOUT);
        expect(q.rejected.map((r) => r.name)).toEqual(["a", "b"]);
    });

    test("a steady stream of answered commands never times out, and a stall among them is caught", () => {
        const q = new FakeQueue(clock);
        const t = new CommandTimer(() => q, TIMEOUT, COMMAND_TIMER_TICK_MS, clock);
        for (let i = 0; i < 3000; i++) {
            q.write(`ok${i}`, t);
            q.write(`ok${i}b`, t);
            advance(1);
            q.reply();
            q.reply();
        }
        expect(q.rejected).toEqual([]);
        q.write("stuck", t);
        const sentAt = clock();
        for (let i = 0; i < 2000; i++) {
            q.write(`behind${i}`, t); // pipelined behind it, unanswered too
            advance(1);
        }
        expect(q.rejected[0]).toEqual({ name: "stuck", at: expect.any(Number) as number });
        expect(q.rejected[0].at - sentAt).toBeGreaterThanOrEqual(TIMEOUT);
        expect(q.rejected[0].at - sentAt).toBeLessThanOrEqual(TIMEOUT + 2 * COMMAND_TIMER_TICK_MS);
        // Each of the ones behind it is rejected no earlier than its own timeout.
        for (const r of q.rejected.slice(1)) {
            const written = sentAt + Number(r.name.replace("behind", "")) + 0;
            expect(r.at - written).toBeGreaterThanOrEqual(TIMEOUT);
        }
        t.stop();
    });
});

describe("TimedRedis against a server that reads and never answers (a hung server)", () => {
    let server: Server;
    const sockets: Socket[] = [];
    beforeAll(async () => {
        server = createServer((s) => {
            sockets.push(s);
            s.on("data", () => undefined);
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    });
    afterAll(async () => {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => {
            server.close(() => {
                resolve();
            });
        });
    });

    test("each command fails with ioredis' 'Command timed out' within 100 ms after its timeout, never before", async () => {
        const port = (server.address() as { port: number }).port;
        const timeoutMs = 300;
        const r = new TimedRedis(
            { host: "127.0.0.1", port, enableReadyCheck: false, retryStrategy: () => null, lazyConnect: true },
            timeoutMs,
        );
        await r.connect();
        // The timer cannot fire earlier than the event loop lets it: measure how late this loop runs
        // (the machine is shared), and allow that on top of the timer's own bound.
        let lagMs = 0;
        let expected = performance.now() + 5;
        const lagProbe = setInterval(() => {
            lagMs = Math.max(lagMs, performance.now() - expected);
            expected = performance.now() + 5;
        }, 5);
        const waited = await Promise.all(
            [0, 40, 90].map(async (delay) => {
                await new Promise((resolve) => setTimeout(resolve, delay));
                const sent = performance.now();
                const err = await r.get("k").then(
                    () => new Error("answered"),
                    (e: unknown) => e as Error,
                );
                return { message: err.message, ms: performance.now() - sent };
            }),
        );
        clearInterval(lagProbe);
        console.log(
            `commandMs ${timeoutMs}: timed out after ${waited.map((w) => w.ms.toFixed(0)).join(", ")} ms ` +
                `(event loop ran up to ${lagMs.toFixed(0)} ms late)`,
        );
        for (const w of waited) {
            expect(w.message).toBe("Command timed out");
            expect(w.ms).toBeGreaterThanOrEqual(timeoutMs - 1); // timers may round down by < 1 ms
            expect(w.ms).toBeLessThanOrEqual(timeoutMs + 100 + lagMs);
        }
        expect(r.status).toBe("ready"); // the timeout alone keeps the socket: ManagedConnection judges hangs
        r.disconnect();
    });

    test("commands issued in one tick while others are in flight leave in one socket write", async () => {
        const port = (server.address() as { port: number }).port;
        const r = timedRedis(port, 1000);
        await r.connect();
        const stream = r.stream as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
        const calls: string[] = [];
        for (const name of ["_write", "_writev"] as const) {
            const original = stream[name].bind(stream);
            stream[name] = (...a: unknown[]) => {
                calls.push(name === "_writev" ? `writev ${(a[0] as unknown[]).length}` : "write");
                original(...a);
            };
        }
        const pending = Array.from({ length: 10 }, (_, i) => r.get(`k${i}`).catch(() => undefined));
        await new Promise((resolve) => setImmediate(resolve));
        // The first goes out at once (nothing was in flight); the other nine together.
        expect(calls).toEqual(["write", "writev 9"]);
        r.disconnect();
        await Promise.all(pending);
    });
});

/**
 * A server on its own thread (its own event loop), so it answers while this process's loop is stalled: one `+OK` per
 * command it parses. It counts the replies it has handed to the kernel in the shared `workerData[0]`.
 */
const ANSWERING_SERVER = `
const { parentPort, workerData } = require("node:worker_threads");
const net = require("node:net");
const server = net.createServer((s) => {
    let buf = "";
    s.on("data", (d) => {
        buf += d.toString("latin1");
        for (;;) {
            const m = /^\\*(\\d+)\\r\\n/.exec(buf);
            if (!m) return;
            let at = m[0].length;
            for (let i = 0; i < Number(m[1]); i++) {
                const h = /^\\$(\\d+)\\r\\n/.exec(buf.slice(at));
                if (!h || buf.length < at + h[0].length + Number(h[1]) + 2) return;
                at += h[0].length + Number(h[1]) + 2;
            }
            buf = buf.slice(at);
            s.write("+OK\\r\\n", () => Atomics.add(workerData, 0, 1));
        }
    });
});
server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));
parentPort.on("message", () => server.close(() => process.exit(0)));
`;

describe("TimedRedis when this process stalls longer than the timeout (the server answered in time)", () => {
    let worker: Worker;
    let port: number;
    const replies = new Int32Array(new SharedArrayBuffer(4));
    beforeAll(async () => {
        worker = new Worker(ANSWERING_SERVER, { eval: true, workerData: replies });
        port = await new Promise<number>((resolve) => worker.once("message", resolve));
    });
    afterAll(async () => {
        worker.postMessage("close");
        await new Promise((resolve) => worker.once("exit", resolve));
    });

    test("the reply waiting unread in the socket is read before any verdict: no timeout, no hang judged", async () => {
        const timeoutMs = 200;
        let judged = 0;
        const r = timedRedis(port, timeoutMs, () => (judged += 1));
        await r.connect();
        expect(await r.set("k", "v")).toBe("OK");
        await new Promise((resolve) => setTimeout(resolve, 100)); // the timer is idle again
        const before = Atomics.load(replies, 0);
        const reply = r.set("k", "v").then(
            (v) => v,
            (e: unknown) => (e as Error).message,
        );
        // The stall, in a later callback as a long synchronous task would be: the server's reply arrives meanwhile,
        // and the next loop iteration runs the command timer's tick (timers phase) before it polls the socket.
        await new Promise<void>((resolve) =>
            setImmediate(() => {
                // Past the timeout, and until the reply is on its way (a busy machine may be slow to run the server).
                const until = Date.now() + timeoutMs + 300;
                while (Date.now() < until || (Atomics.load(replies, 0) === before && Date.now() < until + 10_000)) {
                    // this thread does nothing else meanwhile
                }
                resolve();
            }),
        );
        expect(await reply).toBe("OK");
        expect(judged).toBe(0);
        expect(r.status).toBe("ready");
        r.disconnect();
    });

    test("a command still unanswered after the socket was read times out as before", async () => {
        const q: SentQueue & { rejected: number } = {
            length: 1,
            rejected: 0,
            peekAt: () => ({ command: { reject: () => (q.rejected += 1) } }),
        };
        const t = new CommandTimer(() => q, 50, 10);
        t.noteWritten();
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(q.rejected).toBe(1);
        t.stop();
    });
});
