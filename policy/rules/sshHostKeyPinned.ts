import type { ResourceValidationPolicy } from "@pulumi/policy";

const SSH_TYPES = new Set(["command:remote:Command", "command:remote:CopyToRemote"]);

/**
 * Every SSH command pins the node's host key (`connection.hostKey`).
 *
 * Severity: high. Without it the provider accepts any host key: whoever answers on the node's address (a recycled IP,
 * a man in the middle) receives root's private key and the passwords the command carries on stdin.
 */
export const sshHostKeyPinned: ResourceValidationPolicy = {
    name: "redis-ha-ssh-host-key-pinned",
    description: "SSH commands pin the node's host key.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateResource: (args, reportViolation) => {
        if (!SSH_TYPES.has(args.type)) args.notApplicable(`${args.type} opens no SSH connection`);
        const connection = args.props.connection as { hostKey?: unknown } | undefined;
        const hostKey = connection?.hostKey;
        if (typeof hostKey !== "string" || hostKey.trim() === "")
            reportViolation(
                `${args.type} ${args.name} connects over SSH without connection.hostKey; expected the node's host key pinned (components/connection.ts sshConnection passes the key components/hostKeys.ts generates). Fix: pass hostKey; no config key changes this.`,
            );
    },
};
