import * as linode from "@pulumi/linode";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { encodeUserData, renderUserData, type AclPasswords } from "../cloud-init";
import { clusterTags, firewallLabel, type Topology } from "../topology";
import { AclUsers } from "./acl";
import { BackupStorage } from "./backup";
import { AddressBootstrap } from "./bootstrap";
import { PostDeployChecks } from "./checks";
import { firewallInbounds } from "./firewall";
import { creationSettingsOf, type CreationSettings } from "./creationSettings";
import { clusterChildren } from "./names";
import { HostKeys, type PublishedHostKey } from "./hostKeys";
import { MonitoringServer } from "./monitoring";
import { publicIpv4, RedisNode } from "./redisNode";
import { ResizeRollout, type ResizeStep } from "./resize";
import { RegionNetwork } from "./regionNetwork";
import { SettingsRollout } from "./rollout";
import { ClusterCertificates } from "./tls";
import { topologySummary, type TopologySummary } from "./summary";
import { checkedSettingsHash, failoverSettingsHash } from "./triggers";

export interface RedisClusterArgs {
    /** The deployment, computed from stack config by `topologyFromConfig`. */
    topology: Topology;
    /**
     * Password of every Redis node. Generated with @pulumi/random (32 alphanumerics) when absent or "" (Pulumi.yaml's
     * default reaches the program as "", so "" must mean "not given").
     */
    redisPassword?: pulumi.Input<string>;
    /** Password of every Sentinel. Generated when absent or "". */
    sentinelPassword?: pulumi.Input<string>;
    /**
     * Private key the post-deploy commands use to SSH in as root. When absent or "" an ED25519 key is generated with
     * @pulumi/tls; either way its public half is installed on every node (derived with `tls.getPublicKey` when given).
     */
    checksPrivateKey?: pulumi.Input<string>;
    /** Plan changes of running nodes, in the order to perform them (`planResizes`); none when absent. */
    resizes?: readonly ResizeStep[];
    /** Alertmanager webhook URL of the monitoring node (secret); only with `monitoringEnabled`. */
    monitoringWebhookUrl?: pulumi.Input<string>;
    /** SMTP password of the monitoring node's email receiver (secret). */
    monitoringSmtpPassword?: pulumi.Input<string>;
}

/** Stack outputs of the monitoring node. */
export interface MonitoringOutput {
    address: string;
    prometheusUrl: string;
    alertmanagerUrl: string;
}

export interface NodeOutput {
    address: string;
    region: string;
    roles: string[];
    initialRole: string;
    label: string;
}

/** A Redis + Sentinel deployment across one or more Linode regions. */
export class RedisCluster extends pulumi.ComponentResource {
    public readonly masterName: pulumi.Output<string>;
    /** Every Sentinel, own region first is up to the client: `[{ host, port }]`. */
    public readonly sentinels: pulumi.Output<{ host: string; port: number; region: string }[]>;
    public readonly nodes: pulumi.Output<Record<string, NodeOutput>>;
    public readonly redisPassword: pulumi.Output<string>;
    public readonly sentinelPassword: pulumi.Output<string>;
    /** tls: every ACL user's passwords (secret); undefined without tls. */
    public readonly aclPasswords?: pulumi.Output<AclPasswords>;
    /** tls: the cluster's CA certificate (PEM), which clients trust. */
    public readonly caCertificate?: pulumi.Output<string>;
    /** tls: when each node's certificate ends, by node name. */
    public readonly certificatesValidUntil?: pulumi.Output<Record<string, string>>;
    /**
     * The checks' private key: root on every node. Kept off the public surface so nobody exports it as a stack output
     * (whoever reads outputs would get root); users who need a shell bring their own key in `authorizedKeys`.
     */
    readonly #checksPrivateKey: pulumi.Output<string>;
    public readonly firewallId: pulumi.Output<number>;
    /** The creation-time settings; the program refuses to change them on a deployed stack (creationSettings.ts). */
    public readonly creationSettings: pulumi.Output<CreationSettings>;
    /** Every node's SSH host key and its SHA256 fingerprint, by node name: what the checks pin, for `known_hosts`. */
    public readonly hostKeys: pulumi.Output<Record<string, PublishedHostKey>>;
    /** ioredis settings to paste into an application, secrets left as environment variables. */
    public readonly connectionSnippet: pulumi.Output<string>;
    /** Roles, regions, replicas and write safety as plain data, known at preview: what the policy pack reads. */
    public readonly topologySummary: pulumi.Output<TopologySummary>;
    /** The monitoring node's address and UI URLs; undefined unless `monitoringEnabled`. */
    public readonly monitoring?: pulumi.Output<MonitoringOutput>;
    /** The backup bucket, its region and endpoint, and the nodes that take backups; undefined when backups are off. */
    public readonly backup?: pulumi.Output<{ bucket: string; region: string; endpoint: string; nodes: string[] }>;

