# shellcheck shell=bash
# Shared pieces of the hcloop tests: the test image (built once, reused by
# every script) and mounting with cleanup. Source after lib.sh.
# shellcheck disable=SC2034 # FIX_* are for the sourcing scripts

REPO=$(cd "$TESTS_DIR/.." && pwd)
HCLOOP=${HCLOOP:-$REPO/cloop/build/hcloop}
FIXTURE=${STREAMCD_FIXTURE:-/var/tmp/streamcd-fixture}
FIXTURE_VERSION=2

# Sets FIX_TREE (the source tree), FIX_IMAGE (a 256 MiB ext4 image made
# from it with mkfs.ext4 -d) and FIX_SHA (the image's SHA-256).
fixture_load() {
	requires mkfs.ext4 python3 sha256sum
	[[ -x $HCLOOP ]] || make -s -C "$REPO/cloop"
	if [[ ! -f $FIXTURE/ok.$FIXTURE_VERSION ]]; then
		log "building the test image in $FIXTURE"
		rm -rf "$FIXTURE"
		mkdir -p "$FIXTURE"
		"$PYTHON" "$TESTS_DIR/mktree.py" "$FIXTURE/tree" 3000
		truncate -s 256M "$FIXTURE/image.ext4"
		# A fixed UUID and hash seed keep the image the same on every run.
		mkfs.ext4 -q -F -U 6b1f6a2e-4c1e-4d35-9d53-2006c0ffee00 \
			-E hash_seed=6b1f6a2e-4c1e-4d35-9d53-2006c0ffee01 \
			-d "$FIXTURE/tree" "$FIXTURE/image.ext4"
		sha256sum <"$FIXTURE/image.ext4" | cut -d' ' -f1 >"$FIXTURE/image.sha256"
		touch "$FIXTURE/ok.$FIXTURE_VERSION"
	fi
	FIX_TREE=$FIXTURE/tree
	FIX_IMAGE=$FIXTURE/image.ext4
	FIX_SHA=$(cat "$FIXTURE/image.sha256")
}

# store_make DIR: a store of the fixture image as "root", built once and
# copied, so that tests may damage their own copy.
store_make() {
	if [[ ! -f $FIXTURE/store.ok ]]; then
		rm -rf "$FIXTURE/store"
		"$HCLOOP" make -q "$FIX_IMAGE" "$FIXTURE/store" root
		touch "$FIXTURE/store.ok"
	fi
	cp -a "$FIXTURE/store" "$1"
}

# hc_mount VAR URL [hcloop mount options]: mounts image "root" on a new
# directory (put into VAR) and unmounts it at exit.
hc_mount() {
	local _var=$1 _url=$2 _mnt
	shift 2
	tmpdir_make _mnt
	"$HCLOOP" mount "$@" "$_url" root "$_mnt" || return 1
	cleanup_add "hc_umount $(printf %q "$_mnt")"
	printf -v "$_var" '%s' "$_mnt"
}

# Unmounts and waits until the daemon has let go of the mount point.
hc_umount() {
	local _
	mountpoint -q "$1" || return 0
	fusermount3 -u "$1" 2>/dev/null || umount -l "$1"
	for _ in $(seq 50); do
		mountpoint -q "$1" || return 0
		sleep 0.1
	done
	return 1
}

# whole_sha MNT: SHA-256 of the mounted image, read in 1 MiB pieces.
whole_sha() {
	local out
	out=$(set -o pipefail; dd if="$1/root" bs=1M status=none | sha256sum) || return 1
	echo "${out%% *}"
}

# stat_of MNT KEY: one counter from the mount's .stats file.
stat_of() {
	awk -v k="$2" '$1 == k { print $2 }' "$1/.stats"
}

# block_path STORE_URL N: the store path of block N ("-" for a zero block).
block_path() {
	"$HCLOOP" info --blocks "$1" root | awk -v n="$2" '$1 == "block" && $2 ~ /^[0-9]+$/ && $2 == n { print $5 }'
}

# First non-zero block at or after N.
data_block() {
	"$HCLOOP" info --blocks "$1" root |
		awk -v n="$2" '$1 == "block" && $2 ~ /^[0-9]+$/ && $2 >= n && $3 != "zero" { print $2; exit }'
}

# sha_range FILE BLOCK COUNT: SHA-256 of COUNT 128 KiB blocks from BLOCK
# (empty and non-zero status if the read fails).
sha_range() {
	local out
	out=$(set -o pipefail; dd if="$1" bs=128K skip="$2" count="$3" status=none | sha256sum) ||
		return 1
	echo "${out%% *}"
}

# status CMD...: CMD's exit status; its output is kept in $work/out ($work:
# the test's scratch directory), for says and says_not.
status() {
	local rc=0
	"$@" >"${work:?}/out" 2>&1 || rc=$?
	echo "$rc"
}
says() { # says WHAT PATTERN: the last command's output matches
	if grep -q -- "$2" "$work/out"; then pass "$1"; else fail "$1: no '$2' in: $(head -c 600 "$work/out")"; fi
}
says_not() { # says_not WHAT PATTERN: it does not
	if grep -q -- "$2" "$work/out"; then fail "$1: '$2' in: $(head -c 600 "$work/out")"; else pass "$1"; fi
}

# flip_bit FILE OFFSET: the byte at OFFSET with its low bit flipped. (Writing
# a fixed byte changes nothing when the byte already has that value, which
# for a signed index made with a fresh key is 1 run in 256.)
flip_bit() {
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); o = int(sys.argv[2]); f.seek(o); b = f.read(1)[0]; f.seek(o); f.write(bytes([b ^ 1]))' "$1" "$2"
}

# Counting test results: pass/fail print a line and count.
PASSED=0
FAILED=0
pass() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
expect() { # expect WHAT EXPECTED ACTUAL
	if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}
finish() {
	echo "$PASSED passed, $FAILED failed"
	[[ $FAILED == 0 ]]
}
