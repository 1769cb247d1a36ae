/*
 * test_memcache.c - unit test for the in-memory block cache (memcache.c):
 * LRU eviction under a byte budget, blocks held by readers outliving
 * their eviction, a zero budget, replacing a key, the counters, and a
 * short multi-threaded stress. Run under `make SAN=1 check` it also shows
 * that no block leaks or is used after it is freed.
 */
#include "../src/memcache.h"
#include "../src/util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Contents derived from the key and a tag, so a reader can tell whether
 * it has the block it asked for (and the version of it). */
static uint8_t pattern(uint64_t key, unsigned tag, uint32_t i)
{
	return (uint8_t)(key * 131 + tag * 7 + i);
}

static struct hc_mblock *make_block(uint64_t key, uint32_t len, unsigned tag)
{
	struct hc_mblock *b = hc_mblock_new(key, len);

	if (!b) {
		fprintf(stderr, "FAIL: out of memory\n");
		exit(1);
	}
	for (uint32_t i = 0; i < len; i++)
		b->data[i] = pattern(key, tag, i);
	return b;
}

static int has_pattern(const struct hc_mblock *b, uint64_t key, unsigned tag)
{
	for (uint32_t i = 0; i < b->len; i++)
		if (b->data[i] != pattern(key, tag, i))
			return 0;
	return 1;
}

/* Puts a fresh block and drops the caller's own reference. */
static void put_new(hc_memcache *mc, uint64_t key, uint32_t len, unsigned tag)
{
	struct hc_mblock *b = make_block(key, len, tag);

	hc_memcache_put(mc, b);
	hc_memcache_release(mc, b);
}

/* "1" or "0" per key, for messages and comparisons: "1101" etc. */
static const char *contents(hc_memcache *mc, uint64_t nkeys, char *buf)
{
	for (uint64_t k = 0; k < nkeys; k++)
		buf[k] = hc_memcache_contains(mc, k) ? '1' : '0';
	buf[nkeys] = '\0';
	return buf;
}

static void expect_contents(hc_memcache *mc, uint64_t nkeys, const char *want, const char *what)
{
	char got[64];

	check(!strcmp(contents(mc, nkeys, got), want), "%s: cached keys %s, want %s", what, got,
	      want);
}

static void get_release(hc_memcache *mc, uint64_t key)
{
	hc_memcache_release(mc, hc_memcache_get(mc, key));
}

/* Oldest out first, and a get makes a block the newest again. */
static void test_lru(void)
{
	hc_memcache *mc = hc_memcache_new(300, 8);
	struct hc_memcache_stats st;

	put_new(mc, 0, 100, 0);
	put_new(mc, 1, 100, 0);
	put_new(mc, 2, 100, 0);
	expect_contents(mc, 8, "11100000", "lru: three fit");
	get_release(mc, 0); /* 0 is now the newest: 1 is the oldest */
	put_new(mc, 3, 100, 0);
	expect_contents(mc, 8, "10110000", "lru: the oldest (1) evicted, not the one just read");
	put_new(mc, 4, 100, 0);
	expect_contents(mc, 8, "10011000", "lru: then 2");
	get_release(mc, 3);
	get_release(mc, 0);
	put_new(mc, 5, 100, 0);
	expect_contents(mc, 8, "10010100", "lru: then 4, after 3 and 0 were read");

	/* A larger block pushes out as many old ones as it needs. */
	put_new(mc, 6, 250, 0);
	expect_contents(mc, 8, "00000010", "lru: a 250-byte block evicts three");
	/* One larger than the budget is not cached and evicts nothing. */
	put_new(mc, 7, 301, 0);
	expect_contents(mc, 8, "00000010", "lru: a block over budget");
	hc_memcache_stats(mc, &st);
	check(st.evictions == 6 && st.blocks == 1 && st.bytes == 250,
	      "lru: stats evictions %llu blocks %llu bytes %llu", (unsigned long long)st.evictions,
	      (unsigned long long)st.blocks, (unsigned long long)st.bytes);
	hc_memcache_free(mc);
}

