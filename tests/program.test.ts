import * as pulumi from "@pulumi/pulumi";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filesInUserData, PATHS } from "../cloud-init";
import { resourceNames as names } from "../components/names";
import { DIAL_ERROR_LIMIT } from "../components/connection";
import { failoverSettingsHash } from "../components/triggers";
import {
    isSecret,
    resourceNamed,
    runUnderMocks,
    unwrapSecrets,
    type MockRun,
    type RecordedResource,
} from "../engine/mockRun";
import { configWith, programConfigWith } from "./helpers";

const REDIS_PORTS = /(^|,)(6379|26379)(,|$)/;
let prod: MockRun;
beforeAll(async () => {
    prod = await runUnderMocks({ stack: "prod" });
});

const ofType = (run: MockRun, type: string) => run.resources.filter((r) => r.type === type);
const named = resourceNamed;
const input = (r: RecordedResource, key: string) => unwrapSecrets(r.inputs[key]);

describe("resource graph (prod)", () => {
    it("declares the cluster, one region network per region, one node per Linode, under one parent", () => {
        expect(ofType(prod, "redis-ha:cluster:RedisCluster").map((r) => r.name)).toEqual([names.cluster]);
        expect(ofType(prod, "redis-ha:network:RegionNetwork").map((r) => r.parent)).toEqual([
            names.cluster,
            names.cluster,
            names.cluster,
        ]);
        expect(ofType(prod, "linode:index/networkingIp:NetworkingIp")).toHaveLength(5);
        expect(ofType(prod, "linode:index/placementGroup:PlacementGroup").map((r) => r.name)).toEqual([
            names.placementGroup("us-east"),
            names.placementGroup("us-ord"),
        ]);
        const instances = ofType(prod, "linode:index/instance:Instance");
        expect(instances.map((r) => r.parent).sort()).toEqual(
            ["east-a", "east-b", "ord-a", "ord-b", "witness"].map((n) => names.node(n)),
        );
        // Everything hangs off the cluster, and the cluster off the stack, as `pulumi up` runs index.ts.
        for (const r of prod.resources.filter((r) => r.type !== "pulumi:pulumi:Stack")) expect(r.parent).toBeDefined();
    });

    it("creates every Linode from a cloud-init image with a public interface, its reserved IP, tags, a valid label and no root password", () => {
        for (const r of ofType(prod, "linode:index/instance:Instance")) {
            expect(input(r, "image")).toBe("linode/debian12");
            expect(input(r, "interfaces")).toEqual([{ purpose: "public" }]);
            expect(input(r, "rootPass")).toBeUndefined();
            expect(String(input(r, "label"))).toMatch(/^[a-zA-Z0-9](?!.*[-_.]{2})[a-zA-Z0-9._-]{1,48}[a-zA-Z0-9]$/);
            const tags = input(r, "tags") as string[];
            expect(tags).toEqual(expect.arrayContaining(["redis-ha", "cluster:redis-prod"]));
            expect(tags.some((t) => t.startsWith("region:"))).toBe(true);
            expect(tags.some((t) => t.startsWith("role:"))).toBe(true);
            expect((input(r, "ipv4s") as string[])[0]).toMatch(/^192\.0\.2\.\d+$/);
            expect(input(r, "firewallId")).toEqual(expect.any(Number));
            const keys = input(r, "authorizedKeys") as string[];
            expect(keys.some((k) => k.endsWith("redis-ha-checks"))).toBe(true);
            const userData = (input(r, "metadatas") as { userData: string }[])[0].userData;
            expect(userData).toMatch(/^[A-Za-z0-9+/]+=*$/);
        }
    });

    it("ignores changes that would replace a Linode and destroy its data", () => {
        for (const r of ofType(prod, "linode:index/instance:Instance"))
            expect(r.ignoreChanges).toEqual(expect.arrayContaining(["metadatas", "authorizedKeys", "image"]));
        // A deliberate replacement must free the reserved IPv4 first.
        for (const r of ofType(prod, "linode:index/instance:Instance")) expect(r.deleteBeforeReplace).toBe(true);
    });

    it("marks every secret-carrying input secret: user-data, passwords, the SSH connection", () => {
        for (const r of ofType(prod, "linode:index/instance:Instance"))
            expect(
                isSecret(r.inputs.metadatas) ||
                    isSecret((r.inputs.metadatas as { userData?: unknown }[] | undefined)?.[0]?.userData),
            ).toBe(true);
        for (const r of ofType(prod, "command:remote:Command")) {
            const conn = r.inputs.connection as Record<string, unknown>;
            expect(isSecret(conn) || isSecret(conn.privateKey)).toBe(true);
        }
        expect(prod.secretStackOutputs).toEqual(["redisPassword", "sentinelPassword", "users"]);
    });

    it("marks passwords given in config secret too", async () => {
        const run = await runUnderMocks({
            stack: "prod",
            // The shared password given in config is the `tls: false` world's (with tls every user's is generated).
            config: programConfigWith("prod", { tls: false, redisPassword: "given-password-0123456789" }),
        });
        expect(run.secretStackOutputs).toContain("redisPassword");
        expect(run.userData["east-a"]).toContain("requirepass given-password-0123456789");
        expect(ofType(run, "random:index/randomPassword:RandomPassword").map((r) => r.name)).toEqual([
            names.password("sentinel"),
        ]);
    });

    it("never opens Redis or Sentinel to 0.0.0.0/0 or ::/0, and SSH only to admin networks", () => {
        const [fw] = ofType(prod, "linode:index/firewall:Firewall");
        expect(input(fw, "inboundPolicy")).toBe("DROP");
        const rules = input(fw, "inbounds") as { label: string; ports?: string; ipv4s?: string[]; ipv6s?: string[] }[];
        for (const rule of rules) {
            const sources = [...(rule.ipv4s ?? []), ...(rule.ipv6s ?? [])];
            expect(sources).not.toContain("0.0.0.0/0");
            expect(sources).not.toContain("::/0");
            if (rule.ports && REDIS_PORTS.test(rule.ports))
                expect(["redis-peers", "redis-clients"]).toContain(rule.label);
            if (rule.ports === "22") expect(sources).toEqual(["203.0.113.0/24"]);
        }
        expect(rules.find((r) => r.label === "redis-peers")?.ipv4s).toEqual([
            "192.0.2.10/32",
            "192.0.2.11/32",
            "192.0.2.12/32",
            "192.0.2.13/32",
            "192.0.2.14/32",
        ]);
    });

    it("exports the master name, Sentinel endpoints, each node's address, region and role, and a snippet without secrets", () => {
        const out = prod.stackOutputs as {
            masterName: string;
            sentinels: { host: string }[];
            nodes: Record<string, unknown>;
            connectionSnippet: string;
            redisPassword: string;
        };
        expect(out.masterName).toBe("mymaster");
        expect(out.sentinels.map((s) => s.host)).toEqual(["192.0.2.10", "192.0.2.12", "192.0.2.14"]);
        expect(out.nodes["east-a"]).toMatchObject({
            address: "192.0.2.10",
            region: "us-east",
            initialRole: "master",
        });
        expect(out.connectionSnippet).toContain('{ host: "192.0.2.12", port: 26379 }');
        expect(out.connectionSnippet).not.toContain(out.redisPassword);
    });
});

