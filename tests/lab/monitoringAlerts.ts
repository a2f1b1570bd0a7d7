/**
 * The alert drill on the prod stack, through the command CI and a person run:
 * `npm run lab -- drill --stack prod --scenario alert --json` (lab/alertDrill.ts), run last by tests/lab/drill.e2e.test.ts
 * on the prod lab its drills used (the drill reuses a lab that is up to date; one boot for both: the suite's time
 * budget), so the master it kills is whichever node is master then. Every node runs the exporters its
 * user-data installs; a real Prometheus and Alertmanager (Debian's, in the lab's router namespace, configured exactly
 * as the monitoring node renders them) scrape all of them; the master's machine loses power, RedisHaMasterDown and
 * RedisHaFailover reach Alertmanager (read through its API) and the webhook, and RedisHaMasterDown resolves once the
 * machine is back and its Redis has rejoined as a replica.
 *
 * Debian's prometheus + prometheus-alertmanager are required; elsewhere it is skipped (under CI=true it fails).
 */
import { existsSync } from "node:fs";
import type { AlertDrillReport } from "../../lab/alertDrill";
import { ALERTMANAGER_BIN, PROMETHEUS_BIN } from "../../lab/monitoring";
import { topologyFromConfig } from "../../topology";
import { configWith } from "../helpers";
import { describeTier, firstMissing } from "../tiers";
import { labCli } from "./labTier";

const missing = firstMissing([
    [existsSync(PROMETHEUS_BIN), "Prometheus is not installed (apt package prometheus)"],
    [existsSync(ALERTMANAGER_BIN), "Alertmanager is not installed (apt package prometheus-alertmanager)"],
]);

/** The alert drill, as a describe block of the caller's prod lab suite (the lab is up; the caller takes it down). */
export function monitoringAlerts(): void {
    describeTier("exporters and alerts", missing)("alert drill", () => {
        const t = topologyFromConfig(configWith("prod", {}), "redis-ha", "prod");
        let report: AlertDrillReport;
        let status: number | null;
        let started = 0;

        beforeAll(() => {
            started = Date.now();
            const r = labCli(["drill", "--stack", "prod", "--scenario", "alert", "--json"], { allowFailure: true });
            status = r.status;
            report = JSON.parse(r.stdout) as AlertDrillReport;
            process.stdout.write(`alert drill: ${JSON.stringify(report)}\n${r.stderr.slice(-2000)}\n`);
        });
        afterAll(() => {
            process.stdout.write(`alert drill: ${String(Math.round((Date.now() - started) / 1000))} s of lab time\n`);
        });

        it("scrapes every exporter before the fault: Redis and Sentinel through the password file, nodes, labels from the model", () => {
            expect(report.targetsUp).toBe(report.targetsTotal);
            const expected = t.nodes.flatMap((n) => [
                `node ${n.name} ${n.region} ${[...n.roles].join(",")} up`,
                ...(n.runsRedis ? [`redis ${n.name} ${n.region} ${[...n.roles].join(",")} up`] : []),
                ...(n.runsSentinel ? [`sentinel ${n.name} ${n.region} ${[...n.roles].join(",")} up`] : []),
            ]);
            expect(report.targets.map((x) => `${x.job} ${x.node} ${x.region} ${x.role} ${x.health}`).sort()).toEqual(
                expected.sort(),
            );
            for (const x of report.targets) expect(x.cluster).toBe(t.cluster);
            // The exporters log in: a wrong or unreadable password file would give redis_up 0.
            expect(report.redisUp).toEqual(
                t.nodes
                    .flatMap((n) => [
                        ...(n.runsRedis ? [`redis ${n.name} 1`] : []),
                        ...(n.runsSentinel ? [`sentinel ${n.name} 1`] : []),
                    ])
                    .sort(),
            );
            // The exporter's own role label arrives as redis_role (the scrape config renames it): one master, the one the
            // drill then finds and kills.
            expect(report.mastersSeen).toEqual([report.killed]);
            // Every panel of the shipped Grafana dashboard shows data from these exporters.
            expect(report.panelsWithoutData).toEqual([]);
        });

        it("fires RedisHaMasterDown and RedisHaFailover in Alertmanager when the master's node dies, then resolves MasterDown", () => {
            expect(t.nodes.find((n) => n.name === report.killed)?.runsRedis).toBe(true);
            expect(report.alertsFired.RedisHaMasterDown).toBeGreaterThan(0);
            expect(report.alertsFired.RedisHaFailover).toBeGreaterThan(0);
            expect(report.alertsResolved.RedisHaMasterDown).toBeGreaterThan(report.alertsFired.RedisHaMasterDown);
            expect(report.failover.node).not.toBe(report.killed);
            expect(t.nodes.find((n) => n.name === report.failover.node)?.runsRedis).toBe(true);
            expect(report.failover.severity).toBe("info");
            expect(report.oldMasterRejoinedAsReplica).toBe(true);
            // Alertmanager routed the alerts to the team's webhook (after group_wait).
            expect(report.webhookNotified).toBe(true);
            // The bound (down-after + scrape interval + for: + 30 s of the kill) is a benchmark: printed above.
            expect(report.correct).toBe(true);
            expect(status).toBe(0);
        });
    });
}
