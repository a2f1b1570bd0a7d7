import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { boundingSet, setprivBoundingSet } from "./capabilities";
import { createNodeCgroups, nodeCgroupPids, removeNodeCgroups } from "./cgroups";
import { LabError } from "./errors";
import { run, RunOptions, RunResult } from "./exec";
import { isMountPoint, removeTree, unmountAllUnder } from "./mounts";
import { assertNodeName, nodeDir, nodeNetns, NODES_DIR } from "./paths";
import { requireHost } from "./preflight";
import {
    childPids,
    innermostPid,
    processAlive,
    readCmdline,
    signal,
    sleep,
    waitForExit,
    waitForReap,
} from "./processes";
import { instanceIdFor, MetaData, renderMetaData, renderNetworkConfig } from "./seed";

/**
 * Lab nodes: each one a full Debian 12 boot (systemd as PID 1, a complete
 * cloud-init run) in a systemd-nspawn container, from the exact user-data
 * the Pulumi program sends to Linode.
 *
 * On disk, under /var/lib/redis-ha-lab/nodes/<name>/:
 *   upper/ work/  overlay layers over the shared, read-only base image
 *   merged/       the node's root filesystem (an overlay mount on the host)
 *   console.log   the container's console: systemd and cloud-init output
 *   nspawn.pid    the detached systemd-nspawn process
 *   node.json     what the node was booted with
 */

export interface LabNodeSpec {
    name: string;
    region: string;
    /** Static lab address (from the lab network), its prefix length and the region router. */
    address: string;
    prefixLen: number;
    gateway: string;
    /** The exact user-data; written to the seed byte for byte. */
    userData: string;
    /** Extra meta-data keys; may override the derived instance-id and local-hostname. */
    metaData?: MetaData;
    /** Written to /root/.ssh/authorized_keys, as Linode does with an instance's authorized_keys. */
    authorizedKeys: string[];
}

export interface NodeState {
    name: string;
    region: string;
    address: string;
    imageDir: string;
    instanceId: string;
    /** When the current boot started (ms since epoch); cloud-init results older than this are stale. */
    startedAt: number;
}

export interface CloudInitResult {
    ok: boolean;
    errors: string[];
    /** `cloud-init status --long`, plus the end of cloud-init-output.log when something failed. */
    detail: string;
}

export type StopMode = "poweroff" | "kill";

const SEED_DIR = "var/lib/cloud/seed/nocloud";
const NODE_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"];

/**
 * The nspawn command line. Each flag is here because this host needs it:
 * its PID 1 is not systemd, cgroups are v1 hybrid and there is no machined.
 */
export function nspawnArgs(name: string, merged: string): string[] {
    return [
        "--boot", // run the image's systemd as PID 1: a real boot, so cloud-init's units run
        `--directory=${merged}`,
        `--machine=${nodeNetns(name)}`, // rhl-<name>: how teardown recognises our nspawns
        // The namespace the lab network made, with eth0 plugged into the region bridge.
        // Being a private namespace, /proc/sys/net is writable in the node
        // (net.core.somaxconn and friends are per namespace).
        `--network-namespace-path=/run/netns/${nodeNetns(name)}`,
        // Unlike --private-network, a namespace path does not grant CAP_NET_ADMIN,
        // and systemd-networkd is skipped without it (ConditionCapability), so
        // eth0 would never get the address cloud-init rendered for it.
        "--capability=CAP_NET_ADMIN",
        "--register=no", // no systemd-machined on this host to register with
        // Without it nspawn asks the host's systemd (over D-Bus, which is absent)
        // for a scope unit; with it, it stays in the cgroup we start it in.
        "--keep-unit",
        "--private-users=no", // root is root: overlay files keep plain ownership
        "--resolv-conf=off", // keep the image's empty resolv.conf: no DNS in the lab
        "--timezone=off", // the image's UTC, not the host's zone
        "--link-journal=no", // keep the node's journal inside the node
        "--console=read-only", // no TTY here: console output goes to console.log
        // nspawn sends this to the container when it gets SIGTERM: a clean poweroff.
        "--kill-signal=SIGRTMIN+4",
    ];
}

/**
 * nspawn keeps /proc/sys read-only; with --private-network it re-mounts
 * /proc/sys/net writable, but a namespace given by path does not count as
 * private. "network" asks for exactly that carve-out: the node may set its
 * own namespace's net.* sysctls (net.core.somaxconn for Redis), while vm.*
 * and kernel.*, which are host-wide, stay read-only.
 */
