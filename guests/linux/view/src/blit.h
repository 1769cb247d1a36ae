/* Drawing a guest's screen into a framebuffer of another size and pixel
 * format: scaled to fit with its aspect kept, centred, nearest pixel. */
#ifndef SV_BLIT_H
#define SV_BLIT_H

#include "image.h"

#include <stddef.h>
#include <stdint.h>

struct sv_channel {
	unsigned offset, length; /* bit position and width in a pixel */
};

struct sv_surface {
	uint8_t *mem;
	unsigned w, h, bpp; /* bits per pixel: 16, 24 or 32 */
	size_t line;	    /* bytes from one row to the next */
	struct sv_channel r, g, b;
};

/* Where an image of SW x SH goes on a surface of DW x DH. */
struct sv_fit {
	unsigned x, y, w, h;
};

struct sv_fit sv_fit(unsigned sw, unsigned sh, unsigned dw, unsigned dh);

/* The pixels of IM inside SRC (a changed rectangle) drawn at FIT on S. */
void sv_blit(struct sv_surface *s, const struct sv_fit *fit, const struct sv_image *im,
	     const struct sv_rect *src);

/* Surface rectangle R filled with 0x00RRGGBB. */
void sv_fill(struct sv_surface *s, const struct sv_rect *r, uint32_t rgb);

#endif
