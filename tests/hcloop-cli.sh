#!/bin/bash
# The command line as a user meets it: help, usage errors and their exit
# codes, clear failures, cheap re-runs, versions and rollback by name,
# info/verify, daemon life (foreground, SIGTERM, --rootfs marking).
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires fusermount3 nginx

fixture_load
work=
tmpdir_make work

log "help and usage errors"
expect "--help exits 0" 0 "$(status "$HCLOOP" --help)"
says "--help lists the commands" "make .*IMAGE STORE_DIR NAME"
for sub in make mount info verify; do
	expect "$sub --help exits 0" 0 "$(status "$HCLOOP" "$sub" --help)"
done
expect "no command: usage error" 2 "$(status "$HCLOOP")"
expect "unknown command: usage error" 2 "$(status "$HCLOOP" frobnicate)"
says "unknown command is named" "unknown command: frobnicate"
expect "make without arguments: usage error" 2 "$(status "$HCLOOP" make)"
expect "bad block size: usage error" 2 "$(status "$HCLOOP" make -b 3000 "$FIX_IMAGE" "$work/s" root)"
expect "bad compression: usage error" 2 "$(status "$HCLOOP" make -c lzma "$FIX_IMAGE" "$work/s" root)"
expect "mount without mountpoint: usage error" 2 "$(status "$HCLOOP" mount http://127.0.0.1:1 root)"

log "make"
expect "missing image fails" 1 "$(status "$HCLOOP" make "$work/nope.img" "$work/s" root)"
says "missing image is named" "nope.img: No such file"
expect "bad image name fails" 1 "$(status "$HCLOOP" make "$FIX_IMAGE" "$work/s" "a/b")"
store=$work/store
expect "make exits 0" 0 "$(status "$HCLOOP" make "$FIX_IMAGE" "$store" root v1)"
says "summary: blocks" "blocks .*unique.*zero"
says "summary: compression" "before compression.*after"
unique=$(awk '$1 == "blocks" { print $3 }' "$work/out" | tr -d '(')
files=$(find "$store/blocks" -type f | wc -l)
expect "one file per unique block, none for zero blocks" "$unique" "$files"
expect "no temporary files left" 0 "$(find "$store" -name '*.tmp.*' | wc -l)"
expect "latest points at v1" v1 "$(cut -d' ' -f1 "$store/index/root/latest")"
expect "re-run of the same version exits 0" 0 "$(status "$HCLOOP" make "$FIX_IMAGE" "$store" root v1)"
says "re-run writes nothing" "written *0 blocks"
says "re-run finds every block in the store" "shared *$unique blocks"
# A second version: the same image with one region changed.
cp "$FIX_IMAGE" "$work/v2.img"
dd if=/dev/urandom of="$work/v2.img" bs=128K seek=1000 count=8 conv=notrunc status=none
expect "make v2 exits 0" 0 "$(status "$HCLOOP" make "$work/v2.img" "$store" root v2)"
says "v2 shares blocks with v1" "shared *$((unique - 1)) blocks\|shared *$((unique - 2)) blocks\|shared *[1-9][0-9]* blocks"
says "v2 writes only the changed blocks" "written *[0-9] blocks"
expect "latest points at v2" v2 "$(cut -d' ' -f1 "$store/index/root/latest")"
expect "v1 with other contents is refused" 1 "$(status "$HCLOOP" make "$work/v2.img" "$store" root v1)"
says "refusal says why" "already exists with other contents"
expect "serial numbers grow" "2" "$(cut -d' ' -f2 "$store/index/root/latest")"
expect "no version given: next serial" 0 "$(status "$HCLOOP" make -q "$work/v2.img" "$store" root)"
expect "it is called 3" 3 "$(cut -d' ' -f1 "$store/index/root/latest")"

log "info and verify"
expect "info exits 0" 0 "$(status "$HCLOOP" info "$store" root v1)"
says "info: version" "version: *v1 (serial 1)"
says "info: size" "size: *268435456 bytes"
expect "info of a missing image fails" 1 "$(status "$HCLOOP" info "$store" nothere)"
says "info: missing image named" 'no image "nothere"'
expect "info --file" 0 "$(status "$HCLOOP" info --file "$store/index/root/v2")"
# --cache-dir: what a mount with that disk cache would still download. A
# cache holding v1's block files (laid out like a store) lacks only the
# blocks v2 changed.
mkdir -p "$work/cache"
cp -a "$store/blocks" "$work/cache/"
expect "info --cache-dir of an empty cache" 0 "$(status "$HCLOOP" info --cache-dir "$work/nocache" "$store" root v1)"
says "empty cache: every block file to download" "uncached: *$unique block files"
mapfile -t v1_files < <("$HCLOOP" info --blocks "$store" root v1 | awk '$1 == "block" && $2 ~ /^[0-9]+$/ && $5 != "-" && !seen[$5]++ { print $5 }')
for f in "${v1_files[@]:0:5}"; do rm "$work/cache/$f"; done
truncate -s 1 "$work/cache/${v1_files[5]}"
expect "info --cache-dir of a partial cache" 0 "$(status "$HCLOOP" info --cache-dir "$work/cache" "$store" root v1)"
says "partial cache: the missing and the damaged files" "uncached: *6 block files"
# Offline (a CD booted with no network lists its guests so): the index a
# mount with that cache took comes from the cache, which is only read.
mntc=''
hc_mount mntc "$store" -C "$work/cache2" -V v1
hc_umount "$mntc"
find "$work/cache2" -printf '%P %s %T@\n' | sort >"$work/cache2.before"
expect "info --cache-dir, no server: from the cached index" 0 \
	"$(status "$HCLOOP" info -t 2 --cache-dir "$work/cache2" "http://127.0.0.1:9" root v1)"
