/* hcloop mount: the FUSE front end over an hc_dev. */
#ifndef HC_MOUNT_H
#define HC_MOUNT_H

#include <stdint.h>

#include "dev.h"

struct hc_pubkey;

struct hc_mount_opts {
	const char *url;
	const char *name;
	const char *version;
	const char *mountpoint;
	const char *cache_dir;
	uint64_t cache_size;
	const char *fuse_opts; /* extra -o options */
	const char *log_file;
	const char *trace_file; /* first reads of each block go here */
	int foreground;
	int rootfs; /* survive switch_root and the new init's killing spree */
	int allow_other;
	const struct hc_pubkey *pubkey; /* NULL: signatures are not checked */
	struct hc_dev_opts dev;
};

/* Exit status for main(). argv0 is rewritten for --rootfs. */
int hc_mount_main(const struct hc_mount_opts *o, char *argv0);

#endif
