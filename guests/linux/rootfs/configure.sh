#!/bin/sh
# Runs inside the debootstrapped tree (chroot) as the rootfs stage's second
# half: sh configure.sh INIT XEN_VERSION, with /streamcd holding this
# directory's package lists and overlays. apt's lists come from the build
# machine, already in place, so nothing here asks the mirror what exists.
set -eu
init=$1 xen_version=$2
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
apt_get() { apt-get -o APT::Install-Recommends=false -o Dpkg::Options::=--force-confold "$@"; }

# Nothing installed here may start a daemon in the build machine's chroot.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d

# Documentation, manuals and translations are a third of the tree and no
# dom0 reads them; copyright files stay (the licences ask for them).
cat >/etc/dpkg/dpkg.cfg.d/streamcd-nodoc <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CFG

# The toolstack must match the hypervisor we build (out/xen), not whatever
# newer xen the security suite carries: libxenctrl speaks the hypervisor's
# own domctl/sysctl interface version.
cat >/etc/apt/preferences.d/streamcd-xen <<CFG
Package: src:xen
Pin: version $xen_version
Pin-Priority: 1001
CFG

pkgs=$(cat /streamcd/packages "/streamcd/packages.$init" | sed 's/#.*//')
# shellcheck disable=SC2086 # one word per package
apt_get -y full-upgrade
# shellcheck disable=SC2086
apt_get -y install $pkgs
apt_get -y autoremove --purge
# What debootstrap unpacked before the exclusions existed.
find /usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

cp -a /streamcd/overlay/. /
# Debian's xen init script starts a QEMU as dom0's own disk back-end at
# every boot: about 25 MB of the root image read over the network before
# dom0 is ready, for nothing: libxl starts a QEMU for each guest that needs
# one when the guest starts. The script sets QEMU after reading
# /etc/default/xen, so only an edit here can turn it off; its qemu_start
# skips a QEMU that is not executable.
sed -i 's|^QEMU=/usr/libexec/xen-qemu-system-i386$|QEMU=/nonexistent/streamcd-no-dom0-qemu|' /etc/init.d/xen
grep -q '^QEMU=/nonexistent/streamcd-no-dom0-qemu$' /etc/init.d/xen || {
	echo "configure.sh: /etc/init.d/xen has no QEMU= line to turn off dom0's QEMU" >&2
	exit 1
}
# The kernel asks /sbin/modprobe for what a module it loads needs (a crypto
# algorithm, an nftables expression): BusyBox's, which reads depmod's
# modules.dep and modules.alias; Debian's kmod links libcrypto, 4.5 MB read
# from the store the first time it runs (guests/linux/README.md).
ln -sf /bin/busybox /usr/sbin/modprobe
# umountnfs.sh and older tools still read /etc/mtab.
ln -sf ../proc/self/mounts /etc/mtab
cp -a "/streamcd/overlay.$init/." /

# A live CD: root logs in at the console without a password.
passwd -d root >/dev/null

case $init in
sysvinit)
	# The RTC belongs to the machine the CD boots on: hwclock.sh would
	# write the system time into it at every shutdown.
	update-rc.d -f hwclock.sh remove >/dev/null
	update-rc.d streamcd-ready defaults >/dev/null
	# sysvinit 3 warns at every boot when this is missing.
	mkdir -p /etc/inittab.d
	;;
systemd)
	systemctl enable streamcd-ready.service
	# No timers: nothing on the CD fetches, cleans up or phones home.
	for t in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
		e2scrub_all.timer fstrim.timer; do
		systemctl mask "$t"
	done
	# systemd makes a machine id at boot when the file is empty.
	: >/etc/machine-id
	;;
esac

# The files only a guest's screen shown on the PC's reads (streamcd-view's
# library and what it alone pulls in): the stage stores them after
# everything dom0's boot reads (squashfs-sort.py).
apt_get -s purge --autoremove libvncclient1 | sed -n 's/^Purg \([^ :]*\).*/\1/p' >/streamcd/screen-only.packages
grep -qx libvncclient1 /streamcd/screen-only.packages || {
	echo "configure.sh: apt would not name libvncclient1's own packages" >&2
	exit 1
}
# shellcheck disable=SC2046 # one word per package
dpkg -L $(cat /streamcd/screen-only.packages) >/streamcd/screen-only.files

# State that would differ from one build to the next, or leak the build
# machine: apt's lists and caches, logs, the chroot's policy-rc.d. The
# downloaded .debs stay for the stage to keep for the next build.
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
	/var/lib/dpkg/*-old /var/cache/ldconfig/aux-cache /usr/sbin/policy-rc.d \
	/etc/resolv.conf /etc/ssh/ssh_host_* /var/log/apt /var/log/alternatives.log \
	/var/log/dpkg.log /var/log/bootstrap.log
find /var/log -type f -exec truncate -s 0 {} +
# The initrd's udhcpc writes the resolver; an empty file gives it a place.
: >/etc/resolv.conf
