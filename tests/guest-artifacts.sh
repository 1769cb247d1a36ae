#!/bin/bash
# Guest recipes built from upstream artifacts (guests/artifacts.sh,
# guests/README.md "Upstream artifacts"), with an OS of the test's own
# making in the place of NetBSD's or 9front's release files: a CD (ISOLINUX,
# the guest kernel and an initramfs), a kernel, an initramfs and a "set"
# (a tar archive) converted to a NetBSD-style FFS root by guests/netbsd's
# own code. The recipes come in through STREAMCD_GUESTS (bring your own OS).
# Checked: the pinned files are downloaded from a web server and checked; a
# missing one leaves its recipe out with the URL to fetch it from, and the
# build goes on; --from takes them from a directory, and refuses a wrong file
# naming both hashes; a bad artifacts line stops the build; the FFS image
# round-trips through the store and reads back right (tests/ffsread.py);
# then in QEMU, with Xen, from that store: the HVM recipe boots the CD and
# the PV recipe its kernel with the FFS disk (./build.sh matrix), and the
# recipe left out is a SKIP with its reason.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
. "$(dirname "$0")/boot-lib.sh"
requires python3 curl gcc cpio xorriso nginx qemu-system-x86_64 fusermount3
boot_build >/dev/null
command -v makefs >/dev/null || apt-get install -y -q makefs >/dev/null
tmpdir_make work
# The store the boot serves is in here, and nginx's workers are not root.
chmod 755 "$work"
OUT=$REPO/out

# --- the "upstream" files, made here -------------------------------------
up=$work/upstream
mkdir -p "$up" "$work/initramfs" "$work/cd/isolinux"
gcc -Os -static -o "$work/initramfs/init" "$TESTS_DIR/iso-test-init.c"
(cd "$work/initramfs" && echo init | cpio -o -H newc --quiet) >"$up/testos-initrd.cpio"
cp "$OUT/guest-kernel/vmlinuz" "$up/testos-vmlinuz"
cp "$OUT/syslinux/isolinux.bin" "$OUT/syslinux/ldlinux.c32" "$work/cd/isolinux/"
cp "$up/testos-vmlinuz" "$work/cd/vmlinuz"
cp "$up/testos-initrd.cpio" "$work/cd/initrd"
# As linux-hvm's: 115200 baud and quiet. At the 8250 driver's default of
# 9600 each character is a wait on the emulated UART of many VM exits, and
# nested SVM under QEMU TCG does not survive a kernel's whole log that way
# for long: a triple fault in the kernel's serial output, 3 launches of 3
# seen here (2026-12-07), and 1 of 2 still at 115200 without quiet.
printf 'default testos\nlabel testos\n  kernel /vmlinuz\n  append initrd=/initrd console=ttyS0,115200 quiet\n' \
	>"$work/cd/isolinux/isolinux.cfg"
xorriso -as mkisofs -quiet -o "$work/testos.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
	-no-emul-boot -boot-load-size 4 -boot-info-table "$work/cd" 2>/dev/null
gzip -n <"$work/testos.iso" >"$up/testos-cd.iso.gz"
# A set as NetBSD's are: owners by number, setuid, a hard link, a symbolic
# link, a device node and a fifo, a file of several blocks.
python3 - "$up/testos-base.tar.xz" <<-'EOF'
	import io, tarfile, sys
	def add(t, name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, **kw):
	    ti = tarfile.TarInfo(name)
	    ti.type, ti.mode, ti.uid, ti.gid, ti.size = kind, mode, uid, gid, len(data)
	    for k, v in kw.items():
	        setattr(ti, k, v)
	    t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
	with tarfile.open(sys.argv[1], "w:xz") as t:
	    add(t, ".", tarfile.DIRTYPE, mode=0o755)
	    add(t, "./bin", tarfile.DIRTYPE, mode=0o755)
	    add(t, "./bin/sh", data=b"#!not really a shell\n", mode=0o555)
	    add(t, "./bin/su", data=b"su" * 40000, mode=0o4555)
	    add(t, "./bin/ksh", tarfile.LNKTYPE, linkname="./bin/sh", mode=0o555)
	    add(t, "./bin/csh", tarfile.SYMTYPE, linkname="sh", mode=0o777)
	    add(t, "./etc", tarfile.DIRTYPE, mode=0o755)
	    add(t, "./etc/rc.conf", data=b"rc_configured=NO\n")
	    add(t, "./var/spool/lpd", tarfile.DIRTYPE, mode=0o770, uid=1, gid=7)
	    add(t, "./var/spool/fifo", tarfile.FIFOTYPE, mode=0o600)
	    add(t, "./dev/tty", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=0)
	EOF

