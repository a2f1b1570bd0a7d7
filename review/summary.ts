import { readFileSync } from "node:fs";

/**
 * Renders `npm run review -- --json` as Markdown for a pull request's job summary (`$GITHUB_STEP_SUMMARY`): the
 * verdict, the policy violations, the plan and the failure analysis. Usage: `tsx review/summary.ts review.json`.
 */

interface ReviewJson {
    stack: string;
    resources: { type: string; name: string; region: string; role: string; size: string }[];
    failureAnalysis: { lost: string; verdict: string; survives: boolean }[];
    violations: { policy: string; level: string; resource: string; message: string }[];
}

/** A Markdown table cell: pipes escaped, line breaks flattened. */
const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
    return [
        `| ${header.join(" | ")} |`,
        `| ${header.map(() => "---").join(" | ")} |`,
        ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
    ].join("\n");
}

export function reviewSummary(review: ReviewJson): string {
    const mandatory = review.violations.filter((v) => v.level === "mandatory");
    const verdict =
        mandatory.length > 0
            ? `❌ ${String(mandatory.length)} mandatory policy violation(s): \`pulumi up\` would be refused`
            : review.violations.length > 0
              ? `⚠️ ${String(review.violations.length)} advisory policy violation(s)`
              : "✅ no policy violations";
    const parts = [`## Review of stack \`${review.stack}\`: ${verdict}`];
    if (review.violations.length > 0)
        parts.push(
            "### Policy violations",
            markdownTable(
                ["Rule", "Level", "Resource", "Message"],
                review.violations.map((v) => [v.policy, v.level, v.resource, v.message]),
            ),
        );
    parts.push(
        `### Plan (${String(review.resources.length)} resources)`,
        markdownTable(
            ["Type", "Name", "Region", "Role", "Size"],
            review.resources.map((r) => [r.type, r.name, r.region, r.role, r.size]),
        ),
        "### Failure analysis",
        markdownTable(
            ["Lost", "Outcome"],
            review.failureAnalysis.map((f) => [f.lost, f.verdict]),
        ),
    );
    return `${parts.join("\n\n")}\n`;
}

if (require.main === module) {
    const file = process.argv.at(2);
    if (file === undefined) {
        console.error("usage: tsx review/summary.ts <review.json>");
        process.exit(2);
    }
    process.stdout.write(reviewSummary(JSON.parse(readFileSync(file, "utf8")) as ReviewJson));
}
