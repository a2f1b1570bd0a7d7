import { spawnSync } from "node:child_process";
import {
    chmodSync,
    copyFileSync,
    existsSync,
    mkdirSync,
    mkdtempSync,
    readFileSync,
    rmSync,
    statSync,
    writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HOST_PATHS, PATHS, PATHS_LIB, renderPathsLib } from "../../cloud-init";
import { fileLines, lockPasswordLines } from "../../components/nodeFiles";

/**
 * `apply-settings`' file delivery run for real by bash: node.env points at a sandbox and `systemctl` is a stand-in
 * that records its calls, so the test sees which files change and which services would restart.
 */
const SCRIPTS = join(__dirname, "..", "..", "cloud-init", "scripts");
let dir: string;
beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "apply-settings-"));
    for (const d of ["bin", "scripts"]) mkdirSync(join(dir, d));
    for (const s of ["apply-settings", "lib.sh"]) copyFileSync(join(SCRIPTS, s), join(dir, "scripts", s));
    writeFileSync(
        join(dir, "scripts", PATHS_LIB),
        renderPathsLib({
            ...PATHS,
            nodeEnv: join(dir, "node.env"),
            // Where the delivered scripts land (at() below), so that a changed one is seen as a script.
            scriptsDir: at(PATHS.scriptsDir),
            stateDir: join(dir, "state"),
            scriptsReleased: join(dir, "state", "scripts-released"),
        }),
    );
    writeFileSync(join(dir, "node.env"), "NODE_NAME='east-b'\nRUNS_REDIS=0\nRUNS_SENTINEL=0\n");
    writeFileSync(join(dir, "bin", "systemctl"), `#!/bin/bash --norc\necho "$*" >>"${dir}/systemctl.log"\n`);
    chmodSync(join(dir, "bin", "systemctl"), 0o755);
});
afterEach(() => {
    rmSync(dir, { recursive: true });
});

