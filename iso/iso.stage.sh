# shellcheck shell=bash
# Stage "iso": the hybrid BIOS + UEFI image out/streamcd.iso holding Xen
# (release and debug), the kernel and the initrd. ISOLINUX + mboot.c32 boot
# BIOS machines, GRUB (multiboot2) UEFI ones; the same image written to a USB
# stick boots both ways from disk.
# Sourced by build.sh, which provides log, die, run_logged, install_missing,
# stage_build, TOP and OUT.
# Inputs: $OUT/xen/{xen.gz,xen-debug.gz}, $OUT/kernel/vmlinuz,
# $OUT/initrd/initrd.img, $OUT/syslinux/ (ISOLINUX, iso/syslinux.stage.sh),
# iso/{isolinux.cfg,grub.cfg}.
# Outputs: $OUT/iso/{streamcd.iso,sizes.txt} and $OUT/streamcd.iso.
# Environment: SOURCE_DATE_EPOCH (default: the last commit's time),
# STREAMCD_BOOT_ARGS (added to every Linux command line, default none: the
# initrd has built-in defaults).
stage_register iso 80 "the hybrid BIOS/UEFI ISO: out/streamcd.iso"

# Every package here either puts bytes into the image or decides its layout,
# so their versions are part of the stage's input hash.
# ISOLINUX is our own build (the syslinux stage), hashed as a file.
ISO_PACKAGES=(xorriso libisofs6 libisoburn1 grub-efi-amd64-bin mtools dosfstools zopfli)

ISOLINUX_DIR=$OUT/syslinux
# ldlinux.c32 is ISOLINUX's second half; libcom32 (and libutil, for the
# menu) are what mboot.c32 and menu.c32 link against. menu.c32 rather than
# vesamenu.c32: text mode also works over the serial line.
ISOLINUX_FILES=(ldlinux.c32 libcom32.c32 libutil.c32 menu.c32 mboot.c32 bootmedia.c32)

# UEFI firmware loads the GRUB image from the ESP whole and uncompressed,
# and an EFI image cannot hold compressed modules. So the image carries
# only what it takes to find the ISO 9660 tree and inflate: search_fs_uuid
# (rather than search, which drags in the label and file searches too),
# iso9660, and gzio, which GRUB applies to every file it opens that is not
# marked "no decompress", modules included. The rest comes from
# /boot/grub/x86_64-efi/ on the ISO, each module gzip-compressed under its
# own name: a third of the bytes. No partition or FAT modules: the ISO 9660
# tree starts at the first sector of the CD or stick, so the whole disk is
# where GRUB finds it.
GRUB_CORE_MODULES=(search_fs_uuid iso9660 gzio)
# What grub.cfg uses, loaded by the image's early config (without normal's
# command.lst nothing loads by itself); their dependencies follow from
# moddep.lst.
GRUB_MODULES=(normal serial terminal efi_gop multiboot2 linux)
GRUB_LIB=/usr/lib/grub/x86_64-efi

ISO_VOLID=STREAMCD
# 5 MiB, the size the image has to stay under (tests/iso-size.sh).
ISO_MAX_BYTES=$((5 * 1024 * 1024))

