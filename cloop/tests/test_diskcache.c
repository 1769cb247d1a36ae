/*
 * test_diskcache.c - unit test for the on-disk block cache (diskcache.c):
 * put/get, misses, the size bound with least-recently-used eviction, the
 * use order carried across runs by file mtimes, damaged files turned
 * into counted misses, clean-up of leftovers at open, the small
 * metadata files (put_file/get_file), and a cache whose path moved away
 * after it was opened (the initrd's switch_root).
 */
#include "../src/diskcache.h"
#include "../src/index.h"
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

static char root[PATH_MAX]; /* the temporary directory of this run */

/* ---- helpers ---------------------------------------------------------- */

struct blob {
	uint8_t hash[HC_SHA256_LEN];
	uint8_t *data;
	uint32_t len;
};

/* Distinct pseudo-random contents per seed, named by their SHA-256. */
static struct blob make_blob(unsigned seed, uint32_t len)
{
	struct blob b = { .len = len, .data = malloc(len ? len : 1) };
	uint32_t x = seed * 2654435761u + 1;

	if (!b.data)
		abort();
	for (uint32_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b.data[i] = (uint8_t)x;
	}
	hc_sha256(b.data, len, b.hash);
	return b;
}

static void free_blobs(struct blob *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(b[i].data);
}

static void cache_dir(const char *name, char *out)
{
	pathf(out, "%s/%s", root, name);
}

static void blob_path(const char *dir, const uint8_t *hash, char *out)
{
	char rel[HC_BLOCK_PATH_LEN];

	hc_block_path(hash, rel);
	pathf(out, "%s/%s", dir, rel);
}

static int on_disk(const char *dir, const struct blob *b)
{
	char path[PATH_MAX];

	blob_path(dir, b->hash, path);
	return access(path, F_OK) == 0;
}

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static hc_diskcache *open_cache(const char *dir, uint64_t max)
{
	hc_diskcache *dc = NULL;
	int r = hc_diskcache_open(dir, max, &dc);

	if (!check(r == 0 && dc, "open %s: %d", dir, r))
		exit(1);
	/* Every use counts, so that order shows within one second. */
	hc_diskcache_set_granule(dc, 0);
	return dc;
}

/* 1 if get returns exactly b's bytes. */
static int get_ok(hc_diskcache *dc, const struct blob *b)
{
	uint8_t *data = NULL;
	int r = hc_diskcache_get(dc, b->hash, b->len, &data), ok;

	ok = r == 0 && data && !memcmp(data, b->data, b->len);
	if (r == 0)
		free(data);
	return ok;
}

static int get_err(hc_diskcache *dc, const struct blob *b)
{
	uint8_t *data = NULL;
	int r = hc_diskcache_get(dc, b->hash, b->len, &data);

	if (r == 0)
		free(data);
	return r;
}

static struct hc_diskcache_stats stats(hc_diskcache *dc)
{
	struct hc_diskcache_stats st;

	hc_diskcache_stats(dc, &st);
	return st;
}

/* mtimes of files written in a row can be equal (coarse clock): space
 * uses out so each one's time is distinct. */
static void tick(void)
{
	usleep(30000);
}

/* ---- tests ------------------------------------------------------------ */

