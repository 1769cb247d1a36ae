/* Index format: see FORMAT.md. Every length read from the buffer is
 * checked before use, so a hostile index can only be refused. */
#include "index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int hc_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > HC_NAME_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	/* "latest" names the pointer file, not a version. */
	return strcmp(s, "latest") != 0;
}

hc_index *hc_index_new(const char *name, const char *version, uint64_t image_size,
		       unsigned block_shift, unsigned codec)
{
	hc_index *idx;
	uint64_t bs = (uint64_t)1 << block_shift;

	if (!hc_name_valid(name) || !hc_name_valid(version) || block_shift < HC_MIN_SHIFT ||
	    block_shift > HC_MAX_SHIFT)
		return NULL;
	idx = calloc(1, sizeof(*idx));
	if (!idx)
		return NULL;
	strcpy(idx->name, name);
	strcpy(idx->version, version);
	idx->image_size = image_size;
	idx->block_shift = block_shift;
	idx->codec = codec;
	idx->block_count = (image_size + bs - 1) / bs;
	idx->entries = calloc(idx->block_count ? idx->block_count : 1, sizeof(*idx->entries));
	if (!idx->entries) {
		free(idx);
		return NULL;
	}
	return idx;
}

void hc_index_free(hc_index *idx)
{
	if (!idx)
		return;
	for (size_t i = 0; i < idx->nsections; i++)
		free(idx->sections[i].data);
	free(idx->sections);
	free(idx->entries);
	free(idx);
}

int hc_index_add_section(hc_index *idx, uint32_t type, uint32_t flags, const void *data, size_t len)
{
	struct hc_section *s = realloc(idx->sections, (idx->nsections + 1) * sizeof(*s));

	if (!s)
		return -ENOMEM;
	idx->sections = s;
	s = &s[idx->nsections];
	s->data = malloc(len ? len : 1);
	if (!s->data)
		return -ENOMEM;
	memcpy(s->data, data, len);
	s->type = type;
	s->flags = flags;
	s->len = len;
	s->offset = 0;
	idx->nsections++;
	return 0;
}

const struct hc_section *hc_index_find_section(const hc_index *idx, uint32_t type)
{
	for (size_t i = 0; i < idx->nsections; i++)
		if (idx->sections[i].type == type)
			return &idx->sections[i];
	return NULL;
}

