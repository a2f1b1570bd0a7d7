import { reviewSummary } from "../../review/summary";

/** The pull request's job summary rendered from `npm run review -- --json`. */

const review = {
    stack: "prod",
    resources: [
        {
            type: "linode:Instance",
            name: "redis-ha-east-a-linode",
            region: "us-east",
            role: "master",
            size: "g6-standard-2",
        },
    ],
    failureAnalysis: [{ lost: "region us-east", verdict: "Sentinel fails over to ord-a", survives: true }],
    violations: [] as { policy: string; level: string; resource: string; message: string }[],
};

describe("review/summary.ts", () => {
    it("says there are no violations, then shows the plan and the failure analysis", () => {
        const md = reviewSummary(review);
        expect(md.split("\n")[0]).toBe("## Review of stack `prod`: ✅ no policy violations");
        expect(md).toContain("| linode:Instance | redis-ha-east-a-linode | us-east | master | g6-standard-2 |");
        expect(md).toContain("| region us-east | Sentinel fails over to ord-a |");
        expect(md).not.toContain("### Policy violations");
    });

    it("leads with the mandatory violations and escapes table cells", () => {
        const md = reviewSummary({
            ...review,
            violations: [
                {
                    policy: "redis-ha-sentinel-count",
                    level: "mandatory",
                    resource: "redis-ha",
                    message: "2 Sentinels | a\nb",
                },
                { policy: "redis-ha-backups-enabled", level: "advisory", resource: "redis-ha", message: "off" },
            ],
        });
        expect(md.split("\n")[0]).toBe(
            "## Review of stack `prod`: ❌ 1 mandatory policy violation(s): `pulumi up` would be refused",
        );
        expect(md).toContain("| redis-ha-sentinel-count | mandatory | redis-ha | 2 Sentinels \\| a b |");
    });
});
