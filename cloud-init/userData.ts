import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import type { NodePlan, Topology } from "../topology";
import { BACKUP_S3_PACKAGE, BACKUP_UPLOAD_PACKAGE, backupFiles, backupRank } from "./backup";
import { renderAclFile } from "./acl";
import { addressOf, nodeOf, securityOf, type RenderInput } from "./inputs";
import { exporterFiles, exporterPackages, exporterUnits } from "./monitoringExporters";
import { NODE_SCRIPTS, PATHS, PATHS_LIB, renderPathsLib } from "./paths";
import { renderRedisConf } from "./redisConf";
import { renderSentinelConf, SENTINEL_INFO_PERIOD_MS } from "./sentinelConf";
import { SEED_SERVICE, seedFiles, seedsFromBackup } from "./seed";
import { shellAssignments } from "./shell";
import type { HostKeyPair } from "./sshKeys";
import { drillRunner } from "./drillRunner";
import {
    renderFenceUnit,
    renderHomingUnit,
    renderRedisDropIn,
    renderSentinelDropIn,
    renderSysctl,
    renderTuningUnit,
} from "./units";
import { rootFile } from "./rootFile";
import { hostFiles, LOCK_ROOT_PASSWORD, UNATTENDED_UPGRADES_PACKAGE } from "./hosts";

export interface WriteFile {
    readonly path: string;
    readonly owner: string;
    readonly permissions: string;
    readonly content: string;
    /** Written after packages are installed (the owner exists only then). */
    readonly defer?: boolean;
}

/** Shell scripts that ship to every node, read from cloud-init/scripts (the same files the lab and the checks run). */
export function nodeScript(name: (typeof NODE_SCRIPTS)[number]): string {
    return readFileSync(join(__dirname, "scripts", name), "utf8");
}

/** Debian packages a node installs at first boot. The lab puts exactly these into its offline repository. */
export function packagesFor(node: NodePlan, t?: Topology): string[] {
    return [
        ...(node.runsRedis ? ["redis-server"] : []),
        ...(node.runsSentinel ? ["redis-sentinel"] : []),
        "redis-tools",
        // Installed whether securityUpgrades.enabled or not: the key switches the daily run, live (cloud-init/hosts.ts).
        UNATTENDED_UPGRADES_PACKAGE,
        ...exporterPackages(node),
        ...(t && (backupNode(t, node) || seedsFromBackup(t, node.name)) ? [BACKUP_S3_PACKAGE] : []),
        ...(t && backupNode(t, node) ? [BACKUP_UPLOAD_PACKAGE] : []),
    ];
}

export function allPackages(t: Topology): string[] {
    return [...new Set(t.nodes.flatMap((n) => packagesFor(n, t)))].sort();
}

/** The node's unattended-upgrade hour (topology/hosts.ts plans one per node). */
function upgradeHourOf(t: Topology, node: NodePlan): number {
    const hour = t.securityUpgrades.nodeHourUtc[node.name];
    if (hour === undefined) throw new Error(`no upgrade slot for node ${node.name}`);
    return hour;
}

/** Does this node carry the backup job (backups on, and the plan names it)? */
function backupNode(t: Topology, node: NodePlan): boolean {
    return t.backup.enabled && backupRank(t, node.name) !== undefined;
}

/**
 * The node.env entries that follow the stack's live settings and membership; `apply-settings` rewrites them on running
 * nodes (its `env` lines), so the start guard and the checks never act on stale timings or peers.
 */
