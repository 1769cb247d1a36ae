# shellcheck shell=bash
# The tests' screen CD (tests/screencd.S), for tests/boot-screen.sh and
# bench/screen.py: STREAMCD_GUESTS=tests/screentest.
image_screentest_cd_inputs() { sha256sum <"$TOP/tests/screencd.S"; }
image_screentest_cd() { python3 "$TOP/tests/screen.py" build-cd "$1" >/dev/null; }
