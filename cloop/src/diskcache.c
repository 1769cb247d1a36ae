/* Disk cache: see diskcache.h. An in-memory table of what is on disk
 * drives eviction; file mtimes carry the use order across runs. */
#include "diskcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index.h"
#include "util.h"

struct node {
	uint8_t hash[HC_SHA256_LEN];
	uint32_t size;
	int touched;		  /* mtime already bumped by this run */
	double mtime;		  /* as found by the scan; 0 for new files */
	struct node *prev, *next; /* LRU: head is the oldest */
	struct node *chain;
};

struct hc_diskcache {
	char *dir; /* for messages: every access goes through dirfd */
	int dirfd;
	int ro; /* hc_diskcache_open_ro: nothing is written */
	pthread_mutex_t lock;
	uint64_t max, used;
	double granule; /* seconds: mtimes this fresh are not bumped */
	struct node **buckets;
	size_t nbuckets;
	struct node *head, *tail;
	struct hc_diskcache_stats st;
};

static size_t bucket_of(const hc_diskcache *dc, const uint8_t *hash)
{
	size_t h;

	memcpy(&h, hash, sizeof(h));
	return h & (dc->nbuckets - 1);
}

static struct node *find(hc_diskcache *dc, const uint8_t *hash)
{
	for (struct node *n = dc->buckets[bucket_of(dc, hash)]; n; n = n->chain)
		if (!memcmp(n->hash, hash, HC_SHA256_LEN))
			return n;
	return NULL;
}

static void lru_unlink(hc_diskcache *dc, struct node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		dc->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		dc->tail = n->prev;
	n->prev = n->next = NULL;
}

static void lru_append(hc_diskcache *dc, struct node *n)
{
	n->prev = dc->tail;
	n->next = NULL;
	if (dc->tail)
		dc->tail->next = n;
	else
		dc->head = n;
	dc->tail = n;
}

static int grow(hc_diskcache *dc)
{
	size_t nb = dc->nbuckets ? dc->nbuckets * 2 : 1024;
	struct node **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < dc->nbuckets; i++) {
		struct node *n = dc->buckets[i], *next;

		for (; n; n = next) {
			size_t k;

			next = n->chain;
			memcpy(&k, n->hash, sizeof(k));
			k &= nb - 1;
			n->chain = b[k];
			b[k] = n;
		}
	}
	free(dc->buckets);
	dc->buckets = b;
	dc->nbuckets = nb;
	return 0;
}

static struct node *insert(hc_diskcache *dc, const uint8_t *hash, uint32_t size)
{
	struct node *n = calloc(1, sizeof(*n));
	size_t b;

	if (!n || (dc->st.files + 1 > dc->nbuckets && grow(dc) < 0)) {
		free(n);
		return NULL;
	}
	memcpy(n->hash, hash, HC_SHA256_LEN);
	n->size = size;
	b = bucket_of(dc, hash);
	n->chain = dc->buckets[b];
	dc->buckets[b] = n;
	dc->used += size;
	dc->st.files++;
	return n;
}

static void remove_node(hc_diskcache *dc, struct node *n)
{
	struct node **pp = &dc->buckets[bucket_of(dc, n->hash)];
	char rel[HC_BLOCK_PATH_LEN];

	while (*pp != n)
		pp = &(*pp)->chain;
	*pp = n->chain;
	lru_unlink(dc, n);
	hc_block_path(n->hash, rel);
	unlinkat(dc->dirfd, rel, 0);
	dc->used -= n->size;
	dc->st.files--;
	free(n);
}

