#!/bin/bash
# streamcd-stick (initrd/stick) on the real ISO written to a stick image, as
# dd would: the cache partition after the image, checked by other tools
# (partx and sfdisk read the MBR, gdisk's verify and a Python reader the
# GPT with its backup at the disk's end), the image's bytes untouched, the
# second run finding it, a loop device getting the partition from the
# kernel (BLKPG) and an ext2 on it; no room, not an ISO, dry run, --help.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires partx sfdisk sgdisk losetup mkfs.ext2 e2fsck cmp
"$REPO/build.sh" xen kernel hcloop-static rootfs initrd syslinux iso >/dev/null
# Under ASan and UBSan: the device paths (sysfs, BLKPG) have no unit test.
make -s -C "$REPO/initrd/stick" SAN=1 build-san/streamcd-stick
TOOL=$REPO/initrd/stick/build-san/streamcd-stick
# What the initrd carries: static, musl (./build.sh initrd made it).
SHIPPED=$REPO/initrd/stick/build-static/streamcd-stick
ISO=$REPO/out/streamcd.iso
tmpdir_make work
iso_bytes=$(stat -c %s "$ISO")
iso_sectors=$((iso_bytes / 512))

# gpt_check IMAGE START SECTORS: the primary and the backup GPT are valid,
# the backup at the last sector, both listing streamcd-cache over the range.
gpt_check() {
	python3 - "$@" <<-'EOF'
		import struct, sys, zlib
		path, start, sectors = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		f = open(path, "rb")
		disk = f.seek(0, 2) // 512
		def header(lba):
		    f.seek(lba * 512)
		    h = f.read(512)
		    assert h[:8] == b"EFI PART", f"no GPT header at {lba}"
		    size = struct.unpack_from("<I", h, 12)[0]
		    crc = struct.unpack_from("<I", h, 16)[0]
		    assert zlib.crc32(h[:16] + b"\0" * 4 + h[20:size]) == crc, f"header {lba}: bad CRC"
		    my, alt, first, last = struct.unpack_from("<QQQQ", h, 24)
		    elba, n, esz, ecrc = struct.unpack_from("<QIII", h, 72)
		    f.seek(elba * 512)
		    ents = f.read(n * esz)
		    assert zlib.crc32(ents) == ecrc, f"entries of {lba}: bad CRC"
		    return my, alt, last, ents, esz
		my, alt, last, ents, esz = header(1)
		assert alt == disk - 1, f"backup at {alt}, not at the last sector {disk - 1}"
		bmy, balt, blast, bents, _ = header(alt)
		assert (bmy, balt, blast) == (alt, 1, last), "the backup header does not mirror the primary"
		assert bents == ents, "the backup's entries differ"
		found = [e for e in (ents[i:i + esz] for i in range(0, len(ents), esz))
		         if e[56:56 + 28].decode("utf-16-le") == "streamcd-cache"]
		assert len(found) == 1, f"{len(found)} streamcd-cache entries"
		first, lastp = struct.unpack_from("<QQ", found[0], 32)
		assert (first, lastp - first + 1) == (start, sectors), f"entry {first}..{lastp}"
		assert lastp <= last, "the partition ends after the last usable sector"
		print(f"GPT valid: backup at {alt}, last usable {last}, streamcd-cache {first}..{lastp}")
	EOF
}

# The image as dd writes it onto a 512 MiB stick.
stick=$work/stick.img
cp "$ISO" "$stick"
truncate -s 512M "$stick"
cp "$stick" "$work/plain.img"
sgdisk -v "$work/plain.img" >"$work/plain.verify" 2>&1 || true
plain_problems=$(sed -n 's/^Identified \([0-9]*\) problems.*/\1/p' "$work/plain.verify")

expect "--dry-run: status" 0 "$(status "$TOOL" --dry-run "$stick")"
says "--dry-run: says what it would do" "would add partition 3"
expect "--dry-run: nothing written" "$(sha256sum <"$work/plain.img")" "$(sha256sum <"$stick")"

expect "first run: status" 0 "$(status "$TOOL" "$stick")"
read -r node slot start sectors state < <(grep -v '^streamcd-stick:' "$work/out")
expect "first run: partition 3 of an image file, new" "- 3 new" "$node $slot $state"
expect "it starts on the first MiB after the image" $(((iso_sectors + 2047) / 2048 * 2048)) "$start"
if ((sectors >= (512 - 6) * 2048 && sectors % 8 == 0)); then
	pass "it fills the stick: $sectors sectors"
else
	fail "it should fill the stick: $sectors sectors"
fi
expect "partx (util-linux) reads partition 3" "$start $sectors" \
	"$(partx -g -o START,SECTORS -n 3 "$stick" | tr -s ' ' | sed 's/^ //')"
if sfdisk -d "$stick" | grep -q "stick.img3 : start= *$start, size= *$sectors, type=83"; then
	pass "sfdisk: a Linux partition in the MBR"
else
	fail "sfdisk: $(sfdisk -d "$stick")"
