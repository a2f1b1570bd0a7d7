import type { PublishedHostKey } from "../components/hostKeys";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { allPackages } from "../cloud-init";
import { bootstrapOrder } from "../components/bootstrap";
import { resourceNames } from "../components/names";
import { isDeepStrictEqual } from "node:util";
import { resourceNamed, runUnderMocks, unwrapSecrets, type MockRun } from "../engine/mockRun";
import { stackProgramConfig, type ProgramConfig } from "../engine/stackFile";
import { CONFIG_NAMESPACE, topologyFromConfig, type AddressingMode, type Topology } from "../topology";
import { run } from "./exec";
import { ensureHostKeys, writeKnownHosts } from "./hostKeys";
import { LAB_REGIONS_CIDR, planNetwork, type LabNetwork } from "./network";
import type { LabNodeSpec } from "./nodes";
import { STATE_ROOT } from "./paths";
import { labObjectStorage } from "./s3";

/** Where the lab keeps a stack's generated credentials (removed by `lab down`). */
export function stackDir(stack: string): string {
    return path.join(STATE_ROOT, "stacks", stack);
}

/** How a lab tool logs in to a node: as an ACL user over TLS with the stack's CA (tls), or with a shared password. */
export interface LabLogin {
    username?: string;
    password: string;
    tls?: { ca: string };
}

export interface LabCredentials {
    /** Without tls the shared passwords; with tls the app user's password (what the stack outputs give clients). */
    redisPassword: string;
    sentinelPassword: string;
    /** tls: every ACL user's name and password (the `users` stack output) and the CA (`caCertificate`). */
    users?: Readonly<Record<string, { username: string; password: string }>>;
    caCert?: string;
    /** Private key file of the stack's SSH key (what `pulumi up` generates with @pulumi/tls). */
    keyFile: string;
    publicKey: string;
}

export interface LabStack {
    stack: string;
    topology: Topology;
    network: LabNetwork;
    nodes: LabNodeSpec[];
    credentials: LabCredentials;
    /** known_hosts with every node's published host key: lab SSH pins it (lab/ssh.ts). */
    knownHostsFile: string;
    /** Debian packages the user-data installs: the image's offline repository holds exactly these. */
    packages: string[];
    /**
     * `addressing: ephemeral`: the bootstrap commands the program declares, in their order, each as `pulumi up` runs
     * it (the command over SSH with its stdin); empty with reserved addresses.
     */
    bootstrap: LabBootstrapStep[];
    /**
     * The settings rollout the program declares (components/rollout.ts), in its order (replicas first, the preferred
     * master last), each step as `pulumi up` runs it: `apply-settings` over SSH with its (secret) stdin.
     */
    rollout: LabBootstrapStep[];
}

export interface LabBootstrapStep {
    node: string;
    /** The remote command line (`create`). */
    command: string;
    /** Its stdin: the node's node.env, redis.conf and sentinel.conf (secret). */
    stdin: string;
}

export interface LabStackOptions {
    /**
     * Overrides the stack's `addressing` for this lab run, as `pulumi config set addressing <mode>` would; remembered
     * until `lab down`, so later commands (status, drill, ssh) see the same stack. @default the stack's own value
     */
    addressing?: AddressingMode;
    /**
     * Turns `backup.enabled` on for this lab run (the backup drill), with the bucket on the lab's local S3 server
     * (lab/s3.ts); remembered until `lab down` like `addressing`. @default the stack's own value
     */
    backup?: boolean;
    /**
     * Sets `backup.seedFrom` for this lab run (the backup drill's new-cluster case): the first master loads that
     * backup from the lab's S3 server at boot; remembered until `lab down`. @default the stack's own value
     */
    seedFrom?: string;
    /**
     * Sets `tls` for this lab run (TLS on every link and ACL users, docs/security.md); remembered until `lab down`
     * like `addressing`. @default the stack's own value
     */
    tls?: boolean;
    /**
     * Stack config keys (without the project prefix) set for this lab run, as `pulumi config set <key> <value>` would
     * (`lab rollout --set credentialsGeneration=2`); merged into the ones set before and remembered until `lab down`.
     * The running nodes keep the user-data they booted from, as Linodes keep theirs (an ignored input).
     */
    set?: Readonly<Record<string, string>>;
}

