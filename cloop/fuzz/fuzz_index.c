/*
 * fuzz_index.c - libFuzzer target for the index parser (index.c).
 *
 * The input is parsed as an index (hc_index_parse) and as a latest pointer
 * (hc_latest_parse). A parsed index must obey every rule of FORMAT.md,
 * serialize back to the same bytes (but for the reserved header flags and
 * padding, which the parser does not read) and parse again to the same
 * fields. A latest pointer is compared with a reference parser written
 * from FORMAT.md's "VERSION SERIAL DIGEST\n".
 *
 * The index trailer is a SHA-256, which random mutations almost always
 * break: the custom mutator reseals most mutated indexes, so that the
 * fuzzer gets past the checksum and the saved inputs are real indexes.
 */
#include "../src/index.h"
#include "../src/util.h"

#include <errno.h>
#include <string.h>

#include "fuzz.h"

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static void reseal(uint8_t *buf, size_t len)
{
	hc_sha256(buf, len - HC_SHA256_LEN, buf + len - HC_SHA256_LEN);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	/* One in eight keeps its damaged trailer: the checksum path too. */
	if (size >= HC_HEADER_LEN + HC_SHA256_LEN && !memcmp(data, HC_INDEX_MAGIC, 8) && seed % 8)
		reseal(data, size);
	return size;
}

static void check_entry(const hc_index *idx, uint64_t i)
{
	static const uint8_t zero[HC_SHA256_LEN];
	const struct hc_entry *e = &idx->entries[i];
	uint64_t bs = hc_index_block_size(idx);
	uint32_t l = hc_index_block_len(idx, i);

	FUZZ_ASSERT(l >= 1 && l <= bs && (i + 1 == idx->block_count || l == bs),
		    "block %llu of %llu: length %u, block size %llu", (unsigned long long)i,
		    (unsigned long long)idx->block_count, l, (unsigned long long)bs);
	switch (e->codec) {
	case HC_CODEC_ZERO:
		FUZZ_ASSERT(e->size == 0 && !memcmp(e->hash, zero, sizeof(zero)),
			    "zero block %llu with size %u or a hash", (unsigned long long)i,
			    e->size);
		break;
	case HC_CODEC_RAW:
		FUZZ_ASSERT(e->size == l, "raw block %llu: size %u, length %u",
			    (unsigned long long)i, e->size, l);
		break;
	case HC_CODEC_ZSTD:
	case HC_CODEC_ZLIB:
		FUZZ_ASSERT(e->size > 0 && e->size < l, "compressed block %llu: size %u, length %u",
			    (unsigned long long)i, e->size, l);
		break;
	default:
		FUZZ_ASSERT(0, "block %llu: codec %u", (unsigned long long)i, e->codec);
	}
}

/* FORMAT.md's rules, and that the sections are the input's own bytes,
 * one after the other up to the trailer. */
