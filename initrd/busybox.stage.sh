# shellcheck shell=bash
# The initrd's BusyBox: static, built from Debian 12's busybox source
# package with only the applets initrd/busybox.config asks for, where
# Debian's busybox-static has 269, built for a whole system.
# Sourced by build.sh, which provides log, die, install_missing,
# ensure_deb_src, stage_build, TOP and OUT.
# Entry point: initrd_busybox_build DEST. Output kept in $OUT/busybox/:
# busybox (stripped) and config (the resolved .config).

# The busybox source package of Debian 12 busybox.config was written for:
# a new one may add options (allnoconfig leaves them off) or applets.
INITRD_BUSYBOX_VERSION=1:1.35.0-4+deb12u1

# dpkg-dev: dpkg-source; bzip2 and xz-utils: the orig and debian tarballs;
# build-essential: gcc and make; musl-tools: the C library it is linked
# with (see initrd_busybox_build); linux-libc-dev: the kernel's headers.
INITRD_BUSYBOX_PACKAGES=(build-essential dpkg-dev bzip2 xz-utils musl-tools linux-libc-dev)

# Exactly what "busybox --list" must print: a lost applet breaks /init or
# the rescue shell, an extra one means the config no longer says all.
INITRD_BUSYBOX_APPLETS=(
	'[' ash awk basename cat chmod clear cp cttyhack cut date df dirname
	dmesg du echo env false find free grep head hexdump hostname id ip kill
	less ln losetup ls mkdir mke2fs mknod mount mv nc nslookup pidof ping poweroff
	printf ps reboot reset rm sed seq setsid sh sha256sum sleep sort stty
	switch_root sync tail test tr true udhcpc umount uname uniq vi wc wget
	which xargs
)

# Static glibc warns at link time about functions that need NSS modules or
# ld.so at run time, which the initrd has not; musl has no such functions,
# so any such warning means the wrong libc was linked and fails the build.
INITRD_BUSYBOX_LINK_ALLOWED=()

# Anything that changes the binary: the source, our config and code, and
# the toolchain and libc.a it is linked with.
initrd_busybox_hash() {
	local fns p
	mapfile -t fns < <(declare -F | awk '$3 ~ /^initrd_busybox_/ { print $3 }')
	{
		printf '%s\n' "$INITRD_BUSYBOX_VERSION" "${INITRD_BUSYBOX_APPLETS[*]}" \
			"${INITRD_BUSYBOX_LINK_ALLOWED[*]}"
		declare -f "${fns[@]}"
		cat "$TOP/initrd/busybox.config"
		for p in gcc musl-dev linux-libc-dev binutils make; do
			dpkg-query -W -f='${Package} ${Version}\n' "$p"
		done
	} | sha256sum | cut -d ' ' -f 1
}

# initrd_busybox_make SRC BUILD EPOCH ARG...: BusyBox's make, out of tree.
# Its kconfig writes the date into autoconf.h and the banner: EPOCH instead
# of now, so that two builds give the same bytes. Not exported: build.sh's
# other stages read SOURCE_DATE_EPOCH too.
# musl instead of static glibc: the same 68 applets in 419,680 bytes
# instead of 1,449,496 (221,672 instead of 592,460 with xz): glibc's static
# regex, stdio, locale and NSS code was most of the binary, and the ISO has
# a 6.5 MB budget. musl-gcc sees only musl's headers, so the kernel's
# (linux/, asm/, asm-generic/) come from a directory of links to them.
initrd_busybox_make() {
	local src=$1 build=$2 epoch=$3 kh=$2/kernel-headers d
	shift 3
	if [[ ! -d $kh ]]; then
		mkdir -p "$kh"
		for d in /usr/include/linux /usr/include/asm-generic /usr/include/x86_64-linux-gnu/asm; do
			ln -s "$d" "$kh/${d##*/}"
		done
	fi
	log_run busybox env KCONFIG_NOTIMESTAMP=1 SOURCE_DATE_EPOCH="$epoch" \
		make -C "$build" -f "$src/Makefile" KBUILD_SRC="$src" CC="musl-gcc -isystem $kh" \
		HOSTCC=gcc "$@"
}

