/*
 * test_text.c - reading text off a screen (text.c) and fonts (font.c):
 * a screen drawn with a made-up font, in 9- and 8-pixel cells and two
 * colours a cell, reads back exactly; with one glyph's serifs changed (as
 * another BIOS draws it) it still reads right; inverse video, blank cells,
 * the 9th column, the geometry of text and graphics modes; a graphics
 * screen is no text and turns into blocks of the right colours; a PSF
 * font's Unicode table puts glyphs in CP437 order.
 */
#include "../src/cp437.h"
#include "../src/font.h"
#include "../src/text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static unsigned rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (unsigned)(z ^ (z >> 31));
}

/* 256 glyphs 8x16: blank for 0, 0x20 and 0xff, the rest random rows with
 * a blank row top and bottom (as fonts have). */
static void make_font(struct sv_font *f)
{
	memset(f, 0, sizeof(*f));
	f->width = 8;
	f->height = 16;
	f->count = 256;
	for (unsigned g = 1; g < 256; g++) {
		if (g == 0x20 || g == 0xff)
			continue;
		for (unsigned r = 2; r < 14; r++)
			f->glyph[g][r] = (uint8_t)rng();
	}
	/* The full block, which inverse video must not be confused with. */
	memset(f->glyph[0xdb], 0xff, 16);
}

static uint32_t *screen;

/* Text cell (C, R) of a COLS-wide screen with cells CW wide: glyph G. */
static void draw(const struct sv_font *f, unsigned cols, unsigned cw, unsigned c, unsigned r,
		 unsigned g, uint32_t fg, uint32_t bg)
{
	unsigned w = cols * cw;

	for (unsigned y = 0; y < 16; y++)
		for (unsigned x = 0; x < cw; x++) {
			int on = x < 8 && (f->glyph[g][y] & (0x80 >> x));

			screen[(size_t)(r * 16 + y) * w + c * cw + x] = on ? fg : bg;
		}
}

static void test_roundtrip(unsigned cw)
{
	struct sv_font f;
	struct sv_matcher *m;
	unsigned cols = 80, rows = 25, w = cols * cw, h = rows * 16, gcw, gc, gr;
	uint16_t want[80 * 25];
	struct sv_cell *cells = calloc(cols * rows, sizeof(*cells));
	struct sv_image im;

	make_font(&f);
	m = sv_matcher_new(&f);
	screen = calloc((size_t)w * h, sizeof(*screen));
	for (unsigned i = 0; i < cols * rows; i++) {
		unsigned g = rng() % 256, fg = rng() % 16, bg = rng() % 16;

		if (fg == bg)
			fg = (fg + 1) % 16;
		draw(&f, cols, cw, i % cols, i / cols, g, sv_vga_palette[fg], sv_vga_palette[bg]);
		want[i] = (uint16_t)g;
	}
	im = (struct sv_image){ screen, w, h, w };
	check(sv_text_geometry(w, h, 16, &gcw, &gc, &gr) == 0 && gcw == cw && gc == 80 && gr == 25,
	      "%ux%u is an 80x25 text mode of %u-pixel cells", w, h, cw);
	unsigned good = sv_text_decode(m, &im, cw, cols, 0, 0, cols, rows, cells);
	unsigned right = 0, blank_ok = 0, blanks = 0;

	for (unsigned i = 0; i < cols * rows; i++) {
		/* A full block is one colour, as a blank of that colour. */
		int blank_want =
		    want[i] == 0 || want[i] == 0x20 || want[i] == 0xff || want[i] == 0xdb;

		if (blank_want) {
			blanks++;
			blank_ok += cells[i].ch == 0x20;
		} else {
			right += cells[i].ch == want[i];
		}
	}
	check(good == cols * rows, "%u-pixel cells: every cell a glyph (%u of %u)", cw, good,
	      cols * rows);
	check(right + blanks == cols * rows, "%u-pixel cells: %u of %u glyphs read right", cw,
	      right, cols * rows - blanks);
	check(blank_ok == blanks, "blank glyphs read as spaces (%u of %u)", blank_ok, blanks);
	sv_matcher_free(m);
	free(screen);
	free(cells);
}

/* Colours come back as drawn, also for a cell with more foreground than
 * background, and a cell another font draws a little differently reads as
 * the same letter. */
