/* Boot profiles: see profile.h. */
#include "profile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int hc_profile_parse(const char *text, size_t len, uint32_t **ret, size_t *ret_n, size_t *ret_line)
{
	size_t cap = 64, n = 0, line = 0;
	uint32_t *v = malloc(cap * sizeof(*v));
	const char *p = text, *end = text + len;

	if (!v)
		return -ENOMEM;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		uint64_t num = 0;
		int digits = 0;

		line++;
		while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		for (; p < e && *p >= '0' && *p <= '9' && num <= UINT32_MAX; p++, digits++)
			num = num * 10 + (uint64_t)(*p - '0');
		while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if ((p < e && *p != '#') || num > UINT32_MAX) {
			free(v);
			*ret_line = line;
			return -EINVAL;
		}
		if (digits) {
			if (n == cap) {
				uint32_t *nv = realloc(v, 2 * cap * sizeof(*v));

				if (!nv) {
					free(v);
					return -ENOMEM;
				}
				v = nv;
				cap *= 2;
			}
			v[n++] = (uint32_t)num;
		}
		p = e + 1;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int hc_profile_read(const char *path, uint32_t **ret, size_t *ret_n)
{
	uint8_t *buf;
	size_t len, line = 0;
	int r = hc_read_file(path, &buf, &len, 64 << 20);

	if (r < 0) {
		hc_err("profile %s: %s", path, strerror(-r));
		return r;
	}
	r = hc_profile_parse((const char *)buf, len, ret, ret_n, &line);
	free(buf);
	if (r == -EINVAL)
		hc_err("profile %s: line %zu is not a block number", path, line);
	else if (r < 0)
		hc_err("profile %s: %s", path, strerror(-r));
	return r;
}

/* Each block in range once, in first-seen order; with want_data, only
 * blocks that have a file. */
static size_t unique_blocks(const hc_index *idx, const uint32_t *in, size_t n, uint8_t *seen,
			    uint32_t *out, int want_data)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t b = in[i];

		if (b >= idx->block_count || seen[b])
			continue;
		seen[b] = 1;
		if (!want_data || idx->entries[b].codec != HC_CODEC_ZERO)
			out[k++] = b;
	}
	return k;
}

int hc_profile_plan(const hc_index *idx, const uint32_t *profile, size_t nprofile, int fill,
		    uint32_t **ret, size_t *ret_n)
{
	const struct hc_section *s = hc_index_find_section(idx, HC_SECT_PROFILE);
	uint32_t *from_index = NULL, *out;
	uint8_t *seen;
	size_t k;

	if (!profile && s) {
		nprofile = (size_t)(s->len / 4);
		from_index = malloc((nprofile ? nprofile : 1) * sizeof(*from_index));
		if (!from_index)
			return -ENOMEM;
		for (size_t i = 0; i < nprofile; i++)
			from_index[i] = hc_get32(s->data + 4 * i);
		profile = from_index;
	}
	if (!profile)
		nprofile = 0;
	seen = calloc(idx->block_count ? idx->block_count : 1, 1);
	out = malloc((idx->block_count ? idx->block_count : 1) * sizeof(*out));
	if (!seen || !out) {
		free(from_index);
		free(seen);
		free(out);
		return -ENOMEM;
	}
	k = unique_blocks(idx, profile, nprofile, seen, out, 1);
	for (uint64_t b = 0; fill && b < idx->block_count; b++)
		if (!seen[b] && idx->entries[b].codec != HC_CODEC_ZERO)
			out[k++] = (uint32_t)b;
	free(from_index);
	free(seen);
	*ret = out;
	*ret_n = k;
	return 0;
}

int hc_profile_section(const hc_index *idx, const uint32_t *profile, size_t n, uint8_t **ret,
		       size_t *ret_len)
{
	uint8_t *seen = calloc(idx->block_count ? idx->block_count : 1, 1);
	uint32_t *kept = malloc((n ? n : 1) * sizeof(*kept));
	uint8_t *buf = NULL;
	size_t k;

	if (!seen || !kept)
		goto fail;
	k = unique_blocks(idx, profile, n, seen, kept, 0);
	buf = malloc(k ? 4 * k : 1);
	if (!buf)
		goto fail;
	for (size_t i = 0; i < k; i++)
		hc_put32(buf + 4 * i, kept[i]);
	free(seen);
	free(kept);
	*ret = buf;
	*ret_len = 4 * k;
	return 0;
fail:
	free(seen);
	free(kept);
	return -ENOMEM;
}
