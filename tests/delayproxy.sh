#!/bin/bash
# delayproxy (the WAN-link emulator of tests/delay-lib.sh) between curl or
# python and a real nginx: bytes come through unchanged both ways, requests
# on a kept-alive connection cost one round trip each and a new connection
# one more, --rate holds a shared cap, half-close, 16 connections at once,
# stall and reset. Timing checks are lower bounds (physics) and ratios
# within this run, never tight upper bounds: the machine is shared. All of
# it twice: the -O2 build, then one under ASan+UBSan (a report fails).
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
. "$(dirname "$0")/delay-lib.sh"
requires curl nginx sha256sum python3

N=20 # requests per keep-alive run
tmpdir_make W
WWW=$W/www
mkdir -p "$WWW"
head -c $((16 << 20)) /dev/urandom >"$WWW/big"
head -c 8000000 /dev/urandom >"$WWW/r8"
head -c $((2 << 20)) /dev/urandom >"$WWW/p2"
head -c 100 /dev/urandom >"$WWW/small"
head -c $((4 << 20)) /dev/urandom >"$W/upload"
web=
serve_nginx "$WWW" web
UP=${web##*:}

sha() { sha256sum <"$1" | cut -d' ' -f1; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
ms_now() { echo $(($(date +%s%N) / 1000000)); }
# at_least WHAT MIN ACTUAL (ms)
at_least() {
	if (($3 >= $2)); then pass "$1: $3 ms >= $2 ms"; else fail "$1: $3 ms, less than $2 ms"; fi
}
# below WHAT A B: A < B (both ms, or any numbers)
below() {
	if (($2 < $3)); then pass "$1 ($2 < $3)"; else fail "$1: $2 is not below $3"; fi
}
# fetch PORT PATH OUT [curl args]: sets RC and MS (wall time).
fetch() {
	local t0
	t0=$(ms_now)
	RC=0
	curl -s -o "$3" "${@:4}" "http://127.0.0.1:$1/$2" || RC=$?
	MS=$(($(ms_now) - t0))
}

# A server that answers each connection with the SHA-256 of all it got,
# once the client has half-closed, and a client that sends a file, shuts
# down its sending side and prints the answer: half-close must travel
# both ways through the proxy, and the upstream bytes must be exact.
cat >"$W/halfclose.py" <<'EOF'
import hashlib, socket, sys, threading
if sys.argv[1] == "serve":
    ls = socket.create_server(("127.0.0.1", 0))
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    import os
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    def answer(c):
        h = hashlib.sha256()
        while data := c.recv(65536):
            h.update(data)
        c.sendall(h.hexdigest().encode() + b"\n")
        c.close()
    while True:
        c, _ = ls.accept()
        threading.Thread(target=answer, args=(c,), daemon=True).start()
else:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=30)
    with open(sys.argv[3], "rb") as f:
        s.sendall(f.read())
    s.shutdown(socket.SHUT_WR)
    out = b""
    while data := s.recv(65536):
        out += data
    print(out.decode().strip())
EOF
"$PYTHON" "$W/halfclose.py" serve "$W/hc.port" </dev/null >"$W/hc.log" 2>&1 &
HC_PID=$!
cleanup_add "{ kill $HC_PID; wait $HC_PID; } 2>/dev/null"
for _ in $(seq 100); do [[ -s $W/hc.port ]] && break; sleep 0.05; done
HC_PORT=$(cat "$W/hc.port")

usage_checks() {
	local args rc
	rc=0
	"$DELAYPROXY" --help >"$W/help" 2>&1 || rc=$?
	if ((rc == 0)) && grep -q '^Usage: delayproxy' "$W/help"; then
		pass "--help: usage, status 0"
	else
		fail "--help: status $rc, $(head -n 2 "$W/help")"
	fi
	for args in "" "--to 127.0.0.1:$UP" "--rtt 5" "--to localhost:$UP --rtt 5" \
		"--to 127.0.0.1:99999 --rtt 5" "--to 127.0.0.1:0 --rtt 5" \
		"--to 127.0.0.1:$UP --rtt abc" "--to 127.0.0.1:$UP --rtt -1" \
		"--to 127.0.0.1:$UP --rtt 5 --rate 4Q" "--to 127.0.0.1:$UP --rtt 5 --rate 0" \
		"--to 127.0.0.1:$UP --rtt 5 --bogus" "--to 127.0.0.1:$UP --rtt" \
		"--to 127.0.0.1:$UP --rtt 5 extra"; do
		rc=0
		# shellcheck disable=SC2086 # word splitting wanted
		timeout 5 "$DELAYPROXY" $args >/dev/null 2>"$W/usage.err" || rc=$?
		if ((rc == 2)) && grep -q '^delayproxy: .*--help' "$W/usage.err"; then
			pass "bad usage '$args': status 2, $(head -c 80 "$W/usage.err")"
		else
			fail "bad usage '$args': status $rc, '$(cat "$W/usage.err")'"
		fi
	done
}

# keepalive LABEL PORT: N requests in one curl run, which must keep to one
# connection; sets MS to the sum of curl's time_total (its start-up left out).
keepalive() {
	local args=() i out
	for ((i = 0; i < N; i++)); do args+=(-o /dev/null "http://127.0.0.1:$2/small"); done
	out=$(curl -s -w '%{num_connects} %{time_total}\n' "${args[@]}" |
		awk '{ n += $1; t += $2 } END { printf "%d %d", n, t * 1000 }')
	expect "$1: $N requests on one connection" 1 "${out% *}"
	MS=${out#* }
}

suite() {
	local tag=$1 p0 p20 p80 pr pdead phc pnone logvar k_direct k0 k20 k80 t0 i ok pids=() got sz1 sz2
	delayproxy_start p0 "$UP" 0
	delayproxy_start p20 "$UP" 20
	delayproxy_start p80 "$UP" 80
	delayproxy_start pr "$UP" 0 4M
	delayproxy_start phc "$HC_PORT" 20

	log "$tag: bytes through"
	for i in p0 p80; do
		fetch "${!i}" big "$W/out"
		expect "$tag: 16 MiB through $i: curl status, SHA-256 ($MS ms)" \
			"0 $(sha "$WWW/big")" "$RC $(sha "$W/out")"
	done
	expect "$tag: 4 MiB upload and half-close through rtt 20" "$(sha "$W/upload")" \
		"$("$PYTHON" "$W/halfclose.py" send "$phc" "$W/upload" 2>&1)"
	pnone=$(free_port)
	delayproxy_start pdead "$pnone" 20
	fetch "$pdead" small "$W/out" --max-time 10
	if ((RC != 0 && RC != 28)); then
		pass "$tag: no server behind the proxy: curl fails (status $RC) in $MS ms"
	else
		fail "$tag: no server behind the proxy: curl status $RC"
	fi

	# Port 0 without --port-file: the port comes on stdout.
	"$DELAYPROXY" --to "127.0.0.1:$UP" --rtt 0 --quiet </dev/null >"$W/q.out" 2>"$W/q.err" &
	i=$!
	cleanup_add "kill $i 2>/dev/null"
	for _ in $(seq 200); do [[ -s $W/q.out ]] && break; sleep 0.05; done
	fetch "$(head -n 1 "$W/q.out")" small "$W/out"
	expect "$tag: through the port printed on stdout" "0 $(sha "$WWW/small")" \
		"$RC $(sha "$W/out")"
	ok=0
	kill "$i"
	wait "$i" || ok=$?
	expect "$tag: --quiet: exit status after SIGTERM, stderr" "0 " "$ok $(cat "$W/q.err")"

	log "$tag: round trips"
	keepalive "$tag: direct" "$UP"
	k_direct=$MS
	keepalive "$tag: rtt 0" "$p0"
	k0=$MS
	keepalive "$tag: rtt 20" "$p20"
	k20=$MS
	keepalive "$tag: rtt 80" "$p80"
	k80=$MS
	log "$tag: $N requests on one connection (sum of curl's times): direct $k_direct ms," \
		"rtt 0: $k0 ms, rtt 20: $k20 ms, rtt 80: $k80 ms"
	# One round trip per request and one for the handshake.
	at_least "$tag: $N requests at rtt 20" $(((N + 1) * 20)) "$k20"
	at_least "$tag: $N requests at rtt 80" $(((N + 1) * 80)) "$k80"
	below "$tag: rtt 0 takes under a quarter of rtt 80" $((k0 * 4)) "$k80"
	below "$tag: rtt 20 adds under half of what rtt 80 adds" $((2 * (k20 - k0))) $((k80 - k0))
	# Not a timing test, a check that no request waits for two round trips.
	below "$tag: rtt 80 under 3 round trips per request" "$k80" $((3 * (N + 1) * 80))
	at_least "$tag: a new connection's request at rtt 80 (2 round trips)" 160 \
		"$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$p80/small" |
			awk '{ printf "%d", $1 * 1000 }')"

	log "$tag: rate"
	fetch "$pr" r8 "$W/out"
	expect "$tag: 8 MB at --rate 4M: bytes" "$(sha "$WWW/r8")" "$(sha "$W/out")"
	at_least "$tag: 8 MB at --rate 4M" 1950 "$MS"
	below "$tag: 8 MB at --rate 4M, not absurdly slow" "$MS" 10000
	t0=$(ms_now)
	curl -s -o "$W/half1" -r 0-3999999 "http://127.0.0.1:$pr/r8" &
	pids=($!)
	curl -s -o "$W/half2" -r 4000000-7999999 "http://127.0.0.1:$pr/r8" &
	pids+=($!)
	ok=0
	for i in "${pids[@]}"; do wait "$i" || ok=$?; done
	cat "$W/half1" "$W/half2" >"$W/out"
	expect "$tag: two 4 MB halves at once: curl status, bytes" "0 $(sha "$WWW/r8")" \
		"$ok $(sha "$W/out")"
	at_least "$tag: two 4 MB halves at once share --rate 4M" 1950 $(($(ms_now) - t0))

	log "$tag: 16 connections at once"
	pids=()
	t0=$(ms_now)
	for i in $(seq 16); do
		curl -s -o "$W/par.$i" "http://127.0.0.1:$p20/p2" &
		pids+=($!)
	done
	ok=0
	for i in $(seq 16); do
		if wait "${pids[i - 1]}" && [[ $(sha "$W/par.$i") == "$(sha "$WWW/p2")" ]]; then
			ok=$((ok + 1))
		fi
	done
	expect "$tag: 16 parallel 2 MiB downloads complete and are exact ($(($(ms_now) - t0)) ms)" \
		16 "$ok"

	log "$tag: stall"
	delayproxy_toggle p20 stall
	fetch "$p20" small "$W/out" --max-time 2
	expect "$tag: stalled: curl --max-time 2 times out (28)" 28 "$RC"
	curl -s -o "$W/stalled" --max-time 30 "http://127.0.0.1:$p20/big" &
	i=$!
	sleep 0.5
	delayproxy_toggle p20 stall
	ok=0
	wait "$i" || ok=$?
	expect "$tag: a request made while stalled completes after the stall" \
		"0 $(sha "$WWW/big")" "$ok $(sha "$W/stalled")"
	fetch "$p20" small "$W/out" --max-time 10
	expect "$tag: after the stall: new request" "0 $(sha "$WWW/small")" "$RC $(sha "$W/out")"
	# Mid-transfer: a hung mirror sends nothing, then resumes. What the
	# sockets already held still arrives: wait for the size to settle.
	rm -f "$W/stalled"
	curl -s -o "$W/stalled" --max-time 60 "http://127.0.0.1:$pr/r8" &
	i=$!
	until (($(size_of "$W/stalled") >= 1000000)) || ! kill -0 "$i" 2>/dev/null; do sleep 0.05; done
	delayproxy_toggle pr stall
	sz2=-1
	for _ in $(seq 20); do
		sz1=$sz2
		sleep 0.2
		sz2=$(size_of "$W/stalled")
		((sz1 != sz2)) || break
	done
	sleep 1
	sz2=$(size_of "$W/stalled")
	delayproxy_toggle pr stall
	ok=0
	wait "$i" || ok=$?
	if ((sz1 == sz2 && sz1 < 8000000)); then
		pass "$tag: stalled mid-transfer: no byte for 1 s (stuck at $sz1)"
	else
		fail "$tag: stalled mid-transfer: $sz1, 1 s later $sz2 bytes"
	fi
	expect "$tag: the stalled transfer completes, exact" "0 $(sha "$WWW/r8")" \
		"$ok $(sha "$W/stalled")"

	log "$tag: reset"
	curl -s -o "$W/reset" --max-time 30 "http://127.0.0.1:$pr/r8" &
	i=$!
	sleep 0.5
	t0=$(ms_now)
	delayproxy_toggle pr reset
	ok=0
	wait "$i" || ok=$?
	got=$(($(ms_now) - t0))
	if ((ok != 0 && ok != 28)); then
		pass "$tag: reset: a running transfer fails (curl status $ok) after $got ms"
	else
		fail "$tag: reset: a running transfer ended with curl status $ok"
	fi
	below "$tag: reset: it fails fast, well before curl's 30 s" "$got" 5000
	fetch "$pr" small "$W/out" --max-time 10
	if ((RC != 0 && RC != 28 && MS < 5000)); then
		pass "$tag: reset: a new request fails fast (curl status $RC, $MS ms)"
	else
		fail "$tag: reset: a new request: curl status $RC after $MS ms"
	fi
	delayproxy_toggle pr reset
	fetch "$pr" small "$W/out" --max-time 10
	expect "$tag: reset off: new request" "0 $(sha "$WWW/small")" "$RC $(sha "$W/out")"

	for i in p0 p20 p80 pr pdead phc; do
		ok=0
		delayproxy_stop "$i" || ok=$?
		logvar=${i}_LOG
		expect "$tag: $i: exit status after SIGTERM" 0 "$ok"
		if grep -qE 'Sanitizer|runtime error' "${!logvar}"; then
			fail "$tag: $i: sanitizer report: $(grep -m 5 -E 'ERROR|runtime error|SUMMARY' "${!logvar}")"
		fi
	done
	logvar=p80_LOG
	log "$tag: the rtt 80 proxy's log: $(cat "${!logvar}")"
}

delayproxy_build
usage_checks
suite O2
delayproxy_build -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
suite san
finish
