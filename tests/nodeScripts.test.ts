/**
 * The node scripts (cloud-init/scripts) run by bash on this machine, against a stub `redis-cli` on PATH that answers
 * from files, so each script's logic is tested without a cluster: the agreed-master rule, the checks' verdicts, the
 * bounded redis-cli calls, the paths read from the rendered paths.sh. The lab tier runs the same scripts for real.
 * Nothing here opens a socket: the stub answers every redis-cli call, and every address is on loopback.
 */
import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import { createHash } from "node:crypto";
import {
    chmodSync,
    copyFileSync,
    existsSync,
    mkdirSync,
    utimesSync,
    mkdtempSync,
    readdirSync,
    readFileSync,
    renameSync,
    rmSync,
    statSync,
    writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
    FIRST_MASTER_SCRIPTS,
    NODE_SCRIPTS,
    PATHS,
    PATHS_LIB,
    renderNodeEnv,
    renderPathsLib,
    type NodePaths,
} from "../cloud-init";
import { readStackConfig } from "../engine/stackFile";
import { topologyFromConfig, type Topology } from "../topology";
import { describeTier, firstMissing, itTier } from "./tiers";

const SCRIPTS_DIR = join(__dirname, "..", "cloud-init", "scripts");
const secrets = { redisPassword: "redis-pw-0123456789", sentinelPassword: "sentinel-pw-0123456789" };
/** tls (the default): the scripts log in as admin with the password from its file. */
const ADMIN_PASSWORD = "admin-pw-0123456789";
const dev = topologyFromConfig(readStackConfig("dev"), "redis-ha", "dev");
// Loopback addresses only: even a stub that failed to shadow the real redis-cli would send nothing off this machine.
const ADDRESSES = { "dev-a": "127.0.0.11", "dev-b": "127.0.0.12", "dev-c": "127.0.0.13" };
const at = (node: keyof typeof ADDRESSES, port: number) => `${ADDRESSES[node]}:${port}`;
const REDIS = dev.ports.redis;
const SENTINEL = dev.ports.sentinel;
const MASTER = dev.masterName;
/** Where a script reaches its own node's Redis and Sentinel. */
const LOCAL_REDIS = `127.0.0.1:${REDIS}`;
const LOCAL_SENTINEL = `127.0.0.1:${SENTINEL}`;
const FENCED = dev.dr.fencedMinReplicas;
/** CLIENT LIST lines of Redis 7.0: a client blocked in WAIT, and an idle one. */
const BLOCKED_WAIT =
    "id=3 addr=127.0.0.1:37974 laddr=127.0.0.1:6379 fd=8 name= age=0 idle=0 flags=b db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=20474 argv-mem=9 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22305 events=r cmd=wait user=app redir=-1 resp=2";
const IDLE_CLIENT =
    "id=4 addr=127.0.0.1:37988 laddr=127.0.0.1:6379 fd=9 name= age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=0 rbs=16384 rbp=16384 obl=0 oll=0 omem=0 tot-mem=37658 events=r cmd=wait user=app redir=-1 resp=2";

/** redis-cli's stand-in: the reply file for "host:port ARGS", a hang (until `timeout` kills it), or "refused". */
const STUB = `#!/bin/bash
host=127.0.0.1 port=6379 args=()
while [ $# -gt 0 ]; do
    case "$1" in
    -h) host=$2; shift 2 ;;
    -p) port=$2; shift 2 ;;
    --raw | --no-auth-warning | --tls) shift ;;
    --cacert | --cert | --key | --user) shift 2 ;;
    *) args+=("$1"); shift ;;
    esac
done
# answer ARGS...: the reply to one command (exec: a hang is killed with the process that \`timeout\` signals, which in
# a lib.sh session is this one).
answer() {
    local key="$host:$port $*" f
    # \`PING <token>\`: the end marker of a lib.sh session's call, answered by every node (not recorded).
    if [ $# -eq 2 ] && [ "$1" = PING ]; then echo "$2"; return 0; fi
    printf '%s\\t%s\\n' "$key" "\${REDISCLI_AUTH:-}" >>"$STUB_DIR/calls"
    f="$STUB_DIR/replies/$(printf '%s' "$key" | md5sum | cut -c1-32)"
    [ ! -e "$f.hang" ] || exec sleep 600
    if [ -e "$f.sh" ]; then bash "$f.sh"; return; fi
    if [ -e "$f" ]; then cat "$f"; return; fi
    # A reply to the command whatever its arguments (a key the script makes up, as the drill's probe).
    f="$STUB_DIR/replies/$(printf '%s' "$host:$port $1" | md5sum | cut -c1-32).command.sh"
    if [ -e "$f" ]; then bash "$f"; return; fi
    echo "Could not connect to Redis at $host:$port: Connection refused" >&2
    return 1
}
# No command in argv: redis-cli runs one command per line of stdin, on one connection, replies in order.
if [ \${#args[@]} -eq 0 ]; then
    rc=0
    while read -ra words; do
        [ \${#words[@]} -eq 0 ] || answer "\${words[@]}" </dev/null || rc=1
    done
    exit $rc
fi
answer "\${args[@]}"
`;

/** A node's script directory in a temp dir: the shipped scripts, a rendered paths.sh and node.env, the stub. */
class FakeNode {
    readonly dir = mkdtempSync(join(tmpdir(), "rha-node-scripts-"));
    readonly paths: NodePaths;

    constructor(topology: Topology = dev, node = "dev-a", addresses: Readonly<Record<string, string>> = ADDRESSES) {
        const bin = join(this.dir, "bin");
        for (const d of ["bin", "stub", "replies", "state", "secrets"]) mkdirSync(join(this.dir, d));
        for (const s of NODE_SCRIPTS) copyFileSync(join(SCRIPTS_DIR, s), join(bin, s));
        this.paths = {
            ...PATHS,
            nodeEnv: join(this.dir, "node.env"),
            redisConf: join(this.dir, "redis.conf"),
            sentinelConf: join(this.dir, "sentinel.conf"),
            scriptsDir: bin,
            stateDir: join(this.dir, "state"),
            redisState: join(this.dir, "state", "redis-server.state"),
            lastHandover: join(this.dir, "state", "last-handover"),
            handoverFence: join(this.dir, "state", "handover-fence"),
            crashHandover: join(this.dir, "state", "crash-handover"),
            scriptsReleased: join(this.dir, "state", "scripts-released"),
            failoverLock: join(this.dir, "state", "failover.lock"),
            secretsDir: join(this.dir, "secrets"),
        };
        writeFileSync(join(this.paths.secretsDir, "admin"), `${ADMIN_PASSWORD}\n`);
        writeFileSync(join(bin, PATHS_LIB), renderPathsLib(this.paths));
        writeFileSync(this.paths.nodeEnv, renderNodeEnv({ topology, node, addresses, secrets }));
        writeFileSync(this.paths.redisConf, "port 6379\nreplicaof 127.0.0.99 6379\n");
        writeFileSync(join(this.dir, "stub", "redis-cli"), STUB);
        chmodSync(join(this.dir, "stub", "redis-cli"), 0o755);
    }

    reply(endpoint: string, args: readonly (string | number)[], text: string): this {
        const key = `${endpoint} ${args.join(" ")}`;
        writeFileSync(join(this.dir, "replies", createHash("md5").update(key).digest("hex")), text);
        return this;
    }

    hang(endpoint: string, args: readonly (string | number)[]): this {
        const key = `${endpoint} ${args.join(" ")}`;
        writeFileSync(join(this.dir, "replies", `${createHash("md5").update(key).digest("hex")}.hang`), "");
        return this;
    }

    /** A reply computed when asked (a bash script run with STUB_DIR set), e.g. one that changes after a call. */
    replyScript(endpoint: string, args: readonly (string | number)[], script: string): this {
        const key = `${endpoint} ${args.join(" ")}`;
        writeFileSync(join(this.dir, "replies", `${createHash("md5").update(key).digest("hex")}.sh`), script);
        return this;
    }

    /** A reply (a bash script, as replyScript) to `command` at `endpoint` whatever its arguments, when none is exact. */
    replyCommand(endpoint: string, command: string, script: string): this {
        const key = `${endpoint} ${command}`;
        writeFileSync(join(this.dir, "replies", `${createHash("md5").update(key).digest("hex")}.command.sh`), script);
        return this;
    }

    /** Every Sentinel in `views` names that master; a Sentinel left out does not answer. */
    views(views: Partial<Record<keyof typeof ADDRESSES, string>>): this {
        for (const [node, master] of Object.entries(views) as [keyof typeof ADDRESSES, string][]) {
            const [host, port] = master.split(":");
            this.reply(at(node, SENTINEL), ["SENTINEL", "get-master-addr-by-name", MASTER], `${host}\n${port}\n`);
            this.reply(
                at(node, SENTINEL),
                ["SENTINEL", "MASTER", MASTER],
                `name\n${MASTER}\nip\n${host}\nport\n${port}\nflags\nmaster\n`,
            );
        }
        return this;
    }

    /** The calls the stub saw, as "host:port ARGS" and the password it got in the environment. */
    calls(): { call: string; auth: string }[] {
        const file = join(this.dir, "calls");
        if (!existsSync(file)) return [];
        return readFileSync(file, "utf8")
            .trim()
            .split("\n")
            .map((l) => {
                const [call = "", auth = ""] = l.split("\t");
                return { call, auth };
            });
    }

    /** The Sentinel calls (SENTINEL FAILOVER) the stub saw, as "host:port". */
    failoverCalls(): string[] {
        return this.calls()
            .map((c) => c.call)
            .filter((c) => c.endsWith(`SENTINEL FAILOVER ${MASTER}`))
            .map((c) => c.split(" ")[0]);
    }

    run(command: string, args: readonly string[] = [], opts: { input?: string; env?: Record<string, string> } = {}) {
        const started = Date.now();
        const r = spawnSync("bash", [join(this.paths.scriptsDir, command), ...args], {
            encoding: "utf8",
            input: opts.input ?? "",
            timeout: 60_000,
            env: {
                PATH: `${join(this.dir, "stub")}:${process.env.PATH ?? "/usr/bin:/bin"}`,
                STUB_DIR: this.dir,
                ...opts.env,
            },
        });
        return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
    }

    /** A lib.sh function, called the way the scripts call it. */
    lib(fn: string) {
        const r = spawnSync("bash", ["-c", `. "$1/lib.sh" && ${fn}`, "lib", this.paths.scriptsDir], {
            encoding: "utf8",
            env: { PATH: `${join(this.dir, "stub")}:${process.env.PATH ?? ""}`, STUB_DIR: this.dir },
        });
        return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    }

    remove(): void {
        rmSync(this.dir, { recursive: true, force: true });
    }
}

const hasBashTools = firstMissing([
    [spawnSync("bash", ["-c", "command -v timeout md5sum awk paste"]).status === 0, "bash, timeout, md5sum, awk"],
]);
const describeScripts = describeTier("node scripts under bash", hasBashTools);

