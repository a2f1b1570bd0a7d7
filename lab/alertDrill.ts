import http from "node:http";
import type { AddressInfo } from "node:net";
import { DASHBOARD_ROWS } from "../cloud-init";
import { CONFIG_NAMESPACE, topologyFromConfig } from "../topology";
import { LabError } from "./errors";
import { labNode, redisStatus } from "./labCluster";
import {
    amAlerts,
    promQuery,
    promTargets,
    startLabMonitoring,
    type LabMonitoring,
    type PromTarget,
} from "./monitoring";
import { bootNode, readNodeState, stopNode, waitForCloudInit } from "./nodes";
import { screenshotDashboard } from "./screenshot";
import { sleep } from "./processes";
import { labConfig, type LabStack } from "./stack";

/** What `lab drill --scenario alert --json` reports. */
export interface AlertDrillReport {
    stack: string;
    scenario: "alert";
    /** Exporter targets Prometheus scraped successfully before the fault (all of them, or the drill stops). */
    targetsUp: number;
    targetsTotal: number;
    /** Every target before the fault: job, node, region, role and health. */
    targets: { job: string; node: string; region: string; role: string; cluster: string; health: string }[];
    /** `redis_up` of every Redis and Sentinel exporter before the fault ("job node value"): 1 means it logged in. */
    redisUp: string[];
    /** Nodes that the exporters' `redis_instance_info{redis_role="master"}` names before the fault. */
    mastersSeen: string[];
    /** Panels of the shipped Grafana dashboard whose query returned no series before the fault (optional ones aside). */
    panelsWithoutData: string[];
    /** The node whose machine was killed (the master). */
    killed: string;
    /** Seconds from the kill until each alert was active in Alertmanager (read through its API). */
    alertsFired: Record<string, number>;
    /** Seconds from the kill until RedisHaMasterDown left Alertmanager, once the node was back. */
    alertsResolved: Record<string, number>;
    /** down-after + two scrape intervals + 30 s: the issue's bound for RedisHaMasterDown (printed, not asserted). */
    masterDownBudgetSec: number;
    /** Labels of the RedisHaFailover alert: the new master and its severity. */
    failover: { node: string; severity: string };
    /** The killed node's Redis came back as a replica. */
    oldMasterRejoinedAsReplica: boolean;
    /** Alertmanager delivered RedisHaFailover (firing) to the webhook receiver. */
    webhookNotified: boolean;
    correct: boolean;
}

/** A label's value, "" when the series has none. */
const label = (labels: Readonly<Record<string, string | undefined>> | undefined, name: string): string =>
    labels?.[name] ?? "";

interface Notification {
    status: string;
    alerts: { status: string; labels: Record<string, string> }[];
}

/** Waits until `check` returns a value, polling every second; throws with `what` after `timeoutMs`. */
async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: string | undefined;
    while (Date.now() < deadline) {
        try {
            const v = await check();
            if (v !== undefined) return v;
        } catch (e) {
            last = e instanceof Error ? e.message : String(e);
        }
        await sleep(1_000);
    }
    throw new LabError(
        `timed out after ${String(timeoutMs / 1000)} s waiting for ${what}${last ? ` (last: ${last})` : ""}`,
    );
}

/** Alertmanager's webhook target: a receiver on the host's own lab address (the router reaches it, nothing else). */
async function startWebhook(address: string): Promise<{ url: string; received: Notification[]; close(): void }> {
    const received: Notification[] = [];
    const server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString("utf8")));
        req.on("end", () => {
            try {
                received.push(JSON.parse(body) as Notification);
            } catch {
                // not Alertmanager's JSON: ignored
            }
            res.end("ok");
        });
    });
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    const url = `http://${address}:${String((server.address() as AddressInfo).port)}/alerts`;
    return { url, received, close: () => server.close() };
}

