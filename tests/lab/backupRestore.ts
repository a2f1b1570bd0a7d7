/**
 * The backup-restore drill on the prod stack, through the command CI and a person run:
 * `npm run lab -- drill --stack prod --scenario backup-restore --json`, run last by tests/lab/drill.e2e.test.ts on the
 * prod lab its drills used, booted with backups on (the drill reuses a lab that is up to date; one boot for all: the
 * suite's time budget). On the master the Sentinels name, emptied first, it writes about 200 MiB of keys of five types
 * (the bucket on the lab's local S3 server, s3rver on the host's lab address), runs the real backup timer's service on
 * the backup node, FLUSHALL, restores with the real redis-restore and compares every key; then boots a new prod
 * cluster with backup.seedFrom naming that backup and compares every key again.
 * Asserts correctness; prints the timings (backup vs a plain s3cmd put of the same RDB, restore, seeded boot).
 */
import { spawnSync } from "node:child_process";
import type { BackupDrillReport } from "../../lab/backupDrill";
import { describeTier, firstMissing } from "../tiers";
import { labCli } from "./labTier";

const hasS3cmd = spawnSync("sh", ["-c", "command -v s3cmd"]).status === 0;
const missing = firstMissing([
    [hasS3cmd, "s3cmd missing (apt-get install s3cmd; the drill creates the bucket from the host)"],
]);

/** The backup-restore drill, as a describe block of the caller's prod lab suite (the lab is up with backups on). */
export function backupRestore(): void {
    describeTier("backups to Object Storage", missing)("backup-restore drill", () => {
        it("restores every key of a 200 MiB dataset after FLUSHALL, and seeds a new cluster with every key, from a backup whose checksum matched", () => {
            const started = Date.now();
            const r = labCli(["drill", "--stack", "prod", "--scenario", "backup-restore", "--json"], {
                allowFailure: true,
            });
            const report = JSON.parse(r.stdout) as BackupDrillReport;
            process.stdout.write(
                `backup-restore drill: ${JSON.stringify(report)}\n` +
                    `backup upload and verification ${String(report.backupMs)} ms (whole services ` +
                    `${report.backupRuns.map((b) => String(b.serviceMs)).join(", ")} ms) vs plain put ${String(report.rawUploadMs)} ms ` +
                    `(${String(report.throughputRatio)} of raw throughput, target 0.8; ` +
                    `in one request ${String(report.rawUploadSameOptionsMs)} ms), restore ${String(report.restoreMs)} ms ` +
                    `(target 60000), seeded cluster ${String(report.seed?.seedMs)} ms with its boot, ` +
                    `whole drill with boots ${String(Date.now() - started)} ms\n${r.stderr.slice(-2000)}`,
            );
            expect(report.mismatches).toBe(0);
            expect(report.checksumOk).toBe(true);
            expect(report.keysRestored).toBe(report.keys);
            // The size: a dataset of at least 200 MB (Redis's own count of it).
            expect(report.datasetBytes).toBeGreaterThanOrEqual(200_000_000);
            expect(report.backupBytes).toBeGreaterThan(0);
            // Two real backups around the plain put, each with its own verified object.
            expect(report.backupRuns).toHaveLength(2);
            for (const b of report.backupRuns) expect(b.phasesMs.transfer).toBeGreaterThan(0);
            // The new cluster: its first master verified and loaded the backup before Redis started; replicas synced it.
            expect(report.seed?.seedLog).toMatch(/^redis-seed: checksum ok \([0-9a-f]{64}, \d+ bytes\)$/m);
            expect(report.seed?.seedLog).toContain(`redis-seed: seeded from ${String(report.seed?.seedFrom)}`);
            expect(report.seed?.keysSeeded).toBe(report.keys);
            expect(report.seed?.mismatches).toBe(0);
            expect(report.seed?.replicasInSync).toBe(true);
            expect(report.correct).toBe(true);
            expect(r.status).toBe(0);
        });
    });
}
