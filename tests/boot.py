#!/usr/bin/env python3
"""Boot out/streamcd.iso in QEMU through `./build.sh run` and check what the
serial console shows. One scenario per run:

  dom0      default entry: Xen, dom0 root over HTTP through hcloop, xl list
  bare      "Linux without a hypervisor": the same root, no Xen
  debug     "Xen debug build": the debug hypervisor, then dom0
  noserver  no store server: the initrd must fail with hcloop's message
            and a shell, not hang

Environment for ./build.sh run (STREAMCD_FIRMWARE, STREAMCD_MEDIA) passes
through; STREAMCD_RUN_UNTIL=exit keeps the run going past "dom0 ready" (a
run without a terminal would end there). Prints what it measured; exit status 0 only if every check held.
"""
import argparse
import os
import re
import select
import signal
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANSI = re.compile(rb"\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[78=>cDEHM])")
# Ctrl-N moves down in both menu.c32 and GRUB; escape sequences get split.
DOWN = "\x0e"


class Fail(Exception):
    pass


class Console:
    """The serial console of a QEMU run: expect patterns, type lines."""

    def __init__(self, cmd, env, logpath):
        self.log = open(logpath, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=TOP, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.buf = ""
        self.pending = b""
        self.t0 = time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.t0

    def _read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return True
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            return False
        self.log.write(data)
        self.log.flush()
        data = self.pending + data
        # An escape sequence cut in two by the read stays for the next one.
        esc = data.rfind(b"\x1b")
        if esc >= 0 and not ANSI.match(data, esc) and len(data) - esc < 16:
            data, self.pending = data[:esc], data[esc:]
        else:
            self.pending = b""
        self.buf += ANSI.sub(b"", data).replace(b"\r", b"").decode("utf-8", "replace")
        return True

    def expect(self, pattern, timeout, what=None):
        """Wait for PATTERN (a regex) in the output; consume up to it."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                tail = "\n".join(self.buf.splitlines()[-15:])
                raise Fail(f"no {what or repr(pattern)} within {timeout} s "
                           f"({self.elapsed():.0f} s into the boot); last lines:\n{tail}")
            if not self._read(min(left, 1.0)):
                tail = "\n".join(self.buf.splitlines()[-15:])
                raise Fail(f"QEMU ended while waiting for {what or repr(pattern)}; "
                           f"last lines:\n{tail}")

    def send(self, text, enter=True):
        self.proc.stdin.write((text + ("\r" if enter else "")).encode())
        self.proc.stdin.flush()

    def run(self, command, timeout=120):
        """Type COMMAND at the shell; return its output. The end marker is
        computed by the shell, so the echo of the typed line never matches."""
        self.buf = ""
        self.send(f"echo \"@@$((1+1))@@\"; {command}; echo \"@@$((40+2))@@\"")
        m = self.expect(r"^@@2@@\n((?:.*\n)*?)@@42@@", timeout, f"the end of `{command}`")
        return m.group(1)

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def check(cond, msg):
    if not cond:
        raise Fail(msg)
    print(f"ok: {msg}")


def choose_entry(con, n):
    """Pick menu entry N (0 = default) in isolinux's or GRUB's menu."""
    con.expect(r"Linux dom0 on Xen", 300, "the boot menu")
    if n:
        time.sleep(1)
        con.send(DOWN * n, enter=False)
        time.sleep(0.5)
        con.send("", enter=True)


def login(con):
    """Past 'streamcd: dom0 ready' to a root shell prompt."""
    m = con.expect(r"login: *$|^root@[^\n]*[#$] *$", 180, "a login prompt or a shell")
    if m.group(0).rstrip().endswith("login:"):
        con.send("root")
        con.expect(r"[#$] *$", 120, "the shell prompt after logging in as root")
    # Quiet kernel messages and a fixed prompt make outputs parseable.
    con.send("dmesg -n 1 2>/dev/null; PS1='# '; export TERM=dumb")
    con.expect(r"^# *$", 60, "the prompt")


def root_checks(con, url_re):
    mounts = con.run("cat /proc/mounts")
    root = [ln for ln in mounts.splitlines() if len(ln.split()) > 2 and ln.split()[1] == "/"]
    check(root and root[-1].split()[2] == "overlay", f"/ is an overlay: {root[-1] if root else mounts}")
    check("fuse.hcloop" in mounts, "hcloop's FUSE mount is in /proc/mounts")
    stats = dict(ln.split(None, 1) for ln in con.run("cat /run/streamcd/store/.stats").splitlines()
                 if len(ln.split(None, 1)) == 2)
    check(re.match(url_re, stats.get("url", "")), f"hcloop serves from {stats.get('url')}")
    blocks = int(stats.get("fetched_blocks", "0"))
    check(blocks > 0, f"hcloop fetched {blocks} blocks over HTTP")
    check(stats.get("read_errors") == "0", "no read errors")
    # The image carries no xattrs that the kernel (no SQUASHFS_XATTR) would
    # complain about at each mount (guests/linux/rootfs.sh).
    errs = con.run("dmesg | grep -i 'squashfs error' || true")
    check(not errs.strip(), f"no SQUASHFS errors in dmesg {errs.strip()!r}")
    print(f"measure: fetched {blocks} blocks, {int(stats.get('fetched_bytes', 0))} bytes "
          f"(image {stats.get('image')} version {stats.get('version')}, "
          f"{int(stats.get('image_bytes', 0))} bytes)")


def scenario_boot(con, entry, hypervisor, debug=False):
    choose_entry(con, entry)
    if hypervisor:
        m = con.expect(r"Xen version (4\.17\S*) [^\n]*debug=([yn])", 300, "Xen's banner")
        check(m.group(2) == ("y" if debug else "n"),
              f"Xen {m.group(1)} with debug={m.group(2)}")
    m = con.expect(r"streamcd: root mounted from (\S+) \(image (\S+), version (\S+)\)", 600,
                   "'streamcd: root mounted from ...'")
    print(f"measure: root mounted at {con.elapsed():.0f} s: {m.group(0)}")
    con.expect(r"streamcd: dom0 ready", 900, "'streamcd: dom0 ready'")
    print(f"measure: dom0 ready at {con.elapsed():.0f} s")
    login(con)
    print(f"measure: shell at {con.elapsed():.0f} s")
    root_checks(con, r"http://10\.0\.2\.100")
    xen = con.run("cat /sys/hypervisor/type 2>/dev/null || echo none")
    if hypervisor:
        check("xen" in xen, "running on Xen (/sys/hypervisor/type)")
        out = con.run("xl list", 120)
        check(re.search(r"^Domain-0\s+0\s", out, re.M), f"xl list shows Domain-0:\n{out}")
    else:
        check("xen" not in xen, f"no hypervisor (/sys/hypervisor/type: {xen.strip()})")
    con.send("poweroff -f 2>/dev/null || poweroff")


def scenario_noserver(con):
    choose_entry(con, 0)
    con.expect(r"streamcd: mounting image \S+ from \S+", 600, "the initrd's mount attempt")
    t = con.elapsed()
    m = con.expect(r"streamcd: FAILED: ([^\n]*)\n", 300, "the initrd's failure message")
    took = con.elapsed() - t
    check("hcloop could not mount" in m.group(1), f"clear failure: {m.group(0)}")
    check(took < 120, f"gave up after {took:.0f} s, not a hang")
    con.expect(r"[#$] *$", 60, "the rescue shell")
    out = con.run("echo shell-$((1+1))")
    check("shell-2" in out, "the rescue shell answers")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", choices=["dom0", "bare", "debug", "noserver"])
    ap.add_argument("--log", required=True, help="file for the raw console output")
    args = ap.parse_args()
    env = dict(os.environ)
    env["STREAMCD_RUN_UNTIL"] = "exit"
    if args.scenario == "noserver":
        env["STREAMCD_RUN_SERVER"] = "0"
    con = Console(["./build.sh", "run"], env, args.log)
    try:
        if args.scenario == "dom0":
            scenario_boot(con, 0, True)
        elif args.scenario == "bare":
            scenario_boot(con, 1, False)
        elif args.scenario == "debug":
            scenario_boot(con, 2, True, debug=True)
        else:
            scenario_noserver(con)
    except Fail as e:
        print(f"FAIL: {args.scenario}: {e}")
        return 1
    finally:
        con.close()
    print(f"PASS: {args.scenario} ({con.elapsed():.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
