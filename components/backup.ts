import * as linode from "@pulumi/linode";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { BackupTarget } from "../cloud-init";
import { BACKUP_INCOMING, type Topology } from "../topology";
import { backupChildren } from "./names";

export interface BackupStorageArgs {
    /** The deployment; its `backup` plan gives the region, prefix and retention. */
    topology: Topology;
}

/**
 * Off-site backup storage: an Object Storage bucket (versioned, with lifecycle rules for retention) and an access key
 * that can read and write that bucket only. The key's credentials leave this component only as a secret `target`,
 * which the cluster renders into the backup nodes' files and nowhere else.
 *
 * Versioning and lifecycle rules are applied with S3 calls that need keys of their own: the bucket's provider uses
 * `objUseTempKeys`, so the Linode provider creates a short-lived key for those calls and deletes it, and no account-wide
 * Object Storage key sits in the stack's state. The limited key could not do it: it is made for the bucket, after it.
 */
export class BackupStorage extends pulumi.ComponentResource {
    /** The bucket's name (its label). */
    public readonly bucket: pulumi.Output<string>;
    /** Object Storage region of the bucket. */
    public readonly region: pulumi.Output<string>;
    /** S3 endpoint host of the bucket's region (`<cluster>.linodeobjects.com`). */
    public readonly endpoint: pulumi.Output<string>;
    /** Bucket, endpoint and the limited key: secret. */
    public readonly target: pulumi.Output<BackupTarget>;
    /**
     * `backup.seedFrom`: the seed's bucket, the endpoint and a key that can only read that bucket: secret. Only the first
     * master gets it. Undefined when the cluster starts empty.
     */
    public readonly seed?: pulumi.Output<BackupTarget>;

    constructor(name: string, args: BackupStorageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:backup:BackupStorage", name, {}, opts);
        const plan = args.topology.backup;
        // Bucket names are global per Object Storage cluster, across all Linode customers: the cluster name alone
        // would collide. The suffix is made once and kept in state.
        const suffix = new random.RandomString(
            backupChildren.suffix(name),
            { length: 6, special: false, upper: false },
            { parent: this },
        );
        const provider = new linode.Provider(backupChildren.provider(name), { objUseTempKeys: true }, { parent: this });
        const bucket = new linode.ObjectStorageBucket(
            backupChildren.bucket(name),
            {
                label: pulumi.interpolate`${plan.prefix}-backup-${suffix.result}`,
                region: plan.region,
                acl: "private",
                versioning: true,
                lifecycleRules: [
                    {
                        id: "retention",
                        enabled: true,
                        prefix: `${plan.prefix}/`,
                        expiration: { days: plan.retentionDays },
                        // Versioning keeps an overwritten or deleted backup as a noncurrent version: expire those too.
                        noncurrentVersionExpiration: { days: plan.retentionDays },
                        abortIncompleteMultipartUploadDays: 1,
                    },
                    {
                        // A backup that failed between upload and move leaves its temporary object here.
                        id: "incoming",
                        enabled: true,
                        prefix: `${plan.prefix}/${BACKUP_INCOMING}/`,
                        expiration: { days: 1 },
                        noncurrentVersionExpiration: { days: 1 },
                        abortIncompleteMultipartUploadDays: 1,
                    },
                ],
            },
            { parent: this, provider },
        );
        const key = new linode.ObjectStorageKey(
            backupChildren.key(name),
            {
                label: pulumi.interpolate`${plan.prefix}-backup`,
                bucketAccesses: [{ bucketName: bucket.label, region: plan.region, permissions: "read_write" }],
            },
            { parent: this },
        );
        this.bucket = bucket.label;
        this.region = pulumi.output(plan.region);
        this.endpoint = bucket.s3Endpoint;
        this.target = pulumi.secret(
            pulumi
                .all([bucket.label, bucket.s3Endpoint, key.accessKey, key.secretKey])
                .apply(([b, endpoint, accessKey, secretKey]) => ({ bucket: b, endpoint, accessKey, secretKey })),
        );
        if (plan.seed) {
            // Its own key, read-only and limited to the seed's bucket: the first master never holds a key that could
            // write or delete a backup, of the old cluster or the new one.
            const seedBucket = plan.seed.bucket;
            const seedKey = new linode.ObjectStorageKey(
                backupChildren.seedKey(name),
                {
                    label: pulumi.interpolate`${plan.prefix}-seed`,
                    bucketAccesses: [{ bucketName: seedBucket, region: plan.region, permissions: "read_only" }],
                },
                { parent: this },
            );
            this.seed = pulumi.secret(
                pulumi
                    .all([bucket.s3Endpoint, seedKey.accessKey, seedKey.secretKey])
                    .apply(([endpoint, accessKey, secretKey]) => ({
                        bucket: seedBucket,
                        endpoint,
                        accessKey,
                        secretKey,
                    })),
            );
        }
        this.registerOutputs({ bucket: this.bucket, region: this.region, endpoint: this.endpoint });
    }
}