# pin FILE: the artifacts line for upstream FILE, served at $U.
pin() {
	printf '%s %s sha256:%s %s/%s\n' "$1" "$(stat -c %s "$up/$1")" "$(sha256sum <"$up/$1" | cut -d' ' -f1)" "$U" "$1"
}

# --- the recipes ---------------------------------------------------------
serve_python "$up" U
R=$work/recipes/testos
mkdir -p "$R/root/etc"
echo 'rc_configured=YES' >"$R/root/etc/rc.conf"
{
	echo "# the test's own OS, made by tests/guest-artifacts.sh"
	for f in testos-cd.iso.gz testos-vmlinuz testos-initrd.cpio testos-base.tar.xz; do pin "$f"; done
	echo "testos-gone.img 1234 sha256:$(printf '0%.0s' {1..64}) $U/gone/testos-gone.img"
} >"$R/artifacts"
cat >"$R/images.sh" <<-'EOF'
	# shellcheck shell=bash
	# shellcheck source=guests/netbsd/images.sh
	. "$TOP/guests/netbsd/images.sh"
	image_testos_cd_artifacts() { echo testos-cd.iso.gz; }
	image_testos_cd_inputs() { :; }
	image_testos_cd() { gzip -dc "$(artifact testos-cd.iso.gz)" >"$1"; }
	image_testos_kernel_artifacts() { echo testos-vmlinuz; }
	image_testos_kernel_inputs() { :; }
	image_testos_kernel() { cp "$(artifact testos-vmlinuz)" "$1"; }
	image_testos_initrd_artifacts() { echo testos-initrd.cpio; }
	image_testos_initrd_inputs() { :; }
	image_testos_initrd() { cp "$(artifact testos-initrd.cpio)" "$1"; }
	image_testos_ffs_artifacts() { echo testos-base.tar.xz; }
	image_testos_ffs_inputs() { :; }
	image_testos_ffs() { netbsd_ffs "$1" "$GUEST_DIR/root" "$(artifact testos-base.tar.xz)"; }
	image_testos_gone_artifacts() { echo testos-gone.img; }
	image_testos_gone_inputs() { :; }
	image_testos_gone() { cp "$(artifact testos-gone.img)" "$1"; }
EOF
cat >"$R/testos-hvm.guest" <<-'EOF'
	# a CD booted by SeaBIOS: ISOLINUX, then Linux with the test's init
	title = testos CD (HVM)
	mode = hvm
	boot = cdrom
	disk = testos-cd cdrom
	memory = 128
	console = serial
	# what this case tests is the CD from artifacts; screens are
	# tests/boot-screen.sh's and linux-hvm's
	display = serial
	network = none
	ready = ISO-TEST-INIT: hypervisor=xen
	ready_timeout = 900
EOF
cat >"$R/testos-pv.guest" <<-'EOF'
	# a kernel, a ramdisk and a disk of FFS from a set: the disk must show
	title = testos PV, FFS disk
	mode = pv
	kernel = testos-kernel
	ramdisk = testos-initrd
	cmdline = console=hvc0 iso_test_stay
	disk = testos-ffs
	memory = 128
	network = none
	ready = disks=[^\r]*xvda
EOF
cat >"$R/testos-gone.guest" <<-'EOF'
	title = testos whose disk is nowhere
	mode = pv
	kernel = testos-kernel
	disk = testos-gone
	ready = never
EOF

# --- downloads -----------------------------------------------------------
B=$work/b
expect "the build with a missing artifact succeeds" 0 "$(guests_build "$B" "$R" "$work/build.log")"
cp "$work/build.log" "$work/out"
says "artifacts are downloaded from their URL" "downloading $U/testos-cd.iso.gz"
says "and checked" "artifact testos-cd.iso.gz from $U/testos-cd.iso.gz, sha256 checked"
says "the missing one is named with its URL" "artifact testos-gone.img is missing: fetch it from $U/gone/testos-gone.img"
says "its recipe is left out" "testos-gone LEFT OUT of the catalogue"
cp "$B/guests/catalog" "$work/out"
says "the catalogue has the HVM recipe" "^guest = testos-hvm$"
says "and the PV recipe" "^guest = testos-pv$"
says_not "but not the one left out" "^guest = testos-gone$"
says "which it names with the reason" "^# left out: testos-gone: image testos-gone: artifact testos-gone.img: $U/gone/testos-gone.img: curl: (22) .* 404; artifact testos-gone.img is missing: fetch it from $U/gone/testos-gone.img"

# --- the FFS image, through the store --------------------------------------
mnt=
tmpdir_make mnt
"$HCLOOP" mount -P off "$B/store" testos-ffs "$mnt"
cleanup_add "hc_umount $(printf %q "$mnt")"
if cmp -s "$mnt/testos-ffs" "$B/guests/images/testos-ffs/image"; then
	pass "the FFS image reads back from the store byte for byte"
