import type { ResourceValidationPolicy } from "@pulumi/policy";
import { withDefaults } from "../lib/config";
import { NS } from "../lib/summary";

export interface RequiredTagsConfig {
    /** Tags every Linode and firewall must carry; an entry ending in ":" asks for any tag with that prefix. */
    requiredTags: string[];
}

const DEFAULTS: RequiredTagsConfig = { requiredTags: [] };
const TAGGED = new Set(["linode:index/instance:Instance", "linode:index/firewall:Firewall"]);

/**
 * The tags a team requires (cost centre, owner, environment) on every Linode and firewall.
 *
 * Severity: low (advisory). Untagged resources escape cost reports and ownership searches. Not applicable until a
 * team lists its tags in the pack's configuration.
 */
export const requiredTags: ResourceValidationPolicy = {
    name: "redis-ha-required-tags",
    description: "Linodes and firewalls carry the tags the team requires.",
    enforcementLevel: "advisory",
    severity: "low",
    configSchema: {
        properties: {
            requiredTags: {
                type: "array",
                items: { type: "string", minLength: 1, maxLength: 50 },
                default: DEFAULTS.requiredTags,
                description: 'Tags every Linode and firewall carries; "team:" asks for any tag starting with team:.',
            },
        },
    },
    validateResource: (args, reportViolation) => {
        if (!TAGGED.has(args.type)) args.notApplicable(`${args.type} is not checked for tags`);
        const { requiredTags: wanted } = withDefaults(args.getConfig<Partial<RequiredTagsConfig>>(), DEFAULTS);
        if (wanted.length === 0) args.notApplicable("no requiredTags configured");
        const tags = (args.props.tags as string[] | undefined) ?? [];
        const missing = wanted.filter((w) =>
            w.endsWith(":") ? !tags.some((t) => t.startsWith(w)) : !tags.includes(w),
        );
        if (missing.length > 0)
            reportViolation(
                `${args.type} ${args.name} lacks the required tag${missing.length === 1 ? "" : "s"} ${missing.map((m) => (m.endsWith(":") ? `${m}<value>` : m)).join(", ")} (has: ${tags.join(", ") || "none"}); expected every tag of the policy's requiredTags. Fix: ${NS}:tags.`,
            );
    },
};
