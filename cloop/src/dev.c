/* Block device: see dev.h. A block being made ready has one "pending"
 * record; readers that want it wait on that record, so each block is
 * loaded once however many readers ask. Workers do the CPU work (hash
 * check of cached files, disk-cache writes, decompression) off the
 * fetch thread and off the FUSE threads.
 *
 * Download-ahead: a plan (the boot profile's blocks, then with "fill" all
 * the others) is fed to the fetcher as background requests, a window at a
 * time, so that a reader's miss still goes first. A prefetched block is
 * verified and kept compressed (in the disk cache, or without one in a
 * bounded memory store) and only decoded when something reads it. */
#include "dev.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "memcache.h"
#include "profile.h"
#include "util.h"

enum job { JOB_LOAD, JOB_FETCHED };

enum block_flag {
	B_PREFETCHED = 1, /* the download-ahead fetched it */
	B_HIT = 2,	  /* and it has been read since */
	B_TRACED = 4,	  /* its first read went to --trace */
	B_PLANNED = 8,	  /* the download-ahead's plan holds it */
};

struct pending {
	hc_fetch_req req;
	struct hc_dev *dev;
	uint64_t block;
	int refs; /* the job system's one, plus each waiting reader */
	int done, err;
	int prefetch;	     /* started by the download-ahead */
	pthread_cond_t cond; /* readers of this block wait here */
	struct hc_mblock *m;
	/* job queue */
	enum job job;
	int fetch_err;
	uint8_t *data;
	struct pending *next;
};

struct jobq {
	struct pending *head, *tail;
};

struct hc_dev {
	char *url;
	hc_index *idx;
	struct hc_dev_opts o;
	hc_fetcher *f;
	hc_memcache *mc;
	hc_diskcache *dc;
	pthread_mutex_t lock;
	pthread_cond_t job_cond;
	struct pending **pend;
	/* When each block last failed (seconds since open, 0: never): the
	 * kernel re-asks for a failed page at once, and waiting out every
	 * retry again would only make the reader hang longer. */
	uint32_t *failed_at;
	double opened;
	uint8_t *zeros; /* one block of zeros for zero blocks in a readv */
	atomic_int cache_warned;
	struct jobq urgent, background;
	pthread_t *threads;
	unsigned nthreads;
	int stop;
	uint64_t seq_next, ra_next;
	uint64_t reads, bytes_read, read_errors, block_errors, readahead_blocks;
	/* download-ahead */
	hc_memcache *zc; /* fetched block files, without a disk cache */
	uint32_t *plan;
	size_t nplan, plan_next;
	unsigned pf_out, pf_window;
	uint8_t *flags; /* per block: enum block_flag */
	uint64_t pf_done, pf_bytes, pf_failed, pf_hits, pf_joined;
	double pf_started, pf_finished;
	/* live rate in .stats: bytes at the previous look */
	double rate_at;
	uint64_t rate_bytes;
};

void hc_dev_opts_default(struct hc_dev_opts *o)
{
	hc_fetch_opts_default(&o->fetch);
	o->mem_cache = 16 << 20; /* staging: the page cache caches */
	o->readahead = 32;
	o->workers = 8; /* the cores busy while others wait for the disk */
	o->prefetch = HC_PREFETCH_PROFILE;
	o->prefetch_mem = 256 << 20;
	o->profile = NULL;
	o->nprofile = 0;
	o->trace_fd = -1;
}

static void push_job(struct hc_dev *d, struct pending *p, enum job job)
{
	struct jobq *q = p->req.urgent ? &d->urgent : &d->background;

	p->job = job;
	p->next = NULL;
	if (q->tail)
		q->tail->next = p;
	else
		q->head = p;
	q->tail = p;
	pthread_cond_signal(&d->job_cond);
}

static struct pending *pop_job(struct hc_dev *d)
{
	struct jobq *q = d->urgent.head ? &d->urgent : &d->background;
	struct pending *p = q->head;

