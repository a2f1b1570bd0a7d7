/**
 * Memory of the Linode plans this kit sizes Redis for, in MiB.
 * Source: Linode's plan list (`GET /linode/types`, field `memory`). A plan not listed here can still be used by giving
 * `memoryMb` on the node, so a new plan never blocks a deployment.
 */
export const LINODE_TYPE_MEMORY_MB: Readonly<Record<string, number>> = {
    "g6-nanode-1": 1024,
    "g6-standard-1": 2048,
    "g6-standard-2": 4096,
    "g6-standard-4": 8192,
    "g6-standard-6": 16384,
    "g6-standard-8": 32768,
    "g6-standard-16": 65536,
    "g6-dedicated-2": 4096,
    "g6-dedicated-4": 8192,
    "g6-dedicated-8": 16384,
    "g6-dedicated-16": 32768,
    "g6-dedicated-32": 65536,
    "g7-highmem-1": 24576,
    "g7-highmem-2": 49152,
    "g7-highmem-4": 98304,
    "g7-highmem-8": 196608,
};

/**
 * The memory Redis may use for data on a plan with `ramMb` of RAM.
 *
 * Why this shape: the OS, sshd, Sentinel and the exporters need a fixed floor (max(256 MiB, 10 %)), and a persisting
 * Redis forks for every RDB snapshot and AOF rewrite. The child shares pages copy-on-write with the parent, so under a
 * write-heavy load the resident size can approach twice the dataset
 * (https://redis.io/docs/latest/operate/oss_and_stack/management/admin/ — "Memory"). Half of what remains is kept for
 * that; without persistence a quarter is enough for replication buffers and fragmentation.
 */
export function maxmemoryBytes(ramMb: number, persistent: boolean): number {
    const reservedMb = Math.max(256, Math.ceil(ramMb * 0.1));
    const usableMb = Math.max(0, ramMb - reservedMb);
    const dataMb = Math.floor(usableMb * (persistent ? 0.5 : 0.75));
    return dataMb * 1024 * 1024;
}
