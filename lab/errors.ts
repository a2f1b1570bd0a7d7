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

/** A name that cannot be a lab node's: teardown skips such names, since nothing of the lab can carry them. */
export class InvalidNodeNameError extends LabError {
    constructor(readonly nodeName: string) {
        super(
            `invalid node name "${nodeName}": use 1-48 characters of a-z, 0-9 and "-", not starting or ending with "-"`,
        );
        this.name = "InvalidNodeNameError";
    }
}

/** A drill's wait for a condition ran out of time; some waits expect this and carry on. */
export class DrillTimeoutError extends LabError {
    constructor(
        readonly what: string,
        readonly timeoutMs: number,
    ) {
        super(`drill: timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
        this.name = "DrillTimeoutError";
    }
}

/** Collapses whitespace (newlines included) so a message fits on one line. */
export function oneLine(text: string): string {
    return text.replace(/\s+/g, " ").trim();
}
