#!/usr/bin/env bash
# The kit's front door. Installs what it needs (Debian packages, npm packages), then runs:
#   ./run.sh                  the lab drill: boots the prod stack as real Debian 12 systems, crashes the master
#                             while writing, reports unavailability and lost writes (same as: ./run.sh drill prod)
#   ./run.sh drill STACK [ARGS...]   the same for another stack; ARGS go to `lab drill` (--scenario, --runs, --json)
#   ./run.sh test             the test suite (npm test)
#   ./run.sh review STACK     what `pulumi up` would create, offline
#   ./run.sh deploy STACK     `pulumi up` against Linode (needs the Pulumi CLI and LINODE_TOKEN)
#   ./run.sh setup            only install what the others need
# Run it as root: in a root shell (a fresh Debian has no sudo) `./run.sh`, or from a user account `sudo ./run.sh`.
set -euo pipefail
cd "$(dirname "$0")"
invocation="./run.sh${*:+ $*}"

setup() {
    local need=() pkg
    if [ "$(id -u)" != 0 ]; then
        echo "run.sh: run as root (the lab creates network namespaces and containers): in a root shell, $invocation; or sudo $invocation" >&2
        exit 1
    fi
    # The lab and the tests need these; `npm run lint` needs shellcheck; the Python client (clients/python) and its
    # tests need Debian's python3-redis, python3-tenacity, python3-prometheus-client (and python3-pytest to run them
    # with pytest); the monitoring tests need promtool and amtool (prometheus, prometheus-alertmanager) and the lab's
    # alert test runs that Prometheus and Alertmanager; the backup tests drive s3cmd and rclone; the mocks make real
    # certificates for the TLS tests with openssl.
    for pkg in cloud-init redis-server redis-sentinel redis-tools systemd-container mmdebstrap dpkg-dev openssh-client iproute2 util-linux shellcheck \
        python3 python3-redis python3-tenacity python3-prometheus-client python3-pytest prometheus prometheus-alertmanager s3cmd rclone openssl; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
    done
    if [ "${#need[@]}" -gt 0 ]; then
        echo "run.sh: installing ${need[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    if ! { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; }; then
        npm ci --no-audit --no-fund
    fi
}

cmd=${1:-drill}
[ $# -gt 0 ] && shift
case "$cmd" in
setup) setup ;;
test) setup && npm test ;;
drill)
    stack=${1:-prod}
    [ $# -gt 0 ] && shift
    setup && npm run -s lab -- drill --stack "$stack" "$@"
    ;;
review) npm ci --no-audit --no-fund >/dev/null && npm run -s review -- --stack "${1:-prod}" ;;
deploy)
    command -v pulumi >/dev/null || { echo "run.sh: install the Pulumi CLI first (https://www.pulumi.com/docs/install/)" >&2; exit 1; }
    [ -n "${LINODE_TOKEN:-}" ] || { echo "run.sh: export LINODE_TOKEN (a Linode personal access token with Linodes, IPs and Firewalls read/write)" >&2; exit 1; }
    npm ci --no-audit --no-fund >/dev/null
    pulumi up --stack "${1:-prod}"
    ;;
*)
    sed -n '2,10p' "$0" >&2
    exit 2
    ;;
esac
