#!/usr/bin/python3
"""Read-only reader of FFS (UFS1/UFS2, little-endian) file system images.

The test suite builds NetBSD root disks with `makefs -t ffs` and has to check
what ended up inside.  The Linux host has no UFS driver, so the image cannot be
mounted; and makefs is the thing under test, so the check must not reuse its
code.  This is an independent reader written from NetBSD's fs.h and dinode.h.

Usage:
  ffsread.py IMAGE              one line per object, sorted by path:
                                  PATH TYPE MODE UID GID SIZE EXTRA
  ffsread.py --cat PATH IMAGE   a regular file's contents to stdout
  ffsread.py --info IMAGE       superblock facts, one "key value" a line

PATH is "." for the root, "./etc/rc.conf" below it.  TYPE is one of
file/dir/link/char/block/fifo/socket, MODE four octal digits (with
setuid/setgid/sticky).  EXTRA is the sha256 of a file's contents, a link's
target, "MAJOR,MINOR" of a device (NetBSD dev_t encoding), otherwise "-".
In PATH and link targets, whitespace, backslash, control characters and
bytes that are not UTF-8 are written as \\ooo (octal, one per byte), so a
line always splits into seven fields.

A damaged or foreign image exits 1 with "ffsread: IMAGE: reason".
"""
import argparse
import hashlib
import os
import signal
import struct
import sys

SBLOCK_SEARCH = (65536, 8192, 0, 262144)  # SBLOCKSEARCH order from fs.h
SBLOCK_UFS2 = 65536
SBLOCKSIZE = 8192
UFS1_MAGIC = 0x011954
UFS2_MAGIC = 0x19540119
SWAPPED_MAGICS = (0x54190100, 0x19015419)
FS_44INODEFMT = 2
FS_FLAGS_UPDATED = 0x80
ROOTINO = 2
NDADDR = 12
DT_WHT = 14

# struct fs field byte offsets (fs.h); the same in UFS1 and UFS2 layouts.
SB_FIELDS = {
    "sblkno": (8, "i"), "cblkno": (12, "i"), "iblkno": (16, "i"),
    "dblkno": (20, "i"), "old_cgoffset": (24, "i"), "old_cgmask": (28, "i"),
    "old_size": (36, "i"), "ncg": (44, "i"), "bsize": (48, "i"),
    "fsize": (52, "i"), "frag": (56, "i"), "fragshift": (96, "i"),
    "nindir": (116, "i"), "inopb": (120, "i"), "ipg": (184, "i"),
    "fpg": (188, "i"), "old_flags": (211, "B"), "sblockloc": (1000, "q"),
    "size": (1080, "q"), "maxsymlinklen": (1320, "i"),
    "old_inodefmt": (1324, "i"), "magic": (1372, "i"),
}

TYPES = {0o010000: "fifo", 0o020000: "char", 0o040000: "dir",
         0o060000: "block", 0o100000: "file", 0o120000: "link",
         0o140000: "socket"}


class FsError(Exception):
    """The image is not a readable FFS file system (or lacks a path)."""


class Inode:
    """The fields of a struct ufs1_dinode / ufs2_dinode this tool needs."""

    def __init__(self, number, raw, ufs2, old_ids):
        self.number = number
        if ufs2:
            self.mode, self.uid, self.gid = struct.unpack_from("<H2xII", raw)
            self.size, = struct.unpack_from("<Q", raw, 16)
            self.db = struct.unpack_from("<12q", raw, 112)
            self.ib = struct.unpack_from("<3q", raw, 208)
            self.inline = raw[112:232]
            self.rdev = self.db[0] & 0xffffffffffffffff
        else:
            self.mode, = struct.unpack_from("<H", raw)
            self.size, = struct.unpack_from("<Q", raw, 8)
            self.db = struct.unpack_from("<12i", raw, 40)
            self.ib = struct.unpack_from("<3i", raw, 88)
            self.inline = raw[40:100]
            self.rdev = self.db[0] & 0xffffffff
            # 4.2BSD-format inodes kept 16-bit ids where 4.4 has di_u.
            fmt = "<4xHH" if old_ids else "<112xII"
            self.uid, self.gid = struct.unpack_from(fmt, raw)
        self.type = TYPES.get(self.mode & 0o170000)
        if self.type is None:
            raise FsError("inode %d: unknown file type in mode %o"
                          % (number, self.mode))


