import { readStackConfig } from "../../engine/stackFile";
import {
    LINODE_REGIONS,
    linodeRegion,
    missingCapabilities,
    REGION_PATTERN,
    requiredCapabilities,
    topologyFromConfig,
} from "../../topology";

describe("Linode region table", () => {
    it("lists each recorded region once, with ids the config schema accepts", () => {
        expect(LINODE_REGIONS).toHaveLength(27);
        expect(new Set(LINODE_REGIONS.map((r) => r.id)).size).toBe(27);
        for (const r of LINODE_REGIONS) {
            expect(r.id).toMatch(REGION_PATTERN);
            expect(r.capabilities).toContain("Linodes");
            expect(r.capabilities).toContain("Cloud Firewall");
        }
    });

    it("records Metadata everywhere and Placement Group only where the API listed it", () => {
        for (const r of LINODE_REGIONS) expect(r.capabilities).toContain("Metadata");
        expect(linodeRegion("us-east")?.capabilities).toContain("Placement Group");
        expect(linodeRegion("eu-central")?.capabilities).not.toContain("Placement Group");
        expect(linodeRegion("xx-nowhere")).toBeUndefined();
    });

    it("has what every shipped stack needs in each of its regions", () => {
        for (const stack of ["prod", "dev"]) {
            const t = topologyFromConfig(readStackConfig(stack), "redis-ha", stack);
            for (const r of t.regions) {
                const region = linodeRegion(r.name);
                expect(region).toBeDefined();
                if (region) expect(missingCapabilities(region, requiredCapabilities(r.nodes.length))).toEqual([]);
            }
        }
    });

    it("names the capability a region lacks", () => {
        const frankfurt = linodeRegion("eu-central");
        expect(frankfurt && missingCapabilities(frankfurt, requiredCapabilities(2))).toEqual(["Placement Group"]);
        expect(requiredCapabilities(1)).toEqual(["Metadata"]);
    });
});
