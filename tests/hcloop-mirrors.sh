#!/bin/bash
# Mirrors: hcloop mount with a comma-separated list of real servers on
# 127.0.0.1. Two of three mirrors die in the middle of reading the whole
# image and the read completes with the right SHA-256; with all dead a read
# fails with EIO and a clear message within the bound the timeout and
# retries set; a hung mirror and one that serves corrupted blocks are left
# for the others, never giving a wrong byte; a mirror that recovers is used
# again; `hcloop select` ranks them.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires fusermount3 nginx

fixture_load
work=
tmpdir_make work
store_make "$work/store"
BLOCKS=$(($(stat -c %s "$FIX_IMAGE") / 131072))
THIRD=$((BLOCKS / 3))
# Quick failures, no read-ahead or download-ahead: every fetch is a read's.
FAST=(-t 2 -R 1 -r 0 -P off)


log "three nginx mirrors; two die after the first third is read"
serve_nginx "$work/store" A
serve_nginx "$work/store" B
serve_nginx "$work/store" C
mnt=
hc_mount mnt "$A,$B,$C" "${FAST[@]}" --log "$work/kill.log"
first=$(sha_range "$mnt/root" 0 "$THIRD") || first=failed
expect "first third read from mirror A" "$(sha_range "$FIX_IMAGE" 0 "$THIRD")" "$first"
if (($(stat_of "$mnt" mirror.0.fetched) > 0)) && [[ $(stat_of "$mnt" mirror.2.fetched) == 0 ]]; then
	pass "the first mirror served the first third"
else
	fail "first third: mirror A fetched $(stat_of "$mnt" mirror.0.fetched), C $(stat_of "$mnt" mirror.2.fetched)"
fi
kill "$A_PID" "$B_PID"
wait "$A_PID" "$B_PID" 2>/dev/null || true
start=$SECONDS
got=$(whole_sha "$mnt") || got="read failed"
expect "whole image after two of three mirrors died" "$FIX_SHA" "$got"
log "rest of the image read in $((SECONDS - start)) s"
expect "no read errors" 0 "$(stat_of "$mnt" read_errors)"
if (($(stat_of "$mnt" fetch_failovers) > 0 && $(stat_of "$mnt" mirror.2.fetched) > 0)); then
	pass "fetches moved to mirror C ($(stat_of "$mnt" fetch_failovers) failovers)"
else
	fail "failovers $(stat_of "$mnt" fetch_failovers), C fetched $(stat_of "$mnt" mirror.2.fetched)"
fi
# Down, or back on probation after its hold: either way it had errors.
if (($(stat_of "$mnt" mirror.0.errors) > 0)); then pass "mirror A's failures counted"; else fail "mirror A shows no errors"; fi

log "all mirrors dead after the mount: EIO with a clear message, within the timeout's bound"
serve_nginx "$work/store" G1
serve_nginx "$work/store" G2
serve_nginx "$work/store" G3
hc_mount mnt "$G1,$G2,$G3" "${FAST[@]}" --log "$work/dead.log"
kill "$G1_PID" "$G2_PID" "$G3_PID"
wait "$G1_PID" "$G2_PID" "$G3_PID" 2>/dev/null || true
start=$SECONDS
if dd if="$mnt/root" of=/dev/null bs=128K skip="$THIRD" count=1 status=none 2>"$work/dd.err"; then
	fail "read with every mirror dead succeeded"
else
	took=$((SECONDS - start))
	# -t 2 -R 1 and 3 mirrors: at most 4 attempts of at most 2 s each, and
	# refused connections fail at once.
	if ((took <= 12)); then pass "EIO after $took s"; else fail "EIO only after $took s"; fi
	if grep -q "Input/output error" "$work/dd.err"; then pass "the reader got EIO"; else fail "dd said: $(cat "$work/dd.err")"; fi
fi
if grep -q "every mirror failed" "$work/dead.log"; then
	pass "log: $(grep -m1 "every mirror failed" "$work/dead.log" | cut -c1-160)"
else
	fail "no 'every mirror failed' in the log: $(tail -n 3 "$work/dead.log")"
