/*
 * test_dev.c - the whole pipeline without FUSE: hc_make builds a store
 * from a 24 MiB test image, hc_index_load and hc_dev_open read it back
 * through a file:// URL, and every byte must match. Then damaged block
 * files (missing, flipped, truncated, longer) must give -EIO for their
 * range and never wrong bytes; a disk cache must carry the image once the
 * store is gone; and rebuilding must write only what changed.
 */
#include "../src/dev.h"
#include "../src/load.h"
#include "../src/make.h"
#include "../src/profile.h"
#include "../src/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define SHIFT 16
#define BS    ((size_t)1 << SHIFT)
/* 24 MiB less a bit: the last block is short. */
#define IMAGE_SIZE ((size_t)24 * 1024 * 1024 - 12345)
#define NBLOCKS	   ((IMAGE_SIZE + BS - 1) / BS)

static char root[PATH_MAX], store[PATH_MAX], image[PATH_MAX], image2[PATH_MAX];
static char *url;
static uint8_t *img1, *img2; /* the two images' bytes */
static uint8_t sha1[HC_SHA256_LEN], sha2[HC_SHA256_LEN];

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill_text(uint8_t *p, size_t n)
{
	static const char *const words[] = { "root:x:0:0 ", "/usr/lib ", "block ", "the ",
					     "#include ",   "0x7f ",	 "\n",	   "config ",
					     "=",	    "; " };

	for (size_t i = 0; i < n;) {
		const char *w = words[rng() % 10];

		for (; *w && i < n; w++)
			p[i++] = (uint8_t)*w;
	}
}

/* Text, random and zero stretches of uneven lengths, so content changes
 * fall inside blocks, then some whole zero blocks and a block repeated. */
static void fill_image(uint8_t *p, size_t size, uint64_t seed)
{
	rng_state = seed;
	for (size_t i = 0; i < size;) {
		size_t k = 1000 + rng() % 150000;

		if (k > size - i)
			k = size - i;
		switch (rng() % 3) {
		case 0:
			fill_text(p + i, k);
			break;
		case 1:
			for (size_t j = 0; j < k; j++)
				p[i + j] = (uint8_t)rng();
			break;
		default:
			memset(p + i, 0, k);
		}
		i += k;
	}
	fill_text(p + 5 * BS, BS);
	memset(p + 10 * BS, 0, 4 * BS);
	memcpy(p + 30 * BS, p + 5 * BS, BS);
	memcpy(p + 31 * BS, p + 5 * BS, BS);
	memcpy(p + 200 * BS, p + 5 * BS, BS);
}

/* Expected failures log errors; keep them out of the test's output. */
static void quiet(int on)
{
	hc_log_init("test_dev", on ? -1 : HC_LOG_WARN);
}

static void make_opts(struct hc_make_opts *o, const char *img, const char *version)
{
	*o = (struct hc_make_opts){
		.image = img,
		.store = store,
		.name = "img",
		.version = version,
		.block_shift = SHIFT,
		.codec = HC_CODEC_ZSTD,
		.level = 3,
		.threads = 2,
		.progress = 0,
		.created = 1700000000,
	};
}

/* Quick fetch settings: a fault shows at once rather than after retries. */
static void fetch_opts(struct hc_fetch_opts *fo)
{
	hc_fetch_opts_default(fo);
	fo->retries = 1;
	fo->backoff = 0.01;
	fo->timeout = 2;
}

static hc_index *load(const char *version, hc_diskcache *dc)
{
	struct hc_fetch_opts fo;
	hc_index *idx = NULL;
	char why[512] = "";
	int r;

	fetch_opts(&fo);
	struct hc_load_opts lo = {
		.urls = url, .name = "img", .version = version, .fetch = &fo, .dc = dc
	};
	r = hc_index_load(&lo, &idx, why, sizeof(why));
	check(r == 0 && idx, "hc_index_load(%s%s): %d %s", version ? version : "latest",
	      dc ? ", cache" : "", r, why);
	return r == 0 ? idx : NULL;
}

static hc_dev *open_dev(hc_index *idx, hc_diskcache *dc)
{
	struct hc_dev_opts o;
	hc_dev *d = NULL;
	int r;

	if (!idx)
		return NULL;
	hc_dev_opts_default(&o);
	fetch_opts(&o.fetch);
	o.mem_cache = 2 << 20; /* small: blocks get evicted and loaded again */
	o.workers = 2;
	r = hc_dev_open(url, idx, dc, &o, &d);
	if (!check(r == 0 && d, "hc_dev_open: %d", r)) {
		hc_index_free(idx);
		return NULL;
	}
	return d;
}

/* Reads [off, off+len) and compares with the image: the expected count
 * (short at the end, 0 past it) and the same bytes. */
static void read_check(hc_dev *d, const uint8_t *img, size_t size, uint64_t off, size_t len,
		       const char *what)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t want = off >= size ? 0 : (len < size - off ? len : size - off);
	ssize_t n = hc_dev_read(d, buf, len, off);

	check(n == (ssize_t)want && !memcmp(buf, img + (off < size ? off : 0), want),
	      "%s: read %zu at %llu gave %zd (want %zu)%s", what, len, (unsigned long long)off, n,
	      want, n == (ssize_t)want ? ", wrong bytes" : "");
	free(buf);
}

/* Reads the whole image in 128 KiB pieces, as the kernel would; 0 and
 * its SHA-256, or the first error. */
static int read_all(hc_dev *d, size_t size, uint8_t sum[HC_SHA256_LEN])
{
	const size_t chunk = 128 << 10;
	uint8_t *buf = malloc(chunk);
	hc_sha256_ctx ctx;
	int r = 0;

	hc_sha256_init(&ctx);
	for (uint64_t off = 0; off < size; off += chunk) {
		ssize_t n = hc_dev_read(d, buf, chunk, off);

		if (n <= 0) {
			r = n < 0 ? (int)n : -EIO;
			break;
		}
		hc_sha256_update(&ctx, buf, (size_t)n);
	}
	hc_sha256_final(&ctx, sum);
	free(buf);
	return r;
}

