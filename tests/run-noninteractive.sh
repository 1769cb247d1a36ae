#!/bin/bash
# `./build.sh run` without a terminal (stdin /dev/null, output to files), as
# in CI: it ends by itself at "streamcd: dom0 ready" with exit 0 and a
# summary; with no store server it ends at the initrd's "streamcd: FAILED"
# line at once, with exit 1 naming the line; STREAMCD_RUN_TIMEOUT ends it
# with exit 1 and the last console lines; with STREAMCD_APPEND=
# streamcd.launch=NAME it ends at "streamcd: guest NAME ready" (exit 0) or
# the launcher's FAILED line (exit 1); Ctrl-C (SIGINT to its process
# group, as a terminal sends it) ends it with 130. After each run no QEMU,
# nginx or busybox nc of that run is left.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires qemu-system-x86_64 nginx busybox ss pgrep setsid
PASSED=0 FAILED=0
# Cached: seconds when built already.
"$REPO/build.sh" xen kernel hcloop-static rootfs guests initrd syslinux iso

work=
tmpdir_make work
# Bounds every run: a run that does not end by itself fails, not hangs.
LIMIT=900

# leftovers PORT: what of the run that used PORT is still alive: QEMU and
# the nc processes of its guestfwd (both carry "127.0.0.1 PORT" on their
# command line), this tree's run nginx, and anything still listening on
# PORT (nginx's workers).
leftovers() {
	local port=$1
	{
		pgrep -a -f "127\.0\.0\.1 $port([^0-9]|\$)" || true
		pgrep -a -f "$REPO/out/log/run-nginx/" || true
		ss -Hltnp "sport = :$port" || true
	} | sed '/^$/d'
}

# no_leftovers NAME PORT: pass when nothing of the run is left, allowing a
# second for processes that are being reaped.
no_leftovers() {
	local name=$1 port=$2 left _
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		left=$(leftovers "$port")
		[[ -n $left ]] || break
		sleep 0.1
	done
	if [[ -z $left ]]; then
		pass "$name: no QEMU, nginx or nc of the run is left"
	else
		fail "$name: left behind:"$'\n'"$left"
	fi
}

# run_case NAME VAR=VALUE...: ./build.sh run without a terminal; sets RC,
# TOOK (s), OUT_F (its stdout: the console) and ERR_F (its stderr) and PORT.
run_case() {
	local name=$1 start=$SECONDS
	shift
	PORT=$(free_port)
	OUT_F=$work/$name.out ERR_F=$work/$name.err
	log "$name: ./build.sh run $*"
	RC=0
	env STREAMCD_PORT="$PORT" STREAMCD_RUN_TIMEOUT=$LIMIT "$@" \
		"$REPO/build.sh" run </dev/null >"$OUT_F" 2>"$ERR_F" || RC=$?
	TOOK=$((SECONDS - start))
	log "$name: exit $RC after $TOOK s; stderr:"
	cat "$ERR_F"
}

# 1. The main job: dom0 comes up, the run ends by itself.
run_case ready
expect "ready: exit status" 0 "$RC"
if grep -q 'streamcd: dom0 ready' "$OUT_F"; then
	pass "ready: the console (stdout) shows 'streamcd: dom0 ready'"
else
	fail "ready: no 'streamcd: dom0 ready' on stdout: $(tail -n 5 "$OUT_F")"
fi
summary=$(grep -E '^==> run: dom0 ready [0-9]+\.[0-9] s after QEMU started' "$ERR_F" || true)
if [[ -n $summary ]]; then
	pass "ready: summary: $summary"
	echo "measure: ${summary#==> }"
else
	fail "ready: no one-line summary on stderr"
fi
if ((TOOK < LIMIT)); then pass "ready: ended by itself after $TOOK s"; else fail "ready: ran into the time limit"; fi
no_leftovers ready "$PORT"

# 2. No store server: the initrd gives up and prints its FAILED line; the
# run stops at that line, not at the time limit.
run_case noserver STREAMCD_RUN_SERVER=0
expect "noserver: exit status" 1 "$RC"
if grep -Eq '^build\.sh: run: the boot failed [0-9]+\.[0-9] s after QEMU started: streamcd: FAILED: hcloop could not mount' "$ERR_F"; then
	pass "noserver: the error names the initrd's line: $(grep '^build\.sh: run:' "$ERR_F")"
else
	fail "noserver: no error naming 'streamcd: FAILED: hcloop could not mount'"
