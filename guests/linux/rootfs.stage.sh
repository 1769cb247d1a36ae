# shellcheck shell=bash
# Stage "rootfs": the dom0 root filesystem, Debian 12 (minbase) with Xen's
# toolstack from Debian's xen-utils-4.17, QEMU for HVM guests and our gdbsx,
# as one read-only image that the initrd streams with hcloop and puts under
# a tmpfs overlay. Sourced by build.sh, which provides log, die, run_logged,
# install_missing, stage_build, XEN_VERSION, DEB822_TO_SRC,
# ONELINE_TO_SRC, TOP and OUT.
# Outputs: $OUT/rootfs/{dom0.img,dom0.img.sha256,manifest} and image "dom0"
# in the store $OUT/store. What goes into the image: guests/linux/rootfs/.
stage_register rootfs 50 "the Debian 12 dom0 root filesystem with Xen's tools and
the guest launcher (guests/linux/rootfs/), put into the store
out/store as image \"dom0\": out/rootfs/"

ROOTFS_SUITE=bookworm
ROOTFS_HOST_PACKAGES=(debootstrap e2fsprogs squashfs-tools erofs-utils libvncserver-dev)
# Both chosen by measurement: see guests/linux/README.md. The other values
# stay buildable so that the measurement can be repeated:
# STREAMCD_ROOTFS_FS=ext4|squashfs|squashfs-xz|erofs|erofs-lz4hc and
# STREAMCD_ROOTFS_INIT=systemd.
ROOTFS_FS=${STREAMCD_ROOTFS_FS:-squashfs}
ROOTFS_INIT=${STREAMCD_ROOTFS_INIT:-sysvinit}
ROOTFS_CONF=$TOP/guests/linux/rootfs
# dom0's viewer of guests' screens (streamcd-view), built on this machine
# against Debian 12's libvncclient, the library dom0 gets from the same
# apt lists (libvncclient1 in rootfs/packages).
ROOTFS_VIEW=$TOP/guests/linux/view

# rootfs_sources: the build machine's deb entries as deb822 stanzas, for the
# image's apt and for debootstrap; build.sh's deb_entries_as_src writes deb-src
# stanzas, the same entries with the other type. No mirror name is kept in
# the project.
rootfs_sources() {
	deb_entries_as_src | sed 's/^Types: deb-src$/Types: deb/'
}

# rootfs_mirror: the first URI of an entry that carries the suite itself.
rootfs_mirror() {
	rootfs_sources | awk -v suite="$ROOTFS_SUITE" '
		BEGIN { RS = "" }
		{
			uri = ""; found = 0
			n = split($0, line, "\n")
			for (i = 1; i <= n; i++) {
				k = split(line[i], w, /[[:space:]]+/)
				if (w[1] == "URIs:") uri = w[2]
				if (w[1] == "Suites:") for (j = 2; j <= k; j++) if (w[j] == suite) found = 1
			}
			if (found && uri != "") { print uri; exit }
		}'
}

# rootfs_archive_state: which state of the archive the image is built from:
# the Date of every Release file apt has. The image's apt works from copies
# of these lists, so the same lists give the same package versions.
rootfs_archive_state() {
	local f
	for f in /var/lib/apt/lists/*_InRelease; do
		[[ -f $f ]] && printf '%s %s\n' "${f##*/}" "$(grep -m1 '^Date:' "$f")"
	done
}

# rootfs_epoch: SOURCE_DATE_EPOCH, or the newest Release date above, so
# that a rebuild from the same archive stamps the same times.
rootfs_epoch() {
	local d newest=0 s
	if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
		printf '%s\n' "$SOURCE_DATE_EPOCH"
		return
	fi
	while IFS= read -r d; do
		s=$(date -d "${d#*Date: }" +%s 2>/dev/null) || continue
		((s > newest)) && newest=$s
	done < <(rootfs_archive_state)
	printf '%s\n' "$newest"
}

