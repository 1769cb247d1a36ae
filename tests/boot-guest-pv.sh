#!/bin/bash
# Boot test in QEMU: scenario "guest-pv" of tests/boot.py (see there).
set -eu
. "$(dirname "$0")/boot-lib.sh"
boot_test guest-pv
