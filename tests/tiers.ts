/**
 * Test tiers that need something of the host (root, the lab's tools, shellcheck, cloud-init). A tier that cannot run
 * says why in the output; under CI=true it may not skip at all, so a CI machine that lost a tool fails loudly instead
 * of passing with fewer tests.
 */

/** A tier's prerequisite is missing on a CI machine, where every tier must run. */
export class TierUnavailableError extends Error {
    constructor(tier: string, reason: string) {
        super(`${tier}: ${reason}; under CI=true every tier must run (./run.sh setup installs what the tiers need)`);
        this.name = "TierUnavailableError";
    }
}

/** The first missing prerequisite, or undefined when all hold. */
export function firstMissing(checks: readonly (readonly [ok: boolean, reason: string])[]): string | undefined {
    return checks.find(([ok]) => !ok)?.[1];
}

/** `describe` when nothing is missing; otherwise `describe.skip` after printing why (a thrown error under CI=true). */
export function describeTier(tier: string, missing: string | undefined): jest.Describe {
    if (missing === undefined) return describe;
    if (process.env.CI === "true") throw new TierUnavailableError(tier, missing);
    process.stderr.write(`skipped: ${tier}: ${missing}\n`);
    return describe.skip;
}

/** `it` or a printed `it.skip`, with the same CI rule, for one test inside a suite. */
export function itTier(tier: string, missing: string | undefined): jest.It {
    if (missing === undefined) return it;
    if (process.env.CI === "true") throw new TierUnavailableError(tier, missing);
    process.stderr.write(`skipped: ${tier}: ${missing}\n`);
    return it.skip;
}