    constructor(name: string, args: RedisClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:cluster:RedisCluster", name, {}, opts);
        const { topology: t } = args;

        // tls: ACL users, each with its own generated passwords; clients log in as `app` on Redis and on Sentinel.
        const acl = t.security.tls
            ? new AclUsers(clusterChildren.acl(name), { topology: t }, { parent: this })
            : undefined;
        this.aclPasswords = acl?.passwords;
        const appPassword = acl ? pulumi.secret(acl.passwords.apply((p) => p.app.current)) : undefined;
        const password = (purpose: "redis" | "sentinel", given?: pulumi.Input<string>) =>
            appPassword ??
            (isGiven(given)
                ? pulumi.secret(given)
                : // The provider marks `result` secret, but only the engine applies that: say it here as well.
                  pulumi.secret(
                      new random.RandomPassword(
                          clusterChildren.password(name, purpose),
                          { length: 32, special: false },
                          { parent: this },
                      ).result,
                  ));
        this.redisPassword = password("redis", args.redisPassword);
        this.sentinelPassword = password("sentinel", args.sentinelPassword);

        let checksPublicKey: pulumi.Output<string>;
        if (isGiven(args.checksPrivateKey)) {
            this.#checksPrivateKey = pulumi.secret(args.checksPrivateKey);
            // Derived, not asked for: the rollout rewrites root's authorized_keys from this list, and a given key left
            // out of `authorizedKeys` would lock the checks out of every node.
            checksPublicKey = pulumi.unsecret(
                this.#checksPrivateKey.apply((k) =>
                    tls
                        .getPublicKeyOutput(
                            k.includes("OPENSSH PRIVATE KEY") ? { privateKeyOpenssh: k } : { privateKeyPem: k },
                            { parent: this },
                        )
                        .publicKeyOpenssh.apply((p) => p.trim()),
                ),
            );
        } else {
            const key = new tls.PrivateKey(clusterChildren.checksKey(name), { algorithm: "ED25519" }, { parent: this });
            this.#checksPrivateKey = pulumi.secret(key.privateKeyOpenssh);
            checksPublicKey = key.publicKeyOpenssh.apply((k) => k.trim());
        }

        this.creationSettings = pulumi.output(creationSettingsOf(t));
        const hostKeys = new HostKeys(clusterChildren.hostKeys(name), { topology: t }, { parent: this });
        this.hostKeys = hostKeys.published;

        const addresses: Record<string, pulumi.Output<string>> = {};
        const placement: Record<string, pulumi.Output<number> | undefined> = {};
        for (const region of t.regions) {
            const net = new RegionNetwork(
                clusterChildren.regionNetwork(name, region.name),
                { topology: t, region },
                { parent: this },
            );
            Object.assign(addresses, net.addresses);
            placement[region.name] = net.placementGroupId;
        }

