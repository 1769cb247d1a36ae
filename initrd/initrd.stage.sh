# shellcheck shell=bash
# Stage "initrd": a static BusyBox (initrd/busybox.stage.sh), the static
# hcloop, streamcd-stick (initrd/stick: a USB stick's cache partition),
# initrd/init and the store's public key (cloop/key.stage.sh) packed into
# an xz cpio. Sourced by build.sh, which provides log, die, run_logged,
# install_missing, sign_key, stage_build, TOP and OUT.
# Output: $OUT/initrd/initrd.img.
stage_register initrd 70 "static BusyBox + static hcloop + initrd/init:
out/initrd/initrd.img (STREAMCD_MIRRORS: the store URLs
baked in, default http://10.0.2.100)"

INITRD_PACKAGES=(cpio xz-utils)

# The store URL(s) baked into the initrd; 10.0.2.100 is where QEMU's user
# network (guestfwd, see ./build.sh run) reaches the server on the host, so
# the ISO works out of the box there. Comma-separated, tried in order.
STREAMCD_MIRRORS=${STREAMCD_MIRRORS:-http://10.0.2.100}
STREAMCD_IMAGE=${STREAMCD_IMAGE:-dom0}
# streamcd-stick's build: a few seconds, so not a cached stage of its own.
INITRD_STICK=$TOP/initrd/stick/build-static/streamcd-stick

# Target from the issue: the whole initrd at most 1.5 MiB compressed.
INITRD_MAX_BYTES=$((1536 * 1024))

source_date_epoch() {
	if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
		echo "$SOURCE_DATE_EPOCH"
	else
		git -C "$TOP" log -1 --format=%ct 2>/dev/null || echo 0
	fi
}

initrd_inputs_hash() {
	{
		echo "$STREAMCD_MIRRORS" "$STREAMCD_IMAGE" "$ISO_VOLID" "$(source_date_epoch)"
		sha256sum "$OUT/initrd-busybox/busybox" "$OUT/hcloop-static/hcloop" "$TOP/initrd/init" \
			"$TOP/initrd/udhcpc.script" "$SIGN_KEY_PUB" "$INITRD_STICK"
		declare -f initrd_make initrd_tree
	} | sha256sum | cut -d ' ' -f 1
}

# initrd_tree BUSYBOX DIR: the initrd's file tree.
initrd_tree() {
	local bb=$1 dir=$2 applet
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,run,newroot,tmp}
	install -m 0755 "$bb" "$dir/bin/busybox"
	# Every applet, so the rescue shell is a usable one.
	for applet in $("$dir/bin/busybox" --list-full); do
		[[ -e $dir/$applet ]] || ln -s /bin/busybox "$dir/$applet"
	done
	install -m 0755 "$OUT/hcloop-static/hcloop" "$dir/sbin/hcloop"
	install -m 0755 "$INITRD_STICK" "$dir/sbin/streamcd-stick"
	install -m 0755 "$TOP/initrd/init" "$dir/init"
	install -m 0755 "$TOP/initrd/udhcpc.script" "$dir/etc/udhcpc.script"
	# The only key whose indexes this CD mounts (cloop/key.stage.sh).
	install -m 0644 "$SIGN_KEY_PUB" "$dir/etc/streamcd.pub"
	# volid: the ISO's volume ID (iso/iso.stage.sh), by which streamcd-stick
	# knows the stick the ISO was written to.
	printf '# Written by build.sh (stage initrd); the boot line overrides it.\nurl=%s\nimage=%s\nvolid=%s\n' \
		"$STREAMCD_MIRRORS" "$STREAMCD_IMAGE" "$ISO_VOLID" >"$dir/etc/streamcd.conf"
	printf '127.0.0.1 localhost\n' >"$dir/etc/hosts"
	# The kernel opens the console before /init runs and mounts devtmpfs.
	mknod -m 0600 "$dir/dev/console" c 5 1
	mknod -m 0666 "$dir/dev/null" c 1 3
}

# initrd_make DIR: initrd.img in DIR.
initrd_make() {
	local dir=$1 work=$OUT/initrd.work epoch size
	epoch=$(source_date_epoch)
	rm -rf "$work"
	mkdir -p "$work"
	log "initrd: busybox, hcloop, streamcd-stick, init; mirrors $STREAMCD_MIRRORS"
	initrd_tree "$OUT/initrd-busybox/busybox" "$work/root"
	# Fixed times, owners and order: the same inputs give the same bytes.
	find "$work/root" -exec touch -h -d "@$epoch" {} +
	(cd "$work/root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) >"$work/initrd.cpio" ||
		die "initrd: cpio failed"
	# The kernel's XZ decoder needs CRC32 checks, not xz's default CRC64. The
	# x86 branch filter (the kernel has XZ_DEC_X86) suits an initrd that is
	# two executables: 33 KB less than -9e alone.
	xz --check=crc32 -T1 --x86 --lzma2=preset=9e -c "$work/initrd.cpio" >"$dir/initrd.img"
	rm -rf "$work"
	size=$(stat -c %s "$dir/initrd.img")
	((size <= INITRD_MAX_BYTES)) ||
		die "initrd: $size bytes compressed, over the $INITRD_MAX_BYTES-byte target"
	log "initrd: $size bytes (xz; limit $INITRD_MAX_BYTES)"
}

stage_initrd() {
	install_missing initrd "${INITRD_PACKAGES[@]}"
	[[ $(id -u) == 0 ]] || die "initrd: making device nodes needs root"
	stage_hcloop_static
	sign_key
	mkdir -p "$OUT/src" "$OUT/log"
	: >"$OUT/log/initrd.log"
	initrd_busybox_build "$OUT/initrd-busybox/busybox"
	log_run initrd-stick make -C "$TOP/initrd/stick" static
	stage_build initrd "$(initrd_inputs_hash)" "$OUT/initrd" initrd.img -- initrd_make
}
