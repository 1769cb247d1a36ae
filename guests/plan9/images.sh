# shellcheck shell=bash
# The store images of the Plan 9 recipes, for the guests stage
# (guests/guests.stage.sh; the format is guests/README.md), from 9front's
# release CD (artifacts), read as data.
#
# plan9-iso     the CD, decompressed and otherwise unmodified
# plan9-kernel  the CD's amd64/9pc64 (the kernel its plan9.ini boots)

PLAN9_ISO_GZ=9front-11554.amd64.iso.gz
PLAN9_PACKAGES=(xorriso gzip)

image_plan9_iso_artifacts() { echo "$PLAN9_ISO_GZ"; }
image_plan9_iso_inputs() { :; }
image_plan9_iso() { gzip -dc "$(artifact "$PLAN9_ISO_GZ")" >"$1"; }

image_plan9_kernel_artifacts() { echo "$PLAN9_ISO_GZ"; }
image_plan9_kernel_inputs() { :; }
image_plan9_kernel() {
	install_missing "${PLAN9_PACKAGES[@]}"
	gzip -dc "$(artifact "$PLAN9_ISO_GZ")" >"$1.iso"
	if ! xorriso -osirrox on -indev "$1.iso" -extract /amd64/9pc64 "$1" >/dev/null 2>&1 || [[ ! -s $1 ]]; then
		rm -f "$1.iso"
		die "guests: $PLAN9_ISO_GZ has no /amd64/9pc64"
	fi
	rm -f "$1.iso"
	# QEMU loads it by its multiboot header (magic 0x1BADB002, 4-byte
	# aligned in the first 8 KiB): without one the launch would fail late.
	python3 - "$1" <<-'PY' || die "guests: 9pc64 of $PLAN9_ISO_GZ has no multiboot header"
		import struct, sys
		head = open(sys.argv[1], "rb").read(8192)
		sys.exit(not any(struct.unpack_from("<I", head, i)[0] == 0x1BADB002 for i in range(0, len(head) - 3, 4)))
	PY
}
