#!/bin/bash
# streamcd-view (guests/linux/view) against a real QEMU VNC server, without
# Xen: the tests' own screen CD (tests/screencd.S) booted by plain QEMU
# (SeaBIOS, standard VGA) with its VNC server on a unix socket, as dom0's
# launcher starts a screen guest's device model. Checked: the screen's text
# read back exactly (a font from Debian's console-setup, not the BIOS's
# own); keys typed reach the guest (its screen and its COM1 say so), Shift
# included; a screenshot equals QEMU's own screendump pixel for pixel; a
# graphics mode is no text (exit 2) and its screenshot has the picture's
# colours; --wait matches, times out (124) and sees the guest go (3); a
# missing socket (3), a bad address, usage errors; the same under
# ASan/UBSan.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires qemu-system-x86_64 xorriso as ld python3
FONT=/usr/share/consolefonts/Lat15-VGA16.psf.gz
[[ -f $FONT ]] || apt-get install -y -q --no-install-recommends console-setup-linux >/dev/null
make -s -C "$REPO/guests/linux/view" SAN=1 build-san/streamcd-view
V=$REPO/guests/linux/view/build-san/streamcd-view
export ASAN_OPTIONS=detect_leaks=1
tmpdir_make work
python3 "$TESTS_DIR/screen.py" build-cd "$work/screen.iso" >/dev/null

# The guest: as libxl starts a device model with "vnclisten = unix:...".
qemu-system-x86_64 -accel tcg -m 32 -cdrom "$work/screen.iso" -boot d -vga std -display none \
	-vnc "unix:$work/vnc,lock-key-sync=off" -monitor "unix:$work/mon,server,nowait" \
	-serial "file:$work/com1" -pidfile "$work/qemu.pid" -daemonize
cleanup_add "[[ ! -f $work/qemu.pid ]] || kill \$(cat $work/qemu.pid) 2>/dev/null"
for _ in $(seq 100); do [[ -S $work/vnc ]] && break; sleep 0.1; done

rc=0
"$V" --font "$FONT" --wait 'STREAMCD SCREEN TEST' --timeout 60 "$work/vnc" || rc=$?
expect "--wait sees the CD's banner" 0 "$rc"
text=$("$V" --font "$FONT" --text "$work/vnc")
expect "--text reads the banner exactly" "    STREAMCD SCREEN TEST: a CD that shows this line" \
	"$(sed -n 3p <<<"$text")"
expect "and the help line" "    Type keys, they appear below. F2: a picture, F3: frames. Mouse: row 22." \
	"$(sed -n 5p <<<"$text")"

"$V" --type 'Hello, Screen 42!\n' "$work/vnc"
rc=0
"$V" --font "$FONT" --wait 'Hello, Screen 42!' --timeout 20 "$work/vnc" || rc=$?
expect "typed keys show on the guest's screen, Shift and all" 0 "$rc"
if grep -q 'Hello, Screen 42!' "$work/com1"; then pass "the guest got them (its COM1)"; else
	fail "the guest's COM1 lacks the typed line: $(tr -d '\r' <"$work/com1")"; fi

"$V" --screenshot "$work/view.png" "$work/vnc"
python3 - "$work/mon" "$work/qemu.ppm" <<-'EOF'
	import socket, sys, time
	s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
	buf = b""
	while not buf.endswith(b"(qemu) "): buf += s.recv(4096)
	s.sendall(b"screendump " + sys.argv[2].encode() + b"\n"); buf = b""
	while not buf.endswith(b"(qemu) "): buf += s.recv(4096)
	time.sleep(0.5)
EOF
same=$(python3 - "$TESTS_DIR" "$work/view.png" "$work/qemu.ppm" <<-'EOF'
	import sys
	sys.path.insert(0, sys.argv[1])
	import screen
	a, b = screen.png_read(sys.argv[2]), screen.ppm_read(sys.argv[3])
	print("same" if a == b else f"differ: {a[:2]} against {b[:2]}")
EOF
)
expect "--screenshot equals QEMU's own screendump, pixel for pixel" same "$same"

# F2: the CD's picture in mode 13h.
python3 - "$TESTS_DIR" "$work/mon" <<-'EOF'
	import sys
	sys.path.insert(0, sys.argv[1])
	import screen
	screen.Monitor(sys.argv[2]).key("f2")
EOF
sleep 1
rc=0
"$V" --font "$FONT" --text "$work/vnc" >/dev/null 2>"$work/err" || rc=$?
expect "a graphics mode has no text to read (exit 2)" 2 "$rc"
"$V" --screenshot "$work/picture.png" "$work/vnc"
n=$(python3 - "$TESTS_DIR" "$work/picture.png" <<-'EOF'
	import sys
	sys.path.insert(0, sys.argv[1])
	import screen
	w, h, rgb = screen.png_read(sys.argv[2])
	print(w, h, len(screen.colours(rgb, step=7)))
EOF
)
read -r pw ph ncol <<<"$n"
expect "the picture is 640x400 (mode 13h, doubled)" "640 400" "$pw $ph"
if ((ncol >= 17)); then pass "the picture's 16 bars and frame ($ncol colours)"; else
	fail "the picture has $ncol colours"; fi
"$V" --type 'x' "$work/vnc"
rc=0
"$V" --font "$FONT" --wait 'STREAMCD SCREEN TEST' --timeout 20 "$work/vnc" || rc=$?
expect "a key brings the text screen back" 0 "$rc"

rc=0
"$V" --font "$FONT" --wait 'never shown' --timeout 2 "$work/vnc" 2>/dev/null || rc=$?
expect "--wait for what never shows: 124" 124 "$rc"
rc=0
"$V" --screenshot "$work/x.png" "$work/nothing-here" 2>"$work/err" || rc=$?
expect "no socket: exit 3 (the guest is gone)" 3 "$rc"
if grep -q 'nothing-here' "$work/err"; then pass "the message names it"; else fail "message: $(cat "$work/err")"; fi
rc=0
"$V" --text no-port-here 2>/dev/null || rc=$?
expect "an address that is neither: usage, exit 2" 2 "$rc"
rc=0
"$V" 2>/dev/null || rc=$?
expect "no VNC given: usage, exit 2" 2 "$rc"
if "$V" --help | grep -q 'Ctrl-]'; then pass "--help says how to come back"; else fail "--help"; fi
rc=0
"$V" --tty /dev/null "$work/vnc" 2>"$work/err" || rc=$?
expect "not a virtual terminal: exit 1" 1 "$rc"
if grep -q 'no virtual terminal' "$work/err"; then pass "with the reason"; else fail "reason: $(cat "$work/err")"; fi

# The guest goes while someone waits for its screen.
rc=0
("$V" --font "$FONT" --wait 'never shown' --timeout 60 "$work/vnc" 2>/dev/null || exit $?) &
waiter=$!
sleep 2
kill "$(cat "$work/qemu.pid")"
wait "$waiter" || rc=$?
expect "the guest stopping ends a wait with 3" 3 "$rc"
finish
