#!/bin/bash
# guests/plan9/xenelf-fix.py on a file shaped like 9front's xenelf output
# (the tool's --make-test-elf: two PT_LOAD and the Plan 9 symbol segment,
# __xen_guest's header at index 0, e_shoff unaligned): --check says why
# Xen misses __xen_guest; the fixed file passes --check, has the same
# program headers and segment bytes, reads in readelf without a warning
# with __xen_guest at index 1 and e_shoff aligned; a second run copies it
# unchanged; ELF64, a non-Xen ELF32 and a PT_LOAD over the ELF header are
# refused. If the rootfs build is there, Xen 4.17's own libelf (its
# libxenguest, through ctypes) judges the file before and after as well.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires python3 readelf cmp sha256sum
TOOL=${XENELF_FIX:-$REPO/guests/plan9/xenelf-fix.py}
work=
tmpdir_make work
in=$work/9xenpcf
fixed=$work/9xenpcf.fixed
GUEST='LOADER=generic,XEN_VER=xen-3.0,ELF_PADDR_OFFSET=0,VIRT_BASE=0x80000000,VIRT_ENTRY=0x80010000,PAE=yes[extended-cr3]'

# segments FILE: "offset filesz" (hex) of each program header, in order.
segments() { readelf -lW "$1" | awk '$1 ~ /^(LOAD|NULL|NOTE)$/ { print $2, $5 }'; }
range_sha() { tail -c +$(($2 + 1)) "$1" | head -c $(($3)) | sha256sum | cut -d' ' -f1; }
header() { readelf -hW "$1" | sed -n "s/^ *$2: *\([0-9]*\).*/\1/p"; }
created() { if [[ -e $2 ]]; then fail "$1: $2 was written"; else pass "$1: nothing written"; fi; }

log "the input, as 9front's xenelf writes it"
expect "--make-test-elf exits 0" 0 "$(status "$TOOL" --make-test-elf "$in")"
readelf -SW "$in" >"$work/out" 2>&1
says "input: __xen_guest's header at index 0" '\[ 0\] __xen_guest'
expect "--check on the input fails" 1 "$(status "$TOOL" --check "$in")"
says "--check names the reason: header at index 0" "__xen_guest section header is at index 0"
in_shoff=$(header "$in" "Start of section headers")
if ((in_shoff % 4)); then pass "input e_shoff $in_shoff unaligned, as xenelf leaves it"; else fail "input e_shoff $in_shoff aligned: the test would not exercise alignment"; fi

log "the fix"
expect "fix exits 0" 0 "$(status "$TOOL" "$in" "$fixed")"
says "fix says what it did" "null section header inserted (2 -> 3 sections, __xen_guest now section 1)"
rc=0
guest=$("$TOOL" --check "$fixed" 2>"$work/out") || rc=$?
expect "--check on the fixed file passes" 0 "$rc"
expect "--check prints the __xen_guest string" "$GUEST" "$guest"

log "loaded image unchanged"
segments "$in" >"$work/seg.in"
segments "$fixed" >"$work/seg.fixed"
phoff=$(header "$in" "Start of program headers")
phsize=$((32 * $(header "$in" "Number of program headers")))
if [[ $(range_sha "$in" "$phoff" "$phsize") == "$(range_sha "$fixed" "$phoff" "$phsize")" ]] &&
	cmp -s "$work/seg.in" "$work/seg.fixed"; then
	pass "program header table unchanged"
else
	fail "program headers differ: $(diff "$work/seg.in" "$work/seg.fixed")"
fi
nload=$(readelf -lW "$in" | grep -c '^ *LOAD ')
expect "input has two PT_LOAD" 2 "$nload"
while read -r off size; do
	if [[ $(range_sha "$in" "$off" "$size") == "$(range_sha "$fixed" "$off" "$size")" ]]; then
		pass "segment bytes $off+$size identical"
	else
		fail "segment bytes $off+$size differ"
	fi
done <"$work/seg.in"

log "readelf's view of the fixed file"
readelf -W -S -l "$fixed" >"$work/out" 2>&1
says_not "readelf prints no warning or error" "Warning\|Error"
says "index 0 is the null section" '\[ 0\] *NULL *00000000 000000 000000 00 *0 *0 *0$'
says "__xen_guest at index 1" '\[ 1\] __xen_guest'
shoff=$(header "$fixed" "Start of section headers")
expect "e_shoff 4-byte aligned" 0 $((shoff % 4))
expect "e_shnum one more" "$(($(header "$in" "Number of section headers") + 1))" "$(header "$fixed" "Number of section headers")"
expect "e_shstrndx one more" "$(($(header "$in" "Section header string table index") + 1))" \
	"$(header "$fixed" "Section header string table index")"
expect "section header table ends the file" $((shoff + 3 * 40)) "$(stat -c %s "$fixed")"

log "a second run"
expect "fix of the fixed file exits 0" 0 "$(status "$TOOL" "$fixed" "$work/again")"
says "it says so" "already has a null section header"
if cmp -s "$fixed" "$work/again"; then pass "second run copies the file unchanged"; else fail "second run changed the file"; fi