static void block_file(const hc_index *idx, uint64_t b, char *out)
{
	char rel[HC_BLOCK_PATH_LEN];

	hc_block_path(idx->entries[b].hash, rel);
	pathf(out, "%s/%s", store, rel);
}

/* A block stored once: damaging its file touches no other block. */
static int sole_block(const hc_index *idx, uint64_t b)
{
	if (idx->entries[b].codec == HC_CODEC_ZERO)
		return 0;
	for (uint64_t i = 0; i < idx->block_count; i++)
		if (i != b && !memcmp(idx->entries[i].hash, idx->entries[b].hash, HC_SHA256_LEN))
			return 0;
	return 1;
}

static uint64_t sole_block_from(const hc_index *idx, uint64_t from)
{
	for (uint64_t b = from; b < idx->block_count; b++)
		if (sole_block(idx, b))
			return b;
	return UINT64_MAX;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	uint8_t *buf = NULL;

	if (hc_read_file(path, &buf, len, (size_t)1 << 30) < 0)
		return NULL;
	return buf;
}

/* ---- tests ------------------------------------------------------------ */

static void test_make(void)
{
	struct hc_make_opts o;
	struct hc_make_stats st;
	int r;

	make_opts(&o, image, NULL);
	r = hc_make(&o, &st);
	check(r == 0, "hc_make: %d", r);
	check(st.blocks == NBLOCKS, "make: %llu blocks", (unsigned long long)st.blocks);
	check(st.zero >= 4 && st.dup >= 3, "make: zero %llu dup %llu", (unsigned long long)st.zero,
	      (unsigned long long)st.dup);
	check(st.unique + st.zero + st.dup == st.blocks,
	      "make: unique %llu + zero %llu + dup %llu != blocks", (unsigned long long)st.unique,
	      (unsigned long long)st.zero, (unsigned long long)st.dup);
	check(st.written == st.unique && st.shared == 0, "make: written %llu shared %llu",
	      (unsigned long long)st.written, (unsigned long long)st.shared);
	check(st.bytes_stored < st.bytes_in, "make: nothing compressed");
	check(!strcmp(st.version, "1"), "make: first version is \"%s\", not \"1\"", st.version);
}

static void test_index_loaded(const hc_index *idx)
{
	int raw = 0, zstd = 0, zero = 0;

	check(idx->image_size == IMAGE_SIZE && idx->block_shift == SHIFT &&
		  idx->block_count == NBLOCKS && idx->serial == 1 && idx->created == 1700000000 &&
		  !strcmp(idx->name, "img") && !strcmp(idx->version, "1"),
	      "index: header fields differ from what was built");
	for (uint64_t b = 0; b < idx->block_count; b++) {
		raw += idx->entries[b].codec == HC_CODEC_RAW;
		zstd += idx->entries[b].codec == HC_CODEC_ZSTD;
		zero += idx->entries[b].codec == HC_CODEC_ZERO;
	}
	/* The image was made to hold all three kinds. */
	check(raw > 0 && zstd > 0 && zero >= 4, "index: raw %d zstd %d zero %d blocks", raw, zstd,
	      zero);
}

static void test_reads(hc_dev *d)
{
	const size_t size = IMAGE_SIZE;
	uint8_t sum[HC_SHA256_LEN], byte;
	char stats[4096];
	int r;

	read_check(d, img1, size, 0, 1, "first byte");
	read_check(d, img1, size, BS - 1, 2, "across the first boundary");
	read_check(d, img1, size, 5 * BS, BS, "one whole block");
	read_check(d, img1, size, 9 * BS + 100, 6 * BS, "across zero blocks");
	read_check(d, img1, size, 29 * BS + 7, 3 * BS, "across repeated blocks");
	read_check(d, img1, size, (NBLOCKS - 1) * BS - 3, 10, "into the short last block");
	read_check(d, img1, size, size - 1, 1, "last byte");
	read_check(d, img1, size, size - 10, 100, "past the end (short)");
	read_check(d, img1, size, (NBLOCKS - 2) * BS, 4 * BS, "last two blocks and beyond");
	read_check(d, img1, size, size, 10, "at the end");
	read_check(d, img1, size, size + BS, 10, "beyond the end");
	read_check(d, img1, size, UINT64_MAX - 5, 10, "at the far end of the offsets");
	check(hc_dev_read(d, &byte, 0, 0) == 0, "zero-length read");

	rng_state = 99;
	for (int i = 0; i < 400; i++) {
		uint64_t off = rng() % size;
		size_t len = 1 + rng() % (i % 4 == 0 ? 8 * BS : 4096);

		read_check(d, img1, size, off, len, "random read");
	}
	r = read_all(d, size, sum);
	check(r == 0 && !memcmp(sum, sha1, HC_SHA256_LEN), "full read: %d, SHA-256 %s", r,
	      r ? "not taken" : "differs");
	r = hc_dev_stats_text(d, stats, sizeof(stats));
	check(r > 0 && strstr(stats, "reads ") && strstr(stats, "\nimage img\n"),
	      "stats text: %d \"%.40s\"", r, stats);
	check(hc_dev_stats_text(d, stats, 10) < 0, "stats text into 10 bytes");
	check(hc_dev_index(d)->image_size == size, "hc_dev_index");
}

enum fault { F_DELETE, F_FLIP, F_TRUNCATE, F_LONGER, NFAULTS };
static const char *const fault_name[] = { "deleted", "flipped", "truncated", "longer" };

struct saved_block {
	uint64_t block;
	char path[PATH_MAX];
	uint8_t *data;
	size_t len;
};

