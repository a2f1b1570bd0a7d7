import { creationSettingChanges } from "../../components/creationSettings";
import { createHash } from "node:crypto";
import { filesInUserData, NODE_SCRIPTS, nodeScript, PATHS } from "../../cloud-init";
import { resourceNames as names } from "../../components/names";
import { planOf, resourceNamed, runUnderMocks, unwrapSecrets, type MockRun } from "../../engine/mockRun";
import { changedInputs, inputsWithIgnoredKept, operationFor } from "../../engine/rules";
import { programConfigWith } from "../helpers";

const LINODE = "linode:index/instance:Instance";
const COMMAND = "command:remote:Command";

let prod: MockRun;
beforeAll(async () => {
    prod = await runUnderMocks({ stack: "prod" });
});

/** prod deployed as shipped, then `pulumi up` with some keys changed. */
const update = (changes: Record<string, unknown>, replace: string[] = []) =>
    runUnderMocks({ stack: "prod", config: programConfigWith("prod", changes), previous: prod, replace });

const ops = (run: MockRun, type?: string) =>
    planOf(run)
        .filter((p) => type === undefined || p.type === type)
        .map((p) => `${p.op} ${p.name}`)
        .sort();

describe("the engine's rules (engine/rules.ts)", () => {
    it("keeps the old value of an ignored input, on an update and on a replacement", () => {
        const before = { image: "linode/debian11", metadatas: [{ userData: "old" }], type: "g6-standard-2" };
        const after = { image: "linode/debian12", metadatas: [{ userData: "new" }], type: "g6-standard-4" };
        const sent = inputsWithIgnoredKept(before, after, ["metadatas", "image"]);
        expect(sent).toEqual({ image: "linode/debian11", metadatas: [{ userData: "old" }], type: "g6-standard-4" });
        expect(changedInputs(before, sent)).toEqual(["type"]);
        expect(operationFor(LINODE, ["type"], false)).toBe("update");
        expect(operationFor(LINODE, ["firewallId"], false)).toBe("replace");
        expect(operationFor(LINODE, [], true)).toBe("replace");
        expect(operationFor(COMMAND, ["stdin"], false)).toBe("update");
        expect(operationFor(COMMAND, ["triggers"], false)).toBe("replace");
        expect(operationFor(COMMAND, [], false)).toBe("same");
    });

    it("keeps the old value at a nested ignored path, secrets included", () => {
        const secret = (value: unknown) => ({
            "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
            value,
        });
        const before = { metadatas: [{ userData: secret("old") }], tags: ["a"] };
        const after = { metadatas: [{ userData: secret("new") }], tags: ["b"] };
        const sent = inputsWithIgnoredKept(before, after, ["metadatas[0].userData"]);
        expect(unwrapSecrets(sent)).toEqual({ metadatas: [{ userData: "old" }], tags: ["b"] });
        expect(changedInputs(before, sent)).toEqual(["tags"]);
    });

    it("plans nothing when nothing changed", async () => {
        const again = await update({});
        expect(planOf(again)).toEqual([]);
        expect(again.resources.map((r) => r.urn)).toEqual(prod.resources.map((r) => r.urn));
    });
});

describe("changes that must not touch the nodes or fire the drill", () => {
    it("renaming the cluster changes no URN; Linodes change only their label and tags in place", async () => {
        const renamed = await update({ clusterName: "cache-main" });
        expect(renamed.topology.cluster).toBe("cache-main");
        expect(renamed.resources.map((r) => r.urn).sort()).toEqual(prod.resources.map((r) => r.urn).sort());
        expect(renamed.deleted).toEqual([]);
        for (const r of renamed.resources.filter((x) => x.type === LINODE)) {
            expect(r.op).toBe("update");
            expect(r.changed).toEqual(["label", "tags"]);
            expect(String(unwrapSecrets(r.inputs.label))).toMatch(/^cache-main-/);
        }
        expect(planOf(renamed).filter((p) => p.op === "replace" || p.op === "delete")).toEqual([]);
        expect(ops(renamed, COMMAND)).not.toContain(`update ${names.drill}`);
        expect(ops(renamed, COMMAND)).not.toContain(`replace ${names.drill}`);
    });

    it.each([
        ["adminCidrs", ["198.51.100.7/32"]],
        ["clientCidrs", ["203.0.113.0/25"]],
        ["tags", ["team:cache"]],
    ])("changing %s changes no Linode input but tags and re-runs no check or drill", async (key, value) => {
        const changed = await update({ [key]: value });
        for (const r of changed.resources.filter((x) => x.type === LINODE))
            expect(r.changed.filter((k) => k !== "tags")).toEqual([]);
        expect(ops(changed, COMMAND)).toEqual([]);
        expect(planOf(changed).filter((p) => p.op !== "update")).toEqual([]);
    });

    it("changing downAfterMs replaces nothing and re-runs only the settings rollout and the checks", async () => {
        const changed = await update({ downAfterMs: 8000 });
        expect(planOf(changed).filter((p) => p.type !== COMMAND)).toEqual([]);
        const nodes = changed.topology.nodes;
        const expected = [
            ...nodes.map((n) => names.settingsStep(n.name)),
            ...nodes.filter((n) => n.runsRedis).map((n) => names.health(n.name)),
            ...nodes.filter((n) => n.runsSentinel).map((n) => names.quorum(n.name)),
            // down-after is failover behaviour (components/triggers.ts): the drill checks the new timing.
            names.drill,
        ].sort();
        expect(
            planOf(changed)
                .map((p) => p.name)
                .sort(),
        ).toEqual(expected);
        expect(ops(changed, COMMAND).filter((o) => o.includes("-wait-"))).toEqual([]);
    });
});

