/*
 * test_image.c - screenshots and drawing (png.c, blit.c, image.c): a PNG
 * of a known picture decodes (zlib, CRCs, filter bytes) to the same
 * pixels; the fit of one size into another keeps the aspect and centres;
 * a scaled blit puts each pixel's colour where it belongs in 32-, 24- and
 * 16-bit framebuffers; a changed rectangle redraws only its part.
 */
#include "../src/blit.h"
#include "../src/image.h"
#include "../src/png.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_png(void)
{
	enum { W = 37, H = 11 };
	uint32_t px[W * H];
	struct sv_image im = { px, W, H, W };
	char dir[PATH_MAX], path[PATH_MAX];
	static uint8_t file[1 << 16], raw[(1 + 3 * W) * H];
	uLongf raw_len = sizeof(raw);
	size_t n, at = 8, idat_len = 0;
	static uint8_t idat[1 << 16];
	FILE *f;
	int chunks_ok = 1;

	for (unsigned i = 0; i < W * H; i++)
		px[i] = (i * 2654435761u) & 0xffffff;
	scratch_dir(dir, "test_image");
	pathf(path, "%s/s.png", dir);
	f = fopen(path, "wb");
	check(sv_png_write(f, &im) == 0, "a PNG is written");
	fclose(f);
	f = fopen(path, "rb");
	n = fread(file, 1, sizeof(file), f);
	fclose(f);
	check(n > 8 && !memcmp(file, "\x89PNG\r\n\x1a\n", 8), "it starts with PNG's signature");
	check(be32(file + 16) == W && be32(file + 20) == H && file[24] == 8 && file[25] == 2,
	      "IHDR: %ux%u, 8-bit RGB", W, H);
	while (at + 12 <= n) {
		uint32_t len = be32(file + at);

		if (at + 12 + len > n)
			break;
		if (be32(file + at + 8 + len) != crc32(0, file + at + 4, len + 4))
			chunks_ok = 0;
		if (!memcmp(file + at + 4, "IDAT", 4)) {
			memcpy(idat + idat_len, file + at + 8, len);
			idat_len += len;
		}
		at += 12 + len;
	}
	check(chunks_ok && at == n && !memcmp(file + n - 8, "IEND", 4),
	      "every chunk's CRC, IEND last");
	check(uncompress(raw, &raw_len, idat, idat_len) == Z_OK && raw_len == sizeof(raw),
	      "the image data inflates to %u rows", H);
	int same = 1;

	for (unsigned y = 0; y < H; y++) {
		const uint8_t *row = raw + y * (1 + 3 * W);

		same &= row[0] == 0;
		for (unsigned x = 0; x < W; x++) {
			uint32_t p = px[y * W + x];

			same &= row[1 + 3 * x] == (uint8_t)(p >> 16) &&
				row[2 + 3 * x] == (uint8_t)(p >> 8) && row[3 + 3 * x] == (uint8_t)p;
		}
	}
	check(same, "every pixel comes back");
	struct sv_image empty = { px, 0, 0, 0 };

	f = fopen(path, "wb");
	check(sv_png_write(f, &empty) == -EINVAL, "an empty image is refused");
	fclose(f);
	rm_rf(dir);
}

static void test_fit(void)
{
	struct sv_fit f = sv_fit(720, 400, 1024, 768);

	check(f.w == 1024 && f.h == 568 && f.x == 0 && f.y == 100,
	      "720x400 in 1024x768: %ux%u+%u+%u", f.w, f.h, f.x, f.y);
	f = sv_fit(640, 480, 1920, 1080);
	check(f.w == 1440 && f.h == 1080 && f.x == 240 && f.y == 0,
	      "640x480 in 1920x1080: %ux%u+%u+%u", f.w, f.h, f.x, f.y);
	f = sv_fit(800, 600, 800, 600);
	check(f.w == 800 && f.h == 600 && !f.x && !f.y, "same size: one to one");
	f = sv_fit(0, 600, 800, 600);
	check(!f.w && !f.h, "nothing to fit");
}

