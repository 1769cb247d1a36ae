/*
 * test_index.c - unit test for the store index format (index.c): build,
 * serialize and parse back; a byte-for-byte comparison with an index
 * hand-crafted from FORMAT.md; refusal of every corruption (flipped
 * bytes, truncation, bad header fields, bad entries, bad sections); the
 * latest pointer; name rules.
 */
#include "../src/index.h"
#include "../src/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- a reference index, hand-crafted from FORMAT.md ---------------- */

#define SHIFT	   12
#define BS	   (1u << SHIFT)
#define NBLOCKS	   12
#define LAST_LEN   1000u
#define IMAGE_SIZE ((uint64_t)(NBLOCKS - 1) * BS + LAST_LEN)
#define SERIAL	   7
#define CREATED	   1700000000

static const char mirrors_text[] = "https://a.example/store\nhttps://b.example/store\n";
static const uint32_t profile_blocks[] = { 3, 0, 11, 5, 1 };

/* Each codec a few times, and a short compressed last block. */
static const struct {
	uint8_t codec;
	uint32_t size;
} entry_spec[NBLOCKS] = {
	{ HC_CODEC_ZERO, 0 },	   { HC_CODEC_RAW, BS },  { HC_CODEC_ZSTD, 1234 },
	{ HC_CODEC_ZLIB, BS - 1 }, { HC_CODEC_ZERO, 0 },  { HC_CODEC_RAW, BS },
	{ HC_CODEC_ZSTD, 1 },	   { HC_CODEC_ZLIB, 77 }, { HC_CODEC_ZSTD, 3000 },
	{ HC_CODEC_ZLIB, 2000 },   { HC_CODEC_RAW, BS },  { HC_CODEC_ZSTD, LAST_LEN - 1 },
};

static void sample_entries(struct hc_entry *e)
{
	memset(e, 0, NBLOCKS * sizeof(*e));
	for (uint32_t i = 0; i < NBLOCKS; i++) {
		e[i].codec = entry_spec[i].codec;
		e[i].size = entry_spec[i].size;
		if (e[i].codec != HC_CODEC_ZERO)
			hc_sha256(&i, sizeof(i), e[i].hash);
	}
}

struct sect {
	uint32_t type, flags;
	const void *data;
	size_t len;
};

/* Everything the header and body say; fields are written as given, so a
 * test can make any one of them wrong. */
struct craft {
	uint64_t image_size, count, serial, created;
	uint32_t shift, codec;
	const char *name, *version;
	size_t name_len, version_len; /* 0: strlen */
	const struct hc_entry *entries;
	size_t nentries;
	const struct sect *sects;
	size_t nsects;
};

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static size_t entries_offset(const struct craft *c)
{
	return HC_HEADER_LEN + pad8(c->name_len + c->version_len);
}

/* Recomputes the trailer: SHA-256 of every byte before it. */
static void reseal(uint8_t *buf, size_t len)
{
	hc_sha256(buf, len - HC_SHA256_LEN, buf + len - HC_SHA256_LEN);
}

static uint8_t *craft_bytes(struct craft *c, size_t *ret_len)
{
	size_t len, off;
	uint8_t *buf;

	if (!c->name_len)
		c->name_len = strlen(c->name);
	if (!c->version_len)
		c->version_len = strlen(c->version);
	len = entries_offset(c) + c->nentries * HC_ENTRY_LEN + HC_SHA256_LEN;
	for (size_t i = 0; i < c->nsects; i++)
		len += 16 + pad8(c->sects[i].len);
	buf = calloc(1, len);
	if (!buf)
		abort();
	memcpy(buf, "HCLOOPIX", 8);
	hc_put32(buf + 8, 1);
	hc_put64(buf + 16, c->image_size);
	hc_put32(buf + 24, c->shift);
	hc_put32(buf + 28, c->codec);
	hc_put64(buf + 32, c->count);
	hc_put64(buf + 40, c->serial);
	hc_put64(buf + 48, c->created);
	hc_put16(buf + 56, (uint16_t)c->name_len);
	hc_put16(buf + 58, (uint16_t)c->version_len);
	hc_put32(buf + 60, (uint32_t)c->nsects);
	memcpy(buf + 64, c->name, c->name_len);
	memcpy(buf + 64 + c->name_len, c->version, c->version_len);
	off = entries_offset(c);
	for (size_t i = 0; i < c->nentries; i++, off += HC_ENTRY_LEN) {
		memcpy(buf + off, c->entries[i].hash, HC_SHA256_LEN);
		hc_put32(buf + off + 32, c->entries[i].size);
		buf[off + 36] = c->entries[i].codec;
	}
	for (size_t i = 0; i < c->nsects; i++) {
		hc_put32(buf + off, c->sects[i].type);
		hc_put32(buf + off + 4, c->sects[i].flags);
		hc_put64(buf + off + 8, c->sects[i].len);
		memcpy(buf + off + 16, c->sects[i].data, c->sects[i].len);
		off += 16 + pad8(c->sects[i].len);
	}
	reseal(buf, len);
	*ret_len = len;
	return buf;
}

static struct hc_entry g_entries[NBLOCKS];
static uint8_t g_profile[sizeof(profile_blocks)]; /* little-endian u32s */

