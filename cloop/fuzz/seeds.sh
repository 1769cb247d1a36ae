#!/bin/bash
# Seeds for the fuzz targets, made the real way: small images put into
# stores by `hcloop make` (block sizes 4K to 4M, every codec, mirror
# sections, zero blocks, an empty image, a second version of one image).
# Their indexes and latest pointers seed fuzz_index; their block files,
# with fuzz_block's 4-byte header, and some of their blocks as round-trip
# inputs seed fuzz_block. An input joins the corpus only if it adds
# coverage (libFuzzer's -merge=1), so running this again adds little.
# Usage: cloop/fuzz/seeds.sh [CORPUS_DIR]   (default cloop/tests/corpus)
set -eu
CLOOP=$(cd "$(dirname "$0")/.." && pwd)
case ${1:-} in
-h | --help)
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac
CORPUS=${1:-$CLOOP/tests/corpus}
HCLOOP=$CLOOP/build/hcloop
make -s -C "$CLOOP" build/hcloop fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/index" "$work/block" "$CORPUS/index" "$CORPUS/block"

# image FILE SIZE KIND: SIZE bytes of text, random bytes, zeros or a mix,
# the same on every run.
image() {
	python3 - "$@" <<-'EOF'
		import random, sys
		path, size, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
		rnd = random.Random(size)
		words = b"the quick brown fox jumps over lazy dogs hcloop store block".split()
		def text(n):
		    out = bytearray()
		    while len(out) < n:
		        out += rnd.choice(words) + b" "
		    return bytes(out[:n])
		parts = {"text": [text], "random": [rnd.randbytes], "zero": [bytes],
		         "mix": [text, rnd.randbytes, bytes]}[kind]
		data = bytearray()
		while len(data) < size:
		    data += rnd.choice(parts)(min(3000, size - len(data)))
		open(path, "wb").write(data)
	EOF
}

# bytes N...: the bytes with these values.
bytes() {
	local b
	for b; do printf '%b' "\\x$(printf %02x "$b")"; done
}

# put NAME SIZE KIND [hcloop make options]: one image into the store.
put() {
	local name=$1 size=$2 kind=$3
	shift 3
	image "$work/$name.img" "$size" "$kind"
	SOURCE_DATE_EPOCH=1700000000 "$HCLOOP" make -q -j 1 "$@" "$work/$name.img" "$work/store" "$name"
}

put small 9000 mix -b 4K -c zlib
put ztext 12000 text -b 4K -c zlib -l 9
put mirrored 20000 mix -b 4K -m http://127.0.0.1:8080/store -m https://mirror.example/s
put raw 16384 random -b 8K -c none
put zeros 65536 zero -b 4K
put empty 0 zero
put text 300000 text -c zstd -l 19
put big 5000000 mix -b 4M -c zlib -l 1
put "v-$(printf 'x%.0s' {1..120})" 4097 text -b 4K
# A second version: serial 2, the latest pointer moves.
image "$work/small.img" 9000 text
SOURCE_DATE_EPOCH=1700086400 "$HCLOOP" make -q -b 4K -c zstd "$work/small.img" "$work/store" small v2.0-rc_1

for f in "$work"/store/index/*/*; do
	cp "$f" "$work/index/$(basename "$(dirname "$f")")-$(basename "$f")"
done

# Decode inputs: codec, the block's length (24 bits, little-endian), the
# block file. Blocks over 32 KiB would only make the corpus big.
n=0
for f in "$work"/store/index/*/*; do
	[[ $(basename "$f") == latest ]] && continue
	info=$("$HCLOOP" info --blocks --file "$f")
	size=$(awk '$1 == "size:" { print $2 }' <<<"$info")
	bs=$(awk '$1 == "block" && $2 == "size:" { print $3 }' <<<"$info")
	while read -r _ i codec fsize path; do
		len=$((size - i * bs < bs ? size - i * bs : bs))
		case $codec in
		zero) c=0 ;; none) c=1 ;; zstd) c=2 ;; zlib) c=3 ;;
		*) echo "seeds.sh: codec $codec?" >&2; exit 1 ;;
		esac
		((fsize <= 32768)) || continue
		n=$((n + 1))
		{
			bytes "$c" $((len & 255)) $((len >> 8 & 255)) $((len >> 16))
			[[ $path == - ]] || cat "$work/store/$path"
		} >"$work/block/decode-$n"
	done < <(awk '$1 == "block" && $2 ~ /^[0-9]+$/' <<<"$info")
done

# Round-trip inputs: 0x80 + codec - 1, a level, two spare bytes, the data.
for kind in small mirrored raw; do
	for c in 0 1 2; do
		{
			bytes $((0x80 + c)) 6 0 0
			head -c 4096 "$work/$kind.img"
		} >"$work/block/round-$kind-$c"
	done
done

for t in index block; do
	"$CLOOP/build-fuzz/fuzz_$t" -merge=1 "$CORPUS/$t" "$work/$t" 2>&1 |
		grep -E '^MERGE-OUTER: [0-9]+ new files' || true
done
du -sh "$CORPUS"
