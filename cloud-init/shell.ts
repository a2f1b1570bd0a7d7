/** A POSIX shell single-quoted word: safe for any value in a file that `.` sources (node.env, paths.sh). */
export function shellQuote(value: string | number): string {
    return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

/** `NAME='value'` lines, one per entry, as a sourced shell file carries them. */
export function shellAssignments(vars: readonly (readonly [string, string | number])[]): string {
    return vars.map(([k, v]) => `${k}=${shellQuote(v)}\n`).join("");
}
