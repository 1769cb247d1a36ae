/* The PC's screen and keyboard, taken from a virtual terminal: its
 * framebuffer (a UEFI machine's, efifb) or, on a BIOS machine's VGA text
 * console, its character cells; its keyboard in medium raw mode. */
#ifndef SV_CONSOLE_H
#define SV_CONSOLE_H

#include "blit.h"
#include "font.h"
#include "image.h"
#include "text.h"

#include <stdbool.h>
#include <termios.h>

struct sv_console {
	int fd;	       /* the virtual terminal */
	int vt;	       /* its number */
	bool graphics; /* drawing on the framebuffer, else on the cells */
	bool taken;    /* modes changed: close() restores them */
	int kbmode, kdmode;
	struct termios tio;
	/* Framebuffer. */
	int fbfd;
	size_t maplen;
	struct sv_surface s;
	struct sv_fit fit;
	unsigned fit_w, fit_h; /* the image size FIT was made for */
	/* Text cells. */
	int vcsa;
	unsigned cols, rows;	    /* the terminal's */
	struct sv_cell *guest;	    /* the guest's cells as read */
	uint8_t *ok;		    /* per guest cell: a glyph of the font */
	unsigned gcols, grows, gcw; /* the guest's text grid */
	bool text_mode;		    /* the guest's screen is a text mode */
	uint16_t *shown;	    /* what the cells hold now, char | attr << 8 */
	struct sv_font font;
	struct sv_matcher *m;
	/* The line that says how to come back, while it is shown: drawing
	 * the guest's screen leaves it alone. */
	char banner[160];
	bool banner_on;
};

/* Takes the terminal TTY (a path; NULL: the one on stdin) over: keyboard
 * raw, and the framebuffer unless TEXT_ONLY or there is none. 0, or -1
 * with the reason in ERR. */
int sv_console_open(struct sv_console *c, const char *tty, bool text_only, char *err,
		    size_t errlen);

/* Gives the terminal back as it was, and clears it. */
void sv_console_close(struct sv_console *c);

/* For a terminal left in raw mode by a viewer that died: text mode, the
 * usual keyboard mode, sane line settings. */
int sv_console_reset(const char *tty);

/* Draws what changed (CHANGED) of the guest's screen IM; RESIZED when its
 * size is new. */
void sv_console_draw(struct sv_console *c, const struct sv_image *im, const struct sv_rect *changed,
		     bool resized);

/* A line of TEXT on the top row, over the guest's screen (white on
 * blue), until it is called with NULL, which gives the row back to the
 * guest's screen at the next sv_console_draw. */
void sv_console_banner(struct sv_console *c, const char *text);

#endif
