/**
 * In the lab (dev stack), booted once for all of this (the suite's time budget):
 * - TLS and ACL refusals first, while the preferred master is the master (tests/lab/securityRefusals.ts);
 * - every node boots with the host key the program generated and published, lab SSH pins it and refuses any other key;
 * - the hosts are hardened as issue 13 item 3 asks (SSH by key only, root without a password, unattended security
 *   upgrades in one slot per node that a rollout moves live, Redis and Sentinel as `redis` with Debian's sandboxing
 *   intact, nothing listening on a public address the firewall does not open); Sentinel's timings set at every start
 *   (SENTINEL DEBUG);
 * - the resize handover (`failover-drill handover`, the step a plan change runs before taking a master down) moves
 *   mastership by a controlled failover to the node it names, and does nothing on a node that is not the master. The
 *   lab cannot resize a machine; the order of resizes is tested under mocks (tests/resize.test.ts);
 * - last, every password and certificate rotated under load (tests/lab/rotationUnderLoad.ts).
 *
 * Uses the lab's global resources: run under the shared lock (`flock /tmp/redis-ha-lab.lock npx jest <this file>`).
 * Root and the lab's tools are required; elsewhere (or with RHL_LAB=skip) it is skipped.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { exporterKinds, PATHS, publicKeyLine, SECURITY_ORIGINS, SENTINEL_DEBUG_TIMINGS } from "../../cloud-init";
import { firewallInbounds } from "../../components/firewall";
import { redisStatus } from "../../lab/labCluster";
import { LAB_TOOLS } from "../../lab/preflight";
import { runCheck, ssh, sshArgv } from "../../lab/ssh";
import { prepareLabStack, type LabStack } from "../../lab/stack";
import { describeLab, labCli, labLeftovers } from "./labTier";
import { rotationUnderLoad } from "./rotationUnderLoad";
import { securityRefusals } from "./securityRefusals";

const describeHosts = describeLab("lab dev: refusals, host keys and the resize handover", LAB_TOOLS);

/**
 * The sandboxing directives of a systemd service (systemd.exec(5), systemd.resource-control(5)) whose effective values
 * must equal those of Debian's packaged unit: a drop-in may add hooks and a restart policy, never loosen these.
 */
const SANDBOX_PROPERTIES = [
    "User",
    "Group",
    "DynamicUser",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "PrivateDevices",
    "PrivateUsers",
    "PrivateNetwork",
    "NoNewPrivileges",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "ProtectHostname",
    "ProtectProc",
    "ProcSubset",
    "RestrictRealtime",
    "RestrictNamespaces",
    "RestrictSUIDSGID",
    "RestrictAddressFamilies",
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "SystemCallFilter",
    "SystemCallArchitectures",
    "ReadWritePaths",
    "ReadOnlyPaths",
    "InaccessiblePaths",
    "NoExecPaths",
    "ExecPaths",
    "UMask",
    "DevicePolicy",
    "RemoveIPC",
];

/** Ports of `ss -ltnH` (or `-lunH`) lines whose local address is not loopback, sorted, each once. */
function publicTcpPorts(ss: string): number[] {
    const ports = ss
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => l.trim().split(/\s+/)[3] ?? "")
        .filter((local) => !isLoopback(local))
        .map((local) => Number(local.slice(local.lastIndexOf(":") + 1)));
    return [...new Set(ports)].sort((a, b) => a - b);
}