/* A reader's block stays whole after the cache lets go of it. */
static void test_held_block(void)
{
	hc_memcache *mc = hc_memcache_new(200, 4);
	struct hc_mblock *held, *extra;

	put_new(mc, 0, 100, 1);
	held = hc_memcache_get(mc, 0);
	if (!check(held && held->key == 0 && has_pattern(held, 0, 1), "held: get after put"))
		goto out;
	extra = held;
	hc_memcache_ref(mc, extra); /* a second reader of the same block */
	put_new(mc, 1, 100, 1);
	put_new(mc, 2, 100, 1);
	put_new(mc, 3, 100, 1);
	expect_contents(mc, 4, "0011", "held: block 0 evicted while held");
	check(has_pattern(held, 0, 1), "held: contents changed after eviction");
	/* Writing to it too: ASan would flag freed memory. */
	memset(held->data, 0x5a, held->len);
	hc_memcache_release(mc, extra);
	check(held->data[99] == 0x5a, "held: block gone after the first of two releases");
	hc_memcache_release(mc, held); /* the last reference: freed here */
	/* A block the cache never took (too large) is the caller's alone. */
	held = make_block(2, 1000, 2);
	hc_memcache_put(mc, held);
	check(has_pattern(held, 2, 2), "held: a refused block was touched");
	hc_memcache_release(mc, held);
	/* Blocks still cached when the cache is freed are freed with it. */
out:
	hc_memcache_free(mc);
}

static void test_zero_budget(void)
{
	hc_memcache *mc = hc_memcache_new(0, 4);
	struct hc_memcache_stats st;
	struct hc_mblock *b = make_block(1, 10, 0);

	hc_memcache_put(mc, b);
	check(!hc_memcache_contains(mc, 1), "zero budget: block cached");
	check(hc_memcache_get(mc, 1) == NULL, "zero budget: get found a block");
	check(has_pattern(b, 1, 0), "zero budget: the caller's block was changed");
	hc_memcache_release(mc, b);
	hc_memcache_stats(mc, &st);
	check(st.blocks == 0 && st.bytes == 0 && st.misses == 1 && st.hits == 0,
	      "zero budget: stats blocks %llu bytes %llu misses %llu",
	      (unsigned long long)st.blocks, (unsigned long long)st.bytes,
	      (unsigned long long)st.misses);
	hc_memcache_free(mc);
}

/* A new block for a key replaces the old one; a reader of the old one
 * keeps it. */
static void test_replace(void)
{
	hc_memcache *mc = hc_memcache_new(1000, 4);
	struct hc_memcache_stats st;
	struct hc_mblock *old, *cur;

	put_new(mc, 2, 100, 1);
	old = hc_memcache_get(mc, 2);
	put_new(mc, 2, 300, 2);
	cur = hc_memcache_get(mc, 2);
	check(cur && cur != old && cur->len == 300 && has_pattern(cur, 2, 2),
	      "replace: get does not return the new block");
	check(old && has_pattern(old, 2, 1), "replace: the old block changed under its reader");
	hc_memcache_stats(mc, &st);
	check(st.blocks == 1 && st.bytes == 300 && st.evictions == 0,
	      "replace: stats blocks %llu bytes %llu evictions %llu", (unsigned long long)st.blocks,
	      (unsigned long long)st.bytes, (unsigned long long)st.evictions);
	hc_memcache_release(mc, old);
	hc_memcache_release(mc, cur);

	/* Putting the very block that is cached again changes nothing. */
	cur = hc_memcache_get(mc, 2);
	hc_memcache_put(mc, cur);
	hc_memcache_stats(mc, &st);
	check(st.blocks == 1 && st.bytes == 300 && hc_memcache_contains(mc, 2),
	      "replace: same block again: blocks %llu bytes %llu", (unsigned long long)st.blocks,
	      (unsigned long long)st.bytes);
	hc_memcache_release(mc, cur);
	hc_memcache_free(mc);
}

static void test_stats(void)
{
	hc_memcache *mc = hc_memcache_new(1 << 20, 16);
	struct hc_memcache_stats st;
	struct hc_mblock *b;

	hc_memcache_stats(mc, &st);
	check(!st.hits && !st.misses && !st.evictions && !st.bytes && !st.blocks,
	      "stats: a new cache is not all zero");
	for (uint64_t k = 0; k < 10; k++)
		put_new(mc, k, (uint32_t)(k + 1) * 10, 0);
	for (uint64_t k = 0; k < 16; k++)
		get_release(mc, k); /* 10 hits, 6 misses */
	/* Keys outside the table: never cached, not an error. */
	b = make_block(16, 10, 0);
	hc_memcache_put(mc, b);
	hc_memcache_release(mc, b);
	check(!hc_memcache_get(mc, 16) && !hc_memcache_contains(mc, 16) &&
		  !hc_memcache_get(mc, UINT64_MAX),
	      "stats: key past nkeys");
	hc_memcache_stats(mc, &st);
	check(st.hits == 10 && st.misses == 6 && st.evictions == 0 && st.blocks == 10 &&
		  st.bytes == 550,
	      "stats: hits %llu misses %llu evictions %llu blocks %llu bytes %llu",
	      (unsigned long long)st.hits, (unsigned long long)st.misses,
	      (unsigned long long)st.evictions, (unsigned long long)st.blocks,
	      (unsigned long long)st.bytes);
	hc_memcache_free(mc);

	/* No keys at all. */
	mc = hc_memcache_new(100, 0);
	check(mc && !hc_memcache_get(mc, 0) && !hc_memcache_contains(mc, 0),
	      "stats: empty key space");
	hc_memcache_free(mc);
}

