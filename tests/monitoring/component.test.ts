import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { MONITORING_PATHS, RULES_FILE_NAME, type WriteFile } from "../../cloud-init";
import { resourceNames as names } from "../../components/names";
import { RegionCapabilityError } from "../../components/regionCapabilities";
import { LINODE_REGIONS } from "../../topology/linodeRegions";
import { isSecret, resourceNamed, runUnderMocks, unwrapSecrets, type MockRun } from "../../engine/mockRun";
import { programConfigWith } from "../helpers";
import { describeTier } from "../tiers";
import { AMTOOL, PROMTOOL, promtoolMissing, tool } from "./promtool";

const HOOK = "https://hooks.example.com/services/T0KEN-secret-path";
const SMTP_PASSWORD = "smtp-pw-do-not-leak";
const MONITOR_ADDRESS = "192.0.2.253"; // what the mock provider assigns a Linode without a reserved address
const enabled = {
    monitoringEnabled: true,
    monitoringWebhookUrl: HOOK,
    monitoringEmailTo: "oncall@example.com",
    monitoringEmailFrom: "alertmanager@example.com",
    monitoringSmtpSmarthost: "smtp.example.com:587",
    monitoringSmtpPassword: SMTP_PASSWORD,
    monitoringCidrs: ["198.51.100.7/32"],
};

let on: MockRun;
let off: MockRun;
beforeAll(async () => {
    on = await runUnderMocks({ stack: "prod", config: programConfigWith("prod", enabled) });
    off = await runUnderMocks({ stack: "prod" });
});

const input = (run: MockRun, name: string, key: string) => unwrapSecrets(resourceNamed(run, name).inputs[key]);
type Inbound = { label: string; ports?: string; ipv4s?: string[]; protocol: string };

function monitoringUserData(run: MockRun): string {
    const metadatas = input(run, names.monitoringInstance, "metadatas") as { userData: string }[];
    return Buffer.from(metadatas[0].userData, "base64").toString("utf8");
}
function fileOf(userData: string, path: string): WriteFile {
    const f = (parse(userData) as { write_files: WriteFile[] }).write_files.find((x) => x.path === path);
    if (!f) throw new Error(`${path} not in the monitoring user-data`);
    return f;
}

describe("monitoring node (mocks)", () => {
    it("declares the monitoring component under the cluster, its firewall and Linode under it", () => {
        expect(resourceNamed(on, names.monitoring)).toMatchObject({
            type: "redis-ha:monitoring:MonitoringServer",
            parent: names.cluster,
        });
        expect(resourceNamed(on, names.monitoringFirewall).parent).toBe(names.monitoring);
        expect(resourceNamed(on, names.monitoringInstance).parent).toBe(names.monitoring);
        expect(input(on, names.monitoringInstance, "region")).toBe("us-east");
        expect(input(on, names.monitoringInstance, "type")).toBe("g6-standard-1");
        expect(input(on, names.monitoringInstance, "label")).toBe("redis-prod-monitoring");
        // Its user-data is its configuration: a change re-creates it from the model instead of being ignored.
        expect(resourceNamed(on, names.monitoringInstance).ignoreChanges).toEqual([]);
    });

    it("opens the UIs and SSH to adminCidrs only", () => {
        const fw = resourceNamed(on, names.monitoringFirewall);
        expect(unwrapSecrets(fw.inputs.inboundPolicy)).toBe("DROP");
        const admin = on.topology.access.adminCidrs;
        expect(unwrapSecrets(fw.inputs.inbounds)).toEqual([
            { label: "monitoring-ui-admin", action: "ACCEPT", protocol: "TCP", ports: "9090,9093", ipv4s: admin },
            { label: "ssh-admin", action: "ACCEPT", protocol: "TCP", ports: "22", ipv4s: admin },
        ]);
        expect(String(input(on, names.monitoringInstance, "firewallId"))).toBe(String(fw.id));
    });

    it("opens the exporter ports of the cluster to monitoringCidrs and the monitoring node", () => {
        const inbounds = input(on, names.firewall, "inbounds") as Inbound[];
        expect(inbounds.find((r) => r.label === "exporters-monitoring")).toEqual({
            label: "exporters-monitoring",
            action: "ACCEPT",
            protocol: "TCP",
            ports: "9100,9121,9355",
            ipv4s: ["198.51.100.7/32", `${MONITOR_ADDRESS}/32`],
        });
        // No other rule opens an exporter port.
        expect(inbounds.filter((r) => /9100|9121|9355/.test(r.ports ?? "")).map((r) => r.label)).toEqual([
            "exporters-monitoring",
        ]);
    });

    it("keeps the receiver credentials secret: in user-data (secret), never in the model or outputs", () => {
        expect(isSecret(resourceNamed(on, names.monitoringInstance).inputs.metadatas)).toBe(true);
        const am = fileOf(monitoringUserData(on), MONITORING_PATHS.alertmanagerConfig);
        expect(am).toMatchObject({ owner: "root:prometheus", permissions: "0640", defer: true });
        expect(am.content).toContain(HOOK);
        expect(am.content).toContain(SMTP_PASSWORD);
        expect(JSON.stringify(on.stackOutputs)).not.toContain("T0KEN");
        expect(JSON.stringify(on.topology)).not.toContain("T0KEN");
        for (const r of on.resources.filter((x) => x.name !== names.monitoringInstance))
            expect(`${r.name}: ${JSON.stringify(unwrapSecrets(r.inputs))}`).not.toContain(SMTP_PASSWORD);
    });

    it("scrapes every exporter of every node with cluster, node, region and role labels", () => {
        const prom = parse(fileOf(monitoringUserData(on), MONITORING_PATHS.prometheusConfig).content) as {
            scrape_configs: {
                job_name: string;
                static_configs: { targets: string[]; labels: Record<string, string> }[];
            }[];
        };
        const targets = prom.scrape_configs.flatMap((j) =>
            j.static_configs.map(
                (s) => `${j.job_name} ${s.targets.join()} ${s.labels.node} ${s.labels.region} ${s.labels.role}`,
            ),
        );
        // Every node's node exporter, every Redis node's and every Sentinel's, at the node's address (the mocks give
        // the nodes 192.0.2.10, .11, ... in the topology's order).
        const address = (name: string) => `192.0.2.${String(10 + on.topology.nodes.findIndex((n) => n.name === name))}`;
        const job = (kind: string, port: number, role?: string) =>
            on.topology.nodes
                .filter((n) => role === undefined || n.roles.includes(role as never))
                .map((n) => `${kind} ${address(n.name)}:${String(port)} ${n.name} ${n.region} ${n.roles.join(",")}`);
        expect(targets).toEqual([
            ...job("node", 9100),
            ...job("redis", 9121, "redis"),
            ...job("sentinel", 9355, "sentinel"),
        ]);
        expect(targets).toContain("sentinel 192.0.2.10:9355 east-a us-east redis,sentinel");
        for (const j of prom.scrape_configs)
            for (const s of j.static_configs) expect(s.labels.cluster).toBe("redis-prod");
    });

    it("outputs the monitoring node's address and URLs", () => {
        expect(on.stackOutputs.monitoring).toEqual({
            address: MONITOR_ADDRESS,
            prometheusUrl: `http://${MONITOR_ADDRESS}:9090`,
            alertmanagerUrl: `http://${MONITOR_ADDRESS}:9093`,
        });
    });

    it("declares nothing of it when disabled, and opens no exporter port without monitoringCidrs", () => {
        expect(off.resources.filter((r) => r.name.includes("monitoring"))).toEqual([]);
        expect(off.stackOutputs.monitoring).toBeUndefined();
        const inbounds = input(off, names.firewall, "inbounds") as Inbound[];
        expect(inbounds.some((r) => /9100|9121|9355/.test(r.ports ?? ""))).toBe(false);
    });
});

