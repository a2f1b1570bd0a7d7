import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readStackConfig } from "../../engine/stackFile";
import { ConfigError, parseStackConfig, secretGiven, topologyFromConfig } from "../../topology";
import { configProblems, configWith, PROD_NODES } from "../helpers";

const build = (changes: Record<string, unknown>) => topologyFromConfig(configWith("prod", changes), "redis-ha", "prod");

/** Exactly one problem, matching `expected`. */
function expectOneProblem(changes: Record<string, unknown>, expected: RegExp): void {
    const lines = configProblems(changes);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(expected);
}

describe("secrets", () => {
    it("treats an empty value, as the CLI passes Pulumi.yaml's default, as absent", () => {
        const raw = configWith("prod", { redisPassword: "", sentinelPassword: "", checksPrivateKey: "" });
        const parsed = parseStackConfig(raw);
        expect(parsed.redisPassword).toBeUndefined();
        expect(parsed.sentinelPassword).toBeUndefined();
        expect(parsed.checksPrivateKey).toBeUndefined();
        expect(secretGiven(raw, "redisPassword")).toBe(false);
        expect(secretGiven(raw, "checksPrivateKey")).toBe(false);
        expect(secretGiven(configWith("prod", {}), "sentinelPassword")).toBe(false);
        expect(secretGiven(configWith("prod", { redisPassword: "a".repeat(16) }), "redisPassword")).toBe(true);
    });

    it("refuses a given password shorter than 16 characters with one line naming the key", () => {
        expectOneProblem({ redisPassword: "short" }, /^redis-ha:redisPassword: must be at least 16 characters/);
        expectOneProblem({ sentinelPassword: "x".repeat(15) }, /^redis-ha:sentinelPassword: must be at least 16/);
    });

    describe("in a stack file", () => {
        let dir: string;
        beforeEach(() => {
            dir = mkdtempSync(join(tmpdir(), "redis-ha-stack-"));
        });
        afterEach(() => {
            rmSync(dir, { recursive: true, force: true });
        });
        const stackFile = (body: string) => {
            writeFileSync(join(dir, "Pulumi.t.yaml"), `config:\n${body}`);
            return () => readStackConfig("t", dir);
        };

        it("refuses a password written as a YAML number, which would silently lose digits", () => {
            const read = stackFile("    redis-ha:redisPassword: 12345678901234567890\n");
            expect(read).toThrow(ConfigError);
            expect(read).toThrow(/^redis-ha:redisPassword: must be a string; quote it/);
        });

        it("refuses any string key given as a non-string, naming each key", () => {
            const read = stackFile("    redis-ha:sentinelPassword: true\n    redis-ha:clusterName: 12345\n");
            expect(read).toThrow(
                /^redis-ha:sentinelPassword: must be a string.*\nredis-ha:clusterName: must be a string/,
            );
        });

        it("refuses a password in plaintext, as the CLI does for a key declared secret", () => {
            const read = stackFile('    redis-ha:redisPassword: "12345678901234567890"\n');
            expect(read).toThrow(
                /^redis-ha:redisPassword: is a secret written in plaintext; remove it and run: pulumi config set --secret redisPassword$/,
            );
        });

        it("still reads a quoted numeric string key exactly", () => {
            const read = stackFile('    redis-ha:clusterName: "12345"\n    redis-ha:masterName: "0123"\n');
            expect(read()["redis-ha:masterName"]).toBe("0123");
        });
    });
});

