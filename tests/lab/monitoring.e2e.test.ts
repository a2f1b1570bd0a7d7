/**
 * In the lab (dev stack): every node runs the exporters its user-data installs, a real Prometheus and Alertmanager
 * (Debian's, in the lab's router namespace, configured exactly as the monitoring node renders it) scrape all of them,
 * and a real fault, the master's machine losing power, makes RedisHaMasterDown and RedisHaFailover reach Alertmanager
 * (read through its API), after which RedisHaMasterDown resolves when the machine is back and its Redis has rejoined
 * as a replica, and Alertmanager delivers RedisHaFailover to the webhook receiver.
 *
 * Why not kill only Redis: the start guard then hands mastership over and restarts Redis as a replica within a few
 * seconds, shorter than a scrape plus the alert's `for:`; a crash that heals itself is a RedisHaFailover (info), not a
 * page.
 *
 * Uses the lab's global resources: run under the shared lock (`flock /tmp/redis-ha-lab.lock npx jest <this file>`).
 * Root, the lab's tools and Debian's prometheus + prometheus-alertmanager are required; elsewhere (or with
 * RHL_LAB=skip) it is skipped.
 */
import { existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { labNode, redisStatus } from "../../lab/labCluster";
import {
    ALERTMANAGER_BIN,
    amAlerts,
    PROMETHEUS_BIN,
    promQuery,
    promTargets,
    startLabMonitoring,
    type LabMonitoring,
} from "../../lab/monitoring";
import { DASHBOARD_ROWS } from "../../cloud-init";
import { bootNode, readNodeState, stopNode, waitForCloudInit } from "../../lab/nodes";
import { sleep } from "../../lab/processes";
import { LAB_TOOLS } from "../../lab/preflight";
import { prepareLabStack, type LabStack } from "../../lab/stack";
import { topologyFromConfig, type Topology } from "../../topology";
import { configWith } from "../helpers";
import { describeTier, firstMissing } from "../tiers";
import { describeLab, labCli } from "./labTier";

const missing = firstMissing([
    [existsSync(PROMETHEUS_BIN), "Prometheus is not installed (apt package prometheus)"],
    [existsSync(ALERTMANAGER_BIN), "Alertmanager is not installed (apt package prometheus-alertmanager)"],
]);
const describeMonitoring =
    missing === undefined
        ? describeLab("lab dev: exporters and alerts", LAB_TOOLS)
        : describeTier("lab dev: exporters and alerts", missing);
jest.setTimeout(900_000);

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
    throw new Error(
        `timed out after ${String(timeoutMs / 1000)} s waiting for ${what}${last ? ` (last error: ${last})` : ""}`,
    );
}

interface Notification {
    status: string;
    alerts: { status: string; labels: Record<string, string> }[];
}

