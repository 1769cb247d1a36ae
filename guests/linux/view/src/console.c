/*
 * console.c - the virtual terminal the menu runs on, borrowed for a guest's
 * screen. KD_GRAPHICS keeps the console driver from drawing over the
 * framebuffer; K_MEDIUMRAW gives every key, Ctrl-Alt-Del and the Alt-Fn
 * terminal switches included, to the guest. Both are undone on the way
 * out, also after a signal; sv_console_reset undoes them after a crash.
 */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/kd.h>
#include <linux/vt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The console's minor numbers 1..63 are the virtual terminals. */
static int vt_number(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 4 ||
	    minor(st.st_rdev) < 1 || minor(st.st_rdev) > 63)
		return -1;
	return (int)minor(st.st_rdev);
}

static int open_fb(struct sv_console *c)
{
	struct fb_var_screeninfo var;
	struct fb_fix_screeninfo fix;
	void *mem;

	c->fbfd = open("/dev/fb0", O_RDWR | O_CLOEXEC);
	if (c->fbfd < 0)
		return -1;
	if (ioctl(c->fbfd, FBIOGET_VSCREENINFO, &var) < 0 ||
	    ioctl(c->fbfd, FBIOGET_FSCREENINFO, &fix) < 0 || fix.visual != FB_VISUAL_TRUECOLOR ||
	    (var.bits_per_pixel != 16 && var.bits_per_pixel != 24 && var.bits_per_pixel != 32))
		goto no;
	c->maplen = (size_t)fix.line_length * var.yres_virtual;
	mem = mmap(NULL, c->maplen, PROT_READ | PROT_WRITE, MAP_SHARED, c->fbfd, 0);
	if (mem == MAP_FAILED)
		goto no;
	c->s = (struct sv_surface){
		.mem = (uint8_t *)mem + (size_t)var.yoffset * fix.line_length +
		       (size_t)var.xoffset * (var.bits_per_pixel / 8),
		.w = var.xres,
		.h = var.yres,
		.bpp = var.bits_per_pixel,
		.line = fix.line_length,
		.r = { var.red.offset, var.red.length },
		.g = { var.green.offset, var.green.length },
		.b = { var.blue.offset, var.blue.length },
	};
	return 0;
no:
	close(c->fbfd);
	c->fbfd = -1;
	return -1;
}

static int open_cells(struct sv_console *c, char *err, size_t errlen)
{
	char path[32];
	unsigned char head[4];

	snprintf(path, sizeof(path), "/dev/vcsa%d", c->vt);
	c->vcsa = open(path, O_RDWR | O_CLOEXEC);
	if (c->vcsa < 0 && errno == ENOENT &&
	    mknod(path, S_IFCHR | 0600, makedev(7, 128 + c->vt)) == 0)
		c->vcsa = open(path, O_RDWR | O_CLOEXEC);
	if (c->vcsa < 0 || pread(c->vcsa, head, 4, 0) != 4) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	c->rows = head[0];
	c->cols = head[1];
	c->shown = calloc((size_t)c->rows * c->cols, sizeof(*c->shown));
	if (!c->shown) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* Nothing matches, so that the first draw writes every cell. */
	memset(c->shown, 0xff, (size_t)c->rows * c->cols * sizeof(*c->shown));
	return 0;
}

int sv_console_open(struct sv_console *c, const char *tty, bool text_only, char *err, size_t errlen)
{
	struct termios raw;

	memset(c, 0, sizeof(*c));
	c->fbfd = c->vcsa = -1;
	c->fd = tty ? open(tty, O_RDWR | O_NOCTTY | O_CLOEXEC) : dup(0);
	if (c->fd < 0) {
		snprintf(err, errlen, "%s: %s", tty ? tty : "stdin", strerror(errno));
		return -1;
	}
	c->vt = vt_number(c->fd);
	if (c->vt < 0) {
		snprintf(err, errlen,
			 "%s is no virtual terminal of this PC's screen (a serial or Xen "
			 "console has no screen to show)",
			 tty ? tty : "standard input");
		goto fail;
	}
	if (sv_font_from_tty(c->fd, &c->font) == 0)
		c->m = sv_matcher_new(&c->font);
	c->graphics = !text_only && open_fb(c) == 0;
	if (!c->graphics && open_cells(c, err, errlen) < 0)
		goto fail;
	if (ioctl(c->fd, KDGKBMODE, &c->kbmode) < 0 || ioctl(c->fd, KDGETMODE, &c->kdmode) < 0 ||
	    tcgetattr(c->fd, &c->tio) < 0) {
		snprintf(err, errlen, "cannot read the terminal's modes: %s", strerror(errno));
		goto fail;
	}
	raw = c->tio;
	cfmakeraw(&raw);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	c->taken = true;
	if (tcsetattr(c->fd, TCSAFLUSH, &raw) < 0 || ioctl(c->fd, KDSKBMODE, K_MEDIUMRAW) < 0 ||
	    (c->graphics && ioctl(c->fd, KDSETMODE, KD_GRAPHICS) < 0)) {
		snprintf(err, errlen, "cannot take the terminal over: %s", strerror(errno));
		sv_console_close(c);
		return -1;
	}
	if (!c->graphics) {
		/* The cursor would blink in the middle of the guest's text. */
		static const char hide[] = "\033[?25l";

		if (write(c->fd, hide, sizeof(hide) - 1) < 0) {
			/* cosmetic */
		}
	}
	return 0;
fail:
	sv_console_close(c);
	return -1;
}

