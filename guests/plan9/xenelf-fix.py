#!/usr/bin/env python3
"""Give 9front's 32-bit Xen kernel the null section header Xen 4.17 needs.

9front's 8l -H5 writes no section headers; xenelf (sys/src/9/xen/xenelf.c,
run by sys/src/9/xen/mkfile to make 9xenpcf from 9xenpcf.elf) then adds
two: the __xen_guest section ("LOADER=generic,XEN_VER=xen-3.0,...") at
index 0 and an unnamed string table at index 1 (e_shstrndx 1). Index 0 is
reserved for the null section, and Xen 4.17's libelf looks sections up by
name from index 1, so `xl create` finds neither ELF notes nor __xen_guest
and answers "Not a Xen-ELF image". Inserting an all-zero header in front
fixes that; the loaded image stays byte for byte the same.

Usage:
  xenelf-fix.py IN OUT          write IN, fixed, to OUT
  xenelf-fix.py --check FILE    does Xen's libelf find the Xen metadata?
                                prints the __xen_guest string; exit 0 or 1
  xenelf-fix.py --make-test-elf OUT
                                write a small ELF shaped like xenelf's
                                output (for tests/xenelf-fix.sh)
Exit status: 0 done, 1 refused or check failed, 2 usage error.
"""

import hashlib
import os
import struct
import sys
import tempfile

PROG = "xenelf-fix"
EHDR = struct.Struct("<16sHHIIIIIHHHHHH")  # Elf32_Ehdr, 52 bytes
PHDR = struct.Struct("<8I")  # Elf32_Phdr, 32 bytes
SHDR = struct.Struct("<10I")  # Elf32_Shdr, 40 bytes
EM_386 = 3
PT_LOAD, PT_NOTE = 1, 4
SHT_NULL, SHT_SYMTAB, SHT_RELA, SHT_NOTE, SHT_NOBITS, SHT_REL = 0, 2, 4, 7, 8, 9
SHT_DYNSYM, SHT_GROUP, SHT_SYMTAB_SHNDX = 11, 17, 18
SHF_INFO_LINK = 0x40
SHN_LORESERVE, SHN_XINDEX = 0xFF00, 0xFFFF
PT_NAMES = {0: "PT_NULL", 1: "PT_LOAD", 2: "PT_DYNAMIC", 3: "PT_INTERP", 4: "PT_NOTE", 6: "PT_PHDR"}


class Refused(Exception):
    pass


