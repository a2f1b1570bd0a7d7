import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
    APP_DENIED,
    filesInUserData,
    nodeScript,
    parseConfig,
    PATHS,
    renderPathsLib,
    type WriteFile,
} from "../../cloud-init";
import { createSentinelClient } from "../../client";
import { resourceNames } from "../../components/names";
import { runUnderMocks, unwrapSecrets, type MockRun } from "../../engine/mockRun";
import { pathsUnder, programConfigWith } from "../helpers";
import { probablyFreePort } from "../../client/testing/loopbackCluster";

/**
 * `tls: true`: the rendered configuration serves TLS only with ACL users, no password lies outside the secret files,
 * and real redis-server/redis-sentinel started from the rendered files (on loopback) refuse what they must, each with
 * the server's own error.
 */
let run: MockRun;
let local: MockRun;
beforeAll(async () => {
    // prod as shipped: tls is the default.
    run = await runUnderMocks({ stack: "prod", config: programConfigWith("prod", {}) });
    const dev = programConfigWith("dev", { tls: true, tlsAuthClients: "yes" });
    local = await runUnderMocks({
        stack: "dev",
        config: dev,
        addresses: { "dev-a": "127.0.0.1", "dev-b": "127.0.0.1", "dev-c": "127.0.0.1" },
    });
});

const files = (r: MockRun, node: string): WriteFile[] => filesInUserData(r.userData[node]);
const fileOf = (r: MockRun, node: string, path: string): WriteFile => {
    const f = files(r, node).find((x) => x.path === path);
    if (!f) throw new Error(`${node} has no ${path}`);
    return f;
};
const users = (r: MockRun) =>
    r.stackOutputs.users as Record<string, { username: string; password: string }> | undefined;

describe("tls: rendered configuration", () => {
    it("serves Redis and Sentinel over TLS only, replication and Sentinel links included", () => {
        expect(run.topology.security.tls).toBe(true);
        for (const n of run.topology.nodes) {
            for (const path of [
                ...(n.runsRedis ? [PATHS.redisConf] : []),
                ...(n.runsSentinel ? [PATHS.sentinelConf] : []),
            ]) {
                const d = parseConfig(fileOf(run, n.name, path).content);
                const get = (k: string) => d.filter(([name]) => name === k).map(([, ...v]) => v.join(" "));
                expect(get("port")).toEqual(["0"]);
                expect(get("tls-port")).toHaveLength(1);
                expect(get("tls-replication")).toEqual(["yes"]);
                expect(get("tls-auth-clients")).toEqual(["optional"]);
                expect(get("requirepass")).toEqual([]);
            }
        }
    });

    it("keeps every password out of every file but the secret ones (owner redis, mode 0640), and out of node.env", () => {
        const u = users(run);
        expect(u).toBeDefined();
        const passwords = Object.values(u ?? {}).map((x) => x.password);
        expect(passwords).toHaveLength(5);
        for (const n of run.topology.nodes)
            for (const f of files(run, n.name)) {
                const holds = passwords.filter((p) => f.content.includes(p));
                if (holds.length > 0) expect([f.path, f.owner, f.permissions]).toEqual([f.path, "redis:redis", "0640"]);
            }
        for (const n of run.topology.nodes) expect(fileOf(run, n.name, PATHS.nodeEnv).content).not.toMatch(/PASSWORD/);
        // The ACL file names passwords only by their hash.
        const acl = fileOf(run, run.topology.preferredMaster, PATHS.aclFile).content;
        for (const p of passwords) expect(acl).not.toContain(p);
    });

    it("gives each user its own secret password as a stack output, and the CA and certificate end dates", () => {
        expect(run.secretStackOutputs).toContain("users");
        const u = users(run) ?? {};
        expect(Object.keys(u).sort()).toEqual(["admin", "app", "exporter", "replication", "sentinel"]);
        expect(new Set(Object.values(u).map((x) => x.password)).size).toBe(5);
        expect(String(run.stackOutputs.caCertificate)).toContain("BEGIN CERTIFICATE");
        expect(Object.keys(run.stackOutputs.certificatesValidUntil as object).sort()).toEqual(
            run.topology.nodes.map((n) => n.name).sort(),
        );
    });

    it("issues each node a certificate for its own address with server and client usages", () => {
        const dir = mkdtempSync(join(tmpdir(), "tls-cert-"));
        try {
            for (const n of run.topology.nodes) {
                writeFileSync(join(dir, "c.pem"), fileOf(run, n.name, PATHS.tlsCert).content);
                writeFileSync(join(dir, "ca.pem"), fileOf(run, n.name, PATHS.tlsCa).content);
                const text = spawnSync("openssl", ["x509", "-in", join(dir, "c.pem"), "-noout", "-text"], {
                    encoding: "utf8",
                }).stdout;
                const address = (run.stackOutputs.nodes as Record<string, { address: string }>)[n.name].address;
                expect(text).toContain(`IP Address:${address}`);
                expect(text).toContain("IP Address:127.0.0.1");
                expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
                const verify = spawnSync("openssl", ["verify", "-CAfile", join(dir, "ca.pem"), join(dir, "c.pem")], {
                    encoding: "utf8",
                });
                expect(verify.stdout.trim()).toMatch(/: OK$/);
                expect(fileOf(run, n.name, PATHS.tlsKey)).toMatchObject({ owner: "redis:redis", permissions: "0640" });
            }
        } finally {
            rmSync(dir, { recursive: true });
        }
    });

    it("declares a CA, a key, a request and a certificate per node, and a password per user and generation", () => {
        const names = run.resources.map((r) => r.name);
        expect(names).toContain(resourceNames.tlsCa);
        for (const n of run.topology.nodes) expect(names).toContain(resourceNames.tlsNodeCert(n.name));
        for (const user of ["admin", "replication", "sentinel", "exporter", "app"])
            for (const g of [1, 2]) expect(names).toContain(resourceNames.aclPassword(user, g));
    });
});