static void test_colours_and_near_glyphs(void)
{
	struct sv_font f, other;
	struct sv_matcher *m;
	struct sv_cell cells[80 * 25];
	struct sv_image im;
	unsigned w = 720, h = 400;

	make_font(&f);
	screen = calloc((size_t)w * h, sizeof(*screen));
	draw(&f, 80, 9, 0, 0, 'A', sv_vga_palette[14], sv_vga_palette[1]);
	draw(&f, 80, 9, 1, 0, 0xdb, sv_vga_palette[12], sv_vga_palette[0]);
	/* Glyph 'B' with its top row shifted a pixel, as another BIOS. */
	other = f;
	other.glyph['B'][2] = (uint8_t)(other.glyph['B'][2] >> 1 | 0x80);
	draw(&other, 80, 9, 2, 0, 'B', sv_vga_palette[7], sv_vga_palette[0]);
	/* Inverse: glyph 'C' whose "background" has most of the pixels. */
	for (unsigned y = 0; y < 16; y++)
		f.glyph['c'][y] = 0xfe;
	m = sv_matcher_new(&f);
	draw(&f, 80, 9, 3, 0, 'c', sv_vga_palette[2], sv_vga_palette[0]);
	im = (struct sv_image){ screen, w, h, w };
	memset(cells, 0, sizeof(cells));
	sv_text_decode(m, &im, 9, 80, 0, 0, 4, 1, cells);
	check(cells[0].ch == 'A' && cells[0].fg == 14 && cells[0].bg == 1,
	      "yellow A on blue: got %#x %u/%u", cells[0].ch, cells[0].fg, cells[0].bg);
	check((cells[1].ch == 0x20 && cells[1].bg == 12) ||
		  (cells[1].ch == 0xdb && cells[1].fg == 12),
	      "a red full block is a red cell: got %#x %u/%u", cells[1].ch, cells[1].fg,
	      cells[1].bg);
	check(cells[2].ch == 'B', "a B a pixel off reads as B: got %#x", cells[2].ch);
	check(cells[3].ch == 'c' && cells[3].fg == 2 && cells[3].bg == 0,
	      "a mostly-foreground glyph keeps its colours: got %#x %u/%u", cells[3].ch,
	      cells[3].fg, cells[3].bg);
	sv_matcher_free(m);
	free(screen);
}

static void test_geometry(void)
{
	unsigned cw, c, r;

	check(sv_text_geometry(640, 400, 16, &cw, &c, &r) == 0 && cw == 8 && c == 80 && r == 25,
	      "640x400: 80x25 of 8-pixel cells");
	check(sv_text_geometry(720, 400, 16, &cw, &c, &r) == 0 && cw == 9,
	      "720x400: 80x25 of 9-pixel cells");
	check(sv_text_geometry(1188, 400, 16, &cw, &c, &r) == 0 && c == 132,
	      "1188x400: 132 columns");
	check(sv_text_geometry(1024, 768, 16, &cw, &c, &r) < 0, "1024x768 is no text mode");
	check(sv_text_geometry(800, 600, 16, &cw, &c, &r) < 0, "800x600 is no text mode");
	check(sv_text_geometry(720, 401, 16, &cw, &c, &r) < 0, "a height not of whole rows");
	check(sv_text_geometry(720, 400, 0, &cw, &c, &r) < 0, "no font height");
}

/* A graphics screen: no text, and blocks in its colours. */
static void test_graphics(void)
{
	struct sv_font f;
	struct sv_matcher *m;
	unsigned w = 720, h = 400;
	static struct sv_cell cells[80 * 25];
	struct sv_image im;
	unsigned good;

	make_font(&f);
	m = sv_matcher_new(&f);
	screen = calloc((size_t)w * h, sizeof(*screen));
	for (unsigned i = 0; i < w * h; i++)
		screen[i] = (rng() & 0xffffff);
	im = (struct sv_image){ screen, w, h, w };
	good = sv_text_decode(m, &im, 9, 80, 0, 0, 80, 25, cells);
	check(good < 80 * 25 / 10, "noise is no text (%u glyphs)", good);
	/* Top half red, bottom half blue; the left third white. */
	for (unsigned y = 0; y < h; y++)
		for (unsigned x = 0; x < w; x++)
			screen[y * w + x] = x < w / 3 ? 0xffffff : y < h / 2 ? 0xff0000 : 0x0000ff;
	sv_mosaic(&im, 80, 25, 0, cells);
	check(cells[0].fg == 15 && cells[0].ch == 0xdb, "white is a white block: %#x %u",
	      cells[0].ch, cells[0].fg);
	check(cells[5 * 80 + 70].fg == sv_nearest(0xff0000, 16), "red above: fg %u",
	      cells[5 * 80 + 70].fg);
	check(cells[20 * 80 + 70].fg == 1 || cells[20 * 80 + 70].bg == 1,
	      "blue below, within the 8 background colours");
	/* The row where they meet: red on top, blue below, one cell. */
	sv_mosaic(&im, 80, 1, 0, cells);
	check(cells[70].ch == 0xdf && cells[70].fg == sv_nearest(0xff0000, 16) && cells[70].bg == 1,
	      "half red over half blue: %#x %u/%u", cells[70].ch, cells[70].fg, cells[70].bg);
	sv_matcher_free(m);
	free(screen);
}