class Elf:
    """An ELF32 little-endian i386 file, headers unpacked."""

    def __init__(self, path, data):
        self.path = path
        self.data = data
        if data[:2] == b"\x1f\x8b":
            raise Refused("gzip-compressed; gunzip it first (xl takes either)")
        if len(data) < 16 or data[:4] != b"\x7fELF":
            raise Refused("not an ELF file")
        if data[4] == 2:
            raise Refused("ELF64 (class 2): only 32-bit i386 ELF kernels, like 9front's 9xenpcf, are handled")
        if data[4] != 1:
            raise Refused(f"unknown ELF class {data[4]}")
        if data[5] != 1:
            raise Refused("big-endian ELF: only little-endian i386 is handled")
        if len(data) < EHDR.size:
            raise Refused("truncated ELF header")
        (_, _, self.machine, _, self.entry, self.phoff, self.shoff, _, _, phentsize, self.phnum,
         shentsize, self.shnum, self.shstrndx) = EHDR.unpack_from(data)
        if self.machine != EM_386:
            raise Refused(f"e_machine {self.machine} is not i386 ({EM_386})")
        if self.phnum and phentsize != PHDR.size:
            raise Refused(f"e_phentsize {phentsize}, not {PHDR.size}")
        if self.phoff + self.phnum * PHDR.size > len(data):
            raise Refused("program header table runs past the end of the file")
        self.phdrs = [PHDR.unpack_from(data, self.phoff + i * PHDR.size) for i in range(self.phnum)]
        # Extended numbering keeps the real counts in header 0; 9front never needs it.
        if (self.shnum == 0 and self.shoff != 0) or self.shstrndx == SHN_XINDEX:
            raise Refused("extended section numbering (e_shnum 0 or e_shstrndx SHN_XINDEX) is not handled")
        if self.shnum and shentsize != SHDR.size:
            raise Refused(f"e_shentsize {shentsize}, not {SHDR.size}")
        if self.shoff + self.shnum * SHDR.size > len(data):
            raise Refused("section header table runs past the end of the file")
        self.shdrs = [SHDR.unpack_from(data, self.shoff + i * SHDR.size) for i in range(self.shnum)]

    def cstring(self, off):
        """A NUL-terminated string at a file offset, as libelf's elf_strval reads it:
        unbounded by any section size; None if it runs off the file."""
        if off >= len(self.data):
            return None
        end = self.data.find(b"\0", off)
        return None if end < 0 else self.data[off:end].decode("latin-1")

    def section_name(self, sh):
        # libelf-loader.c elf_init: sec_strtab is the start of section
        # e_shstrndx whenever that index is < e_shnum, 0 included.
        if self.shstrndx >= self.shnum:
            return "unknown"
        return self.cstring(self.shdrs[self.shstrndx][4] + sh[0])

    def xen_notes(self, start, end):
        """How many notes named "Xen" lie in [start, end)."""
        count, off = 0, start
        while off + 12 <= min(end, len(self.data)):
            namesz, descsz, _ = struct.unpack_from("<3I", self.data, off)
            if self.cstring(off + 12) == "Xen":
                count += 1
            off += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
        return count

    def note_segments(self):
        # elf_xen_parse skips PT_NOTE with p_offset 0 (an old binutils bug).
        return [(f"PT_NOTE segment {i}", p[1], p[1] + p[4])
                for i, p in enumerate(self.phdrs) if p[0] == PT_NOTE and p[1] != 0]

    def note_sections(self, first=1):
        return [(f"SHT_NOTE section {i}", sh[4], sh[4] + sh[5])
                for i, sh in enumerate(self.shdrs) if i >= first and sh[1] == SHT_NOTE]


def libelf_lookup(elf):
    """What Xen 4.17's libelf finds, in its order: ("notes", where),
    ("guest", index, string) or ("none", reason).

    xen/common/libelf/libelf-dominfo.c elf_xen_parse: Xen notes in PT_NOTE
    segments; if none, in SHT_NOTE sections from index 1 ("for ( i = 1; i <
    count; i++ )"); if none, for PV guests, elf_shdr_by_name(elf,
    "__xen_guest"). libelf-tools.c elf_shdr_by_name also starts at index 1
    and compares elf_section_name, the string at sec_strtab + sh_name;
    libelf-loader.c elf_init sets sec_strtab from e_shstrndx with no check
    beyond "index < e_shnum" (so e_shstrndx 0 would be taken too), and
    refuses the image only if the program or section header table runs
    past the end of the file. Read in out/src/xen-4.17.5+72-g01140da4e8
    (Debian 12's xen source, the version build.sh pins). An older libelf
    (xen-project/xen 443701ef, libelf-tools.c) started elf_shdr_by_name at
    index 0, likely why xenelf's layout once worked.
    """
    for group in (elf.note_segments(), elf.note_sections(1)):
        found = [where for where, s, e in group if elf.xen_notes(s, e)]
        if found:
            return ("notes", ", ".join(found))
    for i in range(1, elf.shnum):
        if elf.section_name(elf.shdrs[i]) == "__xen_guest":
            guest = elf.cstring(elf.shdrs[i][4])
            if guest is None:
                return ("none", f"__xen_guest (section {i}) holds no NUL-terminated string")
            return ("guest", i, guest)
    if elf.shnum and elf.section_name(elf.shdrs[0]) == "__xen_guest":
        return ("none", "the __xen_guest section header is at index 0, the null section's place, "
                "which Xen's libelf never looks at (elf_shdr_by_name starts at 1); "
                "run xenelf-fix.py IN OUT")
    if elf.shnum and elf.shdrs[0][1] == SHT_NOTE and elf.xen_notes(*elf.note_sections(0)[0][1:]):
        return ("none", "the Xen notes are in section 0, which Xen's libelf never looks at; "
                "run xenelf-fix.py IN OUT")
    return ("none", "no __xen_guest section and no Xen ELF notes")


