import { deployChecked } from "./program";

// An async program (Pulumi awaits the exported function): the region check, an invoke, answers before any resource
// is declared, so a region that cannot work fails preview with one line.
export = async () => {
    const { cluster } = await deployChecked();
    return {
        masterName: cluster.masterName,
        sentinels: cluster.sentinels,
        nodes: cluster.nodes,
        connectionSnippet: cluster.connectionSnippet,
        hostKeys: cluster.hostKeys,
        redisPassword: cluster.redisPassword,
        sentinelPassword: cluster.sentinelPassword,
        checksPrivateKey: cluster.checksPrivateKey,
    };
};
