#!/bin/bash
# Runs the libFuzzer targets (make -C cloop fuzz) on a temporary copy of
# the committed corpus, so that a run never grows it by accident; prints
# runs, speed and coverage per target and fails on any finding (crash,
# leak, sanitizer report, broken invariant, timeout), whose input and log
# are kept in cloop/build-fuzz/artifacts/TARGET/.
# Usage: cloop/fuzz/run.sh [--seconds N] [--jobs J] [--merge] [TARGET...]
#   TARGET     index or block (default: both)
#   --seconds  how long each target runs (default 60)
#   --jobs     parallel fuzzing processes per target (libFuzzer -fork)
#   --merge    afterwards add the inputs that reach new coverage to the
#              committed corpus, cloop/tests/corpus/TARGET/
set -eu
CLOOP=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
die() {
	echo "fuzz/run.sh: $*" >&2
	exit 2
}

seconds=60 jobs=1 merge=0 targets=()
while (($#)); do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--seconds | --jobs)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive whole number, not '${2:-}'"
		if [[ $1 == --seconds ]]; then seconds=$2; else jobs=$2; fi
		shift 2
		;;
	--merge) merge=1; shift ;;
	index | block) targets+=("$1"); shift ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
done
((${#targets[@]})) || targets=(index block)

make -s -C "$CLOOP" fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run TARGET: one target's run; its log is $work/TARGET.log.
run() {
	local t=$1 bin=$CLOOP/build-fuzz/fuzz_$1 corpus=$CLOOP/tests/corpus/$1
	local art=$CLOOP/build-fuzz/artifacts/$1 log=$work/$1.log rc=0 before after last
	local -a mode=()
	mkdir -p "$art" "$work/$t"
	cp "$corpus"/* "$work/$t/"
	before=$(find "$work/$t" -type f | wc -l)
	((jobs == 1)) || mode=(-fork="$jobs")
	# libFuzzer's own exit codes (77 by default) would read as a skip.
	"$bin" "${mode[@]}" -max_total_time="$seconds" -timeout=20 -error_exitcode=99 \
		-timeout_exitcode=98 -print_final_stats=1 -artifact_prefix="$art/" \
		"$work/$t" >"$log" 2>&1 || rc=$?
	after=$(find "$work/$t" -type f | wc -l)
	last=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1)
	if ((rc)) || grep -qE '^==[0-9]+==ERROR|^SUMMARY: |runtime error:|invariant broken' "$log"; then
		cp "$log" "$art/finding.log"
		grep -E -A 12 '^==[0-9]+==ERROR|runtime error:|invariant broken' "$log" | head -n 20 >&2
		grep -E '^SUMMARY|Test unit written' "$log" >&2 || true
		echo "fuzz_$t: FINDING (exit $rc); the input is in $art/, the log $art/finding.log" >&2
		return 1
	fi
	[[ -n $last ]] || { echo "fuzz_$t: no statistics in its log" >&2; cat "$log" >&2; return 1; }
	# "#RUNS ... cov: C ft: F ..."; with -fork, libFuzzer puts its
	# feature count in both.
	awk -v t="$t" -v s="$seconds" -v b="$before" -v a="$after" -v fork=$((jobs > 1)) '{
		for (i = 1; i < NF; i++) {
			if ($i == "cov:") cov = fork ? "-" : $(i + 1)
			if ($i == "ft:") ft = $(i + 1)
		}
		runs = substr($1, 2)
		printf "fuzz_%s: %d runs in %d s (%d/s), cov %s ft %s, corpus %d -> %d inputs, no findings\n",
			t, runs, s, runs / s, cov, ft, b, a
	}' <<<"$last"
	if ((merge)); then
		"$bin" -merge=1 "$corpus" "$work/$t" >"$work/$t.merge.log" 2>&1 ||
			{ cat "$work/$t.merge.log" >&2; return 1; }
		echo "fuzz_$t: merged: $(grep -oE '[0-9]+ new files' "$work/$t.merge.log" | tail -n 1)" \
			"into $corpus"
	fi
}

status=0
for t in "${targets[@]}"; do
	run "$t" || status=1
done
exit "$status"
