# shellcheck shell=bash
# The store images the Linux recipes (linux-*.guest) name, for the "guests"
# stage (guests/guests.stage.sh), which sources this file in a subshell of its
# own and calls, for an image NAME, image_NAME OUTFILE to build it and
# image_NAME_inputs to print what decides its bytes (dashes in NAME become
# underscores). Provided by build.sh: log, die, install_missing, TOP, OUT.
#
# linux-kernel   the guest kernel (out/guest-kernel), booted by xl as a PV
#                or PVH guest
# linux-symbols  its vmlinux: gdb's symbols for a guest debugged with gdbsx
# linux-disk     a whole disk: an MBR with SYSLINUX's boot code, partition
#                1 (FAT) with SYSLINUX and the kernel for HVM, partition 2
#                (ext4) the BusyBox root for every mode

LINUX_GUEST_PACKAGES=(dosfstools mtools syslinux syslinux-common fdisk e2fsprogs)
# The MBR's disk signature: the root is PARTUUID=5354524d-02 in every mode
# (xvda2 for PV and PVH; sda2 or xvda2 under HVM, depending on whether
# Linux unplugged the emulated disk), see linux-*.guest.
LINUX_DISK_ID=5354524d
# Sizes in MiB: the boot partition holds the kernel (2.7 MB) and
# SYSLINUX; the root holds BusyBox (2 MB) and room for a person's files
# (written to the guest's copy-on-write layer, never to the store).
LINUX_DISK_BOOT_MIB=8
LINUX_DISK_ROOT_MIB=56
LINUX_SYSLINUX_MBR=/usr/lib/syslinux/mbr/mbr.bin

image_linux_kernel() { cp "$OUT/guest-kernel/vmlinuz" "$1"; }
image_linux_kernel_inputs() { sha256sum <"$OUT/guest-kernel/vmlinuz"; }

image_linux_symbols() { cp "$OUT/guest-kernel/vmlinux" "$1"; }
image_linux_symbols_inputs() { sha256sum <"$OUT/guest-kernel/vmlinux"; }

# linux_busybox_deb: Debian's busybox-static, downloaded (not installed: it
# conflicts with the busybox package the tests use) into out/src; prints
# its path.
linux_busybox_deb() {
	local v dir=$OUT/src/guests
	v=$(apt-cache policy busybox-static | awk '$1 == "Candidate:" { print $2 }')
	[[ -n $v && $v != "(none)" ]] || die "guests: apt knows no busybox-static; run apt-get update"
	mkdir -p "$dir"
	if ! compgen -G "$dir/busybox-static_*${v#*:}_amd64.deb" >/dev/null; then
		rm -f "$dir"/busybox-static_*.deb
		(cd "$dir" && apt-get download -q "busybox-static=$v") >&2 ||
			die "guests: apt-get download busybox-static=$v failed"
	fi
	compgen -G "$dir/busybox-static_*${v#*:}_amd64.deb" | head -n 1
}

image_linux_disk_inputs() {
	apt-cache policy busybox-static | awk '$1 == "Candidate:" { print $2 }'
	dpkg-query -W "${LINUX_GUEST_PACKAGES[@]}"
	sha256sum <"$OUT/guest-kernel/vmlinuz"
	(cd "$TOP/guests/linux/guest-root" && find . -printf '%p %y %m %l\n' | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	printf '%s\n' "$LINUX_DISK_ID" "$LINUX_DISK_BOOT_MIB" "$LINUX_DISK_ROOT_MIB" "${SOURCE_DATE_EPOCH:-}"
}

# linux_guest_root DIR: the BusyBox root tree.
linux_guest_root() {
	local root=$1 deb app
	deb=$(linux_busybox_deb)
	mkdir -p "$root.deb"
	dpkg-deb -x "$deb" "$root.deb"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,mnt,etc}
	install -m 755 "$root.deb/bin/busybox" "$root/bin/busybox"
	rm -rf "$root.deb"
	# Every applet where BusyBox's own table puts it (bin/sh, sbin/init, ...).
	for app in $("$root/bin/busybox" --list-full); do
		[[ $app == bin/busybox ]] || ln -s /bin/busybox "$root/$app"
	done
	cp -a "$TOP/guests/linux/guest-root/." "$root/"
	# The copyright file of what is copied in, as the licence asks.
	mkdir -p "$root/usr/share/doc/busybox-static"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/doc/busybox-static/copyright \
		>"$root/usr/share/doc/busybox-static/copyright"
}

