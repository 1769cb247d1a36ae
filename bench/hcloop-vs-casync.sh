#!/bin/bash
# hcloop vs casync, side by side on one ext4 image and one local nginx.
# Run as root (it drops the page cache and mounts FUSE file systems).
# See --help.
set -eu
export LC_ALL=C

usage() {
	cat <<'EOF'
Usage: bench/hcloop-vs-casync.sh [OPTIONS]

Builds a real ext4 image (mkfs.ext4 -d from a copy of /usr/bin, /usr/share,
/usr/lib filling ~70% of it), serves it from one local nginx (127.0.0.1, a
free port) and measures, side by side in one run:

  build       hcloop make  vs  casync make (blob index, casync's defaults)
  store size  du -sb of blocks/+index/  vs  the .castr store + .caibx
  cold read   hcloop mount (no disk cache) + dd  vs  casync extract over HTTP
              vs  curl of the raw image; SHA-256 checked for hcloop and casync
  warm read   hcloop remounted on a filled --cache-dir  vs  casync extract from
              a local copy of its store (casync has no chunk cache for
              extract: its --cache is the encoder cache of `make`); an extra
              casync run with --seed=<previous output> is shown for reference
  4K random   p50/p99 of 2000 O_DIRECT 4 KiB preads (bench/randread.c) through
              the warm hcloop mount and through `casync mount` of a .caidx
              archive holding the same image; `casync mkdev` (NBD) is tried
              and reported n/a with the reason when it cannot work
  reference   zstd -d (single thread) of the image compressed with zstd -3

The page cache is dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before
every timed step.  Results go to standard output as a table with PASS/MISS
against the targets; progress goes to standard error.

Options:
  -s, --size SIZE     image size, e.g. 1G, 1536M, 2GiB (env SIZE; default 1G)
  -w, --workdir DIR   work directory; must not exist or be empty (env WORKDIR;
                      default: a new mktemp -d under /var/tmp)
  -r, --repeat N      timed steps (build, zstd -d, cold/warm reads) run N times
                      and the best (lowest) time is reported, all of them in the
                      details (env REPEAT; default 3); the 4K random test and
                      the correctness checks run once
  -k, --keep          keep the work directory (else removed on exit)
  -h, --help          this help

Environment: HCLOOP (default: cloop/build/hcloop of this repository; build
it with `make -C cloop`), SIZE, WORKDIR, REPEAT.
EOF
}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
HCLOOP=${HCLOOP:-$REPO/cloop/build/hcloop}
SIZE=${SIZE:-1G}
WORKDIR=${WORKDIR:-}
KEEP=0
REPEAT=${REPEAT:-3}
NAME=img
RR_COUNT=2000

while (($#)); do
	case $1 in
	-s | --size) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; SIZE=$2; shift ;;
	--size=*) SIZE=${1#*=} ;;
	-w | --workdir) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; WORKDIR=$2; shift ;;
	--workdir=*) WORKDIR=${1#*=} ;;
	-r | --repeat) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; REPEAT=$2; shift ;;
	--repeat=*) REPEAT=${1#*=} ;;
	-k | --keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- checks
((EUID == 0)) || die "run as root (drop_caches, FUSE mounts)"
[[ -w /proc/sys/vm/drop_caches ]] || die "/proc/sys/vm/drop_caches is not writable"
[[ -x $HCLOOP ]] || die "$HCLOOP missing: run make -C $REPO/cloop"
for c in casync nginx curl zstd mkfs.ext4 gcc fusermount3 mountpoint numfmt \
	sha256sum tar ss awk dd; do
	command -v "$c" >/dev/null 2>&1 || die "needs $c"
done

[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "bad --repeat: $REPEAT"
s=${SIZE%iB}
s=${s%B}
SIZE_BYTES=$(numfmt --from=iec "$s" 2>/dev/null) || die "bad size: $SIZE"
((SIZE_BYTES >= 64 * 1048576)) || die "size too small: $SIZE (>= 64M)"
((SIZE_BYTES >= 1073741824)) || log "note: SIZE=$SIZE is below the 1 GiB the comparison is meant for"

if [[ -n $WORKDIR ]]; then
	if [[ -e $WORKDIR ]]; then
		[[ -d $WORKDIR && -z $(ls -A "$WORKDIR") ]] || die "$WORKDIR exists and is not an empty directory"
	fi
	mkdir -p "$WORKDIR"
	W=$(cd "$WORKDIR" && pwd)
else
	W=$(mktemp -d /var/tmp/hcloop-bench.XXXXXX)
fi

# ---------------------------------------------------------------- cleanup
PIDS=()   # background processes we started (nginx, mount daemons, samplers)
MOUNTS=() # mountpoints we may have mounted

cleanup() {
	local m p i
	set +e
	for m in "${MOUNTS[@]}"; do
		if mountpoint -q "$m" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		fi
	done
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		p=${PIDS[i]}
		if kill -0 "$p" 2>/dev/null; then
			kill "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		fi
	done
	if ((KEEP)); then
		log "work directory kept: $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# timeit VAR CMD...: run CMD, store its wall time in seconds in VAR.
timeit() {
	local _var=$1 _t0 _t1
	shift
	_t0=$EPOCHREALTIME
	"$@"
	_t1=$EPOCHREALTIME
	printf -v "$_var" '%s' "$(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.3f", b - a }')"
}

# bestof VAR FUNC: run FUNC RUN_NO (which sets T) REPEAT times; VAR gets the
# lowest T, VAR_ALL all of them.
bestof() {
	local _var=$1 _f=$2 _i _best='' _all=''
	for ((_i = 1; _i <= REPEAT; _i++)); do
		"$_f" "$_i"
		_all+="${_all:+ }$T"
		if [[ -z $_best ]] || awk -v a="$T" -v b="$_best" 'BEGIN { exit !(a < b) }'; then
			_best=$T
		fi
	done
	printf -v "$_var" '%s' "$_best"
	printf -v "${_var}_ALL" '%s' "$_all"
	log "$_f: best $_best s of: $_all"
}

calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
mbps() { calc "$1 / $2 / 1e6" 1; } # BYTES SECONDS -> MB/s (10^6 B/s)

free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
	else
		echo $((20000 + RANDOM % 30000))
	fi
}

# nginx_status: "accepts requests" of the server so far (the status request
# itself counts as one of each).
nginx_status() {
	curl -s "$URL/nginx_status" | awk 'NR == 3 { print $1, $3 }'
}
# net_delta "A0 R0" "A1 R1": connections and requests between two snapshots,
# less the status request of the second snapshot.
net_delta() {
	local a0 r0 a1 r1
	read -r a0 r0 <<<"$1"
	read -r a1 r1 <<<"$2"
	echo "$((r1 - r0 - 1)) requests on $((a1 - a0 - 1)) connections"
}

# Highest number of established TCP connections to the server, sampled
# every 0.1 s between conn_watch_start and conn_watch_stop.
conn_watch_start() {
	local port=$PORT out=$W/connwatch
	echo 0 >"$out"
	(
		max=0
		while :; do
			n=$(ss -Htn state established "( sport = :$port )" | wc -l)
			if ((n > max)); then max=$n; echo "$max" >"$out"; fi
			sleep 0.1
		done
	) &
	CONNWATCH_PID=$!
	PIDS+=("$CONNWATCH_PID")
}
conn_watch_stop() {
	kill "$CONNWATCH_PID" 2>/dev/null || true
	wait "$CONNWATCH_PID" 2>/dev/null || true
	cat "$W/connwatch"
}

# wait_mounted MNT FILE PID: until MNT/FILE exists (mount up), PID alive.
wait_mounted() {
	local end=$((SECONDS + 30))
	until mountpoint -q "$1" && [[ -e $1/$2 ]]; do
		kill -0 "$3" 2>/dev/null || return 1
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

# hc_mount MNT [hcloop mount options]: mount NAME in the foreground mode,
# as our own background child (so we know its pid); sets HC_PID.
hc_mount() {
	local mnt=$1
	shift
	mkdir -p "$mnt"
	MOUNTS+=("$mnt")
	"$HCLOOP" mount -f "$@" "$URL/hcloop" "$NAME" "$mnt" </dev/null >>"$W/hcloop-mount.log" 2>&1 &
	HC_PID=$!
	PIDS+=("$HC_PID")
	wait_mounted "$mnt" "$NAME" "$HC_PID" || die "hcloop mount failed: $(tail -n 5 "$W/hcloop-mount.log")"
}
hc_umount() {
	fusermount3 -u "$1"
	wait "$HC_PID" 2>/dev/null || true
}
hc_stat() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

read_dd() { dd if="$1" of=/dev/null bs=1M status=none; }
sha_of() { sha256sum "$1" | awk '{ print $1 }'; }

START=$SECONDS
log "work directory: $W (image size $SIZE = $SIZE_BYTES bytes)"
WWW=$W/www
mkdir -p "$WWW" "$W/nginx/tmp"

# ---------------------------------------------------------------- 1. image
log "selecting files from /usr/bin, /usr/share, /usr/lib for ~70% of the image"
BUDGET=$((SIZE_BYTES * 70 / 100))
: >"$W/files.list"
for d in usr/bin usr/share usr/lib; do
	# Regular files and symlinks; names with control characters are skipped.
	find "/$d" -xdev \( -type f -o -type l \) ! -name '*[[:cntrl:]]*' -printf '%s\t%y\t%P\n' |
		LC_ALL=C sort -t "$(printf '\t')" -k3 |
		awk -F '\t' -v d="$d" '{ print $1 "\t" $2 "\t" d "/" $3 }' >>"$W/files.list"
done
awk -F '\t' -v budget="$BUDGET" '
	{ sz = ($2 == "f") ? int(($1 + 4095) / 4096) * 4096 : 0
	  if (used + sz > budget) next
	  used += sz; print $3 }' "$W/files.list" >"$W/files.sel"
SEL_FILES=$(wc -l <"$W/files.sel")
mkdir -p "$W/stage"
tar -C / --no-recursion --verbatim-files-from -T "$W/files.sel" -cf - 2>"$W/tar.log" |
	tar -C "$W/stage" -xpf - || die "copying the tree failed: $(tail -n 3 "$W/tar.log")"
TREE_BYTES=$(du -sb "$W/stage" | awk '{ print $1 }')
INODES=$(find "$W/stage" | wc -l)
log "copied $SEL_FILES files ($TREE_BYTES bytes); mkfs.ext4 -d"
truncate -s "$SIZE_BYTES" "$W/$NAME"
mkfs.ext4 -q -F -L hcbench -N $((INODES + INODES / 4 + 1024)) -d "$W/stage" "$W/$NAME" ||
	die "mkfs.ext4 -d failed"
rm -rf "$W/stage"
ln "$W/$NAME" "$WWW/$NAME"
IMG=$W/$NAME
IMG_SHA=$(sha_of "$IMG")
log "image sha256 $IMG_SHA"

log "zstd -3 -T1 of the image (reference)"
zstd -q -3 -T1 -f "$IMG" -o "$W/$NAME.zst"
ZST_BYTES=$(stat -c %s "$W/$NAME.zst")
zstd_d() { zstd -q -d -T1 -c "$W/$NAME.zst" >/dev/null; }
step_zstd() { drop_caches; timeit T zstd_d; }
bestof T_ZSTD step_zstd

# ---------------------------------------------------------------- 2. build
log "build: hcloop make, casync make (each into a fresh store)"
step_hc_make() {
	rm -rf "$WWW/hcloop"
	drop_caches
	timeit T "$HCLOOP" make -q "$IMG" "$WWW/hcloop" "$NAME" 1
}
step_ca_make() {
	rm -rf "$WWW/$NAME.castr" "$WWW/$NAME.caibx"
	drop_caches
	timeit T casync make --store="$WWW/$NAME.castr" "$WWW/$NAME.caibx" "$IMG" >"$W/casync-make.log" 2>&1
}
bestof T_HC_MAKE step_hc_make
bestof T_CA_MAKE step_ca_make

HC_STORE=$(du -sb "$WWW/hcloop/blocks" "$WWW/hcloop/index" | awk '{ s += $1 } END { print s }')
CA_STORE=$(du -sb "$WWW/$NAME.castr" "$WWW/$NAME.caibx" | awk '{ s += $1 } END { print s }')
HC_NBLOCKS=$(find "$WWW/hcloop/blocks" -type f | wc -l)
CA_NCHUNKS=$(find "$WWW/$NAME.castr" -type f -name '*.cacnk' | wc -l)
HC_INFO=$("$HCLOOP" info "$WWW/hcloop" "$NAME" 2>&1 || true)
# casync's compression, from the magic of one chunk file.
f=$(find "$WWW/$NAME.castr" -type f -name '*.cacnk' -print -quit)
case $(od -An -tx1 -N4 "$f" | tr -d ' \n') in
28b52ffd) CA_COMP=zstd ;;
fd377a58) CA_COMP=xz ;;
1f8b*) CA_COMP=gzip ;;
*) CA_COMP="unknown (magic $(od -An -tx1 -N4 "$f" | tr -d ' \n'))" ;;
esac
CA_CHUNKSZ=$(grep -m1 -i 'chunk size' "$W/casync-make.log" || true)
[[ -n $CA_CHUNKSZ ]] || CA_CHUNKSZ="casync defaults (min 16K, avg 64K, max 256K)"

