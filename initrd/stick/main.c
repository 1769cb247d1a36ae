/* streamcd-stick: finds the USB stick the ISO was written to and the cache
 * partition in its free space, making the partition on the first boot.
 * The initrd calls it; table.c does the tables, this file the devices. */
#include "cleanup.h"
#include "table.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_NODISK = 2, EXIT_NOROOM = 3 };

static const char usage[] =
    "Usage: streamcd-stick [OPTIONS] [DISK]\n"
    "\n"
    "Finds the disk a streamcd ISO was written to (a USB stick: a writable block\n"
    "device whose ISO 9660 volume ID is --volid), or takes DISK (a block device\n"
    "or an image file), and the cache partition in the space after the image.\n"
    "When there is none it adds one, to the MBR (which Linux reads) and to the\n"
    "GPT (whose backup moves to the disk's end), and tells the kernel. Prints\n"
    "  PARTITION SLOT START SECTORS new|existing\n"
    "(PARTITION is - for an image file; START and SECTORS in 512-byte sectors).\n"
    "A new partition holds no filesystem yet: mke2fs it.\n"
    "\n"
    "  --volid ID     the ISO volume ID to look for (default STREAMCD)\n"
    "  --min-mib N    the smallest cache partition worth making (default 64)\n"
    "  --wait S       how long USB disks may take to appear (default 10)\n"
    "  --expect       the image was booted from a disk (the boot loader says so):\n"
    "                 look for it all --wait seconds, not only while a USB disk is\n"
    "                 being probed\n"
    "  -n, --dry-run  say what would be done, write nothing\n"
    "  -q, --quiet    no messages but errors\n"
    "  -h, --help\n"
    "\n"
    "Exit status: 0 done, 1 error, 2 no writable streamcd disk found (none, or\n"
    "the one holding the image is read-only), 3 no room for a cache (or no free\n"
    "MBR slot).\n";

struct opts {
	const char *volid;
	uint64_t min_sectors;
	unsigned wait; /* seconds */
	int expect;
	int dry_run;
};

static int quiet;

#define note(...)                                                                                  \
	do {                                                                                       \
		if (!quiet)                                                                        \
			fprintf(stderr, "streamcd-stick: " __VA_ARGS__);                           \
	} while (0)
#define fail(...) fprintf(stderr, "streamcd-stick: " __VA_ARGS__)

/* snprintf that reports a cut: a cut path names the wrong file. */
static int pathf(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

/* Milliseconds: no floating point, whose printf and parsing would be most
 * of a static binary. */
static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The size of a block device or a file. */
static int size_of(int fd, uint64_t *ret)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, ret) < 0 ? -errno : 0;
	*ret = (uint64_t)st.st_size;
	return 0;
}

/* A whole disk that could be a stick: no loop, RAM, optical, device-mapper
 * or RAID device. */
static int candidate(const char *name)
{
	static const char *const skip[] = { "loop", "ram", "zram", "sr", "dm-", "md", "nbd", "fd" };

	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (!strncmp(name, skip[i], strlen(skip[i])))
			return 0;
	return 1;
}

/* A write-protected stick, or the ISO on a read-only disk: it holds the
 * image but can keep no cache. */
static int read_only(const char *name)
{
	char path[300], ro[8];

	return pathf(path, sizeof(path), "/sys/block/%s/ro", name) < 0 ||
	       read_text(path, ro, sizeof(ro)) < 0 || strcmp(ro, "0");
}

static int holds_image(const char *dev, const char *volid)
{
	STICK_CLEANUP struct stick s = { 0 };
	char why[256];
	uint64_t size;
	CLEANUP_CLOSE int fd = open(dev, O_RDONLY | O_CLOEXEC);

	return fd >= 0 && size_of(fd, &size) == 0 &&
	       stick_read(fd, size, &s, why, sizeof(why)) == 0 && !strcmp(s.volid, volid);
}

/* DIR has a "block" directory within DEPTH levels: a USB mass storage
 * interface whose disk the SCSI layer has made. */
static int has_block_dir(const char *dir, int depth)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int found = 0;

	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		char sub[1024];

		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		if (!strcmp(de->d_name, "block"))
			found = 1;
		else if (depth > 0 && pathf(sub, sizeof(sub), "%s/%s", dir, de->d_name) == 0)
			found = has_block_dir(sub, depth - 1);
	}
	closedir(d);
	return found;
}

/* A USB mass storage interface without its disk yet: a stick that is
 * still being probed (usb-storage waits for it to settle first). */
