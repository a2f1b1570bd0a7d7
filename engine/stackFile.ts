import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { CONFIG_NAMESPACE, ConfigError, SECRET_KEYS, stackFileProblems } from "../topology";

/** The project root: where Pulumi.yaml lives. */
export const PROJECT_DIR = join(__dirname, "..");

/**
 * Reads `Pulumi.<stack>.yaml` into the flat string map Pulumi gives a program at run time (structured values as JSON).
 * This is only the stack file: what the program receives is `programConfig`, which adds the project's defaults.
 * Encrypted `secure:` values cannot be read offline; they are reported as such.
 */
export function readStackConfig(stack: string, dir = PROJECT_DIR): Record<string, string> {
    const file = join(dir, `Pulumi.${stack}.yaml`);
    if (!existsSync(file))
        throw new ConfigError([
            { key: `stack ${stack}`, message: `no ${file}; create it (see Pulumi.prod.yaml) or pick another --stack` },
        ]);
    let doc: { config?: Record<string, unknown> };
    try {
        doc = (parse(readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    } catch (e) {
        const first = (e instanceof Error ? e.message : String(e)).split("\n")[0];
        throw new ConfigError([{ key: `stack ${stack}`, message: `${file} is not valid YAML: ${first}` }]);
    }
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
        out[key] = configString(value);
    }
    return out;
}

/** How the CLI hands a value to the program: strings as they are, anything else as JSON. */
function configString(value: unknown): string {
    return typeof value === "string" ? value : JSON.stringify(value);
}

/** One key of Pulumi.yaml's `config:` block, as far as the CLI's handling of it goes. */
export interface ProjectConfigKey {
    readonly default?: unknown;
    readonly secret: boolean;
}

/** The `config:` block of Pulumi.yaml, by fully qualified key (`redis-ha:<key>`). */
export function readProjectConfig(dir = PROJECT_DIR): ReadonlyMap<string, ProjectConfigKey> {
    const doc = parse(readFileSync(join(dir, "Pulumi.yaml"), "utf8")) as {
        name: string;
        config?: Record<string, { default?: unknown; secret?: boolean } | null>;
    };
    const keys = new Map<string, ProjectConfigKey>();
    for (const [key, decl] of Object.entries(doc.config ?? {})) {
        const full = key.includes(":") ? key : `${doc.name}:${key}`;
        keys.set(full, {
            ...(decl && "default" in decl ? { default: decl.default } : {}),
            secret: decl?.secret === true,
        });
    }
    return keys;
}

/** The configuration a Pulumi program receives: every value as a string, and which keys are secrets. */
export interface ProgramConfig {
    readonly values: Readonly<Record<string, string>>;
    /** Fully qualified keys that the program reads as secrets (`config.getSecret` / `isSecret`). */
    readonly secretKeys: readonly string[];
}

/**
 * The configuration exactly as the Pulumi CLI builds it for the program: the stack's values, then the project's
 * declared `default` for every key the stack does not set (a default of `""` arrives as `""`, not as unset), and the
 * keys declared `secret: true` (plus the program's own credential keys) as secrets. `review`, the lab and the tests
 * run the program on this, so they see what `pulumi up` runs.
 *
 * @param stackValues the stack's own values (from `readStackConfig`, possibly edited by a test)
 */
export function programConfig(stackValues: Readonly<Record<string, string>>, dir = PROJECT_DIR): ProgramConfig {
    const values: Record<string, string> = { ...stackValues };
    const secretKeys = new Set<string>([...SECRET_KEYS].map((k) => `${CONFIG_NAMESPACE}:${k}`));
    for (const [key, decl] of readProjectConfig(dir)) {
        if (!(key in values) && decl.default !== undefined) values[key] = configString(decl.default);
        if (decl.secret) secretKeys.add(key);
    }
    return { values, secretKeys: [...secretKeys].filter((k) => k in values).sort() };
}

/** `programConfig` of a shipped stack file. */
export function stackProgramConfig(stack: string, dir = PROJECT_DIR): ProgramConfig {
    return programConfig(readStackConfig(stack, dir), dir);
}
