/* info and verify: see tools.h. */
#include "tools.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "codec.h"
#include "dev.h"
#include "index.h"
#include "load.h"
#include "util.h"

/* With a cache dir, an index no mirror answers for comes from the cache,
 * as a mount with that cache would take it (a CD booted offline lists its
 * guests this way); the cache is only read. */
static int load(const char *url, const char *name, const char *version, const char *file,
		const struct hc_fetch_opts *fo, const struct hc_pubkey *pk, const char *cache_dir,
		hc_index **ret)
{
	char why[1024];
	uint8_t *buf;
	size_t len;
	const char *bad;
	int r;

	if (!file) {
		struct hc_load_opts lo = {
			.urls = url, .name = name, .version = version, .fetch = fo, .pubkey = pk
		};

		/* A cache that is not there (yet) only has nothing to offer. */
		if (cache_dir && hc_diskcache_open_ro(cache_dir, &lo.dc) < 0)
			lo.dc = NULL;
		r = hc_index_load(&lo, ret, why, sizeof(why));
		if (r < 0)
			hc_err("%s", why);
		hc_diskcache_close(lo.dc);
		return r;
	}
	r = hc_read_file(file, &buf, &len, HC_INDEX_MAX);
	if (r < 0) {
		hc_err("%s: %s", file, strerror(-r));
		return r;
	}
	r = hc_index_parse(buf, len, ret, &bad);
	if (r < 0) {
		hc_err("%s: %s", file, bad);
	} else if (pk && (r = hc_index_verify(buf, len, *ret, pk, why, sizeof(why))) < 0) {
		hc_err("%s %s", file, why);
		hc_index_free(*ret);
	}
	free(buf);
	return r;
}

/* Whether an index is signed and whether it carries a boot profile are
 * always stated: a script (or a person checking a store before a boot)
 * should not have to infer them from a missing line. */
static void print_sections(const hc_index *idx, const struct hc_pubkey *pk)
{
	int signed_ = 0, profiled = 0;

	for (size_t i = 0; i < idx->nsections; i++) {
		const struct hc_section *s = &idx->sections[i];
		struct hc_pubkey signer;
		char why[256];

		if (s->type == HC_SECT_SIGNATURE) {
			signed_ = 1;
			if (hc_index_signer(idx, &signer, why, sizeof(why)) < 0)
				printf("signature:    %s\n", why);
			else
				printf("signature:    Ed25519, key %s (%s)\n", signer.id,
				       pk ? "verified" : "not checked: no --pubkey");
		} else if (s->type == HC_SECT_MIRRORS) {
			printf("mirrors:\n");
			for (const char *p = (const char *)s->data, *end = p + s->len; p < end;) {
				const char *nl = memchr(p, '\n', (size_t)(end - p));
				size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

				printf("  %.*s\n", (int)n, p);
				p += n + 1;
			}
		} else if (s->type == HC_SECT_PROFILE) {
			profiled = 1;
			printf("profile:      %llu blocks (boot read order)\n",
			       (unsigned long long)(s->len / 4));
		} else {
			printf("section:      type %u, %llu bytes\n", s->type,
			       (unsigned long long)s->len);
		}
	}
	if (!profiled)
		printf("profile:      none\n");
	if (!signed_)
		printf("signature:    none (unsigned index)\n");
}

/* One line per block, for scripts: number, codec, file size, file path. */
static void print_blocks(const hc_index *idx)
{
	for (uint64_t i = 0; i < idx->block_count; i++) {
		const struct hc_entry *e = &idx->entries[i];
		char rel[HC_BLOCK_PATH_LEN] = "-";

		if (e->codec != HC_CODEC_ZERO)
			hc_block_path(e->hash, rel);
		printf("block %llu %s %u %s\n", (unsigned long long)i, hc_codec_name(e->codec),
		       e->size, rel);
	}
}

static int cmp_entry(const void *a, const void *b)
{
	const struct hc_entry *x = *(const struct hc_entry *const *)a;
	const struct hc_entry *y = *(const struct hc_entry *const *)b;

	return memcmp(x->hash, y->hash, HC_SHA256_LEN);
}

/* Whether DIR (a disk cache, laid out like a store) holds block file E,
 * judged by its size: mount checks the contents when it reads it. */
static int cached(const char *dir, const struct hc_entry *e)
{
	char rel[HC_BLOCK_PATH_LEN], path[4096];
	struct stat st;

	hc_block_path(e->hash, rel);
	return hc_pathf(path, sizeof(path), "%s/%s", dir, rel) == 0 && stat(path, &st) == 0 &&
	       S_ISREG(st.st_mode) && st.st_size == (off_t)e->size;
}

