/* Boot profiles: the order in which a boot first reads an image's blocks.
 * As a file, one block number per line (what `mount --trace` writes); in
 * an index, section HC_SECT_PROFILE of 4-byte little-endian numbers. */
#ifndef HC_PROFILE_H
#define HC_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"

/* Text to numbers; '#' starts a comment. -EINVAL with *ret_line (from 1)
 * for a line that is not a number. */
int hc_profile_parse(const char *text, size_t len, uint32_t **ret, size_t *ret_n, size_t *ret_line);
/* The same from a file, logging what is wrong with it; 0 or -errno. */
int hc_profile_read(const char *path, uint32_t **ret, size_t *ret_n);
/* What a prefetch of idx should fetch, in order: the profile's blocks
 * that hold data, each once; with fill, every other such block after
 * them. The profile is the given one, else the index's, else empty. */
int hc_profile_plan(const hc_index *idx, const uint32_t *profile, size_t nprofile, int fill,
		    uint32_t **ret, size_t *ret_n);
/* The section bytes for idx's profile: blocks past its end are dropped,
 * repeats kept once. */
int hc_profile_section(const hc_index *idx, const uint32_t *profile, size_t n, uint8_t **ret,
		       size_t *ret_len);

#endif
