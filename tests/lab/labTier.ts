import path from "node:path";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { readFileSync } from "node:fs";
import { run } from "../../lab/exec";
import { hostLinks, LAB_PREFIX, listNetns, netnsPids } from "../../lab/network";
import { PREFIX, STATE_ROOT } from "../../lab/paths";
import { installHint, isRoot, missingTools, type HostTool } from "../../lab/preflight";
import { nspawnProcesses } from "../../lab/processes";
import { describeTier, firstMissing } from "../tiers";

/** The lab tier: root and the lab's tools; RHL_LAB=skip opts out (never under CI=true, see tests/tiers.ts). */
export function describeLab(tier: string, tools: readonly HostTool[]): jest.Describe {
    const missing = missingTools(tools);
    return describeTier(
        tier,
        firstMissing([
            [process.env.RHL_LAB !== "skip", "RHL_LAB=skip is set"],
            [isRoot(), "needs root (the lab makes network namespaces and containers)"],
            [missing.length === 0, missing.length ? installHint(missing) : ""],
        ]),
    );
}

/**
 * What the lab left on this host, found by the lab's own names only: namespaces and links carrying its prefix, the
 * processes inside those namespaces, systemd-nspawn processes whose machine carries it, mounts under its state
 * directory, its route. Anything else on the host (another project's namespaces or containers) is none of these
 * tests' business.
 */
export async function labLeftovers(): Promise<string[]> {
    // /proc/self/mountinfo: the fifth field is the mount point.
    const mounts = readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .map((l) => l.split(" ")[4] ?? "")
        .filter((m) => m === STATE_ROOT || m.startsWith(`${STATE_ROOT}/`));
    const routes = (await run(["ip", "-j", "route", "show", LAB_PREFIX])).stdout.trim();
    const netns = (await listNetns()).filter((n) => n.startsWith(PREFIX));
    const inNetns = await Promise.all(
        netns.map(async (n) => (await netnsPids(n)).map((p) => `pid ${String(p)} in netns ${n}`)),
    );
    return [
        ...netns.map((n) => `netns ${n}`),
        ...inNetns.flat(),
        ...(await hostLinks()).filter((l) => l.startsWith(PREFIX)).map((l) => `link ${l}`),
        ...nspawnProcesses(PREFIX).map((p) => `systemd-nspawn --machine=${p.machine} (pid ${p.pid})`),
        ...mounts.map((m) => `mount ${m}`),
        ...(routes && routes !== "[]" ? [`route ${LAB_PREFIX}: ${routes}`] : []),
    ];
}

/** The project root, where `lab/cli.ts` runs from. */
export const PROJECT_ROOT = path.join(__dirname, "..", "..");

/**
 * Runs `npm run lab -- ARGS` (tsx, no npm in between) and returns its output. A non-zero exit throws with stderr and
 * stdout, unless `allowFailure` (a drill reports a failed run in its JSON and exits non-zero).
 */
export function labCli(args: readonly string[], { allowFailure = false } = {}): SpawnSyncReturns<string> {
    const r = spawnSync(path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), ["lab/cli.ts", ...args], {
        cwd: PROJECT_ROOT,
        encoding: "utf8",
        timeout: 900_000,
    });
    if (r.status !== 0 && !allowFailure)
        throw new Error(`lab ${args.join(" ")} exited ${String(r.status)}:\n${r.stderr}\n${r.stdout}`);
    return r;
}
