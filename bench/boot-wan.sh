#!/bin/bash
# The real boot of out/streamcd.iso in QEMU over an emulated slow link: see
# --help.
set -eu
export LC_ALL=C

usage() {
	cat <<'EOF'
Usage: bench/boot-wan.sh [OPTIONS]

Boots out/streamcd.iso (default entry: Xen and dom0) in QEMU with the store
behind tests/delayproxy.c (a round trip and a shared bandwidth cap on
127.0.0.1, in place of tc netem) and measures, for each link, one boot
after another:

  on-demand  a copy of out/store whose dom0 index has no boot profile:
             blocks come when read (with hcloop's sequential read-ahead)
  profile    out/store as the build left it: the build's boot profile
             fetched ahead (./build.sh profile)
  whole      the live-boot way (streamcd.fetch=): the whole dom0 image
             downloaded into memory first, then the boot from it

Each: seconds from QEMU's start to "streamcd: dom0 ready" (as ./build.sh
run reports it, to a tenth) and the bytes fetched by then (hcloop's count
on that line; for the whole way, what nginx sent), against the dom0
image's size. Under QEMU's TCG most
of a boot is emulated CPU, the same for every way: one boot with the image
on a local disk (streamcd.root=, no network at all) measures that floor
first, and "net_s" is a boot's seconds above it, what the link cost.
Targets at 80 ms: profile at least 3x faster than whole and 2x faster than
on-demand; profile's bytes at most 10 % of the image.

Options:
  -r, --rtt LIST     round trips in ms, comma-separated (default 0,20,80)
  -b, --rate LIST    link rates in Mbit/s, comma-separated (default 100,20)
  -w, --ways LIST    of on-demand,profile,whole (default all three)
  -o, --out FILE     the table also into FILE (default out/bench/boot-wan.txt)
  -h, --help
Needs root, ./build.sh (through the profile stage) done, nginx and QEMU.
A boot under QEMU TCG takes a minute or more: 3 RTTs x 2 rates x 3 ways is
half an hour.
EOF
}

TOP=$(cd "$(dirname "$0")/.." && pwd)
RTTS=0,20,80
RATES=100,20
WAYS=on-demand,profile,whole
OUTFILE=$TOP/out/bench/boot-wan.txt
while (($#)); do
	case $1 in
	-r | --rtt) RTTS=${2:?--rtt needs a list}; shift 2 ;;
	-b | --rate) RATES=${2:?--rate needs a list}; shift 2 ;;
	-w | --ways) WAYS=${2:?--ways needs a list}; shift 2 ;;
	-o | --out) OUTFILE=${2:?--out needs a file}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "boot-wan.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
[[ $RTTS =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "boot-wan.sh: bad --rtt list: $RTTS" >&2; exit 2; }
[[ $RATES =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "boot-wan.sh: bad --rate list: $RATES" >&2; exit 2; }
for w in ${WAYS//,/ }; do
	case $w in on-demand | profile | whole) ;; *) echo "boot-wan.sh: unknown way $w" >&2; exit 2 ;; esac
done
[[ $(id -u) == 0 ]] || { echo "boot-wan.sh: needs root" >&2; exit 1; }
# The floor's way, run once before the links.
LOCAL_WAY=local

. "$TOP/tests/lib.sh"
. "$TOP/tests/delay-lib.sh"
OUT=$TOP/out
for f in "$OUT/streamcd.iso" "$OUT/rootfs/dom0.img" "$OUT/store/index/dom0/latest"; do
	[[ -e $f ]] || { echo "boot-wan.sh: no $f: run ./build.sh first" >&2; exit 1; }
done
HCLOOP=$TOP/cloop/build/hcloop
VERSION=$(cut -c1-16 "$OUT/rootfs/dom0.img.sha256")
IMG_BYTES=$(stat -c %s "$OUT/rootfs/dom0.img")
"$HCLOOP" info "$OUT/store" dom0 | grep -q '^profile: *[1-9]' ||
	{ echo "boot-wan.sh: out/store's dom0 has no boot profile: run ./build.sh profile" >&2; exit 1; }
KEY=$("$TOP/build.sh" key 2>&1 | sed -n 's/^==> key: secret \(.*\) (keep.*/\1/p')

# The web root: the build's store, a copy without the profile and the
# image file. The copies share out/store's block files.
tmpdir_make W
# nginx's workers run as nobody.
chmod 0755 "$W"
WWW=$W/www
mkdir -p "$WWW/on-demand" "$W/nginx"
ln -s "$OUT/store" "$WWW/profile"
ln -s "$OUT/store/blocks" "$WWW/on-demand/blocks"
cp -a "$OUT/store/index" "$WWW/on-demand/index"
"$HCLOOP" make -q --sign "$KEY" "$OUT/rootfs/dom0.img" "$WWW/on-demand" dom0 "$VERSION"
"$HCLOOP" info "$WWW/on-demand" dom0 | grep -q '^profile: *none' ||
	{ echo "boot-wan.sh: the on-demand copy kept a profile" >&2; exit 1; }
ln -s "$OUT/rootfs/dom0.img" "$WWW/dom0.img"
# The floor's disk: QEMU opens it writable; the initrd mounts it read-only.
cp "$OUT/rootfs/dom0.img" "$W/dom0-local.img"

cat >"$W/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 1024; }
http {
	log_format sent '\$bytes_sent';
	access_log $W/nginx/access.log sent;
	sendfile on;
	keepalive_requests 1000000;
	keepalive_timeout 300s;
	types { }
	default_type application/octet-stream;
	server { listen 127.0.0.1:PORT; root $WWW; }
}
EOF
port=$(free_port)
sed -i "s/PORT/$port/" "$W/nginx/nginx.conf"
nginx -c "$W/nginx/nginx.conf" -p "$W/nginx" &
nginx_pid=$!
cleanup_add "{ kill $nginx_pid; wait $nginx_pid; } 2>/dev/null"
wait_http "http://127.0.0.1:$port/" 10 "$nginx_pid"

# boot WAY PROXY_PORT: "SECONDS BYTES", or "fail".
boot() {
	local way=$1 proxy=$2 append log=$W/boot.log secs bytes disk=
	case $way in
	on-demand) append="streamcd.url=http://10.0.2.100/on-demand" ;;
	profile) append="streamcd.url=http://10.0.2.100/profile" ;;
	whole) append="streamcd.fetch=http://10.0.2.100/dom0.img" ;;
	"$LOCAL_WAY") append="streamcd.root=/dev/vda" disk=$W/dom0-local.img ;;
	esac
	: >"$W/nginx/access.log"
	if ! STREAMCD_RUN_SERVER=0 STREAMCD_PORT=$proxy STREAMCD_APPEND=$append STREAMCD_RUN_TIMEOUT=1800 \
		STREAMCD_DISK=$disk "$TOP/build.sh" run </dev/null >"$log" 2>&1; then
		cp "$log" "$OUT/bench/boot-wan-failed.log"
		echo fail
		return 0
	fi
	secs=$(sed -n 's/.*run: dom0 ready \([0-9.]*\) s after QEMU started.*/\1/p' "$log")
	# hcloop's count at the ready line: after it, dom0 reads QEMU ahead
	# (streamcd-ready) while the run stops. The whole way has no hcloop:
	# what nginx sent.
	bytes=$(sed -n 's/.*streamcd: dom0 ready (\([0-9]*\) bytes fetched).*/\1/p' "$log" | head -n 1)
	[[ -n $bytes ]] || bytes=$(awk '{ n += $1 } END { print n + 0 }' "$W/nginx/access.log")
	echo "$secs $bytes"
}

