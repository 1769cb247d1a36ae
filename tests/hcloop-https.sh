#!/bin/bash
# https:// and HTTP/2: nginx with TLS and http2 on 127.0.0.1 and a
# certificate made here. hcloop must check the server's certificate
# (refuse it unknown, accept it with --cacert) and multiplex its block
# requests over HTTP/2.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hcloop-lib.sh"
requires nginx openssl fusermount3

fixture_load
work=
tmpdir_make work
store_make "$work/store"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 \
	-keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.log"
port=$(free_port)
mkdir -p "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid "$work/nginx/nginx.pid";
error_log "$work/nginx/error.log" warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    default_type application/octet-stream;
$(nginx_temps "$work/nginx/tmp")
    server {
        listen 127.0.0.1:$port ssl http2;
        ssl_certificate "$work/cert.pem";
        ssl_certificate_key "$work/key.pem";
        root "$work/store";
    }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" </dev/null &
cleanup_add "kill $! 2>/dev/null"
url=https://127.0.0.1:$port
for _ in $(seq 50); do curl -k -s -o /dev/null "$url/" && break; sleep 0.1; done

mkdir "$work/m"
rc=0
"$HCLOOP" mount -t 2 -R 0 "$url" root "$work/m" 2>"$work/refused.log" || rc=$?
expect "unknown certificate: mount refused" 1 "$rc"
if grep -qi "certificate" "$work/refused.log"; then pass "refusal names the certificate"; else
	fail "refusal: $(cat "$work/refused.log")"; fi

mnt=
hc_mount mnt "$url" --cacert "$work/cert.pem"
expect "https: whole image right" "$FIX_SHA" "$(sha256sum <"$mnt/root" | cut -d' ' -f1)"
fetched=$(stat_of "$mnt" fetched_blocks)
expect "every block came over HTTP/2" "$fetched" "$(stat_of "$mnt" fetched_http2)"
hc_umount "$mnt"
if "$HCLOOP" verify -q --cacert "$work/cert.pem" "$url" root >"$work/verify.log"; then
	pass "verify over https"
else
	fail "verify over https: $(cat "$work/verify.log")"
fi
finish
