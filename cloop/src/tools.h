/* hcloop info and hcloop verify: reading a store's indexes and blocks. */
#ifndef HC_TOOLS_H
#define HC_TOOLS_H

#include "fetch.h"
#include "sign.h"

/* Exit statuses for main(). With pk (may be NULL), an index it did not
 * sign is refused. With cache_dir (may be NULL), info also says which of
 * the image's block files that disk cache lacks: what mounting it with
 * that cache would still download. */
int hc_info_main(const char *url, const char *name, const char *version, const char *file,
		 const struct hc_fetch_opts *fo, const struct hc_pubkey *pk, int list_blocks,
		 const char *cache_dir);
int hc_verify_main(const char *url, const char *name, const char *version,
		   const struct hc_fetch_opts *fo, const struct hc_pubkey *pk, int progress);

#endif
