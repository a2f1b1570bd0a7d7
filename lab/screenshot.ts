import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DASHBOARD_ROWS } from "../cloud-init";
import { LabError } from "./errors";
import { run } from "./exec";
import { ROUTER_NETNS } from "./network";

/** Debian's chromium: only for the README's screenshot (`drill --scenario alert --screenshot`), never in CI. */
export const CHROMIUM_BIN = "/usr/bin/chromium";

/**
 * The shipped dashboard's panels the screenshot shows, one per row (role), by title, plus the alerts: Prometheus's
 * graph page draws the same queries that Grafana would.
 */
export const SCREENSHOT_PANELS: readonly string[] = [
    "Master (1) per node",
    "Redis up",
    "Sentinels that agree the master is ok",
];

/** The graphs of the screenshot: the panels' queries for `cluster`, then the drill's alerts as Prometheus saw them. */
export function screenshotGraphs(cluster: string, range = "3m"): { expr: string; range: string }[] {
    const panels = DASHBOARD_ROWS.flatMap((r) => r.panels);
    return [
        ...SCREENSHOT_PANELS.map((title) => {
            const p = panels.find((x) => x.title === title);
            if (!p) throw new LabError(`no dashboard panel titled "${title}"`);
            return { expr: p.expr.replaceAll("$cluster", cluster), range };
        }),
        { expr: `ALERTS{cluster="${cluster}",alertname=~"RedisHaMasterDown|RedisHaFailover"}`, range },
    ];
}

/** Prometheus's own graph page with `graphs`, one panel each, in graph view. */
export function graphPageUrl(prometheusUrl: string, graphs: readonly { expr: string; range: string }[]): string {
    // encodeURIComponent, not URLSearchParams: the page decodes with decodeURIComponent, which leaves a "+" a "+".
    const q = graphs.flatMap((g, i) =>
        Object.entries({ expr: g.expr, tab: "0", stacked: "0", show_exemplars: "0", range_input: g.range }).map(
            ([k, v]) => `g${String(i)}.${k}=${encodeURIComponent(v)}`,
        ),
    );
    return `${prometheusUrl}/graph?${q.join("&")}`;
}

/**
 * Renders Prometheus's graph page into a PNG with headless chromium. Chromium runs inside the lab's router namespace,
 * which reaches the lab's addresses and nothing else (no default route, no NAT): whatever it would fetch besides the
 * page (update checks and the like, which the flags also turn off) cannot leave the lab.
 */
export async function screenshotDashboard(prometheusUrl: string, cluster: string, png: string): Promise<number> {
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
                // Four graphs of about 530 CSS pixels each and room to spare, drawn at 0.75 (900 x 2175 pixels): a page taller
                // than the window scrolls to the last query box.
                "--window-size=1200,2900",
                "--force-device-scale-factor=0.75",
                // The graph page is a React app that queries the API after load: shoot 15 s later. (A virtual time
                // budget instead left the page half laid out.)
                "--timeout=15000",
                `--screenshot=${path.resolve(png)}`,
                graphPageUrl(prometheusUrl, screenshotGraphs(cluster)),
            ],
            { allowFailure: true, timeoutMs: 120_000 },
        );
        if (r.code !== 0) throw new LabError(`chromium could not render ${prometheusUrl}/graph`, r.stdout + r.stderr);
        return statSync(png).size;
    } finally {
        rmSync(profile, { recursive: true, force: true });
    }
}
