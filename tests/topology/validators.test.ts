import { readStackConfig } from "../../engine/stackFile";
import {
    parseStackConfig,
    validateAdminAccess,
    validateCidrs,
    validateLabels,
    validateMemory,
    validateNodes,
    validatePorts,
    validatePriorities,
    validateRegionLoss,
    validateRegions,
    validateSentinels,
    validateStackConfig,
    validateTimings,
    type ConfigProblem,
    type NodeConfig,
    type StackConfig,
} from "../../topology";

// One compliant fixture (the shipped prod stack); each case changes one thing and calls one validator directly.
const base: StackConfig = parseStackConfig(readStackConfig("prod"));
const withNodes = (f: (n: NodeConfig, i: number) => NodeConfig): StackConfig => ({ ...base, nodes: base.nodes.map(f) });
const lines = (problems: ConfigProblem[]) => problems.map((p) => `${p.key}: ${p.message}`);

type Validator = (config: StackConfig) => ConfigProblem[];
const validators: [string, Validator][] = [
    ["validateNodes", validateNodes],
    ["validateMemory", validateMemory],
    ["validateSentinels", validateSentinels],
    ["validateRegions", validateRegions],
    ["validatePriorities", validatePriorities],
    ["validateRegionLoss", validateRegionLoss],
    ["validateTimings", validateTimings],
    ["validatePorts", validatePorts],
    ["validateCidrs", validateCidrs],
    ["validateAdminAccess", validateAdminAccess],
    ["validateLabels", (c) => validateLabels(c, "redis-prod")],
];

