#!/bin/bash
# Boot test in QEMU: scenario "guest-hvm" of tests/boot.py (see there).
set -eu
. "$(dirname "$0")/boot-lib.sh"
boot_test guest-hvm
