/**
 * A durable writer through the application client, run by the drill inside a lab node's network namespace (`ip netns
 * exec`), so that it sees the network that node sees: a writer inside a region the drill cuts off. Reads its
 * configuration as one JSON document on stdin (passwords never in argv), writes until SIGTERM, then prints one JSON
 * line: the keys the client reported acknowledged and the errors it saw, by name.
 */
import { createSentinelClient } from "../client";
import type { Durability } from "../client";
import { errorsByName, startDurableWrites } from "../client/testing/durableWrites";
import type { LabLogin } from "./stack";

export interface NetnsWriterConfig {
    sentinels: { host: string; port: number; region: string }[];
    masterName: string;
    /** The region the writer runs in: its Sentinels are asked first. */
    region: string;
    /** The application's login: the app ACL user over TLS with the stack's CA (tls), or the shared passwords. */
    redis: LabLogin;
    sentinel: LabLogin;
    prefix: string;
    durability: Durability;
    replicas: number;
}

export interface NetnsWriterResult {
    acks: string[];
    /** When each acknowledgement came (ms since the epoch; this machine's clock, as the drill's). */
    ackTimes: number[];
    errors: Record<string, number>;
}

async function readStdin(): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString("utf8");
}

async function main(): Promise<void> {
    const config = JSON.parse(await readStdin()) as NetnsWriterConfig;
    const client = createSentinelClient({
        sentinels: config.sentinels,
        masterName: config.masterName,
        region: config.region,
        redis: config.redis,
        sentinel: config.sentinel,
        staleCache: false,
        metrics: false,
        connectionName: "redis-ha-drill-netns",
    });
    const load = startDurableWrites(client, {
        prefix: config.prefix,
        durability: config.durability,
        replicas: config.replicas,
        timeoutMs: 200,
        pauseAfterErrorMs: 2,
    });
    process.stdout.write("started\n");
    await new Promise<void>((resolve) => process.once("SIGTERM", resolve));
    await load.stop();
    await client.close();
    const result: NetnsWriterResult = {
        acks: load.acks.map((a) => a.key),
        ackTimes: load.acks.map((a) => a.at),
        errors: errorsByName(load.errors),
    };
    // Written in full before the exit: a pipe's write is asynchronous, and process.exit would cut it short.
    await new Promise<void>((resolve) => {
        process.stdout.write(`${JSON.stringify(result)}\n`, () => {
            resolve();
        });
    });
}

main().then(
    () => process.exit(0),
    (e: unknown) => {
        process.stderr.write(`netnsWriter: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
    },
);
