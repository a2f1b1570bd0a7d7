import { analyseFailures, ConfigError, maxmemoryBytes, topologyFromConfig } from "../topology";
import { readStackConfig } from "../engine/stackFile";
import { configWith, PROD_NODES } from "./helpers";

const build = (stack: string, changes: Record<string, unknown> = {}) =>
    topologyFromConfig(configWith(stack, changes), "redis-ha", stack);

function problemsOf(stack: string, changes: Record<string, unknown>): string[] {
    try {
        build(stack, changes);
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).message.split("\n");
    }
    throw new Error("expected a ConfigError");
}

describe("prod topology", () => {
    const t = topologyFromConfig(readStackConfig("prod"), "redis-ha", "prod");

    it("has one preferred master in the primary region and an odd number of Sentinels with a majority quorum", () => {
        expect(t.nodes.filter((n) => n.initialRole === "master").map((n) => n.name)).toEqual(["east-a"]);
        expect(t.preferredMaster).toBe("east-a");
        expect(t.sentinel.count % 2).toBe(1);
        expect(t.sentinel.quorum).toBeGreaterThan(t.sentinel.count / 2);
        expect(t.regions.map((r) => [r.name, r.kind])).toEqual([
            ["us-east", "primary"],
            ["us-ord", "secondary"],
            ["us-central", "witness"],
        ]);
    });

    it("gives no region a Sentinel majority", () => {
        for (const r of t.regions) expect(r.sentinels).toBeLessThan(t.sentinel.majority);
    });

    it("gives every promotable Redis node the same replica-priority, so Sentinel promotes the most up-to-date one", () => {
        const priorities = new Set(t.nodes.filter((n) => n.promotable).map((n) => n.replicaPriority));
        expect([...priorities]).toEqual([100]);
        expect(t.nodes.find((n) => n.name === "witness")?.replicaPriority).toBeUndefined();
    });

    it("rolls out replicas and Sentinel-only nodes before the preferred master", () => {
        const order = [...t.nodes].sort((a, b) => a.rolloutOrder - b.rolloutOrder).map((n) => n.name);
        expect(order[order.length - 1]).toBe("east-a");
        expect(order[0]).toBe("witness");
    });

    it("derives maxmemory from the plan's RAM with room for fork copy-on-write", () => {
        const eastA = t.nodes.find((n) => n.name === "east-a");
        expect(eastA?.memoryMb).toBe(4096);
        expect(eastA?.maxmemoryBytes).toBe(maxmemoryBytes(4096, true));
        expect(maxmemoryBytes(4096, true)).toBeLessThan(0.5 * 4096 * 1024 * 1024);
        expect(maxmemoryBytes(4096, false)).toBeGreaterThan(maxmemoryBytes(4096, true));
    });

    it("survives the loss of any single node or region with a Sentinel majority and a promotable replica", () => {
        for (const c of analyseFailures(t)) {
            expect(c.majorityLeft).toBe(true);
            expect(c.survives).toBe(true);
        }
        const primaryLoss = analyseFailures(t).find((c) => c.lost === "region us-east");
        expect(primaryLoss?.promotableLeft).toEqual(["ord-a", "ord-b"]);
    });

    it("is the same for the same config (pure)", () => {
        expect(topologyFromConfig(readStackConfig("prod"), "redis-ha", "prod")).toEqual(t);
    });
});

describe("dev topology", () => {
    it("is one region of three small nodes, each running Redis and Sentinel", () => {
        const t = build("dev");
        expect(t.regions).toHaveLength(1);
        expect(t.nodes.map((n) => [n.type, n.roles.join("+")])).toEqual(
            Array(3).fill(["g6-nanode-1", "redis+sentinel"]),
        );
        expect(t.sentinel.quorum).toBe(2);
    });
});

