import { spawn } from "node:child_process";
import { pathToFileURL } from "node:url";
import { LabError, oneLine } from "./errors";

/**
 * Running host commands for the lab.
 *
 * Everything goes through argv arrays (never a shell string) so node names,
 * package names and addresses cannot be interpreted by a shell. Failures
 * become a LabError whose message is the command plus the last meaningful
 * line it printed, which for ip/mount/mmdebstrap/apt is the actual reason.
 */

export interface RunOptions {
    /** Written to the child's stdin, which is otherwise /dev/null. */
    input?: string | Buffer;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    /** Kill the command (SIGKILL) after this long. */
    timeoutMs?: number;
    /** Return a non-zero exit instead of throwing. */
    allowFailure?: boolean;
    /** Receives each complete output line as it arrives (progress streaming). */
    onLine?: (line: string, stream: "stdout" | "stderr") => void;
}

export interface RunResult {
    /** Exit code, or -1 when the command was killed by a signal or timed out. */
    code: number;
    stdout: string;
    stderr: string;
}

export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    if (argv.length === 0) throw new LabError("run() needs a command");
    const [file, ...args] = argv;
    return new Promise<RunResult>((resolve, reject) => {
        const child = spawn(file, args, {
            cwd: opts.cwd,
            env: opts.env ?? process.env,
            stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        const pending = { stdout: "", stderr: "" };
        const collect = (stream: "stdout" | "stderr", sink: Buffer[]) => (chunk: Buffer) => {
            sink.push(chunk);
            if (!opts.onLine) return;
            const text = pending[stream] + chunk.toString("utf8");
            // mmdebstrap and apt redraw progress with \r; treat it as a line end.
            const lines = text.split(/\r?\n|\r/);
            pending[stream] = lines.pop() ?? "";
            for (const line of lines) if (line.trim()) opts.onLine(line, stream);
        };
        child.stdout?.on("data", collect("stdout", out));
        child.stderr?.on("data", collect("stderr", err));

        let timedOut = false;
        const timer =
            opts.timeoutMs === undefined
                ? undefined
                : setTimeout(() => {
                      timedOut = true;
                      child.kill("SIGKILL");
                  }, opts.timeoutMs);

        child.on("error", (e: NodeJS.ErrnoException) => {
            if (timer) clearTimeout(timer);
            reject(
                e.code === "ENOENT"
                    ? new LabError(`${file}: command not found`)
                    : new LabError(`${file}: ${e.message}`),
            );
        });
        child.on("close", (code) => {
            if (timer) clearTimeout(timer);
            for (const stream of ["stdout", "stderr"] as const) {
                if (opts.onLine && pending[stream].trim()) opts.onLine(pending[stream], stream);
            }
            const result: RunResult = {
                code: code ?? -1,
                stdout: Buffer.concat(out).toString("utf8"),
                stderr: Buffer.concat(err).toString("utf8"),
            };
            if (result.code === 0 || opts.allowFailure) {
                resolve(result);
                return;
            }
            const why = timedOut ? `timed out after ${opts.timeoutMs} ms` : `exit ${result.code}`;
            reject(
                new LabError(
                    `${describe(argv)} failed (${why}): ${lastMeaningfulLine(result.stderr || result.stdout)}`,
                    `${result.stdout}\n${result.stderr}`,
                ),
            );
        });
        if (opts.input !== undefined && child.stdin) {
            // A command that exits without reading its input closes the pipe; its exit status tells why, not the EPIPE.
            child.stdin.on("error", () => undefined);
            child.stdin.end(opts.input);
        }
    });
}

/** The last line that says something; progress noise and blank lines are skipped. */
export function lastMeaningfulLine(text: string): string {
    const lines = text
        .split(/\r?\n|\r/)
        .map((l) => l.trim())
        .filter((l) => l.length > 0 && !/^\d+%|^[.\s]*$/.test(l));
    // apt and mmdebstrap put the reason in their "E:" line; prefer the first one
    // over generic trailers such as "E: mmdebstrap failed".
    const firstError = lines.find((l) => /^E: /.test(l) && !/failed with exit code|mmdebstrap failed/.test(l));
    return oneLine(firstError ?? lines.at(-1) ?? "(no output)");
}

function describe(argv: readonly string[]): string {
    // The program and its first argument are enough to say what failed; long
    // argument lists (package lists, nsenter flags) would bury the reason.
    const shown = argv.slice(0, 2).join(" ");
    return shown.length > 60 ? `${shown.slice(0, 60)}…` : argv.length > 2 ? `${shown} …` : shown;
}

/**
 * The argv that runs a TypeScript file in Node with tsx's loader. Not the `tsx` command: it runs the script as its
 * child and passes on a SIGTERM only if the child confirms it within 30 ms, else SIGKILLs it and exits 143, so a
 * script busy on a loaded machine dies before its SIGTERM handler can report.
 */
export function typescriptArgv(file: string): string[] {
    return [process.execPath, "--import", pathToFileURL(require.resolve("tsx")).href, file];
}
