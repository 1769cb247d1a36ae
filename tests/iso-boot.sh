#!/bin/bash
# The ISO boots: built by `./build.sh iso` from out/xen and out/kernel with a
# throw-away initramfs (tests/iso-test-init.c) that reports its kernel,
# hypervisor and command line and powers off. QEMU (TCG) boots it from CD
# and as a disk (what `dd` to a USB stick gives), with BIOS and with OVMF,
# picks each menu entry through the serial console, and checks that the
# right Xen and kernel ran with the right lines. Also: two builds with the
# same SOURCE_DATE_EPOCH are byte-identical, and the size is reported.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires qemu-system-x86_64 gcc cpio xz cmp
[[ -f /usr/share/OVMF/OVMF_CODE.fd ]] || { echo "FAIL: needs Debian's ovmf (./build.sh deps)"; exit 1; }
# Cached: seconds when they are built already.
"$REPO/build.sh" xen kernel syslinux

work=
tmpdir_make work
log "building the test initramfs"
mkdir -p "$work/initramfs"
gcc -Os -static -o "$work/initramfs/init" "$TESTS_DIR/iso-test-init.c"
(cd "$work/initramfs" && echo init | cpio -o -H newc --quiet) | xz --check=crc32 >"$work/initrd.img"

# build_iso DIR: the ISO from the real Xen and kernel and the test
# initramfs, in an out/ of its own and without the machine-wide cache.
build_iso() {
	mkdir -p "$1/xen" "$1/kernel" "$1/initrd"
	cp -r "$REPO/out/syslinux" "$1/"
	cp "$REPO/out/xen/xen.gz" "$REPO/out/xen/xen-debug.gz" "$1/xen/"
	cp "$REPO/out/kernel/vmlinuz" "$1/kernel/"
	cp "$work/initrd.img" "$1/initrd/"
	SOURCE_DATE_EPOCH=1700000000 STREAMCD_OUT=$1 STREAMCD_CACHE='' "$REPO/build.sh" iso
}
log "building the ISO twice"
build_iso "$work/a"
sleep 1 # a timestamp that leaks in would differ
build_iso "$work/b"
iso=$work/a/streamcd.iso
if cmp "$iso" "$work/b/streamcd.iso"; then
	pass "two builds with one SOURCE_DATE_EPOCH are byte-identical"
else
	fail "two builds with one SOURCE_DATE_EPOCH differ"
fi
echo "size: $(stat -c %s "$iso") bytes"
cat "$work/a/iso/sizes.txt"

XEN='Xen version 4\.17[^\n]* debug=n'
XEN_DEBUG='Xen version 4\.17[^\n]* debug=y'
# ISOLINUX (bootmedia.c32) says where it read the image from:
# streamcd.media=cd or disk. GRUB cannot tell (UEFI firmware shows it the
# El Torito image of a stick as a CD too) and says nothing.
DOM0='ISO-TEST-INIT: cmdline: console=hvc0 quiet streamcd.media=cd$'
DOM0_DISK='ISO-TEST-INIT: cmdline: console=hvc0 quiet streamcd.media=disk$'
DOM0_UEFI='ISO-TEST-INIT: cmdline: console=hvc0 quiet$'
LINUX='ISO-TEST-INIT: cmdline: [^\n]*console=ttyS0,115200 console=tty0 quiet streamcd.media=cd( |$)'
LINUX_UEFI='ISO-TEST-INIT: cmdline: [^\n]*console=ttyS0,115200 console=tty0 quiet$'
KERNEL='ISO-TEST-INIT: Linux version 6\.1'
# Ctrl-N moves down one entry in both menus; waiting for the menu's own
# text keeps the keys from arriving before it listens.
BIOS_MENU='Linux without a hypervisor'
UEFI_MENU='executed automatically in'
N='\x0e'

# boot NAME FIRMWARE MEDIA [--key REGEX=KEYS]... EXPECT...: the ISO booted by
# `./build.sh run` (no store server) and driven by tests/boot.py.
boot() {
	local name=$1 firmware=$2 media=$3
	shift 3
	log "boot: $name"
	if STREAMCD_OUT=$work/a STREAMCD_FIRMWARE=$firmware STREAMCD_MEDIA=$media STREAMCD_RUN_TIMEOUT=900 \
		python3 "$TESTS_DIR/boot.py" expect --log "$work/$name.log" "$@"; then
		pass "$name"
	else
		fail "$name (serial log: $(tail -c 600 "$work/$name.log" | tr -d '\r' | tail -n 5))"
	fi
}

boot bios-cd-default bios cdrom "$XEN" "$DOM0" "$KERNEL" 'hypervisor=xen'
boot bios-disk-default bios disk "$XEN" "$DOM0_DISK" "$KERNEL" 'hypervisor=xen'
boot uefi-cd-default uefi cdrom "$XEN" 'Bootloader: GRUB' 'EFI RAM map' "$DOM0_UEFI" "$KERNEL" 'hypervisor=xen'
boot uefi-disk-default uefi disk "$XEN" 'Bootloader: GRUB' 'EFI RAM map' "$DOM0_UEFI" "$KERNEL" 'hypervisor=xen'
boot bios-linux bios cdrom --key "$BIOS_MENU=$N\r" "$LINUX" "$KERNEL" 'hypervisor=none'
boot uefi-linux uefi cdrom --key "$UEFI_MENU=$N\r" "$LINUX_UEFI" "$KERNEL" 'hypervisor=none'
boot bios-debug bios cdrom --key "$BIOS_MENU=$N$N\r" "$XEN_DEBUG" 'loglvl=all guest_loglvl=all' \
	'ISO-TEST-INIT: cmdline: console=hvc0 streamcd.media=cd$' 'hypervisor=xen'
boot uefi-debug uefi cdrom --key "$UEFI_MENU=$N$N\r" "$XEN_DEBUG" 'loglvl=all guest_loglvl=all' \
	'ISO-TEST-INIT: cmdline: console=hvc0$' 'hypervisor=xen'
boot bios-noprefetch bios cdrom --key "$BIOS_MENU=$N$N$N\r" "$XEN" \
	'ISO-TEST-INIT: cmdline: console=hvc0 quiet streamcd.prefetch=0 streamcd.media=cd$' 'hypervisor=xen'
boot uefi-noprefetch uefi cdrom --key "$UEFI_MENU=$N$N$N\r" "$XEN" \
	'ISO-TEST-INIT: cmdline: console=hvc0 quiet streamcd.prefetch=0$' 'hypervisor=xen'
# The help's recipe: Tab, then the options before the last " --- initrd".
initrd_tail=' --- /boot/initrd.img'
back=$(printf '\\x02%.0s' $(seq ${#initrd_tail}))
boot bios-edited-line bios cdrom --key "$BIOS_MENU=\t$back streamcd.url=http://10.0.2.2:8/ streamcd.version=3\r" \
	"$XEN" 'ISO-TEST-INIT: cmdline: console=hvc0 quiet streamcd.media=cd streamcd.url=http://10.0.2.2:8/ streamcd.version=3$'
finish
