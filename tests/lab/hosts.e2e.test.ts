/**
 * In the lab (dev stack): every node boots with the host key the program generated and published, lab SSH pins it
 * and refuses any other key, and the resize handover (`failover-drill handover`, the step a plan change runs before
 * taking a master down) moves mastership by a controlled failover to the node it names, and does nothing on a node
 * that is not the master. The lab cannot resize a machine; the order of resizes is tested under mocks
 * (tests/resize.test.ts).
 *
 * Uses the lab's global resources: run under the shared lock (`flock /tmp/redis-ha-lab.lock npx jest <this file>`).
 * Root and the lab's tools are required; elsewhere (or with RHL_LAB=skip) it is skipped.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { publicKeyLine } from "../../cloud-init";
import { redisStatus } from "../../lab/labCluster";
import { LAB_TOOLS } from "../../lab/preflight";
import { runCheck, ssh, sshArgv } from "../../lab/ssh";
import { prepareLabStack, type LabStack } from "../../lab/stack";
import { describeLab, labCli } from "./labTier";

const describeHosts = describeLab("lab dev: host keys and the resize handover", LAB_TOOLS);
jest.setTimeout(900_000);

function lab(...args: string[]) {
    return labCli(args);
}

async function master(s: LabStack): Promise<string | undefined> {
    return (await redisStatus(s)).find((n) => n.role === "master")?.name;
}

describeHosts("lab dev: host keys and the resize handover", () => {
    let s: LabStack;
    const endpoint = (node: string) =>
        `${s.nodes.find((n) => n.name === node)?.address ?? "?"}:${String(s.topology.ports.redis)}`;

    beforeAll(async () => {
        lab("down");
        lab("up", "--stack", "dev");
        s = await prepareLabStack("dev");
    });
    afterAll(() => {
        lab("down");
    });

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
});
