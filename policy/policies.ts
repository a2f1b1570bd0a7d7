import type { Policies } from "@pulumi/policy";
import { allowedRegions } from "./rules/allowedRegions";
import { backupsEnabled } from "./rules/backupsEnabled";
import { firewallDropInbound } from "./rules/firewallDropInbound";
import { memoryHeadroom } from "./rules/memoryHeadroom";
import { minReplicasToWrite } from "./rules/minReplicasToWrite";
import { noPublicDataPorts } from "./rules/noPublicDataPorts";
import { noRootPassword } from "./rules/noRootPassword";
import { promotableReplicaElsewhere } from "./rules/promotableReplicaElsewhere";
import { requiredTags } from "./rules/requiredTags";
import { secretCredentials } from "./rules/secretCredentials";
import { sentinelCount } from "./rules/sentinelCount";
import { sentinelMajoritySpread } from "./rules/sentinelMajoritySpread";
import { sshHostKeyPinned } from "./rules/sshHostKeyPinned";

/**
 * Every rule of the pack, in the order reports list them. `index.ts` serves them as the CrossGuard pack; `npm run
 * review` runs the same objects over the program under mocks (review/policy.ts), so there is one copy of each rule.
 */
export const policies: Policies = [
    noPublicDataPorts,
    firewallDropInbound,
    noRootPassword,
    secretCredentials,
    sshHostKeyPinned,
    sentinelCount,
    sentinelMajoritySpread,
    promotableReplicaElsewhere,
    minReplicasToWrite,
    allowedRegions,
    backupsEnabled,
    memoryHeadroom,
    requiredTags,
];

/** The pack's name, as `pulumi preview --policy-pack` and Pulumi Cloud's policy groups show it. */
export const PACK_NAME = "redis-ha";
