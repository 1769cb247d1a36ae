/* Block codecs: see codec.h. */
#include "codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "index.h"

struct hc_codec_ctx {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
};

hc_codec_ctx *hc_codec_ctx_new(void)
{
	return calloc(1, sizeof(hc_codec_ctx));
}

void hc_codec_ctx_free(hc_codec_ctx *c)
{
	if (!c)
		return;
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	free(c);
}

size_t hc_codec_bound(size_t len)
{
	size_t z = ZSTD_compressBound(len), l = compressBound((uLong)len);

	return z > l ? z : l;
}

int hc_codec_default_level(unsigned codec)
{
	return codec == HC_CODEC_ZLIB ? 6 : 3;
}

static int encode_zstd(hc_codec_ctx *c, int level, const void *in, size_t len, void *out,
		       size_t cap, size_t *ret_len)
{
	size_t n;

	if (!c->cctx && !(c->cctx = ZSTD_createCCtx()))
		return -ENOMEM;
	n = ZSTD_compressCCtx(c->cctx, out, cap, in, len, level);
	if (ZSTD_isError(n))
		return -EIO;
	*ret_len = n;
	return 0;
}

static int encode_zlib(int level, const void *in, size_t len, void *out, size_t cap,
		       size_t *ret_len)
{
	uLongf n = (uLongf)cap;

	if (compress2(out, &n, in, (uLong)len, level) != Z_OK)
		return -EIO;
	*ret_len = n;
	return 0;
}

int hc_block_encode(hc_codec_ctx *c, unsigned codec, int level, const void *in, size_t len,
		    void *out, size_t cap, size_t *ret_len, unsigned *ret_codec)
{
	size_t n = len;
	int r = 0;

	if (codec == HC_CODEC_ZSTD)
		r = encode_zstd(c, level, in, len, out, cap, &n);
	else if (codec == HC_CODEC_ZLIB)
		r = encode_zlib(level, in, len, out, cap, &n);
	else if (codec != HC_CODEC_RAW)
		return -EINVAL;
	if (r < 0)
		return r;
	if (codec == HC_CODEC_RAW || n >= len) {
		if (cap < len)
			return -ENOSPC;
		memcpy(out, in, len);
		*ret_len = len;
		*ret_codec = HC_CODEC_RAW;
		return 0;
	}
	*ret_len = n;
	*ret_codec = codec;
	return 0;
}

static int decode_zstd(hc_codec_ctx *c, const void *in, size_t inlen, void *out, size_t outlen)
{
	size_t n;

	if (!c->dctx && !(c->dctx = ZSTD_createDCtx()))
		return -ENOMEM;
	/* One frame and nothing after it (FORMAT.md): ZSTD_decompressDCtx
	 * alone would go on through further frames, skippable ones too. It
	 * refuses output beyond outlen. */
	if (ZSTD_findFrameCompressedSize(in, inlen) != inlen)
		return -EBADMSG;
	n = ZSTD_decompressDCtx(c->dctx, out, outlen, in, inlen);
	if (ZSTD_isError(n) || n != outlen)
		return -EBADMSG;
	return 0;
}

static int decode_zlib(const void *in, size_t inlen, void *out, size_t outlen)
{
	z_stream zs;
	int r;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit(&zs) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = out;
	zs.avail_out = (uInt)outlen;
	r = inflate(&zs, Z_FINISH);
	/* Z_STREAM_END with every input byte used and every output byte
	 * written: anything else is a damaged or mismatched block. */
	if (r != Z_STREAM_END || zs.avail_in || zs.avail_out)
		r = -EBADMSG;
	else
		r = 0;
	inflateEnd(&zs);
	return r;
}

int hc_block_decode(hc_codec_ctx *c, unsigned codec, const void *in, size_t inlen, void *out,
		    size_t outlen)
{
	switch (codec) {
	case HC_CODEC_ZERO:
		memset(out, 0, outlen);
		return 0;
	case HC_CODEC_RAW:
		if (inlen != outlen)
			return -EBADMSG;
		memcpy(out, in, outlen);
		return 0;
	case HC_CODEC_ZSTD:
		return decode_zstd(c, in, inlen, out, outlen);
	case HC_CODEC_ZLIB:
		return decode_zlib(in, inlen, out, outlen);
	default:
		return -EINVAL;
	}
}