static void apply_fault(struct saved_block *s, enum fault f)
{
	uint8_t *buf = malloc(s->len + 1);

	memcpy(buf, s->data, s->len);
	switch (f) {
	case F_DELETE:
		unlink(s->path);
		break;
	case F_FLIP:
		buf[s->len / 3] ^= 0x04;
		write_file(s->path, buf, s->len);
		break;
	case F_TRUNCATE:
		write_file(s->path, buf, s->len - 1);
		break;
	default:
		buf[s->len] = 0;
		write_file(s->path, buf, s->len + 1);
	}
	free(buf);
}

static int faulted(const struct saved_block *s, uint64_t b)
{
	for (int f = 0; f < NFAULTS; f++)
		if (s[f].block == b)
			return 1;
	return 0;
}

/* Damaged block files: their ranges fail with -EIO, everything else
 * still reads, and no read ever returns bytes that are not the image's. */
static void test_faults(void)
{
	hc_index *idx = load(NULL, NULL);
	struct saved_block s[NFAULTS];
	uint8_t *buf = malloc(4 * BS);
	hc_dev *d;
	/* Spread out; the last one is the short last block if possible. */
	const uint64_t from[NFAULTS] = { 40, 150, 250, NBLOCKS - 1 };

	for (int f = 0; f < NFAULTS; f++)
		s[f] = (struct saved_block){ .block = UINT64_MAX };
	if (!idx)
		goto out;
	for (int f = 0; f < NFAULTS; f++) {
		uint64_t prev = f ? s[f - 1].block : 0;
		uint64_t b = sole_block_from(idx, from[f] > prev ? from[f] : prev + 1);

		if (b == UINT64_MAX && f)
			b = sole_block_from(idx, prev + 1);
		if (!check(b != UINT64_MAX, "faults: no block to damage for %s", fault_name[f]))
			goto restore;
		s[f].block = b;
		block_file(idx, b, s[f].path);
		s[f].data = slurp(s[f].path, &s[f].len);
		if (!check(s[f].data != NULL, "faults: cannot read %s", s[f].path))
			goto restore;
		apply_fault(&s[f], (enum fault)f);
	}
	d = open_dev(idx, NULL);
	idx = NULL;
	if (!d)
		goto restore;
	quiet(1);
	for (int f = 0; f < NFAULTS; f++) {
		uint64_t b = s[f].block, off = b * BS;
		ssize_t n = hc_dev_read(d, buf, 100, off + 10);

		check(n == -EIO, "faults: %s block %llu read gave %zd, not -EIO", fault_name[f],
		      (unsigned long long)b, n);
		/* A read that also covers good blocks fails as a whole. */
		n = hc_dev_read(d, buf, 3 * BS, off > BS ? off - BS : 0);
		check(n == -EIO, "faults: read across %s block %llu gave %zd", fault_name[f],
		      (unsigned long long)b, n);
	}
	/* Every block on its own: -EIO exactly for the damaged ones. */
	for (uint64_t b = 0; b < NBLOCKS; b++) {
		size_t want = b + 1 < NBLOCKS ? BS : IMAGE_SIZE - b * BS;
		ssize_t n = hc_dev_read(d, buf, BS, b * BS);

		if (faulted(s, b))
			check(n == -EIO, "faults: damaged block %llu read gave %zd",
			      (unsigned long long)b, n);
		else
			check(n == (ssize_t)want && !memcmp(buf, img1 + b * BS, want),
			      "faults: good block %llu read gave %zd%s", (unsigned long long)b, n,
			      n == (ssize_t)want ? " with wrong bytes" : "");
	}
	/* Random reads: an error only if a damaged block is in range, and
	 * never other bytes than the image's. */
	rng_state = 7;
	for (int i = 0; i < 300; i++) {
		uint64_t off = rng() % IMAGE_SIZE;
		size_t len = 1 + rng() % (2 * BS);
		ssize_t n = hc_dev_read(d, buf, len, off);
		uint64_t last = (off + len - 1) / BS;
		int bad = 0;

		if (last >= NBLOCKS)
			last = NBLOCKS - 1;
		for (uint64_t b = off / BS; b <= last; b++)
			bad |= faulted(s, b);
		if (n < 0)
			check(n == -EIO && bad, "faults: random read %zu at %llu gave %zd", len,
			      (unsigned long long)off, n);
		else
			check(!bad && !memcmp(buf, img1 + off, (size_t)n),
			      "faults: random read %zu at %llu returned %s", len,
			      (unsigned long long)off,
			      bad ? "data for a damaged block" : "wrong bytes");
	}
	quiet(0);
	hc_dev_close(d);
restore:
	for (int f = 0; f < NFAULTS; f++)
		if (s[f].data)
			write_file(s[f].path, s[f].data, s[f].len);
	/* Repaired, the store reads whole again. */
	d = open_dev(load(NULL, NULL), NULL);
	if (d) {
		uint8_t sum[HC_SHA256_LEN];

		check(read_all(d, IMAGE_SIZE, sum) == 0 && !memcmp(sum, sha1, HC_SHA256_LEN),
		      "faults: repaired store does not read back");
		hc_dev_close(d);
	}
out:
	for (int f = 0; f < NFAULTS; f++)
		free(s[f].data);
	hc_index_free(idx);
	free(buf);
}

/* Read once through a disk cache; then, with the store gone, the cache
 * alone provides the index and every block. */
