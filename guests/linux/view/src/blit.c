/*
 * blit.c - a guest's screen onto the PC's framebuffer. The guest's mode
 * (720x400 text, 640x480, 1024x768, ...) rarely matches the firmware's, so
 * it is scaled by the largest factor that fits, keeping its aspect, by the
 * nearest pixel (no blur on text), and centred on black.
 */
#include "blit.h"

#include <string.h>

struct sv_fit sv_fit(unsigned sw, unsigned sh, unsigned dw, unsigned dh)
{
	struct sv_fit f = { 0, 0, dw, dh };

	if (!sw || !sh || !dw || !dh)
		return (struct sv_fit){ 0, 0, 0, 0 };
	/* dw/sw against dh/sh, in integers. */
	if ((unsigned long long)dw * sh <= (unsigned long long)dh * sw)
		f.h = (unsigned)((unsigned long long)sh * dw / sw);
	else
		f.w = (unsigned)((unsigned long long)sw * dh / sh);
	if (!f.w)
		f.w = 1;
	if (!f.h)
		f.h = 1;
	f.x = (dw - f.w) / 2;
	f.y = (dh - f.h) / 2;
	return f;
}

static uint32_t channel(uint32_t v8, const struct sv_channel *c)
{
	uint32_t v = c->length >= 8 ? v8 << (c->length - 8) : v8 >> (8 - c->length);

	return v << c->offset;
}

static uint32_t convert(const struct sv_surface *s, uint32_t rgb)
{
	return channel((rgb >> 16) & 0xff, &s->r) | channel((rgb >> 8) & 0xff, &s->g) |
	       channel(rgb & 0xff, &s->b);
}

static void put(uint8_t *p, unsigned bpp, uint32_t v)
{
	switch (bpp) {
	case 32:
		memcpy(p, &v, 4);
		break;
	case 24:
		p[0] = (uint8_t)v;
		p[1] = (uint8_t)(v >> 8);
		p[2] = (uint8_t)(v >> 16);
		break;
	default: {
		uint16_t h = (uint16_t)v;

		memcpy(p, &h, 2);
	}
	}
}

void sv_blit(struct sv_surface *s, const struct sv_fit *fit, const struct sv_image *im,
	     const struct sv_rect *src)
{
	unsigned bytes = s->bpp / 8;
	unsigned long long sx1 = src->x + src->w, sy1 = src->y + src->h;
	/* The surface pixels whose nearest image pixel lies in SRC:
	 * image x = (dx * im->w) / fit->w, so dx from ceil(x * fw / w). */
	unsigned dx0 = (unsigned)(((unsigned long long)src->x * fit->w + im->w - 1) / im->w);
	unsigned dx1 = (unsigned)((sx1 * fit->w + im->w - 1) / im->w);
	unsigned dy0 = (unsigned)(((unsigned long long)src->y * fit->h + im->h - 1) / im->h);
	unsigned dy1 = (unsigned)((sy1 * fit->h + im->h - 1) / im->h);

	if (!fit->w || !fit->h || !im->w || !im->h)
		return;
	if (dx1 > fit->w)
		dx1 = fit->w;
	if (dy1 > fit->h)
		dy1 = fit->h;
	for (unsigned dy = dy0; dy < dy1; dy++) {
		unsigned y = (unsigned)((unsigned long long)dy * im->h / fit->h);
		const uint32_t *row = im->px + (size_t)y * im->stride;
		uint8_t *o =
		    s->mem + (size_t)(fit->y + dy) * s->line + (size_t)(fit->x + dx0) * bytes;
		uint32_t last_in = 0, last_out = convert(s, 0);

		for (unsigned dx = dx0; dx < dx1; dx++, o += bytes) {
			uint32_t p = row[(unsigned long long)dx * im->w / fit->w] & 0xffffff;

			if (p != last_in) {
				last_in = p;
				last_out = convert(s, p);
			}
			put(o, s->bpp, last_out);
		}
	}
}

void sv_fill(struct sv_surface *s, const struct sv_rect *r, uint32_t rgb)
{
	uint32_t v = convert(s, rgb);
	unsigned bytes = s->bpp / 8;

	for (unsigned y = r->y; y < r->y + r->h && y < s->h; y++) {
		uint8_t *o = s->mem + (size_t)y * s->line + (size_t)r->x * bytes;

		for (unsigned x = r->x; x < r->x + r->w && x < s->w; x++, o += bytes)
			put(o, s->bpp, v);
	}
}
