#!/bin/bash
# The whole test suite: installs what it needs (./build.sh deps), builds,
# then runs the unit tests (also under ASan+UBSan), the lint checks and
# every integration script; prints "N passed, M failed, K skipped".
# Usage: tests/run.sh [TEST...]   (names as listed by tests/run.sh --list)
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"

ALL=(lint unit unit-san selftest-lib hcloop-cli hcloop-cli-san hcloop-servers hcloop-https hcloop-faults hcloop-offline
	hcloop-faults-san hcloop-offline-san hcloop-crash hcloop-sign hcloop-gc hcloop-fuzz hcloop-mirrors hcloop-prefetch
	hcloop-peers hcloop-mirrors-san hcloop-prefetch-san hcloop-peers-san
	hcloop-static stick delayproxy serve view
	xenelf-fix squashfs-sort matrix guest-artifacts boot-signed boot-stick boot-peers boot-screen
	run-noninteractive
	boot-guest-pv boot-guest-hvm
	iso-boot iso-size)

t_lint() {
	local sh
	mapfile -t sh < <(git ls-files '*.sh' build.sh .ci/run 2>/dev/null | sort -u)
	shellcheck -x -P SCRIPTDIR "${sh[@]}" &&
		shellcheck -s sh initrd/init initrd/udhcpc.script guests/linux/guest-root/etc/init.d/rcS \
			guests/linux/guest-root/etc/udhcpc.script guests/linux/rootfs/overlay*/usr/local/sbin/* \
			guests/linux/rootfs/overlay/usr/local/lib/streamcd/* &&
		shellcheck guests/linux/rootfs/overlay/usr/local/bin/streamcd &&
		python3 -m py_compile tests/*.py bench/*.py iso/*.py guests/*/*.py cloop/*.py &&
		clang-format --dry-run -Werror cloop/src/*.[ch] cloop/tests/*.c cloop/fuzz/*.[ch] tests/delayproxy.c \
			initrd/stick/*.[ch] initrd/stick/tests/*.c guests/linux/view/src/*.[ch] guests/linux/view/tests/*.[ch]
}
t_unit() { make -s -C cloop check && make -s -C initrd/stick check && make -s -C guests/linux/view check; }
t_unit-san() {
	make -s -C cloop SAN=1 check && make -s -C initrd/stick SAN=1 check &&
		make -s -C guests/linux/view SAN=1 check
}
# The daemon under the sanitizers: reports go to files, since a daemon's
# stderr is gone; any report is a failure.
san_run() {
	local dir rc=0
	make -s -C cloop SAN=1 build-san/hcloop
	dir=$(mktemp -d)
	ASAN_OPTIONS=log_path=$dir/asan UBSAN_OPTIONS=log_path=$dir/ubsan:print_stacktrace=1 \
		HCLOOP=$TOP/cloop/build-san/hcloop "tests/$1.sh" || rc=$?
	if compgen -G "$dir/*" >/dev/null; then
		cat "$dir"/* >&2
		rc=1
	fi
	rm -rf "$dir"
	return "$rc"
}
t_hcloop-cli-san() { san_run hcloop-cli; }
t_hcloop-faults-san() { san_run hcloop-faults; }
t_hcloop-offline-san() { san_run hcloop-offline; }
t_hcloop-mirrors-san() { san_run hcloop-mirrors; }
t_hcloop-peers-san() { san_run hcloop-peers; }
t_hcloop-prefetch-san() { san_run hcloop-prefetch; }

if [[ ${1:-} == --list ]]; then printf '%s\n' "${ALL[@]}"; exit 0; fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,5p' "$0"; exit 0; fi
[[ $(id -u) == 0 ]] || { echo "tests/run.sh: needs root (FUSE, loop devices, mounts)" >&2; exit 1; }
./build.sh deps hcloop

tests=("$@")
((${#tests[@]})) || tests=("${ALL[@]}")
passed=0 failed=0 skipped=0 failures=()
logdir=$TOP/out/test-logs
mkdir -p "$logdir"
for t in "${tests[@]}"; do
	start=$SECONDS
	rc=0
	if declare -F "t_$t" >/dev/null; then
		"t_$t" >"$logdir/$t.log" 2>&1 || rc=$?
	elif [[ -x tests/$t.sh ]]; then
		"tests/$t.sh" >"$logdir/$t.log" 2>&1 || rc=$?
	else
		echo "unknown test: $t" >&2
		rc=1
	fi
	case $rc in
	0) passed=$((passed + 1)); verdict=PASS ;;
	77) skipped=$((skipped + 1)); verdict=SKIP ;;
	*) failed=$((failed + 1)); verdict=FAIL; failures+=("$t") ;;
	esac
	printf '%-22s %s  (%d s)  %s\n' "$t" "$verdict" $((SECONDS - start)) \
		"$(grep -E '^[0-9]+ passed, [0-9]+ failed|^test_.*passed' "$logdir/$t.log" | tr '\n' ' ')"
	if [[ $verdict == FAIL ]]; then
		grep -E '^FAIL|error|Error' "$logdir/$t.log" | head -n 20 | sed 's/^/    /'
		echo "    (full log: $logdir/$t.log)"
	fi
done
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
