/* hcloop gc: old index versions and the blocks only they use, out of a
 * local store, while clients may be reading it and make may be writing. */
#ifndef HC_GC_H
#define HC_GC_H

#include <stdint.h>
#include <stdio.h>

struct hc_gc_opts {
	const char *store;
	unsigned keep; /* newest versions by serial kept per image (>= 1) */
	double grace;  /* seconds: files younger than this are never removed */
	int dry_run;
	FILE *report; /* a line per index kept or removed, and totals; may be NULL */
};

struct hc_gc_stats {
	uint64_t images, indexes_kept, indexes_removed, index_bytes;
	uint64_t blocks_kept, blocks_young, blocks_removed, block_bytes;
	uint64_t tmp_removed, tmp_bytes;
};

/* 0, or -errno after logging the cause. Nothing is removed when any index
 * or latest pointer cannot be read: the blocks it needs are unknown. */
int hc_gc(const struct hc_gc_opts *o, struct hc_gc_stats *ret);

#endif
