# shellcheck shell=bash
# Stage "matrix": the boot matrix (iso/matrix.py): every case of an ISO and
# its store booted in QEMU, a table, JUnit XML and a log per case in
# out/matrix/. The only stage with arguments: ./build.sh matrix --help.
# Sourced by build.sh, which provides log, die, install_missing, TOP and OUT.
stage_register matrix 0 "boot each case of the ISO in QEMU (both firmwares, CD
and USB stick, bare Linux, the debug hypervisor, no server,
a tampered store, gdbsx, IOMMU passthrough, the launcher,
every guest of the catalogue): a table, out/matrix/junit.xml
and CASE.log; ./build.sh matrix --help"

# The stages a matrix of the build's own ISO needs, each skipped when up to
# date (the same as tests/boot-lib.sh's).
MATRIX_STAGES=(xen kernel hcloop-static rootfs guests initrd syslinux iso profile guest-profiles)

stage_matrix() {
	local a own=1 build=1 s
	for a in "$@"; do
		case $a in
		--iso | --iso=*) own=0 ;;
		-h | --help | --list) build=0 ;;
		esac
	done
	install_missing matrix "${RUN_PACKAGES[@]}" python3
	[[ -x $TOP/cloop/build/hcloop ]] || stage_hcloop
	if ((own && build)); then
		for s in "${MATRIX_STAGES[@]}"; do
			"stage_${s//-/_}"
		done
	fi
	# Each case's ./build.sh run reads these itself; the matrix sets them.
	unset STREAMCD_APPEND STREAMCD_STORE STREAMCD_ISO STREAMCD_STORE_URL STREAMCD_RUN_DIR
	python3 "$TOP/iso/matrix.py" "$@"
}
