#!/usr/bin/env python3
"""The PC's screen and keyboard as a person has them, for the tests.

QEMU's monitor (on a unix socket) gives the screen (screendump) and the
keyboard (sendkey); tesseract reads text off the screenshots, compared
with what a person would read allowing for OCR's slips; the tests' own
"unmodified OS CD" (tests/screencd.S) is built here too. Used by
tests/boot.py (the screen scenarios and the matrix's screen checks) and
tests/view.sh.

  screen.py build-cd OUT.iso     the screen test CD
  screen.py ocr IMAGE.png|.ppm   the text tesseract reads off a screenshot
"""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The screen CD's own lines (tests/screencd.S).
CD_BANNER = "STREAMCD SCREEN TEST: a CD that shows this line"
CD_HELP = "Type keys, they appear below."
CD_SERIAL = "STREAMCD SCREEN TEST on COM1"


def build_cd(iso):
    """tests/screencd.S as a bootable CD image (El Torito, no emulation)."""
    with tempfile.TemporaryDirectory() as d:
        obj, binf, root = (os.path.join(d, n) for n in ("cd.o", "boot.bin", "root"))
        os.mkdir(root)
        subprocess.run(["as", "--32", "-o", obj, os.path.join(TOP, "tests", "screencd.S")], check=True)
        subprocess.run(["ld", "-m", "elf_i386", "-Ttext=0x7c00", "--oformat=binary", "-o",
                        os.path.join(root, "boot.bin"), obj], check=True)
        subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", iso, "-V", "SCREENTEST",
                        "-b", "boot.bin", "-no-emul-boot", "-boot-load-size", "4", root],
                       check=True, stderr=subprocess.DEVNULL)
    return iso


# ---- images ---------------------------------------------------------------

def ppm_read(path):
    """(width, height, RGB bytes) of a binary PPM (QEMU's screendump)."""
    data = open(path, "rb").read()
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    if not m:
        raise ValueError(f"{path}: not a binary PPM")
    w, h = int(m.group(1)), int(m.group(2))
    return w, h, data[m.end():m.end() + 3 * w * h]


