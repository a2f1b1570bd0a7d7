# Shared helpers of the redis-ha node scripts (sourced, not run). Reads the node's settings and passwords.
. /etc/redis-ha/node.env

# rcli HOST PORT ARGS...   redis-cli against a Redis node; gives up after RCLI_TIMEOUT seconds (default 3); the
#                          password travels in the environment, never in argv.
rcli() { local h=$1 p=$2; shift 2; REDISCLI_AUTH="$REDIS_PASSWORD" timeout "${RCLI_TIMEOUT:-3}" redis-cli --no-auth-warning -h "$h" -p "$p" --raw "$@"; }
# scli HOST PORT ARGS...   the same against a Sentinel.
scli() { local h=$1 p=$2; shift 2; REDISCLI_AUTH="$SENTINEL_PASSWORD" timeout "${RCLI_TIMEOUT:-3}" redis-cli --no-auth-warning -h "$h" -p "$p" --raw "$@"; }
# info_field TEXT NAME     one field of an INFO reply.
info_field() { printf '%s\n' "$1" | tr -d '\r' | awk -F: -v k="$2" '$1==k {print $2; exit}'; }
# sentinel_views           "sentinel-address master-address:port" per Sentinel ("unreachable" when it does not answer).
sentinel_views() {
    local s a
    for s in $SENTINELS; do
        a=$(scli "${s%:*}" "${s##*:}" SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | paste -sd: || true)
        echo "$s ${a:-unreachable}"
    done
}
# agreed_master            the master every Sentinel names, or nothing if they disagree or one is unreachable.
agreed_master() {
    local views
    views=$(sentinel_views | awk '{print $2}' | sort -u)
    if [ "$(printf '%s\n' "$views" | wc -l)" = 1 ] && [ "$views" != unreachable ]; then echo "$views"; fi
}
now_ms() { date +%s%3N; }
