/* image.c - rectangles of a screen. */
#include "image.h"

void sv_rect_union(struct sv_rect *r, const struct sv_rect *s)
{
	unsigned x1, y1;

	if (!s->w || !s->h)
		return;
	if (!r->w || !r->h) {
		*r = *s;
		return;
	}
	x1 = r->x + r->w > s->x + s->w ? r->x + r->w : s->x + s->w;
	y1 = r->y + r->h > s->y + s->h ? r->y + r->h : s->y + s->h;
	r->x = r->x < s->x ? r->x : s->x;
	r->y = r->y < s->y ? r->y : s->y;
	r->w = x1 - r->x;
	r->h = y1 - r->y;
}