describe("post-deploy command graph", () => {
    const commands = () => ofType(prod, "command:remote:Command");

    it("waits for each node's cloud-init before any check on it", () => {
        for (const c of commands().filter((c) => /-(health|quorum)-/.test(c.name))) {
            const node = c.name.split(/-(?:health|quorum)-/)[1];
            expect(c.dependsOn).toContain(names.wait(node));
        }
        const wait = named(prod, names.wait("east-a"));
        expect(String(input(wait, "create"))).toContain("check-cloud-init");
        // Bounded retries: the reach probe (first contact, run locally) has already seen the node answer.
        expect((input(wait, "connection") as { dialErrorLimit: number }).dialErrorLimit).toBe(DIAL_ERROR_LIMIT);
        expect(wait.dependsOn).toEqual([names.reach("east-a")]);
        const reach = named(prod, names.reach("east-a"));
        expect(reach.type).toBe("command:local:Command");
        expect(input(reach, "environment")).toEqual({
            NODE: "east-a",
            HOST: "192.0.2.10",
            HOST_KEY: (prod.stackOutputs.hostKeys as Record<string, { publicKey: string }>)["east-a"].publicKey,
            BUDGET: "600",
        });
        expect(String(input(reach, "stdin"))).toMatch(/PRIVATE KEY/);
        expect(isSecret(reach.inputs.stdin)).toBe(true);
        for (const c of commands())
            expect((input(c, "connection") as { dialErrorLimit: number }).dialErrorLimit).toBeGreaterThan(0);
    });

    it("runs the drill after every quorum check, triggered by the failover settings and every instance", () => {
        const drill = named(prod, names.drill);
        const quorum = commands()
            .filter((c) => c.name.includes("-quorum-"))
            .map((c) => c.name);
        expect(quorum).toHaveLength(3);
        expect(drill.dependsOn).toEqual(expect.arrayContaining(quorum));
        const triggers = input(drill, "triggers") as unknown[];
        expect(triggers[0]).toBe(failoverSettingsHash(prod.topology));
        expect(triggers.slice(1)).toEqual(
            prod.topology.nodes.map((n) => Number(named(prod, names.instance(n.name)).id)),
        );
    });

    it("leaves the drill out with failoverDrill: never, keeping the other checks", async () => {
        const run = await runUnderMocks({
            stack: "prod",
            config: programConfigWith("prod", { failoverDrill: "never" }),
        });
        const commandNames = ofType(run, "command:remote:Command").map((c) => c.name);
        expect(commandNames).not.toContain(names.drill);
        expect(commandNames.filter((n) => /-(wait|health|quorum)-/.test(n))).toHaveLength(5 + 4 + 3);
    });
});

