import * as pulumi from "@pulumi/pulumi";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sshFingerprintSha256, type HostKeyPair } from "../cloud-init/sshKeys";
import { resourceNames } from "../components/names";
import { LINODE_REGIONS, type LinodeRegion } from "../topology/linodeRegions";
import { CONFIG_NAMESPACE, topologyFromConfig, type ProblemHandling, type Topology } from "../topology";
import { mockTlsState, TLS_TYPES } from "./mockTls";
import { changedInputs, inputsWithIgnoredKept, operationFor, unwrapSecrets, type Operation } from "./rules";
import { stackProgramConfig, type ProgramConfig } from "./stackFile";

export { unwrapSecrets } from "./rules";

const PROJECT = CONFIG_NAMESPACE;
/** What `pulumi.getOrganization()` returns on a DIY backend; the program's self StackReference names it. */
export const MOCK_ORGANIZATION = "organization";
const STACK_REFERENCE = "pulumi:pulumi:StackReference";
const ROOT_STACK = "pulumi:pulumi:Stack";

export interface RecordedResource {
    readonly type: string;
    readonly name: string;
    /** The URN as the engine makes it: parent type chain, type, name. */
    readonly urn: string;
    /**
     * Inputs as the engine sends them to the provider: secrets wrapped, and for an existing resource the old value of
     * every key in `ignoreChanges`.
     */
    readonly inputs: Record<string, unknown>;
    /** Outputs the (mock) provider returned. */
    readonly state: Record<string, unknown>;
    /** A component's outputs, as it registered them with `registerOutputs` (secrets wrapped); absent otherwise. */
    readonly registeredOutputs?: Record<string, unknown>;
    readonly id?: string;
    readonly parent?: string;
    readonly dependsOn: readonly string[];
    readonly ignoreChanges: readonly string[];
    readonly deleteBeforeReplace: boolean;
    /** Outputs the engine keeps secret whatever their value (`additionalSecretOutputs`, the provider's own included). */
    readonly additionalSecretOutputs: readonly string[];
    readonly custom: boolean;
    /** What this run does to it, relative to `MockRunOptions.previous` (everything is a create without one). */
    readonly op: Operation;
    /** Input keys that differ from the previous deployment's. */
    readonly changed: readonly string[];
}

export interface MockRunOptions {
    readonly stack: string;
    /** The program's configuration; what the CLI builds from `Pulumi.<stack>.yaml` and Pulumi.yaml when absent. */
    readonly config?: ProgramConfig;
    /** Address of each node; documentation addresses (192.0.2.0/24) when absent. */
    readonly addresses?: Readonly<Record<string, string>>;
    /** What the generated passwords come out as; derived from the resource name when absent. */
    readonly passwords?: { readonly redis: string; readonly sentinel: string };
    /** What the generated checks key comes out as; a placeholder when absent. */
    readonly checksKey?: { readonly privateKey: string; readonly publicKey: string };
    /** Each node's SSH host key (the lab's real ones); a placeholder per node when absent. */
    readonly hostKeys?: Readonly<Record<string, HostKeyPair>>;
    /** The last deployment: run the program as an update of it, with the engine's rules (engine/rules.ts). */
    readonly previous?: MockRun;
    /** Resource names to replace whatever changed, like `pulumi up --replace <urn>`. */
    readonly replace?: readonly string[];
    /**
     * What the backup bucket and its key come out as (the lab's local S3 server); Linode-like placeholders when absent.
     * `endpoint` `http://host:port` means a plain-HTTP server (cloud-init/backup.ts).
     */
    readonly objectStorage?: { readonly endpoint: string; readonly accessKey: string; readonly secretKey: string };
    /**
     * Where the real TLS keys and certificates the mocks make are kept between runs (the lab's stack directory); kept
     * in memory only when absent.
     */
    readonly tlsCacheDir?: string;
    /** Mixed into the generated passwords' stand-ins, so that each lab stack has its own; none when absent. */
    readonly passwordSeed?: string;
    /** What `linode.getRegion` answers; Linode's recorded regions (topology/linodeRegions.ts) when absent. */
    readonly regions?: readonly LinodeRegion[];
    /**
     * What the validators' problems do: refuse the config (the default, as `pulumi up` does), or only report them,
     * so `review` can show what the policy pack says about a stack the program refuses.
     */
    readonly problemHandling?: ProblemHandling;
}

