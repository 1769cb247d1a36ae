# shellcheck shell=bash
# Stage "xen": the Xen hypervisor from Debian's xen source package, release
# and debug builds (hypervisor/*.config), and gdbsx. Sourced by build.sh.
# Outputs in $OUT/xen/: xen.gz, xen-debug.gz, their .config files, the debug
# build's xen-syms (xen-debug-syms) and gdbsx.
stage_register xen 20 "Xen from Debian's xen source package: release and debug
hypervisors (hypervisor/*.config) and gdbsx: out/xen/"

# The Xen stage: the version of Debian's xen source package that
# hypervisor/*.config were written for, and the packages its build needs
# beyond a C toolchain (flex and bison: Xen's kconfig; python3: generated
# headers; build-essential brings dpkg-dev for dpkg-source; zopfli: the
# smaller gzip, see xen_hypervisor; patch: hypervisor/patches).
XEN_VERSION=4.17.5+72-g01140da4e8-1
XEN_PACKAGES=(build-essential flex bison python3 zopfli patch)

# Our changes to Debian's tree (hypervisor/patches/, applied in name order
# after Debian's own); each says at its top why.
XEN_PATCHES=()
for _p in "$TOP"/hypervisor/patches/*.patch; do
	[[ -f $_p ]] && XEN_PATCHES+=("$_p")
done
unset _p

# Everything that decides what out/xen/ holds; a change to any of it rebuilds.
xen_inputs_hash() {
	local fns
	mapfile -t fns < <(declare -F | awk '$3 ~ /^xen_/ { print $3 }')
	{
		printf '%s\n' "$XEN_VERSION" "${XEN_PACKAGES[*]}"
		declare -f "${fns[@]}"
		cat "$TOP/hypervisor/release.config" "$TOP/hypervisor/debug.config"
		cat /dev/null "${XEN_PATCHES[@]}"
		gcc --version | head -n 1
		ld --version | head -n 1
	} | sha256sum | cut -d ' ' -f 1
}

# xen_check_config CONFIG FRAGMENT...: Kconfig drops an option whose
# dependencies are unmet without a word, so compare every line of the
# fragments (the last one for a symbol wins, as in Kconfig) with the result.
xen_check_config() {
	local config=$1 line sym have bad=()
	shift
	local -A want=()
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			want[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			want[${BASH_REMATCH[1]}]=n
		fi
	done < <(cat "$@")
	for sym in $(printf '%s\n' "${!want[@]}" | sort); do
		have=$(sed -n "s/^$sym=//p" "$config")
		[[ -n $have ]] || have=n
		[[ $have == "${want[$sym]}" ]] || bad+=("$sym (wanted ${want[$sym]}, got $have)")
	done
	((${#bad[@]} == 0)) || die "xen: $config: Kconfig did not keep ${bad[*]}"
	for sym in $(printf '%s\n' "${!want[@]}" | sort); do
		printf '%s=%s ' "${sym#CONFIG_}" "${want[$sym]}"
	done
}

# xen_check_syms XEN_SYMS SYMBOL...: the code behind options that have no
# Kconfig symbol of their own (the IOMMU drivers) really got linked in.
xen_check_syms() {
	local syms=$1 s missing=()
	shift
	for s in "$@"; do
		nm "$syms" | grep -Eq " [TtDdRrBb] $s\$" || missing+=("$s")
	done
	((${#missing[@]} == 0)) || die "xen: $syms lacks ${missing[*]}"
}

# xen_hypervisor SRC BUILD FRAGMENT...: an out-of-tree build of SRC/xen in
# BUILD, configured from Xen's defaults plus the fragments.
xen_hypervisor() {
	local src=$1 build=$2 epoch
	shift 2
	epoch=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Timestamp)
	mkdir -p "$build"
	cat "$@" >"$build/.config"
	# The build host, user and date would otherwise end up in the binary
	# (xl info) and make every build differ.
	local args=(
		-C "$src/xen" O="$build" PYTHON=/usr/bin/python3
		XEN_BUILD_DATE="$(LC_ALL=C date -u -d "@$epoch")"
		XEN_BUILD_TIME="$(LC_ALL=C date -u -d "@$epoch" +%T)"
		XEN_WHOAMI=streamcd XEN_DOMAIN=streamcd XEN_BUILD_HOST=streamcd
		# Optimised for size, after Xen's -O2: the CD has to hold two
		# hypervisors, and mboot.c32 reads nothing smaller than gzip.
		# Measured here: release 1,100,443 -> ~895,000 bytes, debug
		# 1,141,363 -> ~1,000,000 (zopfli), about 345 KB of the ISO.
		EXTRA_CFLAGS_XEN_CORE=-Os
	)
	# Xen's own flags must win over anything in the environment.
	log_run xen env -u CFLAGS -u CPPFLAGS -u LDFLAGS make "${args[@]}" olddefconfig
	log_run xen env -u CFLAGS -u CPPFLAGS -u LDFLAGS make "${args[@]}" -j"$(nproc)"
	# mboot.c32 inflates only gzip, so the format stays; zopfli writes a
	# gzip stream ~3% smaller than gzip -9 (about 38 KiB per hypervisor on
	# the CD), deterministically and without a name or date in the header.
	# It writes $build/xen.gz itself: log_run owns stdout.
	rm -f "$build/xen.gz"
	log_run xen zopfli --gzip -i15 "$build/xen"
}

# gdbsx talks to /dev/xen/privcmd with Xen's public headers only, so of the
# tools tree it needs just tools/include and no ./configure; the tools'
# Makefiles insist on config/Tools.mk existing, and an empty one gives
# gdbsx everything it uses from Config.mk's defaults.
xen_gdbsx() {
	local src=$1
	local args=(
		PYTHON=/usr/bin/python3
		EXTRA_CFLAGS_XEN_TOOLS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
		PREPEND_LDFLAGS_XEN_TOOLS="$(dpkg-buildflags --get LDFLAGS)"
	)
	echo '# streamcd: gdbsx needs nothing ./configure finds' >"$src/config/Tools.mk"
	log_run xen make -C "$src/tools/include" "${args[@]}" xen-foreign xen-dir
	log_run xen make -C "$src/tools/debugger/gdbsx" "${args[@]}" -j"$(nproc)"
}

# xen_build DIR: both hypervisors, their configurations, the debug one's
# symbols (for gdb on its serial gdb stub) and gdbsx, into DIR.
xen_build() {
	local dir=$1 work="$OUT/xen.work" src opts p
	local rel="$TOP/hypervisor/release.config" dbg="$TOP/hypervisor/debug.config"
	mkdir -p "$OUT/log"
	: >"$OUT/log/xen.log"
	ensure_deb_src xen
	install_missing xen "${XEN_PACKAGES[@]}"
	src="$OUT/src/xen-$(sed 's/^[0-9]*://; s/-[^-]*$//' <<<"$XEN_VERSION")"
	log "xen: unpacking Debian's xen $XEN_VERSION into $src"
	debian_source xen xen "$XEN_VERSION" "$src" "XEN_VERSION in hypervisor/xen.stage.sh"
	for p in "${XEN_PATCHES[@]}"; do
		log "xen: applying ${p#"$TOP"/}"
		log_run xen patch -d "$src" -p1 --forward --batch -i "$p"
	done
	rm -rf "$work"
	mkdir -p "$work"
	log "xen: building the release hypervisor (log: $OUT/log/xen.log)"
	xen_hypervisor "$src" "$work/release" "$rel"
	opts=$(xen_check_config "$work/release/.config" "$rel")
	log "xen: release .config verified: $opts"
	log "xen: building the debug hypervisor"
	xen_hypervisor "$src" "$work/debug" "$rel" "$dbg"
	opts=$(xen_check_config "$work/debug/.config" "$rel" "$dbg")
	log "xen: debug .config verified: $opts"
	xen_check_syms "$work/release/xen-syms" intel_iommu_init_ops amd_iommu_init \
		iommu_do_pci_domctl shadow_enable gdbsx_guest_mem_io
	xen_check_syms "$work/debug/xen-syms" intel_iommu_init_ops amd_iommu_init \
		iommu_do_pci_domctl shadow_enable gdbsx_guest_mem_io __trap_to_gdb
	log "xen: building gdbsx"
	xen_gdbsx "$src"
	cp "$work/release/xen.gz" "$dir/xen.gz"
	cp "$work/debug/xen.gz" "$dir/xen-debug.gz"
	cp "$work/release/.config" "$dir/xen.config"
	cp "$work/debug/.config" "$dir/xen-debug.config"
	cp "$work/debug/xen-syms" "$dir/xen-debug-syms"
	strip -o "$dir/gdbsx" "$src/tools/debugger/gdbsx/gdbsx"
	rm -rf "$work"
}

stage_xen() {
	local start=$SECONDS outputs=(xen.gz xen-debug.gz xen.config xen-debug.config xen-debug-syms gdbsx)
	stage_build xen "$(xen_inputs_hash)" "$OUT/xen" "${outputs[@]}" -- xen_build
	((STAGE_BUILT)) || return 0
	log "xen: done in $((SECONDS - start)) s: $(cd "$OUT/xen" && du -b "${outputs[@]}" | awk '{ printf "%s %d KiB  ", $2, ($1 + 1023) / 1024 }')"
}
