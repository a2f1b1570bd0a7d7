/**
 * `addressing: ephemeral` in the lab: the dev stack (prod too, by hand) comes up with no address in any
 * user-data, the bootstrap step (run over SSH as the program's remote commands run it) hands every node its peers,
 * the same post-deploy checks and failover-drill script pass, and the master-crash drill loses no acknowledged write.
 * The reserved mode runs the same drills in drill.e2e.test.ts.
 *
 * Root and the lab's tools are required (tests/lab/labTier.ts): elsewhere, or with RHL_LAB=skip, it is skipped;
 * under CI=true it fails.
 */
import { spawnSync } from "node:child_process";
import { drillRunner, filesInUserData, PATHS } from "../../cloud-init";
import { runCheck, sshArgv } from "../../lab/ssh";
import { prepareLabStack } from "../../lab/stack";
import { LAB_TOOLS } from "../../lab/preflight";
import { describeLab, labCli, labLeftovers } from "./labTier";

const describeStacks = describeLab(
    "lab stacks with ephemeral addressing (up, checks, master-crash drill, down)",
    LAB_TOOLS,
);
jest.setTimeout(900_000);

function lab(...args: string[]) {
    return labCli(args, { allowFailure: args.includes("drill") });
}

// dev in CI (the suite's time budget); prod boots and drills the same way (`npm run lab -- drill --stack prod
// --addressing ephemeral`).
describeStacks.each(["dev"])("lab stack %s with addressing: ephemeral", (stack) => {
    afterAll(() => {
        lab("down");
    });

    it("comes up with address-free user-data, bootstraps every node, and passes the post-deploy checks", async () => {
        lab("down");
        const up = JSON.parse(lab("up", "--stack", stack, "--addressing", "ephemeral", "--json").stdout) as {
            addressing: string;
            nodes: { name: string; host: string }[];
        };
        expect(up.addressing).toBe("ephemeral");
        const s = await prepareLabStack(stack);
        expect(s.topology.addressing).toBe("ephemeral");
        expect(s.bootstrap.map((b) => b.node).sort()).toEqual(s.nodes.map((n) => n.name).sort());
        for (const n of s.nodes) {
            for (const other of s.nodes) expect(n.userData).not.toContain(other.address);
            expect(filesInUserData(n.userData).map((f) => f.path)).not.toContain(PATHS.nodeEnv);
        }
        const status = JSON.parse(lab("status", "--stack", stack, "--json").stdout) as {
            redis: { role: string }[];
            sentinels: { ckquorum: string }[];
        };
        expect(status.redis.filter((n) => n.role === "master")).toHaveLength(1);
        expect(status.redis.filter((n) => n.role === "replica")).toHaveLength(status.redis.length - 1);
        for (const x of status.sentinels) expect(x.ckquorum).toMatch(/^OK/);
        for (const n of s.topology.nodes) {
            if (n.runsRedis) expect((await runCheck(s, n.name, "check-node", ["30"])).stdout).toMatch(/^OK /);
            if (n.runsSentinel) expect((await runCheck(s, n.name, "check-quorum", ["30"])).stdout).toMatch(/^OK /);
        }
        // Re-running a node's bootstrap with the same peers changes nothing and says so.
        const step = s.bootstrap[0];
        const [file, ...args] = sshArgv(s, step.node, [step.command]);
        const rerun = spawnSync(file, args, { input: step.stdin, encoding: "utf8" });
        expect(rerun.status).toBe(0);
        expect(rerun.stdout).toMatch(/^bootstrap of \S+ current: peers /m);

        // The post-deploy failover drill script, as the program's drill command runs it: failover, probe, fail-back.
        const drill = await runCheck(s, drillRunner(s.topology).name, "failover-drill");
        // The script's stdout rides along so a failure shows its steps and each Sentinel's view.
        expect({ code: drill.code, output: drill.stdout + drill.stderr }).toMatchObject({ code: 0 });
        expect(drill.stderr).toBe("");
        expect(drill.stdout).toMatch(/probe write on .* acknowledged and read back/);
    });

    it("survives a master crash with no acknowledged write lost", () => {
        const r = lab("drill", "--stack", stack, "--scenario", "master-crash", "--json");
        expect(r.stderr).not.toMatch(/^lab: /m);
        const report = JSON.parse(r.stdout) as {
            switchMs: unknown;
            rtoMs: unknown;
            ackedWrites: number;
            lostAckedWrites: number;
            oldMasterRejoinedAsReplica: boolean;
            quorumOk: boolean;
            correct: boolean;
        };
        process.stdout.write(
            `[${stack}, ephemeral] master-crash: switch ${JSON.stringify(report.switchMs)} ms, rto ${JSON.stringify(report.rtoMs)} ms, ` +
                `${String(report.ackedWrites)} acknowledged writes, ${String(report.lostAckedWrites)} lost\n`,
        );
        expect(report.ackedWrites).toBeGreaterThan(100);
        expect(report.lostAckedWrites).toBe(0);
        expect(report.oldMasterRejoinedAsReplica).toBe(true);
        expect(report.quorumOk).toBe(true);
        expect(report.correct).toBe(true);
        expect(r.status).toBe(0);
    });

    it("leaves nothing behind after down", async () => {
        lab("down");
        expect(await labLeftovers()).toEqual([]);
    });
});
