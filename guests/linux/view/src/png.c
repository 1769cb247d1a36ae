/*
 * png.c - a PNG writer: signature, IHDR, one zlib-compressed IDAT of
 * filter-0 rows, IEND. zlib does the deflate and the CRCs; nothing else
 * of libpng is needed for a screenshot.
 */
#include "png.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int chunk(FILE *f, const char type[4], const uint8_t *data, size_t len)
{
	uint8_t head[8], tail[4];
	uLong crc = crc32(0, (const Bytef *)type, 4);

	if (len > 0x7fffffff)
		return -EINVAL;
	be32(head, (uint32_t)len);
	memcpy(head + 4, type, 4);
	if (len)
		crc = crc32(crc, data, (uInt)len);
	be32(tail, (uint32_t)crc);
	if (fwrite(head, 1, 8, f) != 8 || (len && fwrite(data, 1, len, f) != len) ||
	    fwrite(tail, 1, 4, f) != 4)
		return -EIO;
	return 0;
}

int sv_png_write(FILE *f, const struct sv_image *im)
{
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	uint8_t ihdr[13];
	size_t row = 1 + (size_t)im->w * 3, raw_len = row * im->h;
	uint8_t *raw = malloc(raw_len ? raw_len : 1);
	uLongf z_len = compressBound((uLong)raw_len);
	uint8_t *z = malloc(z_len);
	int rc = 0;

	if (!raw || !z || !im->w || !im->h) {
		rc = !im->w || !im->h ? -EINVAL : -ENOMEM;
		goto out;
	}
	for (unsigned y = 0; y < im->h; y++) {
		uint8_t *o = raw + y * row;
		const uint32_t *p = im->px + (size_t)y * im->stride;

		*o++ = 0; /* filter: none */
		for (unsigned x = 0; x < im->w; x++) {
			*o++ = (uint8_t)(p[x] >> 16);
			*o++ = (uint8_t)(p[x] >> 8);
			*o++ = (uint8_t)p[x];
		}
	}
	if (compress2(z, &z_len, raw, (uLong)raw_len, 6) != Z_OK) {
		rc = -ENOMEM;
		goto out;
	}
	be32(ihdr, im->w);
	be32(ihdr + 4, im->h);
	ihdr[8] = 8;  /* bits per channel */
	ihdr[9] = 2;  /* RGB */
	ihdr[10] = 0; /* deflate */
	ihdr[11] = 0; /* filters of method 0 */
	ihdr[12] = 0; /* no interlace */
	if (fwrite(sig, 1, 8, f) != 8)
		rc = -EIO;
	if (!rc)
		rc = chunk(f, "IHDR", ihdr, sizeof(ihdr));
	if (!rc)
		rc = chunk(f, "IDAT", z, z_len);
	if (!rc)
		rc = chunk(f, "IEND", NULL, 0);
	if (!rc && fflush(f))
		rc = -EIO;
out:
	free(raw);
	free(z);
	return rc;
}
