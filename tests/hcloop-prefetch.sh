#!/bin/bash
# Boot profiles and download-ahead, end to end on real mounts: a --trace of
# a real access pattern (an ext4 mount of the image, reading some of its
# files), attached with make --profile, fetched ahead on the next mount so
# the same reads fetch nothing more; fill with a disk cache survives the
# server's death; --prefetch off, a rate cap and bad profiles behave.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires fusermount3 nginx losetup

fixture_load
work=
tmpdir_make work
store_make "$work/store"
serve_nginx "$work/store" S

# read_files MNT: mounts the image read-only through a loop device and
# reads a fixed set of files: the access pattern the profile is made of.
read_files() {
	local loopdev fs=$work/fs
	mkdir -p "$fs"
	loopdev=$(losetup -r -f --show "$1/root")
	mount -o ro,noload "$loopdev" "$fs"
	find "$fs" -type f | sort | awk 'NR % 7 == 1' | head -n 300 | xargs cat >/dev/null
	umount "$fs"
	losetup -d "$loopdev"
}

# wait_prefetch MNT: until the download-ahead has nothing left (or 60 s).
wait_prefetch() {
	local _
	for _ in $(seq 600); do
		[[ $(stat_of "$1" prefetch_left) == 0 ]] && return 0
		sleep 0.1
	done
	return 1
}

log "recording a trace"
mnt=
hc_mount mnt "$S" -r 0 -P off --trace "$work/trace"
read_files "$mnt"
traced=$(wc -l <"$work/trace")
hc_umount "$mnt"
if ((traced > 20)) && [[ $(sort -n "$work/trace" | uniq -d | wc -l) == 0 ]]; then
	pass "trace: $traced blocks, each once"
else
	fail "trace: $traced lines, $(sort -n "$work/trace" | uniq -d | wc -l) repeated"
fi
# The data blocks among them: what a download-ahead of the profile fetches.
want=$("$HCLOOP" info --blocks "$S" root | awk 'NR == FNR { t[$1] = 1; next }
	$1 == "block" && ($2 in t) && $3 != "zero" { n++ } END { print n + 0 }' "$work/trace" -)

log "attaching it with make --profile"
digest_before=$(cut -d' ' -f3 "$work/store/index/root/latest")
expect "info before: no profile" "profile:      none" "$("$HCLOOP" info "$S" root | grep '^profile:')"
"$HCLOOP" make -q --profile "$work/trace" "$FIX_IMAGE" "$work/store" root 1
digest_after=$(cut -d' ' -f3 "$work/store/index/root/latest")
if [[ $digest_before != "$digest_after" ]]; then pass "version 1 rewritten"; else fail "version 1 unchanged"; fi
# The section keeps each traced block once, in order.
expect "info counts the profile's blocks" \
	"profile:      $(sort -un "$work/trace" | grep -c .) blocks (boot read order)" \
	"$("$HCLOOP" info "$S" root | grep '^profile:')"
expect "same version, same serial" "1 1" "$(cut -d' ' -f1-2 "$work/store/index/root/latest")"
"$HCLOOP" make -q --profile "$work/trace" "$FIX_IMAGE" "$work/store" root 1
expect "making it again changes nothing" "$digest_after" "$(cut -d' ' -f3 "$work/store/index/root/latest")"

log "mounting with the profile: the download-ahead fetches it"
hc_mount mnt "$S" -r 0
if wait_prefetch "$mnt"; then pass "download-ahead done in $(stat_of "$mnt" prefetch_ms) ms"; else fail "download-ahead still has $(stat_of "$mnt" prefetch_left) blocks left"; fi
expect "planned = the trace's data blocks" "$want" "$(stat_of "$mnt" prefetch_planned)"
expect "prefetched = planned" "$want" "$(stat_of "$mnt" prefetch_blocks)"
fetched=$(stat_of "$mnt" fetched_blocks)
read_files "$mnt"
expect "the traced reads fetch nothing more" "$fetched" "$(stat_of "$mnt" fetched_blocks)"
hits=$(stat_of "$mnt" prefetch_hits)
if ((hits * 10 >= want * 9)); then pass "$hits of $want blocks read from the download-ahead"; else fail "only $hits of $want prefetch hits"; fi
expect "no read errors" 0 "$(stat_of "$mnt" read_errors)"
hc_umount "$mnt"

log "--profile FILE instead of the index's, and --prefetch off"
head -n 10 "$work/trace" >"$work/short"
hc_mount mnt "$S" -r 0 --profile "$work/short"
wait_prefetch "$mnt" || true
if (($(stat_of "$mnt" prefetch_planned) <= 10)); then pass "--profile: $(stat_of "$mnt" prefetch_planned) blocks planned"; else fail "--profile: $(stat_of "$mnt" prefetch_planned) planned"; fi
hc_umount "$mnt"
hc_mount mnt "$S" -r 0 -P off
expect "--prefetch off plans nothing" 0 "$(stat_of "$mnt" prefetch_planned)"
expect "--prefetch off fetches nothing" 0 "$(stat_of "$mnt" fetched_blocks)"
hc_umount "$mnt"

log "fill with a disk cache: the server may go away"
serve_nginx "$work/store" T
hc_mount mnt "$T" -r 0 -P fill -C "$work/cache"
if wait_prefetch "$mnt"; then pass "fill done: $(stat_of "$mnt" prefetch_blocks) blocks in $(stat_of "$mnt" prefetch_ms) ms"; else fail "fill: $(stat_of "$mnt" prefetch_left) left"; fi
kill "$T_PID"
wait "$T_PID" 2>/dev/null || true
got=$(set -o pipefail; dd if="$mnt/root" bs=1M status=none | sha256sum) || got="read failed"
expect "whole image with the server gone" "$FIX_SHA" "${got%% *}"
hc_umount "$mnt"

log "--prefetch-rate caps the download-ahead"
hc_mount mnt "$S" -r 0 -P fill --prefetch-rate 4M --prefetch-mem 64M
sleep 3
bytes=$(stat_of "$mnt" prefetch_bytes)
ms=$(stat_of "$mnt" prefetch_ms)
# 4 MB/s for the time it ran, plus what the transfers in flight may
# already hold: a generous bound, it is the order of magnitude that counts.
limit=$((4 * 1048576 * (ms + 1000) / 1000 + 12 * 131072))
if ((bytes > 0 && bytes <= limit)); then pass "$bytes bytes in $ms ms (cap 4M/s)"; else fail "$bytes bytes in $ms ms, over $limit"; fi
if (($(stat_of "$mnt" prefetch_mem_bytes) <= 64 * 1048576)); then pass "memory store within --prefetch-mem"; else fail "memory store $(stat_of "$mnt" prefetch_mem_bytes) bytes"; fi
hc_umount "$mnt"

log "bad profiles are refused"
printf '1\n2\nthree\n' >"$work/bad"
if "$HCLOOP" mount --profile "$work/bad" "$S" root "$work" 2>"$work/err"; then
	fail "a bad profile was accepted"
else
	expect "bad profile message" "hcloop: error: profile $work/bad: line 3 is not a block number" "$(cat "$work/err")"
fi
if "$HCLOOP" make -q --profile "$work/missing" "$FIX_IMAGE" "$work/store" root 1 2>"$work/err"; then
	fail "a missing profile was accepted"
else
	expect "missing profile message" "hcloop: error: profile $work/missing: No such file or directory" "$(cat "$work/err")"
fi
finish