describeScripts("node scripts", () => {
    const nodes: FakeNode[] = [];
    const node = (topology?: Topology) => {
        const n = new FakeNode(topology);
        nodes.push(n);
        return n;
    };
    afterAll(() => {
        for (const n of nodes) n.remove();
    });

    describe("lib.sh agreed_master: a majority of the configured Sentinels", () => {
        const m = at("dev-a", REDIS);
        const other = at("dev-b", REDIS);
        it.each([
            ["every Sentinel names it", { "dev-a": m, "dev-b": m, "dev-c": m }, m],
            ["two of three name it, one does not answer", { "dev-a": m, "dev-b": m }, m],
            ["two of three name it, one names another", { "dev-a": m, "dev-b": m, "dev-c": other }, m],
            ["one names it, one another, one does not answer", { "dev-a": m, "dev-b": other }, ""],
            ["only one Sentinel answers", { "dev-c": m }, ""],
        ])("%s", (_what, views, want) => {
            // One-off calls (the scripts that run once) and kept sessions (redis-fence's and redis-homing's rounds)
            // apply the same rule.
            const once = node().views(views).lib("agreed_master");
            expect({ code: once.code, out: once.stdout.trim() }).toEqual({ code: 0, out: want });
            const kept = node().views(views).lib(`agreed_master_into m 2000; echo "$m"; session_close_all`);
            expect({ code: kept.code, out: kept.stdout.trim() }).toEqual({ code: 0, out: want });
        });

        // A signal sent the way systemd (control-group), a terminal's Ctrl-C or its hang-up send it: to the whole group.
        it.each([
            ["SIGTERM", 143],
            ["SIGINT", 130],
            ["SIGHUP", 129],
        ] as const)(
            "lib.sh: a script ended by %s runs its EXIT trap (what it holds is given back)",
            async (signal, code) => {
                const n = node();
                const child = spawn(
                    "bash",
                    [
                        "-c",
                        `. "$1/lib.sh"; trap 'echo given back' EXIT; echo started; sleep 30; echo not stopped`,
                        "s",
                        n.paths.scriptsDir,
                    ],
                    { detached: true, stdio: ["ignore", "pipe", "ignore"] },
                );
                let stdout = "";
                child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
                const exited = new Promise<number | null>((r) =>
                    child.once("exit", (status) => {
                        r(status);
                    }),
                );
                try {
                    for (let i = 0; i < 100 && !stdout.includes("started"); i++)
                        await new Promise((r) => setTimeout(r, 50));
                    process.kill(-(child.pid ?? 0), signal);
                    expect(await exited).toBe(code);
                    expect(stdout).toBe("started\ngiven back\n");
                } finally {
                    if (child.exitCode === null) process.kill(-(child.pid ?? 0), "SIGKILL");
                }
            },
        );

        it("lib.sh sessions: replies come whole, call after call, and a long session's reply file is emptied past 1 MB", () => {
            const n = node();
            const big = "x".repeat(200_000);
            n.reply(m, ["GET", "big"], `${big}\n`);
            const r = n.lib(
                `session_open a ${m} redis; ok=0; for i in $(seq 12); do ` +
                    `session_call_into a 5000 v "GET big" && [ "\${v%$'\\n'}" = "$(printf 'x%.0s' $(seq 200000))" ] && ok=$((ok + 1)); ` +
                    `done; echo "$ok $(stat -c %s "$_session_dir/a.out")"; session_close_all`,
            );
            const [ok, size] = r.stdout.trim().split(" ").map(Number);
            expect(ok).toBe(12);
            // 12 replies of 200 kB read: without the rewind the file would hold 2.4 MB.
            expect(size).toBeLessThan(1_100_000);
        });

        it("asks every Sentinel at once: each answers only once all three have been asked", () => {
            const n = node();
            const [host, port] = m.split(":");
            for (const s of ["dev-a", "dev-b", "dev-c"] as const) {
                // Asked one after another, the first would give up before the others were asked: no majority.
                n.replyScript(
                    at(s, SENTINEL),
                    ["SENTINEL", "get-master-addr-by-name", MASTER],
                    `touch "$STUB_DIR/asked.${s}"
for _ in $(seq 40); do
    [ "$(ls "$STUB_DIR"/asked.* | wc -l)" -lt 3 ] || { printf '%s\\n%s\\n' ${host} ${port}; exit 0; }
    sleep 0.05
done
exit 1
`,
                );
            }
            const r = n.lib("sentinel_views");
            expect(r.stdout.trim().split("\n")).toEqual(
                (["dev-a", "dev-b", "dev-c"] as const).map((s) => `${at(s, SENTINEL)} ${m}`),
            );
        });

        it("passes the admin password (tls) in the environment, never in argv", () => {
            const n = node().views({ "dev-a": m, "dev-b": m, "dev-c": m });
            n.lib("agreed_master");
            const calls = n.calls();
            expect(calls).toHaveLength(3);
            for (const c of calls) {
                expect(c.auth).toBe(ADMIN_PASSWORD);
                expect(c.call).not.toContain(ADMIN_PASSWORD);
            }
        });
    });

    describe("check-quorum", () => {
        const master = at("dev-a", REDIS);
        const healthy = (n: FakeNode) =>
            n
                .views({ "dev-a": master, "dev-b": master, "dev-c": master })
                .reply(LOCAL_SENTINEL, ["SENTINEL", "CKQUORUM", MASTER], "OK 3 usable Sentinels\n")
                .reply(LOCAL_SENTINEL, ["SENTINEL", "REPLICAS", MASTER], "flags\nslave\nflags\nslave\n")
                .reply(LOCAL_SENTINEL, ["SENTINEL", "SENTINELS", MASTER], "flags\nsentinel\nflags\nsentinel\n");

        it("passes when CKQUORUM is OK, every Sentinel names the master and every peer is known", () => {
            const r = healthy(node()).run("check-quorum", ["0"]);
            expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
                code: 0,
                stdout: `OK dev-a: OK 3 usable Sentinels; all Sentinels name ${master}; 2 replicas and 2 other Sentinels known\n`,
                stderr: "",
            });
        });

        it("fails with each Sentinel's view when one Sentinel does not answer (stricter than the majority rule)", () => {
            const n = healthy(node());
            rmSync(join(n.dir, "replies"), { recursive: true });
            mkdirSync(join(n.dir, "replies"));
            const r = n
                .views({ "dev-a": master, "dev-b": master })
                .reply(LOCAL_SENTINEL, ["SENTINEL", "CKQUORUM", MASTER], "OK 3 usable Sentinels\n")
                .run("check-quorum", ["0"]);
            expect(r.code).toBe(1);
            expect(r.stdout.split("\n")).toEqual(
                expect.arrayContaining([
                    "FAIL dev-a: quorum check failed",
                    `    ${at("dev-a", SENTINEL)} ${master}`,
                    `    ${at("dev-b", SENTINEL)} ${master}`,
                    `    ${at("dev-c", SENTINEL)} unreachable`,
                ]),
            );
        });
    });

    describe("check-node", () => {
        /** A master with two replicas lagging `lags` seconds, and healthy persistence. */
        const master = (n: FakeNode, lags: number[]) =>
            n
                .reply(
                    LOCAL_REDIS,
                    ["INFO", "replication"],
                    [
                        "# Replication",
                        "role:master",
                        `connected_slaves:${lags.length}`,
                        ...lags.map(
                            (l, i) => `slave${i}:ip=127.0.0.1${i + 2},port=6379,state=online,offset=10,lag=${l}`,
                        ),
                        "",
                    ].join("\r\n"),
                )
                .reply(
                    LOCAL_REDIS,
                    ["INFO", "persistence"],
                    "loading:0\r\nrdb_last_bgsave_status:ok\r\naof_enabled:1\r\naof_last_write_status:ok\r\n",
                );

        it("passes a master whose replicas are within min-replicas-max-lag", () => {
            const r = master(node(), [0, dev.redis.minReplicasMaxLagSec]).run("check-node", ["0"]);
            expect(r.stdout).toBe(
                `OK dev-a: role=master aof=ok replicas=2 lag=[0,${dev.redis.minReplicasMaxLagSec}]\n`,
            );
            expect(r.code).toBe(0);
        });

        it("fails a replica lagging past the stack's min-replicas-max-lag, not a fixed 10 s", () => {
            const lag = dev.redis.minReplicasMaxLagSec + 1;
            const r = master(node(), [0, lag]).run("check-node", ["0"]);
            expect(r.code).toBe(1);
            expect(r.stdout).toBe(
                `FAIL dev-a: a replica lags ${lag}s (min-replicas-max-lag ${dev.redis.minReplicasMaxLagSec}s)\n`,
            );
            const relaxed = topologyFromConfig(
                { ...readStackConfig("dev"), "redis-ha:minReplicasMaxLagSec": String(lag + 5) },
                "redis-ha",
                "dev",
            );
            expect(master(node(relaxed), [0, lag]).run("check-node", ["0"]).code).toBe(0);
        });
    });

    describe("apply-settings", () => {
        it("applies each line, rewrites the config, and updates node.env where paths.sh says it is", () => {
            const n = node()
                .reply(LOCAL_REDIS, ["CONFIG", "SET", "maxmemory", "1000"], "OK\n")
                .reply(LOCAL_REDIS, ["CONFIG", "REWRITE"], "OK\n")
                .reply(LOCAL_SENTINEL, ["SENTINEL", "SET", MASTER, "quorum", "2"], "OK\n");
            // As after an earlier rollout: the loops run the release on disk.
            mkdirSync(n.paths.stateDir, { recursive: true });
            writeFileSync(n.paths.scriptsReleased, "");
            const releasedAt = statSync(n.paths.scriptsReleased).mtimeMs;
            const r = n.run("apply-settings", [], {
                input: "redis maxmemory 1000\nsentinel quorum 2\nenv SENTINEL_QUORUM 2\n",
            });
            expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
            expect(r.stdout).toBe("applied redis maxmemory\napplied sentinel quorum\napplied env SENTINEL_QUORUM\n");
            expect(n.calls().map((c) => c.call)).toEqual([
                `${LOCAL_REDIS} CONFIG SET maxmemory 1000`,
                `${LOCAL_SENTINEL} SENTINEL SET ${MASTER} quorum 2`,
                `${LOCAL_REDIS} CONFIG REWRITE`,
            ]);
            expect(readFileSync(n.paths.nodeEnv, "utf8")).toMatch(/^SENTINEL_QUORUM='2'$/m);
            // node.env already said so: unchanged, and the loops (which read it once) are not told of anything.
            expect(statSync(n.paths.scriptsReleased).mtimeMs).toBe(releasedAt);
            // A value that changes: the loops are told to start over with it.
            const changed = n.run("apply-settings", [], { input: "env FAILBACK_HOLD_DOWN_SEC 45\n" });
            expect({ code: changed.code, stdout: changed.stdout }).toEqual({
                code: 0,
                stdout:
                    "applied env FAILBACK_HOLD_DOWN_SEC\n" +
                    "scripts or node.env changed: redis-fence and redis-homing take them after their current round\n",
            });
            expect(readFileSync(n.paths.nodeEnv, "utf8")).toMatch(/^FAILBACK_HOLD_DOWN_SEC='45'$/m);
            expect(statSync(n.paths.scriptsReleased).mtimeMs).toBeGreaterThan(releasedAt);
        });

        it("gives up on a hung Redis after RCLI_TIMEOUT, naming the setting, instead of stalling the rollout", () => {
            const n = node().hang(LOCAL_REDIS, ["CONFIG", "SET", "maxmemory", "1000"]);
            const r = n.run("apply-settings", [], { input: "redis maxmemory 1000\n", env: { RCLI_TIMEOUT: "1" } });
            expect(r.code).toBe(1);
            expect(r.stderr).toBe("apply-settings: CONFIG SET maxmemory 1000 failed on dev-a: no answer within 1s\n");
            process.stdout.write(`apply-settings on a hung node returned after ${r.ms} ms (RCLI_TIMEOUT=1)\n`);
        });

        it("refuses an env line that could break node.env's quoting", () => {
            const r = node().run("apply-settings", [], { input: "env BAD_VALUE it's\n" });
            expect({ code: r.code, stderr: r.stderr }).toEqual({
                code: 2,
                stderr: "apply-settings: bad env line 'BAD_VALUE'\n",
            });
        });
    });

    describe("redis-start-guard", () => {
        const isRoot = process.getuid?.() === 0;
        const hasRedisUser = spawnSync("id", ["redis"]).status === 0;
        const itGuard = itTier(
            "redis-start-guard (chowns redis.conf)",
            firstMissing([
                [isRoot, "needs root"],
                [hasRedisUser, "needs the redis user (apt-get install redis-server)"],
            ]),
        );

        itGuard(
            "starts a node as a replica of the master a Sentinel majority names, at the paths paths.sh gives",
            () => {
                const other = at("dev-b", REDIS);
                const n = node().views({ "dev-a": other, "dev-b": other });
                const r = n.run("redis-start-guard");
                expect(r.code).toBe(0);
                expect(r.stderr).toBe(
                    `redis-start-guard: Sentinels name ${other.replace(":", " ")} as master; starting as its replica\n`,
                );
                expect(readFileSync(n.paths.redisConf, "utf8")).toBe(
                    `port 6379\nreplicaof ${other.replace(":", " ")}\n`,
                );
                expect(readFileSync(n.paths.redisState, "utf8")).toBe("running\n");
            },
        );

        itGuard("starts as configured when no Sentinel majority names a master", () => {
            const n = node().views({ "dev-c": at("dev-b", REDIS) });
            const r = n.run("redis-start-guard");
            expect(r.code).toBe(0);
            expect(r.stderr).toMatch(/no Sentinel majority names a master; starting with the configured role/);
            expect(readFileSync(n.paths.redisConf, "utf8")).toBe("port 6379\nreplicaof 127.0.0.99 6379\n");
        });

        /** This node is the master by a Sentinel majority's word, and last ended as `state` says. */
        const selfMaster = (state: string) => {
            const self = at("dev-a", REDIS);
            const n = node().views({ "dev-a": self, "dev-b": self, "dev-c": self });
            writeFileSync(n.paths.redisState, `${state}\n`);
            // The wait bound is a live setting in node.env; a short one keeps the test fast.
            writeFileSync(n.paths.nodeEnv, `${readFileSync(n.paths.nodeEnv, "utf8")}START_GUARD_WAIT_SEC='1'\n`);
            return n;
        };

        itGuard("starts the master as master after a clean stop", () => {
            const n = selfMaster("clean");
            const r = n.run("redis-start-guard");
            expect(r.code).toBe(0);
            expect(r.stderr).toMatch(/this node is the master and stopped cleanly \(clean\); starting as master/);
            expect(readFileSync(n.paths.redisConf, "utf8")).toBe("port 6379\n");
        });

        itGuard("holds a crashed master back for a failover, then starts it with local data if none came", () => {
            const n = selfMaster("crashed:signal:killed:9");
            const r = n.run("redis-start-guard");
            expect(r.code).toBe(0);
            expect(r.stderr).toMatch(/stopped uncleanly or is being failed over \(crashed:signal:killed:9\)/);
            expect(r.stderr).toMatch(/no failover within 1s \(no promotable replica\?\); starting as master/);
            expect(r.ms).toBeGreaterThanOrEqual(1_000);
        });

        /** Every Sentinel names dev-a until the bash `condition` holds (on the stub's calls), then dev-b. */
        const promoteWhen = (n: FakeNode, condition: string) => {
            const self = at("dev-a", REDIS);
            const next = at("dev-b", REDIS);
            for (const s of ["dev-a", "dev-b", "dev-c"] as const) {
                n.replyScript(
                    at(s, SENTINEL),
                    ["SENTINEL", "get-master-addr-by-name", MASTER],
                    `if ${condition}; then printf '%s\\n' ${next.replace(":", " ")}; ` +
                        `else printf '%s\\n' ${self.replace(":", " ")}; fi\n`,
                );
            }
            return next;
        };
        /** After FAILOVER reached any Sentinel, every Sentinel names dev-b (what a promotion looks like). */
        const promoteAfterFailover = (n: FakeNode) => promoteWhen(n, `grep -q 'SENTINEL FAILOVER' "$STUB_DIR/calls"`);
        /** From the second round of views on (three calls a round), every Sentinel names dev-b. */
        const promoteAfterFirstLook = (n: FakeNode) =>
            promoteWhen(n, `[ "$(grep -c 'get-master-addr-by-name' "$STUB_DIR/calls")" -gt 3 ]`);

        itGuard(
            "crash handover: asks this node's own Sentinel for a failover at once and starts as the new replica",
            () => {
                const n = selfMaster("crashed:signal:killed:9").reply(
                    LOCAL_SENTINEL,
                    ["SENTINEL", "FAILOVER", MASTER],
                    "OK\n",
                );
                const next = promoteAfterFailover(n);
                const r = n.run("redis-start-guard");
                expect(r.code).toBe(0);
                expect(n.failoverCalls()).toEqual([LOCAL_SENTINEL]);
                expect(r.stderr).toMatch(/crash handover: Sentinel 127\.0\.0\.1:\d+ answered 'OK'/);
                expect(r.stderr).toContain(
                    `Sentinels promoted ${next.replace(":", " ")} (crash handover); starting as its replica`,
                );
                expect(readFileSync(n.paths.redisConf, "utf8")).toBe(
                    `port 6379\nreplicaof ${next.replace(":", " ")}\n`,
                );
                expect(readFileSync(n.paths.lastHandover, "utf8")).toMatch(new RegExp(`^crash \\d+ ${next}\n$`));
                // The promotion is looked for every 0.1 s, not every second (the time itself is the drill's to print).
                expect(r.stderr).toContain("looking every 0.1s");
            },
        );

        itGuard("crash handover: a Sentinel already failing over (-INPROG) ends the asking: one promotion", () => {
            const n = selfMaster("crashed:signal:killed:9")
                .reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "NOGOODSLAVE No suitable replica\n")
                .reply(at("dev-b", SENTINEL), ["SENTINEL", "FAILOVER", MASTER], "INPROG Failover already in progress\n")
                .reply(at("dev-c", SENTINEL), ["SENTINEL", "FAILOVER", MASTER], "OK\n");
            const r = n.run("redis-start-guard");
            expect(n.failoverCalls()).toEqual([LOCAL_SENTINEL, at("dev-b", SENTINEL)]);
            expect(r.stderr).toMatch(/answered 'INPROG/);
        });

        itGuard("crash handover: never asked while a Sentinel is already failing the master over", () => {
            const n = selfMaster("crashed:signal:killed:9")
                .reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "OK\n")
                .reply(at("dev-c", SENTINEL), ["SENTINEL", "MASTER", MASTER], "flags\nmaster,failover_in_progress\n");
            n.run("redis-start-guard");
            expect(n.failoverCalls()).toEqual([]);
        });

        itGuard("crash handover: never asked while the local Redis still answers (not certain it is dead)", () => {
            const n = selfMaster("crashed:signal:killed:9")
                .reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "OK\n")
                .reply(LOCAL_REDIS, ["PING"], "PONG\n");
            n.run("redis-start-guard");
            expect(n.failoverCalls()).toEqual([]);
        });

        itGuard(
            "crash handover: every Sentinel unreachable for FAILOVER falls back to the ordinary down-after wait",
            () => {
                const n = selfMaster("crashed:signal:killed:9");
                const next = promoteAfterFailover(n);
                // No FAILOVER reply anywhere: each call is refused.
                const r = n.run("redis-start-guard");
                expect(n.failoverCalls()).toEqual([LOCAL_SENTINEL, at("dev-b", SENTINEL), at("dev-c", SENTINEL)]);
                expect(r.stderr).toMatch(
                    /no Sentinel took SENTINEL FAILOVER; leaving the failover to the Sentinels' down-after/,
                );
                // The Sentinels' own failover (the stub's views move once any FAILOVER call was seen) is what the
                // guard then waits for, as before this change; it records the path as `sentinel`.
                expect(r.stderr).toContain(
                    `Sentinels promoted ${next.replace(":", " ")} (sentinel handover); starting as its replica`,
                );
                expect(readFileSync(n.paths.lastHandover, "utf8")).toMatch(new RegExp(`^sentinel \\d+ ${next}\n$`));
            },
        );

        /** redis-stop-record as systemd runs it after the process ended (ExecStopPost=, SERVICE_RESULT set). */
        const record = (n: FakeNode, result: string) =>
            n.run("redis-stop-record", [], {
                env: { SERVICE_RESULT: result, EXIT_CODE: "killed", EXIT_STATUS: "KILL" },
            });

        itGuard(
            "crash handover asked as the crashed master ends (redis-stop-record); the guard then waits for it, asking no one",
            () => {
                const n = selfMaster("running").reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "OK\n");
                const r = record(n, "signal");
                expect(r.code).toBe(0);
                expect(readFileSync(n.paths.redisState, "utf8")).toBe("crashed:signal:killed:KILL\n");
                expect(n.failoverCalls()).toEqual([LOCAL_SENTINEL]);
                expect(readFileSync(n.paths.crashHandover, "utf8")).toMatch(new RegExp(`^\\d+ ${LOCAL_SENTINEL}\n$`));
                // The restart's guard must not ask again, though no Sentinel shows the failover yet (which alone would
                // make it ask). The promotion shows after the guard's first look.
                const next = promoteAfterFirstLook(n);
                const g = n.run("redis-start-guard");
                expect(g.code).toBe(0);
                expect(n.failoverCalls()).toEqual([LOCAL_SENTINEL]);
                expect(g.stderr).toMatch(/crash handover: asked as the crashed process ended/);
                expect(g.stderr).toContain("looking every 0.1s");
                expect(readFileSync(n.paths.lastHandover, "utf8")).toMatch(new RegExp(`^crash \\d+ ${next}\n$`));
                expect(existsSync(n.paths.crashHandover)).toBe(false);
            },
        );

        itGuard(
            "a crash handover asked at the end and already through when Redis restarts is recorded as `crash`",
            () => {
                const n = selfMaster("running").reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "OK\n");
                record(n, "signal");
                const next = at("dev-b", REDIS);
                n.views({ "dev-a": next, "dev-b": next, "dev-c": next });
                const g = n.run("redis-start-guard");
                expect(g.stderr).toContain(
                    `Sentinels name ${next.replace(":", " ")} as master; starting as its replica`,
                );
                expect(readFileSync(n.paths.lastHandover, "utf8")).toMatch(new RegExp(`^crash \\d+ ${next}\n$`));
            },
        );

        itGuard("a crash handover asked at the end is waited for even while no Sentinel majority answers", () => {
            const n = selfMaster("running").reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "OK\n");
            record(n, "signal");
            // A blip: in the first look only dev-a answers (no majority); then every Sentinel names dev-b.
            const firstLook = `[ "$(grep -c 'get-master-addr-by-name' "$STUB_DIR/calls")" -le 3 ]`;
            const next = promoteWhen(n, `! ${firstLook}`);
            for (const s of ["dev-b", "dev-c"] as const) {
                n.replyScript(
                    at(s, SENTINEL),
                    ["SENTINEL", "get-master-addr-by-name", MASTER],
                    `if ${firstLook}; then exec sleep 600; fi; printf '%s\\n' ${next.replace(":", " ")}\n`,
                );
            }
            const g = n.run("redis-start-guard");
            expect(g.stderr).not.toMatch(/starting with the configured role/);
            expect(g.stderr).toMatch(/crash handover: asked as the crashed process ended/);
            expect(g.stderr).toContain(`Sentinels promoted ${next.replace(":", " ")} (crash handover)`);
        });

        itGuard("a crash handover marker older than a failover timeout is not trusted: the guard asks itself", () => {
            const n = selfMaster("crashed:signal:killed:KILL").reply(
                LOCAL_SENTINEL,
                ["SENTINEL", "FAILOVER", MASTER],
                "OK\n",
            );
            writeFileSync(n.paths.crashHandover, `${Date.now() - 3_600_000} ${LOCAL_SENTINEL}\n`);
            const next = promoteAfterFailover(n);
            const g = n.run("redis-start-guard");
            expect(n.failoverCalls()).toEqual([LOCAL_SENTINEL]);
            expect(g.stderr).toMatch(/crash handover: Sentinel 127\.0\.0\.1:\d+ answered 'OK'/);
            expect(readFileSync(n.paths.lastHandover, "utf8")).toMatch(new RegExp(`^crash \\d+ ${next}\n$`));
        });

        /** The local Sentinel's SENTINEL FAILOVER: no answer, or the connection lost after the ask (redis-cli's words). */
        const silentOrLost = (n: FakeNode, how: string) =>
            how === "hang"
                ? n.hang(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER])
                : n.reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], `${how}\n`);
        const CONNECTION_LOST = "Error: Server closed the connection";

        it.each([
            ["does not answer", "hang"],
            ["loses the connection after the ask", CONNECTION_LOST],
        ])("crash handover: a Sentinel that %s is not followed by another while a failover shows", (_what, how) => {
            const n = silentOrLost(selfMaster("running"), how)
                .reply(at("dev-b", SENTINEL), ["SENTINEL", "FAILOVER", MASTER], "OK\n")
                // The hung Sentinel started it: another one shows it under way.
                .replyScript(
                    at("dev-c", SENTINEL),
                    ["SENTINEL", "MASTER", MASTER],
                    `if grep -q 'SENTINEL FAILOVER' "$STUB_DIR/calls"; then printf 'flags\\nmaster,failover_in_progress\\n'; ` +
                        `else printf 'name\\n${MASTER}\\nip\\n${ADDRESSES["dev-a"]}\\nport\\n${REDIS}\\nflags\\nmaster\\n'; fi\n`,
                );
            n.run("redis-stop-record", [], { env: { SERVICE_RESULT: "signal" } });
            expect(n.failoverCalls()).toEqual([LOCAL_SENTINEL]);
            expect(readFileSync(n.paths.crashHandover, "utf8")).toMatch(new RegExp(`^\\d+ ${LOCAL_SENTINEL}\n$`));
            // With nothing under way, the next Sentinel is asked.
            const quiet = silentOrLost(selfMaster("running"), how).reply(
                at("dev-b", SENTINEL),
                ["SENTINEL", "FAILOVER", MASTER],
                "OK\n",
            );
            quiet.run("redis-stop-record", [], { env: { SERVICE_RESULT: "signal" } });
            expect(quiet.failoverCalls()).toEqual([LOCAL_SENTINEL, at("dev-b", SENTINEL)]);
        });

        it("crash handover: never asked while the local port takes connections but does not answer", () => {
            const n = selfMaster("running")
                .reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "OK\n")
                .hang(LOCAL_REDIS, ["PING"]);
            n.run("redis-stop-record", [], { env: { SERVICE_RESULT: "signal" } });
            expect(n.failoverCalls()).toEqual([]);
        });

        it.each([
            ["a clean stop", "success", (n: FakeNode) => n],
            [
                "a replica's crash",
                "signal",
                (n: FakeNode) => n.views({ "dev-a": at("dev-b", REDIS), "dev-b": at("dev-b", REDIS) }),
            ],
            [
                "a crash while a Sentinel already fails the master over",
                "signal",
                (n: FakeNode) =>
                    n.reply(at("dev-c", SENTINEL), ["SENTINEL", "MASTER", MASTER], "flags\nmaster,o_down\n"),
            ],
            [
                "a crash while the local port still answers",
                "signal",
                (n: FakeNode) => n.reply(LOCAL_REDIS, ["PING"], "PONG\n"),
            ],
        ])("redis-stop-record asks for no failover after %s", (_what, result, arrange) => {
            const n = arrange(selfMaster("running").reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "OK\n"));
            expect(record(n, result).code).toBe(0);
            expect(n.failoverCalls()).toEqual([]);
            expect(existsSync(n.paths.crashHandover)).toBe(false);
        });

        itGuard(
            "redis-stop-record: with every Sentinel refusing, nothing is recorded and the guard asks again at the restart",
            () => {
                const n = selfMaster("running");
                expect(record(n, "signal").code).toBe(0);
                const everySentinel = [LOCAL_SENTINEL, at("dev-b", SENTINEL), at("dev-c", SENTINEL)];
                expect(n.failoverCalls()).toEqual(everySentinel);
                expect(existsSync(n.paths.crashHandover)).toBe(false);
                n.run("redis-start-guard");
                expect(n.failoverCalls()).toEqual([...everySentinel, ...everySentinel]);
            },
        );

        itGuard("a crash handled by the Sentinels' own failover is recorded as `sentinel`", () => {
            const n = selfMaster("crashed:signal:killed:9");
            // The views move to dev-b on the second look (the Sentinels' own failover), with no FAILOVER taken.
            const next = promoteAfterFirstLook(n);
            n.run("redis-start-guard");
            expect(readFileSync(n.paths.lastHandover, "utf8")).toMatch(new RegExp(`^sentinel \\d+ ${next}\n$`));
        });

        itGuard("holds a cleanly stopped master back while a Sentinel sees it down", () => {
            const n = selfMaster("clean").reply(
                at("dev-b", SENTINEL),
                ["SENTINEL", "MASTER", MASTER],
                "name\nmymaster\nflags\nmaster,s_down,o_down\n",
            );
            const r = n.run("redis-start-guard");
            expect(r.stderr).toMatch(/is being failed over \(clean\); waiting up to 1s/);
        });
    });

    describe("failover-drill handover (before a resize takes a node down)", () => {
        const master = at("dev-a", REDIS);
        const agreed = (n: FakeNode) => n.views({ "dev-a": master, "dev-b": master, "dev-c": master });
        const moved = (n: FakeNode) =>
            n.calls().filter((c) => /SENTINEL FAILOVER|CLIENT PAUSE|CONFIG SET/.test(c.call));

        it("does nothing on a node that is not the master", () => {
            const n = agreed(node());
            const r = n.run("failover-drill", ["handover", at("dev-b", REDIS), master]);
            expect(r.code).toBe(0);
            expect(r.stdout).toContain(`${at("dev-b", REDIS)} is not the master (${master} is): nothing to hand over`);
            expect(moved(n)).toEqual([]);
        });

        it("refuses, touching nothing, when no target is a replica with its link up", () => {
            const n = agreed(node()).reply(
                at("dev-b", REDIS),
                ["INFO", "replication"],
                "role:slave\r\nmaster_link_status:down\r\n",
            );
            const r = n.run("failover-drill", ["handover", master, at("dev-b", REDIS), at("dev-c", REDIS)]);
            expect(r.code).toBe(1);
            expect(r.stdout).toContain(
                `FAIL: none of ${at("dev-b", REDIS)} ${at("dev-c", REDIS)} is a replica with its link up to take mastership from ${master}`,
            );
            expect(moved(n)).toEqual([]);
        });

        it("hands over to the caught-up target, and fences the old master before lifting its pause", () => {
            const target = at("dev-b", REDIS);
            const other = at("dev-c", REDIS);
            const failedOver = `grep -q 'SENTINEL FAILOVER' "$STUB_DIR/calls"`;
            /** One reply before SENTINEL FAILOVER was asked, another after. */
            const switching = (before: string, after: string) =>
                `if ${failedOver}; then printf '%s' '${after}'; else printf '%s' '${before}'; fi\n`;
            const pauseMs = ((dev.sentinel.downAfterMs + dev.sentinel.failoverTimeoutMs) * 2) / 1000 + 30;
            const n = node()
                .reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "OK\n")
                .reply(
                    LOCAL_SENTINEL,
                    ["SENTINEL", "REPLICAS", MASTER],
                    `name\n${target}\nflags\nslave\nmaster-link-status\nok\nslave-priority\n100\n` +
                        `name\n${other}\nflags\nslave\nmaster-link-status\nok\nslave-priority\n0\n`,
                )
                .replyScript(
                    target,
                    ["INFO", "replication"],
                    switching(
                        "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\nslave_repl_offset:100\r\n",
                        "# Replication\r\nrole:master\r\n",
                    ),
                )
                .replyScript(
                    master,
                    ["INFO", "replication"],
                    switching(
                        "# Replication\r\nrole:master\r\nmaster_repl_offset:100\r\n",
                        `# Replication\r\nrole:slave\r\nmaster_host:${ADDRESSES["dev-b"]}\r\nmaster_port:${REDIS}\r\nmaster_link_status:up\r\n`,
                    ),
                )
                .reply(other, ["CONFIG", "GET", "replica-priority"], "replica-priority\n100\n")
                .reply(master, ["CONFIG", "GET", "repl-ping-replica-period"], "repl-ping-replica-period\n10\n")
                .reply(target, ["WAIT", 1, 5000], "1\n")
                .replyCommand(target, "SET", "echo OK\n")
                .replyCommand(target, "GET", `. "$STUB_DIR/node.env"; echo "$NODE_NAME"\n`);
            for (const [endpoint, args] of [
                [other, "CONFIG SET replica-priority 0"],
                [other, "CONFIG SET replica-priority 100"],
                [other, "CONFIG REWRITE"],
                [master, "CONFIG SET repl-ping-replica-period 86400"],
                [master, "CONFIG SET repl-ping-replica-period 10"],
                [master, `CLIENT PAUSE ${String(pauseMs * 1000)} WRITE`],
                [master, "CLIENT UNPAUSE"],
                [master, `CONFIG SET min-replicas-to-write ${FENCED}`],
            ])
                n.reply(endpoint, args.split(" "), "OK\n");
            for (const s of ["dev-a", "dev-b", "dev-c"] as const)
                n.replyScript(
                    at(s, SENTINEL),
                    ["SENTINEL", "get-master-addr-by-name", MASTER],
                    switching(`${ADDRESSES["dev-a"]}\n${REDIS}\n`, `${ADDRESSES["dev-b"]}\n${REDIS}\n`),
                );
            const r = n.run("failover-drill", ["handover", master, target]);
            expect(r.stdout).toContain(`OK: ${target} is master; ${master} may go down`);
            expect(r.code).toBe(0);
            const calls = moved(n).map((c) => c.call);
            const all = n.calls().map((c) => c.call);
            const asked = all.indexOf(`${LOCAL_SENTINEL} SENTINEL FAILOVER ${MASTER}`);
            const fence = all.indexOf(`${master} CONFIG SET min-replicas-to-write ${FENCED}`);
            const unpause = all.indexOf(`${master} CLIENT UNPAUSE`);
            expect(calls).toContain(`${master} CLIENT PAUSE ${String(pauseMs * 1000)} WRITE`);
            expect(asked).toBeGreaterThanOrEqual(0);
            // The writes the pause held get NOREPLICAS on the old master, never a reply from a master being demoted.
            expect(fence).toBeGreaterThan(asked);
            expect(unpause).toBeGreaterThan(fence);
        });

        it("says how to call it", () => {
            const r = agreed(node()).run("failover-drill", ["handover"]);
            expect(r.code).toBe(1);
            expect(r.stdout).toContain("usage: failover-drill handover NODE TARGET...");
        });
    });

    describe("redis-stop-handover", () => {
        const self = at("dev-a", REDIS);
        const next = at("dev-b", REDIS);
        const replInfo = (offset: number) =>
            `# Replication\r\nrole:slave\r\nmaster_host:${ADDRESSES["dev-a"]}\r\nmaster_port:${REDIS}\r\n` +
            `master_link_status:up\r\nslave_repl_offset:${offset}\r\n`;
        /** dev-a is master by every Sentinel until a FAILOVER call, dev-b its replica at `replicaOffset`. */
        const stoppingMaster = (replicaOffset: number) => {
            const n = node()
                .reply(
                    LOCAL_REDIS,
                    ["INFO", "replication"],
                    "# Replication\r\nrole:master\r\nmaster_repl_offset:100\r\n",
                )
                // dev-b follows dev-a until the failover, then is the master.
                .replyScript(
                    at("dev-b", REDIS),
                    ["INFO", "replication"],
                    `if grep -q 'SENTINEL FAILOVER' "$STUB_DIR/calls"; then printf '# Replication\\r\\nrole:master\\r\\n'; ` +
                        `else printf '%s' '${replInfo(replicaOffset)}'; fi\n`,
                )
                .reply(LOCAL_REDIS, ["CONFIG", "GET", "repl-ping-replica-period"], "repl-ping-replica-period\n10\n")
                .reply(LOCAL_REDIS, ["CONFIG", "SET", "repl-ping-replica-period", 86400], "OK\n")
                .reply(LOCAL_REDIS, ["CONFIG", "SET", "repl-ping-replica-period", 10], "OK\n")
                .reply(LOCAL_REDIS, ["CONFIG", "SET", "min-replicas-to-write", FENCED], "OK\n")
                // One client blocked in WAIT on the first look, none after.
                .replyScript(
                    LOCAL_REDIS,
                    ["CLIENT", "LIST"],
                    `if [ "$(grep -c 'CLIENT LIST' "$STUB_DIR/calls")" -le 1 ]; then echo '${BLOCKED_WAIT}'; fi; echo '${IDLE_CLIENT}'\n`,
                )
                .reply(LOCAL_REDIS, ["CLIENT", "PAUSE", 6000, "WRITE"], "OK\n")
                .reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "OK\n");
            for (const s of ["dev-a", "dev-b", "dev-c"] as const) {
                n.replyScript(
                    at(s, SENTINEL),
                    ["SENTINEL", "get-master-addr-by-name", MASTER],
                    `if grep -q 'SENTINEL FAILOVER' "$STUB_DIR/calls"; then printf '%s\\n' ${next.replace(":", " ")}; ` +
                        `else printf '%s\\n' ${self.replace(":", " ")}; fi\n`,
                );
            }
            return n;
        };
        const stopEnv = { MAINPID: "4242", SERVICE_RESULT: "success" };

        it("refuses writes, lets blocked WAITs end, pauses, waits for the replica to catch up, fails over, keeps both", () => {
            const n = stoppingMaster(100);
            const r = n.run("redis-stop-handover", [], { env: stopEnv });
            expect(r.code).toBe(0);
            const calls = n.calls().map((c) => c.call);
            const pause = calls.indexOf(`${LOCAL_REDIS} CLIENT PAUSE 6000 WRITE`);
            expect(pause).toBeGreaterThanOrEqual(0);
            // Writes refused (NOREPLICAS, retried by clients) before the pause, which would hold them instead; kept
            // so by redis-fence for this process (its pid in the file), never lifted here.
            const refused = calls.indexOf(`${LOCAL_REDIS} CONFIG SET min-replicas-to-write ${FENCED}`);
            expect(refused).toBeGreaterThanOrEqual(0);
            expect(refused).toBeLessThan(pause);
            expect(readFileSync(n.paths.handoverFence, "utf8")).toBe("4242\n");
            // Set again just before the pause (same connection), never to another value.
            const refusals = calls.flatMap((c, i) => (c.includes("min-replicas-to-write") ? [i] : []));
            expect(refusals.map((i) => calls[i])).toEqual([calls[refused], calls[refused]]);
            expect(refusals[1]).toBe(pause - 1);
            // The pause waits for the WAIT that was blocked (it would hold the replicas' acknowledgements).
            const looks = calls.flatMap((c, i) => (c === `${LOCAL_REDIS} CLIENT LIST` ? [i] : []));
            expect(looks.length).toBeGreaterThanOrEqual(2);
            expect(looks[0]).toBeGreaterThan(refused);
            expect(looks[1]).toBeLessThan(pause);
            expect(r.stderr).toMatch(/writes refused \(NOREPLICAS\) for the handover; 0 WAIT\(s\) still blocked/);
            const failover = calls.indexOf(`${LOCAL_SENTINEL} SENTINEL FAILOVER ${MASTER}`);
            expect(failover).toBeGreaterThan(pause);
            // Replication PINGs held from before the pause until the replica follows the new master.
            const held = calls.indexOf(`${LOCAL_REDIS} CONFIG SET repl-ping-replica-period 86400`);
            const released = calls.indexOf(`${LOCAL_REDIS} CONFIG SET repl-ping-replica-period 10`);
            expect(held).toBeGreaterThanOrEqual(0);
            expect(held).toBeLessThan(calls.indexOf(`${LOCAL_REDIS} CONFIG SET min-replicas-to-write ${FENCED}`));
            expect(released).toBeGreaterThan(failover);
            expect(calls.lastIndexOf(`${next} INFO replication`)).toBeLessThan(released);
            // Never unpaused: a held write must not run on the old master after the switch.
            expect(calls.filter((c) => c.includes("UNPAUSE") || c.includes("REPLICAOF"))).toEqual([]);
            expect(r.stderr).toMatch(
                new RegExp(`handed mastership to ${next} \\(via Sentinel 127\\.0\\.0\\.1:\\d+\\)`),
            );
            expect(readFileSync(n.paths.lastHandover, "utf8")).toMatch(new RegExp(`^planned \\d+ ${next}\n$`));
        });

        it("waits, before it refuses writes, for the phase of the asked Sentinel's reads of the replicas", () => {
            const n = stoppingMaster(100).reply(
                LOCAL_SENTINEL,
                ["SENTINEL", "REPLICAS", MASTER],
                `name\n${next}\nip\n${ADDRESSES["dev-b"]}\ninfo-refresh\n120\nflags\nslave\n`,
            );
            const r = n.run("redis-stop-handover", [], { env: stopEnv });
            expect(r.code).toBe(0);
            const calls = n.calls().map((c) => c.call);
            const phase = calls.indexOf(`${LOCAL_SENTINEL} SENTINEL REPLICAS ${MASTER}`);
            expect(phase).toBeGreaterThanOrEqual(0);
            expect(phase).toBeLessThan(calls.indexOf(`${LOCAL_REDIS} CONFIG SET min-replicas-to-write ${FENCED}`));
            const waited = /waited (\d+) ms for Sentinel's read phase \(its last read of (\S+) was 120 ms old;/.exec(
                r.stderr,
            );
            expect(waited?.[2]).toBe(next);
            // Never more than one read period (600 ms, plus a timer tick).
            expect(Number(waited?.[1])).toBeLessThanOrEqual(650);
        });

        it.each([
            // now, last read, steps, period, aim: wait
            ["the aimed-at age is still ahead", 10_000, 9_900, 120, 600, 450, 230],
            ["it has passed: the next read's phase", 10_000, 9_500, 120, 600, 450, 480],
            ["it is now", 10_000, 9_670, 120, 600, 450, 0],
            ["two periods on (a slow call)", 10_000, 8_700, 100, 600, 450, 350],
        ])("lib.sh phase_wait_ms: %s", (_what, now, last, steps, period, aim, want) => {
            const r = node().lib(`phase_wait_ms ${now} ${last} ${steps} ${period} ${aim}`);
            expect(r.stdout.trim()).toBe(String(want));
        });

        it("leaves no handover refusal behind once Redis has stopped (redis-stop-record)", () => {
            const n = stoppingMaster(100);
            n.run("redis-stop-handover", [], { env: stopEnv });
            expect(existsSync(n.paths.handoverFence)).toBe(true);
            expect(n.run("redis-stop-record", [], { env: { SERVICE_RESULT: "success" } }).code).toBe(0);
            expect(existsSync(n.paths.handoverFence)).toBe(false);
            expect(readFileSync(n.paths.redisState, "utf8")).toBe("clean\n");
        });

        it("stops without a failover when the replica does not catch up within the bound", () => {
            const n = stoppingMaster(90);
            const r = n.run("redis-stop-handover", [], { env: stopEnv });
            expect(r.code).toBe(0);
            expect(n.failoverCalls()).toEqual([]);
            expect(r.stderr).toMatch(/did not reach offset 100 within 1000 ms; stopping without a handover/);
            expect(existsSync(n.paths.lastHandover)).toBe(false);
        });

        it("does nothing after a crash (systemd runs ExecStop with MAINPID unset) or on a replica", () => {
            const crashed = stoppingMaster(100);
            expect(crashed.run("redis-stop-handover", [], { env: { SERVICE_RESULT: "signal" } }).stderr).toMatch(
                /already ended \(signal\); nothing to hand over/,
            );
            expect(crashed.calls()).toEqual([]);
            const replica = node().reply(LOCAL_REDIS, ["INFO", "replication"], replInfo(100));
            expect(replica.run("redis-stop-handover", [], { env: stopEnv }).stderr).toMatch(/this node is a replica/);
            expect(replica.failoverCalls()).toEqual([]);
        });

        it("stops without a handover when every Sentinel refuses SENTINEL FAILOVER", () => {
            const n = stoppingMaster(100).reply(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER], "NOGOODSLAVE\n");
            const r = n.run("redis-stop-handover", [], { env: stopEnv });
            expect(r.code).toBe(0);
            expect(n.failoverCalls()).toEqual([LOCAL_SENTINEL, at("dev-b", SENTINEL), at("dev-c", SENTINEL)]);
            expect(r.stderr).toMatch(/no Sentinel took SENTINEL FAILOVER; stopping without a handover/);
        });

        it("asks no second Sentinel when the first does not answer SENTINEL FAILOVER and a failover shows under way", () => {
            const n = stoppingMaster(100)
                .hang(LOCAL_SENTINEL, ["SENTINEL", "FAILOVER", MASTER])
                .reply(at("dev-b", SENTINEL), ["SENTINEL", "FAILOVER", MASTER], "OK\n")
                // The silent Sentinel started it: another one shows it under way.
                .replyScript(
                    at("dev-c", SENTINEL),
                    ["SENTINEL", "MASTER", MASTER],
                    `if grep -q 'SENTINEL FAILOVER' "$STUB_DIR/calls"; then printf 'flags\\nmaster,failover_in_progress\\n'; fi\n`,
                );
            const r = n.run("redis-stop-handover", [], { env: stopEnv });
            expect(r.code).toBe(0);
            // Asking another could start a second failover that no election orders.
            expect(n.failoverCalls()).toEqual([LOCAL_SENTINEL]);
            expect(r.stderr).toMatch(/did not take SENTINEL FAILOVER \S+ \(no reply\), and a failover is under way/);
            expect(r.stderr).toContain(`handed mastership to ${next}`);
        });

        describe("in a stack with a DR region (prod)", () => {
            const prod = topologyFromConfig(readStackConfig("prod"), "redis-ha", "prod");
            const P = {
                "east-a": "127.0.1.11",
                "east-b": "127.0.1.12",
                "ord-a": "127.0.2.11",
                "ord-b": "127.0.2.12",
                witness: "127.0.3.11",
            };
            const ep = (n: keyof typeof P, port: number) => `${P[n]}:${port}`;
            const [R, S] = [prod.ports.redis, prod.ports.sentinel];
            const local = { redis: `127.0.0.1:${R}`, sentinel: `127.0.0.1:${S}` };
            const dr = [ep("ord-a", R), ep("ord-b", R)];
            const failedOver = `grep -q 'SENTINEL FAILOVER' "$STUB_DIR/calls"`;
            /** east-a is master until a FAILOVER call, then east-b; every replica caught up at offset 100. */
            const stoppingEastA = (sentinelSeesPriorities: boolean) => {
                const n = new FakeNode(prod, "east-a", P);
                nodes.push(n);
                const follows = (m: string) =>
                    `# Replication\\r\\nrole:slave\\r\\nmaster_host:${m}\\r\\nmaster_port:${R}\\r\\nmaster_link_status:up\\r\\nslave_repl_offset:100\\r\\n`;
                n.reply(
                    local.redis,
                    ["INFO", "replication"],
                    "# Replication\r\nrole:master\r\nmaster_repl_offset:100\r\n",
                )
                    .reply(local.redis, ["CONFIG", "GET", "repl-ping-replica-period"], "repl-ping-replica-period\n10\n")
                    .reply(local.redis, ["CONFIG", "SET", "repl-ping-replica-period", 86400], "OK\n")
                    .reply(local.redis, ["CONFIG", "SET", "repl-ping-replica-period", 10], "OK\n")
                    .reply(local.redis, ["CONFIG", "SET", "min-replicas-to-write", prod.dr.fencedMinReplicas], "OK\n")
                    .reply(local.redis, ["CLIENT", "PAUSE", 6000, "WRITE"], "OK\n")
                    .reply(local.sentinel, ["SENTINEL", "FAILOVER", prod.masterName], "OK\n")
                    .replyScript(
                        ep("east-b", R),
                        ["INFO", "replication"],
                        `if ${failedOver}; then printf '# Replication\\r\\nrole:master\\r\\n'; else printf '${follows(P["east-a"])}'; fi\n`,
                    );
                for (const r of dr) {
                    n.replyScript(
                        r,
                        ["INFO", "replication"],
                        `if ${failedOver}; then printf '${follows(P["east-b"])}'; else printf '${follows(P["east-a"])}'; fi\n`,
                    )
                        .reply(r, ["CONFIG", "GET", "replica-priority"], "replica-priority\n100\n")
                        .reply(r, ["CONFIG", "SET", "replica-priority", 0], "OK\n")
                        .reply(r, ["CONFIG", "SET", "replica-priority", 100], "OK\n")
                        .reply(r, ["CONFIG", "REWRITE"], "OK\n")
                        .reply(r, ["REPLICAOF", P["east-b"], R], "OK\n");
                }
                const priorities = dr.map((r) => `name\n${r}\nslave-priority\n0\n`).join("");
                n.reply(
                    local.sentinel,
                    ["SENTINEL", "REPLICAS", prod.masterName],
                    sentinelSeesPriorities ? priorities : priorities.replaceAll("\n0\n", "\n100\n"),
                );
                for (const s of ["east-a", "ord-a", "witness"] as const) {
                    n.replyScript(
                        ep(s, S),
                        ["SENTINEL", "get-master-addr-by-name", prod.masterName],
                        `if ${failedOver}; then printf '%s\\n' ${P["east-b"]} ${R}; else printf '%s\\n' ${P["east-a"]} ${R}; fi\n`,
                    );
                }
                return n;
            };

            it("keeps mastership in the primary region: DR replicas unpromotable from before the pause to the end", () => {
                const n = stoppingEastA(true);
                const r = n.run("redis-stop-handover", [], { env: stopEnv });
                expect(r.stderr).toMatch(
                    new RegExp(
                        `${dr.join(" ")} unpromotable for this handover.*handed mastership to ${ep("east-b", R)}`,
                        "s",
                    ),
                );
                const calls = n.calls().map((c) => c.call);
                const pause = calls.indexOf(`${local.redis} CLIENT PAUSE 6000 WRITE`);
                const failover = calls.indexOf(`${local.sentinel} SENTINEL FAILOVER ${prod.masterName}`);
                for (const d of dr) {
                    expect(calls.indexOf(`${d} CONFIG SET replica-priority 0`)).toBeLessThan(pause);
                    expect(calls.indexOf(`${d} CONFIG SET replica-priority 100`)).toBeGreaterThan(failover);
                    // The file too: Sentinel's REPLICAOF is followed by CONFIG REWRITE, which would keep the 0.
                    expect(calls.lastIndexOf(`${d} CONFIG REWRITE`)).toBeGreaterThan(
                        calls.indexOf(`${d} CONFIG SET replica-priority 100`),
                    );
                }
                expect(calls.indexOf(`${local.sentinel} SENTINEL REPLICAS ${prod.masterName}`)).toBeLessThan(pause);
                // The other replicas follow the promoted one as soon as it reports role:master, before Sentinel moves
                // them; the promoted one is told nothing.
                const promotedSeen = calls.findIndex(
                    (c, i) => i > failover && c === `${ep("east-b", R)} INFO replication`,
                );
                for (const d of dr)
                    expect(calls.indexOf(`${d} REPLICAOF ${P["east-b"]} ${R}`)).toBeGreaterThan(promotedSeen);
                expect(calls.filter((c) => c.includes("REPLICAOF"))).toHaveLength(dr.length);
                expect(r.stderr).toMatch(
                    new RegExp(`${ep("east-b", R)} promoted \\d+ ms after the pause; ${dr.join(" ")} moved`),
                );
            });

            it("hands over without the preference, priorities given back first, when the Sentinel does not see them", () => {
                const n = stoppingEastA(false);
                const r = n.run("redis-stop-handover", [], { env: stopEnv });
                expect(r.stderr).toMatch(/could not make .* unpromotable in time; any caught-up replica may take over/);
                expect(r.stderr).toMatch(/handed mastership to/);
                const calls = n.calls().map((c) => c.call);
                const pause = calls.indexOf(`${local.redis} CLIENT PAUSE 6000 WRITE`);
                for (const d of dr) expect(calls.indexOf(`${d} CONFIG SET replica-priority 100`)).toBeLessThan(pause);
            });
        });
    });
});

