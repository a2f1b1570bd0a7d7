import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ConfigError, stackFileProblems } from "../topology";

/** The project root: where Pulumi.yaml lives. */
export const PROJECT_DIR = join(__dirname, "..");

/**
 * Reads `Pulumi.<stack>.yaml` into the flat string map Pulumi gives a program at run time (structured values as JSON).
 * Encrypted `secure:` values cannot be read offline; they are reported as such.
 */
export function readStackConfig(stack: string, dir = PROJECT_DIR): Record<string, string> {
    const file = join(dir, `Pulumi.${stack}.yaml`);
    if (!existsSync(file))
        throw new ConfigError([
            { key: `stack ${stack}`, message: `no ${file}; create it (see Pulumi.prod.yaml) or pick another --stack` },
        ]);
    const doc = (parse(readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    const problems = stackFileProblems(doc.config ?? {});
    if (problems.length > 0) throw new ConfigError(problems);
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(doc.config ?? {})) {
        if (value && typeof value === "object" && "secure" in value)
            throw new ConfigError([
                {
                    key,
                    message:
                        "is an encrypted secure: value, which review and the lab cannot read; leave it out of this stack file or review another stack",
                },
            ]);
        out[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return out;
}