rootfs_inputs_hash() {
	local fns
	mapfile -t fns < <(declare -F | awk '$3 ~ /^rootfs_/ { print $3 }')
	{
		printf '%s\n' "$ROOTFS_SUITE" "$ROOTFS_FS" "$ROOTFS_INIT" "$XEN_VERSION" \
			"${ROOTFS_HOST_PACKAGES[*]}"
		declare -f "${fns[@]}"
		(cd "$ROOTFS_CONF" && find . -printf '%p %y %m %l\n' | LC_ALL=C sort &&
			find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		(cd "$ROOTFS_VIEW" && find Makefile src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		sha256sum <"$OUT/xen/gdbsx"
		cat "$OUT/kernel/release"
		(cd "$OUT/kernel/modules" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		rootfs_sources
		rootfs_archive_state
		dpkg-query -W "${ROOTFS_HOST_PACKAGES[@]}"
	} | sha256sum | cut -d' ' -f1
}

# rootfs_unmount ROOT: what the build mounted in the chroot; runs from the
# EXIT trap too, where set -e would stop at the first thing not mounted.
rootfs_unmount() {
	local m
	for m in "$1/dev/pts" "$1/proc"; do
		if mountpoint -q "$m"; then umount -l "$m" || true; fi
	done
}

# rootfs_mkfs FS TREE IMAGE EPOCH UUID [LAST]: TREE as a read-only image.
# Times, UUIDs and hash seeds fixed so that the same tree gives the same
# bytes and hcloop's store shares every unchanged block. squashfs: the files
# listed in LAST (absolute paths in TREE) after all others.
rootfs_mkfs() {
	local fs=$1 tree=$2 img=$3 epoch=$4 uuid=$5 last=${6:-} mib
	rm -f "$img"
	case $fs in
	ext4)
		# Read-only: no journal, no reserved blocks; 10% room for
		# ext4's metadata beyond what du counts.
		mib=$(du -sx --block-size=1M "$tree" | cut -f1)
		truncate -s $((mib * 11 / 10 + 32))M "$img"
		E2FSPROGS_FAKE_TIME=$epoch mkfs.ext4 -q -F -L dom0 -U "$uuid" -m 0 \
			-O ^has_journal -E hash_seed="$uuid" -d "$tree" "$img"
		;;
	squashfs | squashfs-xz)
		local comp=zstd
		[[ $fs == squashfs-xz ]] && comp=xz
		# -no-xattrs: the kernel has no SQUASHFS_XATTR (it would log an
		# error at each mount), and nothing in dom0 needs one: the only
		# xattr is the file capability of GStreamer's gst-ptp-helper, and
		# everything in dom0 runs as root.
		python3 "$TOP/guests/linux/rootfs/squashfs-sort.py" "$tree" ${last:+"$last"} >"$img.sort"
		mksquashfs "$tree" "$img" -noappend -quiet -no-progress -comp "$comp" \
			-no-xattrs -mkfs-time "$epoch" -all-time "$epoch" -sort "$img.sort"
		rm -f "$img.sort"
		;;
	erofs | erofs-lz4hc)
		local z=()
		[[ $fs == erofs-lz4hc ]] && z=(-zlz4hc)
		mkfs.erofs --quiet "${z[@]}" -T "$epoch" -U "$uuid" "$img" "$tree"
		;;
	*) die "rootfs: unknown filesystem $fs" ;;
	esac
}

