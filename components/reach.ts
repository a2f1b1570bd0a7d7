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
 * It runs `true` and nothing else, and public-key authentication sends nothing secret to the server, so it does not
 * pin the host key; the remote commands that follow do. The private key arrives on stdin and lives in a temporary
 * file only while the probe runs.
 *
 * Environment: NODE, HOST, BUDGET (seconds); stdin: the private key.
 */
export const REACH_SCRIPT = `set -u
key=$(mktemp)
trap 'rm -f "$key"' EXIT
chmod 600 "$key"
cat >"$key"
deadline=$((SECONDS + BUDGET))
while :; do
    if out=$(ssh -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "root@$HOST" true 2>&1); then
        echo "node $NODE ($HOST): SSH reachable"
        exit 0
    fi
    case "$out" in
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
            environment: { NODE: args.node, HOST: args.host, BUDGET: String(BOOT_BUDGET_SEC) },
            stdin: pulumi.secret(args.privateKey),
            triggers: [args.instanceId],
        },
        { ...opts, customTimeouts: { create: `${String(BOOT_BUDGET_SEC + 120)}s` } },
    );
}