/**
 * The `alert` drill: a real Prometheus and Alertmanager (Debian's, in the lab's router namespace, configured exactly as
 * the monitoring node renders them from the stack's model, with a 5 s scrape interval) watch the stack. Every exporter
 * target must be up before the fault; then the master's machine loses power, and RedisHaMasterDown and RedisHaFailover
 * must reach Alertmanager (read through its API), RedisHaFailover must reach the team's webhook, and once the machine
 * is back (its Redis rejoining as a replica) RedisHaMasterDown must resolve.
 *
 * Why the whole machine: killing only Redis lets the start guard hand mastership over and restart Redis as a replica
 * within seconds, shorter than a scrape plus the alert's `for:`; a crash that heals itself is a RedisHaFailover (info),
 * not a page.
 */
export interface AlertDrillOptions {
    /** Before Prometheus stops, render its graph page over the drill into this PNG (lab/screenshot.ts; chromium). */
    screenshot?: string;
}

export async function alertDrill(
    s: LabStack,
    log: (m: string) => void,
    opts: AlertDrillOptions = {},
): Promise<AlertDrillReport> {
    const hook = await startWebhook(s.network.hostAddress);
    let m: LabMonitoring | undefined;
    try {
        // The stack's model with a monitoring node and a short scrape interval (the nodes' user-data depends on
        // neither), so the drill proves the alert path in seconds rather than minutes.
        const key = (k: string) => `${CONFIG_NAMESPACE}:${k}`;
        const t = topologyFromConfig(
            {
                ...labConfig(s.stack, {}).values,
                [key("monitoringEnabled")]: "true",
                [key("monitoringWebhookUrl")]: hook.url,
                [key("monitoringScrapeIntervalSec")]: "5",
            },
            "redis-ha",
            s.stack,
        );
        log(`Prometheus + Alertmanager in the lab's router namespace; webhook ${hook.url}`);
        m = await startLabMonitoring(s, { topology: t, secrets: { webhookUrl: hook.url } });
        const mon = m;

        let targets: PromTarget[] = [];
        await until("every exporter target up", 90_000, async () => {
            targets = await promTargets(mon);
            return targets.length === mon.targetsTotal && targets.every((x) => x.health === "up") ? true : undefined;
        }).catch(() => undefined);
        const targetsUp = targets.filter((x) => x.health === "up").length;
        log(`targets up: ${String(targetsUp)} of ${String(mon.targetsTotal)}`);
        if (targetsUp !== mon.targetsTotal)
            throw new LabError(
                `only ${String(targetsUp)} of ${String(mon.targetsTotal)} exporter targets up before the fault`,
                targets
                    .map((x) => `${label(x.labels, "job")} ${label(x.labels, "node")} ${x.health} ${x.lastError}`)
                    .join("\n"),
            );
        const exporters =
            s.topology.nodes.filter((n) => n.runsRedis).length + s.topology.nodes.filter((n) => n.runsSentinel).length;
        const up = await until("redis_up of every Redis and Sentinel exporter", 30_000, async () => {
            const r = await promQuery(mon, "redis_up");
            return r.length === exporters ? r : undefined;
        });
        const masters = await promQuery(mon, `redis_instance_info{redis_role="master"}`);
        // Every panel of the shipped dashboard shows data from these exporters (rates need two scrapes).
        const panelsWithoutData: string[] = [];
        for (const p of DASHBOARD_ROWS.flatMap((r) => r.panels).filter((x) => x.mayBeEmpty !== true)) {
            const has = await until(`data for the panel "${p.title}"`, 30_000, async () =>
                (await promQuery(mon, p.expr.replaceAll("$cluster", t.cluster))).length > 0 ? true : undefined,
            ).catch(() => false);
            if (!has) panelsWithoutData.push(p.title);
        }

        const master = (await redisStatus(s)).find((n) => n.role === "master")?.name;
        if (!master) throw new LabError("no master before the fault");
        const before = (await amAlerts(mon)).filter((a) => a.labels.alertname.startsWith("RedisHaMaster"));
        if (before.length > 0)
            throw new LabError(
                `alerts already active before the fault: ${before.map((a) => a.labels.alertname).join(", ")}`,
            );

        log(`fault: ${master}'s machine loses power`);
        const fault = Date.now();
        await stopNode(master, { mode: "kill" });
        const active = (name: string, node?: string) => async () => {
            const hit = (await amAlerts(mon)).find(
                (a) => a.labels.alertname === name && (node === undefined || a.labels.node === node),
            );
            return hit ? (Date.now() - fault) / 1000 : undefined;
        };
        const alertsFired: Record<string, number> = {};
        alertsFired.RedisHaMasterDown = await until(
            "RedisHaMasterDown in Alertmanager",
            120_000,
            active("RedisHaMasterDown", master),
        );
        log(`RedisHaMasterDown active after ${String(alertsFired.RedisHaMasterDown)} s`);
        alertsFired.RedisHaFailover = await until(
            "RedisHaFailover in Alertmanager",
            120_000,
            active("RedisHaFailover"),
        );
        log(`RedisHaFailover active after ${String(alertsFired.RedisHaFailover)} s`);
        const failover = (await amAlerts(mon)).find((a) => a.labels.alertname === "RedisHaFailover");

        // Power back: the node boots from its disk, and the start guard brings Redis back as a replica of the new master.
        const state = readNodeState(master);
        if (!state) throw new LabError(`${master} has no state on disk`);
        await bootNode(labNode(s, master), state.imageDir);
        const boot = await waitForCloudInit(master, 300_000);
        if (!boot.ok) throw new LabError(`${master} did not boot again: ${boot.errors.join("; ")}`, boot.detail);
        log(`${master} is back`);
        const alertsResolved: Record<string, number> = {};
        alertsResolved.RedisHaMasterDown = await until("RedisHaMasterDown resolved", 180_000, async () =>
            (await active("RedisHaMasterDown", master)()) === undefined ? (Date.now() - fault) / 1000 : undefined,
        );
        log(`RedisHaMasterDown resolved after ${String(alertsResolved.RedisHaMasterDown)} s`);
        const back = (await redisStatus(s)).find((n) => n.name === master);

        // Alertmanager routes to the team's webhook after group_wait. RedisHaFailover stays firing for its window; a
        // RedisHaMasterDown that resolves within group_wait is never sent (no resolved-only notification for an alert
        // never notified as firing).
        const webhookNotified = await until("a webhook notification for RedisHaFailover", 90_000, () =>
            Promise.resolve(
                hook.received.some((n) =>
                    n.alerts.some((a) => a.labels.alertname === "RedisHaFailover" && a.status === "firing"),
                )
                    ? true
                    : undefined,
            ),
        ).catch(() => false);

        if (opts.screenshot !== undefined) {
            const bytes = await screenshotDashboard(mon.prometheusUrl, t.cluster, opts.screenshot);
            log(`screenshot of Prometheus's graph page: ${opts.screenshot} (${String(bytes)} bytes)`);
        }

        const masterDownBudgetSec = s.topology.sentinel.downAfterMs / 1000 + 2 * t.monitoring.scrapeIntervalSec + 30;
        const report: Omit<AlertDrillReport, "correct"> = {
            stack: s.stack,
            scenario: "alert",
            targetsUp,
            targetsTotal: mon.targetsTotal,
            targets: targets.map((x) => ({
                job: label(x.labels, "job"),
                node: label(x.labels, "node"),
                region: label(x.labels, "region"),
                role: label(x.labels, "role"),
                cluster: label(x.labels, "cluster"),
                health: x.health,
            })),
            redisUp: up.map((r) => `${label(r.metric, "job")} ${label(r.metric, "node")} ${String(r.value)}`).sort(),
            mastersSeen: masters.map((r) => label(r.metric, "node")).sort(),
            panelsWithoutData,
            killed: master,
            alertsFired,
            alertsResolved,
            masterDownBudgetSec,
            failover: { node: failover?.labels.node ?? "", severity: failover?.labels.severity ?? "" },
            oldMasterRejoinedAsReplica: back?.role === "replica",
            webhookNotified,
        };
        return {
            ...report,
            correct:
                report.targetsUp === report.targetsTotal &&
                report.redisUp.every((r) => r.endsWith(" 1")) &&
                report.panelsWithoutData.length === 0 &&
                report.failover.node !== master &&
                report.failover.node !== "" &&
                report.oldMasterRejoinedAsReplica &&
                webhookNotified,
        };
    } finally {
        await m?.stop();
        hook.close();
    }
}
