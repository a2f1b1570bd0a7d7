import type {
    EnforcementLevel,
    Policies,
    PolicyPackConfig,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
} from "@pulumi/policy";
import { unwrapSecrets, type MockRun, type RecordedResource } from "../engine/mockRun";
import { policies as packPolicies } from "../policy/policies";

/**
 * Runs the policy pack's rule objects over a mock run, handing each rule what @pulumi/policy 1.21's analyzer server
 * (`server.js`, `makeAnalyzeRpcFun` / `makeAnalyzeStackRpcFun`) hands it when the engine calls Analyze and
 * AnalyzeStack:
 * - resource rules get each resource's inputs, stack rules every resource's outputs (a component's registered
 *   outputs; a custom resource's with its `id`, as bridged providers report it), both with secrets unwrapped;
 * - the enforcement level is the configured one, else the policy's, else the pack's (mandatory); `disabled` skips the
 *   rule and `remediate` reports as mandatory;
 * - `getConfig()` returns the policy's configuration without `enforcementLevel`, `{}` when none is given;
 * - `notApplicable()` ends the rule for that resource or stack without a violation.
 */

export type Level = Exclude<EnforcementLevel, "disabled" | "remediate">;

export interface Violation {
    readonly policy: string;
    readonly level: Level;
    /** The resource's name, or "(stack)" for a stack violation that names no resource. */
    readonly resource: string;
    readonly urn?: string;
    readonly message: string;
}

export interface PolicyRunOptions {
    /** The pack's configuration, as `--policy-pack-config` gives it; none when absent. */
    readonly config?: PolicyPackConfig;
    /** Stack tags, as the engine passes them; none when absent. */
    readonly stackTags?: ReadonlyMap<string, string>;
    /** The rules; the pack's when absent. */
    readonly policies?: Policies;
}

class NotApplicable extends Error {}

const notApplicable = (reason?: string): never => {
    throw new NotApplicable(reason ?? "Policy does not apply");
};

/** The SDK's `isTypeOf`: the class's `__pulumiType`, else its `isInstance`. */
function isTypeOf(type: string, resourceClass: unknown): boolean {
    const token = (resourceClass as { __pulumiType?: unknown }).__pulumiType;
    if (typeof token === "string" && token.length > 0) return token === type;
    const isInstance = (resourceClass as { isInstance?: (o: unknown) => unknown }).isInstance;
    return typeof isInstance === "function" && isInstance({ __pulumiType: type }) === true;
}

function optionsOf(r: RecordedResource, byName: ReadonlyMap<string, RecordedResource>): PolicyResourceOptions {
    const parent = r.parent === undefined ? undefined : byName.get(r.parent)?.urn;
    return {
        protect: false,
        ignoreChanges: [...r.ignoreChanges],
        aliases: [],
        customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
        additionalSecretOutputs: [...r.additionalSecretOutputs],
        deleteBeforeReplace: r.deleteBeforeReplace,
        ...(parent ? { parent } : {}),
    };
}

function levelOf(name: string, policyLevel: EnforcementLevel | undefined, config: PolicyPackConfig): EnforcementLevel {
    const configured = (config as Partial<PolicyPackConfig>)[name];
    const fromConfig = typeof configured === "string" ? configured : configured?.enforcementLevel;
    return fromConfig ?? policyLevel ?? "mandatory";
}

function configGetter(name: string, config: PolicyPackConfig): StackValidationArgs["getConfig"] {
    const c = (config as Partial<PolicyPackConfig>)[name];
    const rest: Record<string, unknown> = c === undefined || typeof c === "string" ? {} : { ...c };
    delete rest.enforcementLevel;
    // The SDK's getConfig is generic in what the policy expects; the schema is the policy's promise.
    return () => rest as never;
}

const isStackPolicy = (p: Policies[number]): p is StackValidationPolicy => "validateStack" in p;