static void test_diskcache(void)
{
	char cdir[PATH_MAX], away[PATH_MAX], stats[4096];
	uint8_t sum[HC_SHA256_LEN];
	hc_diskcache *dc = NULL;
	struct hc_diskcache_stats ds;
	hc_index *idx;
	hc_dev *d;
	int r;

	pathf(cdir, "%s/cache", root);
	pathf(away, "%s/store.away", root);
	if (!check(hc_diskcache_open(cdir, 1 << 30, &dc) == 0, "diskcache: open"))
		return;
	d = open_dev(load(NULL, dc), dc);
	if (d) {
		r = read_all(d, IMAGE_SIZE, sum);
		check(r == 0 && !memcmp(sum, sha1, HC_SHA256_LEN), "diskcache: first read: %d", r);
		hc_dev_close(d);
	}
	hc_diskcache_stats(dc, &ds);
	check(ds.files > 0 && ds.stores == ds.files, "diskcache: %llu files, %llu stores",
	      (unsigned long long)ds.files, (unsigned long long)ds.stores);
	hc_diskcache_close(dc);

	/* The store is gone: its URL now names nothing. */
	if (!check(rename(store, away) == 0, "diskcache: cannot move the store away"))
		return;
	dc = NULL;
	if (check(hc_diskcache_open(cdir, 1 << 30, &dc) == 0, "diskcache: reopen")) {
		quiet(1); /* "using the cached index" */
		idx = load(NULL, dc);
		quiet(0);
		check(!idx || !strcmp(idx->version, "1"), "diskcache: cached index is version %s",
		      idx ? idx->version : "?");
		d = open_dev(idx, dc);
		if (d) {
			r = read_all(d, IMAGE_SIZE, sum);
			check(r == 0 && !memcmp(sum, sha1, HC_SHA256_LEN),
			      "diskcache: offline read: %d", r);
			read_check(d, img1, IMAGE_SIZE, IMAGE_SIZE - 5000, 9000, "offline tail");
			hc_dev_stats_text(d, stats, sizeof(stats));
			check(strstr(stats, "\nfetch_requests 0\n") != NULL,
			      "diskcache: offline reads went to the store");
			hc_dev_close(d);
		}
		/* A named version too. */
		quiet(1);
		idx = load("1", dc);
		quiet(0);
		hc_index_free(idx);
		hc_diskcache_stats(dc, &ds);
		check(ds.hits > 0 && ds.damaged == 0, "diskcache: hits %llu damaged %llu",
		      (unsigned long long)ds.hits, (unsigned long long)ds.damaged);
		hc_diskcache_close(dc);
	}
	check(rename(away, store) == 0, "diskcache: cannot move the store back");
}

static int file_equals(const char *path, const uint8_t *data, size_t len)
{
	size_t n;
	uint8_t *buf = slurp(path, &n);
	int same = buf && n == len && !memcmp(buf, data, len);

	free(buf);
	return same;
}

/* Rebuilding: the same image writes nothing; a changed one as a new
 * version writes only the changed blocks; an existing version is not
 * replaced by other contents unless forced. */
static void test_rebuild(void)
{
	char ipath[PATH_MAX], lpath[PATH_MAX];
	uint8_t *index1, *latest1, sum[HC_SHA256_LEN];
	size_t index1_len, latest1_len;
	struct hc_make_opts o;
	struct hc_make_stats st;
	hc_dev *d;
	int r;

	pathf(ipath, "%s/index/img/1", store);
	pathf(lpath, "%s/index/img/latest", store);
	index1 = slurp(ipath, &index1_len);
	latest1 = slurp(lpath, &latest1_len);
	if (!check(index1 && latest1, "rebuild: index files missing"))
		goto out;

	/* Same image, same version: nothing written, nothing moved. */
	make_opts(&o, image, "1");
	r = hc_make(&o, &st);
	check(r == 0 && st.written == 0 && st.shared == st.unique && st.unique > 0,
	      "rebuild same: r %d written %llu shared %llu unique %llu", r,
	      (unsigned long long)st.written, (unsigned long long)st.shared,
	      (unsigned long long)st.unique);
	check(file_equals(ipath, index1, index1_len) && file_equals(lpath, latest1, latest1_len),
	      "rebuild same: the index or latest pointer changed");

	/* A changed image as the next version. */
	make_opts(&o, image2, NULL);
	r = hc_make(&o, &st);
	check(r == 0 && !strcmp(st.version, "2"), "rebuild new version: r %d version %s", r,
	      st.version);
	check(st.shared > 0 && st.written > 0 && st.written < st.unique / 4,
	      "rebuild new version: written %llu shared %llu unique %llu",
	      (unsigned long long)st.written, (unsigned long long)st.shared,
	      (unsigned long long)st.unique);
	d = open_dev(load(NULL, NULL), NULL);
	if (d) {
		check(hc_dev_index(d)->serial == 2 && !strcmp(hc_dev_index(d)->version, "2"),
		      "rebuild new version: latest is not version 2");
		r = read_all(d, IMAGE_SIZE + 3 * BS, sum);
		check(r == 0 && !memcmp(sum, sha2, HC_SHA256_LEN), "rebuild: version 2 reads: %d",
		      r);
		hc_dev_close(d);
	}
	/* The old version still reads as it was. */
	d = open_dev(load("1", NULL), NULL);
	if (d) {
		r = read_all(d, IMAGE_SIZE, sum);
		check(r == 0 && !memcmp(sum, sha1, HC_SHA256_LEN), "rebuild: version 1 reads: %d",
		      r);
		hc_dev_close(d);
	}

	/* Other contents under an existing version: refused... */
	make_opts(&o, image2, "1");
	quiet(1);
	r = hc_make(&o, &st);
	quiet(0);
	check(r == -EEXIST, "rebuild over version 1 without force: %d, not -EEXIST", r);
	check(file_equals(ipath, index1, index1_len), "rebuild refused: index 1 changed anyway");
	/* ...unless forced; the latest pointer stays on the newer version. */
	o.force = 1;
	r = hc_make(&o, &st);
	check(r == 0, "rebuild over version 1 with force: %d", r);
	d = open_dev(load("1", NULL), NULL);
	if (d) {
		read_check(d, img2, IMAGE_SIZE + 3 * BS, 0, 3 * BS, "forced version 1");
		read_check(d, img2, IMAGE_SIZE + 3 * BS, IMAGE_SIZE - 100, 4 * BS,
			   "forced version 1 tail");
		hc_dev_close(d);
	}
	d = open_dev(load(NULL, NULL), NULL);
	check(d && !strcmp(hc_dev_index(d)->version, "2"),
	      "rebuild forced: latest moved back to version 1");
	hc_dev_close(d);

	/* The same blocks as the older version 1, made again (a build of an
	 * older commit): the latest once more, with the next serial, which
	 * a client that saw serial 2 accepts; then version 2 again. */
	make_opts(&o, image2, "1");
	r = hc_make(&o, &st);
	d = open_dev(load(NULL, NULL), NULL);
	check(r == 0 && d && !strcmp(hc_dev_index(d)->version, "1") && hc_dev_index(d)->serial == 3,
	      "made again, version 1 is not the latest with serial 3 (%s, %llu)",
	      d ? hc_dev_index(d)->version : "-",
	      d ? (unsigned long long)hc_dev_index(d)->serial : 0ULL);
	hc_dev_close(d);
	make_opts(&o, image2, "2");
	o.no_latest = 1;
	r = hc_make(&o, &st);
	d = open_dev(load(NULL, NULL), NULL);
	check(r == 0 && d && !strcmp(hc_dev_index(d)->version, "1"),
	      "--no-latest moved the latest pointer");
	hc_dev_close(d);
	o.no_latest = 0;
	r = hc_make(&o, &st);
	d = open_dev(load(NULL, NULL), NULL);
	check(r == 0 && d && !strcmp(hc_dev_index(d)->version, "2") && hc_dev_index(d)->serial == 4,
	      "version 2 made again is not the latest with serial 4");
	hc_dev_close(d);
out:
	free(index1);
	free(latest1);
}

