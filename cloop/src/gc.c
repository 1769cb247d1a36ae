/* Store garbage collection: see gc.h. Every index is read before anything
 * is removed; then the index files that go, then the block files no kept
 * index names. Safety against a concurrent make rests on mtimes: a block
 * make writes is new, and one it reuses gets its mtime renewed (make.c's
 * store_has), so blocks younger than the grace period are left. A block
 * is first renamed aside and its mtime looked at again, so one that make
 * renewed in the meantime goes back, and make, finding it gone, writes it
 * anew. */
#include "gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index.h"
#include "util.h"

struct version {
	char image[HC_NAME_MAX + 1];
	char name[HC_NAME_MAX + 1];
	uint64_t serial, size;
	double mtime;
	hc_index *idx;
	const char *kept; /* why it stays, or NULL */
};

struct gc {
	const struct hc_gc_opts *o;
	struct hc_gc_stats st;
	double now;
	struct version *v;
	size_t nv;
	uint8_t (*ref)[HC_SHA256_LEN];
	size_t nref;
};

static int young(const struct gc *g, const struct stat *st)
{
	double mtime = (double)st->st_mtim.tv_sec + (double)st->st_mtim.tv_nsec / 1e9;

	return g->now - mtime < g->o->grace;
}

static void report(const struct gc *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(const struct gc *g, const char *fmt, ...)
{
	va_list ap;

	if (!g->o->report)
		return;
	va_start(ap, fmt);
	vfprintf(g->o->report, fmt, ap);
	va_end(ap);
}

static int cmp_version(const void *a, const void *b)
{
	const struct version *x = a, *y = b;
	int r = strcmp(x->image, y->image);

	if (r)
		return r;
	/* Newest first: by serial, then by mtime (make --force keeps one). */
	if (x->serial != y->serial)
		return x->serial < y->serial ? 1 : -1;
	return (x->mtime < y->mtime) - (x->mtime > y->mtime);
}

static int add_version(struct gc *g, const char *image, const char *name, const char *path,
		       const struct stat *st)
{
	struct version *v = realloc(g->v, (g->nv + 1) * sizeof(*v));
	const char *why = NULL;
	uint8_t *buf;
	size_t len;
	int r;

	if (!v)
		return -ENOMEM;
	g->v = v;
	v = &v[g->nv];
	memset(v, 0, sizeof(*v));
	r = hc_read_file(path, &buf, &len, HC_INDEX_MAX);
	if (r < 0) {
		hc_err("%s: %s; nothing removed", path, strerror(-r));
		return r;
	}
	r = hc_index_parse(buf, len, &v->idx, &why);
	free(buf);
	if (r < 0) {
		hc_err("%s: %s: the blocks it needs are unknown, nothing removed", path,
		       why ? why : strerror(-r));
		return r;
	}
	/* Both passed hc_name_valid: they fit. */
	strcpy(v->image, image);
	strcpy(v->name, name);
	v->serial = v->idx->serial;
	v->size = (uint64_t)st->st_size;
	v->mtime = (double)st->st_mtim.tv_sec + (double)st->st_mtim.tv_nsec / 1e9;
	if (young(g, st))
		v->kept = "younger than the grace period";
	g->nv++;
	return 0;
}

/* The image's index files into g->v; its latest pointer's version in
 * latest ("" without one). */
static int scan_image(struct gc *g, const char *image, char *latest)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct hc_latest l;
	struct dirent *de;
	struct stat st;
	uint8_t *buf;
	size_t len;
	DIR *d;
	int r = 0;

	latest[0] = '\0';
	r = hc_pathf(dir, sizeof(dir), "%s/index/%s", g->o->store, image);
	if (r < 0)
		return r;
	d = opendir(dir);
	if (!d) {
		r = -errno;
		hc_err("%s: %s", dir, strerror(-r));
		return r;
	}
	while (r == 0 && (de = readdir(d))) {
		if (!hc_name_valid(de->d_name) || strstr(de->d_name, ".tmp."))
			continue; /* not a version: latest, temporaries, strangers */
		if (hc_pathf(path, sizeof(path), "%s/%s", dir, de->d_name) < 0 ||
		    lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		r = add_version(g, image, de->d_name, path, &st);
	}
	closedir(d);
	if (r < 0 || hc_pathf(path, sizeof(path), "%s/latest", dir) < 0)
		return r;
	r = hc_read_file(path, &buf, &len, 4096);
	if (r == -ENOENT)
		return 0;
	if (r == 0) {
		r = hc_latest_parse((const char *)buf, len, &l);
		free(buf);
	}
	if (r < 0) {
		hc_err("%s: %s; nothing removed", path,
		       r == -EBADMSG ? "damaged latest pointer" : strerror(-r));
		return r;
	}
	strcpy(latest, l.version);
	return 0;
}

static int add_refs(struct gc *g, const hc_index *idx)
{
	void *p = realloc(g->ref, (g->nref + idx->block_count + 1) * HC_SHA256_LEN);

	if (!p)
		return -ENOMEM;
	g->ref = p;
	for (uint64_t i = 0; i < idx->block_count; i++)
		if (idx->entries[i].codec != HC_CODEC_ZERO)
			memcpy(g->ref[g->nref++], idx->entries[i].hash, HC_SHA256_LEN);
	return 0;
}

static int cmp_hash(const void *a, const void *b)
{
	return memcmp(a, b, HC_SHA256_LEN);
}

/* Which versions stay: per image the keep newest, the one latest names
 * and any younger than the grace period. */
static int choose(struct gc *g, char (*latest)[HC_NAME_MAX + 1], char (*images)[HC_NAME_MAX + 1],
		  size_t nimages)
{
	size_t rank = 0;
	int r;

	qsort(g->v, g->nv, sizeof(*g->v), cmp_version);
	for (size_t i = 0; i < g->nv; i++) {
		struct version *v = &g->v[i];

		rank = i && !strcmp(v->image, g->v[i - 1].image) ? rank + 1 : 0;
		for (size_t k = 0; k < nimages; k++)
			if (!strcmp(images[k], v->image) && !strcmp(latest[k], v->name))
				v->kept = "latest";
		if (!v->kept && rank < g->o->keep)
			v->kept = "newest";
		if (v->kept && (r = add_refs(g, v->idx)) < 0)
			return r;
	}
	qsort(g->ref, g->nref, HC_SHA256_LEN, cmp_hash);
	return 0;
}

static int remove_indexes(struct gc *g)
{
	const char *verb = g->o->dry_run ? "would remove" : "removed";
	char path[PATH_MAX], b[32];

	for (size_t i = 0; i < g->nv; i++) {
		const struct version *v = &g->v[i];

		if (v->kept) {
			g->st.indexes_kept++;
			report(g, "keep   index/%s/%s (serial %llu, %s)\n", v->image, v->name,
			       (unsigned long long)v->serial, v->kept);
			continue;
		}
		if (hc_pathf(path, sizeof(path), "%s/index/%s/%s", g->o->store, v->image, v->name) <
		    0)
			return -ENAMETOOLONG;
		if (!g->o->dry_run && unlink(path) < 0 && errno != ENOENT) {
			hc_err("%s: %s", path, strerror(errno));
			return -errno;
		}
		g->st.indexes_removed++;
		g->st.index_bytes += v->size;
		report(g, "%s index/%s/%s (serial %llu, %s)\n", verb, v->image, v->name,
		       (unsigned long long)v->serial, hc_fmt_bytes(v->size, b, sizeof(b)));
	}
	return 0;
}

/* A block no kept index names, renamed aside first: see the top. */
static int remove_block(struct gc *g, int dfd, const char *name, const struct stat *st)
{
	char aside[NAME_MAX + 1];
	struct stat now;

	if (!g->o->dry_run) {
		snprintf(aside, sizeof(aside), "%.64s.tmp.gc.%ld", name, (long)getpid());
		if (renameat(dfd, name, dfd, aside) < 0)
			return errno == ENOENT ? 0 : -errno;
		if (fstatat(dfd, aside, &now, AT_SYMLINK_NOFOLLOW) == 0 && young(g, &now)) {
			if (renameat(dfd, aside, dfd, name) < 0)
				return -errno;
			g->st.blocks_young++;
			return 0;
		}
		if (unlinkat(dfd, aside, 0) < 0)
			return -errno;
	}
	g->st.blocks_removed++;
	g->st.block_bytes += (uint64_t)st->st_size;
	hc_debug("%s %s", g->o->dry_run ? "would remove" : "removed", name);
	return 0;
}

/* Temporaries older than the grace period: what a killed writer left. */
static int remove_tmp(struct gc *g, int dfd, const char *name, const struct stat *st)
{
	if (young(g, st))
		return 0;
	if (!g->o->dry_run && unlinkat(dfd, name, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	g->st.tmp_removed++;
	g->st.tmp_bytes += (uint64_t)st->st_size;
	hc_debug("%s %s", g->o->dry_run ? "would remove" : "removed", name);
	return 0;
}

/* One directory of the store; blocks says whether it is a blocks/xx one. */
static int sweep_dir(struct gc *g, const char *dir, int blocks)
{
	uint8_t hash[HC_SHA256_LEN];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);
	int r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (r == 0 && (de = readdir(d))) {
		const char *n = de->d_name;

		if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (strstr(n, ".tmp."))
			r = remove_tmp(g, dirfd(d), n, &st);
		else if (!blocks || strlen(n) != 2 * HC_SHA256_LEN ||
			 hc_unhex(n, hash, HC_SHA256_LEN) < 0)
			continue; /* not ours */
		else if (bsearch(hash, g->ref, g->nref, HC_SHA256_LEN, cmp_hash))
			g->st.blocks_kept++;
		else if (young(g, &st))
			g->st.blocks_young++;
		else
			r = remove_block(g, dirfd(d), n, &st);
	}
	closedir(d);
	if (r < 0)
		hc_err("%s: %s", dir, strerror(-r));
	return r;
}

static int sweep(struct gc *g, char (*images)[HC_NAME_MAX + 1], size_t nimages)
{
	char dir[PATH_MAX];
	int r = 0;

	for (size_t i = 0; i < nimages && r == 0; i++)
		if ((r = hc_pathf(dir, sizeof(dir), "%s/index/%s", g->o->store, images[i])) == 0)
			r = sweep_dir(g, dir, 0);
	for (int i = 0; i < 256 && r == 0; i++)
		if ((r = hc_pathf(dir, sizeof(dir), "%s/blocks/%02x", g->o->store, i)) == 0)
			r = sweep_dir(g, dir, 1);
	return r;
}

/* The image directories under index/. */
static int list_images(const char *store, char (**ret)[HC_NAME_MAX + 1], size_t *ret_n)
{
	char dir[PATH_MAX], (*v)[HC_NAME_MAX + 1] = NULL, (*nv)[HC_NAME_MAX + 1];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	if (hc_pathf(dir, sizeof(dir), "%s/index", store) < 0)
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d) {
		int e = errno;

		hc_err("%s: %s%s", dir, strerror(e), e == ENOENT ? " (not an hcloop store)" : "");
		return -e;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!hc_name_valid(de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			closedir(d);
			free(v);
			return -ENOMEM;
		}
		v = nv;
		strcpy(v[n++], de->d_name); /* hc_name_valid: it fits */
	}
	closedir(d);
	*ret = v;
	*ret_n = n;
	return 0;
}

int hc_gc(const struct hc_gc_opts *o, struct hc_gc_stats *ret)
{
	struct gc g = { .o = o };
	char(*images)[HC_NAME_MAX + 1] = NULL, (*latest)[HC_NAME_MAX + 1] = NULL;
	size_t nimages = 0;
	struct timespec ts;
	int r;

	if (o->keep < 1)
		return -EINVAL;
	clock_gettime(CLOCK_REALTIME, &ts);
	g.now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	r = list_images(o->store, &images, &nimages);
	if (r == 0 && !(latest = calloc(nimages + 1, sizeof(*latest))))
		r = -ENOMEM;
	for (size_t i = 0; i < nimages && r == 0; i++)
		r = scan_image(&g, images[i], latest[i]);
	if (r == 0)
		r = choose(&g, latest, images, nimages);
	if (r == 0)
		r = remove_indexes(&g);
	if (r == 0)
		r = sweep(&g, images, nimages);
	g.st.images = nimages;
	if (ret)
		*ret = g.st;
	for (size_t i = 0; i < g.nv; i++)
		hc_index_free(g.v[i].idx);
	free(g.v);
	free(g.ref);
	free(images);
	free(latest);
	return r;
}
