#!/bin/bash
# streamcd's one pipeline. Each stage can run alone: ./build.sh STAGE...
# Run ./build.sh --help for the list.
set -eu

TOP=$(cd "$(dirname "$0")" && pwd)
OUT=${STREAMCD_OUT:-$TOP/out}

# Debian 12 packages the pipeline and the tests use (libclang-rt-14-dev:
# clang's libFuzzer and sanitizer runtimes, only recommended by clang-14,
# for cloop/fuzz/).
PACKAGES=(
	build-essential pkg-config clang libclang-rt-14-dev clang-format shellcheck
	libfuse3-dev fuse3 libcurl4-openssl-dev libzstd-dev zlib1g-dev zstd libsodium-dev
	nginx-light busybox casync python3 curl e2fsprogs util-linux openssl
	qemu-system-x86 ovmf cpio xz-utils
)

# The Xen stage: the version of Debian's xen source package that
# hypervisor/*.config were written for, and the packages its build needs
# beyond a C toolchain (flex and bison: Xen's kconfig; python3: generated
# headers; build-essential brings dpkg-dev for dpkg-source; zopfli: the
# smaller gzip, see xen_hypervisor).
XEN_VERSION=4.17.5+72-g01140da4e8-1
XEN_PACKAGES=(build-essential flex bison python3 zopfli)

