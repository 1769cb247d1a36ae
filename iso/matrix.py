#!/usr/bin/env python3
"""The boot matrix: boots an ISO's cases in QEMU and reports each.

Usage: ./build.sh matrix [OPTIONS] [CASE|PATTERN...]

Each case is one QEMU boot of the ISO (./build.sh run: KVM where the host
can give Xen hardware virtualisation, TCG otherwise) with the store on a
local web server (or the store URL given), driven through its serial
console by tests/boot.py, one scenario per case, each wait for a console
marker bounded by its own timeout. Cases (--list prints them):

  bios-cd, uefi-cd    Xen and dom0 from a CD, BIOS (SeaBIOS) or UEFI (OVMF)
  bios-usb, uefi-usb  the same from a USB stick the ISO was written to
  bare                the entry without a hypervisor
  debug               the debug hypervisor, and gdb through its stub
  noserver            no store server: a clean failure and a shell
  tampered            a store whose dom0 index was altered: refused
  gdbsx               gdb in dom0 on a PV guest through gdbsx
  iommu               an emulated Intel IOMMU, a NIC passed to a PV guest
  launcher            the guest menu: a guest started, left, stopped
  screen-bios         the PC's own screen and keyboard only (screendump,
                      OCR, sendkey): the menu, a guest started by its
                      number shows its own screen, typed keys reach it,
                      Ctrl-] comes back, 'v NAME' shows it again; BIOS
                      (VGA text)
  screen-uefi         the same on UEFI (framebuffer), the guest started by
                      streamcd.launch= (kiosk): its screen at once
  guest-NAME          each recipe NAME of the store's catalogue, launched
                      from dom0 until its ready pattern shows; a guest
                      with a screen (display = screen) also by its screen:
                      dom0's streamcd screenshot, read by OCR here

PATTERN is a shell pattern (guest-*). A case that needs what is not there
(OVMF, a PV guest with symbols, a store of our own to alter) is SKIP with
the reason, never a pass. A case that outlives --timeout is stopped and
fails; the run goes on. Ctrl-C stops every QEMU, web server and hcloop of
the run.

Results in out/matrix/ (--out): junit.xml (a testcase per case, skipped
ones marked skipped with the reason), CASE.log (the case's checks and its
whole serial console), CASE-*.png (the screens a case looked at), and a
table on the terminal: case, result, seconds, bytes the store's web
server sent.

Options:
  --list          print the case names, one a line
  -j, --jobs N    cases run side by side (default: a quarter of the CPUs,
                  at least 1: each QEMU keeps two busy; on 2 CPUs two at
                  a time took 860 s against 487 s one at a time, and
                  nested HVM under that load triple-faulted once)
  --iso FILE      boot FILE instead of out/streamcd.iso
  --store DIR     serve this store instead of out/store
  --url URL       a store on another server (http://HOST[:PORT][/PATH]);
                  a PATH needs the build's own ISO (it edits the boot line)
  --timeout S     seconds a case may take at most (default 1200)
  --out DIR       results here (default out/matrix)
"""
import argparse
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from xml.sax.saxutils import escape, quoteattr

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(TOP, "out")
HCLOOP = os.path.join(TOP, "cloop", "build", "hcloop")
BOOT_PY = os.path.join(TOP, "tests", "boot.py")
OVMF = "/usr/share/OVMF/OVMF_CODE.fd"
sys.path.insert(0, os.path.join(TOP, "cloop"))
import indexfile  # noqa: E402  (cloop/indexfile.py: FORMAT.md's index header)