# ---------------------------------------------------------------- server
log "starting nginx"
for try in 1 2 3; do
	PORT=$(free_port)
	cat >"$W/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid "$W/nginx/nginx.pid";
error_log "$W/nginx/error.log" warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    default_type application/octet-stream;
    client_body_temp_path "$W/nginx/tmp/body";
    proxy_temp_path "$W/nginx/tmp/proxy";
    fastcgi_temp_path "$W/nginx/tmp/fastcgi";
    uwsgi_temp_path "$W/nginx/tmp/uwsgi";
    scgi_temp_path "$W/nginx/tmp/scgi";
    server {
        listen 127.0.0.1:$PORT;
        root "$WWW";
        location = /nginx_status { stub_status; }
    }
}
EOF
	nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" </dev/null >>"$W/nginx/out.log" 2>&1 &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
	URL=http://127.0.0.1:$PORT
	up=0
	for _ in $(seq 50); do
		if curl -s -o /dev/null --max-time 1 "$URL/nginx_status"; then up=1; break; fi
		kill -0 "$NGINX_PID" 2>/dev/null || break
		sleep 0.1
	done
	((up)) && break
	log "nginx attempt $try failed: $(tail -n 2 "$W/nginx/error.log" 2>/dev/null)"
	kill "$NGINX_PID" 2>/dev/null || true
	wait "$NGINX_PID" 2>/dev/null || true