# iso_config TEMPLATE ARGS: the loader configuration TEMPLATE with every
# command line filled in. Both loaders' templates go through here, so a
# menu entry boots with the same line from BIOS and from UEFI.
iso_config() {
	local template=$1 args=$2 text
	# Xen: dom0 gets a fixed 1 GiB (no ballooning from all of RAM down), the
	# console goes to both COM1 and the screen.
	local xen="dom0_mem=1024M,max:1024M console=com1,vga com1=115200,8n1"
	# The debug build talks only to COM1 and says everything it knows; its
	# gdb stub (CRASH_DEBUG) answers on COM2, after a crash or the debug key
	# '%' on the console (Ctrl-A three times switches input to Xen).
	local xen_debug="dom0_mem=1024M,max:1024M console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all gdb=com2 com2=115200,8n1"
	local dom0="console=hvc0 quiet${args:+ $args}"
	# No quiet: whoever boots the debug entry wants the kernel's messages.
	local dom0_debug="console=hvc0${args:+ $args}"
	# The last console= gets /dev/console: the screen, with COM1 mirrored.
	local linux="console=ttyS0,115200 console=tty0 quiet${args:+ $args}"
	text=$(<"$template")
	text=${text//@XEN_ARGS@/$xen}
	text=${text//@XEN_DEBUG_ARGS@/$xen_debug}
	text=${text//@DOM0_ARGS@/$dom0}
	text=${text//@DOM0_DEBUG_ARGS@/$dom0_debug}
	text=${text//@LINUX_ARGS@/$linux}
	text=${text//@TIMEOUT_S@/5}
	text=${text//@TIMEOUT_DS@/50}
	text=${text//@TITLE@/streamcd}
	[[ $text != *@[A-Z_]*@* ]] || die "iso: $template: unknown @...@ placeholder"
	printf '%s\n' "$text"
}

# iso_check_args ARGS: the line goes unquoted into grub.cfg and isolinux.cfg,
# so nothing either parser would take as syntax.
iso_check_args() {
	[[ $1 != *[\$\;\"\'\\\{\}\|\&\<\>\#]* && $1 != *$'\n'* ]] ||
		die "iso: STREAMCD_BOOT_ARGS may not hold \$ ; \" ' \\ { } | & < > # or newlines: $1"
}

# iso_epoch: SOURCE_DATE_EPOCH, or the last commit's time.
iso_epoch() {
	local epoch=${SOURCE_DATE_EPOCH:-}
	[[ -n $epoch ]] || epoch=$(git -C "$TOP" log -1 --format=%ct 2>/dev/null) ||
		die "iso: not in a git work tree; set SOURCE_DATE_EPOCH"
	[[ $epoch =~ ^[0-9]+$ ]] || die "iso: SOURCE_DATE_EPOCH is not a number: $epoch"
	printf '%s\n' "$epoch"
}

# iso_inputs_hash EPOCH ARGS INPUT...
iso_inputs_hash() {
	local epoch=$1 args=$2 f
	shift 2
	{
		printf '%s\n' "$epoch" "$args"
		dpkg-query -W -f='${Package} ${Version}\n' "${ISO_PACKAGES[@]}"
		for f in "$@" "$TOP"/iso/isolinux.cfg "$TOP"/iso/grub.cfg; do
			printf '== %s\n' "${f##*/}"
			sha256sum <"$f"
		done
		declare -f iso_make iso_config iso_check_args iso_epoch iso_grub_closure iso_grub_modules \
			iso_grub_image iso_esp iso_xorriso
		declare -p ISO_PACKAGES ISOLINUX_FILES GRUB_CORE_MODULES GRUB_MODULES GRUB_LIB ISO_VOLID
	} | sha256sum | cut -d' ' -f1
}

# iso_grub_closure MODULE...: the modules with everything they need, by
# GRUB's moddep.lst, one a line.
iso_grub_closure() {
	local -A seen=()
	local todo=("$@") m deps
	while ((${#todo[@]})); do
		m=${todo[0]}
		todo=("${todo[@]:1}")
		[[ -z ${seen[$m]:-} ]] || continue
		[[ -f $GRUB_LIB/$m.mod ]] || die "iso: no GRUB module $m in $GRUB_LIB"
		seen[$m]=1
		read -ra deps <<<"$(sed -n "s/^$m://p" "$GRUB_LIB/moddep.lst")"
		todo+=("${deps[@]}")
	done
	printf '%s\n' "${!seen[@]}" | sort
}

# iso_grub_modules DIR: GRUB_MODULES and their dependencies, less what the
# image has built in, gzip-compressed into DIR. zopfli: the smallest gzip,
# deterministic, no name or date in the header.
iso_grub_modules() {
	local dir=$1 m
	mkdir -p "$dir"
	for m in $(comm -23 <(iso_grub_closure "${GRUB_MODULES[@]}") \
		<(iso_grub_closure "${GRUB_CORE_MODULES[@]}")); do
		cp "$GRUB_LIB/$m.mod" "$dir/$m.mod"
		# zopfli writes FILE.gz beside FILE: run_logged owns stdout.
		zopfli --gzip -i15 "$dir/$m.mod"
		mv "$dir/$m.mod.gz" "$dir/$m.mod"
	done
}

# iso_grub_image OUT UUID: a standalone GRUB EFI binary. Its built-in
# config finds the ISO 9660 tree by the volume's UUID (GRUB derives it from
# the modification date xorriso writes), wherever the firmware started it:
# the El Torito image on a CD, the ESP on a USB stick, and loads the rest
# of GRUB from there.
iso_grub_image() {
	local out=$1 uuid=$2 early m
	early=$(dirname "$out")/early.cfg
	{
		printf '%s\n' "search.fs_uuid $uuid root"
		# shellcheck disable=SC2016 # $root is GRUB's variable, expanded by GRUB
		printf '%s\n' 'set prefix=($root)/boot/grub'
		for m in "${GRUB_MODULES[@]}"; do printf 'insmod %s\n' "$m"; done
	} >"$early"
	grub-mkimage -O x86_64-efi -p /boot/grub -c "$early" -o "$out" "${GRUB_CORE_MODULES[@]}"
}

# iso_esp IMG EFI_BINARY: the FAT EFI system partition, just big enough for
# EFI/BOOT/BOOTX64.EFI. --invariant, the fixed serial number and mtools'
# SOURCE_DATE_EPOCH (its "now" for every entry) keep it byte-identical.
iso_esp() {
	local img=$1 efi=$2 secs fat kib
	# One sector per cluster wastes the least. Around the file's sectors:
	# the boot sector, two FAT12s (1.5 bytes a cluster), the 16-entry root
	# directory and the two subdirectories, plus 1 KiB of slack; a fixed
	# margin would cost more than GRUB's image gained by shrinking.
	secs=$((($(stat -c %s "$efi") + 511) / 512))
	fat=$((((secs + 8) * 3 / 2 + 511) / 512))
	kib=$(((secs + 1 + 2 * fat + 1 + 2 + 1) / 2 + 1))
	rm -f "$img"
	# -g 1/1: a geometry of one-sector tracks, or mkfs.vfat rounds the size
	# down to whole 16 KiB tracks and the file no longer fits.
	mkfs.vfat -C --invariant -i 5354524d -n ESP -s 1 -r 16 -g 1/1 "$img" "$kib" >/dev/null
	mmd -i "$img" ::/EFI ::/EFI/BOOT
	mcopy -i "$img" "$efi" ::/EFI/BOOT/BOOTX64.EFI
}

# iso_xorriso ISO TREE ESP DATE: the hybrid image. isohdpfx.bin is the MBR
# that boots ISOLINUX from a disk; -isohybrid-gpt-basdat adds a GPT beside
# the MBR table; the ESP is appended once, as partition 2, and the El Torito
# UEFI entry points into it, so the GRUB image is not stored twice.
# Neither the isohybrid cylinder alignment nor the 300 KiB tail for CD
# writers' read-ahead is worth up to 1.3 MB here: firmware and Linux read
# partitions by LBA, and the tail of the image is the ESP, not ISO data.
iso_xorriso() {
	local iso=$1 tree=$2 esp=$3 date=$4
	xorriso -as mkisofs -o "$iso" \
		-V "$ISO_VOLID" -r -iso-level 3 \
		--modification-date="$date" --set_all_file_dates "$date" \
		--gpt_disk_guid modification-date \
		-isohybrid-mbr "$ISOLINUX_DIR/isohdpfx.bin" \
		-c isolinux/boot.cat \
		-b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4 -boot-info-table \
		-eltorito-alt-boot \
		-e --interval:appended_partition_2:all:: -no-emul-boot \
		-append_partition 2 0xef "$esp" \
		-isohybrid-gpt-basdat \
		-partition_cyl_align off -no-pad \
		"$tree"
}

# iso_build ARGS DEST CACHE_NAME: the ISO with ARGS added to every Linux
# command line, in DEST (streamcd.iso, sizes.txt), cached under CACHE_NAME.
iso_build() {
	local args=$1 dest=$2 cache=$3 epoch f total
	local xen=$OUT/xen/xen.gz xen_debug=$OUT/xen/xen-debug.gz
	local kernel=$OUT/kernel/vmlinuz initrd=$OUT/initrd/initrd.img
	install_missing iso "${ISO_PACKAGES[@]}"
	for f in "$xen" "$xen_debug" "$kernel" "$initrd" "$ISOLINUX_DIR/isolinux.bin"; do
		[[ -f $f ]] || die "iso: $f missing; build it first (./build.sh xen kernel initrd syslinux)"
	done
	iso_check_args "$args"
	epoch=$(iso_epoch)
	stage_build "$cache" "$(iso_inputs_hash "$epoch" "$args" "$xen" "$xen_debug" "$kernel" "$initrd" \
		"$ISOLINUX_DIR/isolinux.bin" "$ISOLINUX_DIR/isohdpfx.bin" "${ISOLINUX_FILES[@]/#/$ISOLINUX_DIR/}")" \
		"$dest" streamcd.iso sizes.txt -- iso_make "$args" "$epoch"
	((STAGE_BUILT)) || return 0
	cat "$dest/sizes.txt" >&2
	# The largest payload is what to trim first.
	log "iso: largest part: $(sed -n '2,5p' "$dest/sizes.txt" | sort -k2,2nr | awk 'NR == 1 { print $1 }')"
	total=$(stat -c %s "$dest/streamcd.iso")
	if ((total > ISO_MAX_BYTES)); then
		log "iso: WARNING: $total bytes, over the $ISO_MAX_BYTES-byte budget by $((total - ISO_MAX_BYTES))"
	fi
	log "iso: $dest/streamcd.iso, $total bytes"
}

# iso_make ARGS EPOCH DIR: streamcd.iso and sizes.txt in DIR.
iso_make() {
	local args=$1 epoch=$2 dir=$3 work=$3.work date uuid f size total
	local xen=$OUT/xen/xen.gz xen_debug=$OUT/xen/xen-debug.gz
	local kernel=$OUT/kernel/vmlinuz initrd=$OUT/initrd/initrd.img
	date=$(date -u -d "@$epoch" +%Y%m%d%H%M%S00)
	uuid=$(date -u -d "@$epoch" +%Y-%m-%d-%H-%M-%S-00)
	log "iso: building ($(date -u -d "@$epoch" '+%F %T') UTC, volume UUID $uuid)"
	rm -rf "$work"
	mkdir -p "$work/tree/boot/grub" "$work/tree/isolinux"
	cp "$xen" "$work/tree/boot/xen.gz"
	cp "$xen_debug" "$work/tree/boot/xen-debug.gz"
	cp "$kernel" "$work/tree/boot/vmlinuz"
	cp "$initrd" "$work/tree/boot/initrd.img"
	cp "$ISOLINUX_DIR/isolinux.bin" "$work/tree/isolinux/"
	for f in "${ISOLINUX_FILES[@]}"; do
		cp "$ISOLINUX_DIR/$f" "$work/tree/isolinux/"
	done
	iso_config "$TOP/iso/isolinux.cfg" "$args" >"$work/tree/isolinux/isolinux.cfg"
	iso_config "$TOP/iso/grub.cfg" "$args" >"$work/tree/boot/grub/grub.cfg"
	run_logged iso-grub iso_grub_image "$work/bootx64.efi" "$uuid"
	run_logged iso-grub-modules iso_grub_modules "$work/tree/boot/grub/x86_64-efi"
	# mtools stamps what it writes with SOURCE_DATE_EPOCH.
	SOURCE_DATE_EPOCH=$epoch run_logged iso-esp iso_esp "$work/efiboot.img" "$work/bootx64.efi"
	SOURCE_DATE_EPOCH=$epoch run_logged iso iso_xorriso "$work/streamcd.iso" "$work/tree" "$work/efiboot.img" "$date"

	total=$(stat -c %s "$work/streamcd.iso")
	{
		printf '%-34s %10s %8s\n' component bytes KiB
		for f in boot/xen.gz boot/xen-debug.gz boot/vmlinuz boot/initrd.img \
			isolinux/isolinux.bin "${ISOLINUX_FILES[@]/#/isolinux/}"; do
			size=$(stat -c %s "$work/tree/$f")
			printf '%-34s %10d %8d\n' "$f" "$size" $(((size + 1023) / 1024))
		done
		size=$(stat -c %s "$work/bootx64.efi")
		printf '%-34s %10d %8d\n' "EFI/BOOT/BOOTX64.EFI (GRUB)" "$size" $(((size + 1023) / 1024))
		size=$(cat "$work"/tree/boot/grub/x86_64-efi/*.mod | wc -c)
		printf '%-34s %10d %8d\n' "boot/grub/x86_64-efi/*.mod (gzip)" "$size" $(((size + 1023) / 1024))
		size=$(stat -c %s "$work/efiboot.img")
		printf '%-34s %10d %8d\n' "ESP (FAT, holds BOOTX64.EFI)" "$size" $(((size + 1023) / 1024))
		printf '%-34s %10d %8d\n' "streamcd.iso" "$total" $(((total + 1023) / 1024))
	} >"$work/sizes.txt"

	mv "$work/streamcd.iso" "$work/sizes.txt" "$dir/"
	rm -rf "$work"
}

stage_iso() {
	iso_build "${STREAMCD_BOOT_ARGS:-}" "$OUT/iso" iso
	ln -f "$OUT/iso/streamcd.iso" "$OUT/streamcd.iso" 2>/dev/null ||
		cp "$OUT/iso/streamcd.iso" "$OUT/streamcd.iso"
	log "iso: $OUT/streamcd.iso"
}
