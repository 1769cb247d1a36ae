#!/bin/bash
# How the dom0 root filesystem was chosen: the tree that ./build.sh rootfs
# left in out/rootfs-build/root goes into each candidate filesystem, each
# image into its own hcloop store, served by busybox httpd on 127.0.0.1;
# then hcloop mounts it, the kernel loop-mounts it read-only and we read
# what a boot reads (rootfs-bootfiles.txt: the files whose atime a traced
# Xen boot to the login prompt plus `xl list` and poweroff updated, less
# those the boot created), then
# walk the whole tree with find. Prints one table row per filesystem.
# Usage (root): guests/linux/rootfs-measure.sh [FS...]
set -eu

TOP=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${STREAMCD_OUT:-$TOP/out}
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'rootfs-measure: %s\n' "$*" >&2; exit 1; }
# Only rootfs_mkfs is used; the stage's registration has nothing to do here.
stage_register() { :; }
# shellcheck source=guests/linux/rootfs.stage.sh
. "$TOP/guests/linux/rootfs.stage.sh"

tree=$OUT/rootfs-build/root
files=$TOP/guests/linux/rootfs-bootfiles.txt
hcloop=$TOP/cloop/build/hcloop
work=$(mktemp -d /tmp/rootfs-measure.XXXXXX)
[[ -d $tree/usr ]] || die "no tree in $tree: run ./build.sh rootfs first"
(($# > 0)) || set -- ext4 squashfs squashfs-xz erofs erofs-lz4hc

httpd_pid=
loopdev=
cleanup() {
	if mountpoint -q "$work/fs"; then umount "$work/fs" || true; fi
	[[ -z $loopdev ]] || losetup -d "$loopdev" || true
	if mountpoint -q "$work/mnt"; then fusermount3 -u "$work/mnt" || true; fi
	[[ -z $httpd_pid ]] || kill "$httpd_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$1/.stats"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

printf '%-12s %9s %9s %9s %7s %7s %9s %7s\n' fs image_MiB store_MiB \
	boot_MiB blocks boot_s find_MiB find_s
for fs in "$@"; do
	rootfs_mkfs "$fs" "$tree" "$work/img" 1700000000 \
		00000000-0000-4000-8000-000000000000 >/dev/null 2>&1
	rm -rf "$work/store"
	"$hcloop" make -q "$work/img" "$work/store" dom0 1
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	: >"$work/httpd.conf"
	busybox httpd -f -p "127.0.0.1:$port" -h "$work/store" -c "$work/httpd.conf" &
	httpd_pid=$!
	mkdir -p "$work/mnt" "$work/fs"
	sleep 0.3
	sync
	echo 3 >/proc/sys/vm/drop_caches
	"$hcloop" mount "http://127.0.0.1:$port" dom0 "$work/mnt"
	t0=$(date +%s.%N)
	loopdev=$(losetup -r -f --show "$work/mnt/dom0")
	mount -o ro "$loopdev" "$work/fs"
	# Files in the order boot read them; a file boot only mapped in part
	# is read whole here, so these are upper bounds.
	(cd "$work/fs" && xargs -d '\n' cat -- <"$files" >/dev/null)
	t1=$(date +%s.%N)
	b1=$(stat_of "$work/mnt" fetched_bytes)
	n1=$(stat_of "$work/mnt" fetched_blocks)
	find "$work/fs" -xdev >/dev/null
	t2=$(date +%s.%N)
	b2=$(stat_of "$work/mnt" fetched_bytes)
	printf '%-12s %9s %9s %9s %7s %7.2f %9s %7.2f\n' "$fs" \
		"$(mib "$(stat -c %s "$work/img")")" \
		"$(mib "$(du -sb "$work/store/blocks" | cut -f1)")" \
		"$(mib "$b1")" "$n1" "$(echo "$t1 - $t0" | bc)" \
		"$(mib "$((b2 - b1))")" "$(echo "$t2 - $t1" | bc)"
	umount "$work/fs"
	losetup -d "$loopdev"
	loopdev=
	fusermount3 -u "$work/mnt"
	kill "$httpd_pid"
	wait "$httpd_pid" 2>/dev/null || true
	httpd_pid=
done