done
((up)) || die "nginx did not start"
log "nginx on $URL"

# ---------------------------------------------------------------- 3. cold
MNT=$W/mnt
log "cold: hcloop mount without disk cache, dd"
step_hc_cold() {
	local sha
	drop_caches
	hc_mount "$MNT"
	n0=$(nginx_status)
	conn_watch_start
	timeit T read_dd "$MNT/$NAME"
	HC_COLD_CONN=$(conn_watch_stop)
	HC_COLD_NET=$(net_delta "$n0" "$(nginx_status)")
	cat "$MNT/.stats" >"$W/stats-cold"
	if (($1 == 1)); then
		# Second pass for the hash: what hcloop delivered (from the page cache).
		sha=$(sha_of "$MNT/$NAME")
		[[ $sha == "$IMG_SHA" ]] || die "hcloop cold read: SHA-256 mismatch ($sha)"
		log "hcloop cold read: SHA-256 ok"
	fi
	hc_umount "$MNT"
}
bestof T_HC_COLD step_hc_cold
log "hcloop cold: $HC_COLD_NET, max $HC_COLD_CONN connections"

log "cold: casync extract over HTTP"
step_ca_cold() {
	local sha
	rm -f "$W/out-cold"
	drop_caches
	n0=$(nginx_status)
	conn_watch_start
	timeit T casync extract --seed-output=no --store="$URL/$NAME.castr" \
		"$URL/$NAME.caibx" "$W/out-cold"
	CA_COLD_CONN=$(conn_watch_stop)
	CA_COLD_NET=$(net_delta "$n0" "$(nginx_status)")
	if (($1 == 1)); then
		sha=$(sha_of "$W/out-cold")
		[[ $sha == "$IMG_SHA" ]] || die "casync cold extract: SHA-256 mismatch ($sha)"
		log "casync cold extract: SHA-256 ok"
	fi
}
bestof T_CA_COLD step_ca_cold
log "casync cold: $CA_COLD_NET, max $CA_COLD_CONN connections"

