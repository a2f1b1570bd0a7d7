import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { alertRules, renderAlertRules, RULES_FILE_NAME, type AlertRule } from "../../cloud-init";
import { topologyFromConfig } from "../../topology";
import { configWith } from "../helpers";
import { describeTier } from "../tiers";
import { PROMTOOL, promtoolMissing, tool } from "./promtool";

/**
 * Every alert rule, run by Prometheus's own rule engine (`promtool test rules`, Debian's 2.42: no fuzzy_compare,
 * time() starts at 0): one case that fires it with the exact labels and annotations, one that stays quiet. A rule
 * without both cases fails the coverage test, so a new alert cannot land untested.
 */

const t = topologyFromConfig(configWith("prod", {}), "redis-ha", "prod");
const C = t.cluster;
type Labels = Record<string, string>;

const target = (job: "node" | "redis" | "sentinel", node: string, more: Labels = {}): Labels => ({
    cluster: C,
    instance: `${node}:${String(t.monitoring.ports[job])}`,
    job,
    node,
    region: "us-east",
    role: "redis,sentinel",
    ...more,
});
const series = (metric: string, labels: Labels, values: string) => ({
    series: `${metric}{${Object.entries(labels)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(",")}}`,
    values,
});
/** The labels `max by (cluster, node, region, instance)` keeps. */
const down = (node: string): Labels => {
    const l = target("redis", node);
    return { cluster: l.cluster, instance: l.instance, node, region: l.region };
};
const rule = (name: string): AlertRule => {
    const r = alertRules(t).find((x) => x.alert === name);
    if (!r) throw new Error(`no rule ${name}`);
    return r;
};
const expand = (text: string, labels: Labels) =>
    text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_m, k: string) => labels[k] ?? "");

interface Case {
    alert: string;
    fires: boolean;
    /** Input step; 15 s unless a case needs hours. */
    interval?: string;
    input: { series: string; values: string }[];
    eval: string;
    /** Labels of the expected alert (without severity), when it fires. */
    labels?: Labels;
}

const master = (node: string, values: string) =>
    series("redis_instance_info", target("redis", node, { redis_role: "master" }), values);
const replica = (node: string, values: string) =>
    series("redis_instance_info", target("redis", node, { redis_role: "slave" }), values);
const up = (job: "node" | "redis" | "sentinel", node: string, values: string) =>
    series("up", target(job, node), values);
const redisUp = (node: string, values: string) => series("redis_up", target("redis", node), values);
const healthyPair = [
    redisUp("east-a", "1x40"),
    redisUp("east-b", "1x40"),
    up("redis", "east-a", "1x40"),
    up("redis", "east-b", "1x40"),
];
const lag = (value: string) =>
    series(
        "redis_connected_slave_lag_seconds",
        target("redis", "east-a", { slave_ip: "192.0.2.11", slave_port: "6379", slave_state: "online" }),
        value,
    );
const quorum = (ok: boolean) =>
    series(
        "redis_sentinel_master_ckquorum_status",
        target("sentinel", "east-a", {
            master_name: "mymaster",
            message: ok ? "OK 3 usable Sentinels" : "NOQUORUM 1 usable Sentinels",
        }),
        ok ? "1x40" : "0x40",
    );
const sentinelView = (node: string, address: string) =>
    series(
        "redis_sentinel_master_status",
        target("sentinel", node, { master_address: address, master_name: "mymaster", master_status: "ok" }),
        "1x40",
    );
