#!/usr/bin/env python3
"""bench/screen.py: a guest's screen on the PC's screen, against the same
screen read by a VNC client on the host. See --help."""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests"))
import boot  # noqa: E402
import screen  # noqa: E402

HELP = """\
Boots out/streamcd.iso in QEMU (BIOS, VGA text mode) with a store that has
the tests' screen CD (tests/screentest: tests/screencd.S, an HVM guest with
only a screen), launches it from dom0's serial console with its screen also
on VNC over TCP (streamcd launch --vnc-tcp 1, forwarded to 127.0.0.1 here)
and measures, in that one boot:

  shown      seconds from the Enter of 'v screentest' at dom0's menu (QEMU's
             sendkey) to the guest's screen on the PC's screen (its first
             line, the blue "Ctrl-] comes back" banner, in a screendump);
             against: a VNC client here connecting and getting its first
             whole screen. Target: at most 2 s.
  fps        frames per second while the guest redraws as fast as it can
             (F3: a frame counter): frames drawn by dom0's viewer
             (streamcd-view --stats) against updates this VNC client gets,
             the same seconds. Target: at least 0.5x.
  latency    milliseconds from a key to the next change of the screen: keys
             typed on the PC's keyboard (sendkey) as dom0's viewer sees them,
             against keys this client sends. Target: at most 2x (the
             viewer's 0.5x speed).
  boot       the bytes dom0 fetched to "streamcd: dom0 ready".

Ratios are viewer over host client (fps) or host over viewer (latency,
shown): 1.0 is as good as a client on the host. Times are QEMU TCG's.

The table goes to standard output and to --out.
"""


def log(msg):
    print(f"screen: {msg}", file=sys.stderr, flush=True)


def store_with_screentest(work):
    """A copy of out/store with the screen CD's recipe only in its
    catalogue: tests/boot-lib.sh's guests_build, as tests/boot-screen.sh."""
    b, logf = os.path.join(work, "b"), os.path.join(work, "guests.log")
    rc = subprocess.run(["bash", "-c", '. "$1/tests/boot-lib.sh" && guests_build "$2" "$1/tests/screentest" "$3"',
                         "_", TOP, b, logf], capture_output=True, text=True).stdout.strip()
    if rc != "0":
        sys.exit(f"screen: the store with the screen CD did not build: {logf}")
    return os.path.join(b, "store")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def banner_shown(rgb, w):
    """The viewer's first line (white on blue, VGA colour 1) is there: most
    of the top 16 pixel rows' pixels are the VGA's blue or white."""
    blue = white = 0
    for i in range(0, 16 * w * 3, 3 * 4):
        px = rgb[i:i + 3]
        if px[0] < 0x40 and px[1] < 0x40 and px[2] > 0x80:
            blue += 1
        elif px[0] > 0xc0 and px[1] > 0xc0 and px[2] > 0xc0:
            white += 1
    return (blue + white) * 4 * 10 > 16 * w * 9


def wait_banner(mon, timeout, want=True):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        w, h, rgb = mon.screendump()
        if banner_shown(rgb, w) == want:
            return time.monotonic()
        time.sleep(0.05)
    raise boot.Fail(f"the viewer's first line {'did not show' if want else 'stayed'} within {timeout} s")


