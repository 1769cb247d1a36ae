#!/usr/bin/env python3
"""squashfs-sort.py TREE [LAST...]: a mksquashfs -sort file that keeps
mksquashfs's own order (a depth-first walk, each directory's entries by
name) for every file of TREE, except the files named by the lists LAST
(paths relative to TREE, one a line), which go after all others.

Why (guests/linux/README.md, "What a boot reads, and the build's boot
profile"): a file added to the root image moves every block after it, and
with them where the files dom0's boot reads start and end; put last, it
moves nothing that boot reads. mksquashfs without -sort writes in that walk's order; with -sort it
puts equal priorities in another order, so every file gets its own."""
import os
import sys


def walk(top, rel=b""):
    path = os.path.join(top, rel) if rel else top
    for name in sorted(os.listdir(path)):
        r = os.path.join(rel, name) if rel else name
        full = os.path.join(top, r)
        if os.path.isdir(full) and not os.path.islink(full):
            yield from walk(top, r)
        elif os.path.isfile(full) and not os.path.islink(full):
            yield r


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    top = os.fsencode(argv[1])
    last = set()
    for lst in argv[2:]:
        with open(lst, "rb") as f:
            last.update(ln.strip().lstrip(b"/") for ln in f if ln.strip())
    paths = list(walk(top))
    n_last = sum(1 for r in paths if r in last)
    if len(paths) > 65536:
        sys.exit("squashfs-sort: more files than mksquashfs has priorities")
    # Priorities count down from the top for the others and from just
    # above the bottom for the last ones, each its own: mksquashfs reverses
    # files of equal priority.
    prio, prio_last = 32767, -32768 + n_last - 1
    # A hard-linked file's data has one place, where its first name in the
    # walk puts it: mksquashfs would take the priority of its last name.
    inodes = {}
    out = sys.stdout.buffer
    for r in paths:
        if b" " in r or b"\n" in r:
            sys.exit(f"squashfs-sort: {os.fsdecode(r)}: a name mksquashfs's sort file cannot hold")
        st = os.lstat(os.path.join(top, r))
        p = inodes.get((st.st_dev, st.st_ino))
        if p is None:
            if r in last:
                p, prio_last = prio_last, prio_last - 1
            else:
                p, prio = prio, prio - 1
            if st.st_nlink > 1:
                inodes[(st.st_dev, st.st_ino)] = p
        out.write(r + b" %d\n" % p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
