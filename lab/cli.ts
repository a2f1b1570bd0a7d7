import { Command, Option } from "commander";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ADDRESSING_MODES, ConfigError, type AddressingMode } from "../topology";
import { destroyAll, purgeImages } from "./cleanup";
import { drill, SCENARIOS, type DrillReport, type DrillWriter, type Scenario } from "./drill";
import { LabError } from "./errors";
import { crashRedis, heal, partitionNode, partitionRegion, pauseRedis, resumeRedis, startRedis } from "./faults";
import { ensureBaseImage } from "./image";
import { agreedMaster, labNode, nodeByAddress, redisStatus, sentinelEndpoints, sentinelStatus } from "./labCluster";
import { assertRoutesViaLab, createNetwork, readNetwork } from "./network";
import { bootNode, nodeRunning, readNodeState, stopNode, waitForCloudInit, execInNode } from "./nodes";
import { STATE_ROOT } from "./paths";
import { LAB_TOOLS, requireHost } from "./preflight";
import { instanceIdFor } from "./seed";
import { runCheck, sshArgv } from "./ssh";
import { run } from "./exec";
import { prepareLabStack, type LabStack, type LabStackOptions } from "./stack";
import { alertDrill, type AlertDrillReport } from "./alertDrill";
import { backupDrill, type BackupDrillReport } from "./backupDrill";

const CURRENT = path.join(STATE_ROOT, "current-stack");

let json = false;
/** A command's result: a line of text, or with --json one JSON object. */
const say = (m: string, data: Record<string, unknown> = {}) => {
    console.log(json ? JSON.stringify({ ok: true, message: m, ...data }) : m);
};
const progress = (m: string) => {
    // After Ctrl-C, in-flight waits fail on purpose; their messages would only mislead.
    if (!json && !interrupted) process.stderr.write(`  ${m}\n`);
};

function currentStack(): string | undefined {
    return existsSync(CURRENT) ? readFileSync(CURRENT, "utf8").trim() : undefined;
}

/** The stack that is up, checked against what the command names. */
async function upStack(stack: string, opts: LabStackOptions = {}): Promise<LabStack> {
    const current = currentStack();
    if (current !== stack)
        throw new LabError(
            current
                ? `stack ${current} is up, not ${stack}; use --stack ${current}`
                : `the lab is not up; run: npm run lab -- up --stack ${stack}`,
        );
    return prepareLabStack(stack, opts);
}

function isUpToDate(s: LabStack): boolean {
    return (
        currentStack() === s.stack &&
        readNetwork() !== undefined &&
        s.nodes.every(
            (n) => nodeRunning(n.name) && readNodeState(n.name)?.instanceId === instanceIdFor(n.name, n.userData),
        )
    );
}

/**
 * `addressing: ephemeral`: runs each node's bootstrap command over SSH with its stdin, one node at a time in the
 * program's order, as the program's remote commands do once every Linode exists. Idempotent (a node already
 * bootstrapped with the same peers changes nothing), so every `up` runs it.
 */
async function runBootstrap(s: LabStack): Promise<void> {
    for (const step of s.bootstrap) {
        const r = await run(sshArgv(s, step.node, [step.command]), {
            input: step.stdin,
            allowFailure: true,
            timeoutMs: 300_000,
        });
        if (r.code !== 0) throw new LabError(`bootstrap failed on ${step.node}`, r.stdout + r.stderr);
        progress(`${step.node}: ${r.stdout.trim().split("\n").at(-1) ?? "bootstrapped"}`);
    }
}

/** One node's step of `rollout`: how long it took and what apply-settings changed. */
interface RolloutStep {
    node: string;
    ms: number;
    applied: string[];
}

/**
 * `rollout`: the settings rollout as `pulumi up` runs it on a running cluster (components/rollout.ts): each node's
 * `apply-settings` over SSH with the stdin the program declares, one node at a time in the program's order (replicas
 * first, the preferred master last); a failed step stops the rest. `set` changes stack config first, as `pulumi config
 * set` would (a rotation: `credentialsGeneration`, `tlsCertValidityDays`); the nodes keep their user-data.
 */
