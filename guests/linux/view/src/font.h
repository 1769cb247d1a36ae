/* The console font the screen text is matched against: the glyphs the
 * kernel's console has (KDFONTOP), which on a PC are the VGA BIOS's own,
 * the same glyphs a guest's VGA BIOS draws its text mode with. */
#ifndef SV_FONT_H
#define SV_FONT_H

#include <stdint.h>

#define SV_FONT_MAX_GLYPHS 512
#define SV_FONT_MAX_HEIGHT 32

struct sv_font {
	unsigned width, height, count;
	/* Row r of glyph g: glyph[g][r], most significant bit leftmost. */
	uint8_t glyph[SV_FONT_MAX_GLYPHS][SV_FONT_MAX_HEIGHT];
};

/* The font of the console behind FD (a tty). 0, or -errno: -ENOTTY when it
 * is no virtual terminal, -EINVAL for a font wider than 8 pixels. */
int sv_font_from_tty(int fd, struct sv_font *font);

/* A PSF font file (version 1 or 2, gzip or not), its glyphs put in CP437
 * order by its Unicode table (a font without one is taken as CP437).
 * 0, or -errno: -EINVAL for what is no PSF font, or glyphs wider than 8. */
int sv_font_from_psf(const char *path, struct sv_font *font);

#endif
