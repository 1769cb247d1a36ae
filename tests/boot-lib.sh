# shellcheck shell=bash
# Shared by the tests/boot-*.sh scripts: build what a boot needs (each stage
# is cached, so this is quick after the first time) and run one scenario of
# tests/boot.py against out/streamcd.iso.

# boot_test SCENARIO [VAR=VALUE...]: the variables go to ./build.sh run.
boot_test() {
	local scenario=$1 top logdir
	shift
	top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	logdir=$top/out/test-logs
	mkdir -p "$logdir"
	"$top/build.sh" xen kernel hcloop-static rootfs guests initrd iso
	echo "measure: ISO $(stat -c %s "$top/out/streamcd.iso") bytes"
	env "$@" python3 "$top/tests/boot.py" "$scenario" \
		--log "$logdir/$(basename "$0" .sh).console"
}