void sv_console_close(struct sv_console *c)
{
	if (c->taken) {
		static const char clear[] = "\033[?25h\033[H\033[2J";

		ioctl(c->fd, KDSETMODE, c->kdmode);
		ioctl(c->fd, KDSKBMODE, c->kbmode);
		tcsetattr(c->fd, TCSAFLUSH, &c->tio);
		if (write(c->fd, clear, sizeof(clear) - 1) < 0) {
			/* the menu draws itself again anyway */
		}
		c->taken = false;
	}
	if (c->s.mem)
		munmap(c->s.mem, c->maplen);
	c->s.mem = NULL;
	if (c->fbfd >= 0)
		close(c->fbfd);
	if (c->vcsa >= 0)
		close(c->vcsa);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = c->fbfd = c->vcsa = -1;
	sv_matcher_free(c->m);
	c->m = NULL;
	free(c->guest);
	free(c->ok);
	free(c->shown);
	c->guest = NULL;
	c->ok = NULL;
	c->shown = NULL;
}

int sv_console_reset(const char *tty)
{
	int fd = open(tty, O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct termios t;
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, KDSETMODE, KD_TEXT) < 0 || ioctl(fd, KDSKBMODE, K_UNICODE) < 0)
		rc = -errno;
	if (tcgetattr(fd, &t) == 0) {
		t.c_iflag |= ICRNL | IXON | BRKINT;
		t.c_oflag |= OPOST | ONLCR;
		t.c_lflag |= ICANON | ECHO | ECHOE | ECHOK | ISIG | IEXTEN;
		t.c_cc[VMIN] = 1;
		tcsetattr(fd, TCSANOW, &t);
	}
	close(fd);
	return rc;
}

/* ---- the framebuffer ------------------------------------------------ */

static void draw_fb(struct sv_console *c, const struct sv_image *im, const struct sv_rect *changed,
		    bool resized)
{
	if (resized || c->fit_w != im->w || c->fit_h != im->h) {
		struct sv_rect all = { 0, 0, c->s.w, c->s.h };

		c->fit = sv_fit(im->w, im->h, c->s.w, c->s.h);
		c->fit_w = im->w;
		c->fit_h = im->h;
		sv_fill(&c->s, &all, 0);
		struct sv_rect whole = { 0, 0, im->w, im->h };

		sv_blit(&c->s, &c->fit, im, &whole);
		return;
	}
	sv_blit(&c->s, &c->fit, im, changed);
}

/* TEXT in the console's font at the top of the framebuffer, its pixels
 * as many times the font's as a 1024-pixel-wide screen's would be. */
static void banner_fb(struct sv_console *c, const char *text)
{
	unsigned z = c->s.w >= 2048 ? c->s.w / 1024 : 1;
	unsigned fw = (c->font.width ? c->font.width : 8) * z;
	unsigned fh = (c->font.height ? c->font.height : 16) * z;
	size_t n = strlen(text);
	struct sv_rect bar = { 0, 0, c->s.w, fh + 4 * z };

	sv_fill(&c->s, &bar, 0x0000aa);
	if (!c->font.height)
		return;
	for (size_t i = 0; i < n && (i + 2) * fw <= c->s.w; i++) {
		const uint8_t *g = c->font.glyph[(unsigned char)text[i] % c->font.count];

		for (unsigned y = 0; y < c->font.height; y++) {
			for (unsigned x = 0; x < c->font.width; x++) {
				if (!(g[y] & (0x80 >> x)))
					continue;
				struct sv_rect px = { (unsigned)(i + 1) * fw + x * z, 2 * z + y * z,
						      z, z };

				sv_fill(&c->s, &px, 0xffffff);
			}
		}
	}
}

/* ---- character cells --------------------------------------------------- */