/* One counter from a device's .stats text (UINT64_MAX if absent). */
static uint64_t stat_of(hc_dev *d, const char *key)
{
	static char text[16384];
	size_t klen = strlen(key);

	if (hc_dev_stats_text(d, text, sizeof(text)) < 0)
		return UINT64_MAX;
	for (char *line = text; line && *line; line = strchr(line, '\n'), line += !!line)
		if (!strncmp(line, key, klen) && line[klen] == ' ')
			return strtoull(line + klen + 1, NULL, 10);
	return UINT64_MAX;
}

static int stats_has(hc_dev *d, const char *line)
{
	static char text[16384];

	return hc_dev_stats_text(d, text, sizeof(text)) >= 0 && strstr(text, line);
}

static hc_dev *open_opts(const char *urls, const char *name, const struct hc_dev_opts *o,
			 hc_diskcache *dc)
{
	struct hc_fetch_opts fo;
	struct hc_load_opts lo = { .urls = urls, .name = name, .fetch = &fo, .dc = dc };
	hc_index *idx = NULL;
	hc_dev *d = NULL;
	char why[1024] = "";
	int r;

	fetch_opts(&fo);
	r = hc_index_load(&lo, &idx, why, sizeof(why));
	if (!check(r == 0, "load %s from %s: %s", name, urls, why))
		return NULL;
	r = hc_dev_open(urls, idx, dc, o, &d);
	if (!check(r == 0, "hc_dev_open %s: %d", urls, r))
		hc_index_free(idx);
	return r == 0 ? d : NULL;
}

/* Mirrors: a first mirror that is missing, refuses connections, or
 * serves damaged blocks costs retries, never a byte. */
static void test_mirrors(void)
{
	char bad[PATH_MAX], list[3 * PATH_MAX + 64], path[PATH_MAX], rel[HC_BLOCK_PATH_LEN];
	uint8_t sum[HC_SHA256_LEN];
	struct hc_make_opts mo;
	struct hc_make_stats st;
	struct hc_dev_opts o;
	hc_index *idx = load(NULL, NULL);
	unsigned damaged = 0;
	hc_dev *d;
	int r;

	if (!idx)
		return;
	/* A second, identical store whose every tenth data block is damaged. */
	pathf(bad, "%s/bad-mirror", root);
	make_opts(&mo, image, NULL);
	mo.store = bad;
	check(hc_make(&mo, &st) == 0, "mirrors: make the second store");
	for (uint64_t b = 0; b < idx->block_count; b += 10) {
		FILE *f;

		if (!sole_block(idx, b))
			continue;
		hc_block_path(idx->entries[b].hash, rel);
		pathf(path, "%s/%s", bad, rel);
		if ((f = fopen(path, "r+b"))) {
			fseek(f, 7, SEEK_SET);
			fputc('X', f);
			fclose(f);
			damaged++;
		}
	}
	check(damaged > 10, "mirrors: damaged %u blocks", damaged);
	hc_dev_opts_default(&o);
	fetch_opts(&o.fetch);
	o.workers = 2;
	o.readahead = 0;

	quiet(1);
	snprintf(list, sizeof(list), "file://%s,%s", bad, url);
	d = open_opts(list, "img", &o, NULL);
	if (d) {
		r = read_all(d, IMAGE_SIZE, sum);
		check(r == 0 && !memcmp(sum, sha1, HC_SHA256_LEN), "mirrors: damaged first: %d", r);
		check(stat_of(d, "mirror.0.bad") >= 1, "mirrors: no bad block counted");
		check(stats_has(d, "mirror.0.state distrusted\n"), "mirrors: damaged one trusted");
		check(stat_of(d, "read_errors") == 0, "mirrors: read errors");
		hc_dev_close(d);
	}
	snprintf(list, sizeof(list), "http://127.0.0.1:1,file://%s/none,%s", root, url);
	d = open_opts(list, "img", &o, NULL);
	if (d) {
		r = read_all(d, IMAGE_SIZE, sum);
		check(r == 0 && !memcmp(sum, sha1, HC_SHA256_LEN), "mirrors: dead first: %d", r);
		check(stat_of(d, "fetch_failovers") >= 2, "mirrors: %llu failovers",
		      (unsigned long long)stat_of(d, "fetch_failovers"));
		check(stats_has(d, "mirror.0.state down\n"), "mirrors: refusing one not down");
		check(stat_of(d, "mirror.2.fetched") >= idx->block_count / 2,
		      "mirrors: the good one fetched %llu",
		      (unsigned long long)stat_of(d, "mirror.2.fetched"));
		hc_dev_close(d);
	}
	/* Every mirror dead: EIO, and the log names them all failing. */
	snprintf(list, sizeof(list), "http://127.0.0.1:1,file://%s/none", root);
	d = open_opts(url, "img", &o, NULL);
	if (d) {
		hc_dev_close(d);
		d = NULL;
	}
	{
		struct hc_fetch_opts fo;
		struct hc_load_opts lo = { .urls = url, .name = "img", .fetch = &fo };
		hc_index *i2 = NULL;
		char why[256];
		uint8_t buf[100];

		fetch_opts(&fo);
		if (hc_index_load(&lo, &i2, why, sizeof(why)) == 0 &&
		    hc_dev_open(list, i2, NULL, &o, &d) == 0) {
			check(hc_dev_read(d, buf, sizeof(buf), 5 * BS) == -EIO,
			      "mirrors: all dead, read did not fail");
			hc_dev_close(d);
		}
	}
	quiet(0);
	hc_index_free(idx);
}