static void test_text_out(void)
{
	struct sv_cell cells[2 * 4] = { { 'H', 7, 0 },	{ 'i', 7, 0 },	{ 0x20, 7, 0 },
					{ 0, 7, 0 },	{ 0xc9, 7, 0 }, { 0xcd, 7, 0 },
					{ 0xff, 7, 0 }, { 0x20, 7, 0 } };
	char out[64];

	sv_cells_text(cells, 4, 2, out, sizeof(out));
	check(!strcmp(out, "Hi\n\xe2\x95\x94\xe2\x95\x90\n"), "text: blanks trimmed, box lines");
	check(sv_cp437_unicode(0xdb) == 0x2588 && sv_cp437_from_unicode(0x2588) == 0xdb,
	      "CP437 0xDB is U+2588 both ways");
	check(sv_cp437_from_unicode('A') == 'A' && sv_cp437_from_unicode(0x20ac) == -1,
	      "ASCII as itself; the euro sign is not in CP437");
	sv_cells_text(cells, 4, 2, out, 4);
	check(strlen(out) < 4, "a short buffer is never overrun");
}

/* A PSF1 font with a Unicode table that has its glyphs out of CP437's
 * order: 'A' at glyph 5, U+2588 (the full block) at glyph 6. */
static void test_psf(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	uint8_t psf[4 + 256 * 16 + 256 * 4 + 16];
	size_t n = 4 + 256 * 16;
	struct sv_font f;
	gzFile gz;

	scratch_dir(dir, "test_text");
	memset(psf, 0, sizeof(psf));
	psf[0] = 0x36;
	psf[1] = 0x04;
	psf[2] = 0x02; /* 256 glyphs, a table */
	psf[3] = 16;
	memset(psf + 4 + 5 * 16 + 3, 0x18, 8); /* glyph 5: a bar */
	memset(psf + 4 + 6 * 16, 0xff, 16);    /* glyph 6: a block */
	for (unsigned g = 0; g < 256; g++) {
		unsigned u = g == 5 ? 'A' : g == 6 ? 0x2588 : g == 'A' ? 0xe000 : g;

		psf[n++] = (uint8_t)u;
		psf[n++] = (uint8_t)(u >> 8);
		psf[n++] = 0xff;
		psf[n++] = 0xff;
	}
	pathf(path, "%s/t.psf.gz", dir);
	gz = gzopen(path, "wb");
	gzwrite(gz, psf, (unsigned)n);
	gzclose(gz);
	check(sv_font_from_psf(path, &f) == 0 && f.height == 16 && f.count == 256,
	      "a gzipped PSF1 font loads");
	check(f.glyph['A'][3] == 0x18 && f.glyph[0xdb][0] == 0xff,
	      "its Unicode table puts glyphs at their CP437 places");
	pathf(path, "%s/bad.psf", dir);
	write_file(path, "not a font", 10);
	check(sv_font_from_psf(path, &f) == -EINVAL, "something else is refused");
	pathf(path, "%s/missing.psf", dir);
	check(sv_font_from_psf(path, &f) < 0, "a missing file is an error");
	rm_rf(dir);
}

int main(void)
{
	test_roundtrip(9);
	test_roundtrip(8);
	test_colours_and_near_glyphs();
	test_geometry();
	test_graphics();
	test_text_out();
	test_psf();
	printf("test_text: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
