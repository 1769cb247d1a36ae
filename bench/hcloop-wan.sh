#!/bin/bash
# Boot over a WAN: on-demand vs download-ahead vs casync vs whole-image
# download, side by side through tests/delayproxy.c at several round trips.
# See --help.
set -eu
export LC_ALL=C

usage() {
	cat <<'EOF'
Usage: bench/hcloop-wan.sh [OPTIONS]

The image is streamcd's real dom0 root filesystem (debootstrap'd Debian 12
minbase + Xen's tools, out/rootfs/dom0.img from ./build.sh rootfs), unpacked
into an ext4 image. Its boot profile is recorded, not guessed: hcloop mount
--trace while a chroot into the mounted image runs the programs a dom0 boot
runs (init, the Xen daemons and tools, QEMU, udev, getty, login, a shell),
then attached to the index with hcloop make --profile.

For each round trip, one nginx on 127.0.0.1 is put behind the delay proxy
(RTT and a shared bandwidth cap) and, one after another with the page cache
dropped before each, the time from nothing to "every block of the profile
read, in the profile's order" is measured for:

  on-demand       hcloop mount --prefetch off (its sequential read-ahead on)
  download-ahead  hcloop mount (the index's profile fetched ahead)
  casync          casync mount of a .caidx holding the image, store over HTTP
  whole image     curl of the whole ext4 image (live-boot's fetch=), then the
                  reads from the local copy; the download of the squashfs of
                  the same tree is shown beside it for reference

Targets at the largest RTT: download-ahead >= 5x faster than on-demand and
>= 3x faster than the whole-image download.

Options:
  -r, --rtt LIST      round trips in ms, comma-separated (default 0,20,80)
  -b, --rate RATE     bandwidth cap of the emulated link, bytes/s (default
                      12.5M = 100 Mbit/s)
  -w, --workdir DIR   where the prepared image, store and profile are kept
                      between runs (default /var/tmp/streamcd-bench-wan)
  -h, --help
Needs root (loop mounts, chroot, drop_caches), ./build.sh rootfs done, and
casync, nginx, curl, unsquashfs, mkfs.ext4.
EOF
}

TOP=$(cd "$(dirname "$0")/.." && pwd)
RTTS=0,20,80
RATE=12.5M
WORK=/var/tmp/streamcd-bench-wan
while (($#)); do
	case $1 in
	-r | --rtt) RTTS=${2:?--rtt needs a list}; shift 2 ;;
	-b | --rate) RATE=${2:?--rate needs a value}; shift 2 ;;
	-w | --workdir) WORK=${2:?--workdir needs a directory}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "hcloop-wan.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
[[ $RTTS =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "hcloop-wan.sh: bad --rtt list: $RTTS" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "hcloop-wan.sh: needs root" >&2; exit 1; }

. "$TOP/tests/lib.sh"
. "$TOP/tests/delay-lib.sh"
for c in casync nginx curl unsquashfs mkfs.ext4 fusermount3 losetup; do
	command -v "$c" >/dev/null || { echo "hcloop-wan.sh: needs $c (./build.sh deps)" >&2; exit 1; }
done
HCLOOP=$TOP/cloop/build/hcloop
make -s -C "$TOP/cloop" build/hcloop
DOM0=$TOP/out/rootfs/dom0.img
[[ -f $DOM0 ]] || { echo "hcloop-wan.sh: no $DOM0: run ./build.sh rootfs first" >&2; exit 1; }

BS=131072
KEY=$(cut -c1-16 "$DOM0.sha256")
W=$WORK/$KEY
WWW=$W/www

# ---- preparation (kept in WORK, keyed by the dom0 image) -----------------

prepare() {
	local tree=$W/tree mib
	log "preparing $W from $DOM0"
	rm -rf "$W"
	mkdir -p "$WWW"
	unsquashfs -q -n -d "$tree" "$DOM0" >/dev/null
	mib=$(($(du -sm "$tree" | cut -f1) * 5 / 4 + 64))
	truncate -s "${mib}M" "$WWW/root.ext4"
	mkfs.ext4 -q -F -U 2006c0de-0000-4000-8000-00000000b0b0 \
		-E hash_seed=2006c0de-0000-4000-8000-00000000b0b1 -d "$tree" "$WWW/root.ext4"
	cp "$DOM0" "$WWW/root.squashfs"
	SOURCE_DATE_EPOCH=1700000000 "$HCLOOP" make -q "$WWW/root.ext4" "$WWW/store" root 1
	# casync mount serves directory trees (.caidx): one holding the image.
	mkdir -p "$W/catree"
	ln "$WWW/root.ext4" "$W/catree/root.ext4"
	casync make --store="$WWW/castr" "$WWW/root.caidx" "$W/catree" >"$W/casync-make.log" 2>&1
	rm -rf "$tree" "$W/catree"
	touch "$W/prepared"
}

# The programs a dom0 boot runs, each as far as it gets without a
# hypervisor: what matters is that their binaries, libraries and data
# files are read, in a boot's order.
# shellcheck disable=SC2016 # run by the chroot's shell, not this one
BOOT_SCRIPT='
for c in "/sbin/init --version" "/bin/mount --version" \
	"/usr/lib/systemd/systemd-udevd --version" "/bin/udevadm --version" "/sbin/ip addr" \
	"/usr/sbin/xenstored --help" "/usr/sbin/xenconsoled --help" "/usr/sbin/xl help" \
	"/usr/sbin/xl info" "/usr/libexec/xen-qemu-system-i386 --version" \
	"/usr/libexec/xen-qemu-system-i386 -machine help" \
	"/sbin/agetty --version" "/bin/login --help" "/bin/bash -lc true" \
	"/bin/ps ax" "/usr/bin/python3 -c pass"; do
	$c >/dev/null 2>&1 || true
done
cat /etc/inittab /etc/passwd /etc/group /etc/nsswitch.conf >/dev/null 2>&1 || true'

record_profile() {
	local mnt fs=$W/fs loopdev
	log "recording the boot profile (hcloop mount --trace, chroot into the image)"
	serve_nginx "$WWW" PLAIN
	tmpdir_make mnt
	"$HCLOOP" mount -P off -r 0 --trace "$W/profile" "$PLAIN/store" root "$mnt"
	mkdir -p "$fs"
	loopdev=$(losetup -r -f --show "$mnt/root")
	mount -o ro,noload "$loopdev" "$fs"
	mount -t proc proc "$fs/proc"
	chroot "$fs" /bin/sh -c "$BOOT_SCRIPT" || log "the boot script failed (status $?)"
	umount "$fs/proc" "$fs"
	losetup -d "$loopdev"
	fusermount3 -u "$mnt"
	SOURCE_DATE_EPOCH=1700000000 "$HCLOOP" make -q --profile "$W/profile" "$WWW/root.ext4" \
		"$WWW/store" root 1
	touch "$W/profiled"
}

[[ -f $W/prepared ]] || prepare
[[ -f $W/profiled ]] || record_profile
IMG_BYTES=$(stat -c %s "$WWW/root.ext4")
SQ_BYTES=$(stat -c %s "$WWW/root.squashfs")
NPROF=$(wc -l <"$W/profile")
PROF_FETCH=$("$HCLOOP" info --blocks "$WWW/store" root | awk 'NR == FNR { t[$1] = 1; next }
	$1 == "block" && ($2 in t) && $3 != "zero" { n++; b += $4 } END { printf "%d %d\n", n, b }' "$W/profile" -)
log "image $IMG_BYTES bytes (squashfs $SQ_BYTES); profile $NPROF blocks, of which data: $PROF_FETCH (blocks, stored bytes)"

# replay FILE [ra]: reads the profile's blocks from FILE in order, one after
# another; prints nothing, fails on a short read. The profile already holds
# the traced boot's kernel read-ahead, so by default the kernel reads no
# further ahead here (POSIX_FADV_RANDOM): the same blocks as the boot, but
# one at a time where the boot's read-ahead ran beside it. With "ra" the
# kernel's read-ahead is on: concurrency like a boot's, but blocks the boot
# never read on top.
replay() {
	python3 - "$1" "$W/profile" "$BS" "${2:-}" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
if sys.argv[4] != "ra":
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
bs = int(sys.argv[3])
size = os.fstat(fd).st_size
for line in open(sys.argv[2]):
    off = int(line) * bs
    want = min(bs, size - off)
    if len(os.pread(fd, bs, off)) != want:
        sys.exit("short read at block " + line.strip())
PY
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

serve_nginx "$WWW" ORIGIN
ORIGIN_PORT=${ORIGIN##*:}

declare -A T
m=
d=
for rtt in ${RTTS//,/ }; do
	delayproxy_start P "$ORIGIN_PORT" "$rtt" "$RATE" --quiet
	url=http://127.0.0.1:$P
	log "rtt $rtt ms, cap $RATE B/s: proxy on port $P"

	for ra in "" ra; do
		drop_caches
		tmpdir_make m
		t0=$(now)
		"$HCLOOP" mount -P off "$url/store" root "$m"
		replay "$m/root" "$ra"
		T[$rtt,ondemand$ra]=$(elapsed "$t0")
		log "  on-demand${ra:+ (kernel read-ahead)}: ${T[$rtt,ondemand$ra]} s, $(awk '$1 == "fetched_blocks" { print $2 }' "$m/.stats") blocks fetched"
		fusermount3 -u "$m"

		drop_caches
		tmpdir_make m
		t0=$(now)
		"$HCLOOP" mount "$url/store" root "$m"
		replay "$m/root" "$ra"
		T[$rtt,ahead$ra]=$(elapsed "$t0")
		log "  download-ahead${ra:+ (kernel read-ahead)}: ${T[$rtt,ahead$ra]} s, $(awk '$1 == "prefetch_hits" || $1 == "prefetch_joined" || $1 == "fetched_blocks" { printf "%s %s ", $1, $2 }' "$m/.stats")"
		fusermount3 -u "$m"
	done

	drop_caches
	tmpdir_make m
	t0=$(now)
	casync mount --store="$url/castr" "$url/root.caidx" "$m" </dev/null >"$W/casync-mount.log" 2>&1 &
	capid=$!
	for _ in $(seq 600); do
		[[ -f $m/root.ext4 ]] && break
		sleep 0.05
	done
	if replay "$m/root.ext4"; then T[$rtt,casync]=$(elapsed "$t0"); else T[$rtt,casync]=failed; fi
	log "  casync: ${T[$rtt,casync]} s"
	fusermount3 -u "$m" 2>/dev/null || umount -l "$m"
	wait "$capid" 2>/dev/null || true

	drop_caches
	tmpdir_make d
	t0=$(now)
	curl -sf -o "$d/root.ext4" "$url/root.ext4"
	replay "$d/root.ext4"
	T[$rtt,whole]=$(elapsed "$t0")
	rm -f "$d/root.ext4"
	t0=$(now)
	curl -sf -o "$d/root.squashfs" "$url/root.squashfs"
	T[$rtt,squash]=$(elapsed "$t0")
	rm -f "$d/root.squashfs"
	log "  whole image: ${T[$rtt,whole]} s (squashfs download alone ${T[$rtt,squash]} s)"
	kill "$P_PID"
	wait "$P_PID" 2>/dev/null || true
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1fx", a / b; else print "-" }'; }
echo
echo "hcloop over an emulated WAN (delayproxy, cap $RATE B/s): seconds from nothing to the last"
echo "read of the boot profile's $NPROF blocks ($PROF_FETCH data blocks / stored bytes) of a"
echo "$IMG_BYTES-byte ext4 root image (squashfs of the same tree: $SQ_BYTES bytes)."
echo "Replay: the profile's blocks one at a time; \"+ra\": with the kernel's read-ahead on."
echo
row() { printf '| %-6s | %9s | %9s | %9s | %9s | %8s | %8s | %10s | %9s | %9s | %9s |\n' "$@"; }
row RTT on-demand ahead "on-dem+ra" "ahead+ra" casync whole "(squashfs)" "ahead/on" "ahead/whl" "+ra ratio"
echo "|--------|-----------|-----------|-----------|-----------|----------|----------|------------|-----------|-----------|-----------|"
for rtt in ${RTTS//,/ }; do
	row "$rtt ms" "${T[$rtt,ondemand]}" "${T[$rtt,ahead]}" "${T[$rtt,ondemandra]}" "${T[$rtt,aheadra]}" \
		"${T[$rtt,casync]}" "${T[$rtt,whole]}" "${T[$rtt,squash]}" \
		"$(ratio "${T[$rtt,ondemand]}" "${T[$rtt,ahead]}")" "$(ratio "${T[$rtt,whole]}" "${T[$rtt,ahead]}")" \
		"$(ratio "${T[$rtt,ondemandra]}" "${T[$rtt,aheadra]}")"
done
last=${RTTS##*,}
echo
verdict() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { print (a / b >= t) ? "PASS" : "MISS" }'; }
echo "at $last ms: download-ahead vs on-demand $(ratio "${T[$last,ondemand]}" "${T[$last,ahead]}") (target 5x): $(verdict "${T[$last,ondemand]}" "${T[$last,ahead]}" 5); with the kernel's read-ahead $(ratio "${T[$last,ondemandra]}" "${T[$last,aheadra]}"): $(verdict "${T[$last,ondemandra]}" "${T[$last,aheadra]}" 5)"
echo "at $last ms: download-ahead vs whole image $(ratio "${T[$last,whole]}" "${T[$last,ahead]}") (target 3x): $(verdict "${T[$last,whole]}" "${T[$last,ahead]}" 3)"
echo "at $last ms: download-ahead vs downloading a squashfs of the same tree (no reads counted) $(ratio "${T[$last,squash]}" "${T[$last,ahead]}")"
