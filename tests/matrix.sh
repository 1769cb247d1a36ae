#!/bin/bash
# The boot matrix (./build.sh matrix, iso/matrix.py): its case list, every
# case of the build's ISO two at a time (a table, JUnit XML, a log per case),
# a store on another server (--url) with the case that needs a store of ours
# marked skipped, a case stopped at its timeout, and Ctrl-C: each with
# nothing of the run left behind (QEMU, nginx, hcloop).
# MATRIX_JOBS (default: the matrix's own, a quarter of the CPUs) sets the
# cases run side by side.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
. "$(dirname "$0")/boot-lib.sh"
requires python3 nginx qemu-system-x86_64
boot_build >/dev/null
out=$REPO/out/test-matrix
rm -rf "$out"
mkdir -p "$out"
tmpdir_make work

# left DIR: processes whose command line names DIR (a case's run directory).
left() {
	pgrep -af -- "$1" | grep -v -e pgrep -e "tests/matrix.sh" || true
}

mapfile -t cases < <("$REPO/build.sh" matrix --list)
expect "--list: the fixed cases first" \
	"bios-cd uefi-cd bios-usb uefi-usb bare debug noserver tampered gdbsx iommu launcher screen-bios screen-uefi" \
	"${cases[*]:0:13}"
mapfile -t recipes < <(awk '$1 == "guest" { print "guest-" $3 }' "$REPO/out/guests/catalog" | sort)
# Recipes the build left out (their upstream artifacts missing) are cases
# too, which are SKIPs.
mapfile -t left_out < <(sed -n 's/^# left out: \([^:]*\):.*/guest-\1/p' "$REPO/out/guests/catalog" | sort)
expect "--list: then guest-NAME for every recipe of the catalogue and every one left out" \
	"$(printf '%s\n' "${recipes[@]}" "${left_out[@]}" | sed '/^$/d' | sort | xargs)" "${cases[*]:13}"
expect "an unknown case: usage error" 2 "$(status "$REPO/build.sh" matrix --list no-such-case)"
expect "an unknown case: usage error" 2 "$(status "$REPO/build.sh" matrix no-such-case)"
says "and it says so" "no case matches no-such-case"

# A case stopped at its timeout: a failure, the run goes on, nothing left.
expect "--timeout: the run's status" 1 \
	"$(status "$REPO/build.sh" matrix --out "$out/t" --timeout 8 noserver bare)"
if out_txt=$(junit_check "$out/t/junit.xml" noserver failure 2>&1); then pass "--timeout: $out_txt"; else fail "--timeout: $out_txt"; fi
says "--timeout: the table says why" "noserver: FAIL: stopped after --timeout 8 s"
expect "--timeout: no process of its cases left" "" "$(left "$out/t/")"

# Ctrl-C: every case stopped, status 130, nothing left. As a terminal's
# Ctrl-C: SIGINT to the whole process group, with the default action
# (a background job of a script starts with SIGINT ignored).
setsid env --default-signal=INT "$REPO/build.sh" matrix --out "$out/int" -j 2 bios-cd bare \
	>"$work/int.out" 2>&1 &
pid=$!
for _ in $(seq 120); do
	[[ -n $(pgrep -f "$out/int/bare.d" | head -1) && -n $(pgrep -f "$out/int/bios-cd.d" | head -1) ]] && break
	sleep 1
done
sleep 10
kill -INT -- "-$pid"
rc=0
wait "$pid" || rc=$?
expect "Ctrl-C: status 130" 130 "$rc"
sleep 2
expect "Ctrl-C: no QEMU, nginx or hcloop of the run left" "" "$(left "$out/int/")"
if grep -q "interrupted" "$work/int.out"; then pass "Ctrl-C: said"; else fail "Ctrl-C: $(tail -5 "$work/int.out")"; fi

# A store on another server: nginx of this test, the ISO's default URL
# forwarded to it; tampered needs a store of ours: skipped with the reason.
url=''
serve_nginx "$REPO/out/store" url
expect "--url: status" 0 "$(status "$REPO/build.sh" matrix --out "$out/url" --url "$url" bios-cd tampered)"
if out_txt=$(junit_check "$out/url/junit.xml" bios-cd pass tampered skipped 2>&1); then pass "--url: $out_txt"; else fail "--url: $out_txt"; fi
says "--url: the skip's reason" "tampered: SKIP: the store is on another server"
if grep -Eq '^bios-cd +PASS +[0-9]+ +[0-9,]{7,}$' "$out/url/table.txt"; then
	pass "--url: bytes from the ready line: $(grep '^bios-cd' "$out/url/table.txt")"
else
	fail "--url: table: $(cat "$out/url/table.txt")"
fi

# Everything.
jobs=()
[[ -z ${MATRIX_JOBS:-} ]] || jobs=(-j "$MATRIX_JOBS")
start=$SECONDS
rc=0
"$REPO/build.sh" matrix --out "$out/all" "${jobs[@]}" >"$work/all.out" 2>&1 || rc=$?
cat "$out/all/table.txt"
echo "measure: the whole matrix (${MATRIX_JOBS:-default jobs}): $((SECONDS - start)) s"
expect "the whole matrix passes" 0 "$rc"
args=()
for c in "${cases[@]}"; do
	if [[ " ${left_out[*]} " == *" $c "* ]]; then
		args+=("$c" skipped)
		grep -q "$c: SKIP: the build left it out of the catalogue: image " "$work/all.out" ||
			fail "$c: no SKIP with the build's reason in: $(grep "$c" "$work/all.out")"
	else
		args+=("$c" pass)
		grep -q "^# ---- the serial console ----" "$out/all/$c.log" || fail "$c.log has no serial console"
	fi
done
if out_txt=$(junit_check "$out/all/junit.xml" "${args[@]}" 2>&1); then pass "junit: $out_txt"; else fail "junit: $out_txt"; fi
# The screens the screen cases and linux-hvm's case looked at stay.
for c in screen-bios screen-uefi guest-linux-hvm; do
	if compgen -G "$out/all/$c-*.png" >/dev/null; then pass "$c's screens kept as PNG"; else fail "no $c-*.png"; fi
done
expect "no process of the run left" "" "$(left "$out/all/")"
finish
