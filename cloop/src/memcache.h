/* Bounded in-memory cache of decompressed blocks, keyed by block number,
 * least recently used out first. Blocks are reference counted so a reader
 * copies from one without holding the cache's lock. */
#ifndef HC_MEMCACHE_H
#define HC_MEMCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hc_memcache hc_memcache;

struct hc_mblock {
	uint64_t key;
	uint32_t len;
	/* private to memcache.c */
	uint32_t cap;
	int refs;
	int cached;
	struct hc_mblock *prev, *next;
	uint8_t data[];
};

hc_memcache *hc_memcache_new(uint64_t budget, uint64_t nkeys);
void hc_memcache_free(hc_memcache *mc);
/* A new block with one reference, owned by the caller. */
struct hc_mblock *hc_mblock_new(uint64_t key, uint32_t len);
/* The same, reusing the memory of a block freed earlier when one fits:
 * fresh memory costs a page fault per page on first touch. */
struct hc_mblock *hc_memcache_alloc(hc_memcache *mc, uint64_t key, uint32_t len);
/* Referenced block or NULL. */
struct hc_mblock *hc_memcache_get(hc_memcache *mc, uint64_t key);
/* Adds b (the caller keeps its own reference) and evicts old blocks while
 * over budget. A zero budget caches nothing. */
void hc_memcache_put(hc_memcache *mc, struct hc_mblock *b);
void hc_memcache_release(hc_memcache *mc, struct hc_mblock *b);
/* Another reference to a block the caller already holds. */
void hc_memcache_ref(hc_memcache *mc, struct hc_mblock *b);
int hc_memcache_contains(hc_memcache *mc, uint64_t key);

struct hc_memcache_stats {
	uint64_t hits, misses, evictions, bytes, blocks;
};
void hc_memcache_stats(hc_memcache *mc, struct hc_memcache_stats *ret);

#endif