/* Puts block b's file from the store into DIR, laid out like a store (as
 * a peer's disk cache is), damaged if asked. */
static void peer_copy(const hc_index *idx, uint64_t b, const char *dir, int damage)
{
	char rel[HC_BLOCK_PATH_LEN], from[PATH_MAX], to[PATH_MAX];
	uint8_t *data;
	size_t len;

	hc_block_path(idx->entries[b].hash, rel);
	pathf(from, "%s/%s", store, rel);
	pathf(to, "%s/%s", dir, rel);
	/* Every directory on the way: DIR, blocks/, blocks/ab/. */
	mkdir(dir, 0755);
	for (char *slash = to + strlen(dir); (slash = strchr(slash + 1, '/'));) {
		*slash = '\0';
		mkdir(to, 0755);
		*slash = '/';
	}
	data = slurp(from, &len);
	if (!data)
		return;
	if (damage && len > 7)
		data[7] ^= 0x5a;
	write_file(to, data, len);
	free(data);
}

/* A booth's peers (--peers): a list file names them; the blocks come from
 * peers before the store; a peer without a block is passed over (no error
 * held against it), a lying one distrusted, a dead one failed over, and a
 * new list replaces the old. */
static void test_peers(void)
{
	char half[PATH_MAX], liar[PATH_MAX], list[PATH_MAX], text[4 * PATH_MAX + 256];
	char purl[PATH_MAX + 16];
	uint8_t sum[HC_SHA256_LEN];
	struct hc_dev_opts o;
	hc_index *idx = load(NULL, NULL);
	hc_dev *d;
	int r;

	if (!idx)
		return;
	pathf(half, "%s/peer-half", root);
	pathf(liar, "%s/peer-liar", root);
	pathf(list, "%s/peers.txt", root);
	for (uint64_t b = 0; b < idx->block_count; b++) {
		if (idx->entries[b].codec == HC_CODEC_ZERO)
			continue;
		if (b % 2 == 0)
			peer_copy(idx, b, half, 0);
		if (b % 10 == 5 && sole_block(idx, b))
			peer_copy(idx, b, liar, 1);
	}
	/* The store's own URL listed too: a mirror is not a peer. */
	snprintf(text, sizeof(text),
		 "# streamcd booth peers\nfile://%s\n\n  file://%s  \nhttp://127.0.0.1:1\n%s\nnot "
		 "a url\n",
		 half, liar, url);
	write_file(list, text, strlen(text));
	snprintf(purl, sizeof(purl), "file://%s", list);
	hc_dev_opts_default(&o);
	fetch_opts(&o.fetch);
	o.workers = 2;
	o.readahead = 0;
	o.prefetch = HC_PREFETCH_OFF;
	o.fetch.peers = purl;
	o.fetch.peers_interval = 0.2;
	quiet(1);
	d = open_opts(url, "img", &o, NULL);
	if (!d) {
		quiet(0);
		hc_index_free(idx);
		return;
	}
	for (int i = 0; i < 100 && stat_of(d, "peers") != 3; i++)
		usleep(50 * 1000);
	check(stat_of(d, "peers") == 3, "peers: %llu listed, want 3",
	      (unsigned long long)stat_of(d, "peers"));
	r = read_all(d, IMAGE_SIZE, sum);
	check(r == 0 && !memcmp(sum, sha1, HC_SHA256_LEN), "peers: whole image: %d", r);
	check(stat_of(d, "read_errors") == 0, "peers: read errors");
	check(stats_has(d, "mirror.1.peer 1\n") && stat_of(d, "mirror.1.fetched") > 0,
	      "peers: the half peer served %llu",
	      (unsigned long long)stat_of(d, "mirror.1.fetched"));
	check(stat_of(d, "mirror.1.missing") > 0 && stat_of(d, "mirror.1.errors") == 0,
	      "peers: the half peer's misses (%llu) are not errors (%llu)",
	      (unsigned long long)stat_of(d, "mirror.1.missing"),
	      (unsigned long long)stat_of(d, "mirror.1.errors"));
	check(stat_of(d, "mirror.2.bad") >= 1 && stats_has(d, "mirror.2.state distrusted\n"),
	      "peers: the lying peer distrusted (%llu bad)",
	      (unsigned long long)stat_of(d, "mirror.2.bad"));
	check(stat_of(d, "mirror.3.errors") >= 1, "peers: the dead peer failed over");
	check(stat_of(d, "peer_fetched_blocks") == stat_of(d, "mirror.1.fetched"),
	      "peers: peer_fetched_blocks %llu",
	      (unsigned long long)stat_of(d, "peer_fetched_blocks"));
	check(stat_of(d, "mirror.0.fetched") > 0, "peers: the store served what no peer had");
	/* A new list: only the half peer is left. */
	snprintf(text, sizeof(text), "file://%s\n", half);
	write_file(list, text, strlen(text));
	for (int i = 0; i < 100 && stat_of(d, "peers") != 1; i++)
		usleep(50 * 1000);
	check(stat_of(d, "peers") == 1, "peers: %llu listed after the new list, want 1",
	      (unsigned long long)stat_of(d, "peers"));
	check(stats_has(d, "mirror.2.state gone\n"), "peers: the unlisted liar is gone");
	check(stat_of(d, "peer_lists") >= 2 && stat_of(d, "peer_list_errors") == 0,
	      "peers: lists read %llu, failed %llu", (unsigned long long)stat_of(d, "peer_lists"),
	      (unsigned long long)stat_of(d, "peer_list_errors"));
	/* A list that cannot be read keeps the peers known so far. */
	unlink(list);
	for (int i = 0; i < 100 && stat_of(d, "peer_list_errors") == 0; i++)
		usleep(50 * 1000);
	check(stat_of(d, "peer_list_errors") >= 1 && stat_of(d, "peers") == 1,
	      "peers: an unreadable list keeps the peer (%llu listed)",
	      (unsigned long long)stat_of(d, "peers"));
	hc_dev_close(d);
	quiet(0);
	hc_index_free(idx);
}