describe("bad config fails with one line naming the key and the fix", () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
        ["unknown key", { maxmemry: "1gb" }, /^redis-ha:maxmemry: unknown key; remove it or correct its spelling/],
        [
            "unknown node key",
            { nodes: [{ ...PROD_NODES[0], rol: "x" }, ...PROD_NODES.slice(1)] },
            /^redis-ha:nodes\[0\]\.rol: unknown key/,
        ],
        ["wrong type", { downAfterMs: "soon" }, /^redis-ha:downAfterMs: must be a number/],
        ["timing out of range", { downAfterMs: 100 }, /^redis-ha:downAfterMs: must be at least 1000/],
        [
            "failover timeout below down-after",
            { downAfterMs: 20000, failoverTimeoutMs: 10000 },
            /^redis-ha:failoverTimeoutMs: 10000 is shorter than downAfterMs/,
        ],
        [
            "even Sentinels",
            { nodes: PROD_NODES.map((n) => (n.name === "east-b" ? { ...n, roles: ["redis", "sentinel"] } : n)) },
            /^redis-ha:nodes: 4 Sentinels configured; use an odd number/,
        ],
        [
            "fewer than three Sentinels",
            { nodes: PROD_NODES.filter((n) => n.name !== "witness") },
            /^redis-ha:nodes: 2 Sentinels configured/,
        ],
        [
            "quorum not a majority",
            { quorum: 1 },
            /^redis-ha:quorum: 1 is not a majority of 3 Sentinels; set it to a value from 2 to 3/,
        ],
        [
            "region holding a Sentinel majority",
            {
                nodes: [
                    { name: "east-a", region: "us-east", roles: ["redis", "sentinel"] },
                    { name: "east-b", region: "us-east", roles: ["redis", "sentinel"] },
                    { name: "ord-a", region: "us-ord", roles: ["redis", "sentinel"] },
                ],
            },
            /^redis-ha:nodes: region us-east holds 2 of 3 Sentinels, a majority/,
        ],
        [
            "no promotable replica",
            {
                nodes: PROD_NODES.map((n) =>
                    n.name !== "east-a" && n.roles.includes("redis") ? { ...n, promotable: false } : n,
                ),
            },
            /^redis-ha:nodes: no promotable replica/,
        ],
        [
            "master region without Redis",
            { primaryRegion: "us-central" },
            /^redis-ha:primaryRegion: region us-central has no node with the redis role/,
        ],
        [
            "primary region without nodes",
            { primaryRegion: "eu-west" },
            /^redis-ha:primaryRegion: region eu-west has no nodes/,
        ],
        [
            "client CIDR open to the world",
            { clientCidrs: ["0.0.0.0/0"] },
            /^redis-ha:clientCidrs\[0\]: must not open Redis and Sentinel to the whole internet/,
        ],
        ["not a CIDR", { adminCidrs: ["10.0.0.1"] }, /^redis-ha:adminCidrs\[0\]: must be a CIDR/],
        [
            "min replicas above replicas",
            { minReplicasToWrite: 4 },
            /^redis-ha:minReplicasToWrite: 4 exceeds the 3 replica\(s\)/,
        ],
        [
            "unknown plan without memory",
            { nodes: [{ ...PROD_NODES[0], type: "g9-future-1" }, ...PROD_NODES.slice(1)] },
            /^redis-ha:nodes\[0\]\.type: plan "g9-future-1" is not in this kit's memory table; set nodes\[0\]\.memoryMb/,
        ],
        [
            "unknown default plan",
            { nodeType: "g9-future-2" },
            /^redis-ha:nodeType: plan "g9-future-2" is not in this kit's memory table/,
        ],
        ["nodes of the wrong type", { nodes: "east-a" }, /^redis-ha:nodes: must be a list of nodes/],
        [
            "duplicate node name",
            { nodes: [...PROD_NODES, { ...PROD_NODES[1] }] },
            /redis-ha:nodes\[5\]\.name: "east-b" is used twice/,
        ],
        ["missing nodes", { nodes: undefined }, /^redis-ha:nodes: is required/],
        [
            "a region whose loss stops writes",
            { nodes: PROD_NODES.filter((n) => n.name !== "ord-b") },
            /^redis-ha:nodes: losing region us-east leaves no master that takes writes .*two Redis nodes in each data region/,
        ],
        [
            "fail-back hold-down out of range",
            { failbackHoldDownSec: -1 },
            /^redis-ha:failbackHoldDownSec: must be at least 0/,
        ],
    ];
    it.each(cases)("%s", (_label, changes, expected) => {
        const lines = problemsOf("prod", changes);
        expect(lines.some((l) => expected.test(l))).toBe(true);
        if (_label !== "duplicate node name") expect(lines).toHaveLength(1);
    });

    it("reports every problem at once", () => {
        const lines = problemsOf("prod", { quorum: 1, downAfterMs: 20000, failoverTimeoutMs: 10000 });
        expect(lines).toHaveLength(2);
    });
});