# The fixed cases: scenario of tests/boot.py, its arguments, the
# environment for ./build.sh run.
FIXED = [
    ("bios-cd", "dom0", [], {"STREAMCD_FIRMWARE": "bios", "STREAMCD_MEDIA": "cdrom"}),
    ("uefi-cd", "dom0", [], {"STREAMCD_FIRMWARE": "uefi", "STREAMCD_MEDIA": "cdrom"}),
    ("bios-usb", "dom0", [], {"STREAMCD_FIRMWARE": "bios", "STREAMCD_MEDIA": "usb"}),
    ("uefi-usb", "dom0", [], {"STREAMCD_FIRMWARE": "uefi", "STREAMCD_MEDIA": "usb"}),
    ("bare", "bare", [], {"STREAMCD_FIRMWARE": "bios"}),
    ("debug", "debug", [], {"STREAMCD_FIRMWARE": "bios"}),
    ("noserver", "noserver", [], {"STREAMCD_FIRMWARE": "bios"}),
    ("tampered", "refused", [r"has a bad signature"], {"STREAMCD_FIRMWARE": "bios"}),
    ("gdbsx", "gdbsx", [], {}),
    ("iommu", "iommu", [], {}),
    ("launcher", "launcher", [], {}),
    ("screen-bios", "screen", [], {"STREAMCD_FIRMWARE": "bios"}),
    ("screen-uefi", "screen", ["--kiosk"], {"STREAMCD_FIRMWARE": "uefi"}),
]

# The guests whose screens the screen cases know: what the screen shows once
# the guest is up, a line to type, what the screen then shows, and what it
# shows while the PC's mouse holds its left button (empty: the guest shows
# nothing of a mouse). The first of them in the catalogue is the one a
# screen case starts (screentest: tests/screencd.S, in tests/boot-screen.sh's
# store).
SCREEN_GUESTS = [
    ("linux-hvm", "ready, Xen HVM guest", "echo typed-$((6*7))", "typed-42", ""),
    ("screentest", "a CD that shows this line", "Hello, PC 42", "Hello, PC 42", "LEFT"),
]


class Case:
    def __init__(self, name, scenario, args, env):
        self.name, self.scenario, self.args, self.env = name, scenario, list(args), dict(env)
        self.skip = None      # the reason, when it cannot run here
        self.result = None    # PASS, FAIL, SKIP
        self.why = ""
        self.secs = 0.0
        self.bytes = None
        self.proc = None


def catalogue(store, url):
    """({name: {key: value}}, {name: why}) of the store's guest catalogue:
    its guests, and the recipes the build left out (missing artifacts)."""
    text = None
    if store is None and url is None and os.path.exists(os.path.join(OUT, "guests", "catalog")):
        text = open(os.path.join(OUT, "guests", "catalog")).read()
    else:
        src = url or os.path.abspath(store or os.path.join(OUT, "store"))
        mnt = tempfile.mkdtemp(prefix="streamcd-matrix-")
        try:
            r = subprocess.run([HCLOOP, "mount", "-P", "off", "-t", "10", src, "catalog", mnt],
                               capture_output=True, text=True)
            if r.returncode == 0:
                try:
                    text = open(os.path.join(mnt, "catalog")).read()
                finally:
                    subprocess.run(["umount", mnt], capture_output=True)
            else:
                print(f"matrix: no catalogue from {src}: {r.stderr.strip()}", file=sys.stderr)
        finally:
            os.rmdir(mnt)
    guests, left, cur = {}, {}, None
    for ln in (text or "").splitlines():
        m = re.match(r"^# left out: ([^:\s]+): (.*)$", ln)
        if m:
            left[m.group(1)] = m.group(2)
            continue
        m = re.match(r"^([a-z_]+) = (.*)$", ln)
        if not m:
            continue
        k, v = m.groups()
        if k == "guest":
            cur = guests.setdefault(v, {})
        elif cur is not None and k not in ("image", "disk"):
            cur[k] = v
    return guests, left


def pv_with_symbols(guests):
    for n in sorted(guests):
        if guests[n].get("mode") == "pv" and guests[n].get("symbols"):
            return n
    return None


