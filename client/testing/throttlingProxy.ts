import { createServer, Socket } from "node:net";
import type { NodeAddress } from "./cluster";

/**
 * A TCP forwarder on 127.0.0.1 that limits the client→server direction to `bytesPerSecond` (a slow
 * uplink); server→client is not limited. It reads from the client only while little is queued, so
 * the client's own write buffer drains at the limited rate, as behind a slow network: a large value
 * takes seconds to upload while the server is healthy. Connections made before `setTarget` wait.
 */
export interface ThrottlingProxy {
    /** Where clients connect. */
    readonly address: NodeAddress;
    /** Where new connections are forwarded to. */
    setTarget(target: NodeAddress): void;
    /** Closes the listener and every forwarded connection. */
    close(): Promise<void>;
}

/** Bytes read from a client but not yet forwarded, above which the proxy stops reading from it. */
const QUEUE_HIGH_BYTES = 64 * 1024;
/** How often queued bytes are forwarded. */
const TICK_MS = 10;

export function startThrottlingProxy(bytesPerSecond: number): Promise<ThrottlingProxy> {
    let target: NodeAddress | undefined;
    let targetSet: () => void = () => undefined;
    const targetKnown = new Promise<void>((resolve) => (targetSet = resolve));
    const sockets = new Set<Socket>();
    const track = (s: Socket) => {
        sockets.add(s);
        s.once("close", () => sockets.delete(s));
        s.on("error", () => undefined); // the pair is torn down on 'close'
    };

    const server = createServer((client) => {
        track(client);
        client.pause();
        void targetKnown.then(() => {
            if (client.destroyed || !target) return;
            const upstream = new Socket();
            track(upstream);
            upstream.connect(target.port, target.host);
            const teardown = () => {
                clearInterval(pump);
                client.destroy();
                upstream.destroy();
            };
            client.once("close", teardown);
            upstream.once("close", teardown);
            upstream.on("data", (chunk) => client.write(chunk));

            const queue: Buffer[] = [];
            let queued = 0;
            let last = Date.now();
            client.on("data", (chunk: Buffer) => {
                queue.push(chunk);
                queued += chunk.length;
                if (queued > QUEUE_HIGH_BYTES) client.pause();
            });
            const pump = setInterval(() => {
                const now = Date.now();
                let allowance = Math.floor(((now - last) * bytesPerSecond) / 1000);
                if (allowance === 0) return;
                last = now;
                while (allowance > 0 && queue.length > 0) {
                    const head = queue[0];
                    const n = Math.min(allowance, head.length);
                    upstream.write(head.subarray(0, n));
                    if (n === head.length) queue.shift();
                    else queue[0] = head.subarray(n);
                    queued -= n;
                    allowance -= n;
                }
                if (queued <= QUEUE_HIGH_BYTES && client.isPaused()) client.resume();
            }, TICK_MS);
            client.resume();
        });
    });

    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const a = server.address();
            if (!a || typeof a !== "object") {
                reject(new Error("throttling proxy: no listening address"));
                return;
            }
            resolve({
                address: { host: "127.0.0.1", port: a.port },
                setTarget(t) {
                    target = t;
                    targetSet();
                },
                close() {
                    for (const s of sockets) s.destroy();
                    return new Promise<void>((r) => {
                        server.close(() => {
                            r();
                        });
                    });
                },
            });
        });
    });
}
