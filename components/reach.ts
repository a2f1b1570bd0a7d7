import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

/**
 * How long a new Linode may take to accept SSH: boot, then cloud-init's first stages; typically one to three
 * minutes. Past this the node is not booting, it is unreachable (wrong adminCidrs, firewall, address).
 */
export const BOOT_BUDGET_SEC = 600;

/**
 * The first contact with a node, from the machine running `pulumi up`, with OpenSSH: it distinguishes what
 * @pulumi/command 1.2.1 cannot. The provider retries every dial error alike (an authentication failure too) until
 * `dialErrorLimit`; this probe fails at once when the server refuses the key, keeps retrying only while the node may
 * still be booting (connection refused or timed out), and names the node and its address either way.
 *
 * It pins the node's host key like the remote commands that follow (a key that does not match fails at once too),
 * and runs `true` and nothing else. The private key arrives on stdin and lives in a temporary file only while the
 * probe runs.
 *
 * Environment: NODE, HOST, HOST_KEY ("ssh-ed25519 AAAA..."), BUDGET (seconds); stdin: the private key.
 */
export const REACH_SCRIPT = `set -u
key=$(mktemp)
known=$(mktemp)
trap 'rm -f "$key" "$known"' EXIT
chmod 600 "$key"
cat >"$key"
printf '%s %s\\n' "$HOST" "$HOST_KEY" >"$known"
deadline=$((SECONDS + BUDGET))
while :; do
    if out=$(ssh -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$known" -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR "root@$HOST" true 2>&1); then
        echo "node $NODE ($HOST): SSH reachable"
        exit 0
    fi
    case "$out" in
    *"Host key verification failed"* | *"IDENTIFICATION HAS CHANGED"*)
        echo "node $NODE ($HOST): the server's host key is not the node's (hostKeys output); something else answers at this address" >&2
        exit 1
        ;;
    *"Permission denied"* | *"Too many authentication failures"* | *"no mutual signature"*)
        echo "node $NODE ($HOST): SSH refused the checks key; install its public half on the node (authorizedKeys) or set the matching checksPrivateKey" >&2
        exit 1
        ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "node $NODE ($HOST): no SSH within \${BUDGET}s (last error: \${out:-none}); check that adminCidrs covers this machine" >&2
        exit 1
    fi
    sleep 5
done
`;

/** bash flags for the probe. --norc: bash reads ~/.bashrc when stdin is a socket; the probe wants none of it. */
export const REACH_INTERPRETER_FLAGS = ["--norc", "--noprofile", "-c"] as const;

export interface ReachArgs {
    node: string;
    host: pulumi.Input<string>;
    /** The node's SSH host key, `ssh-ed25519 AAAA...` (components/hostKeys.ts). */
    hostKey: pulumi.Input<string>;
    privateKey: pulumi.Input<string>;
    /** A new instance id (a created or replaced Linode) runs the probe again. */
    instanceId: pulumi.Input<number>;
}

/** The probe for one node (see REACH_SCRIPT), a `local.Command` on the machine running `pulumi up`. */
export function reachCommand(name: string, args: ReachArgs, opts: pulumi.CustomResourceOptions): command.local.Command {
    return new command.local.Command(
        name,
        {
            create: REACH_SCRIPT,
            interpreter: ["/bin/bash", ...REACH_INTERPRETER_FLAGS],
            environment: { NODE: args.node, HOST: args.host, HOST_KEY: args.hostKey, BUDGET: String(BOOT_BUDGET_SEC) },
            stdin: pulumi.secret(args.privateKey),
            triggers: [args.instanceId],
        },
        // stdin is the private key: secret in the state as well.
        {
            ...opts,
            customTimeouts: { create: `${String(BOOT_BUDGET_SEC + 120)}s` },
            additionalSecretOutputs: ["stdin"],
        },
    );
}