def strtoull(s):
    """C strtoull(s, NULL, 0) on the leading number; 0 if none."""
    s = s.strip()
    base, digits = 10, "0123456789"
    if s[:2].lower() == "0x":
        base, digits, s = 16, "0123456789abcdefABCDEF", s[2:]
    elif s.startswith("0"):
        base, digits = 8, "01234567"
    n = 0
    for c in s:
        if c not in digits:
            break
        n = n * base + int(c, 16)
    return n & (2**64 - 1)


def guest_problems(elf, guest):
    """libelf-dominfo.c elf_xen_note_check and elf_xen_addr_calc_check on a
    __xen_guest string (PV): what xl would refuse after finding it."""
    kv = {}
    for item in guest.split(","):
        name, _, value = item.partition("=")
        kv[name] = value
    problems = []
    if not kv.get("LOADER", "").startswith("generic") and not kv.get("GUEST_OS", "").startswith("linux"):
        problems.append("neither LOADER=generic nor GUEST_OS=linux (Xen only loads those)")
    if not kv.get("XEN_VER", "").startswith("xen-3.0"):
        problems.append(f"XEN_VER is '{kv.get('XEN_VER', '')}', not xen-3.0")
    if "ELF_PADDR_OFFSET" in kv and "VIRT_BASE" not in kv:
        problems.append("ELF_PADDR_OFFSET set, VIRT_BASE unset")
        return problems
    mask = 2**64 - 1
    virt_base = strtoull(kv.get("VIRT_BASE", "0"))
    # With __xen_guest, the paddr offset defaults to VIRT_BASE, not 0.
    paddr_off = strtoull(kv["ELF_PADDR_OFFSET"]) if "ELF_PADDR_OFFSET" in kv else virt_base
    load = [p for p in elf.phdrs if p[0] == PT_LOAD and p[6] & 7]
    pstart = min((p[3] for p in load), default=mask)
    pend = max((p[3] + p[5] for p in load), default=0)
    off = (virt_base - paddr_off) & mask
    kstart, kend = (pstart + off) & mask, (pend + off) & mask
    entry = strtoull(kv["VIRT_ENTRY"]) if "VIRT_ENTRY" in kv else elf.entry
    if kstart > kend or not kstart <= entry <= kend or virt_base > kstart:
        problems.append(f"start or entry out of bounds (kernel {kstart:#x}-{kend:#x}, "
                        f"entry {entry:#x}, VIRT_BASE {virt_base:#x})")
    return problems


