import { spawnSync } from "node:child_process";
import {
    calendarMaxGapSec,
    isCalendarEvent,
    parseStackConfig,
    planBackup,
    planNodes,
    preferredMaster,
    topologyFromConfig,
} from "../../topology";
import { configProblems, configWith, PROD_NODES } from "../helpers";

const build = (changes: Record<string, unknown>, stack = "prod") =>
    topologyFromConfig(configWith(stack, changes), "redis-ha", stack);

describe("backup.* keys", () => {
    // [changes, the one line expected]
    const BAD: [Record<string, unknown>, RegExp][] = [
        [{ "backup.enabled": "yes" }, /^redis-ha:backup\.enabled: must be true or false$/],
        [
            { "backup.schedule": "every day" },
            /^redis-ha:backup\.schedule: must be a systemd calendar event such as "daily"/,
        ],
        [{ "backup.schedule": "*-*-* 25:00:00" }, /^redis-ha:backup\.schedule: must be a systemd calendar event/],
        [{ "backup.retentionDays": 0 }, /^redis-ha:backup\.retentionDays: must be at least 1 \(days a backup is kept/],
        [{ "backup.retentionDays": 1.5 }, /^redis-ha:backup\.retentionDays: must be a whole number/],
        [{ "backup.compress": "lzf" }, /^redis-ha:backup\.compress: must be true or false$/],
        [{ "backup.region": "Chicago" }, /^redis-ha:backup\.region: must be a Linode region id such as us-east/],
        [{ "backup.color": "red" }, /^redis-ha:backup\.color: unknown key; remove it or correct its spelling/],
        // `pulumi config set --path backup.enabled true` stores an object; Pulumi.yaml's flat defaults would race it.
        [
            { backup: '{"enabled":true}' },
            /^redis-ha:backup: set the keys one by one without --path .*backup\.enabled, backup\.schedule/,
        ],
    ];
    it.each(BAD)("refuses %j with one line naming the key and the fix", (changes, expected) => {
        const lines = configProblems(changes);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(expected);
    });

    it("reads the flat keys the CLI passes, as strings, into one plan", () => {
        const t = build({
            "backup.enabled": true,
            "backup.schedule": "*-*-* 00/6:00:00",
            "backup.retentionDays": 30,
            "backup.compress": true,
            "backup.region": "us-iad",
        });
        expect(t.backup).toEqual({
            enabled: true,
            schedule: "*-*-* 00/6:00:00",
            retentionDays: 30,
            compress: true,
            region: "us-iad",
            prefix: "redis-prod",
            nodes: ["ord-a", "east-b"],
            allowMaster: false,
        });
    });

    it("is off by default and then puts no node in charge", () => {
        const t = build({});
        expect(t.backup.enabled).toBe(false);
        expect(t.backup.nodes).toEqual([]);
        expect(t.backup.region).toBe("us-ord");
    });
});

describe("backup placement", () => {
    const nodes = (list: { name: string; region: string; roles: string[] }[]) => ({
        nodes: list,
        "backup.enabled": true,
    });
    it("takes the DR region's replica first, another replica second, and defaults the bucket to the DR region", () => {
        const t = build(nodes(PROD_NODES));
        expect(t.backup.nodes).toEqual(["ord-a", "east-b"]);
        expect(t.backup.region).toBe("us-ord");
    });

    it("falls back to the preferred master as second when it is the only other Redis node", () => {
        const t = build(
            nodes([
                { name: "na", region: "us-east", roles: ["redis", "sentinel"] },
                { name: "nb", region: "us-east", roles: ["redis", "sentinel"] },
                { name: "nc", region: "us-east", roles: ["sentinel"] },
            ]),
        );
        expect(t.backup.nodes).toEqual(["nb", "na"]);
        expect(t.backup.region).toBe("us-east");
        expect(t.backup.allowMaster).toBe(false);
    });

    // The validators refuse a stack without a replica today; the planner still never lets a master back itself up
    // while another Redis node exists, and does when none does.
    it("lets the master back itself up only when it is the only Redis node", () => {
        const config = parseStackConfig(
            configWith(
                "prod",
                nodes([
                    { name: "na", region: "us-east", roles: ["redis", "sentinel"] },
                    { name: "nb", region: "us-east", roles: ["sentinel"] },
                    { name: "nc", region: "us-east", roles: ["sentinel"] },
                ]),
            ),
        );
        const master = preferredMaster(config);
        if (!master) throw new Error("no master");
        const plan = planBackup(config, "c", planNodes(config, "c", master), master.name);
        expect(plan.nodes).toEqual(["na"]);
        expect(plan.allowMaster).toBe(true);
    });
});

describe("backup.schedule syntax", () => {
    const GOOD = [
        "daily",
        "hourly",
        "weekly",
        "*-*-* 03:30:00",
        "*-*-* 00/6:00:00",
        "*-*-* 1,13:15",
        "Mon..Fri 02:00",
        "Sat,Sun *-*-* 04:00:00",
        "2026-*-01 00:00:00",
        "*-*-* *:0/15:00",
        "*-12-24 18:00",
    ];
    const BAD = [
        "",
        " daily",
        "every day",
        "*-*-* 24:00:00",
        "*-*-* 03:60",
        "Funday 03:00",
        "*-13-01 00:00",
        "03",
        "*-*-* 3:30 x",
    ];

    it("accepts and refuses as the table says", () => {
        expect(GOOD.filter((s) => !isCalendarEvent(s))).toEqual([]);
        expect(BAD.filter(isCalendarEvent)).toEqual([]);
    });

    // Never looser than systemd: everything accepted here, systemd-analyze accepts too (it runs on the nodes' Debian).
    const analyze = spawnSync("systemd-analyze", ["--version"]).status === 0;
    (analyze ? it : it.skip)("agrees with systemd-analyze calendar on every accepted example", () => {
        for (const s of GOOD) {
            const r = spawnSync("systemd-analyze", ["calendar", s], { encoding: "utf8" });
            expect(`${s}: ${String(r.status)}`).toBe(`${s}: 0`);
        }
        for (const s of ["every day", "*-*-* 24:00:00", "Funday 03:00", "*-13-01 00:00"]) {
            const r = spawnSync("systemd-analyze", ["calendar", s], { encoding: "utf8" });
            expect(`${s}: ${String(r.status)}`).not.toBe(`${s}: 0`);
        }
    });

    // The backup alert waits twice the longest gap between runs: the gaps systemd's own next elapses show.
    (analyze ? it : it.skip)("computes the longest gap between runs as systemd-analyze's next elapses show it", () => {
        const measured = GOOD.filter((s) => calendarMaxGapSec(s) !== undefined).map((s) => {
            const r = spawnSync("systemd-analyze", ["calendar", "--iterations=60", s], {
                encoding: "utf8",
                env: { ...process.env, TZ: "UTC" },
            });
            const times = [...r.stdout.matchAll(/(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC/g)].map((m) =>
                Date.parse(`${m[1].replace(" ", "T")}Z`),
            );
            const widest = Math.max(...times.slice(1).map((t, i) => (t - times[i]) / 1000));
            return `${s}: ${String(widest)}`;
        });
        expect(measured).toHaveLength(GOOD.length - 1); // all but the one fixed to a past year
        expect(measured).toEqual(
            GOOD.filter((s) => calendarMaxGapSec(s) !== undefined).map((s) => `${s}: ${String(calendarMaxGapSec(s))}`),
        );
    });
});
