/**
 * Every alert rule has a complete runbook section in docs/monitoring.md: a `### <alert>` heading (the anchor the rule's
 * `runbook` annotation links to), the rule's severity first, numbered checks, and when it clears.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { renderAlertRules } from "../../cloud-init";
import { topologyFromConfig } from "../../topology";
import { configWith } from "../helpers";

interface Rule {
    alert: string;
    labels: { severity: string };
    annotations: { runbook: string };
}

const doc = readFileSync(join(__dirname, "..", "..", "docs", "monitoring.md"), "utf8");
// Backups on, so the backup rule is rendered too.
const t = topologyFromConfig(
    configWith("prod", {
        "backup.enabled": true,
        monitoringEnabled: true,
        monitoringWebhookUrl: "https://x.example/h",
    }),
    "redis-ha",
    "prod",
);
const rules = (parse(renderAlertRules(t)) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

/** The text of the `### <name>` section, up to the next heading. */
function section(name: string): string | undefined {
    const m = new RegExp(`^### ${name}\\n([\\s\\S]*?)(?=^##)`, "m").exec(doc);
    return m?.[1];
}

describe("alert runbooks (docs/monitoring.md)", () => {
    it("covers every rule, and no alert that does not exist", () => {
        expect(rules.length).toBeGreaterThanOrEqual(20);
        const headings = [...doc.matchAll(/^### (RedisHa\w+)$/gm)].map((m) => m[1]);
        expect(headings.sort()).toEqual(rules.map((r) => r.alert).sort());
    });

    it.each(rules.map((r) => [r.alert, r] as const))("%s: severity, numbered checks, when it clears", (name, rule) => {
        const text = section(name) ?? "";
        expect(rule.annotations.runbook).toBe(`docs/monitoring.md#${name.toLowerCase()}`);
        expect(text.startsWith(`*${rule.labels.severity}* — `)).toBe(true);
        expect(text).toMatch(/^1\. .+$/m);
        expect(text).toMatch(/^\*\*Resolved when\*\* .+/m);
    });
});
