/*
 * test_codec.c - unit test for the block codecs (codec.c): round trips
 * of zstd, zlib and none over compressible, random, almost-zero, 1-byte
 * and 4 MiB blocks; refusal of wrong lengths, truncated or bit-flipped
 * streams, and anything after the one zstd frame or zlib stream that a
 * block file may hold (FORMAT.md).
 */
#include "../src/codec.h"
#include "../src/index.h"
#include "../src/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "check.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "FAIL: out of memory\n");
		exit(1);
	}
	return p;
}

/* ---- inputs ----------------------------------------------------------- */

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng();
}

/* Words from a small vocabulary: compresses well, but not trivially. */
static void fill_text(uint8_t *p, size_t n)
{
	static const char *const words[] = { "block ", "store ",  "index ", "the ",   "of ",
					     "cache ", "fetch\n", "zstd ",  "mount ", "image " };
	size_t i = 0;

	while (i < n) {
		const char *w = words[rng() % 10];

		for (; *w && i < n; w++)
			p[i++] = (uint8_t)*w;
	}
}

static void fill_almost_zero(uint8_t *p, size_t n)
{
	memset(p, 0, n);
	for (size_t i = 0; i < 5; i++)
		p[rng() % n] = (uint8_t)(rng() | 1);
}

/* Text, random and zero stretches, as in a filesystem image. */
static void fill_mixed(uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t k = 4096 + rng() % 65536;

		if (k > n - i)
			k = n - i;
		switch (rng() % 3) {
		case 0:
			fill_text(p + i, k);
			break;
		case 1:
			fill_random(p + i, k);
			break;
		default:
			memset(p + i, 0, k);
		}
		i += k;
	}
}

struct input {
	const char *name;
	void (*fill)(uint8_t *, size_t);
	size_t len;
	int compressible; /* must shrink with zstd and zlib */
};

static const struct input inputs[] = {
	{ "text 4K", fill_text, 4096, 1 },
	{ "text 128K", fill_text, 128 << 10, 1 },
	{ "random 128K", fill_random, 128 << 10, 0 },
	{ "almost-zero 128K", fill_almost_zero, 128 << 10, 1 },
	{ "random 1 byte", fill_random, 1, 0 },
	{ "mixed 4M", fill_mixed, 4 << 20, 1 },
	{ "random 4M", fill_random, 4 << 20, 0 },
};

static const unsigned codecs[] = { HC_CODEC_ZSTD, HC_CODEC_ZLIB, HC_CODEC_RAW };

/* ---- helpers ---------------------------------------------------------- */

struct encoded {
	uint8_t *data;
	size_t len;
	unsigned codec;
};

static int encode(hc_codec_ctx *cc, unsigned codec, int level, const uint8_t *in, size_t len,
		  struct encoded *ret)
{
	size_t cap = hc_codec_bound(len);
	int r;

	ret->data = xmalloc(cap);
	r = hc_block_encode(cc, codec, level, in, len, ret->data, cap, &ret->len, &ret->codec);
	if (r < 0) {
		free(ret->data);
		ret->data = NULL;
	}
	return r;
}

#define WRONG 1 /* decode_safe: "succeeded" with other bytes than the original */

/* A buffer of exactly len bytes, so ASan sees any access outside it;
 * kept while the size stays the same, as large allocations are slow
 * under the sanitizers. */
struct exact_buf {
	uint8_t *p;
	size_t len;
};

static uint8_t *exact(struct exact_buf *b, size_t len)
{
	if (!b->p || b->len != len) {
		free(b->p);
		b->p = xmalloc(len);
		b->len = len;
	}
	return b->p;
}

static struct exact_buf src_buf, out_buf;

/* Decodes (in, inlen) as codec into outlen bytes. Returns the decoder's
 * result, or WRONG when it claims success but the output is not orig. */
static int decode_safe(hc_codec_ctx *cc, unsigned codec, const uint8_t *in, size_t inlen,
		       const uint8_t *orig, size_t outlen)
{
	uint8_t *src = exact(&src_buf, inlen), *out = exact(&out_buf, outlen);
	int r;

	memcpy(src, in, inlen);
	r = hc_block_decode(cc, codec, src, inlen, out, outlen);
	if (r == 0 && (!orig || memcmp(out, orig, outlen)))
		r = WRONG;
	return r;
}

/* How many damaged variants of a stream to try: all for a small one. */
static size_t sample_step(size_t len, size_t big_len)
{
	if (len <= 8192)
		return 1;
	return len / (big_len >= (1u << 20) ? 40 : 400) + 1;
}

/* ---- tests ------------------------------------------------------------ */