class Ffs:
    """An opened image: superblock, inodes, file data, directories."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY)
        self.image_size = os.fstat(self.fd).st_size
        self.sb_offset, self.sb = self._find_superblock()
        self.ufs2 = self.sb["magic"] == UFS2_MAGIC
        self._check_superblock()

    # -- superblock ---------------------------------------------------------

    def _find_superblock(self):
        skipped = []
        for offset in SBLOCK_SEARCH:
            raw = self._read(offset, SBLOCKSIZE, must=False)
            if len(raw) < SBLOCKSIZE:
                continue
            sb = {name: struct.unpack_from("<" + fmt, raw, off)[0]
                  for name, (off, fmt) in SB_FIELDS.items()}
            if sb["magic"] in SWAPPED_MAGICS:
                skipped.append("; big-endian magic at %d (unsupported)"
                               % offset)
            if sb["magic"] not in (UFS1_MAGIC, UFS2_MAGIC):
                continue
            # As NetBSD's ffs_mountfs: skip backup copies in cylinder groups.
            # A superblock records its own place, except an old UFS1 one,
            # where the copy at 64K is cylinder group 0's with 64K blocks.
            if (sb["magic"] == UFS1_MAGIC
                    and not sb["old_flags"] & FS_FLAGS_UPDATED):
                if offset == SBLOCK_UFS2:
                    skipped.append("; old UFS1 magic at %d ignored" % offset)
                    continue
            elif sb["sblockloc"] != offset:
                skipped.append("; magic at %d is a copy of the one at %d"
                               % (offset, sb["sblockloc"]))
                continue
            return offset, sb
        raise FsError("no FFS superblock (magic 0x%06x or 0x%08x) at offsets "
                      "%s%s" % (UFS1_MAGIC, UFS2_MAGIC,
                                ", ".join(map(str, SBLOCK_SEARCH)),
                                "".join(skipped)))

    def _check_superblock(self):
        # Catch nonsense early: every later address computation uses these.
        sb = self.sb
        bsize, fsize, frag = sb["bsize"], sb["fsize"], sb["frag"]
        inode_size = 256 if self.ufs2 else 128
        ok = (bsize in (4096, 8192, 16384, 32768, 65536)
              and frag in (1, 2, 4, 8) and fsize * frag == bsize
              and sb["fragshift"] == frag.bit_length() - 1
              and sb["inopb"] == bsize // inode_size
              and sb["nindir"] == bsize // (8 if self.ufs2 else 4)
              and sb["ncg"] > 0 and sb["ipg"] > 0 and self.frags > 0
              and 0 <= sb["sblkno"] < sb["cblkno"] < sb["iblkno"]
              < sb["dblkno"] <= sb["fpg"])
        if not ok:
            raise FsError("superblock at %d has inconsistent geometry"
                          % self.sb_offset)
        if self.frags * fsize > self.image_size:
            raise FsError("truncated: file system is %d bytes, image %d"
                          % (self.frags * fsize, self.image_size))

    @property
    def frags(self):
        """File system size in fragments (fs_old_size for UFS1)."""
        return self.sb["size"] if self.ufs2 else self.sb["old_size"]

    def info(self):
        sb = self.sb
        return [("format", "ufs2" if self.ufs2 else "ufs1"),
                ("bsize", sb["bsize"]), ("fsize", sb["fsize"]),
                ("size", self.frags * sb["fsize"]),
                ("superblock", self.sb_offset), ("ncg", sb["ncg"]),
                ("ipg", sb["ipg"]), ("fpg", sb["fpg"]),
                ("maxsymlinklen", sb["maxsymlinklen"])]

    # -- raw access ---------------------------------------------------------

    def _read(self, offset, length, must=True):
        data = os.pread(self.fd, length, offset)
        if must and len(data) < length:
            raise FsError("read of %d bytes at %d is past the end of the image"
                          % (length, offset))
        return data

    def _read_frags(self, addr, length):
        # Block pointers count fragments from the start of the partition.
        if addr < 0 or addr >= self.frags:
            raise FsError("block address %d outside the file system" % addr)
        return self._read(addr * self.sb["fsize"], length)

    # -- inodes -------------------------------------------------------------

    def _cgstart(self, cg):
        sb = self.sb
        base = sb["fpg"] * cg
        if self.ufs2:
            return base
        # UFS1 staggered cylinder group metadata across disk tracks.
        return base + sb["old_cgoffset"] * (cg & ~sb["old_cgmask"])

    def inode(self, number):
        sb = self.sb
        if not 0 < number < sb["ncg"] * sb["ipg"]:
            raise FsError("inode number %d out of range" % number)
        size = 256 if self.ufs2 else 128
        cg, index = divmod(number, sb["ipg"])
        fsba = (self._cgstart(cg) + sb["iblkno"]
                + (index // sb["inopb"]) * sb["frag"])
        offset = fsba * sb["fsize"] + (number % sb["inopb"]) * size
        old_ids = sb["old_inodefmt"] < FS_44INODEFMT
        inode = Inode(number, self._read(offset, size), self.ufs2, old_ids)
        # A damaged size would otherwise mean hashing endless holes.
        nindir = sb["nindir"]
        blocks = NDADDR + nindir + nindir ** 2 + nindir ** 3
        if inode.size > blocks * sb["bsize"]:
            raise FsError("inode %d: size %d is more than its block pointers "
                          "can address" % (number, inode.size))
        return inode

    # -- file data ----------------------------------------------------------

    def _pointers(self, addr):
        raw = self._read_frags(addr, self.sb["bsize"])
        return struct.unpack("<%d%s" % (self.sb["nindir"],
                                        "q" if self.ufs2 else "i"), raw)

    def _indirect(self, addr, level, count):
        """Yield `count` data block addresses below an indirect block."""
        span = self.sb["nindir"] ** (level - 1)
        if addr == 0:                   # a hole covering the whole subtree
            yield from (0 for _ in range(count))
            return
        for ptr in self._pointers(addr):
            if count <= 0:
                return
            if level == 1:
                yield ptr
            else:
                yield from self._indirect(ptr, level - 1, min(count, span))
            count -= min(count, span)

    def _block_addresses(self, inode):
        """Yield the fragment address of each logical block (0: a hole)."""
        bsize = self.sb["bsize"]
        left = (inode.size + bsize - 1) // bsize
        yield from inode.db[:min(left, NDADDR)]
        left -= NDADDR
        for level, addr in enumerate(inode.ib, 1):
            if left <= 0:
                return
            count = min(left, self.sb["nindir"] ** level)
            yield from self._indirect(addr, level, count)
            left -= count

    def chunks(self, inode):
        """Yield a file's contents block by block."""
        left = inode.size
        for addr in self._block_addresses(inode):
            # The last block may be a run of fragments; read only the bytes.
            length = min(left, self.sb["bsize"])
            if addr == 0:
                yield bytes(length)
            else:
                yield self._read_frags(addr, length)
            left -= length

    def link_target(self, inode):
        # Short targets live in the block pointer area ("fast" symlinks).
        if inode.size < self.sb["maxsymlinklen"]:
            return inode.inline[:inode.size]
        return b"".join(self.chunks(inode))

    # -- directories --------------------------------------------------------

    def entries(self, inode):
        """Yield (name, inode number) of a directory, without . and .."""
        data = b"".join(self.chunks(inode))
        old_format = self.sb["old_inodefmt"] < FS_44INODEFMT
        pos = 0
        while pos + 8 <= len(data):
            ino, reclen, dtype, namlen = struct.unpack_from("<IHBB", data, pos)
            if old_format:      # 4.2BSD: a 16-bit d_namlen and no d_type
                namlen, dtype = struct.unpack_from("<H", data, pos + 6)[0], 0
            if reclen < 8 + namlen or pos + reclen > len(data):
                raise FsError("directory inode %d: bad entry at byte %d"
                              % (inode.number, pos))
            name = data[pos + 8:pos + 8 + namlen]
            if ino and dtype != DT_WHT and name not in (b".", b".."):
                yield name, ino
            pos += reclen

    def walk(self):
        """Yield (path bytes, inode) for every object, parents first."""
        todo = [(b".", self.inode(ROOTINO))]
        seen = set()
        while todo:
            path, inode = todo.pop()
            yield path, inode
            if inode.type != "dir":
                continue
            if inode.number in seen:
                raise FsError("directory inode %d reached twice"
                              % inode.number)
            seen.add(inode.number)
            for name, ino in self.entries(inode):
                child = path + b"/" + name
                try:
                    todo.append((child, self.inode(ino)))
                except FsError as err:
                    raise FsError("%s: %s" % (show(child), err)) from None

    def lookup(self, path):
        inode = self.inode(ROOTINO)
        for part in os.fsencode(path).split(b"/"):
            if part in (b"", b"."):
                continue
            if inode.type != "dir":
                raise FsError("%s: not found" % path)
            found = dict(self.entries(inode)).get(part)
            if found is None:
                raise FsError("%s: not found" % path)
            inode = self.inode(found)
        return inode


