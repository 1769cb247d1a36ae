#!/bin/bash
# Boot test in QEMU: scenario "dom0" of tests/boot.py (STREAMCD_FIRMWARE=bios STREAMCD_MEDIA=cdrom).
set -eu
. "$(dirname "$0")/boot-lib.sh"
boot_test dom0 STREAMCD_FIRMWARE=bios STREAMCD_MEDIA=cdrom
