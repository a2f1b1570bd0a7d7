/** One problem with the stack configuration: the key it is about and what to do. */
export interface ConfigProblem {
    /** Fully qualified key path, e.g. `redis-ha:nodes[1].roles`. */
    readonly key: string;
    /** What is wrong and how to fix it, in one sentence. */
    readonly message: string;
}

/**
 * Bad stack configuration. Raised before any resource is registered; its message has one line per problem so that a
 * single bad input gives a single line naming the key and the fix.
 */
export class ConfigError extends Error {
    readonly problems: readonly ConfigProblem[];
    constructor(problems: readonly ConfigProblem[]) {
        super(problems.map((p) => `${p.key}: ${p.message}`).join("\n"));
        this.name = "ConfigError";
        this.problems = problems;
    }
}
