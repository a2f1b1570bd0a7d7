/**
 * `addressing: reserved | ephemeral` under the CLI-faithful mocks: without IPv4 reservation no
 * NetworkingIp exists, user-data names no address, a bootstrap step per node hands every node its peers once every
 * Linode and the firewall exist, the checks come after it, the firewall follows the Linodes' addresses, and a
 * replaced node's new address reaches every node. Both modes render the same node configuration.
 */
import {
    bootstrapFiles,
    bootstrapInput,
    filesInUserData,
    PATHS,
    renderUserData,
    type RenderInput,
} from "../cloud-init";
import { bootstrapOrder } from "../components/bootstrap";
import { resourceNames as names } from "../components/names";
import { publicIpv4 } from "../components/redisNode";
import {
    isSecret,
    planOf,
    resourceNamed,
    runUnderMocks,
    unwrapSecrets,
    type MockRun,
    type RecordedResource,
} from "../engine/mockRun";
import { parse } from "yaml";
import { ConfigError, topologyFromConfig } from "../topology";
import { configWith, programConfigWith } from "./helpers";

const INSTANCE = "linode:index/instance:Instance";
const NODES = ["east-a", "east-b", "ord-a", "ord-b", "witness"];
/** Addresses Linode would hand out (documentation range), different from the mocks' reserved defaults. */
const ASSIGNED: Record<string, string> = {
    "east-a": "203.0.113.21",
    "east-b": "203.0.113.22",
    "ord-a": "198.51.100.23",
    "ord-b": "198.51.100.25",
    witness: "198.51.100.24",
};
const ephemeralConfig = programConfigWith("prod", { addressing: "ephemeral" });

let ephemeral: MockRun;
let reserved: MockRun;
beforeAll(async () => {
    ephemeral = await runUnderMocks({ stack: "prod", config: ephemeralConfig, addresses: ASSIGNED });
    reserved = await runUnderMocks({ stack: "prod", addresses: ASSIGNED });
});

const ofType = (run: MockRun, type: string) => run.resources.filter((r) => r.type === type);
const input = (r: RecordedResource, key: string) => unwrapSecrets(r.inputs[key]);
const stdinOf = (run: MockRun, node: string) => String(input(resourceNamed(run, names.bootstrapStep(node)), "stdin"));
/** The files a bootstrap stdin carries, decoded: path -> content. */
/** Each ACL user's password, from the `users` stack output (tls). */
function userPasswords(r: MockRun): Record<string, string> {
    const users = r.stackOutputs.users as Record<string, { password: string }>;
    return Object.fromEntries(Object.entries(users).map(([k, u]) => [k, u.password]));
}

function decoded(stdin: string): Map<string, string> {
    return new Map(
        stdin
            .trim()
            .split("\n")
            .map((line) => line.split(" "))
            .map(([, , path, , , data]) => [path, Buffer.from(data, "base64").toString("utf8")]),
    );
}

describe("the addressing key", () => {
    it("defaults to reserved, accepts ephemeral, and refuses anything else in one line naming the key", () => {
        expect(topologyFromConfig(configWith("prod", {}), "redis-ha", "prod").addressing).toBe("reserved");
        expect(topologyFromConfig(ephemeralConfig.values, "redis-ha", "prod").addressing).toBe("ephemeral");
        const bad = () => topologyFromConfig(configWith("prod", { addressing: "dhcp" }), "redis-ha", "prod");
        expect(bad).toThrow(ConfigError);
        expect(bad).toThrow(/^redis-ha:addressing: must be reserved .* or ephemeral .*$/);
        try {
            bad();
        } catch (e) {
            expect((e as Error).message.split("\n")).toHaveLength(1);
        }
    });
});

