#!/bin/bash
# streamcd's one pipeline. Each stage can run alone: ./build.sh STAGE...
# Run ./build.sh --help for the list.
# Stages are called by name ("stage_$s"), which shellcheck cannot follow:
# shellcheck disable=SC2317
set -eu

TOP=$(cd "$(dirname "$0")" && pwd)
OUT=${STREAMCD_OUT:-$TOP/out}

# Debian 12 packages the pipeline and the tests use (libclang-rt-14-dev:
# clang's libFuzzer and sanitizer runtimes, only recommended by clang-14,
# for cloop/fuzz/; libvncserver-dev: dom0's streamcd-view; tesseract-ocr
# reads the PC's screen in the tests, console-setup-linux gives them a
# VGA font to read guests' text screens with, xorriso makes their CDs).
PACKAGES=(
	build-essential pkg-config clang libclang-rt-14-dev clang-format shellcheck
	libfuse3-dev fuse3 libcurl4-openssl-dev libzstd-dev zlib1g-dev zstd libsodium-dev
	nginx-light busybox casync python3 curl e2fsprogs util-linux openssl
	qemu-system-x86 ovmf cpio xz-utils gdb fdisk gdisk
	libvncserver-dev xorriso tesseract-ocr tesseract-ocr-eng console-setup-linux
)


# Stages are found, not listed: every *.stage.sh file in the project's
# folders is sourced, and each registers what it defines with
# stage_register NAME ORDER HELP. ORDER places the stage in the default run
# (./build.sh with no stage) and in --help; 0 keeps it out of the default
# run. The stage itself is the function stage_NAME (dashes as underscores).
declare -A STAGE_ORDER=() STAGE_HELP=()
stage_register() {
	STAGE_ORDER[$1]=$2
	STAGE_HELP[$1]=$3
}

# stage_names [default]: the stages in their order (only those of the
# default run with "default"); stages outside it come after, by name.
stage_names() {
	local s
	for s in "${!STAGE_ORDER[@]}"; do
		if ((STAGE_ORDER[$s])); then
			printf '%03d %s\n' "${STAGE_ORDER[$s]}" "$s"
		elif [[ ${1:-} != default ]]; then
			printf '999 %s\n' "$s"
		fi
	done | sort | cut -d' ' -f2
}

usage() {
	local s first=1 line
	printf 'Usage: ./build.sh [STAGE...] [--from DIR]\n       ./build.sh matrix [OPTIONS] [CASE|PATTERN...]\n\n'
	printf 'Builds streamcd and boots it. Stages run in the order given; the default,\n'
	printf '"./build.sh", is: %s\n' "$(stage_names default | tr '\n' ' ')"
	cat <<'USAGE'
(everything, then the demo boot). Every build stage is skipped when its
inputs are unchanged, and restored from the machine-wide cache
(STREAMCD_CACHE, default /var/cache/streamcd) when it built them before.

USAGE
	for s in $(stage_names); do
		first=1
		while IFS= read -r line; do
			if ((first)); then
				printf '  %-14s %s\n' "$s" "$line"
				first=0
			else
				printf '  %-14s %s\n' "" "$line"
			fi
		done <<<"${STAGE_HELP[$s]}"
	done
	cat <<'USAGE'

--from DIR: the guests stage takes the guest recipes' upstream artifacts
(release images of NetBSD, 9front, ...) from DIR instead of downloading
them; either way they are checked against the recipes' pinned hashes.

Logs: out/log/STAGE.log. Environment: STREAMCD_OUT (default ./out),
STREAMCD_CACHE ("" turns the machine-wide cache off), STREAMCD_GUESTS=DIR
(more guest recipes), STREAMCD_GUESTS_ONLY=1 (only those).
USAGE
}


log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# console_after FILE PREFIX: what follows PREFIX (and its spaces) on each
# line of a boot's serial console log FILE. Those lines end in \r\r\n:
# every \r goes (the profile stages once removed one and lost the last
# number of each line; issue 21).
console_after() { sed -n "s/\r//g; s/^.*$2 *//p" "$1"; }

# run_logged STAGE CMD...: a fresh out/log/STAGE.log for CMD (see log_run).
run_logged() {
	mkdir -p "$OUT/log"
	: >"$OUT/log/$1.log"
	log_run "$@"
}

