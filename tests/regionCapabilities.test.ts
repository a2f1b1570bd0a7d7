import { RegionCapabilityError, regionCapabilityProblem } from "../components/regionCapabilities";
import { runUnderMocks } from "../engine/mockRun";
import type { RegionPlan } from "../topology";
import { LINODE_REGIONS, linodeRegion } from "../topology/linodeRegions";
import { programConfigWith } from "./helpers";

const without = (id: string, capability: string) =>
    LINODE_REGIONS.map((r) =>
        r.id === id ? { ...r, capabilities: r.capabilities.filter((c) => c !== capability) } : r,
    );
const plan = (name: string, nodes: string[]): RegionPlan => ({
    name,
    kind: "primary",
    nodes,
    sentinels: nodes.length,
    redisNodes: nodes.length,
});

describe("regionCapabilityProblem", () => {
    const all = ["Linodes", "Metadata", "Placement Group"];
    it("accepts a region that offers everything its nodes need", () => {
        expect(regionCapabilityProblem(plan("us-ord", ["a", "b"]), all)).toBeUndefined();
        // One node: no placement group, so the region need not offer one.
        expect(regionCapabilityProblem(plan("fr-par", ["a"]), ["Linodes", "Metadata"])).toBeUndefined();
    });

    it("names the region, the missing capability, why, and the nodes to move, on one line", () => {
        expect(regionCapabilityProblem(plan("fr-par", ["a", "b"]), ["Linodes", "Metadata"])).toBe(
            'redis-ha:nodes: region fr-par lacks the Linode capability "Placement Group" (its nodes are spread across ' +
                "hosts by a placement group); move nodes a, b to a region that offers it (linode-cli regions list " +
                "shows each region's capabilities)",
        );
        expect(regionCapabilityProblem(plan("xx-old", ["w"]), ["Linodes"])).toBe(
            'redis-ha:nodes: region xx-old lacks the Linode capability "Metadata" (cloud-init reads each node\'s ' +
                "user-data from the metadata service); move node w to a region that offers it (linode-cli regions " +
                "list shows each region's capabilities)",
        );
        const both = regionCapabilityProblem(plan("xx-old", ["a", "b"]), ["Linodes"]) ?? "";
        expect(both).toContain('"Metadata" (cloud-init reads');
        expect(both).toContain('and "Placement Group" (its nodes');
        expect(both.split("\n")).toHaveLength(1);
    });
});

describe("region check under mocks (linode.getRegion answered from Linode's recorded regions)", () => {
    it("passes the shipped prod and dev stacks, whose regions offer what they need", async () => {
        for (const id of ["us-east", "us-ord", "us-central"])
            expect(linodeRegion(id)?.capabilities).toEqual(expect.arrayContaining(["Metadata", "Placement Group"]));
        const prod = await runUnderMocks({ stack: "prod" });
        expect(Object.keys(prod.userData)).toHaveLength(prod.topology.nodes.length);
    });

    it("fails dev when us-east lacks Placement Group", async () => {
        await expect(runUnderMocks({ stack: "dev", regions: without("us-east", "Placement Group") })).rejects.toThrow(
            /^redis-ha:nodes: region us-east lacks the Linode capability "Placement Group" .*move nodes dev-a, dev-b, dev-c /,
        );
    });

    it("fails prod when the witness's region lacks Metadata, naming the witness", async () => {
        await expect(runUnderMocks({ stack: "prod", regions: without("us-central", "Metadata") })).rejects.toThrow(
            /^redis-ha:nodes: region us-central lacks the Linode capability "Metadata" .*move node witness /,
        );
    });

    it("fails two nodes in Paris (no placement groups when recorded) but accepts one", async () => {
        // prod's layout with its primary region moved to Paris: east-a and east-b become par-a and par-b.
        const nodes = (paris: number) => [
            ...[
                { name: "par-a", region: "fr-par", roles: ["redis", "sentinel"] },
                { name: "par-b", region: "fr-par", roles: ["redis"] },
            ].slice(0, paris),
            { name: "ord-a", region: "us-ord", roles: ["redis", "sentinel"] },
            { name: "ord-b", region: "us-ord", roles: ["redis"] },
            { name: "witness", region: "us-central", type: "g6-nanode-1", roles: ["sentinel"] },
        ];
        const two = programConfigWith("prod", { primaryRegion: "fr-par", nodes: nodes(2) });
        await expect(runUnderMocks({ stack: "prod", config: two })).rejects.toThrow(
            /^redis-ha:nodes: region fr-par lacks the Linode capability "Placement Group" .*move nodes par-a, par-b /,
        );
        // One Redis node in Paris: losing us-ord leaves it alone, so it may take writes without a replica there.
        const one = programConfigWith("prod", { primaryRegion: "fr-par", nodes: nodes(1), minReplicasToWrite: 0 });
        expect(Object.keys((await runUnderMocks({ stack: "prod", config: one })).userData).sort()).toEqual([
            "ord-a",
            "ord-b",
            "par-a",
            "witness",
        ]);
    });

    it("names every bad region at once, one line each", async () => {
        const regions = without("us-central", "Metadata").map((r) =>
            r.id === "us-east" ? { ...r, capabilities: r.capabilities.filter((c) => c !== "Placement Group") } : r,
        );
        const error = await runUnderMocks({ stack: "prod", regions }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(RegionCapabilityError);
        expect((error as Error).message.split("\n").map((l) => l.split(" lacks ")[0])).toEqual([
            "redis-ha:nodes: region us-east",
            "redis-ha:nodes: region us-central",
        ]);
    });

    it("fails a region Linode does not know, as the provider does", async () => {
        await expect(
            runUnderMocks({ stack: "dev", regions: LINODE_REGIONS.filter((r) => r.id !== "us-east") }),
        ).rejects.toThrow("failed to get region us-east: [404] Not found");
    });
});
