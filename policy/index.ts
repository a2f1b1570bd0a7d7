import { PolicyPack } from "@pulumi/policy";
import { PACK_NAME, policies } from "./policies";

// Constructing the pack starts the policy engine's gRPC server: this file is only the pack's entry point (the
// `main` of policy/package.json). Tests and `npm run review` import ./policies instead.
new PolicyPack(PACK_NAME, {
    policies,
    enforcementLevel: "mandatory",
    description: "redis-ha's guard rails for Redis + Sentinel on Linode.",
    provider: "linode",
});