# install_missing STAGE PACKAGE...: apt-get only what is not installed yet.
install_missing() {
	local stage=$1 missing=() p
	shift
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) == 0 ]] || die "$stage: installing ${missing[*]} needs root"
	log "$stage: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Another stage or session may hold apt's lock: wait for it, don't fail.
	run_logged "$stage-apt" sh -c "apt-get -o DPkg::Lock::Timeout=900 update && apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends $(printf '%q ' "${missing[@]}")"
}

# log_run LOG CMD...: CMD's output appended to out/log/LOG.log, for stages
# of many steps and one log; on failure its tail is shown and the build stops.
log_run() {
	local name=$1
	shift
	mkdir -p "$OUT/log"
	if ! "$@" >>"$OUT/log/$name.log" 2>&1; then
		tail -n 30 "$OUT/log/$name.log" >&2
		die "$name failed: $*; full log: $OUT/log/$name.log"
	fi
}

# debian_source LOG PACKAGE VERSION DIR SETTING: Debian's source package at
# exactly VERSION (a pin: our configs and flags were written for it),
# patches applied, unpacked fresh into DIR; the downloads stay in out/src.
# SETTING names the variable to change when apt offers another version.
debian_source() {
	local name=$1 pkg=$2 v=$3 dir=$4 setting=$5 dsc got
	dsc="$OUT/src/${pkg}_${v#*:}.dsc"
	mkdir -p "$OUT/src" "$OUT/log"
	if ! (cd "$OUT/src" && apt-get source -q --download-only "$pkg=$v") >>"$OUT/log/$name.log" 2>&1; then
		tail -n 5 "$OUT/log/$name.log" >&2
		die "$name: apt-get source cannot give $pkg $v (it offers: $(apt-cache showsrc "$pkg" | sed -n 's/^Version: //p' | tr '\n' ' ')); set $setting to one of them and check that what was written for $v still applies"
	fi
	got=$(sed -n 's/^Version: //p' "$dsc")
	[[ $got == "$v" ]] || die "$name: apt-get source gave $pkg $got, $setting asks for $v"
	rm -rf "$dir"
	log_run "$name" dpkg-source -x "$dsc" "$dir"
}


stage_register deps 1 "install the Debian 12 packages the pipeline and tests need"
stage_register hcloop 10 "the streaming block driver, cloop/build/hcloop"
stage_register demo 0 "hcloop alone: an ext4 image of a generated tree into the
store, served and mounted on this machine, checked"
stage_register clean 0 "remove out/ and the build directories (not the cache)"

