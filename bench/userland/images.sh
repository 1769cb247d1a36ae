# shellcheck shell=bash
# The image of bench/userland/linux-minbase.guest: Debian 12 minbase with
# sysvinit and a getty on hvc0, as one ext4 file system (no partitions, no
# boot loader: PV only). linux-kernel comes from guests/linux/images.sh,
# which the guests stage sources for linux-pv.

image_linux_minbase_disk_inputs() {
	rootfs_sources
	rootfs_archive_state
	printf '%s\n' "${SOURCE_DATE_EPOCH:-}"
}

image_linux_minbase_disk() {
	local out=$1 work=$OUT/guests/minbase.work mirror mib
	install_missing guests debootstrap e2fsprogs
	rm -rf "$work"
	mkdir -p "$work/root/var/cache/apt/archives"
	# The dom0 build's downloads, when there are some.
	[[ ! -d $OUT/rootfs-debs ]] ||
		find "$OUT/rootfs-debs" -name '*.deb' -exec cp -l -t "$work/root/var/cache/apt/archives" {} +
	mirror=$(rootfs_mirror)
	debootstrap --variant=minbase --include=sysvinit-core bookworm "$work/root" "$mirror"
	echo minbase >"$work/root/etc/hostname"
	printf '/dev/xvda / ext4 rw 0 1\n' >"$work/root/etc/fstab"
	printf 'h0:2345:respawn:/sbin/getty -L 115200 hvc0 vt100\n' >>"$work/root/etc/inittab"
	chroot "$work/root" passwd -d root
	rm -rf "$work/root/var/cache/apt/archives"/*.deb
	mib=$(du -sx --block-size=1M "$work/root" | cut -f1)
	mkfs.ext4 -q -F -L minbase -m 0 -d "$work/root" "$out" $((mib * 13 / 10 + 64))M
	rm -rf "$work"
}
