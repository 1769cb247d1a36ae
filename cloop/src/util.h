/* Small helpers shared by every hcloop module: logging, hex, sizes and
 * crash-safe file writes (little-endian access: bytes.h; scope-bound
 * resources: cleanup.h). */
#ifndef HC_UTIL_H
#define HC_UTIL_H

#include "bytes.h"
#include "cleanup.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

enum { HC_LOG_ERR, HC_LOG_WARN, HC_LOG_INFO, HC_LOG_DEBUG };

void hc_log_init(const char *prog, int level);
void hc_log_to(FILE *f);
int hc_log_level(void);
void hc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define hc_err(...)   hc_log(HC_LOG_ERR, __VA_ARGS__)
#define hc_warn(...)  hc_log(HC_LOG_WARN, __VA_ARGS__)
#define hc_info(...)  hc_log(HC_LOG_INFO, __VA_ARGS__)
#define hc_debug(...) hc_log(HC_LOG_DEBUG, __VA_ARGS__)

/* out gets 2*n hex digits and a NUL. */
void hc_hex(const uint8_t *in, size_t n, char *out);
/* Exactly 2*n lowercase or uppercase hex digits; -EINVAL otherwise. */
int hc_unhex(const char *in, uint8_t *out, size_t n);

/* "128K", "64M", "1G", "4096": binary multiples. -EINVAL or -ERANGE. */
int hc_parse_size(const char *s, uint64_t *ret);
int hc_parse_uint(const char *s, uint64_t max, uint64_t *ret);
/* Human-readable bytes into buf ("1.5 MiB"). */
const char *hc_fmt_bytes(uint64_t n, char *buf, size_t len);

/* Each file helper also comes as _at(DIRFD, PATH, ...): PATH relative to
 * the directory DIRFD, which a daemon keeps reaching after its paths
 * stopped leading there (the initrd's hcloop, after switch_root). */
int hc_mkdir_p(const char *path, mode_t mode);
int hc_mkdir_p_at(int dirfd, const char *path, mode_t mode);
/* Write to a unique temporary name beside path, optionally fsync, then
 * rename over path: readers see the old file or the whole new one. */
int hc_write_atomic(const char *path, const void *data, size_t len, int sync);
int hc_write_atomic_at(int dirfd, const char *path, const void *data, size_t len, int sync);
/* The first half of that: the data under a new temporary name beside
 * path, returned in *ret_tmp (malloc'ed) for the caller to rename. */
int hc_write_tmp(const char *path, const void *data, size_t len, int sync, char **ret_tmp);
int hc_write_tmp_at(int dirfd, const char *path, const void *data, size_t len, int sync,
		    char **ret_tmp);
/* Reads a whole file of at most max bytes; -EFBIG beyond. */
int hc_read_file(const char *path, uint8_t **ret, size_t *ret_len, size_t max);
int hc_read_file_at(int dirfd, const char *path, uint8_t **ret, size_t *ret_len, size_t max);
int hc_fsync_dir(const char *path);
int hc_fsync_dir_at(int dirfd, const char *path);

/* snprintf for paths: -ENAMETOOLONG instead of a silently cut path. */
int hc_pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

double hc_now(void); /* monotonic seconds */

/* Turns a local directory into a file:// URL; URLs pass through. Also
 * each element of a comma-separated mirror list. */
char *hc_url_from_arg(const char *arg);
/* base + "/" + rel, without doubling the slash. */
char *hc_url_join(const char *base, const char *rel);
/* A mirror list "URL,URL,...": -EINVAL for an empty element. */
int hc_urls_split(const char *list, char ***ret, size_t *ret_n);
/* The same list back: "A,B,...". */
char *hc_urls_join(char *const *v, size_t n);
void hc_urls_free(char **v, size_t n);
/* A peer list as a booth server publishes it: one http:// or https:// URL
 * per line; blank lines, # comments and anything else are skipped. At
 * most max URLs, in order; *ret_n may be 0. */
int hc_peers_parse(const char *text, size_t len, size_t max, char ***ret, size_t *ret_n);

#endif
