import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import {
    publicKeyLine,
    renderKnownHosts,
    renderUserData,
    SshKeyFormatError,
    sshFingerprintSha256,
} from "../cloud-init";
import { ensureHostKeys, writeKnownHosts } from "../lab/hostKeys";
import { sshArgv } from "../lab/ssh";
import type { LabStack } from "../lab/stack";
import type { PublishedHostKey } from "../components/hostKeys";
import { isSecret, runUnderMocks, unwrapSecrets, type MockRun } from "../engine/mockRun";
import { readStackConfig } from "../engine/stackFile";
import { topologyFromConfig } from "../topology";

// A real key pair (ssh-keygen -t ed25519), so the fingerprint below is what `ssh-keygen -lf` printed for it.
const REAL_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1av2Ni+1hM4Bs91p1OCUBmkBFnWlJAUjegqj0YC2qg test@host";
const REAL_FINGERPRINT = "SHA256:kS0mg8e2DYcXuXkDgW7/5MoWDtyiDFwEJ09gH1gpp/4";

const hostKeysOf = (run: MockRun) => run.stackOutputs.hostKeys as Record<string, PublishedHostKey>;
const nodesOf = (run: MockRun) => run.stackOutputs.nodes as Record<string, { address: string }>;

let prod: MockRun;
beforeAll(async () => {
    prod = await runUnderMocks({ stack: "prod" });
});

const ofType = (run: MockRun, type: string) => run.resources.filter((r) => r.type === type);
const cloudConfig = (run: MockRun, node: string) => parse(run.userData[node]) as Record<string, unknown>;

describe("SSH key helpers", () => {
    it("computes the fingerprint ssh-keygen prints, with or without a comment", () => {
        expect(sshFingerprintSha256(REAL_PUBLIC)).toBe(REAL_FINGERPRINT);
        expect(sshFingerprintSha256(publicKeyLine(REAL_PUBLIC))).toBe(REAL_FINGERPRINT);
        expect(publicKeyLine(`${REAL_PUBLIC}\n`)).toBe(REAL_PUBLIC.replace(/ test@host$/, ""));
    });

    it("refuses what is not a public key line", () => {
        expect(() => sshFingerprintSha256("ssh-ed25519")).toThrow(SshKeyFormatError);
        expect(() =>
            sshFingerprintSha256("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGxF5tFXBG86bsmCXVXRffEWEDGRS07iPK"),
        ).toThrow(/does not match its type ssh-rsa/);
    });

    it("renders known_hosts sorted by address, one line per host, comments dropped", () => {
        const other = hostKeysOf(prod)["east-a"].publicKey;
        const text = renderKnownHosts([
            { address: "198.18.0.20", publicKey: REAL_PUBLIC },
            { address: "198.18.0.10", publicKey: other },
        ]);
        expect(text).toBe(`198.18.0.10 ${other}\n198.18.0.20 ${publicKeyLine(REAL_PUBLIC)}\n`);
    });
});

