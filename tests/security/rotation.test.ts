import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
    chmodSync,
    copyFileSync,
    existsSync,
    mkdirSync,
    mkdtempSync,
    readFileSync,
    rmSync,
    writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXPORTER_UNITS, filesInUserData, passwordHashRule, PATHS_LIB, renderPathsLib } from "../../cloud-init";
import { createSentinelClient } from "../../client";
import { missingWrites, startDurableWrites, errorsByName } from "../../client/testing/durableWrites";
import { resourceNames } from "../../components/names";
import { resourceNamed, runUnderMocks, unwrapSecrets, isSecret, type MockRun } from "../../engine/mockRun";
import { withRedis } from "../../lab/probe";
import { pathsUnder, programConfigWith } from "../helpers";
import { probablyFreePort } from "../../client/testing/loopbackCluster";

/**
 * Rotation (issue 13 item 5, docs/security.md "Rotation"): a raised `credentialsGeneration` or a re-issued certificate
 * reaches running nodes through the settings rollout, as secret input of its steps, and replaces no Linode; the
 * rollout's `apply-settings` lines, run by bash against real redis-server and redis-sentinel 7.0.15 on loopback
 * (started from the rendered files), switch every password and certificate live, one node at a time, while a client
 * writes through Sentinel: no acknowledged write lost, no error, replication and Sentinel linked throughout, and the
 * generation two steps back refused afterwards.
 */

const SECRET_SCOPES = new Set(["acl", "auth", "passfile", "tls", "secret-unit"]);
const USERS = ["admin", "replication", "sentinel", "exporter", "app"] as const;

const configAt = (stack: string, generation: number, certDays = 365) =>
    programConfigWith(stack, { tls: true, credentialsGeneration: generation, tlsCertValidityDays: certDays });

const stdinOf = (run: MockRun, node: string) =>
    String(unwrapSecrets(resourceNamed(run, resourceNames.settingsStep(node)).inputs.stdin));

/** The rollout step's secret lines for a node (what `liveSecretsText` adds to its stdin). */
const secretLines = (run: MockRun, node: string) =>
    stdinOf(run, node)
        .split("\n")
        .filter((l) => SECRET_SCOPES.has(l.split(" ")[0]))
        .join("\n") + "\n";

const usersOf = (run: MockRun) => run.stackOutputs.users as Record<string, { password: string }>;

describe("rotation under the engine's rules (mocks)", () => {
    let before: MockRun;
    let after: MockRun;
    beforeAll(async () => {
        before = await runUnderMocks({ stack: "prod", config: configAt("prod", 1) });
        after = await runUnderMocks({ stack: "prod", config: configAt("prod", 2), previous: before });
    });

    it("a generation bump changes every node's rollout input (secret) and trigger, and replaces no Linode", () => {
        for (const n of after.topology.nodes) {
            const linode = resourceNamed(after, resourceNames.instance(n.name));
            expect([n.name, linode.op]).toEqual([n.name, "same"]);
            const step = resourceNamed(after, resourceNames.settingsStep(n.name));
            // A new trigger re-runs the step: the engine replaces a remote.Command whose triggers change.
            expect([n.name, step.op, step.changed]).toEqual([n.name, "replace", ["stdin", "triggers"]]);
            expect(isSecret(step.inputs.stdin)).toBe(true);
            expect(step.additionalSecretOutputs).toContain("stdin");
            const lines = (r: MockRun) => secretLines(r, n.name).split("\n");
            const added = lines(after).filter((l) => !lines(before).includes(l));
            // The node now accepts the next generation and sends the new current passwords.
            expect(added.some((l) => l.startsWith("acl "))).toBe(true);
            expect(added.some((l) => l.startsWith("passfile admin "))).toBe(true);
            if (n.runsRedis) expect(added.some((l) => l.startsWith("auth masterauth "))).toBe(true);
            if (n.runsSentinel) expect(added.some((l) => l.startsWith("auth sentinel-pass "))).toBe(true);
            // Certificates did not change: nothing of them is sent differently.
            expect(added.filter((l) => l.startsWith("tls "))).toEqual([]);
        }
    });

    it("creates only the next generation's passwords and replaces nothing but commands", () => {
        const touched = after.resources.filter((r) => r.op !== "same" && r.op !== "update");
        expect(new Set(touched.filter((r) => r.op !== "create").map((r) => r.type))).toEqual(
            new Set(["command:remote:Command"]),
        );
        expect(
            touched
                .filter((r) => r.op === "create")
                .map((r) => r.name)
                .sort(),
        ).toEqual(USERS.map((u) => resourceNames.aclPassword(u, 3)).sort());
        expect(after.deleted).toEqual([]);
    });

    it("keeps the rollout one node at a time, replicas first and the preferred master last", () => {
        const order = [...after.topology.nodes].sort((a, b) => a.rolloutOrder - b.rolloutOrder).map((n) => n.name);
        expect(order.at(-1)).toBe(after.topology.preferredMaster);
        for (let i = 1; i < order.length; i++)
            expect(resourceNamed(after, resourceNames.settingsStep(order[i])).dependsOn).toContain(
                resourceNames.settingsStep(order[i - 1]),
            );
    });

    it("a re-issued certificate changes only the tls lines of the nodes' rollout input", async () => {
        const renewed = await runUnderMocks({ stack: "prod", config: configAt("prod", 2, 200), previous: after });
        for (const n of renewed.topology.nodes) {
            const old = secretLines(after, n.name).split("\n");
            const added = secretLines(renewed, n.name)
                .split("\n")
                .filter((l) => !old.includes(l));
            expect(added.map((l) => l.split(" ").slice(0, 2).join(" "))).toEqual(["tls cert"]);
            expect(resourceNamed(renewed, resourceNames.instance(n.name)).op).toBe("same");
        }
    });
});