says "no server: the cached index used" "using the cached index"
says "no server: what is still to download" "uncached: *[0-9]* block files"
find "$work/cache2" -printf '%P %s %T@\n' | sort >"$work/cache2.after"
expect "info --cache-dir writes nothing into the cache" "" "$(diff "$work/cache2.before" "$work/cache2.after")"
expect "info --cache-dir, no server, no cached index: fails" 1 \
	"$(status "$HCLOOP" info -t 2 --cache-dir "$work/cache2" "http://127.0.0.1:9" root v2)"
printf 'x' | dd of="$work/broken-index" bs=1 count=1 status=none
cp "$store/index/root/v2" "$work/broken-index"
flip_bit "$work/broken-index" 5000
expect "info of a damaged index fails" 1 "$(status "$HCLOOP" info --file "$work/broken-index")"
says "damaged index: says why" "checksum mismatch"
expect "verify of a good store" 0 "$(status "$HCLOOP" verify -q "$store" root v1)"
victim=$(block_path "$store" "$(data_block "$store" 50)")
cp -a "$store" "$work/bad-store"
printf 'zz' | dd of="$work/bad-store/$victim" bs=1 seek=3 conv=notrunc status=none
expect "verify of a damaged store fails" 1 "$(status "$HCLOOP" verify -q "$work/bad-store" root v1)"
says "verify names the bad block" "BAD block [0-9]* (${victim}).*SHA-256"

log "mount: errors, versions, daemon life"
url=''
serve_nginx "$store" url
mkdir -p "$work/m"
expect "unknown image: mount fails" 1 "$(status "$HCLOOP" mount "$url" nothere "$work/m")"
says "unknown image is named" 'no image "nothere"'
expect "unknown version: mount fails" 1 "$(status "$HCLOOP" mount -V v9 "$url" root "$work/m")"
says "unknown version is named" 'has no version "v9"'
dead=http://127.0.0.1:$(free_port)
expect "dead server: mount fails" 1 "$(status "$HCLOOP" mount -t 1 -R 1 "$dead" root "$work/m")"
says "dead server: says so" "Couldn't connect"
expect "nothing left mounted" 1 "$(mountpoint -q "$work/m" && echo 0 || echo 1)"
mnt=
hc_mount mnt "$url" -V v1
expect "--version v1: the v1 image (rollback by name)" "$FIX_SHA" \
	"$(sha256sum <"$mnt/root" | cut -d' ' -f1)"
if [[ $(status sh -c "echo x >> '$mnt/root'") != 0 ]]; then pass "write access refused"; else
	fail "write access allowed"; fi
says "write access: read-only" "Read-only file system"
hc_umount "$mnt"
hc_mount mnt "$url" --rootfs
pid=$(pgrep -f "hcloop mount.*$mnt" || true)
[[ -n $pid ]] || pid=$(pgrep -f "$mnt" | head -n 1)
expect "--rootfs: argv[0] starts with @" "@" "$(head -c 1 "/proc/$pid/cmdline")"
expect "latest is v3" 3 "$(stat_of "$mnt" version)"
kill -TERM "$pid"
for _ in $(seq 50); do mountpoint -q "$mnt" || break; sleep 0.1; done
expect "SIGTERM unmounts" 1 "$(mountpoint -q "$mnt" && echo 0 || echo 1)"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
expect "SIGTERM ends the daemon" 1 "$(kill -0 "$pid" 2>/dev/null && echo 0 || echo 1)"
"$HCLOOP" mount -f "$url" root "$mnt" 2>"$work/fg.log" &
fg=$!
for _ in $(seq 50); do mountpoint -q "$mnt" && break; sleep 0.1; done
expect "--foreground mounts" 0 "$(mountpoint -q "$mnt" && echo 0 || echo 1)"
kill -TERM "$fg"
rc=0
wait "$fg" || rc=$?
expect "--foreground: SIGTERM, exit 0" 0 "$rc"
expect "--foreground: unmounted" 1 "$(mountpoint -q "$mnt" && echo 0 || echo 1)"
finish
