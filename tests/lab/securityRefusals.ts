/**
 * Issue 13's refusals in the lab: the dev stack (TLS and ACL users, the default) booted from its exact user-data, and
 * every refusal asserted with the server's own error, from where the lab's clients run (the host, on the lab network,
 * as the drill's writers) or, for the replica, from inside a node. Each refusal has its accepted counterpart beside it
 * (the right user, the lab's own CA, the app user's allowed commands), so a refusal cannot pass because nothing works.
 *
 * Run by tests/lab/hosts.e2e.test.ts on the dev stack it boots (one boot for both: the suite's time budget), first,
 * while the preferred master is still the master.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PATHS } from "../../cloud-init";
import { labNode } from "../../lab/labCluster";
import { execInNode } from "../../lab/nodes";
import { labLogin, type LabStack } from "../../lab/stack";

/** Where the rendered redis.conf logs (cloud-init/redisConf.ts). */
const REDIS_LOG = "/var/log/redis/redis-server.log";

/** The refusals, as a describe block of the caller's lab suite; `stack` gives the dev stack its beforeAll booted. */
export function securityRefusals(stack: () => LabStack): void {
    describe("TLS and ACL refusals", () => {
        let s: LabStack;
        let work: string;
        let caFile: string;
        let master: { name: string; address: string };

        beforeAll(() => {
            s = stack();
            const name = s.topology.preferredMaster;
            master = { name, address: labNode(s, name).address };
            work = mkdtempSync(path.join(tmpdir(), "rhl-security-"));
            caFile = path.join(work, "ca.crt");
            writeFileSync(caFile, s.credentials.caCert ?? "");
        });

        afterAll(() => {
            rmSync(work, { recursive: true, force: true });
        });

        it("runs the dev stack with TLS and ACL users by default", () => {
            expect(s.topology.security.tls).toBe(true);
            expect(s.credentials.caCert).toMatch(/^-----BEGIN CERTIFICATE-----/);
            expect(Object.keys(s.credentials.users ?? {}).sort()).toEqual([
                "admin",
                "app",
                "exporter",
                "replication",
                "sentinel",
            ]);
        });

        /** The server's log on `node` from byte `from` on (what a connection made after `from` caused). */
        async function logSince(node: string, file: string, from: number): Promise<string> {
            return (await execInNode(node, ["tail", "-c", `+${String(from + 1)}`, file])).stdout;
        }
        async function logSize(node: string, file: string): Promise<number> {
            return Number((await execInNode(node, ["stat", "-c", "%s", file])).stdout.trim());
        }
        /** The server's log once it names `pattern` (it is written as the handshake fails, a moment after the client). */
        async function logMatching(node: string, file: string, from: number, pattern: RegExp): Promise<string> {
            let text = "";
            for (let i = 0; i < 30 && !pattern.test(text); i++) {
                text = await logSince(node, file, from);
                if (!pattern.test(text)) await new Promise((r) => setTimeout(r, 100));
            }
            return text;
        }

        /** redis-cli on the host (the lab's client side): no password in argv, REDISCLI_AUTH only. */
        function hostCli(
            port: number,
            args: readonly string[],
            opts: { tls?: { cert?: string; key?: string }; user?: string; password?: string } = {},
        ): SpawnSyncReturns<string> {
            const tls = opts.tls
                ? [
                      "--tls",
                      "--cacert",
                      caFile,
                      ...(opts.tls.cert ? ["--cert", opts.tls.cert, "--key", opts.tls.key ?? ""] : []),
                  ]
                : [];
            return spawnSync(
                "redis-cli",
                [
                    "--no-auth-warning",
                    ...tls,
                    ...(opts.user ? ["--user", opts.user] : []),
                    "-h",
                    master.address,
                    "-p",
                    String(port),
                    ...args,
                ],
                {
                    encoding: "utf8",
                    timeout: 10_000,
                    env: { ...process.env, ...(opts.password ? { REDISCLI_AUTH: opts.password } : {}) },
                },
            );
        }

        it.each([
            ["Redis", "redis", REDIS_LOG],
            ["Sentinel", "sentinel", "/var/log/redis/redis-sentinel.log"],
        ] as const)("%s refuses a client without TLS (handshake error in its log)", async (_what, service, log) => {
            const port = s.topology.ports[service];
            const app = labLogin(s, service, "app");
            // The same client over TLS as app is answered.
            expect(hostCli(port, ["PING"], { tls: {}, user: "app", password: app.password }).stdout.trim()).toBe(
                "PONG",
            );
            const from = await logSize(master.name, log);
            const plain = hostCli(port, ["PING"], { user: "app", password: app.password });
            expect(plain.stdout).not.toContain("PONG");
            expect(await logMatching(master.name, log, from, /Error accepting a client connection/)).toMatch(
                /Error accepting a client connection: .*(wrong version number|http request|record layer)/i,
            );
        });

        it("refuses a client certificate from another CA (tls-auth-clients optional: a certificate presented is verified)", async () => {
            expect(s.topology.security.tlsAuthClients).toBe("optional");
            const ssl = (args: string[]) => {
                const r = spawnSync("openssl", args, { cwd: work, encoding: "utf8" });
                if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
            };
            const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
            ssl([
                "req",
                "-x509",
                ...ec,
                "-keyout",
                "other-ca.key",
                "-out",
                "other-ca.crt",
                "-subj",
                "/CN=other",
                "-days",
                "2",
            ]);
            ssl(["req", "-new", ...ec, "-keyout", "intruder.key", "-out", "intruder.csr", "-subj", "/CN=intruder"]);
            ssl(
                ["x509", "-req", "-in", "intruder.csr", "-CA", "other-ca.crt", "-CAkey", "other-ca.key"].concat([
                    "-set_serial",
                    "7",
                    "-out",
                    "intruder.crt",
                ]),
            );
            const app = labLogin(s, "redis", "app");
            const from = await logSize(master.name, REDIS_LOG);
            const r = hostCli(s.topology.ports.redis, ["PING"], {
                tls: { cert: path.join(work, "intruder.crt"), key: path.join(work, "intruder.key") },
                user: "app",
                password: app.password,
            });
            expect(r.stdout).not.toContain("PONG");
            expect(await logMatching(master.name, REDIS_LOG, from, /Error accepting a client connection/)).toMatch(
                /Error accepting a client connection: .*(certificate verify failed|unknown ca|self.signed)/i,
            );
        });

        /** One command over TLS from the host as `user` (its own password unless `password`): stdout, stderr. */
        function asUser(user: "app" | "admin" | "nobody", args: readonly string[], password?: string) {
            const own = labLogin(s, "redis", user === "admin" ? "admin" : "app").password;
            const r = hostCli(s.topology.ports.redis, args, { tls: {}, user, password: password ?? own });
            return { out: r.stdout.trim(), err: r.stderr.trim() };
        }

        it("refuses an unknown ACL user, a wrong password and the default user; the app user is let in", () => {
            expect(asUser("app", ["PING"]).out).toBe("PONG");
            // redis-cli reports the refused AUTH on stderr, then runs the command unauthenticated.
            const unknown = asUser("nobody", ["PING"]);
            expect(unknown.err).toMatch(/AUTH failed: WRONGPASS invalid username-password pair/);
            expect(unknown.out).toMatch(/^NOAUTH Authentication required/);
            expect(asUser("app", ["PING"], "x".repeat(32)).err).toMatch(
                /AUTH failed: WRONGPASS invalid username-password pair/,
            );
            expect(hostCli(s.topology.ports.redis, ["PING"], { tls: {} }).stdout).toMatch(
                /^NOAUTH Authentication required/,
            );
        });

        it.each([
            [["FLUSHALL"], "flushall"],
            [["CONFIG", "SET", "maxmemory", "1"], "config|set"],
            [["KEYS", "*"], "keys"],
        ] as const)("refuses the app user %j (NOPERM)", (args, command) => {
            expect(asUser("app", args).out).toBe(`NOPERM this user has no permissions to run the '${command}' command`);
        });

        it("refuses the app user DEBUG SLEEP (Redis's enable-debug-command, and the ACL); keeps SET, INFO and ROLE", () => {
            expect(asUser("app", ["DEBUG", "SLEEP", "1"]).out).toMatch(/^ERR DEBUG command not allowed/);
            expect(asUser("admin", ["ACL", "DRYRUN", "app", "DEBUG", "SLEEP", "1"]).out).toContain(
                "This user has no permissions to run the 'debug' command",
            );
            expect(asUser("app", ["SET", "security:probe", "1"]).out).toBe("OK");
            expect(asUser("app", ["INFO", "server"]).out).toContain("redis_version:");
            expect(asUser("app", ["ROLE"]).out).toMatch(/^master/);
        });

        it("refuses a replica with the wrong replication password (from inside a node, with that node's certificate)", async () => {
            const node = s.topology.nodes.find((n) => n.runsRedis && n.name !== master.name)?.name ?? "";
            // A second redis-server inside the node, on loopback only, replicating from the master over TLS as the
            // replication user with a wrong password; its log is its stdout. It never gets past AUTH, so the master never
            // lists it and Sentinel never learns of it.
            const log = "/tmp/redis-ha-intruder.log";
            const script = [
                `timeout 8 redis-server --port 0 --bind 127.0.0.1 --tls-port 16399 --tls-cert-file ${PATHS.tlsCert}`,
                `--tls-key-file ${PATHS.tlsKey} --tls-ca-cert-file ${PATHS.tlsCa} --tls-replication yes --dir /tmp --save ""`,
                `--appendonly no --dbfilename intruder.rdb --replicaof ${master.address} ${String(s.topology.ports.redis)}`,
                `--masteruser replication --masterauth "$(printf z%.0s {1..32})" >${log} 2>&1 & pid=$!;`,
                // Its first answer from the master ends it (the timeout is the bound).
                `for _ in $(seq 80); do grep -qE "Unable to AUTH to MASTER|Master accepted|Full resync" ${log} && break;`,
                `sleep 0.1; done; kill $pid; wait $pid; cat ${log}; rm -f ${log}`,
            ].join(" ");
            const r = await execInNode(node, ["bash", "-c", script], { allowFailure: true, timeoutMs: 20_000 });
            expect(r.stdout).toMatch(/Unable to AUTH to MASTER: -WRONGPASS invalid username-password pair/);
        });
    });
}