const mem = (used: string, max: string) => [
    series("redis_memory_used_bytes", target("redis", "east-a"), used),
    series("redis_memory_max_bytes", target("redis", "east-a"), max),
];
const persistence = (rdb: string) => [
    series("redis_rdb_last_bgsave_status", target("redis", "east-a"), rdb),
    series("redis_aof_last_write_status", target("redis", "east-a"), "1x40"),
    series("redis_aof_last_bgrewrite_status", target("redis", "east-a"), "1x40"),
];
const disk = (fstype: string, avail: string) => [
    series(
        "node_filesystem_avail_bytes",
        target("node", "east-a", { device: "/dev/sda", fstype, mountpoint: "/" }),
        avail,
    ),
    series(
        "node_filesystem_size_bytes",
        target("node", "east-a", { device: "/dev/sda", fstype, mountpoint: "/" }),
        "100x40",
    ),
];
const cpus = ["0", "1"].map((cpu) =>
    series("node_cpu_seconds_total", target("node", "east-a", { cpu, mode: "idle" }), "0+10x80"),
);
const clock = (offset: string, sync: string) => [
    series("node_timex_offset_seconds", target("node", "east-a"), offset),
    series("node_timex_sync_status", target("node", "east-a"), sync),
];

const CASES: Case[] = [
    {
        alert: "RedisHaNoMaster",
        fires: true,
        input: [...healthyPair, replica("east-a", "1x40"), replica("east-b", "1x40")],
        eval: "5m",
        labels: { cluster: C },
    },
    {
        alert: "RedisHaNoMaster",
        fires: false,
        input: [...healthyPair, master("east-a", "1x40"), replica("east-b", "1x40")],
        eval: "5m",
    },
    {
        alert: "RedisHaMultipleMasters",
        fires: true,
        input: [master("east-a", "1x40"), master("east-b", "1x40")],
        eval: "5m",
        labels: { cluster: C },
    },
    {
        alert: "RedisHaMultipleMasters",
        fires: false,
        input: [master("east-a", "1x40"), replica("east-b", "1x40")],
        eval: "5m",
    },
    // The master's Redis dies at 150 s; its exporter still answers (redis_up 0) and the info series stops.
    {
        alert: "RedisHaMasterDown",
        fires: true,
        input: [redisUp("east-a", "1x10 0x30"), up("redis", "east-a", "1x40"), master("east-a", "1x10 _x30")],
        eval: "5m",
        labels: down("east-a"),
    },
    // The whole master node is gone: its exporter no longer answers either.
    {
        alert: "RedisHaMasterDown",
        fires: true,
        input: [redisUp("east-a", "1x10 _x30"), up("redis", "east-a", "1x10 0x30"), master("east-a", "1x10 _x30")],
        eval: "5m",
        labels: down("east-a"),
    },
    // A replica going down is not the master going down.
    {
        alert: "RedisHaMasterDown",
        fires: false,
        input: [
            redisUp("east-a", "1x40"),
            redisUp("east-b", "1x10 0x30"),
            master("east-a", "1x40"),
            replica("east-b", "1x10 _x30"),
        ],
        eval: "5m",
    },
    {
        alert: "RedisHaFailover",
        fires: true,
        input: [replica("east-b", "1x10 _x30"), master("east-b", "_x11 1x29")],
        eval: "5m",
        labels: target("redis", "east-b", { redis_role: "master" }),
    },
    {
        alert: "RedisHaFailover",
        fires: false,
        input: [master("east-a", "1x40"), replica("east-b", "1x40")],
        eval: "5m",
    },
    {
        alert: "RedisHaRedisDown",
        fires: true,
        input: [
            redisUp("east-a", "1x40"),
            redisUp("east-b", "1x10 0x30"),
            master("east-a", "1x40"),
            replica("east-b", "1x10 _x30"),
        ],
        eval: "5m",
        labels: down("east-b"),
    },
    {
        alert: "RedisHaRedisDown",
        fires: false,
        input: [redisUp("east-a", "1x10 0x30"), up("redis", "east-a", "1x40"), master("east-a", "1x10 _x30")],
        eval: "5m",
    },
    {
        alert: "RedisHaReplicaLinkDown",
        fires: true,
        input: [series("redis_master_link_up", target("redis", "east-b"), "0x40")],
        eval: "5m",
        labels: target("redis", "east-b"),
    },
    {
        alert: "RedisHaReplicaLinkDown",
        fires: false,
        input: [series("redis_master_link_up", target("redis", "east-b"), "1x40")],
        eval: "5m",
    },
    {
        alert: "RedisHaReplicationLag",
        fires: true,
        input: [lag(`${String(t.monitoring.thresholds.replicationLagSec + 5)}x40`)],
        eval: "5m",
        labels: target("redis", "east-a", { slave_ip: "192.0.2.11", slave_port: "6379", slave_state: "online" }),
    },
    {
        alert: "RedisHaReplicationLag",
        fires: false,
        input: [lag(`${String(t.monitoring.thresholds.replicationLagSec)}x40`)],
        eval: "5m",
    },
    {
        alert: "RedisHaTooFewInSyncReplicas",
        fires: true,
        input: [master("east-a", "1x40"), lag("30x40")],
        eval: "5m",
        labels: { cluster: C },
    },
    { alert: "RedisHaTooFewInSyncReplicas", fires: false, input: [master("east-a", "1x40"), lag("1x40")], eval: "5m" },
    {
        alert: "RedisHaSentinelQuorumLost",
        fires: true,
        input: [quorum(false)],
        eval: "5m",
        labels: target("sentinel", "east-a", { master_name: "mymaster", message: "NOQUORUM 1 usable Sentinels" }),
    },
    { alert: "RedisHaSentinelQuorumLost", fires: false, input: [quorum(true)], eval: "5m" },
    {
        alert: "RedisHaSentinelTilt",
        fires: true,
        input: [series("redis_sentinel_tilt", target("sentinel", "east-a"), "0x10 1x30")],
        eval: "5m",
        labels: target("sentinel", "east-a"),
    },
    {
        alert: "RedisHaSentinelTilt",
        fires: false,
        input: [series("redis_sentinel_tilt", target("sentinel", "east-a"), "0x40")],
        eval: "5m",
    },
    {
        alert: "RedisHaSentinelDisagreement",
        fires: true,
        input: [sentinelView("east-a", "192.0.2.10:6379"), sentinelView("ord-a", "192.0.2.11:6379")],
        eval: "5m",
        labels: { cluster: C },
    },
    {
        alert: "RedisHaSentinelDisagreement",
        fires: false,
        input: [sentinelView("east-a", "192.0.2.10:6379"), sentinelView("ord-a", "192.0.2.10:6379")],
        eval: "5m",
    },
    {
        alert: "RedisHaMemoryNearMax",
        fires: true,
        input: mem("95x40", "100x40"),
        eval: "9m",
        labels: target("redis", "east-a"),
    },
    { alert: "RedisHaMemoryNearMax", fires: false, input: mem("80x40", "100x40"), eval: "9m" },
    // maxmemory 0 means "no limit": no ratio, no alert.
    { alert: "RedisHaMemoryNearMax", fires: false, input: mem("95x40", "0x40"), eval: "9m" },
    {
        alert: "RedisHaRejectedConnections",
        fires: true,
        input: [series("redis_rejected_connections_total", target("redis", "east-a"), "0x10 1+1x30")],
        eval: "5m",
        labels: target("redis", "east-a"),
    },
    {
        alert: "RedisHaRejectedConnections",
        fires: false,
        input: [series("redis_rejected_connections_total", target("redis", "east-a"), "3x40")],
        eval: "5m",
    },
    {
        alert: "RedisHaPersistenceError",
        fires: true,
        input: persistence("1x10 0x30"),
        eval: "5m",
        labels: target("redis", "east-a", { check: "rdb_bgsave" }),
    },
    { alert: "RedisHaPersistenceError", fires: false, input: persistence("1x40"), eval: "5m" },
    {
        alert: "RedisHaExporterDown",
        fires: true,
        input: [up("node", "witness", "1x10 0x30")],
        eval: "5m",
        labels: target("node", "witness"),
    },
    { alert: "RedisHaExporterDown", fires: false, input: [up("node", "witness", "1x40")], eval: "5m" },
    // time() starts at 0: a backup recorded at 0 is older than the limit once the limit has passed.
    {
        alert: "RedisHaBackupStale",
        fires: true,
        interval: "1h",
        input: [series("redis_ha_backup_last_success_timestamp_seconds", target("node", "east-a"), "0x60")],
        eval: `${String(t.monitoring.thresholds.backupMaxAgeSec / 3600 + 1)}h`,
        labels: target("node", "east-a"),
    },
    {
        alert: "RedisHaBackupStale",
        fires: false,
        interval: "1h",
        input: [series("redis_ha_backup_last_success_timestamp_seconds", target("node", "east-a"), "0x60")],
        eval: `${String(t.monitoring.thresholds.backupMaxAgeSec / 3600 - 1)}h`,
    },
    {
        alert: "RedisHaNodeDiskFull",
        fires: true,
        input: disk("ext4", "5x40"),
        eval: "9m",
        labels: target("node", "east-a", { device: "/dev/sda", fstype: "ext4", mountpoint: "/" }),
    },
    { alert: "RedisHaNodeDiskFull", fires: false, input: disk("ext4", "50x40"), eval: "9m" },
    // The lab's overlay root (and tmpfs) are not the node's disk.
    { alert: "RedisHaNodeDiskFull", fires: false, input: disk("overlay", "5x40"), eval: "9m" },
    {
        alert: "RedisHaNodeMemoryLow",
        fires: true,
        input: [
            series("node_memory_MemAvailable_bytes", target("node", "east-a"), "5x40"),
            series("node_memory_MemTotal_bytes", target("node", "east-a"), "100x40"),
        ],
        eval: "9m",
        labels: target("node", "east-a"),
    },
    {
        alert: "RedisHaNodeMemoryLow",
        fires: false,
        input: [
            series("node_memory_MemAvailable_bytes", target("node", "east-a"), "50x40"),
            series("node_memory_MemTotal_bytes", target("node", "east-a"), "100x40"),
        ],
        eval: "9m",
    },
    {
        alert: "RedisHaNodeLoadHigh",
        fires: true,
        input: [series("node_load5", target("node", "east-a"), "5x80"), ...cpus],
        eval: "19m",
        labels: target("node", "east-a"),
    },
    {
        alert: "RedisHaNodeLoadHigh",
        fires: false,
        input: [series("node_load5", target("node", "east-a"), "3x80"), ...cpus],
        eval: "19m",
    },
    {
        alert: "RedisHaClockSkew",
        fires: true,
        input: clock("0.2x60", "1x60"),
        eval: "14m",
        labels: target("node", "east-a"),
    },
    // Unsynchronised and off at once: one alert, not two clashing series.
    {
        alert: "RedisHaClockSkew",
        fires: true,
        input: clock("0.2x60", "0x60"),
        eval: "14m",
        labels: target("node", "east-a"),
    },
    { alert: "RedisHaClockSkew", fires: false, input: clock("0.001x60", "1x60"), eval: "14m" },
];