static void test_round_trip(void)
{
	char dir[PATH_MAX];
	struct blob b[3] = { make_blob(1, 4 << 20), make_blob(2, 5000), make_blob(3, 1) };
	struct blob absent = make_blob(4, 100);
	struct hc_diskcache_stats st;
	hc_diskcache *dc;

	cache_dir("rt", dir);
	dc = open_cache(dir, 64 << 20);
	st = stats(dc);
	check(st.files == 0 && st.bytes == 0 && st.max_bytes == 64 << 20,
	      "round trip: a new cache is not empty");
	for (int i = 0; i < 3; i++) {
		check(hc_diskcache_put(dc, b[i].hash, b[i].data, b[i].len) == 0, "put %d", i);
		check(on_disk(dir, &b[i]), "round trip: block %d not at blocks/xx/HASH", i);
		tick();
	}
	for (int i = 0; i < 3; i++)
		check(get_ok(dc, &b[i]), "round trip: get %d", i);
	check(get_err(dc, &absent) == -ENOENT, "round trip: absent block not -ENOENT");
	/* Storing it again is a no-op. */
	check(hc_diskcache_put(dc, b[0].hash, b[0].data, b[0].len) == 0, "put again");
	st = stats(dc);
	check(st.hits == 3 && st.misses == 1 && st.stores == 3 && st.files == 3 &&
		  st.bytes == (4 << 20) + 5000 + 1 && st.damaged == 0 && st.evictions == 0,
	      "round trip: stats hits %llu misses %llu stores %llu files %llu bytes %llu",
	      (unsigned long long)st.hits, (unsigned long long)st.misses,
	      (unsigned long long)st.stores, (unsigned long long)st.files,
	      (unsigned long long)st.bytes);
	hc_diskcache_close(dc);

	/* Reopened with a smaller bound: the oldest go until it holds. */
	dc = open_cache(dir, 4096);
	check(stats(dc).files == 1 && on_disk(dir, &b[2]) && !on_disk(dir, &b[0]) &&
		  !on_disk(dir, &b[1]),
	      "round trip: reopening with a smaller bound did not evict down to it");
	/* A block larger than the whole cache is not kept. */
	check(hc_diskcache_put(dc, b[1].hash, b[1].data, b[1].len) == 0 && !on_disk(dir, &b[1]),
	      "round trip: a block over the bound was stored");
	check(get_ok(dc, &b[2]), "round trip: the survivor is unreadable");
	hc_diskcache_close(dc);
	free_blobs(b, 3);
	free_blobs(&absent, 1);
}

/* The bound holds, the least recently used goes first, a get counts as
 * a use. */
static void test_lru(void)
{
	char dir[PATH_MAX];
	struct blob b[5];
	hc_diskcache *dc;

	for (unsigned i = 0; i < 5; i++)
		b[i] = make_blob(10 + i, 1000);
	cache_dir("lru", dir);
	dc = open_cache(dir, 3000);
	for (int i = 0; i < 3; i++)
		hc_diskcache_put(dc, b[i].hash, b[i].data, b[i].len);
	check(get_ok(dc, &b[0]), "lru: get 0"); /* 1 is now the oldest */
	hc_diskcache_put(dc, b[3].hash, b[3].data, b[3].len);
	check(!on_disk(dir, &b[1]) && get_err(dc, &b[1]) == -ENOENT,
	      "lru: the least recently used block (1) was not evicted");
	check(on_disk(dir, &b[0]) && on_disk(dir, &b[2]) && on_disk(dir, &b[3]),
	      "lru: a more recently used block was evicted");
	hc_diskcache_put(dc, b[4].hash, b[4].data, b[4].len);
	check(!on_disk(dir, &b[2]) && on_disk(dir, &b[0]), "lru: 2 should go before 0");
	check(stats(dc).evictions == 2 && stats(dc).bytes == 3000 && stats(dc).files == 3,
	      "lru: stats evictions %llu bytes %llu", (unsigned long long)stats(dc).evictions,
	      (unsigned long long)stats(dc).bytes);
	hc_diskcache_close(dc);
	free_blobs(b, 5);
}

/* A new run finds what the last one left, in the same use order: files
 * are ordered by mtime, which a get bumps (once per run). */
static void test_reopen(void)
{
	char dir[PATH_MAX];
	struct blob b[3];
	hc_diskcache *dc;
	struct hc_diskcache_stats st;

	for (unsigned i = 0; i < 3; i++)
		b[i] = make_blob(20 + i, 1000);
	cache_dir("reopen", dir);
	dc = open_cache(dir, 1 << 20);
	for (int i = 0; i < 3; i++) {
		hc_diskcache_put(dc, b[i].hash, b[i].data, b[i].len);
		tick();
	}
	hc_diskcache_close(dc);

	dc = open_cache(dir, 1 << 20);
	st = stats(dc);
	check(st.files == 3 && st.bytes == 3000, "reopen: found %llu files, %llu bytes",
	      (unsigned long long)st.files, (unsigned long long)st.bytes);
	tick();
	check(get_ok(dc, &b[0]), "reopen: block 0 not found again"); /* now the newest */
	hc_diskcache_close(dc);

	/* Room for two: the oldest by use (1) goes at open. */
	dc = open_cache(dir, 2000);
	check(!on_disk(dir, &b[1]) && on_disk(dir, &b[0]) && on_disk(dir, &b[2]),
	      "reopen: eviction at open did not follow the last run's use order");
	check(stats(dc).evictions == 1 && stats(dc).files == 2, "reopen: stats after open");
	/* And the order goes on in this run: 2 is older than 0. */
	hc_diskcache_put(dc, b[1].hash, b[1].data, b[1].len);
	check(!on_disk(dir, &b[2]) && on_disk(dir, &b[0]) && on_disk(dir, &b[1]),
	      "reopen: in-run eviction did not follow the mtimes");
	check(get_ok(dc, &b[0]) && get_ok(dc, &b[1]), "reopen: survivors unreadable");
	hc_diskcache_close(dc);
	free_blobs(b, 3);
}