/* The reference index: sample entries, a mirrors and a profile section. */
static struct craft sample_craft(void)
{
	static struct sect sects[2];
	struct craft c = {
		.image_size = IMAGE_SIZE,
		.count = NBLOCKS,
		.serial = SERIAL,
		.created = CREATED,
		.shift = SHIFT,
		.codec = HC_CODEC_ZSTD,
		.name = "img",
		.version = "v1.0",
		.entries = g_entries,
		.nentries = NBLOCKS,
		.sects = sects,
		.nsects = 2,
	};

	sects[0] = (struct sect){ HC_SECT_MIRRORS, 0, mirrors_text, sizeof(mirrors_text) - 1 };
	sects[1] = (struct sect){ HC_SECT_PROFILE, 0, g_profile, sizeof(g_profile) };
	return c;
}

static void init_globals(void)
{
	sample_entries(g_entries);
	for (size_t i = 0; i < sizeof(profile_blocks) / 4; i++)
		hc_put32(g_profile + 4 * i, profile_blocks[i]);
}

/* The same index through the API. */
static hc_index *sample_index(void)
{
	hc_index *idx = hc_index_new("img", "v1.0", IMAGE_SIZE, SHIFT, HC_CODEC_ZSTD);

	if (!idx)
		return NULL;
	idx->serial = SERIAL;
	idx->created = CREATED;
	memcpy(idx->entries, g_entries, sizeof(g_entries));
	if (hc_index_add_section(idx, HC_SECT_MIRRORS, 0, mirrors_text, sizeof(mirrors_text) - 1) ||
	    hc_index_add_section(idx, HC_SECT_PROFILE, 0, g_profile, sizeof(g_profile))) {
		hc_index_free(idx);
		return NULL;
	}
	return idx;
}

/* Parses a copy in a buffer of exactly len bytes, so ASan sees any read
 * past the end. Returns the parse result; *why is NULL unless refused. */
static int parse_exact(const uint8_t *buf, size_t len, hc_index **ret, const char **why)
{
	uint8_t *copy = malloc(len ? len : 1);
	hc_index *idx = NULL;
	int r;

	memcpy(copy, buf, len);
	*why = NULL;
	r = hc_index_parse(copy, len, &idx, why);
	free(copy);
	if (ret)
		*ret = r == 0 ? idx : NULL;
	else if (r == 0)
		hc_index_free(idx);
	return r;
}

/* Refused as malformed, with a reason, and not for the checksum when
 * the test resealed the buffer (so the intended check is what caught it). */
static void expect_refused(const uint8_t *buf, size_t len, int resealed, const char *what)
{
	const char *why;
	int r = parse_exact(buf, len, NULL, &why);

	check(r == -EBADMSG && why, "%s: not refused (r=%d)", what, r);
	if (r == -EBADMSG && why && resealed)
		check(!strstr(why, "checksum"), "%s: refused only by the checksum (%s)", what, why);
}

static hc_index *expect_accepted(const uint8_t *buf, size_t len, const char *what)
{
	const char *why;
	hc_index *idx;
	int r = parse_exact(buf, len, &idx, &why);

	check(r == 0, "%s: refused (%s)", what, why ? why : "?");
	return idx;
}

/* ---- round trip ------------------------------------------------------- */

static void compare_index(const hc_index *a, const hc_index *b, const char *what)
{
	check(a->image_size == b->image_size, "%s: image_size", what);
	check(a->block_shift == b->block_shift, "%s: block_shift", what);
	check(a->codec == b->codec, "%s: codec", what);
	check(a->block_count == b->block_count, "%s: block_count", what);
	check(a->serial == b->serial, "%s: serial", what);
	check(a->created == b->created, "%s: created", what);
	check(!strcmp(a->name, b->name), "%s: name %s != %s", what, a->name, b->name);
	check(!strcmp(a->version, b->version), "%s: version", what);
	for (uint64_t i = 0; i < a->block_count && i < b->block_count; i++) {
		const struct hc_entry *x = &a->entries[i], *y = &b->entries[i];

		check(!memcmp(x->hash, y->hash, HC_SHA256_LEN) && x->size == y->size &&
			  x->codec == y->codec,
		      "%s: entry %llu differs", what, (unsigned long long)i);
	}
	if (!check(a->nsections == b->nsections, "%s: nsections %zu != %zu", what, a->nsections,
		   b->nsections))
		return;
	for (size_t i = 0; i < a->nsections; i++) {
		const struct hc_section *x = &a->sections[i], *y = &b->sections[i];

		check(x->type == y->type && x->flags == y->flags && x->len == y->len &&
			  !memcmp(x->data, y->data, x->len) && x->offset == y->offset,
		      "%s: section %zu differs", what, i);
	}
	check(!memcmp(a->digest, b->digest, HC_SHA256_LEN), "%s: digest", what);
}

