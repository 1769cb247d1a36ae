#!/bin/bash
# A stick pulled or the power cut while hcloop fills its disk cache: hcloop
# is killed with SIGKILL at a random moment of a fill (with a reader on the
# mount too), 100 times over the same cache. Then, with no network, every
# block of the image reads back right from that cache or fails to read,
# never wrong; files damaged as a power cut would leave them (cut short,
# empty, a changed byte) are dropped, not served; one more mount with the
# network completes the cache, and the whole image then reads right with no
# network. HCLOOP_CRASH_ROUNDS (100) and HCLOOP_CRASH_SEED (random) make a
# failure repeatable.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires fusermount3 nginx python3

rounds=${HCLOOP_CRASH_ROUNDS:-100}
seed=${HCLOOP_CRASH_SEED:-$((RANDOM * 32768 + RANDOM))}
log "seed $seed (HCLOOP_CRASH_SEED=$seed repeats this run)"
RANDOM=$seed

[[ -x $HCLOOP ]] || make -s -C "$REPO/cloop"
work=
tmpdir_make work
# 24 MiB in 16 KiB blocks: 1536 block files to write, random data (each
# block its own file), repeated blocks (one file, many blocks) and zeros.
python3 - "$work/image" "$seed" <<-'EOF'
	import random, sys
	r = random.Random(int(sys.argv[2]))
	bs, n = 16384, 1536
	rep = r.randbytes(bs)
	with open(sys.argv[1], "wb") as f:
	    for i in range(n):
	        k = i % 8
	        f.write(rep if k == 3 else bytes(bs) if k == 6 else r.randbytes(bs))
EOF
sha=$(sha256sum <"$work/image" | cut -d' ' -f1)
"$HCLOOP" make -q -b 16K "$work/image" "$work/store" crash
url='' url_PID=''
serve_nginx "$work/store" url
cache=$work/cache
mkdir -p "$work/mnt"
cleanup_add "umount -l '$work/mnt' 2>/dev/null || true"

# check_offline WHAT: every block of the image through a mount of the cache
# alone: right or unreadable. Prints "good missing"; a wrong byte fails.
check_offline() {
	local out rc=0
	"$HCLOOP" mount -C "$cache" -t 1 -R 0 -P off -r 0 "$url" crash "$work/mnt" 2>"$work/offline.err" ||
		{
			fail "$1: the cache does not mount with no network: $(cat "$work/offline.err")"
			return 0
		}
	out=$(python3 - "$work/mnt/crash" "$work/image" <<-'EOF'
		import sys
		bs = 16384
		good = missing = wrong = 0
		with open(sys.argv[2], "rb") as ref:
		    want = ref.read()
		with open(sys.argv[1], "rb", buffering=0) as f:
		    for i in range(len(want) // bs):
		        try:
		            got = f.read(bs) if f.seek(i * bs) == i * bs else None
		        except OSError:
		            missing += 1
		            continue
		        if got == want[i * bs:(i + 1) * bs]:
		            good += 1
		        else:
		            wrong += 1
		print(good, missing, wrong)
	EOF
	) || rc=$?
	DAMAGED=$(stat_of "$work/mnt" disk_damaged)
	hc_umount "$work/mnt"
	read -r GOOD MISSING WRONG <<<"$out"
	if ((rc != 0)) || [[ -z ${WRONG:-} ]]; then
		fail "$1: the reader failed: $out"
	elif ((WRONG)); then
		fail "$1: $WRONG blocks read WRONG bytes ($GOOD right, $MISSING unreadable)"
	else
		pass "$1: $GOOD blocks right, $MISSING unreadable, none wrong"
	fi
}

log "$rounds fills, each killed with SIGKILL at a random moment"
unique=$(find "$work/store/blocks" -type f | wc -l)
start=$SECONDS
cut_short=0
for i in $(seq "$rounds"); do
	# Each fill has writing to do: a random half of the cached block files
	# go first (as an eviction would take them).
	if [[ -d $cache/blocks ]]; then
		find "$cache/blocks" -type f | awk -v seed="$RANDOM" 'BEGIN { srand(seed) } rand() < 0.5' |
			xargs -r rm -f
	fi
	"$HCLOOP" mount -f -C "$cache" -P fill --prefetch-rate 16M -t 2 "$url" crash "$work/mnt" \
		2>>"$work/kills.log" &
	pid=$!
	# A reader as well: demand fetches write to the cache beside the fill.
	(sleep 0.$((RANDOM % 5)) && cat "$work/mnt/crash" >/dev/null 2>&1) &
	reader=$!
	# 0 to 1.2 s: from before the mount is up to after the fill (12 MiB or
	# so at 16 MB/s) ends.
	ms=$((RANDOM % 1200))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	(($(find "$cache/blocks" -type f ! -name '*.tmp.*' 2>/dev/null | wc -l) == unique)) ||
		cut_short=$((cut_short + 1))
	umount -l "$work/mnt" 2>/dev/null || true
	kill "$reader" 2>/dev/null || true
	wait "$reader" 2>/dev/null || true
done
files=$(find "$cache/blocks" -type f ! -name '*.tmp.*' | wc -l)
tmps=$(find "$cache/blocks" -type f -name '*.tmp.*' | wc -l)
log "$rounds kills in $((SECONDS - start)) s: $files block files and $tmps temporaries left in the cache"
echo "measure: $rounds SIGKILLs in $((SECONDS - start)) s, $cut_short before the fill had cached all $unique block files; last: $files block files, $tmps temporaries"
# About half land before the fill ends (58 of 100 in one run here).
if ((cut_short * 3 >= rounds)); then
	pass "$cut_short of $rounds kills cut a fill short"
else
	fail "only $cut_short of $rounds kills cut a fill short: the test misses its moments"
fi

kill "$url_PID"
wait "$url_PID" 2>/dev/null || true
check_offline "after $rounds kills, no network"
if ((GOOD > 0)); then
	pass "the killed fills left blocks in the cache ($GOOD)"
else
	fail "the killed fills left nothing usable in the cache"
fi
expect "the next mount removed the dead runs' temporaries" 0 \
	"$(find "$cache/blocks" -type f -name '*.tmp.*' | wc -l)"

# What a power cut can leave of a file written without fsync: cut short,
# empty, or other bytes. Each is noticed when read, dropped, never served.
mapfile -t victims < <(find "$cache/blocks" -type f -size +8k | sort | head -n 3)
((${#victims[@]} == 3)) || fail "fewer than 3 cached block files to damage"
truncate -s 100 "${victims[0]}"
: >"${victims[1]}"
printf '\377' | dd of="${victims[2]}" bs=1 seek=7 conv=notrunc status=none
check_offline "three damaged cache files, no network"
expect "the three damaged files were noticed" 3 "$DAMAGED"

serve_nginx "$work/store" url
"$HCLOOP" mount -C "$cache" "$url" crash "$work/mnt"
expect "with the network: the whole image right, the cache completed" "$sha" \
	"$(sha256sum <"$work/mnt/crash" | cut -d' ' -f1)"
hc_umount "$work/mnt"
kill "$url_PID"
wait "$url_PID" 2>/dev/null || true
check_offline "completed cache, no network"
expect "completed cache: every block right" "0 0" "$MISSING $WRONG"
finish
