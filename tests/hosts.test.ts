import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { parse } from "yaml";
import {
    filesInUserData,
    HOST_PATHS,
    renderMonitoringUserData,
    renderUserData,
    SECURITY_ORIGINS,
    UNATTENDED_UPGRADES_PACKAGE,
    upgradeCalendar,
    type RenderInput,
} from "../cloud-init";
import { deliveredFiles, lockPasswordLines } from "../components/nodeFiles";
import { readStackConfig } from "../engine/stackFile";
import {
    parseStackConfig,
    planSecurityUpgrades,
    topologyFromConfig,
    validateSecurityUpgrades,
    type Topology,
} from "../topology";
import { configProblems, configWith } from "./helpers";
import { itTier } from "./tiers";

/** Host hardening (issue 13 item 3): what the user-data of every node and of the monitoring node carries. */

const MONITORING = {
    monitoringEnabled: true,
    monitoringWebhookUrl: "https://hooks.example.com/x",
    monitoringCidrs: ["198.51.100.7/32"],
};
const build = (changes: Record<string, unknown> = {}, stack = "prod"): Topology =>
    topologyFromConfig(configWith(stack, { tls: false, ...changes }), "redis-ha", stack);
const addresses = (t: Topology) => Object.fromEntries(t.nodes.map((n, i) => [n.name, `192.0.2.${String(10 + i)}`]));
const secrets = { redisPassword: "redis-password-0123456789", sentinelPassword: "sentinel-password-0123456789" };
const input = (t: Topology, node: string): RenderInput => ({ topology: t, node, addresses: addresses(t), secrets });
const fileOf = (userData: string, path: string) => {
    const f = filesInUserData(userData).find((x) => x.path === path);
    if (!f) throw new Error(`no ${path} in user-data`);
    return f;
};

describe("upgrade slots", () => {
    it("puts the nodes one hour apart in node order from startHourUtc, the monitoring node last", () => {
        const t = build(MONITORING);
        expect(t.nodes.map((n) => n.name)).toEqual(["east-a", "east-b", "ord-a", "ord-b", "witness"]);
        expect(t.securityUpgrades).toEqual({
            enabled: true,
            startHourUtc: 3,
            nodeHourUtc: { "east-a": 3, "east-b": 4, "ord-a": 5, "ord-b": 6, witness: 7 },
            monitoringHourUtc: 8,
        });
        expect(build({ "securityUpgrades.startHourUtc": 22 }).securityUpgrades).toEqual({
            enabled: true,
            startHourUtc: 22,
            nodeHourUtc: { "east-a": 22, "east-b": 23, "ord-a": 0, "ord-b": 1, witness: 2 },
        });
    });

    it("never gives two machines the same hour while they fit in a day", () => {
        const base = parseStackConfig(configWith("prod", {}));
        fc.assert(
            fc.property(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 1, max: 23 }), fc.boolean(), (h, n, mon) => {
                const nodes = Array.from({ length: n }, (_, i) => ({ ...base.nodes[0], name: `n-${String(i)}` }));
                const config = {
                    ...base,
                    nodes,
                    monitoringEnabled: mon,
                    securityUpgrades: { enabled: true, startHourUtc: h },
                };
                const plan = planSecurityUpgrades(config, nodes);
                const hours = [
                    ...Object.values(plan.nodeHourUtc),
                    ...(plan.monitoringHourUtc === undefined ? [] : [plan.monitoringHourUtc]),
                ];
                expect(hours).toHaveLength(n + (mon ? 1 : 0));
                expect(new Set(hours).size).toBe(hours.length);
                expect(hours[0]).toBe(h);
                expect(validateSecurityUpgrades(config)).toEqual([]);
            }),
        );
    });

    it("refuses more machines than hours in a day, naming the key and the way out", () => {
        const base = parseStackConfig(configWith("prod", {}));
        const nodes = Array.from({ length: 24 }, (_, i) => ({ ...base.nodes[0], name: `n-${String(i)}` }));
        const config = { ...base, nodes, monitoringEnabled: true };
        expect(validateSecurityUpgrades(config)).toEqual([
            {
                key: "redis-ha:securityUpgrades.enabled",
                message:
                    "25 machines need 25 hourly upgrade slots and a day has 24; run: pulumi config set securityUpgrades.enabled false, and upgrade the nodes one at a time yourself",
            },
        ]);
        expect(validateSecurityUpgrades({ ...config, securityUpgrades: { enabled: false, startHourUtc: 3 } })).toEqual(
            [],
        );
    });
});

