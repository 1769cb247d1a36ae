#!/bin/bash
# The disk cache: warm it, stop the server, remount and read the whole
# image with no network; damaged cache files are noticed and refetched;
# the size bound holds.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires fusermount3 nginx

fixture_load
work=
tmpdir_make work
store_make "$work/store"
cache=$work/cache
url='' url_PID=''
serve_nginx "$work/store" url

mnt=
hc_mount mnt "$url" --cache-dir "$cache"
expect "warm-up read" "$FIX_SHA" "$(sha256sum <"$mnt/root" | cut -d' ' -f1)"
stored=$(stat_of "$mnt" fetched_blocks)
hc_umount "$mnt"

kill "$url_PID"
wait "$url_PID" 2>/dev/null || true
if curl -s -o /dev/null "$url/"; then fail "server still answers"; fi

log "offline: the server is gone"
# Warnings before the mount is up go to the command's standard error.
hc_mount mnt "$url" --cache-dir "$cache" -t 1 -R 0 2>"$work/offline.log"
expect "offline: whole image from the cache" "$FIX_SHA" "$(sha256sum <"$mnt/root" | cut -d' ' -f1)"
expect "offline: nothing fetched" 0 "$(stat_of "$mnt" fetched_blocks)"
expect "offline: every block a disk-cache hit" "$stored" "$(stat_of "$mnt" disk_hits)"
if grep -q "using the cached index" "$work/offline.log"; then
	pass "offline: says it uses the cached index"
else
	fail "offline: no word of the cached index: $(cat "$work/offline.log")"
fi
hc_umount "$mnt"

log "a damaged cache file is dropped and fetched again"
serve_nginx "$work/store" url
victim=$(find "$cache/blocks" -type f -size +1k | head -n 1)
printf 'garbage' | dd of="$victim" bs=1 seek=10 conv=notrunc status=none
hc_mount mnt "$url" --cache-dir "$cache" --log "$work/damaged.log"
expect "damaged cache: whole image right" "$FIX_SHA" "$(sha256sum <"$mnt/root" | cut -d' ' -f1)"
expect "damaged cache: one damaged file seen" 1 "$(stat_of "$mnt" disk_damaged)"
expect "damaged cache: one block refetched" 1 "$(stat_of "$mnt" fetched_blocks)"
hc_umount "$mnt"

log "a relative cache directory (the daemon changes to /)"
mkdir "$work/m-rel"
(cd "$work" && "$HCLOOP" mount -C rel-cache "$url" root "$work/m-rel" 2>"$work/rel.log") ||
	fail "mount with a relative cache dir: $(cat "$work/rel.log")"
cleanup_add "hc_umount '$work/m-rel'"
expect "relative cache dir: image right" "$FIX_SHA" "$(sha256sum <"$work/m-rel/root" | cut -d' ' -f1)"
expect "relative cache dir: every block stored" "$stored" \
	"$(find "$work/rel-cache/blocks" -type f | wc -l)"
hc_umount "$work/m-rel"

log "the size bound"
small=$work/small-cache
hc_mount mnt "$url" --cache-dir "$small" --cache-size 8M
expect "bounded cache: image right" "$FIX_SHA" "$(sha256sum <"$mnt/root" | cut -d' ' -f1)"
used=$(find "$small/blocks" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
if ((used <= 8 * 1024 * 1024 && used > 4 * 1024 * 1024)); then
	pass "bounded cache: $used bytes on disk, bound 8 MiB"
else
	fail "bounded cache: $used bytes on disk, bound 8 MiB"
fi
if (($(stat_of "$mnt" disk_evictions) > 0)); then pass "bounded cache: evicted"; else
	fail "bounded cache: no evictions"; fi
hc_umount "$mnt"
finish
