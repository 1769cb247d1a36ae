# shellcheck shell=bash
# Stages "run" (boot out/streamcd.iso in QEMU with out/store served on
# 127.0.0.1) and "serve" (serve out/store to real machines on the LAN).
# Sourced by build.sh, which provides log, die, install_missing, TOP and OUT.
#
# How a run ends: on a terminal, when the person quits QEMU (Ctrl-A x).
# Without one (CI, </dev/null, piped output) the console is watched and the
# run ends at dom0's "streamcd: dom0 ready" (exit 0), at the initrd's
# "streamcd: FAILED" (exit 1) or after STREAMCD_RUN_TIMEOUT s (exit 1).
# STREAMCD_RUN_UNTIL=exit instead passes the console through untouched until
# QEMU exits, for scripts that drive it on stdin (tests/boot.py logs in
# after "dom0 ready"); STREAMCD_RUN_TIMEOUT bounds that too.
stage_register run 90 "serve out/store on 127.0.0.1 and boot the ISO in QEMU with
the serial console on this terminal (Ctrl-A x quits). With
no terminal (CI, </dev/null, piped output) the console goes
to stdout and the run ends by itself: exit 0 at \"streamcd:
dom0 ready\" (with streamcd.launch=NAME in STREAMCD_APPEND:
at \"streamcd: guest NAME ready\"), exit 1 at \"streamcd:
FAILED\" or after STREAMCD_RUN_TIMEOUT s (1800);
STREAMCD_RUN_UNTIL=exit instead runs until QEMU exits, the
console on stdin/stdout untouched, for scripts that drive
it. Also: STREAMCD_APPEND=\"...\" (settings added to the
booted entry's boot line), STREAMCD_FIRMWARE=bios|uefi,
STREAMCD_MEDIA=cdrom|disk|usb (disk: the ISO read-only on a
virtio disk; usb: a writable USB stick STREAMCD_STICK, default
out/stick.img, 1 GiB, that the ISO is written onto, as dd
would, when it changed: its free space becomes the cache),
STREAMCD_NET=none (no NIC: an offline boot), STREAMCD_MEM (MiB), STREAMCD_IOMMU=intel|amd (an
emulated IOMMU and a second NIC, 52:54:00:12:34:99, for
passthrough), STREAMCD_GDB_PORT (COM2, where the debug
entry's Xen gdb stub answers, on that port of 127.0.0.1),
STREAMCD_ACCEL=kvm|tcg (default: KVM only if the host CPU
has vmx or svm to pass on to Xen, else TCG), STREAMCD_STORE
(serve this store directory instead of out/store),
STREAMCD_DISK=FILE (a writable second disk, e.g. a cache),
STREAMCD_ISO=FILE (boot this ISO instead of out/streamcd.iso),
STREAMCD_STORE_URL=http://HOST[:PORT][/PATH] (a store on
another server, forwarded to the guest, instead of serving
one), STREAMCD_RUN_DIR (the run's logs and scratch files,
default out/log: runs side by side need one each),
STREAMCD_MONITOR=PATH (QEMU's monitor on that unix socket: its
screendump and sendkey are the PC's screen and keyboard),
STREAMCD_FORWARD=HOSTPORT:PORT (127.0.0.1:HOSTPORT reaches
dom0's TCP PORT)"
stage_register serve 0 "serve out/store (or STREAMCD_STORE) on the LAN
(STREAMCD_PORT, default 8080) for real machines booted from
the ISO, a demo booth: prints the boot line, keeps the booth's
peer list (/peers.txt: machines that GET /announce?port=P,
for STREAMCD_PEER_TTL s, default 90) and live counters"

RUN_PACKAGES=(qemu-system-x86 nginx-light busybox ovmf)

# What QEMU's user network answers to the guest for the store (the initrd's
# baked-in default mirror, see initrd/initrd.stage.sh).
RUN_GUEST_STORE=10.0.2.100

# The console lines that end a watched run: dom0's rc script
# (guests/linux/rootfs/overlay/usr/local/sbin/streamcd-ready) and the
# initrd's rescue() (initrd/init).
RUN_READY='streamcd: dom0 ready'
RUN_FAILED='streamcd: FAILED'
# The MAC of the NIC that STREAMCD_IOMMU adds, which tests pass through.
RUN_SECOND_NIC_MAC=52:54:00:12:34:99
# How many console lines a failed run shows.
RUN_TAIL=15

# run_free_port: a TCP port on 127.0.0.1 nobody listens on.
run_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_httpd ADDR PORT NAME [DIR]: nginx serving out/store (its files in
# DIR/NAME-nginx, DIR default out/log), a child of this shell
# (so that it can be waited for) whose pid goes into RUN_HTTPD_PID.
# nginx, not busybox httpd: hcloop keeps its connections alive, and a
# server that closes each one costs a new guest connection per block
# (through QEMU's guestfwd, a new process too): measured in QEMU TCG,
# 16 MiB of the image streamed in 13.2 s from busybox httpd, 1.3 s from nginx.
run_httpd() {
	local addr=$1 port=$2 name=$3 dir=${4:-$OUT/log}/$3-nginx store
	store=$(run_store "$name") || exit 1
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<-NGINX
		daemon off;
		worker_processes 2;
		pid $dir/nginx.pid;
		error_log $dir/error.log;
		events { worker_connections 1024; }
		http {
			access_log $dir/access.log;
			sendfile on;
			tcp_nopush on;
			keepalive_requests 1000000;
			keepalive_timeout 300s;
			types { }
			default_type application/octet-stream;
			client_body_temp_path $dir/tmp;
			proxy_temp_path $dir/tmp;
			fastcgi_temp_path $dir/tmp;
			uwsgi_temp_path $dir/tmp;
			scgi_temp_path $dir/tmp;
			server {
				listen $addr:$port;
				root $store;
				# A demo booth's peers (serve_watch): machines that
				# announce themselves here, and the list they read.
				location = /announce { return 204; }
				location = /peers.txt {
					root $dir/booth;
					add_header Cache-Control no-store;
				}
			}
		}
	NGINX
	mkdir -p "$dir/booth"
	: >"$dir/booth/peers.txt"
	nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/stderr.log" 2>&1 &
	RUN_HTTPD_PID=$!
}

# run_store NAME: the store directory to serve: STREAMCD_STORE (one a user
# made, or a test's altered copy), else out/store.
run_store() {
	local store=${STREAMCD_STORE:-$OUT/store}
	[[ -d $store ]] || die "$1: STREAMCD_STORE=$store: no such directory"
	[[ -d $store/index ]] || die "$1: $store has no images (no index/); run ./build.sh rootfs guests first"
	realpath "$store"
}

# run_wait_port PORT: the server answers, or die.
run_wait_port() {
	local _
	for _ in $(seq 50); do
		# Any HTTP answer will do: the store root has no index page.
		curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
		sleep 0.1
	done
	die "run: the store server on port $1 did not come up"
}

# run_accel: kvm or tcg. KVM only where the host CPU itself has hardware
# virtualisation (vmx or svm): Xen needs it passed on (-cpu host) for PVH
# and HVM guests. A /dev/kvm without it (seen here: kvm-pvm, KVM done in
# software inside a VM) refuses -cpu host ("failed to set MSR 0x10a") and
# could not give Xen SVM anyway. STREAMCD_ACCEL=kvm|tcg overrides.
run_accel() {
	case ${STREAMCD_ACCEL:-} in
	kvm | tcg) echo "$STREAMCD_ACCEL" ;;
	'')
		if [[ -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
			echo kvm
		else
			echo tcg
		fi
		;;
	*) die "run: STREAMCD_ACCEL=$STREAMCD_ACCEL: kvm or tcg" ;;
	esac
}

# run_qemu_args PORT SERIAL: QEMU's command line for the boot, the serial
# port on SERIAL (stdio, or mon:stdio for a person: Ctrl-A x quits QEMU).
# The guest's network is QEMU's user network restricted to one forwarded
# address: the store.
run_qemu_args() {
	local port=$1 serial=$2 iso=$RUN_ISO firmware=${STREAMCD_FIRMWARE:-bios} media=${STREAMCD_MEDIA:-cdrom}
	local args=(-machine q35 -m "${STREAMCD_MEM:-3072}" -smp 2 -no-reboot) accel
	accel=$(run_accel) || exit 1
	# An emulated IOMMU, before the PCI devices it translates for, and a
	# second NIC to pass through to a guest: on its own restricted user
	# network, whose DHCP server gives 10.0.3.x.
	# shellcheck disable=SC2054 # commas inside QEMU options
	case ${STREAMCD_IOMMU:-} in
	'') ;;
	intel) args+=(-device intel-iommu,intremap=on) ;;
	amd) args+=(-device amd-iommu,intremap=on) ;;
	*) die "run: STREAMCD_IOMMU=$STREAMCD_IOMMU: intel or amd" ;;
	esac
	# shellcheck disable=SC2054
	[[ -z ${STREAMCD_IOMMU:-} ]] ||
		args+=(-netdev user,id=n1,restrict=on,net=10.0.3.0/24 -device "e1000,netdev=n1,mac=$RUN_SECOND_NIC_MAC")
	case $accel in
	kvm) args+=(-accel kvm -cpu host) ;;
	# TCG: SVM with nested paging gives Xen HAP; qemu64 because -cpu max
	# crashes a PV dom0.
	*) args+=(-accel tcg -cpu "qemu64,+svm,+npt,+rdrand") ;;
	esac
	# shellcheck disable=SC2054 # commas inside QEMU options
	case $media in
	cdrom) args+=(-drive "file=$iso,media=cdrom,readonly=on,if=ide") ;;
	disk) args+=(-drive "file=$iso,format=raw,readonly=on,if=virtio") ;;
	usb)
		args+=(-device qemu-xhci,id=xhci -drive "if=none,id=stick,format=raw,file=$RUN_STICK"
			-device usb-storage,bus=xhci.0,drive=stick,bootindex=0)
		;;
	*) die "run: STREAMCD_MEDIA=$media: cdrom, disk or usb" ;;
	esac
	# After the boot medium, so that the boot disk keeps its name.
	if [[ -n ${STREAMCD_DISK:-} ]]; then
		[[ -f $STREAMCD_DISK && -w $STREAMCD_DISK ]] || die "run: STREAMCD_DISK=$STREAMCD_DISK: no writable file"
		args+=(-drive "file=$STREAMCD_DISK,format=raw,if=virtio")
	fi
	case $firmware in
	bios) ;;
	uefi)
		[[ -f /usr/share/OVMF/OVMF_CODE.fd ]] || die "run: UEFI needs Debian's ovmf package"
		cp /usr/share/OVMF/OVMF_VARS.fd "$RUN_DIR/run-ovmf-vars.fd"
		args+=(-drive "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd"
			-drive "if=pflash,format=raw,file=$RUN_DIR/run-ovmf-vars.fd")
		;;
	*) die "run: STREAMCD_FIRMWARE=$firmware: bios or uefi" ;;
	esac
	# guestfwd's "cmd:" runs one nc per guest connection ("tcp:" would be
	# one chardev connection, shared by all and gone after the first); nc's
	# own complaints would otherwise reach the guest as the server's answer.
	# STREAMCD_FORWARD=HOSTPORT:PORT: 127.0.0.1:HOSTPORT here reaches dom0's
	# TCP PORT (bench/screen.py reads a guest's screen that way).
	local fwd=
	if [[ -n ${STREAMCD_FORWARD:-} ]]; then
		[[ $STREAMCD_FORWARD =~ ^([0-9]+):([0-9]+)$ ]] ||
			die "run: STREAMCD_FORWARD=$STREAMCD_FORWARD: give HOSTPORT:PORT"
		fwd=",hostfwd=tcp:127.0.0.1:${BASH_REMATCH[1]}-:${BASH_REMATCH[2]}"
	fi
	case ${STREAMCD_NET:-user} in
	user)
		# shellcheck disable=SC2054 # commas inside one QEMU option
		args+=(-netdev "user,id=n0,restrict=on$fwd,guestfwd=tcp:$RUN_GUEST_STORE:80-cmd:sh -c 'exec busybox nc $RUN_STORE_HOST $port 2>/dev/null'"
			-device e1000,netdev=n0)
		;;
	none) args+=(-nic none) ;;
	*) die "run: STREAMCD_NET=${STREAMCD_NET}: user or none" ;;
	esac
	# The pid file names the run's directory on QEMU's command line: what a
	# run left behind can be found by it (tests/matrix.sh).
	# The PC's screen is a standard VGA; STREAMCD_MONITOR puts QEMU's
	# monitor on a unix socket, whose screendump and sendkey are the screen
	# and keyboard of a person at the PC (tests/screen.py).
	local monitor=none
	[[ -z ${STREAMCD_MONITOR:-} ]] || monitor=unix:$STREAMCD_MONITOR,server=on,wait=off
	args+=(-vga std -display none -monitor "$monitor" -serial "$serial" -pidfile "$RUN_DIR/run-qemu.pid")
	# COM2: the debug hypervisor's gdb stub, on a TCP port of 127.0.0.1 for a
	# gdb on this machine (STREAMCD_GDB_PORT), or nowhere.
	if [[ -n ${STREAMCD_GDB_PORT:-} ]]; then
		args+=(-serial "tcp:127.0.0.1:$STREAMCD_GDB_PORT,server=on,wait=off")
	else
		args+=(-serial null)
	fi
	printf '%s\n' "${args[@]}"
}