def make_cases(a, guests, left):
    cases = [Case(*c) for c in FIXED]
    for n in sorted(set(guests) | set(left)):
        if n in guests:
            cases.append(Case(f"guest-{n}", "guest", [n, guests[n].get("ready_timeout", "300")], {}))
        else:
            c = Case(f"guest-{n}", "guest", [n, "0"], {})
            c.skip = f"the build left it out of the catalogue: {left[n]}"
            cases.append(c)
    own_iso = a.iso is None
    pv = pv_with_symbols(guests)
    first_pv = next((n for n in sorted(guests) if guests[n].get("mode") == "pv"), None)
    for c in cases:
        if c.env.get("STREAMCD_FIRMWARE") == "uefi" and not os.path.exists(OVMF):
            c.skip = f"no UEFI firmware ({OVMF}: Debian's ovmf package)"
        elif c.name == "tampered" and a.url:
            c.skip = "the store is on another server: there is no copy of ours to alter"
        elif c.name == "gdbsx":
            if pv:
                c.args = [pv]
            else:
                c.skip = "the catalogue has no PV guest whose recipe names gdb symbols"
        elif c.name == "iommu":
            if not first_pv:
                c.skip = "the catalogue has no PV guest to pass a NIC to"
            elif not own_iso:
                c.skip = "it sets streamcd.menu=0 on the boot line: only the build's own ISO"
            elif first_pv != "linux-pv":
                c.skip = "the scenario passes the NIC to linux-pv, which this catalogue lacks"
        elif c.scenario == "screen":
            known = [g for g in SCREEN_GUESTS if g[0] in guests]
            if not known:
                c.skip = ("the catalogue has none of the guests whose screens the matrix knows: "
                          + ", ".join(g[0] for g in SCREEN_GUESTS))
            elif "--kiosk" in c.args and not own_iso:
                c.skip = "it sets streamcd.launch= on the boot line: only the build's own ISO"
            else:
                c.args = list(known[0]) + c.args
        elif c.name == "launcher":
            if first_pv:
                c.args = [first_pv]
            elif guests:
                c.args = [sorted(guests)[0]]
            else:
                c.skip = "the store has no guest catalogue"
    return cases


def select(cases, patterns):
    if not patterns:
        return cases, []
    chosen, unknown = [], []
    for p in patterns:
        hit = [c for c in cases if fnmatch.fnmatchcase(c.name, p)]
        if not hit:
            unknown.append(p)
        chosen += [c for c in hit if c not in chosen]
    return [c for c in cases if c in chosen], unknown


def tamper(store, work):
    """A copy of STORE whose dom0 latest index has its creation time
    altered, its trailer and the latest pointer made right again: only the
    signature can tell. Block files are shared, never written."""
    dst = os.path.join(work, "tampered-store")
    os.makedirs(dst)
    os.symlink(os.path.join(store, "blocks"), os.path.join(dst, "blocks"))
    shutil.copytree(os.path.join(store, "index"), os.path.join(dst, "index"))
    version, serial = open(os.path.join(dst, "index", "dom0", "latest")).read().split()[:2]
    digest = indexfile.tamper(os.path.join(dst, "index", "dom0", version))
    with open(os.path.join(dst, "index", "dom0", "latest"), "w") as f:
        f.write(f"{version} {serial} {digest}\n")
    return dst


def http_bytes(run_dir):
    """What the case's web server sent (nginx's combined log: field 10)."""
    n, seen = 0, False
    try:
        for ln in open(os.path.join(run_dir, "run-nginx", "access.log"), errors="replace"):
            f = ln.split('"')
            if len(f) >= 3:
                parts = f[2].split()
                if len(parts) >= 2 and parts[1].isdigit():
                    n += int(parts[1])
                    seen = True
    except OSError:
        pass
    return n if seen else None


def ready_bytes(text):
    """Without a server of ours: the ready lines' counts of hcloop's bytes."""
    n = [int(x) for x in re.findall(r"streamcd: dom0 ready \((\d+) bytes fetched\)", text)]
    n += [int(x) for x in re.findall(r"streamcd: guest \S+ ready \([\d.]+ s, (\d+) bytes fetched\)", text)]
    return sum(n) if n else None


