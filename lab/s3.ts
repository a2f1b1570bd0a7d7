import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderS3cmdConfig } from "../cloud-init";
import { LabError } from "./errors";
import { run } from "./exec";

/**
 * A local S3 server for the backup tests and the lab: s3rver (an npm devDependency, so CI gets it with the rest of
 * node_modules), run as a child process listening on one address only, with its objects in a temp directory that
 * stop() removes. s3rver knows one account, S3RVER: it checks the access key id and SigV2 signatures; SigV4 (what
 * s3cmd sends here) it accepts unchecked. Clients use path-style requests (renderS3cmdConfig does for `http://`).
 */
export const LOCAL_S3_KEYS = { accessKey: "S3RVER", secretKey: "S3RVER" };

export interface LocalS3 {
    readonly endpoint: string;
    /** Stops the server and removes its data directory. */
    stop(): Promise<void>;
}

/** Starts s3rver on address:port (port 0: a free one it picks) and resolves once it listens. */
export async function startLocalS3(address: string, port: number): Promise<LocalS3> {
    const dir = mkdtempSync(join(tmpdir(), "rha-s3rver-"));
    const child = spawn(
        process.execPath,
        [
            require.resolve("s3rver/bin/s3rver.js"),
            ...["--directory", join(dir, "data"), "--address", address, "--port", String(port)],
            // One line per request would be noise; errors still reach stderr.
            "--silent",
            "--no-vhost-buckets",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<void>((resolve) =>
        child.once("exit", () => {
            resolve();
        }),
    );
    const stop = async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        await exited;
        rmSync(dir, { recursive: true, force: true });
    };
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const until = Date.now() + 20_000;
    for (;;) {
        const m = /S3rver listening on (\S+):(\d+)/.exec(out);
        if (m) return { endpoint: `http://${m[1]}:${m[2]}`, stop };
        if (child.exitCode !== null || Date.now() > until) {
            await stop();
            throw new LabError(`the local S3 server (s3rver) did not start on ${address}:${String(port)}`, out);
        }
        await new Promise((r) => setTimeout(r, 100));
    }
}

/**
 * The lab's stand-in for Linode Object Storage: s3rver on the host's leg of the lab network only (a lab address:
 * nothing outside the lab can reach it, and the nodes reach it through the lab's router). The program's mocks hand
 * the nodes its endpoint and the one key it knows.
 */
export const LAB_S3_PORT = 4568;

/** What the mocks return for the bucket's endpoint and key in the lab. */
export function labObjectStorage(hostAddress: string): { endpoint: string; accessKey: string; secretKey: string } {
    return { endpoint: `http://${hostAddress}:${String(LAB_S3_PORT)}`, ...LOCAL_S3_KEYS };
}

/** Starts the lab's S3 server on the host leg and waits until it answers. */
export function startLabS3(hostAddress: string): Promise<LocalS3> {
    return startLocalS3(hostAddress, LAB_S3_PORT);
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