static void test_round_trip(void)
{
	hc_index *idx = sample_index(), *back = NULL;
	struct craft c = sample_craft();
	uint8_t *buf = NULL, *ref, sum[HC_SHA256_LEN];
	size_t len = 0, ref_len, eoff;
	const struct hc_section *s;

	if (!check(idx != NULL, "round trip: hc_index_new/add_section failed"))
		return;
	check(idx->block_count == NBLOCKS, "round trip: block_count %llu",
	      (unsigned long long)idx->block_count);
	check(hc_index_serialize(idx, &buf, &len) == 0, "round trip: serialize failed");
	hc_sha256(buf, len, sum);
	check(!memcmp(sum, idx->digest, HC_SHA256_LEN), "round trip: digest != SHA-256 of file");

	/* The serializer writes exactly what FORMAT.md describes. */
	ref = craft_bytes(&c, &ref_len);
	check(len == ref_len && !memcmp(buf, ref, len),
	      "round trip: serialized bytes differ from the hand-crafted index");

	/* Section offsets point at their headers. */
	eoff = entries_offset(&c) + NBLOCKS * HC_ENTRY_LEN;
	check(idx->sections[0].offset == eoff &&
		  idx->sections[1].offset == eoff + 16 + pad8(sizeof(mirrors_text) - 1),
	      "round trip: section offsets");

	back = expect_accepted(buf, len, "round trip: parse");
	if (back) {
		compare_index(idx, back, "round trip");
		s = hc_index_find_section(back, HC_SECT_PROFILE);
		check(s && s->len == sizeof(profile_blocks) && hc_get32(s->data + 8) == 11,
		      "round trip: profile section");
		s = hc_index_find_section(back, HC_SECT_MIRRORS);
		check(s && s->len == strlen(mirrors_text) && !memcmp(s->data, mirrors_text, s->len),
		      "round trip: mirrors section");
		check(!hc_index_find_section(back, HC_SECT_SIGNATURE),
		      "round trip: found a section that is not there");
	}
	hc_index_free(back);
	hc_index_free(idx);
	free(buf);
	free(ref);
}

/* Edge shapes: an empty image, an exact multiple of the block size, the
 * smallest and largest block sizes. */
static void test_shapes(void)
{
	static const struct {
		uint64_t size;
		unsigned shift;
		uint64_t count;
		uint32_t last;
	} t[] = {
		{ 0, 12, 0, 0 },
		{ 1, 12, 1, 1 },
		{ 4096, 12, 1, 4096 },
		{ 4097, 12, 2, 1 },
		{ 3 << 22, 22, 3, 1 << 22 },
		{ (3 << 22) + 5, 22, 4, 5 },
		{ (uint64_t)5 << 30, 17, 40960, 1 << 17 },
	};

	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		hc_index *idx = hc_index_new("n", "1", t[k].size, t[k].shift, HC_CODEC_ZLIB), *back;
		uint8_t *buf;
		size_t len;

		if (!check(idx != NULL, "shape %zu: hc_index_new failed", k))
			continue;
		check(idx->block_count == t[k].count, "shape %zu: block_count %llu", k,
		      (unsigned long long)idx->block_count);
		if (t[k].count) {
			check(hc_index_block_len(idx, t[k].count - 1) == t[k].last,
			      "shape %zu: last block length %u", k,
			      hc_index_block_len(idx, t[k].count - 1));
			check(t[k].count < 2 || hc_index_block_len(idx, 0) == 1u << t[k].shift,
			      "shape %zu: first block length", k);
		}
		check(hc_index_block_len(idx, t[k].count) == 0, "shape %zu: block past the end", k);
		check(hc_index_block_len(idx, UINT64_MAX >> t[k].shift) == 0,
		      "shape %zu: far block past the end", k);
		/* All-zero entries are valid: serialize and parse back. */
		if (t[k].count < 100000 && hc_index_serialize(idx, &buf, &len) == 0) {
			back = expect_accepted(buf, len, "shape parse");
			if (back)
				compare_index(idx, back, "shape");
			hc_index_free(back);
			free(buf);
		}
		hc_index_free(idx);
	}
	check(!hc_index_new("n", "1", 1, 11, 2), "hc_index_new: shift 11 accepted");
	check(!hc_index_new("n", "1", 1, 23, 2), "hc_index_new: shift 23 accepted");
	check(!hc_index_new("a/b", "1", 1, 12, 2), "hc_index_new: bad name accepted");
	check(!hc_index_new("n", "latest", 1, 12, 2), "hc_index_new: version latest accepted");
}

static void test_block_len(void)
{
	struct craft c = sample_craft();
	uint8_t *buf;
	size_t len;
	hc_index *idx;

	buf = craft_bytes(&c, &len);
	idx = expect_accepted(buf, len, "block_len: parse");
	if (idx) {
		for (uint64_t i = 0; i + 1 < NBLOCKS; i++)
			check(hc_index_block_len(idx, i) == BS, "block_len(%llu)",
			      (unsigned long long)i);
		check(hc_index_block_len(idx, NBLOCKS - 1) == LAST_LEN, "block_len(last) = %u",
		      hc_index_block_len(idx, NBLOCKS - 1));
		check(hc_index_block_len(idx, NBLOCKS) == 0, "block_len(count)");
		check(hc_index_block_size(idx) == BS, "block_size");
	}
	hc_index_free(idx);
	free(buf);
}

/* ---- corruption ----------------------------------------------------- */

/* Without the checksum recomputed, any single changed byte must be
 * refused, whatever the byte and whatever the change. */