describe("day-2: a Redis/Sentinel setting change", () => {
    it("rolls out one node at a time, replicas first and the preferred master last, without replacing any Linode", async () => {
        const changed = await runUnderMocks({
            stack: "prod",
            config: programConfigWith("prod", { downAfterMs: 8000, maxmemoryPolicy: "allkeys-lru" }),
        });
        const steps = (run: MockRun) =>
            ofType(run, "command:remote:Command").filter((c) => c.name.startsWith(`${names.settings}-`));
        const order = steps(changed).map((s) => s.name.replace(`${names.settings}-`, ""));
        expect(order).toEqual(["witness", "east-b", "ord-a", "ord-b", "east-a"]);
        steps(changed).forEach((s, i) => {
            if (i > 0) expect(s.dependsOn).toContain(steps(changed)[i - 1].name);
            expect(String(input(s, "stdin"))).toMatch(/^env SENTINELS /m);
            expect(String(input(s, "stdin"))).toMatch(/^env START_GUARD_WAIT_SEC 38$/m); // 8 s + 2 x 10 s + 10 s
        });
        // Each node's trigger moves only if that node's settings moved: every node here (Sentinels and Redis).
        for (const s of steps(changed)) {
            const before = named(prod, s.name);
            expect(input(s, "triggers")).not.toEqual(input(before, "triggers"));
        }
        // The user-data differs, but the Linodes ignore it: the plan replaces nothing.
        for (const r of ofType(changed, "linode:index/instance:Instance")) {
            const before = named(prod, r.name);
            expect(input(r, "metadatas")).not.toEqual(input(before, "metadatas"));
            expect(r.ignoreChanges).toContain("metadatas");
            for (const key of ["image", "region", "type", "label", "firewallId", "ipv4s"])
                expect(input(r, key)).toEqual(input(before, key));
        }
        const ud = filesInUserData(changed.userData.witness).find((f) => f.path === PATHS.sentinelConf)?.content;
        expect(ud).toContain("down-after-milliseconds mymaster 8000");
    });

    it("does not move the trigger of a node whose settings did not change", async () => {
        const changed = await runUnderMocks({ stack: "prod", config: programConfigWith("prod", { parallelSyncs: 2 }) });
        const trig = (run: MockRun, n: string) => input(named(run, names.settingsStep(n)), "triggers");
        expect(trig(changed, "east-b")).toEqual(trig(prod, "east-b")); // Redis only: parallel-syncs is a Sentinel setting
        expect(trig(changed, "witness")).not.toEqual(trig(prod, "witness"));
    });
});

describe("bad config", () => {
    it("fails the program before any resource is registered", async () => {
        await expect(
            runUnderMocks({ stack: "prod", config: programConfigWith("prod", { quorum: 1 }) }),
        ).rejects.toThrow(/redis-ha:quorum: 1 is not a majority/);
        // The program itself (as `pulumi preview` runs it) raises a RunError, which Pulumi prints without a stack
        // trace, and registers nothing.
        const registered: string[] = [];
        await pulumi.runtime.setMocks(
            {
                newResource: (a) => {
                    registered.push(a.name);
                    return { id: "1", state: {} };
                },
                call: () => ({}),
            },
            "redis-ha",
            "prod",
            false,
        );
        pulumi.runtime.setAllConfig(configWith("prod", { quorum: 1 }));
        const { deploy } = await import("../program");
        expect(() => deploy()).toThrow(pulumi.RunError);
        await new Promise((r) => setTimeout(r, 50));
        expect(registered).toEqual([]);
    });
});

