import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { filesInUserData, PATHS, renderS3cmdConfig } from "../../cloud-init";
import { resourceNames as names } from "../../components/names";
import { resourceNamed, runUnderMocks, unwrapSecrets, type MockRun } from "../../engine/mockRun";
import { programConfigWith } from "../helpers";

const SECRET_KEY = "lab-secret-key-0123456789abcdefghijklmnopq";
const ACCESS_KEY = "LABACCESSKEY12345678";

/** A string with what it carries base64-encoded spelled out: user-data, and apply-settings' `file` lines. */
function reveal(text: string): string {
    const decoded = [...text.matchAll(/^file \S+ \S+ (\S+)$/gm)].map((m) => Buffer.from(m[1], "base64").toString());
    const whole = Buffer.from(text, "base64").toString();
    return [text, ...decoded, ...(whole.startsWith("#cloud-config") ? [whole] : [])].join("\n");
}

/** Every value outside a secret wrapper, as text: what the engine would store or print in clear. */
function plainText(value: unknown): string {
    if (pulumi.runtime.isRpcSecret(value)) return "";
    if (Array.isArray(value)) return value.map(plainText).join("\n");
    if (value !== null && typeof value === "object") return Object.values(value).map(plainText).join("\n");
    return reveal(String(value));
}

/** Every value, secret or not, as text. */
function allText(value: unknown): string {
    const v = unwrapSecrets(value);
    if (Array.isArray(v)) return v.map(allText).join("\n");
    if (v !== null && typeof v === "object") return Object.values(v).map(allText).join("\n");
    return reveal(String(v));
}

let run: MockRun;
let off: MockRun;
beforeAll(async () => {
    run = await runUnderMocks({
        stack: "prod",
        config: programConfigWith("prod", { "backup.enabled": true, "backup.retentionDays": 21 }),
        objectStorage: { endpoint: "us-ord-1.linodeobjects.com", accessKey: ACCESS_KEY, secretKey: SECRET_KEY },
    });
    off = await runUnderMocks({ stack: "prod" });
});