def make_test_elf():
    """What 8l -H5 then xenelf write, scaled down (sys/src/cmd/8l/asm.c case
    5: ELF header, three program headers: text and data PT_LOAD and the Plan
    9 symbol table as PT_NULL, filesz symbols, memsz line table;
    sys/src/9/xen/xenelf.c: segments copied to page-aligned offsets, PT_LOAD
    filesz rounded up to the page, then "\\0__xen_guest\\0", the guest
    string, and at the unaligned end the headers: __xen_guest at index 0
    (sh_name 1, sh_type 0), the unnamed string table at 1, e_shstrndx 1)."""
    page, kzero, ktzero, kpzero = 4096, 0x80000000, 0x80010000, 0x10000

    def rnd(n):
        return (n + page - 1) & ~(page - 1)

    text = b"".join(hashlib.sha256(b"text%d" % i).digest() for i in range(160))[:5000]
    data = b"".join(hashlib.sha256(b"data%d" % i).digest() for i in range(10))[:300]
    bss, syms, lines = 6000, b"S" * 201, b"L" * 102
    guest = (f"LOADER=generic,XEN_VER=xen-3.0,ELF_PADDR_OFFSET=0,VIRT_BASE={kzero:#x},"
             f"VIRT_ENTRY={ktzero:#x},PAE=yes[extended-cr3]").encode()
    out = bytearray(page)
    text_off = len(out)
    out += text.ljust(rnd(len(text)), b"\0")
    data_off = len(out)
    out += data.ljust(rnd(len(data)), b"\0")
    sym_off = len(out)
    out += syms + lines
    strtab_off = len(out)
    out += b"\0__xen_guest\0"
    guest_off = len(out)
    out += guest + b"\0"
    shoff = len(out)
    out += SHDR.pack(1, SHT_NULL, 0, 0, guest_off, len(guest) + 1, 0, 0, 0, 0)
    out += SHDR.pack(0, SHT_NULL, 0, 0, strtab_off, 13, 0, 0, 0, 0)
    datva = ktzero + rnd(len(text))
    phdrs = [
        (PT_LOAD, text_off, ktzero, kpzero, rnd(len(text)), rnd(len(text)), 5, page),
        (PT_LOAD, data_off, datva, datva - kzero, rnd(len(data)), len(data) + bss, 6, page),
        (0, sym_off, 0, 0, len(syms), len(lines), 4, 4),
    ]
    ident = b"\x7fELF\x01\x01\x01".ljust(16, b"\0")
    EHDR.pack_into(out, 0, ident, 2, EM_386, 1, ktzero - kzero, EHDR.size, shoff, 0,
                   EHDR.size, PHDR.size, len(phdrs), SHDR.size, 2, 1)
    for i, p in enumerate(phdrs):
        PHDR.pack_into(out, EHDR.size + i * PHDR.size, *p)
    return bytes(out)


def fixed_image(elf):
    """The file with an all-zero section header in front; Refused if that
    would change any byte a program header or section points at."""
    n = elf.shnum
    for i, sh in enumerate(elf.shdrs):
        # Their contents hold section indices, which would need renumbering too.
        if sh[1] in (SHT_SYMTAB, SHT_DYNSYM, SHT_GROUP, SHT_SYMTAB_SHNDX):
            raise Refused(f"section {i} (type {sh[1]}) holds section indices in its contents, "
                          "which this tool does not renumber")

    def bump(v):  # 0 is SHN_UNDEF, >= n no index
        return v + 1 if 0 < v < n else v

    shdrs = [(0,) * 10]
    for sh in elf.shdrs:
        name, typ, flags, addr, off, size, link, info, align, entsize = sh
        if typ in (SHT_REL, SHT_RELA) or flags & SHF_INFO_LINK:
            info = bump(info)
        shdrs.append((name, typ, flags, addr, off, size, bump(link), info, align, entsize))
    body = bytearray(elf.data)
    old_end = len(body)
    # xenelf writes the old table last: drop it rather than leave a stale copy.
    if elf.shoff + n * SHDR.size == old_end:
        old_end = elf.shoff
        del body[old_end:]
    body += b"\0" * (-len(body) % 4)
    shoff = len(body)
    for sh in shdrs:
        body += SHDR.pack(*sh)
    shstrndx = elf.shstrndx + 1 if 0 < elf.shstrndx < SHN_LORESERVE else elf.shstrndx
    struct.pack_into("<I", body, 32, shoff)  # e_shoff
    struct.pack_into("<HH", body, 48, n + 1, shstrndx)  # e_shnum, e_shstrndx
    for i, p in enumerate(elf.phdrs):
        s, e = p[1], p[1] + p[4]
        if p[4] and elf.data[s:e] != body[s:e]:
            raise Refused(f"{PT_NAMES.get(p[0], 'segment')} {i} (file bytes {s:#x}-{e:#x}) covers "
                          "bytes this would change (ELF header or old section header table); "
                          "the loaded image would not stay the same")
    for i, sh in enumerate(elf.shdrs):
        s, e = sh[4], sh[4] + sh[5]
        if sh[1] != SHT_NOBITS and sh[5] and elf.data[s:e] != body[s:e]:
            raise Refused(f"section {i} (file bytes {s:#x}-{e:#x}) covers bytes this would change")
    # The promise, checked whole: before the old end only those three fields differ.
    expected = bytearray(elf.data[:old_end])
    expected[32:36], expected[48:52] = body[32:36], body[48:52]
    if body[:old_end] != expected:
        raise Refused("internal error: bytes outside e_shoff, e_shnum, e_shstrndx would change")
    return bytes(body)


