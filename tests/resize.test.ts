import { planResizes } from "../components/resize";
import { resourceNames } from "../components/names";
import { planOf, resourceNamed, runUnderMocks, unwrapSecrets, type MockRun } from "../engine/mockRun";
import { programConfigWith } from "./helpers";

let before: MockRun;
let resized: MockRun;
beforeAll(async () => {
    before = await runUnderMocks({ stack: "prod" });
    resized = await runUnderMocks({
        stack: "prod",
        config: programConfigWith("prod", { nodeType: "g6-standard-4" }),
        previous: before,
    });
});

const commandLine = (run: MockRun, name: string) => String(unwrapSecrets(resourceNamed(run, name).inputs.create));
const connectionHost = (run: MockRun, name: string) =>
    (unwrapSecrets(resourceNamed(run, name).inputs.connection) as { host: string }).host;

describe("planResizes", () => {
    it("orders plan changes replicas first and the preferred master last, and skips unchanged and new nodes", () => {
        const t = before.topology;
        const deployed = { "east-a": "g6-standard-1", "east-b": "g6-standard-1", "ord-a": "g6-standard-1" };
        const steps = planResizes(t, { ...deployed, witness: "g6-nanode-1" });
        expect(steps.map((s) => s.node)).toEqual(["east-b", "ord-a", "east-a"]);
        expect(steps.map((s) => `${s.from}->${s.to}`)).toEqual(Array(3).fill("g6-standard-1->g6-standard-2"));
        // Nothing changes: nothing to do. A node not yet created is created, not resized.
        expect(planResizes(t, { "east-a": "g6-standard-2", "east-b": "g6-standard-2" })).toEqual([]);
        expect(planResizes(t, {}).length).toBe(0);
    });

    it("hands mastership to the latest resized node, then to nodes that keep their plan, resized-later ones last", () => {
        const t = before.topology;
        const all = planResizes(t, { "east-a": "x", "east-b": "x", "ord-a": "x", witness: "x" });
        expect(all.map((s) => s.node)).toEqual(["witness", "east-b", "ord-a", "east-a"]);
        const by = Object.fromEntries(all.map((s) => [s.node, s.handoverTo]));
        expect(by["east-a"]).toEqual(["ord-a", "east-b", "ord-b"]);
        expect(by["ord-a"]).toEqual(["east-b", "ord-b", "east-a"]);
        // No Redis node resized yet: ord-b, not in the deployed plans (created, not resized), keeps its plan; then
        // the one resized last (the preferred master) holds mastership meanwhile.
        expect(by["east-b"]).toEqual(["ord-b", "east-a", "ord-a"]);
        expect(by.witness).toEqual([]); // a Sentinel-only node never holds mastership
        const one = planResizes(t, { "east-a": "x", "east-b": "g6-standard-2", "ord-a": "g6-standard-2" });
        expect(one).toEqual([
            { node: "east-a", from: "x", to: "g6-standard-2", handoverTo: ["east-b", "ord-a", "ord-b"] },
        ]);
    });
});

