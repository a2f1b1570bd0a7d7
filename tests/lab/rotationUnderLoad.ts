/**
 * Rotation in the lab (issue 13 item 5, docs/security.md "Rotation"), run last by tests/lab/hosts.e2e.test.ts on the
 * dev lab it booted (one boot for all: the suite's time budget): the dev stack with `tls: true` (its default), a client writing
 * through Sentinel as the app user, then the settings rollout exactly as `pulumi up` runs it (`lab rollout`: each
 * node's apply-settings over SSH with the program's stdin, one node at a time) after raising `credentialsGeneration`
 * and re-issuing every certificate, then once more after a second raise. Asserts: no acknowledged write lost; every
 * node takes the new passwords and serves the new certificate; replicas and Sentinels log in again with what they now
 * send (their links are dropped on purpose) and CKQUORUM is OK; the generation two steps back is refused with the
 * server's own error. The writer sees no error but while the test itself cuts the replicas off, and its master connection
 * never drops: the test renders the program in the writer's own process (prepareLabStack), which stalls that process's
 * event loop for seconds on a busy machine, and the client must ride out such a stall (a long synchronous task, a GC
 * pause) without judging its healthy master hung (client/commandTimer.ts). Timings and the longest stall are printed.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import Redis from "ioredis";
import { createSentinelClient } from "../../client";
import { DEFAULT_TIMEOUTS } from "../../client/options";
import { errorsByName, missingWrites, startDurableWrites } from "../../client/testing/durableWrites";
import { PATHS } from "../../cloud-init";
import { agreedMaster, redisNodes, sentinelEndpoints } from "../../lab/labCluster";
import { execInNode } from "../../lab/nodes";
import { loginOptions, withRedis } from "../../lab/probe";
import { labLogin, prepareLabStack, type LabLogin, type LabStack } from "../../lab/stack";
import { PROJECT_ROOT } from "./labTier";

const STACK = "dev";
/** The event-loop stall probe's period, and the least stall it reports. */
const STALL_PROBE_MS = 20;
const STALL_REPORT_MS = 250;
/** The client's command timeout, past which a stall used to turn into a dropped master connection. */
const COMMAND_MS = DEFAULT_TIMEOUTS.commandMs;

/** `lab ARGS` without blocking this process's event loop, where the writer under test runs. */
function labAsync(args: readonly string[]): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn(path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), ["lab/cli.ts", ...args], {
            cwd: PROJECT_ROOT,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
        child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
        child.on("error", reject);
        child.on("close", (code) => {
            if (code === 0) resolve(out);
            else reject(new Error(`lab ${args.join(" ")} exited ${String(code)}:\n${err}\n${out}`));
        });
    });
}

interface RolloutOutput {
    steps: { node: string; ms: number; applied: string[] }[];
}

async function rollout(set: Record<string, string>): Promise<RolloutOutput> {
    const t0 = Date.now();
    const out = JSON.parse(
        await labAsync([
            "rollout",
            "--stack",
            STACK,
            "--json",
            ...Object.entries(set).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
        ]),
    ) as RolloutOutput;
    process.stdout.write(
        `[rotation] rollout ${JSON.stringify(set)}: ${String(Date.now() - t0)} ms in all (mock runs included); steps ${out.steps.map((x) => `${x.node} ${String(x.ms)} ms`).join(", ")}\n`,
    );
    return out;
}

/** The reply to `args` as `login`, or the error the server answered with (a refused AUTH included). */
async function ask(host: string, port: number, login: LabLogin, args: string[]): Promise<string> {
    const r = new Redis({
        host,
        port,
        ...loginOptions(login),
        lazyConnect: true,
        connectTimeout: 3000,
        commandTimeout: 3000,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => null,
    });
    // A refused AUTH reaches the error event; connect() itself only says the connection closed.
    let refused: Error | undefined;
    r.on("error", (e: Error) => {
        refused ??= e;
    });
    try {
        await r.connect();
        return String(await r.call(args[0], ...args.slice(1)));
    } catch (e) {
        return refused?.message ?? (e instanceof Error ? e.message : String(e));
    } finally {
        r.disconnect();
    }
}