const hasRedisServer = firstMissing([
    [spawnSync("bash", ["-c", "command -v redis-server redis-cli"]).status === 0, "redis-server, redis-cli"],
]);

describeTier("the handover's primitives against a real master and replica", hasRedisServer)(
    "the handover's primitives against a real master and replica",
    () => {
        // Clear text here (the lab runs the same calls over TLS); loopback ports of this test only.
        const plain = topologyFromConfig({ ...readStackConfig("dev"), "redis-ha:tls": "false" }, "redis-ha", "dev");
        const fake = new FakeNode(plain);
        const master = { host: "127.0.0.1", port: 0 };
        const servers: ReturnType<typeof spawn>[] = [];
        const cli = (...args: string[]) =>
            spawnSync("redis-cli", ["-h", master.host, "-p", String(master.port), "--no-auth-warning", ...args], {
                encoding: "utf8",
                env: { ...process.env, REDISCLI_AUTH: secrets.redisPassword },
            }).stdout.trim();
        const offset = () => Number(/master_repl_offset:(\d+)/.exec(cli("INFO", "replication"))?.[1] ?? NaN);
        /** One script's life: hold_pings, then release_pings once told to (a line on its stdin). */
        const holder = (at: string) => {
            const child = spawn(
                "bash",
                [
                    "-c",
                    `. "$1/lib.sh" && hold_pings ${at} && echo held && read -r _ && release_pings && echo released`,
                    "lib",
                    fake.paths.scriptsDir,
                ],
                { stdio: ["pipe", "pipe", "inherit"] },
            );
            let out = "";
            child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
            const said = async (word: string) => {
                for (let i = 0; i < 100 && !out.includes(word); i++) await sleep(50);
                return out.includes(word);
            };
            return { said, release: () => child.stdin.end("\n") };
        };
        const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

        beforeAll(async () => {
            const free = async () => {
                const srv = net.createServer();
                await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
                const port = (srv.address() as net.AddressInfo).port;
                await new Promise((r) => srv.close(r));
                return port;
            };
            master.port = await free();
            const replicaPort = await free();
            // --dir: a replica writes the RDB of its full sync there even with --save "".
            const common = [
                "--dir",
                fake.dir,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                secrets.redisPassword,
            ];
            // A PING every second while not held, so that a held period shows within a few seconds.
            servers.push(
                spawn("redis-server", ["--port", String(master.port), ...common, "--repl-ping-replica-period", "1"]),
            );
            servers.push(
                spawn("redis-server", [
                    "--port",
                    String(replicaPort),
                    ...common,
                    "--replicaof",
                    "127.0.0.1",
                    String(master.port),
                    "--masterauth",
                    secrets.redisPassword,
                ]),
            );
            for (let i = 0; i < 100 && !/connected_slaves:1/.test(cli("INFO", "replication")); i++) await sleep(100);
        });
        afterAll(() => {
            for (const s of servers) s.kill("SIGKILL");
            fake.remove();
        });

        it("holds the PINGs that move a paused master's offset, then gives its period back", async () => {
            const at = `127.0.0.1:${String(master.port)}`;
            expect(cli("INFO", "replication")).toMatch(/connected_slaves:1/);
            expect(cli("CLIENT", "PAUSE", "60000", "WRITE")).toBe("OK");
            const unheld = offset();
            await sleep(2500);
            expect(offset()).toBeGreaterThan(unheld); // the PINGs a pause alone lets through
            const h = holder(at);
            expect(await h.said("held")).toBe(true);
            const held = offset();
            await sleep(2500);
            expect(offset()).toBe(held);
            h.release();
            expect(await h.said("released")).toBe(true);
            expect(cli("CONFIG", "GET", "repl-ping-replica-period").split("\n")[1]).toBe("1");
            await sleep(2500);
            expect(offset()).toBeGreaterThan(held);
            cli("CLIENT", "UNPAUSE");
        }, 30_000);

        it("refuses a write at once while fenced and paused (NOREPLICAS, not held), and counts blocked WAITs", async () => {
            const at = `127.0.0.1:${String(master.port)}`;
            // Run as the scripts do, against the real redis-cli (FakeNode.lib puts its stub first).
            const lib = (fn: string) =>
                spawnSync("bash", ["-c", `. "$1/lib.sh" && ${fn}`, "lib", fake.paths.scriptsDir], {
                    encoding: "utf8",
                }).stdout.trim();
            // A WAIT for more replicas than there are blocks for its timeout.
            const waiter = spawn(
                "redis-cli",
                ["-h", "127.0.0.1", "-p", String(master.port), "--no-auth-warning", "WAIT", "5", "1500"],
                { env: { ...process.env, REDISCLI_AUTH: secrets.redisPassword }, stdio: "ignore" },
            );
            await sleep(300);
            expect(lib(`blocked_waits ${at}`)).toBe("1");
            await new Promise((r) => waiter.once("exit", r));
            expect(lib(`blocked_waits ${at}`)).toBe("0");
            // redis-stop-handover's order: refuse, then pause. Redis checks min-replicas-to-write before the pause.
            expect(cli("CONFIG", "SET", "min-replicas-to-write", String(FENCED))).toBe("OK");
            expect(cli("CLIENT", "PAUSE", "10000", "WRITE")).toBe("OK");
            try {
                const started = Date.now();
                expect(cli("SET", "k", "v")).toMatch(/^NOREPLICAS /);
                expect(cli("INCR", "n")).toMatch(/^NOREPLICAS /);
                expect(Date.now() - started).toBeLessThan(2000);
            } finally {
                cli("CLIENT", "UNPAUSE");
                cli("CONFIG", "SET", "min-replicas-to-write", "0");
            }
        }, 30_000);
    },
);

