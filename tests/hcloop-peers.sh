#!/bin/bash
# Peers (a demo booth): hcloop mount --peers URL, with real servers on
# 127.0.0.1. A first client's disk cache, served as it is by busybox httpd
# (the cache is laid out like a store), is a second client's peer: the
# second reads the whole image right while the store serves only what the
# peer lacks; the peer's 404s are no errors. A peer killed in the middle
# of a read is failed over with no read error; a peer that serves damaged
# blocks is distrusted and never gives a wrong byte; the list is read
# again, so a peer that starts later joins.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires fusermount3 nginx busybox

fixture_load
work=
tmpdir_make work
store_make "$work/store"
BLOCKS=$(($(stat -c %s "$FIX_IMAGE") / 131072))
HALF=$((BLOCKS / 2))
# Quick failures, no read-ahead or download-ahead: every fetch is a read's.
FAST=(-t 2 -R 2 -r 0 -P off)


# wait_stat MNT KEY VALUE: until the counter is VALUE (10 s at most).
wait_stat() {
	local _
	for _ in $(seq 100); do
		[[ $(stat_of "$1" "$2") == "$3" ]] && return 0
		sleep 0.1
	done
	return 1
}

log "the booth's server, and client A reading the first half into its cache"
serve_nginx "$work/store" S
: >"$work/store/peers.txt"
a=
hc_mount a "$S" -C "$work/cache-a" "${FAST[@]}" --log "$work/a.log"
expect "client A: the first half" "$(sha_range "$FIX_IMAGE" 0 "$HALF")" "$(sha_range "$a/root" 0 "$HALF")"
a_blocks=$(stat_of "$a" fetched_blocks)
log "client A fetched $a_blocks blocks; its cache is served as a peer by busybox httpd"
serve_busybox "$work/cache-a" PA

log "client B: the list is empty when it mounts; A joins it a moment later"
b=
hc_mount b "$S" --peers "$S/peers.txt" --peers-interval 0.5 "${FAST[@]}" --log "$work/b.log"
expect "no peers listed yet" 0 "$(stat_of "$b" peers)"
printf '# streamcd booth peers\n%s\n' "$PA" >"$work/store/peers.txt"
if wait_stat "$b" peers 1; then pass "the list is read again: A joins"; else fail "peers: $(stat_of "$b" peers)"; fi
expect "client B: the whole image" "$FIX_SHA" "$(whole_sha "$b" || echo failed)"
expect "client B: no read errors" 0 "$(stat_of "$b" read_errors)"
peer=$(stat_of "$b" peer_fetched_blocks)
server=$(stat_of "$b" mirror.0.fetched)
total=$(stat_of "$b" fetched_blocks)
log "client B: $total blocks, $peer from the peer, $server from the server"
if ((peer > 0 && peer <= a_blocks && peer + server == total)); then
	pass "the peer served $peer blocks, the server only the $server the peer lacks"
else
	fail "peer $peer (A had $a_blocks), server $server, total $total"
fi
if (($(stat_of "$b" mirror.1.missing) > 0)) && [[ $(stat_of "$b" mirror.1.errors) == 0 ]]; then
	pass "the peer's 404s ($(stat_of "$b" mirror.1.missing)) are not errors"
else
	fail "peer: missing $(stat_of "$b" mirror.1.missing), errors $(stat_of "$b" mirror.1.errors)"
fi
hc_umount "$b"

log "client C: the peer is killed a third of the way into its read"
expect "client A: the rest of the image" "$FIX_SHA" "$(whole_sha "$a" || echo failed)"
c=
hc_mount c "$S" --peers "$S/peers.txt" "${FAST[@]}" --log "$work/c.log"
wait_stat "$c" peers 1 || fail "client C: no peer listed"
third=$((BLOCKS / 3))
expect "client C: the first third" "$(sha_range "$FIX_IMAGE" 0 "$third")" "$(sha_range "$c/root" 0 "$third")"
kill "$PA_PID"
wait "$PA_PID" 2>/dev/null || true
expect "client C: the whole image after the peer left" "$FIX_SHA" "$(whole_sha "$c" || echo failed)"
expect "client C: no read errors" 0 "$(stat_of "$c" read_errors)"
if (($(stat_of "$c" peer_fetched_blocks) > 0 && $(stat_of "$c" mirror.1.errors) > 0)); then
	pass "the peer served $(stat_of "$c" peer_fetched_blocks) blocks, then failed over ($(stat_of "$c" fetch_failovers) failovers)"
else
	fail "peer fetched $(stat_of "$c" peer_fetched_blocks), errors $(stat_of "$c" mirror.1.errors)"
fi
hc_umount "$c"

log "client D: a peer that serves damaged blocks"
cp -a "$work/cache-a" "$work/liar"
damaged=0
while read -r f; do
	flip_bit "$f" 100
	damaged=$((damaged + 1))
done < <(find "$work/liar/blocks" -type f | sort | awk 'NR % 7 == 0')
serve_busybox "$work/liar" LIAR
printf '%s\n' "$LIAR" >"$work/store/peers.txt"
d=
hc_mount d "$S" --peers "$S/peers.txt" "${FAST[@]}" --log "$work/d.log"
wait_stat "$d" peers 1 || fail "client D: no peer listed"
expect "client D: the whole image, right" "$FIX_SHA" "$(whole_sha "$d" || echo failed)"
expect "client D: no read errors" 0 "$(stat_of "$d" read_errors)"
if (($(stat_of "$d" mirror.1.bad) > 0)) && grep -q '^mirror.1.state distrusted$' "$d/.stats"; then
	pass "the lying peer is distrusted ($(stat_of "$d" mirror.1.bad) bad of $damaged damaged)"
else
	fail "liar: bad $(stat_of "$d" mirror.1.bad), state $(stat_of "$d" mirror.1.state)"
fi
finish