	if (p) {
		q->head = p->next;
		if (!q->head)
			q->tail = NULL;
	}
	return p;
}

static void pending_put(struct hc_dev *d, struct pending *p)
{
	if (--p->refs)
		return;
	if (p->m)
		hc_memcache_release(d->mc, p->m);
	pthread_cond_destroy(&p->cond);
	free(p);
}

static uint32_t since_open(const struct hc_dev *d)
{
	return (uint32_t)(hc_now() - d->opened) + 1;
}

/* With the lock held: a block that failed moments ago fails again at
 * once, for as long as one fetch attempt may take. */
static int recently_failed(const struct hc_dev *d, uint64_t b)
{
	uint32_t t = d->failed_at[b];
	double hold = d->o.fetch.timeout > 1 ? d->o.fetch.timeout : 1;

	return t && (double)(since_open(d) - t) < hold;
}

static void pump_prefetch(struct hc_dev *d);

/* m NULL with err 0: a prefetched block was put away without decoding;
 * a reader that joined meanwhile asks again. */
static void complete(struct hc_dev *d, struct pending *p, struct hc_mblock *m, int err)
{
	pthread_mutex_lock(&d->lock);
	p->m = m;
	p->err = err;
	p->done = 1;
	d->pend[p->block] = NULL;
	/* A failed download-ahead is no reason to fail a read at once. */
	if (err && !(p->prefetch && !p->req.urgent)) {
		d->block_errors++;
		d->failed_at[p->block] = since_open(d);
	}
	if (p->prefetch) {
		d->pf_out--;
		if (err)
			d->pf_failed++;
		pump_prefetch(d);
	}
	pthread_cond_broadcast(&p->cond);
	pending_put(d, p);
	pthread_mutex_unlock(&d->lock);
}

static void finish_with_data(struct hc_dev *d, hc_codec_ctx *cc, struct pending *p,
			     const uint8_t *data)
{
	const struct hc_entry *e = &d->idx->entries[p->block];
	struct hc_mblock *m =
	    hc_memcache_alloc(d->mc, p->block, hc_index_block_len(d->idx, p->block));
	int r = m ? hc_block_decode(cc, e->codec, data, e->size, m->data, m->len) : -ENOMEM;

	if (r < 0) {
		char rel[HC_BLOCK_PATH_LEN];

		hc_block_path(e->hash, rel);
		hc_err("block %llu (%s): does not decode as %s (%s); read returns EIO",
		       (unsigned long long)p->block, rel, hc_codec_name(e->codec), strerror(-r));
		hc_memcache_release(d->mc, m);
		complete(d, p, NULL, -EIO);
		return;
	}
	hc_memcache_put(d->mc, m);
	complete(d, p, m, 0);
}

static void on_fetched(hc_fetch_req *req, int err, uint8_t *data, void *opaque)
{
	struct pending *p = opaque;
	struct hc_dev *d = p->dev;

	(void)req;
	pthread_mutex_lock(&d->lock);
	p->fetch_err = err;
	p->data = data;
	push_job(d, p, JOB_FETCHED);
	pthread_mutex_unlock(&d->lock);
}

/* Keeps a fetched, verified block file for later: on disk, or in memory
 * without a disk cache. */
static void keep_file(struct hc_dev *d, struct pending *p, const uint8_t *data)
{
	const struct hc_entry *e = &d->idx->entries[p->block];

	if (d->dc) {
		int r = hc_diskcache_put(d->dc, e->hash, data, e->size);

		/* A full or broken cache disk fails every block alike: say it
		 * once, the reads go on without it. */
		if (r < 0 && atomic_exchange(&d->cache_warned, 1) == 0)
			hc_warn("cache: cannot store block %llu: %s (further failures not logged)",
				(unsigned long long)p->block, strerror(-r));
	} else if (d->zc && p->prefetch) {
		struct hc_mblock *z = hc_memcache_alloc(d->zc, p->block, e->size);

		if (z) {
			memcpy(z->data, data, e->size);
			hc_memcache_put(d->zc, z);
			hc_memcache_release(d->zc, z);
		}
	}
}

