# shellcheck shell=bash
# Shared helpers of the redis-ha node scripts (sourced, not run). Reads where things live (paths.sh, rendered from
# cloud-init/paths.ts beside the scripts), then the node's settings and passwords (node.env).
lib_dir=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=/dev/null # rendered at deploy time, not in the repository
. "$lib_dir/paths.sh"
# shellcheck source=/dev/null # rendered per node (cloud-init/userData.ts), holds passwords
. "$NODE_ENV_FILE"
# A script ended by a signal it does not trap skips its EXIT trap (bash): systemd's SIGTERM on stop, a Ctrl-C, a closed
# terminal's SIGHUP. Every script that sources this exits through its EXIT trap instead (after the command running
# then), so what it holds comes back: a paused master, unpromotable replicas, held PINGs, a backup's compression, a
# temporary directory, the sessions.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# How the scripts log in. TLS=1 (stack config `tls: true`): over TLS with this node's certificate, as the ACL user
# `admin`, whose password is read from its file (owner redis, 0640) at every call, so a rotated password is used at
# once. Otherwise the shared passwords of node.env. Either way the password travels in the environment
# (REDISCLI_AUTH), never in argv, where `ps` would show it.
if [ "${TLS:-0}" = 1 ]; then
    CLI_TLS=(--tls --cacert "$TLS_CA" --cert "$TLS_CERT" --key "$TLS_KEY" --user admin)
else
    CLI_TLS=()
