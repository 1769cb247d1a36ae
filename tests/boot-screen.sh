#!/bin/bash
# An unmodified OS CD as an HVM guest that has nothing but its screen, at a
# PC with a screen and a keyboard (issue 21): the tests' own boot CD
# (tests/screencd.S: a PC boot program that shows a known text on the VGA,
# echoes typed keys and draws a picture on F2) as recipe "screentest"
# (console = none, display = screen), in a store of this test's own beside
# the build's. Through the boot matrix with that store: screen-uefi (the
# guest by streamcd.launch=, its screen on a framebuffer at once, keys,
# Ctrl-], 'v NAME') and guest-screentest (dom0 reads its ready pattern off
# its screen; its screenshot, read by OCR here, shows it). screen-bios (the
# menu, VGA text mode) is the build's matrix's, with linux-hvm. Then the
# launcher's answers for a guest that has no console, on the serial
# console: no console to attach, no screen to show there.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
. "$(dirname "$0")/boot-lib.sh"
requires python3 nginx qemu-system-x86_64 xorriso as ld tesseract
boot_build >/dev/null
tmpdir_make work
chmod 755 "$work"

R=$REPO/tests/screentest
B=$work/b
expect "the store with the screen CD's recipe" 0 "$(guests_build "$B" "$R" "$work/guests.log")"
if grep -q '^display = screen$' "$B/guests/catalog"; then
	pass "its catalogue says display = screen"
else
	fail "catalogue: $(cat "$B/guests/catalog")"
fi

rc=0
"$REPO/build.sh" matrix --store "$B/store" --out "$work/matrix" screen-uefi guest-screentest \
	>"$work/matrix.out" 2>&1 || rc=$?
cat "$work/matrix.out"
grep -hE '^(ok|measure|FAIL)' "$work/matrix"/*.log || true
expect "the screen cases with the screen CD" 0 "$rc"
if out_txt=$(junit_check "$work/matrix/junit.xml" screen-uefi pass guest-screentest pass 2>&1); then
	pass "junit: $out_txt"
else
	fail "junit: $out_txt"
fi
if grep -q "ok: screentest's screen shows its ready pattern" "$work/matrix/guest-screentest.log"; then
	pass "dom0's screenshot of it, read here, shows its ready text"
else
	fail "no screenshot check in guest-screentest.log"
fi
# What a person saw, for a look: the run's shots and logs.
rm -rf "$BOOT_LOGS/boot-screen"
cp -r "$work/matrix" "$BOOT_LOGS/boot-screen"
echo "the shots and logs: $BOOT_LOGS/boot-screen/"

finish