// ---- apply-settings against real servers on loopback ----------------------------------------------------------------

const SCRIPTS = join(__dirname, "..", "..", "cloud-init", "scripts");
const REAL_CLI = spawnSync("bash", ["-c", "command -v redis-cli"], { encoding: "utf8" }).stdout.trim();
const ADDRESSES = { "dev-a": "127.0.0.1", "dev-b": "127.0.0.1", "dev-c": "127.0.0.1" };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ran {
    status: number | null;
    stdout: string;
    stderr: string;
}

/**
 * A command run without blocking the event loop: the writer under test runs in this process, and a spawnSync would
 * hold its writes for as long as the command runs.
 */
function exec(
    cmd: string,
    args: readonly string[],
    opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Ran> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
        const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 5000);
        child.on("error", reject);
        child.on("close", (status) => {
            clearTimeout(timer);
            resolve({ status, stdout, stderr });
        });
        // A command that exits without reading its input closes the pipe; its exit status tells why, not the EPIPE.
        child.stdin.on("error", () => undefined);
        child.stdin.end(opts.input ?? "");
    });
}

/** A node on loopback: its rendered /etc/redis in `dir/etc`, its scripts, and stand-ins for systemctl. */
interface LoopNode {
    name: string;
    dir: string;
    redisPort: number;
    sentinelPort?: number;
}

