#!/bin/bash
# streamcd's one pipeline. Each stage can run alone: ./build.sh STAGE...
# Run ./build.sh --help for the list.
set -eu

TOP=$(cd "$(dirname "$0")" && pwd)
OUT=${STREAMCD_OUT:-$TOP/out}

# Debian 12 packages the pipeline and the tests use.
PACKAGES=(
	build-essential pkg-config clang clang-format shellcheck
	libfuse3-dev fuse3 libcurl4-openssl-dev libzstd-dev zlib1g-dev zstd
	nginx-light busybox casync python3 curl e2fsprogs util-linux openssl
)

usage() {
	cat <<'USAGE'
Usage: ./build.sh [STAGE...]

Stages (run in the order given; default: deps hcloop demo):
  deps     install the Debian 12 packages everything here needs (apt-get)
  hcloop   build the streaming block driver, cloop/build/hcloop
  demo     the main job today: put an ext4 image of a generated tree into an
           hcloop store under out/store, serve it over HTTP on 127.0.0.1 with
           busybox httpd, mount it with hcloop, loop-mount the filesystem
           read-only, check it against the source and print the counters
  clean    remove out/ and the build directories

The Xen, kernel, root filesystem, initrd and ISO stages come with issue 4.
Logs: out/log/STAGE.log. Environment: STREAMCD_OUT (default ./out).
USAGE
}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# run_logged STAGE CMD...: output into the stage's log; on failure show its tail.
run_logged() {
	local stage=$1
	shift
	mkdir -p "$OUT/log"
	if ! "$@" >"$OUT/log/$stage.log" 2>&1; then
		tail -n 30 "$OUT/log/$stage.log" >&2
		die "stage $stage failed; full log: $OUT/log/$stage.log"
	fi
}

stage_deps() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		log "deps: all ${#PACKAGES[@]} packages present"
		return 0
	fi
	[[ $(id -u) == 0 ]] || die "deps: installing ${missing[*]} needs root"
	log "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	run_logged deps sh -c "apt-get update && apt-get install -y --no-install-recommends $(printf '%q ' "${missing[@]}")"
}

stage_hcloop() {
	log "hcloop: building cloop/build/hcloop"
	run_logged hcloop make -C "$TOP/cloop" -j"$(nproc)"
}

# Runs from the EXIT trap, where set -e would stop at the first step that
# has nothing to do.
demo_cleanup() {
	if mountpoint -q "$1"; then umount "$1" || true; fi
	if mountpoint -q "$2"; then fusermount3 -u "$2" || true; fi
	kill "$3" 2>/dev/null || true
}

stage_demo() {
	local work="$OUT/demo" port mnt loopdev lmnt httpd_pid rc=0
	[[ $(id -u) == 0 ]] || die "demo: FUSE, loop devices and mounts need root"
	[[ -x $TOP/cloop/build/hcloop ]] || stage_hcloop
	demo_cleanup "$work/fs" "$work/mnt" "" # an interrupted earlier run
	rm -rf "$work"
	mkdir -p "$work"
	log "demo: generating a tree and a 128 MiB ext4 image"
	python3 "$TOP/tests/mktree.py" "$work/tree" 1500
	truncate -s 128M "$work/root.ext4"
	mkfs.ext4 -q -F -d "$work/tree" "$work/root.ext4"
	log "demo: hcloop make into $OUT/store"
	"$TOP/cloop/build/hcloop" make "$work/root.ext4" "$OUT/store" demo
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	: >"$work/httpd.conf"
	busybox httpd -f -p "127.0.0.1:$port" -h "$OUT/store" -c "$work/httpd.conf" &
	httpd_pid=$!
	mnt=$work/mnt
	lmnt=$work/fs
	mkdir -p "$mnt" "$lmnt"
	# shellcheck disable=SC2064 # expand now: these are this run's names
	trap "demo_cleanup '$lmnt' '$mnt' $httpd_pid" EXIT
	sleep 0.5
	log "demo: hcloop mount http://127.0.0.1:$port demo $mnt"
	"$TOP/cloop/build/hcloop" mount "http://127.0.0.1:$port" demo "$mnt"
	loopdev=$(losetup -r -f --show "$mnt/demo")
	mount -o ro "$loopdev" "$lmnt"
	if diff -r -x lost+found "$work/tree" "$lmnt" >/dev/null; then
		log "demo: the filesystem streamed over HTTP equals its source tree"
	else
		log "demo: MISMATCH between the mounted filesystem and its source"
		rc=1
	fi
	df -h "$lmnt"
	cat "$mnt/.stats"
	# udev may still be probing the new loop device: retry briefly.
	for _ in 1 2 3 4 5 6 7 8 9 10; do umount "$lmnt" 2>/dev/null && break; sleep 0.5; done
	losetup -d "$loopdev"
	return "$rc"
}

stage_clean() {
	rm -rf "$OUT"
	make -C "$TOP/cloop" clean >/dev/null
}

main() {
	local stages=("$@") s
	((${#stages[@]})) || stages=(deps hcloop demo)
	for s in "${stages[@]}"; do
		case $s in
		-h | --help | help) usage; return 0 ;;
		deps | hcloop | demo | clean) "stage_$s" ;;
		*) usage >&2; die "unknown stage: $s" ;;
		esac
	done
}

main "$@"