# rootfs_build HASH DIR: debootstrap, configure in a chroot, make the image
# (dom0.img, dom0.img.sha256, manifest in DIR).
rootfs_build() {
	local hash=$1 dest=$2 work=$OUT/rootfs-build debs=$OUT/rootfs-debs
	local root=$OUT/rootfs-build/root mirror epoch uuid lists
	rootfs_unmount "$root" # an interrupted earlier run
	rm -rf "$work"
	mkdir -p "$root/var/cache/apt/archives" "$debs"
	# debootstrap and apt both take a .deb already in the target's archive
	# directory when its checksum matches: a rebuild downloads only what
	# changed.
	find "$debs" -name '*.deb' -exec cp -l -t "$root/var/cache/apt/archives" {} +
	mirror=$(rootfs_mirror)
	[[ -n $mirror ]] || die "rootfs: no deb entry for $ROOTFS_SUITE in /etc/apt"
	log "rootfs: debootstrap $ROOTFS_SUITE minbase (log: $OUT/log/rootfs-debootstrap.log)"
	run_logged rootfs-debootstrap debootstrap --variant=minbase --components=main \
		"$ROOTFS_SUITE" "$root" "$mirror"
	# The image's apt gets the machine's entries (security and updates too)
	# and the machine's lists, so that the versions are those the hash saw.
	rm -f "$root/etc/apt/sources.list"
	rootfs_sources >"$root/etc/apt/sources.list.d/debian.sources"
	lists=(/var/lib/apt/lists/*_InRelease /var/lib/apt/lists/*_Packages*)
	[[ -f ${lists[0]} && -f ${lists[-1]} ]] || die "rootfs: no apt lists; run apt-get update"
	cp "${lists[@]}" "$root/var/lib/apt/lists/"
	mkdir "$root/streamcd"
	cp -a "$ROOTFS_CONF/." "$root/streamcd/"
	# shellcheck disable=SC2064 # expand now: this run's tree
	trap "rootfs_unmount '$root'" EXIT
	mount -t proc proc "$root/proc"
	log "rootfs: installing Xen's tools and $ROOTFS_INIT (log: $OUT/log/rootfs-configure.log)"
	run_logged rootfs-configure chroot "$root" /bin/sh /streamcd/configure.sh \
		"$ROOTFS_INIT" "$XEN_VERSION"
	rootfs_unmount "$root"
	trap - EXIT
	{
		cat "$root/streamcd/screen-only.files"
		echo /usr/local/bin/streamcd-view
	} >"$work/screen-only.files"
	log "rootfs: stored last, for a guest's screen only: $(xargs <"$root/streamcd/screen-only.packages")"
	rm -rf "$root/streamcd" "$debs"
	mkdir -p "$debs"
	find "$root/var/cache/apt/archives" -name '*.deb' -exec mv -t "$debs" {} +
	rm -rf "$root/var/cache/apt/archives/partial" "$root/var/cache/apt/archives/lock"
	# Ours, built with the hypervisor: before Debian's wrapper in PATH.
	install -m 755 "$OUT/xen/gdbsx" "$root/usr/local/sbin/gdbsx"
	log "rootfs: building streamcd-view (log: $OUT/log/rootfs-view.log)"
	run_logged rootfs-view make -C "$ROOTFS_VIEW" BUILD="$work/view" "$work/view/streamcd-view"
	install -m 755 "$work/view/streamcd-view" "$root/usr/local/bin/streamcd-view"
	# The CD kernel's modules (what only guests use: config/cd/cd.config),
	# with the modules.dep its build's depmod wrote.
	cp -a "$OUT/kernel/modules/lib/modules" "$root/lib/"
	# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
	chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' >"$work/manifest"
	epoch=$(rootfs_epoch)
	find "$root" -xdev -newermt "@$epoch" -print0 | xargs -0r touch -h -d "@$epoch"
	uuid=${hash:0:8}-${hash:8:4}-${hash:12:4}-${hash:16:4}-${hash:20:12}
	log "rootfs: making the $ROOTFS_FS image"
	run_logged rootfs-mkfs rootfs_mkfs "$ROOTFS_FS" "$root" "$work/dom0.img" "$epoch" "$uuid" \
		"$work/screen-only.files"
	mv "$work/dom0.img" "$work/manifest" "$dest/"
	sha256sum <"$dest/dom0.img" | cut -d' ' -f1 >"$dest/dom0.img.sha256"
}

stage_rootfs() {
	local dest=$OUT/rootfs hash start=$SECONDS
	[[ $(id -u) == 0 ]] || die "rootfs: debootstrap, chroot and mounts need root"
	[[ -f $OUT/xen/gdbsx ]] || die "rootfs: no $OUT/xen/gdbsx: run ./build.sh xen first"
	[[ -f $OUT/kernel/release && -d $OUT/kernel/modules/lib/modules ]] ||
		die "rootfs: no CD kernel modules in $OUT/kernel: run ./build.sh kernel first"
	[[ -x $TOP/cloop/build/hcloop ]] || stage_hcloop
	install_missing rootfs "${ROOTFS_HOST_PACKAGES[@]}"
	hash=$(rootfs_inputs_hash)
	stage_build rootfs "$hash" "$dest" dom0.img dom0.img.sha256 manifest -- rootfs_build "$hash"
	if ((STAGE_BUILT)); then
		log "rootfs: built in $((SECONDS - start)) s: $ROOTFS_FS, $ROOTFS_INIT," \
			"$(wc -l <"$dest/manifest") packages, $(du -m "$dest/dom0.img" | cut -f1) MiB"
	fi
	# Also after a restore from the cache: the store may be new. The
	# version is named by the image's hash, so a rerun finds it in place.
	rootfs_store "$(cut -c1-16 "$dest/dom0.img.sha256")"
}

# rootfs_store VERSION: out/rootfs/dom0.img into out/store as dom0 VERSION,
# signed, with the boot profile the profile stage traced on this version
# (without one, a rerun would drop it from the index).
rootfs_store() {
	local version=$1 profile=() what=
	sign_key
	if [[ -f $OUT/profile/version && $(<"$OUT/profile/version") == "$version" ]]; then
		profile=(--profile "$OUT/profile/dom0.profile")
		what=", boot profile of $(wc -l <"$OUT/profile/dom0.profile") blocks"
	fi
	SOURCE_DATE_EPOCH=$(rootfs_epoch) run_logged rootfs-store "$TOP/cloop/build/hcloop" make \
		--sign "$SIGN_KEY_SEC" "${profile[@]}" "$OUT/rootfs/dom0.img" "$OUT/store" dom0 "$version"
	log "rootfs: $OUT/store image dom0 version $version, signed by $SIGN_KEY_PUB$what"
}
