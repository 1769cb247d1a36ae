/* hcloop select: netselect for stores, ranking mirrors by what a block
 * fetch would cost on each. */
#ifndef HC_SELECT_H
#define HC_SELECT_H

#include "fetch.h"

/* urls: comma-separated. Prints the ranking (or, with list_only, the
 * working mirrors as one comma-separated line, best first). Exit status:
 * 0 when at least one mirror works. */
int hc_select_main(const char *urls, const char *name, const struct hc_fetch_opts *fo,
		   int list_only);

#endif