/* Damages b's file on disk in one of several ways. */
enum damage { FLIP, TRUNCATE, EMPTY, OTHER_SAME_SIZE, LONGER, DELETE };

static void damage(const char *dir, const struct blob *b, enum damage how)
{
	char path[PATH_MAX];
	uint8_t *buf = malloc(b->len + 10);

	blob_path(dir, b->hash, path);
	memcpy(buf, b->data, b->len);
	switch (how) {
	case FLIP:
		buf[b->len / 2] ^= 0x10;
		write_file(path, buf, b->len);
		break;
	case TRUNCATE:
		write_file(path, buf, b->len - 1);
		break;
	case EMPTY:
		write_file(path, buf, 0);
		break;
	case OTHER_SAME_SIZE:
		memset(buf, 'x', b->len);
		write_file(path, buf, b->len);
		break;
	case LONGER:
		memset(buf + b->len, 0, 10);
		write_file(path, buf, b->len + 10);
		break;
	case DELETE:
		unlink(path);
		break;
	}
	free(buf);
}

/* A damaged file is a miss: removed, counted, and stored again later. */
static void test_damaged(void)
{
	static const struct {
		enum damage how;
		const char *name;
		int counts; /* as damaged: a file simply gone is only a miss */
	} t[] = {
		{ FLIP, "bytes flipped", 1 },
		{ TRUNCATE, "truncated", 1 },
		{ EMPTY, "emptied", 1 },
		{ OTHER_SAME_SIZE, "other content", 1 },
		{ LONGER, "other, longer content", 1 },
		{ DELETE, "deleted", 0 },
	};
	enum { N = sizeof(t) / sizeof(t[0]) };
	char dir[PATH_MAX];
	struct blob b[N];
	hc_diskcache *dc;
	uint64_t damaged = 0;

	cache_dir("damaged", dir);
	dc = open_cache(dir, 1 << 20);
	for (unsigned i = 0; i < N; i++) {
		b[i] = make_blob(30 + i, 2000 + i);
		hc_diskcache_put(dc, b[i].hash, b[i].data, b[i].len);
	}
	for (unsigned i = 0; i < N; i++) {
		struct hc_diskcache_stats st;

		damage(dir, &b[i], t[i].how);
		check(get_err(dc, &b[i]) == -ENOENT, "damaged (%s): not a miss", t[i].name);
		check(!on_disk(dir, &b[i]), "damaged (%s): file not removed", t[i].name);
		damaged += (uint64_t)t[i].counts;
		st = stats(dc);
		check(st.damaged == damaged && st.files == N - 1,
		      "damaged (%s): stats damaged %llu (want %llu) files %llu", t[i].name,
		      (unsigned long long)st.damaged, (unsigned long long)damaged,
		      (unsigned long long)st.files);
		/* Fetched again, it can be stored again. */
		check(hc_diskcache_put(dc, b[i].hash, b[i].data, b[i].len) == 0 &&
			  get_ok(dc, &b[i]),
		      "damaged (%s): cannot store it again", t[i].name);
		hc_diskcache_put(dc, b[i].hash, b[i].data, b[i].len);
	}
	/* Damage found by the next run is handled the same way. */
	hc_diskcache_close(dc);
	damage(dir, &b[0], FLIP);
	dc = open_cache(dir, 1 << 20);
	check(get_err(dc, &b[0]) == -ENOENT && !on_disk(dir, &b[0]) && stats(dc).damaged == 1,
	      "damaged after reopen: not a counted miss");
	check(stats(dc).bytes == stats(dc).files * 2000 + (1 + 2 + 3 + 4 + 5),
	      "damaged: bytes %llu after removals", (unsigned long long)stats(dc).bytes);
	hc_diskcache_close(dc);
	free_blobs(b, N);
}

