#!/bin/bash
# Boot test in QEMU: scenario "noserver" of tests/boot.py (STREAMCD_FIRMWARE=bios).
set -eu
. "$(dirname "$0")/boot-lib.sh"
boot_test noserver STREAMCD_FIRMWARE=bios
