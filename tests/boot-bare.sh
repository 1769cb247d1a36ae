#!/bin/bash
# Boot test in QEMU: scenario "bare" of tests/boot.py (STREAMCD_FIRMWARE=bios).
set -eu
. "$(dirname "$0")/boot-lib.sh"
boot_test bare STREAMCD_FIRMWARE=bios
