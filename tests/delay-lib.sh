# shellcheck shell=bash
# delayproxy (tests/delayproxy.c) for tests and benchmarks: a TCP proxy on
# 127.0.0.1 that adds a round-trip time and a bandwidth cap, in place of
# tc netem. Source after lib.sh.

DELAYPROXY_SRC=$TESTS_DIR/delayproxy.c
DELAYPROXY_CACHE=${STREAMCD_OUT:-$TESTS_DIR/../out}/delayproxy
# cloop/Makefile's WARN, so that the proxy meets the project's standard.
DELAYPROXY_CFLAGS=(-std=c17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes)

# delayproxy_build [CFLAGS...]: compiles delayproxy.c with DELAYPROXY_CFLAGS
# and CFLAGS (e.g. -fsanitize=address,undefined) into the cache, once per
# source text and flags, and sets DELAYPROXY to the binary.
# shellcheck disable=SC2120 # CFLAGS are optional
delayproxy_build() {
	local _cc=${CC:-cc} _bin _tmp
	requires "$_cc" sha256sum
	_bin=$DELAYPROXY_CACHE/delayproxy-$({
		cat "$DELAYPROXY_SRC"
		printf '%s\n' "$_cc" "${DELAYPROXY_CFLAGS[@]}" "$@"
	} | sha256sum | cut -c1-16)
	if [[ ! -x $_bin ]]; then
		mkdir -p "$DELAYPROXY_CACHE"
		# Built aside and renamed: tests running at once may build it too.
		_tmp=$(mktemp "$_bin.XXXXXX")
		if ! "$_cc" "${DELAYPROXY_CFLAGS[@]}" "$@" -o "$_tmp" "$DELAYPROXY_SRC"; then
			rm -f "$_tmp"
			log "delayproxy_build: $_cc failed on $DELAYPROXY_SRC"
			return 1
		fi
		chmod 755 "$_tmp"
		mv -f "$_tmp" "$_bin"
	fi
	DELAYPROXY=$_bin
}

# delayproxy_start VAR UPSTREAM_PORT RTT_MS [RATE [OPTIONS...]]: a proxy from
# a free port to 127.0.0.1:UPSTREAM_PORT, stopped at exit. Sets VAR to its
# port, VAR_PID to its pid (for delayproxy_toggle and kill) and VAR_LOG to
# its stderr. RATE "" is no cap.
delayproxy_start() {
	local _var=$1 _up=$2 _rtt=$3 _rate=${4:-} _tmp _pid _end _args
	# shellcheck disable=SC2119 # the default build
	[[ -n ${DELAYPROXY:-} ]] || delayproxy_build || return 1
	tmpdir_make _tmp
	_args=(--listen 127.0.0.1:0 --to "127.0.0.1:$_up" --rtt "$_rtt" --port-file "$_tmp/port")
	[[ -z $_rate ]] || _args+=(--rate "$_rate")
	"$DELAYPROXY" "${_args[@]}" "${@:5}" </dev/null >"$_tmp/stdout" 2>"$_tmp/log" &
	_pid=$!
	cleanup_add "{ kill $_pid; wait $_pid; } 2>/dev/null"
	_end=$((SECONDS + 10))
	until [[ -s $_tmp/port ]]; do
		if ! kill -0 "$_pid" 2>/dev/null || ((SECONDS >= _end)); then
			log "delayproxy_start: not listening: $(cat "$_tmp/log")"
			return 1
		fi
		sleep 0.02
	done
	printf -v "$_var" '%s' "$(cat "$_tmp/port")"
	printf -v "${_var}_PID" '%s' "$_pid"
	printf -v "${_var}_LOG" '%s' "$_tmp/log"
}

# delayproxy_toggle VAR stall|reset: flips the fault and returns once the
# proxy has acted on it (its log says so), so that what follows sees it.
delayproxy_toggle() {
	local _pid_var=${1}_PID _log_var=${1}_LOG _sig _before _end
	case $2 in
	stall) _sig=USR1 ;;
	reset) _sig=USR2 ;;
	*) log "delayproxy_toggle: $2: not stall or reset"; return 1 ;;
	esac
	_before=$(grep -c "^delayproxy: $2 o" "${!_log_var}" || true)
	kill -s "$_sig" "${!_pid_var}"
	_end=$((SECONDS + 10))
	until (($(grep -c "^delayproxy: $2 o" "${!_log_var}" || true) > _before)); do
		if ((SECONDS >= _end)); then
			log "delayproxy_toggle: no '$2' line in ${!_log_var}"
			return 1
		fi
		sleep 0.02
	done
}

# delayproxy_stop VAR: stops it with SIGTERM; returns its exit status.
delayproxy_stop() {
	local _pid_var=${1}_PID _rc=0
	kill "${!_pid_var}" 2>/dev/null || true
	wait "${!_pid_var}" || _rc=$?
	return "$_rc"
}