/** Runs every rule over the run's resources (resource rules on inputs, stack rules on outputs); the violations. */
export async function runPolicies(run: MockRun, options: PolicyRunOptions = {}): Promise<Violation[]> {
    const config = options.config ?? {};
    const stackTags = options.stackTags ?? new Map<string, string>();
    const byName = new Map(run.resources.map((r) => [r.name, r]));
    const byUrn = new Map(run.resources.map((r) => [r.urn, r]));
    const violations: Violation[] = [];

    for (const p of options.policies ?? packPolicies) {
        let level = levelOf(p.name, p.enforcementLevel, config);
        if (level === "disabled") continue;
        if (level === "remediate") level = "mandatory";
        const report =
            (fallbackUrn?: string): ReportViolation =>
            (message, urn) => {
                const at = urn ?? fallbackUrn;
                violations.push({
                    policy: p.name,
                    level,
                    resource: at ? (byUrn.get(at)?.name ?? at) : "(stack)",
                    ...(at ? { urn: at } : {}),
                    message,
                });
            };
        const getConfig = configGetter(p.name, config);

        if (isStackPolicy(p)) {
            const resources: PolicyResource[] = run.resources.map((r) => {
                // What the engine holds as outputs: a component's registered ones, a custom resource's with its id.
                const outputs = r.custom
                    ? { ...r.state, ...(r.id !== undefined ? { id: r.id } : {}) }
                    : r.registeredOutputs;
                const props = unwrapSecrets(outputs ?? {});
                return {
                    type: r.type,
                    props: props as Record<string, unknown>,
                    urn: r.urn,
                    name: r.name,
                    opts: optionsOf(r, byName),
                    dependencies: [],
                    propertyDependencies: {},
                    isType: (cls) => isTypeOf(r.type, cls),
                    asType: (cls) => (isTypeOf(r.type, cls) ? (props as never) : undefined),
                };
            });
            const byUrnPolicy = new Map(resources.map((r) => [r.urn, r]));
            run.resources.forEach((r, i) => {
                const parent = r.parent === undefined ? undefined : byName.get(r.parent)?.urn;
                const parentResource = parent === undefined ? undefined : byUrnPolicy.get(parent);
                if (parentResource) resources[i].parent = parentResource;
                resources[i].dependencies = r.dependsOn
                    .map((d) => byName.get(d)?.urn)
                    .map((u) => (u === undefined ? undefined : byUrnPolicy.get(u)))
                    .filter((d): d is PolicyResource => d !== undefined);
            });
            const args: StackValidationArgs = { resources, stackTags, getConfig, notApplicable };
            try {
                await p.validateStack(args, report());
            } catch (e) {
                if (!(e instanceof NotApplicable)) throw e;
            }
            continue;
        }

        const validations = p.validateResource === undefined ? [] : [p.validateResource].flat();
        for (const r of run.resources)
            for (const validate of validations) {
                const props = unwrapSecrets(r.inputs) as Record<string, unknown>;
                const args: ResourceValidationArgs = {
                    type: r.type,
                    props,
                    urn: r.urn,
                    name: r.name,
                    opts: optionsOf(r, byName),
                    stackTags,
                    isType: (cls) => isTypeOf(r.type, cls),
                    asType: (cls) => (isTypeOf(r.type, cls) ? (props as never) : undefined),
                    getConfig,
                    notApplicable,
                };
                try {
                    // Resource violations always name the resource being validated (the SDK ignores `urn`).
                    await validate(args, (message) => {
                        report(r.urn)(message);
                    });
                } catch (e) {
                    if (!(e instanceof NotApplicable)) throw e;
                }
            }
    }
    return violations;
}

/** Exit status of `npm run review` for these violations: 3 on any mandatory one (config errors exit 2). */
export const MANDATORY_VIOLATION_EXIT = 3;

export function hasMandatory(violations: readonly Violation[]): boolean {
    return violations.some((v) => v.level === "mandatory");
}
