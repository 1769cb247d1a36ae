#!/bin/bash
# A demo booth under load: N clients against one server on a 100 Mbit/s
# link, without and with peers. See --help.
set -eu
export LC_ALL=C

usage() {
	cat <<'EOF'
Usage: bench/booth.sh [OPTIONS] N

A demo booth is one laptop serving the store and a room of machines
booting the CD. Here the laptop is nginx over out/store behind
tests/delayproxy.c (a shared 100 Mbit/s link by default), and each of the
N machines is an hcloop mount of image dom0 in a network namespace of its
own (on a bridge, as on one switch), with a disk cache, replaying the
reads of dom0's boot profile (out/profile/dom0.profile, the build's
trace of a real boot) in their order. Machine i starts i * --stagger
seconds after the first, as people switch a room on one after another.

Two runs side by side, each from empty caches:

  server  every machine fetches from the laptop alone
  peers   a machine that has booted serves its verified blocks read-only
          (busybox httpd over its hcloop cache, which is laid out like a
          store) and joins the booth's peer list; every machine mounts
          with --peers, so blocks come from booted peers first

Each run ends with one line:

  booth: mode=server|peers clients=N errors=E seconds=S server_bytes_per_client=B

errors: machines whose replay failed or whose mount counted read errors;
seconds: from the first machine's start to the last one's last block;
server_bytes_per_client: what the laptop's server sent (nginx's count,
index and peer list included), divided by N. The ratio of the two goes
to standard error.
Targets: no errors at N=32; with peers the server sends at most a third.

Peers only hold what their boot read, and serve once booted: with
--stagger 0 (every machine switched on in the same second) nobody has
booted before the others read, and peers cannot help.

Options:
  -s, --stagger S   seconds between two machines' starts (default 2)
  -b, --rate RATE   the laptop's link, bytes/s (default 12.5M = 100 Mbit/s)
  -r, --rtt MS      its round trip (default 1)
  -m, --mode MODE   server, peers or both (default both)
  -h, --help
Needs root (network namespaces, FUSE), ./build.sh done (out/store with
image dom0, out/profile/dom0.profile), nginx, busybox and iproute2. The
booth's network is 10.213.0.0/16 on a bridge of its own (sbooth<pid>),
removed at the end with the namespaces.
EOF
}

TOP=$(cd "$(dirname "$0")/.." && pwd)
STAGGER=2
RATE=12.5M
RTT=1
MODES=(server peers)
N=
while (($#)); do
	case $1 in
	-s | --stagger) STAGGER=${2:?--stagger needs seconds}; shift 2 ;;
	-b | --rate) RATE=${2:?--rate needs a value}; shift 2 ;;
	-r | --rtt) RTT=${2:?--rtt needs ms}; shift 2 ;;
	-m | --mode)
		case ${2:-} in
		server | peers) MODES=("$2") ;;
		both) MODES=(server peers) ;;
		*) echo "booth.sh: --mode: server, peers or both" >&2; exit 2 ;;
		esac
		shift 2
		;;
	-h | --help) usage; exit 0 ;;
	-*) echo "booth.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	*) [[ -z $N ]] || { echo "booth.sh: one N (see --help)" >&2; exit 2; }; N=$1; shift ;;
	esac
done
if ! [[ $N =~ ^[1-9][0-9]*$ ]] || ((N > 200)); then
	echo "booth.sh: give N, 1 to 200 machines (see --help)" >&2
	exit 2
