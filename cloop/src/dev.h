/* The block device: an index plus the memory cache, the disk cache and
 * the fetcher, turned into pread() on the image. No FUSE here, so tests
 * drive it directly. */
#ifndef HC_DEV_H
#define HC_DEV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "diskcache.h"
#include "fetch.h"
#include "index.h"

enum hc_prefetch {
	HC_PREFETCH_OFF,
	HC_PREFETCH_PROFILE, /* the boot profile's blocks, in its order */
	HC_PREFETCH_FILL,    /* then every other block: the network may go */
};

struct hc_dev_opts {
	struct hc_fetch_opts fetch; /* .bg_connections and .bg_rate bound the prefetch */
	uint64_t mem_cache;	    /* bytes of decompressed blocks kept in memory */
	unsigned readahead;	    /* blocks fetched ahead of a sequential reader */
	unsigned workers;	    /* threads that verify, cache and decompress */
	int prefetch;		    /* enum hc_prefetch */
	/* Without a disk cache, prefetched blocks wait in memory, compressed,
	 * up to this many bytes. */
	uint64_t prefetch_mem;
	const uint32_t *profile; /* instead of the index's (borrowed), or NULL */
	size_t nprofile;
	int trace_fd; /* -1, or where each block's first read is written */
};
void hc_dev_opts_default(struct hc_dev_opts *o);

typedef struct hc_dev hc_dev;

/* Takes ownership of idx (and borrows dc, which may be NULL). Starts
 * threads: call after any fork. */
int hc_dev_open(const char *url, hc_index *idx, hc_diskcache *dc, const struct hc_dev_opts *o,
		hc_dev **ret);
void hc_dev_close(hc_dev *d);
const hc_index *hc_dev_index(const hc_dev *d);
/* Bytes read (short only at the end of the image) or -EIO. */
ssize_t hc_dev_read(hc_dev *d, void *buf, size_t len, uint64_t off);

/* The same without a copy: iov points into cached blocks, which stay
 * valid until hc_dev_release. Covers at most HC_DEV_VEC_MAX blocks
 * (len says how much); 0 or -EIO. */
#define HC_DEV_VEC_MAX 260
struct hc_dev_vec {
	struct iovec iov[HC_DEV_VEC_MAX];
	struct hc_mblock *held[HC_DEV_VEC_MAX];
	int n;
	size_t len;
};
int hc_dev_readv(hc_dev *d, uint64_t off, size_t len, struct hc_dev_vec *v);
void hc_dev_release(hc_dev *d, struct hc_dev_vec *v);
/* Human-readable counters, one "key value" per line. */
int hc_dev_stats_text(hc_dev *d, char *buf, size_t len);

#endif
