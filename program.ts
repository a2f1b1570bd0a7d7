import * as pulumi from "@pulumi/pulumi";
import { RedisCluster } from "./components/cluster";
import { checkCreationSettings, CREATION_SETTINGS_OUTPUT } from "./components/creationSettings";
import { CLUSTER_RESOURCE, resourceNames } from "./components/names";
import { assertRegionCapabilities } from "./components/regionCapabilities";
import { deployedPlans, planResizes, type ResizeStep } from "./components/resize";
import { ConfigError, secretGiven, topologyFromConfig, type SecretKey, type Topology } from "./topology";

export interface Deployment {
    topology: Topology;
    cluster: RedisCluster;
}

/** The topology from stack config; bad config is one RunError with one line per problem (no stack trace). */
export function validatedTopology(): Topology {
    try {
        return topologyFromConfig(pulumi.runtime.allConfig(), pulumi.getProject(), pulumi.getStack());
    } catch (e) {
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
}

/**
 * Declares the cluster. Validates stack config first: bad config fails preview with one line per problem and
 * nothing is half-built.
 */
export function deploy(
    opts?: pulumi.ComponentResourceOptions,
    topology = validatedTopology(),
    resizes: readonly ResizeStep[] = [],
): Deployment {
    const raw = pulumi.runtime.allConfig();
    const config = new pulumi.Config();
    // The CLI passes Pulumi.yaml's default "" whenever the stack does not set a credential, so "" means "not given"
    // (generate one). The raw value is a plain string here even for secrets, so the test needs no Output.
    const secret = (key: SecretKey) => (secretGiven(raw, key) ? config.requireSecret(key) : undefined);
    const cluster = new RedisCluster(
        CLUSTER_RESOURCE,
        {
            topology,
            redisPassword: secret("redisPassword"),
            sentinelPassword: secret("sentinelPassword"),
            checksPrivateKey: secret("checksPrivateKey"),
            resizes,
            monitoringWebhookUrl: secret("monitoringWebhookUrl"),
            monitoringSmtpPassword: secret("monitoringSmtpPassword"),
        },
        opts,
    );
    return { topology, cluster };
}

/**
 * The whole program, as `index.ts` runs it for `pulumi up` and the mock runner (engine/mockRun.ts) runs it for
 * review, the lab and the tests: validate, refuse a change of a creation-time key on a deployed stack, declare the
 * cluster, return the stack outputs.
 */
export async function program(
    opts?: pulumi.ComponentResourceOptions,
    topology = validatedTopology(),
): Promise<Record<string, pulumi.Output<unknown>>> {
    // Invokes run during preview too: a region that lacks what its nodes need fails before any resource exists.
    await assertRegionCapabilities(topology);
    await checkCreationSettings(resourceNames.creationSettings, topology, {
        transformations: opts?.transformations,
    });
    // Each running Linode's plan, read at preview: a plan change is rolled out one node at a time.
    const resizes = planResizes(topology, await deployedPlans(topology));
    return stackOutputs(deploy(opts, topology, resizes));
}

/**
 * The stack outputs. Credentials that clients need are secret outputs; the checks' SSH key is not an output at all
 * (whoever can read outputs would be root on every node).
 */
export function stackOutputs({ cluster, topology }: Deployment): Record<string, pulumi.Output<unknown>> {
    return {
        masterName: cluster.masterName,
        // WAIT this many replicas and a copy lives outside the master's region (docs/dr.md; durability "region").
        regionSafeReplicas: pulumi.output(topology.dr.regionSafeReplicas),
        sentinels: cluster.sentinels,
        nodes: cluster.nodes,
        connectionSnippet: cluster.connectionSnippet,
        hostKeys: cluster.hostKeys,
        // Where backups go (not secret: the key stays in the backup nodes' files); absent when backups are off.
        ...(cluster.backup ? { backup: cluster.backup } : {}),
        redisPassword: cluster.redisPassword,
        sentinelPassword: cluster.sentinelPassword,
        // Read back by the next deployment, which refuses to change them (components/creationSettings.ts).
        [CREATION_SETTINGS_OUTPUT]: cluster.creationSettings,
        // tls: each ACL user's name and current password (secret), the CA clients trust, certificate end dates.
        ...(cluster.aclPasswords
            ? {
                  users: pulumi.secret(
                      cluster.aclPasswords.apply((p) =>
                          Object.fromEntries(
                              Object.entries(p).map(([user, v]) => [user, { username: user, password: v.current }]),
                          ),
                      ),
                  ),
              }
            : {}),
        ...(cluster.caCertificate ? { caCertificate: cluster.caCertificate } : {}),
        ...(cluster.certificatesValidUntil ? { certificatesValidUntil: cluster.certificatesValidUntil } : {}),
        // The monitoring node's address, Prometheus and Alertmanager URLs (monitoringEnabled only).
        ...(cluster.monitoring ? { monitoring: cluster.monitoring } : {}),
    };
}