static void test_flips(void)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	struct craft c = sample_craft();
	size_t len;
	uint8_t *buf = craft_bytes(&c, &len);
	char what[64];

	for (size_t i = 0; i < len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			buf[i] ^= masks[m];
			snprintf(what, sizeof(what), "flip byte %zu ^ 0x%02x", i, masks[m]);
			expect_refused(buf, len, 0, what);
			buf[i] ^= masks[m];
		}
	}
	free(buf);
}

/* Bytes FORMAT.md fixes to zero but does not ask a reader to check: the
 * header flags and the padding after the names and after each section.
 * The parser ignores them, so they are zeroed (at the places the parsed
 * index puts them) before comparing with a fresh serialization. */
static void zero_unchecked(uint8_t *buf, size_t len, const hc_index *idx)
{
	size_t names = HC_HEADER_LEN + strlen(idx->name) + strlen(idx->version);

	memset(buf + 12, 0, 4);
	memset(buf + names, 0, pad8(names) - names);
	for (size_t k = 0; k < idx->nsections; k++) {
		const struct hc_section *s = &idx->sections[k];
		size_t data_end = s->offset + 16 + s->len;

		memset(buf + data_end, 0, pad8(data_end) - data_end);
	}
	reseal(buf, len);
}

/* With the checksum recomputed, a changed byte is either refused or
 * accepted with the change carried into the parsed index: serializing
 * it again gives exactly the changed bytes (nothing silently dropped). */
static void test_resealed_flips(void)
{
	static const uint8_t masks[] = { 0x01, 0x80 };
	struct craft c = sample_craft();
	size_t len, len2;
	uint8_t *buf = craft_bytes(&c, &len), *again, *copy = malloc(len);
	char what[64];
	const char *why;
	hc_index *idx;

	for (size_t i = 0; i + HC_SHA256_LEN < len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			buf[i] ^= masks[m];
			reseal(buf, len);
			snprintf(what, sizeof(what), "resealed flip byte %zu ^ 0x%02x", i,
				 masks[m]);
			if (parse_exact(buf, len, &idx, &why) < 0) {
				check(why != NULL, "%s: refused without a reason", what);
			} else if (check(hc_index_serialize(idx, &again, &len2) == 0,
					 "%s: serialize failed", what)) {
				memcpy(copy, buf, len);
				zero_unchecked(copy, len, idx);
				check(len2 == len && !memcmp(again, copy, len),
				      "%s: accepted but the change was lost", what);
				free(again);
			}
			hc_index_free(idx);
			buf[i] ^= masks[m];
		}
	}
	free(copy);
	free(buf);
}

/* Every proper prefix is refused, both as is and with a trailer
 * recomputed over it (so the length checks, not the checksum, refuse). */
static void test_truncation(void)
{
	struct craft c = sample_craft();
	size_t len;
	uint8_t *buf = craft_bytes(&c, &len), *cut = malloc(len);
	char what[64];

	for (size_t n = 0; n < len; n++) {
		snprintf(what, sizeof(what), "truncated to %zu", n);
		expect_refused(buf, n, 0, what);
		if (n >= HC_HEADER_LEN + HC_SHA256_LEN) {
			memcpy(cut, buf, n);
			reseal(cut, n);
			snprintf(what, sizeof(what), "truncated to %zu and resealed", n);
			expect_refused(cut, n, 1, what);
		}
	}
	free(cut);
	free(buf);
}

/* Patches a valid index with fn and checks it is refused for a reason
 * other than the checksum. */
static void refuse_patched(void (*fn)(uint8_t *, const struct craft *), const char *what)
{
	struct craft c = sample_craft();
	size_t len;
	uint8_t *buf = craft_bytes(&c, &len);

	fn(buf, &c);
	reseal(buf, len);
	expect_refused(buf, len, 1, what);
	free(buf);
}

