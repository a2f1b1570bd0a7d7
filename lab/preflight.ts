import { accessSync, constants } from "node:fs";
import path from "node:path";
import { LabError } from "./errors";

/**
 * Checks that fail before the lab changes anything: are we root, and are the
 * host tools there. Each failure is one line that says what to do.
 */

/** Which Debian package ships each tool the lab runs, for the "install X" hint. */
const TOOL_PACKAGE = {
    "systemd-nspawn": "systemd-container",
    mmdebstrap: "mmdebstrap",
    "dpkg-scanpackages": "dpkg-dev",
    ip: "iproute2",
    bridge: "iproute2",
    nsenter: "util-linux",
    mount: "mount",
    umount: "mount",
    setsid: "util-linux",
    "redis-cli": "redis-tools",
} as const;

export type HostTool = keyof typeof TOOL_PACKAGE;

// Root's sbin directories may be missing from PATH under sudo or in CI.
const SEARCH_PATH = [
    ...(process.env.PATH ?? "").split(":").filter(Boolean),
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/** What the lab's nodes need on the host: containers, the image build, the network, mounts. */
export const NODE_TOOLS = [
    "systemd-nspawn",
    "mmdebstrap",
    "dpkg-scanpackages",
    "ip",
    "bridge",
    "nsenter",
    "mount",
    "umount",
] as const satisfies readonly HostTool[];

/** Everything a lab command may run on the host: the nodes' tools, plus setsid and redis-cli for faults and probes. */
export const LAB_TOOLS = [...NODE_TOOLS, "setsid", "redis-cli"] as const satisfies readonly HostTool[];

export function findTool(tool: string): string | undefined {
    for (const dir of SEARCH_PATH) {
        const candidate = path.join(dir, tool);
        try {
            accessSync(candidate, constants.X_OK);
            return candidate;
        } catch {
            // keep looking
        }
    }
    return undefined;
}

export function missingTools(tools: readonly HostTool[]): HostTool[] {
    return tools.filter((t) => findTool(t) === undefined);
}

export function requireTools(tools: readonly HostTool[]): void {
    const missing = missingTools(tools);
    if (missing.length > 0) throw new LabError(installHint(missing));
}

/** "install systemd-container mmdebstrap (missing: systemd-nspawn, mmdebstrap)" */
export function installHint(missing: readonly HostTool[]): string {
    const packages = [...new Set(missing.map((t) => TOOL_PACKAGE[t]))];
    return `install ${packages.join(" ")} (missing: ${missing.join(", ")})`;
}

export function isRoot(): boolean {
    return typeof process.getuid === "function" && process.getuid() === 0;
}

export function requireRoot(): void {
    if (!isRoot()) {
        throw new LabError("the lab must run as root: it creates network namespaces, overlay mounts and containers");
    }
}

/** Root plus the given tools, the usual precondition of a lab operation. */
export function requireHost(tools: readonly HostTool[]): void {
    requireRoot();
    requireTools(tools);
}
