import { runUnderMocks, unwrapSecrets, type MockRun } from "../../engine/mockRun";
import { programConfigWith } from "../helpers";

// The CLI passes Pulumi.yaml's declared default ("") for every secret key the stack does not set: the program must
// take that as "absent" and generate the passwords and the checks key.
let run: MockRun;
beforeAll(async () => {
    run = await runUnderMocks({
        stack: "prod",
        config: programConfigWith("prod", { redisPassword: "", sentinelPassword: "", checksPrivateKey: "" }),
    });
});

describe('secrets passed as the declared default ""', () => {
    it("renders generated passwords, never an empty one", () => {
        for (const text of Object.values(run.userData)) {
            expect(text).not.toMatch(/requirepass ""|masterauth ""|auth-pass \S+ ""|requirepass\s*$/m);
            expect(text).toMatch(/requirepass "?[A-Za-z0-9]{32,}/);
        }
        expect(run.resources.filter((r) => r.type === "random:index/randomPassword:RandomPassword")).toHaveLength(2);
    });

    it("installs the generated checks key on every Linode and uses a non-empty private key on every connection", () => {
        const instances = run.resources.filter((r) => r.type === "linode:index/instance:Instance");
        expect(instances.length).toBeGreaterThan(0);
        for (const r of instances)
            expect(unwrapSecrets(r.inputs.authorizedKeys) as string[]).toEqual(
                expect.arrayContaining([expect.stringMatching(/redis-ha-checks$/)]),
            );
        const commands = run.resources.filter((r) => r.type === "command:remote:Command");
        expect(commands.length).toBeGreaterThan(0);
        for (const c of commands) {
            const conn = unwrapSecrets(c.inputs.connection) as { privateKey?: string };
            expect(conn.privateKey).toMatch(/PRIVATE KEY/);
        }
    });
});
