import { createServer, type Server, type Socket } from "node:net";
import { lastKnownMasterConnector } from "../../../client/ioredisOptions";
import { askSentinels, judgeAnswers, majorityOf, type SentinelAnswer } from "../../../client/sentinelMajority";

const S = ["s1:26379", "s2:26379", "s3:26379"];
const named = (sentinel: string, master: string): SentinelAnswer => ({ sentinel, master });
const failed = (sentinel: string): SentinelAnswer => ({ sentinel, error: new Error("unreachable") });

describe("judgeAnswers", () => {
    test("a majority is counted against every configured Sentinel, not against those that answered", () => {
        expect(majorityOf(3)).toBe(2);
        expect(majorityOf(4)).toBe(3);
        expect(majorityOf(5)).toBe(3);
        // The cut-off Sentinel answers alone: it agrees with itself, but is no majority.
        const alone = judgeAnswers([named("s1:26379", "old:6379"), failed("s2:26379"), failed("s3:26379")], S);
        expect(alone.majority).toBeNull();
        expect(alone.plurality).toBe("old:6379");
    });

    test("the majority's master wins over the first-listed Sentinel's", () => {
        const v = judgeAnswers(
            [named("s1:26379", "old:6379"), named("s2:26379", "new:6379"), named("s3:26379", "new:6379")],
            S,
        );
        expect(v.majority).toBe("new:6379");
        expect(v.plurality).toBe("new:6379");
    });

    test("a tie goes to the master named by the Sentinel listed first; nothing answered, nothing named", () => {
        const v = judgeAnswers([named("s2:26379", "b:6379"), named("s1:26379", "a:6379")], [...S, "s4:26379"]);
        expect(v.majority).toBeNull();
        expect(v.plurality).toBe("a:6379");
        expect(judgeAnswers([failed("s1:26379")], S)).toMatchObject({ majority: null, plurality: null });
    });
});

describe("askSentinels", () => {
    test("resolves as soon as a majority agrees, aborting the Sentinel that does not answer", async () => {
        let aborted = false;
        const v = await askSentinels(S, (sentinel, signal) => {
            if (sentinel === "s1:26379")
                return new Promise((_, reject) => {
                    signal.addEventListener("abort", () => {
                        aborted = true;
                        reject(new Error("aborted"));
                    });
                });
            return Promise.resolve("new:6379");
        });
        expect(v.majority).toBe("new:6379");
        expect(aborted).toBe(true);
    });

    test("without a majority, waits for every answer; a Sentinel that does not know the name counts as failed", async () => {
        const v = await askSentinels(S, (sentinel) =>
            sentinel === "s3:26379" ? Promise.resolve(null) : Promise.resolve(`${sentinel.slice(0, 2)}:6379`),
        );
        expect(v.majority).toBeNull();
        expect(v.answers).toHaveLength(3);
        expect(v.answers.filter((a) => "error" in a)).toHaveLength(1);
    });
});

/** A fake Sentinel: answers every command with `master` as GET-MASTER-ADDR-BY-NAME does. */
async function fakeSentinel(master: { host: string; port: number }): Promise<Server> {
    const reply = `*2\r\n$${String(master.host.length)}\r\n${master.host}\r\n$${String(String(master.port).length)}\r\n${String(master.port)}\r\n`;
    const server = createServer((sock) => sock.on("data", () => sock.write(reply)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return server;
}
const portOf = (s: Server) => (s.address() as { port: number }).port;
const closeAll = (servers: Server[]) =>
    Promise.all(
        servers.map(
            (s) =>
                new Promise<void>((resolve) =>
                    s.close(() => {
                        resolve();
                    }),
                ),
        ),
    );

describe("the master connector", () => {
    test("connects to the master a majority of the Sentinels names, not to the first Sentinel's", async () => {
        const accepted: Array<{ at: string; sock: Socket }> = [];
        const masters = await Promise.all(
            ["old", "new"].map(async (at) => {
                const m = createServer((sock) => accepted.push({ at, sock }));
                await new Promise<void>((resolve) => m.listen(0, "127.0.0.1", resolve));
                return m;
            }),
        );
        const [oldM, newM] = masters.map((m) => ({ host: "127.0.0.1", port: portOf(m) }));
        const sentinels = [await fakeSentinel(oldM), await fakeSentinel(newM), await fakeSentinel(newM)];
        const Connector = lastKnownMasterConnector(() => null);
        const connector = new Connector({
            sentinels: sentinels.map((s) => ({ host: "127.0.0.1", port: portOf(s) })),
            name: "m",
            connectTimeout: 500,
            sentinelRetryStrategy: () => null,
        });
        const stream = await connector.connect(() => undefined);
        await new Promise<void>((resolve) => stream.once("connect", resolve));
        await new Promise((r) => setTimeout(r, 20));
        expect(accepted.map((a) => a.at)).toEqual(["new"]);
        stream.destroy();
        for (const a of accepted) a.sock.destroy();
        await closeAll([...sentinels, ...masters]);
    });

    test("with only a minority answering, asks again, then settles for what it names (nothing else can be reached)", async () => {
        const accepted: Socket[] = [];
        const master = createServer((sock) => accepted.push(sock));
        await new Promise<void>((resolve) => master.listen(0, "127.0.0.1", resolve));
        const only = await fakeSentinel({ host: "127.0.0.1", port: portOf(master) });
        const errors: string[] = [];
        const Connector = lastKnownMasterConnector(() => null);
        const connector = new Connector({
            // Port 1: nothing listens, refused at once.
            sentinels: [
                { host: "127.0.0.1", port: portOf(only) },
                { host: "127.0.0.1", port: 1 },
                { host: "127.0.0.1", port: 1 },
            ],
            name: "m",
            connectTimeout: 500,
            sentinelRetryStrategy: () => 10,
        });
        const stream = await connector.connect((_: string, err: Error) => errors.push(err.message));
        await new Promise<void>((resolve) => stream.once("connect", resolve));
        expect(accepted).toHaveLength(1);
        expect(errors).toEqual([
            expect.stringMatching(/^No majority of the 3 sentinels names a master\. Retrying after 10ms\./),
        ]);
        stream.destroy();
        for (const s of accepted) s.destroy();
        await closeAll([only, master]);
    });
});