describeMonitoring("lab dev: exporters and alerts", () => {
    let s: LabStack;
    let t: Topology;
    let m: LabMonitoring | undefined;
    const received: Notification[] = [];
    // Alertmanager's webhook target: a receiver on the host's own lab address (the router reaches it, nothing else).
    const hook = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString("utf8")));
        req.on("end", () => {
            received.push(JSON.parse(body) as Notification);
            res.end("ok");
        });
    });
    const started = Date.now();

    beforeAll(async () => {
        labCli(["down"]);
        labCli(["up", "--stack", "dev"]);
        s = await prepareLabStack("dev");
        await new Promise<void>((resolve) => hook.listen(0, s.network.hostAddress, resolve));
        const hookUrl = `http://${s.network.hostAddress}:${String((hook.address() as AddressInfo).port)}/alerts`;
        // The dev stack's model with a monitoring node and a short scrape interval (the nodes' user-data does not
        // depend on either), so the lab proves the alert path in seconds rather than minutes.
        t = topologyFromConfig(
            configWith("dev", {
                monitoringEnabled: true,
                monitoringWebhookUrl: hookUrl,
                monitoringScrapeIntervalSec: 5,
            }),
            "redis-ha",
            "dev",
        );
        m = await startLabMonitoring(s, { topology: t, secrets: { webhookUrl: hookUrl } });
    });
    afterAll(async () => {
        await m?.stop();
        hook.close();
        labCli(["down"]);
        process.stdout.write(
            `monitoring lab test: ${String(Math.round((Date.now() - started) / 1000))} s of lab time\n`,
        );
    });

    it("scrapes every exporter: Redis and Sentinel through the password file, nodes, labels from the model", async () => {
        if (!m) throw new Error("monitoring did not start");
        const mon = m;
        const t0 = Date.now();
        const targets = await until("every target up", 90_000, async () => {
            const all = await promTargets(mon);
            return all.length === mon.targetsTotal && all.every((x) => x.health === "up") ? all : undefined;
        });
        process.stdout.write(
            `all ${String(targets.length)} targets up ${String(Date.now() - t0)} ms after Prometheus started\n`,
        );
        expect(targets.map((x) => `${x.labels.job} ${x.labels.node}`).sort()).toEqual(
            s.topology.nodes.flatMap((n) => ["node", "redis", "sentinel"].map((j) => `${j} ${n.name}`)).sort(),
        );
        for (const x of targets)
            expect(x.labels).toMatchObject({ cluster: t.cluster, region: "us-east", role: "redis,sentinel" });
        // The exporters log in: a wrong or unreadable password file would give redis_up 0.
        const up = await until("redis_up of every node", 30_000, async () => {
            const r = await promQuery(mon, "redis_up");
            return r.length === s.nodes.length * 2 ? r : undefined;
        });
        expect(up.map((r) => `${r.metric.job} ${r.metric.node} ${String(r.value)}`).sort()).toEqual(
            s.nodes.flatMap((n) => [`redis ${n.name} 1`, `sentinel ${n.name} 1`]).sort(),
        );
        const quorum = await promQuery(mon, "redis_sentinel_master_ckquorum_status");
        expect(quorum.map((r) => r.value)).toEqual(s.nodes.map(() => 1));
        // The exporter's own role label arrives as redis_role (the scrape config renames it): one master.
        const masters = await promQuery(mon, `redis_instance_info{redis_role="master"}`);
        expect(masters.map((r) => r.metric.node)).toEqual([s.topology.preferredMaster]);
        expect(await promQuery(mon, `redis_instance_info{exported_role!=""}`)).toEqual([]);
        // Every panel of the shipped Grafana dashboard shows data from these exporters (rates need two scrapes).
        for (const p of DASHBOARD_ROWS.flatMap((r) => r.panels).filter((x) => x.mayBeEmpty !== true)) {
            const series = await until(`data for the dashboard panel "${p.title}"`, 30_000, async () => {
                const r = await promQuery(mon, p.expr.replaceAll("$cluster", t.cluster));
                return r.length > 0 ? r : undefined;
            });
            expect(`${p.title}: ${String(series.length > 0)}`).toBe(`${p.title}: true`);
        }
    });

    it("fires RedisHaMasterDown and RedisHaFailover in Alertmanager when the master's node dies, then resolves MasterDown", async () => {
        if (!m) throw new Error("monitoring did not start");
        const mon = m;
        const master = (await redisStatus(s)).find((n) => n.role === "master")?.name;
        expect(master).toBe(s.topology.preferredMaster);
        expect((await amAlerts(mon)).filter((a) => a.labels.alertname.startsWith("RedisHaMaster"))).toEqual([]);

        const fault = Date.now();
        await stopNode(String(master), { mode: "kill" });
        const fired: Record<string, number> = {};
        const active = (name: string, node?: string) => async () => {
            const hit = (await amAlerts(mon)).find(
                (a) => a.labels.alertname === name && (node === undefined || a.labels.node === node),
            );
            return hit ? (Date.now() - fault) / 1000 : undefined;
        };
        fired.RedisHaMasterDown = await until(
            "RedisHaMasterDown in Alertmanager",
            120_000,
            active("RedisHaMasterDown", master),
        );
        fired.RedisHaFailover = await until("RedisHaFailover in Alertmanager", 120_000, active("RedisHaFailover"));
        const failover = (await amAlerts(mon)).find((a) => a.labels.alertname === "RedisHaFailover");
        expect(failover?.labels.node).not.toBe(master);
        expect(failover?.labels.severity).toBe("info");

        // Power back: the node boots from its disk, and the start guard brings Redis back as a replica of the new master.
        const state = readNodeState(String(master));
        if (!state) throw new Error(`${String(master)} has no state on disk`);
        await bootNode(labNode(s, String(master)), state.imageDir);
        const boot = await waitForCloudInit(String(master), 300_000);
        expect(boot.ok).toBe(true);
        const resolved = await until("RedisHaMasterDown resolved", 180_000, async () =>
            (await active("RedisHaMasterDown", master)()) === undefined ? (Date.now() - fault) / 1000 : undefined,
        );
        const back = (await redisStatus(s)).find((n) => n.name === master);
        expect(back?.role).toBe("replica");

        const budget =
            s.topology.sentinel.downAfterMs / 1000 +
            t.monitoring.scrapeIntervalSec +
            t.monitoring.scrapeIntervalSec +
            30;
        const targets = await promTargets(mon);
        process.stdout.write(
            `${JSON.stringify({
                targetsUp: targets.filter((x) => x.health === "up").length,
                targetsTotal: mon.targetsTotal,
                alertsFired: fired,
                masterDownResolvedSec: resolved,
                masterDownBudgetSec: budget,
            })}\n`,
        );
        expect(fired.RedisHaMasterDown).toBeLessThan(budget);

        // Alertmanager routed the alerts to the team's webhook (after group_wait). RedisHaFailover stays firing for its
        // 10-minute window; a RedisHaMasterDown that resolves within group_wait is never sent (Alertmanager sends no
        // resolved-only notification for an alert it never notified as firing).
        const paged = await until("a webhook notification for RedisHaFailover", 90_000, () =>
            Promise.resolve(
                received.some((n) =>
                    n.alerts.some((a) => a.labels.alertname === "RedisHaFailover" && a.status === "firing"),
                )
                    ? true
                    : undefined,
            ),
        );
        expect(paged).toBe(true);
    });
});