uint32_t hc_index_block_len(const hc_index *idx, uint64_t i)
{
	uint64_t bs = hc_index_block_size(idx);
	uint64_t start = i * bs;

	if (start >= idx->image_size)
		return 0;
	return (uint32_t)(idx->image_size - start < bs ? idx->image_size - start : bs);
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

int hc_index_serialize(hc_index *idx, uint8_t **ret, size_t *ret_len)
{
	size_t nl = strlen(idx->name), vl = strlen(idx->version);
	size_t len = HC_HEADER_LEN + pad8(nl + vl) + idx->block_count * HC_ENTRY_LEN;
	uint8_t *buf, *p;

	for (size_t i = 0; i < idx->nsections; i++)
		len += 16 + pad8(idx->sections[i].len);
	len += HC_SHA256_LEN;
	buf = p = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	memcpy(p, HC_INDEX_MAGIC, 8);
	hc_put32(p + 8, HC_INDEX_VERSION);
	hc_put32(p + 12, 0);
	hc_put64(p + 16, idx->image_size);
	hc_put32(p + 24, idx->block_shift);
	hc_put32(p + 28, idx->codec);
	hc_put64(p + 32, idx->block_count);
	hc_put64(p + 40, idx->serial);
	hc_put64(p + 48, idx->created);
	hc_put16(p + 56, (uint16_t)nl);
	hc_put16(p + 58, (uint16_t)vl);
	hc_put32(p + 60, (uint32_t)idx->nsections);
	p += HC_HEADER_LEN;
	memcpy(p, idx->name, nl);
	memcpy(p + nl, idx->version, vl);
	p += pad8(nl + vl);
	for (uint64_t i = 0; i < idx->block_count; i++, p += HC_ENTRY_LEN) {
		const struct hc_entry *e = &idx->entries[i];

		memcpy(p, e->hash, HC_SHA256_LEN);
		hc_put32(p + 32, e->size);
		p[36] = e->codec;
	}
	for (size_t i = 0; i < idx->nsections; i++) {
		struct hc_section *s = &idx->sections[i];

		s->offset = (uint64_t)(p - buf);
		hc_put32(p, s->type);
		hc_put32(p + 4, s->flags);
		hc_put64(p + 8, s->len);
		memcpy(p + 16, s->data, s->len);
		p += 16 + pad8(s->len);
	}
	hc_sha256(buf, (size_t)(p - buf), p);
	hc_sha256(buf, len, idx->digest);
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int bad(const char **why, const char *msg)
{
	if (why)
		*why = msg;
	return -EBADMSG;
}

static int parse_entries(hc_index *idx, const uint8_t *p, const char **why)
{
	uint64_t bs = hc_index_block_size(idx);

	for (uint64_t i = 0; i < idx->block_count; i++, p += HC_ENTRY_LEN) {
		struct hc_entry *e = &idx->entries[i];
		uint32_t ulen = hc_index_block_len(idx, i);
		static const uint8_t zero[HC_SHA256_LEN];

		memcpy(e->hash, p, HC_SHA256_LEN);
		e->size = hc_get32(p + 32);
		e->codec = p[36];
		if (p[37] || p[38] || p[39])
			return bad(why, "entry reserved bytes are not zero");
		switch (e->codec) {
		case HC_CODEC_ZERO:
			if (e->size || memcmp(e->hash, zero, sizeof(zero)))
				return bad(why, "zero-block entry with a hash or size");
			break;
		case HC_CODEC_RAW:
			if (e->size != ulen)
				return bad(why, "raw block size differs from its length");
			break;
		case HC_CODEC_ZSTD:
		case HC_CODEC_ZLIB:
			/* A block that does not shrink is stored raw. */
			if (e->size == 0 || e->size >= ulen || e->size > bs)
				return bad(why, "compressed block size out of range");
			break;
		default:
			return bad(why, "unknown block codec");
		}
	}
	return 0;
}

static int parse_sections(hc_index *idx, const uint8_t *buf, size_t *off, size_t end,
			  uint32_t nsect, const char **why)
{
	for (uint32_t i = 0; i < nsect; i++) {
		uint32_t type, flags;
		uint64_t slen;
		int r;

		if (end - *off < 16)
			return bad(why, "section header past end");
		type = hc_get32(buf + *off);
		flags = hc_get32(buf + *off + 4);
		slen = hc_get64(buf + *off + 8);
		if (slen > end - *off - 16 || pad8(slen) > end - *off - 16)
			return bad(why, "section longer than the index");
		if (type < HC_SECT_MIRRORS || type > HC_SECT_SIGNATURE) {
			if (flags & HC_SECT_CRITICAL)
				return bad(why, "unknown critical section");
		}
		if (type == HC_SECT_SIGNATURE && i + 1 != nsect)
			return bad(why, "signature section is not the last one");
		r = hc_index_add_section(idx, type, flags, buf + *off + 16, slen);
		if (r < 0)
			return r;
		idx->sections[idx->nsections - 1].offset = *off;
		*off += 16 + pad8(slen);
	}
	return 0;
}

int hc_index_parse(const uint8_t *buf, size_t len, hc_index **ret, const char **ret_why)
{
	uint8_t sum[HC_SHA256_LEN];
	char name[HC_NAME_MAX + 1], version[HC_NAME_MAX + 1];
	uint64_t size, count, bs;
	uint32_t shift, nsect;
	uint16_t nl, vl;
	size_t off, end;
	hc_index *idx;
	int r;

	if (len < HC_HEADER_LEN + HC_SHA256_LEN || memcmp(buf, HC_INDEX_MAGIC, 8))
		return bad(ret_why, "not an hcloop index (bad magic)");
	if (hc_get32(buf + 8) != HC_INDEX_VERSION)
		return bad(ret_why, "unsupported index format version");
	end = len - HC_SHA256_LEN;
	hc_sha256(buf, end, sum);
	if (memcmp(sum, buf + end, HC_SHA256_LEN))
		return bad(ret_why, "index checksum mismatch (corrupt or truncated)");
	size = hc_get64(buf + 16);
	shift = hc_get32(buf + 24);
	count = hc_get64(buf + 32);
	nl = hc_get16(buf + 56);
	vl = hc_get16(buf + 58);
	nsect = hc_get32(buf + 60);
	if (shift < HC_MIN_SHIFT || shift > HC_MAX_SHIFT)
		return bad(ret_why, "block size out of range");
	bs = (uint64_t)1 << shift;
	if (count != size / bs + (size % bs != 0))
		return bad(ret_why, "block count does not match image size");
	if (nl == 0 || nl > HC_NAME_MAX || vl == 0 || vl > HC_NAME_MAX)
		return bad(ret_why, "bad name or version length");
	off = HC_HEADER_LEN + pad8((size_t)nl + vl);
	if (off > end || count > (end - off) / HC_ENTRY_LEN)
		return bad(ret_why, "entries past end of index");
	memcpy(name, buf + HC_HEADER_LEN, nl);
	name[nl] = '\0';
	memcpy(version, buf + HC_HEADER_LEN + nl, vl);
	version[vl] = '\0';
	/* A NUL inside must not cut a name short. */
	if (strlen(name) != nl || strlen(version) != vl || !hc_name_valid(name) ||
	    !hc_name_valid(version))
		return bad(ret_why, "bad characters in name or version");
	idx = hc_index_new(name, version, size, shift, hc_get32(buf + 28));
	if (!idx)
		return -ENOMEM;
	idx->serial = hc_get64(buf + 40);
	idx->created = hc_get64(buf + 48);
	r = parse_entries(idx, buf + off, ret_why);
	off += count * HC_ENTRY_LEN;
	if (r == 0)
		r = parse_sections(idx, buf, &off, end, nsect, ret_why);
	if (r == 0 && off != end)
		r = bad(ret_why, "trailing bytes after the last section");
	if (r < 0) {
		hc_index_free(idx);
		return r;
	}
	hc_sha256(buf, len, idx->digest);
	*ret = idx;
	return 0;
}

void hc_block_path(const uint8_t hash[HC_SHA256_LEN], char out[HC_BLOCK_PATH_LEN])
{
	char hex[2 * HC_SHA256_LEN + 1];

	hc_hex(hash, HC_SHA256_LEN, hex);
	snprintf(out, HC_BLOCK_PATH_LEN, "blocks/%.2s/%s", hex, hex);
}

static const char *const codec_names[] = { "zero", "none", "zstd", "zlib" };

const char *hc_codec_name(unsigned codec)
{
	return codec < 4 ? codec_names[codec] : "unknown";
}

int hc_codec_from_name(const char *s)
{
	for (int i = HC_CODEC_RAW; i <= HC_CODEC_ZLIB; i++)
		if (!strcmp(s, codec_names[i]))
			return i;
	return -EINVAL;
}

int hc_latest_parse(const char *buf, size_t len, struct hc_latest *ret)
{
	char line[HC_NAME_MAX + 100], ver[HC_NAME_MAX + 1], *num, *hex;
	uint64_t serial;
	int vend = -1;

	if (len == 0 || len >= sizeof(line) || buf[len - 1] != '\n')
		return -EBADMSG;
	memcpy(line, buf, len);
	line[len - 1] = '\0';
	/* Exactly "VERSION SERIAL DIGEST\n", no NUL: a version too long for
	 * ver must not be cut (its rest read as the serial). SERIAL and
	 * DIGEST are cut at the one space between them, not read with
	 * sscanf, whose " " takes no space or a run of any white space (a
	 * digest straight after the serial, or on a line of its own) and
	 * whose %llu takes a serial beyond 64 bits as the largest one. */
	if (strlen(line) != len - 1 || sscanf(line, "%128s%n", ver, &vend) != 1 ||
	    (size_t)vend != strlen(ver) || line[vend] != ' ' || !hc_name_valid(ver))
		return -EBADMSG;
	num = line + vend + 1;
	hex = strchr(num, ' ');
	if (!hex)
		return -EBADMSG;
	*hex++ = '\0';
	if (hc_parse_uint(num, UINT64_MAX, &serial) < 0 ||
	    hc_unhex(hex, ret->digest, HC_SHA256_LEN) < 0)
		return -EBADMSG;
	strcpy(ret->version, ver);
	ret->serial = serial;
	return 0;
}

int hc_latest_format(const struct hc_latest *l, char *buf, size_t len)
{
	char hex[2 * HC_SHA256_LEN + 1];
	int n;

	hc_hex(l->digest, HC_SHA256_LEN, hex);
	n = snprintf(buf, len, "%s %llu %s\n", l->version, (unsigned long long)l->serial, hex);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}