fi
[[ $STAGGER =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "booth.sh: bad --stagger: $STAGGER" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "booth.sh: needs root (network namespaces, FUSE)" >&2; exit 1; }

. "$TOP/tests/lib.sh"
. "$TOP/tests/delay-lib.sh"
for c in nginx busybox ip fusermount3 python3; do
	command -v "$c" >/dev/null || { echo "booth.sh: needs $c (./build.sh deps)" >&2; exit 1; }
done
STORE=$TOP/out/store
PROFILE=$TOP/out/profile/dom0.profile
[[ -f $STORE/index/dom0/latest && -s $PROFILE ]] ||
	{ echo "booth.sh: no image dom0 in $STORE or no $PROFILE: run ./build.sh first" >&2; exit 1; }
HCLOOP=$TOP/cloop/build/hcloop
make -s -C "$TOP/cloop" build/hcloop

work=
tmpdir_make work
# What the machines leave running if the run is cut short: their peers'
# servers and their hcloop daemons (each in a mount namespace of its own).
cleanup_add "pkill -f 'busybox httpd -p 10\\.213\\.' || true"
cleanup_add "pkill -f 'hcloop mount .*$work/' || true"
# The booth's own network: a bridge with the laptop's address, a name
# unlikely to be taken; the namespaces' names carry our pid.
BR=sbooth$$
NET=10.213
ip link add "$BR" type bridge
cleanup_add "ip link del $BR"
ip addr add "$NET.0.1/16" dev "$BR"
ip link set "$BR" up

# ip_of I: machine I's address on the booth's network.
ip_of() { echo "$NET.$(($1 / 250 + 1)).$(($1 % 250 + 2))"; }

for i in $(seq "$N"); do
	ns=sbooth$$-$i
	ip netns add "$ns"
	cleanup_add "ip netns del $ns"
	ip link add "sb$$h$i" type veth peer name eth0 netns "$ns"
	ip link set "sb$$h$i" master "$BR" up
	ip -n "$ns" addr add "$(ip_of "$i")/16" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
done

# The laptop: nginx counting what it sends, behind the link; the peer list
# comes from a server of its own beside it, off the emulated link (a few
# hundred bytes a read).
mkdir -p "$work/nginx/tmp" "$work/list"
NGINX_PORT=$(free_port)
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid "$work/nginx/nginx.pid";
error_log "$work/nginx/error.log" warn;
events { worker_connections 4096; }
http {
    log_format sent '\$bytes_sent';
    access_log "$work/nginx/sent.log" sent;
    sendfile on;
    keepalive_requests 100000;
    default_type application/octet-stream;
$(nginx_temps "$work/nginx/tmp")
    server { listen 127.0.0.1:$NGINX_PORT; root "$STORE"; }
    server { listen $NET.0.1:$NGINX_PORT; root "$work/list"; }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" </dev/null \
	>"$work/nginx/out.log" 2>&1 &
NGINX_PID=$!
cleanup_add "{ kill $NGINX_PID; wait $NGINX_PID; } 2>/dev/null"
wait_http "http://127.0.0.1:$NGINX_PORT/index/dom0/latest" 10 "$NGINX_PID"
delayproxy_build
"$DELAYPROXY" --listen "$NET.0.1:0" --to "127.0.0.1:$NGINX_PORT" --rtt "$RTT" --rate "$RATE" \
	--port-file "$work/proxy.port" </dev/null >/dev/null 2>"$work/proxy.log" &
PROXY_PID=$!
cleanup_add "{ kill $PROXY_PID; wait $PROXY_PID; } 2>/dev/null"
for _ in $(seq 100); do [[ -s $work/proxy.port ]] && break; sleep 0.05; done
[[ -s $work/proxy.port ]] || { echo "booth.sh: the delay proxy did not start: $(cat "$work/proxy.log")" >&2; exit 1; }
URL=http://$NET.0.1:$(cat "$work/proxy.port")
LIST=http://$NET.0.1:$NGINX_PORT/peers.txt

# The replay: each block of the profile read from the mounted image, in
# the profile's order; prints the number of blocks read.
REPLAY='
import sys
bs, path, prof = int(sys.argv[1]), sys.argv[2], sys.argv[3]
n = 0
with open(path, "rb", buffering=0) as f:
    for line in open(prof):
        line = line.strip()
        if line:
            f.seek(int(line) * bs)
            if len(f.read(bs)) == 0:
                sys.exit("short read at block " + line)
            n += 1
print(n)'
BS=$("$HCLOOP" info "$STORE" dom0 | awk '$1 == "block" && $2 == "size:" { print $3 }')

# machine MODE I: one machine's boot, in its namespace; writes
# $work/MODE/I.{start,end,rc,stats}. With peers, a booted machine serves
# its cache and joins the list.
machine() {
	local mode=$1 i=$2 ns=sbooth$$-$2 d=$work/$1/$2 args=() rc=0
	mkdir -p "$d/mnt" "$d/cache"
	[[ $mode == peers ]] && args=(--peers "$LIST" --peers-interval 1)
	date +%s.%N >"$d/start"
	# One ip netns exec for mount, replay and unmount: it enters a mount
	# namespace of its own, where the FUSE mount lives.
	# shellcheck disable=SC2016 # expanded by the namespace's bash
	ip netns exec "$ns" bash -c '
		"$1" mount -C "$2/cache" -P profile -r 0 --log "$2/hcloop.log" "${@:7}" "$3" dom0 "$2/mnt" || exit 1
		rc=0
		python3 -c "$4" "$5" "$2/mnt/dom0" "$6" >"$2/replayed" 2>"$2/replay.err" || rc=$?
		cat "$2/mnt/.stats" >"$2/stats" 2>/dev/null || rc=1
		fusermount3 -u "$2/mnt" || umount -l "$2/mnt"
		exit "$rc"' booth "$HCLOOP" "$d" "$URL" "$REPLAY" "$BS" "$PROFILE" "${args[@]}" >"$d/out" 2>&1 || rc=$?
	date +%s.%N >"$d/end"
	echo "$rc" >"$d/rc"
	if [[ $mode == peers && $rc == 0 ]]; then
		ip netns exec "$ns" busybox httpd -p "$(ip_of "$i"):8080" -h "$d/cache" -c /dev/null
		# Appended under a lock and renamed in: a reader never sees half a list.
		(
			flock 9
			cat "$work/list/peers.txt" 2>/dev/null >"$work/list/peers.new" || true
			echo "http://$(ip_of "$i"):8080" >>"$work/list/peers.new"
			mv "$work/list/peers.new" "$work/list/peers.txt"
		) 9>"$work/list.lock"
	fi
}

run_mode() {
	local mode=$1 i errors=0 first last sent t0 secs pids
	mkdir -p "$work/$mode"
	: >"$work/list/peers.txt"
	: >"$work/nginx/sent.log"
	log "$mode: $N machines, one every $STAGGER s, the laptop's link $RATE B/s, RTT $RTT ms"
	t0=$(date +%s.%N)
	pids=()
	for i in $(seq "$N"); do
		machine "$mode" "$i" &
		pids+=($!)
		((i == N)) || sleep "$STAGGER"
	done
	# Not a bare wait: nginx and the proxy are children too.
	wait "${pids[@]}"
	for i in $(seq "$N"); do
		if [[ $(cat "$work/$mode/$i/rc") != 0 ]] ||
			[[ $(awk '$1 == "read_errors" { print $2 }' "$work/$mode/$i/stats" 2>/dev/null) != 0 ]]; then
			errors=$((errors + 1))
			log "$mode: machine $i failed: $(tail -n 3 "$work/$mode/$i/out" "$work/$mode/$i/replay.err" 2>/dev/null | tr '\n' ' ')"
		fi
	done
	first=$t0
	last=$(cat "$work/$mode"/*/end | sort -n | tail -1)
	secs=$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.1f", b - a }')
	# nginx writes its log line when a response is done: every machine has
	# unmounted, so every response is in.
	sent=$(awk '{ s += $1 } END { printf "%d", s }' "$work/nginx/sent.log")
	if [[ $mode == peers ]]; then
		for i in $(seq "$N"); do
			log "peers: machine $i: $(awk '$1 ~ /^(peers|peer_fetched_bytes|fetched_bytes|peer_list_errors)$/ { printf "%s %s  ", $1, $2 }' "$work/$mode/$i/stats" 2>/dev/null)"
		done
	fi
	# Kill what served the peers: the next mode starts from nothing.
	pkill -f "busybox httpd -p $NET\." 2>/dev/null || true
	echo "booth: mode=$mode clients=$N errors=$errors seconds=$secs server_bytes_per_client=$((sent / N))"
	declare -g "SENT_$mode=$sent"
}

for m in "${MODES[@]}"; do run_mode "$m"; done
if [[ ${#MODES[@]} == 2 ]]; then
	# shellcheck disable=SC2154 # set by run_mode's declare
	# On stderr: standard output is exactly one "booth: mode=" line per mode.
	log "$(awk -v s="$SENT_server" -v p="$SENT_peers" 'BEGIN {
		printf "the server sent %.2fx less with peers (target at N=32: 3x or more)", p ? s / p : 0 }')"
fi
