#!/bin/bash
# The Linux guests' userland, chosen by measurement: the BusyBox root of
# linux-pv (guests/linux/images.sh) against a Debian 12 minbase root with
# sysvinit (bench/userland/), same kernel, same PV mode, one QEMU boot:
# image size, bytes stored, seconds from launch to ready, bytes fetched.
# Works in out/bench-userland (out/store is left alone). Usage (root):
# bench/guest-userland.sh, after ./build.sh.
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/out
B=$OUT/bench-userland
[[ -f $OUT/streamcd.iso && -d $OUT/store/index ]] || { echo "run ./build.sh first" >&2; exit 1; }
rm -rf "$B"
mkdir -p "$B"
for d in xen kernel guest-kernel initrd syslinux hcloop-static rootfs-debs; do
	[[ ! -e $OUT/$d ]] || ln -s "$OUT/$d" "$B/$d"
done
ln "$OUT/streamcd.iso" "$B/streamcd.iso"
cp -al "$OUT/store" "$B/store"
rm -rf "$B/store/index"
cp -a "$OUT/store/index" "$B/store/index"
STREAMCD_OUT=$B STREAMCD_GUESTS=$TOP/bench/userland "$TOP/build.sh" guests
"$TOP/bench/guest-boot.py" --out "$B" --ways on-demand --rounds 2 linux-pv linux-minbase
echo
printf '%-14s %12s %12s\n' image bytes stored
awk '$1 == "image" && !seen[$3]++ { printf "%-14s %12d %12d\n", $3, $5, $6 }' "$B/guests/catalog"