class Matrix:
    def __init__(self, a, cases):
        self.a, self.cases = a, cases
        self.lock = threading.Lock()
        self.stopping = False

    def env_for(self, c):
        env = dict(os.environ)
        for k in ("STREAMCD_APPEND", "STREAMCD_STORE", "STREAMCD_ISO", "STREAMCD_STORE_URL",
                  "STREAMCD_STICK", "STREAMCD_DISK", "STREAMCD_NET", "STREAMCD_IOMMU", "STREAMCD_PORT",
                  "STREAMCD_GDB_PORT", "STREAMCD_FIRMWARE", "STREAMCD_MEDIA", "STREAMCD_MONITOR"):
            env.pop(k, None)
        env.update(c.env)
        d = os.path.join(self.a.out, c.name + ".d")
        env["STREAMCD_RUN_DIR"] = d
        if c.env.get("STREAMCD_MEDIA") == "usb":
            env["STREAMCD_STICK"] = os.path.join(d, "stick.img")
        if self.a.iso:
            env["STREAMCD_ISO"] = os.path.abspath(self.a.iso)
        if self.a.url:
            env["STREAMCD_STORE_URL"] = self.a.url
        elif c.name == "tampered":
            env["STREAMCD_STORE"] = self.tampered
        elif self.a.store:
            env["STREAMCD_STORE"] = os.path.abspath(self.a.store)
        return env

    def run_case(self, c):
        d = os.path.join(self.a.out, c.name + ".d")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        log = os.path.join(self.a.out, c.name + ".log")
        console = os.path.join(d, "console.log")
        t0 = time.monotonic()
        with open(log, "wb") as out:
            out.write(f"# matrix case {c.name}: tests/boot.py {c.scenario} {' '.join(c.args)}\n".encode())
            out.flush()
            with self.lock:
                if self.stopping:
                    c.result, c.why = "FAIL", "interrupted before it started"
                    return
                c.proc = subprocess.Popen(
                    [sys.executable, BOOT_PY, c.scenario, *c.args, "--log", console],
                    cwd=TOP, env=self.env_for(c), stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)
            try:
                rc = c.proc.wait(self.a.timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                self.stop(c.proc)
                rc = c.proc.wait()
        c.secs = time.monotonic() - t0
        text = open(log, errors="replace").read()
        try:
            cons = open(console, "rb").read().decode("utf-8", "replace")
        except OSError:
            cons = ""
        with open(log, "a") as out:
            out.write("\n# ---- the serial console ----\n")
            out.write(cons)
        c.bytes = ready_bytes(cons) if self.a.url else http_bytes(d)
        if timed_out:
            c.result, c.why = "FAIL", f"stopped after --timeout {self.a.timeout} s"
        elif self.stopping and rc != 0:
            c.result, c.why = "FAIL", "interrupted"
        elif rc == 0:
            c.result = "PASS"
        else:
            c.result = "FAIL"
            fails = [ln for ln in text.splitlines() if ln.startswith("FAIL")]
            c.why = fails[-1] if fails else f"tests/boot.py exited with status {rc}"
        # The screens it looked at stay beside its log.
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if f.endswith(".png"):
                shutil.move(os.path.join(d, f), os.path.join(self.a.out, f"{c.name}-{f}"))
        if c.result == "PASS":  # a failed case's files stay for a look
            shutil.rmtree(d, ignore_errors=True)

    @staticmethod
    def stop(proc):
        """The case's process group: boot.py stops QEMU and ./build.sh run
        its web server on SIGTERM; what is left after 30 s is killed."""
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def interrupt(self, *_):
        with self.lock:
            if self.stopping:
                return
            self.stopping = True
            running = [c.proc for c in self.cases if c.proc and c.proc.poll() is None]
        print("\nmatrix: interrupted: stopping every case", file=sys.stderr, flush=True)
        for p in running:
            threading.Thread(target=self.stop, args=(p,)).start()

    def run(self):
        todo = [c for c in self.cases if not c.skip]
        for c in self.cases:
            if c.skip:
                c.result, c.why = "SKIP", c.skip
                print(f"matrix: {c.name}: SKIP: {c.skip}", flush=True)
        if any(c.name == "tampered" for c in todo):
            self.tampered = tamper(os.path.abspath(self.a.store or os.path.join(OUT, "store")),
                                   self.a.out)
        queue = list(todo)
        qlock = threading.Lock()

        def worker():
            while True:
                with qlock:
                    if not queue or self.stopping:
                        return
                    c = queue.pop(0)
                print(f"matrix: {c.name}: started", flush=True)
                self.run_case(c)
                print(f"matrix: {c.name}: {c.result} ({c.secs:.0f} s){': ' + c.why if c.why else ''}",
                      flush=True)

        threads = [threading.Thread(target=worker) for _ in range(max(1, self.a.jobs))]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
        for c in self.cases:
            if c.result is None:
                c.result, c.why = "FAIL", "interrupted before it started"


def table(cases, total):
    rows = [("case", "result", "seconds", "HTTP bytes")]
    for c in cases:
        rows.append((c.name, c.result, f"{c.secs:.0f}" if c.result != "SKIP" else "-",
                     "-" if c.bytes is None else f"{c.bytes:,}"))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}" for r in rows]
    n = {k: sum(c.result == k for c in cases) for k in ("PASS", "FAIL", "SKIP")}
    lines.append(f"{n['PASS']} passed, {n['FAIL']} failed, {n['SKIP']} skipped in {total:.0f} s")
    for c in cases:
        if c.result != "PASS" and c.why:
            lines.append(f"  {c.name}: {c.result}: {c.why}")
    return "\n".join(lines)


