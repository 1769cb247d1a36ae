#!/bin/bash
# Boot test in QEMU: scenario "debug" of tests/boot.py (STREAMCD_FIRMWARE=bios).
set -eu
. "$(dirname "$0")/boot-lib.sh"
boot_test debug STREAMCD_FIRMWARE=bios