async function rollout(stack: string, set: Readonly<Record<string, string>>): Promise<RolloutStep[]> {
    const s = await upStack(stack, Object.keys(set).length > 0 ? { set } : {});
    const steps: RolloutStep[] = [];
    for (const step of s.rollout) {
        const t0 = Date.now();
        const r = await run(sshArgv(s, step.node, [step.command]), {
            input: step.stdin,
            allowFailure: true,
            timeoutMs: 300_000,
        });
        if (r.code !== 0) throw new LabError(`rollout failed on ${step.node}`, r.stdout + r.stderr);
        const applied = r.stdout.trim().split("\n").filter(Boolean);
        steps.push({ node: step.node, ms: Date.now() - t0, applied });
        progress(`${step.node}: ${String(applied.length)} change(s) in ${String(Date.now() - t0)} ms`);
    }
    return steps;
}

/** `up`: idempotent; boots every node from its exact user-data and waits until the cluster is healthy. */
async function up(stack: string, opts: LabStackOptions = {}): Promise<LabStack> {
    requireHost(LAB_TOOLS);
    const s = await prepareLabStack(stack, opts);
    const current = currentStack();
    if (current && current !== stack)
        throw new LabError(`stack ${current} is up; run: npm run lab -- down (one lab stack at a time)`);
    if (!isUpToDate(s)) {
        if (current || readNetwork()) {
            progress("removing a stale or partial lab first");
            await destroyAll();
        }
        writeFileSync(CURRENT, `${stack}\n`);
        progress(`base image (packages: ${s.packages.join(", ")})`);
        const image = await ensureBaseImage({ packages: s.packages, onProgress: progress });
        progress(`network: ${s.network.regions.map((r) => `${r.name} ${r.subnet}`).join(", ")}`);
        await createNetwork({ regions: s.topology.regions.map((r) => ({ name: r.name, nodes: [...r.nodes] })) });
        await assertRoutesViaLab(s.nodes.map((n) => n.address));
        const t0 = Date.now();
        await Promise.all(
            s.nodes.map((n) =>
                bootNode(n, image).then(() => {
                    progress(`booting ${n.name} (${n.region}, ${n.address})`);
                }),
            ),
        );
        const results = await Promise.all(
            s.nodes.map(async (n) => {
                const r = await waitForCloudInit(n.name, 600_000);
                progress(
                    `${n.name}: cloud-init ${r.ok ? "done" : "FAILED"} after ${((Date.now() - t0) / 1000).toFixed(1)} s`,
                );
                return { node: n.name, ...r };
            }),
        );
        const failed = results.filter((r) => !r.ok);
        if (failed.length > 0)
            throw new LabError(
                `cloud-init failed on ${failed.map((f) => `${f.node} (${f.errors.join("; ")})`).join(", ")}`,
                failed.map((f) => `--- ${f.node}\n${f.detail}`).join("\n"),
            );
    }
    // The same checks `pulumi up` runs, over real SSH with the stack's key: first each node's cloud-init result...
    const booted = await Promise.all(
        s.nodes.map((n) => runCheck(s, n.name, "check-cloud-init", ["120"]).then((r) => ({ node: n.name, ...r }))),
    );
    const notBooted = booted.filter((b) => b.code !== 0);
    if (notBooted.length > 0)
        throw new LabError(
            `check-cloud-init failed on ${notBooted.map((b) => b.node).join(", ")}`,
            notBooted.map((b) => b.stdout + b.stderr).join("\n"),
        );
    // ephemeral addressing: the bootstrap hands out the peers and starts Redis and Sentinel...
    await runBootstrap(s);
    // ...then replication and quorum.
    const checks = await Promise.all(
        s.topology.nodes.flatMap((n) => [
            ...(n.runsRedis
                ? [runCheck(s, n.name, "check-node").then((r) => ({ node: n.name, check: "check-node", ...r }))]
                : []),
            ...(n.runsSentinel
                ? [runCheck(s, n.name, "check-quorum").then((r) => ({ node: n.name, check: "check-quorum", ...r }))]
                : []),
        ]),
    );
    for (const c of checks) progress(c.stdout.trim().split("\n")[0] ?? `${c.node} ${c.check}`);
    const bad = checks.filter((c) => c.code !== 0);
    if (bad.length > 0)
        throw new LabError(
            `post-deploy checks failed: ${bad.map((b) => `${b.node} ${b.check}`).join(", ")}`,
            bad.map((b) => b.stdout + b.stderr).join("\n"),
        );
    return s;
}