static int usb_disk_pending(void)
{
	struct dirent *de;
	DIR *d = opendir("/sys/bus/usb/devices");
	int pending = 0;

	if (!d)
		return 0;
	while (!pending && (de = readdir(d))) {
		char path[600], cls[8];

		if (pathf(path, sizeof(path), "/sys/bus/usb/devices/%s/bInterfaceClass",
			  de->d_name) < 0 ||
		    read_text(path, cls, sizeof(cls)) < 0 || strcmp(cls, "08"))
			continue;
		pathf(path, sizeof(path), "/sys/bus/usb/devices/%s", de->d_name);
		pending = !has_block_dir(path, 5);
	}
	closedir(d);
	return pending;
}

/* The first disk holding the image, in RET; -EROFS if that disk is
 * read-only. USB disks appear a while after the kernel starts: keep looking
 * while one is being probed, and for at least a second (its hub may not
 * have reported it yet); with --expect, as long as --wait allows, since a
 * busy machine may take longer than that to even see the stick. */
static int find_disk(const struct opts *o, char *ret, size_t len)
{
	uint64_t t0 = now_ms();

	for (;;) {
		struct dirent *de;
		DIR *d = opendir("/sys/block");

		if (!d) {
			fail("cannot list /sys/block: %s\n", strerror(errno));
			return -errno;
		}
		while ((de = readdir(d))) {
			char dev[300];

			if (de->d_name[0] == '.' || !candidate(de->d_name) ||
			    pathf(dev, sizeof(dev), "/dev/%s", de->d_name) < 0)
				continue;
			if (holds_image(dev, o->volid)) {
				/* de lives in d: read it before closedir. */
				int ro = read_only(de->d_name);

				snprintf(ret, len, "%s", dev);
				closedir(d);
				return ro ? -EROFS : 0;
			}
		}
		closedir(d);
		if (now_ms() - t0 >= o->wait * 1000ull ||
		    (!o->expect && now_ms() - t0 >= 1000 && !usb_disk_pending()))
			return -ENODEV;
		usleep(200 * 1000);
	}
}

/* /dev/NAME of partition SLOT of block device DISK, from sysfs. */
static int partition_node(const char *disk, int slot, char *ret, size_t len)
{
	const char *base = strrchr(disk, '/') ? strrchr(disk, '/') + 1 : disk;
	char dir[300];
	struct dirent *de;
	DIR *d;

	if (pathf(dir, sizeof(dir), "/sys/block/%s", base) < 0)
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[700], num[16];

		if (de->d_name[0] == '.')
			continue;
		if (pathf(path, sizeof(path), "%s/%s/partition", dir, de->d_name) == 0 &&
		    read_text(path, num, sizeof(num)) == 0 && atoi(num) == slot) {
			/* de lives in d's buffer: named before closedir frees it. */
			int r = pathf(ret, len, "/dev/%s", de->d_name);

			closedir(d);
			return r;
		}
	}
	closedir(d);
	return -ENOENT;
}

/* The kernel read the table at boot, before the partition existed:
 * BLKPG adds just it, which works even while other partitions are in
 * use (BLKRRPART would not). EBUSY: it knows it already. */
static int tell_kernel(int fd, const struct stick_part *p)
{
	struct blkpg_partition part = {
		.start = (long long)(p->start * STICK_SECTOR),
		.length = (long long)(p->sectors * STICK_SECTOR),
		.pno = p->mbr_slot,
	};
	struct blkpg_ioctl_arg arg = {
		.op = BLKPG_ADD_PARTITION,
		.datalen = sizeof(part),
		.data = &part,
	};

	if (ioctl(fd, BLKPG, &arg) < 0 && errno != EBUSY)
		return -errno;
	return 0;
}

/* A version 4 GUID for the GPT entry. Early in a boot the kernel's pool
 * may not be ready: then the time and the disk's size make it unique
 * enough for a partition on one stick. */
static void new_guid(uint8_t g[16], uint64_t salt)
{
	if (getrandom(g, 16, GRND_NONBLOCK) != 16) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		for (int i = 0; i < 8; i++) {
			g[i] = (uint8_t)((uint64_t)t.tv_nsec >> (8 * (i % 4))) ^
			       (uint8_t)(salt >> (8 * i));
			g[8 + i] = (uint8_t)((uint64_t)t.tv_sec >> (8 * (i % 8)));
		}
	}
	g[7] = (uint8_t)((g[7] & 0x0f) | 0x40);
	g[8] = (uint8_t)((g[8] & 0x3f) | 0x80);
}

