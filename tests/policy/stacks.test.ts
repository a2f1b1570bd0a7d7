import type { MockRun, RecordedResource } from "../../engine/mockRun";
import { isSecret, runUnderMocks } from "../../engine/mockRun";
import { policies } from "../../policy/policies";
import { hasMandatory, runPolicies, type Violation } from "../../review/policy";
import { analyzeWithSdk } from "./sdkAnalyzer";

/**
 * The pack over the real program: the shipped stacks under Pulumi's mocks (engine/mockRun.ts) pass every mandatory
 * rule, and the same runs changed the way a bad pull request would change them fail the rule that guards it.
 */

let prod: MockRun;
let dev: MockRun;

beforeAll(async () => {
    const started = Date.now();
    prod = await runUnderMocks({ stack: "prod" });
    dev = await runUnderMocks({ stack: "dev" });
    console.log(`mock runs of prod and dev: ${String(Date.now() - started)} ms`);
});

/** A copy of the run with resource `name` changed in its inputs and outputs alike (or removed when `change` says). */
function changed(
    run: MockRun,
    name: string,
    change: (props: Record<string, unknown>, r: RecordedResource) => Record<string, unknown> | "remove",
): MockRun {
    if (!run.resources.some((r) => r.name === name)) throw new Error(`no resource ${name}`);
    const resources = run.resources.flatMap((r) => {
        if (r.name !== name) return [r];
        const inputs = change(structuredClone(r.inputs), r);
        const state = change(structuredClone(r.state), r);
        return inputs === "remove" || state === "remove" ? [] : [{ ...r, inputs, state }];
    });
    return { ...run, resources };
}

const summaryLine = (v: Violation) => `${v.level} ${v.policy} ${v.resource}`;

describe("the policy pack over the shipped stacks", () => {
    it("prod passes every rule; dev passes every mandatory rule (advisory: no backups)", async () => {
        expect(await runPolicies(prod)).toEqual([]);
        const devViolations = await runPolicies(dev);
        expect(devViolations.map(summaryLine)).toEqual(["advisory redis-ha-backups-enabled redis-ha"]);
        expect(hasMandatory(devViolations)).toBe(false);
    });

    it("what redis-ha-secret-credentials reads in additionalSecretOutputs is also what the program sends as secret", () => {
        // The policy SDK unwraps secrets before a rule sees them; the mock engine does not, so this is checked here.
        const carriers = prod.resources.filter((r) => r.additionalSecretOutputs.some((k) => k in r.inputs));
        expect(carriers.length).toBeGreaterThan(0);
        for (const r of carriers)
            for (const key of r.additionalSecretOutputs.filter((k) => k in r.inputs))
                expect(`${r.name}.${key} ${String(isSecret(r.inputs[key]))}`).toBe(`${r.name}.${key} true`);
    });

    it("a firewall that opens 6379 to the world fails, naming the rule, the firewall and the key", async () => {
        const open = changed(prod, "redis-ha-firewall", (p) => ({
            ...p,
            inbounds: [
                ...(p.inbounds as object[]),
                { label: "anyone", action: "ACCEPT", protocol: "TCP", ports: "6379", ipv4s: ["0.0.0.0/0"] },
            ],
        }));
        const violations = await runPolicies(open);
        expect(violations.map(summaryLine)).toEqual(["mandatory redis-ha-no-public-data-ports redis-ha-firewall"]);
        // The peers' rule lists every node's address (the mocks give 192.0.2.10, .11, ... in the topology's order).
        const peers = prod.topology.nodes.map((_, i) => `192.0.2.${String(10 + i)}/32`).join(", ");
        expect(violations[0].message).toBe(
            `linode.Firewall redis-ha-firewall accepts Redis port 6379 from the whole IPv4 internet ("redis-peers": ${peers}; "redis-clients": 198.51.100.0/24; "anyone": 0.0.0.0/0); expected only your own networks. Fix: narrow redis-ha:clientCidrs.`,
        );
    });

    it("two Sentinels fail the Sentinel count", async () => {
        const two = changed(prod, "redis-ha-witness-linode", (p) => ({
            ...p,
            tags: (p.tags as string[]).filter((t) => t !== "role:sentinel"),
        }));
        const violations = await runPolicies(two);
        expect(violations.map(summaryLine)).toEqual(["mandatory redis-ha-sentinel-count redis-ha"]);
        expect(violations[0].message).toMatch(
            /^cluster redis-prod \(redis-ha\) has 2 Sentinels \((redis-ha-east-a-linode, redis-ha-ord-a-linode|redis-ha-ord-a-linode, redis-ha-east-a-linode)\)/,
        );
    });

    it("two of three Sentinels in one region fail the majority spread", async () => {
        const crowded = changed(prod, "redis-ha-witness-linode", (p) => ({ ...p, region: "us-east" }));
        const violations = await runPolicies(crowded);
        expect(violations.map(summaryLine)).toEqual(["mandatory redis-ha-sentinel-majority-spread redis-ha"]);
        expect(violations[0].message).toContain("region us-east holds 2 of 3 Sentinels");
    });

    it("no firewall fails for every Linode", async () => {
        const nodes = prod.topology.nodes.map((n) => n.name);
        let bare = changed(prod, "redis-ha-firewall", () => "remove");
        for (const n of nodes)
            bare = changed(bare, `redis-ha-${n}-linode`, (p) => {
                delete p.firewallId;
                return p;
            });
        const violations = await runPolicies(bare);
        expect(violations.map(summaryLine).sort()).toEqual(
            nodes.map((n) => `mandatory redis-ha-firewall-drop-inbound redis-ha-${n}-linode`).sort(),
        );
        expect(hasMandatory(violations)).toBe(true);
    });

    it("review's harness reports what @pulumi/policy's own analyzer server reports", async () => {
        // A run with violations of resource and stack rules alike, so that the comparison means something.
        let bad = changed(prod, "redis-ha-firewall", (p) => ({ ...p, inboundPolicy: "ACCEPT" }));
        bad = changed(bad, "redis-ha-east-b-linode", (p) => ({ ...p, rootPass: "hunter2hunter2" }));
        bad = {
            ...bad,
            resources: bad.resources.map((r) =>
                r.name === "redis-ha-ord-a-linode" ? { ...r, additionalSecretOutputs: [] } : r,
            ),
        };
        // The SDK prefixes each message with the policy's description, as the CLI shows it.
        const description = new Map(policies.map((p) => [p.name, p.description]));
        const ours = (await runPolicies(bad))
            .map((v) => `${v.policy} ${v.urn ?? ""} ${description.get(v.policy) ?? ""}\n${v.message}`)
            .sort();
        const sdk = (await analyzeWithSdk(bad, policies)).map((v) => `${v.policy} ${v.urn} ${v.message}`).sort();
        expect(ours).toEqual(sdk);
        expect(ours.map((l) => l.split(" ")[0])).toEqual([
            "redis-ha-firewall-drop-inbound",
            "redis-ha-no-root-password",
            "redis-ha-secret-credentials",
        ]);
    });
});