function connectionInfo(s: LabStack) {
    const t = s.topology;
    return {
        stack: s.stack,
        addressing: t.addressing,
        masterName: t.masterName,
        // The stack output of the same name: WAIT this many replicas for a copy outside the master's region.
        regionSafeReplicas: t.dr.regionSafeReplicas,
        sentinels: sentinelEndpoints(s).map(({ host, port }) => ({ host, port })),
        nodes: t.nodes.map((plan) => {
            const n = labNode(s, plan.name);
            return {
                name: n.name,
                region: n.region,
                roles: [...plan.roles],
                host: n.address,
                redisPort: t.ports.redis,
                sentinelPort: t.ports.sentinel,
            };
        }),
        // Passwords only with --show-secrets (a terminal's scrollback and CI logs keep what is printed).
        redisPassword: showSecrets ? s.credentials.redisPassword : HIDDEN,
        sentinelPassword: showSecrets ? s.credentials.sentinelPassword : HIDDEN,
        ...(s.credentials.users
            ? {
                  users: Object.fromEntries(
                      Object.entries(s.credentials.users).map(([k, u]) => [
                          k,
                          { username: u.username, password: showSecrets ? u.password : HIDDEN },
                      ]),
                  ),
                  redisUsername: "app",
                  sentinelUsername: "app",
                  caCertificate: s.credentials.caCert,
              }
            : {}),
        sshKey: s.credentials.keyFile,
    };
}

/** What the lab prints instead of a password without --show-secrets. */
const HIDDEN = "[secret: --show-secrets]";
let showSecrets = false;

function printUp(s: LabStack): void {
    const c = connectionInfo(s);
    if (json) {
        console.log(JSON.stringify(c, null, 2));
        return;
    }
    console.log(`\nLab stack ${s.stack} is up. Master name: ${c.masterName}`);
    console.log(`Sentinels: ${c.sentinels.map((x) => `${x.host}:${x.port}`).join(", ")}`);
    console.log(
        `\nConnect (ioredis):\n  new Redis({ name: "${c.masterName}", sentinels: ${JSON.stringify(c.sentinels)},`,
    );
    if (c.caCertificate)
        console.log(
            `    username: "app", password: "${c.redisPassword}", sentinelUsername: "app", sentinelPassword: "${c.sentinelPassword}",\n    enableTLSForSentinelMode: true, tls: { ca }, sentinelTLS: { ca } })   (ca: lab up --json | caCertificate)`,
        );
    else console.log(`    password: "${c.redisPassword}", sentinelPassword: "${c.sentinelPassword}" })`);
    console.log(`\nSSH: npm run lab -- ssh ${s.nodes[0].name}    Tear down: npm run lab -- down`);
}

async function status(s: LabStack) {
    const cloudInit = await Promise.all(
        s.nodes.map(async (n) => {
            const r = await execInNode(n.name, ["cloud-init", "status"], { allowFailure: true }).catch(() => undefined);
            return { node: n.name, result: r ? r.stdout.trim().replace(/^status:\s*/, "") : "node not running" };
        }),
    );
    return { stack: s.stack, redis: await redisStatus(s), sentinels: await sentinelStatus(s), cloudInit };
}

function printReport(r: DrillReport): void {
    if (json) {
        console.log(JSON.stringify(r, null, 2));
        return;
    }
    const ms = (s: { p50: number; max: number } | null) => (s ? `p50 ${s.p50} ms, max ${s.max} ms` : "n/a");
    console.log(`\nDrill ${r.scenario} on stack ${r.stack}, ${r.runs} run(s), down-after ${r.downAfterMs} ms`);
    console.log(`  switch (fault -> +switch-master): ${ms(r.switchMs)}`);
    console.log(`  writes unavailable (rto):         ${ms(r.rtoMs)}`);
    console.log(`  acknowledged writes: ${r.ackedWrites}, lost: ${r.lostAckedWrites} (${r.durability})`);
    console.log(
        `  new master: ${r.newMaster}; old master rejoined as replica: ${r.oldMasterRejoinedAsReplica ?? "n/a"}`,
    );
    console.log(`  max simultaneous masters seen: ${r.maxSimultaneousMasters}; quorum ok: ${r.quorumOk}`);
    const errors = r.perRun.map((x) => JSON.stringify(x.writerErrors)).join(", ");
    console.log(`  errors that reached the writer: ${errors}`);
    if (r.perRun.some((x) => x.resumedAfterRestore))
        console.log(
            "  note: writes resumed only after the partition healed: the new master had no replica on its side (minReplicasToWrite)",
        );
    console.log(`\n  Targets (benchmark figures):`);
    for (const t of r.targets)
        console.log(
            `    ${t.met === null ? "-   " : t.met ? "met " : "MISS"} ${t.name}: ${t.measured} (target ${t.target})`,
        );
    console.log(`\n  Correctness: ${r.correct ? "OK" : "FAILED"}`);
}