describe("securityUpgrades config", () => {
    it.each([
        [
            { "securityUpgrades.startHourUtc": 24 },
            "redis-ha:securityUpgrades.startHourUtc: must be at most 23 (the UTC hour of the first node's upgrade slot, 0-23)",
        ],
        [
            { "securityUpgrades.startHourUtc": 2.5 },
            "redis-ha:securityUpgrades.startHourUtc: must be a whole number (the UTC hour of the first node's upgrade slot, 0-23)",
        ],
        [
            { "securityUpgrades.startHourUtc": "three" },
            "redis-ha:securityUpgrades.startHourUtc: must be a number (the UTC hour of the first node's upgrade slot, 0-23)",
        ],
        [{ "securityUpgrades.enabled": "yes" }, "redis-ha:securityUpgrades.enabled: must be true or false"],
    ])("refuses %j with one line naming the key", (changes, message) => {
        expect(configProblems(changes)).toEqual([message]);
    });

    it("refuses an unknown key of the group and the --path form", () => {
        expect(configProblems({ "securityUpgrades.startHour": 3 })).toEqual([
            "redis-ha:securityUpgrades.startHour: unknown key; remove it or correct its spelling (see the README's configuration reference)",
        ]);
        expect(() => parseStackConfig(configWith("prod", { securityUpgrades: { enabled: false } }))).toThrow(
            /^redis-ha:securityUpgrades: set the keys one by one without --path/,
        );
    });
});

describe("user-data host hardening", () => {
    const t = build();

    it("installs unattended-upgrades and removes root's password on every node", () => {
        for (const n of t.nodes) {
            const doc = parse(renderUserData(input(t, n.name))) as {
                packages: string[];
                runcmd: (string | string[])[];
                ssh_pwauth: boolean;
            };
            expect(doc.packages).toContain(UNATTENDED_UPGRADES_PACKAGE);
            expect(doc.ssh_pwauth).toBe(false);
            expect(doc.runcmd.slice(0, 2)).toEqual(["set -eu", ["usermod", "--password", "!", "root"]]);
        }
    });

    it("pins sshd to keys only, in a file sshd reads before the image's own settings", () => {
        const sshd = fileOf(renderUserData(input(t, "east-a")), HOST_PATHS.sshdConfig);
        expect(sshd.owner).toBe("root:root");
        expect(sshd.content.split("\n").filter((l) => !l.startsWith("#"))).toEqual([
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitEmptyPasswords no",
            "PermitRootLogin prohibit-password",
            "",
        ]);
    });

    it("configures apt for security upgrades only, daily, never rebooting, keeping the node's config files", () => {
        const conf = fileOf(renderUserData(input(t, "east-b")), HOST_PATHS.aptUpgrades).content;
        const lines = conf.split("\n").filter((l) => !l.startsWith("//") && l !== "");
        expect(lines).toEqual([
            'APT::Periodic::Update-Package-Lists "1";',
            'APT::Periodic::Unattended-Upgrade "1";',
            // Replaces Debian's list (which also names the point release) instead of adding to it.
            "#clear Unattended-Upgrade::Origins-Pattern;",
            "Unattended-Upgrade::Origins-Pattern {",
            '        "origin=Debian,codename=${distro_codename},label=Debian-Security";',
            '        "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";',
            "};",
            'Unattended-Upgrade::Automatic-Reboot "false";',
            "Dpkg::Options {",
            '        "--force-confdef";',
            '        "--force-confold";',
            "};",
        ]);
        expect(SECURITY_ORIGINS.every((o) => o.includes("label=Debian-Security"))).toBe(true);
        // Sorts after Debian's 20auto-upgrades and 50unattended-upgrades, so its values win.
        expect((HOST_PATHS.aptUpgrades.split("/").pop() ?? "") > "50unattended-upgrades").toBe(true);
    });

    it("turns the daily run off with securityUpgrades.enabled false and keeps the package", () => {
        const off = build({ "securityUpgrades.enabled": false });
        const ud = renderUserData(input(off, "east-a"));
        const conf = fileOf(ud, HOST_PATHS.aptUpgrades).content;
        expect(conf).toContain('APT::Periodic::Unattended-Upgrade "0";');
        expect(conf).toContain('APT::Periodic::Update-Package-Lists "0";');
        expect((parse(ud) as { packages: string[] }).packages).toContain(UNATTENDED_UPGRADES_PACKAGE);
    });

    it("moves Debian's upgrade timer to the node's own hour with no random delay", () => {
        for (const n of t.nodes) {
            const dropIn = fileOf(renderUserData(input(t, n.name)), HOST_PATHS.upgradeTimerDropIn).content;
            const hour = t.securityUpgrades.nodeHourUtc[n.name] ?? -1;
            expect(dropIn.split("\n").filter((l) => !l.startsWith("#") && l !== "")).toEqual([
                "[Timer]",
                "OnCalendar=",
                `OnCalendar=${upgradeCalendar(hour)}`,
                "RandomizedDelaySec=0",
            ]);
        }
        expect(upgradeCalendar(3)).toBe("*-*-* 03:00:00 UTC");
        expect(upgradeCalendar(23)).toBe("*-*-* 23:00:00 UTC");
    });

    it("changes only the slot file when the start hour moves, and the rollout delivers all three files", () => {
        const moved = build({ "securityUpgrades.startHourUtc": 5 });
        const before = filesInUserData(renderUserData(input(t, "ord-a")));
        const after = filesInUserData(renderUserData(input(moved, "ord-a")));
        const changed = after.filter((f) => before.find((b) => b.path === f.path)?.content !== f.content);
        expect(changed.map((f) => f.path)).toEqual([HOST_PATHS.upgradeTimerDropIn]);
        const delivered = deliveredFiles(input(moved, "ord-a"), []).map((f) => f.path);
        expect(delivered).toEqual(expect.arrayContaining(Object.values(HOST_PATHS)));
        expect(lockPasswordLines()).toBe("lock-password root\n");
    });
});

