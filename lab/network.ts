import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { LabError } from "./errors";
import { run } from "./exec";
import { cidrContains, cidrsOverlap, parseCidr, parsePrefix } from "../topology/cidr";
import { assertNodeName, NETWORK_STATE_FILE, nodeNetns, PREFIX } from "./paths";
import { requireHost } from "./preflight";

/**
 * The lab's network: regions as Linux bridges inside one router namespace,
 * nodes as network namespaces plugged into their region's bridge, and a
 * single host leg so the host (tests, the client) can reach the nodes.
 *
 *            host ns                         rhl-router ns
 *   rhl-host 198.19.255.1/30 ──veth── rhl-rtr 198.19.255.2/30
 *   route 198.18.0.0/15 via .2          rhl-r0 198.18.1.1/24 ─veth─ rhl-p0 ┐
 *                                       rhl-r1 198.18.2.1/24 ─veth─ rhl-p1 ┤ (bridge ports)
 *                                                   rhl-br0: rhl-p0, rhl-v0-0, rhl-v0-1 …
 *   rhl-<node> ns: eth0 ──veth── rhl-v<region>-<n> (port of the region's bridge)
 *
 * Addresses come only from 198.18.0.0/15 (RFC 2544 benchmarking space), so
 * they cannot collide with anything real. Nothing leaves the machine: the
 * router namespace has no default route and no NAT, nodes' default route
 * is their region's router, and the host only gains a route for the lab
 * prefix. Forwarding is switched on in the router namespace only (it is a
 * per-namespace setting); the host's sysctls are never touched.
 *
 * Partitions disable bridge ports (port state "disabled") instead of downing
 * links, so a partitioned node keeps its carrier, addresses and routes, as a
 * VM behind a failed switch would: its packets just vanish.
 *   node:   disable the node's port   → cut from every other node, its region and the host
 *   region: disable the router's port → the region's nodes still reach each other,
 *                                       but not other regions nor the host
 */

export const LAB_PREFIX = "198.18.0.0/15";
/** Every region's subnet (198.18.<region>.0/24), where the router, and so the lab's Prometheus, has an address. */
export const LAB_REGIONS_CIDR = "198.18.0.0/16";
const HOST_LEG = { host: "198.19.255.1", router: "198.19.255.2", prefixLen: 30 };
export const ROUTER_NETNS = `${PREFIX}router`;
export const HOST_LINK = `${PREFIX}host`;
const ROUTER_LINK = `${PREFIX}rtr`;
/** Node n of a region gets .10+n: low addresses stay free for the router and future services. */
const FIRST_NODE_HOST = 10;
const MAX_REGIONS = 200;
const MAX_NODES_PER_REGION = 200;

export interface NetworkPlan {
    regions: Array<{ name: string; nodes: string[] }>;
}

export interface LabRegion {
    name: string;
    index: number;
    subnet: string;
    gateway: string;
    /** Bridge, router L3 interface and the router's bridge port, all in the router netns. */
    bridge: string;
    routerIf: string;
    routerPort: string;
}

export interface LabNodeNet {
    name: string;
    region: string;
    address: string;
    prefixLen: number;
    gateway: string;
    netns: string;
    /** Interface name inside the node's namespace. */
    ifname: string;
    mac: string;
    /** The node's port on its region bridge, in the router netns. */
    routerPort: string;
}

export interface LabNetwork {
    prefix: string;
    hostAddress: string;
    routerAddress: string;
    regions: LabRegion[];
    nodes: LabNodeNet[];
}