describe("CIDRs", () => {
    it.each([
        ["0.0.0.0/00", "clientCidrs"],
        ["::/000", "clientCidrs"],
        ["0.0.0.0/0", "adminCidrs"],
        ["::/0", "adminCidrs"],
    ])("refuses %s in %s as the whole internet", (cidr, key) => {
        expectOneProblem(
            { [key]: [cidr] },
            new RegExp(`^redis-ha:${key}\\[0\\]: must not open .* to the whole internet`),
        );
    });

    it.each(["clientCidrs", "adminCidrs"])("refuses the two halves 0.0.0.0/1 + 128.0.0.0/1 in %s", (key) => {
        expectOneProblem(
            { [key]: ["0.0.0.0/1", "128.0.0.0/1"] },
            new RegExp(`^redis-ha:${key}: together cover the whole IPv4 internet`),
        );
        expectOneProblem(
            { [key]: ["0.0.0.0/1", "128.0.0.0/1"], allowWideCidrs: true },
            new RegExp(`^redis-ha:${key}: together cover the whole IPv4 internet`),
        );
    });

    it("refuses a union wider than a /8 of IPv4 or a /32 of IPv6 unless allowWideCidrs is set", () => {
        expectOneProblem(
            { clientCidrs: ["10.0.0.0/9", "10.128.0.0/9", "11.0.0.0/24"] },
            /^redis-ha:clientCidrs: together cover 16777472 IPv4 addresses, more than a \/8; narrow them or set allowWideCidrs: true$/,
        );
        expectOneProblem(
            { adminCidrs: ["2001:db8::/31"] },
            /^redis-ha:adminCidrs: together cover more than a \/32 of IPv6.*allowWideCidrs: true$/,
        );
        expect(build({ clientCidrs: ["10.0.0.0/7"], allowWideCidrs: true }).access.clientCidrs).toEqual(["10.0.0.0/7"]);
        // Exactly a /8, overlaps counted once, is allowed.
        expect(build({ clientCidrs: ["10.0.0.0/8", "10.1.0.0/16"] }).access.clientCidrs).toHaveLength(2);
    });

    it("refuses forms ipaddr.js alone would read differently (octal, short, zone ids)", () => {
        for (const bad of ["010.0.0.0/8", "10/8", "10.1.2/24", "fe80::1%eth0/64", "10.0.0.0/33", " 10.0.0.0/8"])
            expectOneProblem({ adminCidrs: [bad] }, /^redis-ha:adminCidrs\[0\]: must be a CIDR/);
    });

    it("normalises every CIDR to its network address", () => {
        const t = build({ adminCidrs: ["203.0.113.7/24"], clientCidrs: ["2001:DB8:0::1/48", "198.51.100.0/024"] });
        expect(t.access.adminCidrs).toEqual(["203.0.113.0/24"]);
        expect(t.access.clientCidrs).toEqual(["2001:db8::/48", "198.51.100.0/24"]);
    });

    it("declares allowWideCidrs, default false", () => {
        expect(parseStackConfig(configWith("prod", {})).allowWideCidrs).toBe(false);
    });
});

describe("values echoed into errors", () => {
    it("validates primaryRegion like any region and never echoes a newline", () => {
        const lines = configProblems({ primaryRegion: "us-east\nredis-ha:nodes: forged" });
        expect(lines).toEqual(["redis-ha:primaryRegion: must be a Linode region id such as us-east or eu-central"]);
    });

    it("quotes an unknown key it echoes, so a newline in it cannot forge a second line", () => {
        expect(configProblems({ "x\nredis-ha:nodes": "1" })).toEqual([
            'redis-ha:"x\\nredis-ha:nodes": unknown key; remove it or correct its spelling (see the README\'s configuration reference)',
        ]);
        const nodes = [{ ...PROD_NODES[0], "a b": 1 }, ...PROD_NODES.slice(1)];
        expect(configProblems({ nodes })).toEqual([
            'redis-ha:nodes[0]."a b": unknown key; remove it or correct its spelling (see the README\'s configuration reference)',
        ]);
    });

    it("echoes only values that passed their pattern, so an echoed region cannot carry a second line", () => {
        expect(configProblems({ primaryRegion: "eu-west" })).toEqual([
            "redis-ha:primaryRegion: region eu-west has no nodes; set it to one of us-east, us-ord, us-central",
        ]);
    });
});

describe("labels and tags Linode refuses", () => {
    it("refuses a cluster name with --, once", () => {
        expectOneProblem(
            { clusterName: "redis--prod" },
            /^redis-ha:clusterName: makes the label "redis--prod-fw", which Linode refuses because it contains "--"$/,
        );
    });

    it("refuses a node name with --, naming that node", () => {
        expectOneProblem(
            { nodes: [PROD_NODES[0], { ...PROD_NODES[1], name: "east--b" }, ...PROD_NODES.slice(2)] },
            /^redis-ha:nodes\[1\]\.name: makes the label "redis-prod-east--b", which Linode refuses because it contains "--"$/,
        );
    });

    it("refuses a region whose tag would exceed 50 characters", () => {
        const region = `us-${"a".repeat(45)}`;
        const lines = configProblems({
            nodes: PROD_NODES.map((n) => (n.name === "witness" ? { ...n, region } : n)),
        });
        expect(lines).toEqual([
            `redis-ha:nodes[4].region: makes the tag "region:${region}" (55 characters); Linode accepts at most 50`,
        ]);
    });
});

describe("checks that cannot reach the nodes", () => {
    it("refuses an empty adminCidrs with one line saying what to set", () => {
        expectOneProblem(
            { adminCidrs: [] },
            /^redis-ha:adminCidrs: is empty, so the post-deploy checks and the settings rollout cannot reach the nodes over SSH; set it to networks that include the machine running pulumi up, e\.g\. \["203\.0\.113\.7\/32"\]$/,
        );
        expectOneProblem({ adminCidrs: undefined }, /^redis-ha:adminCidrs: is empty/);
    });
});
