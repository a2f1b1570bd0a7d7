import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderS3cmdConfig } from "../cloud-init";
import { LabError } from "./errors";
import { run } from "./exec";

/**
 * The lab's stand-in for Linode Object Storage: moto's S3 server (`moto_server`) listening on the host's leg of the
 * lab network only (a lab address: nothing outside the lab can reach it, and the nodes reach it through the lab's
 * router). Its credentials are not checked; the program's mocks hand the nodes these.
 */
export const LAB_S3_PORT = 4568;
const LAB_S3_KEYS = { accessKey: "LABBACKUPACCESSKEY00", secretKey: "lab-backup-secret-key-not-checked-by-moto" };

/** What the mocks return for the bucket's endpoint and key in the lab. */
export function labObjectStorage(hostAddress: string): { endpoint: string; accessKey: string; secretKey: string } {
    return { endpoint: `http://${hostAddress}:${String(LAB_S3_PORT)}`, ...LAB_S3_KEYS };
}

export interface LabS3 {
    readonly endpoint: string;
    stop(): void;
}

/** Starts the lab's S3 server on the host leg and waits until it answers. */
export async function startLabS3(hostAddress: string): Promise<LabS3> {
    const child: ChildProcess = spawn("moto_server", ["-H", hostAddress, "-p", String(LAB_S3_PORT)], {
        stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    const endpoint = labObjectStorage(hostAddress).endpoint;
    const until = Date.now() + 20_000;
    while (!log.includes("Running on")) {
        if (child.exitCode !== null || Date.now() > until)
            throw new LabError(`the lab's S3 server (moto_server) did not start on ${endpoint}`, log);
        await new Promise((r) => setTimeout(r, 100));
    }
    return {
        endpoint,
        stop: () => {
            child.kill("SIGTERM");
            child.stderr?.destroy();
        },
    };
}

/** Creates a bucket on the lab's S3 server with s3cmd from the host, configured as the nodes are. */
export async function makeLabBucket(hostAddress: string, bucket: string): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "rhl-s3-"));
    try {
        const cfg = join(dir, "s3cfg");
        writeFileSync(cfg, renderS3cmdConfig({ bucket, ...labObjectStorage(hostAddress) }), { mode: 0o600 });
        await run(["s3cmd", "-c", cfg, "--no-progress", "mb", `s3://${bucket}`]);
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}
