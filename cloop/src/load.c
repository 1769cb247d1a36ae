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

/* What a parsed index must pass before any of it is used: the trusted
 * key's signature first, then the pointer's digest and the names. */
static int check_index(const struct hc_load_opts *o, const hc_index *idx, const uint8_t *buf,
		       size_t len, const struct hc_latest *l, const char *where, char *why,
		       size_t whylen)
{
	char msg[512];
	int r;

	if (o->pubkey && (r = hc_index_verify(buf, len, idx, o->pubkey, msg, sizeof(msg))) < 0) {
		snprintf(why, whylen, "%s %s", where, msg);
		return r;
	}
	if (!o->version && memcmp(idx->digest, l->digest, HC_SHA256_LEN)) {
		/* A mirror caught between writing the index and the pointer. */
		snprintf(why, whylen, "%s: index does not match the latest pointer", where);
		return -EBADMSG;
	}
	if (strcmp(idx->name, o->name) ||
	    strcmp(idx->version, o->version ? o->version : l->version)) {
		snprintf(why, whylen, "%s: index names %s version %s", where, idx->name,
			 idx->version);
		return -EBADMSG;
	}
	return 0;
}

/* seen/NAME in the disk cache: "SERIAL VERSION\n" of the highest serial
 * accepted; serial 0 when there is none yet. */
static void read_seen(hc_diskcache *dc, const char *rel, uint64_t *serial, char *version)
{
	char text[HC_NAME_MAX + 32];
	unsigned long long n;
	uint8_t *buf;
	size_t len;

	*serial = 0;
	if (hc_diskcache_get_file(dc, rel, sizeof(text) - 1, &buf, &len) < 0)
		return;
	memcpy(text, buf, len);
	text[len] = '\0';
	free(buf);
	if (sscanf(text, "%llu %128s", &n, version) == 2)
		*serial = n;
	else
		hc_warn("%s in the cache is damaged: no serial seen before", rel);
}

/* No silent downgrade: latest may not lead below the highest serial this
 * cache has accepted; naming the version is a deliberate rollback. The
 * remembered serial only rises, and only for an index that passed every
 * other check. */
static int check_serial(const struct hc_load_opts *o, const hc_index *idx, char *why, size_t whylen)
{
	char rel[HC_NAME_MAX + 8], version[HC_NAME_MAX + 1], line[HC_NAME_MAX + 32];
	unsigned long long have = idx->serial, seen;
	uint64_t s;
	int n;

	if (!o->dc)
		return 0;
	snprintf(rel, sizeof(rel), "seen/%s", o->name);
	read_seen(o->dc, rel, &s, version);
	seen = s;
	if (have < seen && !o->version) {
		snprintf(why, whylen,
			 "image %s: latest names version %s (serial %llu), older than version %s "
			 "(serial %llu) accepted before: refusing the downgrade "
			 "(--version %s rolls back deliberately)",
			 o->name, idx->version, have, version, seen, idx->version);
		return -ESTALE;
	}
	if (have < seen)
		hc_warn("rolling back %s to version %s serial %llu, older than serial %llu seen "
			"(version %s)",
			o->name, idx->version, have, seen, version);
	if (have > seen) {
		n = snprintf(line, sizeof(line), "%llu %s\n", have, idx->version);
		if (hc_diskcache_put_file(o->dc, rel, line, (size_t)n) < 0)
			hc_warn("cannot record serial %llu of %s in the cache", have, o->name);
	}
	return 0;
}

static int load(struct mirrors *m, const struct hc_load_opts *o, hc_index **ret, char *why,
		size_t whylen)
{
	const struct hc_fetch_opts *fo = o->fetch;
	hc_diskcache *dc = o->dc;
	const char *name = o->name, *version = o->version;
	struct hc_latest l = { 0 };
	char rel[2 * HC_NAME_MAX + 16];
	char where[2 * HC_NAME_MAX + 1024];
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
	if (from_cache)
		snprintf(where, sizeof(where), "the cached %s", rel);
	else
		snprintf(where, sizeof(where), "%s/%s", m->url[m->cur], rel);
	if (r < 0) {
		snprintf(why, whylen, "%s: %s", where, bad);
	} else {
		r = check_index(o, *ret, buf, len, &l, where, why, whylen);
		if (r == 0)
			r = check_serial(o, *ret, why, whylen);
		if (r < 0) {
			hc_index_free(*ret);
			*ret = NULL;
		} else if (dc && !from_cache) {
			hc_diskcache_put_file(dc, rel, buf, len);
		}
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