describe("addressing: ephemeral (prod under mocks)", () => {
    it("reserves no IPv4 and creates every Linode without an address or firewall of its own", () => {
        expect(ofType(ephemeral, "linode:index/networkingIp:NetworkingIp")).toEqual([]);
        const instances = ofType(ephemeral, INSTANCE);
        expect(instances).toHaveLength(NODES.length);
        for (const r of instances) {
            expect(r.inputs).not.toHaveProperty("ipv4s");
            expect(r.inputs).not.toHaveProperty("firewallId");
            expect(r.deleteBeforeReplace).toBe(true);
        }
        // The reserved mode, same stack: one reserved IPv4 per node, passed to its Linode.
        expect(ofType(reserved, "linode:index/networkingIp:NetworkingIp")).toHaveLength(NODES.length);
        for (const r of ofType(reserved, INSTANCE)) expect(r.inputs).toHaveProperty("ipv4s");
    });

    it("renders user-data that names no address and no password, and starts neither Redis nor Sentinel", () => {
        for (const node of NODES) {
            const userData = ephemeral.userData[node];
            expect(userData).toMatch(/^#cloud-config\n/);
            for (const address of Object.values(ASSIGNED)) expect(userData).not.toContain(address);
            const paths = filesInUserData(userData).map((f) => f.path);
            expect(paths).not.toContain(PATHS.nodeEnv);
            expect(paths).not.toContain(PATHS.redisConf);
            expect(paths).not.toContain(PATHS.sentinelConf);
            expect(paths).toContain(`${PATHS.scriptsDir}/bootstrap-node`);
            expect(userData).not.toContain(String(ephemeral.stackOutputs.redisPassword));
            expect(userData).not.toContain(String(ephemeral.stackOutputs.sentinelPassword));
            for (const u of Object.values(userPasswords(ephemeral))) expect(userData).not.toContain(u);
            const { runcmd } = parse(userData) as { runcmd: unknown[] };
            expect(JSON.stringify(runcmd)).not.toMatch(/redis-server|redis-sentinel|node-ready/);
            // The drop-ins hold Redis and Sentinel until the bootstrap has written node.env, across reboots too.
            // (The exporters need no such hold: they retry until node.env exists, see cloud-init/monitoringExporters.ts.)
            for (const f of filesInUserData(userData).filter((x) =>
                /redis-(server|sentinel)\.service\.d\//.test(x.path),
            ))
                expect(f.content).toContain(`ConditionPathExists=${PATHS.nodeEnv}`);
        }
        // Reserved user-data does name the peers and start the services (the checks above can fail).
        expect(reserved.userData["east-b"]).toContain(ASSIGNED["east-a"]);
        // (tls, the default: redis.conf's masterauth is the replication user's password.)
        expect(reserved.userData["east-b"]).toContain(userPasswords(reserved).replication);
        expect(JSON.stringify((parse(reserved.userData["east-b"]) as { runcmd: unknown[] }).runcmd)).toMatch(
            /redis-server/,
        );
    });

    it("runs one bootstrap command per node, after every Linode and the firewall, one node at a time", () => {
        const t = ephemeral.topology;
        const order = bootstrapOrder(t).map((n) => n.name);
        expect(order[0]).toBe(t.preferredMaster);
        expect([...order].sort()).toEqual([...NODES].sort());
        order.forEach((node, i) => {
            const step = resourceNamed(ephemeral, names.bootstrapStep(node));
            expect(step.type).toBe("command:remote:Command");
            expect(step.parent).toBe(names.bootstrap);
            expect(input(step, "create")).toBe(`${PATHS.scriptsDir}/bootstrap-node`);
            for (const n of NODES) expect(step.dependsOn).toContain(names.instance(n));
            expect(step.dependsOn).toContain(names.firewall);
            expect(step.dependsOn).toContain(names.wait(node));
            if (i > 0) expect(step.dependsOn).toContain(names.bootstrapStep(order[i - 1]));
            // It connects to the node's own address with its host key pinned.
            const connection = input(step, "connection") as { host: string; hostKey: string };
            expect(connection.host).toBe(ASSIGNED[node]);
            expect(connection.hostKey).toMatch(/^ssh-ed25519 /);
            // The stdin carries passwords: secret.
            expect(isSecret(step.inputs.stdin)).toBe(true);
        });
        expect(ofType(reserved, "command:remote:Command").filter((r) => r.name.startsWith(names.bootstrap))).toEqual(
            [],
        );
    });

    it("hands every node every peer's address: node.env, replicaof, Sentinel's monitor and announce", () => {
        const t = ephemeral.topology;
        for (const node of NODES) {
            const files = decoded(stdinOf(ephemeral, node));
            const env = files.get(PATHS.nodeEnv) ?? "";
            for (const [peer, address] of Object.entries(ASSIGNED)) {
                expect(env).toContain(address);
                if (t.nodes.find((n) => n.name === peer)?.runsSentinel)
                    expect(env).toMatch(new RegExp(`SENTINELS='[^']*${address.replace(/\./g, "\\.")}:26379`));
            }
            expect(env).toContain(`NODE_ADDRESS='${ASSIGNED[node]}'`);
            expect(env).toContain(`PREFERRED_MASTER_ADDRESS='${ASSIGNED[t.preferredMaster]}'`);
            const plan = t.nodes.find((n) => n.name === node);
            if (plan?.runsRedis) {
                const conf = files.get(PATHS.redisConf) ?? "";
                expect(conf).toContain(`replica-announce-ip ${ASSIGNED[node]}`);
                if (plan.initialRole === "replica")
                    expect(conf).toContain(`replicaof ${ASSIGNED[t.preferredMaster]} 6379`);
            }
            if (plan?.runsSentinel) {
                const conf = files.get(PATHS.sentinelConf) ?? "";
                expect(conf).toContain(`sentinel announce-ip ${ASSIGNED[node]}`);
                expect(conf).toMatch(new RegExp(`sentinel monitor mymaster ${ASSIGNED[t.preferredMaster]} 6379 \\d`));
            }
            // node.env last: its existence lets the units start.
            expect([...files.keys()].at(-1)).toBe(PATHS.nodeEnv);
        }
    });

    it("runs the settings rollout and every check only after the bootstrap", () => {
        const steps = NODES.map((n) => names.bootstrapStep(n));
        for (const node of NODES) {
            const rollout = resourceNamed(ephemeral, names.settingsStep(node));
            expect(rollout.dependsOn).toEqual(expect.arrayContaining(steps));
        }
        const checks = ephemeral.resources.filter(
            (r) => r.parent === names.checks && /-(health|quorum)-|failover-drill/.test(r.name),
        );
        expect(checks.length).toBeGreaterThanOrEqual(NODES.length);
        for (const c of checks.filter((r) => !r.name.endsWith("failover-drill")))
            expect(c.dependsOn).toEqual(expect.arrayContaining(steps));
    });

    it("builds the firewall from the Linodes' own addresses and attaches it to them", () => {
        const fw = resourceNamed(ephemeral, names.firewall);
        const rules = input(fw, "inbounds") as { label: string; ipv4s?: string[] }[];
        const peers = Object.values(ASSIGNED)
            .sort()
            .map((a) => `${a}/32`);
        expect(rules.find((r) => r.label === "redis-peers")?.ipv4s).toEqual(peers);
        expect(rules.find((r) => r.label === "icmp-peers")?.ipv4s).toEqual(peers);
        const ids = NODES.map((n) => Number(resourceNamed(ephemeral, names.instance(n)).id));
        expect([...(input(fw, "linodes") as number[])].sort()).toEqual([...ids].sort());
        // Reserved: the Linodes are created behind the firewall instead.
        expect(input(resourceNamed(reserved, names.firewall), "linodes")).toBeUndefined();
    });

    it("publishes the Linodes' own addresses as the Sentinels and nodes outputs", () => {
        const sentinels = ephemeral.stackOutputs.sentinels as { host: string }[];
        expect(sentinels.map((s) => s.host).sort()).toEqual(
            ephemeral.topology.nodes
                .filter((n) => n.runsSentinel)
                .map((n) => ASSIGNED[n.name])
                .sort(),
        );
        const nodes = ephemeral.stackOutputs.nodes as Record<string, { address: string }>;
        for (const n of NODES) expect(nodes[n].address).toBe(ASSIGNED[n]);
    });
});

describe("a replaced node under addressing: ephemeral", () => {
    it("gets a new address, which every node's bootstrap re-runs with and the firewall follows in place", async () => {
        const moved = { ...ASSIGNED, "east-b": "203.0.113.99" };
        const next = await runUnderMocks({
            stack: "prod",
            config: ephemeralConfig,
            addresses: moved,
            previous: ephemeral,
            replace: [names.instance("east-b")],
        });
        const plan = planOf(next);
        expect(plan.find((p) => p.name === names.instance("east-b"))?.op).toBe("replace");
        for (const other of NODES.filter((n) => n !== "east-b"))
            expect(plan.find((p) => p.name === names.instance(other))).toBeUndefined();
        // Every node's bootstrap runs again (its trigger is the whole address list), with the new list.
        for (const node of NODES) {
            expect(plan.find((p) => p.name === names.bootstrapStep(node))?.op).toBe("replace");
            const env = decoded(stdinOf(next, node)).get(PATHS.nodeEnv) ?? "";
            expect(env).toContain("203.0.113.99");
            expect(env).not.toContain(ASSIGNED["east-b"]);
        }
        const fw = plan.find((p) => p.name === names.firewall);
        expect(fw?.op).toBe("update");
        expect(fw?.changed).toEqual(expect.arrayContaining(["inbounds", "linodes"]));
    });

    it("changes nothing on a settings change: no bootstrap trigger moves, no Linode or firewall changes", async () => {
        const next = await runUnderMocks({
            stack: "prod",
            config: programConfigWith("prod", { addressing: "ephemeral", downAfterMs: 6000 }),
            addresses: ASSIGNED,
            previous: ephemeral,
        });
        const plan = planOf(next);
        for (const node of NODES) {
            expect(plan.find((p) => p.name === names.instance(node))).toBeUndefined();
            expect(plan.find((p) => p.name === names.bootstrapStep(node))?.op ?? "same").not.toBe("replace");
        }
        expect(plan.find((p) => p.name === names.firewall)).toBeUndefined();
    });
});

describe("a plan change under addressing: ephemeral", () => {
    it("hands over and checks at the running Linodes' addresses (read from Linode, no cycle through the Linodes)", async () => {
        const resized = await runUnderMocks({
            stack: "prod",
            config: programConfigWith("prod", { addressing: "ephemeral", nodeType: "g6-standard-4" }),
            addresses: ASSIGNED,
            previous: ephemeral,
        });
        const handover = resourceNamed(resized, names.resizeHandover("east-a"));
        expect(String(input(handover, "create"))).toBe(
            `${PATHS.scriptsDir}/failover-drill handover ${ASSIGNED["east-a"]}:6379 ${ASSIGNED["ord-b"]}:6379 ${ASSIGNED["ord-a"]}:6379 ${ASSIGNED["east-b"]}:6379`,
        );
        expect((input(handover, "connection") as { host: string }).host).toBe(ASSIGNED["east-a"]);
        const ready = resourceNamed(resized, names.resizeReady("east-b"));
        expect((input(ready, "connection") as { host: string }).host).toBe(ASSIGNED["east-b"]);
        // The resize keeps every address: no bootstrap re-runs.
        for (const node of NODES)
            expect(planOf(resized).find((p) => p.name === names.bootstrapStep(node))?.op ?? "same").not.toBe("replace");
    }, 20_000);
});

describe("switching the mode on a running cluster", () => {
    it("is refused at preview in one line naming the key (every Linode would be re-created at once)", async () => {
        await expect(
            runUnderMocks({ stack: "prod", config: ephemeralConfig, addresses: ASSIGNED, previous: reserved }),
        ).rejects.toThrow(
            /^redis-ha:addressing: is reserved on the running cluster and cannot change to ephemeral: .*needs a new cluster.*$/,
        );
        expect(reserved.stackOutputs.creationSettings).toMatchObject({ addressing: "reserved" });
        expect(ephemeral.stackOutputs.creationSettings).toMatchObject({ addressing: "ephemeral" });
    });
});

describe("both modes run the same node configuration", () => {
    // The shared-password rendering (`tls: false`): the secret inputs here are the shared passwords.
    const t = topologyFromConfig({ ...ephemeralConfig.values, "redis-ha:tls": "false" }, "redis-ha", "prod");
    const tReserved = topologyFromConfig(configWith("prod", { tls: false }), "redis-ha", "prod");
    const secrets = { redisPassword: "redis-password-0123456789", sentinelPassword: "sentinel-password-0123456789" };
    const inputFor = (topology: typeof t, node: string): RenderInput => ({
        topology,
        node,
        addresses: ASSIGNED,
        secrets,
    });

    it("delivers by bootstrap exactly the node.env, redis.conf and sentinel.conf that reserved user-data writes", () => {
        for (const node of NODES) {
            const fromUserData = new Map(
                filesInUserData(renderUserData(inputFor(tReserved, node))).map((f) => [f.path, f.content]),
            );
            const fromBootstrap = decoded(bootstrapInput(inputFor(t, node)));
            expect(fromBootstrap.size).toBeGreaterThanOrEqual(2);
            for (const [path, content] of fromBootstrap) expect(content).toBe(fromUserData.get(path));
        }
    });

    it("writes redis.conf and sentinel.conf on the first bootstrap only, node.env on every run and last", () => {
        const files = bootstrapFiles(inputFor(t, "east-a"));
        expect(files.map((f) => [f.path, f.when, f.owner])).toEqual([
            [PATHS.redisConf, "once", "redis:redis"],
            [PATHS.sentinelConf, "once", "redis:redis"],
            [PATHS.nodeEnv, "always", "root:root"],
        ]);
    });
});

describe("publicIpv4", () => {
    it("takes the public address from ipv4s, skipping Linode's private 192.168.128.0/17", () => {
        expect(publicIpv4(["192.168.130.7", "203.0.113.21"])).toBe("203.0.113.21");
        expect(publicIpv4(["203.0.113.21", "192.168.255.1"])).toBe("203.0.113.21");
        expect(publicIpv4(["192.168.1.5"])).toBe("192.168.1.5");
        expect(() => publicIpv4(["192.168.128.1"])).toThrow(/no public IPv4/);
    });
});