export interface MockRun {
    readonly topology: Topology;
    readonly config: ProgramConfig;
    /** Every resource the program declares, in registration order, with what this run does to it. */
    readonly resources: readonly RecordedResource[];
    /** Resources of `previous` that the program no longer declares: the engine deletes them. */
    readonly deleted: readonly RecordedResource[];
    /** Each node's user-data as its Linode receives it (decoded from base64), old user-data kept as the engine does. */
    readonly userData: Readonly<Record<string, string>>;
    /** The stack outputs (what `index.ts` exports), resolved. */
    readonly stackOutputs: Readonly<Record<string, unknown>>;
    /** Names of the stack outputs that are secret. */
    readonly secretStackOutputs: readonly string[];
    /** The next id the mock provider hands out (so a later run gives replaced resources new ids). */
    readonly nextId: number;
}

export function isSecret(value: unknown): boolean {
    return pulumi.runtime.isRpcSecret(value);
}

function resolve<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((r) => {
        o.apply((v) => {
            r(v);
        });
    });
}

/** The URN the engine gives a resource: `urn:pulumi:<stack>::<project>::<parent type chain>$<type>::<name>`. */
function urnOf(stack: string, parentUrn: string | undefined, type: string, name: string): string {
    const qualified = parentUrn ? `${parentUrn.split("::")[2]}$${type}` : type;
    return `urn:pulumi:${stack}::${PROJECT}::${qualified}::${name}`;
}

/** The resource name inside a URN. */
export function nameOfUrn(urn: string): string {
    return urn.split("::").slice(3).join("::");
}

const REVIEW_KEY = {
    privateKey:
        "-----BEGIN OPENSSH PRIVATE KEY-----\n(review placeholder: generated by @pulumi/tls at deploy time)\n-----END OPENSSH PRIVATE KEY-----\n",
    publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA redis-ha-checks",
};

