#!/bin/bash
# The whole path with real web servers: an ext4 image of a few thousand
# files goes into a store, is served by python's http.server, busybox httpd
# and nginx in turn, mounted with hcloop, and must come back bit for bit:
# same SHA-256, same tree through a read-only loop mount, clean fsck.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires fusermount3 losetup e2fsck diff nginx busybox

fixture_load
work=
tmpdir_make work
store_make "$work/store"

check_server() {
	local kind=$1 url='' mnt='' loopdev lmnt=''
	"serve_$kind" "$work/store" url
	hc_mount mnt "$url"
	expect "$kind: image size" "$(stat -c %s "$FIX_IMAGE")" "$(stat -c %s "$mnt/root")"
	expect "$kind: SHA-256 of the whole image" "$FIX_SHA" "$(sha256sum <"$mnt/root" | cut -d' ' -f1)"
	# Right after one full read: later the kernel may drop pages and
	# read them again, which is fine without a disk cache.
	expect "$kind: every unique block fetched once" \
		"$("$HCLOOP" info "$url" root | awk '/^stored:/ { print $2 }')" \
		"$(stat_of "$mnt" fetched_blocks)"
	loopdev=$(losetup -r -f --show "$mnt/root")
	cleanup_add "losetup -d $loopdev 2>/dev/null"
	if e2fsck -fn "$loopdev" >"$work/fsck.$kind" 2>&1; then
		pass "$kind: e2fsck -fn clean"
	else
		fail "$kind: e2fsck -fn: $(tail -3 "$work/fsck.$kind")"
	fi
	tmpdir_make lmnt
	mount -o ro "$loopdev" "$lmnt"
	if diff -r --no-dereference -x lost+found "$FIX_TREE" "$lmnt" >"$work/diff.$kind" 2>&1; then
		pass "$kind: loop-mounted tree equals the source (diff -r)"
	else
		fail "$kind: diff -r: $(head -3 "$work/diff.$kind")"
	fi
	umount "$lmnt"
	losetup -d "$loopdev"
	expect "$kind: no read errors" 0 "$(stat_of "$mnt" read_errors)"
	hc_umount "$mnt"
	if "$HCLOOP" verify -q "$url" root >"$work/verify.$kind"; then
		pass "$kind: hcloop verify over HTTP"
	else
		fail "$kind: hcloop verify: $(tail -2 "$work/verify.$kind")"
	fi
	kill "$(eval echo "\$url_PID")" 2>/dev/null || true
}

for kind in python busybox nginx; do
	log "server: $kind"
	check_server "$kind"
done
finish