static void test_round_trip(hc_codec_ctx *cc, const struct input *in, unsigned codec,
			    const uint8_t *data, struct encoded *e)
{
	char what[128];
	int r;

	snprintf(what, sizeof(what), "%s %s", hc_codec_name(codec), in->name);
	r = encode(cc, codec, hc_codec_default_level(codec), data, in->len, e);
	if (!check(r == 0, "%s: encode failed (%d)", what, r))
		return;
	/* Stored raw exactly when compression does not shrink the block. */
	if (codec == HC_CODEC_RAW || !in->compressible)
		check(e->codec == HC_CODEC_RAW && e->len == in->len &&
			  !memcmp(e->data, data, in->len),
		      "%s: expected to be stored raw, got %s, %zu bytes", what,
		      hc_codec_name(e->codec), e->len);
	else
		check(e->codec == codec && e->len < in->len, "%s: not compressed (%s, %zu bytes)",
		      what, hc_codec_name(e->codec), e->len);
	check(e->codec == HC_CODEC_RAW || e->len < in->len, "%s: compressed but not smaller", what);
	check(decode_safe(cc, e->codec, e->data, e->len, data, in->len) == 0,
	      "%s: round trip failed", what);

	/* Any other output length is a damaged or mismatched block. */
	snprintf(what, sizeof(what), "%s %s into len-1", hc_codec_name(codec), in->name);
	check(decode_safe(cc, e->codec, e->data, e->len, NULL, in->len - 1) == -EBADMSG,
	      "%s: not -EBADMSG", what);
	snprintf(what, sizeof(what), "%s %s into len+1", hc_codec_name(codec), in->name);
	check(decode_safe(cc, e->codec, e->data, e->len, NULL, in->len + 1) == -EBADMSG,
	      "%s: not -EBADMSG", what);
	snprintf(what, sizeof(what), "%s %s into twice the length", hc_codec_name(codec), in->name);
	check(decode_safe(cc, e->codec, e->data, e->len, NULL, 2 * in->len) == -EBADMSG,
	      "%s: not -EBADMSG", what);
}

/* Every prefix of a small stream, a sample of a large one: an error. */
static void test_truncated(hc_codec_ctx *cc, const struct input *in, const uint8_t *data,
			   const struct encoded *e)
{
	size_t step = sample_step(e->len, in->len);
	char what[128];

	for (size_t n = 0; n < e->len; n += step) {
		snprintf(what, sizeof(what), "%s %s truncated to %zu of %zu",
			 hc_codec_name(e->codec), in->name, n, e->len);
		check(decode_safe(cc, e->codec, e->data, n, data, in->len) < 0,
		      "%s: decoded without error", what);
	}
}

/* zstd flips that decoded to other bytes, and flips tried. */
static size_t zstd_silent, zstd_flips;

/* One bit flipped at every position of a small stream (a sample of a
 * large one): an error, or (a flip in a part the decoder does not use)
 * the original bytes, never other bytes. zlib's Adler-32 guarantees that.
 * The builder's zstd frames carry no content checksum, so a flip inside
 * their entropy-coded payload can decode to other bytes of the right
 * length: readers rely on the SHA-256 check of the block file, done
 * before decoding (FORMAT.md; see test_dev and test_diskcache). Those
 * are counted and reported, not failed; test_zstd_checksum shows the
 * decoder does catch them when a frame has a checksum. */
static void test_flipped(hc_codec_ctx *cc, const struct input *in, const uint8_t *data,
			 const struct encoded *e)
{
	size_t step = sample_step(e->len, in->len);
	uint8_t *copy = xmalloc(e->len);
	char what[128];

	memcpy(copy, e->data, e->len);
	for (size_t i = 0; i < e->len; i += step) {
		for (int bit = 0; bit < 8; bit += 7) {
			int r;

			copy[i] ^= (uint8_t)(1u << bit);
			snprintf(what, sizeof(what), "%s %s byte %zu bit %d flipped",
				 hc_codec_name(e->codec), in->name, i, bit);
			r = decode_safe(cc, e->codec, copy, e->len, data, in->len);
			if (e->codec == HC_CODEC_ZSTD) {
				zstd_flips++;
				zstd_silent += r == WRONG;
			} else {
				check(r != WRONG, "%s: decoded to wrong bytes", what);
			}
			copy[i] ^= (uint8_t)(1u << bit);
		}
	}
	free(copy);
}

/* A zstd frame with a content checksum, as libzstd writes on request:
 * hc_block_decode must refuse every flip that changes the output. */