/* A block the download-ahead fetched is read for the first time. */
static void count_hit(struct hc_dev *d, uint64_t b)
{
	pthread_mutex_lock(&d->lock);
	if ((d->flags[b] & (B_PREFETCHED | B_HIT)) == B_PREFETCHED) {
		d->flags[b] |= B_HIT;
		d->pf_hits++;
	}
	pthread_mutex_unlock(&d->lock);
}

static void run_job(struct hc_dev *d, hc_codec_ctx *cc, struct pending *p)
{
	const struct hc_entry *e = &d->idx->entries[p->block];
	struct hc_mblock *z;
	uint8_t *data = NULL;
	int waited;

	if (p->job == JOB_LOAD) {
		if (d->zc && (z = hc_memcache_get(d->zc, p->block))) {
			count_hit(d, p->block);
			finish_with_data(d, cc, p, z->data);
			hc_memcache_release(d->zc, z);
			return;
		}
		if (d->dc && hc_diskcache_get(d->dc, e->hash, e->size, &data) == 0) {
			count_hit(d, p->block);
			finish_with_data(d, cc, p, data);
			free(data);
			return;
		}
		memcpy(p->req.hash, e->hash, HC_SHA256_LEN);
		p->req.size = e->size;
		p->req.block = p->block;
		p->req.cb = on_fetched;
		p->req.opaque = p;
		hc_fetcher_submit(d->f, &p->req);
		return;
	}
	if (p->fetch_err) {
		if (p->fetch_err != -ECANCELED && (p->req.urgent || !p->prefetch))
			hc_err("%s; read returns EIO", p->req.why);
		else if (p->fetch_err != -ECANCELED)
			hc_warn("download-ahead: %s", p->req.why);
		complete(d, p, NULL, -EIO);
		return;
	}
	keep_file(d, p, p->data);
	pthread_mutex_lock(&d->lock);
	waited = p->refs > 1 || p->req.urgent;
	if (p->prefetch) {
		d->flags[p->block] |= B_PREFETCHED;
		d->pf_done++;
		d->pf_bytes += e->size;
	}
	pthread_mutex_unlock(&d->lock);
	/* Nobody waits for a prefetched block: decoding it now would only
	 * push wanted blocks out of the memory cache. */
	if (p->prefetch && !waited && (d->dc || d->zc)) {
		free(p->data);
		complete(d, p, NULL, 0);
		return;
	}
	data = p->data; /* p may be gone once finished */
	finish_with_data(d, cc, p, data);
	free(data);
}

static void *worker(void *arg)
{
	struct hc_dev *d = arg;
	hc_codec_ctx *cc = hc_codec_ctx_new();

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct pending *p = pop_job(d);

		if (!p) {
			if (d->stop)
				break;
			pthread_cond_wait(&d->job_cond, &d->lock);
			continue;
		}
		pthread_mutex_unlock(&d->lock);
		run_job(d, cc, p);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	hc_codec_ctx_free(cc);
	return NULL;
}

/* With the lock held: a reader now waits for a block that was loading in
 * the background. A load still waiting for a worker jumps that queue; one
 * already with the fetcher jumps the fetcher's. */
static void promote(struct hc_dev *d, struct pending *p)
{
	struct pending **pp = &d->background.head, *prev = NULL;

	while (*pp && *pp != p) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp) {
		*pp = p->next;
		if (d->background.tail == p)
			d->background.tail = prev;
		p->req.urgent = 1;
		push_job(d, p, p->job);
		return;
	}
	hc_fetcher_make_urgent(d->f, &p->req);
}

/* With the lock held: starts loading block b unless it is cached or on
 * its way; a reader's request promotes a background one. */
static struct pending *request(struct hc_dev *d, uint64_t b, int urgent)
{
	struct pending *p = d->pend[b];