log "cold: curl of the raw image"
step_curl() {
	drop_caches
	n0=$(nginx_status)
	timeit T curl -sf -o /dev/null "$URL/$NAME"
	CURL_NET=$(net_delta "$n0" "$(nginx_status)")
}
bestof T_CURL step_curl

# ---------------------------------------------------------------- 4. warm
HC_CACHE=$W/hcloop-cache
CACHE_SIZE=$((SIZE_BYTES * 2 > 1073741824 ? SIZE_BYTES * 2 : 1073741824))
log "warm: filling hcloop's disk cache (one full read)"
drop_caches
hc_mount "$MNT" -C "$HC_CACHE" -S "$CACHE_SIZE"
timeit T_HC_FILL read_dd "$MNT/$NAME"
hc_umount "$MNT"
log "warm: hcloop remounted on the filled cache, dd"
step_hc_warm() {
	local sha
	drop_caches
	hc_mount "$MNT" -C "$HC_CACHE" -S "$CACHE_SIZE"
	n0=$(nginx_status)
	timeit T read_dd "$MNT/$NAME"
	HC_WARM_NET=$(net_delta "$n0" "$(nginx_status)")
	cat "$MNT/.stats" >"$W/stats-warm"
	if (($1 == 1)); then
		sha=$(sha_of "$MNT/$NAME")
		[[ $sha == "$IMG_SHA" ]] || die "hcloop warm read: SHA-256 mismatch ($sha)"
		log "hcloop warm read: SHA-256 ok"
	fi
	hc_umount "$MNT"
}
bestof T_HC_WARM step_hc_warm
HC_CACHE_BYTES=$(du -sb "$HC_CACHE" | awk '{ print $1 }')
log "hcloop warm: $HC_WARM_NET"

