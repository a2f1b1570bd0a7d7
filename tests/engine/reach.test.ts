import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REACH_INTERPRETER_FLAGS, REACH_SCRIPT } from "../../components/reach";

/**
 * The reach probe run for real by bash, with a stand-in `ssh` first on PATH that answers like OpenSSH does in each
 * case (the probe's decisions are on ssh's exit status and message).
 */
let dir: string;
beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "reach-"));
    for (const sub of ["bin", "tmp"]) spawnSync("mkdir", [join(dir, sub)]);
});
afterEach(() => {
    rmSync(dir, { recursive: true });
});

/** A fake ssh: records its key file and call count, then answers with the given lines per call (last repeats). */
function fakeSsh(answers: readonly { status: number; stderr: string }[]): void {
    const cases = answers
        .map((a, i) => `${String(i + 1)}) echo '${a.stderr}' >&2; exit ${String(a.status)} ;;`)
        .join("\n");
    const last = answers[answers.length - 1];
    const script = `#!/bin/bash --norc
n=$(( $(cat "${dir}/calls" 2>/dev/null || echo 0) + 1 )); echo "$n" >"${dir}/calls"
while [ $# -gt 0 ]; do
    [ "$1" = -i ] && cp "$2" "${dir}/key-seen"
    case "$1" in UserKnownHostsFile=*) cp "\${1#UserKnownHostsFile=}" "${dir}/known-seen" ;; esac
    shift
done
case "$n" in
${cases}
*) echo '${last.stderr}' >&2; exit ${String(last.status)} ;;
esac
`;
    writeFileSync(join(dir, "bin", "ssh"), script);
    chmodSync(join(dir, "bin", "ssh"), 0o755);
}

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfEastB";
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ntest\n-----END OPENSSH PRIVATE KEY-----\n";
function probe(budget: number) {
    const started = Date.now();
    const r = spawnSync("/bin/bash", [...REACH_INTERPRETER_FLAGS, REACH_SCRIPT], {
        input: KEY,
        encoding: "utf8",
        timeout: 60_000,
        env: {
            PATH: `${join(dir, "bin")}:/usr/bin:/bin`,
            TMPDIR: join(dir, "tmp"),
            NODE: "east-b",
            HOST: "192.0.2.11",
            HOST_KEY: HOST_KEY,
            BUDGET: String(budget),
        },
    });
    return { ...r, seconds: (Date.now() - started) / 1000 };
}

describe("reach probe", () => {
    it("fails at once when the server refuses the key, naming the node and address", () => {
        fakeSsh([{ status: 255, stderr: "root@192.0.2.11: Permission denied (publickey)." }]);
        const r = probe(600);
        expect(r.status).toBe(1);
        expect(r.stderr.trim().split("\n")).toEqual([
            "node east-b (192.0.2.11): SSH refused the checks key; install its public half on the node (authorizedKeys) or set the matching checksPrivateKey",
        ]);
        expect(readFileSync(join(dir, "calls"), "utf8").trim()).toBe("1");
        console.log(`refused key: failed after ${r.seconds.toFixed(1)} s`);
    });

    it("fails at once when another host key answers", () => {
        fakeSsh([{ status: 255, stderr: "Host key verification failed." }]);
        const r = probe(600);
        expect(r.status).toBe(1);
        expect(r.stderr.trim()).toBe(
            "node east-b (192.0.2.11): the server's host key is not the node's (hostKeys output); something else answers at this address",
        );
        expect(readFileSync(join(dir, "calls"), "utf8").trim()).toBe("1");
    });

    it("keeps trying while the node boots, then succeeds, with the key it was given and no key left behind", () => {
        fakeSsh([
            { status: 255, stderr: "ssh: connect to host 192.0.2.11 port 22: Connection refused" },
            { status: 0, stderr: "" },
        ]);
        const r = probe(60);
        expect(r.status).toBe(0);
        expect(r.stdout).toContain("node east-b (192.0.2.11): SSH reachable");
        expect(readFileSync(join(dir, "calls"), "utf8").trim()).toBe("2");
        expect(readFileSync(join(dir, "key-seen"), "utf8")).toBe(KEY);
        expect(readFileSync(join(dir, "known-seen"), "utf8")).toBe(`192.0.2.11 ${HOST_KEY}\n`);
        expect(readdirSync(join(dir, "tmp"))).toEqual([]);
    });

    it("gives up after its budget with the last error and what to check", () => {
        fakeSsh([{ status: 255, stderr: "ssh: connect to host 192.0.2.11 port 22: Connection timed out" }]);
        const r = probe(0);
        expect(r.status).toBe(1);
        expect(r.stderr.trim()).toBe(
            "node east-b (192.0.2.11): no SSH within 0s (last error: ssh: connect to host 192.0.2.11 port 22: Connection timed out); check that adminCidrs covers this machine",
        );
    });

    it("is shellcheck-clean", () => {
        const r = spawnSync("shellcheck", ["-S", "style", "-s", "bash", "-"], {
            input: REACH_SCRIPT,
            encoding: "utf8",
        });
        expect(r.stdout).toBe("");
        expect(r.status).toBe(0);
    });
});
