import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { PROJECT_DIR } from "../../engine/stackFile";

/** `npm run review` runs the policy pack: a table of violations, `--json` lists them, exit 3 on a mandatory one. */

const tsx = join(PROJECT_DIR, "node_modules", ".bin", "tsx");
const review = (...args: string[]) =>
    spawnSync(tsx, ["review/cli.ts", ...args], { cwd: PROJECT_DIR, encoding: "utf8", timeout: 60_000 });

describe("npm run review with the policy pack", () => {
    let dir: string;
    beforeAll(() => {
        dir = mkdtempSync(join(tmpdir(), "review-policy-"));
    });
    afterAll(() => {
        rmSync(dir, { recursive: true });
    });

    it("exits 3 on a mandatory violation, naming the rule and the resource, and lists it in --json", () => {
        const config = join(dir, "regions.json");
        writeFileSync(
            config,
            JSON.stringify({ "redis-ha-allowed-regions": { allowedRegions: ["us-east", "us-ord"] } }),
        );
        const started = Date.now();
        const table = review("--stack", "prod", "--policy-config", config);
        console.log(`review --stack prod with the policy pack: ${String(Date.now() - started)} ms`);
        expect(table.stderr).toBe("");
        expect(table.status).toBe(3);
        expect(table.stdout).toContain("Policy pack (policy/): 1 violation(s), 1 mandatory:");
        expect(table.stdout).toMatch(/RULE +LEVEL +RESOURCE +MESSAGE/);
        expect(table.stdout).toMatch(
            /redis-ha-allowed-regions +mandatory +redis-ha-witness-linode +linode.Instance redis-ha-witness-linode is in region us-central; expected one of the allowed regions us-east, us-ord\./,
        );

        const json = review("--stack", "prod", "--policy-config", config, "--json");
        expect(json.status).toBe(3);
        const doc = JSON.parse(json.stdout) as { violations: { policy: string; level: string; resource: string }[] };
        expect(doc.violations.map((v) => `${v.policy} ${v.level} ${v.resource}`)).toEqual([
            "redis-ha-allowed-regions mandatory redis-ha-witness-linode",
        ]);
    });

    /** Writes Pulumi.<name>.yaml into a copy of the project: the shipped prod stack with `change` applied to its config. */
    function stackLike(name: string, change: (config: Record<string, unknown>) => void): string {
        const dir2 = mkdtempSync(join(dir, `${name}-`));
        copyFileSync(join(PROJECT_DIR, "Pulumi.yaml"), join(dir2, "Pulumi.yaml"));
        const doc = parse(readFileSync(join(PROJECT_DIR, "Pulumi.prod.yaml"), "utf8")) as {
            config: Record<string, unknown>;
        };
        change(doc.config);
        writeFileSync(join(dir2, `Pulumi.${name}.yaml`), stringify(doc));
        return dir2;
    }
    type NodeEntry = { name: string; roles: string[] };
    const nodesOf = (config: Record<string, unknown>) => config["redis-ha:nodes"] as NodeEntry[];

    // The program refuses these stacks; review still gives the pack's verdict, so a pull request names the rule.
    it.each<[string, (config: Record<string, unknown>) => void, string]>([
        [
            "Redis open to the world",
            (config) => (config["redis-ha:clientCidrs"] = ["0.0.0.0/0"]),
            "redis-ha-no-public-data-ports +mandatory +redis-ha-firewall +linode.Firewall redis-ha-firewall accepts Redis port 6379 from the whole IPv4 internet",
        ],
        [
            "two Sentinels",
            (config) => (config["redis-ha:nodes"] = nodesOf(config).filter((n) => n.name !== "witness")),
            "redis-ha-sentinel-count +mandatory +redis-ha +cluster redis-prod \\(redis-ha\\) has 2 Sentinels",
        ],
        [
            "two of three Sentinels in one region",
            (config) =>
                (config["redis-ha:nodes"] = nodesOf(config)
                    .filter((n) => n.name !== "witness")
                    .map((n) => (n.name === "east-b" ? { ...n, roles: ["redis", "sentinel"] } : n))),
            "redis-ha-sentinel-majority-spread +mandatory +redis-ha +cluster redis-prod \\(redis-ha\\): region us-east holds 2 of 3 Sentinels",
        ],
    ])(
        "a stack the program refuses (%s) fails review with exit 3, naming the rule and the resource",
        (_, change, row) => {
            const project = stackLike("prod", change);
            const table = review("--stack", "prod", "--project-dir", project);
            expect(table.status).toBe(3);
            expect(table.stdout).toContain("the program refuses this config");
            expect(table.stdout).toMatch(new RegExp(row));
        },
    );

    it("--json lists the refusals beside the violations", () => {
        const project = stackLike("prod", (config) => (config["redis-ha:clientCidrs"] = ["0.0.0.0/0"]));
        const json = review("--stack", "prod", "--project-dir", project, "--json");
        expect(json.status).toBe(3);
        const doc = JSON.parse(json.stdout) as { configErrors: { key: string }[]; violations: { level: string }[] };
        expect(doc.configErrors.map((p) => p.key)).toEqual(["redis-ha:clientCidrs[0]"]);
        expect(doc.violations.filter((v) => v.level === "mandatory")).toHaveLength(2);
    });

    it("a config error no rule covers stays a config error: exit 2, one line naming the key", () => {
        const project = stackLike("prod", (config) => (config["redis-ha:downAfterMs"] = 50));
        const result = review("--stack", "prod", "--project-dir", project);
        expect(result.status).toBe(2);
        expect(result.stdout).toBe("");
        expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^redis-ha:downAfterMs: /)]);
    });
});
