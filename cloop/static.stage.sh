# shellcheck shell=bash
# Stage "hcloop-static": hcloop as one fully static x86_64 binary for the
# initrd, which holds nothing but BusyBox and hcloop: no ld.so, no shared
# library, no NSS module. It is linked against musl (musl-tools), not
# glibc: static glibc was about 950 KB of the 1.6 MB binary and the ISO has
# a 6.5 MB budget. Debian ships no musl builds of the libraries, so every
# one is built here with musl-gcc from Debian's source packages: a lean
# libcurl (HTTP and file:// only; Debian's brings OpenSSL, Kerberos, LDAP,
# IDN and more), a smaller libzstd, c-ares, zlib, libfuse3 and libsodium
# (Ed25519 for signed indexes: mount --pubkey).
# Sourced by build.sh, which provides log, die, log_run, debian_source,
# install_missing, ensure_deb_src, stage_build, TOP and OUT.
# Outputs: $OUT/hcloop-static/hcloop (stripped), and the libraries it
# links, $OUT/hcloop-static-libs/{include,lib}.
stage_register hcloop-static 40 "a static hcloop with a lean libcurl from Debian's curl
source, for the initrd: out/hcloop-static/"

# The source packages of Debian 12 this was written and measured with.
HCLOOP_STATIC_CURL_VERSION=7.88.1-10+deb12u15
HCLOOP_STATIC_ZSTD_VERSION=1.5.4+dfsg2-5
HCLOOP_STATIC_CARES_VERSION=1.18.1-3
HCLOOP_STATIC_ZLIB_VERSION=1:1.2.13.dfsg-1
HCLOOP_STATIC_FUSE_VERSION=3.14.0-4
HCLOOP_STATIC_SODIUM_VERSION=1.0.18-1+deb12u1

# Every library is built for size and with sections, so that the final
# --gc-sections link drops what hcloop never calls.
HCLOOP_STATIC_CFLAGS="-Os -ffunction-sections -fdata-sections"

# musl-gcc sees only musl's headers; the kernel's (linux/, asm/,
# asm-generic/: libfuse's fuse_kernel.h needs linux/types.h) come from a
# directory of links to Debian's, as for the initrd's BusyBox.
HCLOOP_STATIC_KERNEL_HEADERS=(/usr/include/linux /usr/include/asm-generic /usr/include/x86_64-linux-gnu/asm)

# c-ares as debian/rules configures it (symbol hiding, no tests), static
# only. Curl resolves with it: musl's getaddrinfo would do too, but c-ares
# keeps curl's resolver asynchronous without a thread per lookup.
HCLOOP_STATIC_CARES_FLAGS=(--disable-shared --enable-static --disable-dependency-tracking
	--enable-symbol-hiding --disable-tests)

# libfuse as debian/rules configures it (useroot off), only the static
# library: no fusermount3 or mount.fuse3 (the initrd mounts as root, which
# libfuse does with mount(2) itself), no examples, no tests. Nothing in
# the source or its options needed changing for musl: musl has what
# libfuse's library uses (its dl and rt functions are in libc.a; dlopen
# fails, which only "-o modules=" of the high-level API would need), and
# libfuse's symbol versions are binutils' work, which a static link
# resolves to the default versions as with Debian's own libfuse3.a.
HCLOOP_STATIC_FUSE_FLAGS=(--default-library=static --buildtype=plain -Dutils=false -Dexamples=false
	-Dtests=false -Duseroot=false -Dinitscriptdir=)

# libsodium's minimal build: the high-level API only, which keeps
# crypto_sign (Ed25519); the initrd only verifies signatures. Its orig
# tarball is a git export without configure: autoreconf as debian/rules
# (dh --with autoreconf) does.
HCLOOP_STATIC_SODIUM_FLAGS=(--disable-shared --enable-static --disable-dependency-tracking
	--enable-minimal)

# Debian's libzstd.a is built for speed (-O3) and with the decoders of
# pre-1.0 formats, which no hcloop store holds: without them and at -Os
# the binary is 330 KiB smaller (115 KiB after xz -9). Decompression runs
# at 670 MB/s instead of 2.2 GB/s on the build machine, far above what
# the network delivers.
HCLOOP_STATIC_ZSTD_MAKE=(ZSTD_LEGACY_SUPPORT=0 ZSTD_LIB_DICTBUILDER=0 ZSTD_LIB_DEPRECATED=0
	"CFLAGS=$HCLOOP_STATIC_CFLAGS")

