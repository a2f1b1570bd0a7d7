/**
 * A TCP forwarder on 127.0.0.1 that holds every client→server chunk for `delayMs` before passing it
 * on: each request/reply round trip gets `delayMs` longer (the lab's kernel has no netem). It runs
 * in a child process, so its work does not share the benchmark's event loop or count in its CPU.
 *
 *   const proxy = await startDelayProxy(1);   // listening; connections wait for a target
 *   proxy.setTarget({ host, port });
 */
import { fork, type ChildProcess } from "node:child_process";
import { createServer, Socket } from "node:net";
import type { NodeAddress } from "../client/testing/cluster";

export interface DelayProxy {
    /** Where clients connect. */
    readonly address: NodeAddress;
    /** Where connections are forwarded to; connections made before this wait. */
    setTarget(target: NodeAddress): void;
    close(): Promise<void>;
}

type ToChild = { target: NodeAddress };
type FromChild = { port: number };

/** Starts the forwarder in a child process (this file, run with the parent's tsx loader). */
export function startDelayProxy(delayMs: number): Promise<DelayProxy> {
    const child: ChildProcess = fork(__filename, [String(delayMs)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    return new Promise((resolve, reject) => {
        child.once("error", reject);
        child.once("exit", (code) => {
            reject(new Error(`delay proxy exited with ${String(code)} before listening`));
        });
        child.once("message", (m: FromChild) => {
            child.removeAllListeners("exit");
            resolve({
                address: { host: "127.0.0.1", port: m.port },
                setTarget: (target) => {
                    const msg: ToChild = { target };
                    child.send(msg);
                },
                close: () =>
                    new Promise<void>((done) => {
                        if (child.exitCode !== null) {
                            done();
                            return;
                        }
                        child.once("exit", () => {
                            done();
                        });
                        child.kill("SIGTERM");
                    }),
            });
        });
    });
}

/** Chunks due within this much are sent now: timers fire on whole milliseconds. */
const DUE_SLACK_MS = 0.3;

/** Forwards `from` → `to`, each chunk `delayMs` after it arrived, in order. */
function delayedPipe(from: Socket, to: Socket, delayMs: number): void {
    const queue: Array<{ due: number; chunk: Buffer }> = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
        timer = undefined;
        const now = performance.now();
        while (queue.length > 0 && queue[0].due <= now + DUE_SLACK_MS) {
            const head = queue.shift();
            if (head) to.write(head.chunk);
        }
        if (queue.length > 0) timer = setTimeout(flush, Math.max(1, queue[0].due - now));
    };
    from.on("data", (chunk: Buffer) => {
        queue.push({ due: performance.now() + delayMs, chunk });
        timer ??= setTimeout(flush, delayMs);
    });
}

function runChild(delayMs: number): void {
    let target: NodeAddress | undefined;
    const waiting: Array<() => void> = [];
    process.on("message", (m: ToChild) => {
        target = m.target;
        for (const w of waiting.splice(0)) w();
    });
    process.on("SIGTERM", () => process.exit(0));
    process.on("disconnect", () => process.exit(0)); // the benchmark went away
    const server = createServer((client) => {
        client.setNoDelay(true);
        client.pause();
        client.on("error", () => undefined);
        const start = () => {
            if (!target || client.destroyed) return;
            const upstream = new Socket();
            upstream.setNoDelay(true);
            upstream.on("error", () => undefined);
            const teardown = () => {
                client.destroy();
                upstream.destroy();
            };
            client.once("close", teardown);
            upstream.once("close", teardown);
            upstream.connect(target.port, target.host);
            delayedPipe(client, upstream, delayMs);
            upstream.on("data", (chunk: Buffer) => client.write(chunk));
            client.resume();
        };
        if (target) start();
        else waiting.push(start);
    });
    server.listen(0, "127.0.0.1", () => {
        const msg: FromChild = { port: (server.address() as { port: number }).port };
        process.send?.(msg);
    });
}

if (require.main === module && process.send !== undefined) runChild(Number(process.argv[2]));
