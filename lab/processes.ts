import { existsSync, readdirSync, readFileSync } from "node:fs";

/** /proc helpers for finding and waiting on the lab's processes without broad pkill. */

/** Alive and not a zombie (a zombie has exited; it only waits to be reaped). */
export function processAlive(pid: number): boolean {
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        // The state follows the parenthesised command name, which may contain spaces.
        const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        return state !== "Z" && state !== "X";
    } catch {
        return false;
    }
}

export function readCmdline(pid: number): string[] | undefined {
    try {
        const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        return raw.split("\0").filter((a) => a.length > 0);
    } catch {
        return undefined;
    }
}

/** Direct children of a process, from every thread's children list. */
export function childPids(pid: number): number[] {
    const kids = new Set<number>();
    try {
        for (const tid of readdirSync(`/proc/${pid}/task`)) {
            const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8");
            for (const p of text.split(/\s+/)) if (p) kids.add(Number(p));
        }
    } catch {
        // gone
    }
    return [...kids];
}

/** The pid a process has inside its innermost PID namespace (1 for a container's init). */
export function innermostPid(pid: number): number | undefined {
    try {
        const line = readFileSync(`/proc/${pid}/status`, "utf8")
            .split("\n")
            .find((l) => l.startsWith("NSpid:"));
        const ids = line?.split(/\s+/).slice(1).filter(Boolean).map(Number);
        return ids?.[ids.length - 1];
    } catch {
        return undefined;
    }
}

export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (processAlive(pid)) {
        if (Date.now() >= deadline) return false;
        await sleep(100);
    }
    return true;
}

/**
 * Waits (bounded) until an exited process is also reaped, so that process
 * listings (pgrep) stop showing it. Reaping is the parent's job: this
 * process's event loop when it started nspawn, otherwise the host's init.
 */
export async function waitForReap(pid: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (existsSync(`/proc/${pid}`) && Date.now() < deadline) await sleep(50);
}

export function signal(pid: number, sig: NodeJS.Signals): void {
    try {
        process.kill(pid, sig);
    } catch {
        // already gone
    }
}

export interface NspawnProcess {
    pid: number;
    machine: string;
}

/** Every systemd-nspawn process on the host whose --machine starts with the prefix. */
export function nspawnProcesses(machinePrefix: string): NspawnProcess[] {
    const found: NspawnProcess[] = [];
    for (const entry of readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        const argv = readCmdline(Number(entry));
        if (!argv || !argv[0] || !/(^|\/)systemd-nspawn$/.test(argv[0])) continue;
        const machine = argv.find((a) => a.startsWith("--machine="))?.slice("--machine=".length);
        if (machine?.startsWith(machinePrefix)) found.push({ pid: Number(entry), machine });
    }
    return found;
}

export function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}
