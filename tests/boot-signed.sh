#!/bin/bash
# Boot tests in QEMU: the CD mounts only what its build signed. Each case
# serves an altered copy of out/store (STREAMCD_STORE) to the entry "Linux
# without a hypervisor" or, for a refusal, the default entry (BIOS):
#  - dom0's latest index unsigned, altered after signing, or signed by
#    another key: each refused, the reason on the FAILED line, a shell;
#  - with a disk cache (a second disk, streamcd.cache=): a boot of a newer
#    version, then the latest pointer moved back to the older one: refused
#    (no silent downgrade); then streamcd.version= of the older one boots
#    (the deliberate rollback).
# The copies share out/store's block files and never write into them.
set -eu
. "$(dirname "$0")/boot-lib.sh"

boot_build
top=$BOOT_TOP
hcloop=$top/cloop/build/hcloop
img=$top/out/rootfs/dom0.img
work=$top/out/test-signed
key=$("$top/build.sh" key 2>&1 | sed -n 's/^==> key: secret \(.*\) (keep.*/\1/p')
[[ -f $key ]] || {
	echo "FAIL: no signing key from ./build.sh key"
	exit 1
}
read -r version serial _ <"$top/out/store/index/dom0/latest"
echo "measure: out/store's dom0 is version $version, serial $serial"
rm -rf "$work"
mkdir -p "$work"

# copy NAME: a store whose indexes are copies (dom0's, the guests', the
# catalogue); its blocks are out/store's.
copy() {
	mkdir -p "$work/$1"
	ln -s "$top/out/store/blocks" "$work/$1/blocks"
	cp -a "$top/out/store/index" "$work/$1/index"
}

# add NAME VERSION [make options]: dom0.img as a new version of NAME's dom0,
# pointed at by latest. Every block is already in out/store: none is written.
add() {
	local name=$1 v=$2
	shift 2
	"$hcloop" make -q "$@" "$img" "$work/$name" dom0 "$v"
}

fails=0
# case_run LOG SCENARIO ARG VAR=VALUE...: one boot; a failure is counted.
case_run() {
	local log=$1 scenario=$2 arg=$3
	shift 3
	echo "== $log"
	env "$@" python3 "$top/tests/boot.py" "$scenario" "$arg" --log "$BOOT_LOGS/boot-signed-$log.console" ||
		fails=$((fails + 1))
}

copy unsigned
add unsigned unsigned-1
case_run unsigned refused "index/dom0/unsigned-1 is not signed, but --pubkey asks for a signature" \
	STREAMCD_STORE="$work/unsigned"

"$hcloop" keygen "$work/other" >/dev/null
copy otherkey
add otherkey otherkey-1 --sign "$work/other.sec"
case_run otherkey refused "index/dom0/otherkey-1 is signed by key [0-9a-f]+, not by the trusted key" \
	STREAMCD_STORE="$work/otherkey"

# One byte of the signed index changed, its checksum trailer and the latest
# pointer's digest made right again: only the signature can tell.
copy altered
printf '\001' | dd of="$work/altered/index/dom0/$version" bs=1 seek=48 conv=notrunc status=none
python3 - "$work/altered/index/dom0/$version" <<-'EOF'
	import hashlib, sys
	p = sys.argv[1]
	b = open(p, "rb").read()[:-32]
	open(p, "wb").write(b + hashlib.sha256(b).digest())
EOF
printf '%s %s %s\n' "$version" "$serial" "$(sha256sum <"$work/altered/index/dom0/$version" | cut -d' ' -f1)" \
	>"$work/altered/index/dom0/latest"
case_run altered refused "index/dom0/$version has a bad signature" STREAMCD_STORE="$work/altered"

# The downgrade: the cache on a second disk, ext2 as a stick's is (the CD
# kernel mounts no ext4).
copy downgrade
cp "$work/downgrade/index/dom0/latest" "$work/latest.old"
add downgrade newer-1 --sign "$key"
truncate -s 64M "$work/cache.img"
mkfs.ext2 -q -F "$work/cache.img"
cache=(STREAMCD_STORE="$work/downgrade" STREAMCD_DISK="$work/cache.img")
case_run newer mounted newer-1 "${cache[@]}" STREAMCD_APPEND=streamcd.cache=/dev/vda
cp "$work/latest.old" "$work/downgrade/index/dom0/latest"
case_run downgrade refused "latest names version $version \(serial $serial\), older than version newer-1 .*refusing the downgrade" \
	"${cache[@]}" STREAMCD_APPEND=streamcd.cache=/dev/vda
case_run rollback mounted "$version" "${cache[@]}" \
	STREAMCD_APPEND="streamcd.cache=/dev/vda streamcd.version=$version"

rm -rf "$work"
if ((fails)); then
	echo "FAIL: $fails of 6 signed-boot cases failed"
	exit 1
fi
echo "PASS: the CD refused an unsigned, another key's and an altered index and a downgrade, and rolled back on purpose"
