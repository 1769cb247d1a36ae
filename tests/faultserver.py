#!/usr/bin/python3
"""Static-file HTTP/1.1 server that injects faults, for tests.

Usage:
  faultserver.py --root DIR --port PORT [--bind 127.0.0.1]
                 [--fault MODE:REGEX[:COUNT]]... [--die-after N] [--log FILE]

Serves files below DIR (GET and HEAD, keep-alive, single `Range: bytes=a-b`,
`bytes=a-` and `bytes=-n` ranges answered with 206; anything else in Range is
ignored and the whole file sent with 200).  Missing files and directories
give 404.  PORT 0 picks a free port.  Once listening, `READY <port>` is
printed to stdout.

--fault MODE:REGEX[:COUNT]  (repeatable)
  Applies MODE to requests whose URL path (without query string, still
  percent-encoded) matches REGEX (re.search).  With COUNT, only the first
  COUNT matching requests get the fault, so a retrying client recovers.
  The first spec (in command-line order) that matches and still has
  COUNT left wins.  A trailing `:<digits>` is always taken as COUNT.
  MODEs:
    500       answer 500
    404       answer 404
    badlen    Content-Length = real + 100, send the real body, close
    shortlen  Content-Length = real - 7, send only that many bytes
              (connection stays usable)
    truncate  correct Content-Length, send the first half, close
    corrupt   correct length, one byte in the middle of the body flipped
    stall     headers and the first half of the body, then sleep 3600 s
    die       close the connection without any answer
  Body faults on HEAD only affect the headers (stall still sleeps); on a
  missing file a body fault is consumed but the answer is a plain 404.

--die-after N
  Requests are numbered as they arrive.  Requests 1..N are answered
  (faults apply); once request N is finished (and other in-flight ones,
  up to 2 s), the process exits with os._exit(3).  Requests arriving after
  request N never get an answer.  So exactly N answers, then a dead server.

--log FILE
  One line per request (time, method, path, status, fault); default stderr.
"""

import argparse
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("500", "404", "badlen", "shortlen", "truncate", "corrupt", "stall", "die")
CHUNK = 256 * 1024


class Fault:
    def __init__(self, spec):
        mode, sep, rest = spec.partition(":")
        if mode not in MODES or not sep:
            raise argparse.ArgumentTypeError(
                f"bad fault spec {spec!r}: want MODE:REGEX[:COUNT], MODE in {'|'.join(MODES)}")
        m = re.fullmatch(r"(.*):(\d+)", rest, re.S)
        self.mode = mode
        self.left = int(m.group(2)) if m else None
        try:
            self.regex = re.compile(m.group(1) if m else rest)
        except re.error as e:
            raise argparse.ArgumentTypeError(f"bad regex in {spec!r}: {e}")


