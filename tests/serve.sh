#!/bin/bash
# ./build.sh serve as a demo booth's laptop: nginx on the port given,
# serving the store; machines that GET /announce?port=P are on the peer
# list /peers.txt for STREAMCD_PEER_TTL seconds; the counters line says
# how many machines fetched, the bytes served and the peers; Ctrl-C ends
# it with status 0 and no nginx left.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires nginx curl

fixture_load
work=
tmpdir_make work
store_make "$work/store"
# nginx's workers run as nobody: they must reach the store and the list.
chmod 755 "$work"
port=$(free_port)
S=http://127.0.0.1:$port
STREAMCD_OUT=$work/build STREAMCD_STORE=$work/store STREAMCD_PORT=$port STREAMCD_PEER_TTL=4 \
	setsid "$REPO/build.sh" serve >"$work/serve.log" 2>&1 &
pid=$!
cleanup_add "kill -INT -- -$pid 2>/dev/null || true"
wait_http "$S/index/root/latest" 60 "$pid" || { cat "$work/serve.log"; exit 1; }
says_log() { # says_log WHAT PATTERN: serve's output matches, within 20 s
	local _
	for _ in $(seq 100); do
		grep -qE "$2" "$work/serve.log" && { pass "$1"; return; }
		sleep 0.2
	done
	fail "$1: no /$2/ in: $(tail -n 5 "$work/serve.log")"
}
says_log "the boot line to use" "streamcd.url=http://[0-9.]+:$port"
says_log "where the peer list is" "peers.txt"

# peers_are WHAT LIST: /peers.txt is LIST (sorted lines), within 10 s.
peers_are() {
	local _ got
	for _ in $(seq 50); do
		got=$(curl -sf "$S/peers.txt") || got="(curl failed)"
		[[ $got == "$2" ]] && { pass "$1"; return; }
		sleep 0.2
	done
	fail "$1: peers.txt is '$got', want '$2'"
}

peers_are "no peers at first" ""
expect "a block is served" 0 "$(status curl -sf -o "$work/block" "$S/$(block_path "$S" "$(data_block "$S" 0)")")"
expect "announce: 204" 204 "$(curl -s -o /dev/null -w '%{http_code}' "$S/announce?port=9001")"
curl -s -o /dev/null "$S/announce?port=9002"
curl -s -o /dev/null "$S/announce?port=x"
peers_are "two machines announced: both listed" "http://127.0.0.1:9001/
http://127.0.0.1:9002/"
says_log "the counters: machines, bytes, peers" "serve: machines 1 \\(last 5 min\\), served [0-9]+ MB, peers 2"
# Only 9001 keeps announcing: 9002 leaves the list after the TTL.
for _ in 1 2 3 4; do
	curl -s -o /dev/null "$S/announce?port=9001"
	sleep 2
done
peers_are "a machine that stopped announcing leaves the list" "http://127.0.0.1:9001/"

kill -INT -- "-$pid"
rc=0
wait "$pid" || rc=$?
expect "Ctrl-C: status 0" 0 "$rc"
if curl -s -o /dev/null --max-time 2 "$S/"; then fail "nginx still answers"; else pass "nginx is gone"; fi
finish
