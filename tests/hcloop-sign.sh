#!/bin/bash
# Signed indexes and no silent downgrade, over real mounts of the fixture
# served by nginx: keygen; make --sign; a signed index mounts with its key
# and reads right; an unsigned one, one signed by another key and one
# altered after signing (trailer and latest pointer made right again, so
# only the signature can tell) are each refused with their own message;
# with --cache-dir, latest leading back to an older serial is refused and
# --version rolls back on purpose; an older version made again becomes the
# latest with the next serial (the key needed again); cached indexes are
# checked offline too.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires fusermount3 nginx python3

fixture_load
work=
tmpdir_make work

# refused WHAT PATTERN URL [mount options]: the mount fails with status 1
# and PATTERN in its message.
refused() {
	local what=$1 pattern=$2 url=$3 mnt rc
	shift 3
	tmpdir_make mnt
	rc=$(status "$HCLOOP" mount "$@" "$url" root "$mnt")
	if mountpoint -q "$mnt"; then
		hc_umount "$mnt"
		fail "$what: mounted"
		return
	fi
	expect "$what: exit status" 1 "$rc"
	says "$what: says why" "$pattern"
}

# alter FILE: the index's creation time changed, its trailer made right
# again (cloop/indexfile.py reads where from FORMAT.md).
alter() { python3 "$REPO/cloop/indexfile.py" tamper "$1" >/dev/null; }

# point_latest STORE VERSION SERIAL: the latest pointer at that index.
point_latest() {
	printf '%s %s %s\n' "$2" "$3" "$(sha256sum <"$1/index/root/$2" | cut -d' ' -f1)" >"$1/index/root/latest"
}

log "keygen"
expect "keygen exits 0" 0 "$(status "$HCLOOP" keygen "$work/release")"
key_id=$(sed -n 's/^key ID: //p' "$work/out")
expect "keygen prints a 16-digit key ID" 16 "${#key_id}"
expect "secret key mode 0600" 600 "$(stat -c %a "$work/release.sec")"
expect "public key is one line" "hcloop-ed25519-public" "$(cut -d' ' -f1 "$work/release.pub")"
cp "$work/release.sec" "$work/sec.before"
expect "keygen over an existing key fails" 1 "$(status "$HCLOOP" keygen "$work/release")"
says "keygen refuses to replace" "refusing to replace"
if cmp -s "$work/release.sec" "$work/sec.before"; then pass "the secret key is untouched"; else
	fail "keygen replaced the secret key"; fi
expect "keygen of another key" 0 "$(status "$HCLOOP" keygen "$work/other")"
other_id=$(sed -n 's/^key ID: //p' "$work/out")
expect "keygen without NAME: usage error" 2 "$(status "$HCLOOP" keygen)"

log "make --sign"
store=$work/store
store_make "$store"
expect "info of an unsigned index" 0 "$(status "$HCLOOP" info "$store" root)"
says "info says it is unsigned" "^signature: *none (unsigned index)"
expect "make --sign of the existing version 1" 0 \
	"$(status "$HCLOOP" make -q --sign "$work/release.sec" "$FIX_IMAGE" "$store" root 1)"
expect "latest still version 1, serial 1" "1 1" "$(cut -d' ' -f1,2 "$store/index/root/latest")"
expect "make --sign with a public key fails" 1 \
	"$(status "$HCLOOP" make -q --sign "$work/release.pub" "$FIX_IMAGE" "$store" root 1)"
says "a public key for --sign is named" "release.pub: this is a public key"
expect "make --sign with another key needs --force" 1 \
	"$(status "$HCLOOP" make -q --sign "$work/other.sec" "$FIX_IMAGE" "$store" root 1)"
says "another key's refusal names the signer" "already signed by key $key_id"
expect "info --pubkey" 0 "$(status "$HCLOOP" info --pubkey "$work/release.pub" "$store" root)"
says "info shows the verified signature" "signature: *Ed25519, key $key_id (verified)"
expect "verify --pubkey" 0 "$(status "$HCLOOP" verify -q --pubkey "$work/release.pub" "$store" root)"
expect "verify --pubkey with the other key fails" 1 \
	"$(status "$HCLOOP" verify -q --pubkey "$work/other.pub" "$store" root)"
says "verify: the other key refused" "signed by key $key_id, not by the trusted key $other_id"
cp "$FIX_IMAGE" "$work/v2.img"
dd if=/dev/urandom of="$work/v2.img" bs=128K seek=700 count=8 conv=notrunc status=none
v2_sha=$(sha256sum <"$work/v2.img" | cut -d' ' -f1)

url='' url_PID=''
serve_nginx "$store" url

log "a signed index mounts with its key"
cache=$work/cache
mnt=
hc_mount mnt "$url" --pubkey "$work/release.pub" --cache-dir "$cache"
expect "signed version 1: whole image right" "$FIX_SHA" "$(whole_sha "$mnt")"
hc_umount "$mnt"
expect "the cache remembers serial 1" "1 1" "$(cat "$cache/seen/root")"

log "refusals, each with its own message"
plain=$work/plain
store_make "$plain"
purl=''
serve_nginx "$plain" purl
refused "unsigned index" "index/root/1 is not signed, but --pubkey asks for a signature by key $key_id" \
	"$purl" --pubkey "$work/release.pub"
says_not "unsigned: not called a bad signature" "bad signature"
refused "another key" "is signed by key $key_id, not by the trusted key $other_id" \
	"$url" --pubkey "$work/other.pub"