int hc_info_main(const char *url, const char *name, const char *version, const char *file,
		 const struct hc_fetch_opts *fo, const struct hc_pubkey *pk, int list_blocks,
		 const char *cache_dir)
{
	uint64_t count[4] = { 0 }, stored = 0, unique = 0, missing = 0, missing_bytes = 0;
	const struct hc_entry **hashes;
	size_t nh = 0;
	hc_index *idx;
	char digest[2 * HC_SHA256_LEN + 1], b1[32], b2[32], when[64];
	time_t created;
	struct tm tm;

	if (hc_fetch_global_init() < 0 ||
	    load(url, name, version, file, fo, pk, cache_dir, &idx) < 0)
		return 1;
	hashes = malloc((idx->block_count ? idx->block_count : 1) * sizeof(*hashes));
	if (!hashes) {
		hc_index_free(idx);
		return 1;
	}
	for (uint64_t i = 0; i < idx->block_count; i++) {
		const struct hc_entry *e = &idx->entries[i];

		count[e->codec]++;
		if (e->codec != HC_CODEC_ZERO)
			hashes[nh++] = e;
	}
	/* Sorted by hash, repeats sit together and count once. */
	qsort(hashes, nh, sizeof(*hashes), cmp_entry);
	for (size_t i = 0; i < nh; i++) {
		if (i && !memcmp(hashes[i]->hash, hashes[i - 1]->hash, HC_SHA256_LEN))
			continue;
		unique++;
		stored += hashes[i]->size;
		if (cache_dir && !cached(cache_dir, hashes[i])) {
			missing++;
			missing_bytes += hashes[i]->size;
		}
	}
	free(hashes);
	hc_hex(idx->digest, HC_SHA256_LEN, digest);
	created = (time_t)idx->created;
	gmtime_r(&created, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("image:        %s\nversion:      %s (serial %llu)\ncreated:      %s\n", idx->name,
	       idx->version, (unsigned long long)idx->serial, when);
	printf("size:         %llu bytes (%s)\nblock size:   %llu\ncompression:  %s\n",
	       (unsigned long long)idx->image_size, hc_fmt_bytes(idx->image_size, b1, sizeof(b1)),
	       (unsigned long long)hc_index_block_size(idx), hc_codec_name(idx->codec));
	printf("blocks:       %llu (zstd %llu, zlib %llu, raw %llu, zero %llu)\n",
	       (unsigned long long)idx->block_count, (unsigned long long)count[HC_CODEC_ZSTD],
	       (unsigned long long)count[HC_CODEC_ZLIB], (unsigned long long)count[HC_CODEC_RAW],
	       (unsigned long long)count[HC_CODEC_ZERO]);
	printf("stored:       %llu block files, %s\n", (unsigned long long)unique,
	       hc_fmt_bytes(stored, b2, sizeof(b2)));
	if (cache_dir)
		printf("uncached:     %llu block files, %llu bytes (not in %s)\n",
		       (unsigned long long)missing, (unsigned long long)missing_bytes, cache_dir);
	printf("index sha256: %s\n", digest);
	print_sections(idx, pk);
	if (list_blocks)
		print_blocks(idx);
	hc_index_free(idx);
	hc_fetch_global_cleanup();
	return 0;
}

struct verify {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const hc_index *idx;
	hc_codec_ctx *cc;
	uint8_t *out;
	uint64_t outstanding, ok, bad;
};

struct vreq {
	hc_fetch_req req;
	struct verify *v;
	uint8_t codec;
	uint32_t len;
};

static void on_verified(hc_fetch_req *req, int err, uint8_t *data, void *opaque)
{
	struct vreq *q = opaque;
	struct verify *v = q->v;

	pthread_mutex_lock(&v->lock);
	if (err == 0) {
		/* The fetcher checked the hash; a block must also decode. */
		err = hc_block_decode(v->cc, q->codec, data, req->size, v->out, q->len);
		if (err < 0)
			snprintf(req->why, sizeof(req->why), "block %llu: does not decode as %s",
				 (unsigned long long)req->block, hc_codec_name(q->codec));
	}
	if (err < 0) {
		v->bad++;
		printf("BAD %s\n", req->why);
	} else {
		v->ok++;
	}
	v->outstanding--;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->lock);
	free(data);
}

int hc_verify_main(const char *url, const char *name, const char *version,
		   const struct hc_fetch_opts *fo, const struct hc_pubkey *pk, int progress)
{
	struct verify v = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct hc_fetch_opts o = *fo;
	struct vreq *reqs = NULL;
	hc_fetcher *f = NULL;
	hc_index *idx;
	uint64_t n = 0, zero = 0;
	int r = 1;

	if (hc_fetch_global_init() < 0 || load(url, name, version, NULL, fo, pk, NULL, &idx) < 0)
		return 1;
	v.idx = idx;
	v.cc = hc_codec_ctx_new();
	v.out = malloc(hc_index_block_size(idx));
	reqs = calloc(idx->block_count ? idx->block_count : 1, sizeof(*reqs));
	f = hc_fetcher_new(url, &o);
	if (!v.cc || !v.out || !reqs || !f) {
		hc_err("out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < idx->block_count; i++) {
		const struct hc_entry *e = &idx->entries[i];
		struct vreq *q = &reqs[n];

		if (e->codec == HC_CODEC_ZERO) {
			zero++;
			continue;
		}
		memcpy(q->req.hash, e->hash, HC_SHA256_LEN);
		q->req.size = e->size;
		q->req.block = i;
		q->req.cb = on_verified;
		q->req.opaque = q;
		q->v = &v;
		q->codec = e->codec;
		q->len = hc_index_block_len(idx, i);
		n++;
	}
	v.outstanding = n;
	for (uint64_t i = 0; i < n; i++)
		hc_fetcher_submit(f, &reqs[i].req);
	pthread_mutex_lock(&v.lock);
	while (v.outstanding) {
		if (progress) {
			fprintf(stderr, "\rhcloop verify: %llu/%llu blocks checked",
				(unsigned long long)(n - v.outstanding), (unsigned long long)n);
			fflush(stderr);
		}
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&v.cond, &v.lock, &ts);
	}
	pthread_mutex_unlock(&v.lock);
	if (progress)
		fputc('\n', stderr);
	printf("%s version %s: %llu blocks, %llu zero, %llu fetched and verified, %llu bad\n",
	       idx->name, idx->version, (unsigned long long)idx->block_count,
	       (unsigned long long)zero, (unsigned long long)v.ok, (unsigned long long)v.bad);
	r = v.bad ? 1 : 0;
out:
	hc_fetcher_free(f);
	free(reqs);
	free(v.out);
	hc_codec_ctx_free(v.cc);
	hc_index_free(idx);
	hc_fetch_global_cleanup();
	return r;
}
