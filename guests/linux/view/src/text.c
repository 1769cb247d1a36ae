/*
 * text.c - reading a guest's text screen back into characters, and
 * drawing any screen with the block characters of a text console.
 *
 * A VGA text mode is a grid of cells, each a glyph of the font in one
 * foreground and one background colour. QEMU's VNC server sends it as
 * pixels; the cell's two colours and which pixels have the foreground give
 * back the glyph's bitmap, and the console's font (the same VGA BIOS glyphs
 * on a PC) gives back the character: an exact lookup first, the nearest
 * glyph by differing pixels when the fonts differ a little (another BIOS,
 * the blinking cursor's underline).
 */
#include "text.h"

#include "cp437.h"

#include <stdlib.h>
#include <string.h>

const uint32_t sv_vga_palette[16] = {
	0x000000, 0x0000aa, 0x00aa00, 0x00aaaa, 0xaa0000, 0xaa00aa, 0xaa5500, 0xaaaaaa,
	0x555555, 0x5555ff, 0x55ff55, 0x55ffff, 0xff5555, 0xff55ff, 0xffff55, 0xffffff,
};

uint8_t sv_nearest(uint32_t rgb, unsigned n)
{
	int r = (rgb >> 16) & 0xff, g = (rgb >> 8) & 0xff, b = rgb & 0xff;
	unsigned best = 0;
	long best_d = -1;

	for (unsigned i = 0; i < n && i < 16; i++) {
		int dr = r - (int)((sv_vga_palette[i] >> 16) & 0xff);
		int dg = g - (int)((sv_vga_palette[i] >> 8) & 0xff);
		int db = b - (int)(sv_vga_palette[i] & 0xff);
		long d = (long)dr * dr + (long)dg * dg + (long)db * db;

		if (best_d < 0 || d < best_d) {
			best_d = d;
			best = i;
		}
	}
	return (uint8_t)best;
}

/* Whether RGB is one of the text modes' 16 colours, as a VGA's 6-bit
 * palette gives them (0xa8 for 0xaa): a screen of other colours is a
 * graphics mode, even one of flat colours that read as blank cells. */
static int text_colour(uint32_t rgb)
{
	uint32_t p = sv_vga_palette[sv_nearest(rgb, 16)];

	for (int shift = 0; shift < 24; shift += 8) {
		int d = (int)((rgb >> shift) & 0xff) - (int)((p >> shift) & 0xff);

		if (d < -12 || d > 12)
			return 0;
	}
	return 1;
}

/* Glyph rows packed 8 to a word: 32 rows at most. */
#define WORDS 4
#define SLOTS 2048 /* open addressing, a power of two over 512 glyphs */

struct sv_matcher {
	unsigned height, count;
	/* Glyphs in the order of preference (below), packed, and grown by a
	 * pixel in each direction. */
	uint64_t bits[SV_FONT_MAX_GLYPHS][WORDS];
	uint64_t grown[SV_FONT_MAX_GLYPHS][WORDS];
	uint16_t index[SV_FONT_MAX_GLYPHS];
	/* Exact bitmap -> position in bits[] + 1; 0 is an empty slot. */
	uint16_t slot[SLOTS];
};

static void pack(const uint8_t *rows, unsigned height, uint64_t out[WORDS])
{
	memset(out, 0, WORDS * sizeof(uint64_t));
	for (unsigned r = 0; r < height; r++)
		out[r / 8] |= (uint64_t)rows[r] << (8 * (r % 8));
}

/* Every set pixel's neighbours set too: left, right, above, below. Rows
 * are bytes, leftmost pixel in the top bit; a row's neighbours above and
 * below are the bytes before and after it, across words. */
static void grow(const uint64_t in[WORDS], uint64_t out[WORDS])
{
	for (int w = 0; w < WORDS; w++) {
		uint64_t x = in[w];
		uint64_t up = x >> 8 | (w + 1 < WORDS ? in[w + 1] << 56 : 0);
		uint64_t down = x << 8 | (w > 0 ? in[w - 1] >> 56 : 0);

		out[w] = x | (x << 1 & 0xfefefefefefefefeull) | (x >> 1 & 0x7f7f7f7f7f7f7f7full) |
			 up | down;
	}
}

