import type { ResourceValidationPolicy } from "@pulumi/policy";

interface Credentials {
    /** Inputs that carry a credential whenever they are set. */
    readonly whenSet: readonly string[];
    /** Outputs that always carry one (generated secrets). */
    readonly always: readonly string[];
    /** Where the program declares the resource. */
    readonly declaredIn: string;
}

/** Resource types of this program with credential-bearing properties, and what each carries. */
const CREDENTIALS: Readonly<Record<string, Credentials>> = {
    // metadatas: the user-data (passwords, the node's SSH host private key).
    "linode:index/instance:Instance": {
        whenSet: ["metadatas", "rootPass", "stackscriptData"],
        always: [],
        declaredIn: "components/redisNode.ts",
    },
    // connection: root's private key; stdin: rendered files with the passwords, or the private key.
    "command:remote:Command": { whenSet: ["connection", "stdin"], always: [], declaredIn: "components/" },
    "command:local:Command": { whenSet: ["stdin"], always: [], declaredIn: "components/reach.ts" },
    "command:remote:CopyToRemote": { whenSet: ["connection"], always: [], declaredIn: "components/" },
    "random:index/randomPassword:RandomPassword": {
        whenSet: [],
        always: ["result"],
        declaredIn: "components/cluster.ts",
    },
    "tls:index/privateKey:PrivateKey": {
        whenSet: [],
        always: ["privateKeyOpenssh", "privateKeyPem"],
        declaredIn: "components/",
    },
};

/**
 * User-data and every credential-bearing property is secret: listed in the resource's `additionalSecretOutputs`
 * (set by the provider for its own secrets, by the program for the rest), so the state never holds it in plaintext.
 *
 * Severity: critical. The state is readable by everyone who can run `pulumi stack export`; user-data holds the Redis
 * and Sentinel passwords and the node's host key. The policy SDK hands policies plain values (it unwraps secrets),
 * so this rule checks the engine's record of secrecy, `additionalSecretOutputs`.
 * https://www.pulumi.com/docs/iac/concepts/options/additionalsecretoutputs/
 */
export const secretCredentials: ResourceValidationPolicy = {
    name: "redis-ha-secret-credentials",
    description: "User-data and every credential-bearing input and output are secret.",
    enforcementLevel: "mandatory",
    severity: "critical",
    validateResource: (args, reportViolation) => {
        const credentials = (CREDENTIALS as Partial<Record<string, Credentials>>)[args.type];
        if (credentials === undefined) return args.notApplicable(`${args.type} carries no credential this pack knows`);
        const secret = new Set(args.opts.additionalSecretOutputs);
        const present = credentials.whenSet.filter((k) => {
            const v: unknown = args.props[k];
            return v !== undefined && v !== null && v !== "";
        });
        for (const key of [...present, ...credentials.always])
            if (!secret.has(key))
                reportViolation(
                    `${args.type} ${args.name}: ${key} carries a credential but is not secret (not in additionalSecretOutputs: ${[...secret].join(", ") || "none"}); expected it secret so the state never holds it in plaintext. Fix: add "${key}" to additionalSecretOutputs where it is declared (${credentials.declaredIn}); no config key changes this.`,
                );
    },
};
