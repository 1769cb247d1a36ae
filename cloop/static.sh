# shellcheck shell=bash
# Stage "hcloop-static": hcloop as one fully static x86_64 binary for the
# initrd, which holds nothing but BusyBox and hcloop: no ld.so, no shared
# library, no NSS module. Debian's libcurl brings OpenSSL, Kerberos, LDAP,
# IDN and more, so a lean libcurl is built from Debian's curl source with
# HTTP and file:// only, and a smaller libzstd from Debian's libzstd
# source; fuse3, c-ares, zlib and libc come from Debian's .a files.
# Sourced by build.sh, which provides log, die, install_missing,
# ensure_deb_src, stage_uptodate, stage_cache, TOP and OUT.
# Outputs: $OUT/hcloop-static/hcloop (stripped), and the two libraries it
# links, $OUT/hcloop-static-libs/{include,lib}.

# The source packages of Debian 12 this was written and measured with.
HCLOOP_STATIC_CURL_VERSION=7.88.1-10+deb12u15
HCLOOP_STATIC_ZSTD_VERSION=1.5.4+dfsg2-5

# Debian's libzstd.a is built for speed (-O3) and with the decoders of
# pre-1.0 formats, which no hcloop store holds: without them and at -Os
# the binary is 330 KiB smaller (115 KiB after xz -9). Decompression runs
# at 670 MB/s instead of 2.2 GB/s on the build machine, far above what
# the network delivers.
HCLOOP_STATIC_ZSTD_MAKE=(ZSTD_LEGACY_SUPPORT=0 ZSTD_LIB_DICTBUILDER=0 ZSTD_LIB_DEPRECATED=0
	"CFLAGS=-Os -ffunction-sections -fdata-sections")

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
hcloop_static_libs_hash() {
	local p
	{
		printf '%s\n' "$HCLOOP_STATIC_CURL_VERSION"
		hcloop_static_curl_flags
		for p in $(hcloop_static_packages) libc6-dev gcc; do
			dpkg-query -W -f='${Package} ${Version}\n' "$p"
		done
		printf '%s\n' "$HCLOOP_STATIC_ZSTD_VERSION" "${HCLOOP_STATIC_ZSTD_MAKE[@]}"
		declare -f hcloop_static_fetch hcloop_static_curl_source hcloop_static_curl_build \
			hcloop_static_zstd_build
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

# hcloop_static_fetch PACKAGE VERSION VARIABLE DIR: Debian's source of
# exactly that version, patched, unpacked fresh into DIR; the downloaded
# files stay in out/src.
hcloop_static_fetch() {
	local pkg=$1 v=$2 var=$3 dir=$4 dsc got
	dsc="$OUT/src/${pkg}_${v#*:}.dsc"
	mkdir -p "$OUT/src"
	if ! (cd "$OUT/src" && apt-get source -q --download-only "$pkg=$v") >>"$OUT/log/hcloop-static.log" 2>&1; then
		tail -n 5 "$OUT/log/hcloop-static.log" >&2
		die "hcloop-static: apt-get source cannot give $pkg $v (it offers: $(apt-cache showsrc "$pkg" | sed -n 's/^Version: //p' | tr '\n' ' ')); set $var in cloop/static.sh to one of them and check the build flags still apply"
	fi
	got=$(sed -n 's/^Version: //p' "$dsc")
	[[ $got == "$v" ]] || die "hcloop-static: apt-get source gave $pkg $got, cloop/static.sh expects $v"
	rm -rf "$dir"
	hcloop_static_run dpkg-source -x "$dsc" "$dir"
}

# hcloop_static_curl_source DIR: curl with the patches debian/rules itself
# builds from.
hcloop_static_curl_source() {
	local dir=$1 v=$HCLOOP_STATIC_CURL_VERSION p
	hcloop_static_fetch curl "$v" HCLOOP_STATIC_CURL_VERSION "$dir"
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
	rm -rf "$build"
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

# hcloop_static_zstd_build SRC PREFIX: libzstd.a, its headers and a
# relocatable libzstd.pc, which pkg-config then finds before Debian's.
hcloop_static_zstd_build() {
	local src=$1 prefix=$2
	hcloop_static_run make -C "$src/lib" -j"$(nproc)" libzstd.a "${HCLOOP_STATIC_ZSTD_MAKE[@]}"
	hcloop_static_run make -C "$src/lib" install-static install-includes install-pc \
		"${HCLOOP_STATIC_ZSTD_MAKE[@]}" PREFIX="$prefix" LIBDIR="$prefix/lib"
	# shellcheck disable=SC2016 # a pkg-config variable, not a shell one
	sed -i 's|^prefix=.*|prefix=${pcfiledir}/../..|' "$prefix/lib/pkgconfig/libzstd.pc"
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
	local dest=$OUT/hcloop-static libs=$OUT/hcloop-static-libs work=$OUT/hcloop-static.work
	local src libs_hash hash pkgs start=$SECONDS
	mapfile -t pkgs < <(hcloop_static_packages)
	install_missing hcloop-static "${pkgs[@]}"
	libs_hash=$(hcloop_static_libs_hash)
	hash=$(hcloop_static_hash "$libs_hash")
	if stage_uptodate hcloop-static "$hash" "$dest" hcloop; then
		log "hcloop-static: up to date ($dest/hcloop, $(stat -c %s "$dest/hcloop") bytes)"
		return 0
	fi
	mkdir -p "$OUT/log"
	: >"$OUT/log/hcloop-static.log"
	if stage_uptodate hcloop-static-libs "$libs_hash" "$libs" lib/libcurl.a lib/libzstd.a; then
		log "hcloop-static: libcurl and libzstd in $libs are up to date"
	else
		ensure_deb_src hcloop-static
		rm -rf "$libs"
		src="$OUT/src/curl-${HCLOOP_STATIC_CURL_VERSION%-*}"
		log "hcloop-static: unpacking Debian's curl $HCLOOP_STATIC_CURL_VERSION into $src"
		hcloop_static_curl_source "$src"
		log "hcloop-static: building a static libcurl into $libs (log: $OUT/log/hcloop-static.log)"
		hcloop_static_curl_build "$src" "$work/curl" "$libs"
		src="$OUT/src/libzstd-${HCLOOP_STATIC_ZSTD_VERSION%-*}"
		log "hcloop-static: building libzstd $HCLOOP_STATIC_ZSTD_VERSION into $libs: ${HCLOOP_STATIC_ZSTD_MAKE[*]}"
		hcloop_static_fetch libzstd "$HCLOOP_STATIC_ZSTD_VERSION" HCLOOP_STATIC_ZSTD_VERSION "$src"
		hcloop_static_zstd_build "$src" "$libs"
		stage_cache hcloop-static-libs "$libs_hash" "$libs"
	fi
	log "hcloop-static: linking cloop/build-static/hcloop"
	# Relinked every time: the link's warnings are checked below.
	rm -f "$TOP/cloop/build-static/hcloop"
	make -C "$TOP/cloop" static STATIC_PREFIX="$libs" -j"$(nproc)" >"$OUT/log/hcloop-static-link.log" 2>&1 || {
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