static int run(const struct opts *o, const char *disk)
{
	STICK_CLEANUP struct stick s = { 0 };
	char why[512], node[300] = "-";
	uint8_t guid[16];
	uint64_t size;
	struct stat st;
	const char *state = "existing";
	int r, blk;
	CLEANUP_CLOSE int fd = open(disk, (o->dry_run ? O_RDONLY : O_RDWR) | O_CLOEXEC);

	if (fd < 0) {
		fail("cannot open %s: %s\n", disk, strerror(errno));
		return 1;
	}
	blk = fstat(fd, &st) == 0 && S_ISBLK(st.st_mode);
	if ((r = size_of(fd, &size)) < 0 || (r = stick_read(fd, size, &s, why, sizeof(why))) < 0) {
		fail("%s: %s\n", disk, r == -EINVAL ? why : strerror(-r));
		return 1;
	}
	if (why[0])
		note("%s: %s\n", disk, why);
	if (!s.have_cache) {
		r = stick_plan(&s, o->min_sectors, why, sizeof(why));
		if (r < 0) {
			fail("%s: no cache partition: %s\n", disk, why);
			return r == -ENOSPC || r == -EMLINK ? EXIT_NOROOM : 1;
		}
		note("%s: %s partition %d for the cache: %llu MiB from %llu MiB%s\n", disk,
		     o->dry_run ? "would add" : "adding", s.cache.mbr_slot,
		     (unsigned long long)(s.cache.sectors >> 11),
		     (unsigned long long)(s.cache.start >> 11),
		     s.have_gpt && s.cache.gpt_slot ? " (MBR and GPT)" : " (MBR)");
		if (o->dry_run)
			return 0;
		new_guid(guid, size);
		if ((r = stick_write(fd, &s, guid, why, sizeof(why))) < 0) {
			fail("%s: %s\n", disk, why);
			return 1;
		}
		state = "new";
	}
	if (blk && !o->dry_run && (r = tell_kernel(fd, &s.cache)) < 0) {
		fail("%s: the kernel refused partition %d: %s\n", disk, s.cache.mbr_slot,
		     strerror(-r));
		return 1;
	}
	if (blk && (r = partition_node(disk, s.cache.mbr_slot, node, sizeof(node))) < 0 &&
	    !o->dry_run) {
		fail("%s: no device for partition %d: %s\n", disk, s.cache.mbr_slot, strerror(-r));
		return 1;
	}
	printf("%s %d %llu %llu %s\n", node, s.cache.mbr_slot, (unsigned long long)s.cache.start,
	       (unsigned long long)s.cache.sectors, state);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "volid", required_argument, NULL, 'V' },
		{ "min-mib", required_argument, NULL, 'm' },
		{ "wait", required_argument, NULL, 'w' },
		{ "expect", no_argument, NULL, 'e' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .volid = "STREAMCD", .min_sectors = 64 << 11, .wait = 10 };
	char disk[300], *end;
	int c;

	while ((c = getopt_long(argc, argv, "nqh", longs, NULL)) != -1) {
		switch (c) {
		case 'V':
			o.volid = optarg;
			break;
		case 'm':
			errno = 0;
			o.min_sectors = strtoull(optarg, &end, 10) << 11;
			if (errno || *end || !*optarg) {
				fail("--min-mib %s: not a number of MiB\n", optarg);
				return 1;
			}
			break;
		case 'w':
			errno = 0;
			o.wait = (unsigned)strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || o.wait > 3600) {
				fail("--wait %s: not a number of seconds\n", optarg);
				return 1;
			}
			break;
		case 'e':
			o.expect = 1;
			break;
		case 'n':
			o.dry_run = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 1;
		}
	}
	if (argc - optind > 1) {
		fail("one DISK at most (see --help)\n");
		return 1;
	}
	if (optind < argc)
		return run(&o, argv[optind]);
	switch (find_disk(&o, disk, sizeof(disk))) {
	case 0:
		break;
	case -EROFS:
		note("the %s image is on %s, which is read-only: no cache there\n", o.volid, disk);
		return EXIT_NODISK;
	case -ENODEV:
		if (o.expect)
			note("no disk holding the %s image showed up within %u s\n", o.volid,
			     o.wait);
		else
			note("no writable disk holds the %s image (booted from a CD?)\n", o.volid);
		return EXIT_NODISK;
	default:
		return 1;
	}
	note("the image is on %s\n", disk);
	return run(&o, disk);
}