log "warm: casync extract --cache check"
# casync's --cache is the encoder cache of `make`; check that extract ignores it.
rm -rf "$W/casync-cache" "$W/out-cachetest"
casync extract --seed-output=no --cache="$W/casync-cache" --store="$URL/$NAME.castr" \
	"$URL/$NAME.caibx" "$W/out-cachetest" >/dev/null 2>&1 || true
if [[ -d $W/casync-cache ]] && [[ -n $(ls -A "$W/casync-cache") ]]; then
	CA_CACHE_NOTE="casync extract --cache=DIR wrote $(du -sb "$W/casync-cache" | awk '{ print $1 }') bytes (not used below)"
else
	CA_CACHE_NOTE="casync extract --cache=DIR stores nothing (it is make's encoder cache)"
fi
rm -rf "$W/casync-cache" "$W/out-cachetest"

log "warm: casync extract from a local copy of its store"
cp -a "$WWW/$NAME.castr" "$W/local.castr"
cp "$WWW/$NAME.caibx" "$W/local.caibx"
step_ca_warm() {
	local sha
	rm -f "$W/out-warm"
	drop_caches
	timeit T casync extract --seed-output=no --store="$W/local.castr" "$W/local.caibx" "$W/out-warm"
	if (($1 == 1)); then
		sha=$(sha_of "$W/out-warm")
		[[ $sha == "$IMG_SHA" ]] || die "casync warm extract: SHA-256 mismatch ($sha)"
		log "casync warm extract: SHA-256 ok"
	fi
	rm -f "$W/out-warm"
}
bestof T_CA_WARM step_ca_warm