/* The terminal's cells from the guest's, written where they differ. */
static void flush_cells(struct sv_console *c, const struct sv_cell *cells, unsigned gcols,
			unsigned grows)
{
	uint8_t *row = malloc((size_t)c->cols * 2);

	if (!row)
		return;
	for (unsigned r = c->banner_on ? 1 : 0; r < c->rows; r++) {
		bool differs = false;

		for (unsigned col = 0; col < c->cols; col++) {
			uint16_t v = 0x0720; /* a blank in grey on black */

			if (r < grows && col < gcols) {
				const struct sv_cell *g = &cells[(size_t)r * gcols + col];

				/* The 8th attribute bit blinks on a VGA console:
				 * a bright background shows as its dark one,
				 * but a blank of that colour is a full block. */
				if (g->bg >= 8 && (g->ch == 0x20 || g->ch == 0))
					v = (uint16_t)(0xdb | g->bg << 8);
				else
					v = (uint16_t)((g->ch & 0xff) | (g->fg | (g->bg & 7) << 4)
									    << 8);
			}
			row[2 * col] = (uint8_t)v;
			row[2 * col + 1] = (uint8_t)(v >> 8);
			if (c->shown[(size_t)r * c->cols + col] != v) {
				c->shown[(size_t)r * c->cols + col] = v;
				differs = true;
			}
		}
		if (differs &&
		    pwrite(c->vcsa, row, (size_t)c->cols * 2, 4 + (off_t)r * c->cols * 2) < 0) {
			break;
		}
	}
	free(row);
}

static int grid(struct sv_console *c, unsigned cols, unsigned rows)
{
	if (c->guest && c->gcols == cols && c->grows == rows)
		return 0;
	free(c->guest);
	free(c->ok);
	c->guest = calloc((size_t)cols * rows, sizeof(*c->guest));
	c->ok = calloc((size_t)cols * rows, 1);
	c->gcols = cols;
	c->grows = rows;
	return c->guest && c->ok ? 0 : -1;
}

static void draw_cells(struct sv_console *c, const struct sv_image *im,
		       const struct sv_rect *changed, bool resized)
{
	unsigned cw, cols, rows;

	if (c->m && sv_text_geometry(im->w, im->h, c->font.height, &cw, &cols, &rows) == 0 &&
	    grid(c, cols, rows) == 0) {
		unsigned c0 = changed->x / cw, r0 = changed->y / c->font.height;
		unsigned c1 = (changed->x + changed->w + cw - 1) / cw;
		unsigned r1 = (changed->y + changed->h + c->font.height - 1) / c->font.height;
		unsigned good = 0;

		if (resized || c->gcw != cw) {
			c0 = r0 = 0;
			c1 = cols;
			r1 = rows;
			c->gcw = cw;
		}
		for (unsigned r = r0; r < r1 && r < rows; r++) {
			for (unsigned col = c0; col < c1 && col < cols; col++) {
				c->ok[(size_t)r * cols + col] = (uint8_t)sv_text_decode(
				    c->m, im, cw, cols, col, r, col + 1, r + 1, c->guest);
			}
		}
		for (size_t i = 0; i < (size_t)cols * rows; i++)
			good += c->ok[i];
		/* A text mode shows its characters; a graphics mode that
		 * happens to have a text mode's size is drawn in blocks. */
		c->text_mode = good * 10 >= (size_t)cols * rows * 9;
		if (c->text_mode) {
			flush_cells(c, c->guest, cols, rows);
			return;
		}
	} else {
		c->text_mode = false;
	}
	if (grid(c, c->cols, c->rows) < 0)
		return;
	sv_mosaic(im, c->cols, c->rows, 0, c->guest);
	flush_cells(c, c->guest, c->cols, c->rows);
}

void sv_console_draw(struct sv_console *c, const struct sv_image *im, const struct sv_rect *changed,
		     bool resized)
{
	if (!im->px || !im->w || !im->h)
		return;
	if (c->graphics) {
		draw_fb(c, im, changed, resized);
		/* The guest's screen may reach the top of the framebuffer. */
		if (c->banner_on && (resized || c->fit.y == 0))
			banner_fb(c, c->banner);
	} else {
		draw_cells(c, im, changed, resized);
	}
}

void sv_console_banner(struct sv_console *c, const char *text)
{
	if (!text) {
		c->banner_on = false;
		if (!c->graphics && c->shown)
			for (unsigned col = 0; col < c->cols; col++)
				c->shown[col] = 0xffff; /* the next draw writes the row */
		return;
	}
	snprintf(c->banner, sizeof(c->banner), "%s", text);
	c->banner_on = true;
	if (c->graphics) {
		banner_fb(c, text);
		return;
	}
	size_t n = strlen(text);
	uint8_t *row = malloc((size_t)c->cols * 2);

	if (!row)
		return;
	for (unsigned col = 0; col < c->cols; col++) {
		row[2 * col] = col >= 1 && col - 1 < n ? (uint8_t)text[col - 1] : ' ';
		row[2 * col + 1] = 0x1f;
	}
	if (pwrite(c->vcsa, row, (size_t)c->cols * 2, 4) < 0) {
		/* the banner is a courtesy */
	}
	free(row);
}