static void p_magic(uint8_t *b, const struct craft *c)
{
	(void)c;
	b[7] = 'Y';
}
static void p_version0(uint8_t *b, const struct craft *c)
{
	(void)c;
	hc_put32(b + 8, 0);
}
static void p_version2(uint8_t *b, const struct craft *c)
{
	(void)c;
	hc_put32(b + 8, 2);
}
static void p_count_more(uint8_t *b, const struct craft *c)
{
	hc_put64(b + 32, c->count + 1);
}
static void p_count_less(uint8_t *b, const struct craft *c)
{
	hc_put64(b + 32, c->count - 1);
}
static void p_size_more(uint8_t *b, const struct craft *c)
{
	/* One more block's worth: the count no longer matches. */
	hc_put64(b + 16, c->image_size + BS);
}
static void p_size_less(uint8_t *b, const struct craft *c)
{
	hc_put64(b + 16, c->image_size - LAST_LEN);
}
static void p_count_huge(uint8_t *b, const struct craft *c)
{
	(void)c;
	hc_put64(b + 16, UINT64_MAX);
	hc_put64(b + 32, (UINT64_MAX >> SHIFT) + 1);
}
static void p_shift_small(uint8_t *b, const struct craft *c)
{
	(void)c;
	hc_put32(b + 24, HC_MIN_SHIFT - 1);
}
static void p_shift_big(uint8_t *b, const struct craft *c)
{
	(void)c;
	hc_put32(b + 24, 64);
}
static void p_name_slash(uint8_t *b, const struct craft *c)
{
	(void)c;
	b[64 + 1] = '/'; /* "i/g" */
}
static void p_name_nul(uint8_t *b, const struct craft *c)
{
	(void)c;
	b[64 + 1] = '\0'; /* "i\0g": must not pass as "i" */
}
static void p_version_nul(uint8_t *b, const struct craft *c)
{
	b[64 + c->name_len + c->version_len - 1] = '\0';
}
static void p_name_len0(uint8_t *b, const struct craft *c)
{
	(void)c;
	hc_put16(b + 56, 0);
}
static void p_name_len_big(uint8_t *b, const struct craft *c)
{
	(void)c;
	hc_put16(b + 56, 0xffff);
}
static void p_version_len0(uint8_t *b, const struct craft *c)
{
	(void)c;
	hc_put16(b + 58, 0);
}
static void p_nsect_more(uint8_t *b, const struct craft *c)
{
	hc_put32(b + 60, (uint32_t)c->nsects + 1);
}
static void p_nsect_less(uint8_t *b, const struct craft *c)
{
	hc_put32(b + 60, (uint32_t)c->nsects - 1);
}
static void p_nsect_huge(uint8_t *b, const struct craft *c)
{
	(void)c;
	hc_put32(b + 60, UINT32_MAX);
}
static uint8_t *entry_at(uint8_t *b, const struct craft *c, size_t i)
{
	return b + entries_offset(c) + i * HC_ENTRY_LEN;
}
static void p_codec_unknown(uint8_t *b, const struct craft *c)
{
	entry_at(b, c, 2)[36] = 4;
}
static void p_reserved(uint8_t *b, const struct craft *c)
{
	entry_at(b, c, 2)[39] = 1;
}
static void p_zero_with_size(uint8_t *b, const struct craft *c)
{
	hc_put32(entry_at(b, c, 0) + 32, 10);
}
static void p_zero_with_hash(uint8_t *b, const struct craft *c)
{
	entry_at(b, c, 0)[5] = 1;
}
static void p_raw_short(uint8_t *b, const struct craft *c)
{
	hc_put32(entry_at(b, c, 1) + 32, BS - 1);
}
static void p_raw_long(uint8_t *b, const struct craft *c)
{
	hc_put32(entry_at(b, c, 1) + 32, BS + 1);
}
static void p_zstd_size0(uint8_t *b, const struct craft *c)
{
	hc_put32(entry_at(b, c, 2) + 32, 0);
}
static void p_zlib_full(uint8_t *b, const struct craft *c)
{
	hc_put32(entry_at(b, c, 3) + 32, BS);
}
static void p_last_zstd_full(uint8_t *b, const struct craft *c)
{
	/* The last block is short: its length, not the block size, bounds it. */
	hc_put32(entry_at(b, c, NBLOCKS - 1) + 32, LAST_LEN);
}
static void p_last_raw_bs(uint8_t *b, const struct craft *c)
{
	uint8_t *e = entry_at(b, c, NBLOCKS - 1);

	e[36] = HC_CODEC_RAW;
	hc_put32(e + 32, BS);
}
static void p_sect_len_huge(uint8_t *b, const struct craft *c)
{
	hc_put64(entry_at(b, c, NBLOCKS) + 8, UINT64_MAX);
}
static void p_sect_len_past(uint8_t *b, const struct craft *c)
{
	hc_put64(entry_at(b, c, NBLOCKS) + 8, 4096);
}
static void p_sect_len_pad(uint8_t *b, const struct craft *c)
{
	/* Section data ends inside the padding of the last section. */
	size_t off = entries_offset(c) + NBLOCKS * HC_ENTRY_LEN;

	off += 16 + pad8(c->sects[0].len);
	hc_put64(b + off + 8, pad8(c->sects[1].len) + 1);
}

static void test_patches(void)
{
	static const struct {
		void (*fn)(uint8_t *, const struct craft *);
		const char *what;
	} t[] = {
		{ p_magic, "bad magic" },
		{ p_version0, "format version 0" },
		{ p_version2, "format version 2" },
		{ p_count_more, "block count one too many" },
		{ p_count_less, "block count one too few" },
		{ p_size_more, "image size a block larger" },
		{ p_size_less, "image size a short block smaller" },
		{ p_count_huge, "huge image size and count" },
		{ p_shift_small, "block shift 11" },
		{ p_shift_big, "block shift 64" },
		{ p_name_slash, "name with '/'" },
		{ p_name_nul, "name with a NUL byte" },
		{ p_version_nul, "version with a NUL byte" },
		{ p_name_len0, "name length 0" },
		{ p_name_len_big, "name length 65535" },
		{ p_version_len0, "version length 0" },
		{ p_nsect_more, "section count one too many" },
		{ p_nsect_less, "section count one too few" },
		{ p_nsect_huge, "section count 2^32-1" },
		{ p_codec_unknown, "entry codec 4" },
		{ p_reserved, "entry reserved byte set" },
		{ p_zero_with_size, "zero entry with a size" },
		{ p_zero_with_hash, "zero entry with a hash" },
		{ p_raw_short, "raw entry shorter than the block" },
		{ p_raw_long, "raw entry longer than the block" },
		{ p_zstd_size0, "zstd entry of size 0" },
		{ p_zlib_full, "zlib entry as large as the block" },
		{ p_last_zstd_full, "last zstd entry as large as the short block" },
		{ p_last_raw_bs, "last raw entry of a full block size" },
		{ p_sect_len_huge, "section length 2^64-1" },
		{ p_sect_len_past, "section length past the end" },
		{ p_sect_len_pad, "last section length into the trailer" },
	};

	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++)
		refuse_patched(t[k].fn, t[k].what);
}