# initrd_busybox_config SRC BUILD EPOCH FRAGMENT: BusyBox's kconfig answers "n"
# to every bool in allnoconfig even when KCONFIG_ALLCONFIG names it, so the
# allnoconfig-plus-fragment config is made by hand: allyesconfig lists every
# symbol, each bool is turned off unless the fragment sets it, and oldconfig
# settles dependencies and choices (the fragment picks ash; the others take
# their defaults). Options new to oldconfig stay at their defaults.
initrd_busybox_config() {
	local src=$1 build=$2 epoch=$3 fragment=$4
	mkdir -p "$build"
	initrd_busybox_make "$src" "$build" "$epoch" allyesconfig
	# shellcheck disable=SC2016 # an awk program
	awk '
		NR == FNR {
			if (match($0, /^CONFIG_[A-Za-z0-9_]+=/)) want[substr($0, 1, RLENGTH - 1)] = $0
			else if (match($0, /^# CONFIG_[A-Za-z0-9_]+ is not set$/)) want[$2] = $0
			next
		}
		match($0, /^CONFIG_[A-Za-z0-9_]+=/) {
			sym = substr($0, 1, RLENGTH - 1)
			if (sym in want) next
			if ($0 ~ /=y$/) $0 = "# " sym " is not set"
		}
		/^# CONFIG_[A-Za-z0-9_]+ is not set$/ && ($2 in want) { next }
		{ print }
		END { for (sym in want) print want[sym] }
	' "$fragment" "$build/.config" >"$build/.config.new"
	mv "$build/.config.new" "$build/.config"
	initrd_busybox_make "$src" "$build" "$epoch" oldconfig < <(yes "")
	initrd_busybox_check_config "$build/.config" "$fragment"
}

# initrd_busybox_check_config CONFIG FRAGMENT: Kconfig drops an option
# whose dependencies are unmet without a word; compare every fragment line.
initrd_busybox_check_config() {
	local config=$1 fragment=$2 line sym want have bad=()
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			sym=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			sym=${BASH_REMATCH[1]} want=n
		else
			continue
		fi
		have=$(sed -n "s/^$sym=//p" "$config")
		[[ -n $have ]] || have=n
		[[ $have == "$want" ]] || bad+=("$sym (wanted $want, got $have)")
	done <"$fragment"
	((${#bad[@]} == 0)) || die "busybox: Kconfig did not keep ${bad[*]} (see $config)"
}

# initrd_busybox_check BINARY LINKLOG: static, no unexplained NSS call,
# exactly the applets wanted. LINKLOG: BusyBox's trylink keeps the final
# link's messages in busybox_unstripped.out, not in make's output.
initrd_busybox_check() {
	local bin=$1 linklog=$2 fn bad=() got want
	! grep -q 'GLIBC' "$bin" || die "busybox: $bin has glibc in it, not musl"
	if readelf -lW "$bin" | grep -q INTERP || readelf -dW "$bin" | grep -q NEEDED; then
		die "busybox: $bin is not statically linked"
	fi
	while read -r fn; do
		[[ " ${INITRD_BUSYBOX_LINK_ALLOWED[*]} " == *" $fn "* ]] || bad+=("$fn")
	done < <(sed -n "s/.*warning: Using '\([^']*\)' in statically linked.*/\1/p" "$linklog" | sort -u)
	((${#bad[@]} == 0)) ||
		die "busybox: the link used static glibc's ${bad[*]}, which need NSS or ld.so at run time (see $linklog)"
	got=$("$bin" --list | LC_ALL=C sort | tr '\n' ' ')
	want=$(printf '%s\n' "${INITRD_BUSYBOX_APPLETS[@]}" | LC_ALL=C sort | tr '\n' ' ')
	[[ $got == "$want" ]] ||
		die "busybox: applets differ from INITRD_BUSYBOX_APPLETS: $(diff <(tr ' ' '\n' <<<"$want") <(tr ' ' '\n' <<<"$got") | sed -n 's/^\([<>]\) /\1/p' | tr '\n' ' ')(<: missing, >: extra)"
}

# initrd_busybox_make_into DIR: busybox and its resolved config in DIR.
initrd_busybox_make_into() {
	local dir=$1 work=$OUT/busybox.work src build epoch start=$SECONDS
	mkdir -p "$OUT/log"
	: >"$OUT/log/busybox.log"
	ensure_deb_src busybox
	src=$work/src build=$work/build
	rm -rf "$work"
	mkdir -p "$work"
	log "busybox: unpacking Debian's busybox $INITRD_BUSYBOX_VERSION into $src"
	debian_source busybox busybox "$INITRD_BUSYBOX_VERSION" "$src" "INITRD_BUSYBOX_VERSION in initrd/busybox.stage.sh"
	epoch=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Timestamp)
	initrd_busybox_config "$src" "$build" "$epoch" "$TOP/initrd/busybox.config"
	log "busybox: building (log: $OUT/log/busybox.log)"
	# BusyBox's own flags (-Os, sections for --gc-sections) stay; the
	# build tag replaces the build date in the banner; the file prefix
	# map keeps the work directory's path out of the binary.
	initrd_busybox_make "$src" "$build" "$epoch" -j"$(nproc)" busybox SKIP_STRIP=y V=1 \
		BB_EXTRA_VERSION="Debian $INITRD_BUSYBOX_VERSION, streamcd" \
		CONFIG_EXTRA_CFLAGS="-ffile-prefix-map=$src=. -ffile-prefix-map=$build=."
	strip --strip-all -R .comment -R .note -o "$dir/busybox" "$build/busybox_unstripped"
	cp "$build/.config" "$dir/config"
	initrd_busybox_check "$dir/busybox" "$build/busybox_unstripped.out"
	rm -rf "$work"
	log "busybox: $(stat -c %s "$dir/busybox") bytes ($(xz -9e --check=crc32 -T1 -c "$dir/busybox" | wc -c) with xz -9e), ${#INITRD_BUSYBOX_APPLETS[@]} applets, in $((SECONDS - start)) s"
}

# initrd_busybox_build DEST: the static, stripped BusyBox into DEST
# (a file name), built only when initrd_busybox_hash changed.
initrd_busybox_build() {
	install_missing busybox "${INITRD_BUSYBOX_PACKAGES[@]}"
	stage_build busybox "$(initrd_busybox_hash)" "$OUT/busybox" busybox config -- initrd_busybox_make_into
	install -D -m 0755 "$OUT/busybox/busybox" "$1"
}