static void test_zstd_checksum(hc_codec_ctx *cc)
{
	enum { N = 4096 };
	ZSTD_CCtx *z = ZSTD_createCCtx();
	uint8_t *data = xmalloc(N), *buf = xmalloc(ZSTD_compressBound(N));
	size_t n;
	char what[64];

	fill_text(data, N);
	ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1);
	n = ZSTD_compress2(z, buf, ZSTD_compressBound(N), data, N);
	if (check(z && !ZSTD_isError(n), "zstd: cannot make a checksummed frame")) {
		check(decode_safe(cc, HC_CODEC_ZSTD, buf, n, data, N) == 0,
		      "checksummed zstd frame: round trip");
		for (size_t i = 0; i < n; i++) {
			for (int bit = 0; bit < 8; bit++) {
				buf[i] ^= (uint8_t)(1u << bit);
				snprintf(what, sizeof(what), "checksummed zstd byte %zu bit %d", i,
					 bit);
				check(decode_safe(cc, HC_CODEC_ZSTD, buf, n, data, N) != WRONG,
				      "%s: decoded to wrong bytes", what);
				buf[i] ^= (uint8_t)(1u << bit);
			}
		}
	}
	ZSTD_freeCCtx(z);
	free(data);
	free(buf);
}

/* Bytes after the stream: random garbage, and for zstd the sneakier
 * cases libzstd itself would accept (a skippable frame, an empty frame). */
static void test_trailing(hc_codec_ctx *cc, const struct input *in, const uint8_t *data,
			  const struct encoded *e)
{
	uint8_t *buf = xmalloc(e->len + 64);
	uint8_t empty[64];
	size_t elen;
	char what[128];

	memcpy(buf, e->data, e->len);
	for (size_t extra = 1; extra <= 16; extra *= 2) {
		fill_random(buf + e->len, extra);
		snprintf(what, sizeof(what), "%s %s + %zu garbage bytes", hc_codec_name(e->codec),
			 in->name, extra);
		check(decode_safe(cc, e->codec, buf, e->len + extra, data, in->len) == -EBADMSG,
		      "%s: accepted", what);
		memset(buf + e->len, 0, extra);
		snprintf(what, sizeof(what), "%s %s + %zu zero bytes", hc_codec_name(e->codec),
			 in->name, extra);
		check(decode_safe(cc, e->codec, buf, e->len + extra, data, in->len) == -EBADMSG,
		      "%s: accepted", what);
	}
	if (e->codec != HC_CODEC_ZSTD) {
		free(buf);
		return;
	}
	/* Skippable frame: magic 0x184D2A50, length 4, 4 bytes of data. */
	hc_put32(buf + e->len, 0x184D2A50u);
	hc_put32(buf + e->len + 4, 4);
	memcpy(buf + e->len + 8, "junk", 4);
	snprintf(what, sizeof(what), "zstd %s + skippable frame", in->name);
	check(decode_safe(cc, e->codec, buf, e->len + 12, data, in->len) == -EBADMSG,
	      "%s: accepted", what);
	/* A second frame that decodes to nothing. */
	elen = ZSTD_compress(empty, sizeof(empty), "", 0, 1);
	if (check(!ZSTD_isError(elen) && elen <= 64, "zstd: cannot make an empty frame")) {
		memcpy(buf + e->len, empty, elen);
		snprintf(what, sizeof(what), "zstd %s + empty frame", in->name);
		check(decode_safe(cc, e->codec, buf, e->len + elen, data, in->len) == -EBADMSG,
		      "%s: accepted", what);
	}
	free(buf);
}

static void test_input(hc_codec_ctx *cc, const struct input *in)
{
	uint8_t *data = xmalloc(in->len);

	in->fill(data, in->len);
	for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
		struct encoded e = { 0 };

		test_round_trip(cc, in, codecs[c], data, &e);
		if (!e.data)
			continue;
		test_truncated(cc, in, data, &e);
		if (e.codec != HC_CODEC_RAW)
			test_flipped(cc, in, data, &e);
		test_trailing(cc, in, data, &e);
		free(e.data);
	}
	free(data);
}

/* Two frames each holding half the block decode to the right length but
 * are not the one frame FORMAT.md allows; likewise two zlib streams. */
static void test_two_streams(hc_codec_ctx *cc)
{
	enum { N = 8192 };
	uint8_t *data = xmalloc(N), *buf = xmalloc(2 * ZSTD_compressBound(N) + 2 * N);
	size_t a, b;
	uLongf za, zb;

	fill_text(data, N);
	a = ZSTD_compress(buf, ZSTD_compressBound(N / 2), data, N / 2, 3);
	b = ZSTD_compress(buf + a, ZSTD_compressBound(N / 2), data + N / 2, N / 2, 3);
	if (check(!ZSTD_isError(a) && !ZSTD_isError(b), "zstd: making two frames failed"))
		check(decode_safe(cc, HC_CODEC_ZSTD, buf, a + b, data, N) == -EBADMSG,
		      "zstd two frames: accepted");

	za = zb = (uLongf)compressBound(N);
	if (check(compress2(buf, &za, data, N / 2, 6) == Z_OK &&
		      compress2(buf + za, &zb, data + N / 2, N / 2, 6) == Z_OK,
		  "zlib: making two streams failed"))
		check(decode_safe(cc, HC_CODEC_ZLIB, buf, za + zb, data, N) == -EBADMSG,
		      "zlib two streams: accepted");
	free(data);
	free(buf);
}