fi
if out=$(gpt_check "$stick" "$start" "$sectors" 2>&1); then pass "$out"; else fail "GPT: $out"; fi
sgdisk -v "$stick" >"$work/verify" 2>&1 || true
problems=$(sed -n 's/^Identified \([0-9]*\) problems.*/\1/p' "$work/verify")
if [[ -n $plain_problems && -n $problems ]] && ((problems < plain_problems)); then
	pass "gdisk finds $problems problems, $plain_problems before (the backup GPT is at the end now)"
else
	fail "gdisk: $problems problems after, $plain_problems before: $(cat "$work/verify")"
fi
# Only the MBR and the primary GPT (sectors 0-63) and the old backup
# header (the image's last sector) may change.
if cmp -s -i $((64 * 512)) -n $(((iso_sectors - 65) * 512)) "$ISO" "$stick"; then
	pass "the image's bytes are untouched"
else
	fail "the image's bytes changed: $(cmp -i $((64 * 512)) -n $(((iso_sectors - 65) * 512)) "$ISO" "$stick" 2>&1)"
fi
expect "the image's boot code and first partitions are kept" \
	"$(head -c 446 "$ISO" | sha256sum) $(head -c 478 "$ISO" | tail -c 32 | sha256sum)" \
	"$(head -c 446 "$stick" | sha256sum) $(head -c 478 "$stick" | tail -c 32 | sha256sum)"

before=$(sha256sum <"$stick")
expect "second run: status" 0 "$(status "$TOOL" "$stick")"
says "second run: the same partition, existing" "^- 3 $start $sectors existing$"
expect "second run: nothing written" "$before" "$(sha256sum <"$stick")"

# A loop device: the host's kernel may read no partition tables, so the
# partition comes from the tool's BLKPG; then a filesystem on it.
loop=$(losetup -f --show "$stick")
cleanup_add "losetup -d $loop"
expect "loop device: status" 0 "$(status "$TOOL" "$loop")"
says "loop device: its partition 3 device" "^${loop}p3 3 $start $sectors existing$"
if [[ -b ${loop}p3 ]] && (($(blockdev --getsz "${loop}p3") == sectors)); then
	pass "${loop}p3 is the partition"
else
	fail "no ${loop}p3 of $sectors sectors"
fi
expect "the initrd's static build on the loop device too" 0 "$(status "$SHIPPED" "$loop")"
says "the same answer" "^${loop}p3 3 $start $sectors existing$"
expect "mkfs.ext2 on it" 0 "$(status mkfs.ext2 -q -L streamcd-cache "${loop}p3")"
mkdir "$work/mnt"
mount "${loop}p3" "$work/mnt"
head -c 50M /dev/urandom >"$work/mnt/fill"
umount "$work/mnt"
expect "the filesystem is clean" 0 "$(status e2fsck -fn "${loop}p3")"
if cmp -s -i $((64 * 512)) -n $(((iso_sectors - 65) * 512)) "$ISO" "$stick"; then
	pass "the image's bytes are still untouched"
else
	fail "writing the cache changed the image"
fi

# Too small a stick: nothing is written.
cp "$ISO" "$work/small.img"
truncate -s $((iso_bytes + 10 * 1024 * 1024)) "$work/small.img"
before=$(sha256sum <"$work/small.img")
expect "no room: status 3" 3 "$(status "$TOOL" "$work/small.img")"
says "no room: says how much there is and needs" "MiB free after the image .*a cache needs 64 MiB"
expect "no room: nothing written" "$before" "$(sha256sum <"$work/small.img")"
expect "--min-mib 4: it fits" 0 "$(status "$TOOL" --min-mib 4 "$work/small.img")"

truncate -s 64M "$work/zero.img"
expect "not an ISO: status 1" 1 "$(status "$TOOL" "$work/zero.img")"
says "not an ISO: says so" "no ISO 9660 volume"
expect "no such file: status 1" 1 "$(status "$TOOL" "$work/nothing")"
says "no such file: names it" "cannot open $work/nothing"
expect "no disk holds the image here: status 2" 2 "$(status "$TOOL" --wait 0)"
says "and says so" "no writable disk holds the STREAMCD image"
# --expect (the boot loader read the image from a disk): no giving up after
# a second because no USB disk is being probed; the whole --wait.
t0=$(date +%s%N)
expect "--expect: no disk here either: status 2" 2 "$(status "$TOOL" --expect --wait 2)"
waited=$((($(date +%s%N) - t0) / 1000000))
if ((waited >= 2000)); then
	pass "--expect --wait 2 looked for 2 s ($waited ms)"
else
	fail "--expect --wait 2 gave up after $waited ms"
fi
says "--expect: says how long it looked" "no disk holding the STREAMCD image showed up within 2 s"
expect "--help" 0 "$(status "$TOOL" --help)"
says "--help: usage" "^Usage: streamcd-stick"
expect "a bad option: status 1" 1 "$(status "$TOOL" --no-such-option)"
finish
