/* On-disk cache of block files, laid out like a store (blocks/ab/HASH),
 * shared by mounts and boots, bounded in size with least-recently-used
 * eviction. Crash safety: files appear only by rename, and every read
 * re-checks the SHA-256 name, so a block is whole and verified or absent;
 * a damaged one is removed and reported as a miss. */
#ifndef HC_DISKCACHE_H
#define HC_DISKCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

typedef struct hc_diskcache hc_diskcache;

/* Creates dir if needed and scans what an earlier run left. */
int hc_diskcache_open(const char *dir, uint64_t max_bytes, hc_diskcache **ret);
/* The cache as it is, to look at (hcloop info --cache-dir): nothing is
 * made, scanned, evicted or written (puts succeed and keep nothing), and
 * only get_file reads from it. */
int hc_diskcache_open_ro(const char *dir, hc_diskcache **ret);
void hc_diskcache_close(hc_diskcache *dc);
/* 0 with the verified file in *ret (malloc'ed), or -ENOENT. */
int hc_diskcache_get(hc_diskcache *dc, const uint8_t hash[HC_SHA256_LEN], uint32_t size,
		     uint8_t **ret);
/* Whether a block file is cached (not checked: a hint for prefetching). */
int hc_diskcache_contains(hc_diskcache *dc, const uint8_t hash[HC_SHA256_LEN]);
/* data must already be verified against hash. */
int hc_diskcache_put(hc_diskcache *dc, const uint8_t hash[HC_SHA256_LEN], const uint8_t *data,
		     uint32_t size);
/* Small metadata files (indexes, the serial seen) outside the size budget,
 * written durably (file and directory synced). */
int hc_diskcache_put_file(hc_diskcache *dc, const char *rel, const void *data, size_t len);
int hc_diskcache_get_file(hc_diskcache *dc, const char *rel, size_t max, uint8_t **ret,
			  size_t *ret_len);

/* Use order is kept in mtimes to this many seconds (default an hour), so a
 * warm read does not write an inode per block. Tests set 0. */
void hc_diskcache_set_granule(hc_diskcache *dc, double seconds);

struct hc_diskcache_stats {
	uint64_t hits, misses, stores, evictions, damaged, bytes, files, max_bytes;
};
void hc_diskcache_stats(hc_diskcache *dc, struct hc_diskcache_stats *ret);

#endif
