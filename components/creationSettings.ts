import * as pulumi from "@pulumi/pulumi";
import { CONFIG_NAMESPACE, ConfigError, type AddressingMode, type ConfigProblem, type Topology } from "../topology";

/**
 * Settings a node takes from its user-data at creation and never again (user-data is an ignored input): changing
 * one on a running cluster would leave every node on the old value while the firewall and clients follow the new.
 */
export interface CreationSettings {
    readonly redisPort: number;
    readonly sentinelPort: number;
    readonly masterName: string;
    /**
     * Switching it would re-create every Linode (their address and firewall inputs change) and, since siblings are
     * replaced in parallel, destroy every node's data at once.
     */
    readonly addressing: AddressingMode;
    /** TLS and ACL users: nodes take their listeners, users and certificates from user-data. */
    readonly tls: boolean;
}

/**
 * What a record written before a key existed implies for it: a cluster deployed before `tls` was a key (or when it
 * defaulted to false) runs plaintext, so the default `true` is refused on it rather than silently half-applied.
 */
const BEFORE_THE_KEY: Partial<CreationSettings> = { addressing: "reserved", tls: false };

/** The stack output that records them, read back by the next deployment. */
export const CREATION_SETTINGS_OUTPUT = "creationSettings";

export function creationSettingsOf(t: Topology): CreationSettings {
    return {
        redisPort: t.ports.redis,
        sentinelPort: t.ports.sentinel,
        masterName: t.masterName,
        addressing: t.addressing,
        tls: t.security.tls,
    };
}

/** One line per creation-time key whose value differs from the deployed one. */
export function creationSettingChanges(recorded: Partial<CreationSettings>, wanted: CreationSettings): ConfigProblem[] {
    // A stack never deployed records nothing and takes any value.
    const deployed: Partial<CreationSettings> =
        Object.keys(recorded).length > 0 ? { ...BEFORE_THE_KEY, ...recorded } : recorded;
    return (Object.keys(wanted) as (keyof CreationSettings)[])
        .filter((k) => deployed[k] !== undefined && deployed[k] !== wanted[k])
        .map((k) => ({
            key: `${CONFIG_NAMESPACE}:${k}`,
            message: `is ${String(deployed[k])} on the running cluster and cannot change to ${String(wanted[k])}: nodes take it only when created, so it needs a new cluster (a new stack); set it back to ${String(deployed[k])}`,
        }));
}

/**
 * Refuses a change of a creation-time key on a deployed stack, at preview, before any resource is declared.
 *
 * How, under the real engine: the program reads its own stack's last outputs through a StackReference to itself
 * (`<org>/<project>/<stack>`; a read, which `pulumi preview` performs too) and compares the recorded
 * `creationSettings` output with the configuration. The program awaits this before declaring the cluster
 * (`index.ts` exports an async function, which Pulumi awaits), so a refusal is one RunError, printed as its lines
 * with no stack trace, and nothing is registered. A dynamic provider would need the closure serializer at run time
 * and a protected resource would fail with the engine's advice to unprotect it; this needs neither. A stack that was
 * never deployed has no outputs and passes.
 */
export async function checkCreationSettings(
    name: string,
    t: Topology,
    opts?: pulumi.CustomResourceOptions,
): Promise<void> {
    const self = new pulumi.StackReference(
        name,
        { name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}` },
        opts,
    );
    // Our own output from the last deployment (absent before the first one).
    const deployed = await new Promise<Partial<CreationSettings> | undefined>((resolve) => {
        self.getOutput(CREATION_SETTINGS_OUTPUT).apply((v: Partial<CreationSettings> | undefined) => {
            resolve(v);
        });
    });
    const problems = creationSettingChanges(deployed ?? {}, creationSettingsOf(t));
    if (problems.length > 0) throw new pulumi.RunError(new ConfigError(problems).message);
}
