/* The builder: worker threads each pread a block, compress, hash and
 * write it if the store lacks it, so memory stays at a few blocks per
 * thread whatever the image size. */
#include "make.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "index.h"
#include "profile.h"
#include "sha256.h"
#include "sign.h"
#include "util.h"

/* Hashes of the blocks already handled in this run: open addressing,
 * so a block repeated inside the image is counted and written once. */
struct seen_set {
	pthread_mutex_t lock;
	uint8_t (*slots)[HC_SHA256_LEN];
	uint8_t *used;
	size_t mask;
};

/* Block files written under temporary names, waiting for one syncfs()
 * to make them durable together before they are renamed into place: as
 * safe as an fdatasync per file, at a fraction of the cost. */
#define BATCH 256
struct batch {
	char *tmp[BATCH];
	char *dst[BATCH];
	int n;
};

struct make_ctx {
	const struct hc_make_opts *o;
	int fd;
	int storefd;
	hc_index *idx;
	struct seen_set seen;
	atomic_uint_fast64_t next, done;
	atomic_uint_fast64_t zero, dup, unique, shared, written;
	atomic_uint_fast64_t bytes_in, bytes_stored, bytes_shared, bytes_written;
	atomic_int err;
};

static int seen_init(struct seen_set *s, uint64_t count)
{
	size_t n = 16;

	while (n < 2 * count)
		n <<= 1;
	s->slots = malloc(n * HC_SHA256_LEN);
	s->used = calloc(n, 1);
	s->mask = n - 1;
	pthread_mutex_init(&s->lock, NULL);
	return s->slots && s->used ? 0 : -ENOMEM;
}

static void seen_free(struct seen_set *s)
{
	free(s->slots);
	free(s->used);
	pthread_mutex_destroy(&s->lock);
}

/* 1 if the hash was there already; inserts it otherwise. */
static int seen_test_and_add(struct seen_set *s, const uint8_t *h)
{
	size_t i;
	int found = 0;

	memcpy(&i, h, sizeof(i));
	pthread_mutex_lock(&s->lock);
	for (i &= s->mask; s->used[i]; i = (i + 1) & s->mask) {
		if (!memcmp(s->slots[i], h, HC_SHA256_LEN)) {
			found = 1;
			break;
		}
	}
	if (!found) {
		s->used[i] = 1;
		memcpy(s->slots[i], h, HC_SHA256_LEN);
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

static int all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

static int pread_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the image shrank under us */
		got += (size_t)n;
	}
	return 0;
}

/* 1 if the store already has this block whole: same size and hash, so a
 * damaged leftover is replaced rather than trusted. Its mtime is renewed
 * first: hcloop gc spares blocks younger than its grace period, and one
 * it has just taken away is written again. */
static int store_has(const char *path, const uint8_t *hash, size_t size)
{
	uint8_t *buf, sum[HC_SHA256_LEN];
	size_t len;
	int ok;

	if (utimensat(AT_FDCWD, path, NULL, 0) < 0 && errno == ENOENT)
		return 0;
	if (hc_read_file(path, &buf, &len, size) < 0)
		return 0;
	hc_sha256(buf, len, sum);
	ok = len == size && !memcmp(sum, hash, HC_SHA256_LEN);
	free(buf);
	return ok;
}

static int batch_flush(struct make_ctx *m, struct batch *b)
{
	int r = 0;

	if (b->n && syncfs(m->storefd) < 0)
		r = -errno;
	for (int i = 0; i < b->n; i++) {
		if (r == 0 && rename(b->tmp[i], b->dst[i]) < 0)
			r = -errno;
		if (r < 0)
			unlink(b->tmp[i]);
		free(b->tmp[i]);
		free(b->dst[i]);
	}
	b->n = 0;
	return r;
}

