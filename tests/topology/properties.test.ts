import fc from "fast-check";
import { renderUserData } from "../../cloud-init";
import { analyseFailures, ConfigError, StackConfigSchema, topologyFromConfig, type Topology } from "../../topology";

// Property tests over generated stacks: whatever the config, the program either builds a topology
// with the invariants below or refuses it with problems that each name a config key.

const REGIONS = ["us-east", "us-ord", "us-central", "eu-west"] as const;
const NAMES = ["a1", "b2", "c3", "d4", "e5", "f6", "g7", "bad--name"] as const;
const KEYS = new Set(Object.keys(StackConfigSchema.shape));

const nodeArb = fc.record(
    {
        name: fc.constantFrom(...NAMES),
        region: fc.constantFrom(...REGIONS),
        roles: fc.constantFrom(["redis"], ["sentinel"], ["redis", "sentinel"], ["sentinel", "redis"]),
        promotable: fc.boolean(),
        type: fc.constantFrom("g6-nanode-1", "g6-standard-2", "g9-unknown-1"),
        memoryMb: fc.constantFrom(1024, 8192),
    },
    { requiredKeys: ["name", "region", "roles"] },
);

/** Anything the schema accepts, mostly wrong in some way. */
const anyStack = fc.record(
    {
        nodes: fc.array(nodeArb, { minLength: 1, maxLength: 7 }),
        primaryRegion: fc.constantFrom(...REGIONS),
        clusterName: fc.constantFrom("redis-x", "bad--cluster"),
        quorum: fc.integer({ min: 0, max: 5 }),
        downAfterMs: fc.constantFrom(1000, 5000, 20000),
        failoverTimeoutMs: fc.constantFrom(3000, 10000, 30000),
        minReplicasToWrite: fc.integer({ min: 0, max: 3 }),
        adminCidrs: fc.constantFrom([], ["203.0.113.0/24"], ["0.0.0.0/1", "128.0.0.0/1"], ["10.0.0.0/7"]),
        clientCidrs: fc.constantFrom([], ["198.51.100.0/24", "2001:db8::/48"], ["10.0.0.0/8", "11.0.0.0/8"]),
        allowWideCidrs: fc.boolean(),
        sentinelPort: fc.constantFrom(26379, 6379),
    },
    { requiredKeys: ["nodes", "primaryRegion", "adminCidrs"] },
);

/** Stacks shaped like real ones (distinct names, 3 or 5 Sentinels spread over regions): most are accepted. */
const plausibleStack = fc
    .record({
        sentinels: fc.constantFrom(3, 5),
        regions: fc.integer({ min: 1, max: 3 }),
        extraRedis: fc.integer({ min: 1, max: 3 }),
        unpromotable: fc.boolean(),
        quorum: fc.constantFrom(0, 3),
        minReplicasToWrite: fc.integer({ min: 0, max: 1 }),
        split: fc.boolean(),
    })
    .map(({ sentinels, regions, extraRedis, unpromotable, quorum, minReplicasToWrite, split }) => {
        const nodes: Record<string, unknown>[] = [];
        for (let i = 0; i < sentinels; i++)
            nodes.push({
                name: `s${i}`,
                region: REGIONS[i % regions],
                roles: split ? ["sentinel"] : ["redis", "sentinel"],
            });
        for (let i = 0; i < extraRedis; i++)
            nodes.push({
                name: `r${i}`,
                region: REGIONS[i % regions],
                roles: ["redis"],
                ...(unpromotable && i === extraRedis - 1 ? { promotable: false } : {}),
            });
        // tls: false: the renders below use shared passwords (the TLS material is the program's, under mocks).
        return {
            nodes,
            primaryRegion: "us-east",
            quorum,
            minReplicasToWrite,
            adminCidrs: ["203.0.113.0/24"],
            tls: false,
        };
    });

/** The flat map the CLI hands the program: strings as they are, everything else as JSON. */
function rawConfig(stack: Record<string, unknown>, reverse = false): Record<string, string> {
    const entries = Object.entries(stack)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]): [string, string] => [
            `redis-ha:${k}`,
            typeof v === "string" ? v : JSON.stringify(reverse ? reversedKeys(v) : v),
        ]);
    return Object.fromEntries(reverse ? entries.reverse() : entries);
}

/** The same value with every object's keys in reverse order. */
function reversedKeys(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(reversedKeys);
    if (v && typeof v === "object")
        return Object.fromEntries(
            Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reversedKeys(x)]),
        );
    return v;
}

const SECRETS = { redisPassword: "p".repeat(32), sentinelPassword: "q".repeat(32) };

function renderAll(t: Topology, reverse = false): string[] {
    const pairs = t.nodes.map((n, i): [string, string] => [n.name, `192.0.2.${10 + i}`]);
    const addresses = Object.fromEntries(reverse ? [...pairs].reverse() : pairs);
    return t.nodes.map((n) => renderUserData({ topology: t, node: n.name, addresses, secrets: SECRETS }));
}

