/**
 * The syntax of Redis's configuration files (redis.conf and sentinel.conf), written and read back: one directive per
 * line, arguments separated by spaces, an argument that is empty or holds anything but plain characters written as a
 * double-quoted string with backslash escapes (https://redis.io/docs/latest/operate/oss_and_stack/management/config-file/).
 */
export type Directive = readonly [name: string, ...args: (string | number)[]];

/** A blank line and a `# comment` before the next directive, for the reader of the rendered file. */
export interface Section {
    readonly comment: string;
    readonly directives: readonly Directive[];
}

const BARE = /^[A-Za-z0-9._/:@,+=*-]+$/;

export function quoteArg(arg: string | number): string {
    const s = String(arg);
    if (BARE.test(s)) return s;
    return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

export function renderConfig(header: readonly string[], sections: readonly Section[]): string {
    const lines = header.map((h) => `# ${h}`);
    for (const section of sections) {
        if (section.directives.length === 0) continue;
        lines.push("", ...section.comment.split("\n").map((c) => `# ${c}`));
        for (const [name, ...args] of section.directives) lines.push([name, ...args.map(quoteArg)].join(" "));
    }
    return `${lines.join("\n")}\n`;
}

/** Parses the same format back (used by tests and `review` to show effective settings). */
export function parseConfig(text: string): Directive[] {
    const out: Directive[] = [];
    for (const raw of text.split("\n")) {
        const line = raw.trim();
        if (!line || line.startsWith("#")) continue;
        const args: string[] = [];
        // A quoted argument (backslash escapes inside) or a bare one; a match that opens with a quote is the former.
        for (const [whole, quoted, bare] of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g))
            args.push(
                whole.startsWith('"') ? quoted.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c)) : bare,
            );
        const [name, ...rest] = args;
        out.push([name, ...rest]);
    }
    return out;
}
