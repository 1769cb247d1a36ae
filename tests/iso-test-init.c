// /init of the throw-away initramfs tests/iso-boot.sh boots: says on the
// console (and on COM1 on bare metal, where /dev/console is tty0) which
// kernel runs, under which hypervisor, with which command line and disks,
// then powers off so QEMU exits. With iso_test_stay on the command line it
// stays up instead: tests/guest-artifacts.sh boots it as a Xen guest, whose
// launcher must see it running.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

static void slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	buf[n > 0 ? n : 0] = 0;
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	if (fd >= 0)
		close(fd);
}

// disks: the block devices' names, space-separated (loop and ram left out).
static void disks(char *buf, size_t size)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	size_t n = 0;

	buf[0] = 0;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !strncmp(e->d_name, "loop", 4) || !strncmp(e->d_name, "ram", 3))
			continue;
		n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? " " : "", e->d_name);
		if (n >= size)
			break;
	}
	if (d)
		closedir(d);
}

static void report(const char *dev, const char *cmdline, const char *version, const char *hv,
		   const char *blk)
{
	int fd = open(dev, O_WRONLY | O_NOCTTY);

	if (fd < 0)
		return;
	dprintf(fd,
		"\r\nISO-TEST-INIT: cmdline: %s\r\nISO-TEST-INIT: %s\r\nISO-TEST-INIT: "
		"disks=%s\r\nISO-TEST-INIT: hypervisor=%s\r\n",
		cmdline, version, blk, hv);
	close(fd);
}

int main(void)
{
	char cmdline[2048], version[512], hv[64], blk[256];

	mkdir("/dev", 0755);
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
	mount("proc", "/proc", "proc", 0, 0);
	mount("sysfs", "/sys", "sysfs", 0, 0);
	slurp("/proc/cmdline", cmdline, sizeof cmdline);
	slurp("/proc/version", version, sizeof version);
	slurp("/sys/hypervisor/type", hv, sizeof hv);
	if (!hv[0])
		snprintf(hv, sizeof hv, "none");
	// Disks appear while init runs (a Xen guest's front-ends connect late).
	sleep(1);
	disks(blk, sizeof blk);
	report("/dev/console", cmdline, version, hv, blk);
	// Under Xen, COM1 belongs to Xen, and dom0 must not touch it.
	if (hv[0] == 'n')
		report("/dev/ttyS0", cmdline, version, hv, blk);
	if (strstr(cmdline, "iso_test_stay"))
		for (;;)
			pause();
	sleep(1);
	reboot(RB_POWER_OFF);
	return 0;
}
