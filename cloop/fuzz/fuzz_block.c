/*
 * fuzz_block.c - libFuzzer target for the block codecs (codec.c).
 *
 * Input: a 4-byte header, then the payload.
 *   byte 0 < 0x80: decode. Codec byte0 % 5 (4: an unknown codec), the
 *     expected length bytes 1..3 (little-endian) modulo 4 MiB + 1. The
 *     payload is decoded into a buffer of exactly that length, so ASan
 *     sees any write past it, and the verdict is compared with a reference
 *     decode into a larger buffer (libzstd's and zlib's one-shot calls):
 *     success exactly when the payload is one frame or stream of that
 *     length and nothing else (FORMAT.md), and then the same bytes.
 *   byte 0 >= 0x80: round trip. Codec 1 + byte0 % 3, level from byte 1:
 *     the payload is encoded, must come out raw or smaller, must decode
 *     to itself, and must not decode to one byte more or less. Then the
 *     encoded block, damaged as byte 2 says (byte 3 says where or how
 *     much), goes through the decode check above: valid streams cut short,
 *     with bytes after them or with a flipped bit, which mutating a stream
 *     blindly rarely makes (libzstd and zlib give no coverage feedback).
 * One codec context serves every input, as one serves a worker thread's
 * many blocks in hcloop.
 */
#include "../src/codec.h"
#include "../src/index.h"

#include <errno.h>
#include <sanitizer/asan_interface.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "fuzz.h"

#define HDR	4
#define MAX_LEN ((size_t)1 << HC_MAX_SHIFT)

static hc_codec_ctx *ctx;
/* Buffers for decoding into, kept across inputs: a fresh 4 MiB malloc
 * each time costs more than the decoding. */
static uint8_t *out_buf, *ref_buf;

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	FUZZ_ASSERT(p, "out of memory for %zu bytes", n);
	return p;
}

/* Whether in is what FORMAT.md allows for codec and outlen, and if so its
 * decoded bytes in ref (outlen + 1 bytes, to see a stream that is longer). */
static int reference(unsigned codec, const uint8_t *in, size_t inlen, uint8_t *ref, size_t outlen)
{
	uLongf dl = outlen + 1;
	uLong sl = inlen;
	size_t n;

	switch (codec) {
	case HC_CODEC_ZERO:
		memset(ref, 0, outlen);
		return 1;
	case HC_CODEC_RAW:
		memcpy(ref, in, inlen < outlen ? inlen : outlen);
		return inlen == outlen;
	case HC_CODEC_ZSTD:
		if (ZSTD_findFrameCompressedSize(in, inlen) != inlen)
			return 0;
		n = ZSTD_decompress(ref, outlen + 1, in, inlen);
		return !ZSTD_isError(n) && n == outlen;
	case HC_CODEC_ZLIB:
		return uncompress2(ref, &dl, in, &sl) == Z_OK && dl == outlen && sl == inlen;
	default:
		return 0;
	}
}

static void check_decode(unsigned codec, const uint8_t *in, size_t inlen, size_t outlen)
{
	uint8_t *out = out_buf, *ref = ref_buf;
	int r, ok;

	/* The decoder may write outlen bytes and not one more: ASan reports
	 * any access to the poisoned rest of the buffer. Whatever it leaves
	 * unwritten shows as 0xa5 in the comparison below. */
	ASAN_UNPOISON_MEMORY_REGION(out, MAX_LEN);
	ASAN_POISON_MEMORY_REGION(out + outlen, MAX_LEN - outlen);
	memset(out, 0xa5, outlen);
	r = hc_block_decode(ctx, codec, in, inlen, out, outlen);
	ok = reference(codec, in, inlen, ref, outlen);
	if (codec > HC_CODEC_ZLIB)
		FUZZ_ASSERT(r == -EINVAL, "codec %u: %d", codec, r);
	else
		FUZZ_ASSERT(r == 0 || r == -EBADMSG, "codec %u: %d", codec, r);
	FUZZ_ASSERT((r == 0) == ok, "codec %u, %zu bytes to %zu: decoder says %d, reference %s",
		    codec, inlen, outlen, r, ok ? "valid" : "invalid");
	if (ok)
		FUZZ_ASSERT(!memcmp(out, ref, outlen), "codec %u: decoded bytes differ", codec);
	ASAN_UNPOISON_MEMORY_REGION(out, MAX_LEN);
}

