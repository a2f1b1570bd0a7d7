import { accessSync, constants } from "node:fs";
import { REDIS_SENTINEL_BIN, REDIS_SERVER_BIN } from "../../client/testing/loopbackCluster";

/** Why real-server tests cannot run here, or undefined when they can. */
function missingServers(): string | undefined {
    if (process.env.REDIS_HA_CLUSTER_MODULE) return undefined;
    for (const bin of [REDIS_SERVER_BIN, REDIS_SENTINEL_BIN]) {
        try {
            accessSync(bin, constants.X_OK);
        } catch {
            return `${bin} is not installed (apt-get install redis-server redis-sentinel, or set REDIS_SERVER_BIN / REDIS_SENTINEL_BIN)`;
        }
    }
    return undefined;
}

/**
 * `describe` for tests against real redis-server / redis-sentinel processes. Without the binaries
 * they are skipped with the reason printed, except under `CI=true`, where they fail instead: CI
 * must never pass by skipping them.
 */
export const describeWithServers: jest.Describe = (() => {
    const reason = missingServers();
    if (reason === undefined) return describe;
    if (process.env.CI === "true") {
        return ((name: string) => {
            describe(name, () => {
                test("real servers are available (CI=true does not skip)", () => {
                    throw new Error(`cannot run real-server client tests: ${reason}`);
                });
            });
        }) as unknown as jest.Describe; // only the (name, fn) form is used by these tests
    }
    console.warn(`SKIPPED: real-server client tests: ${reason}`);
    return describe.skip;
})();