/** Every Redis and Sentinel endpoint of the stack. */
function endpoints(s: LabStack): { name: string; host: string; port: number; kind: "redis" | "sentinel" }[] {
    return [
        ...redisNodes(s).map((n) => ({
            name: n.name,
            host: n.address,
            port: s.topology.ports.redis,
            kind: "redis" as const,
        })),
        ...sentinelEndpoints(s).map((e) => ({
            name: s.nodes.find((n) => n.address === e.host)?.name ?? e.host,
            host: e.host,
            port: e.port,
            kind: "sentinel" as const,
        })),
    ];
}

/** SHA-256 fingerprint of a PEM certificate, or of the one `openssl s_client ARGS` is presented. */
function fingerprint(script: string, args: readonly string[], input = ""): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn("bash", ["-c", `${script} | openssl x509 -noout -fingerprint -sha256`, ...args]);
        let out = "";
        child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
        child.on("error", reject);
        child.on("close", () => {
            resolve(out.trim().replace(/^.*=/, ""));
        });
        // A command that exits without reading its input closes the pipe; its exit status tells why, not the EPIPE.
        child.stdin.on("error", () => undefined);
        child.stdin.end(input);
    });
}

/** The certificate an endpoint presents (from the host, over the lab's own network). */
const servedCert = (host: string, port: number) =>
    fingerprint('openssl s_client -connect "$0:$1" </dev/null 2>/dev/null', [host, String(port)]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (await check()) return;
        await sleep(250);
    }
    throw new Error(`timed out waiting for ${what}`);
}

/**
 * Drops every replication link and every connection Sentinels hold (to the Redis nodes and to each other), then waits
 * until each is back, logged in: replicas with the masterauth they now send (link up), Sentinels as `sentinel` with
 * the auth-pass and sentinel-pass they now send (a connection shows its user only once AUTH succeeded).
 */
async function relinkAll(s: LabStack): Promise<void> {
    const admin = labLogin(s, "redis");
    const all = endpoints(s);
    for (const e of all) {
        if (e.kind === "redis") await ask(e.host, e.port, admin, ["CLIENT", "KILL", "TYPE", "replica"]);
        await ask(e.host, e.port, admin, ["CLIENT", "KILL", "USER", "sentinel"]);
    }
    const sentinels = all.filter((e) => e.kind === "sentinel").length;
    for (const e of all) {
        // Each Redis node is watched by every Sentinel; each Sentinel is pinged by every other one.
        const want = e.kind === "redis" ? sentinels : sentinels - 1;
        await waitFor(`${e.kind} of ${e.name} to see every Sentinel log in again`, async () => {
            const list = await ask(e.host, e.port, admin, ["CLIENT", "LIST"]);
            return (list.match(/name=sentinel-\S+-cmd .*user=sentinel /g) ?? []).length >= want;
        });
    }
    await waitFor("every replica's link to be up again", async () => {
        const infos = await Promise.all(
            all.filter((e) => e.kind === "redis").map((e) => ask(e.host, e.port, admin, ["INFO", "replication"])),
        );
        return (
            infos.filter((i) => /role:master/.test(i)).length === 1 &&
            infos.filter((i) => /role:slave/.test(i)).every((i) => /master_link_status:up/.test(i))
        );
    });
}

async function ckquorumEverywhere(s: LabStack): Promise<string[]> {
    return Promise.all(
        sentinelEndpoints(s).map((e) =>
            ask(e.host, e.port, labLogin(s, "sentinel"), ["SENTINEL", "CKQUORUM", s.topology.masterName]),
        ),
    );
}