describe("monitoring node user-data", () => {
    const t = build(MONITORING);
    const ud = renderMonitoringUserData({
        topology: t,
        addresses: addresses(t),
        secrets: { webhookUrl: MONITORING.monitoringWebhookUrl },
    });

    it("gets the same host hardening, in the slot after every cluster node", () => {
        const doc = parse(ud) as { packages: string[]; runcmd: (string | string[])[]; ssh_pwauth: boolean };
        expect(doc.packages).toContain(UNATTENDED_UPGRADES_PACKAGE);
        expect(doc.ssh_pwauth).toBe(false);
        expect(doc.runcmd.slice(0, 2)).toEqual(["set -eu", ["usermod", "--password", "!", "root"]]);
        const nodeUd = renderUserData(input(t, "east-a"));
        for (const path of [HOST_PATHS.sshdConfig, HOST_PATHS.aptUpgrades])
            expect(fileOf(ud, path).content).toBe(fileOf(nodeUd, path).content);
        expect(fileOf(ud, HOST_PATHS.upgradeTimerDropIn).content).toContain(`OnCalendar=${upgradeCalendar(8)}\n`);
    });

    const hasCloudInit = spawnSync("cloud-init", ["--version"]).status === 0;
    itTier("cloud-init schema", hasCloudInit ? undefined : "cloud-init is not installed (apt-get install cloud-init)")(
        "passes `cloud-init schema`",
        () => {
            const dir = mkdtempSync(join(tmpdir(), "mon-ud-"));
            try {
                const f = join(dir, "monitoring");
                writeFileSync(f, ud);
                const r = spawnSync("cloud-init", ["schema", "--config-file", f], { encoding: "utf8" });
                expect(`${String(r.status)} ${r.stdout}${r.stderr}`).toMatch(/^0 Valid cloud-config/);
            } finally {
                rmSync(dir, { recursive: true, force: true });
            }
        },
    );
});

it("reads the stack files' defaults: upgrades on at 03:00 UTC", () => {
    expect(parseStackConfig(readStackConfig("dev")).securityUpgrades).toEqual({ enabled: true, startHourUtc: 3 });
});
