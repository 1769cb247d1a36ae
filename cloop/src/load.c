/* Index loading: see load.h. Every mirror is tried in turn for each
 * file, starting with the one that answered last, so a dead first mirror
 * costs one timeout per mount, not one per file. */
#include "load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct mirrors {
	char **url;
	size_t n;
	size_t cur; /* the one that answered last */
};

/* One more failure into why: "A: x; B: y", as much as fits. */
static void add_why(char *why, size_t whylen, const char *msg)
{
	size_t used = strnlen(why, whylen);

	if (used + 3 < whylen)
		snprintf(why + used, whylen - used, "%s%s", used ? "; " : "", msg);
}

/* GET rel from the mirrors in turn. -ENOENT when a mirror that answered
 * said it has no such file and none had it; otherwise the last error. */
static int fetch_any(struct mirrors *m, const char *rel, const struct hc_fetch_opts *fo, size_t max,
		     uint8_t **buf, size_t *len, char *why, size_t whylen)
{
	int r = -EIO, missing = 0;

	why[0] = '\0';
	for (size_t k = 0; k < m->n; k++) {
		size_t i = (m->cur + k) % m->n;
		char msg[512], *u = hc_url_join(m->url[i], rel);

		if (!u)
			return -ENOMEM;
		r = hc_fetch_file(u, fo, max, buf, len, msg, sizeof(msg));
		free(u);
		if (r == 0) {
			m->cur = i;
			return 0;
		}
		missing |= r == -ENOENT;
		add_why(why, whylen, msg);
	}
	return missing ? -ENOENT : r;
}

static int load_latest(struct mirrors *m, const char *name, const struct hc_fetch_opts *fo,
		       hc_diskcache *dc, struct hc_latest *l, int *ret_cached, char *why,
		       size_t whylen)
{
	char rel[HC_NAME_MAX + 32];
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	snprintf(rel, sizeof(rel), "index/%s/latest", name);
	r = fetch_any(m, rel, fo, 4096, &buf, &len, why, whylen);
	*ret_cached = 0;
	/* Not found counts as unreachable too: a file:// store that is gone
	 * (unmounted, moved) gives "no such file" for everything in it. */
	if (r < 0 && dc && hc_diskcache_get_file(dc, rel, 4096, &buf, &len) == 0) {
		hc_warn("%s; using the cached index", why);
		*ret_cached = 1;
		r = 0;
	}
	if (r == -ENOENT) {
		snprintf(why, whylen, "%s: no image \"%s\" in this store (no %s)", m->url[m->cur],
			 name, rel);
		return r;
	}
	if (r < 0)
		return r;
	r = hc_latest_parse((const char *)buf, len, l);
	if (r < 0)
		snprintf(why, whylen, "%s/%s: damaged latest pointer", m->url[m->cur], rel);
	else if (dc && !*ret_cached)
		hc_diskcache_put_file(dc, rel, buf, len);
	free(buf);
	return r;
}

static int load(struct mirrors *m, const struct hc_load_opts *o, hc_index **ret, char *why,
		size_t whylen)
{
	const struct hc_fetch_opts *fo = o->fetch;
	hc_diskcache *dc = o->dc;
	const char *name = o->name, *version = o->version;
	struct hc_latest l = { 0 };
	char rel[2 * HC_NAME_MAX + 16];
	const char *bad = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r, cached = 0, from_cache = 0;

	if (!hc_name_valid(name) || (version && !hc_name_valid(version))) {
		snprintf(why, whylen, "invalid image name or version");
		return -EINVAL;
	}
	if (!version) {
		r = load_latest(m, name, fo, dc, &l, &cached, why, whylen);
		if (r < 0)
			return r;
		version = l.version;
	}
	snprintf(rel, sizeof(rel), "index/%s/%s", name, version);
	/* A cached index whose digest the pointer names is as good as a
	 * fresh one and spares a request. */
	if (dc && hc_diskcache_get_file(dc, rel, HC_INDEX_MAX, &buf, &len) == 0) {
		uint8_t sum[HC_SHA256_LEN];

		hc_sha256(buf, len, sum);
		from_cache =
		    cached || (version == l.version && !memcmp(sum, l.digest, sizeof(sum)));
		if (!from_cache) {
			free(buf);
			buf = NULL;
		}
	}
	if (!from_cache) {
		r = fetch_any(m, rel, fo, HC_INDEX_MAX, &buf, &len, why, whylen);
		if (r == -ENOENT)
			snprintf(why, whylen, "%s: image \"%s\" has no version \"%s\"",
				 m->url[m->cur], name, version);
		if (r < 0 && dc && hc_diskcache_get_file(dc, rel, HC_INDEX_MAX, &buf, &len) == 0) {
			hc_warn("%s; using the cached index", why);
			from_cache = 1;
			r = 0;
		}
		if (r < 0)
			return r;
	}
	r = hc_index_parse(buf, len, ret, &bad);
	if (r < 0) {
		snprintf(why, whylen, "%s/%s: %s", m->url[m->cur], rel, bad);
	} else if (version == l.version && memcmp((*ret)->digest, l.digest, HC_SHA256_LEN)) {
		/* A mirror caught between writing the index and the pointer. */
		snprintf(why, whylen, "%s/%s: index does not match the latest pointer",
			 m->url[m->cur], rel);
		hc_index_free(*ret);
		r = -EBADMSG;
	} else if (strcmp((*ret)->name, name) || strcmp((*ret)->version, version)) {
		snprintf(why, whylen, "%s/%s: index names %s version %s", m->url[m->cur], rel,
			 (*ret)->name, (*ret)->version);
		hc_index_free(*ret);
		r = -EBADMSG;
	} else if (dc && !from_cache) {
		hc_diskcache_put_file(dc, rel, buf, len);
	}
	free(buf);
	return r;
}

int hc_index_load(const struct hc_load_opts *o, hc_index **ret, char *why, size_t whylen)
{
	struct mirrors m = { 0 };
	int r = hc_urls_split(o->urls, &m.url, &m.n);

	if (r < 0) {
		snprintf(why, whylen, "bad mirror list \"%s\"", o->urls);
		return r;
	}
	r = load(&m, o, ret, why, whylen);
	hc_urls_free(m.url, m.n);
	return r;
}
