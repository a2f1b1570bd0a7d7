import type {
    Policies,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    StackValidationArgs,
} from "@pulumi/policy";

/**
 * Hand-made arguments for the pack's rules, as @pulumi/policy's analyzer server builds them: resource rules get a
 * resource's inputs, stack rules every resource's outputs, with `stackTags`, `getConfig` and `notApplicable`.
 */

/** One resource of a fixture: its inputs (what resource rules see) and outputs (what stack rules see). */
export interface FakeResource {
    type: string;
    name: string;
    id?: string;
    parent?: string;
    inputs: Record<string, unknown>;
    /** The outputs; the inputs (plus `id`) when absent, as a provider that echoes its inputs reports them. */
    outputs?: Record<string, unknown>;
    additionalSecretOutputs?: string[];
}

export const urnOf = (r: Pick<FakeResource, "type" | "name">): string =>
    `urn:pulumi:test::redis-ha::${r.type}::${r.name}`;

const INSTANCE = "linode:index/instance:Instance";
const FIREWALL = "linode:index/firewall:Firewall";
const CLUSTER = "redis-ha:cluster:RedisCluster";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqkE3IHSjXYxqGqj5ugNGkQkqXg1ldZQvJzq6qRZ8kW";

function node(name: string, region: string, roles: string[], id: string, type = "g6-standard-2"): FakeResource {
    return {
        type: INSTANCE,
        name: `redis-ha-${name}-linode`,
        id,
        parent: `redis-ha-${name}`,
        inputs: {
            label: `redis-prod-${name}`,
            region,
            type,
            image: "linode/debian12",
            tags: ["redis-ha", "cluster:redis-prod", `region:${region}`, ...roles.map((r) => `role:${r}`)],
            authorizedKeys: [HOST_KEY],
            metadatas: [{ userData: "I2Nsb3VkLWNvbmZpZwo=" }],
            firewallId: 900,
            backupsEnabled: roles.includes("redis"),
        },
        additionalSecretOutputs: ["metadatas", "rootPass", "stackscriptData"],
    };
}

/** The summary RedisCluster registers (components/summary.ts) for the fixture's three regions. */
export function summary() {
    const n = (name: string, region: string, roles: string[], initialRole: string, type: string, memoryMb: number) => ({
        name,
        region,
        roles,
        initialRole,
        promotable: roles.includes("redis"),
        type,
        memoryMb,
        ...(roles.includes("redis") ? { maxmemoryBytes: 1843 * 1024 * 1024 } : {}),
        instance: `redis-ha-${name}-linode`,
    });
    return {
        cluster: "redis-prod",
        masterName: "mymaster",
        primaryRegion: "us-east",
        preferredMaster: "east-a",
        multiRegion: true,
        ports: { redis: 6379, sentinel: 26379 },
        sentinel: { count: 3, quorum: 2, majority: 2 },
        replicas: 2,
        minReplicasToWrite: 1,
        minReplicasMaxLagSec: 10,
        linodeBackups: true,
        planMemoryMb: { "g6-nanode-1": 1024, "g6-standard-1": 2048, "g6-standard-2": 4096 },
        nodes: [
            n("east-a", "us-east", ["redis", "sentinel"], "master", "g6-standard-2", 4096),
            n("east-b", "us-east", ["redis"], "replica", "g6-standard-2", 4096),
            n("ord-a", "us-ord", ["redis", "sentinel"], "replica", "g6-standard-2", 4096),
            n("witness", "us-central", ["sentinel"], "sentinel-only", "g6-nanode-1", 1024),
        ],
    };
}

/** A compliant stack shaped like the shipped prod stack: every rule passes it. */
export function compliantStack(): FakeResource[] {
    const connection = { host: "192.0.2.10", user: "root", privateKey: "(key)", hostKey: HOST_KEY };
    return [
        { type: CLUSTER, name: "redis-ha", inputs: {}, outputs: { topologySummary: summary() } },
        node("east-a", "us-east", ["redis", "sentinel"], "1001"),
        node("east-b", "us-east", ["redis"], "1002"),
        node("ord-a", "us-ord", ["redis", "sentinel"], "1003"),
        node("witness", "us-central", ["sentinel"], "1004", "g6-nanode-1"),
        {
            type: FIREWALL,
            name: "redis-ha-firewall",
            id: "900",
            inputs: {
                label: "redis-prod-fw",
                inboundPolicy: "DROP",
                outboundPolicy: "ACCEPT",
                tags: ["redis-ha", "cluster:redis-prod"],
                inbounds: [
                    {
                        label: "redis-peers",
                        action: "ACCEPT",
                        protocol: "TCP",
                        ports: "6379,26379",
                        ipv4s: ["192.0.2.10/32"],
                    },
                    {
                        label: "redis-clients",
                        action: "ACCEPT",
                        protocol: "TCP",
                        ports: "6379,26379",
                        ipv4s: ["198.51.100.0/24"],
                    },
                    { label: "ssh-admin", action: "ACCEPT", protocol: "TCP", ports: "22", ipv4s: ["203.0.113.0/24"] },
                    { label: "icmp-peers", action: "ACCEPT", protocol: "ICMP", ipv4s: ["0.0.0.0/0"] },
                ],
            },
        },
        {
            type: "command:remote:Command",
            name: "redis-ha-settings-east-a",
            inputs: { connection, create: "apply-settings", stdin: "requirepass ..." },
            additionalSecretOutputs: ["stdin", "connection"],
        },
        {
            type: "command:local:Command",
            name: "redis-ha-checks-reach-east-a",
            inputs: { create: "probe", stdin: "(key)" },
            additionalSecretOutputs: ["stdin"],
        },
        {
            type: "random:index/randomPassword:RandomPassword",
            name: "redis-ha-redis-password",
            inputs: { length: 32 },
            additionalSecretOutputs: ["bcryptHash", "result"],
        },
        {
            type: "tls:index/privateKey:PrivateKey",
            name: "redis-ha-checks-key",
            inputs: { algorithm: "ED25519" },
            additionalSecretOutputs: ["privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"],
        },
    ];
}

