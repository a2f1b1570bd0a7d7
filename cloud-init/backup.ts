import { BACKUP_INCOMING, type Topology } from "../topology";
import { nodeOf, type BackupTarget, type RenderInput } from "./inputs";
import { PATHS } from "./paths";
import { shellAssignments } from "./shell";
import { renderUnit } from "./units";
import type { WriteFile } from "./userData";
import { rootFile } from "./rootFile";

/** Debian package of the S3 client the backup, restore and seed scripts use. */
export const BACKUP_S3_PACKAGE = "s3cmd";

/**
 * Debian package of the client that uploads the backup (backup nodes only): rclone sent the same 210 MB in one
 * request in half the time s3cmd took in the lab (docs/backups.md). It reads s3cmd's configuration (redis-backup).
 */
export const BACKUP_UPLOAD_PACKAGE = "rclone";

/** Seconds the backup waits for its BGSAVE to finish before it gives up. */
export const BGSAVE_DEADLINE_SEC = 3600;

/** The node's position in the backup plan: 0 takes the backup, 1 stands in; undefined: not a backup node. */
export function backupRank(t: Topology, node: string): number | undefined {
    const i = t.backup.nodes.indexOf(node);
    return i < 0 ? undefined : i;
}

/**
 * s3cmd's configuration for the bucket. Linode's endpoint is a bare host name: TLS, bucket in the host name, SigV4.
 * An endpoint written `http://host:port` (the lab's local S3 server) means plain HTTP and path-style requests.
 */
export function renderS3cmdConfig(target: BackupTarget): string {
    const plain = /^http:\/\/([^/]+)\/?$/.exec(target.endpoint);
    const host = plain ? plain[1] : target.endpoint;
    if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(host)) throw new Error(`bad Object Storage endpoint ${target.endpoint}`);
    const lines = [
        "# Rendered by redis-ha: the backup bucket's endpoint and its limited key (root only).",
        "[default]",
        `access_key = ${target.accessKey}`,
        `secret_key = ${target.secretKey}`,
        `host_base = ${host}`,
        `host_bucket = ${plain ? host : `%(bucket)s.${host}`}`,
        `use_https = ${plain ? "False" : "True"}`,
        "signature_v2 = False",
        // Linode ignores the location constraint; s3cmd needs one for SigV4 signing.
        "bucket_location = us-east-1",
        "",
    ];
    return lines.join("\n");
}

/** backup.env: what redis-backup and redis-restore read besides node.env. */
export function renderBackupEnv(t: Topology, node: string, target: BackupTarget): string {
    const rank = backupRank(t, node) ?? -1;
    const vars: [string, string | number][] = [
        ["BACKUP_BUCKET", target.bucket],
        ["BACKUP_PREFIX", t.backup.prefix],
        ["BACKUP_INCOMING", BACKUP_INCOMING],
        ["BACKUP_RANK", rank],
        ["BACKUP_FIRST_NODE", t.backup.nodes[0] ?? ""],
        ["BACKUP_ALLOW_MASTER", t.backup.allowMaster ? 1 : 0],
        ["BACKUP_RDB_COMPRESSION", t.backup.compress ? "yes" : "no"],
        ["BGSAVE_DEADLINE_SEC", BGSAVE_DEADLINE_SEC],
    ];
    return `# Rendered by redis-ha: the backup plan as this node takes part in it (topology/backup.ts).\n${shellAssignments(vars)}`;
}

/** The oneshot that takes one backup; only its timer (or a person) starts it. */
export function renderBackupService(): string {
    return renderUnit(
        {
            Unit: [
                ["Description", "Off-site backup of the Redis dataset to Object Storage (redis-ha)"],
                ["ConditionPathExists", PATHS.nodeEnv],
                ["After", "network-online.target redis-server.service"],
                ["Wants", "network-online.target"],
            ],
            Service: [
                ["Type", "oneshot"],
                ["ExecStart", `${PATHS.scriptsDir}/redis-backup`],
                // The fork and the upload yield to Redis and replication.
                ["Nice", "10"],
                ["IOSchedulingClass", "best-effort"],
                ["IOSchedulingPriority", "7"],
                // The script bounds its BGSAVE wait itself; this bounds a stuck upload.
                ["TimeoutStartSec", "6h"],
            ],
        },
        [
            "Rendered by redis-ha. Started by redis-ha-backup.timer; run it by hand with: systemctl start redis-ha-backup",
        ],
    );
}

/** The timer of the backup: the stack's `backup.schedule`; a run missed while the node was down runs at boot. */
export function renderBackupTimer(t: Topology): string {
    return renderUnit(
        {
            Unit: [["Description", "Schedule of the off-site Redis backup (redis-ha)"]],
            Timer: [
                ["OnCalendar", t.backup.schedule],
                ["Persistent", "true"],
                ["AccuracySec", "1min"],
            ],
            Install: [["WantedBy", "timers.target"]],
        },
        ["Rendered by redis-ha from backup.schedule."],
    );
}

/**
 * The backup files of a backup node: the plan, the bucket's credentials (s3cmd's config), the service and its timer.
 * Nothing for other nodes or when backups are off: no other node ever holds the key.
 */
export function backupFiles(input: RenderInput): WriteFile[] {
    const t = input.topology;
    const node = nodeOf(input);
    const target = input.secrets.backup;
    if (!t.backup.enabled || backupRank(t, node.name) === undefined) return [];
    if (!target) throw new Error(`node ${node.name} takes backups but no backup bucket was given to render`);
    return [
        rootFile(PATHS.backupEnv, renderBackupEnv(t, node.name, target), "0600"),
        rootFile(PATHS.backupS3cfg, renderS3cmdConfig(target), "0600"),
        rootFile(PATHS.backupUnit, renderBackupService(), "0644"),
        rootFile(PATHS.backupTimer, renderBackupTimer(t), "0644"),
    ];
}
