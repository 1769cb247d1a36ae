/*
 * streamcd-view: a guest's screen on the PC's screen, and screenshots.
 *
 * dom0's launcher gives every HVM guest shown on the screen a QEMU VNC
 * server on a unix socket (guests/README.md, "The guest's screen"). This
 * program is its client: full screen on the virtual terminal the menu runs
 * on, the PC's keyboard and mouse to the guest until Ctrl-]; or, without a person,
 * the screen as a PNG file, as text, or a wait for a text to show.
 */
#include "console.h"
#include "keys.h"
#include "mouse.h"
#include "png.h"
#include "text.h"
#include "vnc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ESCAPE_NAME "Ctrl-]"
/* Seconds the line that says how to come back stays over the screen,
 * unless a key is pressed first. */
#define BANNER_SECONDS 10

static void usage(FILE *f)
{
	fputs("Usage: streamcd-view [OPTIONS] VNC\n"
	      "\n"
	      "Shows a guest's screen, from QEMU's VNC server at VNC (a unix socket's path or\n"
	      "HOST:PORT), full screen on this virtual terminal: the PC's keyboard goes to the\n"
	      "guest until " ESCAPE_NAME
	      " (Ctrl and the key right of P), which comes back; so does the\n"
	      "mouse (its pointer starts in the middle of the guest's screen). A UEFI\n"
	      "PC's framebuffer shows it scaled to fit; a BIOS PC's text console shows a text\n"
	      "mode's characters as they are and a graphics mode in coloured blocks.\n"
	      "\n"
	      "  --name NAME        the guest's name, for the line shown at the start\n"
	      "  --tty DEV          the virtual terminal to use (default: standard input)\n"
	      "  --text-console     draw in character cells even where there is a framebuffer\n"
	      "  --mouse DEV        the PC's mice, in the PS/2 protocol (default\n"
	      "                     /dev/input/mice; none: no mouse); without it, keys only\n"
	      "  --stats FILE       at the end, write counters: frames drawn, keys, and the\n"
	      "                     milliseconds from each key to the screen's next change\n"
	      "\n"
	      "Without a person (no terminal is touched):\n"
	      "  --screenshot FILE  write the screen as a PNG file and exit\n"
	      "  --text             print the screen's text (a text mode, read with the\n"
	      "                     console's font) and exit; exit 2 in a graphics mode\n"
	      "  --wait REGEX       exit 0 once the screen's text matches REGEX (extended)\n"
	      "  --type TEXT        type TEXT on the guest's keyboard (US layout; \\n is Enter)\n"
	      "  --timeout S        seconds to wait for a screen or a match (default 30)\n"
	      "  --font FILE        read text with this PSF font (default: the console's, from\n"
	      "                     the first of /dev/tty1..12 in text mode)\n"
	      "  --reset DEV        give terminal DEV back its text mode and keyboard (after a\n"
	      "                     viewer that was killed) and exit\n"
	      "\n"
	      "Exit: 0 done, 1 an error, 2 usage or no text to read, 3 the guest's screen went\n"
	      "away (it stopped), 124 --wait or --timeout ran out.\n",
	      f);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/*
 * The first whole screen, within TIMEOUT s: 0, 3 gone, 124 timeout. QEMU
 * answers a new client from its copy of the screen, which it brings up to
 * date only on its next refresh (black, for the first client): the screen
 * counts once a second has passed without a change of more than a sliver
 * (a blinking cursor changes a sliver twice a second), or 3 s at most.
 */
static int first_screen(struct sv_vnc *v, double timeout, bool settle)
{
	double end = now() + timeout, settle_end = 0, quiet_since = now();

	for (;;) {
		int left = (int)((end - now()) * 1000), got;
		bool resized;
		struct sv_image im;
		struct sv_rect r;

		if (left <= 0)
			return sv_vnc_complete(v) ? 0 : 124;
		got = sv_vnc_pump(v, left < 250 ? left : 250);
		if (got < 0)
			return 3;
		r = sv_vnc_take_changes(v, &resized);
		sv_vnc_image(v, &im);
		if (resized || (unsigned long)r.w * r.h * 64 > (unsigned long)im.w * im.h)
			quiet_since = now();
		if (!sv_vnc_complete(v))
			continue;
		/* A person's screen is drawn at once: the refresh follows. */
		if (!settle)
			return 0;
		if (!settle_end)
			settle_end = now() + 3;
		if (now() - quiet_since >= 1 || now() >= settle_end)
			return 0;
	}
}

static int screenshot(struct sv_vnc *v, const char *path)
{
	struct sv_image im;
	char tmp[4096];
	FILE *f;
	int rc;

	sv_vnc_image(v, &im);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (!f) {
		fprintf(stderr, "streamcd-view: %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	rc = sv_png_write(f, &im);
	if (fclose(f) && !rc)
		rc = -EIO;
	if (rc || rename(tmp, path) < 0) {
		fprintf(stderr, "streamcd-view: %s: %s\n", path, strerror(rc ? -rc : errno));
		unlink(tmp);
		return 1;
	}
	return 0;
}

/* The screen's text into OUT: 0, or 2 when it is no text mode. */
static int screen_text(struct sv_vnc *v, const struct sv_matcher *m, unsigned font_height,
		       char *out, size_t size)
{
	struct sv_image im;
	unsigned cw, cols, rows, good;
	struct sv_cell *cells;

	sv_vnc_image(v, &im);
	if (sv_text_geometry(im.w, im.h, font_height, &cw, &cols, &rows) < 0)
		return 2;
	cells = calloc((size_t)cols * rows, sizeof(*cells));
	if (!cells)
		return 1;
	good = sv_text_decode(m, &im, cw, cols, 0, 0, cols, rows, cells);
	if (getenv("STREAMCD_VIEW_DEBUG"))
		fprintf(stderr, "streamcd-view: %ux%u: %u of %u cells are glyphs\n", im.w, im.h,
			good, cols * rows);
	if (good * 10 < (size_t)cols * rows * 9) {
		free(cells);
		return 2;
	}
	sv_cells_text(cells, cols, rows, out, size);
	free(cells);
	return 0;
}

static int type_text(struct sv_vnc *v, const char *text)
{
	for (const char *p = text; *p; p++) {
		char ch = *p;
		unsigned code;
		bool shift;

		if (ch == '\\' && p[1] == 'n') {
			ch = '\n';
			p++;
		}
		if (sv_key_for_char(ch, &code, &shift) < 0) {
			fprintf(stderr, "streamcd-view: --type: no key types '%c'\n", ch);
			return 2;
		}
		/* The keysym of what the key types, as VNC has it: a server
		 * that keeps Caps Lock in step by keysym (QEMU's lock-key-sync)
		 * would otherwise undo the Shift. */
		uint32_t sym = ch >= 0x20 && ch < 0x7f ? (uint32_t)ch : sv_key_keysym(code);

		if ((shift && sv_vnc_key(v, 42, 0xffe1, true)) ||
		    sv_vnc_key(v, sv_key_qnum(code), sym, true) ||
		    sv_vnc_key(v, sv_key_qnum(code), sym, false) ||
		    (shift && sv_vnc_key(v, 42, 0xffe1, false))) {
			fprintf(stderr, "streamcd-view: the guest's screen went away\n");
			return 3;
		}
		/* A guest polls its keyboard; keys faster than that are lost
		 * by some (a BIOS's 16-key buffer). */
		sv_vnc_pump(v, 30);
	}
	return 0;
}

/* The font text is read with: PSF's, else the first virtual terminal's
 * that is in text mode (the kernel gives no font of one in graphics). */
static int load_font(const char *psf, struct sv_font *font, char *where, size_t size)
{
	int rc = -ENOENT;

	if (psf) {
		snprintf(where, size, "%s", psf);
		return sv_font_from_psf(psf, font);
	}
	for (int n = 1; n <= 12; n++) {
		int fd;

		snprintf(where, size, "/dev/tty%d", n);
		fd = open(where, O_RDONLY | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		rc = sv_font_from_tty(fd, font);
		close(fd);
		if (rc == 0)
			return 0;
	}
	snprintf(where, size, "/dev/tty1..12");
	return rc;
}

/* What bench/screen.py reads: frames drawn in each second of the view,
 * and the milliseconds from each key to the screen's next change. */
#define STATS_SECONDS 3600
struct stats {
	unsigned long frames, keys, mouse_packets, lat_n;
	double start, key_at, lat_ms[256];
	unsigned per_second[STATS_SECONDS];
};

static void write_stats(const struct stats *st, const char *path)
{
	double secs = now() - st->start;
	FILE *f = fopen(path, "w");

	if (!f)
		return;
	fprintf(f, "seconds %.3f\nframes %lu\nkeys %lu\nmouse_packets %lu\n", secs, st->frames,
		st->keys, st->mouse_packets);
	fprintf(f, "frames_per_second");
	for (unsigned i = 0; i < STATS_SECONDS && i <= (unsigned)secs; i++)
		fprintf(f, " %u", st->per_second[i]);
	fprintf(f, "\nkey_to_screen_ms");
	for (unsigned long i = 0; i < st->lat_n; i++)
		fprintf(f, " %.1f", st->lat_ms[i]);
	fprintf(f, "\n");
	fclose(f);
}

static struct sv_console *live; /* for the fatal-signal path */

static void on_fatal(int sig)
{
	if (live)
		sv_console_reset("/dev/tty0");
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The mouse's bytes that came, as pointer events to the guest. */
static void mouse_to_guest(struct sv_vnc *v, struct sv_mouse *m, int fd, struct stats *st)
{
	uint8_t buf[64];
	struct sv_image im;
	ssize_t n = read(fd, buf, sizeof(buf));

	sv_vnc_image(v, &im);
	for (ssize_t i = 0; i < n; i++) {
		int wheel;

		if (!sv_mouse_feed(m, buf[i], im.w, im.h, &wheel))
			continue;
		st->mouse_packets++;
		sv_vnc_pointer(v, (unsigned)m->x, (unsigned)m->y, m->buttons);
		/* A wheel click is a press and release of VNC's button 4 or 5. */
		for (int k = 0; k < (wheel < 0 ? -wheel : wheel); k++) {
			unsigned b = wheel < 0 ? SV_WHEEL_UP : SV_WHEEL_DOWN;

			sv_vnc_pointer(v, (unsigned)m->x, (unsigned)m->y, m->buttons | b);
			sv_vnc_pointer(v, (unsigned)m->x, (unsigned)m->y, m->buttons);
		}
	}
}

static int view(struct sv_vnc *v, const char *tty, const char *name, bool text_only,
		const char *mouse_dev, const char *stats_path)
{
	struct sv_console c;
	struct sv_kbd kbd = { 0 };
	struct sv_mouse mouse;
	unsigned mouse_size = 3;
	int mouse_fd = -1;
	double mouse_try = 0;
	static struct stats st;
	char err[256], banner[160];
	double banner_until;
	int rc = 0;

	st.start = now();

	if (sv_console_open(&c, tty, text_only, err, sizeof(err)) < 0) {
		fprintf(stderr, "streamcd-view: %s\n", err);
		return 1;
	}
	live = &c;
	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	signal(SIGABRT, on_fatal);
	snprintf(banner, sizeof(banner), "%s%s%s: " ESCAPE_NAME " comes back to the menu",
		 name ? "streamcd: " : "streamcd", name ? name : "", name ? "'s screen" : "");
	{
		struct sv_image im;
		struct sv_rect all;

		sv_vnc_image(v, &im);
		all = (struct sv_rect){ 0, 0, im.w, im.h };
		sv_console_draw(&c, &im, &all, true);
	}
	sv_console_banner(&c, banner);
	banner_until = now() + BANNER_SECONDS;
	if (mouse_dev && !strcmp(mouse_dev, "none"))
		mouse_dev = NULL;
	while (!stop_signal) {
		struct pollfd p[3] = { { c.fd, POLLIN, 0 },
				       { sv_vnc_fd(v), POLLIN, 0 },
				       { mouse_fd, POLLIN, 0 } };
		int timeout = banner_until ? (int)((banner_until - now()) * 1000) + 1 : 1000;
		unsigned char buf[64];
		ssize_t n;
		bool resized;

		/* The launcher loads the mouse's drivers as the screen is shown,
		 * not before it: the device may come a moment later, or never
		 * (no mouse): the keyboard alone then. */
		if (mouse_dev && mouse_fd < 0 && now() >= mouse_try) {
			mouse_fd = sv_mouse_open(mouse_dev, &mouse_size);
			p[2].fd = mouse_fd;
			if (mouse_fd >= 0) {
				struct sv_image im;

				sv_vnc_image(v, &im);
				sv_mouse_init(&mouse, mouse_size, im.w, im.h);
			}
			mouse_try = now() + 1;
		}
		if (mouse_dev && mouse_fd < 0 && timeout > 1000)
			timeout = 1000;
		if (timeout < 0)
			timeout = 0;
		if (poll(p, mouse_fd >= 0 ? 3 : 2, timeout) < 0 && errno != EINTR)
			break;
		if (sv_vnc_pump(v, 0) < 0) {
			rc = 3;
			break;
		}
		struct sv_image im;
		struct sv_rect ch = sv_vnc_take_changes(v, &resized);

		sv_vnc_image(v, &im);
		if (banner_until && now() >= banner_until) {
			banner_until = 0;
			sv_console_banner(&c, NULL);
			ch = (struct sv_rect){ 0, 0, im.w, im.h };
			resized = true;
		}
		if (ch.w && ch.h) {
			unsigned sec = (unsigned)(now() - st.start);

			sv_console_draw(&c, &im, &ch, resized);
			st.frames++;
			if (sec < STATS_SECONDS)
				st.per_second[sec]++;
			if (st.key_at && st.lat_n < 256) {
				st.lat_ms[st.lat_n++] = (now() - st.key_at) * 1000;
				st.key_at = 0;
			}
		}
		if (mouse_fd >= 0 && (p[2].revents & POLLIN))
			mouse_to_guest(v, &mouse, mouse_fd, &st);
		if (!(p[0].revents & POLLIN))
			continue;
		n = read(c.fd, buf, sizeof(buf));
		for (ssize_t i = 0; i < n; i++) {
			unsigned code;
			bool down;
			enum sv_kbd_event e = sv_kbd_feed(&kbd, buf[i], &code, &down);

			if (e == SV_KBD_ESCAPE) {
				stop_signal = -1;
				break;
			}
			if (e != SV_KBD_KEY)
				continue;
			sv_vnc_key(v, sv_key_qnum(code), sv_key_keysym(code), down);
			if (down) {
				/* The person has read it: the guest's top line back. */
				if (banner_until)
					banner_until = now();
				st.keys++;
				if (!st.key_at)
					st.key_at = now();
			}
		}
	}
	/* Nothing stays held down in the guest (the Ctrl of Ctrl-], a
	 * mouse button). */
	for (int k = sv_kbd_next_down(&kbd, -1); k >= 0; k = sv_kbd_next_down(&kbd, k))
		sv_vnc_key(v, sv_key_qnum((unsigned)k), sv_key_keysym((unsigned)k), false);
	if (mouse_fd >= 0) {
		if (mouse.buttons)
			sv_vnc_pointer(v, (unsigned)mouse.x, (unsigned)mouse.y, 0);
		close(mouse_fd);
	}
	live = NULL;
	sv_console_close(&c);
	if (stats_path)
		write_stats(&st, stats_path);
	if (rc == 3)
		fprintf(stderr, "streamcd: %s%sscreen went away: the guest stopped\n",
			name ? name : "the guest's", name ? "'s " : " ");
	return rc;
}

int main(int argc, char **argv)
{
	enum {
		O_NAME = 256,
		O_TTY,
		O_TEXTCON,
		O_STATS,
		O_SHOT,
		O_TEXT,
		O_WAIT,
		O_TYPE,
		O_TIMEOUT,
		O_FONT,
		O_RESET,
		O_PSF,
		O_MOUSE
	};
	static const struct option opts[] = {
		{ "name", required_argument, NULL, O_NAME },
		{ "tty", required_argument, NULL, O_TTY },
		{ "text-console", no_argument, NULL, O_TEXTCON },
		{ "stats", required_argument, NULL, O_STATS },
		{ "screenshot", required_argument, NULL, O_SHOT },
		{ "text", no_argument, NULL, O_TEXT },
		{ "wait", required_argument, NULL, O_WAIT },
		{ "type", required_argument, NULL, O_TYPE },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "font", required_argument, NULL, O_PSF },
		{ "reset", required_argument, NULL, O_RESET },
		{ "mouse", required_argument, NULL, O_MOUSE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *tty = NULL, *stats = NULL, *shot = NULL, *wait_re = NULL;
	const char *type = NULL, *psf = NULL, *mouse = "/dev/input/mice";
	bool text_only = false, text = false;
	double timeout = 30;
	char err[512];
	int o, rc;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case O_NAME:
			name = optarg;
			break;
		case O_TTY:
			tty = optarg;
			break;
		case O_TEXTCON:
			text_only = true;
			break;
		case O_STATS:
			stats = optarg;
			break;
		case O_SHOT:
			shot = optarg;
			break;
		case O_TEXT:
			text = true;
			break;
		case O_WAIT:
			wait_re = optarg;
			break;
		case O_TYPE:
			type = optarg;
			break;
		case O_PSF:
			psf = optarg;
			break;
		case O_MOUSE:
			mouse = optarg;
			break;
		case O_TIMEOUT: {
			char *end;

			timeout = strtod(optarg, &end);
			if (*end || timeout <= 0) {
				fprintf(stderr, "streamcd-view: --timeout %s: give seconds\n",
					optarg);
				return 2;
			}
			break;
		}
		case O_RESET:
			rc = sv_console_reset(optarg);
			if (rc < 0)
				fprintf(stderr, "streamcd-view: --reset %s: %s\n", optarg,
					strerror(-rc));
			return rc < 0 ? 1 : 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	int why;
	struct sv_vnc *v = sv_vnc_open(argv[optind], &why, err, sizeof(err));

	if (!v) {
		fprintf(stderr, "streamcd-view: %s\n", err);
		return why == -ENOENT ? 3 : why == -EINVAL ? 2 : 1;
	}
	rc = first_screen(v, timeout, shot || text || wait_re);
	if (rc) {
		fprintf(stderr, "streamcd-view: %s\n",
			rc == 3 ? "the guest's screen went away" : "no whole screen in time");
		sv_vnc_close(v);
		return rc;
	}
	if (type) {
		rc = type_text(v, type);
	} else if (shot) {
		rc = screenshot(v, shot);
	} else if (text || wait_re) {
		static char buf[64 * 1024];
		struct sv_font font;
		struct sv_matcher *m = NULL;
		regex_t re;
		char where[64];

		rc = load_font(psf, &font, where, sizeof(where));
		if (rc < 0 || !(m = sv_matcher_new(&font))) {
			fprintf(stderr, "streamcd-view: no font to read text with (%s: %s)\n",
				where, strerror(rc < 0 ? -rc : ENOMEM));
			sv_vnc_close(v);
			return 1;
		}
		if (wait_re && regcomp(&re, wait_re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE)) {
			fprintf(stderr,
				"streamcd-view: --wait %s: not an extended regular expression\n",
				wait_re);
			sv_matcher_free(m);
			sv_vnc_close(v);
			return 2;
		}
		if (text) {
			rc = screen_text(v, m, font.height, buf, sizeof(buf));
			if (rc == 0)
				fputs(buf, stdout);
			else if (rc == 2)
				fprintf(stderr,
					"streamcd-view: the screen is in a graphics mode: no "
					"text to read\n");
		} else {
			double end = now() + timeout;

			rc = 124;
			while (!stop_signal && now() < end) {
				if (screen_text(v, m, font.height, buf, sizeof(buf)) == 0 &&
				    regexec(&re, buf, 0, NULL, 0) == 0) {
					rc = 0;
					break;
				}
				if (sv_vnc_pump(v, 500) < 0) {
					rc = 3;
					break;
				}
			}
			regfree(&re);
		}
		sv_matcher_free(m);
	} else {
		rc = view(v, tty, name, text_only, mouse, stats);
	}
	sv_vnc_close(v);
	return rc;
}