/* Download-ahead of a profile, then of everything ("fill"); a trace
 * records first reads in order. */
static void test_prefetch(void)
{
	static const uint32_t profile[] = { 300, 5, 100, 7, 5, 15, 16, 17, 99999, 250 };
	char tpath[PATH_MAX];
	struct hc_make_opts mo;
	struct hc_make_stats st;
	struct hc_dev_opts o;
	uint8_t sum[HC_SHA256_LEN];
	uint64_t fetched;
	uint8_t *text;
	size_t len, n = 0, line = 0;
	uint32_t *got = NULL;
	hc_dev *d;
	int fd;

	make_opts(&mo, image, NULL);
	mo.name = "pf";
	mo.profile = profile;
	mo.nprofile = sizeof(profile) / sizeof(profile[0]);
	check(hc_make(&mo, &st) == 0, "prefetch: make with a profile");
	hc_dev_opts_default(&o);
	fetch_opts(&o.fetch);
	o.workers = 2;
	o.readahead = 0;
	/* Profile: blocks 300 5 100 7 15 16 17 250 (99999 is past the end,
	 * 5 repeats); all hold data here. */
	d = open_opts(url, "pf", &o, NULL);
	if (d) {
		for (int i = 0; i < 500 && stat_of(d, "prefetch_left") != 0; i++)
			usleep(10000);
		check(stat_of(d, "prefetch_planned") == 8, "prefetch: planned %llu",
		      (unsigned long long)stat_of(d, "prefetch_planned"));
		check(stat_of(d, "prefetch_blocks") == 8, "prefetch: fetched %llu",
		      (unsigned long long)stat_of(d, "prefetch_blocks"));
		fetched = stat_of(d, "fetched_blocks");
		read_check(d, img1, IMAGE_SIZE, 300 * BS, BS, "prefetch: block 300");
		read_check(d, img1, IMAGE_SIZE, 15 * BS, 3 * BS, "prefetch: blocks 15-17");
		check(stat_of(d, "fetched_blocks") == fetched,
		      "prefetch: prefetched blocks fetched again");
		check(stat_of(d, "prefetch_hits") == 4, "prefetch: %llu hits",
		      (unsigned long long)stat_of(d, "prefetch_hits"));
		hc_dev_close(d);
	}
	/* With read-ahead on: reads of what the profile brought make no
	 * guesses; a sequential run outside it still does. */
	o.readahead = 4;
	d = open_opts(url, "pf", &o, NULL);
	if (d) {
		for (int i = 0; i < 500 && stat_of(d, "prefetch_left") != 0; i++)
			usleep(10000);
		read_check(d, img1, IMAGE_SIZE, 15 * BS, BS, "readahead: block 15");
		read_check(d, img1, IMAGE_SIZE, 16 * BS, BS, "readahead: block 16");
		read_check(d, img1, IMAGE_SIZE, 17 * BS, BS, "readahead: block 17");
		check(stat_of(d, "readahead_blocks") == 0,
		      "readahead: %llu guesses from prefetched blocks",
		      (unsigned long long)stat_of(d, "readahead_blocks"));
		/* Nor from the block after them, which the profile left out. */
		read_check(d, img1, IMAGE_SIZE, 18 * BS, BS, "readahead: block 18");
		check(stat_of(d, "readahead_blocks") == 0,
		      "readahead: %llu guesses after a prefetched block",
		      (unsigned long long)stat_of(d, "readahead_blocks"));
		read_check(d, img1, IMAGE_SIZE, 40 * BS, BS, "readahead: block 40");
		read_check(d, img1, IMAGE_SIZE, 41 * BS, BS, "readahead: block 41");
		check(stat_of(d, "readahead_blocks") > 0,
		      "readahead: no guess from a sequential run outside the profile");
		hc_dev_close(d);
	}
	/* Nor do profile blocks a reader got before the download-ahead did
	 * (a boot reads ahead of its window), read again once it is done.
	 * One slow background transfer keeps 16 and 17 out of its reach. */
	o.fetch.bg_connections = 1;
	o.fetch.bg_rate = 20 * BS;
	d = open_opts(url, "pf", &o, NULL);
	if (d) {
		read_check(d, img1, IMAGE_SIZE, 16 * BS, BS, "readahead: block 16 first");
		read_check(d, img1, IMAGE_SIZE, 17 * BS, BS, "readahead: block 17 first");
		for (int i = 0; i < 500 && stat_of(d, "prefetch_left") != 0; i++)
			usleep(10000);
		check(stat_of(d, "prefetch_blocks") < 8,
		      "readahead: the download got 16 or 17 first");
		read_check(d, img1, IMAGE_SIZE, 16 * BS, BS, "readahead: block 16 again");
		read_check(d, img1, IMAGE_SIZE, 17 * BS, BS, "readahead: block 17 again");
		check(stat_of(d, "readahead_blocks") == 0,
		      "readahead: %llu guesses from profile blocks read before the download",
		      (unsigned long long)stat_of(d, "readahead_blocks"));
		hc_dev_close(d);
	}
	o.fetch.bg_connections = 0;
	o.fetch.bg_rate = 0;
	o.readahead = 0;
	o.prefetch = HC_PREFETCH_FILL;
	pathf(tpath, "%s/trace", root);
	fd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	o.trace_fd = fd;
	d = open_opts(url, "pf", &o, NULL);
	if (d) {
		for (int i = 0; i < 1000 && stat_of(d, "prefetch_left") != 0; i++)
			usleep(10000);
		check(stat_of(d, "prefetch_left") == 0, "fill: %llu blocks left",
		      (unsigned long long)stat_of(d, "prefetch_left"));
		fetched = stat_of(d, "fetched_blocks");
		read_check(d, img1, IMAGE_SIZE, 7 * BS + 5, 10, "trace: block 7");
		read_check(d, img1, IMAGE_SIZE, 3 * BS, 10, "trace: block 3");
		read_check(d, img1, IMAGE_SIZE, 7 * BS, 10, "trace: block 7 again");
		read_check(d, img1, IMAGE_SIZE, 20 * BS + 1, 2 * BS, "trace: blocks 20-22");
		check(read_all(d, IMAGE_SIZE, sum) == 0 && !memcmp(sum, sha1, sizeof(sum)),
		      "fill: whole image");
		check(stat_of(d, "fetched_blocks") == fetched, "fill: %llu blocks fetched after it",
		      (unsigned long long)(stat_of(d, "fetched_blocks") - fetched));
		hc_dev_close(d);
	}
	close(fd);
	text = slurp(tpath, &len);
	check(text && hc_profile_parse((const char *)text, len, &got, &n, &line) == 0 &&
		  n == NBLOCKS && got[0] == 7 && got[1] == 3 && got[2] == 20 && got[3] == 21 &&
		  got[4] == 22 && got[5] == 0,
	      "trace: %zu entries, starting %u %u %u %u %u %u", n, n > 0 ? got[0] : 0,
	      n > 1 ? got[1] : 0, n > 2 ? got[2] : 0, n > 3 ? got[3] : 0, n > 4 ? got[4] : 0,
	      n > 5 ? got[5] : 0);
	free(text);
	free(got);
	check(hc_profile_parse("1\n# x\n 2 # y\n\n", 14, &got, &n, &line) == 0 && n == 2 &&
		  got[1] == 2,
	      "profile: comments and blanks");
	free(got);
	check(hc_profile_parse("1\nx\n", 4, &got, &n, &line) == -EINVAL && line == 2,
	      "profile: bad line 2 not reported");
	check(hc_profile_parse("4294967296\n", 11, &got, &n, &line) == -EINVAL,
	      "profile: number past 32 bits accepted");
}

