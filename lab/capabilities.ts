import { readFileSync } from "node:fs";

/**
 * Linux capability sets, for giving commands run inside a node the same
 * powers as the node's own root, not the host's. nspawn drops capabilities
 * such as CAP_SYS_TIME and CAP_SYS_MODULE from the container; a command
 * entered with nsenter would otherwise keep them and, say, set the host's
 * clock while "skewing a node's clock".
 */

/** Capability names by bit number (linux/capability.h), as setpriv(1) spells them. */
const CAPABILITIES = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/** Names of the capabilities in a mask; bits this table does not know are left out. */
export function capabilityNames(mask: bigint): string[] {
    return CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** A process's capability bounding set, from /proc/<pid>/status. */
export function boundingSet(pid: number): bigint {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
        .split("\n")
        .find((l) => l.startsWith("CapBnd:"));
    if (!line) throw new Error(`no CapBnd for pid ${pid}`);
    return BigInt(`0x${line.split(/\s+/)[1]}`);
}

/** The setpriv(1) argument that limits a process to exactly these capabilities. */
export function setprivBoundingSet(mask: bigint): string {
    return ["-all", ...capabilityNames(mask).map((c) => `+${c}`)].join(",");
}
