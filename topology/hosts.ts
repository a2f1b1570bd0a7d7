import type { ConfigProblem } from "./errors";
import type { NodePlan } from "./model";
import { CONFIG_NAMESPACE, type StackConfig } from "./schema";

/** Hours in a day: one upgrade slot each. */
const SLOTS_PER_DAY = 24;

/**
 * Unattended security upgrades (docs/security.md, "Hosts"): Debian's `unattended-upgrades`, security origins only,
 * no automatic reboot, each node in its own hour of the day.
 */
export interface SecurityUpgradesPlan {
    /** `APT::Periodic::Unattended-Upgrade` is on (off: the package stays, nothing runs). */
    readonly enabled: boolean;
    /** `securityUpgrades.startHourUtc`: the first node's slot. */
    readonly startHourUtc: number;
    /**
     * The UTC hour each node's `apt-daily-upgrade.timer` fires, by node name: one hour apart in node order, so an
     * upgrade of redis-server (which restarts it; the stop hook hands mastership over first) or of redis-sentinel
     * never runs on two nodes at once.
     */
    readonly nodeHourUtc: Readonly<Partial<Record<string, number>>>;
    /** The monitoring node's slot, after every cluster node's (monitoring enabled only). */
    readonly monitoringHourUtc?: number;
}

/** The slots: hour `startHourUtc + i` (mod 24) for the i-th node in node order, then the monitoring node. */
export function planSecurityUpgrades(
    config: StackConfig,
    nodes: readonly Pick<NodePlan, "name">[],
): SecurityUpgradesPlan {
    const { enabled, startHourUtc } = config.securityUpgrades;
    const hour = (i: number) => (startHourUtc + i) % SLOTS_PER_DAY;
    return {
        enabled,
        startHourUtc,
        nodeHourUtc: Object.fromEntries(nodes.map((n, i) => [n.name, hour(i)])),
        ...(config.monitoringEnabled ? { monitoringHourUtc: hour(nodes.length) } : {}),
    };
}

/** More nodes than hours would put two nodes in one slot: refuse rather than upgrade two nodes at once. */
export function validateSecurityUpgrades(config: StackConfig): ConfigProblem[] {
    const machines = config.nodes.length + (config.monitoringEnabled ? 1 : 0);
    if (!config.securityUpgrades.enabled || machines <= SLOTS_PER_DAY) return [];
    return [
        {
            key: `${CONFIG_NAMESPACE}:securityUpgrades.enabled`,
            message: `${String(machines)} machines need ${String(machines)} hourly upgrade slots and a day has ${String(SLOTS_PER_DAY)}; run: pulumi config set securityUpgrades.enabled false, and upgrade the nodes one at a time yourself`,
        },
    ];
}