describe("tls with addressing: ephemeral", () => {
    it("issues certificates for the Linodes' own addresses and delivers them in the bootstrap step, not in user-data", async () => {
        const addresses = { "dev-a": "198.51.100.21", "dev-b": "198.51.100.22", "dev-c": "198.51.100.23" };
        const eph = await runUnderMocks({
            stack: "dev",
            config: programConfigWith("dev", { tls: true, addressing: "ephemeral" }),
            addresses,
        });
        for (const [node, address] of Object.entries(addresses)) {
            expect(files(eph, node).map((f) => f.path)).not.toContain(PATHS.tlsKey);
            const step = eph.resources.find((r) => r.name === resourceNames.bootstrapStep(node));
            const stdin = String(unwrapSecrets(step?.inputs.stdin));
            const delivered = new Map(
                stdin
                    .trim()
                    .split("\n")
                    .map((l) => l.split(" "))
                    .map(([, , path, , owner, data]) => [
                        path,
                        { owner, text: Buffer.from(data, "base64").toString() },
                    ]),
            );
            expect(delivered.get(PATHS.tlsKey)?.owner).toBe("redis:redis");
            expect(delivered.get(PATHS.aclFile)?.text).toMatch(/^user default off/);
            const cert = delivered.get(PATHS.tlsCert)?.text ?? "";
            const text = spawnSync("openssl", ["x509", "-noout", "-ext", "subjectAltName"], {
                input: cert,
                encoding: "utf8",
            }).stdout;
            expect(text).toContain(`IP Address:${address}`);
        }
    });
});

// ---- real servers on loopback, started from the rendered files ----------------------------------------------------

interface Started {
    proc: ChildProcess;
    dir: string;
    port: number;
}

const children: ChildProcess[] = [];
let work: string;