describe("a nodeType change under mocks (an update of the deployed prod stack)", () => {
    it("resizes in place, replacing or deleting no Linode resource", () => {
        const plan = planOf(resized).filter((p) => p.type === "linode:index/instance:Instance");
        expect(plan.map((p) => [p.name, p.op, p.changed])).toEqual([
            [resourceNames.instance("east-b"), "update", ["type"]],
            [resourceNames.instance("ord-a"), "update", ["type"]],
            [resourceNames.instance("ord-b"), "update", ["type"]],
            [resourceNames.instance("east-a"), "update", ["type"]],
        ]);
        expect(
            planOf(resized).filter((p) => p.type.startsWith("linode:") && (p.op === "replace" || p.op === "delete")),
        ).toEqual([]);
    });

    it("rolls the new plan's memory settings out only after every resize", () => {
        for (const n of ["east-a", "east-b", "ord-a", "witness"]) {
            const step = resourceNamed(resized, resourceNames.settingsStep(n));
            expect(step.dependsOn).toContain(resourceNames.resizeReady("east-a"));
        }
        expect(commandLine(resized, resourceNames.settingsStep("east-b"))).toContain("apply-settings");
        // Without resizes, the rollout waits for nothing of the sort.
        expect(resourceNamed(before, resourceNames.settingsStep("east-b")).dependsOn.join()).not.toContain("resize");
    });

    it("chains the resizes one node at a time: handover, resize, ready, then the next node", () => {
        const chain = ["east-b", "ord-a", "ord-b", "east-a"];
        chain.forEach((node, i) => {
            const instance = resourceNamed(resized, resourceNames.instance(node));
            expect(instance.dependsOn).toEqual([resourceNames.resizeHandover(node)]);
            const handover = resourceNamed(resized, resourceNames.resizeHandover(node));
            expect(handover.dependsOn).toEqual(i === 0 ? [] : [resourceNames.resizeReady(chain[i - 1])]);
            expect(resourceNamed(resized, resourceNames.resizeReach(node)).dependsOn).toEqual([
                resourceNames.instance(node),
            ]);
            expect(resourceNamed(resized, resourceNames.resizeReady(node)).dependsOn).toEqual([
                resourceNames.resizeReach(node),
            ]);
        });
        // The witness keeps its own plan (g6-nanode-1): untouched.
        expect(resourceNamed(resized, resourceNames.instance("witness")).dependsOn).toEqual([]);
        expect(resized.resources.some((r) => r.name.endsWith("-witness") && r.name.includes("-resize-"))).toBe(false);
    });

    it("moves mastership off the preferred master to an already resized node before resizing it", () => {
        const nodes = resized.stackOutputs.nodes as Record<string, { address: string }>;
        const addr = (n: string) => `${nodes[n].address}:6379`;
        expect(commandLine(resized, resourceNames.resizeHandover("east-a"))).toBe(
            `/usr/local/lib/redis-ha/failover-drill handover ${addr("east-a")} ${addr("ord-b")} ${addr("ord-a")} ${addr("east-b")}`,
        );
        // east-b runs no Sentinel: its handover runs on a Sentinel node (east-a), SENTINEL FAILOVER needs one.
        expect(connectionHost(resized, resourceNames.resizeHandover("east-b"))).toBe(addr("east-a").split(":")[0]);
        expect(connectionHost(resized, resourceNames.resizeHandover("east-a"))).toBe(addr("east-a").split(":")[0]);
        // Each node's readiness is its own checks, retried while it boots from the resize.
        expect(commandLine(resized, resourceNames.resizeReady("east-a"))).toMatch(/check-node && .*check-quorum$/);
        expect(commandLine(resized, resourceNames.resizeReady("east-b"))).toMatch(/check-node$/);
    });

    it("leaves creation parallel and drops the resize steps once done", async () => {
        expect(before.resources.filter((r) => r.name.includes("-resize"))).toEqual([]);
        for (const n of before.topology.nodes)
            expect(resourceNamed(before, resourceNames.instance(n.name)).dependsOn).toEqual([]);
        const after = await runUnderMocks({
            stack: "prod",
            config: programConfigWith("prod", { nodeType: "g6-standard-4" }),
            previous: resized,
        });
        expect(planOf(after).filter((p) => p.type === "linode:index/instance:Instance")).toEqual([]);
        expect(
            planOf(after)
                .filter((p) => p.op === "delete")
                .map((p) => p.name)
                .sort(),
        ).toEqual(
            ["east-a", "east-b", "ord-a", "ord-b"]
                .flatMap((n) => [
                    resourceNames.resizeHandover(n),
                    resourceNames.resizeReach(n),
                    resourceNames.resizeReady(n),
                ])
                .sort(),
        );
    });

    it("resizes only the node whose own type changed", async () => {
        const nodes = before.topology.nodes.map((n) => ({
            name: n.name,
            region: n.region,
            roles: [...n.roles],
            type: n.name === "ord-a" ? "g6-dedicated-4" : n.type,
        }));
        const run = await runUnderMocks({
            stack: "prod",
            config: programConfigWith("prod", { nodes }),
            previous: before,
        });
        expect(run.resources.filter((r) => r.name.includes("-resize-")).map((r) => r.name)).toEqual([
            resourceNames.resizeHandover("ord-a"),
            resourceNames.resizeReach("ord-a"),
            resourceNames.resizeReady("ord-a"),
        ]);
    });
});
