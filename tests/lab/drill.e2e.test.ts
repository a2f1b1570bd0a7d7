/**
 * The lab end to end, as CI runs it: `up`, the master-crash drill and `down` for the dev and prod stacks, through the
 * CLI a person uses. Asserts correctness only (cloud-init clean on every node, one master after recovery, the old
 * master back as a replica, quorum, no acknowledged write lost, nothing left behind); timings are printed.
 * Also proves the shipped check scripts fail, with a message a person can act on, on a broken cluster.
 *
 * Root and the lab's tools are required; elsewhere (or with RHL_LAB=skip) it is skipped.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { heal, partitionNode } from "../../lab/network";
import { execInNode } from "../../lab/nodes";
import { isRoot, missingTools } from "../../lab/preflight";
import { runCheck } from "../../lab/ssh";
import { prepareLabStack } from "../../lab/stack";

const ROOT = path.join(__dirname, "..", "..");
const enabled =
    process.env.RHL_LAB !== "skip" &&
    isRoot() &&
    missingTools([
        "systemd-nspawn",
        "mmdebstrap",
        "dpkg-scanpackages",
        "ip",
        "bridge",
        "nsenter",
        "mount",
        "umount",
        "redis-cli",
    ]).length === 0;
const describeLab = enabled ? describe : describe.skip;
// On a fresh machine the first `up` also builds the base image.
jest.setTimeout(900_000);

function lab(...args: string[]) {
    const r = spawnSync(path.join(ROOT, "node_modules", ".bin", "tsx"), ["lab/cli.ts", ...args], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 900_000,
    });
    if (r.status !== 0 && !args.includes("drill"))
        throw new Error(`lab ${args.join(" ")} exited ${r.status}:\n${r.stderr}\n${r.stdout}`);
    return r;
}

function leftovers(): string[] {
    const out = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: "utf8" }).stdout ?? "";
    return [
        ...out("ip", ["netns", "list"])
            .split("\n")
            .filter((l) => l.startsWith("rhl-")),
        ...out("ip", ["-br", "link"])
            .split("\n")
            .filter((l) => l.startsWith("rhl-")),
        ...out("pgrep", ["-a", "systemd-nspawn"])
            .split("\n")
            .filter((l) => l.includes("rhl-")),
        ...out("findmnt", ["-rn", "-o", "TARGET"])
            .split("\n")
            .filter((l) => l.includes("redis-ha-lab")),
    ].filter(Boolean);
}

describeLab.each(["dev", "prod"])("lab stack %s", (stack) => {
    afterAll(() => {
        lab("down");
    });

    it("comes up from its exact user-data: cloud-init clean everywhere, replication and quorum healthy", () => {
        lab("down");
        const r = lab("up", "--stack", stack, "--json");
        const up = JSON.parse(r.stdout);
        expect(up.stack).toBe(stack);
        expect(up.masterName).toBe("mymaster");
        expect(up.sentinels.length).toBe(3);
        for (const n of up.nodes) expect(n.host).toMatch(/^198\.1[89]\./);
        const status = JSON.parse(lab("status", "--stack", stack, "--json").stdout);
        expect(status.cloudInit.map((c: { result: string }) => c.result)).toEqual(status.cloudInit.map(() => "done"));
        expect(status.redis.filter((n: { role: string }) => n.role === "master")).toHaveLength(1);
        for (const s of status.sentinels) expect(s.ckquorum).toMatch(/^OK/);
    });

    it("survives a master crash with no acknowledged write lost", () => {
        const r = lab("drill", "--stack", stack, "--scenario", "master-crash", "--json");
        expect(r.stderr).not.toMatch(/^lab: /m);
        const report = JSON.parse(r.stdout);
        // Timings are benchmark figures: printed, never asserted.
        process.stdout.write(
            `[${stack}] master-crash: switch ${JSON.stringify(report.switchMs)} ms, rto ${JSON.stringify(report.rtoMs)} ms, ` +
                `${report.ackedWrites} acknowledged writes, ${report.lostAckedWrites} lost\n`,
        );
        expect(report.ackedWrites).toBeGreaterThan(100);
        expect(report.lostAckedWrites).toBe(0);
        expect(report.oldMasterRejoinedAsReplica).toBe(true);
        expect(report.perRun[0].mastersAfter).toBe(1);
        expect(report.quorumOk).toBe(true);
        expect(report.perRun[0].newMaster).not.toBe(report.perRun[0].oldMaster);
        expect(report.correct).toBe(true);
        expect(r.status).toBe(0);
    });

    // Every other scenario, through the application client: nothing acknowledged is lost, and the only errors that
    // reach the application are ones a retry could not have fixed (an in-flight write of unknown outcome, a write no
    // replica acknowledged, a deadline, the breaker while no master takes writes). region-loss needs regions: prod.
    const RETRY_WOULD_NOT_HELP = [
        "OutcomeUnknownError",
        "WriteNotAcknowledgedError",
        "DeadlineExceededError",
        "CircuitOpenError",
    ];
    const scenarios =
        stack === "dev" ? ["master-hang", "master-partition", "sentinel-crash", "replica-crash"] : ["region-loss"];
    it.each(scenarios)(
        "survives %s with the client: nothing lost, no avoidable error reaching the application",
        (scenario) => {
            const r = lab("drill", "--stack", stack, "--scenario", scenario, "--json");
            const report = JSON.parse(r.stdout);
            const errors = report.perRun[0].writerErrors as Record<string, number>;
            process.stdout.write(
                `[${stack}] ${scenario}: switch ${JSON.stringify(report.switchMs)} ms, rto ${JSON.stringify(report.rtoMs)} ms, ` +
                    `${report.ackedWrites} acknowledged, ${report.lostAckedWrites} lost, errors seen by the writer ${JSON.stringify(errors)}\n`,
            );
            expect(report.lostAckedWrites).toBe(0);
            expect(report.quorumOk).toBe(true);
            expect(report.correct).toBe(true);
            expect(Object.keys(errors).filter((k) => !RETRY_WOULD_NOT_HELP.includes(k))).toEqual([]);
        },
    );

    if (stack === "dev") {
        it("runs the post-deploy check scripts: pass when healthy, fail with the reason when broken", async () => {
            const s = await prepareLabStack("dev");
            for (const n of ["dev-a", "dev-b", "dev-c"]) {
                expect((await runCheck(s, n, "check-cloud-init", ["30"])).stdout).toMatch(/^OK /);
                expect((await runCheck(s, n, "check-node", ["30"])).stdout).toMatch(/^OK /);
                expect((await runCheck(s, n, "check-quorum", ["30"])).stdout).toMatch(/^OK /);
            }

            // The post-deploy drill: a controlled failover, a probe write, the old master rejoining, fail-back home.
            const drill = await runCheck(s, "dev-a", "failover-drill");
            expect({ code: drill.code, output: drill.stdout + drill.stderr }).toMatchObject({ code: 0 });
            expect(drill.stderr).toBe("");
            expect(drill.stdout).toMatch(/Sentinels agree: 198\.18\.1\.1[12]:6379 is master/);
            expect(drill.stdout).toMatch(/probe write on .* acknowledged and read back/);
            expect(drill.stdout).toMatch(/OK: master back on 198\.18\.1\.10:6379; OK 3 usable Sentinels/);

            // A replica down: the replica's own check and the master's both say so.
            await execInNode("dev-c", ["systemctl", "stop", "redis-server"]);
            const replica = await runCheck(s, "dev-c", "check-node", ["3"]);
            expect(replica.code).not.toBe(0);
            expect(replica.stdout).toMatch(/^FAIL dev-c: redis-server does not answer/);
            const master = await runCheck(s, "dev-a", "check-node", ["3"]);
            expect(master.stdout).toMatch(/^FAIL dev-a: master has 1 of 2 replicas connected/);

            // A master with no replica at all.
            await execInNode("dev-b", ["systemctl", "stop", "redis-server"]);
            expect((await runCheck(s, "dev-a", "check-node", ["3"])).stdout).toMatch(
                /^FAIL dev-a: master has 0 of 2 replicas connected/,
            );

            // A Sentinel whose view cannot be had (Sentinel re-converges a genuinely diverging one within seconds, so
            // a partition is how views part for longer): the check lists each Sentinel's view.
            await partitionNode("dev-c");
            try {
                const views = await runCheck(s, "dev-a", "check-quorum", ["3"]);
                expect(views.code).not.toBe(0);
                expect(views.stdout).toMatch(/^FAIL dev-a: quorum check failed/);
                expect(views.stdout).toMatch(/198\.18\.1\.10:26379 198\.18\.1\.10:6379/);
                expect(views.stdout).toMatch(/198\.18\.1\.12:26379 unreachable/);
            } finally {
                await heal();
            }

            // Sentinels down: no quorum.
            await execInNode("dev-b", ["systemctl", "stop", "redis-sentinel"]);
            await execInNode("dev-c", ["systemctl", "stop", "redis-sentinel"]);
            // Sentinel counts a peer as gone after down-after (5 s): the check retries past that.
            const noQuorum = await runCheck(s, "dev-a", "check-quorum", ["12"]);
            expect(noQuorum.stdout).toMatch(/CKQUORUM: NOQUORUM/);
            expect(noQuorum.stdout).toMatch(/198\.18\.1\.11:26379 unreachable/);
        });
    }

    it("leaves nothing behind after down", () => {
        lab("down");
        lab("down"); // safe twice
        expect(leftovers()).toEqual([]);
    });
});