describe.each(["prod", "dev"])(
    "the %s stack as `pulumi up` configures it (stack file + Pulumi.yaml defaults)",
    (stack) => {
        let run: MockRun;
        beforeAll(async () => {
            run = await runUnderMocks({ stack });
        });

        it("receives Pulumi.yaml's declared defaults, credentials as secrets", () => {
            // The CLI passes a declared default for every key the stack leaves out: credentials arrive as "" secrets.
            for (const key of ["redisPassword", "sentinelPassword", "checksPrivateKey"]) {
                expect(run.config.values[`redis-ha:${key}`]).toBe("");
                expect(run.config.secretKeys).toContain(`redis-ha:${key}`);
            }
            expect(run.config.values["redis-ha:masterName"]).toBe("mymaster");
        });

        it("renders every password with at least 32 characters", () => {
            const passwords: string[] = [];
            for (const ud of Object.values(run.userData))
                for (const f of filesInUserData(ud)) {
                    for (const m of f.content.matchAll(/^(?:requirepass|masterauth|sentinel auth-pass \S+) (.*)$/gm))
                        passwords.push(m[1]);
                    for (const m of f.content.matchAll(/^(?:REDIS|SENTINEL)_PASSWORD=(.*)$/gm))
                        passwords.push(m[1].replace(/^'|'$/g, ""));
                }
            expect(passwords.length).toBeGreaterThan(run.topology.nodes.length);
            for (const p of passwords) expect(p.length).toBeGreaterThanOrEqual(32);
            const out = run.stackOutputs as { redisPassword: string; sentinelPassword: string };
            expect(out.redisPassword.length).toBeGreaterThanOrEqual(32);
            expect(out.sentinelPassword.length).toBeGreaterThanOrEqual(32);
        });

        it("installs the generated public key on every Linode", () => {
            const [key] = ofType(run, "tls:index/privateKey:PrivateKey");
            const publicKey = String(key.state.publicKeyOpenssh).trim();
            expect(publicKey).toMatch(/^ssh-ed25519 /);
            const instances = ofType(run, "linode:index/instance:Instance");
            expect(instances).toHaveLength(run.topology.nodes.length);
            for (const r of instances) expect(input(r, "authorizedKeys")).toContain(publicKey);
        });

        it("gives every remote command a non-empty private key", () => {
            const commands = ofType(run, "command:remote:Command");
            expect(commands.length).toBeGreaterThan(0);
            for (const c of commands) {
                const conn = input(c, "connection") as { privateKey?: string };
                expect(conn.privateKey).toMatch(/PRIVATE KEY/);
            }
        });
    },
);

describe("a checks key given in config", () => {
    it("is used by every connection and its public half, derived, reaches every node", async () => {
        const dir = mkdtempSync(join(tmpdir(), "checks-key-"));
        spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "given-checks", "-f", join(dir, "id")]);
        const privateKey = readFileSync(join(dir, "id"), "utf8");
        const publicKey = readFileSync(join(dir, "id.pub"), "utf8")
            .trim()
            .replace(/ given-checks$/, "");
        rmSync(dir, { recursive: true });
        const run = await runUnderMocks({
            stack: "prod",
            config: programConfigWith("prod", { checksPrivateKey: privateKey }),
        });
        expect(ofType(run, "tls:index/privateKey:PrivateKey").filter((r) => r.name === names.checksKey)).toEqual([]);
        for (const r of ofType(run, "linode:index/instance:Instance"))
            expect(input(r, "authorizedKeys")).toContain(publicKey);
        for (const c of ofType(run, "command:remote:Command"))
            expect((input(c, "connection") as { privateKey: string }).privateKey).toBe(privateKey);
        // The rollout rewrites root's authorized_keys: the checks key must be in it, or the checks lock themselves out.
        const stdin = String(input(named(run, names.settingsStep("east-a")), "stdin"));
        const line = stdin.split("\n").find((l) => l.startsWith("file /root/.ssh/authorized_keys "));
        expect(Buffer.from(line?.split(" ")[3] ?? "", "base64").toString()).toContain(publicKey);
    });
});

describe("stack outputs", () => {
    it("never export the checks' private key (whoever reads outputs would be root on every node)", () => {
        expect(Object.keys(prod.stackOutputs).sort()).toEqual([
            "caCertificate",
            "certificatesValidUntil",
            "connectionSnippet",
            "creationSettings",
            "hostKeys",
            "masterName",
            "nodes",
            "redisPassword",
            "regionSafeReplicas",
            "sentinelPassword",
            "sentinels",
            "users",
        ]);
        expect(JSON.stringify(prod.stackOutputs)).not.toMatch(/PRIVATE KEY/);
    });
});
