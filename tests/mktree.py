#!/usr/bin/python3
"""Writes a deterministic directory tree for filesystem-image tests.

Usage: mktree.py DIR [FILES] [SEED]

A few thousand files of mixed kinds, so that block compression, zero
blocks and repeated blocks all occur: text-like files (compress well),
pseudo-random files (do not compress), sparse-ish files with zero runs,
and exact copies of earlier files (repeated blocks in the image).
"""
import os
import random
import sys

WORDS = ("stream block cache verify mirror index kernel xen hypervisor boot "
         "image store fetch hash zstd fuse loop root overlay guest domain "
         "network latency prefetch rollback version").split()


def text(rng, size):
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        line += " %d\n" % rng.randint(0, 10**6)
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def main():
    root = sys.argv[1]
    nfiles = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 2006)
    made = []
    for i in range(nfiles):
        d = os.path.join(root, "d%02d" % (i % 37), "s%d" % (i % 5))
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "f%05d" % i)
        kind = rng.random()
        if kind < 0.55:
            data = text(rng, rng.randint(100, 64 * 1024))
        elif kind < 0.80:
            data = rng.randbytes(rng.randint(1, 64 * 1024))
        elif kind < 0.90 and made:
            with open(rng.choice(made), "rb") as f:
                data = f.read()
        else:
            size = rng.randint(64 * 1024, 256 * 1024)
            data = bytearray(size)
            for _ in range(8):
                at = rng.randrange(size)
                chunk = rng.randbytes(min(4096, size - at))
                data[at:at + len(chunk)] = chunk
            data = bytes(data)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644 if i % 7 else 0o755)
        made.append(path)
    os.symlink("d00/s0/f00000", os.path.join(root, "a-symlink"))
    os.makedirs(os.path.join(root, "empty-dir"), exist_ok=True)


if __name__ == "__main__":
    main()