static int store_block(struct make_ctx *m, struct batch *b, const struct hc_entry *e,
		       const uint8_t *data)
{
	char rel[HC_BLOCK_PATH_LEN], path[PATH_MAX];
	int r;

	hc_block_path(e->hash, rel);
	if (hc_pathf(path, sizeof(path), "%s/%s", m->o->store, rel) < 0)
		return -ENAMETOOLONG;
	if (store_has(path, e->hash, e->size)) {
		m->shared++;
		m->bytes_shared += e->size;
		return 0;
	}
	m->written++;
	m->bytes_written += e->size;
	b->dst[b->n] = strdup(path);
	if (!b->dst[b->n])
		return -ENOMEM;
	r = hc_write_tmp(path, data, e->size, 0, &b->tmp[b->n]);
	if (r < 0) {
		free(b->dst[b->n]);
		return r;
	}
	return ++b->n == BATCH ? batch_flush(m, b) : 0;
}

static int make_block(struct make_ctx *m, hc_codec_ctx *cc, struct batch *b, uint64_t i,
		      uint8_t *in, uint8_t *out, size_t cap)
{
	hc_index *idx = m->idx;
	struct hc_entry *e = &idx->entries[i];
	uint32_t len = hc_index_block_len(idx, i);
	size_t n;
	unsigned codec;
	int r;

	r = pread_full(m->fd, in, len, i << idx->block_shift);
	if (r < 0) {
		hc_err("%s: reading block %llu: %s", m->o->image, (unsigned long long)i,
		       strerror(-r));
		return r;
	}
	if (all_zero(in, len)) {
		e->codec = HC_CODEC_ZERO;
		m->zero++;
		return 0;
	}
	r = hc_block_encode(cc, m->o->codec, m->o->level, in, len, out, cap, &n, &codec);
	if (r < 0) {
		hc_err("compressing block %llu: %s", (unsigned long long)i, strerror(-r));
		return r;
	}
	hc_sha256(out, n, e->hash);
	e->size = (uint32_t)n;
	e->codec = (uint8_t)codec;
	m->bytes_in += len;
	if (seen_test_and_add(&m->seen, e->hash)) {
		m->dup++;
		return 0;
	}
	m->unique++;
	m->bytes_stored += n;
	r = store_block(m, b, e, out);
	if (r < 0)
		hc_err("%s: writing block %llu: %s", m->o->store, (unsigned long long)i,
		       strerror(-r));
	return r;
}

static void set_error(struct make_ctx *m, int err)
{
	int zero = 0;

	atomic_compare_exchange_strong(&m->err, &zero, err);
}

static void *worker(void *arg)
{
	struct make_ctx *m = arg;
	size_t bs = hc_index_block_size(m->idx), cap = hc_codec_bound(bs);
	uint8_t *in = malloc(bs), *out = malloc(cap);
	hc_codec_ctx *cc = hc_codec_ctx_new();
	struct batch *b = calloc(1, sizeof(*b));
	uint64_t i;
	int r;

	if (!in || !out || !cc || !b) {
		m->err = -ENOMEM;
		goto out;
	}
	while (!m->err && (i = m->next++) < m->idx->block_count) {
		r = make_block(m, cc, b, i, in, out, cap);
		if (r < 0)
			set_error(m, r);
		m->done++;
	}
	r = batch_flush(m, b);
	if (r < 0) {
		hc_err("%s: writing blocks: %s", m->o->store, strerror(-r));
		set_error(m, r);
	}
out:
	free(b);
	free(in);
	free(out);
	hc_codec_ctx_free(cc);
	return NULL;
}

static void progress(struct make_ctx *m, double start, int final)
{
	uint64_t done = m->done, total = m->idx->block_count;
	double secs = hc_now() - start;
	double mib = (double)(done << m->idx->block_shift) / (1 << 20);

	fprintf(stderr, "\rhcloop make: %llu/%llu blocks (%3.0f%%), %.0f MiB/s   %s",
		(unsigned long long)done, (unsigned long long)total,
		total ? 100.0 * (double)done / (double)total : 100.0, secs > 0 ? mib / secs : 0.0,
		final ? "\n" : "");
	fflush(stderr);
}