log "warm (extra): casync extract over HTTP seeded with the cold output"
rm -f "$W/out-seed"
drop_caches
n0=$(nginx_status)
timeit T_CA_SEED casync extract --seed-output=no --seed="$W/out-cold" --store="$URL/$NAME.castr" \
	"$URL/$NAME.caibx" "$W/out-seed"
CA_SEED_NET=$(net_delta "$n0" "$(nginx_status)")
CA_SEED_SHA=$(sha_of "$W/out-seed")
[[ $CA_SEED_SHA == "$IMG_SHA" ]] || die "casync seeded extract: SHA-256 mismatch ($CA_SEED_SHA)"
rm -f "$W/out-seed" "$W/out-cold"
log "casync warm (seed): $T_CA_SEED s, sha ok, $CA_SEED_NET"

# ---------------------------------------------------------------- 5. 4K random
log "random reads: compiling randread"
gcc -O2 -Wall -o "$W/randread" "$BENCH_DIR/randread.c"
rr_field() { sed -n "s/.*$2=\([^ ]*\).*/\1/p" <<<"$1"; }

log "random reads: hcloop, warm disk cache, after a page-cache drop"
drop_caches
hc_mount "$MNT" -C "$HC_CACHE" -S "$CACHE_SIZE"
HC_RR=$("$W/randread" -n "$RR_COUNT" "$MNT/$NAME")
cat "$MNT/.stats" >"$W/stats-rand"
hc_umount "$MNT"
log "hcloop: $HC_RR"

log "random reads: casync mkdev (NBD)"
CA_MKDEV_NOTE=
if ! ls /dev/nbd* >/dev/null 2>&1; then
	CA_MKDEV_NOTE="no /dev/nbd* device"
	command -v modprobe >/dev/null 2>&1 || CA_MKDEV_NOTE+=", no modprobe"
	[[ -d /lib/modules/$(uname -r) ]] || CA_MKDEV_NOTE+=", no /lib/modules/$(uname -r)"
fi
mkdev_out=$(timeout 10 casync mkdev --store="$W/local.castr" "$W/local.caibx" 2>&1 </dev/null) && rc=0 || rc=$?
mkdev_out=$(head -n 1 <<<"$mkdev_out")
if ((rc == 124)); then
	CA_MKDEV_NOTE="casync mkdev ran (killed after 10 s); NBD latency not measured by this script"
else
	CA_MKDEV_NOTE="casync mkdev fails: '${mkdev_out}'${CA_MKDEV_NOTE:+ ($CA_MKDEV_NOTE)}"
fi
log "$CA_MKDEV_NOTE"

log "random reads: casync mount of a .caidx archive holding the image"
mkdir -p "$W/tree"
ln "$IMG" "$W/tree/$NAME"
timeit T_CA_TREE casync make --store="$W/tree.castr" "$W/tree.caidx" "$W/tree" >"$W/casync-tree.log" 2>&1
rm -f "$W/tree/$NAME"
CMNT=$W/cmnt
mkdir -p "$CMNT"
MOUNTS+=("$CMNT")
drop_caches
casync mount --store="$W/tree.castr" "$W/tree.caidx" "$CMNT" </dev/null >"$W/casync-mount.log" 2>&1 &
CA_MOUNT_PID=$!
PIDS+=("$CA_MOUNT_PID")
CA_RR=
if wait_mounted "$CMNT" "$NAME" "$CA_MOUNT_PID"; then
	CA_RR=$("$W/randread" -n "$RR_COUNT" "$CMNT/$NAME") || CA_RR=
	fusermount3 -u "$CMNT" || true
	wait "$CA_MOUNT_PID" 2>/dev/null || true
	log "casync mount: $CA_RR"
else
	CA_MOUNT_NOTE="casync mount failed: $(tail -n 2 "$W/casync-mount.log" | tr '\n' ' ')"
	log "$CA_MOUNT_NOTE"
	kill "$CA_MOUNT_PID" 2>/dev/null || true
fi

log "random reads: the raw image on local disk (reference)"
drop_caches
RAW_RR=$("$W/randread" -n "$RR_COUNT" "$IMG")

