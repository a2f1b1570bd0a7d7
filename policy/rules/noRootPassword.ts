import * as linode from "@pulumi/linode";
import { validateResourceOfType, type ResourceValidationPolicy } from "@pulumi/policy";
import { NS } from "../lib/summary";

/**
 * No Linode gets a root password.
 *
 * Severity: high. A root password is one more credential to leak (it lands in the state and the provider's logs);
 * the nodes take SSH keys only (cloud-init sets `ssh_pwauth: false`).
 */
export const noRootPassword: ResourceValidationPolicy = {
    name: "redis-ha-no-root-password",
    description: "No Linode sets rootPass: root logs in with SSH keys only.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateResource: validateResourceOfType(linode.Instance, (instance, args, reportViolation) => {
        if (instance.rootPass !== undefined && instance.rootPass !== "")
            reportViolation(
                `linode.Instance ${args.name} sets rootPass; expected no root password (root logs in with SSH keys only). Fix: remove rootPass and list your keys in ${NS}:authorizedKeys.`,
            );
    }),
};
