# shellcheck shell=bash
# Shared by the tests/boot-*.sh scripts: build what a boot needs (each stage
# is cached, so this is quick after the first time) and run one scenario of
# tests/boot.py against out/streamcd.iso.

BOOT_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOOT_LOGS=$BOOT_TOP/out/test-logs

# boot_build: the stages a boot needs, up to date.
boot_build() {
	mkdir -p "$BOOT_LOGS"
	"$BOOT_TOP/build.sh" xen kernel hcloop-static rootfs guests initrd syslinux iso profile guest-profiles
	echo "measure: ISO $(stat -c %s "$BOOT_TOP/out/streamcd.iso") bytes"
}

# boot_test SCENARIO [VAR=VALUE...]: the variables go to ./build.sh run.
boot_test() {
	local scenario=$1
	shift
	boot_build
	env "$@" python3 "$BOOT_TOP/tests/boot.py" "$scenario" \
		--log "$BOOT_LOGS/$(basename "$0" .sh).console"
}