/* Bad arguments are refused before anything is written. */
static void test_make_errors(void)
{
	struct hc_make_opts o;
	struct hc_make_stats st;
	char missing[PATH_MAX];

	quiet(1);
	make_opts(&o, image, NULL);
	o.name = "a/b";
	check(hc_make(&o, &st) == -EINVAL, "make: bad name accepted");
	make_opts(&o, image, "latest");
	check(hc_make(&o, &st) == -EINVAL, "make: version \"latest\" accepted");
	pathf(missing, "%s/no-such-image", root);
	make_opts(&o, missing, NULL);
	check(hc_make(&o, &st) == -ENOENT, "make: missing image not -ENOENT");
	quiet(0);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	hc_index *idx;
	hc_dev *d;

	quiet(0);
	if (hc_fetch_global_init() < 0) {
		fprintf(stderr, "FAIL: hc_fetch_global_init\n");
		return 1;
	}
	pathf(root, "%s/test_dev.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	pathf(store, "%s/store", root);
	pathf(image, "%s/image1", root);
	pathf(image2, "%s/image2", root);

	/* Image 1, and image 2: image 1 with a few blocks changed and three
	 * blocks more, so most of its blocks are shared. */
	img1 = malloc(IMAGE_SIZE);
	img2 = malloc(IMAGE_SIZE + 3 * BS);
	fill_image(img1, IMAGE_SIZE, 1);
	memcpy(img2, img1, IMAGE_SIZE);
	memset(img2 + IMAGE_SIZE, 0x33, 3 * BS);
	for (size_t b = 60; b < 360; b += 50)
		fill_text(img2 + b * BS + 1000, 5000);
	write_file(image, img1, IMAGE_SIZE);
	write_file(image2, img2, IMAGE_SIZE + 3 * BS);
	hc_sha256(img1, IMAGE_SIZE, sha1);
	hc_sha256(img2, IMAGE_SIZE + 3 * BS, sha2);

	test_make();
	url = hc_url_from_arg(store);
	check(url && !strncmp(url, "file:///", 8), "hc_url_from_arg: %s", url ? url : "NULL");
	if (url) {
		idx = load(NULL, NULL);
		if (idx)
			test_index_loaded(idx);
		d = open_dev(idx, NULL);
		if (d) {
			test_reads(d);
			hc_dev_close(d);
		}
		test_mirrors();
		test_peers();
		test_prefetch();
		test_faults();
		test_diskcache();
		test_rebuild();
	}
	test_make_errors();

	free(url);
	free(img1);
	free(img2);
	rm_rf(root);
	hc_fetch_global_cleanup();
	printf("test_dev: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
