/* hcloop info and hcloop verify: reading a store's indexes and blocks. */
#ifndef HC_TOOLS_H
#define HC_TOOLS_H

#include "fetch.h"

/* Exit statuses for main(). */
int hc_info_main(const char *url, const char *name, const char *version, const char *file,
		 const struct hc_fetch_opts *fo, int list_blocks);
int hc_verify_main(const char *url, const char *name, const char *version,
		   const struct hc_fetch_opts *fo, int progress);

#endif