# run_stop: QEMU, with the nc processes its guestfwd started (its process
# group), and the store server, whichever run; returns once they are gone.
# Also the EXIT trap of the run and serve stages.
run_stop() {
	local _
	if [[ -n ${RUN_QEMU_PID:-} ]]; then
		{
			kill -TERM -- "-$RUN_QEMU_PID"
			wait "$RUN_QEMU_PID"
		} 2>/dev/null || true
		# The nc processes are QEMU's children, not ours: no wait for them.
		for _ in $(seq 50); do
			kill -0 -- "-$RUN_QEMU_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$RUN_QEMU_PID" 2>/dev/null || true
		RUN_QEMU_PID=
	fi
	if [[ -n ${RUN_HTTPD_PID:-} ]]; then
		# nginx's master stops its workers before it exits.
		{
			kill -TERM "$RUN_HTTPD_PID"
			wait "$RUN_HTTPD_PID"
		} 2>/dev/null || true
		RUN_HTTPD_PID=
	fi
}

# run_until_exit TIMEOUT ARGS...: QEMU with this shell's stdin and stdout,
# untouched, until it exits; stopped after TIMEOUT s.
#
# Here and in run_watched QEMU runs in a process group of its own, so that
# run_stop ends the nc processes guestfwd starts with it (and a Ctrl-C
# reaches this shell, which stops everything, not QEMU alone). setsid execs
# QEMU (a background child is no group leader), so RUN_QEMU_PID is QEMU's
# pid and its group's.
run_until_exit() {
	local timeout=$1 timer ended rc=0
	shift
	setsid qemu-system-x86_64 "$@" <&0 &
	RUN_QEMU_PID=$!
	sleep "$timeout" &
	timer=$!
	wait -n -p ended "$RUN_QEMU_PID" "$timer" || rc=$?
	{
		kill "$timer"
		wait "$timer"
	} 2>/dev/null || true
	if [[ $ended == "$timer" ]]; then
		run_stop
		die "run: stopped QEMU after STREAMCD_RUN_TIMEOUT=$timeout s"
	fi
	((rc == 0)) || die "run: QEMU exited with status $rc"
}