        // reserved: the firewall exists before the Linodes and each is created behind it (`firewallId`). ephemeral: its
        // rules are made from the Linodes' own addresses, so it comes after them and attaches itself (`linodes`).
        const reserved = t.addressing === "reserved";
        // The monitoring node scrapes every node, and the cluster's firewall opens the exporter ports to it: it is
        // declared just before the firewall, once the addresses it scrapes exist (reserved: now; ephemeral: after the
        // Linodes).
        let monitoringServer: MonitoringServer | undefined;
        const monitoringFor = () =>
            t.monitoring.server
                ? new MonitoringServer(
                      clusterChildren.monitoring(name),
                      {
                          topology: t,
                          addresses,
                          webhookUrl: args.monitoringWebhookUrl,
                          smtpPassword: args.monitoringSmtpPassword,
                          authorizedKeys: [...t.access.authorizedKeys],
                      },
                      { parent: this },
                  )
                : undefined;
        const firewallFor = (linodes?: pulumi.Input<number>[]) =>
            new linode.Firewall(
                clusterChildren.firewall(name),
                {
                    label: firewallLabel(t.cluster),
                    inboundPolicy: "DROP",
                    outboundPolicy: "ACCEPT",
                    inbounds: pulumi
                        .all([pulumi.all(t.nodes.map((n) => addresses[n.name])), monitoringServer?.address])
                        .apply(([list, monitoringAddress]) => firewallInbounds(t, list, monitoringAddress)),
                    ...(linodes ? { linodes } : {}),
                    tags: clusterTags(t.cluster),
                },
                { parent: this },
            );
        if (reserved) monitoringServer = monitoringFor();
        const reservedFirewall = reserved ? firewallFor() : undefined;

        const authorizedKeys = checksPublicKey.apply((checks) => [...new Set([...t.access.authorizedKeys, checks])]);
        // The bucket's key reaches only the backup nodes' files (cloud-init/backup.ts), inside the secret user-data
        // and the secret rollout input.
        const backup = t.backup.enabled
            ? new BackupStorage(clusterChildren.backup(name), { topology: t }, { parent: this })
            : undefined;
        const backupTarget = backup ? backup.target : pulumi.output(undefined);
        // The seed's read-only key reaches only the first master's user-data (cloud-init/seed.ts).
        const seedTarget = backup?.seed ?? pulumi.output(undefined);
        this.backup = backup
            ? pulumi
                  .all([backup.bucket, backup.region, backup.endpoint])
                  .apply(([bucket, region, endpoint]) => ({ bucket, region, endpoint, nodes: [...t.backup.nodes] }))
            : undefined;
        // tls: the certificates name each node's address, so with ephemeral addressing they come after the Linodes
        // (their files then reach the nodes in the bootstrap step, not in user-data).
        const certificatesFor = () =>
            t.security.tls
                ? new ClusterCertificates(clusterChildren.tls(name), { topology: t, addresses }, { parent: this })
                : undefined;
        let certificates = reserved ? certificatesFor() : undefined;
        const security = () =>
            pulumi.all([acl?.passwords, certificates?.material]).apply(([passwords, material]) => ({
                ...(passwords ? { acl: passwords } : {}),
                ...(material ? { tls: material } : {}),
            }));
        // With ephemeral addressing `addresses` is still empty here: user-data names no address (renderUserData).
        const rendered = pulumi.all([
            pulumi.all(addresses),
            this.redisPassword,
            this.sentinelPassword,
            backupTarget,
            seedTarget,
            security(),
        ]);
        const nodes: Record<string, RedisNode> = {};
        const resizes = args.resizes ?? [];
        const resize =
            resizes.length > 0
                ? new ResizeRollout(
                      clusterChildren.resize(name),
                      {
                          topology: t,
                          steps: resizes,
                          // ephemeral: a node's address is its Linode's output, and its Linode waits for the handover:
                          // read the running Linodes' addresses instead (a resize keeps the address).
                          addresses: reserved ? addresses : runningAddresses(t, this),
                          privateKey: this.#checksPrivateKey,
                          hostKeys: hostKeys.publicKeys,
                      },
                      { parent: this },
                  )
                : undefined;
        // Nodes that keep their plan first, then the resized ones in rollout order: each resize step needs the
        // previous one's readiness wait, which needs that node's Linode.
        const resizeIndex = (node: string) => resizes.findIndex((s) => s.node === node);
        const creationOrder = [...t.nodes].sort((a, b) => resizeIndex(a.name) - resizeIndex(b.name));
        for (const n of creationOrder) {
            const userData = pulumi
                .all([rendered, hostKeys.privateKeys[n.name], hostKeys.publicKeys[n.name]])
                .apply(([[addrs, redisPassword, sentinelPassword, target, seed, sec], privateKey, publicKey]) =>
                    encodeUserData(
                        renderUserData({
                            topology: t,
                            node: n.name,
                            addresses: addrs,
                            secrets: {
                                redisPassword,
                                sentinelPassword,
                                ...(target ? { backup: target } : {}),
                                ...(seed && n.name === t.preferredMaster ? { seed } : {}),
                                ...sec,
                            },
                            hostKey: { privateKey, publicKey },
                        }),
                    ),
                );
            nodes[n.name] = new RedisNode(
                clusterChildren.node(name, n.name),
                {
                    topology: t,
                    node: n,
                    ...(reserved ? { address: addresses[n.name] } : {}),
                    userDataBase64: pulumi.secret(userData),
                    authorizedKeys,
                    ...(reservedFirewall ? { firewallId: reservedFirewall.id.apply(Number) } : {}),
                    placementGroupId: placement[n.region],
                    ...(resize?.resizes(n.name) ? { resizeAfter: resize.before(n.name) } : {}),
                },
                { parent: this },
            );
            if (resize?.resizes(n.name)) resize.after(n.name, nodes[n.name].instance);
        }