usage() {
	cat <<'USAGE'
Usage: ./build.sh [STAGE...]

Builds streamcd and boots it. Stages run in the order given; the default,
"./build.sh", is: deps hcloop xen kernel hcloop-static rootfs initrd iso run
(everything, then the demo boot). Every build stage is skipped when its
inputs are unchanged, and restored from the machine-wide cache
(STREAMCD_CACHE, default /var/cache/streamcd) when it built them before.

  deps           install the Debian 12 packages the pipeline and tests need
  hcloop         the streaming block driver, cloop/build/hcloop
  xen            Xen from Debian's xen source package: release and debug
                 hypervisors (hypervisor/*.config) and gdbsx: out/xen/
  kernel         one Linux 6.1 from linux-source-6.1 (guests/linux/config/):
                 Xen dom0, PV/PVH/HVM guest and bare metal: out/kernel/
  hcloop-static  a static hcloop with a lean libcurl from Debian's curl
                 source, for the initrd: out/hcloop-static/
  rootfs         the Debian 12 dom0 root filesystem with Xen's tools
                 (guests/linux/rootfs/), put into the store out/store as
                 image "dom0": out/rootfs/
  initrd         static BusyBox + static hcloop + initrd/init:
                 out/initrd/initrd.img (STREAMCD_MIRRORS: the store URLs
                 baked in, default http://10.0.2.100)
  iso            the hybrid BIOS/UEFI ISO: out/streamcd.iso
  run            serve out/store on 127.0.0.1 and boot the ISO in QEMU with
                 the serial console on this terminal (Ctrl-A x quits). With
                 no terminal (CI, </dev/null, piped output) the console goes
                 to stdout and the run ends by itself: exit 0 at "streamcd:
                 dom0 ready", exit 1 at "streamcd: FAILED" or after
                 STREAMCD_RUN_TIMEOUT s (1800); STREAMCD_RUN_UNTIL=exit
                 instead runs until QEMU exits, the console on stdin/stdout
                 untouched, for scripts that drive it. Also:
                 STREAMCD_FIRMWARE=bios|uefi, STREAMCD_MEDIA=cdrom|disk
                 (disk: as if written to a USB stick), STREAMCD_MEM (MiB)
  serve          serve out/store on the LAN (STREAMCD_PORT, default 8080)
                 for real machines booted from the ISO; prints the boot line
  demo           hcloop alone: an ext4 image of a generated tree into the
                 store, served and mounted on this machine, checked
  clean          remove out/ and the build directories (not the cache)

Logs: out/log/STAGE.log. Environment: STREAMCD_OUT (default ./out),
STREAMCD_CACHE ("" turns the machine-wide cache off).
USAGE
}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

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

# Everything that decides what out/xen/ holds; a change to any of it rebuilds.
xen_inputs_hash() {
	local fns
	mapfile -t fns < <(declare -F | awk '$3 ~ /^(stage_xen|xen_)/ { print $3 }')
	{
		printf '%s\n' "$XEN_VERSION" "${XEN_PACKAGES[*]}"
		declare -f "${fns[@]}"
		cat "$TOP/hypervisor/release.config" "$TOP/hypervisor/debug.config"
		gcc --version | head -n 1
		ld --version | head -n 1
	} | sha256sum | cut -d ' ' -f 1
}


# xen_check_config CONFIG FRAGMENT...: Kconfig drops an option whose
# dependencies are unmet without a word, so compare every line of the
# fragments (the last one for a symbol wins, as in Kconfig) with the result.
xen_check_config() {
	local config=$1 line sym have bad=()
	shift
	local -A want=()
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			want[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			want[${BASH_REMATCH[1]}]=n
		fi
	done < <(cat "$@")
	for sym in $(printf '%s\n' "${!want[@]}" | sort); do
		have=$(sed -n "s/^$sym=//p" "$config")
		[[ -n $have ]] || have=n
		[[ $have == "${want[$sym]}" ]] || bad+=("$sym (wanted ${want[$sym]}, got $have)")
	done
	((${#bad[@]} == 0)) || die "xen: $config: Kconfig did not keep ${bad[*]}"
	for sym in $(printf '%s\n' "${!want[@]}" | sort); do
		printf '%s=%s ' "${sym#CONFIG_}" "${want[$sym]}"
	done
}

# xen_check_syms XEN_SYMS SYMBOL...: the code behind options that have no
# Kconfig symbol of their own (the IOMMU drivers) really got linked in.
xen_check_syms() {
	local syms=$1 s missing=()
	shift
	for s in "$@"; do
		nm "$syms" | grep -Eq " [TtDdRrBb] $s\$" || missing+=("$s")
	done
	((${#missing[@]} == 0)) || die "xen: $syms lacks ${missing[*]}"
}

# xen_hypervisor SRC BUILD FRAGMENT...: an out-of-tree build of SRC/xen in
# BUILD, configured from Xen's defaults plus the fragments.
xen_hypervisor() {
	local src=$1 build=$2 epoch
	shift 2
	epoch=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Timestamp)
	mkdir -p "$build"
	cat "$@" >"$build/.config"
	# The build host, user and date would otherwise end up in the binary
	# (xl info) and make every build differ.
	local args=(
		-C "$src/xen" O="$build" PYTHON=/usr/bin/python3
		XEN_BUILD_DATE="$(LC_ALL=C date -u -d "@$epoch")"
		XEN_BUILD_TIME="$(LC_ALL=C date -u -d "@$epoch" +%T)"
		XEN_WHOAMI=streamcd XEN_DOMAIN=streamcd XEN_BUILD_HOST=streamcd
	)
	# Xen's own flags must win over anything in the environment.
	log_run xen env -u CFLAGS -u CPPFLAGS -u LDFLAGS make "${args[@]}" olddefconfig
	log_run xen env -u CFLAGS -u CPPFLAGS -u LDFLAGS make "${args[@]}" -j"$(nproc)"
	# mboot.c32 inflates only gzip, so the format stays; zopfli writes a
	# gzip stream ~3% smaller than gzip -9 (about 38 KiB per hypervisor on
	# the CD), deterministically and without a name or date in the header.
	# It writes $build/xen.gz itself: log_run owns stdout.
	rm -f "$build/xen.gz"
	log_run xen zopfli --gzip -i15 "$build/xen"
}

# gdbsx talks to /dev/xen/privcmd with Xen's public headers only, so of the
# tools tree it needs just tools/include and no ./configure; the tools'
# Makefiles insist on config/Tools.mk existing, and an empty one gives
# gdbsx everything it uses from Config.mk's defaults.
xen_gdbsx() {
	local src=$1
	local args=(
		PYTHON=/usr/bin/python3
		EXTRA_CFLAGS_XEN_TOOLS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
		PREPEND_LDFLAGS_XEN_TOOLS="$(dpkg-buildflags --get LDFLAGS)"
	)
	echo '# streamcd: gdbsx needs nothing ./configure finds' >"$src/config/Tools.mk"
	log_run xen make -C "$src/tools/include" "${args[@]}" xen-foreign xen-dir
	log_run xen make -C "$src/tools/debugger/gdbsx" "${args[@]}" -j"$(nproc)"
}

stage_xen() {
	local hash dest="$OUT/xen" work="$OUT/xen.work" src opts start=$SECONDS
	local outputs=(xen.gz xen-debug.gz xen.config xen-debug.config gdbsx)
	local rel="$TOP/hypervisor/release.config" dbg="$TOP/hypervisor/debug.config"
	hash=$(xen_inputs_hash)
	if stage_uptodate xen "$hash" "$dest" "${outputs[@]}"; then
		log "xen: $dest is up to date (inputs ${hash:0:12})"
		return 0
	fi
	mkdir -p "$OUT/log"
	: >"$OUT/log/xen.log"
	ensure_deb_src xen
	install_missing xen "${XEN_PACKAGES[@]}"
	src="$OUT/src/xen-$(sed 's/^[0-9]*://; s/-[^-]*$//' <<<"$XEN_VERSION")"
	log "xen: unpacking Debian's xen $XEN_VERSION into $src"
	debian_source xen xen "$XEN_VERSION" "$src" "XEN_VERSION in build.sh"
	rm -rf "$work"
	mkdir -p "$work/out"
	log "xen: building the release hypervisor (log: $OUT/log/xen.log)"
	xen_hypervisor "$src" "$work/release" "$rel"
	opts=$(xen_check_config "$work/release/.config" "$rel")
	log "xen: release .config verified: $opts"
	log "xen: building the debug hypervisor"
	xen_hypervisor "$src" "$work/debug" "$rel" "$dbg"
	opts=$(xen_check_config "$work/debug/.config" "$rel" "$dbg")
	log "xen: debug .config verified: $opts"
	xen_check_syms "$work/release/xen-syms" intel_iommu_init_ops amd_iommu_init \
		iommu_do_pci_domctl shadow_enable gdbsx_guest_mem_io
	xen_check_syms "$work/debug/xen-syms" intel_iommu_init_ops amd_iommu_init \
		iommu_do_pci_domctl shadow_enable gdbsx_guest_mem_io __trap_to_gdb
	log "xen: building gdbsx"
	xen_gdbsx "$src"
	cp "$work/release/xen.gz" "$work/out/xen.gz"
	cp "$work/debug/xen.gz" "$work/out/xen-debug.gz"
	cp "$work/release/.config" "$work/out/xen.config"
	cp "$work/debug/.config" "$work/out/xen-debug.config"
	strip -o "$work/out/gdbsx" "$src/tools/debugger/gdbsx/gdbsx"
	rm -rf "$dest"
	mv "$work/out" "$dest"
	rm -rf "$work"
	stage_cache xen "$hash" "$dest"
	log "xen: done in $((SECONDS - start)) s: $(cd "$dest" && du -b "${outputs[@]}" | awk '{ printf "%s %d KiB  ", $2, ($1 + 1023) / 1024 }')"
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

# Stages kept beside what they build.
# shellcheck source=guests/linux/kernel.sh
. "$TOP/guests/linux/kernel.sh"
for f in "$TOP"/cloop/static.sh "$TOP"/guests/linux/rootfs.sh "$TOP"/initrd/busybox.sh "$TOP"/initrd/initrd.sh \
	"$TOP"/iso/iso.sh "$TOP"/iso/run.sh; do
	# shellcheck disable=SC1090 # each is checked on its own by tests/run.sh
	[[ -f $f ]] && . "$f"
done

STAGES=(deps hcloop demo xen kernel hcloop-static rootfs initrd iso run serve clean)

main() {
	local stages=("$@") s
	((${#stages[@]})) || stages=(deps hcloop xen kernel hcloop-static rootfs initrd iso run)
	for s in "${stages[@]}"; do
		case $s in
		-h | --help | help) usage; return 0 ;;
		esac
		[[ " ${STAGES[*]} " == *" $s "* ]] || { usage >&2; die "unknown stage: $s"; }
		declare -F "stage_${s//-/_}" >/dev/null || die "stage $s is not written yet"
	done
	for s in "${stages[@]}"; do
		"stage_${s//-/_}"
	done
}

# One line, so that editing this file while it runs cannot change what runs.
main "$@" && exit 0 || exit 1