/** The rendered file with this test's ports and directories in place of the node's. */
function localize(text: string, n: LoopNode, kind: "redis" | "sentinel", masterPort: number): string {
    const self = kind === "redis" ? n.redisPort : (n.sentinelPort ?? 0);
    return text
        .replace(/^(tls-port) \d+$/m, `$1 ${String(self)}`)
        .replace(/^(replica-announce-port|sentinel announce-port) \d+$/m, (l) => l.replace(/\d+$/, String(self)))
        .replace(/^(replicaof 127\.0\.0\.1) \d+$/m, `$1 ${String(masterPort)}`)
        .replace(/^(sentinel monitor \S+ 127\.0\.0\.1) \d+ \d+$/m, `$1 ${String(masterPort)} 1`)
        .replace(/^supervised systemd$/m, "supervised no")
        .replace(/^(pidfile|logfile) .*$/gm, (_l, k: string) => `${k} ${n.dir}/${kind}.${k}`)
        .replace(/^dir .*$/m, `dir ${n.dir}`)
        .replace(/^appendonly yes$/m, "appendonly no")
        .replace(/\/etc\/redis\//g, `${n.dir}/etc/`);
}

const children: ChildProcess[] = [];
let work: string;
const nodeDirs: LoopNode[] = [];

/** Lays out a node's files from its gen-1 user-data; Sentinel (if any) restarts through the systemctl stand-in. */
function layOut(run: MockRun, n: LoopNode, masterPort: number): void {
    for (const f of filesInUserData(run.userData[n.name]))
        if (f.path.startsWith("/etc/redis/")) {
            const to = join(n.dir, "etc", f.path.slice("/etc/redis/".length));
            mkdirSync(join(to, ".."), { recursive: true });
            writeFileSync(to, f.content, { mode: 0o640 });
        }
    const conf = (kind: "redis" | "sentinel") => join(n.dir, "etc", `${kind}.conf`);
    writeFileSync(conf("redis"), localize(readFileSync(conf("redis"), "utf8"), n, "redis", masterPort));
    if (n.sentinelPort === undefined) rmSync(conf("sentinel"));
    else writeFileSync(conf("sentinel"), localize(readFileSync(conf("sentinel"), "utf8"), n, "sentinel", masterPort));
    for (const d of ["scripts", "bin"]) mkdirSync(join(n.dir, d), { recursive: true });
    for (const s of ["apply-settings", "lib.sh"]) copyFileSync(join(SCRIPTS, s), join(n.dir, "scripts", s));
    writeFileSync(
        join(n.dir, "scripts", PATHS_LIB),
        renderPathsLib({
            ...pathsUnder(n.dir),
            nodeEnv: join(n.dir, "node.env"),
            scriptsDir: join(n.dir, "scripts"),
            redisConf: conf("redis"),
            sentinelConf: conf("sentinel"),
            tlsCa: join(n.dir, "etc/tls/ca.crt"),
            tlsCert: join(n.dir, "etc/tls/node.crt"),
            tlsKey: join(n.dir, "etc/tls/node.key"),
            aclFile: join(n.dir, "etc/users.acl"),
            secretsDir: join(n.dir, "etc/secrets"),
        }),
    );
    writeFileSync(
        join(n.dir, "node.env"),
        [
            `NODE_NAME='${n.name}'`,
            "RUNS_REDIS=1",
            `RUNS_SENTINEL=${n.sentinelPort === undefined ? 0 : 1}`,
            `REDIS_PORT=${String(n.redisPort)}`,
            `SENTINEL_PORT=${String(n.sentinelPort ?? 0)}`,
            `MASTER_NAME='${run.topology.masterName}'`,
            "TLS=1",
            "",
        ].join("\n"),
    );
    // systemctl: logs its calls; `restart redis-sentinel.service` restarts this node's Sentinel for real.
    const stub = (name: string, text: string) => {
        writeFileSync(join(n.dir, "bin", name), text);
        chmodSync(join(n.dir, "bin", name), 0o755);
    };
    stub(
        "systemctl",
        [
            "#!/bin/bash",
            `echo "$*" | tee -a "${n.dir}/systemctl.log.all" >>"${n.dir}/systemctl.log"`,
            'if [ "$1 $2" = "restart redis-sentinel.service" ]; then',
            `    pid=$(cat "${n.dir}/sentinel.pidfile")`,
            '    kill "$pid"',
            '    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done',
            `    redis-sentinel "${conf("sentinel")}" --daemonize yes`,
            "fi",
            "",
        ].join("\n"),
    );
    // redis-cli: records its argv (no secret may appear there), then runs the real one.
    stub("redis-cli", `#!/bin/bash\nprintf '%s\\n' "$*" >>"${n.dir}/argv.log"\nexec "${REAL_CLI}" "$@"\n`);
}

async function startServers(n: LoopNode): Promise<void> {
    children.push(spawn("redis-server", [join(n.dir, "etc/redis.conf")], { stdio: "ignore" }));
    if (n.sentinelPort !== undefined)
        spawnSync("redis-sentinel", [join(n.dir, "etc/sentinel.conf"), "--daemonize", "yes"], { stdio: "ignore" });
    for (let i = 0; i < 100; i++) {
        const up =
            (await cli(n, n.redisPort, "admin", 1, ["PING"])).stdout.trim() === "PONG" &&
            (n.sentinelPort === undefined ||
                (await cli(n, n.sentinelPort, "admin", 1, ["PING"])).stdout.trim() === "PONG");
        if (up) return;
        await sleep(100);
    }
    throw new Error(`servers of ${n.name} did not start`);
}

let runs: Record<string, MockRun>;
const password = (gen: string, user: string) => usersOf(runs[gen])[user].password;
/** Every password of every user in every generation this test deals with (none may show in argv or output). */
const allSecrets = () => Object.values(runs).flatMap((r) => Object.values(usersOf(r)).map((u) => u.password));

/** redis-cli over TLS with the node's current certificate, as `user` with the password of `gen`. */
function cli(n: LoopNode, port: number, user: string, gen: number, args: string[]): Promise<Ran> {
    return exec(
        REAL_CLI,
        [
            "--no-auth-warning",
            "--tls",
            "--cacert",
            join(n.dir, "etc/tls/ca.crt"),
            "--cert",
            join(n.dir, "etc/tls/node.crt"),
            "--key",
            join(n.dir, "etc/tls/node.key"),
            "-h",
            "127.0.0.1",
            "-p",
            String(port),
            "--user",
            user,
            ...args,
        ],
        { env: { ...process.env, REDISCLI_AUTH: password(`g${String(gen)}`, user) } },
    );
}

/** Everything apply-settings printed in this file (what Pulumi would show and keep in its logs). */
const printed: string[] = [];

/** Runs the node's apply-settings with the secret lines of `run`'s rollout step, as Pulumi runs it over SSH. */
async function applySecrets(n: LoopNode, run: MockRun) {
    rmSync(join(n.dir, "systemctl.log"), { force: true });
    const r = await exec("/bin/bash", ["--norc", join(n.dir, "scripts", "apply-settings")], {
        input: secretLines(run, n.name),
        env: {
            PATH: `${join(n.dir, "bin")}:${process.env.PATH ?? "/usr/bin:/bin"}`,
            SECRET_OWNER: `${String(process.getuid?.() ?? 0)}:${String(process.getgid?.() ?? 0)}`,
        },
        timeoutMs: 60_000,
    });
    printed.push(r.stdout, r.stderr);
    const log = existsSync(join(n.dir, "systemctl.log")) ? readFileSync(join(n.dir, "systemctl.log"), "utf8") : "";
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, systemctl: log.trim().split("\n").filter(Boolean) };
}

