# shellcheck shell=bash
# Stages "run" (boot out/streamcd.iso in QEMU with out/store served on
# 127.0.0.1) and "serve" (serve out/store to real machines on the LAN).
# Sourced by build.sh, which provides log, die, install_missing, TOP and OUT.

RUN_PACKAGES=(qemu-system-x86 nginx-light busybox ovmf)

# What QEMU's user network answers to the guest for the store (the initrd's
# baked-in default mirror, see initrd/initrd.sh).
RUN_GUEST_STORE=10.0.2.100

# run_free_port: a TCP port on 127.0.0.1 nobody listens on.
run_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_httpd ADDR PORT NAME: nginx serving out/store, a child of this shell
# (so that it can be waited for) whose pid goes into RUN_HTTPD_PID.
# nginx, not busybox httpd: hcloop keeps its connections alive, and a
# server that closes each one costs a new guest connection per block
# (through QEMU's guestfwd, a new process too): measured in QEMU TCG,
# 16 MiB of the image streamed in 13.2 s from busybox httpd, 1.3 s from nginx.
run_httpd() {
	local addr=$1 port=$2 name=$3 dir=$OUT/log/$3-nginx
	[[ -d $OUT/store/index ]] || die "$name: $OUT/store has no images; run ./build.sh rootfs first"
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
				root $OUT/store;
			}
		}
	NGINX
	nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/stderr.log" 2>&1 &
	RUN_HTTPD_PID=$!
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

# run_qemu_args PORT: QEMU's command line for the boot. The guest's network
# is QEMU's user network restricted to one forwarded address: the store.
run_qemu_args() {
	local port=$1 iso=$OUT/streamcd.iso firmware=${STREAMCD_FIRMWARE:-bios} media=${STREAMCD_MEDIA:-cdrom}
	local args=(-machine q35 -m "${STREAMCD_MEM:-3072}" -smp 2 -no-reboot)
	if [[ -w /dev/kvm ]]; then
		args+=(-accel kvm -cpu host)
	else
		# TCG: SVM with nested paging gives Xen HAP; qemu64 because -cpu max
		# crashes a PV dom0.
		args+=(-accel tcg -cpu "qemu64,+svm,+npt,+rdrand")
	fi
	case $media in
	cdrom) args+=(-drive "file=$iso,media=cdrom,readonly=on,if=ide") ;;
	disk) args+=(-drive "file=$iso,format=raw,readonly=on,if=virtio") ;;
	*) die "run: STREAMCD_MEDIA=$media: cdrom or disk" ;;
	esac
	case $firmware in
	bios) ;;
	uefi)
		[[ -f /usr/share/OVMF/OVMF_CODE.fd ]] || die "run: UEFI needs Debian's ovmf package"
		cp /usr/share/OVMF/OVMF_VARS.fd "$OUT/log/run-ovmf-vars.fd"
		args+=(-drive "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd"
			-drive "if=pflash,format=raw,file=$OUT/log/run-ovmf-vars.fd")
		;;
	*) die "run: STREAMCD_FIRMWARE=$firmware: bios or uefi" ;;
	esac
	# guestfwd's "cmd:" runs one nc per guest connection ("tcp:" would be
	# one chardev connection, shared by all and gone after the first); nc's
	# own complaints would otherwise reach the guest as the server's answer.
	# shellcheck disable=SC2054 # commas inside one QEMU option
	args+=(-netdev "user,id=n0,restrict=on,guestfwd=tcp:$RUN_GUEST_STORE:80-cmd:sh -c 'exec busybox nc 127.0.0.1 $port 2>/dev/null'"
		-device e1000,netdev=n0 -display none -monitor none)
	if [[ -t 0 && -t 1 ]]; then
		# On a terminal Ctrl-A x quits QEMU.
		args+=(-serial mon:stdio)
	else
		args+=(-serial stdio)
	fi
	printf '%s\n' "${args[@]}"
}

stage_run() {
	local port httpd_pid qemu_args rc=0
	install_missing run "${RUN_PACKAGES[@]}"
	[[ -f $OUT/streamcd.iso ]] || die "run: no $OUT/streamcd.iso; run ./build.sh iso first"
	mkdir -p "$OUT/log"
	port=${STREAMCD_PORT:-$(run_free_port)}
	if [[ ${STREAMCD_RUN_SERVER:-1} == 0 ]]; then
		# For the test of a boot whose store is unreachable.
		log "run: STREAMCD_RUN_SERVER=0: no store server (port $port stays closed)"
		httpd_pid=
	else
		run_httpd 127.0.0.1 "$port" run
		httpd_pid=$RUN_HTTPD_PID
		# shellcheck disable=SC2064 # this run's pid
		trap "kill $httpd_pid 2>/dev/null || true" EXIT
		run_wait_port "$port"
	fi
	mapfile -t qemu_args < <(run_qemu_args "$port")
	log "run: store $OUT/store on 127.0.0.1:$port (guest: http://$RUN_GUEST_STORE); booting $OUT/streamcd.iso (${STREAMCD_FIRMWARE:-bios}, ${STREAMCD_MEDIA:-cdrom})"
	[[ ! -t 1 ]] || log "run: the serial console follows; log in as root; Ctrl-A x quits QEMU"
	if [[ -t 0 ]]; then
		qemu-system-x86_64 "${qemu_args[@]}" || rc=$?
	else
		# Driven by a script (or by nobody: stdin at its end): bounded.
		timeout "${STREAMCD_RUN_TIMEOUT:-1800}" qemu-system-x86_64 "${qemu_args[@]}" || rc=$?
	fi
	[[ -z $httpd_pid ]] || kill "$httpd_pid" 2>/dev/null || true
	trap - EXIT
	((rc != 124)) || die "run: stopped QEMU after STREAMCD_RUN_TIMEOUT=${STREAMCD_RUN_TIMEOUT:-1800} s"
	((rc == 0)) || die "run: QEMU exited with status $rc"
}

stage_serve() {
	local port=${STREAMCD_PORT:-8080} addr httpd_pid
	install_missing serve nginx-light
	mkdir -p "$OUT/log"
	run_httpd 0.0.0.0 "$port" serve
	httpd_pid=$RUN_HTTPD_PID
	# shellcheck disable=SC2064 # this run's pid
	trap "kill $httpd_pid 2>/dev/null || true" EXIT
	# Ctrl-C is how serving ends: not an error.
	trap 'log "serve: stopped"; exit 0' INT TERM
	run_wait_port "$port"
	log "serve: $OUT/store on port $port; boot machines with one of these on the boot line"
	log "serve: (Tab at the isolinux menu, e at the GRUB menu):"
	for addr in $(ip -4 -o addr show scope global | awk '{ sub(/\/.*/, "", $4); print $4 }'); do
		printf '    streamcd.url=http://%s:%s\n' "$addr" "$port"
	done
	log "serve: access log $OUT/log/serve-nginx/access.log; Ctrl-C stops"
	wait "$httpd_pid" || die "serve: nginx stopped; see $OUT/log/serve-nginx/error.log"
}
