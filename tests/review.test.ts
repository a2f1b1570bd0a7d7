import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { PATHS } from "../cloud-init";
import { resourceNames as names } from "../components/names";
import { PROJECT_DIR } from "../engine/stackFile";

const tsx = join(PROJECT_DIR, "node_modules", ".bin", "tsx");
const review = (...args: string[]) =>
    spawnSync(tsx, ["review/cli.ts", ...args], { cwd: PROJECT_DIR, encoding: "utf8", timeout: 60_000 });

describe("npm run review", () => {
    it.each(["prod", "dev"])("prints the plan and failure analysis for %s and writes valid user-data", (stack) => {
        const out = mkdtempSync(join(tmpdir(), `review-${stack}-`));
        const r = review("--stack", stack, "--out", out);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toContain("linode:Instance");
        expect(r.stdout).toContain("Failure analysis:");
        if (stack === "prod")
            expect(r.stdout).toMatch(/region us-east .* writes continue: failover to one of ord-a, ord-b/);
        expect(r.stdout).toMatch(new RegExp(`${names.drill}\\s+<- `));
        const nodes =
            stack === "prod" ? ["east-a", "east-b", "ord-a", "ord-b", "witness"] : ["dev-a", "dev-b", "dev-c"];
        for (const n of nodes) {
            expect(readFileSync(join(out, n, "user-data"), "utf8")).toMatch(/^#cloud-config\n/);
            expect(existsSync(join(out, n, "files", PATHS.nodeEnv))).toBe(true);
            // TLS by default: no plaintext port on any Redis or Sentinel, and no password in node.env (the secret
            // files are checked against every generated password in tests/security/tls.test.ts).
            for (const conf of [PATHS.redisConf, PATHS.sentinelConf]) {
                const file = join(out, n, "files", conf);
                if (!existsSync(file)) continue;
                const text = readFileSync(file, "utf8");
                expect(text).toMatch(/^port 0$/m);
                expect(text).toMatch(/^tls-port \d+$/m);
                expect(text).not.toMatch(/^requirepass /m);
            }
            expect(readFileSync(join(out, n, "files", PATHS.nodeEnv), "utf8")).not.toMatch(/PASSWORD/);
        }
        rmSync(out, { recursive: true });
    });

    it("prints one JSON document with --json", () => {
        const r = review("--stack", "prod", "--json");
        expect(r.status).toBe(0);
        const doc = JSON.parse(r.stdout) as {
            topology: { preferredMaster: string };
            failureAnalysis: { lost: string; writable: boolean; verdict: string }[];
            commandOrder: { name: string; dependsOn: string[] }[];
            outputs: Record<string, unknown>;
        };
        expect(doc.topology.preferredMaster).toBe("east-a");
        // Five nodes and three regions; prod keeps writing after any one of them is lost.
        expect(doc.failureAnalysis.map((c) => c.lost)).toHaveLength(8);
        const regionLosses = doc.failureAnalysis.filter((c) => c.lost.startsWith("region "));
        expect(regionLosses.map((c) => c.lost)).toEqual(["region us-east", "region us-ord", "region us-central"]);
        for (const c of doc.failureAnalysis) expect(c.verdict).toMatch(/^writes continue: /);
        // Two Redis nodes in the largest region: WAIT 2 puts a copy outside the master's region.
        expect(doc.outputs.regionSafeReplicas).toBe(2);
        expect(doc.commandOrder.find((c) => c.name.endsWith("failover-drill"))?.dependsOn).toHaveLength(7);
    });

    it("exits non-zero with one line naming the key and no stack trace on bad config", () => {
        // A project copy in a temporary directory: the test never writes into the repository.
        const dir = mkdtempSync(join(tmpdir(), "review-bad-"));
        copyFileSync(join(PROJECT_DIR, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
        const doc = parse(readFileSync(join(PROJECT_DIR, "Pulumi.prod.yaml"), "utf8")) as {
            config: Record<string, unknown>;
        };
        doc.config["redis-ha:quorum"] = 1;
        writeFileSync(join(dir, "Pulumi.bad-quorum.yaml"), stringify(doc));
        try {
            const r = review("--stack", "bad-quorum", "--project-dir", dir);
            expect(r.status).toBe(2);
            expect(r.stdout).toBe("");
            expect(r.stderr.trim().split("\n")).toEqual([
                "redis-ha:quorum: 1 is not a majority of 3 Sentinels; set it to a value from 2 to 3, or to 0 for the majority (2)",
            ]);
        } finally {
            rmSync(dir, { recursive: true });
        }
    });

    it("refuses an unknown stack with one line", () => {
        const r = review("--stack", "nope");
        expect(r.status).toBe(2);
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
        expect(r.stderr).toContain("Pulumi.nope.yaml");
    });
});