def write_file(path, data, mode_from=None):
    # Via a temporary file: OUT may be IN, and a half-written kernel is worse than none.
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".xenelf-fix.")
    except OSError as e:
        raise Refused(f"cannot write {path}: {e.strerror}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, os.stat(mode_from).st_mode & 0o7777 if mode_from else 0o644)
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise Refused(f"cannot write {path}: {e.strerror}")
    except BaseException:
        os.unlink(tmp)
        raise


def read_elf(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Refused(e.strerror)
    return Elf(path, data)


def cmd_check(path):
    elf = read_elf(path)
    found = libelf_lookup(elf)
    if found[0] == "none":
        raise Refused(f"Xen's libelf would not find the Xen metadata: {found[1]}")
    if found[0] == "notes":
        print(f"{PROG}: {path}: Xen ELF notes in {found[1]} (contents not checked here); "
              "__xen_guest is not consulted", file=sys.stderr)
        return 0
    _, index, guest = found
    problems = guest_problems(elf, guest)
    if problems:
        raise Refused(f"__xen_guest (section {index}) is found, but Xen refuses it: " + "; ".join(problems))
    print(guest)
    print(f"{PROG}: {path}: Xen's libelf finds __xen_guest at section {index}", file=sys.stderr)
    return 0


def cmd_fix(inp, out):
    elf = read_elf(inp)
    names = [elf.section_name(sh) for sh in elf.shdrs]
    notes = [w for w, s, e in elf.note_segments() + elf.note_sections(0) if elf.xen_notes(s, e)]
    if "__xen_guest" not in names and not notes:
        raise Refused("not a Xen kernel (no __xen_guest section, no Xen ELF notes)")
    if elf.shnum == 0 or not any(elf.data[elf.shoff:elf.shoff + SHDR.size]):
        write_file(out, elf.data, inp)
        why = "has no section headers" if elf.shnum == 0 else "already has a null section header"
        print(f"{PROG}: {inp} {why}; copied unchanged to {out}", file=sys.stderr)
        return 0
    new = fixed_image(elf)
    found = libelf_lookup(Elf(out, new))
    if found[0] == "none":
        raise Refused(f"even with a null section header Xen's libelf would not find it: {found[1]}")
    write_file(out, new, inp)
    what = f"__xen_guest now section {found[1]}" if found[0] == "guest" else f"Xen notes in {found[1]}"
    print(f"{PROG}: {inp}: null section header inserted ({elf.shnum} -> {elf.shnum + 1} sections, "
          f"{what}); wrote {out}", file=sys.stderr)
    if found[0] == "guest":
        for p in guest_problems(Elf(out, new), found[2]):
            print(f"{PROG}: warning: Xen would still refuse it: {p}", file=sys.stderr)
    return 0


def main(argv):
    usage = f"usage: {PROG}.py IN OUT | --check FILE | --make-test-elf OUT"
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if len(argv) != 2 or (argv[0].startswith("-") and argv[0] not in ("--check", "--make-test-elf")):
        print(usage, file=sys.stderr)
        return 2
    target = argv[1] if argv[0].startswith("-") else argv[0]
    try:
        if argv[0] == "--check":
            return cmd_check(argv[1])
        if argv[0] == "--make-test-elf":
            write_file(argv[1], make_test_elf())
            return 0
        return cmd_fix(argv[0], argv[1])
    except Refused as e:
        print(f"{PROG}: {target}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