/** Pure address and name allocation; the same plan always gives the same network. */
export function planNetwork(plan: NetworkPlan): LabNetwork {
    if (plan.regions.length === 0) throw new LabError("the network plan has no regions");
    if (plan.regions.length > MAX_REGIONS) throw new LabError(`at most ${MAX_REGIONS} regions`);
    const seenRegions = new Set<string>();
    const seenNodes = new Set<string>();
    const regions: LabRegion[] = [];
    const nodes: LabNodeNet[] = [];

    plan.regions.forEach((region, index) => {
        if (!region.name.trim()) throw new LabError("a region has an empty name");
        if (seenRegions.has(region.name)) throw new LabError(`region "${region.name}" appears twice`);
        seenRegions.add(region.name);
        if (region.nodes.length > MAX_NODES_PER_REGION) {
            throw new LabError(`region "${region.name}" has more than ${MAX_NODES_PER_REGION} nodes`);
        }
        const third = index + 1;
        const gateway = `198.18.${third}.1`;
        regions.push({
            name: region.name,
            index,
            subnet: `198.18.${third}.0/24`,
            gateway,
            bridge: `${PREFIX}br${index}`,
            routerIf: `${PREFIX}r${index}`,
            routerPort: `${PREFIX}p${index}`,
        });
        region.nodes.forEach((name, n) => {
            assertNodeName(name);
            if (seenNodes.has(name)) throw new LabError(`node "${name}" appears twice`);
            seenNodes.add(name);
            nodes.push({
                name,
                region: region.name,
                address: `198.18.${third}.${FIRST_NODE_HOST + n}`,
                prefixLen: 24,
                gateway,
                netns: nodeNetns(name),
                ifname: "eth0",
                mac: stableMac(name),
                routerPort: `${PREFIX}v${index}-${n}`,
            });
        });
    });

    return {
        prefix: LAB_PREFIX,
        hostAddress: HOST_LEG.host,
        routerAddress: HOST_LEG.router,
        regions,
        nodes,
    };
}

/**
 * Creates the network for a plan. Refuses, before creating anything, if a
 * name it would use exists or the host already has an address or route in
 * 198.18.0.0/15; on a failure half-way it removes what it made.
 */
export async function createNetwork(plan: NetworkPlan): Promise<LabNetwork> {
    requireHost(["ip", "bridge"]);
    const net = planNetwork(plan);
    await assertNoClash(net);

    // Record the plan first: if we die half-way, destroyNetwork() knows what to remove.
    await writeState(net);
    try {
        await createRouter(net);
        for (const region of net.regions) await createRegion(region);
        for (const node of net.nodes) await createNodePort(net, node);
        await ip(["route", "add", LAB_PREFIX, "via", HOST_LEG.router, "dev", HOST_LINK]);
        await assertRoutesViaLab(net.nodes.map((n) => n.address));
        return net;
    } catch (e) {
        await destroyNetwork().catch(() => undefined);
        throw e;
    }
}

/**
 * Removes the network recorded by createNetwork. Idempotent; it deletes only
 * the namespaces and links it recorded, each only if it still exists.
 */
export async function destroyNetwork(): Promise<void> {
    const net = readNetwork();
    if (!net) return;
    requireHost(["ip"]);
    const existing = new Set(await listNetns());
    // The host link goes first: deleting it also removes the lab route.
    if ((await hostLinks()).includes(HOST_LINK)) await ip(["link", "del", HOST_LINK]);
    for (const netns of [ROUTER_NETNS, ...net.nodes.map((n) => n.netns)]) {
        if (existing.has(netns)) await ip(["netns", "del", netns]);
    }
    await rm(NETWORK_STATE_FILE, { force: true });
}

/** The network currently recorded, if any. */
export function readNetwork(): LabNetwork | undefined {
    if (!existsSync(NETWORK_STATE_FILE)) return undefined;
    return JSON.parse(readFileSync(NETWORK_STATE_FILE, "utf8")) as LabNetwork;
}

/** Cuts one node from everything: other nodes (its region included), routers, the host. */
export async function partitionNode(node: string): Promise<void> {
    const { routerPort } = findNode(requireNetwork(), node);
    await setPortState(routerPort, "disabled");
}

/** Cuts a region from other regions and from the host; its nodes still see each other. */
export async function partitionRegion(region: string): Promise<void> {
    const net = requireNetwork();
    const r = net.regions.find((x) => x.name === region);
    if (!r)
        throw new LabError(
            `no region "${region}" in the lab network (have: ${net.regions.map((x) => x.name).join(", ")})`,
        );
    await setPortState(r.routerPort, "disabled");
}

/** Lifts every partition. */
export async function heal(): Promise<void> {
    const net = requireNetwork();
    for (const port of [...net.regions.map((r) => r.routerPort), ...net.nodes.map((n) => n.routerPort)]) {
        await setPortState(port, "forwarding");
    }
}

/**
 * Throws unless every address is in the lab prefix and the host would send
 * to it through a lab interface. `ip route get` only consults the routing
 * table; nothing is sent. Call this before the host talks to a node.
 */