else
	fail "the FFS image from the store differs from the one built"
fi
python3 "$TESTS_DIR/ffsread.py" "$mnt/testos-ffs" >"$work/ffs.txt"
sh_sum=$(printf '#!not really a shell\n' | sha256sum | cut -d' ' -f1)
ffs_has() {
	if grep -qx -- "$2" "$work/ffs.txt"; then pass "FFS: $1"; else fail "FFS: $1: no line '$2' in: $(head -c 1500 "$work/ffs.txt")"; fi
}
ffs_has "a file with the set's mode" "./bin/sh file 0555 0 0 21 $sh_sum"
ffs_has "a hard link, same contents" "./bin/ksh file 0555 0 0 21 $sh_sum"
ffs_has "setuid kept" "./bin/su file 4555 0 0 80000 $(python3 -c 'import sys; sys.stdout.write("su" * 40000)' | sha256sum | cut -d' ' -f1)"
ffs_has "a symbolic link" "./bin/csh link 0777 0 0 2 sh"
ffs_has "owners by number" "./var/spool/lpd dir 0770 1 7 512 -"
ffs_has "a fifo" "./var/spool/fifo fifo 0600 0 0 0 -"
ffs_has "the set's device node" "./dev/tty char 0666 0 0 0 1,0"
ffs_has "the overlay over the set" "./etc/rc.conf file 0644 0 0 18 $(echo rc_configured=YES | sha256sum | cut -d' ' -f1)"
if grep -q "^./dev/xbd0a block " "$work/ffs.txt"; then pass "FFS: dev.spec's disk node"; else fail "FFS: no ./dev/xbd0a from dev.spec"; fi
python3 "$REPO/guests/netbsd/bsdlabel.py" --print "$mnt/testos-ffs" >"$work/out" 2>&1 || true
says "a disklabel whose partition a is the file system" "a:.*4.2BSD"

# --- --from ------------------------------------------------------------------
kill "$U_PID"
mkdir -p "$work/from"
cp "$up"/testos-* "$work/from/"
good=$(sha256sum <"$up/testos-cd.iso.gz" | cut -d' ' -f1)
printf '\x00' | dd of="$work/from/testos-cd.iso.gz" bs=1 seek=100 conv=notrunc status=none
bad=$(sha256sum <"$work/from/testos-cd.iso.gz" | cut -d' ' -f1)
expect "a wrong file in --from: the build goes on" 0 "$(guests_build "$work/b2" "$R" "$work/out" --from "$work/from")"
says "the wrong file is refused naming both hashes" "testos-cd.iso.gz refused: sha256 $bad, the recipe pins sha256 $good"
says "and its recipe is left out" "testos-hvm LEFT OUT"
says "the right files are taken from --from" "artifact testos-vmlinuz from $work/from, sha256 checked"
cp "$up/testos-cd.iso.gz" "$work/from/"
expect "the right file in --from: built" 0 "$(guests_build "$work/b3" "$R" "$work/out" --from "$work/from")"
says "nothing downloaded" "artifact testos-cd.iso.gz from $work/from"
says_not "nothing tried on the network" "downloading $U/testos-cd"
expect "--from a directory that is not: refused" 1 "$(guests_build "$work/b4" "$R" "$work/out" --from "$work/nowhere")"
says "naming it" "no such directory"

# --- a bad artifacts line stops the build ------------------------------------
cp "$R/artifacts" "$work/artifacts.good"
echo "testos-x.img 12 md5:abc $U/x" >>"$R/artifacts"
expect "a bad pin stops the build" 1 "$(guests_build "$work/b5" "$R" "$work/out" --from "$work/from")"
says "naming the file and line" "artifacts:$(wc -l <"$R/artifacts"): hash 'md5:abc'"
cp "$work/artifacts.good" "$R/artifacts"

# --- in QEMU: dom0 from the test's store, the guests launched -----------------
rc=0
# The cases' logs and screenshots stay beside this test's log.
M=$REPO/out/test-logs/guest-artifacts.matrix
rm -rf "$M"
"$REPO/build.sh" matrix --store "$B/store" --out "$M" 'guest-testos-*' >"$work/out" 2>&1 || rc=$?
cat "$work/out"
expect "the matrix of the test's guests" 0 "$rc"
junit_cases "$M/junit.xml" >"$work/out" 2>&1 || true
says "the HVM recipe booted its CD" "^guest-testos-hvm pass"
says "the PV recipe booted with its FFS disk" "^guest-testos-pv pass"
says "the recipe left out is a SKIP with its reason" "^guest-testos-gone skipped the build left it out of the catalogue: image testos-gone: artifact testos-gone.img: "
finish
