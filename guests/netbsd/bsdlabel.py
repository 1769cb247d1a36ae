#!/usr/bin/env python3
"""Write (or print) a NetBSD disklabel in sector 1 of a bare FFS image.

Why: the NetBSD/amd64 Xen PV guest's root disk is an FFS image made on
Linux with makefs(8), with no MBR and no label. NetBSD would fake a label
for it (see the notes below), but a real one makes partition `a` an
explicit 4.2BSD file system covering the image, gives disklabel(8) and
fsck something true to read, and keeps the disk from being taken for
something else (the kernel also probes an unlabelled disk for ISO 9660 /
UDF volume descriptors). Debian has no NetBSD disklabel(8), hence this.

Usage:
  bsdlabel.py IMAGE [--sectors N]   label IMAGE (N: disk size in 512-byte
                                    sectors; default: the image's size)
  bsdlabel.py --print IMAGE         decode the label, verify the checksum

Everything below was checked against NetBSD's source: the netbsd-10
revision where the source index had it, else the newest it had (the
revision is given where it is not netbsd-10's):

- struct disklabel, struct partition, DISKMAGIC, DKTYPE_*, FS_*:
  sys/sys/disklabel.h v1.127 (2022/11/01). 148 bytes of header, then
  16-byte partitions; with MAXPARTITIONS 16 the label is 404 bytes
  (DISKLABEL_SIZE 404 in sys/kern/subr_disk_mbr.c).
- LABELSECTOR 1, LABELOFFSET 0, MAXPARTITIONS 16, RAW_PART 3 ('d'),
  LABELUSESMBR 1: sys/arch/amd64/include/disklabel.h.
- The checksum: dkcksum()/dkcksum_sized() in sys/kern/subr_disk.c, the
  xor of the 16-bit words from the start of the label to the end of
  d_partitions[d_npartitions]; the label is valid when that xor is 0.
- How amd64 finds it: readdisklabel() in sys/kern/subr_disk_mbr.c
  (v1.46; files.amd64 builds it for amd64; there is no
  sys/arch/x86/x86/disksubr.c). With no MBR (no 0xAA55 at byte 510) it
  calls validate_label(a, 0), which reads sectors 0-2 and accepts the
  first spot (scanning in sizeof(long) steps) with d_magic == d_magic2
  == DISKMAGIC, d_npartitions <= MAXPARTITIONS and dkcksum() == 0; then
  convertdisklabel() (sys/kern/subr_disk.c) keeps 'd' (RAW_PART) as the
  raw partition when it starts at 0 and is not empty. writedisklabel()
  on a disk without an MBR writes at LABELSECTOR * secsize +
  LABELOFFSET: byte 512.
- Without a label readdisklabel() leaves a faked one: 'a' = whole disk,
  FS_BSDFFS, and RAW_PART = whole disk (then dk_getdisklabel() in
  sys/dev/dksubr.c v1.76 uses it). So the label is not strictly needed
  to boot; this tool makes the same layout explicit.
- Partitions 'c' and 'd': on x86 'c' is the NetBSD part of the disk and
  'd' the whole disk (distrib/common/bootimage/diskproto.mbr.in; and
  look_netbsd_part() in subr_disk_mbr.c puts the NetBSD MBR partition
  in 'c' when RAW_PART == 3). With no MBR the NetBSD part is the whole
  disk (diskproto.noswap.in: 'c' = the whole image), so c = d = disk.
- d_type: DKTYPE_ESDI (5), what xbd(4) passes to dk_init() in
  sys/arch/xen/xen/xbd_xenbus.c and what distrib/common/bootimage's
  diskproto*.in use ("type: ESDI", "disk: image"); geometry 63 sectors
  x 16 tracks is only advisory on a virtual disk.
- Sector 1 is free in an FFS image: FFS leaves BBSIZE (8192) bytes at
  BBOFF 0 for the boot blocks and the label ("UFS1 placed it 8K from the
  front to leave room for the disk label and a small bootstrap", fs.h);
  the superblock is at SBLOCK_UFS1 (8192) or SBLOCK_UFS2 (65536), magic
  FS_UFS1_MAGIC 0x011954 / FS_UFS2_MAGIC 0x19540119 in fs_magic, byte
  1372 of struct fs: sys/ufs/ffs/fs.h v1.70.2.1. The label (bytes
  512..915) never reaches byte 8192.
- Debian's makefs (MirBSD's, 20190105) puts even an FFSv2 superblock at
  8192, with fs_sblockloc = 8192. NetBSD mounts that: ffs_mountfs() in
  sys/ufs/ffs/ffs_vfsops.c (v1.335) tries SBLOCKSEARCH = {SBLOCK_UFS2,
  SBLOCK_UFS1, SBLOCK_FLOPPY, SBLOCK_PIGGY} and takes an FFSv2 magic
  wherever fs_sblockloc names the spot it was read from, an FFSv1 magic
  anywhere but SBLOCK_UFS2. find_ffs() applies the same rules (without
  SBLOCK_FLOPPY: a superblock at 0 would cover the label).
"""