# ---------------------------------------------------------------- 6. table
TOTAL=$((SECONDS - START))
pf() {
	if [[ -z $1 || $1 == *[!0-9.]* ]]; then echo n/a; else echo "$1"; fi
}
passmiss() { awk "BEGIN { exit !($1) }" && echo PASS || echo MISS; }

HC_COLD_MBS=$(mbps "$SIZE_BYTES" "$T_HC_COLD")
CA_COLD_MBS=$(mbps "$SIZE_BYTES" "$T_CA_COLD")
CURL_MBS=$(mbps "$SIZE_BYTES" "$T_CURL")
HC_WARM_MBS=$(mbps "$SIZE_BYTES" "$T_HC_WARM")
CA_WARM_MBS=$(mbps "$SIZE_BYTES" "$T_CA_WARM")
CA_SEED_MBS=$(mbps "$SIZE_BYTES" "$T_CA_SEED")
HC_FILL_MBS=$(mbps "$SIZE_BYTES" "$T_HC_FILL")
ZSTD_MBS=$(mbps "$SIZE_BYTES" "$T_ZSTD")

R_BUILD=$(calc "$T_HC_MAKE / $T_CA_MAKE")
R_BUILD_X=$(calc "$T_CA_MAKE / $T_HC_MAKE")
R_STORE=$(calc "$HC_STORE / $CA_STORE")
R_COLD=$(calc "$HC_COLD_MBS / $CA_COLD_MBS")
R_WARM=$(calc "$HC_WARM_MBS / $CA_WARM_MBS")
R_WARM_ZSTD=$(calc "$HC_WARM_MBS / $ZSTD_MBS")

HC_P50=$(rr_field "$HC_RR" p50_us)
HC_P99=$(rr_field "$HC_RR" p99_us)
HC_MODE=$(rr_field "$HC_RR" mode)
CA_P50=n/a CA_P99=n/a CA_MODE='' R_P50=n/a R_P99=n/a
if [[ -n $CA_RR ]]; then
	CA_P50=$(rr_field "$CA_RR" p50_us)
	CA_P99=$(rr_field "$CA_RR" p99_us)
	CA_MODE=$(rr_field "$CA_RR" mode)
	R_P50=$(calc "$HC_P50 / $CA_P50")
	R_P99=$(calc "$HC_P99 / $CA_P99")
fi
MIB() { calc "$1 / 1048576" 1; }