static void check_rules(const hc_index *idx, const uint8_t *buf, size_t len)
{
	uint64_t bs, total = 0, off;

	FUZZ_ASSERT(idx->block_shift >= HC_MIN_SHIFT && idx->block_shift <= HC_MAX_SHIFT,
		    "block shift %u", idx->block_shift);
	bs = hc_index_block_size(idx);
	FUZZ_ASSERT(idx->block_count == idx->image_size / bs + (idx->image_size % bs != 0),
		    "%llu blocks for %llu bytes", (unsigned long long)idx->block_count,
		    (unsigned long long)idx->image_size);
	FUZZ_ASSERT(hc_name_valid(idx->name) && hc_name_valid(idx->version), "name %s version %s",
		    idx->name, idx->version);
	for (uint64_t i = 0; i < idx->block_count; i++) {
		check_entry(idx, i);
		total += hc_index_block_len(idx, i);
	}
	FUZZ_ASSERT(total == idx->image_size, "block lengths add up to %llu",
		    (unsigned long long)total);
	FUZZ_ASSERT(hc_index_block_len(idx, idx->block_count) == 0, "a block past the last one");

	off = HC_HEADER_LEN + pad8(strlen(idx->name) + strlen(idx->version)) +
	      idx->block_count * HC_ENTRY_LEN;
	for (size_t i = 0; i < idx->nsections; i++) {
		const struct hc_section *s = &idx->sections[i];

		FUZZ_ASSERT(s->offset == off, "section %zu at %llu, expected %llu", i,
			    (unsigned long long)s->offset, (unsigned long long)off);
		FUZZ_ASSERT(s->len <= len - HC_SHA256_LEN - off - 16 &&
				!memcmp(s->data, buf + off + 16, s->len),
			    "section %zu: %llu bytes not the input's", i,
			    (unsigned long long)s->len);
		FUZZ_ASSERT((s->type >= HC_SECT_MIRRORS && s->type <= HC_SECT_SIGNATURE) ||
				!(s->flags & HC_SECT_CRITICAL),
			    "unknown critical section type %u", s->type);
		FUZZ_ASSERT(s->type != HC_SECT_SIGNATURE || i + 1 == idx->nsections,
			    "signature section %zu of %zu", i, idx->nsections);
		off += 16 + pad8(s->len);
	}
	FUZZ_ASSERT(off == len - HC_SHA256_LEN, "sections end at %llu, trailer at %zu",
		    (unsigned long long)off, len - HC_SHA256_LEN);
}

/* The input as hc_index_serialize would write it: zero header flags and
 * padding, and the trailer to match. */
static uint8_t *canonical(const hc_index *idx, const uint8_t *buf, size_t len)
{
	uint8_t *c = malloc(len);
	size_t nv = strlen(idx->name) + strlen(idx->version);

	FUZZ_ASSERT(c, "out of memory");
	memcpy(c, buf, len);
	memset(c + 12, 0, 4);
	memset(c + HC_HEADER_LEN + nv, 0, pad8(nv) - nv);
	for (size_t i = 0; i < idx->nsections; i++) {
		const struct hc_section *s = &idx->sections[i];
		size_t end = (size_t)(s->offset + 16 + s->len);

		memset(c + end, 0, pad8(s->len) - s->len);
	}
	reseal(c, len);
	return c;
}

static void check_same(const hc_index *a, const hc_index *b)
{
	FUZZ_ASSERT(a->image_size == b->image_size && a->block_shift == b->block_shift &&
			a->codec == b->codec && a->block_count == b->block_count &&
			a->serial == b->serial && a->created == b->created &&
			!strcmp(a->name, b->name) && !strcmp(a->version, b->version) &&
			a->nsections == b->nsections,
		    "header fields differ after a round trip");
	for (uint64_t i = 0; i < a->block_count; i++) {
		const struct hc_entry *x = &a->entries[i], *y = &b->entries[i];

		FUZZ_ASSERT(!memcmp(x->hash, y->hash, HC_SHA256_LEN) && x->size == y->size &&
				x->codec == y->codec,
			    "entry %llu differs after a round trip", (unsigned long long)i);
	}
	for (size_t i = 0; i < a->nsections; i++) {
		const struct hc_section *x = &a->sections[i], *y = &b->sections[i];

		FUZZ_ASSERT(x->type == y->type && x->flags == y->flags && x->len == y->len &&
				x->offset == y->offset && !memcmp(x->data, y->data, x->len),
			    "section %zu differs after a round trip", i);
	}
}

