#!/bin/bash
# The static hcloop (./build.sh hcloop-static) where the initrd runs it: a
# root holding only that binary, a static BusyBox, device nodes, /proc,
# /etc/hosts and /etc/resolv.conf; no ld.so, no shared library, no NSS
# module, and musl instead of glibc (cloop/static.stage.sh). It must mount the
# fixture store by host name, once from /etc/hosts and once through DNS (a
# tiny server on 127.0.0.1:53 when that port is free), and give back the
# image bit for bit; with --pubkey, accept the signed index and refuse one
# signed by another key.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires readelf file chroot mknod apt-get dpkg-deb fusermount3 mountpoint

fixture_load
work=
tmpdir_make work
store_make "$work/store"

log "building the static hcloop (./build.sh hcloop-static, cached)"
if ! "$REPO/build.sh" hcloop-static >"$work/build.log" 2>&1; then
	fail "./build.sh hcloop-static: $(tail -n 5 "$work/build.log")"
	finish
fi
STATIC=${STREAMCD_OUT:-$REPO/out}/hcloop-static/hcloop

log "the binary"
if file "$STATIC" | grep -q 'statically linked'; then
	pass "file: statically linked"
else
	fail "file: $(file -b "$STATIC")"
fi
expect "no program interpreter (INTERP)" 0 "$(readelf -lW "$STATIC" | grep -c INTERP || true)"
expect "no shared library needed (NEEDED)" 0 "$(readelf -dW "$STATIC" | grep -c NEEDED || true)"
# Static glibc leaves its symbol-version and tunables strings in the binary.
if grep -q GLIBC "$STATIC"; then
	fail "glibc is linked in, not musl"
else
	pass "no glibc in it (musl)"
fi