	if (p) {
		if (urgent && !p->req.urgent) {
			d->pf_joined += p->prefetch;
			promote(d, p);
		}
		return p;
	}
	if (d->idx->entries[b].codec == HC_CODEC_ZERO || hc_memcache_contains(d->mc, b))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->dev = d;
	p->block = b;
	p->refs = 1;
	pthread_cond_init(&p->cond, NULL);
	p->req.urgent = urgent;
	d->pend[b] = p;
	push_job(d, p, JOB_LOAD);
	return p;
}

/* A referenced block, or NULL with *ret_err set. */
static struct hc_mblock *get_block(struct hc_dev *d, uint64_t b, int *ret_err)
{
	struct hc_mblock *m;
	struct pending *p;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		m = hc_memcache_get(d->mc, b);
		if (m)
			break;
		if (recently_failed(d, b)) {
			*ret_err = -EIO;
			break;
		}
		p = request(d, b, 1);
		if (!p && hc_memcache_contains(d->mc, b))
			continue; /* cached between our look and the request */
		if (!p) {
			*ret_err = -ENOMEM;
			break;
		}
		p->refs++;
		while (!p->done)
			pthread_cond_wait(&p->cond, &d->lock);
		*ret_err = p->err;
		m = p->m;
		if (m)
			hc_memcache_ref(d->mc, m);
		pending_put(d, p);
		if (!m && !*ret_err)
			continue; /* prefetched and put away undecoded */
		break;
	}
	pthread_mutex_unlock(&d->lock);
	return m;
}

/* With the lock held: keeps the download-ahead's window of background
 * loads full. Blocks already here or on their way are skipped; without a
 * disk cache it stops while the memory store is full. */
static void pump_prefetch(struct hc_dev *d)
{
	while (!d->stop && d->pf_out < d->pf_window && d->plan_next < d->nplan) {
		uint32_t b = d->plan[d->plan_next];
		const struct hc_entry *e = &d->idx->entries[b];
		struct pending *p;

		if (!d->dc) {
			struct hc_memcache_stats zs;

			hc_memcache_stats(d->zc, &zs);
			if (zs.bytes + (uint64_t)(d->pf_out + 1) * hc_index_block_size(d->idx) >
			    d->o.prefetch_mem)
				break;
		}
		d->plan_next++;
		if (d->pend[b] || hc_memcache_contains(d->mc, b) ||
		    (d->zc && hc_memcache_contains(d->zc, b)) ||
		    (d->dc && hc_diskcache_contains(d->dc, e->hash)))
			continue;
		p = request(d, b, 0);
		if (!p)
			break;
		p->prefetch = 1;
		d->pf_out++;
	}
	if (d->plan_next == d->nplan && !d->pf_out && !d->pf_finished && d->nplan)
		d->pf_finished = hc_now();
}

/* With the lock held: the first read of each block goes to the trace. */
static void trace_reads(struct hc_dev *d, uint64_t first, uint64_t last)
{
	char line[32];

	for (uint64_t b = first; b <= last; b++) {
		int n;

		if (d->flags[b] & B_TRACED)
			continue;
		d->flags[b] |= B_TRACED;
		n = snprintf(line, sizeof(line), "%llu\n", (unsigned long long)b);
		if (write(d->o.trace_fd, line, (size_t)n) != n) {
			hc_warn("--trace: cannot write: %s", strerror(errno));
			d->o.trace_fd = -1;
			return;
		}
	}
}

/* Sequential readers get the next blocks loaded before they ask: the
 * window slides with them and each block is requested once. The kernel
 * sends a sequential reader's requests from several threads, a little
 * out of order, so "sequential" means "near where the last one ended". */
