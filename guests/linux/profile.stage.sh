# shellcheck shell=bash
# Stage "profile": dom0's boot profile, recorded by booting the fresh ISO
# once in QEMU with streamcd.trace: hcloop writes the number of each block
# the boot reads first, in order, and dom0's streamcd-ready prints that
# list on the console before its ready line. The list goes into the dom0
# index of out/store (hcloop make --profile, signed again), so every later
# boot fetches those blocks ahead instead of one by one as they are read.
# Cached by dom0's image version: an unchanged image is not traced again.
# Sourced by build.sh, which provides log, die, stage_build, stage_run,
# rootfs_store, TOP and OUT.
# Output: $OUT/profile/dom0.profile (block numbers, one a line) and
# $OUT/profile/version (the image version it was traced on).
stage_register profile 85 "boot the ISO once in QEMU with streamcd.trace and attach
the blocks its boot read, in order, to dom0's index in
out/store as its boot profile (hcloop make --profile);
cached by the image's version"

# The console lines streamcd-ready prints on a traced boot.
PROFILE_LINE=streamcd-trace:
# The line after them: how many blocks they hold.
PROFILE_COUNT_LINE=streamcd-traced:

# profile_version: the dom0 image version the rootfs stage stored.
profile_version() {
	[[ -f $OUT/rootfs/dom0.img.sha256 ]] || die "profile: no dom0 image: run ./build.sh rootfs first"
	cut -c1-16 "$OUT/rootfs/dom0.img.sha256"
}

# profile_trace VERSION DIR: boot, and the trace into DIR.
profile_trace() {
	local version=$1 dir=$2 console=$OUT/log/profile-console.log n said
	[[ -f $OUT/streamcd.iso ]] || die "profile: no $OUT/streamcd.iso: run ./build.sh iso first"
	log "profile: booting the ISO in QEMU with streamcd.trace (console: $console)"
	# The same watched run as ./build.sh run without a terminal, from the
	# index as it is (its old profile's prefetching does not change what
	# the boot reads, or in which order).
	if ! (STREAMCD_APPEND=streamcd.trace STREAMCD_STORE='' STREAMCD_DISK='' STREAMCD_RUN_UNTIL=ready \
		STREAMCD_ISO='' STREAMCD_STORE_URL='' STREAMCD_MEDIA=cdrom STREAMCD_NET=user \
		STREAMCD_RUN_TIMEOUT=${STREAMCD_PROFILE_TIMEOUT:-900} stage_run) </dev/null >"$console"; then
		die "profile: the traced boot failed; see $console"
	fi
	console_after "$console" "$PROFILE_LINE" | tr -s ' ' '\n' | grep -E '^[0-9]+$' >"$dir/dom0.profile" || true
	n=$(wc -l <"$dir/dom0.profile")
	((n > 0)) || die "profile: the traced boot printed no '$PROFILE_LINE' lines; see $console"
	said=$(console_after "$console" "$PROFILE_COUNT_LINE" | sed -n 's/^\([0-9]*\) blocks$/\1/p' | tail -1)
	[[ $said == "$n" ]] ||
		die "profile: read $n block numbers off the console, but the boot said '$PROFILE_COUNT_LINE ${said:-(nothing)} blocks'; see $console"
	printf '%s\n' "$version" >"$dir/version"
	log "profile: dom0 version $version: its boot read $n blocks"
}

stage_profile() {
	local version hash
	version=$(profile_version)
	hash=$( {
		echo "$version"
		declare -f profile_trace
	} | sha256sum | cut -d' ' -f1)
	stage_build profile "$hash" "$OUT/profile" dom0.profile version -- profile_trace "$version"
	rootfs_store "$version"
}