# run_since START: seconds since START (an $EPOCHREALTIME), to a tenth:
# benchmarks compare boots that differ by less than a second.
run_since() {
	local us=$((${EPOCHREALTIME/./} - ${1/./}))
	printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}

# run_console_tail LINE...: the lines for a person, without carriage
# returns and terminal escapes.
run_console_tail() {
	printf '    %s\n' "$@" | sed -E $'s/\r//g; s/\x1b(\\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[78=>cDEHM])//g'
}

# run_watched TIMEOUT ARGS...: QEMU's console on stdout, watched for the
# lines that end the run (see the top of this file). Lines are acted on
# once complete; a partial one (a prompt) is shown as soon as it comes.
run_watched() {
	local timeout=$1 fifo=$RUN_DIR/run-console.fifo qlog=$RUN_DIR/run-qemu.log
	local start=$SECONDS start_rt=$EPOCHREALTIME part line="" last=() con rc
	shift
	rm -f "$fifo"
	mkfifo "$fifo"
	# QEMU's stderr goes to a file: its "terminating on signal" at the end
	# of every run is no news; the file's tail is shown when QEMU fails.
	# The child opens the FIFO: opening one waits for the other end.
	setsid qemu-system-x86_64 "$@" </dev/null >"$fifo" 2>"$qlog" &
	RUN_QEMU_PID=$!
	exec {con}<"$fifo"
	rm -f "$fifo"
	while :; do
		if IFS= read -r -t 1 -u "$con" part; then
			printf '%s\n' "$part"
			line+=$part
			last+=("$line")
			((${#last[@]} <= RUN_TAIL)) || last=("${last[@]:1}")
			case $line in
			*"$RUN_READY"*)
				exec {con}<&-
				run_stop
				log "run: ${RUN_READY#streamcd: } $(run_since "$start_rt") s after QEMU started (${STREAMCD_FIRMWARE:-bios}, ${STREAMCD_MEDIA:-cdrom}); QEMU and the store server stopped"
				return 0
				;;
			*"$RUN_FAILED"*)
				exec {con}<&-
				run_stop
				die "run: the boot failed $(run_since "$start_rt") s after QEMU started: ${line//$'\r'/}"
				;;
			esac
			line=
		else
			rc=$?
			printf '%s' "$part"
			line+=$part
			((rc > 128)) || break
		fi
		if ((SECONDS - start >= timeout)); then
			exec {con}<&-
			run_stop
			[[ -z $line ]] || last+=("$line")
			die "run: no '$RUN_READY' within STREAMCD_RUN_TIMEOUT=$timeout s; QEMU and the store server stopped; the last console lines:"$'\n'"$(run_console_tail "${last[@]}")"
		fi
	done
	# The end of the console: QEMU exited on its own.
	exec {con}<&-
	rc=0
	wait "$RUN_QEMU_PID" || rc=$?
	run_stop
	[[ -z $line ]] || last+=("$line")
	die "run: QEMU exited (status $rc) $((SECONDS - start)) s after it started, before '$RUN_READY'; the last console lines:"$'\n'"$(run_console_tail "${last[@]}")"$'\n'"QEMU's messages ($qlog):"$'\n'"$(tail -n 5 "$qlog")"
}

# run_stick: with STREAMCD_MEDIA=usb, the stick image RUN_STICK
# (STREAMCD_STICK, default out/stick.img), made as a sparse 1 GiB file if
# missing; the ISO is written onto it when it is not the one written last
# (a stamp beside it), in place, as dd would: the rest of the stick, its
# cache partition's blocks among them, stays.
run_stick() {
	local sum
	RUN_STICK=${STREAMCD_STICK:-$OUT/stick.img}
	[[ ${STREAMCD_MEDIA:-cdrom} == usb ]] || return 0
	if [[ ! -e $RUN_STICK ]]; then
		truncate -s 1G "$RUN_STICK" || die "run: cannot make the stick image $RUN_STICK"
		log "run: a new 1 GiB stick image $RUN_STICK"
	fi
	[[ -f $RUN_STICK && -w $RUN_STICK ]] || die "run: STREAMCD_STICK=$RUN_STICK: no writable file"
	sum=$(sha256sum <"$RUN_ISO" | cut -d' ' -f1)
	[[ $(cat "$RUN_STICK.iso" 2>/dev/null) != "$sum" ]] || return 0
	dd if="$RUN_ISO" of="$RUN_STICK" conv=notrunc,fsync bs=1M status=none ||
		die "run: cannot write $RUN_ISO onto $RUN_STICK"
	printf '%s\n' "$sum" >"$RUN_STICK.iso"
	log "run: wrote $RUN_ISO onto the stick image $RUN_STICK"
}

# run_store_url: with STREAMCD_STORE_URL, the host and port the guest's
# store address forwards to (RUN_STORE_HOST, RUN_STORE_PORT) and, for a
# store below the server's root, the boot line's streamcd.url (in
# RUN_URL_ARG); without, the local server's.
run_store_url() {
	local url=${STREAMCD_STORE_URL:-} hostport path
	RUN_STORE_HOST=127.0.0.1 RUN_STORE_PORT='' RUN_URL_ARG=''
	[[ -n $url ]] || return 0
	[[ $url =~ ^http://([^/:]+)(:([0-9]+))?(/.*)?$ ]] ||
		die "run: STREAMCD_STORE_URL=$url: give http://HOST[:PORT][/PATH] (the guest reaches it through QEMU's forwarding, which carries plain HTTP)"
	hostport=${BASH_REMATCH[1]}
	RUN_STORE_HOST=$hostport
	RUN_STORE_PORT=${BASH_REMATCH[3]:-80}
	path=${BASH_REMATCH[4]:-}
	path=${path%/}
	[[ -z $path ]] || RUN_URL_ARG="streamcd.url=http://$RUN_GUEST_STORE$path"
}

# run_append: STREAMCD_APPEND, settings for the booted entry's Linux line.
# They go into an ISO of their own (out/run-iso/HASH/, cached like the ISO
# stage; one per line, so that runs side by side keep theirs), which is
# the main ISO with the line edited: the boot loaders' menus, the same for
# BIOS and UEFI, stay untouched. streamcd.launch=NAME
# among them moves the end of a watched run to the guest's ready line,
# streamcd.profile_guests to the launcher's last line of profiles.
run_append() {
	local append="${RUN_URL_ARG:+$RUN_URL_ARG }${STREAMCD_APPEND:-}" w args dir
	RUN_ISO=${STREAMCD_ISO:-$OUT/streamcd.iso}
	[[ -f $RUN_ISO ]] || die "run: no $RUN_ISO; run ./build.sh iso first"
	[[ -n ${append// /} ]] || return 0
	[[ -z ${STREAMCD_ISO:-} ]] ||
		die "run: '$append' would edit the boot line, which only the build's own ISO can have (STREAMCD_ISO=$STREAMCD_ISO)"
	args="${STREAMCD_BOOT_ARGS:+$STREAMCD_BOOT_ARGS }$append"
	dir=$OUT/run-iso/$(printf '%s' "$args" | sha256sum | cut -c1-16)
	iso_build "$args" "$dir" run-iso
	RUN_ISO=$dir/streamcd.iso
	for w in $append; do
		case $w in
		streamcd.launch=?*) RUN_READY="streamcd: guest ${w#*=} ready" ;;
		# The guest-profiles stage (guests/profiles.stage.sh).
		streamcd.profile_guests) RUN_READY="streamcd: guest profiles recorded" ;;
		esac
	done
}

stage_run() {
	local port argv qemu_args rc=0 serial=stdio
	local until=${STREAMCD_RUN_UNTIL:-ready} timeout=${STREAMCD_RUN_TIMEOUT:-1800}
	install_missing run "${RUN_PACKAGES[@]}"
	RUN_DIR=${STREAMCD_RUN_DIR:-$OUT/log}
	run_store_url
	run_append
	run_stick
	[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "run: STREAMCD_RUN_TIMEOUT=$timeout: give a number of seconds"
	case $until in
	ready | exit) ;;
	*) die "run: STREAMCD_RUN_UNTIL=$until: ready or exit" ;;
	esac
	# Decided here, not in run_qemu_args: its output is a pipe.
	[[ -t 0 && -t 1 ]] && serial=mon:stdio
	mkdir -p "$OUT/log" "$RUN_DIR"
	port=${RUN_STORE_PORT:-${STREAMCD_PORT:-$(run_free_port)}}
	RUN_QEMU_PID="" RUN_HTTPD_PID=""
	trap run_stop EXIT
	# exit runs the EXIT trap; 128+signal is the conventional status.
	trap 'log "run: interrupted"; exit 130' INT
	trap 'log "run: terminated"; exit 143' TERM
	if [[ -n ${STREAMCD_STORE_URL:-} ]]; then
		log "run: the store is $STREAMCD_STORE_URL: no server of ours"
	elif [[ ${STREAMCD_RUN_SERVER:-1} == 0 ]]; then
		# For the test of a boot whose store is unreachable.
		log "run: STREAMCD_RUN_SERVER=0: no store server (port $port stays closed)"
	else
		run_httpd 127.0.0.1 "$port" run "$RUN_DIR"
		run_wait_port "$port"
	fi
	# Not mapfile from a process substitution: a die there would only end
	# the substitution.
	argv=$(run_qemu_args "$port" "$serial") || exit 1
	mapfile -t qemu_args <<<"$argv"
	log "run: store ${STREAMCD_STORE_URL:-${STREAMCD_STORE:-$OUT/store} on 127.0.0.1:$port} (guest: http://$RUN_GUEST_STORE); booting $RUN_ISO (${STREAMCD_FIRMWARE:-bios}, ${STREAMCD_MEDIA:-cdrom})"
	if [[ $serial == mon:stdio ]]; then
		log "run: the serial console follows; log in as root; Ctrl-A x quits QEMU"
		qemu-system-x86_64 "${qemu_args[@]}" || rc=$?
		((rc == 0)) || die "run: QEMU exited with status $rc"
	elif [[ $until == exit ]]; then
		run_until_exit "$timeout" "${qemu_args[@]}"
	else
		log "run: no terminal: the run ends at '$RUN_READY' or '$RUN_FAILED' on the console, or after STREAMCD_RUN_TIMEOUT=$timeout s"
		run_watched "$timeout" "${qemu_args[@]}"
	fi
	run_stop
	trap - EXIT INT TERM
}

# serve_digest: the access log's lines (nginx's combined format) on stdin
# as "P IP PORT" for each announce, "C IP" for each machine that fetched,
# and "B BYTES" for the bytes sent.
serve_digest() {
	awk '{
		n = split($0, f, "\"")
		if (n < 3) next
		split(f[2], r, " ")
		split(f[3], st, " ")
		if (r[2] ~ /^\/announce\?port=[0-9]+$/ && st[1] == 204) {
			sub(/.*port=/, "", r[2])
			print "P", $1, r[2]
			next
		}
		if (!($1 in seen)) print "C", $1
		seen[$1] = 1
		if (st[2] ~ /^[0-9]+$/) bytes += st[2]
	} END { print "B", bytes + 0 }'
}

# serve_watch DIR PID: while nginx (PID) runs, every 2 s, reads what its
# access log gained: the booth's peer list DIR/booth/peers.txt (machines
# that announced in the last STREAMCD_PEER_TTL seconds) and the counters
# (machines seen in the last 5 minutes, bytes sent, peers), on one line
# kept up to date on a terminal, else a line when they change (for bytes
# alone, every 10 s at most).
serve_watch() {
	local dir=$1 pid=$2 ttl=${STREAMCD_PEER_TTL:-90} off=0 size kind a b bytes=0
	local line shown='' said=0 k list clients peers
	local -A peer_at=() client_at=()
	[[ $ttl =~ ^[1-9][0-9]*$ ]] || die "serve: STREAMCD_PEER_TTL=$ttl: give seconds"
	while kill -0 "$pid" 2>/dev/null; do
		size=$(stat -c %s "$dir/access.log" 2>/dev/null || echo 0)
		# A log rotated or emptied under us: read it from its start.
		((size >= off)) || off=0
		if ((size > off)); then
			while read -r kind a b; do
				case $kind in
				P) peer_at[$a:$b]=$EPOCHSECONDS ;;
				C) client_at[$a]=$EPOCHSECONDS ;;
				B) bytes=$((bytes + a)) ;;
				esac
			done < <(tail -c +$((off + 1)) "$dir/access.log" | head -c $((size - off)) | serve_digest)
			off=$size
		fi
		list='' peers=0 clients=0
		for k in "${!peer_at[@]}"; do
			if ((EPOCHSECONDS - peer_at[$k] > ttl)); then
				unset "peer_at[$k]"
				continue
			fi
			# IPv6 addresses go in brackets in a URL.
			if [[ ${k%:*} == *:* ]]; then
				list+="http://[${k%:*}]:${k##*:}/"$'\n'
			else
				list+="http://$k/"$'\n'
			fi
			peers=$((peers + 1))
		done
		# Sorted: the same peers make the same list.
		list=$(sort <<<"${list%$'\n'}")
		for k in "${!client_at[@]}"; do
			((EPOCHSECONDS - client_at[$k] > 300)) || clients=$((clients + 1))
		done
		if [[ $list != "$(<"$dir/booth/peers.txt")" ]]; then
			# Renamed in: a machine never reads half a list.
			printf '%s\n' "$list" | sed '/^$/d' >"$dir/booth/peers.new"
			mv "$dir/booth/peers.new" "$dir/booth/peers.txt"
		fi
		line="serve: machines $clients (last 5 min), served $((bytes / 1000000)) MB, peers $peers"
		if [[ -t 1 ]]; then
			[[ $line == "$shown" ]] || printf '\r%s\033[K' "$line"
			shown=$line
		elif [[ $line != "$shown" ]] &&
			{ [[ ${line/served*MB/} != "${shown/served*MB/}" ]] || ((EPOCHSECONDS - said >= 10)); }; then
			# Machines and peers at once; bytes alone every 10 s.
			log "$line"
			shown=$line said=$EPOCHSECONDS
		fi
		sleep 2
	done
}

