/* Shared helpers: see util.h. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "hcloop";
static int log_level = HC_LOG_INFO;
static FILE *log_file;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void hc_log_init(const char *prog, int level)
{
	log_prog = prog;
	log_level = level;
}

void hc_log_to(FILE *f)
{
	log_file = f;
}

int hc_log_level(void)
{
	return log_level;
}

void hc_log(int level, const char *fmt, ...)
{
	static const char *const tags[] = { "error: ", "warning: ", "", "debug: " };
	FILE *f = log_file ? log_file : stderr;
	va_list ap;

	if (level > log_level)
		return;
	/* One lock so lines from the FUSE, fetch and worker threads never
	 * interleave mid-line. */
	pthread_mutex_lock(&log_lock);
	if (log_file) {
		/* A daemon's log outlives the command: say when. */
		char when[32];
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(f, "%s.%03ld ", when, ts.tv_nsec / 1000000);
	}
	fprintf(f, "%s: %s", log_prog, tags[level]);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
	pthread_mutex_unlock(&log_lock);
}

void hc_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int hc_unhex(const char *in, uint8_t *out, size_t n)
{
	if (strlen(in) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval((unsigned char)in[2 * i]);
		int lo = hexval((unsigned char)in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int hc_parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return errno == ERANGE ? -ERANGE : -EINVAL;
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int hc_parse_size(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		/* Accept "64M", "64MB", "64MiB". */
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = (uint64_t)v << shift;
	return 0;
}

const char *hc_fmt_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

int hc_mkdir_p_at(int dirfd, const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdirat(dirfd, tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdirat(dirfd, tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int hc_mkdir_p(const char *path, mode_t mode)
{
	return hc_mkdir_p_at(AT_FDCWD, path, mode);
}

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int hc_write_tmp_at(int dirfd, const char *path, const void *data, size_t len, int sync,
		    char **ret_tmp)
{
	static _Atomic unsigned long counter;
	char *tmp;
	int fd, r;

	/* pid + counter keeps concurrent writers (threads or processes
	 * sharing a store or cache) off each other's temporary files. */
	if (asprintf(&tmp, "%s.tmp.%ld.%lu", path, (long)getpid(), counter++) < 0)
		return -ENOMEM;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		free(tmp);
		return r;
	}
	r = write_all(fd, data, len);
	if (r == 0 && sync && fdatasync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		free(tmp);
		return r;
	}
	*ret_tmp = tmp;
	return 0;
}

int hc_write_tmp(const char *path, const void *data, size_t len, int sync, char **ret_tmp)
{
	return hc_write_tmp_at(AT_FDCWD, path, data, len, sync, ret_tmp);
}

int hc_write_atomic_at(int dirfd, const char *path, const void *data, size_t len, int sync)
{
	char *tmp;
	int r = hc_write_tmp_at(dirfd, path, data, len, sync, &tmp);

	if (r < 0)
		return r;
	if (renameat(dirfd, tmp, dirfd, path) < 0) {
		r = -errno;
		unlinkat(dirfd, tmp, 0);
	}
	free(tmp);
	return r;
}

int hc_write_atomic(const char *path, const void *data, size_t len, int sync)
{
	return hc_write_atomic_at(AT_FDCWD, path, data, len, sync);
}

int hc_fsync_dir_at(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int hc_fsync_dir(const char *path)
{
	return hc_fsync_dir_at(AT_FDCWD, path);
}

int hc_read_file_at(int dirfd, const char *path, uint8_t **ret, size_t *ret_len, size_t max)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? -errno : -EIO;

			free(buf);
			close(fd);
			return e;
		}
		got += (size_t)n;
	}
	close(fd);
	*ret = buf;
	*ret_len = got;
	return 0;
}

int hc_read_file(const char *path, uint8_t **ret, size_t *ret_len, size_t max)
{
	return hc_read_file_at(AT_FDCWD, path, ret, ret_len, max);
}

int hc_pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

double hc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *one_url(const char *arg)
{
	char abs[PATH_MAX];
	char *out;

	if (strstr(arg, "://"))
		return strdup(arg);
	if (!realpath(arg, abs))
		return NULL;
	if (asprintf(&out, "file://%s", abs) < 0)
		return NULL;
	return out;
}

char *hc_url_from_arg(const char *arg)
{
	char **v, *out = NULL;
	size_t n, i;

	if (hc_urls_split(arg, &v, &n) < 0) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		char *u = one_url(v[i]);

		if (!u)
			break;
		free(v[i]);
		v[i] = u;
	}
	if (i == n)
		out = hc_urls_join(v, n);
	hc_urls_free(v, n);
	return out;
}

char *hc_url_join(const char *base, const char *rel)
{
	size_t n = strlen(base);
	char *out;

	while (n && base[n - 1] == '/')
		n--;
	if (asprintf(&out, "%.*s/%s", (int)n, base, rel) < 0)
		return NULL;
	return out;
}

int hc_urls_split(const char *list, char ***ret, size_t *ret_n)
{
	size_t n = 1, i = 0;
	char **v;

	for (const char *p = list; *p; p++)
		n += *p == ',';
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (const char *p = list;; i++) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (!len || !(v[i] = strndup(p, len))) {
			hc_urls_free(v, i);
			return len ? -ENOMEM : -EINVAL;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

char *hc_urls_join(char *const *v, size_t n)
{
	size_t len = 1;
	char *out, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	out = p = malloc(len);
	if (!out)
		return NULL;
	*p = '\0';
	for (size_t i = 0; i < n; i++)
		p = stpcpy(stpcpy(p, i ? "," : ""), v[i]);
	return out;
}

void hc_urls_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The line [b, b+l) starts with prefix and has more after it. */
static int starts(const char *b, size_t l, const char *prefix)
{
	size_t n = strlen(prefix);

	return l > n && !memcmp(b, prefix, n);
}

int hc_peers_parse(const char *text, size_t len, size_t max, char ***ret, size_t *ret_n)
{
	char **v = calloc(max ? max : 1, sizeof(*v));
	const char *p = text, *end = text + len;
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	while (p < end && n < max) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end, *b = p;

		p = nl ? nl + 1 : end;
		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		size_t l = (size_t)(e - b);

		/* The text need not end in a NUL: compare within the line. A URL
		 * has no blanks: a line with one is not a peer. */
		if (!(starts(b, l, "http://") || starts(b, l, "https://") ||
		      starts(b, l, "file://")) ||
		    memchr(b, ' ', l) || memchr(b, '\t', l))
			continue;
		v[n] = strndup(b, l);
		if (!v[n]) {
			hc_urls_free(v, n);
			return -ENOMEM;
		}
		n++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
