import { policies } from "../../policy/policies";
import { compliantStack, find, runRules, summary, type FakeResource } from "./fixture";

/** The pack's rules called directly on one compliant fixture, then on the fixture changed once per rule. */

type Mutation = (stack: FakeResource[]) => void;

const firewall = (s: FakeResource[]) => find(s, "redis-ha-firewall");
const inbounds = (s: FakeResource[]) => firewall(s).inputs.inbounds as Record<string, unknown>[];
const cluster = (s: FakeResource[]) => find(s, "redis-ha").outputs as { topologySummary: ReturnType<typeof summary> };
const tags = (s: FakeResource[], name: string) => find(s, name).inputs.tags as string[];

/** What changes, the change, the policy, the resource it names, and its messages (one per violation). */
const cases: [string, Mutation, string, string, string | string[]][] = [
    [
        "Redis port open to 0.0.0.0/0",
        (s) => (inbounds(s)[1].ipv4s = ["0.0.0.0/0"]),
        "redis-ha-no-public-data-ports",
        "redis-ha-firewall",
        [
            'linode.Firewall redis-ha-firewall accepts Redis port 6379 from the whole IPv4 internet ("redis-peers": 192.0.2.10/32; "redis-clients": 0.0.0.0/0); expected only your own networks. Fix: narrow redis-ha:clientCidrs.',
            'linode.Firewall redis-ha-firewall accepts Sentinel port 26379 from the whole IPv4 internet ("redis-peers": 192.0.2.10/32; "redis-clients": 0.0.0.0/0); expected only your own networks. Fix: narrow redis-ha:clientCidrs.',
        ],
    ],
    [
        "SSH open to ::/0 in two halves",
        (s) => (inbounds(s)[2].ipv6s = ["::/1", "8000::/1"]),
        "redis-ha-no-public-data-ports",
        "redis-ha-firewall",
        'linode.Firewall redis-ha-firewall accepts SSH port 22 from the whole IPv6 internet ("ssh-admin": ::/1, 8000::/1); expected only your own networks. Fix: narrow redis-ha:adminCidrs.',
    ],
    [
        "a TCP rule without ports opens every protected port",
        (s) => inbounds(s).push({ label: "all", action: "ACCEPT", protocol: "TCP", ipv4s: ["0.0.0.0/0"] }),
        "redis-ha-no-public-data-ports",
        "redis-ha-firewall",
        [
            'linode.Firewall redis-ha-firewall accepts SSH port 22 from the whole IPv4 internet ("ssh-admin": 203.0.113.0/24; "all": 0.0.0.0/0); expected only your own networks. Fix: narrow redis-ha:adminCidrs.',
            'linode.Firewall redis-ha-firewall accepts Redis port 6379 from the whole IPv4 internet ("redis-peers": 192.0.2.10/32; "redis-clients": 198.51.100.0/24; "all": 0.0.0.0/0); expected only your own networks. Fix: narrow redis-ha:clientCidrs.',
            'linode.Firewall redis-ha-firewall accepts exporter port 9100 from the whole IPv4 internet ("all": 0.0.0.0/0); expected only your own networks. Fix: narrow redis-ha:monitoringCidrs.',
            'linode.Firewall redis-ha-firewall accepts exporter port 9121 from the whole IPv4 internet ("all": 0.0.0.0/0); expected only your own networks. Fix: narrow redis-ha:monitoringCidrs.',
            'linode.Firewall redis-ha-firewall accepts Sentinel port 26379 from the whole IPv4 internet ("redis-peers": 192.0.2.10/32; "redis-clients": 198.51.100.0/24; "all": 0.0.0.0/0); expected only your own networks. Fix: narrow redis-ha:clientCidrs.',
        ],
    ],
    [
        "inbound policy ACCEPT",
        (s) => (firewall(s).inputs.inboundPolicy = "ACCEPT"),
        "redis-ha-firewall-drop-inbound",
        "redis-ha-firewall",
        "linode.Firewall redis-ha-firewall has inbound policy ACCEPT; expected DROP, so that only its ACCEPT rules let traffic in. Fix: the program attaches the cluster's firewall itself (components/cluster.ts); no config key turns it off, so restore that code.",
    ],
    [
        "a Linode without a firewall",
        (s) => delete find(s, "redis-ha-ord-a-linode").inputs.firewallId,
        "redis-ha-firewall-drop-inbound",
        "redis-ha-ord-a-linode",
        "linode.Instance redis-ha-ord-a-linode (redis-prod-ord-a) is behind no Cloud Firewall; expected a firewall with inbound policy DROP attached. Fix: the program attaches the cluster's firewall itself (components/cluster.ts); no config key turns it off, so restore that code.",
    ],
    [
        "a root password",
        (s) => (find(s, "redis-ha-east-b-linode").inputs.rootPass = "hunter2hunter2"),
        "redis-ha-no-root-password",
        "redis-ha-east-b-linode",
        "linode.Instance redis-ha-east-b-linode sets rootPass; expected no root password (root logs in with SSH keys only). Fix: remove rootPass and list your keys in redis-ha:authorizedKeys.",
    ],
    [
        "user-data not secret",
        (s) => (find(s, "redis-ha-witness-linode").additionalSecretOutputs = ["rootPass", "stackscriptData"]),
        "redis-ha-secret-credentials",
        "redis-ha-witness-linode",
        'linode:index/instance:Instance redis-ha-witness-linode: metadatas carries a credential but is not secret (not in additionalSecretOutputs: rootPass, stackscriptData); expected it secret so the state never holds it in plaintext. Fix: add "metadatas" to additionalSecretOutputs where it is declared (components/redisNode.ts); no config key changes this.',
    ],
    [
        "a command's stdin not secret",
        (s) => (find(s, "redis-ha-checks-reach-east-a").additionalSecretOutputs = []),
        "redis-ha-secret-credentials",
        "redis-ha-checks-reach-east-a",
        'command:local:Command redis-ha-checks-reach-east-a: stdin carries a credential but is not secret (not in additionalSecretOutputs: none); expected it secret so the state never holds it in plaintext. Fix: add "stdin" to additionalSecretOutputs where it is declared (components/reach.ts); no config key changes this.',
    ],
    [
        "an SSH command without a host key",
        (s) => delete (find(s, "redis-ha-settings-east-a").inputs.connection as Record<string, unknown>).hostKey,
        "redis-ha-ssh-host-key-pinned",
        "redis-ha-settings-east-a",
        "command:remote:Command redis-ha-settings-east-a connects over SSH without connection.hostKey; expected the node's host key pinned (components/connection.ts sshConnection passes the key components/hostKeys.ts generates). Fix: pass hostKey; no config key changes this.",
    ],
    [
        "two Sentinels",
        (s) =>
            tags(s, "redis-ha-witness-linode").splice(tags(s, "redis-ha-witness-linode").indexOf("role:sentinel"), 1),
        "redis-ha-sentinel-count",
        "redis-ha",
        "cluster redis-prod (redis-ha) has 2 Sentinels (redis-ha-east-a-linode, redis-ha-ord-a-linode); expected an odd number, at least 3, so that a majority survives the loss of any one. Fix: redis-ha:nodes (give the sentinel role to 1 more node, or remove one).",
    ],
    [
        "two of three Sentinels in one region",
        (s) => (find(s, "redis-ha-witness-linode").inputs.region = "us-east"),
        "redis-ha-sentinel-majority-spread",
        "redis-ha",
        "cluster redis-prod (redis-ha): region us-east holds 2 of 3 Sentinels (redis-ha-east-a-linode, redis-ha-witness-linode), a majority, so losing us-east blocks every failover; expected at most 1 per region. Fix: redis-ha:nodes (move a Sentinel to another region, e.g. a witness node).",
    ],
    [
        "no promotable replica outside the master's region",
        (s) => {
            const ordA = cluster(s).topologySummary.nodes.find((n) => n.name === "ord-a");
            if (ordA) ordA.promotable = false;
        },
        "redis-ha-promotable-replica-elsewhere",
        "redis-ha",
        "cluster redis-prod (redis-ha) has no promotable replica outside us-east, the master's region (replicas: east-b in us-east, ord-a in us-ord (promotable: false)); expected at least one in another region, so losing us-east leaves a node to promote. Fix: redis-ha:nodes (a redis node in another region, without promotable: false).",
    ],
    [
        "min-replicas-to-write 0",
        (s) => (cluster(s).topologySummary.minReplicasToWrite = 0),
        "redis-ha-min-replicas-to-write",
        "redis-ha",
        "cluster redis-prod (redis-ha) has 2 replicas but min-replicas-to-write 0; expected at least 1, so a master cut off from every replica stops acknowledging writes a failover would discard. Fix: redis-ha:minReplicasToWrite: 1.",
    ],
    [
        "backups off",
        (s) => (find(s, "redis-ha-east-a-linode").inputs.backupsEnabled = false),
        "redis-ha-backups-enabled",
        "redis-ha",
        "cluster redis-prod (redis-ha) has neither Linode backups on all its Redis nodes (off on redis-ha-east-a-linode) nor Object Storage backups; expected one of them, so that data survives a lost region or a bad write. Fix: redis-ha:backups: true (or the backup.* keys for Object Storage).",
    ],
    [
        "a plan too small for maxmemory",
        (s) => (find(s, "redis-ha-east-b-linode").inputs.type = "g6-standard-1"),
        "redis-ha-memory-headroom",
        "redis-ha-east-b-linode",
        "linode.Instance redis-ha-east-b-linode: plan g6-standard-1 has 2048 MiB and maxmemory is 1843 MiB, leaving 205 MiB; expected at least 512 MiB for the OS, Sentinel and a snapshot's fork. Fix: a larger redis-ha:nodeType (or nodes[].type), or nodes[].memoryMb equal to the plan's RAM.",
    ],
];

