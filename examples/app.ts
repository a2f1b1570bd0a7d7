/**
 * A tiny HTTP app on the client: a durable counter, a health endpoint and a metrics endpoint.
 *
 *   REDIS_SENTINELS=10.0.0.1:26379,10.0.1.1:26379 REDIS_MASTER_NAME=mymaster REDIS_PASSWORD=... \
 *   REDIS_SENTINEL_PASSWORD=... REDIS_REGION=eu-central npx tsx examples/app.ts
 *
 * A cluster with `tls: true`: the app user on Redis and Sentinel, over TLS with the cluster's CA
 *   (pulumi stack output caCertificate > ca.pem; the password: pulumi stack output --show-secrets users):
 *   REDIS_USERNAME=app REDIS_SENTINEL_USERNAME=app REDIS_PASSWORD=... REDIS_SENTINEL_PASSWORD=... REDIS_CA_FILE=ca.pem
 *
 *   curl -XPOST localhost:8080/counter   # INCR, acknowledged by ≥ 1 replica (WAIT), or an error
 *   curl localhost:8080/counter          # read; served stale (marked) while Redis is unreachable
 *   curl localhost:8080/health           # 200 / 503 JSON
 *   curl localhost:8080/metrics          # Prometheus text
 *
 * Prints what the client sees during a failover (Sentinel's announcements, reconnects, retries,
 * breaker changes, stale reads).
 */
import { readFileSync } from "node:fs";
import { createServer, IncomingMessage, ServerResponse } from "node:http";
import { Registry, collectDefaultMetrics } from "prom-client";
import { createSentinelClient, parseEndpointList, RedisClientError, WriteNotAcknowledgedError } from "../client";

const env = process.env;
if (!env.REDIS_SENTINELS) {
    console.error("REDIS_SENTINELS is required, e.g. REDIS_SENTINELS=10.0.0.1:26379,10.0.1.1:26379 (own region first)");
    process.exit(2);
}
// TLS to Redis and Sentinel alike when the cluster's CA is given (the client sets enableTLSForSentinelMode).
const tls = env.REDIS_CA_FILE ? { tls: { ca: readFileSync(env.REDIS_CA_FILE, "utf8") } } : {};
const registry = new Registry();
collectDefaultMetrics({ register: registry });

const client = createSentinelClient({
    sentinels: parseEndpointList(env.REDIS_SENTINELS),
    masterName: env.REDIS_MASTER_NAME ?? "mymaster",
    region: env.REDIS_REGION,
    redis: { password: env.REDIS_PASSWORD, username: env.REDIS_USERNAME, ...tls },
    sentinel: { password: env.REDIS_SENTINEL_PASSWORD, username: env.REDIS_SENTINEL_USERNAME, ...tls },
    readFrom: env.REDIS_LOCAL_REPLICAS ? "replica" : "master",
    localReplicas: env.REDIS_LOCAL_REPLICAS ? parseEndpointList(env.REDIS_LOCAL_REPLICAS, 6379) : [],
    metrics: { registry },
    connectionName: "example-app",
});

const t0 = Date.now();
const log = (...args: unknown[]) => {
    console.log(`[${((Date.now() - t0) / 1000).toFixed(2)}s]`, ...args);
};
client.on("failover", (e) => {
    log(`failover (${e.source}): master ${e.from ?? "?"} -> ${e.to}`);
});
client.on("connectionStateChange", (e) => {
    log(
        `${e.role} connection ${e.state}${e.address ? ` ${e.address}` : ""} (epoch ${e.epoch})${e.reason ? `: ${e.reason}` : ""}`,
    );
});
client.on("breakerStateChange", (s) => {
    log(`circuit breaker ${s}`);
});
client.on("staleServed", (s) => {
    log(`served stale ${s.key} (${Math.round(s.ageMs)} ms old, ${s.errorClass})`);
});
let retries = 0;
client.on("retry", (r) => {
    if (++retries % 100 === 1) log(`retrying (${r.errorClass}), ${retries} retries so far`);
});

const COUNTER = "example:counter";
const health = client.healthHandler();

function send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
}

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/health") {
        health(req, res);
        return;
    }
    if (path === "/metrics") {
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(await registry.metrics());
        return;
    }
    if (path === "/counter" && req.method === "POST") {
        try {
            // INCR is not idempotent: never re-sent when its outcome is unknown.
            const { acknowledged, results } = await client.durableWrite((p) => p.incr(COUNTER), {
                replicas: 1,
                timeoutMs: 200,
            });
            send(res, 200, { value: results[0], acknowledged });
            return;
        } catch (err) {
            const e = err as Error;
            const outcome = err instanceof RedisClientError ? err.outcome : "unknown";
            const status = err instanceof WriteNotAcknowledgedError ? 504 : 503;
            send(res, status, { error: e.name, message: e.message, outcome });
            return;
        }
    }
    if (path === "/counter") {
        try {
            const r = await client.readThrough(COUNTER, (redis) => redis.get(COUNTER));
            send(res, 200, {
                value: r.value === null ? 0 : Number(r.value),
                stale: r.stale,
                ...(r.stale ? { ageMs: Math.round(r.ageMs) } : {}),
            });
            return;
        } catch (err) {
            send(res, 503, { error: (err as Error).name, message: (err as Error).message });
            return;
        }
    }
    send(res, 404, { error: "not found", routes: ["POST /counter", "GET /counter", "GET /health", "GET /metrics"] });
}

const server = createServer((req, res) => void route(req, res));
const port = Number(env.PORT ?? 8080);
server.listen(port, env.HOST ?? "127.0.0.1", () => {
    log(`listening on http://${env.HOST ?? "127.0.0.1"}:${port}`);
});

async function shutdown(signal: string): Promise<void> {
    log(`${signal}: closing`);
    server.close();
    await client.close();
    process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
