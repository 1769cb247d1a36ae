/* Finding and checking an image's index on a list of mirrors: the latest
 * pointer or a named version, the digest chain, the disk cache as a
 * fallback when no mirror answers. */
#ifndef HC_LOAD_H
#define HC_LOAD_H

#include <stddef.h>

#include "diskcache.h"
#include "fetch.h"
#include "index.h"
#include "sign.h"

struct hc_load_opts {
	const char *urls; /* mirror list, comma-separated, best first */
	const char *name;
	const char *version; /* NULL: the latest */
	const struct hc_fetch_opts *fetch;
	hc_diskcache *dc;		/* may be NULL */
	const struct hc_pubkey *pubkey; /* NULL: signatures are not checked */
};

/* The index, or -errno with why saying what went wrong. A fetched index
 * is kept in the disk cache; with every mirror unreachable a cached one
 * is used. With a pubkey, an index it did not sign is refused, cached or
 * not. With a disk cache, the highest serial accepted is remembered
 * (seen/NAME): following latest to a lower one is refused (-ESTALE), a
 * version named on purpose is a rollback and only warned about. */
int hc_index_load(const struct hc_load_opts *o, hc_index **ret, char *why, size_t whylen);

#endif