function isLoopback(local: string): boolean {
    return /^(127\.|\[::1\]|::1|\[::ffff:127\.)/.test(local);
}

/** `Key=value` lines of `systemctl show` as a map. */
function showMap(text: string): Record<string, string> {
    return Object.fromEntries(
        text
            .split("\n")
            .filter((l) => l.includes("="))
            .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
}
jest.setTimeout(900_000);

function lab(...args: string[]) {
    return labCli(args);
}

async function master(s: LabStack): Promise<string | undefined> {
    return (await redisStatus(s)).find((n) => n.role === "master")?.name;
}

describeHosts("lab dev: refusals, host keys and the resize handover", () => {
    let s: LabStack;
    const endpoint = (node: string) =>
        `${s.nodes.find((n) => n.name === node)?.address ?? "?"}:${String(s.topology.ports.redis)}`;

    beforeAll(async () => {
        const started = Date.now();
        lab("down");
        lab("up", "--stack", "dev");
        process.stdout.write(`[dev] up with tls in ${String(Math.round((Date.now() - started) / 1000))} s\n`);
        s = await prepareLabStack("dev");
    });
    afterAll(() => {
        lab("down");
    });

    securityRefusals(() => s);

    it("boots every node with the published host key, and lab SSH pins it", async () => {
        const pinned = readFileSync(s.knownHostsFile, "utf8");
        for (const n of s.nodes) {
            const r = await ssh(s, n.name, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
            expect({ node: n.name, code: r.code }).toEqual({ node: n.name, code: 0 });
            expect(pinned).toContain(`${n.address} ${publicKeyLine(r.stdout)}\n`);
            // Only the generated key: cloud-init deleted the image's keys and generated no others.
            const keys = await ssh(s, n.name, ["ls", "/etc/ssh/"]);
            expect(keys.stdout.split("\n").filter((f) => f.startsWith("ssh_host_"))).toEqual([
                "ssh_host_ed25519_key",
                "ssh_host_ed25519_key.pub",
            ]);
        }
    });

    it("refuses a node that presents any other key", () => {
        const [a, b] = s.nodes;
        const wrong = path.join(mkdtempSync(path.join(tmpdir(), "known-")), "known_hosts");
        const bKey = readFileSync(s.knownHostsFile, "utf8")
            .split("\n")
            .find((l) => l.startsWith(`${b.address} `));
        writeFileSync(wrong, `${a.address} ${bKey?.split(" ").slice(1).join(" ") ?? ""}\n`);
        const [file, ...args] = sshArgv({ ...s, knownHostsFile: wrong }, a.name, ["true"]);
        const r = spawnSync(file, args, { encoding: "utf8", timeout: 30_000 });
        expect(r.status).toBe(255);
        expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    });

    it("logs in by key only: sshd refuses passwords, and root has none", async () => {
        for (const n of s.nodes) {
            const t = await ssh(s, n.name, ["sshd", "-T"]);
            expect({ node: n.name, code: t.code }).toEqual({ node: n.name, code: 0 });
            const cfg = new Map(t.stdout.split("\n").map((l) => [l.split(" ")[0], l.split(" ").slice(1).join(" ")]));
            expect({
                node: n.name,
                passwordauthentication: cfg.get("passwordauthentication"),
                kbdinteractiveauthentication: cfg.get("kbdinteractiveauthentication"),
                permitemptypasswords: cfg.get("permitemptypasswords"),
                pubkeyauthentication: cfg.get("pubkeyauthentication"),
            }).toEqual({
                node: n.name,
                passwordauthentication: "no",
                kbdinteractiveauthentication: "no",
                permitemptypasswords: "no",
                pubkeyauthentication: "yes",
            });
            // sshd -T prints prohibit-password under its old name.
            expect(cfg.get("permitrootlogin")).toMatch(/^(without-password|prohibit-password)$/);
            // No password at all: `!`/`*` alone, not a `!` in front of Linode's hash.
            const shadow = await ssh(s, n.name, ["getent", "shadow", "root"]);
            expect(`${n.name} ${shadow.stdout.split(":")[1] ?? "?"}`).toMatch(new RegExp(`^${n.name} [!*]+$`));
            const status = await ssh(s, n.name, ["passwd", "-S", "root"]);
            expect(`${n.name} ${status.stdout.split(" ")[1] ?? "?"}`).toBe(`${n.name} L`);
        }
        // What a client is offered: publickey and nothing else.
        const [file, ...args] = sshArgv(s, s.nodes[0].name, ["true"]);
        const tryPassword = spawnSync(
            file,
            [
                ...args.slice(0, -2),
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
                ...args.slice(-2),
            ],
            { encoding: "utf8", timeout: 30_000 },
        );
        expect(tryPassword.status).toBe(255);
        expect(tryPassword.stderr).toMatch(/Permission denied \(publickey\)/);
    });

    it("runs unattended security upgrades from Debian's security archive only, no reboot, one node per hour", async () => {
        const plan = s.topology.securityUpgrades;
        const slots = new Map<string, string>();
        for (const n of s.nodes) {
            const dump = (await ssh(s, n.name, ["apt-config", "dump"])).stdout;
            expect(dump).toContain('APT::Periodic::Update-Package-Lists "1";');
            expect(dump).toContain('APT::Periodic::Unattended-Upgrade "1";');
            expect(dump).toContain('Unattended-Upgrade::Automatic-Reboot "false";');
            // Our origins replace Debian's list (which also names the point release, label=Debian).
            const origins = dump
                .split("\n")
                .filter((l) => l.startsWith("Unattended-Upgrade::Origins-Pattern:: "))
                .map((l) => l.replace(/^Unattended-Upgrade::Origins-Pattern:: "(.*)";$/, "$1"));
            expect({ node: n.name, origins }).toEqual({ node: n.name, origins: [...SECURITY_ORIGINS] });

            const t0 = Date.now();
            const dry = await ssh(s, n.name, ["unattended-upgrade", "--dry-run", "-d"]);
            console.log(`${n.name}: unattended-upgrade --dry-run took ${String(Date.now() - t0)} ms`);
            expect(`${n.name} exit ${String(dry.code)}\n${dry.stderr}`).toMatch(new RegExp(`^${n.name} exit 0\n`));
            expect(dry.stdout + dry.stderr).toContain(
                "Allowed origins are: origin=Debian,codename=bookworm,label=Debian-Security, origin=Debian,codename=bookworm-security,label=Debian-Security",
            );

            const timer = showMap(
                (
                    await ssh(s, n.name, [
                        "systemctl show apt-daily-upgrade.timer -p TimersCalendar -p RandomizedDelayUSec -p ActiveState -p UnitFileState",
                    ])
                ).stdout,
            );
            const hour = String(plan.nodeHourUtc[n.name]).padStart(2, "0");
            // Debian's 06:00 is cleared: exactly one calendar, this node's hour, in UTC.
            expect(`${n.name} ${timer.TimersCalendar}`).toMatch(
                new RegExp(`^${n.name} \\{ OnCalendar=\\*-\\*-\\* ${hour}:00:00 UTC ; next_elapse=[^}]* \\}$`),
            );
            expect({
                node: n.name,
                d: timer.RandomizedDelayUSec,
                a: timer.ActiveState,
                f: timer.UnitFileState,
            }).toEqual({
                node: n.name,
                d: "0",
                a: "active",
                f: "enabled",
            });
            slots.set(n.name, hour);
        }
        const redisSlots = s.topology.nodes.filter((n) => n.runsRedis).map((n) => slots.get(n.name));
        expect(new Set(redisSlots).size).toBe(redisSlots.length);
        console.log(`upgrade slots (UTC): ${[...slots].map(([n, h]) => `${n} ${h}:00`).join(", ")}`);
    });

    it("runs Redis and Sentinel as redis, with every sandboxing property of Debian's units", async () => {
        for (const n of s.topology.nodes) {
            const units = [...(n.runsRedis ? ["redis-server"] : []), ...(n.runsSentinel ? ["redis-sentinel"] : [])];
            for (const unit of units) {
                const user = await ssh(s, n.name, [
                    `ps -o user= -p "$(systemctl show -p MainPID --value ${unit}.service)"`,
                ]);
                expect(`${n.name} ${unit} ${user.stdout.trim()}`).toBe(`${n.name} ${unit} redis`);
                // Debian's packaged unit alone, under another name (drop-ins attach by name), as systemd reads it.
                const probe = `rhl-debian-${unit}.service`;
                const props = SANDBOX_PROPERTIES.map((p) => `-p ${p}`).join(" ");
                const r = await ssh(s, n.name, [
                    `set -e; cp /lib/systemd/system/${unit}.service /run/systemd/system/${probe}; systemctl daemon-reload;` +
                        ` systemctl show ${probe} ${props}; echo ---; systemctl show ${unit}.service ${props};` +
                        ` rm -f /run/systemd/system/${probe}; systemctl daemon-reload`,
                ]);
                expect(`${n.name} ${unit} exit ${String(r.code)} ${r.stderr}`).toBe(`${n.name} ${unit} exit 0 `);
                const [debian, ours] = r.stdout.split("---\n").map(showMap);
                expect({ node: n.name, unit, ...ours }).toEqual({ node: n.name, unit, ...debian });
                // And Debian's units do sandbox: the comparison above is not between two empty sets.
                expect({
                    node: n.name,
                    unit,
                    u: ours.User,
                    ps: ours.ProtectSystem,
                    pt: ours.PrivateTmp,
                    nnp: ours.NoNewPrivileges,
                    ph: ours.ProtectHome,
                }).toEqual({
                    node: n.name,
                    unit,
                    u: "redis",
                    ps: "strict",
                    pt: "yes",
                    nnp: "yes",
                    ph: "yes",
                });
            }
        }
    });

    it("sets Sentinel's timings that sentinel.conf cannot hold at every start of Sentinel", async () => {
        const timings = async (node: string) => {
            const r = await ssh(s, node, [
                `. ${PATHS.scriptsDir}/lib.sh && scli 127.0.0.1 "$SENTINEL_PORT" SENTINEL DEBUG`,
            ]);
            const words = r.stdout.trim().split("\n");
            const got = new Map(words.flatMap((w, i) => (i % 2 === 0 ? [[w.toLowerCase(), words[i + 1]]] : [])));
            return `${node} ${SENTINEL_DEBUG_TIMINGS.map(([k]) => `${k} ${got.get(k) ?? "?"}`).join(" ")}`;
        };
        const want = (node: string) => `${node} ${SENTINEL_DEBUG_TIMINGS.map(([k, v]) => `${k} ${v}`).join(" ")}`;
        const sentinels = s.topology.nodes.filter((n) => n.runsSentinel).map((n) => n.name);
        for (const n of sentinels) expect(await timings(n)).toBe(want(n));
        // SENTINEL DEBUG does not survive a restart: the drop-in sets it again.
        const [first] = sentinels;
        expect((await ssh(s, first, ["systemctl restart redis-sentinel.service"])).code).toBe(0);
        expect(await timings(first)).toBe(want(first));
    });

    it("listens on a non-loopback address only on ports the firewall opens for that node's services", async () => {
        const t = s.topology;
        // The lab's stacks name the lab's scraper in monitoringCidrs (lab/stack.ts), so the exporter ports are open.
        const opened = firewallInbounds(
            t,
            s.nodes.map((n) => n.address),
        )
            .filter((r) => r.protocol === "TCP")
            .flatMap((r) => (typeof r.ports === "string" ? r.ports.split(",").map(Number) : []));
        for (const n of t.nodes) {
            const own = [
                22,
                ...(n.runsRedis ? [t.ports.redis] : []),
                ...(n.runsSentinel ? [t.ports.sentinel] : []),
                ...exporterKinds(n).map((k) => t.monitoring.ports[k]),
            ].sort((a, b) => a - b);
            const exposed = publicTcpPorts((await ssh(s, n.name, ["ss", "-ltnH"])).stdout);
            const udp = publicTcpPorts((await ssh(s, n.name, ["ss", "-lunH"])).stdout);
            console.log(`${n.name}: public TCP ${exposed.join(", ")}; public UDP ${udp.join(", ") || "none"}`);
            expect({ node: n.name, exposed }).toEqual({ node: n.name, exposed: own });
            expect({ node: n.name, notOpened: exposed.filter((p) => !opened.includes(p)) }).toEqual({
                node: n.name,
                notOpened: [],
            });
            // The firewall opens no UDP port at all.
            expect({ node: n.name, udp }).toEqual({ node: n.name, udp: [] });
        }
    });

    it("moves the upgrade slots, and the exporters to loopback once nobody may scrape, with the settings rollout", async () => {
        const t = s.topology;
        const moved = (t.securityUpgrades.startHourUtc + 8) % 24;
        const t0 = Date.now();
        const out = JSON.parse(
            lab(
                "rollout",
                "--stack",
                "dev",
                "--json",
                "--set",
                `securityUpgrades.startHourUtc=${String(moved)}`,
                // The lab's own scraper gone: the firewall would open no exporter port.
                "--set",
                "monitoringCidrs=[]",
            ).stdout,
        ) as { steps: { node: string; applied: string[] }[] };
        console.log(`rollout of a new start hour and no monitoringCidrs: ${String(Date.now() - t0)} ms`);
        for (const step of out.steps)
            expect(step.applied).toContain("enabling and restarting apt-daily-upgrade.timer (its unit changed)");
        for (const [i, n] of t.nodes.entries()) {
            const cal = (await ssh(s, n.name, ["systemctl show apt-daily-upgrade.timer -p TimersCalendar"])).stdout;
            expect(`${n.name} ${cal}`).toContain(
                `${n.name} TimersCalendar={ OnCalendar=*-*-* ${String((moved + i) % 24).padStart(2, "0")}:00:00 UTC ;`,
            );
            // The exporters restart on their changed units; give them a moment to listen again.
            const expected = [
                22,
                ...(n.runsRedis ? [t.ports.redis] : []),
                ...(n.runsSentinel ? [t.ports.sentinel] : []),
            ];
            const onLoopback = `127.0.0.1:${String(t.monitoring.ports.node)} `;
            let listening = "";
            for (let tries = 0; tries < 20; tries++) {
                listening = (await ssh(s, n.name, ["ss", "-ltnH"])).stdout;
                const done = publicTcpPorts(listening).join() === expected.sort((a, b) => a - b).join();
                if (done && listening.includes(onLoopback)) break;
                await new Promise((wake) => setTimeout(wake, 500));
            }
            expect({
                node: n.name,
                exposed: publicTcpPorts(listening),
                nodeExporter: listening.includes(onLoopback),
            }).toEqual({
                node: n.name,
                exposed: expected.sort((a, b) => a - b),
                nodeExporter: true,
            });
        }
    });

    it("hands mastership to the named node before a master goes down, and leaves a replica alone", async () => {
        const home = s.topology.preferredMaster;
        const [first, second] = s.nodes.map((n) => n.name).filter((n) => n !== home);
        expect(await master(s)).toBe(home);

        // A node that is not the master: nothing to hand over, mastership stays.
        const idle = await runCheck(s, first, "failover-drill", ["handover", endpoint(first), endpoint(home)]);
        expect(idle.code).toBe(0);
        expect(idle.stdout).toContain("is not the master");
        expect(await master(s)).toBe(home);

        // The master, with the node resized before it named first: a controlled failover to exactly that node.
        const t = Date.now();
        const moved = await runCheck(s, home, "failover-drill", [
            "handover",
            endpoint(home),
            endpoint(second),
            endpoint(first),
        ]);
        console.log(`handover took ${String((Date.now() - t) / 1000)} s:\n${moved.stdout}`);
        expect(`exit ${String(moved.code)}\n${moved.stdout}${moved.stderr}`).toMatch(/^exit 0\n/);
        expect(moved.stdout).toContain(`handing mastership from ${endpoint(home)} to ${endpoint(second)}`);
        expect(await master(s)).toBe(second);
        const statuses = await redisStatus(s);
        expect(statuses.find((n) => n.name === home)?.role).toBe("replica");

        // Back home, as a deployment's checks would leave it.
        const back = await runCheck(s, home, "failover-drill", ["failback-only"]);
        expect(`exit ${String(back.code)}\n${back.stdout}${back.stderr}`).toMatch(/^exit 0\n/);
        expect(await master(s)).toBe(home);
    });

    it("hands mastership over first when a package upgrade restarts the master's Redis", async () => {
        // What unattended-upgrade runs for a redis-server fix: dpkg, whose postinst restarts redis-server.service
        // (deb-systemd-invoke restart); a reinstall from the lab's repository takes the same path.
        const home = s.topology.preferredMaster;
        expect(await master(s)).toBe(home);
        const t0 = Date.now();
        const r = await ssh(
            s,
            home,
            ["DEBIAN_FRONTEND=noninteractive apt-get install --reinstall -y -q -o Dpkg::Use-Pty=0 redis-server"],
            300_000,
        );
        console.log(`reinstall of redis-server on the master took ${String(Date.now() - t0)} ms`);
        expect(`exit ${String(r.code)}\n${r.stderr}`).toMatch(/^exit 0\n/);
        const handover = await ssh(s, home, ["cat", PATHS.lastHandover]);
        // Written by this restart's stop hook (the containers share the host's clock).
        const [kind, at] = handover.stdout.split(" ");
        expect({ kind, recent: Number(at) >= t0 }).toEqual({ kind: "planned", recent: true });
        const moved = await master(s);
        expect(moved).toBeDefined();
        expect(moved).not.toBe(home);
        // The restarted old master rejoins as a replica of the new one: one master throughout.
        let roles = await redisStatus(s);
        for (let i = 0; i < 60 && roles.find((n) => n.name === home)?.role !== "replica"; i++) {
            await new Promise((done) => setTimeout(done, 1000));
            roles = await redisStatus(s);
        }
        expect(roles.filter((n) => n.role === "master").map((n) => n.name)).toEqual([moved]);
        expect(roles.find((n) => n.name === home)?.role).toBe("replica");
    });

    rotationUnderLoad();

    it("leaves nothing behind after down", async () => {
        lab("down");
        expect(await labLeftovers()).toEqual([]);
    });
});
