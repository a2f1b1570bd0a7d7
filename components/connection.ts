import type * as command from "@pulumi/command";
import type * as pulumi from "@pulumi/pulumi";

/** SSH connection of the post-deploy commands: root with the checks key; waits for a booting Linode indefinitely. */
export function sshConnection(
    host: pulumi.Input<string>,
    privateKey: pulumi.Input<string>,
): command.types.input.remote.ConnectionArgs {
    return {
        host,
        user: "root",
        privateKey,
        // A new Linode takes a minute or two to accept SSH: keep dialling instead of failing after 10 tries.
        dialErrorLimit: -1,
        perDialTimeout: 10,
    };
}

/** Bounds every post-deploy command, so a stuck check fails the deployment instead of hanging it. */
export const COMMAND_TIMEOUTS: pulumi.CustomTimeouts = { create: "20m", update: "20m", delete: "5m" };
