/* Text off a screen: a guest's VGA text mode read back into characters
 * by matching each cell against the console's font, and any screen drawn
 * as coloured blocks for a console that has only text. */
#ifndef SV_TEXT_H
#define SV_TEXT_H

#include "font.h"
#include "image.h"

#include <stddef.h>
#include <stdint.h>

/* One character cell: glyph index in the font, VGA colours 0..15. */
struct sv_cell {
	uint16_t ch;
	uint8_t fg, bg;
};

/* The 16 colours of the PC's text modes, 0x00RRGGBB. */
extern const uint32_t sv_vga_palette[16];

/* The palette index nearest RGB among the first N colours (8 or 16). */
uint8_t sv_nearest(uint32_t rgb, unsigned n);

struct sv_matcher;

/* A lookup of FONT's glyphs; NULL when out of memory. */
struct sv_matcher *sv_matcher_new(const struct sv_font *font);
void sv_matcher_free(struct sv_matcher *m);

/* The text grid of a W x H screen drawn in glyphs FONT_HEIGHT rows high,
 * 9 or 8 pixels wide (the VGA's two dot clocks): 0, or -1 when no text
 * mode has that size. */
int sv_text_geometry(unsigned w, unsigned h, unsigned font_height, unsigned *cell_w, unsigned *cols,
		     unsigned *rows);

/* Cells [COL0, COL1) x [ROW0, ROW1) of IM, a text screen of CELL_W-wide
 * cells, COLS a row, into CELLS (COLS x rows). Returns how many of them
 * are glyphs of the font in two of the text modes' colours: the rest are
 * best guesses. */
unsigned sv_text_decode(const struct sv_matcher *m, const struct sv_image *im, unsigned cell_w,
			unsigned cols, unsigned col0, unsigned row0, unsigned col1, unsigned row1,
			struct sv_cell *cells);

/* IM as COLS x ROWS cells of upper half blocks (CP437 0xDF): each cell's
 * top half the foreground, its bottom half the background colour, which
 * has only the first 8 colours unless BG16 (a console without blink). */
void sv_mosaic(const struct sv_image *im, unsigned cols, unsigned rows, int bg16,
	       struct sv_cell *cells);

/* The cells as UTF-8 text (CP437 read as Unicode), one line a row without
 * trailing blanks; at most SIZE bytes with the NUL. Returns the length. */
size_t sv_cells_text(const struct sv_cell *cells, unsigned cols, unsigned rows, char *out,
		     size_t size);

#endif
