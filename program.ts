import * as pulumi from "@pulumi/pulumi";
import { RedisCluster } from "./components/cluster";
import { CLUSTER_RESOURCE } from "./components/names";
import { assertRegionCapabilities } from "./components/regionCapabilities";
import { deployedPlans, planResizes, type ResizeStep } from "./components/resize";
import { ConfigError, secretGiven, topologyFromConfig, type SecretKey, type Topology } from "./topology";

export interface Deployment {
    topology: Topology;
    cluster: RedisCluster;
}

/**
 * The whole program: validates stack config, then declares the cluster. `index.ts` calls it for `pulumi up`; the
 * offline review and the lab call it under Pulumi's mocks (with resource options that record what is declared).
 */
export function deploy(
    opts?: pulumi.ComponentResourceOptions,
    topology = stackTopology(),
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
        },
        opts,
    );
    return { topology, cluster };
}

/** The stack's validated topology. */
function stackTopology(): Topology {
    try {
        // Validate everything before the first resource: bad config fails preview with one line per problem and
        // nothing is half-built.
        return topologyFromConfig(pulumi.runtime.allConfig(), pulumi.getProject(), pulumi.getStack());
    } catch (e) {
        // RunError is reported by Pulumi without a stack trace: the message is the whole story.
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
}

/** What `deploy` needs from Linode before it declares anything. */
export interface Preflight {
    readonly topology: Topology;
    /** Plan changes of running nodes, in rollout order. */
    readonly resizes: readonly ResizeStep[];
}

/**
 * What runs before `deploy`: validates the stack's config, asks Linode whether every region offers what its nodes
 * need (`linode.getRegion`), and reads the running nodes' plans (`linode.getInstances`) so a plan change is rolled out
 * one node at a time. Invokes run during preview too: bad config or a region that cannot work fails preview with one
 * line per problem, before any resource is declared.
 */
export async function preflight(): Promise<Preflight> {
    const topology = stackTopology();
    await assertRegionCapabilities(topology);
    return { topology, resizes: planResizes(topology, await deployedPlans(topology)) };
}

/**
 * The stack outputs, as `index.ts` exports them. Credentials that clients need are secret outputs; the checks' SSH
 * key is not an output at all (whoever can read outputs would be root on every node).
 */
export function stackOutputs({ cluster }: Deployment): Record<string, pulumi.Output<unknown>> {
    return {
        masterName: cluster.masterName,
        sentinels: cluster.sentinels,
        nodes: cluster.nodes,
        connectionSnippet: cluster.connectionSnippet,
        hostKeys: cluster.hostKeys,
        redisPassword: cluster.redisPassword,
        sentinelPassword: cluster.sentinelPassword,
    };
}