fi
# secret_of USER           the current password of an ACL user, from its file (tls only).
#
# The helpers below start no process of their own beyond redis-cli and its `timeout` (builtins, no `$(...)`): on a
# node they run in loops (redis-fence twice a second, redis-homing every second, the stop hook's polls while writers
# wait), where every process start costs CPU that Redis and Sentinel need, and milliseconds of the loop's round.
secret_of() { local s=""; IFS= read -r s <"$SECRETS_DIR/$1" || true; printf '%s' "$s"; }
# redis_secret, sentinel_secret   the password the scripts log in with, printed (or put in the variable named by $1).
redis_secret() { _login_secret "${1:-}" "${REDIS_PASSWORD:-}"; }
sentinel_secret() { _login_secret "${1:-}" "${SENTINEL_PASSWORD:-}"; }
_login_secret() {
    local s=$2
    [ "${TLS:-0}" != 1 ] || { IFS= read -r s <"$SECRETS_DIR/admin" || true; }
    if [ -n "$1" ]; then printf -v "$1" '%s' "$s"; else printf '%s' "$s"; fi
}
# rcli HOST PORT ARGS...   redis-cli against a Redis node; gives up after RCLI_TIMEOUT seconds (default 3), so a hung
#                          node never stalls a caller (a deploy, a check, a restart).
rcli() {
    local h=$1 p=$2 pw
    shift 2
    redis_secret pw
    REDISCLI_AUTH=$pw timeout "${RCLI_TIMEOUT:-3}" redis-cli --no-auth-warning "${CLI_TLS[@]}" -h "$h" -p "$p" --raw "$@"
}
# scli HOST PORT ARGS...   the same against a Sentinel.
scli() {
    local h=$1 p=$2 pw
    shift 2
    sentinel_secret pw
    REDISCLI_AUTH=$pw timeout "${RCLI_TIMEOUT:-3}" redis-cli --no-auth-warning "${CLI_TLS[@]}" -h "$h" -p "$p" --raw "$@"
}
# info_field TEXT NAME     one field of an INFO reply (up to the next colon, as `awk -F:` reads it).
info_field() {
    local line v
    while IFS= read -r line; do
        line=${line%$'\r'}
        if [ "${line%%:*}" = "$2" ] && [ "$line" != "$2" ]; then
            v=${line#*:}
            printf '%s\n' "${v%%:*}"
            return 0
        fi
    done <<<"$1"
}
# at_once FN ARG...        runs `FN ARG` for every ARG at the same time and prints their outputs in ARG order. Over
#                          TLS one redis-cli call costs tens of ms (OpenSSL's start and the handshake), and the start
#                          guard's crash handover and the stop handover poll several nodes while writes wait.
at_once() {
    local fn=$1 a i=0 j dir
    local -a pids=()
    shift
    dir=$(mktemp -d) || return 1
    for a in "$@"; do
        "$fn" "$a" >"$dir/$i" &
        pids+=($!)
        i=$((i + 1))
    done
    # Only these children: a caller's own background jobs are not waited for.
    [ "${#pids[@]}" -eq 0 ] || wait "${pids[@]}"
    local line
    for ((j = 0; j < i; j++)); do
        while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done <"$dir/$j"
    done
    rm -rf "$dir"
}
# Sessions: a redis-cli kept running on one connection, for loops and for the steps that run while writers wait
# (redis-fence twice a second, the stop hook), where starting a process per call (tens of ms, hundreds on a busy
# machine, more over TLS) costs more than the call.
# session_open NAME HOST:PORT redis|sentinel   starts one (again, if NAME ended); it connects at once, and again on
#                                               the next call if its connection dropped.
# session_alive NAME                           is it running?
# session_send NAME COMMAND...                 sends each COMMAND (one line, split as redis-cli splits it); 1 when the
#                                               session is not running. It records the call for session_read: call
#                                               both in the same shell (a `$(...)` of one alone loses the record).
# session_read NAME DEADLINE_MS [VAR]          prints the replies to the last send as `rcli --raw` does, without
#                                               carriage returns (or puts them in VAR, without a subshell); 1 when its
#                                               node refused the connection or the replies did not all come by
#                                               DEADLINE_MS (now_ms clock). The session is then ended (it may hang):
#                                               open it again for the next call.
# session_call NAME TIMEOUT_MS COMMAND...       both at once (session_call_into: into a variable, no subshell).
# session_end NAME, session_close_all          end one, or all (call the latter from the script's EXIT trap).
# Replies go to a regular file, not a pipe: bash reads a pipe one byte per system call (a CLIENT LIST of a busy master
# took 0.1 s so in the lab), a file in blocks. Waiting for more is a `read -t` on a FIFO that nobody writes.
declare -A _session_pid=() _session_in=() _session_out=() _session_mark=()
_session_dir="" _session_tick=""
# _session_dir_open: the sessions' directory (and the nap's FIFO), made once; session_close_all removes it, so a file
# kept there is gone however the script ends.
_session_dir_open() {
    [ -z "$_session_dir" ] || return 0
    _session_dir=$(mktemp -d) && mkfifo "$_session_dir/tick" || return 1
    exec {_session_tick}<>"$_session_dir/tick"
}
session_open() {
    local name=$1 pw in out
    _session_dir_open || return 1
    session_end "$name"
    rm -f "$_session_dir/$name.in"
    mkfifo "$_session_dir/$name.in" && : >"$_session_dir/$name.out" || return 1
    if [ "$3" = sentinel ]; then sentinel_secret pw; else redis_secret pw; fi
    REDISCLI_AUTH=$pw redis-cli --no-auth-warning "${CLI_TLS[@]}" -h "${2%:*}" -p "${2##*:}" --raw \
        <"$_session_dir/$name.in" >>"$_session_dir/$name.out" 2>&1 &
    _session_pid[$name]=$!
    # Opened read-write: the open does not wait for redis-cli's.
    exec {in}<>"$_session_dir/$name.in" {out}<"$_session_dir/$name.out"
    _session_in[$name]=$in
    _session_out[$name]=$out
}
session_alive() { [ -n "${_session_pid[$1]:-}" ] && kill -0 "${_session_pid[$1]}" 2>/dev/null; }
session_send() {
    local name=$1
    shift
    _session_mark[$name]=""
    session_alive "$name" || return 1
    # `PING <token>` (Sentinel has no ECHO) after the commands: its reply, a line no other reply is, marks their end.
    _session_mark[$name]="session-end-$BASHPID-${EPOCHREALTIME//[!0-9]/}"
    printf '%s\n' "$@" "PING ${_session_mark[$name]}" >&"${_session_in[$name]}"
}
session_read() {
    local name=$1 deadline=$2 into=${3:-} pid=${_session_pid[$1]:-} end=${_session_mark[$1]:-} line partial="" replies=""
    local -a chunk
    [ -n "$pid" ] && [ -n "$end" ] && kill -0 "$pid" 2>/dev/null || return 1
    while :; do
        # Everything written so far, in blocks; the last element lacks its newline while redis-cli is mid-line.
        mapfile -u "${_session_out[$name]}" chunk
        for line in "${chunk[@]}"; do
            if [[ "$line" != *$'\n' ]]; then
                partial+=$line
                continue
            fi
            line=$partial${line%$'\n'}
            line=${line%$'\r'}
            partial=""
            if [ "$line" = "$end" ]; then
                if [ -n "$into" ]; then printf -v "$into" '%s' "$replies"; else printf '%s' "$replies"; fi
                _session_rewind "$name" ${#replies}
                return 0
            fi
            if [[ "$line" == "Could not connect to Redis at "* ]]; then
                kill "$pid" 2>/dev/null
                return 1
            fi
            replies+=$line$'\n'
        done
        if [ $((${EPOCHREALTIME//[!0-9]/} / 1000)) -ge "$deadline" ]; then
            kill "$pid" 2>/dev/null
            return 1
        fi
        session_nap 2
    done
}
# _session_rewind NAME BYTES: counts what was read; past 1 MB, empties the reply file and reads it from its start
# again, so that a session of a long-running loop (redis-fence) does not fill /tmp. Safe right after a call's end:
# redis-cli writes only replies, all read by then. Only in the shell that holds the session: a subshell's reopened
# descriptor would leave the holder's reading past the file's end.
declare -A _session_read_bytes=()
_session_rewind() {
    local out
    [ "$BASHPID" = "$$" ] || return 0
    _session_read_bytes[$1]=$((${_session_read_bytes[$1]:-0} + $2))
    [ "${_session_read_bytes[$1]}" -ge 1048576 ] || return 0
    : >"$_session_dir/$1.out"
    out=${_session_out[$1]}
    exec {out}<&-
    exec {out}<"$_session_dir/$1.out"
    _session_out[$1]=$out
    _session_read_bytes[$1]=0
}
session_call() {
    local name=$1 ms=$2
    shift 2
    session_send "$name" "$@" && session_read "$name" $((${EPOCHREALTIME//[!0-9]/} / 1000 + ms))
}
# session_call_into NAME TIMEOUT_MS VAR COMMAND...   the same, the replies into VAR.
session_call_into() {
    local name=$1 ms=$2 var=$3
    shift 3
    session_send "$name" "$@" && session_read "$name" $((${EPOCHREALTIME//[!0-9]/} / 1000 + ms)) "$var"
}
# session_nap MS: sleeps without starting a process (once a session was opened; `sleep` before that).
session_nap() {
    local t
    printf -v t '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
    if [ -n "$_session_tick" ]; then read -r -t "$t" -u "$_session_tick" _ || true; else sleep "$t"; fi
}
session_end() {
    [ -n "${_session_pid[$1]:-}" ] || return 0
    local in=${_session_in[$1]} out=${_session_out[$1]}
    # `|| true`: a session whose redis-cli already ended, under a caller's `set -e` (the start guard).
    kill "${_session_pid[$1]}" 2>/dev/null || true
    exec {in}>&- {out}<&-
    unset "_session_pid[$1]" "_session_in[$1]" "_session_out[$1]" "_session_mark[$1]"
}
session_close_all() {
    local name
    for name in "${!_session_pid[@]}"; do session_end "$name"; done
    # The nap's FIFO too: a descriptor would outlive an exec (loop_reexec_if_released).
    [ -z "$_session_tick" ] || exec {_session_tick}>&-
    _session_tick=""
    [ -z "$_session_dir" ] || rm -rf "$_session_dir"
    _session_dir=""
}
# master_address_of REPLY VAR   VAR: the "host:port" that a get-master-addr-by-name REPLY (its two lines) names, or
#                                empty when REPLY is anything else (an error, an unknown master, nothing).
master_address_of() {
    # Locals named apart from any caller's VAR: printf -v sets the innermost variable of that name.
    local -a _mao_lines=()
    local _mao_a
    [ -z "$1" ] || mapfile -t _mao_lines <<<"${1%$'\n'}"
    _mao_lines=("${_mao_lines[@]%$'\r'}")
    _mao_a="${_mao_lines[0]:-}:${_mao_lines[1]:-}"
    [ "${#_mao_lines[@]}" -eq 2 ] && [[ "$_mao_a" =~ ^[^:[:space:]]+:[0-9]+$ ]] || _mao_a=""
    printf -v "$2" '%s' "$_mao_a"
}
# sentinel_view SENTINEL   "sentinel-address master-address:port", or "unreachable" (with the reply, if any) when it
#                          gives no address.
sentinel_view() {
    local reply a
    reply=$(scli "${1%:*}" "${1##*:}" SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null)
    master_address_of "$reply" a
    if [ -z "$a" ]; then
        reply=${reply//$'\r'/}
        a="unreachable${reply:+ (${reply//$'\n'/:})}"
    fi
    echo "$1 $a"
}
# sentinel_views           sentinel_view of every configured Sentinel, asked at once, in $SENTINELS order.
# shellcheck disable=SC2086 # $SENTINELS is a space-separated list
sentinel_views() { at_once sentinel_view $SENTINELS; }
# sentinel_answers TIMEOUT_MS   for loops (redis-fence, redis-homing): sets `answers` to the master each configured
#                               Sentinel that answered names ("host:port", one per answer), on kept sessions
#                               (sentinel0, sentinel1, ... in $SENTINELS order), all asked at once, so a round takes
#                               one timeout however many are unreachable. A session that failed, or whose answer is no
#                               address (as after a password change), is ended and opened again at the next call: that
#                               call counts its Sentinel as not answering.
sentinel_answers() {
    local i deadline reply a
    local -a configured
    read -ra configured <<<"$SENTINELS"
    for i in "${!configured[@]}"; do
        session_alive "sentinel$i" || session_open "sentinel$i" "${configured[i]}" sentinel
        session_send "sentinel$i" "SENTINEL get-master-addr-by-name $MASTER_NAME" || true
    done
    deadline=$((${EPOCHREALTIME//[!0-9]/} / 1000 + $1))
    answers=()
    for i in "${!configured[@]}"; do
        reply=""
        session_read "sentinel$i" "$deadline" reply || true
        master_address_of "$reply" a
        if [ -n "$a" ]; then answers+=("$a"); else session_end "sentinel$i"; fi
    done
}
# majority_master_into VAR ADDRESS...   VAR: the address that a majority of the configured Sentinels name among the
#                                        ADDRESSes (one per Sentinel that answered), or empty.
majority_master_into() {
    local _mmi_var=$1 _mmi_m
    local -a _mmi_all
    local -A _mmi_named=()
    shift
    read -ra _mmi_all <<<"$SENTINELS"
    printf -v "$_mmi_var" '%s' ""
    for _mmi_m in "$@"; do [ -z "$_mmi_m" ] || _mmi_named[$_mmi_m]=$((${_mmi_named[$_mmi_m]:-0} + 1)); done
    for _mmi_m in "${!_mmi_named[@]}"; do
        [ "${_mmi_named[$_mmi_m]}" -lt $((${#_mmi_all[@]} / 2 + 1)) ] || printf -v "$_mmi_var" '%s' "$_mmi_m"
    done
}
# agreed_master            the master ("host:port") that a majority of the configured Sentinels name, or nothing.
# agreed_master_into VAR TIMEOUT_MS   the same into VAR, on sentinel_answers' kept sessions (loops: no process starts).
#
# The one rule for "the master the Sentinels agree on" in these scripts. A majority of all configured Sentinels (not
# of those that answer, not every one), because that is what Sentinel itself needs to act: a failover leader must be
# elected by a majority of all Sentinels, so the master a majority names is the one the Sentinels will keep acting on;
# two different masters can never both hold a majority, so the answer is unique; one Sentinel down or partitioned
# (what the drills cause) does not blind the scripts; and a partitioned minority can never name a stale master on its
# own. check-quorum alone asks for every Sentinel: it reports health, and a Sentinel that disagrees is a finding.
agreed_master() {
    local -a said
    local v m
    mapfile -t said < <(sentinel_views)
    for v in "${!said[@]}"; do
        m=${said[v]#* }
        m=${m%% *}
        [ "$m" != unreachable ] || m=""
        said[v]=$m
    done
    majority_master_into m "${said[@]}"
    [ -z "$m" ] || echo "$m"
}
agreed_master_into() {
    local -a answers
    sentinel_answers "$2"
    majority_master_into "$1" "${answers[@]}"
}
# Loops that run for the node's life (redis-fence, redis-homing) read their script, lib.sh, paths.sh and node.env
# once. A rollout replaces those files by rename (a running shell keeps its old copy) and then, when one of them
# changed, touches SCRIPTS_RELEASED_FILE (apply-settings). loop_started marks this process's start; loop_reexec_if_released, called between rounds, execs the
# script anew (the same pid for systemd) once the release file is newer than that mark, so the loop runs the new code
# from its next round. Checked with test's -nt: no process per round.
loop_started() { _loop_mark=$(mktemp) || _loop_mark=""; }
loop_reexec_if_released() {
    # ${...:-}: a paths.sh older than this lib.sh (a rollout cut short) must not stop the loop (set -u).
    [ -n "${_loop_mark:-}" ] && [ "${SCRIPTS_RELEASED_FILE:-}" -nt "$_loop_mark" ] || return 0
    echo "${0##*/}: a new release of the scripts is in place; running it" >&2
    loop_ended
    exec "$BASH" "$0"
}
# loop_ended: what loop_started and the sessions left (from the loop's EXIT trap, and before the exec above).
loop_ended() {
    session_close_all
    [ -z "${_loop_mark:-}" ] || rm -f "$_loop_mark"
    _loop_mark=""
}
# now_ms                   the wall clock in ms, without starting a process (the scripts read it in polling loops).
now_ms() { local us=${EPOCHREALTIME//[!0-9]/}; echo $((10#$us / 1000)); }
# hold_pings HOST:PORT     stops a master's replication PINGs (CONFIG SET repl-ping-replica-period) until
# release_pings            release_pings sets the period back; 1 if it could not.
#
# For the controlled failovers (stop handover, fail-back, drill handover): with its writes paused, a master still sends
# its replicas a PING every repl-ping-replica-period (10 s by default), and each one moves the replication offset. One
# that reaches the other replicas after the catch-up check but not yet the replica Sentinel promotes leaves them 14
# bytes ahead of the new master, which then cannot take them back by partial resync: a full sync of every other
# replica, while writes that wait for a replica wait for it (measured in the lab: 3 s more, one planned stop in seven).
# Redis's own FAILOVER command holds these PINGs too; with Sentinel failing over, the caller holds them.
PINGS_HELD_PERIOD=86400
pings_held_on=""
pings_period=""
hold_pings() {
    local v
    v=$(rcli "${1%:*}" "${1##*:}" CONFIG GET repl-ping-replica-period 2>/dev/null | sed -n 2p | tr -d '\r')
    [[ "$v" =~ ^[0-9]+$ ]] || return 1
    pings_held_on=$1 pings_period=$v
    [ "$(rcli "${1%:*}" "${1##*:}" CONFIG SET repl-ping-replica-period "$PINGS_HELD_PERIOD" 2>/dev/null | tr -d '\r')" = OK ]
}
release_pings() {
    [ -n "$pings_held_on" ] || return 0
    rcli "${pings_held_on%:*}" "${pings_held_on##*:}" CONFIG SET repl-ping-replica-period "$pings_period" >/dev/null 2>&1 ||
        echo "could not set repl-ping-replica-period back to $pings_period on $pings_held_on: run redis-cli CONFIG SET repl-ping-replica-period $pings_period there" >&2
    pings_held_on=""
}
# lift_pause HOST:PORT FENCE   ends a controlled failover's write pause (CLIENT PAUSE ... WRITE) on that master. With
#                              FENCE=1 (a Sentinel may have taken the SENTINEL FAILOVER) the master is fenced first
#                              (redis-fence's value): the writes the pause held then get NOREPLICAS and go to the new
#                              master, instead of running on an old master that Sentinel demotes only about 10 s later
#                              (+convert-to-slave), and that discards them then. If it stays master after all,
#                              redis-fence on its node lifts the fence at its next round, as a majority still names it.
#                              Warns on stderr for what it could not do; 1 if so.
lift_pause() {
    local ok=0
    if [ "$2" = 1 ] &&
        [ "$(rcli "${1%:*}" "${1##*:}" CONFIG SET min-replicas-to-write "$FENCED_MIN_REPLICAS" 2>/dev/null | tr -d '\r')" != OK ]; then
        echo "could not fence $1 before lifting its pause" >&2
        ok=1
    fi
    if [ "$(rcli "${1%:*}" "${1##*:}" CLIENT UNPAUSE 2>/dev/null | tr -d '\r')" != OK ]; then
        echo "could not lift the pause on $1 (it ends by itself when its time runs out)" >&2
        ok=1
    fi
    return "$ok"
}
# blocked_waits HOST:PORT   how many clients of that Redis are blocked in WAIT (0 when it does not answer).
# count_blocked_waits       the same, of a CLIENT LIST reply on stdin.
count_blocked_waits() {
    local n
    n=$(grep -c ' flags=[^ ]*b[^ ]* .* cmd=wait ')
    echo "${n:-0}"
}
blocked_waits() { rcli "${1%:*}" "${1##*:}" CLIENT LIST 2>/dev/null | count_blocked_waits; }
# in_primary_region ADDRESS   is ADDRESS (host:port) one of the primary region's Redis nodes?
in_primary_region() { [[ " $PRIMARY_REDIS_NODES " == *" $1 "* ]]; }
# sentinel_replica_field SENTINEL REPLICA FIELD   one field of REPLICA (host:port) in SENTINEL's SENTINEL REPLICAS.
sentinel_replica_field() {
    replica_field "$(scli "${1%:*}" "${1##*:}" SENTINEL REPLICAS "$MASTER_NAME" 2>/dev/null)" "$2" "$3"
}
# replica_field TEXT REPLICA FIELD   the same, of a SENTINEL REPLICAS reply (`--raw`: a key line, then its value).
replica_field() {
    tr -d '\r' <<<"$1" |
        awk -v want="$2" -v field="$3" 'key == "name" { name = $0 } key == field && name == want { print; exit } { key = $0 }'
}
# hold_unpromotable REPLICA...   replica-priority 0 on each (Sentinel then never promotes it) until
# release_unpromotable           release_unpromotable gives each its priority back, the running value and the file
#                                (Sentinel follows its REPLICAOF with CONFIG REWRITE, which would persist the 0).
#                                hold_unpromotable returns 1 if a priority could not be read or set.
declare -A held_priorities=()
hold_unpromotable() {
    local r p
    for r in "$@"; do
        p=$(rcli "${r%:*}" "${r##*:}" CONFIG GET replica-priority 2>/dev/null | sed -n 2p | tr -d '\r')
        [[ "$p" =~ ^[0-9]+$ ]] || return 1
        held_priorities[$r]=$p
        [ "$(rcli "${r%:*}" "${r##*:}" CONFIG SET replica-priority 0 2>/dev/null | tr -d '\r')" = OK ] || return 1
    done
}
release_unpromotable() {
    local r
    for r in "${!held_priorities[@]}"; do
        if ! rcli "${r%:*}" "${r##*:}" CONFIG SET replica-priority "${held_priorities[$r]}" >/dev/null 2>&1 ||
            ! rcli "${r%:*}" "${r##*:}" CONFIG REWRITE >/dev/null 2>&1; then
            echo "WARNING: could not restore replica-priority ${held_priorities[$r]} on $r; set it by hand" >&2
        fi
        unset 'held_priorities[$r]'
    done
}

# The crash handover (redis-stop-record as a crashed Redis ends, else the start guard at its restart): a master whose
# process died asks one Sentinel for SENTINEL FAILOVER instead of letting them wait down-after. Callers define log()
# and close the sessions at exit (session_close_all in their EXIT trap).
#
# Its Sentinel calls go over sessions (crash-<address>), opened at once on first use and kept to the script's end:
# the round of SENTINEL MASTER starts one redis-cli per Sentinel, all in parallel, and SENTINEL FAILOVER then goes over
# a connection already open, instead of a redis-cli started (and a TLS handshake made) after the round, which took
# 0.1-0.3 s each on a busy node.
#
# master_states             sets MASTER_STATES: one line per configured Sentinel that answers SENTINEL MASTER, all
#                           asked at once: "sentinel master-address:port flags". In this shell, not a `$(...)` or
#                           `< <(...)`: the sessions must outlive the call.
MASTER_STATES=()
master_states() {
    local s reply line key ip port flags deadline
    local -a queried=()
    MASTER_STATES=()
    for s in $SENTINELS; do
        session_alive "sentinel-$s" || session_open "sentinel-$s" "$s" sentinel
        session_send "sentinel-$s" "SENTINEL MASTER $MASTER_NAME" && queried+=("$s")
    done
    deadline=$((${EPOCHREALTIME//[!0-9]/} / 1000 + ${RCLI_TIMEOUT:-3} * 1000))
    for s in "${queried[@]}"; do
        reply=""
        session_read "sentinel-$s" "$deadline" reply || continue
        key="" ip="" port="" flags=""
        while IFS= read -r line; do
            case $key in ip) ip=$line ;; port) port=$line ;; flags) flags=$line ;; esac
            key=$line
        done <<<"$reply"
        [ -z "$ip$flags" ] || MASTER_STATES+=("$s $ip:$port $flags")
    done
}
# failover_underway         0 when any Sentinel sees the master down (o_down) or is failing it over.
failover_underway() {
    local state
    master_states
    for state in "${MASTER_STATES[@]}"; do _master_busy "$state" && return 0; done
    return 1
}
# _master_busy STATE        0 when a master_states line shows the master down (o_down) or failing over.
_master_busy() { [[ ",${1##* }," == *,o_down,* || ",${1##* }," == *,failover_in_progress,* ]]; }
# crash_handover_due        0 when this node may ask for a crash handover, from one round of master_states: a majority
#                           of the configured Sentinels names this node as master (the agreed_master rule) and none
#                           sees it down or is failing it over already (o_down, failover_in_progress), and nothing
#                           answers on the local Redis port (a second instance, a stray process: not certain it is dead).
#                           Opens the session to this node's own Sentinel meanwhile, for ask_failover.
crash_handover_due() {
    local state rest n=0 pinged
    local -a all
    read -ra all <<<"$SENTINELS"
    [ "${RUNS_SENTINEL:-0}" != 1 ] || session_alive "sentinel-127.0.0.1:$SENTINEL_PORT" ||
        session_open "sentinel-127.0.0.1:$SENTINEL_PORT" "127.0.0.1:$SENTINEL_PORT" sentinel
    # Dead means the port refuses connections: a process that holds it and does not answer may still take writes.
    # Asked beside the Sentinel round, not after it.
    # In the sessions' directory: the caller's EXIT trap (session_close_all) removes it even after a signal.
    _session_dir_open || return 1
    pinged=$_session_dir/local-ping
    rcli 127.0.0.1 "$REDIS_PORT" PING >"$pinged" 2>&1 &
    local ping_pid=$!
    master_states
    for state in "${MASTER_STATES[@]}"; do
        _master_busy "$state" && n=-1 && break
        rest=${state#* }
        [ "${rest%% *}" != "$NODE_ADDRESS:$REDIS_PORT" ] || n=$((n + 1))
    done
    wait "$ping_pid"
    [ "$n" -ge $((${#all[@]} / 2 + 1)) ] && [[ "$(<"$pinged")" == *"Connection refused"* ]]
    local due=$?
    rm -f "$pinged"
    return "$due"
}
# sentinels_local_first     the Sentinels to ask, this node's own first: it shares the node's view and is the quickest
#                           to reach.
sentinels_local_first() {
    local s
    [ "${RUNS_SENTINEL:-0}" != 1 ] || echo "127.0.0.1:$SENTINEL_PORT"
    for s in $SENTINELS; do
        [ "$s" = "$NODE_ADDRESS:$SENTINEL_PORT" ] || echo "$s"
    done
}
# failover_refused REPLY    0 when REPLY to SENTINEL FAILOVER is a refusal by which that Sentinel started nothing:
#                           -NOGOODSLAVE, another error of the command or the login, a refused connection. Not OK or
#                           -INPROG (one failover runs), nor silence or a connection lost after the ask ("Error:
#                           Server closed the connection"): that Sentinel may have started one.
failover_refused() {
    case "$1" in
    *NOGOODSLAVE* | ERR* | NOAUTH* | WRONGPASS* | NOPERM* | "Could not connect"*) return 0 ;;
    *) return 1 ;;
    esac
}
# ask_failover LABEL        SENTINEL FAILOVER on the first Sentinel that takes it, this node's own first
#                           (sentinels_local_first); sets ASKED_SENTINEL to it and logs as LABEL (the crash or the stop
#                           handover). OK starts the failover; -INPROG means that Sentinel is already failing this
#                           master over: either way one failover runs, and no other Sentinel is asked. A refusal
#                           (failover_refused) moves on. Anything else (no reply in time, a connection lost after the
#                           ask) may hide a failover that Sentinel did start: another is asked only if no Sentinel
#                           shows one under way, so that two forced failovers, which no election orders, never run at
#                           once. Uses the session sentinel-<address> where one is open. 1 when no Sentinel took it.
ASKED_SENTINEL=""
# shellcheck disable=SC2034 # ASKED_SENTINEL is read by the callers (redis-stop-record, redis-stop-handover)
ask_failover() {
    local label=$1 s reply
    ASKED_SENTINEL=""
    for s in $(sentinels_local_first); do
        reply=""
        if session_alive "sentinel-$s"; then
            # A session that fails (a refused connection, no reply in time) leaves reply empty: counted as no reply.
            session_call_into "sentinel-$s" $((${RCLI_TIMEOUT:-3} * 1000)) reply "SENTINEL FAILOVER $MASTER_NAME" || reply=""
            reply=${reply%$'\n'}
        else
            reply=$(scli "${s%:*}" "${s##*:}" SENTINEL FAILOVER "$MASTER_NAME" 2>&1 | tr -d '\r') || true
        fi
        case "$reply" in
        OK | *INPROG*)
            log "$label: Sentinel $s answered '$reply' to SENTINEL FAILOVER $MASTER_NAME"
            ASKED_SENTINEL=$s
            return 0
            ;;
        esac
        if failover_refused "$reply"; then
            log "$label: Sentinel $s refused SENTINEL FAILOVER: $reply"
        elif failover_underway; then
            log "$label: Sentinel $s did not take SENTINEL FAILOVER $MASTER_NAME (${reply:-no reply}), and a failover is under way"
            ASKED_SENTINEL=$s
            return 0
        else
            log "$label: Sentinel $s did not take SENTINEL FAILOVER (${reply:-no reply}), and no failover is under way"
        fi
    done
    return 1
}
# phase_wait_ms NOW LAST_READ STEPS PERIOD AIM
#                           how long to wait (ms) before a run of STEPS ms that ends with SENTINEL FAILOVER, so that
#                           the Sentinel's last read of the replicas before the command is AIM ms old when it arrives.
#                           That Sentinel last read them at LAST_READ and reads them again every PERIOD ms plus up to
#                           one timer tick (about 50 ms on average). All times epoch ms.
phase_wait_ms() {
    local now=$1 start=$(($2 + $5 - $3)) period=$(($4 + 50))
    while [ "$start" -lt "$now" ]; do start=$((start + period)); done
    echo $((start - now))
}
