# shellcheck shell=bash
# Shared by the tests/boot-*.sh scripts: build what a boot needs (each stage
# is cached, so this is quick after the first time) and run one scenario of
# tests/boot.py against out/streamcd.iso.

BOOT_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOOT_LOGS=$BOOT_TOP/out/test-logs

# guests_build OUT RECIPES LOG [build.sh ARGS]: the guests stage into OUT
# (a copy of out/store, hard links and its own indexes, so that dom0 boots
# from it) with the recipe folder RECIPES only; prints its exit status.
guests_build() {
	local b=$1 recipes=$2 logf=$3 rc=0
	shift 3
	if [[ ! -d $b/store ]]; then
		mkdir -p "$b"
		cp -al "$BOOT_TOP/out/store" "$b/store"
		rm -rf "$b/store/index"
		cp -a "$BOOT_TOP/out/store/index" "$b/store/index"
	fi
	STREAMCD_OUT=$b STREAMCD_CACHE='' STREAMCD_GUESTS=$recipes STREAMCD_GUESTS_ONLY=1 \
		"$BOOT_TOP/build.sh" guests "$@" >"$logf" 2>&1 || rc=$?
	echo "$rc"
}

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

# junit_cases FILE: one line per testcase of a JUnit file (the matrix's):
# NAME KIND MESSAGE, KIND pass, failure or skipped. Fails if the file does
# not parse or a testcase has no time in seconds.
junit_cases() {
	python3 - "$1" <<-'EOF'
		import sys, xml.etree.ElementTree as ET
		for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
		    kind = "failure" if tc.find("failure") is not None else \
		        "skipped" if tc.find("skipped") is not None else "pass"
		    msg = (tc.find(kind).get("message") if kind != "pass" else "") or ""
		    float(tc.get("time"))
		    print(tc.get("name"), kind, msg)
	EOF
}

# junit_check FILE CASE RESULT...: the file parses; each CASE has a
# testcase with that RESULT (pass, failure, skipped). Prints a summary, or
# what differs.
junit_check() {
	local rows got
	rows=$(junit_cases "$1") || return 1
	shift
	while (($# >= 2)); do
		got=$(awk -v n="$1" '$1 == n { $1 = ""; print substr($0, 2) }' <<<"$rows")
		if [[ ${got%% *} != "$2" ]]; then
			echo "$1: ${got:-missing}, wanted $2"
			return 1
		fi
		shift 2
	done
	echo "$(grep -c . <<<"$rows") testcases: $(awk '{ print $1, $2 }' <<<"$rows" | sort | sed ':a;N;$!ba;s/\n/, /g')"
}