describe("policy rules on a hand-made stack", () => {
    it("pass the compliant fixture; the rules that need configuration say they do not apply", async () => {
        const run = await runRules(policies, compliantStack());
        expect(run.reported).toEqual([]);
        expect(
            run.notApplicable.filter(
                (n) =>
                    !n.reason.includes("carries no credential") &&
                    !n.reason.includes("opens no SSH") &&
                    !n.reason.includes("is not checked for tags") &&
                    !n.reason.includes("Policy only applies") &&
                    !n.reason.includes("only applies to resources of type"),
            ),
        ).toEqual(
            expect.arrayContaining([
                { policy: "redis-ha-allowed-regions", reason: "no allowedRegions configured" },
                { policy: "redis-ha-required-tags", reason: "no requiredTags configured" },
            ]),
        );
    });

    it.each(cases)("%s", async (_what, mutate, policy, resource, messages) => {
        const stack = compliantStack();
        mutate(stack);
        const { reported } = await runRules(policies, stack);
        expect(reported).toEqual([messages].flat().map((message) => ({ policy, resource, message })));
    });

    it("allowed regions come from the pack's configuration", async () => {
        const config = { "redis-ha-allowed-regions": { allowedRegions: ["us-east", "us-ord"] } };
        const { reported } = await runRules(policies, compliantStack(), config);
        expect(reported).toEqual([
            {
                policy: "redis-ha-allowed-regions",
                resource: "redis-ha-witness-linode",
                message:
                    "linode.Instance redis-ha-witness-linode is in region us-central; expected one of the allowed regions us-east, us-ord. Fix: that node's region in redis-ha:nodes (and redis-ha:primaryRegion if it is the primary).",
            },
        ]);
    });

    it("required tags come from the pack's configuration; a trailing colon asks for a prefix", async () => {
        const config = { "redis-ha-required-tags": { requiredTags: ["redis-ha", "team:"] } };
        const stack = compliantStack();
        tags(stack, "redis-ha-east-a-linode").push("team:cache");
        const { reported } = await runRules(policies, stack, config);
        expect(reported.map((r) => r.resource)).toEqual([
            "redis-ha-east-b-linode",
            "redis-ha-ord-a-linode",
            "redis-ha-witness-linode",
            "redis-ha-firewall",
        ]);
        expect(reported[3].message).toBe(
            "linode:index/firewall:Firewall redis-ha-firewall lacks the required tag team:<value> (has: redis-ha, cluster:redis-prod); expected every tag of the policy's requiredTags. Fix: redis-ha:tags.",
        );
    });

    it("headroom and exporter ports are configurable", async () => {
        const stack = compliantStack();
        inbounds(stack).push({
            label: "metrics",
            action: "ACCEPT",
            protocol: "TCP",
            ports: "9500-9600",
            ipv4s: ["0.0.0.0/0"],
        });
        const strict = {
            "redis-ha-memory-headroom": { minHeadroomPercent: 60 },
            "redis-ha-no-public-data-ports": { exporterPorts: [9550] },
        };
        const { reported } = await runRules(policies, stack, strict);
        expect(reported.map((r) => `${r.policy} ${r.resource}`)).toEqual([
            "redis-ha-no-public-data-ports redis-ha-firewall",
            "redis-ha-memory-headroom redis-ha-east-a-linode",
            "redis-ha-memory-headroom redis-ha-east-b-linode",
            "redis-ha-memory-headroom redis-ha-ord-a-linode",
        ]);
        expect(reported[0].message).toContain("accepts exporter port 9550");
        expect(reported[0].message).toContain("Fix: narrow redis-ha:monitoringCidrs.");
        // The default exporter ports (9100, 9121) are outside 9500-9600: the same stack passes without configuration.
        expect((await runRules(policies, stack)).reported).toEqual([]);
    });

    it("stack rules say they do not apply to a stack without a RedisCluster", async () => {
        const run = await runRules(
            policies,
            compliantStack().filter((r) => r.name !== "redis-ha"),
        );
        expect(run.notApplicable).toContainEqual({
            policy: "redis-ha-sentinel-count",
            reason: "no redis-ha:cluster:RedisCluster in this stack",
        });
    });
});
