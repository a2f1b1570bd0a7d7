/**
 * cloud-init/scripts/bootstrap-node under bash, with stubs for redis-cli, systemctl and chown on PATH (nothing is
 * started, nothing leaves this machine; every address is on loopback): the first run writes the files with node.env
 * last and starts the node's services; a bad input writes nothing; a re-run with the same peers changes nothing but
 * node.env; a re-run with new peers resets the Sentinel and waits until it lists every answering peer again.
 */
import { spawnSync } from "node:child_process";
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
import { bootstrapInput, NODE_SCRIPTS, PATHS, PATHS_LIB, renderPathsLib, type NodePaths } from "../cloud-init";
import { configWith } from "./helpers";
import { topologyFromConfig } from "../topology";
import { describeTier, firstMissing } from "./tiers";

const SCRIPTS_DIR = join(__dirname, "..", "cloud-init", "scripts");
// tls: false: the bootstrap mechanics with shared passwords (the TLS secrets come from the program, under mocks).
const t = topologyFromConfig(configWith("dev", { addressing: "ephemeral", tls: false }), "redis-ha", "dev");
const secrets = { redisPassword: "redis-pw-0123456789", sentinelPassword: "sentinel-pw-0123456789" };
const ADDRESSES = { "dev-a": "127.0.0.11", "dev-b": "127.0.0.12", "dev-c": "127.0.0.13" };
const SENTINEL = t.ports.sentinel;

/** Logs every call; redis-cli answers from `replies/<host:port ARGS>` files (by md5), else "refused". */
const STUBS = {
    "redis-cli": `#!/bin/bash
host=127.0.0.1 port=6379 args=()
while [ $# -gt 0 ]; do
    case "$1" in
    -h) host=$2; shift 2 ;;
    -p) port=$2; shift 2 ;;
    --raw | --no-auth-warning) shift ;;
    *) args+=("$1"); shift ;;
    esac
done
key="$host:$port \${args[*]}"
echo "redis-cli $key" >>"$STUB_DIR/calls"
f="$STUB_DIR/replies/$(printf '%s' "$key" | md5sum | cut -c1-32)"
[ ! -e "$f" ] || exec cat "$f"
exit 1
`,
    systemctl: `#!/bin/bash\necho "systemctl $*" >>"$STUB_DIR/calls"\n`,
    chown: `#!/bin/bash\necho "chown $*" >>"$STUB_DIR/calls"\n`,
};

class FakeNode {
    readonly dir = mkdtempSync(join(tmpdir(), "rha-bootstrap-"));
    readonly paths: NodePaths;

    constructor() {
        const bin = join(this.dir, "bin");
        for (const d of ["bin", "stub", "replies", "state", "etc"]) mkdirSync(join(this.dir, d));
        for (const s of NODE_SCRIPTS) copyFileSync(join(SCRIPTS_DIR, s), join(bin, s));
        this.paths = {
            ...PATHS,
            nodeEnv: join(this.dir, "etc", "node.env"),
            redisConf: join(this.dir, "etc", "redis.conf"),
            sentinelConf: join(this.dir, "etc", "sentinel.conf"),
            scriptsDir: bin,
            stateDir: join(this.dir, "state"),
            redisState: join(this.dir, "state", "redis-server.state"),
        };
        writeFileSync(join(bin, PATHS_LIB), renderPathsLib(this.paths));
        for (const [name, text] of Object.entries(STUBS)) {
            writeFileSync(join(this.dir, "stub", name), text);
            chmodSync(join(this.dir, "stub", name), 0o755);
        }
        // node-ready pings the local Redis and Sentinel.
        this.reply(`127.0.0.1:${t.ports.redis}`, "PING", "PONG").reply(`127.0.0.1:${SENTINEL}`, "PING", "PONG");
    }

    reply(endpoint: string, args: string, text: string): this {
        const key = `${endpoint} ${args}`;
        const md5 = spawnSync("md5sum", { input: key, encoding: "utf8" }).stdout.slice(0, 32);
        writeFileSync(join(this.dir, "replies", md5), `${text}\n`);
        return this;
    }

    /** The stdin the program hands `node` for these addresses, with this node's temp paths instead of the real ones. */
    input(node: string, addresses: Readonly<Record<string, string>>): string {
        const real = bootstrapInput({ topology: t, node, addresses, secrets });
        return real
            .replaceAll(` ${PATHS.nodeEnv} `, ` ${this.paths.nodeEnv} `)
            .replaceAll(` ${PATHS.redisConf} `, ` ${this.paths.redisConf} `)
            .replaceAll(` ${PATHS.sentinelConf} `, ` ${this.paths.sentinelConf} `);
    }

    run(input: string) {
        const r = spawnSync("bash", [join(this.paths.scriptsDir, "bootstrap-node")], {
            encoding: "utf8",
            input,
            timeout: 60_000,
            env: {
                PATH: `${join(this.dir, "stub")}:${process.env.PATH ?? "/usr/bin:/bin"}`,
                STUB_DIR: this.dir,
                BOOTSTRAP_REDISCOVER_SEC: "2",
            },
        });
        return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    }

    calls(): string[] {
        const file = join(this.dir, "calls");
        return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n") : [];
    }

    clearCalls(): void {
        rmSync(join(this.dir, "calls"), { force: true });
    }

    remove(): void {
        rmSync(this.dir, { recursive: true, force: true });
    }
}