const at = (path: string) => join(dir, "root", path);
function apply(files: { path: string; permissions: string; content: string }[]) {
    const input = fileLines(files.map((f) => ({ ...f, path: at(f.path), owner: "root:root" })));
    const r = spawnSync("/bin/bash", ["--norc", join(dir, "scripts", "apply-settings")], {
        input,
        encoding: "utf8",
        env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin` },
    });
    const log = (() => {
        try {
            return readFileSync(join(dir, "systemctl.log"), "utf8");
        } catch {
            return "";
        }
    })();
    rmSync(join(dir, "systemctl.log"), { force: true });
    return { ...r, systemctl: log.trim().split("\n").filter(Boolean) };
}

const guard = { path: `${PATHS.scriptsDir}/redis-start-guard`, permissions: "0755", content: "#!/bin/bash\necho v1\n" };
const dropIn = { path: PATHS.redisDropIn, permissions: "0644", content: "[Service]\nRestart=always\n" };

describe("apply-settings: file delivery", () => {
    it("installs files with their modes and restarts only the service whose unit changed", () => {
        const first = apply([guard, dropIn]);
        expect(first.stderr).toBe("");
        expect(first.status).toBe(0);
        expect(readFileSync(at(guard.path), "utf8")).toBe(guard.content);
        expect(statSync(at(guard.path)).mode & 0o777).toBe(0o755);
        expect(statSync(at(dropIn.path)).mode & 0o777).toBe(0o644);
        expect(first.systemctl).toEqual(["daemon-reload", "restart redis-server.service"]);
    });

    it("leaves unchanged files alone and restarts nothing when only a script changed; a changed script is released to the loops", () => {
        const released = join(dir, "state", "scripts-released");
        // The first rollout on a node releases what it delivered.
        expect(apply([guard, dropIn]).stdout).toContain("take them after their current round");
        const releasedAt = statSync(released).mtimeMs;
        const inode = statSync(at(dropIn.path)).ino;
        const again = apply([guard, dropIn]);
        expect(again.status).toBe(0);
        expect(again.systemctl).toEqual([]);
        expect(statSync(at(dropIn.path)).ino).toBe(inode);
        // Nothing changed: the loops (redis-fence, redis-homing) are not told to run a new release.
        expect(again.stdout).not.toContain("take them after their current round");
        expect(statSync(released).mtimeMs).toBe(releasedAt);
        const newer = apply([{ ...guard, content: "#!/bin/bash\necho v2\n" }, dropIn]);
        expect(newer.status).toBe(0);
        expect(readFileSync(at(guard.path), "utf8")).toBe("#!/bin/bash\necho v2\n");
        expect(newer.systemctl).toEqual([]);
        expect(statSync(at(dropIn.path)).ino).toBe(inode);
        expect(newer.stdout).toContain("redis-fence and redis-homing take them after their current round");
        expect(statSync(released).mtimeMs).toBeGreaterThan(releasedAt);
    });

    it("releases a script that an earlier step wrote before it failed", () => {
        const released = join(dir, "state", "scripts-released");
        apply([guard]);
        const releasedAt = statSync(released).mtimeMs;
        // A step that replaced the script and then failed (here: a bad line after it) never got to the release...
        const bad = spawnSync("/bin/bash", ["--norc", join(dir, "scripts", "apply-settings")], {
            input: `${fileLines([{ ...guard, path: at(guard.path), owner: "root:root", content: "#!/bin/bash\necho v3\n" }])}file etc/passwd 0644 eA==\n`,
            encoding: "utf8",
            env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin` },
        });
        expect(bad.status).toBe(2);
        expect(statSync(released).mtimeMs).toBe(releasedAt);
        // ...so the retry, which finds every file as it wants it, releases it.
        const retry = apply([{ ...guard, content: "#!/bin/bash\necho v3\n" }]);
        expect(retry.status).toBe(0);
        expect(retry.stdout).toContain("take them after their current round");
        expect(statSync(released).mtimeMs).toBeGreaterThan(releasedAt);
    });

    it("runs with a paths.sh older than itself (a rollout cut short): applies the files and tells the loops nothing", () => {
        const lib = join(dir, "scripts", PATHS_LIB);
        const old = readFileSync(lib, "utf8")
            .split("\n")
            .filter((l) => !l.startsWith("SCRIPTS_RELEASED_FILE="));
        writeFileSync(lib, old.join("\n"));
        const r = apply([guard]);
        expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
        expect(readFileSync(at(guard.path), "utf8")).toBe(guard.content);
        expect(r.stdout).not.toContain("take them after their current round");
    });

    it("refuses a relative path or a bad mode", () => {
        const r = spawnSync("/bin/bash", ["--norc", join(dir, "scripts", "apply-settings")], {
            input: "file etc/passwd 0644 eA==\n",
            encoding: "utf8",
            env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin` },
        });
        expect(r.status).toBe(2);
        expect(r.stderr.trim()).toBe("apply-settings: bad file line 'etc/passwd'");
    });
});

describe("apply-settings: host hardening", () => {
    const timerDropIn = { path: HOST_PATHS.upgradeTimerDropIn, permissions: "0644", content: "[Timer]\nOnCalendar=\n" };
    const sshd = { path: HOST_PATHS.sshdConfig, permissions: "0644", content: "PasswordAuthentication no\n" };

    it("restarts the upgrade timer with its new slot and reloads sshd for its settings, once each", () => {
        const first = apply([timerDropIn, sshd]);
        expect(first.stderr).toBe("");
        expect(first.status).toBe(0);
        expect(first.systemctl).toEqual([
            "daemon-reload",
            "enable apt-daily-upgrade.timer",
            "restart apt-daily-upgrade.timer",
            "reload ssh.service",
        ]);
        expect(apply([timerDropIn, sshd]).systemctl).toEqual([]);
        expect(
            apply([{ ...timerDropIn, content: "[Timer]\nOnCalendar=*-*-* 05:00:00 UTC\n" }, sshd]).systemctl,
        ).toEqual(["daemon-reload", "enable apt-daily-upgrade.timer", "restart apt-daily-upgrade.timer"]);
    });

    /** `lock-password` with getent answering `field` for root's password, and usermod recording its calls. */
    function lock(field: string) {
        writeFileSync(join(dir, "bin", "getent"), `#!/bin/bash --norc\necho "root:${field}:20000:0:99999:7:::"\n`);
        writeFileSync(join(dir, "bin", "usermod"), `#!/bin/bash --norc\necho "$*" >>"${dir}/usermod.log"\n`);
        chmodSync(join(dir, "bin", "getent"), 0o755);
        chmodSync(join(dir, "bin", "usermod"), 0o755);
        rmSync(join(dir, "usermod.log"), { force: true });
        const r = spawnSync("/bin/bash", ["--norc", join(dir, "scripts", "apply-settings")], {
            input: lockPasswordLines(),
            encoding: "utf8",
            env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin` },
        });
        const calls = existsSync(join(dir, "usermod.log")) ? readFileSync(join(dir, "usermod.log"), "utf8") : "";
        return { status: r.status, stderr: r.stderr, calls: calls.trim() };
    }

    it("removes a root password (Linode's hash, or an empty one) and leaves a password-less root alone", () => {
        expect(lock("$y$j9T$salt$hash")).toEqual({ status: 0, stderr: "", calls: "--password ! root" });
        expect(lock("")).toEqual({ status: 0, stderr: "", calls: "--password ! root" });
        expect(lock("!")).toEqual({ status: 0, stderr: "", calls: "" });
        expect(lock("*")).toEqual({ status: 0, stderr: "", calls: "" });
    });

    it("refuses a bad user name", () => {
        const r = spawnSync("/bin/bash", ["--norc", join(dir, "scripts", "apply-settings")], {
            input: "lock-password Root;x\n",
            encoding: "utf8",
            env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin` },
        });
        expect(r.status).toBe(2);
        expect(r.stderr.trim()).toBe("apply-settings: bad lock-password line 'Root;x'");
    });
});
