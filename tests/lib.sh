# shellcheck shell=bash
# Helpers for test scripts (which run with `set -eu`).  Source, don't run.
# Servers listen on 127.0.0.1 only.  Use cleanup_add instead of your own
# `trap ... EXIT`, which would replace the one installed here.
# Functions taking a VAR name keep their locals in _-prefixed names, so pass
# names not starting with _.

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}
_CLEANUP=()

log() { printf '%s %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }

requires() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || { echo "SKIP: needs $c"; exit 77; }
	done
}

cleanup_add() { _CLEANUP+=("$1"); }

_cleanup_run() {
	local i
	for ((i = ${#_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${_CLEANUP[i]}" || true
	done
	_CLEANUP=()
}
trap _cleanup_run EXIT
# exit runs the EXIT trap; 128+signal is the conventional status.
trap 'exit 130' INT
trap 'exit 143' TERM

tmpdir_make() {
	local _d
	_d=$(mktemp -d "${TMPDIR:-/tmp}/test.XXXXXX")
	cleanup_add "rm -rf $(printf %q "$_d")"
	printf -v "$1" '%s' "$_d"
}

free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL [TIMEOUT_S [PID]]: with PID, give up early once it has died.
wait_http() {
	local url=$1 end=$((SECONDS + ${2:-10})) pid=${3:-}
	until curl -s -o /dev/null --max-time 1 "$url"; do
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			log "wait_http: server for $url (pid $pid) died"
			return 1
		fi
		if ((SECONDS >= end)); then
			log "wait_http: no answer from $url after ${2:-10} s"
			return 1
		fi
		sleep 0.1
	done
}

# _start VAR PORT LOG CMD...: run CMD in the background, set VAR, VAR_PID, VAR_LOG.
_start() {
	local _var=$1 _port=$2 _logf=$3 _pid
	shift 3
	"$@" </dev/null >>"$_logf" 2>&1 &
	_pid=$!
	# kill+wait inside braces so bash's "Terminated" notice goes to /dev/null too.
	cleanup_add "{ kill $_pid; wait $_pid; } 2>/dev/null"
	printf -v "$_var" 'http://127.0.0.1:%s' "$_port"
	printf -v "${_var}_PID" '%s' "$_pid"
	printf -v "${_var}_LOG" '%s' "$_logf"
}

# _serve NAME VAR DIR [ARGS]: _cmd_NAME DIR PORT TMP [ARGS] sets _CMD.
# free_port can race with other tests, hence the retries.
_serve() {
	local _name=$1 _var=$2 _dir=$3 _tmp _try _pid_var
	shift 3
	[[ -d $_dir ]] || { log "serve_$_name: $_dir: not a directory"; return 1; }
	tmpdir_make _tmp
	_pid_var=${_var}_PID
	for _try in 1 2 3; do
		"_cmd_$_name" "$_dir" "$(free_port)" "$_tmp" "$@"
		_start "$_var" "$_PORT" "$_tmp/server.log" "${_CMD[@]}"
		wait_http "${!_var}/" 10 "${!_pid_var}" && return 0
		log "serve_$_name: attempt $_try failed: $(tail -n 3 "$_tmp/server.log")"
	done
	return 1
}

_cmd_python() {
	_PORT=$2
	_CMD=("$PYTHON" -m http.server --bind 127.0.0.1 --directory "$1" "${@:4}" "$2")
}
_cmd_busybox() {
	_PORT=$2
	# Else busybox reads DIR/httpd.conf, if the served tree has one.
	: >"$3/httpd.conf"
	_CMD=(busybox httpd -f -p "127.0.0.1:$2" -h "$1" -c "$3/httpd.conf")
}
# nginx_temps DIR: the temporary paths an nginx.conf's http block sets,
# under DIR (else nginx writes below its compiled-in prefix).
nginx_temps() {
	local t
	for t in client_body proxy fastcgi uwsgi scgi; do
		printf '%s_temp_path "%s/%s";\n' "$t" "$1" "${t#client_}"
	done
}
_cmd_nginx() {
	_PORT=$2
	mkdir -p "$3/tmp"
	cat >"$3/nginx.conf" <<-EOF
		daemon off;
		master_process off;
		worker_processes 1;
		pid "$3/nginx.pid";
		error_log "$3/error.log" warn;
		events { worker_connections 1024; }
		http {
		    access_log off;
		    sendfile on;
		    keepalive_requests 100000;
		    default_type application/octet-stream;
$(nginx_temps "$3/tmp")
		    server {
		        listen 127.0.0.1:$2;
		        root "$1";
		    }
		}
	EOF
	# -e: nginx opens its compiled-in error log before reading the config.
	_CMD=(nginx -p "$3" -c "$3/nginx.conf" -e "$3/error.log")
}

# Extra args go to http.server, e.g. --protocol HTTP/1.1 (default is 1.0).
serve_python() { _serve python "$2" "$1" "${@:3}"; }
serve_busybox() { requires busybox; _serve busybox "$2" "$1"; }
serve_nginx() { requires nginx; _serve nginx "$2" "$1"; }

# serve_fault DIR VAR [faultserver.py options]: waits for its READY line
# rather than polling, which would use up fault counts and --die-after.
# VAR_LOG is its request log, e.g. to count requests.
serve_fault() {
	local _dir=$1 _var=$2 _tmp _port _end _pid_var=${2}_PID
	shift 2
	tmpdir_make _tmp
	_start "$_var" 0 "$_tmp/server.log" "$PYTHON" "$TESTS_DIR/faultserver.py" \
		--root "$_dir" --port 0 --log "$_tmp/requests.log" "$@"
	printf -v "${_var}_LOG" '%s' "$_tmp/requests.log"
	_end=$((SECONDS + 10))
	until _port=$(sed -n 's/^READY //p' "$_tmp/server.log") && [[ -n $_port ]]; do
		if ((SECONDS >= _end)) || ! kill -0 "${!_pid_var}" 2>/dev/null; then
			log "serve_fault: no READY line: $(cat "$_tmp/server.log")"
			return 1
		fi
		sleep 0.05
	done
	printf -v "$_var" 'http://127.0.0.1:%s' "$_port"
}

check_eq() {
	if [[ "$2" == "$3" ]]; then
		echo "ok: $1"
	else
		echo "FAIL: $1: expected $2, got $3"
		return 1
	fi
}
