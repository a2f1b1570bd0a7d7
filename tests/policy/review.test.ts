import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
});