# HTTPS in the initrd: "none" (default) or "mbedtls". Block contents are
# checked against their SHA-256 from the index anyway, and TLS costs more
# than it is worth here: mbedTLS (libmbedtls-dev 2.28) adds 576 KiB to the
# stripped binary, 222 KiB after xz -9, about a sixth of the initrd's budget.
# Those figures are from the glibc build: "mbedtls" is refused until mbedTLS
# too is built with musl-gcc from its Debian source (libmbedtls-dev is a
# glibc build, and musl-gcc does not search /usr/include or Debian's libs).
HCLOOP_STATIC_TLS=${STREAMCD_HCLOOP_TLS:-none}

# autoconf, automake and libtool: Debian's patches touch curl's
# configure.ac and Makefile.am, so its build system is regenerated as
# debian/rules does. musl-tools: musl-gcc and musl-dev. meson and
# ninja-build: libfuse's build system. linux-libc-dev: the kernel headers.
HCLOOP_STATIC_PACKAGES=(build-essential pkg-config dpkg-dev autoconf automake libtool file xz-utils
	musl-tools meson ninja-build linux-libc-dev)

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
	printf '%s\n' "${flags[@]}" "CFLAGS=$HCLOOP_STATIC_CFLAGS"
}

hcloop_static_packages() {
	printf '%s\n' "${HCLOOP_STATIC_PACKAGES[@]}"
	[[ $HCLOOP_STATIC_TLS == none ]] || echo "libmbedtls-dev"
}

# The sources' versions matter as much as our flags, and so do the
# toolchain's: a new musl-dev or gcc changes the binary.
hcloop_static_libs_hash() {
	local p
	{
		printf '%s\n' "$HCLOOP_STATIC_CURL_VERSION" "$HCLOOP_STATIC_ZSTD_VERSION" \
			"$HCLOOP_STATIC_CARES_VERSION" "$HCLOOP_STATIC_ZLIB_VERSION" "$HCLOOP_STATIC_FUSE_VERSION" \
			"$HCLOOP_STATIC_SODIUM_VERSION" \
			"$HCLOOP_STATIC_CFLAGS" "${HCLOOP_STATIC_KERNEL_HEADERS[@]}" "${HCLOOP_STATIC_ZSTD_MAKE[@]}" \
			"${HCLOOP_STATIC_CARES_FLAGS[@]}" "${HCLOOP_STATIC_FUSE_FLAGS[@]}" \
			"${HCLOOP_STATIC_SODIUM_FLAGS[@]}"
		hcloop_static_curl_flags
		for p in $(hcloop_static_packages) musl-dev gcc binutils make; do
			dpkg-query -W -f='${Package} ${Version}\n' "$p"
		done
		declare -f debian_source log_run hcloop_static_cc hcloop_static_pc_relocate \
			hcloop_static_curl_source hcloop_static_curl_build hcloop_static_zstd_build \
			hcloop_static_zlib_build hcloop_static_autotools_build hcloop_static_cares_build \
			hcloop_static_fuse_build hcloop_static_sodium_build hcloop_static_libs_build \
			hcloop_static_srcdir
	} | sha256sum | cut -d ' ' -f 1
}