fi
# Nothing after the FAILED line was read: the run stopped at once.
last=$(grep -v '^[[:space:]]*$' "$OUT_F" | tail -n 1 | tr -d '\r')
if [[ $last == *"streamcd: FAILED: hcloop could not mount"* ]]; then
	pass "noserver: the console ends at the FAILED line"
else
	fail "noserver: the console goes on after the FAILED line (last: $last)"
fi
if ((TOOK < 400)); then pass "noserver: ended after $TOOK s"; else fail "noserver: took $TOOK s"; fi
echo "measure: noserver run ended after $TOOK s"
no_leftovers noserver "$PORT"

# 3. The time limit: far too short for a boot. (20 s was, until dom0
# became ready 19 s after the start of a warm run: at 10 s Xen and the
# kernel have printed lines, and the initrd has not mounted the root.)
run_case timeout STREAMCD_RUN_TIMEOUT=10
expect "timeout: exit status" 1 "$RC"
if grep -q "^build\.sh: run: no 'streamcd: dom0 ready' within STREAMCD_RUN_TIMEOUT=10 s" "$ERR_F"; then
	pass "timeout: the error names STREAMCD_RUN_TIMEOUT=10"
else
	fail "timeout: no error naming STREAMCD_RUN_TIMEOUT=10"
fi
# The last console line shown in the error is the console's last line.
shown=$(grep -A "$((LIMIT))" 'the last console lines:' "$ERR_F" | grep -c '^    ' || true)
if ((shown > 0)); then pass "timeout: the error shows $shown console lines"; else fail "timeout: no console lines in the error"; fi
if ((TOOK >= 10 && TOOK < 30)); then pass "timeout: ended after $TOOK s"; else fail "timeout: ended after $TOOK s, not ~10"; fi
no_leftovers timeout "$PORT"

# 4. STREAMCD_APPEND with streamcd.launch=NAME: dom0 starts the guest and
# the run ends at the guest's ready line; a guest the catalogue lacks ends
# it at the launcher's FAILED line.
run_case launch STREAMCD_APPEND=streamcd.launch=linux-pv
expect "launch: exit status" 0 "$RC"
if grep -Eq 'streamcd: guest linux-pv ready \([0-9.]+ s, [0-9]+ bytes fetched\)' "$OUT_F"; then
	pass "launch: $(grep -Eo 'streamcd: guest linux-pv ready \([^)]*\)' "$OUT_F" | head -n 1)"
else
	fail "launch: no 'streamcd: guest linux-pv ready (S s, B bytes fetched)': $(tail -n 5 "$OUT_F")"
fi
summary=$(grep -E '^==> run: guest linux-pv ready [0-9]+\.[0-9] s after QEMU started' "$ERR_F" || true)
if [[ -n $summary ]]; then pass "launch: summary: $summary"; else fail "launch: no summary naming the guest"; fi
no_leftovers launch "$PORT"
run_case launch-unknown STREAMCD_APPEND=streamcd.launch=no-such-guest
expect "launch-unknown: exit status" 1 "$RC"
if grep -q "^build\.sh: run: the boot failed .*streamcd: FAILED: guest no-such-guest" "$ERR_F"; then
	pass "launch-unknown: $(grep '^build\.sh: run:' "$ERR_F")"
else
	fail "launch-unknown: no error naming 'streamcd: FAILED: guest no-such-guest'"
fi
if grep -q "no guest named 'no-such-guest'" "$OUT_F"; then
	pass "launch-unknown: the console says why"
else
	fail "launch-unknown: the console does not say why"
fi
no_leftovers launch-unknown "$PORT"

# 5. Ctrl-C: a terminal sends SIGINT to the foreground process group. Job
# control gives the run a group of its own (and keeps SIGINT, which
# background jobs of a script would ignore). env --default-signal undoes
# an ignored SIGINT inherited from whatever started this suite (a shell's
# background job, nohup ... &): bash cannot trap a signal ignored at entry.
PORT=$(free_port)
log "interrupt: ./build.sh run, SIGINT after 15 s"
set -m
STREAMCD_PORT=$PORT STREAMCD_RUN_TIMEOUT=$LIMIT env --default-signal=INT "$REPO/build.sh" run \
	</dev/null >"$work/int.out" 2>"$work/int.err" &
pid=$!
set +m
sleep 15
start=$SECONDS
kill -INT -- "-$pid"
RC=0
wait "$pid" || RC=$?
TOOK=$((SECONDS - start))
cat "$work/int.err"
expect "interrupt: exit status" 130 "$RC"
if ((TOOK < 15)); then pass "interrupt: ended $TOOK s after SIGINT"; else fail "interrupt: took $TOOK s after SIGINT"; fi
no_leftovers interrupt "$PORT"

finish