export const NSPAWN_ENV = { SYSTEMD_NSPAWN_API_VFS_WRITABLE: "network" };

/**
 * Boots a node. On a fresh node it lays the overlay and writes the seed; a
 * node that was stopped boots again from its own disk (a reboot: same
 * instance-id, so cloud-init's per-instance modules do not run again).
 * Needs the node's network namespace (createNetwork) to exist.
 */
export async function bootNode(node: LabNodeSpec, imageDir: string): Promise<NodeState> {
    requireHost(["systemd-nspawn", "nsenter", "mount", "umount"]);
    assertNodeName(node.name);
    if (nodeRunning(node.name)) throw new LabError(`node ${node.name} is already running`);
    const netnsPath = `/run/netns/${nodeNetns(node.name)}`;
    if (!existsSync(netnsPath))
        throw new LabError(`node ${node.name} has no network namespace (create the lab network first)`);
    if (!existsSync(path.join(imageDir, "etc", "os-release")))
        throw new LabError(`${imageDir} is not a root filesystem`);

    const dir = nodeDir(node.name);
    const merged = path.join(dir, "merged");
    const previous = readNodeState(node.name);
    if (previous) assertSameInstance(previous, node, imageDir, merged);

    await mkdir(dir, { recursive: true, mode: 0o700 });
    // The overlay's root takes the mode of upper/: it is the node's "/", which
    // must be 0755 or every non-root service (dbus, redis) fails to read the system.
    for (const sub of ["upper", "merged"]) await mkdir(path.join(dir, sub), { mode: 0o755 }).catch(ignoreExists);
    await mkdir(path.join(dir, "work"), { mode: 0o700 }).catch(ignoreExists);
    if (!isMountPoint(merged)) {
        await run([
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            `lowerdir=${imageDir},upperdir=${path.join(dir, "upper")},workdir=${path.join(dir, "work")}`,
            merged,
        ]);
    }
    if (!previous) await writeSeed(node, merged);

    const state: NodeState = {
        name: node.name,
        region: node.region,
        address: node.address,
        imageDir,
        instanceId: instanceIdOf(node),
        startedAt: Date.now(),
    };
    await writeFile(path.join(dir, "node.json"), JSON.stringify(state, null, 2) + "\n");
    await startNspawn(node.name, merged, path.join(dir, "console.log"));
    return state;
}

/**
 * Stops a node. "poweroff" asks systemd in the node to shut down cleanly and
 * forces it after timeoutMs; "kill" pulls the plug at once (a host crash).
 * Leaves the disk (overlay) in place so the node can boot again.
 */
export async function stopNode(name: string, opts: { mode?: StopMode; timeoutMs?: number } = {}): Promise<void> {
    const mode = opts.mode ?? "poweroff";
    const pid = nspawnPid(name);
    if (pid !== undefined) {
        if (mode === "poweroff") {
            signal(pid, "SIGTERM"); // nspawn turns this into --kill-signal for the node's systemd
            await waitForExit(pid, opts.timeoutMs ?? 30_000);
        }
        if (processAlive(pid)) {
            // SIGKILL to the container's init takes its whole PID namespace with it.
            const init = containerInit(pid);
            if (init !== undefined) signal(init, "SIGKILL");
            signal(pid, "SIGKILL");
            await waitForExit(pid, 5_000);
        }
        await waitForReap(pid, 3_000);
    }
    // Anything left in the node's cgroups, e.g. an init orphaned by a crashed nspawn.
    for (let i = 0; i < 50; i++) {
        const left = nodeCgroupPids(name);
        if (left.length === 0) break;
        for (const p of left) signal(p, "SIGKILL");
        await sleep(100);
    }
    await removeNodeCgroups(name);
    await rm(path.join(nodeDir(name), "nspawn.pid"), { force: true });
    // nspawn leaves its mount-propagation directory behind when /run is not a tmpfs.
    await removeTree(path.join("/run/systemd/nspawn/propagate", nodeNetns(name)));
}

/** Stops the node at once and deletes its disk and state. Idempotent. */
export async function destroyNode(name: string): Promise<void> {
    await stopNode(name, { mode: "kill" });
    const dir = nodeDir(name);
    await unmountAllUnder(dir);
    await removeTree(dir);
}

/** True while the node's systemd-nspawn runs. */
export function nodeRunning(name: string): boolean {
    return nspawnPid(name) !== undefined;
}