/* A 4x2 image of known colours, drawn 2x into a surface of BPP bits. */
static void test_blit(unsigned bpp, struct sv_channel r, struct sv_channel g, struct sv_channel b)
{
	uint32_t px[8] = {
		0xff0000, 0x00ff00, 0x0000ff, 0xffffff, 0, 0x808080, 0xff0000, 0x00ff00
	};
	struct sv_image im = { px, 4, 2, 4 };
	uint8_t mem[10 * 6 * 4];
	struct sv_surface s = { mem, 10, 6, bpp, 10 * (bpp / 8), r, g, b };
	struct sv_fit fit = sv_fit(4, 2, 10, 6);
	struct sv_rect all = { 0, 0, 4, 2 }, surf = { 0, 0, 10, 6 };
	unsigned bytes = bpp / 8;

	sv_fill(&s, &surf, 0x123456);
	sv_blit(&s, &fit, &im, &all);
	check(fit.w == 10 && fit.h == 5 && fit.y == 0, "%u bpp: 4x2 fits 10x5 in 10x6", bpp);

	/* Surface pixel (x, y) holds image pixel (x * 4 / 10, y * 2 / 5). */
	int ok = 1;

	for (unsigned y = 0; y < 5; y++) {
		for (unsigned x = 0; x < 10; x++) {
			uint32_t want = px[(y * 2 / 5) * 4 + x * 4 / 10], got = 0;

			memcpy(&got, mem + y * s.line + x * bytes, bytes);
			uint32_t rr = (got >> r.offset) & ((1u << r.length) - 1);
			uint32_t gg = (got >> g.offset) & ((1u << g.length) - 1);
			uint32_t bb = (got >> b.offset) & ((1u << b.length) - 1);

			ok &= rr == ((want >> 16) & 0xff) >> (8 - r.length) &&
			      gg == ((want >> 8) & 0xff) >> (8 - g.length) &&
			      bb == (want & 0xff) >> (8 - b.length);
		}
	}
	check(ok, "%u bpp: every pixel in its place and colour", bpp);
	/* The row under the fit is untouched. */
	uint32_t below = 0;

	memcpy(&below, mem + 5 * s.line, bytes);
	check(below != 0, "%u bpp: outside the fit stays as it was", bpp);

	/* Only image pixel (3, 1) changed: only its surface pixels redraw. */
	memset(mem, 0xee, sizeof(mem));
	px[7] = 0;
	struct sv_rect one = { 3, 1, 1, 1 };

	sv_blit(&s, &fit, &im, &one);
	int untouched = 1, drawn = 1;

	for (unsigned y = 0; y < 6; y++)
		for (unsigned x = 0; x < 10; x++) {
			int in = y < 5 && y * 2 / 5 == 1 && x * 4 / 10 == 3;
			uint8_t first = mem[y * s.line + x * bytes];

			if (in)
				drawn &= first == 0;
			else
				untouched &= first == 0xee;
		}
	check(drawn && untouched, "%u bpp: a changed pixel redraws its part only", bpp);
}

static void test_union(void)
{
	struct sv_rect r = { 0, 0, 0, 0 }, a = { 10, 20, 5, 5 }, b = { 2, 30, 4, 1 },
		       none = { 1, 1, 0, 9 };

	sv_rect_union(&r, &none);
	check(!r.w, "an empty rectangle adds nothing");
	sv_rect_union(&r, &a);
	check(r.x == 10 && r.y == 20 && r.w == 5 && r.h == 5, "the first one is taken as it is");
	sv_rect_union(&r, &b);
	check(r.x == 2 && r.y == 20 && r.w == 13 && r.h == 11, "the union of two: %u,%u %ux%u", r.x,
	      r.y, r.w, r.h);
}

int main(void)
{
	test_png();
	test_fit();
	test_blit(32, (struct sv_channel){ 16, 8 }, (struct sv_channel){ 8, 8 },
		  (struct sv_channel){ 0, 8 });
	test_blit(24, (struct sv_channel){ 16, 8 }, (struct sv_channel){ 8, 8 },
		  (struct sv_channel){ 0, 8 });
	test_blit(16, (struct sv_channel){ 11, 5 }, (struct sv_channel){ 5, 6 },
		  (struct sv_channel){ 0, 5 });
	test_union();
	printf("test_image: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