describe("monitoring region", () => {
    it("is refused at preview, in one line, when it lacks Linode's metadata service", async () => {
        const regions = LINODE_REGIONS.map((r) =>
            r.id === "us-west" ? { ...r, capabilities: r.capabilities.filter((c) => c !== "Metadata") } : r,
        );
        const run = runUnderMocks({
            stack: "prod",
            config: programConfigWith("prod", { ...enabled, monitoringRegion: "us-west" }),
            regions,
        });
        await expect(run).rejects.toThrow(RegionCapabilityError);
        await expect(run).rejects.toThrow(
            /^redis-ha:monitoringRegion: region us-west lacks the Linode capability "Metadata" \(cloud-init reads the monitoring node's user-data from the metadata service\); set monitoringRegion to a region that offers it$/,
        );
    });
});

describeTier("monitoring configs (promtool, amtool)", promtoolMissing)("monitoring configs (promtool, amtool)", () => {
    let dir: string;
    beforeAll(() => {
        dir = mkdtempSync(join(tmpdir(), "redis-ha-monitoring-"));
        const ud = monitoringUserData(on);
        // As on the node, except that the rule file sits beside the config.
        const prom = fileOf(ud, MONITORING_PATHS.prometheusConfig).content.replace(
            MONITORING_PATHS.rules,
            RULES_FILE_NAME,
        );
        writeFileSync(join(dir, "prometheus.yml"), prom);
        writeFileSync(join(dir, RULES_FILE_NAME), fileOf(ud, MONITORING_PATHS.rules).content);
        writeFileSync(join(dir, "alertmanager.yml"), fileOf(ud, MONITORING_PATHS.alertmanagerConfig).content);
    });
    afterAll(() => {
        rmSync(dir, { recursive: true, force: true });
    });

    it("passes promtool check config (rules included)", () => {
        const r = tool(PROMTOOL, ["check", "config", "prometheus.yml"], dir);
        expect(r.out).toContain("SUCCESS: prometheus.yml is valid prometheus config file syntax");
        expect(r.status).toBe(0);
    });

    it("passes amtool check-config and routes every severity to the team receiver", () => {
        const r = tool(AMTOOL, ["check-config", "alertmanager.yml"], dir);
        expect(r.out).toContain("SUCCESS");
        expect(r.status).toBe(0);
        for (const severity of ["critical", "warning", "info"]) {
            const route = tool(
                AMTOOL,
                [
                    "config",
                    "routes",
                    "test",
                    "--config.file=alertmanager.yml",
                    `severity=${severity}`,
                    "alertname=RedisHaMasterDown",
                ],
                dir,
            );
            expect(route.out.split("\n")[0]).toBe("redis-ha-team");
        }
    });
});
