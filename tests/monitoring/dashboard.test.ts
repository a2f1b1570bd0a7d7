import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { DASHBOARD_ROWS, renderGrafanaDashboard } from "../../cloud-init";
import { describeTier } from "../tiers";
import { PROMTOOL, promtoolMissing, tool } from "./promtool";

/** The shipped dashboard file, rendered by cloud-init/monitoringDashboard.ts. */
export const DASHBOARD_FILE = join(__dirname, "..", "..", "monitoring", "grafana-dashboard.json");

describe("Grafana dashboard", () => {
    // Compared as data: the file is formatted by prettier like every other file of the repository.
    it("ships what the renderer makes (regenerate: npx tsx -e 'process.stdout.write(require(\"./cloud-init\").renderGrafanaDashboard())' > monitoring/grafana-dashboard.json && npx prettier --write monitoring/grafana-dashboard.json)", () => {
        expect(JSON.parse(readFileSync(DASHBOARD_FILE, "utf8"))).toEqual(JSON.parse(renderGrafanaDashboard()));
    });

    it("has one row per role, each panel on the chosen data source and cluster", () => {
        const doc = JSON.parse(renderGrafanaDashboard()) as {
            panels: { type: string; title: string; targets?: { expr: string }[]; datasource?: { uid: string } }[];
        };
        expect(doc.panels.filter((p) => p.type === "row").map((p) => p.title)).toEqual(["Redis", "Sentinel", "Node"]);
        for (const p of doc.panels.filter((x) => x.type !== "row")) {
            expect(p.datasource?.uid).toBe("${datasource}");
            for (const t of p.targets ?? []) expect(`${p.title}: ${t.expr}`).toContain(`cluster="$cluster"`);
        }
    });
});

describeTier("Grafana dashboard (promtool)", promtoolMissing)("Grafana dashboard (promtool)", () => {
    it("has only queries Prometheus parses", () => {
        const dir = mkdtempSync(join(tmpdir(), "redis-ha-dashboard-"));
        try {
            const rules = DASHBOARD_ROWS.flatMap((r) => r.panels).map((p, i) => ({
                record: `dashboard:panel_${String(i)}`,
                expr: p.expr.replaceAll("$cluster", "redis-prod"),
            }));
            writeFileSync(join(dir, "panels.yml"), stringify({ groups: [{ name: "panels", rules }] }));
            const r = tool(PROMTOOL, ["check", "rules", "panels.yml"], dir);
            expect(r.out).toContain(`SUCCESS: ${String(rules.length)} rules found`);
            expect(r.status).toBe(0);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