/* Temporary files of a run that died, and anything not named like a
 * block in its place, are removed when the cache opens. */
static void test_leftovers(void)
{
	char dir[PATH_MAX], path[PATH_MAX], hex[2 * HC_SHA256_LEN + 1], upper[sizeof(hex)];
	struct blob good = make_blob(40, 300), other = make_blob(41, 300);
	struct blob other2 = make_blob(42, 300);
	const char *junk[8];
	char junkpath[8][PATH_MAX];
	hc_diskcache *dc;
	int n = 0;

	cache_dir("leftovers", dir);
	dc = open_cache(dir, 1 << 20);
	hc_diskcache_put(dc, good.hash, good.data, good.len);
	hc_diskcache_close(dc);

	hc_hex(other2.hash, HC_SHA256_LEN, upper);
	for (int i = 0; upper[i]; i++)
		upper[i] = (char)(upper[i] >= 'a' ? upper[i] - 32 : upper[i]);
	hc_hex(other.hash, HC_SHA256_LEN, hex);
	upper[2 * HC_SHA256_LEN] = '\0';
	blob_path(dir, good.hash, path);
	/* A temporary beside the good file, as hc_write_atomic names them. */
	pathf(junkpath[n], "%s.tmp.999.0", path);
	junk[n++] = "temporary file";
	pathf(junkpath[n], "%s/blocks/%.2s/%s.tmp.1.2", dir, hex, hex);
	junk[n++] = "temporary file of another block";
	pathf(junkpath[n], "%s/blocks/00/junk", dir);
	junk[n++] = "junk name";
	pathf(junkpath[n], "%s/blocks/%.2s/%.63s", dir, hex, hex);
	junk[n++] = "63 hex digits";
	pathf(junkpath[n], "%s/blocks/%.2s/%sff", dir, hex, hex);
	junk[n++] = "66 hex digits";
	/* A block name in the wrong fan-out directory is never looked up
	 * there, so it could never be read nor evicted. */
	pathf(junkpath[n], "%s/blocks/%s/%s", dir, hex[0] == '0' ? "01" : "00", hex);
	junk[n++] = "block in the wrong directory";
	pathf(junkpath[n], "%s/blocks/%c%c/%s", dir, upper[0] | 32, upper[1] | 32, upper);
	junk[n++] = "block name in uppercase";
	for (int i = 0; i < n; i++)
		write_file(junkpath[i], other.data, other.len);

	dc = open_cache(dir, 1 << 20);
	for (int i = 0; i < n; i++)
		check(!exists(junkpath[i]), "leftovers: %s not removed (%s)", junk[i], junkpath[i]);
	check(stats(dc).files == 1 && stats(dc).bytes == good.len,
	      "leftovers: counted %llu files, %llu bytes", (unsigned long long)stats(dc).files,
	      (unsigned long long)stats(dc).bytes);
	check(get_ok(dc, &good), "leftovers: the good block was lost");
	check(get_err(dc, &other) == -ENOENT && get_err(dc, &other2) == -ENOENT,
	      "leftovers: a junk file served as a block");
	hc_diskcache_close(dc);
	free_blobs(&good, 1);
	free_blobs(&other, 1);
	free_blobs(&other2, 1);
}

/* 1 if get_file gives exactly want. */
static int file_is(hc_diskcache *dc, const char *rel, size_t max, const void *want, size_t wlen)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int ok;

	if (hc_diskcache_get_file(dc, rel, max, &data, &len) < 0)
		return 0;
	ok = len == wlen && !memcmp(data, want, len);
	free(data);
	return ok;
}

static int file_err(hc_diskcache *dc, const char *rel, size_t max)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int r = hc_diskcache_get_file(dc, rel, max, &data, &len);

	if (r == 0)
		free(data);
	return r;
}

/* Index files and latest pointers: any relative path, outside the bound,
 * kept across runs. */