def show(raw):
    """Bytes as a single whitespace-free token (see the module docstring)."""
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        if ch.isprintable() and not ch.isspace() and ch != "\\":
            out.append(ch)
        else:
            out.extend("\\%03o" % b for b in ch.encode("utf-8",
                                                       "surrogateescape"))
    return "".join(out)


def extra(fs, inode):
    if inode.type == "file":
        digest = hashlib.sha256()
        for chunk in fs.chunks(inode):
            digest.update(chunk)
        return digest.hexdigest()
    if inode.type == "link":
        return show(fs.link_target(inode))
    if inode.type in ("char", "block"):
        d = inode.rdev
        return "%d,%d" % ((d >> 8) & 0xfff, (d & 0xff) | ((d >> 12) & 0xfff00))
    return "-"


def listing(fs):
    lines = []
    for path, inode in fs.walk():
        try:
            lines.append("%s %s %04o %d %d %d %s" % (
                show(path), inode.type, inode.mode & 0o7777, inode.uid,
                inode.gid, inode.size, extra(fs, inode)))
        except FsError as err:
            raise FsError("%s: %s" % (show(path), err)) from None
    return sorted(lines)


def cat(fs, path):
    inode = fs.lookup(path)
    if inode.type != "file":
        raise FsError("%s: not a regular file (%s)" % (path, inode.type))
    try:
        for chunk in fs.chunks(inode):
            sys.stdout.buffer.write(chunk)
    except FsError as err:
        raise FsError("%s: %s" % (path, err)) from None


def main():
    parser = argparse.ArgumentParser(
        prog="ffsread", description="List or read an FFS image.")
    parser.add_argument("image")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--cat", metavar="PATH")
    mode.add_argument("--info", action="store_true")
    args = parser.parse_args()
    # `ffsread.py IMG | head` should just stop, not print a traceback.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        fs = Ffs(args.image)
        if args.info:
            for key, value in fs.info():
                print(key, value)
        elif args.cat is not None:
            cat(fs, args.cat)
        else:
            for line in listing(fs):
                print(line)
    except OSError as err:
        sys.exit("ffsread: %s: %s" % (args.image, err.strerror or err))
    except FsError as err:
        sys.exit("ffsread: %s: %s" % (args.image, err))


if __name__ == "__main__":
    main()
