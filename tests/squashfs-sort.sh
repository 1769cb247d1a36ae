#!/bin/bash
# guests/linux/rootfs/squashfs-sort.py with real mksquashfs (uncompressed,
# so that each file's bytes can be found): its sort file keeps mksquashfs's
# own order for a tree with names that sort across directory levels (a,
# a-z, a.b/, a/), a hard link whose first name comes first and a duplicate
# file; the files it is told to put last come after every other file; a
# name with a space is refused.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires python3 mksquashfs
TOOL=$REPO/guests/linux/rootfs/squashfs-sort.py
work=
tmpdir_make work
t=$work/tree
files=(A B/f4 a-z a.b/c/f2 a.b/f3 a/f1 b-1/f5 f6 x/f8 x/y/f7 x0 z/link-last)
for f in "${files[@]}"; do
	mkdir -p "$t/$(dirname "$f")"
	python3 -c 'import sys; sys.stdout.write(("%-12s" % sys.argv[1])[:12] * 700)' "$f" >"$t/$f"
done
rm "$t/z/link-last"
ln "$t/b-1/f5" "$t/z/link-last"
cp "$t/a/f1" "$t/x0.same"

mk() { mksquashfs "$t" "$1" -noappend -quiet -no-progress -noI -noD -noF -noX "${@:2}" >/dev/null; }
# order IMAGE: the files in the order their bytes start in IMAGE.
order() {
	local f n
	for f in "${files[@]}"; do
		[[ $f == z/link-last ]] && continue
		n=$(printf '%-12s' "$f" | head -c 12)
		echo "$(grep -boa -m1 -F "$n$n" "$1" | head -n 1 | cut -d: -f1) $f"
	done | sort -n | cut -d' ' -f2 | xargs
}

mk "$work/plain.img"
python3 "$TOOL" "$t" >"$work/sort"
mk "$work/sorted.img" -sort "$work/sort"
expect "the sort file keeps mksquashfs's own order" "$(order "$work/plain.img")" "$(order "$work/sorted.img")"
expect "the hard link's priority is its first name's" "$(grep '^b-1/f5 ' "$work/sort" | cut -d' ' -f2)" \
	"$(grep '^z/link-last ' "$work/sort" | cut -d' ' -f2)"

printf '/a.b/f3\n/B/f4\n' >"$work/last"
python3 "$TOOL" "$t" "$work/last" >"$work/sort"
mk "$work/last.img" -sort "$work/sort"
expect "the files named go last, the rest in order" \
	"$(order "$work/plain.img" | xargs -n1 | grep -vx -e a.b/f3 -e B/f4 | xargs) B/f4 a.b/f3" \
	"$(order "$work/last.img")"

touch "$t/with space"
expect "a name with a space: refused" 1 "$(status python3 "$TOOL" "$t")"
finish