/* Crafts an index with the sample entries and the given sections. */
static uint8_t *craft_with(const struct sect *s, size_t n, size_t *len)
{
	struct craft c = sample_craft();

	c.sects = s;
	c.nsects = n;
	return craft_bytes(&c, len);
}

static void test_sections(void)
{
	static const char hello[] = "hello, future reader";
	static const char sig[] = "not really a signature";
	uint8_t *buf;
	size_t len;
	hc_index *idx;
	const struct hc_section *s;

	/* Unknown and non-critical: kept as it is, others still there. */
	const struct sect keep[] = {
		{ HC_SECT_MIRRORS, 0, mirrors_text, sizeof(mirrors_text) - 1 },
		{ 77, 0, hello, sizeof(hello) },
		{ 1000, 2, "", 0 }, /* some flag other than critical */
	};
	buf = craft_with(keep, 3, &len);
	idx = expect_accepted(buf, len, "unknown non-critical section");
	if (idx) {
		s = hc_index_find_section(idx, 77);
		check(idx->nsections == 3 && s && s->len == sizeof(hello) &&
			  !memcmp(s->data, hello, sizeof(hello)) && s->flags == 0,
		      "unknown non-critical section: not kept as it was");
		s = hc_index_find_section(idx, 1000);
		check(s && s->len == 0 && s->flags == 2, "empty unknown section not kept");
		check(hc_index_find_section(idx, HC_SECT_MIRRORS) != NULL,
		      "mirrors lost beside an unknown section");
	}
	hc_index_free(idx);
	free(buf);

	/* Unknown and critical: the whole index is refused. */
	const struct sect crit[] = {
		{ HC_SECT_MIRRORS, 0, mirrors_text, sizeof(mirrors_text) - 1 },
		{ 77, HC_SECT_CRITICAL, hello, sizeof(hello) },
	};
	buf = craft_with(crit, 2, &len);
	expect_refused(buf, len, 1, "unknown critical section");
	free(buf);

	const struct sect crit0[] = { { 0, HC_SECT_CRITICAL | 4, "", 0 } };
	buf = craft_with(crit0, 1, &len);
	expect_refused(buf, len, 1, "critical section type 0");
	free(buf);

	/* A known type marked critical is fine. */
	const struct sect known[] = { { HC_SECT_MIRRORS, HC_SECT_CRITICAL, "x\n", 2 } };
	buf = craft_with(known, 1, &len);
	hc_index_free(expect_accepted(buf, len, "known critical section"));
	free(buf);

	/* The signature must come last. */
	const struct sect sig_last[] = {
		{ HC_SECT_MIRRORS, 0, "x\n", 2 },
		{ HC_SECT_SIGNATURE, HC_SECT_CRITICAL, sig, sizeof(sig) },
	};
	buf = craft_with(sig_last, 2, &len);
	hc_index_free(expect_accepted(buf, len, "signature last"));
	free(buf);

	const struct sect sig_first[] = {
		{ HC_SECT_SIGNATURE, HC_SECT_CRITICAL, sig, sizeof(sig) },
		{ HC_SECT_MIRRORS, 0, "x\n", 2 },
	};
	buf = craft_with(sig_first, 2, &len);
	expect_refused(buf, len, 1, "signature not last");
	free(buf);
}

/* Shapes the writer never makes but the rules allow, and a few the rules
 * forbid that need other bytes than a patch. */
static void test_crafted_shapes(void)
{
	struct craft c;
	struct hc_entry e[NBLOCKS];
	char longname[HC_NAME_MAX + 2];
	uint8_t *buf, *big;
	size_t len;

	/* Last block stored raw at its short length. */
	memcpy(e, g_entries, sizeof(e));
	e[NBLOCKS - 1].codec = HC_CODEC_RAW;
	e[NBLOCKS - 1].size = LAST_LEN;
	c = sample_craft();
	c.entries = e;
	buf = craft_bytes(&c, &len);
	hc_index_free(expect_accepted(buf, len, "short raw last block"));
	free(buf);

	/* Longest name and version. */
	memset(longname, 'n', HC_NAME_MAX);
	longname[HC_NAME_MAX] = '\0';
	c = sample_craft();
	c.name = c.version = longname;
	buf = craft_bytes(&c, &len);
	hc_index *idx = expect_accepted(buf, len, "128-character name and version");
	check(idx && strlen(idx->name) == HC_NAME_MAX && strlen(idx->version) == HC_NAME_MAX,
	      "128-character name and version: not kept whole");
	hc_index_free(idx);
	free(buf);

	/* One character too many. */
	memset(longname, 'n', HC_NAME_MAX + 1);
	longname[HC_NAME_MAX + 1] = '\0';
	c = sample_craft();
	c.name = longname;
	buf = craft_bytes(&c, &len);
	expect_refused(buf, len, 1, "129-character name");
	free(buf);
	c = sample_craft();
	c.version = longname;
	buf = craft_bytes(&c, &len);
	expect_refused(buf, len, 1, "129-character version");
	free(buf);

	/* Reserved names. */
	c = sample_craft();
	c.name = "latest";
	buf = craft_bytes(&c, &len);
	expect_refused(buf, len, 1, "name \"latest\"");
	free(buf);
	c = sample_craft();
	c.version = "latest";
	buf = craft_bytes(&c, &len);
	expect_refused(buf, len, 1, "version \"latest\"");
	free(buf);
	c = sample_craft();
	c.version = "..";
	buf = craft_bytes(&c, &len);
	expect_refused(buf, len, 1, "version \"..\"");
	free(buf);

	/* Bytes between the last section and the trailer. */
	c = sample_craft();
	buf = craft_bytes(&c, &len);
	big = calloc(1, len + 8);
	memcpy(big, buf, len - HC_SHA256_LEN);
	reseal(big, len + 8);
	expect_refused(big, len + 8, 1, "8 bytes before the trailer");
	/* and after it */
	memcpy(big, buf, len);
	expect_refused(big, len + 8, 0, "8 bytes after the trailer");
	/* and the start of the old trailer left in front of a new one */
	memcpy(big, buf, len);
	reseal(big, len + 8);
	expect_refused(big, len + 8, 1, "old trailer bytes before a new trailer");
	free(big);
	free(buf);
}