static int run_workers(struct make_ctx *m)
{
	unsigned n = m->o->threads ? m->o->threads : 1;
	pthread_t *t = calloc(n, sizeof(*t));
	double start = hc_now();
	unsigned started = 0;

	if (!t)
		return -ENOMEM;
	for (; started < n; started++)
		if (pthread_create(&t[started], NULL, worker, m)) {
			m->err = -EAGAIN;
			break;
		}
	/* The main thread only reports progress; workers pull block numbers
	 * from one counter, so the split needs no coordination. */
	while (m->o->progress && m->done < m->idx->block_count && !m->err) {
		progress(m, start, 0);
		usleep(250000);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	if (m->o->progress)
		progress(m, start, 1);
	free(t);
	return m->err;
}

/* Every block the index names, renewed once more just before it is
 * written, so that hcloop gc's grace period need only cover that moment,
 * not the whole make. A block gone by now was collected while a make
 * longer than gc's grace period ran. */
static int renew_blocks(const struct make_ctx *m)
{
	char rel[HC_BLOCK_PATH_LEN], path[PATH_MAX];

	for (uint64_t i = 0; i < m->idx->block_count; i++) {
		const struct hc_entry *e = &m->idx->entries[i];

		if (e->codec == HC_CODEC_ZERO)
			continue;
		hc_block_path(e->hash, rel);
		if (hc_pathf(path, sizeof(path), "%s/%s", m->o->store, rel) < 0)
			return -ENAMETOOLONG;
		if (utimensat(AT_FDCWD, path, NULL, 0) < 0 && errno == ENOENT) {
			hc_err(
			    "%s: block %llu (%s) was removed while make ran (by hcloop gc with a "
			    "grace period shorter than this make?): run make again",
			    m->o->store, (unsigned long long)i, rel);
			return -ENOENT;
		}
	}
	return 0;
}

static int open_image(const char *path, uint64_t *ret_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;

	if (fd < 0)
		return -errno;
	/* lseek works for regular files and block devices alike. */
	end = lseek(fd, 0, SEEK_END);
	if (end < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	*ret_size = (uint64_t)end;
	return fd;
}

static int read_latest(const char *store, const char *name, struct hc_latest *ret)
{
	char path[PATH_MAX];
	uint8_t *buf;
	size_t len;
	int r;

	r = hc_pathf(path, sizeof(path), "%s/index/%s/latest", store, name);
	if (r < 0)
		return r;
	r = hc_read_file(path, &buf, &len, 4096);
	if (r < 0)
		return r;
	r = hc_latest_parse((const char *)buf, len, ret);
	free(buf);
	if (r < 0)
		hc_err("%s: damaged latest pointer", path);
	return r;
}

/* Whether old, its signature aside, has the sections (the hints: mirrors,
 * profile) that idx is given. */
static int same_sections(const hc_index *old, const hc_index *idx)
{
	size_t n = old->nsections;

	if (n && old->sections[n - 1].type == HC_SECT_SIGNATURE)
		n--;
	if (n != idx->nsections)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct hc_section *x = &old->sections[i], *y = &idx->sections[i];

		if (x->type != y->type || x->flags != y->flags || x->len != y->len ||
		    memcmp(x->data, y->data, x->len))
			return 0;
	}
	return 1;
}

/* An existing index of the same version: one with identical blocks is
 * returned in *ret_same; a different one is replaced only with --force. */
static int check_existing(const struct hc_make_opts *o, const char *path, hc_index *idx,
			  hc_index **ret_same)
{
	uint8_t *buf;
	size_t len;
	hc_index *old;
	const char *why = NULL;
	int r = hc_read_file(path, &buf, &len, HC_INDEX_MAX);

	*ret_same = NULL;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = hc_index_parse(buf, len, &old, &why);
	free(buf);
	if (r == 0) {
		if (old->image_size == idx->image_size && old->block_shift == idx->block_shift &&
		    !memcmp(old->entries, idx->entries, idx->block_count * sizeof(*idx->entries)))
			*ret_same = old;
		idx->serial = old->serial;
		if (!*ret_same)
			hc_index_free(old);
	}
	if (*ret_same || o->force)
		return 0;
	hc_err("%s: version %s of %s already exists with other contents (use --force to replace)",
	       o->store, o->version, o->name);
	return -EEXIST;
}

/* The existing index with the same blocks, as it is, signed by the key
 * of --sign: 0 to write it, 1 when the file already is exactly that
 * (Ed25519 signatures are deterministic). A signature by another key is
 * replaced only with --force. */
static int sign_existing(const struct hc_make_opts *o, hc_index *old, uint8_t **buf, size_t *len)
{
	uint8_t digest[HC_SHA256_LEN];
	struct hc_pubkey signer;
	char why[256];
	int r;

	if (!o->sign_key)
		return 1;
	r = hc_index_signer(old, &signer, why, sizeof(why));
	if (r != -ENOKEY) {
		if (!o->force && (r < 0 || memcmp(signer.pk, o->sign_key->pub.pk, HC_SIG_PUBLEN))) {
			hc_err("%s: version %s of %s is already signed by key %s (use --force to "
			       "sign it with key %s instead)",
			       o->store, old->version, old->name, r < 0 ? why : signer.id,
			       o->sign_key->pub.id);
			return -EEXIST;
		}
		/* The signature is the last section. */
		free(old->sections[--old->nsections].data);
	}
	memcpy(digest, old->digest, sizeof(digest));
	r = hc_index_serialize_signed(old, o->sign_key, buf, len);
	if (r == 0 && !memcmp(digest, old->digest, sizeof(digest))) {
		free(*buf);
		return 1;
	}
	if (r == 0)
		hc_info("%s: signing the existing version %s of %s with key %s", o->store,
			old->version, old->name, o->sign_key->pub.id);
	return r;
}

static int add_mirrors(const struct hc_make_opts *o, hc_index *idx)
{
	size_t len = 0;
	char *text, *p;
	int r;

	if (!o->nmirrors)
		return 0;
	for (size_t i = 0; i < o->nmirrors; i++)
		len += strlen(o->mirrors[i]) + 1;
	text = p = malloc(len + 1);
	if (!text)
		return -ENOMEM;
	for (size_t i = 0; i < o->nmirrors; i++)
		p += sprintf(p, "%s\n", o->mirrors[i]);
	r = hc_index_add_section(idx, HC_SECT_MIRRORS, 0, text, len);
	free(text);
	return r;
}

static int add_profile(const struct hc_make_opts *o, hc_index *idx)
{
	uint8_t *data;
	size_t len;
	int r;

	if (!o->profile)
		return 0;
	r = hc_profile_section(idx, o->profile, o->nprofile, &data, &len);
	if (r == 0)
		r = hc_index_add_section(idx, HC_SECT_PROFILE, 0, data, len);
	free(data);
	return r;
}

static int serialize(const struct hc_make_opts *o, hc_index *idx, uint8_t **buf, size_t *len)
{
	return o->sign_key ? hc_index_serialize_signed(idx, o->sign_key, buf, len)
			   : hc_index_serialize(idx, buf, len);
}

/* The same blocks with other hints (a new profile, other mirrors): the
 * version's index is written anew, same serial. A signed one stays signed
 * only if a key is given. */
static int rewrite_hints(const struct hc_make_opts *o, hc_index *old)
{
	struct hc_pubkey signer;
	char why[256];

	if (o->sign_key || o->force || hc_index_signer(old, &signer, why, sizeof(why)) == -ENOKEY)
		return 0;
	hc_err("%s: version %s of %s is signed: give --sign KEY to change its mirrors or "
	       "profile (or --force to write it unsigned)",
	       o->store, old->version, old->name);
	return -EPERM;
}

/* An older version made again (a build of an older commit) is meant to be
 * the latest once more: clients that followed the pointer past it refuse
 * a lower serial, so it gets the next one, as a new version would. The
 * serial is signed: a signed index needs the key again (--force: it is
 * written unsigned). */
static int publish_again(const struct hc_make_opts *o, hc_index *same, const struct hc_latest *old)
{
	struct hc_pubkey signer;
	char why[256];

	if (!o->sign_key && hc_index_signer(same, &signer, why, sizeof(why)) != -ENOKEY) {
		if (!o->force) {
			hc_err("%s: version %s of %s is signed and older than the latest, %s: give "
			       "--sign KEY to make it the latest again (or --no-latest)",
			       o->store, same->version, same->name, old->version);
			return -EPERM;
		}
		/* The signature is the last section. */
		free(same->sections[--same->nsections].data);
	}
	hc_info("%s: version %s of %s is older than the latest, %s: it is the latest again, "
		"serial %llu",
		o->store, same->version, same->name, old->version,
		(unsigned long long)old->serial + 1);
	same->serial = old->serial + 1;
	return 0;
}

static int write_index(const struct hc_make_opts *o, hc_index *idx, const struct hc_latest *old)
{
	char dir[PATH_MAX], path[PATH_MAX], line[256];
	struct hc_latest l;
	hc_index *same = NULL;
	uint8_t *buf;
	size_t len;
	int r, storefd, hints = 0, again;

	r = hc_pathf(dir, sizeof(dir), "%s/index/%s", o->store, idx->name);
	if (r == 0)
		r = hc_pathf(path, sizeof(path), "%s/%s", dir, idx->version);
	if (r == 0)
		r = hc_mkdir_p(dir, 0755);
	if (r == 0)
		r = add_mirrors(o, idx);
	if (r == 0)
		r = add_profile(o, idx);
	if (r == 0)
		r = check_existing(o, path, idx, &same);
	if (r == 0 && same && !same_sections(same, idx)) {
		r = rewrite_hints(o, same);
		hc_index_free(same);
		same = NULL;
		hints = 1;
	}
	if (r < 0)
		return r;
	/* The same blocks as an older version (not other contents forced
	 * over it: a repair, which leaves the pointer where it is). */
	again = (same || hints) && old && !o->no_latest &&
		(same ? same : idx)->serial < old->serial && strcmp(idx->version, old->version);
	if (again && (r = publish_again(o, same ? same : idx, old)) < 0) {
		hc_index_free(same);
		return r;
	}
	if (same) {
		r = sign_existing(o, same, &buf, &len);
		if (r == 1 && again) /* unsigned: written anew for its serial */
			r = serialize(o, same, &buf, &len);
		if (r != 0) {
			hc_index_free(same);
			return r < 0 ? r : 0;
		}
		idx = same;
	} else if ((r = serialize(o, idx, &buf, &len)) < 0) {
		return r;
	}
	/* The renames of the last blocks must be durable before an index
	 * can point at them. */
	storefd = open(o->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (storefd >= 0) {
		syncfs(storefd);
		close(storefd);
	}
	r = hc_write_atomic(path, buf, len, 1);
	free(buf);
	if (r == 0 && !o->no_latest && (!old || idx->serial >= old->serial)) {
		strcpy(l.version, idx->version);
		l.serial = idx->serial;
		memcpy(l.digest, idx->digest, HC_SHA256_LEN);
		r = hc_pathf(path, sizeof(path), "%s/latest", dir);
		if (r == 0)
			r = hc_latest_format(&l, line, sizeof(line));
		if (r > 0)
			r = hc_write_atomic(path, line, (size_t)r, 1);
	}
	if (r >= 0)
		r = hc_fsync_dir(dir);
	hc_index_free(same);
	return r;
}

static int prepare_store(const char *store)
{
	char path[PATH_MAX];
	int r = 0;

	/* All 256 fan-out directories up front: workers never race on mkdir. */
	for (int i = 0; i < 256 && r == 0; i++) {
		r = hc_pathf(path, sizeof(path), "%s/blocks/%02x", store, i);
		if (r == 0)
			r = hc_mkdir_p(path, 0755);
	}
	return r;
}

int hc_make(const struct hc_make_opts *o, struct hc_make_stats *ret)
{
	struct make_ctx m = { .o = o, .fd = -1, .storefd = -1 };
	struct hc_latest latest;
	int have_latest;
	char version[32];
	uint64_t size = 0;
	double start = hc_now();
	int r;

	if (!hc_name_valid(o->name) || (o->version && !hc_name_valid(o->version))) {
		hc_err("invalid image name or version (letters, digits, '.', '_', '-'; at most %d)",
		       HC_NAME_MAX);
		return -EINVAL;
	}
	m.fd = open_image(o->image, &size);
	if (m.fd < 0) {
		hc_err("%s: %s", o->image, strerror(-m.fd));
		return m.fd;
	}
	r = prepare_store(o->store);
	if (r < 0) {
		hc_err("%s: cannot create the store: %s", o->store, strerror(-r));
		goto out;
	}
	m.storefd = open(o->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m.storefd < 0) {
		r = -errno;
		hc_err("%s: %s", o->store, strerror(-r));
		goto out;
	}
	r = read_latest(o->store, o->name, &latest);
	if (r < 0 && r != -ENOENT)
		goto out;
	have_latest = r == 0;
	snprintf(version, sizeof(version), "%llu",
		 (unsigned long long)(have_latest ? latest.serial + 1 : 1));
	m.idx = hc_index_new(o->name, o->version ? o->version : version, size, o->block_shift,
			     o->codec);
	r = -ENOMEM;
	if (!m.idx || seen_init(&m.seen, m.idx->block_count) < 0)
		goto out;
	m.idx->serial = have_latest ? latest.serial + 1 : 1;
	m.idx->created = o->created;
	r = run_workers(&m);
	if (r == 0)
		r = renew_blocks(&m);
	if (r == 0) {
		struct hc_make_opts oo = *o;

		oo.version = m.idx->version;
		r = write_index(&oo, m.idx, have_latest ? &latest : NULL);
		if (r < 0 && r != -EEXIST)
			hc_err("%s: writing the index: %s", o->store, strerror(-r));
	}
	if (ret) {
		*ret = (struct hc_make_stats){
			.blocks = m.idx->block_count,
			.unique = m.unique,
			.zero = m.zero,
			.dup = m.dup,
			.shared = m.shared,
			.written = m.written,
			.bytes_in = m.bytes_in,
			.bytes_stored = m.bytes_stored,
			.bytes_shared = m.bytes_shared,
			.bytes_written = m.bytes_written,
			.seconds = hc_now() - start,
		};
		snprintf(ret->version, sizeof(ret->version), "%s", m.idx->version);
	}
out:
	if (m.idx)
		seen_free(&m.seen);
	hc_index_free(m.idx);
	close(m.fd);
	if (m.storefd >= 0)
		close(m.storefd);
	return r;
}

void hc_make_print_summary(const struct hc_make_opts *o, const struct hc_make_stats *s)
{
	char a[32], b[32], c[32], d[32];

	printf("%s: image %s version %s\n", o->store, o->name, s->version);
	printf("  blocks        %llu (%llu unique, %llu zero, %llu repeated)\n",
	       (unsigned long long)s->blocks, (unsigned long long)s->unique,
	       (unsigned long long)s->zero, (unsigned long long)s->dup);
	printf("  data          %s before compression, %s after (%.1f%%)\n",
	       hc_fmt_bytes(s->bytes_in, a, sizeof(a)), hc_fmt_bytes(s->bytes_stored, b, sizeof(b)),
	       s->bytes_in ? 100.0 * (double)s->bytes_stored / (double)s->bytes_in : 0.0);
	printf("  shared        %llu blocks, %s already in the store\n",
	       (unsigned long long)s->shared, hc_fmt_bytes(s->bytes_shared, c, sizeof(c)));
	printf("  written       %llu blocks, %s\n", (unsigned long long)s->written,
	       hc_fmt_bytes(s->bytes_written, d, sizeof(d)));
	printf("  time          %.2f s\n", s->seconds);
}
