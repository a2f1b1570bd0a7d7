import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { describeTier, firstMissing } from "../tiers";

/**
 * The Python client's own suite (clients/python/tests: unit tests, then real redis-server/redis-sentinel on
 * 127.0.0.1), run with Debian's interpreter: a `python3` earlier on PATH (pyenv, a venv) may lack Debian's
 * python3-redis, python3-tenacity and python3-prometheus-client, which `./run.sh setup` installs.
 */
const PYTHON = process.env.REDIS_HA_PYTHON ?? "/usr/bin/python3";
const DIR = join(__dirname, "..", "..", "clients", "python");

function canRun(file: string): boolean {
    try {
        accessSync(file, constants.X_OK);
        return true;
    } catch {
        return false;
    }
}

function importsDebianPackages(): boolean {
    if (!canRun(PYTHON)) return false;
    return (
        spawnSync(PYTHON, ["-c", "import redis, tenacity, prometheus_client, pytest"], { stdio: "ignore" }).status === 0
    );
}

const missing = firstMissing([
    [canRun(PYTHON), `${PYTHON} is not installed (apt-get install python3)`],
    [
        importsDebianPackages(),
        `${PYTHON} cannot import redis, tenacity, prometheus_client and pytest (apt-get install python3-redis python3-tenacity python3-prometheus-client python3-pytest)`,
    ],
    [
        canRun("/usr/bin/redis-server") && canRun("/usr/bin/redis-sentinel"),
        "redis-server / redis-sentinel are not installed (apt-get install redis-server redis-sentinel)",
    ],
]);

describeTier("python client", missing)("python client (clients/python)", () => {
    it("passes its pytest suite against real Redis + Sentinel processes", () => {
        const started = Date.now();
        // -p no:cacheprovider: no .pytest_cache written into the repository.
        const r = spawnSync(PYTHON, ["-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q", "tests"], {
            cwd: DIR,
            encoding: "utf8",
            // CI=true reaches the suite: there, missing servers fail the Python tests instead of skipping them.
            env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
            timeout: 110_000,
        });
        const output = `${r.stdout}\n${r.stderr}`;
        process.stdout.write(`python client suite: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        if (r.status !== 0) throw new Error(`python3 -m pytest failed (exit ${String(r.status)}):\n${output}`);
        expect(output).toMatch(/\b\d+ passed\b/);
        expect(output).not.toMatch(/\b\d+ (skipped|failed|errors?|xfailed)\b/);
    });
});
