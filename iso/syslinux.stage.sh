# shellcheck shell=bash
# Stage "syslinux": ISOLINUX (the CD's BIOS boot loader) built from Debian's
# syslinux source package with Debian's patches and ours (iso/patches/),
# BIOS target only. Debian's binary packages carry the same files, but
# their libcom32.c32 holds 164 KB that the CD's text menu and mboot.c32
# never use (iso/patches/syslinux-lean-libcom32.patch): every byte of these
# files is stored uncompressed on a CD with a 5 MiB budget. All six files
# come from one build, since com32 modules must match their ldlinux.c32.
# Sourced by build.sh, which provides log, die, log_run, debian_source,
# install_missing, ensure_deb_src, stage_build, TOP and OUT.
# Outputs in $OUT/syslinux/: isolinux.bin, isohdpfx.bin (the isohybrid
# MBR), ldlinux.c32, libcom32.c32, libutil.c32, menu.c32, mboot.c32, and
# bootmedia.c32 (ours, iso/bootmedia.c: tells the initrd whether ISOLINUX
# was started from a CD or from a disk), built as a module of that tree.
stage_register syslinux 75 "ISOLINUX for the ISO's BIOS side, from Debian's syslinux
source with a lean libcom32: out/syslinux/"

# The version the patch was written and measured for.
SYSLINUX_VERSION=3:6.04~git20190206.bf6db5b4+dfsg1-3
# The source package's build dependencies for its BIOS target (gnu-efi is
# for the EFI targets only; the CD's UEFI side is GRUB).
# (libext2fs-dev is what Debian's e2fslibs-dev is a dummy for: asking for the
# dummy made every run install it again.)
SYSLINUX_PACKAGES=(build-essential dpkg-dev nasm uuid-dev gcc-multilib libc6-dev-i386 python3
	libext2fs-dev patch)
SYSLINUX_PATCHES=()
for _p in "$TOP"/iso/patches/syslinux-*.patch; do
	[[ -f $_p ]] && SYSLINUX_PATCHES+=("$_p")
done
unset _p
# Where each file lands in the source tree's bios/ build.
declare -A SYSLINUX_FILES=(
	[isolinux.bin]=core/isolinux.bin
	[isohdpfx.bin]=mbr/isohdpfx.bin
	[ldlinux.c32]=com32/elflink/ldlinux/ldlinux.c32
	[libcom32.c32]=com32/lib/libcom32.c32
	[libutil.c32]=com32/libutil/libutil.c32
	[menu.c32]=com32/menu/menu.c32
	[mboot.c32]=com32/mboot/mboot.c32
	[bootmedia.c32]=com32/modules/bootmedia.c32
)

syslinux_inputs_hash() {
	local p
	{
		printf '%s\n' "$SYSLINUX_VERSION" "${SYSLINUX_PACKAGES[*]}"
		cat /dev/null "${SYSLINUX_PATCHES[@]}" "$TOP/iso/bootmedia.c"
		for p in gcc binutils nasm; do dpkg-query -W -f='${Package} ${Version}\n' "$p"; done
		declare -f syslinux_build syslinux_check_symbols debian_source log_run
		declare -p SYSLINUX_FILES
	} | sha256sum | cut -d' ' -f1
}

# syslinux_check_symbols DIR CORE_ELF: every symbol the CD's modules
# import (weak ones aside) is exported by the core (isolinux.bin, whose
# ELF is CORE_ELF) or by one of the files the CD carries. The module
# loader resolves them at load time, so a missing one would only show at
# the boot menu.
syslinux_check_symbols() {
	local dir=$1 core=$2 m missing
	for m in libcom32.c32 libutil.c32 menu.c32 mboot.c32 bootmedia.c32; do
		missing=$(comm -23 <(nm -D --undefined-only "$dir/$m" | awk '$1 == "U" { print $2 }' | sort -u) \
			<({
				nm -D --defined-only "$core"
				for e in ldlinux.c32 libcom32.c32 libutil.c32; do nm -D --defined-only "$dir/$e"; done
			} | awk '{ print $NF }' | sort -u))
		[[ -z $missing ]] || die "syslinux: $m imports what no carried file exports: $(tr '\n' ' ' <<<"$missing")"
	done
}

# syslinux_build DIR: the BIOS files into DIR.
syslinux_build() {
	local dir=$1 src=$OUT/src/syslinux epoch f p
	ensure_deb_src syslinux
	install_missing syslinux "${SYSLINUX_PACKAGES[@]}"
	debian_source syslinux syslinux "$SYSLINUX_VERSION" "$src" "SYSLINUX_VERSION in iso/syslinux.stage.sh"
	for p in "${SYSLINUX_PATCHES[@]}"; do
		log "syslinux: applying ${p#"$TOP"/}"
		log_run syslinux patch -d "$src" -p1 --forward --batch -i "$p"
	done
	# The date debian/rules stamps into the banner: the changelog's, so
	# that a rebuild gives the same bytes.
	epoch=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Timestamp)
	log "syslinux: building the BIOS target (log: $OUT/log/syslinux.log)"
	# debian/rules unsets LDFLAGS too: syslinux links with its own.
	log_run syslinux env -u LDFLAGS -u CFLAGS make -C "$src" bios PYTHON=python3 -j"$(nproc)" \
		DATE="$(date -u -d "@$epoch" +%Y%m%d)" HEXDATE="$(printf '0x%x' "$epoch")"
	# Our module, with the rules and flags of the tree's own modules.
	cp "$TOP/iso/bootmedia.c" "$src/com32/modules/"
	log_run syslinux env -u LDFLAGS -u CFLAGS make -C "$src/bios/com32/modules" \
		-f "$src/com32/modules/Makefile" SRC="$src/com32/modules" OBJ="$src/bios/com32/modules" \
		objdir="$src/bios" topdir="$src" MAKEDIR="$src/mk" FIRMWARE=BIOS FWCLASS=BIOS ARCH=i386 \
		LDLINUX=ldlinux.c32 bootmedia.c32
	for f in "${!SYSLINUX_FILES[@]}"; do
		cp "$src/bios/${SYSLINUX_FILES[$f]}" "$dir/$f"
	done
	syslinux_check_symbols "$dir" "$src/bios/core/isolinux.elf"
	rm -rf "$src"
	log "syslinux: $(cd "$dir" && du -cb -- *.bin *.c32 | awk '$2 == "total" { print $1 }') bytes in $dir" \
		"(libcom32.c32 $(stat -c %s "$dir/libcom32.c32"))"
}

stage_syslinux() {
	# Before the hash, which names the toolchain's versions: hashed before
	# nasm was there, the first build was cached under a hash no later run
	# computes.
	install_missing syslinux "${SYSLINUX_PACKAGES[@]}"
	stage_build syslinux "$(syslinux_inputs_hash)" "$OUT/syslinux" "${!SYSLINUX_FILES[@]}" -- syslinux_build
}
