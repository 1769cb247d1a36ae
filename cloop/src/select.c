/* Mirror ranking: see select.h. Each mirror is measured at once, in its
 * own thread, on the same two requests: the image's latest pointer (best
 * of three: the round trip) and one real block file (checked against its
 * SHA-256: a mirror serving wrong data ranks nowhere). The score is what
 * one block costs there: a round trip plus the block's transfer. */
#include "select.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "load.h"
#include "util.h"

#define PINGS 3

struct probe {
	const char *url, *name;
	const struct hc_fetch_opts *fo;
	const struct hc_entry *block; /* NULL: no block to try */
	double rtt, block_time, score;
	int ok;
	char why[512];
};

/* Seconds to GET rel from the probe's mirror, or a negative errno. */
static double timed_get(struct probe *p, const char *rel, size_t max, uint8_t **buf, size_t *len)
{
	char *u = hc_url_join(p->url, rel);
	double t0 = hc_now();
	int r;

	if (!u)
		return -ENOMEM;
	r = hc_fetch_file(u, p->fo, max, buf, len, p->why, sizeof(p->why));
	free(u);
	return r < 0 ? r : hc_now() - t0;
}

static void *run_probe(void *arg)
{
	struct probe *p = arg;
	char rel[HC_NAME_MAX + 32], path[HC_BLOCK_PATH_LEN];
	uint8_t *buf, sum[HC_SHA256_LEN];
	size_t len;
	double t;

	snprintf(rel, sizeof(rel), "index/%s/latest", p->name);
	p->rtt = 1e9;
	for (int i = 0; i < PINGS; i++) {
		t = timed_get(p, rel, 4096, &buf, &len);
		if (t < 0)
			return NULL;
		free(buf);
		if (t < p->rtt)
			p->rtt = t;
	}
	p->score = p->rtt;
	if (p->block) {
		hc_block_path(p->block->hash, path);
		t = timed_get(p, path, p->block->size, &buf, &len);
		if (t < 0)
			return NULL;
		hc_sha256(buf, len, sum);
		free(buf);
		if (len != p->block->size || memcmp(sum, p->block->hash, HC_SHA256_LEN)) {
			snprintf(p->why, sizeof(p->why), "%s: served %s with wrong contents",
				 p->url, path);
			return NULL;
		}
		p->block_time = t;
		p->score = t;
	}
	p->ok = 1;
	return NULL;
}

/* The block to time: the largest of the first ones a boot reads (the
 * profile's) or of the image's first data blocks. */
static const struct hc_entry *pick_block(const hc_index *idx)
{
	const struct hc_section *s = hc_index_find_section(idx, HC_SECT_PROFILE);
	const struct hc_entry *best = NULL;
	uint64_t n = s ? s->len / 4 : idx->block_count;

	for (uint64_t i = 0; i < n && i < 64; i++) {
		uint64_t b = s ? hc_get32(s->data + 4 * i) : i;
		const struct hc_entry *e = b < idx->block_count ? &idx->entries[b] : NULL;

		if (e && e->codec != HC_CODEC_ZERO && (!best || e->size > best->size))
			best = e;
	}
	return best;
}

static int by_score(const void *a, const void *b)
{
	const struct probe *x = a, *y = b;

	if (x->ok != y->ok)
		return y->ok - x->ok;
	return (x->score > y->score) - (x->score < y->score);
}

int hc_select_main(const char *urls, const char *name, const struct hc_fetch_opts *fo,
		   int list_only)
{
	struct hc_fetch_opts one = *fo;
	struct hc_load_opts lo = { .urls = urls, .name = name, .fetch = &one };
	struct probe *p = NULL;
	pthread_t *th = NULL;
	hc_index *idx = NULL;
	char why[1024], **v = NULL, mb[32];
	size_t n = 0, good = 0;
	int r;

	/* A measurement, not a download: a mirror gets one chance. */
	one.retries = 0;
	if (hc_urls_split(urls, &v, &n) < 0) {
		hc_err("bad mirror list \"%s\"", urls);
		return 2;
	}
	if (hc_fetch_global_init() < 0)
		goto out;
	r = hc_index_load(&lo, &idx, why, sizeof(why));
	if (r < 0) {
		hc_err("no mirror gives image %s: %s", name, why);
		goto out;
	}
	p = calloc(n, sizeof(*p));
	th = calloc(n, sizeof(*th));
	if (!p || !th)
		goto out;
	for (size_t i = 0; i < n; i++) {
		p[i] = (struct probe){
			.url = v[i], .name = name, .fo = &one, .block = pick_block(idx)
		};
		if (pthread_create(&th[i], NULL, run_probe, &p[i])) {
			run_probe(&p[i]);
			th[i] = 0;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (th[i])
			pthread_join(th[i], NULL);
	qsort(p, n, sizeof(*p), by_score);
	if (!list_only)
		printf("%-4s %-40s %10s %12s %10s  %s\n", "rank", "mirror", "round trip", "block",
		       "rate", "status");
	for (size_t i = 0; i < n; i++) {
		if (list_only) {
			if (p[i].ok)
				printf("%s%s", good ? "," : "", p[i].url);
		} else if (p[i].ok) {
			snprintf(mb, sizeof(mb), "%.1f MB/s",
				 p[i].block && p[i].block_time > 0
				     ? p[i].block->size / p[i].block_time / 1e6
				     : 0.0);
			printf("%-4zu %-40s %7.1f ms %9.1f ms %10s  ok\n", i + 1, p[i].url,
			       p[i].rtt * 1000, p[i].block_time * 1000, mb);
		} else {
			printf("%-4s %-40s %10s %12s %10s  %s\n", "-", p[i].url, "-", "-", "-",
			       p[i].why);
		}
		good += p[i].ok;
	}
	if (list_only && good)
		putchar('\n');
	if (!good)
		hc_err("none of the %zu mirrors works", n);
out:
	free(p);
	free(th);
	hc_index_free(idx);
	hc_urls_free(v, n);
	hc_fetch_global_cleanup();
	return good ? 0 : 1;
}
