#!/bin/bash
# Self-test of lib.sh and faultserver.py: the four servers, Range, every fault.
set -eu
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
requires curl sha256sum cmp python3 busybox nginx

PASS=0 FAILS=0
t() { if check_eq "$@"; then PASS=$((PASS + 1)); else FAILS=$((FAILS + 1)); fi; }
sha() { sha256sum <"$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
# cget OUT URL [curl args]: sets RC and CODE (000 if no answer).
cget() { RC=0; CODE=$(curl -s -o "$1" -w '%{http_code}' "${@:3}" "$2") || RC=$?; }
# Second transfer of one curl run reuses the connection iff keep-alive works.
reused() { curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "$1" "$1" | tail -n 1; }

tmpdir_make W
WWW=$W/www
SIZE=$((300 * 1024))
mkdir -p "$WWW/blocks/ab"
head -c "$SIZE" /dev/urandom >"$W/data"
H=$(sha "$W/data")
P=blocks/ab/$H
cp "$W/data" "$WWW/$P"
tail -c +1001 "$W/data" | head -c 1000 >"$W/range"

# name, range status, 2nd transfer's new connections (0 = keep-alive)
for spec in "python 200 1" "busybox 206 1" "nginx 206 0" "fault 206 0"; do
	read -r s rstatus kalive <<<"$spec"
	log "server: $s"
	"serve_$s" "$WWW" U
	cget "$W/out" "$U/$P"
	t "$s: GET status" 200 "$CODE"
	t "$s: GET sha256" "$H" "$(sha "$W/out")"
	cget "$W/out" "$U/$P" -r 1000-1999
	t "$s: Range status" "$rstatus" "$CODE"
	if [[ $rstatus == 206 ]]; then
		t "$s: Range bytes" "$(sha "$W/range")" "$(sha "$W/out")"
	fi
	t "$s: connections for 2nd request" "$kalive" "$(reused "$U/$P")"
	cget "$W/out" "$U/blocks/ab/missing"
	t "$s: missing file" 404 "$CODE"
	kill "$U_PID"
	wait "$U_PID" || true
	cget "$W/out" "$U/$P"
	t "$s: dead after kill \$U_PID (curl rc)" 7 "$RC"
done

log "python --protocol HTTP/1.1"
serve_python "$WWW" U11 --protocol HTTP/1.1
t "python HTTP/1.1: connections for 2nd request" 0 "$(reused "$U11/$P")"

log "fault modes"
MODES="500 404 badlen shortlen truncate corrupt stall die"
FAULTS=()
for m in $MODES count; do
	ln "$WWW/$P" "$WWW/$m.bin"
	FAULTS+=(--fault "$m:^/$m\\.bin\$")
done
FAULTS[${#FAULTS[@]} - 1]='500:^/count\.bin$:2'
serve_fault "$WWW" F "${FAULTS[@]}"

cget "$W/out" "$F/500.bin"
t "500: status" 500 "$CODE"
cget "$W/out" "$F/404.bin"
t "404: status" 404 "$CODE"

cget "$W/out" "$F/badlen.bin"
t "badlen: curl rc" 18 "$RC"
t "badlen: bytes received" "$SIZE" "$(size "$W/out")"

cget "$W/out" "$F/shortlen.bin"
t "shortlen: curl rc" 0 "$RC"
t "shortlen: bytes received" $((SIZE - 7)) "$(size "$W/out")"
t "shortlen: prefix intact" "$(head -c $((SIZE - 7)) "$W/data" | sha256sum)" "$(sha256sum <"$W/out")"
curl -s -o /dev/null -o "$W/out" -w '%{num_connects}\n' "$F/shortlen.bin" "$F/$P" >"$W/nc"
t "shortlen: next request on same connection" "0 $H" "$(tail -n 1 "$W/nc") $(sha "$W/out")"

cget "$W/out" "$F/truncate.bin"
t "truncate: curl rc" 18 "$RC"
t "truncate: bytes received" $((SIZE / 2)) "$(size "$W/out")"

cget "$W/out" "$F/corrupt.bin"
t "corrupt: curl rc" 0 "$RC"
t "corrupt: size" "$SIZE" "$(size "$W/out")"
# cmp -l: one line per differing byte, 1-based offset first.
t "corrupt: differing byte offsets" $((SIZE / 2 + 1)) "$(cmp -l "$W/data" "$W/out" | awk '{print $1}' | tr '\n' ' ' | sed 's/ $//')"

t0=$(date +%s%N)
cget "$W/out" "$F/stall.bin" --max-time 2
ms=$((($(date +%s%N) - t0) / 1000000))
t "stall: curl rc" 28 "$RC"
t "stall: bytes received" $((SIZE / 2)) "$(size "$W/out")"
t "stall: timed out after 2-3 s" yes "$( ((ms >= 1900 && ms < 3500)) && echo yes || echo "no (${ms} ms)")"

cget "$W/out" "$F/die.bin"
t "die: curl rc (empty reply)" 52 "$RC"

codes=
for _ in 1 2 3; do
	cget "$W/out" "$F/count.bin"
	codes="$codes $CODE"
done
t "500 with COUNT 2: statuses" " 500 500 200" "$codes"

cget "$W/out" "$F/$P" -r -100
t "suffix range: status and bytes" "206 $(tail -c 100 "$W/data" | sha256sum)" "$CODE $(sha256sum <"$W/out")"
cget "$W/out" "$F/$P" -r "$SIZE-"
t "unsatisfiable range: status" 416 "$CODE"
t "HEAD: Content-Length" "content-length: $SIZE" \
	"$(curl -s -I "$F/$P" | tr -d '\r' | grep -i '^content-length' | tr '[:upper:]' '[:lower:]')"
t "log records the fault" 1 "$(grep -c "GET /corrupt.bin 200 fault=corrupt" "$F_LOG")"

log "--die-after"
serve_fault "$WWW" D --die-after 3
codes=
for _ in 1 2 3; do
	cget "$W/out" "$D/$P"
	codes="$codes $CODE"
done
t "die-after 3: first 3 answered" " 200 200 200" "$codes"
rc=0
wait "$D_PID" || rc=$?
t "die-after 3: process exit status" 3 "$rc"
cget "$W/out" "$D/$P"
t "die-after 3: 4th request refused (curl rc)" 7 "$RC"

echo "$PASS passed, $FAILS failed"
((FAILS == 0))