/** Where `up --addressing` remembers the override for the commands that follow. */
function overridesFile(stack: string): string {
    return path.join(stackDir(stack), "overrides.json");
}

/** The configuration the program gets in this lab run: the stack file, Pulumi.yaml's defaults, the lab's overrides. */
export function labConfig(stack: string, opts: LabStackOptions, { withSet = true } = {}): ProgramConfig {
    const config = stackProgramConfig(stack);
    const saved: LabStackOptions = existsSync(overridesFile(stack))
        ? (JSON.parse(readFileSync(overridesFile(stack), "utf8")) as LabStackOptions)
        : {};
    const addressing = opts.addressing ?? saved.addressing;
    const backup = opts.backup ?? saved.backup;
    const seedFrom = opts.seedFrom ?? saved.seedFrom;
    const tls = opts.tls ?? saved.tls;
    const set = { ...saved.set, ...opts.set };
    if (
        opts.addressing !== undefined ||
        opts.backup !== undefined ||
        opts.seedFrom !== undefined ||
        opts.tls !== undefined ||
        opts.set !== undefined
    ) {
        mkdirSync(stackDir(stack), { recursive: true, mode: 0o700 });
        writeFileSync(overridesFile(stack), JSON.stringify({ addressing, backup, seedFrom, tls, set }));
    }
    const values = { ...config.values };
    // The lab's Prometheus (lab/monitoring.ts) scrapes from the lab's router: the scraper a stack names in
    // monitoringCidrs, without which the exporters listen on loopback only (cloud-init/monitoringExporters.ts).
    const monitoringCidrs = `${CONFIG_NAMESPACE}:monitoringCidrs`;
    if ((values[monitoringCidrs] ?? "[]") === "[]") values[monitoringCidrs] = JSON.stringify([LAB_REGIONS_CIDR]);
    if (addressing !== undefined) values[`${CONFIG_NAMESPACE}:addressing`] = addressing;
    if (backup !== undefined) values[`${CONFIG_NAMESPACE}:backup.enabled`] = String(backup);
    if (seedFrom !== undefined) values[`${CONFIG_NAMESPACE}:backup.seedFrom`] = seedFrom;
    if (tls !== undefined) values[`${CONFIG_NAMESPACE}:tls`] = String(tls);
    if (withSet) for (const [key, value] of Object.entries(set)) values[`${CONFIG_NAMESPACE}:${key}`] = value;
    return { ...config, values };
}

/** Lab credentials of a stack, generated once and kept until `lab down`, like Pulumi keeps them in state. */
async function ensureCredentials(stack: string): Promise<LabCredentials> {
    const dir = stackDir(stack);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, "credentials.json");
    const keyFile = path.join(dir, "id_ed25519");
    if (!existsSync(keyFile))
        await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "redis-ha-checks", "-f", keyFile]);
    if (!existsSync(file)) {
        // Same alphabet and length as the program's @pulumi/random passwords.
        const pw = () =>
            randomBytes(24)
                .toString("base64")
                .replace(/[^A-Za-z0-9]/g, "")
                .slice(0, 32);
        writeFileSync(file, JSON.stringify({ redisPassword: pw(), sentinelPassword: pw() }), { mode: 0o600 });
    }
    const saved = JSON.parse(readFileSync(file, "utf8")) as { redisPassword: string; sentinelPassword: string };
    return { ...saved, keyFile, publicKey: readFileSync(`${keyFile}.pub`, "utf8").trim() };
}

/**
 * A stack as the lab boots it: the Pulumi program runs under mocks whose reserved IPs (or, with ephemeral addressing,
 * the addresses Linode assigns) are lab addresses and whose
 * generated passwords and checks key are the lab's, so every node's user-data is exactly what `pulumi up` would send
 * to Linode for those addresses and credentials.
 */