describe("node scripts as shipped", () => {
    const scripts = readdirSync(SCRIPTS_DIR).sort();

    it("ship every file under cloud-init/scripts, and nothing else", () => {
        expect(scripts).toEqual([...NODE_SCRIPTS, ...FIRST_MASTER_SCRIPTS].sort());
    });

    it("spell no path that paths.ts owns: they read it from the rendered paths.sh", () => {
        for (const s of scripts) {
            const text = readFileSync(join(SCRIPTS_DIR, s), "utf8");
            for (const p of Object.values(PATHS)) expect(`${s}: ${text.includes(p) ? p : "none"}`).toBe(`${s}: none`);
        }
    });

    it("read paths.sh back as exactly the paths in paths.ts", () => {
        const dir = mkdtempSync(join(tmpdir(), "rha-paths-"));
        try {
            writeFileSync(join(dir, PATHS_LIB), renderPathsLib());
            const r = spawnSync(
                "bash",
                [
                    "-c",
                    `. "$1" && printf '%s\\n' "$NODE_ENV_FILE" "$REDIS_CONF" "$REDIS_STATE_FILE"`,
                    "x",
                    join(dir, PATHS_LIB),
                ],
                { encoding: "utf8" },
            );
            expect(r.stdout).toBe(`${PATHS.nodeEnv}\n${PATHS.redisConf}\n${PATHS.redisState}\n`);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    describe("redis-fence: a master that no Sentinel majority names refuses writes", () => {
        const made: FakeNode[] = [];
        const node = (topology?: Topology) => {
            const n = new FakeNode(topology);
            made.push(n);
            return n;
        };
        afterAll(() => {
            for (const n of made) n.remove();
        });
        const self = at("dev-a", REDIS);
        const other = at("dev-b", REDIS);
        const fenced = String(dev.dr.fencedMinReplicas);
        const configured = String(dev.redis.minReplicasToWrite);
        /** A node whose Redis answers ROLE and CONFIG GET; returns the CONFIG SET values the fence sent. */
        const fenceNode = (role: string, current: string) =>
            node()
                .reply(LOCAL_REDIS, ["ROLE"], `${role}\n0\n`)
                .reply(LOCAL_REDIS, ["CONFIG", "GET", "min-replicas-to-write"], `min-replicas-to-write\n${current}\n`)
                .replyScript(LOCAL_REDIS, ["CONFIG", "SET", "min-replicas-to-write", fenced], "echo OK")
                .replyScript(LOCAL_REDIS, ["CONFIG", "SET", "min-replicas-to-write", configured], "echo OK");
        const sets = (n: FakeNode) =>
            n
                .calls()
                .map((c) => c.call)
                .filter((c) => c.startsWith(`${LOCAL_REDIS} CONFIG SET`))
                .map((c) => c.split(" ").pop());
        it.each([
            [
                "every Sentinel names this master",
                "master",
                configured,
                { "dev-a": self, "dev-b": self, "dev-c": self },
                [],
            ],
            ["two of three name it, one is cut off", "master", configured, { "dev-a": self, "dev-b": self }, []],
            ["only its own Sentinel answers (the minority side)", "master", configured, { "dev-a": self }, [fenced]],
            ["no Sentinel answers", "master", configured, {}, [fenced]],
            [
                "a majority names another master (after the heal)",
                "master",
                configured,
                { "dev-a": self, "dev-b": other, "dev-c": other },
                [fenced],
            ],
            [
                "the majority names it again: the fence is lifted",
                "master",
                fenced,
                { "dev-a": self, "dev-b": self },
                [configured],
            ],
            ["a replica never stays fenced (a persisted fenced value is undone)", "slave", fenced, {}, [configured]],
            ["a replica with the configured value: nothing to do", "slave", configured, {}, []],
        ])("%s", (_what, role, current, views, want) => {
            const n = fenceNode(role, current).views(views);
            const r = n.run("redis-fence", ["once"]);
            expect({ code: r.code, sets: sets(n) }).toEqual({ code: 0, sets: want });
            if (want[0] === fenced) expect(r.stderr).toMatch(/^redis-fence: fenced: /m);
        });

        it("keeps the master that redis-stop-handover is stopping fenced though every Sentinel names it", () => {
            const handingOver = (pidInFile: string) => {
                const n = fenceNode("master", fenced)
                    .views({ "dev-a": self, "dev-b": self, "dev-c": self })
                    .reply(LOCAL_REDIS, ["INFO", "server"], "# Server\r\nredis_version:7.0.15\r\nprocess_id:4242\r\n");
                mkdirSync(n.paths.stateDir, { recursive: true });
                writeFileSync(n.paths.handoverFence, `${pidInFile}\n`);
                return n;
            };
            const stopping = handingOver("4242");
            expect(stopping.run("redis-fence", ["once"]).code).toBe(0);
            expect(sets(stopping)).toEqual([]); // stays fenced
            // A Redis started after that handover (another pid) is not held by it: the fence is lifted.
            const restarted = handingOver("4100");
            restarted.run("redis-fence", ["once"]);
            expect(sets(restarted)).toEqual([configured]);
        });

        it("keeps a refusal the hook set while the round was asking the Sentinels (no lift on an old look)", () => {
            // The round starts fenced (an earlier round saw no Sentinel majority) and with no handover under way.
            const n = fenceNode("master", fenced).reply(
                LOCAL_REDIS,
                ["INFO", "server"],
                "# Server\r\nredis_version:7.0.15\r\nprocess_id:4242\r\n",
            );
            mkdirSync(n.paths.stateDir, { recursive: true });
            // While the Sentinels answer (every one names this master, which alone would lift the fence),
            // redis-stop-handover starts: its file, then its refusal.
            for (const s of ["dev-a", "dev-b", "dev-c"] as const) {
                n.replyScript(
                    at(s, SENTINEL),
                    ["SENTINEL", "get-master-addr-by-name", MASTER],
                    `echo 4242 >"${n.paths.handoverFence}"\n` + `printf '%s\\n' ${self.replace(":", " ")}\n`,
                );
            }
            n.run("redis-fence", ["once"]);
            expect(sets(n)).toEqual([]);
        });

        it("keeps that refusal when Redis does not say its pid in time, while the handover can still be running", () => {
            const silent = (secondsAgo: number) => {
                const n = fenceNode("master", fenced).views({ "dev-a": self, "dev-b": self, "dev-c": self });
                mkdirSync(n.paths.stateDir, { recursive: true });
                writeFileSync(n.paths.handoverFence, "4242\n");
                const t = new Date(Date.now() - secondsAgo * 1000);
                utimesSync(n.paths.handoverFence, t, t);
                return n;
            };
            const busy = silent(0);
            busy.run("redis-fence", ["once"]);
            expect(sets(busy)).toEqual([]);
            // Long after any handover could have ended, the usual rule applies.
            const stale = silent(60);
            stale.run("redis-fence", ["once"]);
            expect(sets(stale)).toEqual([configured]);
        });

        it("does not fence a just-promoted master while the Sentinels that answer still name its predecessor", () => {
            const n = fenceNode("slave", configured);
            n.run("redis-fence", ["once"]); // a replica this round: the promotion grace starts from here
            n.reply(LOCAL_REDIS, ["ROLE"], "master\n0\n").views({ "dev-a": other, "dev-b": other, "dev-c": other });
            n.run("redis-fence", ["once"]);
            expect(sets(n)).toEqual([]);
            // ...but it is fenced at once when it cannot see a Sentinel majority at all.
            const cut = fenceNode("slave", configured);
            cut.run("redis-fence", ["once"]);
            cut.reply(LOCAL_REDIS, ["ROLE"], "master\n0\n").views({ "dev-a": self });
            cut.run("redis-fence", ["once"]);
            expect(sets(cut)).toEqual([fenced]);
        });

        it("runs a new release of the scripts from its next round once apply-settings says it is in place, as the same process", async () => {
            const n = fenceNode("slave", configured);
            const script = join(n.paths.scriptsDir, "redis-fence");
            const child = spawn("bash", [script], {
                env: {
                    PATH: `${join(n.dir, "stub")}:${process.env.PATH ?? ""}`,
                    STUB_DIR: n.dir,
                    FENCE_INTERVAL_MS: "100",
                },
                stdio: ["ignore", "ignore", "pipe"],
            });
            let stderr = "";
            child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
            const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
            const until = async (what: () => boolean) => {
                for (let i = 0; i < 200 && !what(); i++) await pause(50);
                return what();
            };
            try {
                const roles = () => n.calls().filter((c) => c.call === `${LOCAL_REDIS} ROLE`).length;
                expect(await until(() => roles() >= 2)).toBe(true);
                // A new release on disk (renamed into place, as apply-settings writes it): not run until it is told.
                const release = readFileSync(script, "utf8").replace(
                    "set -uo pipefail\n",
                    'set -uo pipefail\necho "redis-fence: release 2" >&2\n',
                );
                writeFileSync(`${script}.new`, release);
                renameSync(`${script}.new`, script);
                const before = roles();
                expect(await until(() => roles() >= before + 3)).toBe(true);
                expect(stderr).not.toContain("release 2");
                // Told: the next round ends with the new release running, in the same process.
                mkdirSync(n.paths.stateDir, { recursive: true });
                writeFileSync(n.paths.scriptsReleased, "");
                expect(await until(() => stderr.includes("redis-fence: release 2"))).toBe(true);
                expect(stderr).toContain("redis-fence: a new release of the scripts is in place; running it");
                expect(child.exitCode).toBeNull();
                // Once only: the release file is older than the new process's start.
                const after = roles();
                expect(await until(() => roles() >= after + 3)).toBe(true);
                expect(stderr.match(/release 2/g)).toHaveLength(1);
            } finally {
                child.kill("SIGTERM");
                await new Promise((r) => child.once("exit", r));
            }
        });

        it("asks every Sentinel at once: a round with hung Sentinels takes one timeout, not one per Sentinel", () => {
            const n = fenceNode("master", configured).views({ "dev-a": self });
            for (const s of ["dev-b", "dev-c"] as const)
                n.hang(at(s, SENTINEL), ["SENTINEL", "get-master-addr-by-name", MASTER]);
            const r = n.run("redis-fence", ["once"]);
            expect(sets(n)).toEqual([fenced]);
            process.stdout.write(
                `redis-fence round with two hung Sentinels: ${r.ms} ms (timeout ${dev.dr.fenceTimeoutMs} ms each)\n`,
            );
            expect(r.ms).toBeLessThan(2 * dev.dr.fenceTimeoutMs + 1000);
        });
    });

    describe("redis-homing: mastership home after a hold-down", () => {
        const made: FakeNode[] = [];
        const node = (topology?: Topology) => {
            const n = new FakeNode(topology);
            made.push(n);
            return n;
        };
        afterAll(() => {
            for (const n of made) n.remove();
        });
        // A three-region variant of dev: dev-a alone in the primary region, the master in us-ord after a region loss.
        const threeRegions = topologyFromConfig(
            {
                ...readStackConfig("dev"),
                "redis-ha:nodes": JSON.stringify([
                    { name: "dev-a", region: "us-east", roles: ["redis", "sentinel"] },
                    { name: "dev-b", region: "us-central", roles: ["redis", "sentinel"] },
                    { name: "dev-c", region: "us-ord", roles: ["redis", "sentinel"] },
                ]),
                "redis-ha:minReplicasToWrite": "0",
                "redis-ha:failbackHoldDownSec": "5",
            },
            "redis-ha",
            "dev",
        );
        const away = at("dev-c", REDIS);
        const home = at("dev-a", REDIS);
        const homeReplica = (master: string, link: string) =>
            `# Replication\r\nrole:slave\r\nmaster_host:${master.split(":")[0]}\r\nmaster_port:${master.split(":")[1]}\r\nmaster_link_status:${link}\r\nmaster_sync_in_progress:0\r\n`;
        it("waits out the hold-down while the home node stays caught up, resets it when the link drops", () => {
            const n = node(threeRegions).views({ "dev-a": away, "dev-b": away, "dev-c": away });
            n.reply(home, ["INFO", "replication"], homeReplica(away, "up"));
            expect(n.run("redis-homing", ["once"]).stderr).toMatch(/failing back in 5s unless that changes/);
            n.reply(home, ["INFO", "replication"], homeReplica(away, "down"));
            expect(n.run("redis-homing", ["once"]).stderr).toMatch(/hold-down reset/);
            n.reply(home, ["INFO", "replication"], homeReplica(away, "up"));
            n.run("redis-homing", ["once"]);
            const r = n.run("redis-homing", ["once"]);
            expect(r.stderr).toBe(""); // the clock runs, nothing else happens before the hold-down
        });

        /** redis-homing's pause: its waits at their worst (redis-homing PAUSE_MS). */
        const HOMING_PAUSE_MS = 19_000;
        /**
         * A node whose hold-down has passed, so that its next round fails back from `away` to `home`: every call of
         * the fail-back answered, the preferred master at `homeOffset` (100 is caught up), and `failover` as every
         * Sentinel's answer to SENTINEL FAILOVER (or a hang). The Sentinels keep naming `away`.
         */
        const failingBack = (homeOffset: number, failover: string) => {
            const rest = at("dev-b", REDIS);
            const n = node(threeRegions).views({ "dev-a": away, "dev-b": away, "dev-c": away });
            n.reply(home, ["INFO", "replication"], `${homeReplica(away, "up")}slave_repl_offset:${homeOffset}\r\n`)
                .reply(away, ["INFO", "replication"], "# Replication\r\nrole:master\r\nmaster_repl_offset:100\r\n")
                .reply(rest, ["CONFIG", "GET", "replica-priority"], "replica-priority\n100\n")
                .reply(away, ["CONFIG", "GET", "repl-ping-replica-period"], "repl-ping-replica-period\n10\n");
            for (const [endpoint, args] of [
                [rest, "CONFIG SET replica-priority 0"],
                [rest, "CONFIG SET replica-priority 100"],
                [rest, "CONFIG REWRITE"],
                [away, "CONFIG SET repl-ping-replica-period 86400"],
                [away, "CONFIG SET repl-ping-replica-period 10"],
                [away, `CLIENT PAUSE ${HOMING_PAUSE_MS} WRITE`],
                [away, "CLIENT UNPAUSE"],
                [away, `CONFIG SET min-replicas-to-write ${FENCED}`],
            ])
                n.reply(endpoint, args.split(" "), "OK\n");
            for (const s of ["dev-a", "dev-b", "dev-c"] as const) {
                const args = ["SENTINEL", "FAILOVER", MASTER];
                if (failover === "hang") n.hang(at(s, SENTINEL), args);
                else n.reply(at(s, SENTINEL), args, `${failover}\n`);
            }
            mkdirSync(n.paths.stateDir, { recursive: true });
            writeFileSync(join(n.paths.stateDir, "homing-since"), `${Date.now() - 60_000}\n`);
            return { n, rest };
        };
        /** What a fail-back gives back at its end, in order: the fence (when asked for), the pause, priorities, PINGs. */
        const givenBack = (rest: string, fenced: boolean) => [
            ...(fenced ? [`${away} CONFIG SET min-replicas-to-write ${FENCED}`] : []),
            `${away} CLIENT UNPAUSE`,
            `${rest} CONFIG SET replica-priority 100`,
            `${rest} CONFIG REWRITE`,
            `${away} CONFIG SET repl-ping-replica-period 10`,
        ];
        const notLooks = (calls: string[]) => calls.filter((c) => !/INFO replication|get-master-addr-by-name/.test(c));

        // systemd stops redis-homing (a rollout, a reboot) in the middle of a fail-back: what it holds comes back.
        it.each([
            ["waiting for the preferred master to catch up", 99, false],
            ["waiting for the Sentinels to name the new master", 100, true],
        ])(
            "stopped while %s: gives back the pause (fencing first once the failover was taken), the priorities and the PINGs",
            async (_when, homeOffset, fenced) => {
                const { n, rest } = failingBack(homeOffset, "OK");
                const child = spawn("bash", [join(n.paths.scriptsDir, "redis-homing"), "once"], {
                    env: { PATH: `${join(n.dir, "stub")}:${process.env.PATH ?? ""}`, STUB_DIR: n.dir },
                    stdio: ["ignore", "ignore", "pipe"],
                });
                let stderr = "";
                child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
                const exited = new Promise<number | null>((r) =>
                    child.once("exit", (code) => {
                        r(code);
                    }),
                );
                const calls = () => n.calls().map((c) => c.call);
                const reached = fenced
                    ? `SENTINEL FAILOVER ${MASTER}`
                    : `${away} CLIENT PAUSE ${HOMING_PAUSE_MS} WRITE`;
                for (let i = 0; i < 100 && !calls().some((c) => c.endsWith(reached)); i++)
                    await new Promise((r) => setTimeout(r, 50));
                expect(calls().some((c) => c.endsWith(reached))).toBe(true);
                const before = calls().length;
                child.kill("SIGTERM");
                expect(await exited).toBe(143);
                // Stopped in the middle: not run to the end of its catch-up or switch wait (5 s each).
                expect(stderr).not.toMatch(/did not reach offset|did not agree/);
                expect(notLooks(calls().slice(before))).toEqual(givenBack(rest, fenced));
            },
        );

        // A Sentinel that may have started a failover is the last one asked: a second forced failover, which no
        // election orders, could promote another replica. The old master is fenced before its pause is lifted.
        it.each([
            ["answers -INPROG (a failover of this master already runs)", "INPROG Failover already in progress"],
            ["does not answer (a failover may have started)", "hang" as const],
        ])(
            "the first Sentinel asked %s: no other is asked, and the old master is fenced, then given back",
            (_what, failover) => {
                const { n, rest } = failingBack(100, failover);
                const r = n.run("redis-homing", ["once"]);
                expect(r.code).toBe(0);
                expect(n.failoverCalls()).toHaveLength(1);
                expect(r.stderr).toMatch(/a failover may be under way: not failing back, asking no other Sentinel/);
                const calls = notLooks(n.calls().map((c) => c.call));
                const asked = calls.findIndex((c) => c.endsWith(`SENTINEL FAILOVER ${MASTER}`));
                expect(calls.slice(asked + 1)).toEqual(givenBack(rest, true));
            },
        );

        it("does nothing while the master is in the primary region", () => {
            const n = node(threeRegions).views({ "dev-a": home, "dev-b": home });
            const r = n.run("redis-homing", ["once"]);
            expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
        });
    });

    const hasShellcheck = spawnSync("shellcheck", ["--version"]).status === 0;
    itTier("shellcheck", hasShellcheck ? undefined : "shellcheck is not installed (apt-get install shellcheck)")(
        "are shellcheck-clean at style level, run.sh and .ci/run included",
        () => {
            const root = join(__dirname, "..");
            const r = spawnSync(
                "shellcheck",
                [
                    "-S",
                    "style",
                    "-x",
                    ...scripts.map((s) => join(SCRIPTS_DIR, s)),
                    join(root, "run.sh"),
                    join(root, ".ci", "run"),
                ],
                { encoding: "utf8" },
            );
            expect(r.stdout).toBe("");
            expect(r.status).toBe(0);
        },
    );
});