/** The rotation, as a describe block of the caller's lab suite, on the dev stack that is up. */
export function rotationUnderLoad(): void {
    describe("rotation under load (passwords and certificates)", () => {
        let gen1: LabStack;
        let certsBefore: Record<string, string>;
        let writer: ReturnType<typeof startDurableWrites> | undefined;
        let closeClient: (() => Promise<void>) | undefined;
        /** Errors the writer got while the test itself had the replicas cut off (relinkAll). */
        const whileCutOff: Error[] = [];
        /** The client's master or replica connection going down, and why, while the writer ran. */
        const drops: string[] = [];
        /** Stalls of this process's event loop (where the writer runs) longer than {@link STALL_REPORT_MS}. */
        const stalls: { at: string; ms: number }[] = [];
        let stallProbe: NodeJS.Timeout | undefined;

        afterAll(async () => {
            clearInterval(stallProbe);
            await writer?.stop();
            await closeClient?.();
        });

        it("runs the dev stack with tls and writes through Sentinel as the app user", async () => {
            // The dev lab the caller booted, with the settings its earlier tests rolled out (tls is dev's default).
            gen1 = await prepareLabStack(STACK);
            expect(gen1.topology.security.tls).toBe(true);
            const ca = gen1.credentials.caCert ?? "";
            expect(ca).toContain("BEGIN CERTIFICATE");
            certsBefore = Object.fromEntries(
                await Promise.all(
                    endpoints(gen1).map(async (e): Promise<[string, string]> => [
                        `${e.kind} ${e.name}`,
                        await servedCert(e.host, e.port),
                    ]),
                ),
            );
            const client = createSentinelClient({
                sentinels: sentinelEndpoints(gen1).map(({ host, port }) => ({ host, port })),
                masterName: gen1.topology.masterName,
                redis: labLogin(gen1, "redis", "app"),
                sentinel: labLogin(gen1, "sentinel", "app"),
                staleCache: false,
                metrics: false,
                connectionName: "redis-ha-rotation",
            });
            closeClient = () => client.close();
            client.on("connectionStateChange", (i) => {
                if (i.state === "down")
                    drops.push(`${new Date().toISOString()} ${i.role} ${String(i.address)}: ${String(i.reason)}`);
            });
            let last = Date.now();
            stallProbe = setInterval(() => {
                const now = Date.now();
                if (now - last > STALL_PROBE_MS + STALL_REPORT_MS)
                    stalls.push({ at: new Date(last).toISOString(), ms: now - last - STALL_PROBE_MS });
                last = now;
            }, STALL_PROBE_MS);
            writer = startDurableWrites(client, {
                prefix: `rotation:${String(Date.now())}`,
                replicas: 1,
                timeoutMs: 500,
            });
            await waitFor("the first acknowledged writes", () => Promise.resolve((writer?.acks.length ?? 0) > 50));
        });

        it("rotates every password and certificate under load, one node at a time, with nobody locked out", async () => {
            const r = await rollout({ credentialsGeneration: "2", tlsCertValidityDays: "200" });
            const order = [...gen1.topology.nodes].sort((a, b) => a.rolloutOrder - b.rolloutOrder).map((n) => n.name);
            expect(r.steps.map((x) => x.node)).toEqual(order);
            for (const step of r.steps) {
                for (const line of [
                    "applied acl redis app",
                    "applied acl sentinel app",
                    "applied auth masterauth",
                    "applied auth auth-pass",
                    "applied auth sentinel-pass",
                    "applied passfile admin",
                    "applied tls cert",
                    "reloaded the TLS certificate of Redis",
                    "restarted Sentinel with the new TLS certificate",
                ])
                    expect([step.node, step.applied]).toEqual([step.node, expect.arrayContaining([line])]);
            }
            const gen2 = await prepareLabStack(STACK);
            // The new certificate is served: not the one from before, and the one now on the node.
            for (const e of endpoints(gen2)) {
                const onNode = await fingerprint("cat", [], (await execInNode(e.name, ["cat", PATHS.tlsCert])).stdout);
                const served = await servedCert(e.host, e.port);
                expect(served).toMatch(/^[0-9A-F:]{95}$/);
                expect([e.kind, e.name, served]).not.toEqual([e.kind, e.name, certsBefore[`${e.kind} ${e.name}`]]);
                expect([e.kind, e.name, served]).toEqual([e.kind, e.name, onNode]);
            }
            // Every node takes the new passwords, the old ones still (the application has not switched yet), and the next.
            const app = (g: LabStack) => labLogin(g, "redis", "app");
            for (const e of endpoints(gen2)) {
                expect([e.kind, e.name, await ask(e.host, e.port, app(gen2), ["PING"])]).toEqual([
                    e.kind,
                    e.name,
                    "PONG",
                ]);
                expect([e.kind, e.name, await ask(e.host, e.port, app(gen1), ["PING"])]).toEqual([
                    e.kind,
                    e.name,
                    "PONG",
                ]);
            }
            // With every replica cut off, the client refuses to call a write durable: those errors are the test's own.
            const from = writer?.errors.length ?? 0;
            await relinkAll(gen2);
            await sleep(1500);
            whileCutOff.push(...(writer?.errors.slice(from).map((e) => e.error) ?? []));
            for (const q of await ckquorumEverywhere(gen2)) expect(q).toMatch(/^OK/);
            expect(await agreedMaster(gen2)).toBeDefined();
        });

        it("lost no acknowledged write while the rollout ran, and the writer saw no error from it", async () => {
            const w = writer;
            if (!w) throw new Error("no writer");
            await sleep(2000);
            await w.stop();
            clearInterval(stallProbe);
            // Before close(), which reports its own "down".
            const dropped = [...drops];
            await closeClient?.();
            writer = undefined;
            const gen2 = await prepareLabStack(STACK);
            const master = await agreedMaster(gen2);
            if (!master) throw new Error("no agreed master");
            const [host, port] = master.split(":");
            const keys = w.acks.map((a) => a.key);
            const missing = await withRedis(
                host,
                Number(port),
                labLogin(gen2, "redis"),
                (r) => missingWrites(r, keys),
                10_000,
            );
            const cutOff = new Set(whileCutOff);
            const errors = w.errors.filter((e) => !cutOff.has(e.error));
            const longest = stalls.reduce((m, x) => Math.max(m, x.ms), 0);
            process.stdout.write(
                `[rotation] ${String(keys.length)} acknowledged writes, ${String(missing?.length)} lost, errors ${JSON.stringify(errorsByName(errors))} (${String(whileCutOff.length)} more while the test had the replicas cut off); the writer's event loop stalled ${String(stalls.length)} times over ${String(STALL_REPORT_MS)} ms, the longest ${String(longest)} ms (client commandMs ${String(COMMAND_MS)})\n`,
            );
            expect(keys.length).toBeGreaterThan(100);
            expect(missing).toEqual([]);
            // No error but the test's own: no refused login (a lock-out), and no connection lost with a write or its WAIT in
            // flight. That one showed up before the client waited for its socket to be read (client/commandTimer.ts): the
            // test's own stall of this process outlasted commandMs and the client dropped its healthy master as hung.
            expect(
                errors.map((e) => {
                    const cause = (e.error as { cause?: unknown }).cause;
                    return `${e.error.name}: ${e.error.message} ${cause instanceof Error ? cause.message : ""}`;
                }),
            ).toEqual([]);
            expect(dropped).toEqual([]);
            expect(
                Object.keys(errorsByName(whileCutOff.map((error) => ({ error })))).filter(
                    (n) => n !== "WriteNotAcknowledgedError",
                ),
            ).toEqual([]);
        });

        it("a second raise refuses the generation two steps back with the server's own error", async () => {
            await rollout({ credentialsGeneration: "3" });
            const gen3 = await prepareLabStack(STACK);
            for (const e of endpoints(gen3)) {
                expect([e.kind, e.name, await ask(e.host, e.port, labLogin(gen1, "redis", "app"), ["PING"])]).toEqual([
                    e.kind,
                    e.name,
                    expect.stringMatching(/^WRONGPASS invalid username-password pair/),
                ]);
                expect([e.kind, e.name, await ask(e.host, e.port, labLogin(gen3, "redis", "app"), ["PING"])]).toEqual([
                    e.kind,
                    e.name,
                    "PONG",
                ]);
            }
            // Generation 1 is refused now: whatever logs in again does so with a newer one.
            await relinkAll(gen3);
            for (const q of await ckquorumEverywhere(gen3)) expect(q).toMatch(/^OK/);
        });
    });
}