/**
 * promtool evaluates every rule at `evaluation_interval` from 0 to each case's eval time: the cases that need hours
 * (backup age) go in a file of their own, evaluated hourly, or the run takes minutes.
 */
function promtoolTests(
    cases: readonly Case[],
    evaluationInterval = `${String(t.monitoring.scrapeIntervalSec)}s`,
): unknown {
    return {
        rule_files: [RULES_FILE_NAME],
        evaluation_interval: evaluationInterval,
        tests: cases.map((c) => {
            const r = rule(c.alert);
            const labels = { ...(c.labels ?? {}), severity: r.severity };
            return {
                name: `${c.alert} ${c.fires ? "fires" : "stays quiet"}`,
                interval: c.interval ?? "15s",
                input_series: c.input,
                alert_rule_test: [
                    {
                        eval_time: c.eval,
                        alertname: c.alert,
                        exp_alerts: c.fires
                            ? [
                                  {
                                      exp_labels: labels,
                                      exp_annotations: {
                                          summary: expand(r.summary, labels),
                                          description: expand(r.description, labels),
                                          runbook: `docs/monitoring.md#${c.alert.toLowerCase()}`,
                                      },
                                  },
                              ]
                            : [],
                    },
                ],
            };
        }),
    };
}

describe("alert rules (model)", () => {
    it("has a firing and a quiet promtool case for every rule", () => {
        for (const r of alertRules(t)) {
            expect(`${r.alert}: ${String(CASES.some((c) => c.alert === r.alert && c.fires))}`).toBe(`${r.alert}: true`);
            expect(`${r.alert}: ${String(CASES.some((c) => c.alert === r.alert && !c.fires))}`).toBe(
                `${r.alert}: true`,
            );
        }
    });

    it("takes thresholds from the stack config and scopes every selector to the cluster", () => {
        const other = topologyFromConfig(
            configWith("prod", { minReplicasMaxLagSec: 30, monitoringMemoryPercent: 75, minReplicasToWrite: 0 }),
            "redis-ha",
            "prod",
        );
        const byName = Object.fromEntries(alertRules(other).map((r) => [r.alert, r]));
        expect(byName.RedisHaReplicationLag.expr).toMatch(/> 30$/);
        expect(byName.RedisHaMemoryNearMax.expr).toMatch(/> 0\.75$/);
        // minReplicasToWrite 0: the master never refuses writes for lack of replicas, so there is nothing to alert on.
        expect(byName.RedisHaTooFewInSyncReplicas).toBeUndefined();
        for (const r of alertRules(t)) expect(`${r.alert}: ${r.expr}`).not.toMatch(/\{(?![^}]*cluster="redis-prod")/);
    });

    it("renders the same bytes for the same model, with a runbook per alert", () => {
        const text = renderAlertRules(t);
        expect(text).toBe(renderAlertRules(topologyFromConfig(configWith("prod", {}), "redis-ha", "prod")));
        const doc = parse(text) as { groups: { rules: { annotations: Record<string, string> }[] }[] };
        for (const r of doc.groups[0].rules)
            expect(Object.keys(r.annotations).sort()).toEqual(["description", "runbook", "summary"]);
    });
});