/* ---- stress ------------------------------------------------------------- */

#define S_KEYS 64
#define S_HOLD 8

struct stress {
	hc_memcache *mc;
	unsigned seed;
	double until;
	uint64_t gets, bad;
};

/* Tags: a block's contents depend only on its key and length, so any
 * version a reader gets must match. */
static unsigned len_tag(uint32_t len)
{
	return len;
}

static void *stress_thread(void *arg)
{
	struct stress *s = arg;
	struct hc_mblock *held[S_HOLD] = { 0 };
	unsigned seed = s->seed;

	while (hc_now() < s->until) {
		for (int n = 0; n < 100; n++) {
			unsigned op = (unsigned)rand_r(&seed) % 10;
			uint64_t key = (uint64_t)rand_r(&seed) % S_KEYS;
			unsigned slot = (unsigned)rand_r(&seed) % S_HOLD;
			struct hc_mblock *b;

			if (op < 5) {
				/* Read and maybe keep it for a while. */
				s->gets++;
				b = hc_memcache_get(s->mc, key);
				if (!b)
					continue;
				if (b->key != key || !has_pattern(b, key, len_tag(b->len)))
					s->bad++;
				if (op == 0) {
					hc_memcache_release(s->mc, held[slot]);
					held[slot] = b;
				} else {
					hc_memcache_release(s->mc, b);
				}
			} else if (op < 8) {
				uint32_t len = 1 + (uint32_t)rand_r(&seed) % 4096;

				b = make_block(key, len, len_tag(len));
				hc_memcache_put(s->mc, b);
				hc_memcache_release(s->mc, b);
			} else if (op == 8) {
				hc_memcache_contains(s->mc, key);
			} else if (held[slot]) {
				/* Another reference to a held block, dropped at once. */
				hc_memcache_ref(s->mc, held[slot]);
				if (!has_pattern(held[slot], held[slot]->key,
						 len_tag(held[slot]->len)))
					s->bad++;
				hc_memcache_release(s->mc, held[slot]);
			}
		}
	}
	for (int i = 0; i < S_HOLD; i++) {
		if (held[i] && !has_pattern(held[i], held[i]->key, len_tag(held[i]->len)))
			s->bad++;
		hc_memcache_release(s->mc, held[i]);
	}
	return NULL;
}

static void test_stress(void)
{
	enum { NT = 4 };
	const uint64_t budget = 32 << 10; /* ~16 blocks: constant eviction */
	hc_memcache *mc = hc_memcache_new(budget, S_KEYS);
	struct stress s[NT];
	pthread_t t[NT];
	struct hc_memcache_stats st;
	uint64_t gets = 0, bad = 0, cached = 0;
	double until = hc_now() + 0.5;
	int started = 0;

	for (int i = 0; i < NT; i++) {
		s[i] = (struct stress){ .mc = mc, .seed = 1234u + (unsigned)i, .until = until };
		if (pthread_create(&t[i], NULL, stress_thread, &s[i]) == 0)
			started++;
	}
	check(started == NT, "stress: only %d threads started", started);
	for (int i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		gets += s[i].gets;
		bad += s[i].bad;
	}
	hc_memcache_stats(mc, &st);
	for (uint64_t k = 0; k < S_KEYS; k++)
		cached += (uint64_t)hc_memcache_contains(mc, k);
	check(bad == 0, "stress: %llu reads saw the wrong contents", (unsigned long long)bad);
	check(st.hits + st.misses == gets, "stress: hits %llu + misses %llu != gets %llu",
	      (unsigned long long)st.hits, (unsigned long long)st.misses, (unsigned long long)gets);
	check(st.bytes <= budget, "stress: %llu bytes cached, budget %llu",
	      (unsigned long long)st.bytes, (unsigned long long)budget);
	check(st.blocks == cached, "stress: stats say %llu blocks, %llu keys cached",
	      (unsigned long long)st.blocks, (unsigned long long)cached);
	check(gets > 1000 && st.hits > 0 && st.evictions > 0,
	      "stress: too little happened (gets %llu hits %llu evictions %llu)",
	      (unsigned long long)gets, (unsigned long long)st.hits,
	      (unsigned long long)st.evictions);
	hc_memcache_free(mc);
}

int main(void)
{
	test_lru();
	test_held_block();
	test_zero_budget();
	test_replace();
	test_stats();
	test_stress();
	printf("test_memcache: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
