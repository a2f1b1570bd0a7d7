import type * as command from "@pulumi/command";
import type * as pulumi from "@pulumi/pulumi";

/**
 * Dial attempts of a post-deploy command. The node answered the reach probe (components/reach.ts) just before, so
 * these cover a short outage only (sshd or the node restarting): the provider waits up to 5 s between attempts plus
 * perDialTimeout per unanswered one, so 20 attempts are about 2 minutes of refusals or 5 of silence, well inside
 * COMMAND_TIMEOUTS. An authentication failure counts as a dial error to the provider; the probe catches it at once.
 */
export const DIAL_ERROR_LIMIT = 20;

/** SSH connection of the post-deploy commands: root with the checks key. */
export function sshConnection(
    host: pulumi.Input<string>,
    privateKey: pulumi.Input<string>,
): command.types.input.remote.ConnectionArgs {
    return {
        host,
        user: "root",
        privateKey,
        dialErrorLimit: DIAL_ERROR_LIMIT,
        perDialTimeout: 10,
    };
}

/** Bounds every post-deploy command, so a stuck check fails the deployment instead of hanging it. */
export const COMMAND_TIMEOUTS: pulumi.CustomTimeouts = { create: "20m", update: "20m", delete: "5m" };
