import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { sentinelEndpoints } from "./labCluster";
import type { LabStack } from "./stack";

/**
 * The drill's writer through the Python client (`lab drill --writer python`): `clients/python/drill_writer.py`,
 * run by Debian's interpreter on the host like the TypeScript writer, fed the connection document that
 * `lab up --json` prints (the format both clients read, clients/python/README.md). It writes numbered durable
 * writes and reports each acknowledgement and each error as a JSON line.
 */

/** Debian's interpreter: it has python3-redis, python3-tenacity and python3-prometheus-client (./run.sh setup). */
const PYTHON = process.env.REDIS_HA_PYTHON ?? "/usr/bin/python3";
const WRITER = join(__dirname, "..", "clients", "python", "drill_writer.py");

/** One line of the writer's output. */
type WriterLine = { ack: string; at: number } | { error: string } | { done: true };

export interface PythonWriterOptions {
    readonly prefix: string;
    readonly region: string;
    readonly replicas: number;
    readonly timeoutMs: number;
    readonly pauseAfterErrorMs: number;
}

/** Starts the Python writer; the same shape as the drill's TypeScript writer. */
export function startPythonWriter(s: LabStack, o: PythonWriterOptions) {
    const acks: { key: string; at: number }[] = [];
    const errors: Record<string, number> = {};
    let failed = 0;
    const child = spawn(
        PYTHON,
        [
            WRITER,
            "--prefix",
            o.prefix,
            "--region",
            o.region,
            "--replicas",
            String(o.replicas),
            "--timeout-ms",
            String(o.timeoutMs),
            "--pause-ms",
            String(o.pauseAfterErrorMs),
        ],
        { stdio: ["pipe", "pipe", "inherit"] },
    );
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    createInterface({ input: child.stdout }).on("line", (line) => {
        const m = JSON.parse(line) as WriterLine;
        if ("ack" in m) acks.push({ key: m.ack, at: m.at });
        else if ("error" in m) {
            failed += 1;
            errors[m.error] = (errors[m.error] ?? 0) + 1;
        }
    });
    const document = {
        masterName: s.topology.masterName,
        sentinels: sentinelEndpoints(s),
        redisPassword: s.credentials.redisPassword,
        sentinelPassword: s.credentials.sentinelPassword,
        // tls: the app user on Redis and Sentinel, over TLS with the stack's CA.
        ...(s.credentials.caCert
            ? { redisUsername: "app", sentinelUsername: "app", caCertificate: s.credentials.caCert }
            : {}),
    };
    child.stdin.write(JSON.stringify(document) + "\n");
    return {
        acks,
        /** Errors that reached the writer (the application), by error name; READONLY separately. */
        get errors() {
            return { ...errors };
        },
        failed: () => failed,
        /** Closing stdin stops the writer after its current write. */
        async stop() {
            child.stdin.end();
            const code = await exited;
            if (code !== 0) throw new Error(`${WRITER} exited with ${String(code)}`);
        },
    };
}