        if (!reserved) for (const n of t.nodes) addresses[n.name] = nodes[n.name].address;
        if (!reserved) monitoringServer = monitoringFor();
        if (!reserved) certificates = certificatesFor();
        this.certificatesValidUntil = certificates?.validUntil;
        this.caCertificate = certificates?.caCert;
        const firewall = reservedFirewall ?? firewallFor(t.nodes.map((n) => nodes[n.name].instanceId));
        this.firewallId = firewall.id.apply(Number);

        const instanceIds = Object.fromEntries(t.nodes.map((n) => [n.name, nodes[n.name].instanceId]));
        const secrets = pulumi
            .all([this.redisPassword, this.sentinelPassword, backupTarget, security()])
            .apply(([redisPassword, sentinelPassword, target, sec]) => ({
                redisPassword,
                sentinelPassword,
                ...(target ? { backup: target } : {}),
                ...sec,
            }));
        new PostDeployChecks(
            clusterChildren.checks(name),
            {
                topology: t,
                addresses,
                instanceIds,
                privateKey: this.#checksPrivateKey,
                hostKeys: hostKeys.publicKeys,
                checkedHash: checkedSettingsHash(t),
                failoverHash: failoverSettingsHash(t),
                beforeChecks: (waits) => {
                    // ephemeral: nodes start Redis and Sentinel only in their bootstrap step, before any rollout or check.
                    const bootstrap = reserved
                        ? []
                        : new AddressBootstrap(
                              clusterChildren.bootstrap(name),
                              {
                                  topology: t,
                                  addresses,
                                  instanceIds,
                                  secrets,
                                  privateKey: this.#checksPrivateKey,
                                  hostKeys: hostKeys.publicKeys,
                                  after: [...t.nodes.map((n) => nodes[n.name].instance), firewall],
                                  afterNode: Object.fromEntries(t.nodes.map((n) => [n.name, [waits[n.name]]])),
                              },
                              { parent: this },
                          ).steps;
                    return [
                        ...bootstrap,
                        new SettingsRollout(
                            clusterChildren.settings(name),
                            {
                                topology: t,
                                addresses,
                                instanceIds,
                                secrets,
                                authorizedKeys,
                                privateKey: this.#checksPrivateKey,
                                hostKeys: hostKeys.publicKeys,
                                // After every resize: a new plan brings new memory settings (maxmemory), which must not
                                // reach a node before its new plan does.
                                after: Object.fromEntries(
                                    t.nodes.map((n) => [
                                        n.name,
                                        [waits[n.name], ...bootstrap, ...(resize?.finished() ?? [])],
                                    ]),
                                ),
                            },
                            { parent: this },
                        ),
                    ];
                },
            },
            { parent: this },
        );

