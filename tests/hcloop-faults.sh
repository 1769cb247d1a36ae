#!/bin/bash
# Faults between hcloop and its store: every one must end in EIO (with a
# log line naming the block, the server and the cause) or in recovery by
# retry, and never in a wrong byte. Damaged files are served by nginx;
# protocol faults come from faultserver.py.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires fusermount3 nginx

fixture_load
work=
tmpdir_make work
store_make "$work/clean"
# Blocks well inside the image that hold data (zero blocks have no file).
B=$(data_block "$work/clean" 100)
OTHER=$(data_block "$work/clean" 700)
RANGE=400 # transient faults: read the first RANGE blocks
want_b=$(sha_range "$FIX_IMAGE" "$B" 1)
want_other=$(sha_range "$FIX_IMAGE" "$OTHER" 1)
want_range=$(sha_range "$FIX_IMAGE" 0 "$RANGE")
FAST=(-t 2 -R 2 -r 0)

# broken NAME URL PATTERN: block B reads as EIO and nothing else breaks;
# the log names block B and says PATTERN.
broken() {
	local name=$1 url=$2 pattern=$3 mnt='' logf=$work/$1.log
	hc_mount mnt "$url" "${FAST[@]}" --log "$logf"
	if got=$(sha_range "$mnt/root" "$B" 1); then
		fail "$name: read of block $B succeeded (sha $got, original $want_b)"
	else
		pass "$name: block $B reads as an error"
	fi
	# One line per failed load: the kernel may retry a failed page once
	# more, which the recent-failure hold answers without a new log line.
	expect "$name: one EIO line in the log" 1 \
		"$(grep -c "block $B .*read returns EIO" "$logf" || true)"
	if grep -q "block $B .*$pattern" "$logf"; then
		pass "$name: log says why ($pattern)"
	else
		fail "$name: log lacks '$pattern': $(cat "$logf")"
	fi
	expect "$name: other blocks still read right" "$want_other" \
		"$(sha_range "$mnt/root" "$OTHER" 1 || echo read-failed)"
	expect "$name: daemon still serves counters" 1 \
		"$(stat_of "$mnt" block_errors)"
	hc_umount "$mnt"
}

# recovers NAME URL: transient faults are retried away, bytes are right.
# Four attempts outlast the three faults even if they all hit one block.
recovers() {
	local name=$1 url=$2 mnt=''
	hc_mount mnt "$url" -t 2 -R 3 --log "$work/$name.log"
	expect "$name: first $RANGE blocks read right" "$want_range" \
		"$(sha_range "$mnt/root" 0 "$RANGE" || echo read-failed)"
	if (($(stat_of "$mnt" fetch_retries) > 0)); then
		pass "$name: recovered by retrying ($(stat_of "$mnt" fetch_retries) retries)"
	else
		fail "$name: no retry counted"
	fi
	hc_umount "$mnt"
}

path_b=$(block_path "$work/clean" "$B")

log "damaged store files, served by nginx"
for damage in missing corrupt truncate; do
	cp -a "$work/clean" "$work/$damage"
	case $damage in
	missing) rm "$work/$damage/$path_b" ;;
	corrupt) printf '\xff' | dd of="$work/$damage/$path_b" bs=1 seek=100 conv=notrunc status=none ;;
	truncate) truncate -s 1000 "$work/$damage/$path_b" ;;
	esac
	url=
	serve_nginx "$work/$damage" url
	case $damage in
	missing) broken "missing file" "$url" "HTTP 404" ;;
	corrupt) broken "corrupt file" "$url" "does not match its SHA-256" ;;
	truncate) broken "truncated file" "$url" "got 1000 bytes" ;;
	esac
done

log "faults on the wire, from faultserver.py"
for mode in 500 badlen shortlen truncate corrupt die; do
	url=
	serve_fault "$work/clean" url --fault "$mode:$path_b"
	case $mode in
	500) why="HTTP 500" ;;
	badlen) why="Maximum file size exceeded" ;;
	truncate) why="Transferred a partial file" ;;
	shortlen) why="got [0-9]* bytes, expected" ;;
	corrupt) why="does not match its SHA-256" ;;
	die) why="Server returned nothing" ;;
	esac
	broken "always $mode" "$url" "$why"
	url=
	serve_fault "$work/clean" url --fault "$mode:/blocks/:3"
	recovers "3 x $mode" "$url"
done

log "a server that stalls mid-body: EIO after the timeout, no hang"
url=
serve_fault "$work/clean" url --fault "stall:$path_b"
start=$SECONDS
broken "stall" "$url" "stalled: no data"
# 3 attempts x (2 s stall timeout) + backoff, plus slack for a busy machine.
if ((SECONDS - start <= 20)); then pass "stall: gave up in $((SECONDS - start)) s"; else
	fail "stall: took $((SECONDS - start)) s"; fi

log "the server dies in the middle of a long read, then comes back"
url=
serve_fault "$work/clean" url --die-after 150
port=${url##*:}
mnt=
hc_mount mnt "$url" "${FAST[@]}" --log "$work/died.log"
start=$SECONDS
if sha256sum <"$mnt/root" >/dev/null 2>&1; then
	fail "server died: the whole read succeeded"
else
	pass "server died: the read fails"
fi
if ((SECONDS - start <= 30)); then pass "server died: failed in $((SECONDS - start)) s"; else
	fail "server died: took $((SECONDS - start)) s"; fi
if grep -q "Couldn't connect\|Server returned nothing\|partial" "$work/died.log"; then
	pass "server died: log names the cause"
else
	fail "server died: log: $(tail -2 "$work/died.log")"
fi
# The same port again, a real server this time: the mount recovers.
python3 -m http.server --bind 127.0.0.1 --directory "$work/clean" "$port" >/dev/null 2>&1 &
cleanup_add "kill $! 2>/dev/null"
wait_http "$url/"
# Blocks that failed are refused at once for one timeout, so that the
# kernel's immediate re-reads do not wait out every retry again.
sleep 2
expect "server back: whole image reads right" "$FIX_SHA" \
	"$(sha256sum <"$mnt/root" | cut -d' ' -f1)"
hc_umount "$mnt"
finish