describe("host keys (prod under mocks)", () => {
    it("generates one ED25519 key per node with @pulumi/tls, under one HostKeys component", () => {
        const keys = ofType(prod, "tls:index/privateKey:PrivateKey").filter((r) => r.name.includes("-host-key-"));
        expect(keys.map((k) => k.name.split("-host-key-")[1]).sort()).toEqual([
            "east-a",
            "east-b",
            "ord-a",
            "ord-b",
            "witness",
        ]);
        for (const k of keys) {
            expect(unwrapSecrets(k.inputs.algorithm)).toBe("ED25519");
            expect(k.parent).toBe(ofType(prod, "redis-ha:hostKeys:HostKeys")[0].name);
        }
    });

    it("installs each node's own key through cloud-init's ssh_keys, deleting the image's keys", () => {
        const publics = new Set<string>();
        for (const n of prod.topology.nodes) {
            const doc = cloudConfig(prod, n.name);
            const keys = doc.ssh_keys as Record<string, string>;
            expect(Object.keys(keys).sort()).toEqual(["ed25519_private", "ed25519_public"]);
            expect(keys.ed25519_private).toContain(`host key of ${n.name}`);
            expect(keys.ed25519_public).toBe(hostKeysOf(prod)[n.name].publicKey);
            expect(doc.ssh_deletekeys).toBe(true);
            publics.add(keys.ed25519_public);
        }
        expect(publics.size).toBe(prod.topology.nodes.length);
    });

    it("keeps the user-data, which now holds a private key, secret", () => {
        for (const r of ofType(prod, "linode:index/instance:Instance")) {
            const md = r.inputs.metadatas as unknown[];
            expect(isSecret(md) || isSecret((md[0] as Record<string, unknown>).userData)).toBe(true);
        }
    });

    it("pins the host key of the node it dials in every SSH connection", () => {
        const byAddress = new Map(
            prod.topology.nodes.map((n) => [nodesOf(prod)[n.name].address, hostKeysOf(prod)[n.name]]),
        );
        const commands = ofType(prod, "command:remote:Command");
        expect(commands.length).toBeGreaterThan(0);
        for (const c of commands) {
            const conn = unwrapSecrets(c.inputs.connection) as { host: string; hostKey?: string };
            expect({ name: c.name, hostKey: conn.hostKey }).toEqual({
                name: c.name,
                hostKey: byAddress.get(conn.host)?.publicKey,
            });
            expect(conn.hostKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
        }
    });

    it("publishes every node's public host key and its SHA256 fingerprint", () => {
        expect(Object.keys(hostKeysOf(prod)).sort()).toEqual(["east-a", "east-b", "ord-a", "ord-b", "witness"]);
        for (const k of Object.values(hostKeysOf(prod)))
            expect(k.fingerprintSha256).toBe(sshFingerprintSha256(k.publicKey));
    });

    it("renders the keys it is given (the lab's real ones) and their fingerprints", async () => {
        const run = await runUnderMocks({
            stack: "dev",
            hostKeys: { "dev-a": { privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n", publicKey: REAL_PUBLIC } },
        });
        expect(hostKeysOf(run)["dev-a"]).toEqual({ publicKey: REAL_PUBLIC, fingerprintSha256: REAL_FINGERPRINT });
        expect((cloudConfig(run, "dev-a").ssh_keys as Record<string, string>).ed25519_private).toBe(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n",
        );
    });
});

describe("user-data with a host key", () => {
    // The shared-password rendering (`tls: false`): the host key is what this block is about.
    const t = topologyFromConfig({ ...readStackConfig("prod"), "redis-ha:tls": "false" }, "redis-ha", "prod");
    const addresses = {
        "east-a": "192.0.2.10",
        "east-b": "192.0.2.11",
        "ord-a": "192.0.2.12",
        witness: "192.0.2.13",
        "ord-b": "192.0.2.14",
    };
    const secrets = { redisPassword: "redis-password-0123456789", sentinelPassword: "sentinel-password-0123456789" };
    const hostKey = {
        privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n",
        publicKey: REAL_PUBLIC,
    };

    it("is byte-stable and leaves ssh_keys out when no key is given", () => {
        const a = renderUserData({ topology: t, node: "east-a", addresses, secrets, hostKey });
        expect(renderUserData({ topology: t, node: "east-a", addresses, secrets, hostKey: { ...hostKey } })).toBe(a);
        const without = parse(renderUserData({ topology: t, node: "east-a", addresses, secrets })) as object;
        expect(without).not.toHaveProperty("ssh_keys");
        expect((parse(a) as { ssh_keys: unknown }).ssh_keys).toEqual({
            ed25519_private: hostKey.privateKey,
            ed25519_public: REAL_PUBLIC,
        });
    });

    const hasCloudInit = spawnSync("cloud-init", ["--version"]).status === 0;
    (hasCloudInit ? it : it.skip)("passes `cloud-init schema` for every node of prod and dev", async () => {
        const dir = mkdtempSync(join(tmpdir(), "ud-host-"));
        const dev = await runUnderMocks({ stack: "dev" });
        for (const run of [prod, dev])
            for (const n of run.topology.nodes) {
                const f = join(dir, `${run.topology.stack}-${n.name}`);
                writeFileSync(f, run.userData[n.name]);
                expect(run.userData[n.name]).toContain("ssh_keys:");
                const r = spawnSync("cloud-init", ["schema", "--config-file", f], { encoding: "utf8" });
                expect(`${n.name}: ${r.status} ${r.stdout}${r.stderr}`).toMatch(
                    new RegExp(`^${n.name}: 0 Valid cloud-config`),
                );
            }
    });
});

describe("lab host-key pinning", () => {
    it("keeps one real ED25519 key per node across calls and writes known_hosts from the published keys", async () => {
        const dir = mkdtempSync(join(tmpdir(), "lab-host-"));
        const keys = await ensureHostKeys(dir, ["dev-a", "dev-b"]);
        expect(await ensureHostKeys(dir, ["dev-a", "dev-b"])).toEqual(keys);
        expect(keys["dev-a"].publicKey).toMatch(/^ssh-ed25519 \S+ root@dev-a$/);
        expect(keys["dev-a"].privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
        expect(keys["dev-a"].publicKey).not.toBe(keys["dev-b"].publicKey);
        const run = await runUnderMocks({ stack: "dev", hostKeys: keys });
        const file = writeKnownHosts(
            dir,
            ["dev-a", "dev-b"].map((n) => ({
                address: nodesOf(run)[n].address,
                publicKey: hostKeysOf(run)[n].publicKey,
            })),
        );
        const lines = readFileSync(file, "utf8").trim().split("\n");
        expect(lines).toEqual([
            `${nodesOf(run)["dev-a"].address} ${publicKeyLine(keys["dev-a"].publicKey)}`,
            `${nodesOf(run)["dev-b"].address} ${publicKeyLine(keys["dev-b"].publicKey)}`,
        ]);
        // The fingerprint published is the one ssh-keygen reports for the key the node gets.
        const printed = spawnSync("ssh-keygen", ["-lf", join(dir, "host_dev-a_ed25519.pub")], { encoding: "utf8" });
        expect(printed.stdout.split(" ")[1]).toBe(hostKeysOf(run)["dev-a"].fingerprintSha256);
    });

    it("makes ssh refuse any key but the pinned one", () => {
        const stack = {
            stack: "dev",
            nodes: [{ name: "dev-a", address: "198.18.0.10" }],
            credentials: { keyFile: "/lab/id_ed25519" },
            knownHostsFile: "/lab/known_hosts",
        } as unknown as LabStack; // only the fields sshArgv reads
        const argv = sshArgv(stack, "dev-a", ["true"]);
        const opts = argv.filter((_, i) => argv[i - 1] === "-o");
        expect(opts).toEqual(
            expect.arrayContaining([
                "StrictHostKeyChecking=yes",
                "UserKnownHostsFile=/lab/known_hosts",
                "GlobalKnownHostsFile=/dev/null",
                "HostKeyAlgorithms=ssh-ed25519",
            ]),
        );
        expect(opts.join(" ")).not.toMatch(/StrictHostKeyChecking=no|UserKnownHostsFile=\/dev\/null/);
        expect(argv.slice(-2)).toEqual(["root@198.18.0.10", "true"]);
    });
});
