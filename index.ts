import { deploy } from "./program";

const { cluster } = deploy();

export const masterName = cluster.masterName;
export const sentinels = cluster.sentinels;
export const nodes = cluster.nodes;
export const connectionSnippet = cluster.connectionSnippet;
export const hostKeys = cluster.hostKeys;
export const redisPassword = cluster.redisPassword;
export const sentinelPassword = cluster.sentinelPassword;
export const checksPrivateKey = cluster.checksPrivateKey;
