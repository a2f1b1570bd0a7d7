/**
 * A Sentinel with a stale view, against real redis-server / redis-sentinel processes: the client's first ("own")
 * Sentinel is cut off from the rest and names a master that refuses every write (as redis-fence makes a master cut off
 * with a Sentinel minority refuse them, NOREPLICAS), while the majority names the real master. The client must write
 * on the majority's master, both when it connects and when it is already on the refusing one and no `+switch-master`
 * tells it anything.
 *
 * The cut-off side is an island: a standalone redis-server (`min-replicas-to-write 1`, no replica: every write gets
 * NOREPLICAS) and a Sentinel that monitors only it, so it never hears of the cluster and keeps naming the island.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSentinelClient, type FailoverEvent, type SentinelClient } from "../../client";
import type { NodeAddress } from "../../client/testing/cluster";
import {
    REDIS_SENTINEL_BIN,
    probablyFreePort,
    REDIS_SERVER_BIN,
    startLoopbackCluster,
    type LoopbackCluster,
} from "../../client/testing/loopbackCluster";
import { addr, sleep, waitFor, withConnection } from "../../client/testing/sentinelQueries";
import { describeWithServers } from "./serverTier";
import { testClientOptions } from "./testClient";

jest.setTimeout(60_000);

const HOST = "127.0.0.1";

interface Island {
    readonly redis: NodeAddress;
    readonly sentinel: NodeAddress;
    close(): Promise<void>;
}

/** The cut-off side: a fenced master and a Sentinel that knows only it (same names and passwords as `c`). */
async function startIsland(c: LoopbackCluster): Promise<Island> {
    const dir = mkdtempSync(join(tmpdir(), "redis-ha-island-"));
    const redis = { host: HOST, port: await probablyFreePort() };
    const sentinel = { host: HOST, port: await probablyFreePort() };
    const redisConf = join(dir, "redis.conf");
    const sentinelConf = join(dir, "sentinel.conf");
    writeFileSync(
        redisConf,
        [
            `bind ${HOST}`,
            `port ${String(redis.port)}`,
            `dir ${dir}`,
            `save ""`,
            `appendonly no`,
            `requirepass ${c.password}`,
            // No replica ever attaches: every write is refused with NOREPLICAS, as on a fenced master.
            `min-replicas-to-write 1`,
        ].join("\n") + "\n",
    );
    writeFileSync(
        sentinelConf,
        [
            `bind ${HOST}`,
            `port ${String(sentinel.port)}`,
            `dir ${dir}`,
            `requirepass ${c.sentinelPassword ?? ""}`,
            `sentinel monitor ${c.masterName} ${HOST} ${String(redis.port)} 2`,
            `sentinel auth-pass ${c.masterName} ${c.password}`,
        ].join("\n") + "\n",
    );
    const children: ChildProcess[] = [
        spawn(REDIS_SERVER_BIN, [redisConf], { stdio: "ignore" }),
        spawn(REDIS_SENTINEL_BIN, [sentinelConf], { stdio: "ignore" }),
    ];
    const close = async () => {
        await Promise.all(
            children.map(
                (child) =>
                    new Promise<void>((resolve) => {
                        if (child.exitCode !== null || child.signalCode !== null) {
                            resolve();
                            return;
                        }
                        child.once("exit", () => {
                            resolve();
                        });
                        child.kill("SIGKILL");
                    }),
            ),
        );
        rmSync(dir, { recursive: true, force: true });
    };
    try {
        await waitFor(
            "the island to answer",
            async () =>
                (await withConnection(redis, c.password, (r) => r.dbsize(), 300)) === 0 &&
                (await sentinelNames(sentinel, c)) === addr(redis),
            10_000,
            50,
        );
    } catch (err) {
        await close();
        throw err;
    }
    return { redis, sentinel, close };
}

/** The master `sentinel` names now. */
async function sentinelNames(sentinel: NodeAddress, c: LoopbackCluster): Promise<string | null> {
    const reply = await withConnection(
        sentinel,
        c.sentinelPassword,
        (r) => r.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", c.masterName) as Promise<[string, string] | null>,
        300,
    );
    return reply ? `${reply[0]}:${reply[1]}` : null;
}

