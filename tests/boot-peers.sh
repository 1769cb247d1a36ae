#!/bin/bash
# Boot test in QEMU: scenario "peers" of tests/boot.py (see there): a demo
# booth's machine, booted with streamcd.peers=1.
set -eu
. "$(dirname "$0")/boot-lib.sh"
boot_test peers