describe("backup storage under mocks (prod, backup.enabled)", () => {
    it("declares a private, versioned bucket in the DR region with retention and incoming-expiry rules", () => {
        const bucket = resourceNamed(run, names.backupBucket);
        expect(bucket.parent).toBe(names.backup);
        const inputs = unwrapSecrets(bucket.inputs) as Record<string, unknown>;
        expect(inputs.region).toBe("us-ord");
        expect(inputs.versioning).toBe(true);
        expect(inputs.acl).toBe("private");
        expect(String(inputs.label)).toMatch(/^redis-prod-backup-[a-z0-9]{6}$/);
        expect(inputs.lifecycleRules).toEqual([
            {
                id: "retention",
                enabled: true,
                prefix: "redis-prod/",
                expiration: { days: 21 },
                noncurrentVersionExpiration: { days: 21 },
                abortIncompleteMultipartUploadDays: 1,
            },
            {
                id: "incoming",
                enabled: true,
                prefix: "redis-prod/.incoming/",
                expiration: { days: 1 },
                noncurrentVersionExpiration: { days: 1 },
                abortIncompleteMultipartUploadDays: 1,
            },
        ]);
        // Versioning and lifecycle need S3 keys: the bucket's own provider makes temporary ones.
        const provider = resourceNamed(run, names.backupProvider);
        // Provider settings reach the engine as strings.
        expect(String(unwrapSecrets(provider.inputs.objUseTempKeys))).toBe("true");
    });

    it("declares a key limited to that bucket, read_write, under the backup component", () => {
        const key = resourceNamed(run, names.backupKey);
        const bucket = resourceNamed(run, names.backupBucket);
        expect(key.parent).toBe(names.backup);
        expect(resourceNamed(run, names.backup).parent).toBe(names.cluster);
        expect(unwrapSecrets(key.inputs.bucketAccesses)).toEqual([
            { bucketName: unwrapSecrets(bucket.inputs.label), region: "us-ord", permissions: "read_write" },
        ]);
    });

    it("puts the key's credentials only into the backup nodes' user-data and settings, always as secrets", () => {
        const holders = run.resources
            .filter((r) => allText(r.inputs).includes(SECRET_KEY))
            .map((r) => r.name)
            .sort();
        expect(holders).toEqual(["east-b", "ord-a"].flatMap((n) => [names.settingsStep(n), names.instance(n)]).sort());
        for (const r of run.resources) expect(`${r.name}: ${plainText(r.inputs)}`).not.toContain(SECRET_KEY);
        const withKey = Object.entries(run.userData)
            .filter(([, ud]) => ud.includes(SECRET_KEY))
            .map(([n]) => n)
            .sort();
        expect(withKey).toEqual(["east-b", "ord-a"]);
        for (const name of ["east-b", "ord-a"])
            expect(plainText(resourceNamed(run, names.instance(name)).inputs.metadatas)).not.toContain("#cloud-config");
        expect(JSON.stringify(run.stackOutputs)).not.toContain(SECRET_KEY);
        expect(run.stackOutputs.backup).toEqual({
            bucket: unwrapSecrets(resourceNamed(run, names.backupBucket).inputs.label),
            region: "us-ord",
            endpoint: "us-ord-1.linodeobjects.com",
            nodes: ["ord-a", "east-b"],
        });
    });

    it("gives the backup nodes s3cmd, the timer, the plan and the 0600 credentials file; no other node", () => {
        for (const [node, rank] of [
            ["ord-a", 0],
            ["east-b", 1],
        ] as const) {
            const files = filesInUserData(run.userData[node]);
            const byPath = new Map(files.map((f) => [f.path, f]));
            expect(byPath.get(PATHS.backupS3cfg)?.permissions).toBe("0600");
            expect(byPath.get(PATHS.backupS3cfg)?.content).toContain(`secret_key = ${SECRET_KEY}`);
            expect(byPath.get(PATHS.backupEnv)?.content).toContain(`BACKUP_RANK='${String(rank)}'`);
            expect(byPath.get(PATHS.backupTimer)?.content).toContain("OnCalendar=*-*-* 03:30:00");
            const doc = parse(run.userData[node]) as { packages: string[]; runcmd: unknown[] };
            expect(doc.packages).toContain("s3cmd");
            expect(doc.packages).toContain("rclone");
            expect(doc.runcmd).toContainEqual(["systemctl", "enable", "--now", "redis-ha-backup.timer"]);
        }
        expect(filesInUserData(run.userData["east-b"]).find((f) => f.path === PATHS.nodeEnv)?.content).toContain(
            "BACKUP_FIRST_ADDRESS=",
        );
        for (const node of ["east-a", "witness"]) {
            const paths = filesInUserData(run.userData[node]).map((f) => f.path);
            for (const p of [PATHS.backupS3cfg, PATHS.backupEnv, PATHS.backupTimer]) expect(paths).not.toContain(p);
            const { packages } = parse(run.userData[node]) as { packages: string[] };
            expect(packages).not.toContain("s3cmd");
            expect(packages).not.toContain("rclone");
        }
    });

    it("declares nothing for backups, and renders no backup file, when backup.enabled is false", () => {
        expect(off.resources.filter((r) => r.type.includes("objectStorage") || r.name === names.backup)).toEqual([]);
        for (const ud of Object.values(off.userData)) {
            const paths = filesInUserData(ud).map((f) => f.path);
            expect(paths).not.toContain(PATHS.backupTimer);
            expect(paths).not.toContain(PATHS.backupS3cfg);
        }
        expect(off.stackOutputs.backup).toBeUndefined();
    });
});

describe("backup region", () => {
    it("refuses a backup region without Object Storage before any resource exists", async () => {
        // ap-west, as Linode recorded it (topology/linodeRegions.ts), has no Object Storage.
        await expect(
            runUnderMocks({
                stack: "prod",
                config: programConfigWith("prod", { "backup.enabled": true, "backup.region": "ap-west" }),
            }),
        ).rejects.toThrow(
            /redis-ha:backup\.region: region ap-west lacks the Linode capability "Object Storage" \(the backup bucket lives there\); set backup\.region/,
        );
    });
});

describe("s3cmd config", () => {
    const target = { bucket: "b", accessKey: "A", secretKey: "S" };
    it("uses TLS and virtual-host buckets on Linode, plain HTTP and paths on a lab server", () => {
        expect(renderS3cmdConfig({ ...target, endpoint: "us-ord-1.linodeobjects.com" })).toContain(
            "host_bucket = %(bucket)s.us-ord-1.linodeobjects.com\nuse_https = True",
        );
        expect(renderS3cmdConfig({ ...target, endpoint: "http://10.77.0.1:4568" })).toContain(
            "host_base = 10.77.0.1:4568\nhost_bucket = 10.77.0.1:4568\nuse_https = False",
        );
        expect(() => renderS3cmdConfig({ ...target, endpoint: "x y\n[evil]" })).toThrow(/bad Object Storage endpoint/);
    });
});
