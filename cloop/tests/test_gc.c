/*
 * test_gc.c - hcloop gc on a store of three versions of one image and one
 * version of another: a dry run removes nothing but counts what a real
 * run removes; the grace period spares young files; --keep N and the
 * latest pointer decide which versions stay; afterwards the block files
 * are exactly those the kept indexes name; a damaged index stops gc
 * before anything is removed.
 */
#include "../src/gc.h"
#include "../src/index.h"
#include "../src/make.h"
#include "../src/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define SHIFT	   12
#define IMAGE_SIZE ((size_t)64 * 4096)

static char root[PATH_MAX], store[PATH_MAX];

static void quiet(int on)
{
	hc_log_init("test_gc", on ? -1 : HC_LOG_WARN);
}

/* Versions of an image: each changes a few blocks of the one before. */
static void make_version(const char *name, const char *version, int changes, int latest)
{
	char path[PATH_MAX];
	uint8_t *img = malloc(IMAGE_SIZE);
	struct hc_make_opts o = {
		.image = path,
		.store = store,
		.name = name,
		.version = version,
		.block_shift = SHIFT,
		.codec = HC_CODEC_ZSTD,
		.level = 1,
		.threads = 1,
		.created = 1700000000,
		.no_latest = !latest,
	};
	struct hc_make_stats st;

	if (!img)
		exit(1);
	for (size_t i = 0; i < IMAGE_SIZE; i++)
		img[i] = (uint8_t)(i / 4096 * 31 + i % 7 + (name[0] == 'b') * 3);
	for (int c = 0; c < changes; c++)
		memset(img + (size_t)(10 + 5 * c) * 4096, 0x40 + c, 100);
	pathf(path, "%s/%s.img", root, version);
	write_file(path, img, IMAGE_SIZE);
	free(img);
	check(hc_make(&o, &st) == 0, "make %s %s", name, version);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file under dir/sub (blocks or index), as relative paths. */
static size_t list_files(const char *sub, char ***ret)
{
	char dir[PATH_MAX], d2[PATH_MAX], **v = NULL;
	size_t n = 0;
	DIR *d, *e;
	struct dirent *a, *b;

	pathf(dir, "%s/%s", store, sub);
	if (!(d = opendir(dir)))
		return 0;
	while ((a = readdir(d))) {
		if (a->d_name[0] == '.')
			continue;
		pathf(d2, "%s/%s", dir, a->d_name);
		if (!(e = opendir(d2)))
			continue;
		while ((b = readdir(e))) {
			if (b->d_name[0] == '.')
				continue;
			v = realloc(v, (n + 1) * sizeof(*v));
			if (!v || asprintf(&v[n++], "%s/%s/%s", sub, a->d_name, b->d_name) < 0)
				exit(1);
		}
		closedir(e);
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_str);
	*ret = v;
	return n;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int in_list(char **v, size_t n, const char *s)
{
	return bsearch(&s, v, n, sizeof(*v), cmp_str) != NULL;
}

/* The block files are exactly those the store's indexes name. */
static void check_blocks_exact(const char *what)
{
	char **idx, **blk, path[PATH_MAX], rel[HC_BLOCK_PATH_LEN];
	size_t ni = list_files("index", &idx), nb = list_files("blocks", &blk), named = 0;
	char **want = NULL;

	for (size_t i = 0; i < ni; i++) {
		hc_index *x;
		const char *bad;
		uint8_t *buf;
		size_t len;

		if (strstr(idx[i], "/latest"))
			continue;
		pathf(path, "%s/%s", store, idx[i]);
		if (hc_read_file(path, &buf, &len, HC_INDEX_MAX) < 0 ||
		    hc_index_parse(buf, len, &x, &bad) < 0) {
			check(0, "%s: %s unreadable", what, idx[i]);
			continue;
		}
		free(buf);
		for (uint64_t k = 0; k < x->block_count; k++) {
			if (x->entries[k].codec == HC_CODEC_ZERO)
				continue;
			hc_block_path(x->entries[k].hash, rel);
			want = realloc(want, (named + 1) * sizeof(*want));
			if (!want || !(want[named++] = strdup(rel)))
				exit(1);
		}
		hc_index_free(x);
	}
	qsort(want, named, sizeof(*want), cmp_str);
	for (size_t i = 0; i < named; i++)
		check(in_list(blk, nb, want[i]), "%s: %s is gone but an index names it", what,
		      want[i]);
	for (size_t i = 0; i < nb; i++)
		check(strstr(blk[i], ".tmp.") || in_list(want, named, blk[i]),
		      "%s: %s is left but no index names it", what, blk[i]);
	free_list(want, named);
	free_list(idx, ni);
	free_list(blk, nb);
}

/* The mtime age in seconds of the first block file an index names. */
static double first_block_age(const char *index)
{
	char path[PATH_MAX], rel[HC_BLOCK_PATH_LEN];
	const char *bad;
	struct stat st;
	hc_index *x;
	uint8_t *buf;
	size_t len;
	double age = -1;

	pathf(path, "%s/index/%s", store, index);
	if (hc_read_file(path, &buf, &len, HC_INDEX_MAX) < 0)
		return -1;
	if (hc_index_parse(buf, len, &x, &bad) == 0) {
		for (uint64_t k = 0; k < x->block_count && age < 0; k++) {
			if (x->entries[k].codec == HC_CODEC_ZERO)
				continue;
			hc_block_path(x->entries[k].hash, rel);
			pathf(path, "%s/%s", store, rel);
			if (stat(path, &st) == 0)
				age = (double)(time(NULL) - st.st_mtime);
		}
		hc_index_free(x);
	}
	free(buf);
	return age;
}

static int run_gc(unsigned keep, double grace, int dry, struct hc_gc_stats *st)
{
	struct hc_gc_opts o = { .store = store, .keep = keep, .grace = grace, .dry_run = dry };

	return hc_gc(&o, st);
}

static size_t count(const char *sub)
{
	char **v;
	size_t n = list_files(sub, &v);

	free_list(v, n);
	return n;
}

static void make_old(const char *path, int hours)
{
	struct timespec t[2];

	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= hours * 3600;
	t[1] = t[0];
	check(utimensat(AT_FDCWD, path, t, 0) == 0, "utimensat %s", path);
}

static void age_store(void)
{
	char **v, path[PATH_MAX];
	size_t n = list_files("blocks", &v);

	for (size_t i = 0; i < n; i++) {
		pathf(path, "%s/%s", store, v[i]);
		if (!strstr(v[i], ".tmp."))
			make_old(path, 3);
	}
	free_list(v, n);
	n = list_files("index", &v);
	for (size_t i = 0; i < n; i++) {
		pathf(path, "%s/%s", store, v[i]);
		make_old(path, 3);
	}
	free_list(v, n);
}

int main(void)
{
	char path[PATH_MAX], tmp_old[PATH_MAX], tmp_young[PATH_MAX];
	struct hc_gc_stats st, dry;
	size_t blocks_before, idx_before;
	uint8_t *buf;
	size_t len;

	quiet(0);
	scratch_dir(root, "test_gc");
	pathf(store, "%s/store", root);
	make_version("a", "1", 1, 1);
	make_version("a", "2", 2, 1);
	make_version("a", "3", 3, 1);
	make_version("b", "1", 0, 1);
	blocks_before = count("blocks");
	idx_before = count("index");

	/* Everything just written: the grace period spares it all. */
	check(run_gc(1, 3600, 0, &st) == 0, "gc with grace");
	check(st.indexes_removed == 0 && st.blocks_removed == 0 && st.tmp_removed == 0 &&
		  st.indexes_kept == 4 && st.images == 2,
	      "young store: removed %llu indexes, %llu blocks, %llu temporaries",
	      (unsigned long long)st.indexes_removed, (unsigned long long)st.blocks_removed,
	      (unsigned long long)st.tmp_removed);
	check(count("blocks") == blocks_before && count("index") == idx_before,
	      "young store: files removed");

	/* What a killed make leaves: one a while ago, one just now. */
	pathf(tmp_old, "%s/blocks/00/dead.tmp.1.0", store);
	pathf(tmp_young, "%s/blocks/01/dead.tmp.2.0", store);
	write_file(tmp_old, "old", 3);
	write_file(tmp_young, "young", 5);
	make_old(tmp_old, 2);
	blocks_before = count("blocks");
	age_store();
	/* A dry run counts and removes nothing. */
	check(run_gc(1, 3600, 1, &dry) == 0, "gc dry run");
	check(count("blocks") == blocks_before && count("index") == idx_before,
	      "dry run removed files");
	check(dry.indexes_removed == 2 && dry.blocks_removed > 0 && dry.tmp_removed == 1 &&
		  dry.blocks_young == 0,
	      "dry run: %llu indexes, %llu blocks, %llu temporaries, %llu young",
	      (unsigned long long)dry.indexes_removed, (unsigned long long)dry.blocks_removed,
	      (unsigned long long)dry.tmp_removed, (unsigned long long)dry.blocks_young);

	/* Latest points at a's version 2: it stays beside the newest. gc
	 * reads only the version from the pointer. */
	pathf(path, "%s/index/a/latest", store);
	write_file(path, "2 2 0000000000000000000000000000000000000000000000000000000000000000\n",
		   2 + 2 + 64 + 1);
	check(hc_read_file(path, &buf, &len, 4096) == 0 && len == 69, "latest pointer");
	free(buf);
	check(run_gc(1, 3600, 0, &st) == 0, "gc keep 1, latest 2");
	pathf(path, "%s/index/a/1", store);
	check(access(path, F_OK) != 0, "a/1 kept");
	pathf(path, "%s/index/a/2", store);
	check(access(path, F_OK) == 0, "a/2 (latest) removed");
	pathf(path, "%s/index/a/3", store);
	check(access(path, F_OK) == 0, "a/3 (newest) removed");
	check(access(tmp_old, F_OK) != 0 && access(tmp_young, F_OK) == 0,
	      "temporaries: the old one stayed or the young one went");
	check(st.indexes_removed == 1 && st.indexes_kept == 3, "removed %llu, kept %llu indexes",
	      (unsigned long long)st.indexes_removed, (unsigned long long)st.indexes_kept);
	check_blocks_exact("keep 1 with latest 2");
	check(count("blocks") == blocks_before - st.blocks_removed - 1,
	      "block files: %zu before, %llu removed, %zu left", blocks_before,
	      (unsigned long long)st.blocks_removed, count("blocks"));

	/* Latest on the newest again, grace 0: a/2 goes too. */
	make_version("a", "4", 5, 1);
	age_store();
	check(run_gc(1, 0, 0, &st) == 0, "gc keep 1, grace 0");
	check(st.indexes_removed == 2 && st.indexes_kept == 2, "grace 0: removed %llu, kept %llu",
	      (unsigned long long)st.indexes_removed, (unsigned long long)st.indexes_kept);
	check(access(tmp_young, F_OK) != 0, "grace 0: the young temporary stayed");
	check_blocks_exact("keep 1 grace 0");
	check(run_gc(1, 0, 0, &st) == 0 && st.indexes_removed == 0 && st.blocks_removed == 0,
	      "a second gc removed more");

	/* make renews the mtimes of the blocks it finds in the store. */
	age_store();
	check(first_block_age("b/1") > 3600, "aged block: %.0f s old", first_block_age("b/1"));
	make_version("b", "2", 0, 1);
	check(first_block_age("b/2") >= 0 && first_block_age("b/2") < 600,
	      "make did not renew a block it reused: %.0f s old", first_block_age("b/2"));

	/* A damaged index: nothing at all removed. */
	make_version("a", "5", 4, 1);
	pathf(path, "%s/index/a/4", store);
	write_file(path, "garbage", 7);
	age_store();
	blocks_before = count("blocks");
	quiet(1);
	check(run_gc(1, 0, 0, &st) == -EBADMSG, "gc over a damaged index did not fail");
	quiet(0);
	check(count("blocks") == blocks_before && access(path, F_OK) == 0,
	      "gc over a damaged index removed files");
	check(run_gc(0, 0, 0, &st) == -EINVAL, "keep 0 accepted");
	pathf(path, "%s/nothing", root);
	quiet(1);
	{
		struct hc_gc_opts o = { .store = path, .keep = 1 };

		check(hc_gc(&o, &st) == -ENOENT, "gc of a missing store did not fail");
	}
	quiet(0);
	rm_rf(root);
	printf("test_gc: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