static unsigned hash(const uint64_t w[WORDS])
{
	uint64_t h = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < WORDS; i++) {
		h ^= w[i];
		h *= 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	return (unsigned)(h & (SLOTS - 1));
}

/* Which of several glyphs with one bitmap (space, NUL and 0xFF are all
 * blank) a cell reads as: printable ASCII, then the rest of CP437's
 * letters and lines, then its control-code pictures, then a 512-glyph
 * font's second half. */
static int rank(unsigned g)
{
	if (g >= 0x20 && g < 0x7f)
		return 0;
	if (g >= 0x80 && g < 0x100)
		return 1;
	if (g < 0x100 && g != 0)
		return 2;
	return g == 0 ? 3 : 4;
}

static int by_rank(const void *a, const void *b)
{
	unsigned x = *(const uint16_t *)a, y = *(const uint16_t *)b;
	int d = rank(x) - rank(y);

	return d ? d : (int)x - (int)y;
}

struct sv_matcher *sv_matcher_new(const struct sv_font *font)
{
	struct sv_matcher *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->height = font->height;
	m->count = font->count;
	for (unsigned g = 0; g < font->count; g++)
		m->index[g] = (uint16_t)g;
	qsort(m->index, font->count, sizeof(m->index[0]), by_rank);
	for (unsigned i = 0; i < font->count; i++) {
		unsigned s;

		pack(font->glyph[m->index[i]], font->height, m->bits[i]);
		grow(m->bits[i], m->grown[i]);
		for (s = hash(m->bits[i]); m->slot[s]; s = (s + 1) & (SLOTS - 1))
			if (!memcmp(m->bits[m->slot[s] - 1], m->bits[i], sizeof(m->bits[i])))
				break;
		if (!m->slot[s]) /* the first, preferred glyph keeps a bitmap */
			m->slot[s] = (uint16_t)(i + 1);
	}
	return m;
}

void sv_matcher_free(struct sv_matcher *m)
{
	free(m);
}

/*
 * The glyph nearest BITS: its index; *DIST how far it is. Another BIOS
 * draws the same letter a pixel wider or with serifs, so pixels that are
 * beside a pixel of the other count little: the distance is four times
 * the pixels of either that lie off the other grown by one pixel, plus
 * the pixels that differ at all (which decides between near twins).
 */
static unsigned match(const struct sv_matcher *m, const uint64_t bits[WORDS], unsigned *dist)
{
	unsigned best = 0, best_d = ~0u;
	uint64_t grown[WORDS];

	for (unsigned s = hash(bits); m->slot[s]; s = (s + 1) & (SLOTS - 1)) {
		if (!memcmp(m->bits[m->slot[s] - 1], bits, WORDS * sizeof(uint64_t))) {
			*dist = 0;
			return m->index[m->slot[s] - 1];
		}
	}
	grow(bits, grown);
	for (unsigned i = 0; i < m->count; i++) {
		unsigned d = 0, off = 0;

		for (int w = 0; w < WORDS; w++) {
			d += (unsigned)__builtin_popcountll(m->bits[i][w] ^ bits[w]);
			off += (unsigned)__builtin_popcountll(bits[w] & ~m->grown[i][w]);
			off += (unsigned)__builtin_popcountll(m->bits[i][w] & ~grown[w]);
		}
		d += 4 * off;
		if (d < best_d) {
			best_d = d;
			best = i;
		}
	}
	*dist = best_d;
	return m->index[best];
}

int sv_text_geometry(unsigned w, unsigned h, unsigned font_height, unsigned *cell_w, unsigned *cols,
		     unsigned *rows)
{
	static const unsigned widths[] = { 9, 8 };

	if (!font_height || h % font_height || h / font_height < 1 || h / font_height > 100)
		return -1;
	for (unsigned i = 0; i < 2; i++) {
		unsigned c = w / widths[i];

		/* The VGA's text modes: 40, 80 or 132 columns and a few
		 * more; a width of some other multiple is a graphics mode. */
		if (w % widths[i] == 0 && (c == 40 || c == 80 || c == 90 || c == 100 || c == 132)) {
			*cell_w = widths[i];
			*cols = c;
			*rows = h / font_height;
			return 0;
		}
	}
	return -1;
}