static void read_ahead(struct hc_dev *d, uint64_t first, uint64_t last)
{
	uint64_t end, near = d->o.readahead + 1;

	if (!d->o.readahead)
		return;
	HC_LOCK_SCOPE(&d->lock);
	/* While a profile is being fetched, it knows what comes next better
	 * than a guess from sequential reads, and the guess's blocks would
	 * take its bandwidth. */
	if (d->plan_next < d->nplan || d->pf_out) {
		d->seq_next = UINT64_MAX / 2; /* as below */
		return;
	}
	/* A read of a block the profile holds is no sign of what comes
	 * next: the profile already said so, and the blocks between its
	 * blocks are what the boot did not read (measured, issue 21: such
	 * guesses cost 4 to 10 MB by "dom0 ready" on top of a 19 MB
	 * profile). Whether the download-ahead brought the block or a
	 * reader got there first does not matter: on a slow link a boot
	 * reads ahead of the download's window, and reads again what it
	 * read. */
	if (d->flags[first] & B_PLANNED) {
		d->seq_next = UINT64_MAX / 2;
		return;
	}
	if (first + near >= d->seq_next && first <= d->seq_next + near) {
		end = last + d->o.readahead;
		if (end >= d->idx->block_count)
			end = d->idx->block_count - 1;
		for (uint64_t b = d->ra_next > last ? d->ra_next : last + 1; b <= end; b++)
			if (request(d, b, 0))
				d->readahead_blocks++;
		if (end + 1 > d->ra_next)
			d->ra_next = end + 1;
	}
	d->seq_next = last + 1;
}

int hc_dev_readv(hc_dev *d, uint64_t off, size_t len, struct hc_dev_vec *v)
{
	const hc_index *idx = d->idx;
	uint64_t first, last, end;
	int err = 0;

	v->n = 0;
	v->len = 0;
	if (off >= idx->image_size || len == 0)
		return 0;
	if (len > idx->image_size - off)
		len = (size_t)(idx->image_size - off);
	end = off + len;
	first = off >> idx->block_shift;
	last = (end - 1) >> idx->block_shift;
	if (last - first + 1 > HC_DEV_VEC_MAX) {
		last = first + HC_DEV_VEC_MAX - 1;
		end = (last + 1) << idx->block_shift;
		len = (size_t)(end - off);
	}
	if (d->o.trace_fd >= 0) {
		pthread_mutex_lock(&d->lock);
		if (d->o.trace_fd >= 0)
			trace_reads(d, first, last);
		pthread_mutex_unlock(&d->lock);
	}
	read_ahead(d, first, last);
	if (last > first) {
		/* All blocks of a long read at once, not one after another. */
		pthread_mutex_lock(&d->lock);
		for (uint64_t b = first + 1; b <= last; b++)
			request(d, b, 1);
		pthread_mutex_unlock(&d->lock);
	}
	for (uint64_t b = first; b <= last; b++) {
		uint64_t bstart = b << idx->block_shift;
		uint64_t from = off > bstart ? off - bstart : 0;
		uint64_t bend = bstart + hc_index_block_len(idx, b);
		size_t n = (size_t)((end < bend ? end : bend) - bstart - from);
		struct hc_mblock *m = NULL;

		if (idx->entries[b].codec == HC_CODEC_ZERO) {
			v->iov[v->n].iov_base = d->zeros;
		} else {
			m = get_block(d, b, &err);
			if (!m)
				break;
			v->iov[v->n].iov_base = m->data + from;
		}
		v->iov[v->n].iov_len = n;
		v->held[v->n++] = m;
	}
	pthread_mutex_lock(&d->lock);
	d->reads++;
	if (err)
		d->read_errors++;
	else
		d->bytes_read += len;
	pthread_mutex_unlock(&d->lock);
	if (err) {
		hc_dev_release(d, v);
		return -EIO;
	}
	v->len = len;
	return 0;
}

void hc_dev_release(hc_dev *d, struct hc_dev_vec *v)
{
	for (int i = 0; i < v->n; i++)
		hc_memcache_release(d->mc, v->held[i]);
	v->n = 0;
}

