import * as pulumi from "@pulumi/pulumi";
import { RedisCluster } from "./components/cluster";
import { assertRegionCapabilities } from "./components/regionCapabilities";
import { ConfigError, SECRET_KEYS, topologyFromConfig, type Topology } from "./topology";

export interface Deployment {
    topology: Topology;
    cluster: RedisCluster;
}

/**
 * The whole program: validates stack config, then declares the cluster. `index.ts` calls it for `pulumi up`; the
 * offline review and the lab call it under Pulumi's mocks (with resource options that record what is declared).
 */
export function deploy(opts?: pulumi.ComponentResourceOptions, topology = stackTopology()): Deployment {
    const config = new pulumi.Config();
    const secret = (key: string) => (SECRET_KEYS.has(key) ? config.getSecret(key) : undefined);
    const cluster = new RedisCluster(
        topology.cluster,
        {
            topology,
            redisPassword: secret("redisPassword"),
            sentinelPassword: secret("sentinelPassword"),
            checksPrivateKey: secret("checksPrivateKey"),
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

/**
 * `deploy`, after asking Linode whether every region of the stack offers what its nodes need (`linode.getRegion`;
 * invokes run during preview too). A region that cannot work fails preview with one line per region, before any
 * resource is declared.
 */
export async function deployChecked(opts?: pulumi.ComponentResourceOptions): Promise<Deployment> {
    const topology = stackTopology();
    await assertRegionCapabilities(topology);
    return deploy(opts, topology);
}