fi
hc_umount "$mnt"

log "a hung mirror first: its transfers stall, the others carry the read"
serve_fault "$work/store" H --fault 'stall:/blocks/'
serve_nginx "$work/store" D
hc_mount mnt "$H,$D" "${FAST[@]}" --log "$work/stall.log"
start=$SECONDS
got=$(sha_range "$mnt/root" 0 200) || got="read failed"
expect "200 blocks with a hung first mirror" "$(sha_range "$FIX_IMAGE" 0 200)" "$got"
took=$((SECONDS - start))
# One stall costs the timeout once; then the mirror is avoided.
if ((took <= 30)); then pass "read in $took s despite the stall"; else fail "read took $took s"; fi
if (($(stat_of "$mnt" mirror.0.errors) > 0)); then pass "hung mirror's stalls counted"; else fail "hung mirror shows no errors"; fi
hc_umount "$mnt"

log "a mirror serving corrupted blocks first"
serve_fault "$work/store" X --fault 'corrupt:/blocks/'
hc_mount mnt "$X,$D" "${FAST[@]}" --log "$work/corrupt.log"
got=$(whole_sha "$mnt") || got="read failed"
expect "whole image with a corrupting first mirror" "$FIX_SHA" "$got"
expect "corrupting mirror distrusted" distrusted "$(awk '$1 == "mirror.0.state" { print $2 }' "$mnt/.stats")"
bad=$(stat_of "$mnt" mirror.0.bad)
# Once distrusted it gets no more requests: one bad block, or a few in
# flight together, not one per block.
if ((bad >= 1 && bad <= 16)); then pass "$bad bad blocks seen before it was avoided"; else fail "mirror.0.bad = $bad"; fi
if grep -q "does not match its SHA-256 name: avoided" "$work/corrupt.log"; then
	pass "log names the corrupting mirror"
else
	fail "no distrust line in the log: $(tail -n 3 "$work/corrupt.log")"
fi
hc_umount "$mnt"

log "a mirror that fails for a moment is used again once it recovers"
serve_fault "$work/store" F --fault '500:/blocks/:3'
hc_mount mnt "$F,$D" "${FAST[@]}"
sha_range "$mnt/root" 0 20 >/dev/null
before=$(stat_of "$mnt" mirror.0.fetched)
if (($(stat_of "$mnt" mirror.0.errors) > 0)); then pass "the failing mirror's errors counted"; else fail "the failing mirror shows no errors"; fi
# Its three failures in a row keep it down 0.5 + 1 + 2 s at most.
after=$before
for i in 1 2 3 4 5 6; do
	sleep 1
	sha_range "$mnt/root" $((100 * i)) 50 >/dev/null
	after=$(stat_of "$mnt" mirror.0.fetched)
	((after == before)) || break
done
if ((after > before)); then pass "recovered mirror used again after $i s ($before -> $after blocks)"; else fail "recovered mirror not used: $before -> $after"; fi
hc_umount "$mnt"

log "hcloop select"
serve_nginx "$work/store" E
out=$("$HCLOOP" select -t 2 root "$D" "$X,http://127.0.0.1:1" "$E") || fail "select exited $?"
echo "$out"
if [[ $(echo "$out" | awk '$1 == "-" && $2 ~ /127.0.0.1:1$/' | wc -l) == 1 ]]; then pass "select: dead mirror unranked"; else fail "select: dead mirror ranked"; fi
if echo "$out" | grep -q "wrong contents"; then pass "select: corrupting mirror named"; else fail "select: corrupting mirror not caught"; fi
list=$("$HCLOOP" select --list -t 2 root "$D,$X,http://127.0.0.1:1,$E")
case $list in
"$D,$E" | "$E,$D") pass "select --list: $list" ;;
*) fail "select --list gave '$list'" ;;
esac
if "$HCLOOP" select -t 1 root http://127.0.0.1:1 2>"$work/sel.err"; then
	fail "select with no working mirror exited 0"
else
	pass "select with no working mirror: $(head -n 1 "$work/sel.err")"
fi
finish
