#!/usr/bin/env python3
"""hcloop's index files, for the tests that alter one on purpose.

cloop/FORMAT.md defines the format; the header's fields are read from its
table here, so an edit of the format cannot leave a test flipping the
wrong byte. Used by iso/matrix.py (the tampered case) and tests/ (signed
indexes altered after signing).

  python3 cloop/indexfile.py tamper FILE [FIELD]
      flip the low bit of a header field's first byte (default: the
      creation time) and make the trailer right again: only a signature
      can tell; prints the new index digest
  python3 cloop/indexfile.py retrail FILE
      make the trailer right again after an edit; prints the digest
  python3 cloop/indexfile.py fields
      the header's fields as FORMAT.md gives them
"""
import hashlib
import os
import re
import sys

FORMAT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "FORMAT.md")
TRAILER = 32  # the SHA-256 of every byte before it (FORMAT.md, "Trailer")


def header_fields(path=FORMAT):
    """{field: (offset, size)} from FORMAT.md's header table. A field is
    named by its first `quoted` word, else by its words up to a colon or
    comma ("creation time", "format version")."""
    text = open(path).read()
    m = re.search(r"^### Header \((\d+) bytes\)\n(.*?)\n\n", text, re.M | re.S)
    if not m:
        raise ValueError(f"{path}: no header table")
    fields = {}
    for row in m.group(2).splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].isdigit():
            continue
        q = re.match(r"`(\w+)`", cells[2])
        name = q.group(1) if q else re.split(r"[:,(]", cells[2])[0].strip()
        fields[name] = (int(cells[0]), int(cells[1]))
    if sum(size for _, size in fields.values()) != int(m.group(1)):
        raise ValueError(f"{path}: the header table's sizes do not add up to {m.group(1)}")
    return fields


def retrail(data):
    """DATA with its trailer made right again."""
    body = bytes(data[:-TRAILER])
    return body + hashlib.sha256(body).digest()


def tamper(path, field="creation time"):
    """The index at PATH with FIELD's first byte's low bit flipped and its
    trailer made right again; the new index digest (hex), for a latest
    pointer. Flipping, not setting: a set byte may already be the value."""
    offset, _ = header_fields()[field]
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 1
    data = retrail(data)
    open(path, "wb").write(data)
    return hashlib.sha256(data).hexdigest()


def main(argv):
    if len(argv) >= 2 and argv[0] == "tamper" and len(argv) <= 3:
        print(tamper(*argv[1:]))
    elif len(argv) == 2 and argv[0] == "retrail":
        data = retrail(open(argv[1], "rb").read())
        open(argv[1], "wb").write(data)
        print(hashlib.sha256(data).hexdigest())
    elif argv == ["fields"]:
        for name, (offset, size) in header_fields().items():
            print(f"{offset:3d} {size} {name}")
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
