/**
 * The one error type the lab throws on purpose.
 *
 * Every lab failure has to be readable as a single line by someone running the
 * lab from a terminal ("install mmdebstrap", "198.18.0.0/15 is already routed
 * via eth0"), so the message is forced onto one line here rather than trusted
 * to each call site. Multi-line context (a log tail, command output) goes into
 * `detail`, which callers may print on request.
 */
export class LabError extends Error {
    readonly detail: string | undefined;

    constructor(message: string, detail?: string) {
        super(oneLine(message));
        this.name = "LabError";
        this.detail = detail;
    }
}

/** Collapses whitespace (newlines included) so a message fits on one line. */
export function oneLine(text: string): string {
    return text.replace(/\s+/g, " ").trim();
}