/** Names of nodes that have state on disk, running or not. */
export function listNodes(): string[] {
    if (!existsSync(NODES_DIR)) return [];
    return readdirSync(NODES_DIR, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
}

export function readNodeState(name: string): NodeState | undefined {
    const file = path.join(nodeDir(name), "node.json");
    return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as NodeState) : undefined;
}

/** The node's root filesystem as seen from the host. */
export function nodeRoot(name: string): string {
    return path.join(nodeDir(name), "merged");
}

/**
 * Runs a command inside a running node, in all of its namespaces and with
 * its root's capabilities (as if from a root shell on the VM), with a clean
 * environment.
 */
export async function execInNode(name: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const pid = nspawnPid(name);
    const init = pid === undefined ? undefined : containerInit(pid);
    if (init === undefined) throw new LabError(`node ${name} is not running`);
    return run(
        [
            "nsenter",
            `--target=${init}`,
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--root",
            "--wd", // the node's / and cwd, not the host's
            // The node's bounding set, not the host's: no CAP_SYS_TIME, CAP_SYS_MODULE …
            "--",
            "/usr/bin/setpriv",
            `--bounding-set=${setprivBoundingSet(boundingSet(init))}`,
            "/usr/bin/env",
            "-i",
            ...NODE_ENV,
            ...argv,
        ],
        opts,
    );
}

/**
 * Waits for this boot's cloud-init run to finish and reports how it went.
 * `cloud-init status --wait` is not used: in 22.4 it can return as soon as a
 * stage fails, before the final stage has run. The end of the run is
 * boot-finished (written by the final stage) followed by result.json.
 */
export async function waitForCloudInit(name: string, timeoutMs: number): Promise<CloudInitResult> {
    const state = readNodeState(name);
    if (!state) throw new LabError(`node ${name} does not exist`);
    const root = nodeRoot(name);
    const bootFinished = path.join(root, "var/lib/cloud/instances", state.instanceId, "boot-finished");
    const resultFile = path.join(root, "var/lib/cloud/data/result.json");
    const deadline = Date.now() + timeoutMs;
    // mtimes are the host's clock either way (the node shares its kernel); allow 1 s of rounding.
    const thisBoot = (file: string) => existsSync(file) && statSync(file).mtimeMs >= state.startedAt - 1_000;

    while (!(thisBoot(bootFinished) && thisBoot(resultFile))) {
        if (!nodeRunning(name)) {
            return {
                ok: false,
                errors: [`node ${name} stopped before cloud-init finished`],
                detail: tail(path.join(nodeDir(name), "console.log"), 40),
            };
        }
        if (Date.now() >= deadline) {
            return {
                ok: false,
                errors: [`cloud-init did not finish within ${timeoutMs} ms`],
                detail: await statusDetail(name, true),
            };
        }
        await sleep(250);
    }

    const result = JSON.parse(readFileSync(resultFile, "utf8")) as { v1?: { errors?: unknown[] } };
    const errors = (result.v1?.errors ?? []).map(String);
    const status = await execInNode(name, ["cloud-init", "status", "--long"], { allowFailure: true });
    const overall = /^status:\s*(\S+)/m.exec(status.stdout)?.[1] ?? "unknown";
    if (overall !== "done") errors.push(`cloud-init status: ${overall}`);
    const ok = errors.length === 0;
    return { ok, errors, detail: ok ? status.stdout.trim() : await statusDetail(name, false, status.stdout) };
}

// ---------------------------------------------------------------------------

function ignoreExists(e: NodeJS.ErrnoException): void {
    if (e.code !== "EEXIST") throw e;
}

function instanceIdOf(node: LabNodeSpec): string {
    const override = node.metaData?.["instance-id"];
    return override === undefined ? instanceIdFor(node.name, node.userData) : String(override);
}

/** A stopped node only boots again as the same instance: new user-data means a new VM. */
function assertSameInstance(previous: NodeState, node: LabNodeSpec, imageDir: string, merged: string): void {
    if (previous.imageDir !== imageDir) {
        throw new LabError(`node ${node.name} was created from another image; destroy it first`);
    }
    if (previous.instanceId !== instanceIdOf(node)) {
        throw new LabError(
            `node ${node.name} exists with other user-data (on Linode that replaces the VM); destroy it first`,
        );
    }
    const seeded = path.join(merged, SEED_DIR, "user-data");
    if (existsSync(seeded) && readFileSync(seeded, "utf8") !== node.userData) {
        throw new LabError(`node ${node.name}: its seeded user-data differs from the given one; destroy it first`);
    }
}