# Debian's busybox-static, unpacked only: installing it would remove the
# busybox package the other tests serve with.
bb_version=$(apt-cache policy busybox-static | sed -n 's/^ *Candidate: //p')
[[ -n $bb_version && $bb_version != "(none)" ]] || { fail "apt knows no busybox-static"; finish; }
bb_dir=$FIXTURE/busybox-static-${bb_version//:/_}
if [[ ! -x $bb_dir/bin/busybox ]]; then
	log "fetching busybox-static $bb_version"
	rm -rf "$bb_dir"
	mkdir -p "$work/deb" "$bb_dir.tmp"
	(cd "$work/deb" && apt-get download -q "busybox-static=$bb_version") >"$work/deb.log" 2>&1 ||
		{ fail "apt-get download busybox-static: $(tail -n 3 "$work/deb.log")"; finish; }
	dpkg-deb -x "$work"/deb/busybox-static_*.deb "$bb_dir.tmp"
	mv "$bb_dir.tmp" "$bb_dir"
fi

log "a root like the initrd's"
root=$work/root
mkdir -p "$root"/{bin,dev,proc,etc,mnt,tmp}
cp "$STATIC" "$root/bin/hcloop"
cp "$bb_dir/bin/busybox" "$root/bin/busybox"
expect "busybox in the root is static too" 0 "$(readelf -lW "$root/bin/busybox" | grep -c INTERP || true)"
mknod -m 666 "$root/dev/fuse" c 10 229
mknod -m 666 "$root/dev/null" c 1 3
mount -t proc proc "$root/proc"
cleanup_add "umount -l $(printf %q "$root/proc")"
printf '127.0.0.1\tlocalhost\n127.0.0.1\tstore.streamcd.test\n' >"$root/etc/hosts"
# As udhcpc writes it; the server answers only when the DNS part runs.
printf 'nameserver 127.0.0.1\n' >"$root/etc/resolv.conf"

CHROOT=$(command -v chroot)
# in_root CMD...: CMD inside the root, with the environment the initrd has.
in_root() { env -i PATH=/bin "$CHROOT" "$root" "$@"; }

expect "nothing else in the root" \
	"bin/busybox bin/hcloop dev/fuse dev/null etc/hosts etc/resolv.conf" \
	"$(cd "$root" && find bin dev etc -mindepth 1 \( -type f -o -type c \) | sort | tr '\n' ' ' | sed 's/ $//')"

serve_busybox "$work/store" url
port=${url##*:}

# check_mount HOST [OPTIONS]: mount by HOST inside the root, compare,
# unmount; OPTIONS go to info and mount.
check_mount() {
	local host=$1 what=$1 sum
	shift
	[[ $# == 0 ]] || what="$host $*"
	if ! in_root /bin/hcloop info "$@" "http://$host:$port" root >"$work/info.$host" 2>&1; then
		fail "$what: hcloop info: $(tail -n 3 "$work/info.$host")"
		return 0
	fi
	pass "$what: hcloop info by name"
	if ! in_root /bin/hcloop mount "$@" "http://$host:$port" root /mnt >"$work/mount.$host" 2>&1; then
		fail "$what: hcloop mount: $(tail -n 3 "$work/mount.$host")"
		return 0
	fi
	cleanup_add "hc_umount $(printf %q "$root/mnt")"
	pass "$what: mounted inside the root"
	sum=$(in_root /bin/busybox sha256sum /mnt/root | cut -d ' ' -f 1)
	expect "$what: SHA-256 of the image read inside the root" "$FIX_SHA" "$sum"
	expect "$what: no read errors" 0 "$(stat_of "$root/mnt" read_errors)"
	in_root /bin/busybox umount /mnt
	hc_umount "$root/mnt" || fail "$what: the daemon kept the mount"
}

log "a name from /etc/hosts"
check_mount store.streamcd.test

# A one-name DNS server: A gets 127.0.0.1, AAAA an empty answer, anything
# else NXDOMAIN.
cat >"$work/dns.py" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("READY", flush=True)
while True:
    q, peer = s.recvfrom(512)
    tid, flags = struct.unpack("!HH", q[:4])
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode().lower())
        i += 1 + q[i]
    qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    name = ".".join(labels)
    known = name == sys.argv[1]
    ans = b""
    if known and qtype == 1:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    rflags = 0x8180 | (0 if known else 3)
    head = struct.pack("!HHHHHH", tid, rflags, 1, 1 if ans else 0, 0, 0)
    s.sendto(head + question + ans, peer)
EOF
if "$PYTHON" -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("127.0.0.1", 53))' 2>/dev/null; then
	log "a name through DNS (/etc/resolv.conf)"
	"$PYTHON" "$work/dns.py" dns.streamcd.test >"$work/dns.log" 2>&1 &
	dns_pid=$!
	cleanup_add "{ kill $dns_pid; wait $dns_pid; } 2>/dev/null"
	for _ in $(seq 50); do grep -q READY "$work/dns.log" && break; sleep 0.1; done
	check_mount dns.streamcd.test
else
	log "127.0.0.1:53 is taken: DNS part skipped"
fi

log "a signed index, checked inside the root (--pubkey)"
"$HCLOOP" keygen "$work/release" >/dev/null
"$HCLOOP" keygen "$work/other" >/dev/null
"$HCLOOP" make -q --sign "$work/release.sec" "$FIX_IMAGE" "$work/store" root 1
cp "$work/release.pub" "$work/other.pub" "$root/etc/"
check_mount store.streamcd.test --pubkey /etc/release.pub
if grep -q "signature: *Ed25519, key .* (verified)" "$work/info.store.streamcd.test"; then
	pass "info --pubkey: the signature is verified"
else
	fail "info --pubkey: $(cat "$work/info.store.streamcd.test")"
fi
rc=0
in_root /bin/hcloop mount --pubkey /etc/other.pub "http://store.streamcd.test:$port" root /mnt \
	>"$work/mount.other" 2>&1 || rc=$?
if mountpoint -q "$root/mnt"; then
	hc_umount "$root/mnt"
	fail "another key: mounted"
elif ((rc == 1)) && grep -q "not by the trusted key" "$work/mount.other"; then
	pass "another key: refused, exit 1"
else
	fail "another key: exit $rc: $(tail -n 3 "$work/mount.other")"
fi

# An index altered after signing, its trailer made right: only the
# signature check, run with musl's libsodium, can refuse it.
cp "$work/store/index/root/1" "$root/tmp/altered"
"$PYTHON" "$REPO/cloop/indexfile.py" tamper "$root/tmp/altered" >/dev/null
rc=0
in_root /bin/hcloop info --pubkey /etc/release.pub --file /tmp/altered >"$work/info.altered" 2>&1 || rc=$?
if ((rc == 1)) && grep -q "bad signature" "$work/info.altered"; then
	pass "altered index: bad signature, exit 1"
else
	fail "altered index: exit $rc: $(tail -n 3 "$work/info.altered")"
fi
cp "$work/store/index/root/1" "$root/tmp/good"
rc=0
in_root /bin/hcloop info --pubkey /etc/release.pub --file /tmp/good >"$work/info.good" 2>&1 || rc=$?
expect "the same index unaltered: verified" 0 "$rc"

log "an unknown name fails cleanly"
rc=0
in_root /bin/hcloop info "http://nowhere.streamcd.test:$port" root >"$work/info.bad" 2>&1 || rc=$?
if ((rc != 0)) && grep -qi "resolve" "$work/info.bad"; then
	pass "unknown name: exit $rc, says it cannot resolve"
else
	fail "unknown name: exit $rc: $(tail -n 3 "$work/info.bad")"
fi
finish
