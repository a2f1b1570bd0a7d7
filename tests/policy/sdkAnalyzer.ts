import type { Policies } from "@pulumi/policy";
import * as policyServer from "@pulumi/policy/server";
import * as analyzer from "@pulumi/pulumi/proto/analyzer_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import type { MockRun, RecordedResource } from "../../engine/mockRun";

/**
 * The pack's rules run through @pulumi/policy's own analyzer server functions (server.js, `makeAnalyzeRpcFun` and
 * `makeAnalyzeStackRpcFun`), fed the protobuf requests the engine sends: the reference that review/policy.ts must
 * agree with. The pack runs with its default (empty) configuration, as the module's config is set only over gRPC.
 */

type Callback<R> = (err: unknown, response?: R) => void;
type RpcFun<Q, R> = (call: { request: Q }, callback: Callback<R>) => Promise<void>;

/** The server module's internals (its published types declare nothing: `export {}`). */
interface ServerInternals {
    makeAnalyzeRpcFun(
        name: string,
        version: string,
        level: string,
        policies: Policies,
    ): RpcFun<analyzer.AnalyzeRequest, analyzer.AnalyzeResponse>;
    makeAnalyzeStackRpcFun(
        name: string,
        version: string,
        level: string,
        policies: Policies,
    ): RpcFun<analyzer.AnalyzeStackRequest, analyzer.AnalyzeResponse>;
}
// `as unknown as`: the functions exist in server.js but the package's server.d.ts exports nothing.
const server = policyServer as unknown as ServerInternals;

function call<Q, R>(fn: RpcFun<Q, R>, request: Q): Promise<R> {
    return new Promise((resolve, reject) => {
        void fn({ request }, (err, response) => {
            if (err || response === undefined) reject(err instanceof Error ? err : new Error(String(err)));
            else resolve(response);
        });
    });
}

/** JSON as the engine serialises properties (secrets keep their signature; undefined leaves drop out). */
const struct = (value: unknown) => Struct.fromJavaScript(JSON.parse(JSON.stringify(value ?? {})) as never);

function options(r: RecordedResource, parentUrn?: string): analyzer.AnalyzerResourceOptions {
    const o = new analyzer.AnalyzerResourceOptions();
    o.setIgnorechangesList([...r.ignoreChanges]);
    o.setAdditionalsecretoutputsList([...r.additionalSecretOutputs]);
    o.setDeletebeforereplace(r.deleteBeforeReplace);
    o.setDeletebeforereplacedefined(true);
    if (parentUrn) o.setParent(parentUrn);
    return o;
}

export interface SdkViolation {
    policy: string;
    urn: string;
    message: string;
    mandatory: boolean;
}

function diagnostics(response: analyzer.AnalyzeResponse, urn?: string): SdkViolation[] {
    return response.getDiagnosticsList().map((d) => ({
        policy: d.getPolicyname(),
        urn: d.getUrn() || urn || "",
        message: d.getMessage(),
        mandatory: d.getEnforcementlevel() === analyzer.EnforcementLevel.MANDATORY,
    }));
}

/** Analyze for every resource (its inputs), then AnalyzeStack over all (their outputs), as the engine calls them. */
export async function analyzeWithSdk(run: MockRun, policies: Policies): Promise<SdkViolation[]> {
    const analyze = server.makeAnalyzeRpcFun("redis-ha", "0.1.0", "mandatory", policies);
    const analyzeStack = server.makeAnalyzeStackRpcFun("redis-ha", "0.1.0", "mandatory", policies);
    const urnOf = new Map(run.resources.map((r) => [r.name, r.urn]));
    const out: SdkViolation[] = [];
    for (const r of run.resources) {
        const req = new analyzer.AnalyzeRequest();
        req.setType(r.type);
        req.setName(r.name);
        req.setUrn(r.urn);
        req.setProperties(struct(r.inputs));
        req.setOptions(options(r, r.parent && urnOf.get(r.parent)));
        out.push(...diagnostics(await call(analyze, req), r.urn));
    }
    const stack = new analyzer.AnalyzeStackRequest();
    stack.setResourcesList(
        run.resources.map((r) => {
            const a = new analyzer.AnalyzerResource();
            a.setType(r.type);
            a.setName(r.name);
            a.setUrn(r.urn);
            a.setProperties(
                struct(r.custom ? { ...r.state, ...(r.id !== undefined ? { id: r.id } : {}) } : r.registeredOutputs),
            );
            const parent = r.parent && urnOf.get(r.parent);
            a.setOptions(options(r, parent));
            if (parent) a.setParent(parent);
            a.setDependenciesList(r.dependsOn.map((d) => urnOf.get(d) ?? d));
            return a;
        }),
    );
    out.push(...diagnostics(await call(analyzeStack, stack)));
    return out;
}