describe("a replaced node converges to the current configuration", () => {
    it("boots from its old user-data (the engine's rule) and its rollout step delivers the current settings", async () => {
        const before = await update({ downAfterMs: 8000 });
        const after = await runUnderMocks({
            stack: "prod",
            config: programConfigWith("prod", { downAfterMs: 9000 }),
            previous: before,
            replace: [names.instance("east-b")],
        });
        expect(resourceNamed(after, names.instance("east-b")).op).toBe("replace");
        // The Linode is created from the user-data of its first creation (down-after 8000), not the current one.
        const conf = (run: MockRun, node: string) =>
            filesInUserData(run.userData[node]).find((f) => f.path === PATHS.redisConf)?.content ?? "";
        expect(after.userData["east-b"]).toBe(before.userData["east-b"]);
        expect(conf(after, "east-b")).toBe(conf(before, "east-b"));
        // Its rollout step runs on the new Linode (its instance id is a trigger) with today's settings and files.
        const step = resourceNamed(after, names.settingsStep("east-b"));
        expect(step.op).toBe("replace");
        const stdin = String(unwrapSecrets(step.inputs.stdin));
        expect(stdin).toMatch(/^env SENTINEL_DOWN_AFTER_MS 9000$/m);
        expect(resourceNamed(after, names.wait("east-b")).op).toBe("replace");
        expect(resourceNamed(after, names.health("east-b")).op).toBe("replace");
        expect(resourceNamed(after, names.drill).op).toBe("replace");
    });

    it("re-runs only the replaced node's step when nothing else changed", async () => {
        const after = await update({}, [names.instance("ord-a")]);
        const steps = after.resources.filter((r) => r.name.startsWith(`${names.settings}-`));
        expect(steps.filter((s) => s.op !== "same").map((s) => s.name)).toEqual([names.settingsStep("ord-a")]);
        expect(resourceNamed(after, names.instance("ord-a")).deleteBeforeReplace).toBe(true);
    });

    it("delivers this release's scripts, units and keys to every node, triggered by their digest", () => {
        for (const n of prod.topology.nodes) {
            const step = resourceNamed(prod, names.settingsStep(n.name));
            const stdin = String(unwrapSecrets(step.inputs.stdin));
            for (const script of NODE_SCRIPTS) {
                const b64 = Buffer.from(nodeScript(script)).toString("base64");
                expect(stdin).toContain(
                    `file ${PATHS.scriptsDir}/${script} ${script.endsWith(".sh") ? "0644" : "0755"} ${b64}\n`,
                );
            }
            expect(stdin).toContain(`file ${PATHS.tuningUnit} 0644 `);
            if (n.runsRedis) expect(stdin).toContain(`file ${PATHS.redisDropIn} 0644 `);
            // Never the passwords: node.env and the configs are not delivered.
            const out = prod.stackOutputs as { redisPassword: string };
            expect(stdin).not.toContain(out.redisPassword);
            expect(stdin).not.toContain(Buffer.from(out.redisPassword).toString("base64").slice(0, 20));
            const keys = stdin.split("\n").find((l) => l.startsWith("file /root/.ssh/authorized_keys 0600 "));
            const [key] = prod.resources.filter((r) => r.type === "tls:index/privateKey:PrivateKey");
            expect(Buffer.from(keys?.split(" ")[3] ?? "", "base64").toString()).toContain(
                String(key.state.publicKeyOpenssh).trim(),
            );
            const triggers = unwrapSecrets(step.inputs.triggers) as unknown[];
            expect(triggers[0]).toBe(createHash("sha256").update(stdin).digest("hex").slice(0, 16));
            expect(triggers[1]).toBe(Number(resourceNamed(prod, names.instance(n.name)).id));
        }
    });
});

describe("creation-time keys on a running cluster", () => {
    it.each([
        ["redisPort", 6380],
        ["sentinelPort", 26380],
        ["masterName", "cache"],
        ["tls", false],
    ])("refuses a change of %s with one line naming the key", async (key, value) => {
        await expect(update({ [key]: value })).rejects.toThrow(
            new RegExp(
                `^redis-ha:${key}: is \\S+ on the running cluster and cannot change to ${String(value)}: .*needs a new cluster`,
            ),
        );
    });

    it("takes any value on a new stack, and records it for the next deployment", async () => {
        const fresh = await runUnderMocks({ stack: "prod", config: programConfigWith("prod", { redisPort: 6380 }) });
        expect(fresh.stackOutputs.creationSettings).toEqual({
            redisPort: 6380,
            sentinelPort: 26379,
            masterName: "mymaster",
            addressing: "reserved",
            tls: true,
        });
        expect(prod.stackOutputs.creationSettings).toEqual({
            redisPort: 6379,
            sentinelPort: 26379,
            masterName: "mymaster",
            addressing: "reserved",
            tls: true,
        });
    });

    it("refuses the tls default on a cluster recorded before the key existed (it runs plaintext)", () => {
        const before = {
            redisPort: 6379,
            sentinelPort: 26379,
            masterName: "mymaster",
            addressing: "reserved" as const,
        };
        const refused = creationSettingChanges(before, { ...before, tls: true });
        expect(refused.map((p) => p.key)).toEqual(["redis-ha:tls"]);
        expect(refused[0].message).toMatch(/^is false on the running cluster and cannot change to true/);
        expect(creationSettingChanges(before, { ...before, tls: false })).toEqual([]);
        expect(creationSettingChanges({}, { ...before, tls: true })).toEqual([]);
    });
});
