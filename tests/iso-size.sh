#!/bin/bash
# The ISO fits its budget (5 MiB, 5,242,880 bytes: issue 11; the 2006 CD
# was 6.5 MB) and its initrd its own (1.5 MiB compressed); prints each
# part's size.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
"$REPO/build.sh" xen kernel hcloop-static rootfs initrd syslinux iso
cat "$REPO/out/iso/sizes.txt"
size=$(stat -c %s "$REPO/out/streamcd.iso")
initrd=$(stat -c %s "$REPO/out/initrd/initrd.img")
budget=$((5 * 1024 * 1024))
if ((size <= budget)); then pass "ISO $size bytes <= $budget"; else fail "ISO $size bytes > $budget"; fi
if ((initrd <= 1536 * 1024)); then pass "initrd $initrd bytes <= 1.5 MiB"; else fail "initrd $initrd bytes > 1.5 MiB"; fi
finish