/** The SHA-256 fingerprint of the certificate a server presents, and of a PEM. */
async function servedFingerprint(port: number): Promise<string> {
    const served = (await exec("openssl", ["s_client", "-connect", `127.0.0.1:${String(port)}`])).stdout;
    return pemFingerprint(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(served)?.[0] ?? "");
}
function pemFingerprint(pem: string): string {
    return spawnSync("openssl", ["x509", "-noout", "-fingerprint", "-sha256"], { input: pem, encoding: "utf8" })
        .stdout.trim()
        .replace(/^.*=/, "");
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (await check()) return;
        await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}`);
}

describe("apply-settings rotates every credential live on real servers (loopback)", () => {
    let a: LoopNode;
    let b: LoopNode;
    let writer: { stop(): Promise<void>; acks: { key: string }[]; errors: { error: Error }[] } | undefined;
    let closeClient: (() => Promise<void>) | undefined;

    // The test's own admin calls use generation 2, which every node accepts at every stage (g1: 1-2, g2: 1-3, g3: 2-4).
    const admin = (n: LoopNode, port: number, args: string[]) => cli(n, port, "admin", 2, args);
    const linkUp = async () =>
        /master_link_status:up/.test((await admin(b, b.redisPort, ["INFO", "replication"])).stdout);
    /**
     * Errors the writer got while the test itself had the replica cut off (below): with no replica attached, the
     * client refuses to call a write durable (WriteNotAcknowledgedError). Every other error counts against the rotation.
     */
    const whileCutOff: Error[] = [];
    /** Drops the replication link and waits until the replica is back, logged in with what it now sends. */
    const relink = async () => {
        const from = writer?.errors.length ?? 0;
        await admin(a, a.redisPort, ["CLIENT", "KILL", "TYPE", "replica"]);
        await sleep(200);
        await waitFor("the replica to re-link", linkUp);
        // A WAIT that was in flight when the link came back answers within its round.
        await sleep(1500);
        whileCutOff.push(...(writer?.errors.slice(from).map((e) => e.error) ?? []));
    };
    /**
     * Drops Sentinel's connections to both Redis nodes and waits until it is back on each, logged in as `sentinel`
     * (a connection shows the user only once AUTH succeeded), so it logs in with what it now sends.
     */
    const sentinelRelinks = async () => {
        for (const n of [a, b]) {
            await admin(n, n.redisPort, ["CLIENT", "KILL", "USER", "sentinel"]);
            await waitFor(`Sentinel to log in to ${n.name} again`, async () =>
                /name=sentinel-\S+-cmd .*user=sentinel/.test((await admin(n, n.redisPort, ["CLIENT", "LIST"])).stdout),
            );
        }
    };
    const sentinelSees = async () => {
        const out = (await admin(a, a.sentinelPort ?? 0, ["SENTINEL", "REPLICAS", runs.g1.topology.masterName])).stdout;
        const lines = out.split("\n");
        return lines[lines.indexOf("flags") + 1] === "slave";
    };
    const ckquorum = async () =>
        (await admin(a, a.sentinelPort ?? 0, ["SENTINEL", "CKQUORUM", runs.g1.topology.masterName])).stdout;
    const noServiceRestart = [`try-restart ${EXPORTER_UNITS.primary} ${EXPORTER_UNITS.sentinel}`];

    beforeAll(async () => {
        const mock = async (gen: number, certDays = 365) =>
            runUnderMocks({ stack: "dev", config: configAt("dev", gen, certDays), addresses: ADDRESSES });
        runs = {
            g1: await mock(1),
            g2: await mock(2),
            g2cert: await mock(2, 200),
            g3: await mock(3, 200),
        };
        work = mkdtempSync(join(tmpdir(), "rotation-"));
        a = {
            name: "dev-a",
            dir: join(work, "dev-a"),
            redisPort: await probablyFreePort(),
            sentinelPort: await probablyFreePort(),
        };
        b = { name: "dev-b", dir: join(work, "dev-b"), redisPort: await probablyFreePort() };
        nodeDirs.push(a, b);
        layOut(runs.g1, a, a.redisPort);
        layOut(runs.g1, b, a.redisPort);
        await startServers(a);
        await startServers(b);
        await waitFor("the replica's first sync", linkUp);
        await waitFor("Sentinel to list the replica", sentinelSees);
    });
    afterAll(async () => {
        await writer?.stop();
        await closeClient?.();
        const pidFile = join(work, "dev-a", "sentinel.pidfile");
        if (existsSync(pidFile)) spawnSync("kill", ["-9", readFileSync(pidFile, "utf8").trim()]);
        for (const c of children) c.kill("SIGKILL");
        rmSync(work, { recursive: true, force: true });
    });

    it("generation 1 -> 2 under write load, replica first: nobody is locked out", async () => {
        const client = createSentinelClient({
            sentinels: [{ host: "127.0.0.1", port: a.sentinelPort ?? 0 }],
            masterName: runs.g1.topology.masterName,
            // What the application has before the rotation: generation 1's app password.
            redis: {
                username: "app",
                password: password("g1", "app"),
                tls: { ca: runs.g1.stackOutputs.caCertificate as string },
            },
            sentinel: {
                username: "app",
                password: password("g1", "app"),
                tls: { ca: runs.g1.stackOutputs.caCertificate as string },
            },
            staleCache: false,
            metrics: false,
        });
        closeClient = () => client.close();
        writer = startDurableWrites(client, {
            prefix: "rotation",
            replicas: 1,
            timeoutMs: 500,
        });
        await waitFor("the first acknowledged writes", () => Promise.resolve((writer?.acks.length ?? 0) > 50));

        const onB = await applySecrets(b, runs.g2);
        expect(onB.stderr).toBe("");
        expect(onB.status).toBe(0);
        expect(onB.stdout).toContain("applied acl redis app");
        expect(onB.stdout).toContain("applied auth masterauth");
        expect(onB.stdout).toContain("applied passfile admin");
        // Updated replica: the old, the current and the next generation get in; nothing restarted.
        for (const gen of [1, 2, 3])
            expect((await cli(b, b.redisPort, "app", gen, ["PING"])).stdout.trim()).toBe("PONG");
        // Only the exporters restart (they read the exporter password when they start).
        expect(onB.systemctl).toEqual(noServiceRestart);
        // It now logs in to the master (not yet updated) with generation 2, which the master accepts.
        expect((await admin(b, b.redisPort, ["CONFIG", "GET", "masterauth"])).stdout).toContain(
            password("g2", "replication"),
        );
        await relink();
        expect(await ckquorum()).toMatch(/^OK/);

        const onA = await applySecrets(a, runs.g2);
        expect(onA.stderr).toBe("");
        expect(onA.status).toBe(0);
        for (const line of ["acl redis app", "acl sentinel app", "auth auth-pass", "auth sentinel-pass"])
            expect(onA.stdout).toContain(`applied ${line}`);
        expect(onA.systemctl).toEqual(noServiceRestart);
        // Sentinel logs in to both with generation 2 and still sees them; the replica re-links as well.
        await sentinelRelinks();
        await waitFor("Sentinel to see the replica", sentinelSees);
        expect(await ckquorum()).toMatch(/^OK/);
        await relink();
        for (const gen of [1, 2, 3]) {
            expect((await cli(a, a.redisPort, "app", gen, ["PING"])).stdout.trim()).toBe("PONG");
            expect((await cli(a, a.sentinelPort ?? 0, "app", gen, ["PING"])).stdout.trim()).toBe("PONG");
        }
        // Saved where a restart finds them: users.acl (ACL SAVE) and sentinel.conf (Sentinel's own rewrite).
        const next = passwordHashRule(password("g3", "app"));
        expect(readFileSync(join(a.dir, "etc/users.acl"), "utf8")).toContain(next);
        const sentinelConf = readFileSync(join(a.dir, "etc/sentinel.conf"), "utf8");
        expect(sentinelConf).toMatch(new RegExp(`^user app on .*${next}`, "m"));
        expect(sentinelConf).toContain(
            `sentinel auth-pass ${runs.g1.topology.masterName} ${password("g2", "sentinel")}`,
        );
    });

    it("changes nothing when nothing differs", async () => {
        for (const n of [b, a]) {
            const acl = readFileSync(join(n.dir, "etc/users.acl"), "utf8");
            const again = await applySecrets(n, runs.g2);
            expect([n.name, again.status, again.stdout, again.stderr, again.systemctl]).toEqual([
                n.name,
                0,
                "",
                "",
                [],
            ]);
            expect(readFileSync(join(n.dir, "etc/users.acl"), "utf8")).toBe(acl);
        }
    });

    it("a re-issued certificate is served after the rollout: Redis reloads it, Sentinel restarts with it", async () => {
        const cert = (n: LoopNode) => pemFingerprint(readFileSync(join(n.dir, "etc/tls/node.crt"), "utf8"));
        const oldA = cert(a);
        expect(await servedFingerprint(a.redisPort)).toBe(oldA);
        for (const n of [b, a]) {
            const r = await applySecrets(n, runs.g2cert);
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            expect(r.stdout).toContain("applied tls cert");
            expect(r.stdout).toContain("reloaded the TLS certificate of Redis");
            expect(await servedFingerprint(n.redisPort)).toBe(cert(n));
        }
        expect(cert(a)).not.toBe(oldA);
        expect((await applySecrets(a, runs.g2cert)).systemctl).toEqual([]);
        expect(readFileSync(join(a.dir, "systemctl.log.all"), "utf8")).toContain("restart redis-sentinel.service");
        await waitFor(
            "Sentinel to serve the new certificate",
            async () => (await servedFingerprint(a.sentinelPort ?? 0)) === cert(a),
        );
        await sentinelRelinks();
        await waitFor("Sentinel to see the replica again", sentinelSees);
        expect(await ckquorum()).toMatch(/^OK/);
        await relink();
    });

    it("lost no acknowledged write, and the writer saw no error but while the test cut the replica off", async () => {
        const w = writer;
        if (!w) throw new Error("no writer");
        await w.stop();
        await closeClient?.();
        writer = undefined;
        const keys = w.acks.map((x) => x.key);
        const missing = await withRedis(
            "127.0.0.1",
            a.redisPort,
            {
                username: "admin",
                password: password("g2", "admin"),
                tls: { ca: runs.g1.stackOutputs.caCertificate as string },
            },
            (r) => missingWrites(r, keys),
            5000,
        );
        process.stdout.write(
            `rotation on loopback: ${String(keys.length)} acknowledged writes, errors ${JSON.stringify(errorsByName(w.errors))}, ${String(whileCutOff.length)} of them while the test had the replica cut off\n`,
        );
        expect(keys.length).toBeGreaterThan(100);
        expect(missing).toEqual([]);
        const cutOff = new Set(whileCutOff);
        expect(errorsByName(w.errors.filter((e) => !cutOff.has(e.error)))).toEqual({});
        expect(
            Object.keys(errorsByName(whileCutOff.map((error) => ({ error })))).filter(
                (n) => n !== "WriteNotAcknowledgedError",
            ),
        ).toEqual([]);
    });

    it("generation 2 -> 3: generation 1 is refused with the server's own error, 2, 3 and 4 get in", async () => {
        for (const n of [b, a]) {
            const r = await applySecrets(n, runs.g3);
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
        }
        for (const port of [a.redisPort, b.redisPort, a.sentinelPort ?? 0]) {
            expect((await cli(a, port, "app", 1, ["PING"])).stderr).toMatch(
                /AUTH failed: WRONGPASS invalid username-password pair/,
            );
            for (const gen of [2, 3]) expect((await cli(a, port, "app", gen, ["PING"])).stdout.trim()).toBe("PONG");
        }
        // Generation 1 is refused now, so what re-links logs in with a newer one.
        await relink();
        await sentinelRelinks();
        await waitFor("Sentinel to see the replica", sentinelSees);
        expect(await ckquorum()).toMatch(/^OK/);
    });

    it("never put a password or a password hash in a redis-cli command line, nor printed one", () => {
        const argv = nodeDirs.map((n) => readFileSync(join(n.dir, "argv.log"), "utf8")).join("");
        expect(argv).toContain("ACL");
        for (const p of allSecrets()) expect(argv).not.toContain(p);
        expect(argv).not.toMatch(/#[0-9a-f]{64}/);
        const output = printed.join("");
        expect(output).toContain("applied auth masterauth");
        for (const p of allSecrets()) expect(output).not.toContain(p);
    });
});

describe("apply-settings refuses a malformed secret line without echoing it", () => {
    let dir: string;
    beforeAll(() => {
        dir = mkdtempSync(join(tmpdir(), "rotation-bad-"));
        mkdirSync(join(dir, "scripts"));
        for (const s of ["apply-settings", "lib.sh"]) copyFileSync(join(SCRIPTS, s), join(dir, "scripts", s));
        writeFileSync(
            join(dir, "scripts", PATHS_LIB),
            renderPathsLib({ ...pathsUnder(dir), nodeEnv: join(dir, "node.env") }),
        );
        writeFileSync(join(dir, "node.env"), "NODE_NAME='dev-a'\nRUNS_REDIS=1\nRUNS_SENTINEL=1\n");
    });
    afterAll(() => {
        rmSync(dir, { recursive: true, force: true });
    });
    const apply = (input: string) =>
        spawnSync("/bin/bash", ["--norc", join(dir, "scripts", "apply-settings")], { input, encoding: "utf8" });

    it.each([
        [`auth masterauth ${Buffer.from("pw with 'quote").toString("base64")}\n`, "bad auth line 'masterauth'"],
        [`auth requirepass ${Buffer.from("abc").toString("base64")}\n`, "bad auth line 'requirepass'"],
        ["acl redis app 5fcf82bc\n", "bad acl line 'redis app'"],
        [`acl cluster app #${"a".repeat(64)}\n`, "bad acl line 'cluster app'"],
        ["tls chain AAAA\n", "bad tls line 'chain'"],
        ["passfile ../x AAAA\n", "bad passfile line '../x'"],
        ["secret-unit redis;reboot\n", "bad secret-unit line 'redis;reboot'"],
    ])("%j", (input, message) => {
        const r = apply(input);
        expect(r.status).toBe(2);
        expect(r.stderr).toBe(`apply-settings: ${message}\n`);
        expect(r.stdout).toBe("");
    });
});