describeTier("alert rules (promtool)", promtoolMissing)("alert rules (promtool)", () => {
    let dir: string;
    beforeAll(() => {
        dir = mkdtempSync(join(tmpdir(), "redis-ha-rules-"));
        writeFileSync(join(dir, RULES_FILE_NAME), renderAlertRules(t));
        writeFileSync(
            join(dir, "tests.yml"),
            stringify(promtoolTests(CASES.filter((c) => c.interval === undefined)), { lineWidth: 0 }),
        );
        writeFileSync(
            join(dir, "hours.yml"),
            stringify(
                promtoolTests(
                    CASES.filter((c) => c.interval !== undefined),
                    "1h",
                ),
                { lineWidth: 0 },
            ),
        );
    });
    afterAll(() => {
        rmSync(dir, { recursive: true, force: true });
    });

    it("passes promtool check rules", () => {
        const r = tool(PROMTOOL, ["check", "rules", RULES_FILE_NAME], dir);
        expect(r.out).toContain(`SUCCESS: ${String(alertRules(t).length)} rules found`);
        expect(r.status).toBe(0);
    });

    it("fires each alert in its firing case and stays quiet in the others (promtool test rules)", () => {
        const started = Date.now();
        const r = tool(PROMTOOL, ["test", "rules", "tests.yml", "hours.yml"], dir);
        process.stdout.write(
            `promtool test rules: ${String(CASES.length)} cases in ${String(Date.now() - started)} ms\n`,
        );
        expect(r.out).toContain("SUCCESS");
        expect(r.status).toBe(0);
    });

    it("fails a case whose expectation is wrong (the harness can fail)", () => {
        const broken = promtoolTests(CASES) as { tests: { alert_rule_test: { exp_alerts: unknown[] }[] }[] };
        broken.tests = [broken.tests[0]];
        broken.tests[0].alert_rule_test[0].exp_alerts = [];
        writeFileSync(join(dir, "broken.yml"), stringify(broken));
        const r = tool(PROMTOOL, ["test", "rules", "broken.yml"], dir);
        expect(r.status).toBe(1);
        expect(r.out).toContain("RedisHaNoMaster");
    });
});
