#!/bin/bash
# The libFuzzer targets of cloop/fuzz/ (index parser, block codecs) for
# about 30 s each (FUZZ_SECONDS) on a temporary copy of the committed
# corpus: any crash, leak, sanitizer report or broken invariant fails.
# Prints runs, speed and coverage. Skips only when clang cannot link a
# libFuzzer target (Debian's libclang-rt-14-dev is missing).
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
seconds=${FUZZ_SECONDS:-30}

work=
tmpdir_make work
cat >"$work/probe.c" <<'PROBE'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return d && n > 1000; }
PROBE
if ! command -v clang >/dev/null ||
	! clang -fsanitize=fuzzer,address,undefined -o "$work/probe" "$work/probe.c" 2>"$work/probe.log"; then
	echo "SKIP: clang cannot build a libFuzzer target (install libclang-rt-14-dev): $(head -n 3 "$work/probe.log" 2>/dev/null)"
	exit 77
fi

# What the corpus holds, to see that fuzzing left it alone.
corpus_sum() { (cd "$REPO/cloop/tests/corpus" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
before=$(corpus_sum)

for t in index block; do
	log "fuzz_$t: $seconds s"
	if out=$("$REPO/cloop/fuzz/run.sh" --seconds "$seconds" "$t" 2>"$work/$t.err"); then
		echo "$out"
		# "fuzz_T: RUNS runs in S s (R/s), cov C ft F, ...": it ran.
		runs=$(sed -n 's/^fuzz_[a-z]*: \([0-9]*\) runs .*/\1/p' <<<"$out")
		if [[ -n $runs ]] && ((runs > 1000)); then
			pass "fuzz_$t: $runs runs, no findings"
		else
			fail "fuzz_$t: too few runs: $out"
		fi
	else
		cat "$work/$t.err"
		fail "fuzz_$t: a finding or a failed run (above)"
	fi
done
expect "the committed corpus is unchanged" "$before" "$(corpus_sum)"
finish
