import type { PolicyPackConfig } from "@pulumi/policy";
import { Command } from "commander";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { filesInUserData } from "../cloud-init";
import { analyseFailures, ConfigError, type FailureCase } from "../topology";
import { runUnderMocks, unwrapSecrets, type MockRun } from "../engine/mockRun";
import { programConfig, PROJECT_DIR, readStackConfig, type ProgramConfig } from "../engine/stackFile";
import { hasMandatory, MANDATORY_VIOLATION_EXIT, runPolicies, type Violation } from "./policy";

interface PlanRow {
    type: string;
    name: string;
    region: string;
    role: string;
    size: string;
}

/** The custom resources that would be created, with region, role and size where they apply. */
export function planRows(run: MockRun): PlanRow[] {
    return run.resources
        .filter((r) => r.custom)
        .map((r) => {
            const inputs = unwrapSecrets(r.inputs) as Record<string, unknown>;
            const node = run.topology.nodes.find(
                (n) => r.name.includes(`-${n.name}-`) || r.name.endsWith(`-${n.name}`),
            );
            const isInstance = r.type === "linode:index/instance:Instance";
            return {
                type: r.type.replace(/^([a-z]+):[a-zA-Z]+\/[a-zA-Z]+:/, "$1:"),
                name: r.name,
                region: typeof inputs.region === "string" ? inputs.region : (node?.region ?? "-"),
                role: node ? (isInstance ? `${node.initialRole} (${node.roles.join("+")})` : node.name) : "-",
                size: isInstance ? String(inputs.type) : "-",
            };
        });
}

function table(rows: Record<string, string>[]): string {
    if (rows.length === 0) return "";
    const cols = Object.keys(rows[0]);
    const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
    const line = (vals: string[]) =>
        vals
            .map((v, i) => v.padEnd(width[i]))
            .join("  ")
            .trimEnd();
    return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => r[c])))].join("\n");
}

interface SchemaResult {
    node: string;
    valid: boolean | null;
    detail: string;
}

function writeOut(run: MockRun, dir: string): SchemaResult[] {
    const hasCloudInit = spawnSync("cloud-init", ["--version"], { stdio: "ignore" }).status === 0;
    const results: SchemaResult[] = [];
    for (const [node, userData] of Object.entries(run.userData).sort()) {
        const nodeDir = join(dir, node);
        mkdirSync(nodeDir, { recursive: true });
        const file = join(nodeDir, "user-data");
        writeFileSync(file, userData, { mode: 0o600 });
        for (const f of filesInUserData(userData)) {
            const target = join(nodeDir, "files", f.path);
            mkdirSync(dirname(target), { recursive: true });
            writeFileSync(target, f.content, { mode: 0o600 });
        }
        if (!hasCloudInit) {
            results.push({ node, valid: null, detail: "cloud-init not installed; schema not checked" });
            continue;
        }
        const r = spawnSync("cloud-init", ["schema", "--config-file", file], { encoding: "utf8" });
        results.push({ node, valid: r.status === 0, detail: `${r.stdout}${r.stderr}`.trim().split("\n").pop() ?? "" });
    }
    return results;
}

function failureRows(cases: FailureCase[]): Record<string, string>[] {
    return cases.map((c) => ({
        lost: c.lost,
        sentinels: `${c.sentinelsLeft} left${c.majorityLeft ? " (majority)" : " (no majority)"}`,
        promotable: c.masterLost ? c.promotableLeft.join(",") || "none" : "-",
        outcome: c.verdict,
    }));
}

/** The policy pack's verdict: a table of violations (rule, level, resource, message), or that there are none. */
export function policySection(violations: readonly Violation[]): string {
    if (violations.length === 0) return "Policy pack (policy/): no violations.";
    const mandatory = violations.filter((v) => v.level === "mandatory").length;
    const rows = violations.map((v) => ({ rule: v.policy, level: v.level, resource: v.resource, message: v.message }));
    return `Policy pack (policy/): ${String(violations.length)} violation(s), ${String(mandatory)} mandatory:\n${table(rows)}`;
}

