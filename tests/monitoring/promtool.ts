import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { firstMissing } from "../tiers";

/** promtool/amtool from Debian's prometheus and prometheus-alertmanager packages (./run.sh setup installs them). */
export const PROMTOOL = "/usr/bin/promtool";
export const AMTOOL = "/usr/bin/amtool";

export const promtoolMissing = firstMissing([
    [existsSync(PROMTOOL), "promtool is not installed (apt package prometheus)"],
    [existsSync(AMTOOL), "amtool is not installed (apt package prometheus-alertmanager)"],
]);

export interface ToolResult {
    status: number | null;
    out: string;
}

export function tool(bin: string, args: readonly string[], cwd?: string): ToolResult {
    const r = spawnSync(bin, args, { encoding: "utf8", cwd, timeout: 60_000 });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
}
