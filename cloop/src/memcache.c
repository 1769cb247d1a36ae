/* Memory cache: see memcache.h. Keys are dense block numbers, so a plain
 * array maps them; the LRU list runs from head (oldest) to tail. */
#include "memcache.h"

#include <pthread.h>
#include <stdlib.h>

struct hc_memcache {
	pthread_mutex_t lock;
	uint64_t budget, used, nkeys;
	struct hc_mblock **slots;
	struct hc_mblock *head, *tail;
	struct hc_mblock *spare; /* freed blocks kept for reuse */
	unsigned nspare;
	struct hc_memcache_stats st;
};

#define MAX_SPARE 64

hc_memcache *hc_memcache_new(uint64_t budget, uint64_t nkeys)
{
	hc_memcache *mc = calloc(1, sizeof(*mc));

	if (!mc)
		return NULL;
	mc->slots = calloc(nkeys ? nkeys : 1, sizeof(*mc->slots));
	if (!mc->slots) {
		free(mc);
		return NULL;
	}
	mc->budget = budget;
	mc->nkeys = nkeys;
	pthread_mutex_init(&mc->lock, NULL);
	return mc;
}

/* A block (new or reused) as the caller's only reference, uncached. */
static struct hc_mblock *mblock_init(struct hc_mblock *b, uint64_t key, uint32_t len)
{
	b->key = key;
	b->len = len;
	b->refs = 1;
	b->cached = 0;
	b->prev = b->next = NULL;
	return b;
}

struct hc_mblock *hc_mblock_new(uint64_t key, uint32_t len)
{
	struct hc_mblock *b = malloc(sizeof(*b) + len);

	if (!b)
		return NULL;
	b->cap = len;
	return mblock_init(b, key, len);
}

static void unlink_lru(hc_memcache *mc, struct hc_mblock *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		mc->head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else
		mc->tail = b->prev;
	b->prev = b->next = NULL;
}

static void append_lru(hc_memcache *mc, struct hc_mblock *b)
{
	b->prev = mc->tail;
	b->next = NULL;
	if (mc->tail)
		mc->tail->next = b;
	else
		mc->head = b;
	mc->tail = b;
}

/* With the lock held: the last reference is gone. */
static void put_spare(hc_memcache *mc, struct hc_mblock *b)
{
	if (mc->nspare >= MAX_SPARE) {
		free(b);
		return;
	}
	b->next = mc->spare;
	mc->spare = b;
	mc->nspare++;
}

struct hc_mblock *hc_memcache_alloc(hc_memcache *mc, uint64_t key, uint32_t len)
{
	struct hc_mblock *b;

	pthread_mutex_lock(&mc->lock);
	b = mc->spare;
	if (b && b->cap >= len) {
		mc->spare = b->next;
		mc->nspare--;
	} else {
		b = NULL;
	}
	pthread_mutex_unlock(&mc->lock);
	return b ? mblock_init(b, key, len) : hc_mblock_new(key, len);
}

static void drop(hc_memcache *mc, struct hc_mblock *b)
{
	unlink_lru(mc, b);
	mc->slots[b->key] = NULL;
	b->cached = 0;
	mc->used -= b->len;
	mc->st.blocks--;
	if (--b->refs == 0)
		put_spare(mc, b);
}

void hc_memcache_free(hc_memcache *mc)
{
	if (!mc)
		return;
	while (mc->head)
		drop(mc, mc->head);
	while (mc->spare) {
		struct hc_mblock *b = mc->spare;

		mc->spare = b->next;
		free(b);
	}
	pthread_mutex_destroy(&mc->lock);
	free(mc->slots);
	free(mc);
}

struct hc_mblock *hc_memcache_get(hc_memcache *mc, uint64_t key)
{
	struct hc_mblock *b;

	if (key >= mc->nkeys)
		return NULL;
	pthread_mutex_lock(&mc->lock);
	b = mc->slots[key];
	if (b) {
		b->refs++;
		unlink_lru(mc, b);
		append_lru(mc, b);
		mc->st.hits++;
	} else {
		mc->st.misses++;
	}
	pthread_mutex_unlock(&mc->lock);
	return b;
}

int hc_memcache_contains(hc_memcache *mc, uint64_t key)
{
	int r;

	if (key >= mc->nkeys)
		return 0;
	pthread_mutex_lock(&mc->lock);
	r = mc->slots[key] != NULL;
	pthread_mutex_unlock(&mc->lock);
	return r;
}

void hc_memcache_put(hc_memcache *mc, struct hc_mblock *b)
{
	if (b->key >= mc->nkeys || b->len > mc->budget)
		return;
	pthread_mutex_lock(&mc->lock);
	if (mc->slots[b->key])
		drop(mc, mc->slots[b->key]);
	/* Blocks still referenced by readers leave the cache but live on
	 * until their last release, so eviction never waits for a reader. */
	while (mc->head && mc->used + b->len > mc->budget) {
		drop(mc, mc->head);
		mc->st.evictions++;
	}
	b->refs++;
	b->cached = 1;
	mc->slots[b->key] = b;
	mc->used += b->len;
	mc->st.blocks++;
	append_lru(mc, b);
	pthread_mutex_unlock(&mc->lock);
}

void hc_memcache_release(hc_memcache *mc, struct hc_mblock *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&mc->lock);
	if (--b->refs == 0)
		put_spare(mc, b);
	pthread_mutex_unlock(&mc->lock);
}

void hc_memcache_ref(hc_memcache *mc, struct hc_mblock *b)
{
	pthread_mutex_lock(&mc->lock);
	b->refs++;
	pthread_mutex_unlock(&mc->lock);
}

void hc_memcache_stats(hc_memcache *mc, struct hc_memcache_stats *ret)
{
	pthread_mutex_lock(&mc->lock);
	*ret = mc->st;
	ret->bytes = mc->used;
	pthread_mutex_unlock(&mc->lock);
}
