import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
    renderAlertmanagerConfig,
    renderAlertRules,
    renderPrometheusConfig,
    RULES_FILE_NAME,
    scrapeTargets,
    type ReceiverSecrets,
} from "../cloud-init";
import type { Topology } from "../topology";
import { LabError } from "./errors";
import { assertRoutesViaLab, ROUTER_NETNS } from "./network";
import { processAlive, sleep, waitForExit } from "./processes";
import type { LabStack } from "./stack";

/**
 * A real Prometheus and Alertmanager (Debian's, from the host) watching a lab stack with the configuration the
 * monitoring node renders from the model: the same scrape targets, labels, relabelling, rules and routes. They run
 * inside the lab's router namespace, which reaches every node and nothing else (no default route, no NAT), and
 * listen on the router's address in the first region, a lab address the host reaches through its lab leg.
 */

export const PROMETHEUS_BIN = "/usr/bin/prometheus";
export const ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager";

export interface LabMonitoringOptions {
    /** The model to render from; the stack's own unless a test changes monitoring keys (scrape interval, receivers). */
    topology?: Topology;
    /** Receiver credentials (a webhook on a lab address). */
    secrets?: ReceiverSecrets;
}

export interface LabMonitoring {
    readonly prometheusUrl: string;
    readonly alertmanagerUrl: string;
    /** How many exporter targets the config lists. */
    readonly targetsTotal: number;
    stop(): Promise<void>;
}

export interface PromTarget {
    labels: Record<string, string>;
    health: "up" | "down" | "unknown";
    lastError: string;
}

export interface AmAlert {
    labels: Record<string, string>;
    startsAt: string;
    status: { state: string };
}

async function getJson<T>(url: string): Promise<T> {
    const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (!r.ok) throw new LabError(`${url}: HTTP ${String(r.status)}`);
    return (await r.json()) as T;
}

/** Prometheus's view of every scrape target. */
export async function promTargets(m: LabMonitoring): Promise<PromTarget[]> {
    const body = await getJson<{ data: { activeTargets: PromTarget[] } }>(`${m.prometheusUrl}/api/v1/targets`);
    return body.data.activeTargets;
}

/** An instant query: each series' labels and value. */
export async function promQuery(
    m: LabMonitoring,
    query: string,
): Promise<{ metric: Record<string, string>; value: number }[]> {
    const body = await getJson<{ data: { result: { metric: Record<string, string>; value: [number, string] }[] } }>(
        `${m.prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`,
    );
    return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

/** The alerts Alertmanager holds as active now (resolved ones are not listed). */
export async function amAlerts(m: LabMonitoring): Promise<AmAlert[]> {
    return getJson<AmAlert[]>(`${m.alertmanagerUrl}/api/v2/alerts?active=true&silenced=false&inhibited=true`);
}

function startIn(netns: string, argv: readonly string[], log: string): ChildProcess {
    const child = spawn("ip", ["netns", "exec", netns, ...argv], {
        stdio: ["ignore", "ignore", "pipe"],
    });
    const lines: string[] = [];
    child.stderr.on("data", (d: Buffer) => {
        lines.push(d.toString("utf8"));
        writeFileSync(log, lines.join(""));
    });
    return child;
}

async function waitReady(url: string, child: ChildProcess, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new LabError(`${what} exited with ${String(child.exitCode)}`);
        try {
            if ((await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok) return;
        } catch {
            // not listening yet
        }
        await sleep(250);
    }
    throw new LabError(`${what} did not become ready within ${String(timeoutMs / 1000)} s`);
}

/** Starts Prometheus and Alertmanager for the stack; `stop()` ends both (by pid) and removes their data. */
export async function startLabMonitoring(s: LabStack, opts: LabMonitoringOptions = {}): Promise<LabMonitoring> {
    const t = opts.topology ?? s.topology;
    const server = t.monitoring.server;
    if (!server) throw new LabError("the lab's monitoring needs a model with monitoringEnabled: true");
    const listen = s.network.regions[0].gateway;
    await assertRoutesViaLab([listen]);
    const dir = mkdtempSync(path.join(tmpdir(), "redis-ha-lab-monitoring-"));
    mkdirSync(path.join(dir, "tsdb"));
    mkdirSync(path.join(dir, "am"));
    const addresses = Object.fromEntries(s.nodes.map((n) => [n.name, n.address]));
    const amAddress = `${listen}:${String(server.uiPorts.alertmanager)}`;
    writeFileSync(
        path.join(dir, "prometheus.yml"),
        renderPrometheusConfig(t, addresses, { rulesFile: path.join(dir, RULES_FILE_NAME), alertmanager: amAddress }),
    );
    writeFileSync(path.join(dir, RULES_FILE_NAME), renderAlertRules(t));
    writeFileSync(path.join(dir, "alertmanager.yml"), renderAlertmanagerConfig(server, opts.secrets ?? {}));
    const am = startIn(
        ROUTER_NETNS,
        [
            ALERTMANAGER_BIN,
            `--config.file=${path.join(dir, "alertmanager.yml")}`,
            `--storage.path=${path.join(dir, "am")}`,
            `--web.listen-address=${amAddress}`,
            "--cluster.listen-address=",
        ],
        path.join(dir, "alertmanager.log"),
    );
    const prom = startIn(
        ROUTER_NETNS,
        [
            PROMETHEUS_BIN,
            `--config.file=${path.join(dir, "prometheus.yml")}`,
            `--storage.tsdb.path=${path.join(dir, "tsdb")}`,
            `--web.listen-address=${listen}:${String(server.uiPorts.prometheus)}`,
        ],
        path.join(dir, "prometheus.log"),
    );
    const m: LabMonitoring = {
        prometheusUrl: `http://${listen}:${String(server.uiPorts.prometheus)}`,
        alertmanagerUrl: `http://${amAddress}`,
        targetsTotal: scrapeTargets(t, addresses).length,
        stop: async () => {
            for (const child of [prom, am]) {
                const pid = child.pid;
                if (pid === undefined || !processAlive(pid)) continue;
                child.kill("SIGTERM");
                if (!(await waitForExit(pid, 10_000))) child.kill("SIGKILL");
            }
            rmSync(dir, { recursive: true, force: true });
        },
    };
    try {
        await waitReady(`${m.alertmanagerUrl}/-/ready`, am, `Alertmanager (log ${dir}/alertmanager.log)`);
        await waitReady(`${m.prometheusUrl}/-/ready`, prom, `Prometheus (log ${dir}/prometheus.log)`);
    } catch (e) {
        await m.stop();
        throw e;
    }
    return m;
}
