import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { PROJECT_DIR, readStackConfig } from "../engine/stackFile";
import { KEY_GROUPS, parseStackConfig, SECRET_KEYS, StackConfigSchema } from "../topology";

interface Declared {
    type?: "string" | "integer" | "boolean" | "array";
    items?: { type: string };
    default?: unknown;
    description?: string;
    secret?: boolean;
}
const project = parse(readFileSync(join(PROJECT_DIR, "Pulumi.yaml"), "utf8")) as {
    name: string;
    runtime: unknown;
    config: Record<string, Declared>;
};
const stacks = readdirSync(PROJECT_DIR)
    .filter((f) => /^Pulumi\.[\w-]+\.yaml$/.test(f))
    .map((f) => f.slice("Pulumi.".length, -".yaml".length));

describe("Pulumi.yaml", () => {
    it("is a TypeScript nodejs project named after the config namespace", () => {
        expect(project.name).toBe("redis-ha");
        expect(project.runtime).toEqual({ name: "nodejs", options: { typescript: true } });
    });

    it("declares exactly the keys the program accepts, each with a description", () => {
        // A group of keys (`backup`) is declared flat, one `backup.<key>` per key of its object schema.
        const accepted = Object.keys(StackConfigSchema.shape).flatMap((key) =>
            key in KEY_GROUPS ? KEY_GROUPS[key].map((k) => `${key}.${k}`) : [key],
        );
        expect(Object.keys(project.config).sort()).toEqual(accepted.sort());
        for (const [key, d] of Object.entries(project.config))
            expect(`${key}: ${d.description ?? ""}`).toMatch(/^[\w.]+: .{20,}/);
    });

    // With `secret: true` the CLI refuses a plaintext value in a stack file, so a password is never committed in clear.
    it("declares exactly the credential keys secret", () => {
        const declaredSecret = Object.entries(project.config)
            .filter(([, d]) => d.secret === true)
            .map(([k]) => k);
        expect(declaredSecret.sort()).toEqual([...SECRET_KEYS].sort());
    });

    // Pulumi stops a preview with "Stack 'x' is missing configuration value 'k'" for a declared key that has no default
    // and no value in the stack: only the required keys may lack a default.
    it("gives every optional key a default; every stack file sets the required ones", () => {
        const required = Object.entries(project.config)
            .filter(([, d]) => d.default === undefined)
            .map(([k]) => k);
        expect(required.sort()).toEqual(["nodes", "primaryRegion"]);
        expect(stacks).toEqual(expect.arrayContaining(["prod", "dev"]));
        for (const stack of stacks)
            for (const key of required) expect(readStackConfig(stack)).toHaveProperty(`redis-ha:${key}`);
    });

    it("declares defaults of the declared type that mean the same as the program's own defaults", () => {
        const base = readStackConfig("prod");
        for (const [key, d] of Object.entries(project.config)) {
            if (d.default === undefined) continue;
            const kind = Array.isArray(d.default)
                ? "array"
                : typeof d.default === "number"
                  ? "integer"
                  : typeof d.default;
            expect(`${key}: ${kind}`).toBe(`${key}: ${d.type}`);
            const without = Object.fromEntries(Object.entries(base).filter(([k]) => k !== `redis-ha:${key}`));
            // As the CLI passes it: strings as they are, everything else as JSON.
            const withDefault = {
                ...without,
                [`redis-ha:${key}`]: typeof d.default === "string" ? d.default : JSON.stringify(d.default),
            };
            expect(parseStackConfig(withDefault)).toEqual(parseStackConfig(without));
        }
    });
});