export async function assertRoutesViaLab(addresses: readonly string[]): Promise<void> {
    const lab = parseCidr(LAB_PREFIX);
    for (const address of addresses) {
        if (!cidrContains(lab, address)) throw new LabError(`${address} is not a lab address (${LAB_PREFIX})`);
        const { stdout } = await ip(["-j", "route", "get", address]);
        const route = (JSON.parse(stdout) as { dev?: string; gateway?: string }[]).at(0);
        const dev = route?.dev ?? "(no route)";
        if (!dev.startsWith(PREFIX)) {
            throw new LabError(
                `refusing to talk to ${address}: the host would send it via ${dev}, not a lab interface`,
            );
        }
    }
}

// ---------------------------------------------------------------------------

/** What the host has now, as `ip -j` reports it. */
export interface HostNetState {
    netns: string[];
    links: string[];
    addrs: Array<{ ifname: string; addr_info?: Array<{ local: string; prefixlen: number }> }>;
    routes: Array<{ dst: string; dev?: string; table?: string }>;
}

/** Why the lab cannot be created on a host in this state, or undefined if it can. */
export function findClash(net: LabNetwork, host: HostNetState): string | undefined {
    const wanted = new Set([ROUTER_NETNS, ...net.nodes.map((n) => n.netns)]);
    const netns = host.netns.find((n) => wanted.has(n));
    if (netns) return `network namespace ${netns} already exists (a lab is up or left over: destroy it first)`;
    const link = host.links.find((l) => l.startsWith(PREFIX));
    if (link) return `host link ${link} already exists (a lab is up or left over: destroy it first)`;
    const lab = parseCidr(LAB_PREFIX);
    for (const l of host.addrs) {
        for (const a of l.addr_info ?? []) {
            if (cidrsOverlap(lab, parseCidr(`${a.local}/${a.prefixlen}`))) {
                return `${l.ifname} already has ${a.local}/${a.prefixlen}, inside the lab prefix ${LAB_PREFIX}`;
            }
        }
    }
    for (const r of host.routes) {
        if (r.dst === "default") continue;
        // A covering route (say 198.0.0.0/8) is fine: our /15 is more specific.
        // Anything inside the lab prefix would take traffic meant for the lab.
        if (cidrContains(lab, parsePrefix(r.dst))) {
            return `the host already routes ${r.dst} via ${r.dev ?? "?"} (table ${r.table ?? "main"}), inside ${LAB_PREFIX}`;
        }
    }
    return undefined;
}

async function assertNoClash(net: LabNetwork): Promise<void> {
    const host: HostNetState = {
        netns: await listNetns(),
        links: await hostLinks(),
        addrs: JSON.parse((await ip(["-j", "-4", "addr", "show"])).stdout) as HostNetState["addrs"],
        routes: JSON.parse((await ip(["-j", "-4", "route", "show", "table", "all"])).stdout) as HostNetState["routes"],
    };
    const clash = findClash(net, host);
    if (clash) throw new LabError(`refusing to create the lab network: ${clash}`);
}