mkdir -p "$(dirname "$OUTFILE")" "$OUT/bench"
read -r floor _ <<<"$(boot "$LOCAL_WAY" "$port")"
[[ $floor =~ ^[0-9.]+$ ]] || { echo "boot-wan.sh: the local boot failed" >&2; exit 1; }
{
	echo "# bench/boot-wan.sh $(date -u '+%F %T') UTC: dom0 version $VERSION, image $IMG_BYTES bytes"
	echo "# floor: dom0 ready $floor s with the image on a local disk (no network)"
	printf '%-6s %-6s %-10s %8s %7s %12s %7s\n' rtt_ms mbit way ready_s net_s bytes_sent image%
} | tee "$OUTFILE"
declare -A R=()
for rtt in ${RTTS//,/ }; do
	for mbit in ${RATES//,/ }; do
		# Mbit/s as bytes/s, shared by every connection of the link.
		delayproxy_start proxy "$port" "$rtt" "$((mbit * 125000))"
		for way in ${WAYS//,/ }; do
			read -r secs bytes <<<"$(boot "$way" "$proxy")"
			R[$rtt/$mbit/$way]=$secs
			if [[ $secs == fail ]]; then
				printf '%-6s %-6s %-10s %8s\n' "$rtt" "$mbit" "$way" FAILED | tee -a "$OUTFILE"
			else
				printf '%-6s %-6s %-10s %8s %7s %12s %7s\n' "$rtt" "$mbit" "$way" "$secs" \
					"$(awk -v s="$secs" -v f="$floor" 'BEGIN { printf "%.1f", s - f }')" "$bytes" \
					"$(awk -v b="$bytes" -v i="$IMG_BYTES" 'BEGIN { printf "%.1f", 100 * b / i }')" |
					tee -a "$OUTFILE"
			fi
		done
		# shellcheck disable=SC2154 # set by delayproxy_start
		kill "$proxy_PID" 2>/dev/null || true
		wait "$proxy_PID" 2>/dev/null || true
	done
done
# The ratios the targets name, per link, where all three ran.
for rtt in ${RTTS//,/ }; do
	for mbit in ${RATES//,/ }; do
		p=${R[$rtt/$mbit/profile]:-} o=${R[$rtt/$mbit/on-demand]:-} w=${R[$rtt/$mbit/whole]:-}
		[[ $p =~ ^[0-9.]+$ && $o =~ ^[0-9.]+$ && $w =~ ^[0-9.]+$ ]] || continue
		# Network seconds of a tenth or less are below what one boot can
		# tell apart: their ratio is not printed.
		awk -v r="$rtt" -v m="$mbit" -v p="$p" -v o="$o" -v w="$w" -v f="$floor" 'BEGIN {
			n = p - f > 0.1 ? sprintf("whole/profile %.1fx, on-demand/profile %.1fx", (w - f) / (p - f),
				(o - f) / (p - f)) : "profile within 0.1 s of the floor"
			printf "# %s ms, %s Mbit/s: ready whole/profile %.2fx, on-demand/profile %.2fx; network seconds %s\n",
				r, m, w / p, o / p, n }' |
			tee -a "$OUTFILE"
	done
done
