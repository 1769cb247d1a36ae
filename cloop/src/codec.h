/* Block compression: zstd, zlib or none, one block at a time. A codec
 * context is per thread; it only caches the compressors' state. */
#ifndef HC_CODEC_H
#define HC_CODEC_H

#include <stddef.h>
#include <stdint.h>

typedef struct hc_codec_ctx hc_codec_ctx;

hc_codec_ctx *hc_codec_ctx_new(void);
void hc_codec_ctx_free(hc_codec_ctx *c);

/* Room that hc_block_encode may need for len input bytes. */
size_t hc_codec_bound(size_t len);
/* Compresses in with the codec at level; when that does not make the
 * block smaller it is stored as it is and *ret_codec says HC_CODEC_RAW. */
int hc_block_encode(hc_codec_ctx *c, unsigned codec, int level, const void *in, size_t len,
		    void *out, size_t cap, size_t *ret_len, unsigned *ret_codec);
/* Decodes into exactly outlen bytes; a stream that decodes to any other
 * length is -EBADMSG. */
int hc_block_decode(hc_codec_ctx *c, unsigned codec, const void *in, size_t inlen, void *out,
		    size_t outlen);

int hc_codec_default_level(unsigned codec);

#endif