stage_serve() {
	local port=${STREAMCD_PORT:-8080} addr httpd_pid
	install_missing serve nginx-light
	mkdir -p "$OUT/log"
	run_httpd 0.0.0.0 "$port" serve
	httpd_pid=$RUN_HTTPD_PID
	trap run_stop EXIT
	# Ctrl-C is how serving ends: not an error.
	trap 'log "serve: stopped"; exit 0' INT TERM
	run_wait_port "$port"
	log "serve: ${STREAMCD_STORE:-$OUT/store} on port $port; boot machines with one of these on the boot line"
	log "serve: (Tab at the isolinux menu, e at the GRUB menu):"
	for addr in $(ip -4 -o addr show scope global | awk '{ sub(/\/.*/, "", $4); print $4 }'); do
		printf '    streamcd.url=http://%s:%s streamcd.peers\n' "$addr" "$port"
	done
	log "serve: streamcd.peers makes a booted machine serve what it read to the others"
	log "serve: (drop it to fetch from this server alone): it announces itself with"
	log "serve: GET /announce?port=P, and the machines read http://ADDRESS:$port/peers.txt"
	log "serve: access log $OUT/log/serve-nginx/access.log; Ctrl-C stops"
	serve_watch "$OUT/log/serve-nginx" "$httpd_pid"
	wait "$httpd_pid" || die "serve: nginx stopped; see $OUT/log/serve-nginx/error.log"
}