        this.masterName = pulumi.output(t.masterName);
        const sentinelNodes = t.nodes.filter((n) => n.runsSentinel);
        this.sentinels = pulumi
            .all(sentinelNodes.map((n) => addresses[n.name]))
            .apply((hosts) =>
                hosts.map((host, i) => ({ host, port: t.ports.sentinel, region: sentinelNodes[i].region })),
            );
        this.nodes = pulumi.all(addresses).apply((addrs) =>
            Object.fromEntries(
                t.nodes.map((n) => [
                    n.name,
                    {
                        address: addrs[n.name],
                        region: n.region,
                        roles: [...n.roles],
                        initialRole: n.initialRole,
                        label: n.label,
                    },
                ]),
            ),
        );
        this.connectionSnippet = this.sentinels.apply((s) => connectionSnippet(t, s));
        this.topologySummary = pulumi.output(topologySummary(t));
        if (monitoringServer)
            this.monitoring = pulumi
                .all([monitoringServer.address, monitoringServer.prometheusUrl, monitoringServer.alertmanagerUrl])
                .apply(([address, prometheusUrl, alertmanagerUrl]) => ({ address, prometheusUrl, alertmanagerUrl }));
        this.registerOutputs({
            ...(this.monitoring ? { monitoring: this.monitoring } : {}),
            masterName: this.masterName,
            sentinels: this.sentinels,
            nodes: this.nodes,
            connectionSnippet: this.connectionSnippet,
            creationSettings: this.creationSettings,
            firewallId: this.firewallId,
            hostKeys: this.hostKeys,
            topologySummary: this.topologySummary,
            ...(this.backup ? { backup: this.backup } : {}),
            ...(this.caCertificate ? { caCertificate: this.caCertificate } : {}),
        });
    }
}

/**
 * The public IPv4 of each running Linode of the cluster, by node name, as Linode reports it now (an invoke, not the
 * Linodes' outputs, so commands that a Linode itself waits for can use them without a cycle).
 */
function runningAddresses(t: Topology, parent: pulumi.Resource): Record<string, pulumi.Output<string>> {
    const found = linode.getInstancesOutput(
        { filters: [{ name: "label", values: t.nodes.map((n) => n.label) }] },
        { parent },
    );
    return Object.fromEntries(
        t.nodes.map((n) => [
            n.name,
            found.apply((f) => publicIpv4(f.instances.find((i) => i.label === n.label)?.ipv4s ?? [])),
        ]),
    );
}

/**
 * Is a credential given? Pulumi.yaml declares "" as the default of the credential keys and the CLI passes that
 * default to the program, so "" means "not given": generate one. (An Output cannot be inspected here; the program
 * decides from the raw config and passes undefined for "".)
 */
function isGiven(value: pulumi.Input<string> | undefined): value is pulumi.Input<string> {
    return value !== undefined && value !== "";
}

export function connectionSnippet(t: Topology, sentinels: readonly { host: string; port: number }[]): string {
    const list = sentinels.map((s) => `    { host: "${s.host}", port: ${s.port} },`).join("\n");
    return [
        `// ioredis via Sentinel. List the Sentinels of your own region first.`,
        `const Redis = require("ioredis");`,
        `const redis = new Redis({`,
        `  name: "${t.masterName}",`,
        `  sentinels: [`,
        list.replace(/^ {4}/gm, "    "),
        `  ],`,
        ...(t.security.tls
            ? [
                  `  // TLS on every link: tls reaches the Redis connections only with enableTLSForSentinelMode.`,
                  `  username: "app",`,
                  `  password: process.env.REDIS_PASSWORD,          // pulumi stack output --show-secrets users (app)`,
                  `  sentinelUsername: "app",`,
                  `  sentinelPassword: process.env.REDIS_PASSWORD,`,
                  `  enableTLSForSentinelMode: true,`,
                  `  tls: { ca: process.env.REDIS_CA },             // pulumi stack output caCertificate`,
                  `  sentinelTLS: { ca: process.env.REDIS_CA },`,
              ]
            : [
                  `  password: process.env.REDIS_PASSWORD,          // pulumi stack output --show-secrets redisPassword`,
                  `  sentinelPassword: process.env.SENTINEL_PASSWORD, // pulumi stack output --show-secrets sentinelPassword`,
              ]),
        `  failoverDetector: true,`,
        `});`,
    ].join("\n");
}
