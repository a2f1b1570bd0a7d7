import * as linode from "@pulumi/linode";
import { validateResourceOfType, type ResourceValidationPolicy } from "@pulumi/policy";
import { withDefaults } from "../lib/config";
import { NS } from "../lib/summary";

export interface AllowedRegionsConfig {
    /** Linode regions this organisation deploys to (data residency, contracts); empty allows every region. */
    allowedRegions: string[];
}

const DEFAULTS: AllowedRegionsConfig = { allowedRegions: [] };

/**
 * Linodes only in the regions a team allows.
 *
 * Severity: high. Where data lives is a legal matter for many teams. Not applicable until the pack's configuration
 * lists the regions.
 */
export const allowedRegions: ResourceValidationPolicy = {
    name: "redis-ha-allowed-regions",
    description: "Linodes run only in the allowed regions.",
    enforcementLevel: "mandatory",
    severity: "high",
    configSchema: {
        properties: {
            allowedRegions: {
                type: "array",
                items: { type: "string", pattern: "^[a-z]{2}-[a-z]+(-[0-9]+)?$" },
                default: DEFAULTS.allowedRegions,
                description: "Linode region ids allowed; empty allows every region.",
            },
        },
    },
    validateResource: validateResourceOfType(linode.Instance, (instance, args, reportViolation) => {
        const { allowedRegions: allowed } = withDefaults(args.getConfig<Partial<AllowedRegionsConfig>>(), DEFAULTS);
        if (allowed.length === 0) args.notApplicable("no allowedRegions configured");
        if (!allowed.includes(instance.region))
            reportViolation(
                `linode.Instance ${args.name} is in region ${instance.region}; expected one of the allowed regions ${allowed.join(", ")}. Fix: that node's region in ${NS}:nodes (and ${NS}:primaryRegion if it is the primary).`,
            );
    }),
};
