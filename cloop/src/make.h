/* hcloop make: an image file or block device into a store. */
#ifndef HC_MAKE_H
#define HC_MAKE_H

#include <stddef.h>
#include <stdint.h>

struct hc_seckey;

struct hc_make_opts {
	const char *image;
	const char *store;
	const char *name;
	const char *version; /* NULL: the next serial number */
	unsigned block_shift;
	unsigned codec;
	int level;
	unsigned threads;
	int progress;  /* 1 on, 0 off */
	int force;     /* replace an existing, different version */
	int no_latest; /* do not move the latest pointer */
	const char *const *mirrors;
	size_t nmirrors;
	const uint32_t *profile; /* boot profile to attach, or NULL */
	size_t nprofile;
	uint64_t created;
	const struct hc_seckey *sign_key; /* NULL: unsigned */
};

struct hc_make_stats {
	uint64_t blocks, unique, zero, dup, shared, written;
	uint64_t bytes_in, bytes_stored, bytes_shared, bytes_written;
	double seconds;
	char version[129]; /* the version written */
};

/* 0, or -errno after logging the cause. */
int hc_make(const struct hc_make_opts *o, struct hc_make_stats *ret_stats);
void hc_make_print_summary(const struct hc_make_opts *o, const struct hc_make_stats *s);

#endif
