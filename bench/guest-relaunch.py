#!/usr/bin/env python3
"""One guest launched again and again in one dom0 boot: how often it comes
up, and how long it takes. A rare early crash (a triple fault, a hang)
shows only over many launches; this is the tool that counts them.

Boots out/streamcd.iso once (./build.sh run, TCG here), then N times:
`streamcd launch --no-attach NAME`, `streamcd wait NAME`, the seconds and
bytes of its ready file, `streamcd stop NAME`. With --grep, the lines of
the guest's console log that match are printed with each launch (e.g.
'tsc:' for the kernel's clock set-up); --verbose drops `quiet` from the
guest's command line (PV, PVH) so that the kernel's messages reach that
log. A launch that fails prints the end of its console log and of Xen's
log. Prints the median, minimum and maximum of the ready times; exit
status 1 if any launch failed.

Usage: bench/guest-relaunch.py [--times N] [--verbose] [--grep REGEX]
                               [--out DIR] NAME
(--out: the build's out/ directory, default ./out)
"""
import argparse
import os
import statistics
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests"))
import boot  # noqa: E402  (the tests' console driver)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", help="a guest of the catalogue, e.g. linux-pvh")
    ap.add_argument("--times", type=int, default=30, help="launches (default 30)")
    ap.add_argument("--verbose", action="store_true",
                    help="drop 'quiet' from the guest's kernel command line")
    ap.add_argument("--grep", help="print the console-log lines matching this (grep -E)")
    ap.add_argument("--out", default=os.path.join(TOP, "out"), help="the build's out/ (default ./out)")
    args = ap.parse_args()
    if args.times < 1:
        ap.error("--times must be at least 1")
    logdir = os.path.join(args.out, "bench-relaunch")
    os.makedirs(logdir, exist_ok=True)
    env = dict(os.environ, STREAMCD_RUN_UNTIL="exit", STREAMCD_OUT=args.out,
               STREAMCD_APPEND="streamcd.menu=0")
    log = os.path.join(logdir, f"{args.name}.console")
    con = boot.Console(["./build.sh", "run"], env, log)
    ready, failed = [], 0
    name = args.name
    try:
        con.expect(r"streamcd: dom0 ready", 900, "'streamcd: dom0 ready'")
        boot.login(con)
        # Typed lines are kept short: the serial line drops characters
        # of long ones (no flow control).
        out = con.run(f"cd /run/streamcd; streamcd list | awk -v n={name} '$2 == n' | grep -c .", 300)
        if out.strip() != "1":
            raise boot.Fail(f"no guest named {name} in the catalogue")
        if args.verbose:
            con.run("sed -i 's/ quiet/ printk.time=1/' guests/catalog.txt")
        for i in range(1, args.times + 1):
            con.run(f"streamcd launch --no-attach {name} >/dev/null 2>&1", 600)
            out = con.run(f"streamcd wait {name} 600 >/dev/null 2>&1; echo rc=$?", 700)
            # Where the launcher keeps the console, in the shell's $c:
            # xenconsoled's log for PV and PVH, QEMU's serial log for HVM.
            con.run(f"c=console/guest-{name}.log; [ -f $c ] || c=guests/{name}/console.log")
            if "rc=0" not in out:
                failed += 1
                print(f"launch {i}: FAILED ({out.strip()})", flush=True)
                print(con.run("tail -n 15 $c; xl dmesg | tail -n 25", 60), flush=True)
            else:
                secs, fetched = boot.ready_file(con, name)
                ready.append(secs)
                line = f"launch {i}: ready {secs:.1f} s, {fetched} bytes fetched"
                if args.grep:
                    found = con.run(f"grep -E '{args.grep}' $c | head -n 5", 60)
                    line += "".join(f"\n    {ln}" for ln in found.splitlines())
                print(line, flush=True)
            con.run(f"streamcd stop {name} >/dev/null 2>&1; echo stopped", 300)
    except boot.Fail as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        con.close()
    print(f"{name}: {len(ready)} of {args.times} launches ready, {failed} failed")
    if ready:
        print(f"{name}: ready median {statistics.median(ready):.1f} s, "
              f"min {min(ready):.1f} s, max {max(ready):.1f} s (dom0's console: {log})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