/** `--policy-config`: a JSON object, policy name to level or settings; one line naming the file when it is not. */
function readPolicyConfig(file: string): PolicyPackConfig {
    let parsed: unknown;
    try {
        parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
        throw new ConfigError([
            {
                key: "--policy-config",
                message: `${file}: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`,
            },
        ]);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
        throw new ConfigError([
            {
                key: "--policy-config",
                message: `${file} must be a JSON object such as {"redis-ha-allowed-regions": {"allowedRegions": ["us-east"]}}`,
            },
        ]);
    return parsed as PolicyPackConfig;
}

/**
 * The program refuses this stack's config. A pull request's reviewer still needs the policy pack's verdict, so the
 * pack runs over what the program would declare if the refusals were lifted: when it finds a mandatory violation,
 * review prints the refusals and the violations and exits 3 (naming the rule and the resource); otherwise the
 * config errors stand (exit 2). Config the planners cannot turn into resources at all stays a config error.
 */
async function reviewRefusedStack(
    stack: string,
    config: ProgramConfig,
    refused: ConfigError,
    policyConfig: PolicyPackConfig | undefined,
    json: boolean,
): Promise<number> {
    let violations: Violation[];
    try {
        const run = await runUnderMocks({ stack, config, problemHandling: () => undefined });
        violations = await runPolicies(run, policyConfig ? { config: policyConfig } : {});
    } catch {
        throw refused;
    }
    if (!hasMandatory(violations)) throw refused;
    if (json) console.log(JSON.stringify({ stack, configErrors: refused.problems, violations }, null, 2));
    else {
        console.log(`Stack ${stack}: the program refuses this config (pulumi up would fail before any resource):`);
        for (const p of refused.problems) console.log(`  ${p.key}: ${p.message}`);
        console.log(`\n${policySection(violations)}`);
    }
    return MANDATORY_VIOLATION_EXIT;
}

async function main(argv: string[]): Promise<number> {
    const program = new Command()
        .name("review")
        .description(
            "Shows what `pulumi up` would create for a stack, offline (Pulumi's mocks; no account, no CLI), and runs the policy pack (policy/) over it. Exit status: 0 fine, 1 invalid user-data or another failure, 2 bad config or arguments, 3 a mandatory policy violation.",
        )
        .option("--stack <name>", "stack to review (reads Pulumi.<name>.yaml)", "prod")
        .option("--project-dir <dir>", "directory holding Pulumi.yaml and the stack files", PROJECT_DIR)
        .option("--out <dir>", "write each node's user-data and the files inside it under this directory")
        .option("--json", "print one JSON document instead of tables")
        .option(
            "--policy-config <file>",
            "the policy pack's configuration (JSON, as `pulumi preview --policy-pack-config` takes it)",
        )
        .exitOverride();
    program.parse(argv);
    const opts = program.opts<{
        stack: string;
        projectDir: string;
        out?: string;
        json?: boolean;
        policyConfig?: string;
    }>();
    const policyConfig = opts.policyConfig === undefined ? undefined : readPolicyConfig(opts.policyConfig);

    const config = programConfig(readStackConfig(opts.stack, opts.projectDir), opts.projectDir);
    let run: MockRun;
    try {
        run = await runUnderMocks({ stack: opts.stack, config });
    } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        return reviewRefusedStack(opts.stack, config, e, policyConfig, opts.json === true);
    }
    const plan = planRows(run);
    const failures = analyseFailures(run.topology);
    const schema = opts.out ? writeOut(run, opts.out) : [];
    const invalid = schema.filter((s) => s.valid === false);
    const violations = await runPolicies(run, policyConfig ? { config: policyConfig } : {});

    if (opts.json) {
        console.log(
            JSON.stringify(
                {
                    stack: opts.stack,
                    topology: run.topology,
                    resources: plan,
                    commandOrder: run.resources
                        .filter((r) => r.type.startsWith("command:"))
                        .map((r) => ({ name: r.name, dependsOn: r.dependsOn })),
                    failureAnalysis: failures,
                    // Secret outputs are left out: review prints, and secrets are never printed.
                    outputs: Object.fromEntries(
                        Object.entries(run.stackOutputs).filter(([k]) => !run.secretStackOutputs.includes(k)),
                    ),
                    userDataSchema: schema,
                    violations,
                },
                null,
                2,
            ),
        );
    } else {
        const t = run.topology;
        console.log(
            `Stack ${opts.stack}: cluster ${t.cluster}, master name ${t.masterName}, preferred master ${t.preferredMaster} (${t.primaryRegion})`,
        );
        console.log(
            `Sentinels ${t.sentinel.count}, quorum ${t.sentinel.quorum}, majority ${t.sentinel.majority}; down-after ${t.sentinel.downAfterMs} ms, failover-timeout ${t.sentinel.failoverTimeoutMs} ms, parallel-syncs ${t.sentinel.parallelSyncs}\n`,
        );
        console.log(`Resources (${plan.length}):\n${table(plan.map((p) => ({ ...p })))}\n`);
        console.log("Post-deploy commands, in dependency order:");
        for (const r of run.resources.filter((r) => r.type.startsWith("command:")))
            console.log(`  ${r.name}${r.dependsOn.length ? `  <- ${r.dependsOn.join(", ")}` : ""}`);
        console.log(`\nFailure analysis:\n${table(failureRows(failures))}`);
        if (opts.out) {
            console.log(`\nUser-data written to ${opts.out}:`);
            for (const s of schema)
                console.log(
                    `  ${s.node}: ${s.valid === null ? s.detail : s.valid ? "cloud-init schema: valid" : `cloud-init schema: INVALID ${s.detail}`}`,
                );
        }
        console.log(`\n${policySection(violations)}`);
    }
    if (hasMandatory(violations)) return MANDATORY_VIOLATION_EXIT;
    return invalid.length > 0 ? 1 : 0;
}

main(process.argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
        if (err instanceof ConfigError) {
            console.error(err.message);
            process.exit(2);
        }
        if (
            err &&
            typeof err === "object" &&
            "code" in err &&
            (err as { code: string }).code.startsWith("commander.")
        ) {
            process.exit((err as { exitCode?: number }).exitCode ?? 2);
        }
        console.error(err instanceof Error ? `review: ${err.message}` : String(err));
        process.exit(1);
    },
);