import argparse
import os
import struct
import sys

SECSIZE = 512                  # DEV_BSIZE; xbd_xenbus.c: XEN_BSIZE == it
LABELSECTOR = 1                # sys/arch/amd64/include/disklabel.h
LABELOFFSET = 0
MAXPARTITIONS = 16
RAW_PART = 3
DISKMAGIC = 0x82564557         # sys/sys/disklabel.h
DKTYPE_ESDI = 5
FS_UNUSED = 0
FS_BSDFFS = 7
BBSIZE = 8192                  # sys/ufs/ffs/fs.h
SBLOCKSIZE = 8192
SBLOCK_UFS1 = 8192
SBLOCK_UFS2 = 65536
SBLOCK_PIGGY = 262144
FS_UFS1_MAGIC = 0x011954
FS_UFS2_MAGIC = 0x19540119
FS_MAGIC_OFF = 1372            # offsetof(struct fs, fs_magic)
NSECTORS = 63                  # advisory geometry
NTRACKS = 16
SECPERCYL = NSECTORS * NTRACKS

# struct disklabel up to d_partitions, little-endian, no padding (every
# field is naturally aligned): magic, type, subtype, typename[16],
# packname[16] (the union is 16 bytes on LP64 and ILP32), secsize,
# nsectors, ntracks, ncylinders, secpercyl, secperunit, sparespertrack,
# sparespercyl, acylinders, rpm, interleave, trackskew, cylskew,
# headswitch, trkseek, flags, drivedata[5], spare[5], magic2, checksum,
# npartitions, bbsize, sbsize.
HEAD = struct.Struct('<IHH16s16s6IHHI4H3I5I5IIHHII')
PART = struct.Struct('<IIIBBH')  # size, offset, fsize, fstype, frag, cpg
assert HEAD.size == 148 and PART.size == 16
CHECKSUM_OFF = 136             # offsetof(struct disklabel, d_checksum)

# FSTYPE_DEFN in sys/sys/disklabel.h v1.127, for --print.
FSTYPES = ['unused', 'swap', 'Version 6', 'Version 7', 'System V',
           '4.1BSD', 'Eighth Edition', '4.2BSD', 'MSDOS', '4.4LFS',
           'unknown', 'HPFS', 'ISO9660', 'boot', 'ADOS', 'HFS', 'FILECORE',
           'Linux Ext2', 'NTFS', 'RAID', 'ccd', 'jfs', 'Apple UFS', 'vinum',
           'UDF', 'SysVBFS', 'EFS', 'NiLFS', 'cgd', 'MINIX FSv3',
           'VMware vmkcore', 'VMware VMFS', 'VMware Reserved', 'ZFS']
DKTYPES = ['unknown', 'SMD', 'MSCP', 'old DEC', 'SCSI', 'ESDI', 'ST506',
           'HP-IB', 'HP-FL', 'type 9', 'floppy', 'ccd', 'vnd', 'ATAPI',
           'RAID', 'ld', 'jfs', 'cgd', 'vinum', 'flash', 'dm', 'rumpd', 'md']


class Refused(Exception):
    pass


