import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { LabError } from "./errors";
import { run } from "./exec";
import { ROUTER_NETNS } from "./network";

/** Debian's chromium: only for the README's screenshot (`drill --scenario alert --screenshot`), never in CI. */
export const CHROMIUM_BIN = "/usr/bin/chromium";

/** The graphs the screenshot shows, as Prometheus's graph page takes them (g0, g1, ...). */
export const SCREENSHOT_GRAPHS: readonly { expr: string; range: string }[] = [
    // Which node is master: the failover shows as the line moving to another node.
    { expr: 'max by (node) (redis_instance_info{redis_role="master"})', range: "5m" },
    // Every Redis and Sentinel exporter logged in; the killed node's drop and return.
    { expr: "min by (job, node) (redis_up)", range: "5m" },
    // The alerts as Prometheus evaluated them: pending, then firing, then gone.
    { expr: 'ALERTS{alertname=~"RedisHaMasterDown|RedisHaFailover"}', range: "5m" },
    { expr: "sum by (node) (redis_memory_used_bytes)", range: "5m" },
];

/** Prometheus's own graph page with `graphs`, one panel each, in graph view. */
export function graphPageUrl(prometheusUrl: string, graphs = SCREENSHOT_GRAPHS): string {
    const q = new URLSearchParams();
    graphs.forEach((g, i) => {
        q.set(`g${String(i)}.expr`, g.expr);
        q.set(`g${String(i)}.tab`, "0");
        q.set(`g${String(i)}.stacked`, "0");
        q.set(`g${String(i)}.show_exemplars`, "0");
        q.set(`g${String(i)}.range_input`, g.range);
    });
    return `${prometheusUrl}/graph?${q.toString()}`;
}

/**
 * Renders Prometheus's graph page into a PNG with headless chromium. Chromium runs inside the lab's router namespace,
 * which reaches the lab's addresses and nothing else (no default route, no NAT): whatever it would fetch besides the
 * page (update checks and the like, which the flags also turn off) cannot leave the lab.
 */
export async function screenshotGraphs(prometheusUrl: string, png: string): Promise<number> {
    const profile = mkdtempSync(path.join(tmpdir(), "redis-ha-lab-chromium-"));
    try {
        const r = await run(
            [
                "ip",
                ...["netns", "exec", ROUTER_NETNS],
                CHROMIUM_BIN,
                "--headless",
                // root in a namespace: chromium's own sandbox needs user namespaces it cannot make here.
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-domain-reliability",
                `--user-data-dir=${profile}`,
                "--window-size=1200,1700",
                // The graph page is a React app that queries the API after load: give it time to draw.
                "--virtual-time-budget=20000",
                `--screenshot=${path.resolve(png)}`,
                graphPageUrl(prometheusUrl),
            ],
            { allowFailure: true, timeoutMs: 120_000 },
        );
        if (r.code !== 0) throw new LabError(`chromium could not render ${prometheusUrl}/graph`, r.stdout + r.stderr);
        return statSync(png).size;
    } finally {
        rmSync(profile, { recursive: true, force: true });
    }
}