/** Points `sentinel` at `master` (REMOVE + MONITOR): no failover, so no `+switch-master` is published. */
async function monitor(sentinel: NodeAddress, master: NodeAddress, c: LoopbackCluster): Promise<void> {
    await withConnection(sentinel, c.sentinelPassword, async (r) => {
        await r.call("SENTINEL", "REMOVE", c.masterName);
        await r.call("SENTINEL", "MONITOR", c.masterName, master.host, String(master.port), "2");
        await r.call("SENTINEL", "SET", c.masterName, "auth-pass", c.password);
    });
    await waitFor(
        `${addr(sentinel)} to name ${addr(master)}`,
        async () => (await sentinelNames(sentinel, c)) === addr(master),
        5_000,
        50,
    );
}

const get = (node: NodeAddress, c: LoopbackCluster, key: string) => withConnection(node, c.password, (r) => r.get(key));

describeWithServers("a Sentinel majority over a stale first Sentinel", () => {
    let c: LoopbackCluster;
    let island: Island;
    let client: SentinelClient | undefined;
    beforeAll(async () => {
        c = await startLoopbackCluster();
        island = await startIsland(c);
    });
    afterEach(async () => {
        await client?.close();
        client = undefined;
    });
    afterAll(async () => {
        await (island as Island | undefined)?.close();
        await (c as LoopbackCluster | undefined)?.close();
    });

    /** Sentinels as the client lists them: the island's first (its own region's), then two of the cluster's. */
    const listed = () => [island.sentinel, c.sentinels[0], c.sentinels[1]];

    test("the island Sentinel names a master that refuses writes (what the client must not follow)", async () => {
        expect(await sentinelNames(island.sentinel, c)).toBe(addr(island.redis));
        expect(await sentinelNames(c.sentinels[0], c)).toBe(addr(c.nodes[0]));
        await expect(withConnection(island.redis, c.password, (r) => r.set("probe", "1"))).rejects.toThrow(
            /NOREPLICAS/,
        );
    });

    test("connecting, it follows the master the majority names, not its first Sentinel's", async () => {
        client = createSentinelClient(testClientOptions(c, { sentinels: listed(), metrics: false }));
        await client.master.whenReady();
        expect(client.master.address).toBe(addr(c.nodes[0]));
        const key = `majority:connect:${String(Date.now())}`;
        await expect(client.durableWrite((p) => p.set(key, "1"))).resolves.toMatchObject({ acknowledged: 2 });
        expect(await get(c.nodes[0], c, key)).toBe("1");
    });

    test("on a master that keeps refusing writes, it moves to the majority's master without +switch-master", async () => {
        // A majority (the island's Sentinel and the cluster's first) names the island: the client goes there.
        await monitor(c.sentinels[0], island.redis, c);
        client = createSentinelClient(testClientOptions(c, { sentinels: listed(), metrics: false }));
        const switches: FailoverEvent[] = [];
        client.on("failover", (e) => switches.push(e));
        await client.master.whenReady();
        expect(client.master.address).toBe(addr(island.redis));

        const key = `majority:refused:${String(Date.now())}`;
        const started = Date.now();
        const write = client.durableWrite((p) => p.set(key, "1"));
        // Refused meanwhile; then the majority names the cluster's master again (a REMOVE/MONITOR: no failover).
        await sleep(300);
        await monitor(c.sentinels[0], c.nodes[0], c);
        await expect(write).resolves.toMatchObject({ acknowledged: 2 });
        process.stdout.write(`moved off the refusing master and acknowledged in ${String(Date.now() - started)} ms\n`);
        expect(client.master.address).toBe(addr(c.nodes[0]));
        expect(await get(c.nodes[0], c, key)).toBe("1");
        expect(await get(island.redis, c, key)).toBeNull();
        expect(switches.filter((e) => e.source === "sentinel")).toEqual([]);
    });
});