ssize_t hc_dev_read(hc_dev *d, void *buf, size_t len, uint64_t off)
{
	struct hc_dev_vec v;
	uint8_t *out = buf;
	size_t done = 0;

	/* Long reads come back HC_DEV_VEC_MAX blocks at a time. */
	while (done < len) {
		int r = hc_dev_readv(d, off + done, len - done, &v);

		if (r < 0)
			return r;
		if (v.len == 0)
			break;
		for (int i = 0; i < v.n; i++) {
			memcpy(out, v.iov[i].iov_base, v.iov[i].iov_len);
			out += v.iov[i].iov_len;
		}
		done += v.len;
		hc_dev_release(d, &v);
	}
	return (ssize_t)done;
}

int hc_dev_open(const char *url, hc_index *idx, hc_diskcache *dc, const struct hc_dev_opts *o,
		hc_dev **ret)
{
	struct hc_dev *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->o = *o;
	d->idx = idx;
	d->dc = dc;
	d->url = strdup(url);
	d->pend = calloc(idx->block_count ? idx->block_count : 1, sizeof(*d->pend));
	d->failed_at = calloc(idx->block_count ? idx->block_count : 1, sizeof(*d->failed_at));
	d->opened = hc_now();
	d->zeros = calloc(1, hc_index_block_size(idx));
	d->mc = hc_memcache_new(o->mem_cache, idx->block_count);
	d->nthreads = o->workers ? o->workers : 1;
	d->threads = calloc(d->nthreads, sizeof(*d->threads));
	d->flags = calloc(idx->block_count ? idx->block_count : 1, 1);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->job_cond, NULL);
	if (!d->url || !d->pend || !d->failed_at || !d->zeros || !d->mc || !d->threads ||
	    !d->flags || !(d->f = hc_fetcher_new(url, &o->fetch)))
		goto fail;
	if (o->prefetch != HC_PREFETCH_OFF &&
	    hc_profile_plan(idx, o->profile, o->nprofile, o->prefetch == HC_PREFETCH_FILL, &d->plan,
			    &d->nplan) < 0)
		goto fail;
	/* Without a disk cache and a memory store there is nowhere to keep
	 * what arrives ahead of its reader. */
	if (d->nplan && !dc &&
	    (!o->prefetch_mem || !(d->zc = hc_memcache_new(o->prefetch_mem, idx->block_count))))
		d->nplan = 0;
	for (size_t i = 0; i < d->nplan; i++)
		d->flags[d->plan[i]] |= B_PLANNED;
	d->pf_window = 2 * hc_fetch_bg_limit(&o->fetch);
	for (unsigned i = 0; i < d->nthreads; i++)
		if (pthread_create(&d->threads[i], NULL, worker, d)) {
			d->nthreads = i;
			goto fail;
		}
	d->rate_at = d->pf_started = hc_now();
	pthread_mutex_lock(&d->lock);
	pump_prefetch(d);
	pthread_mutex_unlock(&d->lock);
	*ret = d;
	return 0;
fail:
	hc_dev_close(d);
	return -ENOMEM;
}

void hc_dev_close(hc_dev *d)
{
	struct pending *p;

	if (!d)
		return;
	/* Workers first (a load in progress may still submit), then the
	 * fetcher, whose cancelled requests come back as jobs to drop. */
	pthread_mutex_lock(&d->lock);
	d->stop = 1;
	pthread_cond_broadcast(&d->job_cond);
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < d->nthreads; i++)
		pthread_join(d->threads[i], NULL);
	hc_fetcher_free(d->f);
	while ((p = pop_job(d))) {
		if (p->job == JOB_FETCHED)
			free(p->data);
		d->pend[p->block] = NULL;
		pending_put(d, p);
	}
	hc_memcache_free(d->mc);
	hc_memcache_free(d->zc);
	free(d->plan);
	free(d->flags);
	pthread_cond_destroy(&d->job_cond);
	pthread_mutex_destroy(&d->lock);
	hc_index_free(d->idx);
	free(d->threads);
	free(d->pend);
	free(d->failed_at);
	free(d->zeros);
	free(d->url);
	free(d);
}