async function createRouter(net: LabNetwork): Promise<void> {
    await ip(["netns", "add", ROUTER_NETNS]);
    await ipIn(ROUTER_NETNS, ["link", "set", "lo", "up"]);
    // Per-namespace setting: this enables routing between the lab's regions only.
    await run(["ip", "netns", "exec", ROUTER_NETNS, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await ip(["link", "add", HOST_LINK, "type", "veth", "peer", "name", ROUTER_LINK, "netns", ROUTER_NETNS]);
    await ip(["addr", "add", `${net.hostAddress}/${HOST_LEG.prefixLen}`, "dev", HOST_LINK]);
    await ip(["link", "set", HOST_LINK, "up"]);
    await ipIn(ROUTER_NETNS, ["addr", "add", `${net.routerAddress}/${HOST_LEG.prefixLen}`, "dev", ROUTER_LINK]);
    await ipIn(ROUTER_NETNS, ["link", "set", ROUTER_LINK, "up"]);
}

async function createRegion(region: LabRegion): Promise<void> {
    // STP off (the default): ports forward as soon as they are up.
    await ipIn(ROUTER_NETNS, ["link", "add", region.bridge, "type", "bridge", "stp_state", "0"]);
    await ipIn(ROUTER_NETNS, ["link", "set", region.bridge, "up"]);
    await ipIn(ROUTER_NETNS, ["link", "add", region.routerIf, "type", "veth", "peer", "name", region.routerPort]);
    await ipIn(ROUTER_NETNS, ["link", "set", region.routerPort, "master", region.bridge, "up"]);
    const prefixLen = parseCidr(region.subnet).prefixLength;
    await ipIn(ROUTER_NETNS, ["addr", "add", `${region.gateway}/${prefixLen}`, "dev", region.routerIf]);
    await ipIn(ROUTER_NETNS, ["link", "set", region.routerIf, "up"]);
}

async function createNodePort(net: LabNetwork, node: LabNodeNet): Promise<void> {
    const region = net.regions.find((r) => r.name === node.region);
    if (!region) throw new LabError(`node ${node.name}: unknown region ${node.region}`);
    await ip(["netns", "add", node.netns]);
    await ipIn(node.netns, ["link", "set", "lo", "up"]);
    // Created in the router netns with its peer born inside the node's netns,
    // so no lab name ever appears (or could clash) in the host namespace.
    // eth0 is left down and unaddressed: cloud-init's network-config and
    // systemd-networkd in the node configure it, as on a real VM.
    await ipIn(ROUTER_NETNS, [
        "link",
        "add",
        node.routerPort,
        "type",
        "veth",
        "peer",
        "name",
        node.ifname,
        "address",
        node.mac,
        "netns",
        node.netns,
    ]);
    await ipIn(ROUTER_NETNS, ["link", "set", node.routerPort, "master", region.bridge, "up"]);
}

/**
 * bridge(8) port states: 0 = disabled (drops everything), 3 = forwarding.
 * "blocking" (4) would look right but does not stick: with STP off the
 * kernel re-runs port state selection at once and makes the port forward
 * again; only a disabled port is left alone.
 */
async function setPortState(port: string, state: "disabled" | "forwarding"): Promise<void> {
    requireHost(["bridge"]);
    await run(["bridge", "-n", ROUTER_NETNS, "link", "set", "dev", port, "state", state === "disabled" ? "0" : "3"]);
    const { stdout } = await run(["bridge", "-n", ROUTER_NETNS, "-j", "link", "show", "dev", port]);
    const actual = (JSON.parse(stdout) as Array<{ state?: string }>)[0]?.state;
    if (actual !== state) throw new LabError(`bridge port ${port} is ${actual ?? "missing"}, wanted ${state}`);
}

function requireNetwork(): LabNetwork {
    const net = readNetwork();
    if (!net) throw new LabError("no lab network is up (createNetwork first)");
    return net;
}

function findNode(net: LabNetwork, name: string): LabNodeNet {
    const node = net.nodes.find((n) => n.name === name);
    if (!node) throw new LabError(`no node "${name}" in the lab network`);
    return node;
}

/** A locally administered unicast MAC derived from the node name, stable across re-creations. */
function stableMac(name: string): string {
    const h = createHash("sha256").update(name).digest();
    return ["02", ...[0, 1, 2, 3, 4].map((i) => h[i].toString(16).padStart(2, "0"))].join(":");
}

async function writeState(net: LabNetwork): Promise<void> {
    await mkdir(path.dirname(NETWORK_STATE_FILE), { recursive: true, mode: 0o755 });
    await writeFile(NETWORK_STATE_FILE, JSON.stringify(net, null, 2) + "\n");
}

export async function listNetns(): Promise<string[]> {
    const { stdout } = await ip(["-j", "netns", "list"]);
    if (!stdout.trim()) return [];
    return (JSON.parse(stdout) as Array<{ name: string }>).map((n) => n.name);
}

/** The processes whose network namespace is `netns` (`ip netns pids`): a deleted namespace does not end them. */
export async function netnsPids(netns: string): Promise<number[]> {
    const { stdout } = await ip(["netns", "pids", netns]);
    return stdout
        .split("\n")
        .filter((l) => /^\d+$/.test(l.trim()))
        .map(Number);
}

export async function hostLinks(): Promise<string[]> {
    const { stdout } = await ip(["-j", "link", "show"]);
    return (JSON.parse(stdout) as Array<{ ifname: string }>).map((l) => l.ifname);
}

function ip(args: string[]) {
    return run(["ip", ...args]);
}

function ipIn(netns: string, args: string[]) {
    return run(["ip", "-n", netns, ...args]);
}