/* The wrong codec for a stream, and codecs that do not exist. */
static void test_mismatch(hc_codec_ctx *cc)
{
	enum { N = 16384 };
	uint8_t *data = xmalloc(N), *out = xmalloc(N);
	struct encoded z, l;

	fill_text(data, N);
	if (encode(cc, HC_CODEC_ZSTD, 3, data, N, &z) == 0 &&
	    encode(cc, HC_CODEC_ZLIB, 6, data, N, &l) == 0) {
		check(decode_safe(cc, HC_CODEC_ZLIB, z.data, z.len, data, N) < 0,
		      "zstd stream decoded as zlib");
		check(decode_safe(cc, HC_CODEC_ZSTD, l.data, l.len, data, N) < 0,
		      "zlib stream decoded as zstd");
		check(decode_safe(cc, HC_CODEC_RAW, z.data, z.len, data, N) < 0,
		      "zstd stream decoded as raw");
		check(hc_block_decode(cc, 4, z.data, z.len, out, N) == -EINVAL,
		      "codec 4 not -EINVAL");
		free(z.data);
		free(l.data);
	} else {
		check(0, "mismatch: encoding failed");
	}
	memset(out, 0xaa, N);
	check(hc_block_decode(cc, HC_CODEC_ZERO, NULL, 0, out, N) == 0 && out[0] == 0 &&
		  !memcmp(out, out + 1, N - 1),
	      "zero codec does not give zeros");
	{
		size_t n;
		unsigned c;

		check(hc_block_encode(cc, HC_CODEC_ZERO, 0, data, N, out, N, &n, &c) == -EINVAL,
		      "encode with codec zero not -EINVAL");
		check(hc_block_encode(cc, 9, 0, data, N, out, N, &n, &c) == -EINVAL,
		      "encode with codec 9 not -EINVAL");
		check(hc_block_encode(cc, HC_CODEC_RAW, 0, data, N, out, N - 1, &n, &c) < 0,
		      "raw encode into too small a buffer");
	}
	free(data);
	free(out);
}

/* Other levels, and a fresh context per call as well as a shared one. */
static void test_levels(void)
{
	static const struct {
		unsigned codec;
		int level;
	} t[] = { { HC_CODEC_ZSTD, 1 },
		  { HC_CODEC_ZSTD, 19 },
		  { HC_CODEC_ZSTD, -5 },
		  { HC_CODEC_ZLIB, 1 },
		  { HC_CODEC_ZLIB, 9 } };
	enum { N = 65536 };
	uint8_t *data = xmalloc(N);

	fill_mixed(data, N);
	check(hc_codec_default_level(HC_CODEC_ZSTD) == 3 &&
		  hc_codec_default_level(HC_CODEC_ZLIB) == 6,
	      "default levels");
	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		hc_codec_ctx *cc = hc_codec_ctx_new();
		struct encoded e;
		char what[64];

		snprintf(what, sizeof(what), "%s level %d", hc_codec_name(t[k].codec), t[k].level);
		if (check(encode(cc, t[k].codec, t[k].level, data, N, &e) == 0, "%s: encode",
			  what)) {
			check(decode_safe(cc, e.codec, e.data, e.len, data, N) == 0,
			      "%s: round trip", what);
			free(e.data);
		}
		hc_codec_ctx_free(cc);
	}
	hc_codec_ctx_free(NULL);
	check(hc_codec_bound(N) >= (size_t)N && hc_codec_bound(0) > 0, "codec bound");
	free(data);
}

int main(void)
{
	hc_codec_ctx *cc = hc_codec_ctx_new();

	if (!cc) {
		fprintf(stderr, "FAIL: hc_codec_ctx_new\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		test_input(cc, &inputs[i]);
	test_two_streams(cc);
	test_mismatch(cc);
	test_levels();
	test_zstd_checksum(cc);
	hc_codec_ctx_free(cc);
	free(src_buf.p);
	free(out_buf.p);
	if (zstd_silent)
		printf("note: %zu of %zu bit flips in zstd frames decoded to other bytes "
		       "(no frame checksum; the SHA-256 block check catches them)\n",
		       zstd_silent, zstd_flips);
	printf("test_codec: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