/** A copy of the fixture's resource `name` (throws when absent), for mutating one property. */
export function find(stack: FakeResource[], name: string): FakeResource {
    const r = stack.find((x) => x.name === name);
    if (!r) throw new Error(`no ${name} in the fixture`);
    return r;
}

export interface Reported {
    policy: string;
    resource: string;
    message: string;
}

class NotApplicable extends Error {}

function isTypeOf(type: string, cls: unknown): boolean {
    return (cls as { __pulumiType?: string }).__pulumiType === type;
}

const options = (r: FakeResource) => ({
    protect: false,
    ignoreChanges: [],
    aliases: [],
    customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
    additionalSecretOutputs: r.additionalSecretOutputs ?? [],
    ...(r.parent ? { parent: urnOf({ type: "redis-ha:node:RedisNode", name: r.parent }) } : {}),
});

export interface Run {
    /** Every violation, by policy and resource name. */
    reported: Reported[];
    /** Policies that called notApplicable, with the reason. */
    notApplicable: { policy: string; reason: string }[];
}

/**
 * Calls every rule of `policies` on the fixture with hand-made arguments: each resource rule once per resource, each
 * stack rule once. `config` is each policy's configuration as `getConfig()` returns it.
 */
export async function runRules(
    policies: Policies,
    stack: FakeResource[],
    config: Record<string, object> = {},
    stackTags: ReadonlyMap<string, string> = new Map([["team", "cache"]]),
): Promise<Run> {
    const reported: Reported[] = [];
    const skipped: Run["notApplicable"] = [];
    const nameOf = new Map(stack.map((r) => [urnOf(r), r.name]));
    const notApplicable = (reason?: string): never => {
        throw new NotApplicable(reason);
    };
    for (const p of policies) {
        const getConfig = (() => config[p.name] ?? {}) as StackValidationArgs["getConfig"];
        const run = async (call: () => Promise<void> | void) => {
            try {
                await call();
            } catch (e) {
                if (!(e instanceof NotApplicable)) throw e;
                skipped.push({ policy: p.name, reason: e.message });
            }
        };
        if ("validateStack" in p) {
            const resources: PolicyResource[] = stack.map((r) => {
                const props = r.outputs ?? { ...r.inputs, ...(r.id ? { id: r.id } : {}) };
                return {
                    type: r.type,
                    name: r.name,
                    urn: urnOf(r),
                    props,
                    opts: options(r),
                    dependencies: [],
                    propertyDependencies: {},
                    isType: (cls) => isTypeOf(r.type, cls),
                    asType: (cls) => (isTypeOf(r.type, cls) ? (props as never) : undefined),
                };
            });
            const report: ReportViolation = (message, urn) =>
                reported.push({ policy: p.name, resource: urn ? (nameOf.get(urn) ?? urn) : "(stack)", message });
            await run(() => p.validateStack({ resources, stackTags, getConfig, notApplicable }, report));
            continue;
        }
        for (const r of stack)
            for (const validate of [p.validateResource ?? []].flat()) {
                const args: ResourceValidationArgs = {
                    type: r.type,
                    name: r.name,
                    urn: urnOf(r),
                    props: r.inputs,
                    opts: options(r),
                    stackTags,
                    isType: (cls) => isTypeOf(r.type, cls),
                    asType: (cls) => (isTypeOf(r.type, cls) ? (r.inputs as never) : undefined),
                    getConfig,
                    notApplicable,
                };
                await run(() =>
                    validate(args, (message) => reported.push({ policy: p.name, resource: r.name, message })),
                );
            }
    }
    return { reported, notApplicable: skipped };
}
