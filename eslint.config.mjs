// @ts-check
import eslint from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

/** Our folders, and which of them each layer must not import (ARCHITECTURE.md). */
const FOLDERS = ["topology", "cloud-init", "components", "program", "engine", "review", "lab", "client", "policy"];
/** @param {string} from @param {string[]} allowed @param {string[]} typesFrom folders it may import types from */
function layer(from, allowed, typesFrom = []) {
    const denied = FOLDERS.filter((f) => f !== from && !allowed.includes(f) && !typesFrom.includes(f));
    return {
        files: [`${from}/**/*.ts`],
        rules: {
            "no-restricted-imports": [
                "error",
                {
                    patterns: [
                        {
                            group: denied.flatMap((f) => [`**/${f}`, `**/${f}/**`]),
                            message: `${from}/ may import only ${allowed.join(", ") || "its own files"} (ARCHITECTURE.md)`,
                        },
                        ...typesFrom.map((f) => ({
                            group: [`**/${f}`, `**/${f}/**`],
                            allowTypeImports: true,
                            message: `${from}/ may import only types from ${f}/ (ARCHITECTURE.md)`,
                        })),
                    ],
                },
            ],
        },
    };
}

export default defineConfig(
    { ignores: ["node_modules/", "dist/", "**/*.js", "**/*.mjs"] },
    eslint.configs.recommended,
    tseslint.configs.strictTypeChecked,
    {
        languageOptions: {
            parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
        },
        rules: {
            // Template literals with numbers are how this project writes messages and redis.conf lines.
            "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
        },
    },
    layer("topology", []),
    layer("cloud-init", ["topology"]),
    // The topologySummary output is the pack's contract: its type lives in policy/ and the program imports it.
    layer("components", ["topology", "cloud-init"], ["policy"]),
    layer("engine", ["topology", "cloud-init", "components", "program"]),
    layer("review", ["topology", "cloud-init", "components", "program", "engine", "policy"]),
    layer("lab", ["topology", "cloud-init", "components", "program", "engine", "client"]),
    layer("client", []),
    // The policy pack is published to Pulumi Cloud from its own folder: it may import nothing of ours.
    layer("policy", []),
    layer("bench", ["client"]),
    layer("examples", ["client"]),
);
