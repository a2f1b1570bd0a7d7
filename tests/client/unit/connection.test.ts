import { COMMAND_TIMER_TICK_MS } from "../../../client/commandTimer";
import { ManagedConnection } from "../../../client/connection";
import { resolveOptions } from "../../../client/options";

const COMMAND_MS = 100;

/** A master connection whose socket is a fake the test drives (ioredis' own timers are frozen). */
function setup() {
    const conn = new ManagedConnection(
        resolveOptions({
            sentinels: [{ host: "127.0.0.1", port: 1 }],
            masterName: "m",
            timeouts: { commandMs: COMMAND_MS, connectMs: 50, deadlineMs: 1000 },
            metrics: false,
        }),
        "master",
    );
    conn.on("error", () => undefined);
    const socket = { writableLength: 0, destroyed: 0, destroy: () => (socket.destroyed += 1) };
    Object.defineProperty(conn.redis, "stream", { value: socket, writable: true, configurable: true });
    Object.defineProperty(conn.redis, "status", { value: "ready", writable: true, configurable: true });
    return { conn, socket };
}

const timedOut = () => new Error("Command timed out");

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe("hung-server detection", () => {
    let conn: ManagedConnection | undefined;
    afterEach(async () => {
        if (!conn) return;
        Object.defineProperty(conn.redis, "stream", { value: undefined, writable: true, configurable: true });
        Object.defineProperty(conn.redis, "status", { value: "end", writable: true, configurable: true });
        await conn.close();
    });

    test("a timeout with nothing received and nothing left to send: hung, the socket is dropped", () => {
        const s = setup();
        conn = s.conn;
        s.conn.noteCommandError(timedOut());
        expect(s.socket.destroyed).toBe(1);
    });

    test("a command timed out by the connection's own timer drops a hung socket, without the caller reporting it", async () => {
        const s = setup();
        conn = s.conn;
        const written: unknown[] = [];
        Object.assign(s.socket, {
            writable: true,
            write: (chunk: unknown) => written.push(chunk),
            cork: () => undefined,
            uncork: () => undefined,
        });
        // Sent on the raw ioredis connection: no call policy or noteCommandError sees its error.
        const reply = s.conn.redis.get("k").then(
            () => "answered",
            (e: unknown) => (e as Error).message,
        );
        expect(written).toHaveLength(1);
        await jest.advanceTimersByTimeAsync(COMMAND_MS - 1);
        expect(s.socket.destroyed).toBe(0);
        await jest.advanceTimersByTimeAsync(2 * COMMAND_TIMER_TICK_MS + 1);
        expect(await reply).toBe("Command timed out");
        expect(s.socket.destroyed).toBe(1);
    });

    test("a timeout while a large value is still being uploaded: kept while bytes leave, dropped once they stop", async () => {
        const s = setup();
        conn = s.conn;
        s.socket.writableLength = 50_000_000;
        s.conn.noteCommandError(timedOut());
        expect(s.socket.destroyed).toBe(0);
        for (const left of [40_000_000, 20_000_000, 5_000_000]) {
            s.socket.writableLength = left;
            await jest.advanceTimersByTimeAsync(COMMAND_MS);
            expect(s.socket.destroyed).toBe(0);
        }
        // The server stopped reading (hung mid-upload): nothing leaves any more.
        await jest.advanceTimersByTimeAsync(COMMAND_MS);
        expect(s.socket.destroyed).toBe(1);
    });

    test("one large write trickling out (Node's writableLength does not move, libuv's queue does): kept", async () => {
        const s = setup();
        conn = s.conn;
        // As measured on a real socket: one 24 MB Buffer, 4 MB taken by the kernel at once.
        const handle = { writeQueueSize: 20_000_000 };
        Object.assign(s.socket, { writableLength: 24_000_000, bytesWritten: 24_000_000, _handle: handle });
        s.conn.noteCommandError(timedOut());
        for (const left of [15_000_000, 7_000_000, 1]) {
            handle.writeQueueSize = left;
            await jest.advanceTimersByTimeAsync(COMMAND_MS);
            expect(s.socket.destroyed).toBe(0);
        }
        // Stuck one byte short (the server stopped reading).
        await jest.advanceTimersByTimeAsync(COMMAND_MS);
        expect(s.socket.destroyed).toBe(1);
    });

    test("an upload that finished gets one more command timeout for its reply", async () => {
        const s = setup();
        conn = s.conn;
        s.socket.writableLength = 1_000_000;
        s.conn.noteCommandError(timedOut());
        s.socket.writableLength = 0;
        await jest.advanceTimersByTimeAsync(COMMAND_MS);
        expect(s.socket.destroyed).toBe(0);
        await jest.advanceTimersByTimeAsync(COMMAND_MS);
        expect(s.socket.destroyed).toBe(1); // no reply at all after the upload: hung
    });
});

describe("following +switch-master", () => {
    /** Private hooks, called as the connector and the watcher call them. */
    type Hooks = { takeAnnouncedMaster(): string | null; connectingTo(address: string, stream: unknown): void };
    const hooksOf = (conn: ManagedConnection) => conn as unknown as Hooks; // private: read as the connector does

    async function closeFake(conn: ManagedConnection) {
        Object.defineProperty(conn.redis, "stream", { value: undefined, writable: true, configurable: true });
        Object.defineProperty(conn.redis, "status", { value: "end", writable: true, configurable: true });
        await conn.close();
    }

    // ioredis stays "connecting" until 'connect', which with TLS waits for the handshake too: a hung master's kernel
    // completes the TCP connect, so the socket is no longer `connecting` while the handshake never ends.
    test.each([
        ["a TCP connect", true],
        ["a TLS handshake", false],
    ])(
        "%s in progress to the master named before the switch is abandoned, and the next attempt goes to the announced master",
        async (_what, tcpConnecting) => {
            const s = setup();
            Object.defineProperty(s.conn.redis, "status", { value: "connecting", writable: true, configurable: true });
            Object.assign(s.socket, { connecting: tcpConnecting });
            hooksOf(s.conn).connectingTo("10.0.0.1:6379", s.socket);
            s.conn.followSwitch("10.0.0.9:6379");
            expect(s.socket.destroyed).toBe(1);
            expect(hooksOf(s.conn).takeAnnouncedMaster()).toBe("10.0.0.9:6379");
            expect(hooksOf(s.conn).takeAnnouncedMaster()).toBeNull(); // handed out once
            await closeFake(s.conn);
        },
    );

    test("a socket being opened to the announced master itself is kept", async () => {
        const s = setup();
        Object.defineProperty(s.conn.redis, "status", { value: "connecting", writable: true, configurable: true });
        hooksOf(s.conn).connectingTo("10.0.0.9:6379", s.socket);
        s.conn.followSwitch("10.0.0.9:6379");
        expect(s.socket.destroyed).toBe(0);
        await closeFake(s.conn);
    });

    test("asking a Sentinel (ioredis still holds the previous, closed socket) is left alone: the connector sends its answer to the announced master", async () => {
        const s = setup();
        Object.defineProperty(s.conn.redis, "status", { value: "connecting", writable: true, configurable: true });
        hooksOf(s.conn).connectingTo("10.0.0.1:6379", { destroyed: true });
        s.conn.followSwitch("10.0.0.9:6379");
        expect(s.socket.destroyed).toBe(0);
        expect(hooksOf(s.conn).takeAnnouncedMaster()).toBe("10.0.0.9:6379");
        await closeFake(s.conn);
    });
});