def png_write(path, w, h, rgb):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    rows = b"".join(b"\0" + rgb[y * 3 * w:(y + 1) * 3 * w] for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


def png_read(path):
    """(width, height, RGB bytes) of an 8-bit RGB PNG (ours, or the
    viewer's): filters 0..4 undone."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    at, idat, w, h = 8, b"", 0, 0
    while at < len(data):
        n, t = struct.unpack(">I4s", data[at:at + 8])
        d = data[at + 8:at + 8 + n]
        if t == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", d[:10])
            if depth != 8 or colour != 2:
                raise ValueError(f"{path}: not 8-bit RGB")
        elif t == b"IDAT":
            idat += d
        at += 12 + n
    raw, stride, out, prev = zlib.decompress(idat), 3 * w, bytearray(), bytearray(3 * w)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return w, h, bytes(out)


def image_read(path):
    return png_read(path) if path.endswith(".png") else ppm_read(path)


def colours(rgb, step=97):
    """The distinct colours of a sample of the pixels."""
    return {rgb[i:i + 3] for i in range(0, len(rgb) - 2, 3 * step)}


# ---- reading text off a screen --------------------------------------------

def ocr(w, h, rgb, scale=None):
    """The text tesseract reads: grey, dark text on light (screens are
    mostly light on dark), a VGA text screen's 16-pixel letters scaled up
    to read; a framebuffer's (a UEFI console) are left as they are."""
    if scale is None:
        scale = 2 if w < 1200 else 1
    grey = bytes((r * 30 + g * 59 + b * 11) // 100 for r, g, b in zip(rgb[0::3], rgb[1::3], rgb[2::3]))
    if sum(grey[::101]) / max(1, len(grey[::101])) < 128:
        grey = bytes(255 - v for v in grey)
    rows = []
    for y in range(h):
        line = grey[y * w:(y + 1) * w]
        wide = bytes(v for v in line for _ in range(scale))
        rows += [wide] * scale
    with tempfile.NamedTemporaryFile(suffix=".pgm") as f:
        f.write(b"P5 %d %d 255\n" % (w * scale, h * scale) + b"".join(rows))
        f.flush()
        r = subprocess.run(["tesseract", f.name, "-", "--psm", "4"], capture_output=True, text=True)
    return r.stdout


def _norm(s):
    return re.sub(r"\s+", " ", s.lower()).strip()


def fuzzy_find(text, needle, slack=0.15):
    """Whether NEEDLE appears in TEXT with at most SLACK of its letters
    wrong (OCR's 'O' for '0', a dropped colon): an edit distance where the
    match may start and end anywhere in TEXT."""
    t, n = _norm(text), _norm(needle)
    if not n:
        return True
    allowed = max(1, int(len(n) * slack)) if len(n) >= 4 else 0
    prev = [0] * (len(t) + 1)
    for i, c in enumerate(n, 1):
        cur = [i] + [0] * len(t)
        for j, d in enumerate(t, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (c != d))
        prev = cur
    return min(prev) <= allowed


# ---- QEMU's monitor ---------------------------------------------------------

# Characters to QEMU's sendkey names, US layout.
KEYS = {" ": "spc", "\n": "ret", "-": "minus", "=": "equal", ",": "comma", ".": "dot",
        "/": "slash", ";": "semicolon", "'": "apostrophe", "`": "grave_accent",
        "\\": "backslash", "[": "bracket_left", "]": "bracket_right", "\t": "tab"}
SHIFTED = {"!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8",
           "(": "9", ")": "0", "_": "minus", "+": "equal", "<": "comma", ">": "dot", "?": "slash",
           ":": "semicolon", '"': "apostrophe", "~": "grave_accent", "|": "backslash",
           "{": "bracket_left", "}": "bracket_right"}


def key_name(ch):
    if ch.isascii() and (ch.isdigit() or ch.islower()):
        return ch
    if ch.isascii() and ch.isupper():
        return "shift-" + ch.lower()
    if ch in KEYS:
        return KEYS[ch]
    if ch in SHIFTED:
        return "shift-" + SHIFTED[ch]
    raise ValueError(f"no key types {ch!r}")


class ScreenError(Exception):
    """The screen did not show what was waited for."""


class Monitor:
    """QEMU's human monitor on a unix socket."""

    PROMPT = b"(qemu) "

    def __init__(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.settimeout(30)
        self._until_prompt()

    def _until_prompt(self):
        buf = b""
        while not buf.endswith(self.PROMPT):
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("QEMU's monitor closed")
            buf += d
        return buf

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\n")
        return self._until_prompt().decode(errors="replace")

    def screendump(self, png=None):
        """(w, h, rgb) of the screen now; kept as PNG when PNG is given."""
        with tempfile.TemporaryDirectory() as d:
            ppm = os.path.join(d, "s.ppm")
            self.cmd(f"screendump {ppm}")
            for _ in range(50):  # QEMU writes it from its main loop
                if os.path.exists(ppm) and os.path.getsize(ppm) > 15:
                    try:
                        w, h, rgb = ppm_read(ppm)
                        if len(rgb) == 3 * w * h:
                            break
                    except ValueError:
                        pass
                time.sleep(0.1)
            else:
                raise RuntimeError("QEMU wrote no screendump")
        if png:
            png_write(png, w, h, rgb)
        return w, h, rgb

    def key(self, name, hold_ms=100):
        self.cmd(f"sendkey {name} {hold_ms}")

    def mouse(self, dx=0, dy=0, buttons=None):
        """The PC's mouse moved by DX, DY; BUTTONS (1 left, 2 right, 4
        middle) held from then on when given."""
        if dx or dy:
            self.cmd(f"mouse_move {dx} {dy}")
        if buttons is not None:
            self.cmd(f"mouse_button {buttons}")

    def type(self, text, gap=0.15):
        for ch in text:
            self.key(key_name(ch))
            time.sleep(gap)

    def close(self):
        self.sock.close()


class Screen:
    """A PC's screen as a person sees it: shots, read with OCR, waited for."""

    def __init__(self, monitor, shots_dir=None, prefix="screen"):
        self.mon, self.dir, self.prefix, self.n = monitor, shots_dir, prefix, 0
        self.last_text, self.last_png = "", None

    def shot(self, name=None):
        png = None
        if self.dir:
            self.n += 1
            png = os.path.join(self.dir, f"{self.prefix}-{self.n:02d}{'-' + name if name else ''}.png")
        w, h, rgb = self.mon.screendump(png)
        self.last_png = png
        return w, h, rgb

    def shot_name(self):
        """The last shot's file name (the matrix keeps it as CASE-NAME)."""
        return os.path.basename(self.last_png) if self.last_png else "none kept"

    def read(self, name=None):
        w, h, rgb = self.shot(name)
        self.last_text = ocr(w, h, rgb)
        return self.last_text

    def wait_text(self, needles, timeout, what=None, every=3.0):
        """Until the screen shows one of NEEDLES (strings): the one shown."""
        if isinstance(needles, str):
            needles = [needles]
        deadline = time.monotonic() + timeout
        while True:
            text = self.read()
            for n in needles:
                if fuzzy_find(text, n):
                    return n
            if time.monotonic() > deadline:
                shown = "\n".join(ln for ln in text.splitlines() if ln.strip())[-600:]
                raise ScreenError(f"the screen did not show {what or needles} within {timeout} s; "
                                  f"it reads:\n{shown}\n(shot: {self.shot_name()})")
            time.sleep(every)


class Rfb:
    """A VNC (RFB 3.8) client of QEMU's VNC server, as a viewer elsewhere
    would be: no security, raw 32-bit pixels, incremental updates. For
    bench/screen.py, the reference the PC's shown screen is compared with."""

    def __init__(self, host, port, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection((host, port), 5)
                ver = self._recv(12)
                if not ver.startswith(b"RFB "):
                    raise OSError(f"not a VNC server: {ver!r}")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.sock.settimeout(30)
        self.sock.sendall(b"RFB 003.008\n")
        n = self._recv(1)[0]
        types = self._recv(n)
        if 1 not in types:
            raise OSError(f"the VNC server wants security types {list(types)}")
        self.sock.sendall(b"\x01")
        if struct.unpack(">I", self._recv(4))[0] != 0:
            raise OSError("the VNC server refused us")
        self.sock.sendall(b"\x01")  # shared: dom0's viewer stays on
        self.w, self.h = struct.unpack(">HH", self._recv(4))
        self._recv(16)
        self._recv(struct.unpack(">I", self._recv(4))[0])
        # 32 bits, little-endian, true colour, 8 bits each at 16, 8, 0.
        self.sock.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        # raw, and DesktopSize (-223) for mode changes
        self.sock.sendall(struct.pack(">BxHii", 2, 2, 0, -223))
        self.fb = bytearray(self.w * self.h * 4)

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            d = self.sock.recv(n - len(buf))
            if not d:
                raise EOFError("the VNC server closed")
            buf += d
        return buf

    def request(self, incremental=True):
        self.sock.sendall(struct.pack(">BBHHHH", 3, 1 if incremental else 0, 0, 0, self.w, self.h))

    def update(self, timeout):
        """Reads one message; returns the pixels changed by a screen update
        (0 for an update that changed none), or None when TIMEOUT passed."""
        self.sock.settimeout(timeout)
        try:
            t = self._recv(1)[0]
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(30)
        if t == 2:  # bell
            return 0
        if t == 3:  # cut text
            self._recv(3)
            self._recv(struct.unpack(">I", self._recv(4))[0])
            return 0
        if t == 1:  # colour map entries
            _, _, n = struct.unpack(">BHH", self._recv(5))
            self._recv(6 * n)
            return 0
        if t != 0:
            raise OSError(f"VNC message type {t} not understood")
        self._recv(1)
        (n,) = struct.unpack(">H", self._recv(2))
        changed = 0
        for _ in range(n):
            x, y, w, h, enc = struct.unpack(">HHHHi", self._recv(12))
            if enc == -223:
                self.w, self.h = w, h
                self.fb = bytearray(w * h * 4)
                changed += w * h
                continue
            if enc != 0:
                raise OSError(f"VNC encoding {enc} not asked for")
            data = self._recv(w * h * 4)
            for row in range(h):
                off = ((y + row) * self.w + x) * 4
                new = data[row * w * 4:(row + 1) * w * 4]
                if self.fb[off:off + w * 4] != new:
                    changed += sum(1 for i in range(0, w * 4, 4) if self.fb[off + i:off + i + 3] != new[i:i + 3])
                    self.fb[off:off + w * 4] = new
        return changed

    def key(self, keysym):
        for down in (1, 0):
            self.sock.sendall(struct.pack(">BBxxI", 4, down, keysym))

    def close(self):
        self.sock.close()


def main(argv):
    if len(argv) == 3 and argv[1] == "build-cd":
        print(build_cd(argv[2]))
        return 0
    if len(argv) == 3 and argv[1] == "ocr":
        w, h, rgb = image_read(argv[2])
        sys.stdout.write(ocr(w, h, rgb))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
