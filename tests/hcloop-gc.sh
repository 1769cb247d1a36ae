#!/bin/bash
# hcloop gc on a store of two versions of the fixture: --dry-run removes
# nothing; gc --keep 1 removes the old index and exactly the blocks only it
# used, while a mount of the kept version served by nginx reads the whole
# image during the run; young unreferenced blocks (a make still at work)
# and young temporaries are left, old temporaries go.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires fusermount3 nginx

fixture_load
work=
tmpdir_make work
store=$work/store
store_make "$store"

# blocks_of VERSION: the block files an index names, sorted.
blocks_of() {
	"$HCLOOP" info --blocks "$store" root "$1" | awk '$1 == "block" && $2 ~ /^[0-9]+$/ && $5 != "-" { print $5 }' | sort -u
}
listing() { (cd "$store" && find . -type f | sort); }

# Everything an hour and more old, as a store that has been around; then a
# second version, whose make renews the blocks it shares with the first.
find "$store" -type f -exec touch -d '2 hours ago' {} +
cp "$FIX_IMAGE" "$work/v2.img"
dd if=/dev/urandom of="$work/v2.img" bs=128K seek=300 count=40 conv=notrunc status=none
v2_sha=$(sha256sum <"$work/v2.img" | cut -d' ' -f1)
expect "make version 2" 0 "$(status "$HCLOOP" make -q "$work/v2.img" "$store" root 2)"
blocks_of 1 >"$work/b1"
blocks_of 2 >"$work/b2"
comm -23 "$work/b1" "$work/b2" >"$work/only1"
only1=$(wc -l <"$work/only1")
if ((only1 >= 30)); then pass "version 1 has $only1 blocks of its own"; else
	fail "version 1 has only $only1 blocks of its own"; fi

# What a concurrent make leaves before its index is written: a young block
# no index names, a young temporary; and an old temporary of a killed one.
young=$(printf 'young block' | sha256sum | cut -d' ' -f1)
printf 'young block' >"$store/blocks/${young:0:2}/$young"
printf 'partial' >"$store/blocks/00/cafe.tmp.123.0"
printf 'stale' >"$store/blocks/01/beef.tmp.456.0"
touch -d '3 hours ago' "$store/blocks/01/beef.tmp.456.0"

log "gc --dry-run"
listing >"$work/before"
expect "dry run exits 0" 0 "$(status "$HCLOOP" gc "$store" --keep 1 --dry-run)"
says "dry run: would remove index 1" "would remove index/root/1 (serial 1"
says "dry run: totals" "would remove 1 indexes (.*), $only1 blocks (.*), 1 temporaries"
listing >"$work/after"
if cmp -s "$work/before" "$work/after"; then pass "dry run removed nothing"; else
	fail "dry run removed: $(diff "$work/before" "$work/after" | head -n 5)"; fi

log "gc --keep 1 while a mount of version 2 reads the whole image"
url=''
serve_nginx "$store" url
mnt=
hc_mount mnt "$url"
# Read in paced 8 MiB steps, so the read is still going on when gc ends.
for i in $(seq 0 31); do
	dd if="$mnt/root" bs=1M skip=$((i * 8)) count=8 status=none
	sleep 0.02
done | sha256sum >"$work/read.sha" &
reader=$!
sleep 0.3
expect "gc exits 0" 0 "$(status "$HCLOOP" gc "$store" --keep 1)"
cat "$work/out"
if kill -0 "$reader" 2>/dev/null; then pass "gc ended while the mount was still reading"; else
	fail "the read was over before gc ended: the overlap is not tested"; fi
wait "$reader" || fail "the read failed"
expect "the read during gc: whole version 2 right" "$v2_sha" "$(cut -d' ' -f1 "$work/read.sha")"
expect "no read errors on the mount" 0 "$(stat_of "$mnt" read_errors)"
hc_umount "$mnt"

says "gc names the removed index" "removed index/root/1 (serial 1"
says "gc keeps version 2" "keep   index/root/2 (serial 2, latest)"
says "gc totals" "removed 1 indexes (.*), $only1 blocks (.*), 1 temporaries .*left 1 unused blocks younger"
expect "index 1 is gone" no "$([[ -e $store/index/root/1 ]] && echo yes || echo no)"
expect "index 2 and latest stay" "2 2" "$(cut -d' ' -f1,2 "$store/index/root/latest")"
(cd "$store" && find blocks -type f ! -name '*.tmp.*' | sort) >"$work/left"
grep -v "$young" "$work/left" >"$work/left-old" || true
if cmp -s "$work/left-old" "$work/b2"; then
	pass "the blocks left are exactly those of version 2 ($(wc -l <"$work/b2"))"
else
	fail "blocks left differ from version 2's: $(diff "$work/left-old" "$work/b2" | head -n 5)"
fi
expect "the young unreferenced block stays" yes "$([[ -e $store/blocks/${young:0:2}/$young ]] && echo yes || echo no)"
expect "the young temporary stays" yes "$([[ -e $store/blocks/00/cafe.tmp.123.0 ]] && echo yes || echo no)"
expect "the old temporary is gone" no "$([[ -e $store/blocks/01/beef.tmp.456.0 ]] && echo yes || echo no)"
expect "verify of the kept version" 0 "$(status "$HCLOOP" verify -q "$store" root)"

log "with --grace 0 the young leftovers go too"
expect "gc --grace 0" 0 "$(status "$HCLOOP" gc "$store" --keep 1 --grace 0)"
says "gc --grace 0 totals" "removed 0 indexes (.*), 1 blocks (.*), 1 temporaries"
expect "the young block is gone" no "$([[ -e $store/blocks/${young:0:2}/$young ]] && echo yes || echo no)"
expect "version 2 still verifies" 0 "$(status "$HCLOOP" verify -q "$store" root)"

log "usage"
expect "gc without --keep: usage error" 2 "$(status "$HCLOOP" gc "$store")"
expect "gc --keep 0: usage error" 2 "$(status "$HCLOOP" gc "$store" --keep 0)"
expect "gc of a missing store fails" 1 "$(status "$HCLOOP" gc "$work/nothing" --keep 1)"
says "gc of a missing store says why" "not an hcloop store"
finish