async function writeSeed(node: LabNodeSpec, merged: string): Promise<void> {
    const seed = path.join(merged, SEED_DIR);
    await mkdir(seed, { recursive: true, mode: 0o755 });
    await writeFile(path.join(seed, "user-data"), Buffer.from(node.userData, "utf8"), { mode: 0o600 });
    await writeFile(path.join(seed, "meta-data"), renderMetaData(node.name, node.userData, node.metaData), {
        mode: 0o644,
    });
    await writeFile(
        path.join(seed, "network-config"),
        renderNetworkConfig({
            ifname: "eth0",
            address: node.address,
            prefixLen: node.prefixLen,
            gateway: node.gateway,
        }),
        { mode: 0o644 },
    );
    // Linode puts an instance's authorized_keys in place before first boot.
    const ssh = path.join(merged, "root", ".ssh");
    await mkdir(ssh, { recursive: true, mode: 0o700 });
    await chmod(ssh, 0o700);
    const keys = node.authorizedKeys.map((k) => k.trim()).filter(Boolean);
    await writeFile(path.join(ssh, "authorized_keys"), keys.length ? keys.join("\n") + "\n" : "", { mode: 0o600 });
}

/**
 * Starts nspawn detached (its own session, output to console.log) inside the
 * node's cgroups. A tiny sh wrapper joins the cgroups and then execs nspawn,
 * so nspawn starts in them and no process of the node is ever outside.
 */
async function startNspawn(name: string, merged: string, consoleLog: string): Promise<void> {
    const cgroupProcs = await createNodeCgroups(name);
    const joinThenExec = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1"; shift; n=$((n-1)); done; exec "$@"';
    const fd = openSync(consoleLog, "a");
    let pid: number | undefined;
    try {
        const child = spawn(
            "sh",
            [
                "-c",
                joinThenExec,
                "rhl-boot",
                String(cgroupProcs.length),
                ...cgroupProcs,
                "systemd-nspawn",
                ...nspawnArgs(name, merged),
            ],
            { detached: true, stdio: ["ignore", fd, fd], env: { ...process.env, ...NSPAWN_ENV } },
        );
        child.on("error", () => undefined); // reported below as "exited before booting"
        child.unref();
        pid = child.pid;
    } finally {
        closeSync(fd);
    }
    if (pid === undefined) throw new LabError(`node ${name}: could not start systemd-nspawn`);
    await writeFile(path.join(nodeDir(name), "nspawn.pid"), `${pid}\n`);

    // Up once the container's init exists; nspawn fails fast on bad flags or images.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
        if (!processAlive(pid)) {
            await stopNode(name, { mode: "kill" });
            throw new LabError(
                `node ${name}: systemd-nspawn exited before booting: ${lastLine(consoleLog)}`,
                tail(consoleLog, 40),
            );
        }
        if (containerInit(pid) !== undefined) return;
        await sleep(100);
    }
    await stopNode(name, { mode: "kill" });
    throw new LabError(`node ${name}: the container's init did not start within 15 s`, tail(consoleLog, 40));
}

/** The node's nspawn pid, if that process is alive and really is this node's nspawn (pids get reused). */
function nspawnPid(name: string): number | undefined {
    assertNodeName(name);
    const file = path.join(nodeDir(name), "nspawn.pid");
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, "utf8").trim());
    if (!processAlive(pid)) return undefined;
    const argv = readCmdline(pid) ?? [];
    // Between fork and exec the wrapper shell carries the same arguments.
    return argv.includes(`--machine=${nodeNetns(name)}`) ? pid : undefined;
}

/** The container's PID 1: the child of nspawn that is pid 1 in its own namespace. */
function containerInit(nspawn: number): number | undefined {
    return childPids(nspawn).find((p) => innermostPid(p) === 1);
}

async function statusDetail(name: string, running: boolean, status?: string): Promise<string> {
    let text = status ?? "";
    if (!status && running && nodeRunning(name)) {
        text = (await execInNode(name, ["cloud-init", "status", "--long"], { allowFailure: true, timeoutMs: 15_000 }))
            .stdout;
    }
    const output = tail(path.join(nodeRoot(name), "var/log/cloud-init-output.log"), 30);
    return `${text.trim()}\n--- cloud-init-output.log (end) ---\n${output}`;
}

function tail(file: string, lines: number): string {
    if (!existsSync(file)) return "";
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
}

function lastLine(file: string): string {
    const lines = tail(file, 20)
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean);
    return lines[lines.length - 1] ?? "(no output)";
}
