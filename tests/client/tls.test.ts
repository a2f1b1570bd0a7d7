/**
 * The loopback cluster serving TLS (`startLoopbackCluster({ tls: true })`, the TLS side of `npm run bench:client`):
 * Sentinels hand out TLS ports only, the client and plain ioredis reach the master over TLS with the cluster's CA, the
 * replicas replicate over TLS, and a plaintext connection to the address Sentinel names gets no answer.
 */
import { connect } from "node:net";
import Redis from "ioredis";
import { createSentinelClient, OutcomeUnknownError } from "../../client";
import { LoopbackCluster, startLoopbackCluster } from "../../client/testing/loopbackCluster";
import { addr, masterFromSentinels, waitFor } from "../../client/testing/sentinelQueries";
import { describeWithServers } from "./serverTier";
import { testClientOptions } from "./testClient";

describeWithServers("loopback cluster over TLS", () => {
    let c: LoopbackCluster;
    beforeAll(async () => {
        c = await startLoopbackCluster({ tls: true });
    }, 60_000);
    afterAll(async () => {
        await c.close();
    });

    test("Sentinel names a TLS port; the client and plain ioredis use it, plaintext gets no answer", async () => {
        const master = await masterFromSentinels(c);
        expect(master).not.toBeNull();
        if (!master) return;
        // Not one of the plaintext ports the fault helpers use.
        expect(c.nodes.map(addr)).not.toContain(addr(master));
        expect(c.redisTls?.ca).toContain("BEGIN CERTIFICATE");

        const client = createSentinelClient(testClientOptions(c, { redis: { password: c.password, tls: c.redisTls } }));
        const plain = new Redis({
            sentinels: [...c.sentinels],
            name: c.masterName,
            password: c.password,
            sentinelPassword: c.sentinelPassword,
            tls: c.redisTls,
            enableTLSForSentinelMode: true,
            // Redis 7.0 refuses CLIENT SETINFO, and ioredis leaves those commands' timers running past the test.
            disableClientInfo: true,
        });
        plain.on("error", () => undefined);
        try {
            await client.write((r) => r.set("tls:k", "v"));
            expect(await client.read((r) => r.get("tls:k"))).toBe("v");
            expect(client.master.address).toBe(addr(master));
            expect(await plain.get("tls:k")).toBe("v");
            // Both replicas replicate over TLS: the write reaches them.
            expect(await client.write((r) => r.wait(2, 2000))).toBe(2);
        } finally {
            await client.close();
            plain.disconnect();
        }

        // Plaintext to the same port: the server takes it for a TLS handshake and closes the connection unanswered.
        const answer = await new Promise<string>((resolve, reject) => {
            const sock = connect(master.port, master.host);
            let got = "";
            sock.setTimeout(5000, () => {
                sock.destroy();
                reject(new Error("the TLS port neither answered nor closed a plaintext connection"));
            });
            sock.on("connect", () => sock.write("PING\r\n"));
            sock.on("data", (d) => (got += d.toString("latin1")));
            sock.on("error", () => undefined);
            sock.on("close", () => {
                resolve(got);
            });
        });
        expect(answer).not.toContain("PONG");
    }, 60_000);
});

describeWithServers("loopback cluster over TLS: a hung master", () => {
    let c: LoopbackCluster;
    beforeAll(async () => {
        c = await startLoopbackCluster({ tls: true, downAfterMs: 2000, failoverTimeoutMs: 5000 });
    }, 60_000);
    afterAll(async () => {
        await c.close();
    });

    // A hung master's kernel still completes TCP connects, and the TLS handshake then never ends: ioredis stays
    // "connecting" until it does. The client reconnects to the hung master while the Sentinels still name it; at
    // +switch-master it must abandon that handshake instead of waiting out connectMs (set far beyond this test's wait).
    test("the handshake with the hung master is abandoned at +switch-master: the client reaches the new master", async () => {
        const client = createSentinelClient(
            testClientOptions(c, {
                redis: { password: c.password, tls: c.redisTls },
                timeouts: {
                    commandMs: 500,
                    connectMs: 120_000,
                    deadlineMs: 60_000,
                    healthMs: 300,
                    sentinelCommandMs: 500,
                },
            }),
        );
        const hung = c.nodes[0]; // the first master (its plaintext address: the fault helpers' handle on it)
        try {
            await client.write((r) => r.set("tls-hang:k", "before"));
            const oldMaster = client.master.address;
            await c.pause(hung);
            // One write times out on the hung master, and the reconnect that follows opens a handshake with it.
            const during = client.write((r) => r.set("tls-hang:k", "after")).catch((e: unknown) => e);
            await waitFor(
                "the Sentinels to promote a replica, and the client to reach it",
                async () => {
                    const now = await masterFromSentinels(c);
                    return now !== null && addr(now) !== oldMaster && client.master.address === addr(now);
                },
                30_000,
                100,
            );
            expect(await during).toBeInstanceOf(OutcomeUnknownError); // sent to the hung master
            await client.write((r) => r.set("tls-hang:k", "moved"));
            expect(await client.read((r) => r.get("tls-hang:k"))).toBe("moved");
        } finally {
            await c.resume(hung);
            await client.close();
        }
    }, 60_000);
});
