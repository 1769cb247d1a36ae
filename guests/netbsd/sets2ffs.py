#!/usr/bin/env python3
"""NetBSD's release sets (tar archives) as the input of makefs.

A NetBSD root disk is built on Linux from the release's own sets, as data:
their files must land in the FFS image with NetBSD's owners, groups and modes,
which a Linux extraction cannot be trusted to keep (owners are names on
NetBSD, numbers here; setuid bits vanish when a non-root user extracts).
So the archives' contents go into a staging tree and everything about each
entry goes into an mtree spec, from which makefs takes the metadata.

Usage: sets2ffs.py STAGING SPEC [--extra SPECFILE]... [--overlay DIR]... SET...

SET is a tar archive (.tar.xz, .tgz, .tar). STAGING must not exist. Later
sets, then overlays, override earlier ones, as an install would. An overlay
file is owned by root:wheel with its own mode. --extra adds the entries of
an mtree spec (device nodes, say; full paths, uid/gid as numbers).
"""

import argparse
import os
import shutil
import stat
import sys
import tarfile


def die(msg):
    print(f"sets2ffs: {msg}", file=sys.stderr)
    sys.exit(1)


def clean(name):
    """The member's path as ./a/b, refusing anything that leaves the tree."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        die(f"refusing the member {name!r}: it leaves the tree")
    return "/".join(["."] + parts)


def esc(path):
    """mtree(5) encodes anything but plain characters as \\ooo."""
    out = []
    for b in path.encode():
        c = chr(b)
        out.append(c if 0x21 <= b < 0x7F and c not in "\\#*?[" else f"\\{b:03o}")
    return "".join(out)


class Tree:
    def __init__(self, staging):
        self.staging = staging
        self.entries = {}  # ./path -> dict of spec keywords

    def real(self, path):
        return os.path.join(self.staging, path[2:]) if path != "." else self.staging

    def parents(self, path):
        parent = path.rsplit("/", 1)[0]
        if parent != "." and parent not in self.entries:
            self.parents(parent)
            self.entries[parent] = {"type": "dir", "uid": 0, "gid": 0, "mode": 0o755}
            os.makedirs(self.real(parent), exist_ok=True)

    def drop(self, path):
        r = self.real(path)
        if os.path.islink(r) or os.path.isfile(r):
            os.unlink(r)
        elif os.path.isdir(r) and self.entries.get(path, {}).get("type") != "dir":
            shutil.rmtree(r)

    def add_set(self, archive):
        try:
            tf = tarfile.open(archive)
        except (OSError, tarfile.TarError) as e:
            die(f"{archive}: not a tar archive this can read: {e}")
        with tf:
            for m in tf:
                self.add_member(tf, m)

    def add_member(self, tf, m):
        path = clean(m.name)
        meta = {"uid": m.uid, "gid": m.gid, "mode": m.mode & 0o7777}
        if path == ".":
            self.entries["."] = dict(meta, type="dir")
            return
        self.parents(path)
        if m.isdir():
            if self.entries.get(path, {}).get("type") not in (None, "dir"):
                self.drop(path)
            os.makedirs(self.real(path), exist_ok=True)
            self.entries[path] = dict(meta, type="dir")
            return
        self.drop(path)
        if m.issym():
            os.symlink(m.linkname, self.real(path))
            self.entries[path] = dict(meta, type="link", link=m.linkname)
        elif m.islnk():
            # A hard link stays one: makefs keeps files that share an inode.
            target = clean(m.linkname)
            if self.entries.get(target, {}).get("type") != "file":
                die(f"{tf.name}: {m.name} links to {m.linkname}, which is not a file before it")
            os.link(self.real(target), self.real(path))
            self.entries[path] = dict(self.entries[target])
        elif m.isreg():
            with tf.extractfile(m) as src, open(self.real(path), "wb") as dst:
                shutil.copyfileobj(src, dst)
            self.entries[path] = dict(meta, type="file")
        elif m.ischr() or m.isblk():
            # No node in the staging tree (Linux would give it Linux's
            # numbering); makefs makes it from the spec.
            kind = "char" if m.ischr() else "block"
            self.entries[path] = dict(meta, type=kind, device=f"netbsd,{m.devmajor},{m.devminor}")
        elif m.isfifo():
            self.entries[path] = dict(meta, type="fifo")
        else:
            die(f"{tf.name}: {m.name}: a member of a kind makefs cannot hold")

    def add_overlay(self, top):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                src = os.path.join(dirpath, name)
                path = clean(os.path.relpath(src, top))
                st = os.lstat(src)
                mode = stat.S_IMODE(st.st_mode)
                self.parents(path)
                if stat.S_ISDIR(st.st_mode):
                    os.makedirs(self.real(path), exist_ok=True)
                    self.entries.setdefault(path, {"type": "dir", "uid": 0, "gid": 0, "mode": mode})
                    continue
                self.drop(path)
                if stat.S_ISLNK(st.st_mode):
                    target = os.readlink(src)
                    os.symlink(target, self.real(path))
                    self.entries[path] = {"type": "link", "uid": 0, "gid": 0, "mode": 0o755, "link": target}
                elif stat.S_ISREG(st.st_mode):
                    shutil.copyfile(src, self.real(path))
                    self.entries[path] = {"type": "file", "uid": 0, "gid": 0, "mode": mode}
                else:
                    die(f"{src}: only files, directories and symbolic links go in an overlay")

    def add_spec(self, specfile):
        """Entries of an mtree spec with full paths (no /set), e.g. the
        device nodes MAKEDEV would make: they replace the sets' entries."""
        try:
            lines = open(specfile).read().splitlines()
        except OSError as e:
            die(f"--extra {specfile}: {e.strerror}")
        for n, line in enumerate(lines, 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            path = clean(words[0])
            e = {"uid": 0, "gid": 0, "mode": 0o644}
            for w in words[1:]:
                k, eq, v = w.partition("=")
                if not eq or k not in ("type", "uid", "gid", "mode", "link", "device"):
                    die(f"{specfile}:{n}: '{w}': give type=, uid=, gid=, mode=, link= or device=")
                e[k] = int(v, 8) if k == "mode" else int(v) if k in ("uid", "gid") else v
            if e.get("type") not in ("dir", "file", "link", "char", "block", "fifo"):
                die(f"{specfile}:{n}: {words[0]} has no type= this tool knows")
            if e["type"] == "file":
                die(f"{specfile}:{n}: files come from the sets or an overlay")
            if path == ".":
                continue  # a fragment's own root line: the sets say what / is
            self.parents(path)
            if e["type"] == "dir":
                if path in self.entries and self.entries[path]["type"] == "dir":
                    continue  # the set's own directory stays as the set has it
                self.drop(path)
                os.makedirs(self.real(path), exist_ok=True)
            else:
                self.drop(path)
                if e["type"] == "link":
                    if "link" not in e:
                        die(f"{specfile}:{n}: {words[0]} is a link with no link=")
                    os.symlink(e["link"], self.real(path))
            self.entries[path] = e

    def spec(self):
        lines = []
        for path in sorted(self.entries, key=lambda p: p.split("/")):
            e = self.entries[path]
            words = [esc(path), f"type={e['type']}", f"uid={e['uid']}", f"gid={e['gid']}", f"mode={e['mode']:04o}"]
            if "link" in e:
                words.append(f"link={esc(e['link'])}")
            if "device" in e:
                words.append(f"device={e['device']}")
            lines.append(" ".join(words))
        return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("staging")
    ap.add_argument("spec")
    ap.add_argument("--extra", action="append", default=[])
    ap.add_argument("--overlay", action="append", default=[])
    ap.add_argument("sets", nargs="+")
    a = ap.parse_args()
    if os.path.exists(a.staging):
        die(f"{a.staging} exists: give a path to create")
    os.makedirs(a.staging)
    t = Tree(a.staging)
    t.entries["."] = {"type": "dir", "uid": 0, "gid": 0, "mode": 0o755}
    for s in a.sets:
        t.add_set(s)
    for o in a.overlay:
        if not os.path.isdir(o):
            die(f"--overlay {o}: not a directory")
        t.add_overlay(o)
    for x in a.extra:
        t.add_spec(x)
    with open(a.spec, "w") as f:
        f.write(t.spec())


if __name__ == "__main__":
    main()
