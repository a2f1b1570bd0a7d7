/**
 * Resource names of the cluster: the one place they are made. Components name their children with these functions
 * and everyone else (review, the lab, the tests) reads them from here instead of rebuilding the strings.
 *
 * A resource name is part of its URN, and a URN is the resource's identity to the engine: a new name means "create
 * the new one, delete the old one". So no name here depends on a config value that a user may change (`clusterName`,
 * `masterName`, ports, plans); only on node and region names, which identify the machines themselves. The cluster
 * name lives in labels and tags, which Linode changes in place.
 *
 * Earlier versions named everything after the cluster name (`redis-prod-east-a-linode`). No release with those names
 * was deployed beyond this repository, so they were renamed without `aliases`; a stack deployed with them would
 * have to add `aliases: [{ name: "<old name>" }]` to each resource before its next `pulumi up`.
 */

/** Name of the root component (`RedisCluster`). Fixed: the stack and project already scope the URN. */
export const CLUSTER_RESOURCE = "redis-ha";

/** Children of `RedisCluster`, given the cluster component's name. */
export const clusterChildren = {
    password: (cluster: string, purpose: "redis" | "sentinel") => `${cluster}-${purpose}-password`,
    checksKey: (cluster: string) => `${cluster}-checks-key`,
    hostKeys: (cluster: string) => `${cluster}-ssh`,
    firewall: (cluster: string) => `${cluster}-firewall`,
    regionNetwork: (cluster: string, region: string) => `${cluster}-${region}`,
    node: (cluster: string, node: string) => `${cluster}-${node}`,
    checks: (cluster: string) => `${cluster}-checks`,
    settings: (cluster: string) => `${cluster}-settings`,
    bootstrap: (cluster: string) => `${cluster}-bootstrap`,
    resize: (cluster: string) => `${cluster}-resize`,
    monitoring: (cluster: string) => `${cluster}-monitoring`,
    backup: (cluster: string) => `${cluster}-backup`,
    tls: (cluster: string) => `${cluster}-tls`,
    acl: (cluster: string) => `${cluster}-acl`,
} as const;

/** Children of `ClusterCertificates` (tls), given its name. */
export const tlsChildren = {
    caKey: (tls: string) => `${tls}-ca-key`,
    ca: (tls: string) => `${tls}-ca`,
    nodeKey: (tls: string, node: string) => `${tls}-${node}-key`,
    nodeRequest: (tls: string, node: string) => `${tls}-${node}-csr`,
    nodeCert: (tls: string, node: string) => `${tls}-${node}-cert`,
} as const;

/** Children of `AclUsers`, given its name: a password per user and generation (`credentialsGeneration`). */
export const aclChildren = {
    password: (acl: string, user: string, generation: number) => `${acl}-${user}-g${String(generation)}`,
} as const;

/** Children of `MonitoringServer`, given its name. */
export const monitoringChildren = {
    firewall: (monitoring: string) => `${monitoring}-firewall`,
    instance: (monitoring: string) => `${monitoring}-linode`,
} as const;

/** Children of `BackupStorage`, given its name. */
export const backupChildren = {
    suffix: (backup: string) => `${backup}-suffix`,
    provider: (backup: string) => `${backup}-objects`,
    bucket: (backup: string) => `${backup}-bucket`,
    key: (backup: string) => `${backup}-key`,
    seedKey: (backup: string) => `${backup}-seed-key`,
} as const;

/** Children of `AddressBootstrap` (addressing: ephemeral), given its name. */
export const bootstrapChildren = {
    step: (bootstrap: string, node: string) => `${bootstrap}-${node}`,
} as const;

/** Children of `ResizeRollout`, given its name. */
export const resizeChildren = {
    handover: (resize: string, node: string) => `${resize}-handover-${node}`,
    reach: (resize: string, node: string) => `${resize}-reach-${node}`,
    ready: (resize: string, node: string) => `${resize}-ready-${node}`,
} as const;

/** Children of `RegionNetwork`, given its name. */
export const regionChildren = {
    reservedIp: (network: string, node: string) => `${network}-${node}-ip`,
    placementGroup: (network: string) => `${network}-spread`,
} as const;

/** Children of `RedisNode`, given its name. */
export const nodeChildren = {
    instance: (node: string) => `${node}-linode`,
} as const;

/** Children of `HostKeys`, given its name. */
export const hostKeyChildren = {
    key: (hostKeys: string, node: string) => `${hostKeys}-host-key-${node}`,
} as const;