row() { printf '%-30s %12s %12s %12s %10s  %s\n' "$@"; }
echo
echo "hcloop vs casync — image $SIZE ($SIZE_BYTES B) ext4, $SEL_FILES files / $(MIB "$TREE_BYTES") MiB from /usr; $(nproc) CPUs; nginx $URL"
echo "times: best of $REPEAT runs, page cache dropped before each; MB/s = 10^6 B/s of image data"
echo
row "" hcloop casync curl hc/casync "(ratio: which way is better)"
row "build time (s)" "$T_HC_MAKE" "$T_CA_MAKE" "-" "$R_BUILD" "lower is better; hcloop ${R_BUILD_X}x faster"
row "store size (MiB)" "$(MIB "$HC_STORE")" "$(MIB "$CA_STORE")" "-" "$R_STORE" "lower is better"
row "cold seq read (MB/s)" "$HC_COLD_MBS" "$CA_COLD_MBS" "$CURL_MBS" "$R_COLD" "higher is better"
row "warm seq read (MB/s)" "$HC_WARM_MBS" "$CA_WARM_MBS" "-" "$R_WARM" "higher is better"
row "4K random p50 (us), warm" "$(pf "$HC_P50")" "$(pf "$CA_P50")" "-" "$R_P50" "lower is better"
row "4K random p99 (us), warm" "$(pf "$HC_P99")" "$(pf "$CA_P99")" "-" "$R_P99" "lower is better"
echo
row "zstd -d -T1 (MB/s)" "$ZSTD_MBS" "" "" "" "reference: $T_ZSTD s for $(MIB "$ZST_BYTES") MiB .zst (zstd -3 -T1)"
row "hcloop warm / zstd -d" "$R_WARM_ZSTD" "" "" "" ""
echo
echo "Targets:"
printf '  %-44s %-6s %s\n' "cold read >= 3x casync" "$(passmiss "$R_COLD >= 3")" "${R_COLD}x"
printf '  %-44s %-6s %s\n' "warm read >= 0.8x zstd -d" "$(passmiss "$R_WARM_ZSTD >= 0.8")" "${R_WARM_ZSTD}x"
printf '  %-44s %-6s %s\n' "build >= 2x faster than casync" "$(passmiss "$R_BUILD_X >= 2")" "${R_BUILD_X}x"
printf '  %-44s %-6s %s\n' "hcloop store <= 1.1x casync store" "$(passmiss "$R_STORE <= 1.1")" "${R_STORE}x"
echo
echo "Details:"
echo "  correctness: SHA-256 $IMG_SHA matched for hcloop cold, hcloop warm, casync cold, casync warm, casync seeded"
echo "  hcloop: $(grep -E '^(block size|compression|blocks):' <<<"$HC_INFO" | tr -s ' ' | paste -sd ';' | sed 's/;/; /g'); $HC_NBLOCKS block files; make -j default ($(nproc))"
echo "  casync: compression $CA_COMP (its default); $CA_CHUNKSZ; $CA_NCHUNKS chunk files"
echo "  cold hcloop: $HC_COLD_NET, max $HC_COLD_CONN concurrent connections; fetched_blocks $(hc_stat "$W/stats-cold" fetched_blocks), fetched_bytes $(hc_stat "$W/stats-cold" fetched_bytes)"
echo "  cold casync: $CA_COLD_NET, max $CA_COLD_CONN concurrent connections (writes a $(MIB "$SIZE_BYTES") MiB output file; hcloop/curl read to /dev/null)"
echo "  cold curl:   $CURL_NET"
echo "  hcloop first read with --cache-dir (filling it): $HC_FILL_MBS MB/s; cache holds $(MIB "$HC_CACHE_BYTES") MiB"
echo "  warm hcloop: $HC_WARM_NET; disk_hits $(hc_stat "$W/stats-warm" disk_hits), disk_misses $(hc_stat "$W/stats-warm" disk_misses), fetch_requests $(hc_stat "$W/stats-warm" fetch_requests)"
echo "  warm casync: extract from a local copy of the .castr store (casync has no chunk cache for extract: $CA_CACHE_NOTE)"
echo "  warm casync, extra: --seed=<cold output> over HTTP: $CA_SEED_MBS MB/s ($T_CA_SEED s; $CA_SEED_NET)"
echo "  4K random: $RR_COUNT preads; hcloop via its mount (mode $HC_MODE), warm disk cache, fresh mount after page-cache drop; random-read counters: mem_hits $(hc_stat "$W/stats-rand" mem_hits), disk_hits $(hc_stat "$W/stats-rand" disk_hits), fetch_requests $(hc_stat "$W/stats-rand" fetch_requests)"
if [[ -n $CA_RR ]]; then
	echo "  4K random casync: casync mount (FUSE) of a .caidx archive of a directory holding the image (local store, mode $CA_MODE; archive made in $T_CA_TREE s)"
else
	echo "  4K random casync: n/a — ${CA_MOUNT_NOTE:-casync mount gave no result}"
fi
echo "  casync mkdev (NBD, for the blob index): n/a — $CA_MKDEV_NOTE"
echo "  4K random on the raw image file on local disk (reference): $RAW_RR"
echo "  all runs (s): hcloop make $T_HC_MAKE_ALL | casync make $T_CA_MAKE_ALL | zstd -d $T_ZSTD_ALL"
echo "                hcloop cold $T_HC_COLD_ALL | casync cold $T_CA_COLD_ALL | curl $T_CURL_ALL"
echo "                hcloop warm $T_HC_WARM_ALL | casync warm $T_CA_WARM_ALL"
echo "  load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the numbers)"
echo "  total wall time: ${TOTAL} s"