def dkcksum(label, npartitions):
    """sys/kern/subr_disk.c dkcksum_sized(): xor of the 16-bit words."""
    end = HEAD.size + npartitions * PART.size
    words = struct.unpack('<%dH' % (end // 2), label[:end])
    total = 0
    for w in words:
        total ^= w
    return total


def pread(f, off, n):
    f.seek(off)
    return f.read(n)


def find_ffs(f):
    """Return (kind, fsize, bsize, sectors) of the FFS at the image's start.

    The rules of ffs_mountfs(): FFSv2 wherever its fs_sblockloc (byte
    1000 of struct fs) says it was written, FFSv1 never at SBLOCK_UFS2.
    Little-endian only: this is for an amd64 guest.
    """
    for off in (SBLOCK_UFS2, SBLOCK_UFS1, SBLOCK_PIGGY):
        sb = pread(f, off, SBLOCKSIZE)
        if len(sb) < SBLOCKSIZE:
            continue
        magic, = struct.unpack_from('<I', sb, FS_MAGIC_OFF)
        if magic == FS_UFS2_MAGIC:
            if struct.unpack_from('<q', sb, 1000)[0] != off:
                continue            # an alternate superblock, not the one
            kind = 'FFSv2'
            nfrags = struct.unpack_from('<q', sb, 1080)[0]  # fs_size
        elif magic == FS_UFS1_MAGIC and off != SBLOCK_UFS2:
            kind = 'FFSv1'
            nfrags = struct.unpack_from('<i', sb, 36)[0]    # fs_old_size
        else:
            continue
        bsize, fsize = struct.unpack_from('<ii', sb, 48)   # fs_bsize, fs_fsize
        return kind, fsize, bsize, nfrags * fsize // SECSIZE
    return None


def build_label(secperunit, fsize, bsize):
    whole = secperunit
    parts = [PART.pack(0, 0, 0, FS_UNUSED, 0, 0)] * MAXPARTITIONS
    # 'a': the file system. fsize/frag are what disklabel(8) shows; the
    # kernel mounts without them. cpg is left 0 (meaningless for FFSv2).
    parts[0] = PART.pack(whole, 0, fsize, FS_BSDFFS, bsize // fsize, 0)
    parts[2] = PART.pack(whole, 0, 0, FS_UNUSED, 0, 0)         # 'c'
    parts[RAW_PART] = PART.pack(whole, 0, 0, FS_UNUSED, 0, 0)  # 'd'
    head = HEAD.pack(
        DISKMAGIC, DKTYPE_ESDI, 0, b'image', b'streamcd',
        SECSIZE, NSECTORS, NTRACKS, -(-whole // SECPERCYL), SECPERCYL, whole,
        0, 0, 0,                      # spares per track/cyl, alt. cylinders
        3600, 1, 0, 0,                # rpm, interleave, trackskew, cylskew
        0, 0, 0,                      # headswitch, trkseek, flags
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  # drivedata, spare
        DISKMAGIC, 0, MAXPARTITIONS, BBSIZE, SBLOCKSIZE)
    label = bytearray(head + b''.join(parts))
    struct.pack_into('<H', label, CHECKSUM_OFF, dkcksum(label, MAXPARTITIONS))
    return bytes(label)


def is_label(sector):
    magic, = struct.unpack_from('<I', sector, 0)
    magic2, = struct.unpack_from('<I', sector, 132)
    return magic == DISKMAGIC and magic2 == DISKMAGIC


def write_label(path, sectors):
    try:
        f = open(path, 'r+b')
    except OSError as e:
        raise Refused('%s: %s' % (path, e.strerror))
    with f:
        size = os.fstat(f.fileno()).st_size
        if size % SECSIZE:
            raise Refused('%s: size %d is not a multiple of %d'
                          % (path, size, SECSIZE))
        boot = pread(f, 0, SECSIZE * 2)
        if len(boot) < SECSIZE * 2:
            raise Refused('%s: too small to hold a label' % path)
        # An MBR sends readdisklabel() into the NetBSD MBR partition
        # (scan_mbr() in subr_disk_mbr.c); sector 1 would then be wrong.
        if boot[510:512] == b'\x55\xaa':
            raise Refused('%s: sector 0 has an MBR signature; this labels '
                          'bare FFS images only' % path)
        sector = boot[SECSIZE:]
        if any(sector) and not is_label(sector):
            raise Refused('%s: bytes 512..1023 are in use and are not a '
                          'NetBSD disklabel' % path)
        ffs = find_ffs(f)
        if ffs is None:
            raise Refused('%s: no little-endian FFS superblock at byte %d, '
                          '%d or %d' % (path, SBLOCK_UFS2, SBLOCK_UFS1,
                                        SBLOCK_PIGGY))
        kind, fsize, bsize, fs_sectors = ffs
        if sectors is None:
            sectors = size // SECSIZE
        if sectors < fs_sectors:
            raise Refused('%s: %d sectors is less than the %s file system '
                          '(%d sectors)' % (path, sectors, kind, fs_sectors))
        if sectors > 0xffffffff:
            raise Refused('%s: %d sectors do not fit a disklabel (32 bits)'
                          % (path, sectors))
        if fsize <= 0 or bsize % fsize:
            raise Refused('%s: implausible %s superblock (bsize %d, fsize %d)'
                          % (path, kind, bsize, fsize))
        label = build_label(sectors, fsize, bsize)
        f.seek(LABELSECTOR * SECSIZE + LABELOFFSET)
        f.write(label.ljust(SECSIZE, b'\0'))
        f.flush()
        os.fsync(f.fileno())


def print_label(path):
    """Print the label the way disklabel(8) lays it out; False if invalid."""
    try:
        with open(path, 'rb') as f:
            sector = pread(f, LABELSECTOR * SECSIZE + LABELOFFSET, SECSIZE)
    except OSError as e:
        raise Refused('%s: %s' % (path, e.strerror))
    if len(sector) < SECSIZE or not is_label(sector):
        raise Refused('%s: no NetBSD disklabel at byte %d'
                      % (path, LABELSECTOR * SECSIZE))
    h = HEAD.unpack_from(sector, 0)
    (_, dtype, _, typename, packname, secsize, nsectors, ntracks, ncyl,
     secpercyl, secperunit, _, _, _, rpm, interleave, trackskew, cylskew,
     headswitch, trkseek, flags) = h[:21]
    checksum, npart, bbsize, sbsize = h[-4:]
    if npart > MAXPARTITIONS:
        raise Refused('%s: d_npartitions %d > MAXPARTITIONS %d'
                      % (path, npart, MAXPARTITIONS))
    name = lambda b: b.split(b'\0', 1)[0].decode('ascii', 'replace')
    print('type: %s' % (DKTYPES[dtype] if dtype < len(DKTYPES) else dtype))
    print('disk: %s' % name(typename))
    print('label: %s' % name(packname))
    print('flags: %#x' % flags)
    print('bytes/sector: %d' % secsize)
    print('sectors/track: %d' % nsectors)
    print('tracks/cylinder: %d' % ntracks)
    print('sectors/cylinder: %d' % secpercyl)
    print('cylinders: %d' % ncyl)
    print('total sectors: %d' % secperunit)
    print('rpm: %d' % rpm)
    print('interleave: %d' % interleave)
    print('trackskew: %d' % trackskew)
    print('cylinderskew: %d' % cylskew)
    print('headswitch: %d' % headswitch)
    print('track-to-track seek: %d' % trkseek)
    print('bbsize: %d' % bbsize)
    print('sbsize: %d' % sbsize)
    print()
    print('%d partitions:' % npart)
    print('#        size    offset     fstype [fsize bsize cpg/sgs]')
    for i in range(npart):
        size, off, fsize, fstype, frag, cpg = PART.unpack_from(
            sector, HEAD.size + i * PART.size)
        if size == 0 and fstype == FS_UNUSED:
            continue
        fsname = FSTYPES[fstype] if fstype < len(FSTYPES) else str(fstype)
        line = ' %c: %9d %9d %10s' % (ord('a') + i, size, off, fsname)
        if fstype == FS_BSDFFS:
            line += ' %5d %5d %5d' % (fsize, fsize * frag, cpg)
        print(line)
    ok = dkcksum(sector, npart) == 0
    print('checksum: %#06x %s' % (checksum, 'ok' if ok else 'BAD'))
    return ok


def main(argv):
    ap = argparse.ArgumentParser(
        prog='bsdlabel.py',
        description='Write or print a NetBSD disklabel in sector 1 of a '
                    'bare (no MBR) FFS image.')
    ap.add_argument('image', metavar='IMAGE')
    ap.add_argument('--sectors', type=int, metavar='N',
                    help='disk size in 512-byte sectors for c, d and a '
                         '(default: the image size)')
    ap.add_argument('--print', action='store_true', dest='show',
                    help='decode the label and verify its checksum')
    args = ap.parse_args(argv)
    try:
        if args.show:
            if args.sectors is not None:
                raise Refused('--sectors makes no sense with --print')
            if not print_label(args.image):
                raise Refused('%s: label checksum is wrong' % args.image)
        else:
            if args.sectors is not None and args.sectors <= 0:
                raise Refused('--sectors must be positive')
            write_label(args.image, args.sectors)
    except Refused as e:
        print('bsdlabel: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