/* ---- latest pointer --------------------------------------------------- */

static void latest_refused(const char *text, const char *what)
{
	struct hc_latest l;

	check(hc_latest_parse(text, strlen(text), &l) == -EBADMSG, "latest %s: not refused", what);
}

static void test_latest(void)
{
	static const char hex[] = "00112233445566778899aabbccddeeff"
				  "0123456789abcdef0123456789ABCDEF";
	struct hc_latest l = { .serial = 42 }, back;
	char buf[512], big[512];
	int n;

	strcpy(l.version, "v2.1_rc-3");
	for (int i = 0; i < HC_SHA256_LEN; i++)
		l.digest[i] = (uint8_t)(i * 37 + 1);
	n = hc_latest_format(&l, buf, sizeof(buf));
	check(n > 0 && (size_t)n == strlen(buf) && buf[n - 1] == '\n', "latest format: %d", n);
	check(hc_latest_parse(buf, (size_t)n, &back) == 0, "latest round trip: refused");
	check(!strcmp(back.version, l.version) && back.serial == l.serial &&
		  !memcmp(back.digest, l.digest, HC_SHA256_LEN),
	      "latest round trip: fields differ");
	/* The digest is written in lowercase. */
	check(!strncmp(buf, "v2.1_rc-3 42 01", 15) && !strpbrk(buf, "ABCDEF"),
	      "latest format: not 'VERSION SERIAL lowercase-hex'");
	check(hc_latest_format(&l, buf, 20) == -ENAMETOOLONG, "latest format: short buffer");

	/* The maximum serial and the longest version. */
	l.serial = UINT64_MAX;
	memset(l.version, 'v', HC_NAME_MAX);
	l.version[HC_NAME_MAX] = '\0';
	n = hc_latest_format(&l, buf, sizeof(buf));
	check(n > 0 && hc_latest_parse(buf, (size_t)n, &back) == 0 && back.serial == UINT64_MAX &&
		  !strcmp(back.version, l.version),
	      "latest round trip: longest version and largest serial");

	snprintf(buf, sizeof(buf), "v1 1 %s\n", hex);
	check(hc_latest_parse(buf, strlen(buf), &back) == 0 && back.digest[31] == 0xef,
	      "latest: mixed-case hex refused");

	snprintf(buf, sizeof(buf), "v1 1 %s", hex);
	latest_refused(buf, "without newline");
	latest_refused("", "empty");
	latest_refused("\n", "empty line");
	latest_refused("v1 1\n", "without digest");
	latest_refused("v1\n", "version only");
	snprintf(buf, sizeof(buf), "v1 1 %.63s\n", hex);
	latest_refused(buf, "63 hex digits");
	snprintf(buf, sizeof(buf), "v1 1 %s0\n", hex);
	latest_refused(buf, "65 hex digits");
	snprintf(buf, sizeof(buf), "v1 1 %.62sxy\n", hex);
	latest_refused(buf, "non-hex digits");
	snprintf(buf, sizeof(buf), "v1 x %s\n", hex);
	latest_refused(buf, "non-numeric serial");
	snprintf(buf, sizeof(buf), "v1 -1 %s\n", hex);
	latest_refused(buf, "negative serial");
	snprintf(buf, sizeof(buf), "latest 1 %s\n", hex);
	latest_refused(buf, "version \"latest\"");
	snprintf(buf, sizeof(buf), "a/b 1 %s\n", hex);
	latest_refused(buf, "version with '/'");
	snprintf(buf, sizeof(buf), ".hidden 1 %s\n", hex);
	latest_refused(buf, "version starting with '.'");
	snprintf(buf, sizeof(buf), "v1 1 %s extra\n", hex);
	latest_refused(buf, "trailing words");
	snprintf(buf, sizeof(buf), " v1 1 %s\n", hex);
	latest_refused(buf, "leading space");
	snprintf(buf, sizeof(buf), "v1  1 %s\n", hex);
	latest_refused(buf, "two spaces");
	snprintf(buf, sizeof(buf), "v1 1 %s \n", hex);
	latest_refused(buf, "space before the newline");
	snprintf(buf, sizeof(buf), "v1 1 %s\nv2 2 %s\n", hex, hex);
	latest_refused(buf, "two lines");
	/* Found by fuzz/fuzz_index: sscanf's " " matched none or any run of
	 * white space between serial and digest, and %llu saturated. */
	snprintf(big, sizeof(big), "v1 7f%s\n", hex + 1);
	latest_refused(big, "digest straight after the serial");
	snprintf(buf, sizeof(buf), "v1 1  %s\n", hex);
	latest_refused(buf, "two spaces before the digest");
	snprintf(buf, sizeof(buf), "v1 1\t%s\n", hex);
	latest_refused(buf, "tab before the digest");
	snprintf(buf, sizeof(buf), "v1 1\n%s\n", hex);
	latest_refused(buf, "digest on a line of its own");
	snprintf(buf, sizeof(buf), "v1 18446744073709551616 %s\n", hex);
	latest_refused(buf, "serial of 2^64");
	n = snprintf(buf, sizeof(buf), "v1 1 %s", hex);
	memcpy(buf + n, "\0\n", 2);
	check(hc_latest_parse(buf, (size_t)n + 2, &back) == -EBADMSG, "latest: NUL accepted");
	snprintf(buf, sizeof(buf), "v1 0018446744073709551615 %s\n", hex);
	check(hc_latest_parse(buf, strlen(buf), &back) == 0 && back.serial == UINT64_MAX,
	      "latest: largest serial with leading zeros refused");
	/* A version one character too long must not be cut to 128: here the
	 * 129th character is a digit that would then read as the serial. */
	memset(big, 'v', HC_NAME_MAX);
	snprintf(big + HC_NAME_MAX, sizeof(big) - HC_NAME_MAX, "7 %s\n", hex);
	latest_refused(big, "129-character version ending in a digit");
	memset(big, 'v', HC_NAME_MAX + 1);
	snprintf(big + HC_NAME_MAX + 1, sizeof(big) - HC_NAME_MAX - 1, " 7 %s\n", hex);
	latest_refused(big, "129-character version");
	/* The parser must not need a NUL terminator. */
	snprintf(buf, sizeof(buf), "v1 1 %sGARBAGE", hex);
	check(hc_latest_parse(buf, strlen(buf) - 7, &back) == -EBADMSG,
	      "latest: length ignored (no newline within len)");
	buf[strlen(buf) - 7] = '\n';
	check(hc_latest_parse(buf, strlen(buf) - 6, &back) == 0, "latest: len not honoured");
}

