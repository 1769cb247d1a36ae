/*
 * font.c - the console's font, read from the kernel (KDFONTOP). It is the
 * reference for reading text off a guest's screen: no font is compiled in.
 */
#include "font.h"

#include "cp437.h"

#include <errno.h>
#include <stdlib.h>
#include <zlib.h>
#include <linux/kd.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>

int sv_font_from_tty(int fd, struct sv_font *font)
{
	/* The kernel's layout: 32 bytes a glyph whatever the height. */
	static unsigned char data[SV_FONT_MAX_GLYPHS * 32];
	struct console_font_op op = {
		.op = KD_FONT_OP_GET,
		.width = 32,
		.height = 32,
		.charcount = SV_FONT_MAX_GLYPHS,
		.data = data,
	};

	if (ioctl(fd, KDFONTOP, &op) < 0)
		return -errno;
	if (op.width < 1 || op.width > 8 || op.height < 1 || op.height > SV_FONT_MAX_HEIGHT ||
	    op.charcount < 1 || op.charcount > SV_FONT_MAX_GLYPHS)
		return -EINVAL;
	memset(font, 0, sizeof(*font));
	font->width = op.width;
	font->height = op.height;
	font->count = op.charcount;
	for (unsigned g = 0; g < op.charcount; g++)
		memcpy(font->glyph[g], data + g * 32, op.height);
	return 0;
}

/* Glyph SRC of the file's glyphs into CP437 position G (the first one a
 * position gets stays). */
static void place(struct sv_font *font, uint8_t *have, const uint8_t *glyphs, unsigned src,
		  unsigned rowbytes, int g)
{
	if (g < 0 || g >= 256 || have[g])
		return;
	have[g] = 1;
	for (unsigned r = 0; r < font->height; r++)
		font->glyph[g][r] =
		    glyphs[(size_t)src * font->height * rowbytes + (size_t)r * rowbytes];
}

/* A UTF-8 sequence's first code point; *P moves past it. */
static unsigned utf8(const uint8_t **p, const uint8_t *end)
{
	unsigned u = *(*p)++, n = u >= 0xf0 ? 3 : u >= 0xe0 ? 2 : u >= 0xc0 ? 1 : 0;

	u &= n == 3 ? 0x07 : n == 2 ? 0x0f : n == 1 ? 0x1f : 0x7f;
	while (n-- && *p < end && (**p & 0xc0) == 0x80)
		u = u << 6 | (*(*p)++ & 0x3f);
	return u;
}

int sv_font_from_psf(const char *path, struct sv_font *font)
{
	enum { MAX = 1 << 20 };
	uint8_t *buf = malloc(MAX), have[256] = { 0 };
	gzFile gz = gzopen(path, "rb");
	int len = gz ? gzread(gz, buf, MAX) : -1;
	unsigned count, rowbytes = 1, header, glyph_bytes;
	const uint8_t *table = NULL;
	int psf2, rc = 0;

	if (!buf || !gz || len < 0) {
		rc = !buf ? -ENOMEM : !gz && errno ? -errno : -EIO;
		if (gz)
			gzclose(gz);
		goto out;
	}
	gzclose(gz);
	memset(font, 0, sizeof(*font));
	psf2 = len >= 32 && buf[0] == 0x72 && buf[1] == 0xb5 && buf[2] == 0x4a && buf[3] == 0x86;
	if (psf2) {
		uint32_t h[8];

		memcpy(h, buf, sizeof(h)); /* little-endian fields, as x86 */
		header = h[2];
		count = h[4];
		glyph_bytes = h[5];
		font->height = h[6];
		font->width = h[7];
		rowbytes = (font->width + 7) / 8;
		if (h[3] & 1)
			table = buf + header + (size_t)count * glyph_bytes;
	} else if (len >= 4 && buf[0] == 0x36 && buf[1] == 0x04) {
		header = 4;
		count = buf[2] & 1 ? 512 : 256;
		glyph_bytes = font->height = buf[3];
		font->width = 8;
		if (buf[2] & 2)
			table = buf + header + (size_t)count * glyph_bytes;
	} else {
		rc = -EINVAL;
		goto out;
	}
	if (font->width < 1 || font->width > 8 || font->height < 1 ||
	    font->height > SV_FONT_MAX_HEIGHT || glyph_bytes != font->height * rowbytes || !count ||
	    header + (size_t)count * glyph_bytes > (size_t)len) {
		rc = -EINVAL;
		goto out;
	}
	font->count = 256;
	if (!table) {
		for (unsigned g = 0; g < count && g < 256; g++)
			place(font, have, buf + header, g, rowbytes, (int)g);
		goto out;
	}
	/* The table: for each glyph its code points, then an end mark (PSF1:
	 * 16-bit, 0xFFFF ends, 0xFFFE starts sequences; PSF2: UTF-8, 0xFF ends,
	 * 0xFE starts sequences). Sequences (combined characters) are skipped. */
	const uint8_t *p = table, *end = buf + len;

	for (unsigned g = 0; g < count && p < end; g++) {
		bool seq = false;

		while (p < end) {
			unsigned u;

			if (psf2) {
				if (*p == 0xff) {
					p++;
					break;
				}
				if (*p == 0xfe) {
					seq = true;
					p++;
					continue;
				}
				u = utf8(&p, end);
			} else {
				if (p + 2 > end)
					break;
				u = (unsigned)(p[0] | p[1] << 8);
				p += 2;
				if (u == 0xffff)
					break;
				if (u == 0xfffe) {
					seq = true;
					continue;
				}
			}
			if (!seq)
				place(font, have, buf + header, g, rowbytes,
				      sv_cp437_from_unicode(u));
		}
	}
out:
	free(buf);
	return rc;
}
