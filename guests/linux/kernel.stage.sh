# shellcheck shell=bash
# Stage "kernel": two Linux kernels from Debian's linux-source-6.1, built
# from tinyconfig, the kernel's own Xen fragments and guests/linux/config/:
# the CD's (Xen dom0 and bare metal, config/*.config then config/cd/, with
# dom0's post-boot drivers as modules for the streamed root) and the
# guests' (PV, PVH and HVM domU: config/*.config alone, no modules; it
# reaches guests through the store, so its size is not the CD's).
# Sourced by build.sh, which provides log, die, run_logged, install_missing,
# TOP and OUT.
stage_register kernel 30 "two Linux 6.1 kernels from linux-source-6.1
(guests/linux/config/): the CD's (Xen dom0 and bare metal,
its modules for the dom0 root): out/kernel/; the guests'
(PV/PVH/HVM domU): out/guest-kernel/"
# Outputs: $OUT/kernel/{vmlinuz,config,release,modules/} (modules/: the
# tree modules_install writes, lib/modules/RELEASE with modules.dep) and
# $OUT/guest-kernel/{vmlinuz,config,vmlinux} (vmlinux: the ELF image with
# its symbol table: gdb reads a guest kernel's symbols from it, through
# gdbsx).

# What building needs beyond a Debian base system: libelf-dev for objtool,
# xz-utils for the source tarball and the XZ-compressed bzImage, kmod for
# depmod (modules_install). No libssl-dev: modules are not signed (the
# dom0 root they live in is, as a whole, by the store's key).
KERNEL_PACKAGES=(linux-source-6.1 build-essential bc bison flex libelf-dev xz-utils patch kmod)

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

# kernel_inputs_hash WHAT FRAGMENT...
kernel_inputs_hash() {
	local f
	{
		printf '%s\n' "$1"
		shift
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
# dependencies are unmet without a word, so compare what the fragments ask
# for ("=y", "=m", "is not set"; a later fragment's line wins, as in the
# merge) with the final .config.
kernel_check_config() {
	local config=$1 f line opt bad=()
	local -A want=() from=()
	shift
	for f in "$@"; do
		while IFS= read -r line; do
			if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=([ym])$ ]]; then
				want[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
			elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
				want[${BASH_REMATCH[1]}]=n
			else
				continue
			fi
			from[${BASH_REMATCH[1]}]=${f#"$TOP"/guests/linux/config/}
		done <"$f"
	done
	for opt in "${!want[@]}"; do
		case ${want[$opt]} in
		n) ! grep -Eq "^$opt=[ym]$" "$config" || bad+=("$opt (wanted off, ${from[$opt]})") ;;
		*) grep -qx "$opt=${want[$opt]}" "$config" || bad+=("$opt (wanted ${want[$opt]}, ${from[$opt]})") ;;
		esac
	done
	((${#bad[@]} == 0)) && return 0
	printf 'kernel: option not as asked: %s\n' "${bad[@]}" >&2
	return 1
}

# kernel_build WHAT WORK FRAGMENTS_ARRAY_NAME DIR: kernel WHAT ("cd" or
# "guest") built in the object directory WORK from the fragments; its
# outputs in DIR (see the top of this file).
kernel_build() {
	local what=$1 work=$2
	local -n frags=$3
	local dir=$4 src=$OUT/src/$KERNEL_SOURCE_PKG version start=$SECONDS release
	version=$(dpkg-query -W -f='${Version}' "$KERNEL_SOURCE_PKG")
	mkdir -p "$OUT/src" "$work"
	kernel_unpack "$version" "$src"
	# Objects from another source tree would be reused by make.
	if [[ ! -f $work/.streamcd-version || $(<"$work/.streamcd-version") != "$(kernel_tree_id "$version")" ]]; then
		rm -rf "$work"
		mkdir -p "$work"
		kernel_tree_id "$version" >"$work/.streamcd-version"
	fi
	log "kernel: configuring the $what kernel (tinyconfig + Xen fragments + ${#frags[@]} project fragments)"
	run_logged "kernel-$what-config" kernel_configure "$src" "$work" "${frags[@]}"
	kernel_check_config "$work/.config" "${frags[@]}" ||
		die "kernel: Kconfig dropped options of the $what kernel (unmet dependencies?); see $work/.config"
	cp "$work/.config" "$dir/config"
	if [[ $what == cd ]]; then
		log "kernel: building the CD kernel and its modules with $(nproc) jobs (log: $OUT/log/kernel-cd.log)"
		run_logged kernel-cd make -C "$src" O="$work" ARCH=x86_64 -j"$(nproc)" bzImage modules
		release=$(make -s -C "$src" O="$work" ARCH=x86_64 kernelrelease)
		# Stripped: the symbols stay in the build tree; depmod (run by
		# modules_install) writes modules.dep for modprobe in dom0.
		log_run kernel-cd make -C "$src" O="$work" ARCH=x86_64 INSTALL_MOD_STRIP=1 \
			INSTALL_MOD_PATH="$dir/modules" modules_install
		[[ -s $dir/modules/lib/modules/$release/modules.dep ]] ||
			die "kernel: modules_install wrote no modules.dep for $release"
		# The links point back into the build tree.
		rm -f "$dir/modules/lib/modules/$release/build" "$dir/modules/lib/modules/$release/source"
		printf '%s\n' "$release" >"$dir/release"
		log "kernel: CD kernel $release, $(stat -c %s "$work/arch/x86/boot/bzImage") bytes," \
			"$(find "$dir/modules" -name '*.ko' | wc -l) modules, built in $((SECONDS - start)) s"
	else
		log "kernel: building the guest kernel with $(nproc) jobs (log: $OUT/log/kernel-guest.log)"
		run_logged kernel-guest make -C "$src" O="$work" ARCH=x86_64 -j"$(nproc)" bzImage
		cp "$work/vmlinux" "$dir/vmlinux"
		log "kernel: guest kernel, $(stat -c %s "$work/arch/x86/boot/bzImage") bytes, built in $((SECONDS - start)) s"
	fi
	cp "$work/arch/x86/boot/bzImage" "$dir/vmlinuz"
}

stage_kernel() {
	# Ours are merged after the kernel's own fragments, so their choices
	# win; the CD's own fragments come last of all.
	local guest=("$TOP"/guests/linux/config/*.config) cd
	cd=("${guest[@]}" "$TOP"/guests/linux/config/cd/*.config)
	# systemd (rootfs.stage.sh's STREAMCD_ROOTFS_INIT) needs what cd.config
	# leaves out for sysvinit.
	[[ ${ROOTFS_INIT:-sysvinit} != systemd ]] || cd+=("$TOP"/guests/linux/config/cd/systemd/*.config)
	[[ -f ${guest[0]} && -f ${cd[-1]} ]] || die "kernel: no fragments in $TOP/guests/linux/config{,/cd}"
	kernel_install_deps
	stage_build kernel "$(kernel_inputs_hash cd "${cd[@]}")" "$OUT/kernel" vmlinuz config release modules \
		-- kernel_build cd "$OUT/kernel-build" cd
	stage_build guest-kernel "$(kernel_inputs_hash guest "${guest[@]}")" "$OUT/guest-kernel" \
		vmlinuz vmlinux config -- kernel_build guest "$OUT/guest-kernel-build" guest
}
