import type { SecurityUpgradesPlan } from "../topology";
import { renderUnit } from "./units";

/**
 * Host hardening every machine of the kit gets, Redis nodes and the monitoring node alike (docs/security.md,
 * "Hosts"): SSH by key only, root without a password, and Debian's unattended security upgrades in a slot of the
 * node's own. Plain files, so the settings rollout delivers a changed one to a running node like any other unit.
 */

export const HOST_PATHS = {
    /** After Debian's 20auto-upgrades and 50unattended-upgrades: apt reads apt.conf.d in name order, later wins. */
    aptUpgrades: "/etc/apt/apt.conf.d/52redis-ha-security-upgrades",
    /** The node's upgrade slot: a drop-in for Debian's apt-daily-upgrade.timer. */
    upgradeTimerDropIn: "/etc/systemd/system/apt-daily-upgrade.timer.d/50-redis-ha.conf",
    /**
     * Debian 12's sshd_config includes sshd_config.d/*.conf at its top and sshd keeps the first value it reads, so
     * this file decides, whatever the image's own sshd_config says.
     */
    sshdConfig: "/etc/ssh/sshd_config.d/05-redis-ha.conf",
} as const;

/** Debian's unattended-upgrades: installed on every node, whether `securityUpgrades.enabled` or not (docs). */
export const UNATTENDED_UPGRADES_PACKAGE = "unattended-upgrades";

/** The sshd settings the kit pins: keys only, root by key only. */
export const SSHD_SETTINGS = [
    ["PasswordAuthentication", "no"],
    ["KbdInteractiveAuthentication", "no"],
    ["PermitEmptyPasswords", "no"],
    // Linode installs `authorizedKeys` for root, and the program's own SSH steps log in as root with a key.
    ["PermitRootLogin", "prohibit-password"],
] as const;

export function renderSshdConfig(): string {
    return [
        '# Rendered by redis-ha: SSH by key only (docs/security.md, "Hosts"). sshd keeps the first value it reads, and',
        "# Debian's sshd_config reads this directory first.",
        ...SSHD_SETTINGS.map(([k, v]) => `${k} ${v}`),
        "",
    ].join("\n");
}

/**
 * Debian's security archive, as Debian's own 50unattended-upgrades names it. That file also lists the point release
 * (`label=Debian`), which this kit leaves to an operator: only security fixes install on their own.
 */
export const SECURITY_ORIGINS = [
    "origin=Debian,codename=${distro_codename},label=Debian-Security",
    "origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
] as const;

/** apt's configuration for unattended security upgrades; `enabled: false` turns the daily run off. */
export function renderAptUpgradesConf(plan: SecurityUpgradesPlan): string {
    const on = plan.enabled ? "1" : "0";
    return [
        '// Rendered by redis-ha (docs/security.md, "Hosts"). Read after Debian\'s 20auto-upgrades and',
        "// 50unattended-upgrades, so these values win; Debian's files stay as packaged.",
        `APT::Periodic::Update-Package-Lists "${on}";`,
        `APT::Periodic::Unattended-Upgrade "${on}";`,
        "// Security fixes only: replace the origins Debian's file lists with its security archive.",
        "#clear Unattended-Upgrade::Origins-Pattern;",
        "Unattended-Upgrade::Origins-Pattern {",
        ...SECURITY_ORIGINS.map((o) => `        "${o}";`),
        "};",
        "// A new kernel waits for an operator's reboot, one node at a time (the stop hook hands mastership over first).",
        'Unattended-Upgrade::Automatic-Reboot "false";',
        "// Keep the node's own versions of config files (redis.conf is rendered, and rewritten by Sentinel). Without",
        "// this, unattended-upgrade skips a package whose update would ask about a changed config file.",
        "Dpkg::Options {",
        '        "--force-confdef";',
        '        "--force-confold";',
        "};",
        "",
    ].join("\n");
}

/** `OnCalendar` of an hour's slot, in UTC whatever the node's time zone. */
export function upgradeCalendar(hourUtc: number): string {
    return `*-*-* ${String(hourUtc).padStart(2, "0")}:00:00 UTC`;
}

/**
 * Moves Debian's apt-daily-upgrade.timer (06:00 plus up to an hour at random) to the node's own hour, with no random
 * delay: nodes one hour apart never upgrade, and so never restart Redis or Sentinel, at the same time.
 */
export function renderUpgradeTimerDropIn(hourUtc: number): string {
    return renderUnit(
        {
            Timer: [
                // An empty OnCalendar= clears Debian's; the next line sets this node's slot.
                ["OnCalendar", ""],
                ["OnCalendar", upgradeCalendar(hourUtc)],
                ["RandomizedDelaySec", "0"],
            ],
        },
        ["Rendered by redis-ha: this node's unattended-upgrade slot (topology/hosts.ts)."],
    );
}

/** What a node's user-data writes for its host hardening (owner root, delivered live by the settings rollout). */
export function hostFiles(
    plan: SecurityUpgradesPlan,
    hourUtc: number,
): { readonly path: string; readonly content: string }[] {
    return [
        { path: HOST_PATHS.sshdConfig, content: renderSshdConfig() },
        { path: HOST_PATHS.aptUpgrades, content: renderAptUpgradesConf(plan) },
        { path: HOST_PATHS.upgradeTimerDropIn, content: renderUpgradeTimerDropIn(hourUtc) },
    ];
}

/**
 * runcmd: no password for root at all (`!`, not a `!` before a hash). Linode sets a random root password at creation;
 * with it gone only keys log in (over SSH; Lish then needs a rescue boot to reset one). Locking is idempotent.
 */
export const LOCK_ROOT_PASSWORD = ["usermod", "--password", "!", "root"] as const;
