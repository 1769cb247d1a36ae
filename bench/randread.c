/* randread: 4 KiB random-read latency of one file.
 *
 *   randread [-n COUNT] [-s SEED] [-b BYTES] FILE
 *
 * Does COUNT (2000) preads of BYTES (4096) at random offsets aligned to BYTES
 * and prints "mode=... n=... p50_us=... p99_us=... max_us=...".
 * The file is opened with O_DIRECT where the file system allows it, so every
 * read reaches the file system (a FUSE mount with keep_cache would otherwise
 * answer repeated pages from the page cache).  Where O_DIRECT is refused, it
 * falls back to a buffered open with POSIX_FADV_RANDOM (no readahead) and a
 * POSIX_FADV_DONTNEED of the whole file before the first read and of each
 * page before it is read.  The mode line says which one was used.
 * Offsets come from a fixed-seed xorshift generator, so runs are comparable. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: randread [-n COUNT] [-s SEED] [-b BYTES] FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long count = 2000, bs = 4096;
	unsigned long long seed = 42;
	const char *mode = "O_DIRECT";
	uint64_t *lat, blocks;
	struct stat st;
	void *buf;
	int fd, c;

	while ((c = getopt(argc, argv, "n:s:b:")) != -1) {
		switch (c) {
		case 'n': count = atol(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'b': bs = atol(optarg); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || count < 1 || bs < 512 || (bs & (bs - 1)))
		usage();
	rng_state = seed ? seed : 1;

	fd = open(argv[optind], O_RDONLY | O_DIRECT);
	if (fd < 0 && errno == EINVAL) {
		mode = "fadvise";
		fd = open(argv[optind], O_RDONLY);
	}
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "randread: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	blocks = (uint64_t)st.st_size / (uint64_t)bs;
	if (blocks == 0) {
		fprintf(stderr, "randread: %s: smaller than %ld bytes\n", argv[optind], bs);
		return 1;
	}
	if (posix_memalign(&buf, 4096, (size_t)bs) != 0 ||
	    !(lat = malloc(sizeof(*lat) * (size_t)count))) {
		fprintf(stderr, "randread: out of memory\n");
		return 1;
	}
	if (strcmp(mode, "fadvise") == 0) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	}
	for (long i = 0; i < count; i++) {
		off_t off = (off_t)(rng_next() % blocks) * bs;
		uint64_t t0;
		ssize_t n;

		if (strcmp(mode, "fadvise") == 0)
			posix_fadvise(fd, off, bs, POSIX_FADV_DONTNEED);
		t0 = now_ns();
		n = pread(fd, buf, (size_t)bs, off);
		lat[i] = now_ns() - t0;
		if (n != bs) {
			fprintf(stderr, "randread: pread at %lld: %s\n", (long long)off,
				n < 0 ? strerror(errno) : "short read");
			return 1;
		}
	}
	qsort(lat, (size_t)count, sizeof(*lat), cmp_u64);
	printf("mode=%s n=%ld p50_us=%.1f p99_us=%.1f max_us=%.1f\n", mode, count,
	       lat[(count - 1) * 50 / 100] / 1e3, lat[(count - 1) * 99 / 100] / 1e3,
	       lat[count - 1] / 1e3);
	return 0;
}