/** Children of `PostDeployChecks`, given its name. */
export const checkChildren = {
    reach: (checks: string, node: string) => `${checks}-reach-${node}`,
    wait: (checks: string, node: string) => `${checks}-wait-${node}`,
    health: (checks: string, node: string) => `${checks}-health-${node}`,
    quorum: (checks: string, node: string) => `${checks}-quorum-${node}`,
    drill: (checks: string) => `${checks}-failover-drill`,
} as const;

/** Children of `SettingsRollout`, given its name. */
export const rolloutChildren = {
    step: (rollout: string, node: string) => `${rollout}-${node}`,
} as const;

/** Full names of the resources of a cluster whose root component is named `CLUSTER_RESOURCE`, for readers. */
export const resourceNames = {
    cluster: CLUSTER_RESOURCE,
    password: (purpose: "redis" | "sentinel") => clusterChildren.password(CLUSTER_RESOURCE, purpose),
    checksKey: clusterChildren.checksKey(CLUSTER_RESOURCE),
    hostKey: (node: string) => hostKeyChildren.key(clusterChildren.hostKeys(CLUSTER_RESOURCE), node),
    firewall: clusterChildren.firewall(CLUSTER_RESOURCE),
    regionNetwork: (region: string) => clusterChildren.regionNetwork(CLUSTER_RESOURCE, region),
    reservedIp: (region: string, node: string) =>
        regionChildren.reservedIp(clusterChildren.regionNetwork(CLUSTER_RESOURCE, region), node),
    placementGroup: (region: string) =>
        regionChildren.placementGroup(clusterChildren.regionNetwork(CLUSTER_RESOURCE, region)),
    node: (node: string) => clusterChildren.node(CLUSTER_RESOURCE, node),
    instance: (node: string) => nodeChildren.instance(clusterChildren.node(CLUSTER_RESOURCE, node)),
    checks: clusterChildren.checks(CLUSTER_RESOURCE),
    reach: (node: string) => checkChildren.reach(clusterChildren.checks(CLUSTER_RESOURCE), node),
    wait: (node: string) => checkChildren.wait(clusterChildren.checks(CLUSTER_RESOURCE), node),
    health: (node: string) => checkChildren.health(clusterChildren.checks(CLUSTER_RESOURCE), node),
    quorum: (node: string) => checkChildren.quorum(clusterChildren.checks(CLUSTER_RESOURCE), node),
    drill: checkChildren.drill(clusterChildren.checks(CLUSTER_RESOURCE)),
    settings: clusterChildren.settings(CLUSTER_RESOURCE),
    settingsStep: (node: string) => rolloutChildren.step(clusterChildren.settings(CLUSTER_RESOURCE), node),
    resizeHandover: (node: string) => resizeChildren.handover(clusterChildren.resize(CLUSTER_RESOURCE), node),
    resizeReach: (node: string) => resizeChildren.reach(clusterChildren.resize(CLUSTER_RESOURCE), node),
    resizeReady: (node: string) => resizeChildren.ready(clusterChildren.resize(CLUSTER_RESOURCE), node),
    /** The program's StackReference to its own stack (components/creationSettings.ts), beside the cluster. */
    creationSettings: `${CLUSTER_RESOURCE}-creation-settings`,
    bootstrap: clusterChildren.bootstrap(CLUSTER_RESOURCE),
    backup: clusterChildren.backup(CLUSTER_RESOURCE),
    backupBucket: backupChildren.bucket(clusterChildren.backup(CLUSTER_RESOURCE)),
    backupKey: backupChildren.key(clusterChildren.backup(CLUSTER_RESOURCE)),
    backupSeedKey: backupChildren.seedKey(clusterChildren.backup(CLUSTER_RESOURCE)),
    backupProvider: backupChildren.provider(clusterChildren.backup(CLUSTER_RESOURCE)),
    bootstrapStep: (node: string) => bootstrapChildren.step(clusterChildren.bootstrap(CLUSTER_RESOURCE), node),
    monitoring: clusterChildren.monitoring(CLUSTER_RESOURCE),
    monitoringFirewall: monitoringChildren.firewall(clusterChildren.monitoring(CLUSTER_RESOURCE)),
    monitoringInstance: monitoringChildren.instance(clusterChildren.monitoring(CLUSTER_RESOURCE)),
    tls: clusterChildren.tls(CLUSTER_RESOURCE),
    tlsCa: tlsChildren.ca(clusterChildren.tls(CLUSTER_RESOURCE)),
    tlsNodeCert: (node: string) => tlsChildren.nodeCert(clusterChildren.tls(CLUSTER_RESOURCE), node),
    aclPassword: (user: string, generation: number) =>
        aclChildren.password(clusterChildren.acl(CLUSTER_RESOURCE), user, generation),
} as const;
