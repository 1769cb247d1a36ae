/* A guest's screen as the viewer holds it: 32-bit pixels 0x00RRGGBB. */
#ifndef SV_IMAGE_H
#define SV_IMAGE_H

#include <stddef.h>
#include <stdint.h>

struct sv_image {
	const uint32_t *px;
	unsigned w, h;
	size_t stride; /* pixels from one row to the next */
};

/* A rectangle of the screen, e.g. what changed. */
struct sv_rect {
	unsigned x, y, w, h;
};

/* R grown to hold S as well (an empty R becomes S). */
void sv_rect_union(struct sv_rect *r, const struct sv_rect *s);

#endif
