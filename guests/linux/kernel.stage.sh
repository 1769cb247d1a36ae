# shellcheck shell=bash
# Stage "kernel": one Linux kernel from Debian's linux-source-6.1, built
# from tinyconfig, the kernel's own Xen fragments and guests/linux/config/.
# Sourced by build.sh, which provides log, die, run_logged, install_missing,
# TOP and OUT.
stage_register kernel 30 "one Linux 6.1 from linux-source-6.1 (guests/linux/config/):
Xen dom0, PV/PVH/HVM guest and bare metal: out/kernel/"
# Outputs: $OUT/kernel/vmlinuz (bzImage), $OUT/kernel/config and
# $OUT/kernel/vmlinux (the ELF image with its symbol table: gdb reads a
# guest kernel's symbols from it, through gdbsx).

# What building needs beyond a Debian base system: libelf-dev for objtool,
# xz-utils for the source tarball and the XZ-compressed bzImage. No
# libssl-dev, cpio or kmod: without module support nothing is signed,
# packed or installed as a module.
KERNEL_PACKAGES=(linux-source-6.1 build-essential bc bison flex libelf-dev xz-utils patch)

KERNEL_SOURCE_PKG=linux-source-6.1

# Our own changes to Debian's tree, applied in name order after unpacking;
# each says in its comment why upstream's behaviour does not suit a guest.
KERNEL_PATCHES=()
for _p in "$TOP"/guests/linux/patches/*.patch; do
	[[ -f $_p ]] && KERNEL_PATCHES+=("$_p")
done
unset _p

kernel_install_deps() {
	install_missing kernel "${KERNEL_PACKAGES[@]}"
}

# kernel_inputs_hash FRAGMENT...
kernel_inputs_hash() {
	local f
	{
		dpkg-query -W -f='${Version}\n' "$KERNEL_SOURCE_PKG"
		for f in "$@" "${KERNEL_PATCHES[@]}"; do
			printf '== %s\n' "${f##*/}"
			cat "$f"
		done
		declare -f kernel_build kernel_configure kernel_check_config
	} | sha256sum | cut -d' ' -f1
}

# kernel_tree_id VERSION: names the package version and our patches, so
# that a changed patch unpacks afresh (not patching a patched tree) and
# rebuilds every object (a dropped patch restores older mtimes, which make
# would take for up to date).
kernel_tree_id() {
	printf '%s %s\n' "$1" "$(cat /dev/null "${KERNEL_PATCHES[@]}" | sha256sum | cut -c1-16)"
}

# kernel_unpack VERSION SRC: a tree of exactly that package version, with
# exactly our patches, at SRC.
kernel_unpack() {
	local version=$1 src=$2 tmp p marker
	marker=$(kernel_tree_id "$version")
	if [[ -f $src/.streamcd-version && $(<"$src/.streamcd-version") == "$marker" ]]; then
		return 0
	fi
	log "kernel: unpacking $KERNEL_SOURCE_PKG $version into $src"
	rm -rf "$src"
	tmp=$(mktemp -d "$OUT/src/.unpack.XXXXXX")
	tar -xf "/usr/src/$KERNEL_SOURCE_PKG.tar.xz" -C "$tmp" ||
		{ rm -rf "$tmp"; die "kernel: unpacking /usr/src/$KERNEL_SOURCE_PKG.tar.xz failed"; }
	for p in "${KERNEL_PATCHES[@]}"; do
		log "kernel: applying ${p#"$TOP"/}"
		patch -d "$tmp/$KERNEL_SOURCE_PKG" -p1 --forward --batch --quiet <"$p" ||
			{ rm -rf "$tmp"; die "kernel: ${p#"$TOP"/} does not apply to $KERNEL_SOURCE_PKG $version"; }
	done
	printf '%s\n' "$marker" >"$tmp/$KERNEL_SOURCE_PKG/.streamcd-version"
	mv "$tmp/$KERNEL_SOURCE_PKG" "$src"
	rmdir "$tmp"
}

# kernel_configure SRC WORK FRAGMENT...: .config in WORK. Runs under
# run_logged's "if", where set -e is off, hence the explicit returns.
kernel_configure() {
	local src=$1 work=$2
	shift 2
	make -C "$src" O="$work" ARCH=x86_64 tinyconfig || return 1
	# merge_config.sh puts its temporary files in the current directory.
	(cd "$work" && "$src/scripts/kconfig/merge_config.sh" -m -O "$work" "$work/.config" \
		"$src/kernel/configs/xen.config" "$src/arch/x86/configs/xen.config" "$@") || return 1
	make -C "$src" O="$work" ARCH=x86_64 olddefconfig
}

# kernel_check_config CONFIG FRAGMENT...: Kconfig drops an option whose
# dependencies are unmet without a word, so compare every "=y" and every
# "is not set" the fragments ask for with the final .config.
kernel_check_config() {
	local config=$1 f line opt bad=()
	shift
	for f in "$@"; do
		while IFS= read -r line; do
			if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=y$ ]]; then
				opt=${BASH_REMATCH[1]}
				grep -qx "$opt=y" "$config" || bad+=("$opt (wanted y, ${f##*/})")
			elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
				opt=${BASH_REMATCH[1]}
				! grep -Eq "^$opt=[ym]$" "$config" || bad+=("$opt (wanted off, ${f##*/})")
			fi
		done <"$f"
	done
	((${#bad[@]} == 0)) && return 0
	printf 'kernel: option not as asked: %s\n' "${bad[@]}" >&2
	return 1
}

# kernel_build FRAGMENTS_ARRAY_NAME DIR: vmlinuz, vmlinux and config in DIR.
kernel_build() {
	local -n frags=$1
	local dir=$2 src=$OUT/src/$KERNEL_SOURCE_PKG work=$OUT/kernel-build version start=$SECONDS
	version=$(dpkg-query -W -f='${Version}' "$KERNEL_SOURCE_PKG")
	mkdir -p "$OUT/src" "$work"
	kernel_unpack "$version" "$src"
	# Objects from another source tree would be reused by make.
	if [[ ! -f $work/.streamcd-version || $(<"$work/.streamcd-version") != "$(kernel_tree_id "$version")" ]]; then
		rm -rf "$work"
		mkdir -p "$work"
		kernel_tree_id "$version" >"$work/.streamcd-version"
	fi
	log "kernel: configuring (tinyconfig + Xen fragments + ${#frags[@]} project fragments)"
	run_logged kernel-config kernel_configure "$src" "$work" "${frags[@]}"
	kernel_check_config "$work/.config" "${frags[@]}" ||
		die "kernel: Kconfig dropped options (unmet dependencies?); see $work/.config"
	log "kernel: building bzImage with $(nproc) jobs (log: $OUT/log/kernel.log)"
	run_logged kernel make -C "$src" O="$work" ARCH=x86_64 -j"$(nproc)" bzImage
	cp "$work/arch/x86/boot/bzImage" "$dir/vmlinuz"
	cp "$work/vmlinux" "$dir/vmlinux"
	cp "$work/.config" "$dir/config"
	log "kernel: $(stat -c %s "$dir/vmlinuz") bytes, built in $((SECONDS - start)) s"
}

stage_kernel() {
	# Ours are merged after the kernel's own fragments, so their choices win.
	local fragments=("$TOP"/guests/linux/config/*.config)
	[[ -f ${fragments[0]} ]] || die "kernel: no fragments in $TOP/guests/linux/config"
	kernel_install_deps
	stage_build kernel "$(kernel_inputs_hash "${fragments[@]}")" "$OUT/kernel" vmlinuz vmlinux config \
		-- kernel_build fragments
}
