# shellcheck shell=bash
# Stage "hcloop-static": hcloop as one fully static x86_64 binary for the
# initrd, which holds nothing but BusyBox and hcloop: no ld.so, no shared
# library, no NSS module. Debian's libcurl brings OpenSSL, Kerberos, LDAP,
# IDN and more, so a lean libcurl is built from Debian's curl source with
# HTTP and file:// only; everything else comes from Debian's .a files.
# Sourced by build.sh, which provides log, die, install_missing,
# ensure_deb_src, stage_uptodate, stage_cache, TOP and OUT.
# Outputs: $OUT/hcloop-static/hcloop (stripped), and the libcurl it links,
# $OUT/hcloop-static-curl/{include,lib}.

# The curl source package of Debian 12 this was written and measured with.
HCLOOP_STATIC_CURL_VERSION=7.88.1-10+deb12u15

# HTTPS in the initrd: "none" (default) or "mbedtls". Block contents are
# checked against their SHA-256 from the index anyway, and TLS costs more
# than it is worth here: mbedTLS (libmbedtls-dev 2.28) adds 576 KiB to the
# stripped binary, 222 KiB after xz -9, about a sixth of the initrd's budget.
HCLOOP_STATIC_TLS=${STREAMCD_HCLOOP_TLS:-none}

# autoconf, automake and libtool: Debian's patches touch configure.ac and
# Makefile.am, so the build system is regenerated as debian/rules does.
# libc-ares-dev: host names must resolve with no NSS modules around (static
# glibc's getaddrinfo dlopens libnss_*.so); c-ares reads /etc/hosts and
# /etc/resolv.conf itself, and Debian ships it as libcares.a.
HCLOOP_STATIC_PACKAGES=(build-essential pkg-config dpkg-dev autoconf automake libtool file xz-utils
	libfuse3-dev libzstd-dev zlib1g-dev libc-ares-dev)

# Link-time warnings static glibc gives for functions that need NSS or
# ld.so at run time, and why none of them can run in hcloop. Any other such
# warning fails the build: it would be a call that breaks in the initrd.
#  dlopen: libfuse's high-level API loads "-o modules=" this way; helper.c
#    drags fuse.c in, but hcloop uses only the low-level API.
#  getservbyname: ares_getaddrinfo with a service name; curl passes the
#    port as a number with ARES_AI_NUMERICSERV.
#  getservbyport_r: ares_getnameinfo, which curl never calls.
HCLOOP_STATIC_LINK_ALLOWED=(dlopen getservbyname getservbyport_r)

hcloop_static_curl_flags() {
	local flags=(
		--disable-shared --enable-static --disable-dependency-tracking
		--enable-ares --disable-threaded-resolver
		--enable-http --enable-file --disable-ftp --disable-ldap --disable-ldaps
		--disable-rtsp --disable-proxy --disable-dict --disable-telnet --disable-tftp
		--disable-pop3 --disable-imap --disable-smb --disable-smtp --disable-gopher
		--disable-mqtt --disable-websockets
		--disable-manual --disable-libcurl-option --disable-verbose --disable-sspi
		--disable-crypto-auth --disable-ntlm --disable-ntlm-wb --disable-tls-srp
		--disable-unix-sockets --disable-cookies --disable-http-auth --disable-doh
		--disable-mime --disable-dateparse --disable-netrc --disable-progress-meter
		--disable-alt-svc --disable-headers-api --disable-hsts --disable-get-easy-options
		--without-zlib --without-brotli --without-zstd --without-libpsl --without-libgsasl
		--without-libssh2 --without-libssh --without-librtmp --without-libidn2
		--without-nghttp2 --without-ngtcp2 --without-nghttp3 --without-quiche
		--without-msh3 --without-hyper
	)
	case $HCLOOP_STATIC_TLS in
	none) flags+=(--without-ssl --without-ca-bundle --without-ca-path) ;;
	mbedtls) flags+=(--with-mbedtls --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --without-ca-path) ;;
	*) die "hcloop-static: STREAMCD_HCLOOP_TLS=$HCLOOP_STATIC_TLS: want none or mbedtls" ;;
	esac
	printf '%s\n' "${flags[@]}" "CFLAGS=-Os -ffunction-sections -fdata-sections"
}

