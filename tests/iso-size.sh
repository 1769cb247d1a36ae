#!/bin/bash
# The ISO fits the budget of the 2006 CD (6.5 MB) and its initrd its own
# (1.5 MiB compressed); prints each part's size.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
"$REPO/build.sh" xen kernel hcloop-static rootfs initrd iso
cat "$REPO/out/iso/sizes.txt"
size=$(stat -c %s "$REPO/out/streamcd.iso")
initrd=$(stat -c %s "$REPO/out/initrd/initrd.img")
if ((size <= 6500000)); then pass "ISO $size bytes <= 6500000"; else fail "ISO $size bytes > 6500000"; fi
if ((initrd <= 1536 * 1024)); then pass "initrd $initrd bytes <= 1.5 MiB"; else fail "initrd $initrd bytes > 1.5 MiB"; fi
finish
