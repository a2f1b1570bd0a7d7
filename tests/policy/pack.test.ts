import * as grpc from "@grpc/grpc-js";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzer from "@pulumi/pulumi/proto/analyzer_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { PROJECT_DIR } from "../../engine/stackFile";
import { policies } from "../../policy/policies";

/**
 * The pack as `pulumi preview --policy-pack policy` starts it: @pulumi/pulumi's run-policy-pack runs policy/index.ts
 * (TypeScript, type-checked by ts-node) from the pack's directory, and the engine talks to it over gRPC. This test is
 * the engine's side: the analyzer info, the pack's configuration, and one Analyze call.
 */

let pack: ChildProcessByStdio<null, Readable, Readable>;
let client: AnalyzerClient | undefined;
let stderr = "";

beforeAll(async () => {
    const started = Date.now();
    pack = spawn(
        process.execPath,
        [join(PROJECT_DIR, "node_modules/@pulumi/pulumi/cmd/run-policy-pack"), "127.0.0.1:1", "."],
        {
            cwd: join(PROJECT_DIR, "policy"),
            env: { ...process.env, PULUMI_NODEJS_TYPESCRIPT: "true" },
            stdio: ["ignore", "pipe", "pipe"],
        },
    );
    pack.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    // The pack prints the port of its gRPC server, then serves.
    const port = await new Promise<string>((resolve, reject) => {
        pack.stdout.once("data", (d: Buffer) => {
            resolve(d.toString().trim());
        });
        pack.once("exit", (code) => {
            reject(new Error(`the pack exited (${String(code)}) before serving: ${stderr}`));
        });
    });
    console.log(`policy pack serving on port ${port} after ${String(Date.now() - started)} ms`);
    client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}, 120_000);

afterAll(() => {
    // The pack is this test's own child: ended by its handle, whatever beforeAll got to.
    client?.close();
    pack.kill();
});

type Callback<R> = (err: grpc.ServiceError | null, res: R) => void;

function unary<Q, R>(call: (req: Q, cb: Callback<R>) => unknown, req: Q): Promise<R> {
    return new Promise<R>((resolve, reject) => {
        call(req, (err, res) => {
            if (err) reject(err);
            else resolve(res);
        });
    });
}

function connected(): AnalyzerClient {
    if (client === undefined) throw new Error("the policy pack is not serving");
    return client;
}

describe("the policy pack served to the engine", () => {
    it("lists every rule with its level and configuration schema", async () => {
        const info = await unary<Empty, analyzer.AnalyzerInfo>(
            (q, cb) => connected().getAnalyzerInfo(q, cb),
            new Empty(),
        );
        expect(info.getName()).toBe("redis-ha");
        const served = info.getPoliciesList().map((p) => p.getName());
        expect(served).toEqual(policies.map((p) => p.name));
        const regions = info.getPoliciesList().find((p) => p.getName() === "redis-ha-allowed-regions");
        expect(regions?.getEnforcementlevel()).toBe(analyzer.EnforcementLevel.MANDATORY);
        expect(regions?.getConfigschema()?.getProperties()?.toJavaScript()).toMatchObject({
            allowedRegions: { type: "array", default: [] },
        });
        expect(stderr).toBe("");
    });

    it("applies its configuration: a Linode outside the allowed regions is a mandatory violation", async () => {
        const configure = new analyzer.ConfigureAnalyzerRequest();
        const regions = new analyzer.PolicyConfig();
        regions.setEnforcementlevel(analyzer.EnforcementLevel.MANDATORY);
        regions.setProperties(Struct.fromJavaScript({ allowedRegions: ["us-east"] }));
        configure.getPolicyconfigMap().set("redis-ha-allowed-regions", regions);
        await unary<analyzer.ConfigureAnalyzerRequest, Empty>((q, cb) => connected().configure(q, cb), configure);

        const request = new analyzer.AnalyzeRequest();
        request.setType("linode:index/instance:Instance");
        request.setName("redis-ha-ord-a-linode");
        request.setUrn("urn:pulumi:prod::redis-ha::linode:index/instance:Instance::redis-ha-ord-a-linode");
        request.setProperties(
            Struct.fromJavaScript({ label: "redis-prod-ord-a", region: "us-ord", type: "g6-standard-2" }),
        );
        request.setOptions(new analyzer.AnalyzerResourceOptions());
        const response = await unary<analyzer.AnalyzeRequest, analyzer.AnalyzeResponse>(
            (q, cb) => connected().analyze(q, cb),
            request,
        );
        const found = response
            .getDiagnosticsList()
            .map((d) => [d.getPolicyname(), d.getEnforcementlevel(), d.getMessage()]);
        expect(found).toEqual([
            [
                "redis-ha-allowed-regions",
                analyzer.EnforcementLevel.MANDATORY,
                "Linodes run only in the allowed regions.\nlinode.Instance redis-ha-ord-a-linode is in region us-ord; expected one of the allowed regions us-east. Fix: that node's region in redis-ha:nodes (and redis-ha:primaryRegion if it is the primary).",
            ],
        ]);
    });
});