static void check_damaged(unsigned codec, const uint8_t *enc, size_t elen, size_t len, uint8_t kind,
			  uint8_t arg)
{
	uint8_t *d = xmalloc(2 * elen);
	size_t dlen = elen;

	memcpy(d, enc, elen);
	switch (kind % 4) {
	case 0:
		break;
	case 1: /* cut short */
		dlen = elen ? elen - 1 - arg % elen : 0;
		break;
	case 2: /* bytes after it: its own start, the whole of it once arg >= elen */
		dlen = elen + (arg < elen ? arg : elen);
		memcpy(d + elen, enc, dlen - elen);
		break;
	case 3: /* one bit flipped */
		if (elen)
			d[(size_t)arg * 7919 % elen] ^= (uint8_t)(1u << (arg % 8));
		break;
	}
	check_decode(codec, d, dlen, len);
	free(d);
}

static void check_round_trip(unsigned codec, int level, const uint8_t *in, size_t len,
			     uint8_t damage, uint8_t arg)
{
	size_t cap = hc_codec_bound(len), elen = 0, small_len = 0;
	uint8_t *enc = xmalloc(cap), *out = xmalloc(len + 1), *small;
	unsigned got = 99, small_codec = 99;
	int r = hc_block_encode(ctx, codec, level, in, len, enc, cap, &elen, &got);

	FUZZ_ASSERT(r == 0, "encode %zu bytes with codec %u level %d: %d", len, codec, level, r);
	if (got == HC_CODEC_RAW)
		FUZZ_ASSERT(elen == len && !memcmp(enc, in, len), "raw block is not the input");
	else
		FUZZ_ASSERT(got == codec && elen > 0 && elen < len,
			    "codec %u asked, %u given, %zu bytes from %zu", codec, got, elen, len);
	r = hc_block_decode(ctx, got, enc, elen, out, len);
	FUZZ_ASSERT(r == 0 && !memcmp(out, in, len), "codec %u: round trip of %zu bytes: %d", got,
		    len, r);
	if (len)
		FUZZ_ASSERT(hc_block_decode(ctx, got, enc, elen, out, len - 1) == -EBADMSG,
			    "codec %u: %zu bytes decoded to one less", got, len);
	FUZZ_ASSERT(hc_block_decode(ctx, got, enc, elen, out, len + 1) == -EBADMSG,
		    "codec %u: %zu bytes decoded to one more", got, len);

	/* Too little room must fail, not write past it. */
	if (elen) {
		small = xmalloc(elen - 1);
		r = hc_block_encode(ctx, codec, level, in, len, small, elen - 1, &small_len,
				    &small_codec);
		FUZZ_ASSERT(r < 0, "encode into %zu bytes of room gave %zu bytes", elen - 1,
			    small_len);
		free(small);
	}
	if (len <= MAX_LEN)
		check_damaged(got, enc, elen, len, damage, arg);
	free(out);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	if (!ctx) {
		ctx = hc_codec_ctx_new();
		out_buf = xmalloc(MAX_LEN);
		ref_buf = xmalloc(MAX_LEN + 1);
	}
	FUZZ_ASSERT(ctx, "no codec context");
	if (data[0] < 0x80) {
		unsigned codec = data[0] % 5 < 4 ? data[0] % 5u : 4u + data[0];
		size_t outlen =
		    (data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16) % (MAX_LEN + 1);

		check_decode(codec, data + HDR, size - HDR, outlen);
	} else {
		unsigned codec = HC_CODEC_RAW + data[0] % 3u;
		int level = codec == HC_CODEC_ZLIB ? data[1] % 11 - 1 : data[1] % 23 - 3;

		check_round_trip(codec, level, data + HDR, size - HDR, data[2], data[3]);
	}
	return 0;
}