export function liveNodeEnv(
    t: Topology,
    node: NodePlan,
    addresses: Readonly<Record<string, string>>,
): [string, string | number][] {
    const at = (name: string) => {
        const a = addresses[name];
        if (!a) throw new Error(`no address for node ${name}`);
        return a;
    };
    const sentinels = t.nodes.filter((n) => n.runsSentinel).map((n) => `${at(n.name)}:${t.ports.sentinel}`);
    const redisNodes = t.nodes.filter((n) => n.runsRedis).map((n) => `${at(n.name)}:${t.ports.redis}`);
    return [
        ["SENTINELS", sentinels.join(" ")],
        ["REDIS_NODES", redisNodes.join(" ")],
        ["REDIS_NODE_COUNT", redisNodes.length],
        ["PREFERRED_MASTER_ADDRESS", at(t.preferredMaster)],
        ["SENTINEL_QUORUM", t.sentinel.quorum],
        ["SENTINEL_DOWN_AFTER_MS", t.sentinel.downAfterMs],
        ["SENTINEL_FAILOVER_TIMEOUT_MS", t.sentinel.failoverTimeoutMs],
        ["SENTINEL_INFO_PERIOD_MS", SENTINEL_INFO_PERIOD_MS],
        ["MIN_REPLICAS_MAX_LAG_SEC", t.redis.minReplicasMaxLagSec],
        ["START_GUARD_WAIT_SEC", t.startGuardWaitSec],
        ["REPLICA_PRIORITY", node.replicaPriority ?? 0],
        // Disaster recovery (docs/dr.md): the fence (redis-fence) and the return home (redis-homing).
        ["MIN_REPLICAS_TO_WRITE", t.redis.minReplicasToWrite],
        ["FENCED_MIN_REPLICAS", t.dr.fencedMinReplicas],
        ["FENCE_INTERVAL_MS", t.dr.fenceIntervalMs],
        ["FENCE_TIMEOUT_MS", t.dr.fenceTimeoutMs],
        [
            "PRIMARY_REDIS_NODES",
            t.nodes
                .filter((n) => n.runsRedis && n.region === t.primaryRegion)
                .map((n) => `${at(n.name)}:${t.ports.redis}`)
                .join(" "),
        ],
        ["FAILBACK_HOLD_DOWN_SEC", t.dr.failbackHoldDownSec],
        // The stand-in backup node asks the first one's role before it takes the backup (redis-backup).
        ...(backupRank(t, node.name) === 1
            ? [["BACKUP_FIRST_ADDRESS", `${at(t.backup.nodes[0])}:${t.ports.redis}`] as [string, string]]
            : []),
    ];
}

/** /etc/redis-ha/node.env: what the node's scripts need to know about the cluster (root only: it holds passwords). */
export function renderNodeEnv(input: RenderInput): string {
    const { topology: t } = input;
    const node = nodeOf(input);
    const vars: [string, string | number][] = [
        ["CLUSTER", t.cluster],
        ["NODE_NAME", node.name],
        ["NODE_REGION", node.region],
        ["NODE_ADDRESS", addressOf(input, node.name)],
        ["RUNS_REDIS", node.runsRedis ? 1 : 0],
        ["RUNS_SENTINEL", node.runsSentinel ? 1 : 0],
        ["REDIS_PORT", t.ports.redis],
        ["SENTINEL_PORT", t.ports.sentinel],
        ["MASTER_NAME", t.masterName],
        ["PRIMARY_REGION", t.primaryRegion],
        ...liveNodeEnv(t, node, input.addresses),
        // tls: the scripts log in as ACL users with the password files of PATHS.secretsDir; node.env holds none.
        ...(t.security.tls
            ? [["TLS", 1] as [string, number]]
            : [
                  ["REDIS_PASSWORD", input.secrets.redisPassword] as [string, string],
                  ["SENTINEL_PASSWORD", input.secrets.sentinelPassword] as [string, string],
              ]),
    ];
    return `# Rendered by redis-ha. Read by the scripts in ${PATHS.scriptsDir}.\n${shellAssignments(vars)}`;
}

/**
 * The files a node's user-data writes. With `addressing: ephemeral` the files that name addresses (node.env,
 * redis.conf, sentinel.conf) are left out: the bootstrap step delivers them once every Linode exists
 * (`bootstrapFiles` in cloud-init/bootstrap.ts), and the units start nothing before that.
 */
