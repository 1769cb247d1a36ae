# shellcheck shell=bash
# The store images of the NetBSD recipes, for the guests stage
# (guests/guests.stage.sh; the format is guests/README.md). Everything comes
# from one upstream file, NetBSD's amd64 release CD (artifacts), read as
# data: no NetBSD code runs here.
#
# netbsd-iso     the CD itself, unmodified (netbsd-hvm boots it)
# netbsd-kernel  its amd64/binary/kernel/netbsd-XEN3_DOMU.gz, uncompressed
#                (xl reads gzip too, but under emulation dom0 pays seconds
#                for it at each launch, and the store compresses anyway)
# netbsd-disk    an FFS image of its base and etc sets, with the device
#                nodes of dev.spec, root/ over them, and a disklabel

NETBSD_ISO=NetBSD-10.1-amd64.iso
NETBSD_PACKAGES=(xorriso makefs python3 binutils xz-utils)
# Room for a person's files in the guest (its writes go to a layer in dom0's
# memory, never to the store): makefs's free space, in percent.
NETBSD_FREE_PERCENT=20

# netbsd_from_iso PATH OUT: the file PATH of the release CD into OUT.
netbsd_from_iso() {
	local iso
	iso=$(artifact "$NETBSD_ISO")
	install_missing "${NETBSD_PACKAGES[@]}"
	if ! xorriso -osirrox on -indev "$iso" -extract "$1" "$2" >/dev/null 2>&1 || [[ ! -s $2 ]]; then
		die "guests: $NETBSD_ISO has no $1 (what is in /amd64/binary: $(xorriso -indev "$iso" -ls /amd64/binary/'*' 2>/dev/null | tr '\n' ' '))"
	fi
}

image_netbsd_iso_artifacts() { echo "$NETBSD_ISO"; }
image_netbsd_iso_inputs() { :; }
image_netbsd_iso() { cp "$(artifact "$NETBSD_ISO")" "$1"; }

image_netbsd_kernel_artifacts() { echo "$NETBSD_ISO"; }
image_netbsd_kernel_inputs() { :; }
image_netbsd_kernel() {
	netbsd_from_iso /amd64/binary/kernel/netbsd-XEN3_DOMU.gz "$1.gz"
	gzip -dc "$1.gz" >"$1"
	rm -f "$1.gz"
	# xl loads an ELF that carries Xen's notes; anything else would fail
	# only at a launch, in dom0.
	readelf -n "$1" 2>/dev/null | grep -q '^ *Xen ' ||
		die "guests: netbsd-XEN3_DOMU from $NETBSD_ISO is not an ELF kernel with Xen notes"
}

image_netbsd_disk_artifacts() { echo "$NETBSD_ISO"; }
image_netbsd_disk_inputs() {
	dpkg-query -W makefs python3
	cd "$TOP/guests/netbsd" && sha256sum sets2ffs.py bsdlabel.py dev.spec &&
		find root -printf '%p %y %m\n' | LC_ALL=C sort && find root -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
	echo "$NETBSD_FREE_PERCENT ${SOURCE_DATE_EPOCH:-}"
}
image_netbsd_disk() {
	local set sets=()
	rm -rf "$1.sets"
	mkdir -p "$1.sets"
	for set in base etc; do
		netbsd_from_iso "/amd64/binary/sets/$set.tar.xz" "$1.sets/$set.tar.xz"
		sets+=("$1.sets/$set.tar.xz")
	done
	netbsd_ffs "$1" "$TOP/guests/netbsd/root" "${sets[@]}"
	rm -rf "$1.sets"
}

# netbsd_ffs IMAGE OVERLAY SET...: a NetBSD root disk from release sets
# (tar archives), the device nodes of dev.spec and the OVERLAY directory's
# files over them: FFS v2 and a disklabel whose partition a is all of it.
# Also for recipes of other folders (tests/guest-artifacts.sh uses it).
netbsd_ffs() {
	local img=$1 overlay=$2 here=$TOP/guests/netbsd
	shift 2
	install_missing makefs python3
	rm -rf "$img.tree" "$img.spec"
	python3 "$here/sets2ffs.py" "$img.tree" "$img.spec" --extra "$here/dev.spec" --overlay "$overlay" "$@"
	# -F: owners, modes and device nodes from the spec, not from this
	# machine; -T: every time stamp the same, so the image is reproducible;
	# -M: makefs cannot make a file system of under 40 KB (a small set).
	makefs -t ffs -o version=2 -B le -F "$img.spec" -b "$NETBSD_FREE_PERCENT%" -M 16m \
		-T "${SOURCE_DATE_EPOCH:-0}" "$img" "$img.tree" >&2
	python3 "$here/bsdlabel.py" "$img" >&2
	rm -rf "$img.tree" "$img.spec"
}