/** Drills of the operations tooling (backups, monitoring) that `drill --scenario` runs besides the failover ones. */
const OPS_SCENARIOS = ["backup-restore", "alert"] as const;
type OpsScenario = (typeof OPS_SCENARIOS)[number];

const mbOpt = () =>
    new Option("--mb <n>", "backup-restore: size of the dataset in MiB")
        .argParser((v) => {
            const n = Number(v);
            if (!Number.isInteger(n) || n < 1 || n > 2048)
                throw new LabError("--mb must be a whole number from 1 to 2048");
            return n;
        })
        .default(200);

/**
 * `drill --scenario backup-restore`: boots the stack with backups on (bucket on the lab's S3 server), backs a dataset
 * up with the real timer's service, FLUSHALL, restores it with redis-restore and compares every key; then (unless
 * `seed` is false) boots a new cluster of the stack seeded from that backup and compares every key again.
 */
async function backupRestore(stack: string, mb: number, seed: boolean, addressing?: AddressingMode): Promise<number> {
    // seedFrom "": a seed remembered from an earlier run must not seed the cluster this drill writes into.
    const s = await up(stack, { addressing, backup: true, seedFrom: "" });
    const report = await backupDrill(s, mb, progress, {
        ...(seed
            ? {
                  reseed: async (seedFrom: string) => {
                      await destroyAll();
                      return up(stack, { addressing, backup: true, seedFrom });
                  },
              }
            : {}),
    });
    printBackupReport(report);
    return report.correct ? 0 : 1;
}

function printBackupReport(r: BackupDrillReport): void {
    if (json) {
        console.log(JSON.stringify(r, null, 2));
        return;
    }
    console.log(
        [
            `backup-restore on ${r.stack}: ${r.correct ? "correct" : "NOT CORRECT"}`,
            `keys ${String(r.keys)}, restored ${String(r.keysRestored)}, mismatches ${String(r.mismatches)}, checksum ${r.checksumOk ? "ok" : "NOT OK"}`,
            `backup of ${String(r.backupBytes)} bytes: upload and verification ${String(r.backupMs)} ms (mean of ${r.backupRuns.map((b) => String(b.phasesMs.transfer)).join(" and ")}; the whole service ${r.backupRuns.map((b) => String(b.serviceMs)).join(" and ")} ms, BGSAVE ${r.backupRuns.map((b) => String(b.phasesMs.bgsave)).join(" and ")} ms); plain s3cmd put ${String(r.rawUploadMs)} ms (${String(r.throughputRatio)} of raw throughput, target 0.8; in one request ${String(r.rawUploadSameOptionsMs)} ms)`,
            `restore ${String(r.restoreMs)} ms (target 60000)`,
            ...(r.seed
                ? [
                      `new cluster from ${r.seed.seedFrom}: ${String(r.seed.keysSeeded)} keys, mismatches ${String(r.seed.mismatches)}, replicas in sync ${String(r.seed.replicasInSync)}, ${String(r.seed.seedMs)} ms with the boot`,
                  ]
                : []),
        ].join("\n"),
    );
}