describe("each validator alone", () => {
    it.each(validators)("%s accepts the shipped prod stack", (_name, validate) => {
        expect(validate(base)).toEqual([]);
    });

    it("validateNodes: duplicate names and promotable on a Sentinel-only node", () => {
        const config = { ...base, nodes: [...base.nodes, { ...base.nodes[4], promotable: true }] };
        expect(lines(validateNodes(config))).toEqual([
            'redis-ha:nodes[5].name: "witness" is used twice; give every node its own name',
            "redis-ha:nodes[5].promotable: applies only to nodes with the redis role; remove it",
        ]);
    });

    it("validateMemory: a plan without a known RAM size, unless memoryMb is given", () => {
        expect(lines(validateMemory(withNodes((n, i) => (i === 1 ? { ...n, type: "g9-new-1" } : n))))).toEqual([
            'redis-ha:nodes[1].type: plan "g9-new-1" is not in this kit\'s memory table; set nodes[1].memoryMb to its RAM in MiB',
        ]);
        expect(validateMemory(withNodes((n, i) => (i === 1 ? { ...n, type: "g9-new-1", memoryMb: 8192 } : n)))).toEqual(
            [],
        );
        // A Sentinel-only node needs no maxmemory, so its plan may be anything.
        expect(validateMemory(withNodes((n) => (n.name === "witness" ? { ...n, type: "g9-new-1" } : n)))).toEqual([]);
    });

    it("validateSentinels: an even count and a quorum below the majority", () => {
        const four = withNodes((n, i) => (i === 1 ? { ...n, roles: ["redis", "sentinel"] } : n));
        expect(lines(validateSentinels(four))).toEqual([
            "redis-ha:nodes: 4 Sentinels configured; use an odd number, at least 3, so that a majority survives the loss of any one",
        ]);
        expect(lines(validateSentinels({ ...base, quorum: 4 }))).toEqual([
            "redis-ha:quorum: 4 is not a majority of 3 Sentinels; set it to a value from 2 to 3, or to 0 for the majority (2)",
        ]);
        expect(validateSentinels({ ...base, quorum: 3 })).toEqual([]);
    });

    it("validateRegions: a region with a Sentinel majority, a primary region without Redis", () => {
        const twoInEast = withNodes((n) => (n.name === "ord-a" ? { ...n, region: "us-east" } : n));
        expect(lines(validateRegions(twoInEast))).toEqual([
            "redis-ha:nodes: region us-east holds 2 of 3 Sentinels, a majority: losing it would block every failover; move Sentinels so no region holds 2",
        ]);
        expect(lines(validateRegions({ ...base, primaryRegion: "us-central" }))).toEqual([
            "redis-ha:primaryRegion: region us-central has no node with the redis role; add one there or pick another primaryRegion",
        ]);
        // One region holds every Sentinel by definition: only a multi-region stack is checked.
        const oneRegion = withNodes((n) => ({ ...n, region: "us-east" }));
        expect(validateRegions(oneRegion)).toEqual([]);
    });

    it("validateRegionLoss: a multi-region stack that stops writing when some region is lost", () => {
        // prod before two Redis nodes per data region: losing us-east leaves ord-a alone, refusing writes.
        const oneInOrd = { ...base, nodes: base.nodes.filter((n) => n.name !== "ord-b") };
        expect(lines(validateRegionLoss(oneInOrd))).toEqual([
            "redis-ha:nodes: losing region us-east leaves no master that takes writes (1 Redis node(s) are left and a master needs minReplicasToWrite=1 replica(s) beside it); keep 2 Redis nodes, one promotable, outside every region, e.g. two Redis nodes in each data region plus a witness Sentinel region",
        ]);
        // Without min-replicas-to-write a lone DR master takes writes.
        expect(validateRegionLoss({ ...oneInOrd, minReplicasToWrite: 0 })).toEqual([]);
        // The DR region's Redis nodes may not be promoted: no master after the primary region is lost.
        const unpromotable = withNodes((n) => (n.region === "us-ord" ? { ...n, promotable: false } : n));
        expect(lines(validateRegionLoss(unpromotable))).toEqual([
            "redis-ha:nodes: losing region us-east leaves no master that takes writes (no promotable Redis node is left); keep 2 Redis nodes, one promotable, outside every region, e.g. two Redis nodes in each data region plus a witness Sentinel region",
        ]);
        // Losing the DR region leaves the master without a replica.
        const oneInEast = { ...base, nodes: base.nodes.filter((n) => n.name !== "east-b") };
        expect(lines(validateRegionLoss(oneInEast))[0]).toMatch(
            /^redis-ha:nodes: losing region us-ord leaves no master/,
        );
        // One region: nothing to lose but everything, not this check's concern.
        expect(validateRegionLoss(withNodes((n) => ({ ...n, region: "us-east" })))).toEqual([]);
    });

    it("validatePriorities: an unpromotable preferred master, no promotable replica, too many required replicas", () => {
        expect(lines(validatePriorities(withNodes((n, i) => (i === 0 ? { ...n, promotable: false } : n))))).toEqual([
            "redis-ha:nodes[0].promotable: east-a is the preferred master and must be promotable, or fail-back could never return the master home; remove promotable: false",
        ]);
        expect(
            lines(validatePriorities(withNodes((n, i) => (i >= 1 && i <= 3 ? { ...n, promotable: false } : n)))),
        ).toEqual([
            "redis-ha:nodes: no promotable replica: add a second node with the redis role (and without promotable: false) so Sentinel has a node to fail over to",
        ]);
        expect(lines(validatePriorities({ ...base, minReplicasToWrite: 4 }))).toEqual([
            "redis-ha:minReplicasToWrite: 4 exceeds the 3 replica(s) in this stack, so the master would refuse every write; lower it or add replicas",
        ]);
    });

    it("validateTimings: failover timeout shorter than down-after", () => {
        expect(validateTimings({ ...base, downAfterMs: 10000, failoverTimeoutMs: 10000 })).toEqual([]);
        expect(lines(validateTimings({ ...base, downAfterMs: 10001, failoverTimeoutMs: 10000 }))).toEqual([
            "redis-ha:failoverTimeoutMs: 10000 is shorter than downAfterMs (10001); set it to at least 10001 (the seed uses twice downAfterMs)",
        ]);
    });

    it("validatePorts: the same port for Redis and Sentinel", () => {
        expect(lines(validatePorts({ ...base, sentinelPort: base.redisPort }))).toEqual([
            "redis-ha:sentinelPort: must differ from redisPort",
        ]);
    });

    it("validateCidrs: each list on its own, each family on its own", () => {
        const wide = { ...base, clientCidrs: ["10.0.0.0/7"], adminCidrs: ["2001:db8::/31", "10.0.0.0/8"] };
        expect(validateCidrs(wide).map((p) => p.key)).toEqual(["redis-ha:clientCidrs", "redis-ha:adminCidrs"]);
        expect(validateCidrs({ ...wide, allowWideCidrs: true })).toEqual([]);
    });

    it("validateAdminAccess: no admin network", () => {
        expect(validateAdminAccess({ ...base, adminCidrs: [] }).map((p) => p.key)).toEqual(["redis-ha:adminCidrs"]);
    });

    it("validateLabels: a bad cluster name is reported once, not once per node", () => {
        expect(validateLabels(base, "redis--prod").map((p) => p.key)).toEqual(["redis-ha:clusterName"]);
        expect(
            validateLabels(
                withNodes((n, i) => (i === 2 ? { ...n, name: "ord--a" } : n)),
                "redis-prod",
            ),
        ).toEqual([
            {
                key: "redis-ha:nodes[2].name",
                message: 'makes the label "redis-prod-ord--a", which Linode refuses because it contains "--"',
            },
        ]);
    });

    it("validateStackConfig gathers every validator's problems", () => {
        const bad = { ...base, sentinelPort: base.redisPort, adminCidrs: [], downAfterMs: 20000 };
        expect(validateStackConfig(bad, "redis-prod").map((p) => p.key)).toEqual([
            "redis-ha:failoverTimeoutMs",
            "redis-ha:sentinelPort",
            "redis-ha:adminCidrs",
        ]);
    });
});