stage_deps() {
	install_missing deps "${PACKAGES[@]}"
	log "deps: all ${#PACKAGES[@]} packages present"
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


# Debian's source archives sit beside its binary ones, so the deb-src entries
# are the machine's own deb entries with another type: that keeps every mirror
# name out of this project.
DEB_SRC_FILE=/etc/apt/sources.list.d/streamcd-src.sources

# deb822 stanzas (*.sources): field names are case-insensitive, a value may
# continue on indented lines (an inline Signed-By key), "Enabled: no" skips.
# shellcheck disable=SC2016 # an awk program: awk expands its own $fields
DEB822_TO_SRC='
function flush(   t) {
	t = " " f["types"] " "
	if (t ~ /[[:space:]]deb[[:space:]]/ && ("uris" in f) && ("suites" in f) &&
	    f["enabled"] !~ /^[[:space:]]*no[[:space:]]*$/) {
		printf "Types: deb-src\nURIs:%s\nSuites:%s\n", f["uris"], f["suites"]
		if ("components" in f) printf "Components:%s\n", f["components"]
		if ("signed-by" in f) printf "Signed-By:%s\n", f["signed-by"]
		printf "\n"
	}
	split("", f)
	cur = ""
}
/^#/ { next }
/^[[:space:]]*$/ { flush(); next }
/^[[:space:]]/ { if (cur != "") f[cur] = f[cur] "\n" $0; next }
{ i = index($0, ":"); cur = tolower(substr($0, 1, i - 1)); f[cur] = substr($0, i + 1) }
END { flush() }
'

# One-line entries: deb [opt=value ...] URI SUITE [COMPONENT...]
# shellcheck disable=SC2016 # an awk program: awk expands its own $fields
ONELINE_TO_SRC='
{ sub(/#.*/, "") }
$1 != "deb" { next }
{
	line = $0
	sub(/^[[:space:]]*deb[[:space:]]+/, "", line)
	opts = ""
	if (line ~ /^\[/) {
		opts = substr(line, 2, index(line, "]") - 2)
		line = substr(line, index(line, "]") + 1)
	}
	n = split(line, w, /[[:space:]]+/)
	k = 0
	for (i = 1; i <= n; i++) if (w[i] != "") v[++k] = w[i]
	if (k < 2) next
	printf "Types: deb-src\nURIs: %s\nSuites: %s\n", v[1], v[2]
	if (k > 2) {
		printf "Components:"
		for (i = 3; i <= k; i++) printf " %s", v[i]
		printf "\n"
	}
	m = split(opts, o, /[[:space:]]+/)
	for (i = 1; i <= m; i++)
		if (o[i] ~ /^signed-by=/) printf "Signed-By: %s\n", substr(o[i], 11)
	printf "\n"
}
'

# apt_source_files: this machine's apt source files, the one-line ones in
# APT_ONELINE, the deb822 ones in APT_DEB822.
apt_source_files() {
	local f
	APT_ONELINE=() APT_DEB822=()
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] && APT_ONELINE+=("$f")
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] && APT_DEB822+=("$f")
	done
	return 0
}

# deb_entries_as_src: every deb entry of this machine's apt sources, as a
# deb822 deb-src stanza.
deb_entries_as_src() {
	apt_source_files
	((${#APT_DEB822[@]} == 0)) || awk "$DEB822_TO_SRC" "${APT_DEB822[@]}"
	((${#APT_ONELINE[@]} == 0)) || awk "$ONELINE_TO_SRC" "${APT_ONELINE[@]}"
}

# ensure_deb_src STAGE: make apt-get source work, writing DEB_SRC_FILE only
# when no deb-src entry exists yet.
ensure_deb_src() {
	local stage=$1
	if [[ -n $(apt-cache showsrc xen 2>/dev/null) ]]; then
		return 0
	fi
	[[ $(id -u) == 0 ]] || die "$stage: configuring deb-src entries needs root"
	apt_source_files
	if ! grep -Eqs '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
		"${APT_ONELINE[@]}" "${APT_DEB822[@]}"; then
		log "$stage: deriving deb-src entries from the apt sources into $DEB_SRC_FILE"
		{
			printf '# Written by streamcd build.sh from the deb entries beside it.\n\n'
			deb_entries_as_src
		} >"$DEB_SRC_FILE.tmp"
		grep -q '^Types: deb-src' "$DEB_SRC_FILE.tmp" ||
			die "$stage: no deb entries found in /etc/apt to derive deb-src from"
		mv "$DEB_SRC_FILE.tmp" "$DEB_SRC_FILE"
	fi
	log "$stage: apt-get update (source indexes)"
	run_logged "$stage-apt" apt-get update
}


stage_clean() {
	rm -rf "$OUT"
	make -C "$TOP/cloop" clean >/dev/null
}


# A machine-wide cache of stage outputs, keyed by the hash of their inputs:
# a fresh clone on a machine that built the same inputs before (CI, a second
# work tree) restores them in seconds instead of rebuilding for half an hour.
CACHE=${STREAMCD_CACHE-/var/cache/streamcd}

# stage_uptodate NAME HASH DEST FILE...: true when DEST holds every FILE and
# was built from HASH, restoring DEST from the cache when it has that hash.
stage_uptodate() {
	local name=$1 hash=$2 dest=$3 f
	shift 3
	if [[ -f $dest/.inputs && $(<"$dest/.inputs") == "$hash" ]]; then
		for f in "$@"; do [[ -e $dest/$f ]] || break; done
		[[ -e $dest/$f ]] && return 0
	fi
	[[ -n $CACHE && -f $CACHE/$name/$hash/.inputs ]] || return 1
	for f in "$@"; do [[ -e $CACHE/$name/$hash/$f ]] || return 1; done
	# Called as a condition, where set -e is off: every step is checked.
	rm -rf "$dest.restore"
	if ! { mkdir -p "$(dirname "$dest")" && cp -a "$CACHE/$name/$hash" "$dest.restore" &&
		rm -rf "$dest" && mv "$dest.restore" "$dest"; }; then
		die "$name: restoring $CACHE/$name/$hash into $dest failed"
	fi
	log "$name: restored from $CACHE/$name/${hash:0:12}"
}

# stage_cache NAME HASH DEST: keep DEST in the cache (best effort: a full or
# read-only disk must not fail a build that succeeded); the two newest
# builds of each stage stay.
stage_cache() {
	local name=$1 hash=$2 dest=$3
	[[ -n $CACHE ]] || return 0
	printf '%s\n' "$hash" >"$dest/.inputs"
	mkdir -p "$CACHE/$name" 2>/dev/null || return 0
	rm -rf "$CACHE/$name/$hash.tmp"
	if cp -a "$dest" "$CACHE/$name/$hash.tmp" 2>/dev/null; then
		rm -rf "${CACHE:?}/$name/$hash"
		mv "$CACHE/$name/$hash.tmp" "$CACHE/$name/$hash"
	else
		rm -rf "$CACHE/$name/$hash.tmp"
		log "$name: could not copy the result into $CACHE (ignored)"
	fi
	find "$CACHE/$name" -mindepth 1 -maxdepth 1 -printf "%T@ %p\n" | sort -rn | tail -n +3 | cut -d " " -f 2- | xargs -r rm -rf
}


# Set by stage_build: 1 when it built, 0 when DEST was up to date.
# shellcheck disable=SC2034 # read by the stage files
STAGE_BUILT=0

# stage_build NAME HASH DEST FILE... -- CMD [ARG...]: the skeleton of every
# cached stage. DEST is up to date when it holds each FILE built from
# inputs HASH, or is restored from the machine-wide cache when that holds
# them; otherwise CMD ARG... DIR makes the FILEs in DIR, a fresh DEST.new,
# which then replaces DEST and is cached. STAGE_BUILT says which it was. A
# failed build leaves DEST as it was.
# shellcheck disable=SC2034 # STAGE_BUILT is read by the stage files
stage_build() {
	local name=$1 hash=$2 dest=$3 files=() f
	shift 3
	while (($#)) && [[ $1 != -- ]]; do
		files+=("$1")
		shift
	done
	[[ ${1:-} == -- && $# -ge 2 ]] || die "stage_build $name: no command after --"
	shift
	STAGE_BUILT=0
	if stage_uptodate "$name" "$hash" "$dest" "${files[@]}"; then
		log "$name: up to date ($dest)"
		return 0
	fi
	rm -rf "$dest.new"
	mkdir -p "$dest.new"
	"$@" "$dest.new"
	for f in "${files[@]}"; do
		[[ -e $dest.new/$f ]] || die "$name: the build made no $f"
	done
	rm -rf "$dest"
	mv "$dest.new" "$dest"
	stage_cache "$name" "$hash" "$dest"
	STAGE_BUILT=1
}


# Stage files beside what they build; each registers its stages.
for f in "$TOP"/{cloop,hypervisor,guests,guests/*,initrd,iso}/*.stage.sh; do
	# shellcheck disable=SC1090 # each is checked on its own by tests/run.sh
	[[ -f $f ]] && . "$f"
done

main() {
	local stages=("$@") s
	# The one stage that takes arguments: ./build.sh matrix [OPTIONS] [CASE...].
	if [[ ${1:-} == matrix ]]; then
		shift
		# Its status as it is: 1 a failed case, 2 a usage error, 130 Ctrl-C.
		stage_matrix "$@" || exit $?
		return 0
	fi
	# --from DIR: the guests stage takes upstream artifacts from DIR
	# (guests/README.md); anywhere among the stages.
	stages=()
	while (($#)); do
		case $1 in
		--from | --from=*)
			local from=${1#--from}
			from=${from#=}
			if [[ -z $from ]]; then
				(($# >= 2)) || die "--from needs a directory"
				from=$2
				shift
			fi
			[[ -d $from ]] || die "--from $from: no such directory"
			STREAMCD_FROM=$(cd "$from" && pwd)
			export STREAMCD_FROM
			;;
		*) stages+=("$1") ;;
		esac
		shift
	done
	((${#stages[@]})) || mapfile -t stages < <(stage_names default)
	if [[ -n ${STREAMCD_FROM:-} && " ${stages[*]} " != *" guests "* ]]; then
		die "--from is for the guests stage: ./build.sh guests --from DIR"
	fi
	for s in "${stages[@]}"; do
		case $s in
		-h | --help | help) usage; return 0 ;;
		esac
		[[ -n ${STAGE_ORDER[$s]:-} ]] || { usage >&2; die "unknown stage: $s"; }
		declare -F "stage_${s//-/_}" >/dev/null || die "stage $s has no function stage_${s//-/_}"
	done
	for s in "${stages[@]}"; do
		"stage_${s//-/_}"
	done
}

# One line, so that editing this file while it runs cannot change what runs.
# Not "main && exit 0 || exit 1": a function run as part of an && or ||
# list runs with set -e off for every command inside it.
main "$@"; exit
