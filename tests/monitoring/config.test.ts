import { topologyFromConfig } from "../../topology";
import { configProblems, configWith } from "../helpers";

const build = (changes: Record<string, unknown>) => topologyFromConfig(configWith("prod", changes), "redis-ha", "prod");

const hook = "https://hooks.example.com/T0/abc";
const email = {
    monitoringEmailTo: "oncall@example.com",
    monitoringEmailFrom: "am@example.com",
    monitoringSmtpSmarthost: "smtp.example.com:587",
};

// Each bad monitoring input gives exactly one line, naming the key and the fix.
const BAD: [string, Record<string, unknown>, string][] = [
    [
        "a scraper network that is the whole internet",
        { monitoringCidrs: ["0.0.0.0/0"] },
        "redis-ha:monitoringCidrs[0]: must not open the exporters to the whole internet; list your Prometheus servers",
    ],
    [
        "a scraper network wider than a /16",
        { monitoringCidrs: ["10.0.0.0/8"] },
        "redis-ha:monitoringCidrs: cover more than a /16 of IPv4; list only your Prometheus servers or set allowWideCidrs: true",
    ],
    [
        "a scraper entry that is not a CIDR",
        { monitoringCidrs: ["prometheus.example.com"] },
        "redis-ha:monitoringCidrs[0]: must be a CIDR such as 198.51.100.10/32",
    ],
    ["enabled as a string", { monitoringEnabled: "yes" }, "redis-ha:monitoringEnabled: must be true or false"],
    [
        "a monitoring node with no receiver",
        { monitoringEnabled: true },
        "redis-ha:monitoringEnabled: needs a receiver so alerts reach someone; set monitoringWebhookUrl (pulumi config set --secret) or monitoringEmailTo with monitoringEmailFrom and monitoringSmtpSmarthost",
    ],
    [
        "a bad region",
        { monitoringEnabled: true, monitoringWebhookUrl: hook, monitoringRegion: "Frankfurt" },
        "redis-ha:monitoringRegion: must be a Linode region id such as us-east or eu-central",
    ],
    [
        "a bad plan",
        { monitoringPlan: "small" },
        "redis-ha:monitoringPlan: must be a Linode plan id such as g6-standard-1",
    ],
    [
        "a scrape interval out of range",
        { monitoringScrapeIntervalSec: 1 },
        "redis-ha:monitoringScrapeIntervalSec: must be at least 5 (seconds between scrapes, 5-300)",
    ],
    [
        "a memory threshold of 100 %",
        { monitoringMemoryPercent: 100 },
        "redis-ha:monitoringMemoryPercent: must be at most 99 (percent of maxmemory that raises the memory alert, 50-99)",
    ],
    [
        "a negative backup age",
        { monitoringBackupMaxAgeHours: -1 },
        "redis-ha:monitoringBackupMaxAgeHours: must be at least 0 (hours after the last good backup that raise the backup alert, 1-720, or 0 for twice the backup schedule)",
    ],
    [
        "a webhook that is not a URL",
        { monitoringEnabled: true, monitoringWebhookUrl: "hooks.example.com" },
        "redis-ha:monitoringWebhookUrl: must be an http(s) URL such as https://hooks.example.com/alerts",
    ],
    [
        "a webhook without a monitoring node",
        { monitoringWebhookUrl: hook },
        "redis-ha:monitoringWebhookUrl: applies only with monitoringEnabled: true; enable it or remove the key",
    ],
    [
        "email without its relay",
        { monitoringEnabled: true, ...email, monitoringSmtpSmarthost: undefined },
        "redis-ha:monitoringSmtpSmarthost: is required when monitoringEmailTo and monitoringEmailFrom is set (email alerts need To, From and the SMTP relay)",
    ],
    [
        "a bad email address",
        { monitoringEnabled: true, ...email, monitoringEmailTo: "oncall" },
        "redis-ha:monitoringEmailTo: must be an email address such as oncall@example.com",
    ],
    [
        "a relay without a port",
        { monitoringEnabled: true, ...email, monitoringSmtpSmarthost: "smtp.example.com" },
        "redis-ha:monitoringSmtpSmarthost: must be host:port such as smtp.example.com:587",
    ],
    [
        "an SMTP password without a relay",
        { monitoringSmtpPassword: "pw" },
        "redis-ha:monitoringSmtpPassword: applies only with monitoringSmtpSmarthost; set the relay or remove the password",
    ],
];

describe("monitoring config", () => {
    it.each(BAD)("refuses %s with one line", (_what, changes, line) => {
        expect(configProblems(changes)).toEqual([line]);
    });

    it("raises the backup alert after two missed runs of backup.schedule, or after monitoringBackupMaxAgeHours", () => {
        const maxAge = (changes: Record<string, unknown>) =>
            build(changes).monitoring.thresholds.backupMaxAgeSec / 3600;
        expect(maxAge({})).toBe(48);
        expect(maxAge({ "backup.schedule": "Mon,Thu *-*-* 03:30" })).toBe(2 * 96);
        expect(maxAge({ "backup.schedule": "*-*-* 0/6:00" })).toBe(12);
        expect(maxAge({ "backup.schedule": "*-*-* 0/6:00", monitoringBackupMaxAgeHours: 30 })).toBe(30);
    });

    it("plans exporters for every stack and a monitoring node only when enabled", () => {
        const off = build({});
        expect(off.monitoring.server).toBeUndefined();
        expect(off.monitoring.ports).toEqual({ node: 9100, redis: 9121, sentinel: 9355 });
        expect(off.monitoring.thresholds).toEqual({
            replicationLagSec: 10,
            minReplicasToWrite: 1,
            memoryPercent: 90,
            backupMaxAgeSec: 48 * 3600,
            failoverBudgetSec: 15,
        });
        const on = build({
            monitoringEnabled: true,
            monitoringWebhookUrl: hook,
            ...email,
            monitoringSmtpPassword: "x",
        });
        expect(on.monitoring.server).toEqual({
            region: "us-east",
            type: "g6-standard-1",
            label: "redis-prod-monitoring",
            firewallLabel: "redis-prod-mon-fw",
            tags: ["redis-ha", "cluster:redis-prod", "role:monitoring"],
            uiPorts: { prometheus: 9090, alertmanager: 9093 },
            receivers: {
                webhook: true,
                email: {
                    to: "oncall@example.com",
                    from: "am@example.com",
                    smarthost: "smtp.example.com:587",
                    auth: true,
                },
            },
        });
        // Secrets never enter the model: it is printed by review and read by everything.
        expect(JSON.stringify(on)).not.toContain(hook);
        expect(build({ monitoringEnabled: true, ...email, monitoringRegion: "us-ord" }).monitoring.server?.region).toBe(
            "us-ord",
        );
    });
});