hcloop_static_packages() {
	printf '%s\n' "${HCLOOP_STATIC_PACKAGES[@]}"
	[[ $HCLOOP_STATIC_TLS == none ]] || echo "libmbedtls-dev"
}

# Appends to the stage's one log; on failure shows its tail.
hcloop_static_run() {
	if ! "$@" >>"$OUT/log/hcloop-static.log" 2>&1; then
		tail -n 30 "$OUT/log/hcloop-static.log" >&2
		die "stage hcloop-static failed; full log: $OUT/log/hcloop-static.log"
	fi
}

# The libraries' versions matter as much as our flags: a new libc-ares-dev
# or libc6-dev changes the binary.
hcloop_static_curl_hash() {
	local p
	{
		printf '%s\n' "$HCLOOP_STATIC_CURL_VERSION"
		hcloop_static_curl_flags
		for p in $(hcloop_static_packages) libc6-dev gcc; do
			dpkg-query -W -f='${Package} ${Version}\n' "$p"
		done
		declare -f hcloop_static_curl_source hcloop_static_curl_build
	} | sha256sum | cut -d ' ' -f 1
}

hcloop_static_hash() {
	{
		printf '%s\n' "$1"
		declare -f stage_hcloop_static hcloop_static_check_link
		printf '%s\n' "${HCLOOP_STATIC_LINK_ALLOWED[@]}"
		(cd "$TOP/cloop" && sha256sum src/*.c src/*.h Makefile)
	} | sha256sum | cut -d ' ' -f 1
}

# hcloop_static_curl_source DIR: Debian's curl source, with the patches
# debian/rules itself builds from, unpacked fresh into DIR; the downloaded
# files stay in out/src.
hcloop_static_curl_source() {
	local dir=$1 v=$HCLOOP_STATIC_CURL_VERSION dsc got p
	dsc="$OUT/src/curl_${v#*:}.dsc"
	mkdir -p "$OUT/src"
	if ! (cd "$OUT/src" && apt-get source -q --download-only "curl=$v") >>"$OUT/log/hcloop-static.log" 2>&1; then
		tail -n 5 "$OUT/log/hcloop-static.log" >&2
		die "hcloop-static: apt-get source cannot give curl $v (it offers: $(apt-cache showsrc curl | sed -n 's/^Version: //p' | tr '\n' ' ')); set HCLOOP_STATIC_CURL_VERSION in cloop/static.sh to one of them and check the configure flags still apply"
	fi
	got=$(sed -n 's/^Version: //p' "$dsc")
	[[ $got == "$v" ]] || die "hcloop-static: apt-get source gave curl $got, cloop/static.sh expects $v"
	rm -rf "$dir"
	hcloop_static_run dpkg-source -x "$dsc" "$dir"
	# The last two patches rename the library for Debian's GnuTLS and NSS
	# flavours; debian/rules pops them before its OpenSSL build, as we do.
	[[ $(grep -v '^#' "$dir/debian/patches/series" | grep . | tail -n 2 | tr '\n' ' ') == "90_gnutls.patch 99_nss.patch " ]] ||
		die "hcloop-static: curl $v's patch series no longer ends with 90_gnutls.patch 99_nss.patch"
	for p in 99_nss 90_gnutls; do
		hcloop_static_run patch -d "$dir" -R -p1 -i "debian/patches/$p.patch"
	done
	hcloop_static_run env -C "$dir" autoreconf -fi
}

# hcloop_static_curl_build SRC BUILD PREFIX: only the library and its
# headers; the curl tool and the documentation are not needed.
hcloop_static_curl_build() {
	local src=$1 build=$2 prefix=$3 flags
	mapfile -t flags < <(hcloop_static_curl_flags)
	rm -rf "$build" "$prefix"
	mkdir -p "$build"
	log "hcloop-static: configure ${flags[*]}"
	hcloop_static_run env -C "$build" "$src/configure" --prefix="$prefix" "${flags[@]}"
	hcloop_static_run make -C "$build/lib" -j"$(nproc)"
	hcloop_static_run make -C "$build/lib" install
	hcloop_static_run make -C "$build/include" install
	hcloop_static_run make -C "$build" install-pkgconfigDATA
	rm -f "$prefix/lib/libcurl.la"
	# Relative to the .pc file, so that the prefix can move (the
	# machine-wide cache, another out/).
	# shellcheck disable=SC2016 # a pkg-config variable, not a shell one
	sed -i 's|^prefix=.*|prefix=${pcfiledir}/../..|' "$prefix/lib/pkgconfig/libcurl.pc"
}

# hcloop_static_check_link LOG BINARY: no dynamic section, and static
# glibc warned only about calls hcloop cannot make (see above).
hcloop_static_check_link() {
	local logf=$1 bin=$2 fn bad=()
	if readelf -lW "$bin" | grep -q INTERP || readelf -dW "$bin" | grep -q NEEDED; then
		die "hcloop-static: $bin is not statically linked"
	fi
	while read -r fn; do
		[[ " ${HCLOOP_STATIC_LINK_ALLOWED[*]} " == *" $fn "* ]] || bad+=("$fn")
	done < <(sed -n "s/.*warning: Using '\([^']*\)' in statically linked.*/\1/p" "$logf" | sort -u)
	((${#bad[@]} == 0)) ||
		die "hcloop-static: static glibc needs NSS or ld.so at run time for: ${bad[*]} (see $logf)"
}

stage_hcloop_static() {
	local dest=$OUT/hcloop-static curl=$OUT/hcloop-static-curl work=$OUT/hcloop-static.work
	local src curl_hash hash pkgs start=$SECONDS
	mapfile -t pkgs < <(hcloop_static_packages)
	install_missing hcloop-static "${pkgs[@]}"
	curl_hash=$(hcloop_static_curl_hash)
	hash=$(hcloop_static_hash "$curl_hash")
	if stage_uptodate hcloop-static "$hash" "$dest" hcloop; then
		log "hcloop-static: up to date ($dest/hcloop, $(stat -c %s "$dest/hcloop") bytes)"
		return 0
	fi
	mkdir -p "$OUT/log"
	: >"$OUT/log/hcloop-static.log"
	if stage_uptodate hcloop-static-curl "$curl_hash" "$curl" lib/libcurl.a include/curl/curl.h; then
		log "hcloop-static: libcurl in $curl is up to date"
	else
		ensure_deb_src hcloop-static
		src="$OUT/src/curl-${HCLOOP_STATIC_CURL_VERSION%-*}"
		log "hcloop-static: unpacking Debian's curl $HCLOOP_STATIC_CURL_VERSION into $src"
		hcloop_static_curl_source "$src"
		log "hcloop-static: building a static libcurl into $curl (log: $OUT/log/hcloop-static.log)"
		hcloop_static_curl_build "$src" "$work/curl" "$curl"
		stage_cache hcloop-static-curl "$curl_hash" "$curl"
	fi
	log "hcloop-static: linking cloop/build-static/hcloop"
	# Relinked every time: the link's warnings are checked below.
	rm -f "$TOP/cloop/build-static/hcloop"
	make -C "$TOP/cloop" static CURL_PREFIX="$curl" -j"$(nproc)" >"$OUT/log/hcloop-static-link.log" 2>&1 || {
		tail -n 30 "$OUT/log/hcloop-static-link.log" >&2
		die "hcloop-static: make static failed; full log: $OUT/log/hcloop-static-link.log"
	}
	hcloop_static_check_link "$OUT/log/hcloop-static-link.log" "$TOP/cloop/build-static/hcloop"
	rm -rf "$work" "$dest.new"
	mkdir -p "$dest.new"
	strip --strip-all -R .comment -o "$dest.new/hcloop" "$TOP/cloop/build-static/hcloop"
	"$dest.new/hcloop" --version >/dev/null 2>&1 || die "hcloop-static: $dest.new/hcloop --version fails"
	rm -rf "$dest"
	mv "$dest.new" "$dest"
	stage_cache hcloop-static "$hash" "$dest"
	log "hcloop-static: $dest/hcloop, $(stat -c %s "$dest/hcloop") bytes ($(xz -9 -c "$dest/hcloop" | wc -c) with xz -9), TLS: $HCLOOP_STATIC_TLS, in $((SECONDS - start)) s"
}