log "refusals"
expect "ELF64 (/bin/true) refused" 1 "$(status "$TOOL" /bin/true "$work/x64")"
says "ELF64 named as such" "ELF64 (class 2): only 32-bit i386"
created "ELF64" "$work/x64"
expect "--check on ELF64 fails" 1 "$(status "$TOOL" --check /bin/true)"
says "--check names ELF64" "ELF64"
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); open(sys.argv[2], "wb").write(d.replace(b"__xen_guest", b"__not_xen__"))' \
	"$in" "$work/plain"
expect "non-Xen ELF32 refused" 1 "$(status "$TOOL" "$work/plain" "$work/xplain")"
says "non-Xen ELF32: the message" "xenelf-fix: $work/plain: not a Xen kernel (no __xen_guest section, no Xen ELF notes)"
created "non-Xen ELF32" "$work/xplain"
# The first PT_LOAD from file offset 0: the ELF header is loaded, so a new
# e_shoff would change the guest's memory.
python3 - "$in" "$work/hdrload" <<-'EOF'
	import struct, sys
	d = bytearray(open(sys.argv[1], "rb").read())
	struct.pack_into("<4I", d, 52 + 4, 0, 0x8000F000, 0xF000, 0x3000)  # offset vaddr paddr filesz
	struct.pack_into("<I", d, 52 + 20, 0x3000)  # memsz
	open(sys.argv[2], "wb").write(d)
EOF
expect "PT_LOAD over the ELF header refused" 1 "$(status "$TOOL" "$work/hdrload" "$work/xhdr")"
says "refusal names the segment" "PT_LOAD 0 (file bytes 0x0-0x3000) covers bytes this would change"
created "PT_LOAD over the ELF header" "$work/xhdr"
expect "no arguments: usage error" 2 "$(status "$TOOL")"
expect "unknown option: usage error" 2 "$(status "$TOOL" --frob "$in")"

log "Xen 4.17's libelf (libxenguest of the rootfs build)"
lib=$(compgen -G "$REPO/out/rootfs-build/root/usr/lib/*/libxenguest.so.4.17*" | head -n 1 || true)
# libelf_parse FILE: elf_init, elf_parse_binary, elf_xen_parse (PV) as
# xl's probe (xg_dom_elfloader.c) runs them; prints libelf's log and rc.
libelf_parse() {
	LD_LIBRARY_PATH=$(dirname "$lib") python3 - "$lib" "$1" <<-'EOF'
		import ctypes, sys
		try:
		    lib = ctypes.CDLL(sys.argv[1])
		except OSError as e:
		    print("cannot load:", e)
		    sys.exit(77)
		libc = ctypes.CDLL("libc.so.6")
		data = open(sys.argv[2], "rb").read()
		image = ctypes.create_string_buffer(data, len(data))
		# struct elf_binary and elf_dom_parms: well under 64 KiB each.
		elf, parms = ctypes.create_string_buffer(1 << 16), ctypes.create_string_buffer(1 << 16)
		Log = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_bool, ctypes.c_char_p, ctypes.c_void_p)
		def log(_elf, _data, _iserr, fmt, ap):
		    buf = ctypes.create_string_buffer(4096)
		    libc.vsnprintf(buf, len(buf), fmt, ctypes.c_void_p(ap))
		    sys.stdout.write(buf.value.decode(errors="replace"))
		log_cb = Log(log)
		lib.elf_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
		lib.elf_set_log.argtypes = [ctypes.c_void_p, Log, ctypes.c_void_p, ctypes.c_bool]
		lib.elf_parse_binary.argtypes = [ctypes.c_void_p]
		lib.elf_xen_parse.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_bool]
		print("elf_init rc", lib.elf_init(elf, image, len(data)))
		lib.elf_set_log(elf, log_cb, None, True)
		lib.elf_parse_binary(elf)
		print("elf_xen_parse rc", lib.elf_xen_parse(elf, parms, False))
	EOF
}
if [[ -z $lib ]]; then
	log "skipped: no libxenguest.so.4.17 under out/rootfs-build (./build.sh rootfs makes it)"
else
	rc=0
	libelf_parse "$in" >"$work/out" 2>&1 || rc=$?
	if ((rc == 77)); then
		log "skipped: $(cat "$work/out")"
	else
		says "libelf on the input: refused" "elf_xen_parse rc -1"
		says "libelf on the input: the error xl shows" "Not a Xen-ELF image"
		libelf_parse "$fixed" >"$work/out" 2>&1 || true
		says "libelf on the fixed file: accepted" "elf_xen_parse rc 0"
		guest_re=${GUEST//[\[\]]/.} # says takes a regex
		says "libelf on the fixed file: finds __xen_guest" "ELF: __xen_guest: \"$guest_re\""
		says "libelf on the fixed file: kernel at KZERO+KPZERO" "virt_kstart *= 0x80010000"
	fi
fi

finish