/* A cell's two colours: the most common (background) and the next. */
static void two_colours(const struct sv_image *im, unsigned x0, unsigned y0, unsigned cw,
			unsigned ch, uint32_t *bg, uint32_t *fg, unsigned *distinct)
{
	uint32_t c[4];
	unsigned n[4] = { 0 }, k = 0, others = 0;

	for (unsigned y = y0; y < y0 + ch; y++) {
		const uint32_t *row = im->px + (size_t)y * im->stride;

		for (unsigned x = x0; x < x0 + cw; x++) {
			uint32_t p = row[x] & 0xffffff;
			unsigned i;

			for (i = 0; i < k && c[i] != p; i++)
				;
			if (i < k) {
				n[i]++;
			} else if (k < 4) {
				c[k] = p;
				n[k++] = 1;
			} else {
				others++;
			}
		}
	}
	*distinct = k + (others > 0);
	unsigned a = 0, b = 1;

	for (unsigned i = 1; i < k; i++)
		if (n[i] > n[a])
			a = i;
	if (a == b)
		b = 0;
	for (unsigned i = 0; i < k; i++)
		if (i != a && n[i] > n[b])
			b = i;
	*bg = c[a];
	*fg = k > 1 ? c[b] : c[a];
}

unsigned sv_text_decode(const struct sv_matcher *m, const struct sv_image *im, unsigned cell_w,
			unsigned cols, unsigned col0, unsigned row0, unsigned col1, unsigned row1,
			struct sv_cell *cells)
{
	unsigned ch = m->height, glyphs = 0;
	/* Fonts are 8 pixels wide; the VGA's 9th column is a gap (or a
	 * copy of the 8th for line drawing) that no glyph holds. */
	unsigned gw = cell_w < 8 ? cell_w : 8;
	/* Only the rows the font has count in an inverted cell. */
	uint8_t ones[SV_FONT_MAX_HEIGHT];
	uint64_t mask[WORDS];

	memset(ones, 0xff, sizeof(ones));
	pack(ones, ch, mask);

	for (unsigned r = row0; r < row1 && (r + 1) * ch <= im->h; r++) {
		for (unsigned c = col0; c < col1 && (c + 1) * cell_w <= im->w; c++) {
			unsigned x0 = c * cell_w, y0 = r * ch, distinct, d1, d2;
			uint32_t bg, fg;
			uint8_t rows[SV_FONT_MAX_HEIGHT];
			uint64_t bits[WORDS], inv[WORDS];
			struct sv_cell *out = &cells[(size_t)r * cols + c];

			two_colours(im, x0, y0, gw, ch, &bg, &fg, &distinct);
			for (unsigned y = 0; y < ch; y++) {
				const uint32_t *row = im->px + (size_t)(y0 + y) * im->stride + x0;
				uint8_t bitsrow = 0;

				for (unsigned x = 0; x < gw; x++)
					if ((row[x] & 0xffffff) != bg)
						bitsrow |= (uint8_t)(0x80 >> x);
				rows[y] = bitsrow;
			}
			pack(rows, ch, bits);
			for (int w = 0; w < WORDS; w++)
				inv[w] = ~bits[w] & mask[w];
			unsigned g1 = match(m, bits, &d1);
			unsigned g2 = distinct > 1 ? match(m, inv, &d2) : 0;

			if (distinct > 1 && d2 < d1) {
				/* More foreground than background (a block). */
				out->ch = (uint16_t)g2;
				out->fg = sv_nearest(bg, 16);
				out->bg = sv_nearest(fg, 16);
				d1 = d2;
			} else {
				out->ch = (uint16_t)g1;
				out->fg = sv_nearest(fg, 16);
				out->bg = sv_nearest(bg, 16);
			}
			/* A glyph of the font, give or take what another BIOS's
			 * font or the cursor's underline changes: no more than
			 * two pixels off the glyph's shape. */
			if (distinct <= 2 && d1 <= 8 + ch && text_colour(fg) && text_colour(bg))
				glyphs++;
		}
	}
	return glyphs;
}