static void test_files(void)
{
	static const char text[] = "v1 1 00\n";
	char dir[PATH_MAX];
	struct blob big = make_blob(50, 100000);
	hc_diskcache *dc;

	cache_dir("files", dir);
	dc = open_cache(dir, 1000);
	check(hc_diskcache_put_file(dc, "index/img/latest", text, sizeof(text) - 1) == 0,
	      "put_file: small");
	check(hc_diskcache_put_file(dc, "index/img/v1", big.data, big.len) == 0,
	      "put_file: larger than the cache bound");
	check(file_is(dc, "index/img/latest", 4096, text, sizeof(text) - 1), "get_file: small");
	check(file_is(dc, "index/img/v1", HC_INDEX_MAX, big.data, big.len), "get_file: large");
	check(file_err(dc, "index/img/v1", 1000) == -EFBIG, "get_file: over max not -EFBIG");
	check(file_err(dc, "index/img/v2", 4096) == -ENOENT, "get_file: absent not -ENOENT");
	check(file_err(dc, "index/other/latest", 4096) == -ENOENT,
	      "get_file: absent directory not -ENOENT");
	check(hc_diskcache_put_file(dc, "index/img/latest", "x\n", 2) == 0 &&
		  file_is(dc, "index/img/latest", 4096, "x\n", 2),
	      "put_file: replace");
	check(stats(dc).bytes == 0 && stats(dc).files == 0,
	      "files: metadata counted against the block bound");
	hc_diskcache_close(dc);

	dc = open_cache(dir, 1000);
	check(file_is(dc, "index/img/v1", HC_INDEX_MAX, big.data, big.len),
	      "get_file: lost across reopen");
	hc_diskcache_close(dc);
	free_blobs(&big, 1);
}

/* The initrd's hcloop opens its cache, then the cache's mount moves into
 * the new root and the initrd switch_roots: the path it was opened by no
 * longer leads there. A rename does the same to the path: blocks, reads
 * and files still go to the cache opened, and nothing appears at the old
 * path. */
static void test_moved(void)
{
	char dir[PATH_MAX], moved[PATH_MAX], gone[PATH_MAX];
	struct blob a = make_blob(60, 5000), b = make_blob(61, 6000);
	hc_diskcache *dc;

	cache_dir("moved-from", dir);
	cache_dir("moved-to", moved);
	dc = open_cache(dir, 100000);
	check(hc_diskcache_put(dc, a.hash, a.data, a.len) == 0, "moved: put before");
	check(rename(dir, moved) == 0, "moved: rename the cache directory");
	check(hc_diskcache_put(dc, b.hash, b.data, b.len) == 0, "moved: put after the move");
	check(get_ok(dc, &a) && get_ok(dc, &b), "moved: both read back after the move");
	check(hc_diskcache_put_file(dc, "seen/img", "7 v7\n", 5) == 0 &&
		  file_is(dc, "seen/img", 4096, "7 v7\n", 5),
	      "moved: put_file and get_file after the move");
	check(on_disk(moved, &a) && on_disk(moved, &b), "moved: the blocks are in the moved cache");
	pathf(gone, "%s/seen/img", moved);
	check(exists(gone) && !exists(dir), "moved: the file too, and nothing at the old path");
	hc_diskcache_close(dc);
	free_blobs(&a, 1);
	free_blobs(&b, 1);
}

/* A cache directory that cannot be made is an error, not a crash. */
static void test_open_errors(void)
{
	char path[PATH_MAX];
	hc_diskcache *dc = NULL;

	pathf(path, "%s/plainfile", root);
	write_file(path, "x", 1);
	check(hc_diskcache_open(path, 1000, &dc) < 0, "open on a regular file succeeded");
	pathf(path, "%s/plainfile/sub", root);
	check(hc_diskcache_open(path, 1000, &dc) < 0, "open below a regular file succeeded");
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	pathf(root, "%s/test_diskcache.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	hc_log_init("test_diskcache", HC_LOG_ERR); /* damaged-file warnings are expected */
	test_round_trip();
	test_lru();
	test_reopen();
	test_damaged();
	test_leftovers();
	test_files();
	test_moved();
	test_open_errors();
	rm_rf(root);
	printf("test_diskcache: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
