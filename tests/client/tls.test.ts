/**
 * The loopback cluster serving TLS (`startLoopbackCluster({ tls: true })`, the TLS side of `npm run bench:client`):
 * Sentinels hand out TLS ports only, the client and plain ioredis reach the master over TLS with the cluster's CA, the
 * replicas replicate over TLS, and a plaintext connection to the address Sentinel names gets no answer.
 */
import { connect } from "node:net";
import Redis from "ioredis";
import { createSentinelClient } from "../../client";
import { LoopbackCluster, startLoopbackCluster } from "../../client/testing/loopbackCluster";
import { addr, masterFromSentinels } from "../../client/testing/sentinelQueries";
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