hcloop_static_hash() {
	{
		printf '%s\n' "$1"
		declare -f hcloop_static_build hcloop_static_check_link
		(cd "$TOP/cloop" && sha256sum src/*.c src/*.h Makefile)
	} | sha256sum | cut -d ' ' -f 1
}

# hcloop_static_cc WORK: the compiler every library is built with; makes
# WORK/kernel-headers on first use.
hcloop_static_cc() {
	local kh=$1/kernel-headers d
	if [[ ! -d $kh ]]; then
		mkdir -p "$kh"
		for d in "${HCLOOP_STATIC_KERNEL_HEADERS[@]}"; do
			[[ -d $d ]] || die "hcloop-static: no $d (linux-libc-dev)"
			ln -s "$d" "$kh/${d##*/}"
		done
	fi
	printf 'musl-gcc -isystem %s\n' "$kh"
}

# hcloop_static_pc_relocate PREFIX: the .pc files name PREFIX relative to
# themselves, so that it can move (the machine-wide cache, another out/).
hcloop_static_pc_relocate() {
	local prefix=$1
	# shellcheck disable=SC2016 # a pkg-config variable, not a shell one
	sed -i -e 's|^prefix=.*|prefix=${pcfiledir}/../..|' -e "s|$prefix|\${prefix}|g" \
		"$prefix"/lib/pkgconfig/*.pc
	! grep -l "$prefix" "$prefix"/lib/pkgconfig/*.pc >/dev/null ||
		die "hcloop-static: $prefix still named in $prefix/lib/pkgconfig"
}

# hcloop_static_curl_source DIR: curl with the patches debian/rules itself
# builds from.
hcloop_static_curl_source() {
	local dir=$1 v=$HCLOOP_STATIC_CURL_VERSION p
	debian_source hcloop-static curl "$v" "$dir" "HCLOOP_STATIC_CURL_VERSION in cloop/static.stage.sh"
	# The last two patches rename the library for Debian's GnuTLS and NSS
	# flavours; debian/rules pops them before its OpenSSL build, as we do.
	[[ $(grep -v '^#' "$dir/debian/patches/series" | grep . | tail -n 2 | tr '\n' ' ') == "90_gnutls.patch 99_nss.patch " ]] ||
		die "hcloop-static: curl $v's patch series no longer ends with 90_gnutls.patch 99_nss.patch"
	for p in 99_nss 90_gnutls; do
		log_run hcloop-static patch -d "$dir" -R -p1 -i "debian/patches/$p.patch"
	done
	log_run hcloop-static env -C "$dir" autoreconf -fi
}

# hcloop_static_curl_build SRC BUILD PREFIX CC: only the library and its
# headers; the curl tool and the documentation are not needed. c-ares is
# found in PREFIX through PKG_CONFIG_LIBDIR (see hcloop_static_libs_build).
hcloop_static_curl_build() {
	local src=$1 build=$2 prefix=$3 cc=$4 flags
	mapfile -t flags < <(hcloop_static_curl_flags)
	rm -rf "$build"
	mkdir -p "$build"
	log "hcloop-static: configure ${flags[*]}"
	log_run hcloop-static env -C "$build" CC="$cc" "$src/configure" --prefix="$prefix" "${flags[@]}"
	log_run hcloop-static make -C "$build/lib" -j"$(nproc)"
	log_run hcloop-static make -C "$build/lib" install
	log_run hcloop-static make -C "$build/include" install
	log_run hcloop-static make -C "$build" install-pkgconfigDATA
	grep -q '^#define USE_ARES 1' "$build/lib/curl_config.h" ||
		die "hcloop-static: curl's configure did not take c-ares from $prefix"
}

# hcloop_static_zstd_build SRC PREFIX CC: libzstd.a, its headers and
# libzstd.pc.
hcloop_static_zstd_build() {
	local src=$1 prefix=$2 cc=$3
	log_run hcloop-static make -C "$src/lib" -j"$(nproc)" libzstd.a CC="$cc" "${HCLOOP_STATIC_ZSTD_MAKE[@]}"
	log_run hcloop-static make -C "$src/lib" install-static install-includes install-pc CC="$cc" \
		"${HCLOOP_STATIC_ZSTD_MAKE[@]}" PREFIX="$prefix" LIBDIR="$prefix/lib"
}

# hcloop_static_zlib_build SRC PREFIX CC: libz.a, zlib.h and zlib.pc;
# zlib's own configure, as debian/rules runs it, with --static.
hcloop_static_zlib_build() {
	local src=$1 prefix=$2 cc=$3
	log_run hcloop-static env -C "$src" CC="$cc" CFLAGS="$HCLOOP_STATIC_CFLAGS" \
		./configure --static --prefix="$prefix" --libdir="$prefix/lib"
	log_run hcloop-static make -C "$src" -j"$(nproc)" libz.a
	log_run hcloop-static make -C "$src" install
}

# hcloop_static_autotools_build SRC BUILD PREFIX CC SUBDIRS FLAGS...: an
# autotools library configured in BUILD with FLAGS; only SUBDIRS (relative
# to BUILD, space-separated: the library's and its headers' directories)
# are built and installed, then its .pc file.
hcloop_static_autotools_build() {
	local src=$1 build=$2 prefix=$3 cc=$4 subdirs=$5 d
	shift 5
	rm -rf "$build"
	mkdir -p "$build"
	log_run hcloop-static env -C "$build" CC="$cc" "$src/configure" --prefix="$prefix" \
		"$@" CFLAGS="$HCLOOP_STATIC_CFLAGS"
	for d in $subdirs; do
		log_run hcloop-static make -C "$build/$d" -j"$(nproc)"
		log_run hcloop-static make -C "$build/$d" install
	done
	log_run hcloop-static make -C "$build" install-pkgconfigDATA
}

# hcloop_static_cares_build SRC BUILD PREFIX CC: libcares.a, its headers
# and libcares.pc.
hcloop_static_cares_build() {
	hcloop_static_autotools_build "$1" "$2" "$3" "$4" "src/lib include" "${HCLOOP_STATIC_CARES_FLAGS[@]}"
	rm -f "$3/lib/libcares.la"
}

# hcloop_static_fuse_build SRC BUILD PREFIX CC: libfuse3.a, its headers
# and fuse3.pc.
hcloop_static_fuse_build() {
	local src=$1 build=$2 prefix=$3 cc=$4
	rm -rf "$build"
	log_run hcloop-static env CC="$cc" CFLAGS="$HCLOOP_STATIC_CFLAGS" \
		meson setup "$build" "$src" --prefix="$prefix" --libdir=lib "${HCLOOP_STATIC_FUSE_FLAGS[@]}"
	log_run hcloop-static ninja -C "$build" -j"$(nproc)"
	log_run hcloop-static meson install -C "$build"
}

# hcloop_static_sodium_build SRC BUILD PREFIX CC: libsodium.a, its
# headers (installed with the library) and libsodium.pc.
hcloop_static_sodium_build() {
	log_run hcloop-static env -C "$1" autoreconf -fi
	hcloop_static_autotools_build "$1" "$2" "$3" "$4" src/libsodium "${HCLOOP_STATIC_SODIUM_FLAGS[@]}"
}

# hcloop_static_libs_build PREFIX WORK: the six libraries, each from its
# pinned Debian source (unpacked fresh under out/src), into PREFIX.
hcloop_static_libs_build() {
	local prefix=$1 work=$2 cc src
	cc=$(hcloop_static_cc "$work")
	# Every configure and pkg-config sees only what is already in PREFIX,
	# never Debian's glibc builds of the same libraries.
	local -x PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig
	src=$(hcloop_static_srcdir zlib "$HCLOOP_STATIC_ZLIB_VERSION")
	log "hcloop-static: zlib $HCLOOP_STATIC_ZLIB_VERSION into $prefix"
	debian_source hcloop-static zlib "$HCLOOP_STATIC_ZLIB_VERSION" "$src" "HCLOOP_STATIC_ZLIB_VERSION in cloop/static.stage.sh"
	hcloop_static_zlib_build "$src" "$prefix" "$cc"
	src=$(hcloop_static_srcdir libzstd "$HCLOOP_STATIC_ZSTD_VERSION")
	log "hcloop-static: libzstd $HCLOOP_STATIC_ZSTD_VERSION into $prefix: ${HCLOOP_STATIC_ZSTD_MAKE[*]}"
	debian_source hcloop-static libzstd "$HCLOOP_STATIC_ZSTD_VERSION" "$src" "HCLOOP_STATIC_ZSTD_VERSION in cloop/static.stage.sh"
	hcloop_static_zstd_build "$src" "$prefix" "$cc"
	src=$(hcloop_static_srcdir fuse3 "$HCLOOP_STATIC_FUSE_VERSION")
	log "hcloop-static: libfuse3 $HCLOOP_STATIC_FUSE_VERSION into $prefix: ${HCLOOP_STATIC_FUSE_FLAGS[*]}"
	debian_source hcloop-static fuse3 "$HCLOOP_STATIC_FUSE_VERSION" "$src" "HCLOOP_STATIC_FUSE_VERSION in cloop/static.stage.sh"
	hcloop_static_fuse_build "$src" "$work/fuse3" "$prefix" "$cc"
	src=$(hcloop_static_srcdir c-ares "$HCLOOP_STATIC_CARES_VERSION")
	log "hcloop-static: c-ares $HCLOOP_STATIC_CARES_VERSION into $prefix (its configure takes minutes)"
	debian_source hcloop-static c-ares "$HCLOOP_STATIC_CARES_VERSION" "$src" "HCLOOP_STATIC_CARES_VERSION in cloop/static.stage.sh"
	hcloop_static_cares_build "$src" "$work/c-ares" "$prefix" "$cc"
	src=$(hcloop_static_srcdir libsodium "$HCLOOP_STATIC_SODIUM_VERSION")
	log "hcloop-static: libsodium $HCLOOP_STATIC_SODIUM_VERSION into $prefix: ${HCLOOP_STATIC_SODIUM_FLAGS[*]}"
	debian_source hcloop-static libsodium "$HCLOOP_STATIC_SODIUM_VERSION" "$src" "HCLOOP_STATIC_SODIUM_VERSION in cloop/static.stage.sh"
	hcloop_static_sodium_build "$src" "$work/libsodium" "$prefix" "$cc"
	src=$(hcloop_static_srcdir curl "$HCLOOP_STATIC_CURL_VERSION")
	log "hcloop-static: unpacking Debian's curl $HCLOOP_STATIC_CURL_VERSION into $src"
	hcloop_static_curl_source "$src"
	log "hcloop-static: building a static libcurl into $prefix"
	hcloop_static_curl_build "$src" "$work/curl" "$prefix" "$cc"
	rm -f "$prefix"/lib/*.la
	hcloop_static_pc_relocate "$prefix"
}

# hcloop_static_srcdir PACKAGE VERSION: where its source is unpacked.
hcloop_static_srcdir() {
	local v=${2#*:}
	printf '%s\n' "$OUT/src/$1-${v%-*}"
}

# hcloop_static_check_link LOG BINARY: no dynamic section and no glibc.
# Static glibc warns at link time about calls that need NSS or ld.so at
# run time; musl has no such calls, so any warning, like any glibc symbol
# version string, means glibc got into the link.
hcloop_static_check_link() {
	local logf=$1 bin=$2 fns
	if readelf -lW "$bin" | grep -q INTERP || readelf -dW "$bin" | grep -q NEEDED; then
		die "hcloop-static: $bin is not statically linked"
	fi
	! grep -q GLIBC "$bin" || die "hcloop-static: $bin has glibc in it, not musl"
	fns=$(sed -n "s/.*warning: Using '\([^']*\)' in statically linked.*/\1/p" "$logf" | sort -u | tr '\n' ' ')
	[[ -z $fns ]] || die "hcloop-static: the link used static glibc's ${fns}(see $logf)"
}

# hcloop_static_libs_make WORK PREFIX: the musl libraries into PREFIX.
hcloop_static_libs_make() {
	ensure_deb_src hcloop-static
	rm -rf "$1"
	log "hcloop-static: building the libraries with musl-gcc (log: $OUT/log/hcloop-static.log)"
	hcloop_static_libs_build "$2" "$1"
	rm -rf "$1"
}

# hcloop_static_build LIBS_HASH DIR: the static hcloop in DIR, linked
# against the musl libraries (built first when LIBS_HASH is new).
hcloop_static_build() {
	local libs=$OUT/hcloop-static-libs dir=$2
	mkdir -p "$OUT/log"
	: >"$OUT/log/hcloop-static.log"
	stage_build hcloop-static-libs "$1" "$libs" \
		lib/libcurl.a lib/libzstd.a lib/libcares.a lib/libz.a lib/libfuse3.a lib/libsodium.a \
		-- hcloop_static_libs_make "$OUT/hcloop-static.work"
	log "hcloop-static: linking cloop/build-static/hcloop"
	# Compiled and linked afresh every time: make cannot tell objects of
	# the glibc build (or of older libraries) from musl ones, and the
	# link's warnings are checked below.
	rm -rf "$TOP/cloop/build-static"
	make -C "$TOP/cloop" static STATIC_PREFIX="$libs" -j"$(nproc)" >"$OUT/log/hcloop-static-link.log" 2>&1 || {
		tail -n 30 "$OUT/log/hcloop-static-link.log" >&2
		die "hcloop-static: make static failed; full log: $OUT/log/hcloop-static-link.log"
	}
	hcloop_static_check_link "$OUT/log/hcloop-static-link.log" "$TOP/cloop/build-static/hcloop"
	strip --strip-all -R .comment -o "$dir/hcloop" "$TOP/cloop/build-static/hcloop"
	"$dir/hcloop" --version >/dev/null 2>&1 || die "hcloop-static: $dir/hcloop --version fails"
}

stage_hcloop_static() {
	local dest=$OUT/hcloop-static libs_hash pkgs start=$SECONDS
	# Checked here: the functions that read it run in subshells, where die
	# would not stop the stage.
	case $HCLOOP_STATIC_TLS in
	none) ;;
	mbedtls) die "hcloop-static: STREAMCD_HCLOOP_TLS=mbedtls: no musl build of mbedTLS yet (see cloop/static.stage.sh)" ;;
	*) die "hcloop-static: STREAMCD_HCLOOP_TLS=$HCLOOP_STATIC_TLS: want none" ;;
	esac
	mapfile -t pkgs < <(hcloop_static_packages)
	install_missing hcloop-static "${pkgs[@]}"
	libs_hash=$(hcloop_static_libs_hash)
	stage_build hcloop-static "$(hcloop_static_hash "$libs_hash")" "$dest" hcloop \
		-- hcloop_static_build "$libs_hash"
	((STAGE_BUILT)) || return 0
	log "hcloop-static: $dest/hcloop, $(stat -c %s "$dest/hcloop") bytes ($(xz -9 -c "$dest/hcloop" | wc -c) with xz -9), musl, TLS: $HCLOOP_STATIC_TLS, in $((SECONDS - start)) s"
}