export function writeFilesFor(input: RenderInput): WriteFile[] {
    const node = nodeOf(input);
    const ephemeral = input.topology.addressing === "ephemeral";
    const dropIn = { afterBootstrap: ephemeral };
    const homing = node.runsSentinel && drillRunner(input.topology).name === node.name;
    const files: WriteFile[] = [
        // Keeps Debian's maintainer scripts from starting redis-server/redis-sentinel with their default configs while
        // packages install (Debian's default Sentinels find each other and can rewrite replicas to 127.0.0.1).
        // runcmd removes it once our configs are in place.
        rootFile(
            PATHS.policyRcD,
            "#!/bin/sh\n# Installed by redis-ha for the first boot only; removed by runcmd.\nexit 101\n",
            "0755",
        ),
        // Ephemeral addressing: node.env names the peers, which do not exist yet; the bootstrap writes it.
        ...(ephemeral ? [] : [rootFile(PATHS.nodeEnv, renderNodeEnv(input), "0600")]),
        ...NODE_SCRIPTS.map((s) =>
            rootFile(`${PATHS.scriptsDir}/${s}`, nodeScript(s), s.endsWith(".sh") ? "0644" : "0755"),
        ),
        rootFile(`${PATHS.scriptsDir}/${PATHS_LIB}`, renderPathsLib()),
        rootFile(PATHS.sysctl, renderSysctl()),
        rootFile(PATHS.tuningUnit, renderTuningUnit()),
        ...hostFiles(input.topology.securityUpgrades, upgradeHourOf(input.topology, node)).map((f) =>
            rootFile(f.path, f.content),
        ),
    ];
    files.push(...exporterFiles(input.topology, node).map((f) => rootFile(f.path, f.content)));
    if (node.runsRedis)
        files.push(
            rootFile(PATHS.redisDropIn, renderRedisDropIn(dropIn)),
            rootFile(PATHS.fenceUnit, renderFenceUnit(dropIn)),
        );
    if (node.runsSentinel) files.push(rootFile(PATHS.sentinelDropIn, renderSentinelDropIn({ ...dropIn, homing })));
    if (homing) files.push(rootFile(PATHS.homingUnit, renderHomingUnit(dropIn)));
    files.push(...backupFiles(input));
    files.push(...seedFiles(input));
    if (!ephemeral) files.push(...serviceConfigs(input));
    return files;
}

/** The users whose current password the node's own tools read from PATHS.secretsDir (scripts: admin; exporters). */
export const NODE_TOOL_USERS = ["admin", "exporter"] as const;

/**
 * tls: the node's certificate, key and CA, its ACL file (Redis nodes) and the password files of its own tools. Owner
 * redis, mode 0640: Redis reads them under Debian's sandbox, root's scripts read them, nobody else does.
 */
export function secretFiles(input: RenderInput): WriteFile[] {
    const { topology: t } = input;
    if (!t.security.tls) return [];
    const node = nodeOf(input);
    const { acl, tls, node: own } = securityOf(input);
    const file = (path: string, content: string): WriteFile => ({
        path,
        owner: "redis:redis",
        permissions: "0640",
        content,
        defer: true,
    });
    return [
        file(PATHS.tlsCa, tls.caCert),
        file(PATHS.tlsCert, own.cert),
        file(PATHS.tlsKey, own.key),
        ...(node.runsRedis ? [file(PATHS.aclFile, renderAclFile(t, acl))] : []),
        ...NODE_TOOL_USERS.map((u) => file(`${PATHS.secretsDir}/${u}`, `${acl[u].current}\n`)),
    ];
}

