import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { PROJECT_DIR } from "../engine/stackFile";

/**
 * The GitHub workflows: valid against GitHub's workflow schema (checked by @action-validator/cli, not by hand), and
 * holding to what the pull-request previews promise: pinned actions, least privilege, previews of every stack.
 */

const WORKFLOWS = join(PROJECT_DIR, ".github", "workflows");
const files = readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));
const validator = join(PROJECT_DIR, "node_modules", ".bin", "action-validator");
const validate = (file: string) => spawnSync(validator, [file], { encoding: "utf8", timeout: 60_000 });

interface Step {
    uses?: string;
    run?: string;
    with?: Record<string, unknown>;
}
interface Job {
    if?: string;
    needs?: string;
    permissions?: Record<string, string>;
    env?: Record<string, string>;
    strategy?: { matrix: { stack: string } };
    steps: Step[];
}
interface Workflow {
    on: Record<string, unknown>;
    permissions: Record<string, string>;
    concurrency: { group: string; "cancel-in-progress": boolean };
    jobs: Record<string, Job>;
}
const workflow = (file: string) => parse(readFileSync(join(WORKFLOWS, file), "utf8")) as Workflow;

describe("GitHub workflows", () => {
    it("are preview.yml and ci.yml", () => {
        expect(files.sort()).toEqual(["ci.yml", "preview.yml"]);
    });

    it.each(files)("%s is valid against the workflow schema (action-validator)", (file) => {
        const r = validate(join(WORKFLOWS, file));
        expect(r.stderr + r.stdout).toBe("");
        expect(r.status).toBe(0);
    });

    it("the validator refuses a broken workflow (so the check above can fail)", () => {
        const dir = mkdtempSync(join(tmpdir(), "workflow-"));
        const broken = join(dir, "broken.yml");
        writeFileSync(broken, readFileSync(join(WORKFLOWS, "ci.yml"), "utf8").replace("runs-on:", "runs_on:"));
        const r = validate(broken);
        rmSync(dir, { recursive: true });
        expect(r.status).toBe(1);
        expect(r.stderr + r.stdout).toContain("Additional property 'runs_on' is not allowed");
    });

    it.each(files)("%s pins every action to a commit and reads only by default", (file) => {
        const w = workflow(file);
        expect(w.permissions).toEqual({ contents: "read" });
        expect(w.concurrency["cancel-in-progress"]).toBe(true);
        for (const job of Object.values(w.jobs))
            for (const step of job.steps)
                if (step.uses !== undefined) expect(step.uses).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
    });

    it("preview.yml reviews every stack offline and previews every stack with the policy pack, commenting on the PR", () => {
        const w = workflow("preview.yml");
        expect(Object.keys(w.on)).toEqual(["pull_request"]);
        const { review, preview } = w.jobs;
        // The matrix comes from the stack files, computed by the `stacks` job.
        for (const job of [review, preview]) {
            expect(job.needs).toBe("stacks");
            expect(job.strategy?.matrix.stack).toBe("${{ fromJSON(needs.stacks.outputs.stacks) }}");
        }
        // Offline review: no secrets, runs for forks too.
        expect(JSON.stringify(review)).not.toContain("secrets.");
        expect(review.if).toBeUndefined();
        expect(review.steps.map((s) => s.run ?? "").join("\n")).toContain(
            'npm run -s review -- --stack "$STACK" --json',
        );
        // Preview: skipped for forks, comments, tokens from repository secrets, least privilege.
        expect(preview.if).toBe("github.event.pull_request.head.repo.full_name == github.repository");
        expect(preview.permissions).toEqual({ contents: "read", "pull-requests": "write" });
        expect(preview.env).toEqual({
            PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_ACCESS_TOKEN }}",
            LINODE_TOKEN: "${{ secrets.LINODE_TOKEN }}",
        });
        const pulumi = preview.steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
        expect(pulumi?.with).toMatchObject({ command: "preview", policyPacks: "policy", "comment-on-pr": true });
        // The policy tests and this validation run on every pull request too.
        expect(w.jobs["policy-tests"].steps.map((s) => s.run ?? "").join("\n")).toContain(
            "npx jest tests/policy tests/workflows.test.ts",
        );
    });

    it("ci.yml runs ./run.sh test on every push", () => {
        const w = workflow("ci.yml");
        expect(Object.keys(w.on)).toEqual(["push"]);
        expect(w.jobs.test.steps.map((s) => s.run ?? "").join("\n")).toContain("./run.sh test");
    });

    it("the stacks job would list exactly the shipped stack files", () => {
        const shipped = readdirSync(PROJECT_DIR)
            .filter((f) => /^Pulumi\..+\.yaml$/.test(f))
            .map((f) => f.replace(/^Pulumi\.(.+)\.yaml$/, "$1"))
            .sort();
        const list = workflow("preview.yml").jobs.stacks.steps.find((s) => s.run?.includes("GITHUB_OUTPUT"))?.run;
        expect(list).toBeDefined();
        const r = spawnSync("bash", ["-c", `${list ?? ""}\ncat "$GITHUB_OUTPUT"`], {
            cwd: PROJECT_DIR,
            encoding: "utf8",
            env: { ...process.env, GITHUB_OUTPUT: join(mkdtempSync(join(tmpdir(), "gh-")), "out") },
        });
        expect(r.status).toBe(0);
        expect(r.stdout).toContain(`stacks=${JSON.stringify(shipped)}`);
    });
});