const hc_index *hc_dev_index(const hc_dev *d)
{
	return d->idx;
}

int hc_dev_stats_text(hc_dev *d, char *buf, size_t len)
{
	struct hc_fetch_stats fs;
	struct hc_memcache_stats ms;
	struct hc_memcache_stats zs = { 0 };
	struct hc_diskcache_stats ds = { 0 };
	double now = hc_now(), rate;
	size_t off;
	int n, m;

	hc_fetcher_stats(d->f, &fs);
	hc_memcache_stats(d->mc, &ms);
	if (d->zc)
		hc_memcache_stats(d->zc, &zs);
	if (d->dc)
		hc_diskcache_stats(d->dc, &ds);
	pthread_mutex_lock(&d->lock);
	/* Since the last look at .stats: what a "watch cat" wants to see. */
	rate = now > d->rate_at ? (double)(fs.bytes - d->rate_bytes) / (now - d->rate_at) : 0;
	d->rate_at = now;
	d->rate_bytes = fs.bytes;
	const struct {
		const char *key;
		unsigned long long v;
	} counters[] = {
		{ "serial", d->idx->serial },
		{ "image_bytes", d->idx->image_size },
		{ "block_size", hc_index_block_size(d->idx) },
		{ "reads", d->reads },
		{ "bytes_read", d->bytes_read },
		{ "read_errors", d->read_errors },
		{ "block_errors", d->block_errors },
		{ "readahead_blocks", d->readahead_blocks },
		{ "fetch_requests", fs.requests },
		{ "fetched_blocks", fs.fetched },
		{ "fetched_bytes", fs.bytes },
		{ "fetched_http2", fs.http2 },
		{ "fetch_retries", fs.retries },
		{ "fetch_failovers", fs.failovers },
		{ "fetch_failures", fs.failures },
		{ "peers", fs.peers },
		{ "peer_fetched_blocks", fs.peer_fetched },
		{ "peer_fetched_bytes", fs.peer_bytes },
		{ "peer_lists", fs.peer_lists },
		{ "peer_list_errors", fs.peer_list_errors },
		{ "fetch_rate_bytes", (unsigned long long)rate },
		{ "in_flight", fs.in_flight },
		{ "background_in_flight", fs.bg_in_flight },
		{ "queued", fs.queued },
		{ "prefetch_planned", d->nplan },
		{ "prefetch_left", d->nplan - d->plan_next + d->pf_out },
		{ "prefetch_blocks", d->pf_done },
		{ "prefetch_bytes", d->pf_bytes },
		{ "prefetch_failed", d->pf_failed },
		{ "prefetch_hits", d->pf_hits },
		{ "prefetch_joined", d->pf_joined },
		{ "prefetch_ms",
		  (unsigned long long)(((d->pf_finished ? d->pf_finished : now) - d->pf_started) *
				       1000) },
		{ "prefetch_mem_bytes", zs.bytes },
		{ "mem_hits", ms.hits },
		{ "mem_misses", ms.misses },
		{ "mem_bytes", ms.bytes },
		{ "disk_hits", ds.hits },
		{ "disk_misses", ds.misses },
		{ "disk_bytes", ds.bytes },
		{ "disk_damaged", ds.damaged },
		{ "disk_evictions", ds.evictions },
	};
	pthread_mutex_unlock(&d->lock);

	n = snprintf(buf, len, "url %s\nimage %s\nversion %s\n", d->url, d->idx->name,
		     d->idx->version);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]) && n >= 0; i++) {
		off = (size_t)n;
		if (off >= len)
			break;
		n += snprintf(buf + off, len - off, "%s %llu\n", counters[i].key, counters[i].v);
	}
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	m = hc_fetcher_mirrors_text(d->f, buf + n, len - (size_t)n);
	return m < 0 ? m : n + m;
}