export async function prepareLabStack(stack: string, opts: LabStackOptions = {}): Promise<LabStack> {
    // The configuration `pulumi up` would give the program: the stack file plus Pulumi.yaml's defaults.
    const config = labConfig(stack, opts);
    const topology = topologyFromConfig(config.values, "redis-ha", stack);
    const network = planNetwork({ regions: topology.regions.map((r) => ({ name: r.name, nodes: [...r.nodes] })) });
    const addresses = Object.fromEntries(network.nodes.map((n) => [n.name, n.address]));
    const credentials = await ensureCredentials(stack);
    const key = { privateKey: readFileSync(credentials.keyFile, "utf8"), publicKey: credentials.publicKey };
    const deploy = async (programConfig: ProgramConfig, previous?: MockRun) =>
        runUnderMocks({
            stack,
            config: programConfig,
            ...(previous ? { previous } : {}),
            addresses,
            passwords: { redis: credentials.redisPassword, sentinel: credentials.sentinelPassword },
            // tls: the CA and node certificates are real and kept with the stack's other credentials until `lab down`;
            // the ACL users' generated passwords are this stack's own.
            tlsCacheDir: path.join(stackDir(stack), "tls"),
            passwordSeed: credentials.redisPassword,
            checksKey: key,
            // Only a stack with backup.enabled declares the bucket: then it lives on the lab's own S3 server.
            objectStorage: labObjectStorage(network.hostAddress),
            hostKeys: await ensureHostKeys(
                stackDir(stack),
                topology.nodes.map((n) => n.name),
            ),
        });
    // `set` keys change a deployed stack: the program runs as an update of the deployment without them, so the nodes
    // keep the user-data and keys they booted from (ignored inputs) and only the rollout carries the change.
    const created = labConfig(stack, {}, { withSet: false });
    const mocked = isDeepStrictEqual(created.values, config.values)
        ? await deploy(config)
        : await deploy(config, await deploy(created));
    const knownHostsFile = writeKnownHosts(
        stackDir(stack),
        network.nodes.map((n) => ({
            address: n.address,
            publicKey: (mocked.stackOutputs.hostKeys as Record<string, PublishedHostKey>)[n.name].publicKey,
        })),
    );
    const nodes: LabNodeSpec[] = network.nodes.map((net) => {
        const instance = resourceNamed(mocked, resourceNames.instance(net.name));
        const authorizedKeys = (unwrapSecrets(instance.inputs.authorizedKeys) as string[] | undefined) ?? [];
        return {
            name: net.name,
            region: net.region,
            address: net.address,
            prefixLen: net.prefixLen,
            gateway: net.gateway,
            userData: mocked.userData[net.name],
            authorizedKeys,
        };
    });
    // ephemeral: the mock provider handed each Linode its lab address; the bootstrap commands carry them.
    const bootstrap =
        topology.addressing === "ephemeral"
            ? bootstrapOrder(topology).map((n) => {
                  const step = resourceNamed(mocked, resourceNames.bootstrapStep(n.name));
                  return {
                      node: n.name,
                      command: String(unwrapSecrets(step.inputs.create)),
                      stdin: String(unwrapSecrets(step.inputs.stdin)),
                  };
              })
            : [];
    const rollout = [...topology.nodes]
        .sort((a, b) => a.rolloutOrder - b.rolloutOrder)
        .map((n) => {
            const step = resourceNamed(mocked, resourceNames.settingsStep(n.name));
            return {
                node: n.name,
                command: String(unwrapSecrets(step.inputs.create)),
                stdin: String(unwrapSecrets(step.inputs.stdin)),
            };
        });
    const users = mocked.stackOutputs.users as LabCredentials["users"];
    const caCert = mocked.stackOutputs.caCertificate as string | undefined;
    return {
        stack,
        topology,
        network,
        nodes,
        credentials:
            users && caCert
                ? {
                      ...credentials,
                      redisPassword: users.app.password,
                      sentinelPassword: users.app.password,
                      users,
                      caCert,
                  }
                : credentials,
        knownHostsFile,
        packages: allPackages(topology),
        bootstrap,
        rollout,
    };
}

/**
 * How a lab tool logs in to a node's Redis or Sentinel as `user`: the operator's probes as admin, the drill's writers
 * as app (the application's user). Without tls, the service's shared password.
 */
export function labLogin(s: LabStack, service: "redis" | "sentinel", user: "admin" | "app" = "admin"): LabLogin {
    const { users, caCert } = s.credentials;
    if (!users || !caCert)
        return { password: service === "redis" ? s.credentials.redisPassword : s.credentials.sentinelPassword };
    return { username: users[user].username, password: users[user].password, tls: { ca: caCert } };
}