static void evict(hc_diskcache *dc)
{
	while (dc->head && dc->used > dc->max) {
		remove_node(dc, dc->head);
		dc->st.evictions++;
	}
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_mtime(const void *a, const void *b)
{
	const struct node *x = *(struct node *const *)a, *y = *(struct node *const *)b;

	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Whether name is a block file's name as hc_block_path() makes it, lowercase
 * and in its own fan-out directory: any other file could never be read
 * nor evicted. */
static int block_name(const char *name, const char *sub, uint8_t *hash)
{
	char hex[2 * HC_SHA256_LEN + 1];

	if (hc_unhex(name, hash, HC_SHA256_LEN) < 0)
		return 0;
	hc_hex(hash, HC_SHA256_LEN, hex);
	return !strcmp(hex, name) && !strncmp(name, sub, 2);
}

/* Files from one fan-out directory into the table; temporary files of a
 * run that died are removed. */
static void scan_dir(hc_diskcache *dc, const char *sub)
{
	char path[16];
	struct dirent *de;
	DIR *d;
	int fd;

	snprintf(path, sizeof(path), "blocks/%s", sub);
	fd = openat(dc->dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		uint8_t hash[HC_SHA256_LEN];
		struct stat st;
		struct node *n;

		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (strstr(de->d_name, ".tmp.") || !block_name(de->d_name, sub, hash) ||
		    st.st_size > (1 << HC_MAX_SHIFT) || find(dc, hash)) {
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		n = insert(dc, hash, (uint32_t)st.st_size);
		if (n)
			n->mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
	}
	closedir(d);
}

static int scan(hc_diskcache *dc)
{
	struct node **all;
	size_t k = 0;
	char sub[3];

	for (int i = 0; i < 256; i++) {
		snprintf(sub, sizeof(sub), "%02x", i);
		scan_dir(dc, sub);
	}
	all = malloc((dc->st.files ? dc->st.files : 1) * sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (size_t b = 0; b < dc->nbuckets; b++)
		for (struct node *n = dc->buckets[b]; n; n = n->chain)
			all[k++] = n;
	qsort(all, k, sizeof(*all), cmp_mtime);
	for (size_t i = 0; i < k; i++)
		lru_append(dc, all[i]);
	free(all);
	evict(dc);
	return 0;
}

int hc_diskcache_open(const char *dir, uint64_t max_bytes, hc_diskcache **ret)
{
	hc_diskcache *dc = calloc(1, sizeof(*dc));
	char path[16];
	int r = -ENOMEM;

	if (!dc)
		return r;
	dc->dirfd = -1;
	if (grow(dc) < 0)
		goto fail;
	pthread_mutex_init(&dc->lock, NULL);
	dc->max = max_bytes;
	dc->granule = 3600;
	/* A descriptor, not a path: a daemon changes to / after opening its
	 * cache, and the initrd's moves the cache's mount into the new root
	 * and switch_roots away from the paths that led there. */
	r = hc_mkdir_p(dir, 0755);
	if (r < 0)
		goto fail;
	dc->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dc->dir = realpath(dir, NULL);
	if (dc->dirfd < 0 || !dc->dir) {
		r = -errno;
		goto fail;
	}
	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "blocks/%02x", i);
		r = hc_mkdir_p_at(dc->dirfd, path, 0755);
		if (r < 0)
			goto fail;
	}
	r = scan(dc);
	if (r < 0)
		goto fail;
	*ret = dc;
	return 0;
fail:
	hc_diskcache_close(dc);
	return r;
}

int hc_diskcache_open_ro(const char *dir, hc_diskcache **ret)
{
	hc_diskcache *dc = calloc(1, sizeof(*dc));
	int r;

	if (!dc)
		return -ENOMEM;
	dc->ro = 1;
	dc->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dc->dir = realpath(dir, NULL);
	if (dc->dirfd < 0 || !dc->dir || grow(dc) < 0) {
		r = errno ? -errno : -ENOMEM;
		hc_diskcache_close(dc);
		return r;
	}
	pthread_mutex_init(&dc->lock, NULL);
	*ret = dc;
	return 0;
}

void hc_diskcache_close(hc_diskcache *dc)
{
	if (!dc)
		return;
	for (size_t b = 0; b < dc->nbuckets; b++) {
		struct node *n = dc->buckets[b], *next;

		for (; n; n = next) {
			next = n->chain;
			free(n);
		}
	}
	free(dc->buckets);
	free(dc->dir);
	if (dc->dirfd >= 0)
		close(dc->dirfd);
	if (dc->nbuckets)
		pthread_mutex_destroy(&dc->lock);
	free(dc);
}

/* A cached block: the index says how long it must be, so one read of a
 * byte more tells a longer file without an fstat. O_NOATIME: the first
 * read of a new file would otherwise write its inode (relatime). */
static int read_block(int dirfd, const char *path, uint32_t size, uint8_t **ret, size_t *ret_len)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOATIME);
	uint8_t *buf;
	size_t got = 0;
	ssize_t n;

	if (fd < 0 && errno == EPERM) /* not the file's owner */
		fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc((size_t)size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	do {
		n = read(fd, buf + got, (size_t)size + 1 - got);
		if (n > 0)
			got += (size_t)n;
	} while ((n > 0 && got <= size) || (n < 0 && errno == EINTR));
	close(fd);
	if (n < 0) {
		free(buf);
		return -EIO;
	}
	*ret = buf;
	*ret_len = got;
	return 0;
}

int hc_diskcache_contains(hc_diskcache *dc, const uint8_t hash[HC_SHA256_LEN])
{
	int found;

	pthread_mutex_lock(&dc->lock);
	found = find(dc, hash) != NULL;
	pthread_mutex_unlock(&dc->lock);
	return found;
}

int hc_diskcache_get(hc_diskcache *dc, const uint8_t hash[HC_SHA256_LEN], uint32_t size,
		     uint8_t **ret)
{
	uint8_t sum[HC_SHA256_LEN], *buf = NULL;
	char rel[HC_BLOCK_PATH_LEN];
	struct node *n;
	size_t len = 0;
	int touch = 0, r;

	pthread_mutex_lock(&dc->lock);
	n = find(dc, hash);
	if (!n) {
		dc->st.misses++;
		pthread_mutex_unlock(&dc->lock);
		return -ENOENT;
	}
	lru_unlink(dc, n);
	lru_append(dc, n);
	/* The use order reaches the next run through mtimes, to the hour:
	 * touching every file on every run would write an inode per block
	 * read, on the warm path, where reads should be all there is. */
	if (!n->touched && n->mtime && wall_now() - n->mtime >= dc->granule)
		touch = n->touched = 1;
	pthread_mutex_unlock(&dc->lock);

	hc_block_path(hash, rel);
	/* Read and hash outside the lock: it is the slow part. */
	r = read_block(dc->dirfd, rel, size, &buf, &len);
	if (r == -EFBIG)
		r = -EBADMSG; /* longer than the index says: as damaged as shorter */
	if (r == 0) {
		hc_sha256(buf, len, sum);
		if (len != size || memcmp(sum, hash, HC_SHA256_LEN))
			r = -EBADMSG;
	}
	if (r == 0 && touch)
		utimensat(dc->dirfd, rel, NULL, 0);

	pthread_mutex_lock(&dc->lock);
	if (r == 0) {
		dc->st.hits++;
	} else {
		/* Evicted by another mount, lost in a crash or damaged on disk:
		 * all the same to the caller, a miss. */
		if (r == -EBADMSG) {
			dc->st.damaged++;
			hc_warn("cache: %s/%s is damaged; removed", dc->dir, rel);
		}
		n = find(dc, hash);
		if (n)
			remove_node(dc, n);
		dc->st.misses++;
		free(buf);
		r = -ENOENT;
	}
	pthread_mutex_unlock(&dc->lock);
	if (r == 0)
		*ret = buf;
	return r;
}

int hc_diskcache_put(hc_diskcache *dc, const uint8_t hash[HC_SHA256_LEN], const uint8_t *data,
		     uint32_t size)
{
	char rel[HC_BLOCK_PATH_LEN];
	struct node *n;
	int r;

	if (size > dc->max || dc->ro)
		return 0;
	pthread_mutex_lock(&dc->lock);
	n = find(dc, hash);
	pthread_mutex_unlock(&dc->lock);
	if (n)
		return 0;
	hc_block_path(hash, rel);
	/* No fsync: a block torn by a crash fails its hash check on the next
	 * read and is dropped, which is as good as never written. */
	r = hc_write_atomic_at(dc->dirfd, rel, data, size, 0);
	if (r < 0)
		return r;
	pthread_mutex_lock(&dc->lock);
	n = find(dc, hash);
	if (!n) {
		n = insert(dc, hash, size);
		if (n) {
			n->touched = 1;
			lru_append(dc, n);
			dc->st.stores++;
		}
		evict(dc);
	}
	pthread_mutex_unlock(&dc->lock);
	return n ? 0 : -ENOMEM;
}

int hc_diskcache_put_file(hc_diskcache *dc, const char *rel, const void *data, size_t len)
{
	char path[PATH_MAX], *slash;
	int r;

	if (dc->ro)
		return 0;
	if (hc_pathf(path, sizeof(path), "%s", rel) < 0 || !(slash = strrchr(path, '/')))
		return -EINVAL;
	*slash = '\0';
	r = hc_mkdir_p_at(dc->dirfd, path, 0755);
	*slash = '/';
	if (r < 0 || (r = hc_write_atomic_at(dc->dirfd, path, data, len, 1)) < 0)
		return r;
	/* Durable before the mount goes on: the serial seen is what refuses a
	 * downgrade at the next boot, even after a power cut. */
	*slash = '\0';
	r = hc_fsync_dir_at(dc->dirfd, path);
	*slash = '/';
	return r;
}

int hc_diskcache_get_file(hc_diskcache *dc, const char *rel, size_t max, uint8_t **ret,
			  size_t *ret_len)
{
	return hc_read_file_at(dc->dirfd, rel, ret, ret_len, max);
}

void hc_diskcache_set_granule(hc_diskcache *dc, double seconds)
{
	dc->granule = seconds;
}

void hc_diskcache_stats(hc_diskcache *dc, struct hc_diskcache_stats *ret)
{
	pthread_mutex_lock(&dc->lock);
	*ret = dc->st;
	ret->bytes = dc->used;
	ret->max_bytes = dc->max;
	pthread_mutex_unlock(&dc->lock);
}