class State:
    """Shared by all handler threads; `lock` guards every field."""

    def __init__(self, args):
        self.faults = args.fault
        self.die_after = args.die_after
        self.logf = open(args.log, "a") if args.log else sys.stderr
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.started = 0
        self.inflight = 0

    def take_fault(self, path):
        with self.lock:
            for f in self.faults:
                if (f.left is None or f.left > 0) and f.regex.search(path):
                    if f.left is not None:
                        f.left -= 1
                    return f.mode
        return None

    def log(self, line):
        with self.lock:
            self.logf.write(time.strftime("%H:%M:%S ") + line + "\n")
            self.logf.flush()

    def begin(self):
        """Returns the request's number, or None if it must not be answered."""
        with self.lock:
            self.started += 1
            n = self.started
            if self.die_after is not None and n > self.die_after:
                return None
            self.inflight += 1
            return n

    def end(self, n):
        with self.lock:
            self.inflight -= 1
            self.idle.notify_all()
            if n != self.die_after:
                return
            # Let the other answers among the first N complete before dying.
            self.idle.wait_for(lambda: self.inflight == 0, timeout=2)
            self.logf.write(time.strftime("%H:%M:%S ") + f"die-after {n}: exiting\n")
            self.logf.flush()
            os._exit(3)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultserver/1"
    timeout = 120  # idle keep-alive connections
    state = None  # set in main()
    root = None

    def log_request(self, code="-", size="-"):
        pass  # handle_any() logs its own line, with the fault

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        self.state.log("error: " + (format % args))

    def do_GET(self):
        self.handle_any(body=True)

    def do_HEAD(self):
        self.handle_any(body=False)

    def handle_any(self, body):
        n = self.state.begin()
        if n is None:
            # Past --die-after: wait for the exit, never answer.
            self.close_connection = True
            time.sleep(3600)
            return
        status, fault = "-", None
        try:
            path = urllib.parse.urlsplit(self.path).path
            fault = self.state.take_fault(path)
            status = self.respond(path, fault, body)
        except (BrokenPipeError, ConnectionResetError, socket.timeout) as e:
            status = f"{status}(client gone: {type(e).__name__})"
            self.close_connection = True
        finally:
            self.state.log(f"{self.command} {self.path} {status} fault={fault or '-'}")
            self.state.end(n)

    def simple(self, code, text):
        data = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return code

    def resolve(self, path):
        rel = urllib.parse.unquote(path).lstrip("/")
        full = os.path.realpath(os.path.join(self.root, rel))
        if os.path.commonpath([full, self.root]) != self.root or not os.path.isfile(full):
            return None
        return full

    def parse_range(self, size):
        """Returns (start, length, code) or None for 416."""
        m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", self.headers.get("Range", ""))
        if not m or m.group(1) == m.group(2) == "":
            return 0, size, 200
        a, b = m.group(1), m.group(2)
        if a == "":  # suffix: last b bytes
            n = min(int(b), size)
            return (size - n, n, 206) if n > 0 else None
        start = int(a)
        end = min(int(b), size - 1) if b else size - 1
        if start >= size or end < start:
            return None
        return start, end - start + 1, 206

    def respond(self, path, fault, body):
        if fault == "die":
            self.close_connection = True
            return "none"
        if fault in ("500", "404"):
            return self.simple(int(fault), f"injected {fault}")
        full = self.resolve(path)
        if full is None:
            return self.simple(404, "not found")
        with open(full, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            rng = self.parse_range(size)
            if rng is None:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return 416
            start, length, code = rng
            hdr_len, send_len, flip = length, length, None
            if fault == "badlen":
                hdr_len = length + 100
            elif fault == "shortlen":
                hdr_len = send_len = max(0, length - 7)
            elif fault in ("truncate", "stall"):
                send_len = length // 2
            elif fault == "corrupt" and length > 0:
                flip = length // 2
            self.send_response(code)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(hdr_len))
            if code == 206:
                self.send_header("Content-Range", f"bytes {start}-{start + length - 1}/{size}")
            self.end_headers()
            if body:
                f.seek(start)
                self.copy(f, send_len, flip)
        if fault == "stall":
            self.wfile.flush()
            time.sleep(3600)
        if fault in ("badlen", "truncate", "stall"):
            self.close_connection = True
        return code

    def copy(self, f, n, flip):
        pos = 0
        while pos < n:
            buf = f.read(min(CHUNK, n - pos))
            if not buf:
                break
            if flip is not None and pos <= flip < pos + len(buf):
                buf = bytearray(buf)
                buf[flip - pos] ^= 0xFF
            self.wfile.write(buf)
            pos += len(buf)


class Server(ThreadingHTTPServer):
    request_queue_size = 128


def main():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="directory to serve")
    p.add_argument("--port", type=int, required=True, help="TCP port (0: any free)")
    p.add_argument("--bind", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.add_argument("--fault", type=Fault, action="append", default=[],
                   metavar="MODE:REGEX[:COUNT]", help="inject a fault (repeatable)")
    p.add_argument("--die-after", type=int, metavar="N",
                   help="exit the process after answering N requests")
    p.add_argument("--log", metavar="FILE", help="request log (default stderr)")
    args = p.parse_args()
    if not os.path.isdir(args.root):
        p.error(f"--root {args.root}: not a directory")
    Handler.root = os.path.realpath(args.root)
    Handler.state = State(args)
    srv = Server((args.bind, args.port), Handler)
    print(f"READY {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
