/* hcloop info and hcloop verify: reading a store's indexes and blocks. */
#ifndef HC_TOOLS_H
#define HC_TOOLS_H

#include "fetch.h"
#include "sign.h"

/* Exit statuses for main(). With pk (may be NULL), an index it did not
 * sign is refused. */
int hc_info_main(const char *url, const char *name, const char *version, const char *file,
		 const struct hc_fetch_opts *fo, const struct hc_pubkey *pk, int list_blocks);
int hc_verify_main(const char *url, const char *name, const char *version,
		   const struct hc_fetch_opts *fo, const struct hc_pubkey *pk, int progress);

#endif