says_not "another key: not called unsigned" "not signed"
# An altered copy of the index: the creation time changed, the trailer and
# the latest pointer's digest made right. It shares the blocks.
alt=$work/altered
mkdir -p "$alt/index"
ln -s "$store/blocks" "$alt/blocks"
cp -r "$store/index/root" "$alt/index/root"
alter "$alt/index/root/1"
# The byte FORMAT.md's table names is the one hcloop reads as the time.
created() { "$HCLOOP" info --file "$1" | sed -n 's/^created: *//p'; }
if [[ $(created "$store/index/root/1") != "$(created "$alt/index/root/1")" ]]; then
	pass "indexfile.py altered the creation time hcloop reads"
else
	fail "indexfile.py: the creation time hcloop reads is unchanged ($(created "$alt/index/root/1"))"
fi
point_latest "$alt" 1 1
aurl=''
serve_nginx "$alt" aurl
hc_mount mnt "$aurl"
expect "altered index without --pubkey: mounts (only the signature can tell)" \
	"$FIX_SHA" "$(whole_sha "$mnt")"
hc_umount "$mnt"
refused "altered index" "has a bad signature by key $key_id: altered after it was signed" \
	"$aurl" --pubkey "$work/release.pub"
says_not "altered: not called another key" "trusted key"
expect "info --file of the altered index with --pubkey fails" 1 \
	"$(status "$HCLOOP" info --pubkey "$work/release.pub" --file "$alt/index/root/1")"
says "info --file: bad signature" "bad signature"
expect "a secret key as --pubkey fails" 1 \
	"$(status "$HCLOOP" mount --pubkey "$work/release.sec" "$url" root "$work")"
says "a secret key as --pubkey is named" "this is a secret key, a public one is needed"

log "no silent downgrade"
expect "make --sign version 2" 0 \
	"$(status "$HCLOOP" make -q --sign "$work/release.sec" "$work/v2.img" "$store" root 2)"
hc_mount mnt "$url" --pubkey "$work/release.pub" --cache-dir "$cache"
expect "version 2: whole image right" "$v2_sha" "$(whole_sha "$mnt")"
hc_umount "$mnt"
expect "the cache remembers serial 2" "2 2" "$(cat "$cache/seen/root")"
# The store (or a mirror) goes back to version 1.
point_latest "$store" 1 1
refused "latest back to serial 1" \
	"latest names version 1 (serial 1), older than version 2 (serial 2) accepted before: refusing the downgrade (--version 1 rolls back deliberately)" \
	"$url" --pubkey "$work/release.pub" --cache-dir "$cache"
tmpdir_make mnt
if "$HCLOOP" mount --version 1 --pubkey "$work/release.pub" --cache-dir "$cache" "$url" root "$mnt" \
	2>"$work/rollback.log"; then
	cleanup_add "hc_umount '$mnt'"
	expect "--version 1: whole image right" "$FIX_SHA" "$(whole_sha "$mnt")"
	hc_umount "$mnt"
else
	fail "--version 1 rollback refused: $(cat "$work/rollback.log")"
fi
if grep -q "rolling back root to version 1 serial 1, older than serial 2 seen" "$work/rollback.log"; then
	pass "the rollback is warned about"
else
	fail "no rollback warning: $(cat "$work/rollback.log")"
fi
expect "the remembered serial stays 2" "2 2" "$(cat "$cache/seen/root")"
refused "latest at serial 1 after the rollback" "refusing the downgrade" \
	"$url" --pubkey "$work/release.pub" --cache-dir "$cache"
point_latest "$store" 2 2

log "an older version made again is the latest, with the next serial"
expect "make of the signed version 1 again without a key fails" 1 \
	"$(status "$HCLOOP" make -q "$FIX_IMAGE" "$store" root 1)"
says "and says why" "is signed and older than the latest, 2: give --sign KEY"
expect "make --sign of version 1 again" 0 \
	"$(status "$HCLOOP" make -q --sign "$work/release.sec" "$FIX_IMAGE" "$store" root 1)"
expect "latest: version 1, serial 3" "1 3" "$(cut -d' ' -f1,2 "$store/index/root/latest")"
hc_mount mnt "$url" --pubkey "$work/release.pub" --cache-dir "$cache"
expect "a client that accepted serial 2 takes it: whole image right" "$FIX_SHA" "$(whole_sha "$mnt")"
hc_umount "$mnt"
expect "the cache remembers serial 3" "3 1" "$(cat "$cache/seen/root")"
expect "make --sign of version 2 again" 0 \
	"$(status "$HCLOOP" make -q --sign "$work/release.sec" "$work/v2.img" "$store" root 2)"
expect "latest: version 2, serial 4" "2 4" "$(cut -d' ' -f1,2 "$store/index/root/latest")"

log "the cached index is checked too"
hc_mount mnt "$url" --pubkey "$work/release.pub" --cache-dir "$cache"
hc_umount "$mnt"
kill "$url_PID"
wait "$url_PID" 2>/dev/null || true
refused "offline, another key" "the cached index/root/2 is signed by key $key_id" \
	"$url" --pubkey "$work/other.pub" --cache-dir "$cache" -t 1 -R 0
alter "$cache/index/root/2"
refused "offline, altered cached index" "the cached index/root/2 has a bad signature" \
	"$url" --pubkey "$work/release.pub" --cache-dir "$cache" -t 1 -R 0
finish