/** redis.conf and sentinel.conf of a node (owned by redis: Redis and Sentinel rewrite them), and its secret files. */
export function serviceConfigs(input: RenderInput): WriteFile[] {
    const node = nodeOf(input);
    const files: WriteFile[] = [...secretFiles(input)];
    if (node.runsRedis)
        files.push({
            path: PATHS.redisConf,
            owner: "redis:redis",
            permissions: "0640",
            content: renderRedisConf(input),
            defer: true,
        });
    if (node.runsSentinel)
        files.push({
            path: PATHS.sentinelConf,
            owner: "redis:redis",
            permissions: "0640",
            content: renderSentinelConf(input),
            defer: true,
        });
    return files;
}

function runcmd(t: Topology, node: NodePlan): (string | string[])[] {
    const services = [
        ...(node.runsRedis ? ["redis-server.service"] : []),
        ...(node.runsSentinel ? ["redis-sentinel.service"] : []),
    ];
    const prepare: (string | string[])[] = [
        "set -eu",
        [...LOCK_ROOT_PASSWORD],
        ["rm", "-f", PATHS.policyRcD],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "redis-ha-tuning.service"],
        // Exporters start with the node and retry until node.env exists (addressing ephemeral: the bootstrap step
        // writes it), so nothing here waits for them. Debian's postinst enabled its units but policy-rc.d kept them
        // from starting with Debian's defaults.
        ["systemctl", "enable", "--now", "--no-block", ...exporterUnits(node)],
        // The timer's service waits for node.env (ephemeral addressing: the bootstrap step writes it).
        ...(backupNode(t, node) ? [["systemctl", "enable", "--now", "redis-ha-backup.timer"]] : []),
        // backup.seedFrom: redis-server requires the seed from now on; the seed runs as Redis first starts.
        ...(seedsFromBackup(t, node.name) ? [["systemctl", "enable", SEED_SERVICE]] : []),
    ];
    // Ephemeral addressing: Redis and Sentinel start in the bootstrap step, once the node knows its peers.
    if (t.addressing === "ephemeral") return prepare;
    return [
        ...prepare,
        ["systemctl", "enable", ...services],
        ["systemctl", "restart", ...services],
        [`${PATHS.scriptsDir}/node-ready`],
    ];
}

/** What a node's user-data renders from: the configuration input plus the node's own SSH host key. */
export interface UserDataInput extends RenderInput {
    /**
     * The node's SSH host key. The program always gives one (and pins it in every SSH connection); without it
     * cloud-init generates host keys at first boot that nobody can verify.
     */
    readonly hostKey?: HostKeyPair;
}

/**
 * A node's complete `#cloud-config`. Pure and byte-stable: Linode replaces an instance whose user-data changes, and
 * the lab boots exactly this text.
 */
export function renderUserData(input: UserDataInput): string {
    const node = nodeOf(input);
    const doc = {
        package_update: true,
        package_upgrade: false,
        packages: packagesFor(node, input.topology),
        // Linode installs authorizedKeys for root; keep them usable and never allow password logins.
        disable_root: false,
        ssh_pwauth: false,
        ...(input.hostKey
            ? {
                  // cc_ssh deletes the image's host keys, writes this pair and generates no other type, so sshd
                  // offers exactly the key the program pins. cloud-init.service runs before sshd.service.
                  ssh_deletekeys: true,
                  ssh_keys: { ed25519_private: input.hostKey.privateKey, ed25519_public: input.hostKey.publicKey },
              }
            : {}),
        write_files: writeFilesFor(input).map((f) => ({
            path: f.path,
            owner: f.owner,
            permissions: f.permissions,
            ...(f.defer ? { defer: true } : {}),
            content: f.content,
        })),
        runcmd: runcmd(input.topology, node),
    };
    return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}

/** The files inside a rendered user-data document (for review output and tests). */
export function filesInUserData(userData: string): WriteFile[] {
    const doc = parse(userData) as { write_files?: WriteFile[] };
    return doc.write_files ?? [];
}

/** Base64 without line breaks, as Linode's metadata API takes user-data. */
export function encodeUserData(userData: string): string {
    return Buffer.from(userData, "utf8").toString("base64");
}