/* The mean colour of IM's pixels in [x0, x1) x [y0, y1), sampled. */
static uint32_t mean(const struct sv_image *im, unsigned x0, unsigned x1, unsigned y0, unsigned y1)
{
	unsigned long r = 0, g = 0, b = 0, n = 0;
	unsigned sx = (x1 - x0 + 7) / 8, sy = (y1 - y0 + 7) / 8;

	if (x1 <= x0 || y1 <= y0)
		return 0;
	for (unsigned y = y0; y < y1; y += sy ? sy : 1) {
		for (unsigned x = x0; x < x1; x += sx ? sx : 1) {
			uint32_t p = im->px[(size_t)y * im->stride + x];

			r += (p >> 16) & 0xff;
			g += (p >> 8) & 0xff;
			b += p & 0xff;
			n++;
		}
	}
	return (uint32_t)((r / n) << 16 | (g / n) << 8 | (b / n));
}

void sv_mosaic(const struct sv_image *im, unsigned cols, unsigned rows, int bg16,
	       struct sv_cell *cells)
{
	for (unsigned r = 0; r < rows; r++) {
		unsigned y0 = (unsigned)((unsigned long)r * im->h / rows);
		unsigned y2 = (unsigned)((unsigned long)(r + 1) * im->h / rows);
		unsigned y1 = (unsigned)((unsigned long)(2 * r + 1) * im->h / (2 * rows));

		for (unsigned c = 0; c < cols; c++) {
			unsigned x0 = (unsigned)((unsigned long)c * im->w / cols);
			unsigned x1 = (unsigned)((unsigned long)(c + 1) * im->w / cols);
			uint32_t top = mean(im, x0, x1, y0, y1 > y0 ? y1 : y0 + 1);
			uint32_t bottom = mean(im, x0, x1, y1, y2 > y1 ? y2 : y1 + 1);
			struct sv_cell *out = &cells[(size_t)r * cols + c];
			uint8_t ft = sv_nearest(top, 16), bb = sv_nearest(bottom, bg16 ? 16 : 8);
			uint8_t fb = sv_nearest(bottom, 16);

			if (ft == fb) {
				/* One colour: a full block draws any of the 16. */
				out->ch = 0xdb;
				out->fg = ft;
				out->bg = 0;
			} else {
				out->ch = 0xdf;
				out->fg = ft;
				out->bg = bb;
			}
		}
	}
}

static size_t put_utf8(char *out, size_t at, size_t size, unsigned u)
{
	char b[4];
	size_t n;

	if (u < 0x80) {
		b[0] = (char)u;
		n = 1;
	} else if (u < 0x800) {
		b[0] = (char)(0xc0 | u >> 6);
		b[1] = (char)(0x80 | (u & 0x3f));
		n = 2;
	} else {
		b[0] = (char)(0xe0 | u >> 12);
		b[1] = (char)(0x80 | ((u >> 6) & 0x3f));
		b[2] = (char)(0x80 | (u & 0x3f));
		n = 3;
	}
	if (at + n >= size)
		return at;
	memcpy(out + at, b, n);
	return at + n;
}

size_t sv_cells_text(const struct sv_cell *cells, unsigned cols, unsigned rows, char *out,
		     size_t size)
{
	size_t at = 0;

	if (!size)
		return 0;
	for (unsigned r = 0; r < rows; r++) {
		unsigned end = cols;

		/* Blank is what reads as a space: NUL, space, 0xff. */
		while (end > 0 && (sv_cp437_unicode(cells[(size_t)r * cols + end - 1].ch) == ' ' ||
				   sv_cp437_unicode(cells[(size_t)r * cols + end - 1].ch) == 0xa0))
			end--;
		for (unsigned c = 0; c < end; c++)
			at = put_utf8(out, at, size,
				      sv_cp437_unicode(cells[(size_t)r * cols + c].ch));
		at = put_utf8(out, at, size, '\n');
	}
	out[at] = 0;
	return at;
}