const describeScripts = describeTier(
    "bootstrap-node under bash",
    firstMissing([[spawnSync("bash", ["-c", "command -v timeout md5sum base64 mktemp"]).status === 0, "bash tools"]]),
);

describeScripts("bootstrap-node", () => {
    let node: FakeNode;
    beforeEach(() => {
        node = new FakeNode();
    });
    afterEach(() => {
        node.remove();
    });

    it("first run: writes redis.conf, sentinel.conf, then node.env, and starts Redis and Sentinel", () => {
        const r = node.run(node.input("dev-b", ADDRESSES));
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
        const wrote = r.stdout.split("\n").filter((l) => l.startsWith("wrote "));
        expect(wrote).toEqual([
            `wrote ${node.paths.redisConf}`,
            `wrote ${node.paths.sentinelConf}`,
            `wrote ${node.paths.nodeEnv}`,
        ]);
        expect(readFileSync(node.paths.redisConf, "utf8")).toContain(
            `replicaof ${ADDRESSES["dev-a"]} ${t.ports.redis}`,
        );
        expect(readFileSync(node.paths.nodeEnv, "utf8")).toContain(`NODE_ADDRESS='${ADDRESSES["dev-b"]}'`);
        expect(spawnSync("stat", ["-c", "%a", node.paths.nodeEnv], { encoding: "utf8" }).stdout.trim()).toBe("600");
        expect(node.calls()).toEqual(
            expect.arrayContaining([
                expect.stringMatching(/^chown redis:redis /),
                "systemctl daemon-reload",
                "systemctl enable redis-server.service redis-sentinel.service",
                "systemctl start redis-server.service redis-sentinel.service",
            ]),
        );
        expect(existsSync(join(node.paths.stateDir, "bootstrapped"))).toBe(true);
        expect(r.stdout).toMatch(/^bootstrapped dev-b \(127\.0\.0\.12\)/m);
    });

    it("writes nothing on a bad input line", () => {
        const r = node.run(`${node.input("dev-b", ADDRESSES)}file sometimes /etc/x 0644 root:root AAAA\n`);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/bootstrap-node: bad input line 'file sometimes \/etc\/x'/);
        expect(existsSync(node.paths.nodeEnv)).toBe(false);
        expect(existsSync(node.paths.redisConf)).toBe(false);
        expect(node.calls().filter((c) => c.startsWith("systemctl"))).toEqual([]);
    });

    it("re-run with the same peers: keeps redis.conf (Sentinel owns it now), starts nothing, resets nothing", () => {
        expect(node.run(node.input("dev-b", ADDRESSES)).code).toBe(0);
        writeFileSync(node.paths.redisConf, "replicaof 127.0.0.13 6379\n"); // as Sentinel rewrote it after a failover
        node.clearCalls();
        const r = node.run(node.input("dev-b", ADDRESSES));
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
        expect(r.stdout).toMatch(/^bootstrap of dev-b current: peers /m);
        expect(readFileSync(node.paths.redisConf, "utf8")).toBe("replicaof 127.0.0.13 6379\n");
        expect(node.calls().filter((c) => c.startsWith("systemctl") || c.includes("RESET"))).toEqual([]);
    });

    it("re-run with a replaced peer's new address: new node.env, SENTINEL RESET, waits for every answering peer", () => {
        expect(node.run(node.input("dev-b", ADDRESSES)).code).toBe(0);
        const moved = { ...ADDRESSES, "dev-c": "127.0.0.23" };
        node.reply(`127.0.0.1:${SENTINEL}`, `SENTINEL RESET ${t.masterName}`, "1")
            .reply(`${moved["dev-a"]}:${SENTINEL}`, "PING", "PONG")
            .reply(`${moved["dev-c"]}:${SENTINEL}`, "PING", "PONG");
        // The Sentinel has rediscovered dev-a but not yet the moved dev-c: the step fails after its bound, naming it.
        node.reply(`127.0.0.1:${SENTINEL}`, `SENTINEL SENTINELS ${t.masterName}`, `name\nx\nip\n${moved["dev-a"]}`);
        const waiting = node.run(node.input("dev-b", moved));
        expect(waiting.code).not.toBe(0);
        expect(waiting.stderr).toMatch(/did not rediscover 127\.0\.0\.23:26379 within 2s of SENTINEL RESET/);
        expect(readFileSync(node.paths.nodeEnv, "utf8")).toContain("127.0.0.23");

        // Once it lists both, the step succeeds. (node.env already holds the new list: no second reset is due.)
        writeFileSync(
            node.paths.nodeEnv,
            readFileSync(node.paths.nodeEnv, "utf8").replaceAll("127.0.0.23", "127.0.0.13"),
        );
        node.reply(
            `127.0.0.1:${SENTINEL}`,
            `SENTINEL SENTINELS ${t.masterName}`,
            `name\nx\nip\n${moved["dev-a"]}\nname\ny\nip\n${moved["dev-c"]}`,
        );
        node.clearCalls();
        const ok = node.run(node.input("dev-b", moved));
        expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: "" });
        expect(ok.stdout).toMatch(/Sentinel reset to forget old addresses/);
        expect(ok.stdout).toMatch(/lists every answering peer again/);
        expect(node.calls()).toContain(`redis-cli 127.0.0.1:${SENTINEL} SENTINEL RESET ${t.masterName}`);
        expect(node.calls().filter((c) => c.startsWith("systemctl"))).toEqual([]);
    });
});
