import { runUnderMocks, unwrapSecrets, type MockRun } from "../../engine/mockRun";
import { programConfigWith } from "../helpers";

// The CLI passes Pulumi.yaml's declared default ("") for every secret key the stack does not set: the program must
// take that as "absent" and generate the passwords and the checks key. Both credential models: the shared passwords
// (tls: false) and the ACL users' (tls, the default).
const runs: Record<"shared" | "acl", MockRun> = {} as Record<"shared" | "acl", MockRun>;
let run: MockRun;
beforeAll(async () => {
    const empty = { redisPassword: "", sentinelPassword: "", checksPrivateKey: "" };
    runs.shared = await runUnderMocks({ stack: "prod", config: programConfigWith("prod", { ...empty, tls: false }) });
    runs.acl = await runUnderMocks({ stack: "prod", config: programConfigWith("prod", empty) });
    run = runs.acl;
});

describe('secrets passed as the declared default ""', () => {
    it("renders generated shared passwords, never an empty one (tls: false)", () => {
        for (const text of Object.values(runs.shared.userData)) {
            expect(text).not.toMatch(/requirepass ""|masterauth ""|auth-pass \S+ ""|requirepass\s*$/m);
            expect(text).toMatch(/requirepass "?[A-Za-z0-9]{32,}/);
        }
        expect(
            runs.shared.resources.filter((r) => r.type === "random:index/randomPassword:RandomPassword"),
        ).toHaveLength(2);
    });

    it("renders generated ACL users' passwords, never an empty one (tls)", () => {
        for (const text of Object.values(runs.acl.userData)) {
            expect(text).not.toMatch(/masterauth ""|auth-pass \S+ ""|masterauth\s*$|sentinel-pass ""/m);
            if (text.includes("path: /etc/redis/redis.conf")) expect(text).toMatch(/masterauth "?[A-Za-z0-9]{32,}/);
            if (text.includes("path: /etc/redis/sentinel.conf"))
                expect(text).toMatch(/sentinel auth-pass \S+ "?[A-Za-z0-9]{32,}/);
        }
        expect(
            runs.acl.resources.filter((r) => r.type === "random:index/randomPassword:RandomPassword").length,
        ).toBeGreaterThan(0);
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