/** A well-formed ED25519 public key derived from the node name (not a usable key pair): review and tests only. */
function placeholderHostKey(node: string): HostKeyPair {
    const str = (b: Buffer) => {
        const len = Buffer.alloc(4);
        len.writeUInt32BE(b.length, 0);
        return Buffer.concat([len, b]);
    };
    const raw = createHash("sha256").update(`review-host-key:${node}`).digest();
    const blob = Buffer.concat([str(Buffer.from("ssh-ed25519")), str(raw)]);
    return {
        privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n(review placeholder: host key of ${node}, generated by @pulumi/tls at deploy time)\n-----END OPENSSH PRIVATE KEY-----\n`,
        publicKey: `ssh-ed25519 ${blob.toString("base64")}`,
    };
}

/** A stand-in for @pulumi/random's result: `length` alphanumerics, stable for a resource name. */
function mockPassword(name: string, length: number): string {
    let out = "";
    for (let i = 0; out.length < length; i++)
        out += createHash("sha256")
            .update(`${name}#${String(i)}`)
            .digest("base64")
            .replace(/[^A-Za-z0-9]/g, "");
    return out.slice(0, length);
}

/**
 * What `tls.getPublicKey` answers: the public half of a real key, as OpenSSH's `ssh-keygen -y` derives it; the
 * placeholder key's own public half for the placeholder.
 */
function publicKeyOf(inputs: Record<string, unknown>, placeholder: { privateKey: string; publicKey: string }): string {
    const given = inputs.privateKeyOpenssh ?? inputs.privateKeyPem;
    if (typeof given !== "string") throw new Error("tls.getPublicKey without a private key");
    if (given === placeholder.privateKey) return placeholder.publicKey;
    const dir = mkdtempSync(join(tmpdir(), "mock-key-"));
    try {
        writeFileSync(join(dir, "key"), given, { mode: 0o600 });
        const r = spawnSync("ssh-keygen", ["-y", "-f", join(dir, "key")], { encoding: "utf8" });
        if (r.status !== 0) throw new Error(`tls.getPublicKey: not a private key (${r.stderr.trim()})`);
        // `<type> <base64>` with no comment, as @pulumi/tls answers (newer ssh-keygen appends the key's comment).
        return r.stdout.trim().split(" ").slice(0, 2).join(" ");
    } finally {
        rmSync(dir, { recursive: true });
    }
}

interface Declared {
    readonly parent?: pulumi.Resource;
    readonly dependsOn: readonly pulumi.Resource[];
    readonly ignoreChanges: readonly string[];
    readonly deleteBeforeReplace: boolean;
    readonly additionalSecretOutputs: readonly string[];
}

function asList<T>(value: T | readonly T[] | undefined): readonly T[] {
    if (value === undefined) return [];
    return Array.isArray(value) ? (value as readonly T[]) : [value as T];
}

/**
 * Runs the Pulumi program under Pulumi's unit-test mocks (no CLI, no cloud) on the configuration the CLI would build,
 * and records every resource it declares, with inputs, parents, dependencies and ignoreChanges. Given a `previous`
 * run it acts as an update of that deployment and applies the engine's rules (engine/rules.ts): which resources are
 * created, updated, replaced or deleted, and with which inputs. Used by `review`, the lab (which boots the user-data
 * recorded here) and the tests. Throws ConfigError on bad config before any resource is declared.
 */
export async function runUnderMocks(options: MockRunOptions): Promise<MockRun> {
    const config = options.config ?? stackProgramConfig(options.stack);
    const topology = topologyFromConfig(config.values, PROJECT, options.stack, options.problemHandling);
    const addresses =
        options.addresses ?? Object.fromEntries(topology.nodes.map((n, i) => [n.name, `192.0.2.${String(10 + i)}`]));
    const ipNames = new Map(topology.nodes.map((n) => [resourceNames.reservedIp(n.region, n.name), n.name]));
    const instanceNames = new Map(topology.nodes.map((n) => [resourceNames.instance(n.name), n.name]));
    const key = options.checksKey ?? REVIEW_KEY;
    const previous = new Map((options.previous?.resources ?? []).map((r) => [r.urn, r]));
    const replace = new Set(options.replace ?? []);

    const recorded: RecordedResource[] = [];
    const declared = new Map<string, Declared>();
    let nextId = options.previous?.nextId ?? 1000;

    const providerState = (type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> => {
        switch (type) {
            case "linode:index/networkingIp:NetworkingIp":
                return { ...inputs, address: addresses[ipNames.get(name) ?? ""] ?? "192.0.2.254" };
            case "linode:index/instance:Instance": {
                // A reserved address when one is given; otherwise (addressing: ephemeral) Linode assigns one: the
                // node's address from `addresses` (the lab's), listed after a private one as Linode's `ipv4s` may be.
                const given = (inputs.ipv4s as string[] | undefined)?.[0];
                const assigned: Readonly<Record<string, string | undefined>> = addresses;
                const ip = given ?? assigned[instanceNames.get(name) ?? ""] ?? "192.0.2.253";
                const ipv4s = given === undefined && inputs.privateIp === true ? ["192.168.130.7", ip] : [ip];
                return { ...inputs, ipv4s, ipAddress: ip, ipv6: "2001:db8::1/128", status: "running" };
            }
            case "random:index/randomPassword:RandomPassword": {
                const given =
                    name === resourceNames.password("redis")
                        ? options.passwords?.redis
                        : name === resourceNames.password("sentinel")
                          ? options.passwords?.sentinel
                          : undefined;
                return {
                    ...inputs,
                    result: given ?? mockPassword(`${options.passwordSeed ?? ""}${name}`, Number(inputs.length)),
                };
            }
            case TLS_TYPES.selfSignedCert:
            case TLS_TYPES.certRequest:
            case TLS_TYPES.locallySignedCert:
                return mockTlsState(type, name, inputs, options.tlsCacheDir);
            case TLS_TYPES.privateKey: {
                // The cluster CA's and the nodes' TLS keys (ECDSA): real keys, so the lab serves TLS with them.
                if (inputs.algorithm === "ECDSA") return mockTlsState(type, name, inputs, options.tlsCacheDir);
                const hostOf = topology.nodes.find((n) => name === resourceNames.hostKey(n.name))?.name;
                if (hostOf !== undefined) {
                    const k = options.hostKeys?.[hostOf] ?? placeholderHostKey(hostOf);
                    // As @pulumi/tls reports them: the public line with a newline, the SHA256 fingerprint.
                    return {
                        ...inputs,
                        privateKeyOpenssh: k.privateKey,
                        publicKeyOpenssh: `${k.publicKey}\n`,
                        publicKeyFingerprintSha256: sshFingerprintSha256(k.publicKey),
                    };
                }
                return { ...inputs, privateKeyOpenssh: key.privateKey, publicKeyOpenssh: `${key.publicKey}\n` };
            }
            case "command:remote:Command":
                return { ...inputs, stdout: "", stderr: "" };
            case "random:index/randomString:RandomString":
                return { ...inputs, result: mockPassword(name, Number(inputs.length)).toLowerCase() };
            case "linode:index/objectStorageBucket:ObjectStorageBucket": {
                const endpoint = options.objectStorage?.endpoint ?? `${String(inputs.region)}-1.linodeobjects.com`;
                return { ...inputs, s3Endpoint: endpoint, hostname: `${String(inputs.label)}.${endpoint}` };
            }
            case "linode:index/objectStorageKey:ObjectStorageKey":
                return {
                    ...inputs,
                    accessKey: options.objectStorage?.accessKey ?? "MOCKACCESSKEY0000000",
                    secretKey: options.objectStorage?.secretKey ?? mockPassword(name, 40),
                    limited: true,
                };
            default:
                return inputs;
        }
    };

    await pulumi.runtime.setMocks(
        {
            async newResource(args) {
                const meta = declared.get(`${args.type}::${args.name}`);
                // Resources declared without a parent belong to the stack (the SDK adds it after transformations ran).
                const parentUrn = meta?.parent
                    ? await resolve(meta.parent.urn)
                    : args.type === ROOT_STACK
                      ? undefined
                      : recorded.find((r) => r.type === ROOT_STACK)?.urn;
                const urn = urnOf(options.stack, parentUrn, args.type, args.name);
                const custom = args.custom ?? true;
                const sent = args.inputs as Record<string, unknown>;
                if (args.type === STACK_REFERENCE)
                    // A read, not a resource of this stack: it answers with the last deployment's outputs.
                    return {
                        id: String(sent.name),
                        state: {
                            name: sent.name,
                            outputs: options.previous?.stackOutputs ?? {},
                            secretOutputNames: options.previous?.secretStackOutputs ?? [],
                        },
                    };
                const ignoreChanges = meta?.ignoreChanges ?? [];
                const before = previous.get(urn);
                const inputs = before ? inputsWithIgnoredKept(before.inputs, sent, ignoreChanges) : sent;
                const changed = before ? changedInputs(before.inputs, inputs) : [];
                const op = before ? operationFor(args.type, changed, replace.has(args.name)) : "create";
                const plain = unwrapSecrets(inputs) as Record<string, unknown>;
                const keep = before !== undefined && (op === "same" || op === "update");
                const id = !custom ? undefined : keep ? before.id : String(nextId++);
                const state = keep ? { ...before.state, ...plain } : providerState(args.type, args.name, plain);
                const dependsOn = await Promise.all((meta?.dependsOn ?? []).map((d) => resolve(d.urn)));
                recorded.push({
                    type: args.type,
                    name: args.name,
                    urn,
                    inputs,
                    state,
                    id,
                    parent: parentUrn && nameOfUrn(parentUrn),
                    dependsOn: dependsOn.map(nameOfUrn),
                    ignoreChanges,
                    deleteBeforeReplace: meta?.deleteBeforeReplace ?? false,
                    additionalSecretOutputs: meta?.additionalSecretOutputs ?? [],
                    custom,
                    op,
                    changed,
                });
                return { id, state };
            },
            call: (args) => {
                const inputs = args.inputs as Record<string, unknown>;
                if (args.token === "tls:index/getPublicKey:getPublicKey")
                    return { ...inputs, publicKeyOpenssh: `${publicKeyOf(inputs, key)}\n` };
                if (args.token === "linode:index/getRegion:getRegion") {
                    const id = (args.inputs as { id: string }).id;
                    const region = (options.regions ?? LINODE_REGIONS).find((r) => r.id === id);
                    // The provider fails the invoke for an unknown region (the API answers 404); the runtime reads a
                    // failed call's message from gRPC's `details`.
                    if (!region) {
                        const message = `failed to get region ${id}: [404] Not found`;
                        throw Object.assign(new Error(message), { details: message });
                    }
                    return { ...region, capabilities: [...region.capabilities], siteType: "core" };
                }
                if (args.token === "linode:index/getInstances:getInstances") {
                    // Linode's view: the Linodes of the last deployment, as the provider left them.
                    const filters = (args.inputs as { filters?: { name: string; values: string[] }[] }).filters ?? [];
                    const labels = filters.find((f) => f.name === "label")?.values;
                    const instances = (options.previous?.resources ?? [])
                        .filter((r) => r.type === "linode:index/instance:Instance")
                        .map((r) => ({ id: Number(r.id), ...r.state }) as { id: number; label: string })
                        .filter((i) => labels === undefined || labels.includes(i.label));
                    return { id: "instances", filters, instances };
                }
                return inputs;
            },
        },
        PROJECT,
        options.stack,
        false,
        MOCK_ORGANIZATION,
    );
    pulumi.runtime.setAllConfig({ ...config.values }, [...config.secretKeys]);
    // The mock monitor keeps what components register with `registerOutputs`, which the mocks' hooks never see.
    // `as unknown as`: getMonitor is typed as the gRPC client; under setMocks it is the MockMonitor.
    const monitor = pulumi.runtime.getMonitor() as unknown as MockMonitorOutputs;

    // Imported here, after the mocks, as Pulumi's unit-testing guide requires.
    const { program } = await import("../program");
    const record: pulumi.ResourceTransformation = (args) => {
        const resourceKey = `${args.type}::${args.name}`;
        if (declared.has(resourceKey)) throw new Error(`two resources named ${resourceKey}`);
        declared.set(resourceKey, {
            parent: args.opts.parent,
            dependsOn: asList(args.opts.dependsOn).filter((d): d is pulumi.Resource => pulumi.Resource.isInstance(d)),
            ignoreChanges: args.opts.ignoreChanges ?? [],
            deleteBeforeReplace: Boolean((args.opts as pulumi.CustomResourceOptions).deleteBeforeReplace),
            additionalSecretOutputs: (args.opts as pulumi.CustomResourceOptions).additionalSecretOutputs ?? [],
        });
        return undefined;
    };
    let outputs: Record<string, pulumi.Output<unknown>> = {};
    // Inside a Stack resource, as `pulumi up` runs index.ts: URNs carry the stack's type like the engine's do.
    let failure: Error | undefined;
    await pulumi.runtime.runInPulumiStack(async () => {
        // Caught here and rethrown below: the real CLI reports a RunError from the program as its message; left
        // unhandled inside the Stack it would end the test process.
        try {
            outputs = await program({ transformations: [record] }, topology);
        } catch (e) {
            failure = e instanceof Error ? e : new Error(String(e));
        }
        return outputs;
    });
    if (failure !== undefined) {
        await pulumi.runtime.disconnect();
        throw failure;
    }
    const stackOutputValues: Record<string, unknown> = {};
    const secretStackOutputs: string[] = [];
    for (const [name, output] of Object.entries(outputs)) {
        stackOutputValues[name] = await resolve(output);
        if (await pulumi.isSecret(output)) secretStackOutputs.push(name);
    }
    // Every registration and output update has reached the mock engine before the next run replaces it.
    await pulumi.runtime.disconnect();

    componentOutputs(recorded, monitor);
    const registered = new Set(recorded.map((r) => r.urn));
    const deleted = (options.previous?.resources ?? [])
        .filter((r) => !registered.has(r.urn))
        .map((r) => ({ ...r, op: "delete" as const, changed: [] }));
    const userData: Record<string, string> = {};
    for (const n of topology.nodes) {
        const instance = recorded.find((r) => r.name === resourceNames.instance(n.name));
        const md = unwrapSecrets(instance?.inputs.metadatas) as { userData: string }[] | undefined;
        if (md?.[0]) userData[n.name] = Buffer.from(md[0].userData, "base64").toString("utf8");
    }
    return {
        topology,
        config,
        resources: recorded,
        deleted,
        userData,
        stackOutputs: stackOutputValues,
        secretStackOutputs,
        nextId,
    };
}

/** The part of @pulumi/pulumi's MockMonitor read here (its class is not exported in the package's types). */
interface MockMonitorOutputs {
    getRegisteredResources(): Map<string, { state: unknown }>;
}

type OutputsStruct = Parameters<typeof pulumi.runtime.deserializeProperties>[0];

/** registerResourceOutputs leaves the request's protobuf Struct as the state; registerResource a plain object. */
function isStruct(value: unknown): value is OutputsStruct {
    return typeof (value as { toJavaScript?: unknown } | undefined)?.toJavaScript === "function";
}

/**
 * Adds each component's registered outputs (`registeredOutputs`), secrets wrapped as resource inputs are. Matched by
 * type and name (names are unique here), as the monitor's URNs are its own.
 */
function componentOutputs(recorded: RecordedResource[], monitor: MockMonitorOutputs): void {
    const byTypeAndName = new Map<string, OutputsStruct>();
    for (const [urn, r] of monitor.getRegisteredResources()) {
        const [, , qualified, name] = urn.split("::");
        if (isStruct(r.state)) byTypeAndName.set(`${qualified.split("$").pop() ?? ""}::${name}`, r.state);
    }
    recorded.forEach((r, i) => {
        const outputs = byTypeAndName.get(`${r.type}::${r.name}`);
        if (!r.custom && outputs)
            recorded[i] = { ...r, registeredOutputs: pulumi.runtime.deserializeProperties(outputs) };
    });
}

/** A run's resource by name (names are unique in this program); throws when absent. */
export function resourceNamed(run: MockRun, name: string): RecordedResource {
    const r = run.resources.find((x) => x.name === name);
    if (!r) throw new Error(`no resource named ${name}`);
    return r;
}

/** Resources of a run that the engine acts on (create, update, replace, delete), with the operation. */
export function planOf(run: MockRun): { op: Operation; type: string; name: string; changed: readonly string[] }[] {
    return [...run.resources, ...run.deleted]
        .filter((r) => r.custom && r.op !== "same")
        .map((r) => ({ op: r.op, type: r.type, name: r.name, changed: r.changed }));
}
