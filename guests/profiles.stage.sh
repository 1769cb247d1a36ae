# shellcheck shell=bash
# Stage "guest-profiles": the guests' boot profiles, recorded the way
# dom0's is (guests/linux/profile.stage.sh): the fresh ISO boots once in
# QEMU with streamcd.profile_guests, dom0's launcher starts each guest of
# the catalogue with its images traced until its console shows it ready
# ("streamcd profile"), and prints each image's blocks in the order the
# guests first read them. Each profile goes into its image's index in
# out/store (hcloop make --profile, signed again), so a launch fetches what
# the guest's boot reads ahead instead of one block at a time. Cached by
# the images' versions: unchanged images are not traced again.
# Sourced by build.sh, which provides log, die, run_logged, sign_key,
# stage_build, stage_run, TOP and OUT.
# Output: $OUT/guest-profiles/profiles.txt, one line per image:
# "IMAGE VERSION BLOCK...".
stage_register guest-profiles 87 "boot the ISO once in QEMU, launch every guest of the
catalogue with its images traced (streamcd profile) and
attach each image's boot profile to its index in out/store;
cached by the images' versions"

# The console lines dom0's launcher prints (its last line, "streamcd:
# guest profiles recorded", ends the run: iso/run.stage.sh).
GUEST_PROFILE_LINE=streamcd-profile:
# The line after each image's: how many blocks they hold.
GUEST_PROFILE_COUNT_LINE=streamcd-profiled:

# guest_profile_images: "IMAGE VERSION" of every image the catalogue's
# guests boot from (not their gdb symbols), once each.
guest_profile_images() {
	local catalog=$OUT/guests/catalog
	[[ -f $catalog ]] || die "guest-profiles: no $catalog: run ./build.sh guests first"
	awk '$1 == "symbols" { sym[$3] = 1 } $1 == "image" { img[$3] = $4 }
		END { for (i in img) if (!(i in sym)) print i, img[i] }' "$catalog" | LC_ALL=C sort
}

# guest_profile_trace DIR: the traced boot, its profiles in DIR.
guest_profile_trace() {
	local dir=$1 console=$OUT/log/guest-profiles-console.log img ver blocks n said
	[[ -f $OUT/streamcd.iso ]] || die "guest-profiles: no $OUT/streamcd.iso: run ./build.sh iso first"
	log "guest-profiles: booting the ISO in QEMU, each guest launched with its images traced (console: $console)"
	if ! (STREAMCD_APPEND=streamcd.profile_guests STREAMCD_STORE='' STREAMCD_DISK='' STREAMCD_MEDIA=cdrom \
		STREAMCD_ISO='' STREAMCD_STORE_URL='' \
		STREAMCD_NET=user STREAMCD_RUN_UNTIL=ready STREAMCD_RUN_TIMEOUT=${STREAMCD_PROFILE_TIMEOUT:-1800} \
		stage_run) </dev/null >"$console"; then
		die "guest-profiles: the traced boot failed; see $console"
	fi
	# One line per image: its name, its version, then every block.
	console_after "$console" "$GUEST_PROFILE_LINE" |
		awk '{ k = $1 " " $2; if (!(k in line)) { order[++n] = k; line[k] = k }
			for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+$/) line[k] = line[k] " " $i }
			END { for (i = 1; i <= n; i++) print line[order[i]] }' >"$dir/profiles.txt"
	[[ -s $dir/profiles.txt ]] || die "guest-profiles: the boot printed no '$GUEST_PROFILE_LINE' lines; see $console"
	while read -r img ver blocks; do
		n=$(wc -w <<<"$blocks")
		said=$(console_after "$console" "$GUEST_PROFILE_COUNT_LINE" |
			awk -v i="$img" -v v="$ver" '$1 == i && $2 == v && $4 == "blocks" { n = $3 } END { print n }')
		[[ $said == "$n" ]] ||
			die "guest-profiles: read $n blocks of $img off the console, but the boot said '${said:-(nothing)}'; see $console"
		log "guest-profiles: $img version $ver: the guests' boots read $n blocks"
	done <"$dir/profiles.txt"
}

# guest_profile_of IMAGE VERSION: the recorded profile's blocks, one a line,
# or nothing (status 1) when none was recorded for that version.
guest_profile_of() {
	local f=$OUT/guest-profiles/profiles.txt
	[[ -f $f ]] || return 1
	awk -v i="$1" -v v="$2" '$1 == i && $2 == v { for (k = 3; k <= NF; k++) print $k; found = 1 }
		END { exit !found }' "$f"
}

stage_guest_profiles() {
	local hash img ver file
	hash=$( {
		guest_profile_images
		declare -f guest_profile_trace
	} | sha256sum | cut -d' ' -f1)
	stage_build guest-profiles "$hash" "$OUT/guest-profiles" profiles.txt -- guest_profile_trace
	sign_key
	file=$OUT/guest-profiles/profile.tmp
	while read -r img ver; do
		guest_profile_of "$img" "$ver" >"$file" || continue
		run_logged "guest-profiles-$img" "$TOP/cloop/build/hcloop" make -q --sign "$SIGN_KEY_SEC" \
			--profile "$file" "$OUT/guests/images/$img/image" "$OUT/store" "$img" "$ver"
		log "guest-profiles: $OUT/store image $img version $ver: boot profile of $(wc -l <"$file") blocks"
	done < <(guest_profile_images)
	rm -f "$file"
}