function printAlertReport(r: AlertDrillReport): void {
    if (json) {
        console.log(JSON.stringify(r, null, 2));
        return;
    }
    const secs = (x: Record<string, number>) =>
        Object.entries(x)
            .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
            .join(", ");
    console.log(
        [
            `alert drill on ${r.stack}: ${r.correct ? "correct" : "NOT CORRECT"}`,
            `targets up before the fault: ${String(r.targetsUp)} of ${String(r.targetsTotal)}`,
            `killed ${r.killed}; fired (from the kill): ${secs(r.alertsFired)} (RedisHaMasterDown bound ${String(r.masterDownBudgetSec)} s)`,
            `resolved: ${secs(r.alertsResolved)}; failover to ${r.failover.node} (${r.failover.severity}); webhook notified: ${String(r.webhookNotified)}`,
            ...(r.panelsWithoutData.length > 0
                ? [`dashboard panels without data: ${r.panelsWithoutData.join(", ")}`]
                : []),
        ].join("\n"),
    );
}

async function main(argv: string[]): Promise<number> {
    const program = new Command()
        .name("lab")
        .description("Boot a stack's nodes as real Debian 12 systems on this machine, break them, measure failover.");
    const stackOpt = () => new Option("--stack <name>", "stack (Pulumi.<name>.yaml)").default("prod");
    const jsonOpt = () => new Option("--json", "print JSON");
    const addressingOpt = () =>
        new Option(
            "--addressing <mode>",
            "override the stack's addressing (reserved | ephemeral) until `down`, like `pulumi config set addressing`",
        ).choices([...ADDRESSING_MODES]);
    let code = 0;
    const action =
        // A command's exit code is what its action returns, when that is a number; 0 otherwise.
        <A extends unknown[]>(fn: (...args: A) => Promise<unknown>) =>
            async (...args: A) => {
                const opts = args.find(
                    (a) => a && typeof a === "object" && !Array.isArray(a) && !(a instanceof Command),
                ) as { json?: boolean } | undefined;
                json = Boolean(opts?.json);
                const result = await fn(...args);
                code = typeof result === "number" ? result : 0;
            };

    program
        .command("up")
        .description("boot every node of the stack and wait until it is healthy")
        .addOption(stackOpt())
        .addOption(jsonOpt())
        .addOption(addressingOpt())
        .option("--backup", "turn backup.enabled on until `down`, with the bucket on the lab's own S3 server")
        .option("--show-secrets", "print the passwords (hidden otherwise)")
        .option("--tls", "tls on until `down` (the default): TLS on every link and ACL users (docs/security.md)")
        .option("--no-tls", "tls off until `down`: the shared passwords in clear text (to compare)")
        .action(
            action(
                async (o: {
                    stack: string;
                    addressing?: AddressingMode;
                    backup?: boolean;
                    showSecrets?: boolean;
                    tls?: boolean;
                }) => {
                    showSecrets = Boolean(o.showSecrets);
                    printUp(
                        await up(o.stack, {
                            addressing: o.addressing,
                            ...(o.backup ? { backup: true } : {}),
                            ...(o.tls !== undefined ? { tls: o.tls } : {}),
                        }),
                    );
                },
            ),
        );
    program
        .command("status")
        .description("roles, replication, Sentinel views, CKQUORUM, cloud-init")
        .addOption(stackOpt())
        .addOption(jsonOpt())
        .action(
            action(async (o: { stack: string }) => {
                const st = await status(await upStack(o.stack));
                if (json) {
                    console.log(JSON.stringify(st, null, 2));
                    return;
                }
                for (const r of st.redis)
                    console.log(
                        `redis     ${r.name.padEnd(10)} ${r.region.padEnd(11)} ${r.role.padEnd(11)} offset ${r.offset ?? "-"}  ${r.replication}`,
                    );
                for (const x of st.sentinels)
                    console.log(`sentinel  ${x.name.padEnd(10)} master ${x.master}  ${x.ckquorum}`);
                for (const c of st.cloudInit) console.log(`cloud-init ${c.node.padEnd(10)} ${c.result}`);
            }),
        );
    program
        .command("ssh <node> [command...]")
        .description("real SSH into a node as root with the stack's key")
        .addOption(stackOpt())
        .action(
            action(async (node: string, command: string[], o: { stack: string }) => {
                const s = await upStack(o.stack);
                const [file, ...args] = sshArgv(s, node, command);
                const child = spawn(
                    file,
                    ["-t", ...args].filter((a) => command.length === 0 || a !== "-t"),
                    { stdio: "inherit" },
                );
                return new Promise<number>((resolve) => {
                    child.on("exit", (c) => {
                        resolve(c ?? 1);
                    });
                });
            }),
        );
    const nodeCmd = (
        name: string,
        description: string,
        fn: (s: LabStack, node: string, whole: boolean) => Promise<void>,
    ) =>
        program
            .command(`${name} <node>`)
            .description(description)
            .addOption(stackOpt())
            .addOption(jsonOpt())
            .option("--node", "the whole container, not only Redis")
            .action(
                action(async (node: string, o: { stack: string; node?: boolean }) => {
                    const s = await upStack(o.stack);
                    if (!s.nodes.some((n) => n.name === node))
                        throw new LabError(`no node ${node}; nodes: ${s.nodes.map((n) => n.name).join(", ")}`);
                    await fn(s, node, Boolean(o.node));
                    say(`${name} ${node}${o.node ? " (node)" : ""}: done`, {
                        action: name,
                        node,
                        wholeNode: Boolean(o.node),
                    });
                }),
            );
    nodeCmd(
        "kill",
        "SIGKILL the node's Redis (systemd restarts it as the unit says); --node: pull the plug",
        async (_s, node, whole) => (whole ? stopNode(node, { mode: "kill" }) : crashRedis(node)),
    );
    nodeCmd("start", "start the node's Redis; --node: boot the container again", async (s, node, whole) => {
        if (!whole) return startRedis(node);
        const state = readNodeState(node);
        if (!state) throw new LabError(`${node} has no state on disk; bring the stack up again: npm run lab -- up`);
        await bootNode(labNode(s, node), state.imageDir);
        const r = await waitForCloudInit(node, 300_000);
        if (!r.ok) throw new LabError(`${node}: ${r.errors.join("; ")}`, r.detail);
    });
    nodeCmd("pause", "SIGSTOP the node's Redis (a hung master)", async (_s, node) => pauseRedis(node));
    nodeCmd("resume", "SIGCONT the node's Redis", async (_s, node) => resumeRedis(node));
    program
        .command("partition <target>")
        .description("cut a node or a whole region off the network")
        .addOption(stackOpt())
        .addOption(jsonOpt())
        .action(
            action(async (target: string, o: { stack: string }) => {
                const s = await upStack(o.stack);
                if (s.nodes.some((n) => n.name === target)) await partitionNode(target);
                else if (s.topology.regions.some((r) => r.name === target)) await partitionRegion(target);
                else throw new LabError(`${target} is neither a node nor a region of stack ${s.stack}`);
                say(`partitioned ${target}; undo with: npm run lab -- heal`, { action: "partition", target });
            }),
        );
    program
        .command("heal")
        .description("undo every partition")
        .addOption(stackOpt())
        .addOption(jsonOpt())
        .action(
            action(async (o: { stack: string }) => {
                await upStack(o.stack);
                await heal();
                say("healed", { action: "heal" });
            }),
        );
    program
        .command("drill")
        .description("boot the stack if needed, inject a fault while writing, report")
        .addOption(stackOpt())
        .addOption(jsonOpt())
        .addOption(addressingOpt())
        .addOption(
            new Option("--scenario <name>", "fault to inject, or an operations drill (backup-restore, alert)")
                .choices([...SCENARIOS, ...OPS_SCENARIOS])
                .default("master-crash"),
        )
        .addOption(mbOpt())
        .option("--skip-seed", "backup-restore: skip the new-cluster case (backup.seedFrom)")
        .option(
            "--screenshot <png>",
            "alert: render Prometheus's graph page over the drill into a PNG with headless chromium (Debian's chromium)",
        )
        .addOption(
            new Option("--writer <client>", "client the writer uses: ts (client/) or python (clients/python)")
                .choices(["ts", "python"])
                .default("ts"),
        )
        .option(
            "--runs <n>",
            "repetitions",
            (v) => {
                const n = Number(v);
                if (!Number.isInteger(n) || n < 1 || n > 50)
                    throw new LabError("--runs must be a whole number from 1 to 50");
                return n;
            },
            1,
        )
        .action(
            action(
                async (o: {
                    stack: string;
                    scenario: Scenario | OpsScenario;
                    runs: number;
                    writer: DrillWriter;
                    addressing?: AddressingMode;
                    mb: number;
                    skipSeed?: boolean;
                    screenshot?: string;
                }) => {
                    if (o.scenario === "backup-restore") return backupRestore(o.stack, o.mb, !o.skipSeed, o.addressing);
                    if (o.scenario === "alert") {
                        const report = await alertDrill(await up(o.stack, { addressing: o.addressing }), progress, {
                            ...(o.screenshot !== undefined ? { screenshot: o.screenshot } : {}),
                        });
                        printAlertReport(report);
                        return report.correct ? 0 : 1;
                    }
                    const s = await up(o.stack, { addressing: o.addressing });
                    const master = await agreedMaster(s);
                    progress(
                        `master: ${master ? nodeByAddress(s, master) : "?"}; running ${o.runs} x ${o.scenario} (writer: ${o.writer})`,
                    );
                    const report = await drill(s, o.scenario, o.runs, progress, o.writer);
                    printReport(report);
                    if (!json) console.log(`\nThe lab is still up: npm run lab -- status | down`);
                    return report.correct ? 0 : 1;
                },
            ),
        );
    program
        .command("backup-drill")
        .description("the same as: drill --scenario backup-restore (kept for scripts that call it)")
        .addOption(stackOpt())
        .addOption(jsonOpt())
        .addOption(mbOpt())
        .option("--skip-seed", "skip the new-cluster case (backup.seedFrom)")
        .action(
            action(async (o: { stack: string; mb: number; skipSeed?: boolean }) =>
                backupRestore(o.stack, o.mb, !o.skipSeed),
            ),
        );
    program
        .command("rollout")
        .description("run the settings rollout on the running stack, one node at a time, as `pulumi up` does")
        .addOption(stackOpt())
        .addOption(jsonOpt())
        .option(
            "--set <key=value>",
            "set a stack config key first (remembered until `down`), e.g. credentialsGeneration=2; repeatable",
            (v: string, all: Record<string, string>) => {
                const m = /^([A-Za-z][\w.]*)=(.*)$/.exec(v);
                if (!m) throw new LabError(`--set ${v}: expected key=value, e.g. credentialsGeneration=2`);
                return { ...all, [m[1]]: m[2] };
            },
            {},
        )
        .action(
            action(async (o: { stack: string; set: Record<string, string> }) => {
                const steps = await rollout(o.stack, o.set);
                if (json) console.log(JSON.stringify({ stack: o.stack, set: o.set, steps }, null, 2));
                else
                    for (const x of steps)
                        console.log(`${x.node.padEnd(10)} ${String(x.ms).padStart(6)} ms  ${x.applied.join("; ")}`);
            }),
        );
    program
        .command("down")
        .description("stop and remove everything the lab made")
        .addOption(jsonOpt())
        .option("--purge", "also remove the cached base image")
        .action(
            action(async (o: { purge?: boolean }) => {
                const removed = await destroyAll();
                rmSync(path.join(STATE_ROOT, "stacks"), { recursive: true, force: true });
                rmSync(CURRENT, { force: true });
                if (o.purge) await purgeImages();
                say(
                    `lab down${removed.length ? `: removed ${removed.join(", ")}` : ": nothing was running"}${o.purge ? "; image cache purged" : ""}`,
                    {
                        action: "down",
                        removed,
                        purged: Boolean(o.purge),
                    },
                );
            }),
        );

    await program.parseAsync(argv);
    return code;
}

// Ctrl-C during `up` or `drill` (or npm/tsx passing on SIGTERM/SIGHUP): tear down what was made, then exit.
let interrupted = false;
const onInterrupt = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${sig}: removing the lab\n`);
    void destroyAll()
        .then(() => {
            rmSync(path.join(STATE_ROOT, "stacks"), { recursive: true, force: true });
            rmSync(CURRENT, { force: true });
        })
        .finally(() => process.exit(130));
};
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, onInterrupt);

main(process.argv).then(
    (code) => {
        // After Ctrl-C the SIGINT handler owns the exit: it leaves once the lab is removed.
        if (!interrupted) process.exit(code);
    },
    (err: unknown) => {
        if (interrupted) return;
        if (err instanceof ConfigError || err instanceof LabError) {
            console.error(`lab: ${err.message}`);
            if (err instanceof LabError && err.detail && process.env.LAB_DEBUG) console.error(err.detail);
            else if (err instanceof LabError && err.detail) console.error(err.detail.split("\n").slice(-25).join("\n"));
        } else console.error(`lab: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
    },
);