static void check_index(hc_index *idx, const uint8_t *buf, size_t len)
{
	uint8_t sum[HC_SHA256_LEN], *canon, *out;
	size_t out_len;
	const char *why = NULL;
	hc_index *again = NULL;
	int r;

	hc_sha256(buf, len, sum);
	FUZZ_ASSERT(!memcmp(sum, idx->digest, HC_SHA256_LEN), "digest is not the input's SHA-256");
	check_rules(idx, buf, len);
	canon = canonical(idx, buf, len);
	r = hc_index_serialize(idx, &out, &out_len);
	FUZZ_ASSERT(r == 0, "serialize: %d", r);
	FUZZ_ASSERT(out_len == len && !memcmp(out, canon, len),
		    "serialized %zu bytes differ from the %zu parsed", out_len, len);
	hc_sha256(canon, len, sum);
	FUZZ_ASSERT(!memcmp(sum, idx->digest, HC_SHA256_LEN), "serialize: wrong digest");
	r = hc_index_parse(out, out_len, &again, &why);
	FUZZ_ASSERT(r == 0, "serialized index refused: %s", why ? why : "?");
	check_same(idx, again);
	FUZZ_ASSERT(!memcmp(again->digest, idx->digest, HC_SHA256_LEN), "digests differ");
	hc_index_free(again);
	free(out);
	free(canon);
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* FORMAT.md's latest pointer, read byte by byte: a valid version, one
 * space, decimal digits that fit in 64 bits, one space, 64 hex digits
 * (either case, as hc_latest_parse has always taken), one newline. */
static int latest_reference(const uint8_t *p, size_t len, struct hc_latest *l)
{
	const uint8_t *sp = len ? memchr(p, ' ', len) : NULL, *end = p + len;
	size_t vl = sp ? (size_t)(sp - p) : 0;

	if (!sp || vl > HC_NAME_MAX || memchr(p, '\0', vl))
		return 0;
	memcpy(l->version, p, vl);
	l->version[vl] = '\0';
	if (!hc_name_valid(l->version))
		return 0;
	p = sp + 1;
	l->serial = 0;
	if (p == end || *p < '0' || *p > '9')
		return 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (l->serial > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return 0;
		l->serial = l->serial * 10 + (uint64_t)(*p - '0');
	}
	if (end - p != 1 + 2 * HC_SHA256_LEN + 1 || *p++ != ' ')
		return 0;
	for (int i = 0; i < HC_SHA256_LEN; i++, p += 2) {
		int hi = hexval(p[0]), lo = hexval(p[1]);

		if (hi < 0 || lo < 0)
			return 0;
		l->digest[i] = (uint8_t)(hi << 4 | lo);
	}
	return *p == '\n';
}

static void check_latest(const uint8_t *buf, size_t len)
{
	struct hc_latest got, want, back;
	char text[HC_NAME_MAX + 100];
	int r = hc_latest_parse((const char *)buf, len, &got),
	    ok = latest_reference(buf, len, &want);
	int n;

	FUZZ_ASSERT(r == 0 || r == -EBADMSG, "hc_latest_parse: %d", r);
	FUZZ_ASSERT((r == 0) == ok, "hc_latest_parse says %d, FORMAT.md says %s", r,
		    ok ? "valid" : "invalid");
	if (r)
		return;
	FUZZ_ASSERT(!strcmp(got.version, want.version) && got.serial == want.serial &&
			!memcmp(got.digest, want.digest, HC_SHA256_LEN),
		    "latest pointer read as %s %llu", got.version, (unsigned long long)got.serial);
	n = hc_latest_format(&got, text, sizeof(text));
	FUZZ_ASSERT(n > 0 && hc_latest_parse(text, (size_t)n, &back) == 0 &&
			!strcmp(back.version, got.version) && back.serial == got.serial &&
			!memcmp(back.digest, got.digest, HC_SHA256_LEN),
		    "latest pointer does not survive format and parse: %d", n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hc_index *idx = NULL;
	const char *why = NULL;
	int r = hc_index_parse(data, size, &idx, &why);

	FUZZ_ASSERT(r == 0 || (r == -EBADMSG && why), "hc_index_parse: %d without a reason", r);
	if (r == 0) {
		check_index(idx, data, size);
		hc_index_free(idx);
	}
	check_latest(data, size);
	return 0;
}
