#!/bin/bash
# Boot test in QEMU: scenario "iommu" of tests/boot.py (see there).
set -eu
. "$(dirname "$0")/boot-lib.sh"
boot_test iommu
