#!/usr/bin/env python3
"""Boot an image in QEMU (TCG) with COM1 on a pipe and wait for text on it.

qemuboot.py [--uefi] [--media cd|ide|virtio] [--timeout S] [--log FILE]
            [--key REGEX=KEYS]... IMAGE EXPECT_REGEX...

Succeeds (exit 0) once every EXPECT_REGEX has matched the serial output,
each after the previous one. --key sends KEYS (Python escapes: \\x0e is
Ctrl-N, "next entry" in both ISOLINUX's menu and GRUB's; \\r is Enter)
once REGEX has appeared, one key at a time, so the loader sees each.
The disk image is opened with snapshot=on: the test never writes to it.
"""
import argparse
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS.fd"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uefi", action="store_true")
    ap.add_argument("--media", choices=("cd", "ide", "virtio"), default="cd")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--log", default=os.devnull)
    ap.add_argument("--key", action="append", default=[])
    ap.add_argument("image")
    ap.add_argument("expect", nargs="+")
    a = ap.parse_args()
    keys = []
    for k in a.key:
        wait, text = k.split("=", 1)
        keys.append((re.compile(wait), text.encode().decode("unicode_escape")))
    tmp = tempfile.mkdtemp()
    cmd = ["qemu-system-x86_64", "-machine", "q35", "-cpu", "qemu64,+svm,+npt,+rdrand",
           "-m", "2048", "-display", "none", "-serial", "stdio", "-monitor", "none",
           "-no-reboot"]
    if a.media == "cd":
        cmd += ["-cdrom", a.image]
    else:
        cmd += ["-drive", "file=%s,format=raw,if=%s,snapshot=on" % (a.image, a.media)]
    if a.uefi:
        shutil.copy(OVMF_VARS, os.path.join(tmp, "vars.fd"))
        cmd += ["-drive", "if=pflash,format=raw,readonly=on,file=" + OVMF_CODE,
                "-drive", "if=pflash,format=raw,file=" + os.path.join(tmp, "vars.fd")]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    text, pos, ki, ei = "", 0, 0, 0
    start = time.monotonic()
    try:
        with open(a.log, "wb") as log:
            while ei < len(a.expect) and time.monotonic() - start < a.timeout:
                r, _, _ = select.select([p.stdout], [], [], 1)
                if r:
                    data = os.read(p.stdout.fileno(), 65536)
                    if not data:
                        break
                    log.write(data)
                    log.flush()
                    text += data.decode("latin1")
                while ki < len(keys) and keys[ki][0].search(text):
                    for ch in keys[ki][1]:
                        time.sleep(0.3)
                        p.stdin.write(ch.encode("latin1"))
                        p.stdin.flush()
                    ki += 1
                while ei < len(a.expect):
                    m = re.compile(a.expect[ei]).search(text, pos)
                    if not m:
                        break
                    pos, ei = m.end(), ei + 1
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(tmp)
    if ei < len(a.expect):
        print("missing after %.0f s: %r" % (time.monotonic() - start, a.expect[ei]))
        return 1
    print("%.0f s" % (time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
