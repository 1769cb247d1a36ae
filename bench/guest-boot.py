#!/usr/bin/env python3
"""Guests launched from dom0, side by side in one run: for each recipe of
the catalogue (or those named), seconds from `streamcd launch` to the
guest's ready line and the bytes its image mounts fetched, against the
bytes of its images, in three ways:

  on-demand   the guest's writes in a qcow2 overlay (the launcher's
              default), blocks fetched as the guest reads them
  profile     the same after a boot profile of each image was recorded
              (streamcd launch --trace) and attached (hcloop make --profile),
              so hcloop fetches what the boot reads ahead, in order
  dm          the guest's writes in a dm-snapshot layer instead (launch
              --cow dm), on demand

On-demand and dm launches share one QEMU boot of out/streamcd.iso
(./build.sh run, TCG here), interleaved (each guest in one way, then the
other, --rounds times), so that the machine's load falls on both alike;
profile launches are a second boot, on a store with the profiles attached.
Each guest is stopped before the next launch and its images unmounted, so
no launch finds blocks a previous one fetched. The table gives the median
of the rounds. The profiles go into a copy of out/store
(out/bench-guests/store): out/store is left as it was.

Usage: bench/guest-boot.py [--ways on-demand,profile,dm] [--rounds N]
                           [--out DIR] [NAME...]
(--out: the build's out/ directory, default ./out)
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests"))
import boot  # noqa: E402  (the tests' console driver)

HCLOOP = os.path.join(TOP, "cloop", "build", "hcloop")
# Each way's copy-on-write layer, named, so that the launcher's default
# does not decide what a way measures.
COW = {"on-demand": "qcow2", "profile": "qcow2", "dm": "dm"}


def catalogue(path):
    guests, cur = {}, None
    for ln in open(path):
        m = re.match(r"^([a-z_]+) = (.*)$", ln.rstrip("\n"))
        if not m:
            continue
        k, v = m.groups()
        if k == "guest":
            cur = guests.setdefault(v, {"image": []})
        elif k == "image":
            cur["image"].append(v.split())
        elif cur is not None:
            cur[k] = v
    return guests


def one_boot(out_dir, plan, tag, logdir, traces=None):
    """Boot once; launch each (name, way) of PLAN in turn, stopping each
    before the next; return {way: {name: [(secs, bytes), ...]}}."""
    env = dict(os.environ, STREAMCD_RUN_UNTIL="exit",
               STREAMCD_OUT=out_dir, STREAMCD_CACHE="")
    con = boot.Console(["./build.sh", "run"], env, os.path.join(logdir, f"{tag}.console"))
    res = {}
    try:
        con.expect(r"streamcd: dom0 ready", 900, "'streamcd: dom0 ready'")
        boot.login(con)
        for n, way in plan:
            opts = f"--no-attach --cow {COW[way]}"
            record = traces is not None and way == "on-demand"
            if record:
                opts += f" --trace /tmp/trace-{n}"
            out = con.run(f"streamcd launch {opts} {n} && streamcd wait {n} 900; echo rc=$?", 1000)
            if "rc=0" not in out:
                raise boot.Fail(f"{n} did not come up ({way}): {out.strip()}")
            secs, fetched = boot.ready_file(con, n)
            res.setdefault(way, {}).setdefault(n, []).append((secs, fetched))
            ph = dict(ln.split() for ln in con.run(
                f"cat /run/streamcd/guests/{n}/start /run/streamcd/guests/{n}/phases | sed '1s/^/start /'")
                .splitlines() if len(ln.split()) == 2)
            t0 = float(ph["start"])
            print(f"measure: {way} {n}: ready {secs} s after launch (disks and network ready at "
                  f"{float(ph['disks']) - t0:.1f} s, xl create done at {float(ph['created']) - t0:.1f} s), "
                  f"{fetched} bytes fetched", flush=True)
            if record:
                for f in con.run(f"ls /tmp/trace-{n}").split():
                    img = f[:-len(".trace")]
                    blocks = con.run(f"cat /tmp/trace-{n}/{f}", 300).split()
                    traces.setdefault(img, [])
                    traces[img] += [b for b in blocks if b not in traces[img]]
            con.run(f"streamcd stop {n}", 300)
        con.send("poweroff -f")
    finally:
        con.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ways", default="on-demand,profile,dm")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(TOP, "out"))
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    out = os.path.realpath(a.out)
    guests = catalogue(os.path.join(out, "guests", "catalog"))
    names = a.names or sorted(guests)
    ways = a.ways.split(",")
    unknown = set(ways) - set(COW)
    if unknown:
        ap.error(f"--ways: unknown {', '.join(sorted(unknown))} ({', '.join(COW)})")
    missing = [n for n in names if n not in guests]
    if missing:
        ap.error(f"no guest named {', '.join(missing)} in the catalogue")
    work = os.path.join(out, "bench-guests")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "log"))
    # A private out/: the ISO, and a copy of the store whose index files
    # the profiles replace (blocks are hard links: make renames new files in).
    os.link(os.path.join(out, "streamcd.iso"), os.path.join(work, "streamcd.iso"))
    subprocess.run(["cp", "-al", os.path.join(out, "store"), os.path.join(work, "store")], check=True)
    for d in ("index",):
        p = os.path.join(work, "store", d)
        shutil.rmtree(p)
        shutil.copytree(os.path.join(out, "store", d), p)
    logdir = os.path.join(work, "log")
    results, traces = {}, {}
    try:
        # The profiles are recorded on the on-demand launches, which a
        # profile run therefore needs.
        first = [w for w in ("on-demand", "dm") if w in ways]
        if "profile" in ways and "on-demand" not in first:
            first.insert(0, "on-demand")
        plan = [(n, w) for _ in range(a.rounds) for n in names for w in first]
        if plan:
            results.update(one_boot(work, plan, "+".join(first), logdir,
                                    traces if "profile" in ways else None))
        if "profile" in ways:
            versions = {i[0]: i[1] for g in guests.values() for i in g["image"]}
            for img, blocks in traces.items():
                tf = os.path.join(work, f"{img}.trace")
                with open(tf, "w") as f:
                    f.write("".join(f"{b}\n" for b in blocks))
                src = os.path.join(out, "guests", "images", img, "image")
                subprocess.run([HCLOOP, "make", "-q", "--profile", tf, src, os.path.join(work, "store"),
                                img, versions[img]], check=True)
                print(f"measure: profile of {img}: {len(blocks)} blocks", flush=True)
            plan = [(n, "profile") for _ in range(a.rounds) for n in names]
            results.update(one_boot(work, plan, "profile", logdir))
    except boot.Fail as e:
        print(f"FAIL: {e}")
        return 1
    shown = [w for w in ways if w in results]

    def med(w, n, i):
        return statistics.median(r[i] for r in results[w][n])

    print()
    print(f"median of {a.rounds} round(s); ratios: on-demand time over the other way's")
    print(f"{'guest':<11} {'mode':<4} {'images':>9} " +
          " ".join(f"{w + ' s':>12} {w + ' MB':>13}" for w in shown) +
          "".join(f"  {'x ' + w:>9}" for w in shown if w != "on-demand" and "on-demand" in results))
    for n in names:
        g = guests[n]
        size = sum(int(i[3]) for i in g["image"] if i[0] != g.get("symbols"))
        row = f"{n:<11} {g['mode']:<4} {size / 1e6:>7.1f}MB "
        row += " ".join(f"{med(w, n, 0):>12.1f} {med(w, n, 1) / 1e6:>13.2f}" for w in shown)
        if "on-demand" in results:
            row += "".join(f"  {med('on-demand', n, 0) / med(w, n, 0):>9.2f}" for w in shown if w != "on-demand")
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
