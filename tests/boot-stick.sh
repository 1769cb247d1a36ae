#!/bin/bash
# Boot tests in QEMU of the ISO on a USB stick (STREAMCD_MEDIA=usb: a 1 GiB
# image file the ISO is written onto, as dd would, on QEMU's xHCI):
#  - first boot (BIOS): the space after the image becomes a cache
#    partition, dom0's blocks go there, a guest is cached whole; on this
#    machine, gdisk, partx and e2fsck read the stick afterwards;
#  - second boot (UEFI) with no NIC at all: dom0 from the cache alone, the
#    guest still listed as cached;
#  - the cache filled up by something else: said, and the boot goes on;
#  - its filesystem damaged: said, made again, and the boot goes on;
#  - the image on a read-only disk (BIOS: ISOLINUX says streamcd.media=disk):
#    said at once, no cache, and the boot goes on.
set -eu
. "$(dirname "$0")/boot-lib.sh"

boot_build
top=$BOOT_TOP
work=$top/out/test-stick
stick=$work/stick.img
# A guest whose images are small: caching it whole is quick.
guest=${STREAMCD_STICK_GUEST:-linux-pv}
rm -rf "$work"
mkdir -p "$work"

fails=0
# case_run LOG SCENARIO ARG VAR=VALUE...: one boot from the stick.
case_run() {
	local log=$1 scenario=$2 arg=$3
	shift 3
	echo "== $log"
	env STREAMCD_STICK="$stick" "$@" python3 "$top/tests/boot.py" "$scenario" "$arg" \
		--log "$BOOT_LOGS/boot-stick-$log.console" || fails=$((fails + 1))
}

# cache_part: START and SECTORS of the stick's partition 3.
cache_part() {
	partx -g -o START,SECTORS -n 3 "$stick" | tr -s ' ' | sed 's/^ //'
}

# with_cache_fs COMMAND...: COMMAND with the cache's filesystem mounted on
# $work/mnt (a loop device over the partition's bytes).
with_cache_fs() {
	local start sectors loop rc=0
	read -r start sectors < <(cache_part)
	loop=$(losetup -f --show -o $((start * 512)) --sizelimit $((sectors * 512)) "$stick")
	mkdir -p "$work/mnt"
	mount "$loop" "$work/mnt"
	"$@" || rc=$?
	umount "$work/mnt"
	losetup -d "$loop"
	return "$rc"
}

count_blocks() {
	find "$work/mnt/streamcd-cache/blocks" -type f | wc -l >"$work/blocks"
}

# fill: all but 4 MiB of the cache's filesystem taken by a file (ext2 has
# no fallocate).
fill() {
	local free
	free=$(df -k --output=avail "$work/mnt" | tail -1)
	dd if=/dev/zero of="$work/mnt/filler" bs=1M count=$(((free - 4096) / 1024)) status=none
	sync
}

case_run first stick-first "$guest" STREAMCD_FIRMWARE=bios
if read -r start sectors < <(cache_part) && ((start > 0 && sectors > 64 * 2048)); then
	echo "ok: the stick has partition 3: $sectors sectors from $start"
	# Powered off without unmounting (as a pulled stick): e2fsck may find
	# it not cleanly unmounted, but must have nothing to repair.
	loop=$(losetup -f --show -r -o $((start * 512)) --sizelimit $((sectors * 512)) "$stick")
	e2fsck -fn "$loop" >"$work/fsck" 2>&1 || true
	losetup -d "$loop"
	if grep -q '? no$' "$work/fsck"; then
		echo "FAIL: e2fsck would repair the cache's filesystem: $(cat "$work/fsck")"
		fails=$((fails + 1))
	else
		echo "ok: e2fsck finds nothing to repair: $(tail -1 "$work/fsck")"
	fi
	with_cache_fs count_blocks
	echo "measure: $(cat "$work/blocks") block files in the stick's cache after the first boot"
	(($(cat "$work/blocks") > 0)) || {
		echo "FAIL: no block files in the cache"
		fails=$((fails + 1))
	}
else
	echo "FAIL: no partition 3 on the stick after the first boot"
	fails=$((fails + 1))
fi

case_run offline stick-offline "$guest" STREAMCD_FIRMWARE=uefi

with_cache_fs fill
case_run full stick-bad "the cache on /dev/sd[a-z]3 is full" STREAMCD_FIRMWARE=bios

read -r start _ < <(cache_part)
dd if=/dev/zero of="$stick" bs=1024 seek=$((start / 2 + 1)) count=1 conv=notrunc status=none
case_run damaged stick-bad "is damaged \(it does not mount\): making it again, empty" STREAMCD_FIRMWARE=bios

# The boot loader says "disk" here too; the search ends at the read-only
# disk instead of waiting for a writable one.
case_run readonly stick-bad "booted from a disk, but no writable one holds the image" \
	STREAMCD_FIRMWARE=bios STREAMCD_MEDIA=disk

rm -rf "$work"
if ((fails)); then
	echo "FAIL: $fails of 6 stick checks failed"
	exit 1
fi
echo "PASS: a stick keeps its cache, boots offline from it, survives a full and a damaged cache, and a read-only disk boots without one"