/** The rendered file with this test's ports and directories in place of the node's. */
function localize(text: string, dir: string, ports: Readonly<Record<string, number>>): string {
    return text
        .replace(/^(tls-port) \d+$/m, `$1 ${String(ports.self)}`)
        .replace(/^(replica-announce-port|sentinel announce-port) \d+$/m, (l) => l.replace(/\d+$/, String(ports.self)))
        .replace(/^(replicaof 127\.0\.0\.1) \d+$/m, `$1 ${String(ports.master)}`)
        .replace(/^(sentinel monitor \S+ 127\.0\.0\.1) \d+ \d+$/m, `$1 ${String(ports.master)} 1`)
        .replace(/^supervised systemd$/m, "supervised no")
        .replace(/^(pidfile|logfile) .*$/gm, (_l, k: string) => `${k} ${dir}/${k}`)
        .replace(/^dir .*$/m, `dir ${dir}`)
        .replace(/^appendonly yes$/m, "appendonly no")
        .replace(/\/etc\/redis\//g, `${dir}/etc/`);
}

function writeNodeFiles(r: MockRun, node: string, dir: string): void {
    for (const f of files(r, node))
        if (f.path.startsWith("/etc/redis/")) {
            const to = join(dir, "etc", f.path.slice("/etc/redis/".length));
            mkdirSync(join(to, ".."), { recursive: true });
            writeFileSync(to, f.content, { mode: 0o600 });
        }
}

async function startFromRendered(node: string, kind: "redis" | "sentinel", master: number): Promise<Started> {
    const dir = join(work, `${node}-${kind}`);
    mkdirSync(dir, { recursive: true });
    writeNodeFiles(local, node, dir);
    const port = await probablyFreePort();
    const conf = join(dir, "etc", kind === "redis" ? "redis.conf" : "sentinel.conf");
    writeFileSync(conf, localize(readFileSync(conf, "utf8"), dir, { self: port, master: port === 0 ? 0 : master }));
    const bin = kind === "redis" ? "redis-server" : "redis-sentinel";
    const proc = spawn(bin, [conf], { stdio: "ignore" });
    children.push(proc);
    for (let i = 0; i < 100; i++) {
        if (cli({ port, dir }, "admin", ["PING"]).stdout.trim() === "PONG") return { proc, dir, port };
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${bin} of ${node} did not start: ${readFileSync(join(dir, "logfile"), "utf8").slice(-2000)}`);
}

const password = (user: string) => users(local)?.[user]?.password ?? "";

/** redis-cli over TLS as `user` with the node's own certificate; the password in the environment, never in argv. */
function cli(
    s: { port: number; dir: string },
    user: string | undefined,
    args: string[],
    opts: { tls?: boolean; cert?: string; key?: string; ca?: string; password?: string } = {},
) {
    const tls = opts.tls ?? true;
    return spawnSync(
        "redis-cli",
        [
            "--no-auth-warning",
            "-h",
            "127.0.0.1",
            "-p",
            String(s.port),
            ...(tls
                ? [
                      "--tls",
                      "--cacert",
                      opts.ca ?? join(s.dir, "etc/tls/ca.crt"),
                      "--cert",
                      opts.cert ?? join(s.dir, "etc/tls/node.crt"),
                      "--key",
                      opts.key ?? join(s.dir, "etc/tls/node.key"),
                  ]
                : []),
            ...(user ? ["--user", user] : []),
            ...args,
        ],
        {
            encoding: "utf8",
            timeout: 5000,
            env: { ...process.env, ...(user ? { REDISCLI_AUTH: opts.password ?? password(user) } : {}) },
        },
    );
}

describe("tls: real servers from the rendered files refuse what they must", () => {
    let master: Started;
    let replica: Started;
    let sentinel: Started;
    beforeAll(async () => {
        work = mkdtempSync(join(tmpdir(), "tls-servers-"));
        master = await startFromRendered("dev-a", "redis", 0);
        replica = await startFromRendered("dev-b", "redis", master.port);
        sentinel = await startFromRendered("dev-a", "sentinel", master.port);
    });
    afterAll(() => {
        for (const c of children) c.kill("SIGKILL");
        rmSync(work, { recursive: true, force: true });
    });

    it("replicates over TLS as the replication user", async () => {
        let status = "";
        for (let i = 0; i < 100 && status !== "up"; i++) {
            status = /master_link_status:(\w+)/.exec(cli(replica, "admin", ["INFO", "replication"]).stdout)?.[1] ?? "";
            if (status !== "up") await new Promise((r) => setTimeout(r, 100));
        }
        expect(status).toBe("up");
    });

    it("Sentinel monitors the master over TLS as the sentinel user; clients ask it as app", async () => {
        let flags = "";
        for (let i = 0; i < 100 && !/^master$/.test(flags); i++) {
            const out = cli(sentinel, "app", ["SENTINEL", "master", "mymaster"]).stdout.split("\n");
            flags = out[out.indexOf("flags") + 1] ?? "";
            if (flags !== "master") await new Promise((r) => setTimeout(r, 100));
        }
        expect(flags).toBe("master");
        // The client profile reads discovery, and nothing that changes Sentinel.
        expect(cli(sentinel, "app", ["SENTINEL", "reset", "*"]).stdout).toMatch(/^NOPERM/);
    });

    it("refuses a client without TLS", () => {
        const r = cli(master, undefined, ["PING"], { tls: false });
        expect(r.stdout + r.stderr).not.toContain("PONG");
        const log = readFileSync(join(master.dir, "logfile"), "utf8");
        expect(log).toMatch(/Error accepting a client connection: .*(wrong version number|http request|record layer)/i);
    });

    it("refuses a certificate from another CA when client certificates are required", () => {
        const other = join(work, "other");
        mkdirSync(other);
        const ssl = (args: string[]) => spawnSync("openssl", args, { cwd: other, encoding: "utf8" });
        ssl(
            [
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
            ].concat(["-out", "ca.crt", "-subj", "/CN=other", "-days", "2"]),
        );
        ssl(
            [
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "c.key",
            ].concat(["-out", "c.csr", "-subj", "/CN=intruder"]),
        );
        ssl(["x509", "-req", "-in", "c.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "7", "-out", "c.crt"]);
        const r = cli(master, "app", ["PING"], { cert: join(other, "c.crt"), key: join(other, "c.key") });
        expect(r.stdout).not.toContain("PONG");
        const log = readFileSync(join(master.dir, "logfile"), "utf8");
        expect(log).toMatch(/certificate verify failed|unknown ca|self.signed/i);
    });

    it("refuses the default user, an unknown user and a wrong password", () => {
        expect(cli(master, undefined, ["PING"]).stdout).toMatch(/^NOAUTH Authentication required/);
        // redis-cli reports the refused AUTH on stderr, then the command runs unauthenticated.
        const unknown = cli(master, "nobody", ["PING"], { password: "x".repeat(32) });
        expect(unknown.stderr).toMatch(/AUTH failed: WRONGPASS invalid username-password pair/);
        expect(unknown.stdout).toMatch(/^NOAUTH/);
        const wrong = cli(master, "app", ["PING"], { password: "y".repeat(32) });
        expect(wrong.stderr).toMatch(/AUTH failed: WRONGPASS invalid username-password pair/);
        expect(cli(master, "app", ["PING"]).stdout.trim()).toBe("PONG");
    });

    it.each([
        [["FLUSHALL"], "flushall"],
        [["CONFIG", "SET", "maxmemory", "1"], "config|set"],
        [["KEYS", "*"], "keys"],
    ])("refuses the app user %j", (args, command) => {
        expect(cli(master, "app", args).stdout).toContain(
            `NOPERM this user has no permissions to run the '${command}' command`,
        );
    });

    it("refuses the app user DEBUG SLEEP (the ACL, and Redis's own enable-debug-command)", () => {
        expect(cli(master, "app", ["DEBUG", "SLEEP", "1"]).stdout).toMatch(/^ERR DEBUG command not allowed/);
        expect(cli(master, "admin", ["ACL", "DRYRUN", "app", "DEBUG", "SLEEP", "1"]).stdout).toContain(
            "This user has no permissions to run the 'debug' command",
        );
    });

    it("keeps INFO and ROLE for the app user, and every denied command denied", () => {
        expect(cli(master, "app", ["ROLE"]).stdout).toMatch(/^master/);
        expect(cli(master, "app", ["INFO", "server"]).stdout).toContain("redis_version");
        expect(cli(master, "app", ["SET", "k", "v"]).stdout.trim()).toBe("OK");
        const calls: Record<(typeof APP_DENIED)[number], string[]> = {
            flushall: ["FLUSHALL"],
            flushdb: ["FLUSHDB"],
            config: ["CONFIG", "GET", "maxmemory"],
            debug: ["DEBUG", "SLEEP", "0"],
            keys: ["KEYS", "*"],
            shutdown: ["SHUTDOWN"],
            module: ["MODULE", "LIST"],
            acl: ["ACL", "LIST"],
        };
        for (const c of APP_DENIED)
            expect(cli(master, "admin", ["ACL", "DRYRUN", "app", ...calls[c]]).stdout).toMatch(/no permissions/);
    });

    it("lib.sh reaches Redis and Sentinel over TLS as admin, the password from its file and never in argv", () => {
        const dir = master.dir;
        writeFileSync(join(dir, "lib.sh"), nodeScript("lib.sh"));
        writeFileSync(
            join(dir, "paths.sh"),
            renderPathsLib({
                ...pathsUnder(dir),
                nodeEnv: join(dir, "node.env"),
                tlsCa: join(dir, "etc/tls/ca.crt"),
                tlsCert: join(dir, "etc/tls/node.crt"),
                tlsKey: join(dir, "etc/tls/node.key"),
                secretsDir: join(dir, "etc/secrets"),
            }),
        );
        writeFileSync(join(dir, "node.env"), "TLS='1'\nMASTER_NAME='mymaster'\n");
        const r = spawnSync(
            "bash",
            [
                "-c",
                `. ${dir}/lib.sh; rcli 127.0.0.1 ${String(master.port)} ROLE | head -1; scli 127.0.0.1 ${String(sentinel.port)} SENTINEL get-master-addr-by-name mymaster | tail -1; type rcli`,
            ],
            { encoding: "utf8" },
        );
        expect(r.stdout.split("\n").slice(0, 2)).toEqual(["master", String(master.port)]);
        // The function's command line names no password: it travels in REDISCLI_AUTH.
        expect(r.stdout).toContain("REDISCLI_AUTH=");
        expect(r.stdout).not.toContain(password("admin"));
        for (const script of [
            "lib.sh",
            "apply-settings",
            "check-node",
            "redis-restore",
            "exporter-credentials",
        ] as const)
            expect(nodeScript(script)).not.toMatch(/redis-cli[^\n]* -a /);
    });

    it("the TypeScript client writes through Sentinel over TLS as the app user", async () => {
        // This cluster requires client certificates (tlsAuthClients: yes): the client presents one of the CA's.
        const pem = (f: string) => readFileSync(join(master.dir, "etc/tls", f), "utf8");
        const tls = { ca: pem("ca.crt"), cert: pem("node.crt"), key: pem("node.key") };
        const login = { username: "app", password: password("app"), tls };
        const client = createSentinelClient({
            sentinels: [{ host: "127.0.0.1", port: sentinel.port }],
            masterName: "mymaster",
            redis: login,
            sentinel: login,
            staleCache: false,
            metrics: false,
        });
        try {
            await client.write((r) => r.set("tls:ts", "1"));
            expect(await client.read((r) => r.get("tls:ts"))).toBe("1");
        } finally {
            await client.close();
        }
    });

    it("the Python client writes through Sentinel over TLS as the app user (document with caCertificate)", () => {
        const doc = {
            masterName: "mymaster",
            sentinels: [{ host: "127.0.0.1", port: sentinel.port }],
            redisUsername: "app",
            redisPassword: password("app"),
            sentinelUsername: "app",
            sentinelPassword: password("app"),
            caCertificate: readFileSync(join(master.dir, "etc/tls/ca.crt"), "utf8"),
        };
        const py = [
            "import json, sys",
            "from dataclasses import replace",
            "from redis_ha import SentinelClient, options_from_document",
            "o = options_from_document(sys.stdin.read())",
            // tlsAuthClients: yes here, so the client also presents a certificate of the CA.
            `cert = dict(ssl_certfile='${master.dir}/etc/tls/node.crt', ssl_keyfile='${master.dir}/etc/tls/node.key')`,
            "o = replace(o, redis=replace(o.redis, ssl={**o.redis.ssl, **cert}), sentinel=replace(o.sentinel, ssl={**o.sentinel.ssl, **cert}))",
            "c = SentinelClient(o)",
            "c.write(lambda r: r.set('tls:py', '2'))",
            "print(c.read(lambda r: r.get('tls:py')))",
            "c.close()",
        ].join("\n");
        const r = spawnSync("/usr/bin/python3", ["-c", py], {
            cwd: join(__dirname, "../../clients/python"),
            input: JSON.stringify(doc),
            encoding: "utf8",
            timeout: 30_000,
        });
        expect(r.stderr).toBe("");
        expect(r.stdout.trim()).toMatch(/^(b')?2'?$/);
    });

    it("refuses a replica with the wrong replication password", async () => {
        const dir = join(work, "intruder");
        mkdirSync(dir);
        writeNodeFiles(local, "dev-c", dir);
        const port = await probablyFreePort();
        const conf = join(dir, "etc", "redis.conf");
        const text = localize(readFileSync(conf, "utf8"), dir, { self: port, master: master.port }).replace(
            /^masterauth .*$/m,
            `masterauth ${"z".repeat(32)}`,
        );
        writeFileSync(conf, text);
        children.push(spawn("redis-server", [conf], { stdio: "ignore" }));
        let log = "";
        for (let i = 0; i < 100 && !/MASTER/.test(log); i++) {
            await new Promise((r) => setTimeout(r, 100));
            try {
                log = readFileSync(join(dir, "logfile"), "utf8");
            } catch {
                log = "";
            }
            if (!/Unable to AUTH to MASTER/.test(log)) log = "";
        }
        expect(log).toMatch(/Unable to AUTH to MASTER: -WRONGPASS invalid username-password pair/);
    });
});