/* ---- names -------------------------------------------------------- */

static void test_names(void)
{
	static const char *const good[] = { "a",       "Z",	   "0",	 "img",	     "v1.2.3",
					    "a_b-c.d", "x-",	   "x.", "latest.1", "Latest",
					    "LATEST",  "latest-2", "_x" };
	static const char *const bad[] = { "",	   ".",	       "..",   ".x",  "-x",	"a/b",
					   "/",	   "a b",      "a\tb", "a\n", "latest", "a:b",
					   "a%2f", "\xc3\xa4", "a*",   "a\\b" };
	char name[HC_NAME_MAX + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		check(hc_name_valid(good[i]), "name \"%s\" refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check(!hc_name_valid(bad[i]), "name \"%s\" accepted", bad[i]);
	memset(name, 'a', sizeof(name));
	name[HC_NAME_MAX] = '\0';
	check(hc_name_valid(name), "128-character name refused");
	name[HC_NAME_MAX] = 'a';
	name[HC_NAME_MAX + 1] = '\0';
	check(!hc_name_valid(name), "129-character name accepted");
}

static void test_misc(void)
{
	uint8_t h[HC_SHA256_LEN];
	char path[HC_BLOCK_PATH_LEN];

	for (int i = 0; i < HC_SHA256_LEN; i++)
		h[i] = (uint8_t)(0xab + i);
	hc_block_path(h, path);
	check(strlen(path) == HC_BLOCK_PATH_LEN - 1 && !strncmp(path, "blocks/ab/abacad", 16),
	      "block path: %s", path);
	check(hc_codec_from_name("zstd") == HC_CODEC_ZSTD &&
		  hc_codec_from_name("zlib") == HC_CODEC_ZLIB &&
		  hc_codec_from_name("none") == HC_CODEC_RAW,
	      "codec names");
	check(hc_codec_from_name("zero") < 0 && hc_codec_from_name("gzip") < 0,
	      "codec name: zero or gzip accepted for building");
	check(!strcmp(hc_codec_name(HC_CODEC_ZERO), "zero") && !strcmp(hc_codec_name(9), "unknown"),
	      "codec name of 0 and 9");
}

int main(void)
{
	init_globals();
	test_round_trip();
	test_shapes();
	test_block_len();
	test_flips();
	test_resealed_flips();
	test_truncation();
	test_patches();
	test_sections();
	test_crafted_shapes();
	test_latest();
	test_names();
	test_misc();
	printf("test_index: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