def stats_read(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        out[k] = v.split()
    return out


def main():
    ap = argparse.ArgumentParser(description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="times 'v screentest' is measured (default 3)")
    ap.add_argument("--keys", type=int, default=8, help="keys each way for the latency (default 8)")
    ap.add_argument("--seconds", type=int, default=15, help="seconds of frames counted (default 15)")
    ap.add_argument("--out", default=os.path.join(TOP, "out/bench/screen.txt"))
    a = ap.parse_args()
    if not os.path.exists(os.path.join(TOP, "out/streamcd.iso")):
        sys.exit("screen: no out/streamcd.iso: run ./build.sh first")
    work = tempfile.mkdtemp(prefix="bench-screen.")
    os.chmod(work, 0o755)  # the store server's workers are not root
    os.chdir(TOP)
    con, ok = None, False
    try:
        log("building a store copy with the screen CD's recipe")
        store = store_with_screentest(work)
        vnc_port, mon_path = free_port(), os.path.join(work, "monitor")
        env = dict(os.environ, STREAMCD_RUN_UNTIL="exit", STREAMCD_STORE=store,
                   STREAMCD_RUN_DIR=os.path.join(work, "run"), STREAMCD_MONITOR=mon_path,
                   STREAMCD_FORWARD=f"{vnc_port}:5901")
        os.makedirs(env["STREAMCD_RUN_DIR"])
        log("booting dom0")
        con = boot.Console([os.path.join(TOP, "build.sh"), "run"], env, os.path.join(work, "console.log"))
        m = con.expect(r"streamcd: dom0 ready \((\d+) bytes fetched\)", 900, "'streamcd: dom0 ready'")
        boot_bytes = int(m.group(1))
        boot.login(con)
        out = con.run("streamcd launch --no-attach --vnc-tcp 1 screentest >/dev/null 2>&1; "
                      "streamcd wait screentest 600; echo rc=$?", 900)
        if "rc=0" not in out:
            raise boot.Fail(f"screentest did not get ready: {out}")
        log("screentest is ready")
        mon = screen.Monitor(mon_path)
        scr = screen.Screen(mon)
        scr.wait_text(boot.MENU_LINE, 300, "dom0's menu on the screen")

        # shown: the viewer against a host client's connection.
        viewer_s, host_s = [], []
        for i in range(a.rounds):
            mon.type("v screentest")
            t0 = time.monotonic()
            mon.key("ret")
            viewer_s.append(wait_banner(mon, 60) - t0)
            if i == 0:
                scr.wait_text(screen.CD_HELP, 60, "the screen CD's screen")
            mon.key("ctrl-bracket_right")
            scr.wait_text(boot.MENU_LINE, 60, "the menu after Ctrl-]")
            t0 = time.monotonic()
            rfb = screen.Rfb("127.0.0.1", vnc_port)
            rfb.request(False)
            while rfb.update(30) is None:
                rfb.request(False)
            host_s.append(time.monotonic() - t0)
            rfb.close()
        log(f"shown: viewer {viewer_s}, host {host_s}")

        # The viewer on, for the rest; the host client beside it.
        mon.type("v screentest")
        mon.key("ret")
        t_view = wait_banner(mon, 60)
        rfb = screen.Rfb("127.0.0.1", vnc_port)
        rfb.request(False)
        rfb.update(30)

        # latency: PC keys through the viewer (the first only takes the
        # banner away), then the host client's.
        for _ in range(a.keys + 1):
            mon.key("x")
            time.sleep(1.0)
        host_ms = []
        for _ in range(a.keys):
            # what came in meanwhile (the cursor's blink) first
            rfb.request()
            while rfb.update(0.3) is not None:
                rfb.request()
            rfb.key(ord("y"))
            t0 = time.monotonic()
            rfb.request()
            while not rfb.update(10):
                rfb.request()
            host_ms.append((time.monotonic() - t0) * 1000)
            time.sleep(0.7)

        # fps: F3 sets the CD counting frames; a key stops it.
        mon.key("f3")
        time.sleep(2)
        n, t0 = 0, time.monotonic()
        rfb.request()
        while time.monotonic() - t0 < a.seconds:
            got = rfb.update(1)
            if got is None:
                rfb.request()
                continue
            if got:
                n += 1
            rfb.request()
        host_fps = n / (time.monotonic() - t0)
        from_s, to_s = t0 - t_view, time.monotonic() - t_view
        mon.key("spc")
        rfb.close()
        time.sleep(1)
        mon.key("ctrl-bracket_right")
        scr.wait_text(boot.MENU_LINE, 60, "the menu after Ctrl-]")
        st = stats_read(con.run("cat /run/streamcd/guests/screentest/view-stats"))
        per_s = [int(x) for x in st.get("frames_per_second", [])]
        # whole seconds of the viewer's own count inside the host's window
        window = per_s[int(from_s) + 1:int(to_s)]
        if not window:
            raise boot.Fail(f"the viewer's counters do not cover seconds {from_s:.0f}-{to_s:.0f}: {st}")
        viewer_fps = statistics.mean(window)
        viewer_ms = [float(x) for x in st.get("key_to_screen_ms", [])][1:a.keys + 1]
        if len(viewer_ms) < a.keys // 2:
            raise boot.Fail(f"the viewer measured {len(viewer_ms)} keys of {a.keys}: {st}")

        rows = [
            ("shown_s", statistics.median(viewer_s), statistics.median(host_s), "<= 2 s"),
            ("fps", viewer_fps, host_fps, ">= 0.5x"),
            ("latency_ms", statistics.median(viewer_ms), statistics.median(host_ms), ">= 0.5x"),
        ]
        lines = [f"{'measure':<11} {'viewer':>9} {'host':>9} {'ratio':>6}  target"]
        for name, v, h, target in rows:
            ratio = v / h if name == "fps" else h / v
            lines.append(f"{name:<11} {v:9.2f} {h:9.2f} {ratio:6.2f}  {target}")
        lines.append(f"boot_bytes  {boot_bytes} to 'streamcd: dom0 ready'")
        lines.append(f"(shown: median of {a.rounds}; latency: median of {len(viewer_ms)} and {len(host_ms)} keys; "
                     f"fps over {a.seconds} s, both at once; ratio: 1.0 = as a VNC client on the host)")
        table = "\n".join(lines)
        print(table)
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(table + "\n")
        con.send("poweroff -f")
        ok = True
        return 0
    except (boot.Fail, screen.ScreenError) as e:
        log(f"FAILED: {e} (console: {work}/console.log)")
        return 1
    finally:
        if con:
            con.close()
        if ok:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