# image_linux_disk OUT: partitioned, with both file systems written in place
# (mkfs.vfat, mtools and syslinux take an offset; mkfs.ext4 -d builds the
# root from a tree): no loop device, no mount, same bytes every time.
image_linux_disk() {
	local out=$1 work=$OUT/guests/linux-disk.work epoch boot_off root_off total uuid
	install_missing guests "${LINUX_GUEST_PACKAGES[@]}"
	epoch=${SOURCE_DATE_EPOCH:-$(git -C "$TOP" log -1 --format=%ct 2>/dev/null || echo 0)}
	rm -rf "$work"
	mkdir -p "$work"
	linux_guest_root "$work/root"
	find "$work/root" -newermt "@$epoch" -print0 | xargs -0r touch -h -d "@$epoch"
	boot_off=1
	root_off=$((boot_off + LINUX_DISK_BOOT_MIB))
	total=$((root_off + LINUX_DISK_ROOT_MIB))
	rm -f "$out"
	truncate -s "${total}M" "$out"
	sfdisk -q "$out" <<-EOF
		label: dos
		label-id: 0x$LINUX_DISK_ID
		start=${boot_off}MiB, size=${LINUX_DISK_BOOT_MIB}MiB, type=e, bootable
		start=${root_off}MiB, type=83
	EOF
	dd if="$LINUX_SYSLINUX_MBR" of="$out" bs=440 count=1 conv=notrunc status=none
	# Partition 1: FAT with SYSLINUX, its configuration and the kernel. The
	# hidden-sectors field (--offset) is how SYSLINUX's boot sector finds
	# its own partition on the disk.
	mkfs.vfat -F 16 -s 1 --offset=$((boot_off * 2048)) --invariant -i "$LINUX_DISK_ID" -n STREAMCD \
		"$out" $((LINUX_DISK_BOOT_MIB * 1024)) >/dev/null
	# The kernel writes to the guest's screen (tty0) and to COM1; the last
	# console=, COM1, is /dev/console, where rcS says ready for the launcher.
	cat >"$work/syslinux.cfg" <<-EOF
		SERIAL 0 115200
		DEFAULT linux
		PROMPT 0
		TIMEOUT 0
		LABEL linux
		  KERNEL /vmlinuz
		  APPEND root=PARTUUID=$LINUX_DISK_ID-02 rw rootwait console=tty0 console=ttyS0,115200 quiet
	EOF
	SOURCE_DATE_EPOCH=$epoch mcopy -i "$out@@${boot_off}M" "$OUT/guest-kernel/vmlinuz" ::/vmlinuz
	SOURCE_DATE_EPOCH=$epoch mcopy -i "$out@@${boot_off}M" "$work/syslinux.cfg" ::/syslinux.cfg
	SOURCE_DATE_EPOCH=$epoch syslinux --install --offset $((boot_off * 1048576)) "$out"
	# Partition 2: the root, ext4 without a journal (every write lands in a
	# throw-away copy-on-write layer) with fixed UUID, hash seed and times.
	uuid=$LINUX_DISK_ID-0000-4000-8000-000000000002
	E2FSPROGS_FAKE_TIME=$epoch mkfs.ext4 -q -F -L guest-root -U "$uuid" -m 0 -O ^has_journal \
		-E hash_seed="$uuid" -d "$work/root" "$work/root.ext4" "${LINUX_DISK_ROOT_MIB}M"
	# mke2fs -d copies each file's ctime, which no tool can set on the tree.
	(cd "$work/root" && find . -mindepth 1 -printf 'sif "/%P" ctime @%%s\nsif "/%P" crtime @%%s\n') |
		sed "s/%s/$epoch/g" >"$work/times.debugfs"
	E2FSPROGS_FAKE_TIME=$epoch debugfs -w -f "$work/times.debugfs" "$work/root.ext4" >/dev/null 2>&1 ||
		die "guests: debugfs could not set the root's inode times"
	dd if="$work/root.ext4" of="$out" bs=1M seek="$root_off" conv=notrunc,sparse status=none
	rm -rf "$work"
}