function assertAccepted(t: Topology, stack: Record<string, unknown>): void {
    const { count, quorum, majority } = t.sentinel;
    // A Sentinel majority quorum: odd, at least 3, so a majority survives the loss of any one Sentinel.
    expect(count % 2).toBe(1);
    expect(count).toBeGreaterThanOrEqual(3);
    expect(majority).toBe(Math.floor(count / 2) + 1);
    expect(quorum).toBeGreaterThanOrEqual(majority);
    expect(quorum).toBeLessThanOrEqual(count);
    expect(count - 1).toBeGreaterThanOrEqual(majority);
    // No region holds a Sentinel majority when the stack spans regions.
    if (t.regions.length > 1) for (const r of t.regions) expect(r.sentinels).toBeLessThan(majority);
    // One master, promotable, plus a promotable replica for Sentinel to fail over to.
    const masters = t.nodes.filter((n) => n.initialRole === "master");
    expect(masters.map((n) => n.name)).toEqual([t.preferredMaster]);
    expect(masters[0].promotable).toBe(true);
    expect(t.nodes.some((n) => n.promotable && n.runsRedis && n.name !== t.preferredMaster)).toBe(true);
    // Region loss: an accepted multi-region stack keeps a writable master after losing any one region.
    if (t.regions.length > 1)
        for (const c of analyseFailures(t).filter((x) => x.lost.startsWith("region ")))
            expect([c.lost, c.verdict]).toEqual([c.lost, expect.stringMatching(/^writes continue: /)]);
    // Region-safe count: WAIT that many and, wherever the master is, at least one acknowledging replica lives in
    // another region (the master's region holds at most count - 1 replicas), unless there is no other data region.
    const redisIn = (region: string) => t.nodes.filter((n) => n.runsRedis && n.region === region).length;
    const dataRegions = t.regions.filter((r) => r.redisNodes > 0);
    const replicaCount = t.nodes.filter((n) => n.runsRedis).length - 1;
    expect(t.dr.regionSafeReplicas).toBeLessThanOrEqual(replicaCount);
    if (dataRegions.length > 1 && Math.max(...dataRegions.map((r) => r.redisNodes)) <= replicaCount)
        for (const r of dataRegions) expect(redisIn(r.name) - 1).toBeLessThan(t.dr.regionSafeReplicas);
    // The fence refuses writes on a cut-off master well before the majority side can promote (down-after).
    expect(2 * t.dr.fenceReactionMs).toBeLessThanOrEqual(t.sentinel.downAfterMs);
    // Byte-stable user-data: twice the same, and the same from reordered but equivalent config and addresses.
    const rendered = renderAll(t);
    expect(renderAll(t)).toEqual(rendered);
    const again = topologyFromConfig(rawConfig(stack, true), "redis-ha", "gen");
    expect(again).toEqual(t);
    expect(renderAll(again, true)).toEqual(rendered);
}

function assertRejected(e: unknown): void {
    expect(e).toBeInstanceOf(ConfigError);
    const problems = (e as ConfigError).problems;
    expect(problems.length).toBeGreaterThan(0);
    expect((e as ConfigError).message.split("\n")).toHaveLength(problems.length);
    for (const p of problems) {
        const top = /^redis-ha:([A-Za-z]+)/.exec(p.key)?.[1];
        expect(top !== undefined && KEYS.has(top) ? "names a key" : p.key).toBe("names a key");
        expect(p.message).not.toMatch(/\n/);
        expect(p.message.length).toBeGreaterThan(0);
    }
}

function check(stack: Record<string, unknown>, tally: { accepted: number; rejected: number }): void {
    let t: Topology;
    try {
        t = topologyFromConfig(rawConfig(stack), "redis-ha", "gen");
    } catch (e) {
        assertRejected(e);
        tally.rejected++;
        return;
    }
    assertAccepted(t, stack);
    tally.accepted++;
}

describe("generated stacks", () => {
    it("are accepted with the invariants, or refused naming keys (arbitrary stacks)", () => {
        const tally = { accepted: 0, rejected: 0 };
        fc.assert(
            fc.property(anyStack, (stack) => {
                check(stack, tally);
            }),
            { numRuns: 300 },
        );
        expect(tally.rejected).toBeGreaterThan(100);
    });

    it("are accepted with the invariants, or refused naming keys (plausible stacks)", () => {
        const tally = { accepted: 0, rejected: 0 };
        fc.assert(
            fc.property(plausibleStack, (stack) => {
                check(stack, tally);
            }),
            { numRuns: 150 },
        );
        // Not vacuous: most plausible stacks pass, and some (a region holding a majority) do not.
        expect(tally.accepted).toBeGreaterThan(40);
        expect(tally.rejected).toBeGreaterThan(5);
    });
});