def junit(cases, path, total):
    n = {k: sum(c.result == k for c in cases) for k in ("FAIL", "SKIP")}
    out = [f'<?xml version="1.0" encoding="UTF-8"?>',
           f'<testsuites name="streamcd-matrix" tests="{len(cases)}" failures="{n["FAIL"]}" '
           f'skipped="{n["SKIP"]}" time="{total:.1f}">',
           f'<testsuite name="matrix" tests="{len(cases)}" failures="{n["FAIL"]}" '
           f'skipped="{n["SKIP"]}" errors="0" time="{total:.1f}">']
    for c in cases:
        out.append(f'<testcase classname="streamcd.matrix" name={quoteattr(c.name)} time="{c.secs:.1f}">')
        if c.result == "SKIP":
            out.append(f"<skipped message={quoteattr(c.why)}/>")
        elif c.result == "FAIL":
            out.append(f"<failure message={quoteattr(c.why)}>{escape(c.why)}</failure>")
        out.append(f"<system-out>{escape(c.name + '.log')}</system-out>")
        out.append("</testcase>")
    out += ["</testsuite>", "</testsuites>", ""]
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(out))
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(prog="./build.sh matrix", add_help=False)
    ap.add_argument("-h", "--help", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-j", "--jobs", type=int, default=max(1, (os.cpu_count() or 1) // 4))
    ap.add_argument("--iso")
    ap.add_argument("--store")
    ap.add_argument("--url")
    ap.add_argument("--timeout", type=int, default=1200)
    ap.add_argument("--out", default=os.path.join(OUT, "matrix"))
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    if a.help:
        print(__doc__.strip())
        return 0
    if a.store and a.url:
        ap.error("--store and --url: one store at a time")
    if a.url and a.iso and re.match(r"^http://[^/]+/.", a.url):
        ap.error("--url with a PATH puts streamcd.url= on the boot line, which --iso's ISO cannot have")
    if a.jobs < 1 or a.timeout < 1:
        ap.error("--jobs and --timeout take a positive number")
    for f, what in ((a.iso, "--iso"), (a.store, "--store")):
        if f and not os.path.exists(f):
            ap.error(f"{what} {f}: no such file or directory")
    guests, left = catalogue(a.store, a.url)
    cases, unknown = select(make_cases(a, guests, left), a.cases)
    if unknown:
        ap.error(f"no case matches {', '.join(unknown)} (--list names them)")
    if a.list:
        print("\n".join(c.name for c in cases))
        return 0
    a.out = os.path.abspath(a.out)
    os.makedirs(a.out, exist_ok=True)
    for c in cases:
        for f in os.listdir(a.out):
            if f == c.name + ".log" or (f.startswith(c.name + "-") and f.endswith(".png")):
                os.unlink(os.path.join(a.out, f))
    m = Matrix(a, cases)
    signal.signal(signal.SIGINT, m.interrupt)
    signal.signal(signal.SIGTERM, m.interrupt)
    t0 = time.monotonic()
    m.run()
    total = time.monotonic() - t0
    junit(cases, os.path.join(a.out, "junit.xml"), total)
    report = table(cases, total)
    with open(os.path.join(a.out, "table.txt"), "w") as f:
        f.write(report + "\n")
    print()
    print(report)
    print(f"(JUnit: {os.path.join(a.out, 'junit.xml')}; logs: {a.out}/CASE.log)")
    if m.stopping:
        return 130
    return 1 if any(c.result == "FAIL" for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
