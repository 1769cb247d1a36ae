/*
 * vnc.c - libvncclient, wrapped. Pixels come as 32-bit 0x00RRGGBB in the
 * "raw" encoding only: the server is QEMU in the same dom0, so compressing
 * would cost CPU on both sides for bandwidth nobody lacks.
 */
#include "vnc.h"

#include <rfb/rfbclient.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct sv_vnc {
	rfbClient *cl;
	struct sv_rect changed, seen;
	bool resized, sized;
	uint32_t *fb;
};

static int tag; /* rfbClientSetClientData's key */
static char last_error[256];

/* libvncclient prints everything; the viewer keeps the last error for its
 * own message and is silent otherwise (it draws on the screen it owns). */
static void quiet(const char *fmt, ...)
{
	(void)fmt;
}

static void keep_error(const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	n = strlen(last_error);
	while (n && (last_error[n - 1] == '\n' || last_error[n - 1] == ' '))
		last_error[--n] = 0;
}

static struct sv_vnc *of(rfbClient *cl)
{
	return rfbClientGetClientData(cl, &tag);
}

static rfbBool alloc_fb(rfbClient *cl)
{
	struct sv_vnc *v = of(cl);
	size_t n = (size_t)cl->width * (size_t)cl->height;
	uint32_t *fb = calloc(n ? n : 1, sizeof(uint32_t));

	if (!fb)
		return FALSE;
	free(v->fb);
	v->fb = fb;
	cl->frameBuffer = (uint8_t *)fb;
	v->resized = v->sized = true;
	v->changed = (struct sv_rect){ 0, 0, 0, 0 };
	v->seen = (struct sv_rect){ 0, 0, 0, 0 };
	return TRUE;
}

static void got_update(rfbClient *cl, int x, int y, int w, int h)
{
	struct sv_vnc *v = of(cl);
	struct sv_rect r = { (unsigned)x, (unsigned)y, (unsigned)w, (unsigned)h };

	sv_rect_union(&v->changed, &r);
	sv_rect_union(&v->seen, &r);
}

/*
 * A new size comes as an update of the whole screen that carries no
 * pixels (QEMU sends one first of all): what it "covered" is not seen, and
 * the whole screen is asked for again, so that a still screen arrives too.
 */
static void update_done(rfbClient *cl)
{
	struct sv_vnc *v = of(cl);

	if (!v->sized)
		return;
	v->sized = false;
	v->seen = (struct sv_rect){ 0, 0, 0, 0 };
	SendFramebufferUpdateRequest(cl, 0, 0, cl->width, cl->height, FALSE);
}

/*
 * Our own SetEncodings, replacing libvncclient's: raw pixels, DesktopSize
 * and QEMU's extended key events. libvncclient also offers the extended
 * DesktopSize (-308), and QEMU then announces a new size in that form,
 * which libvncclient 0.9.14 does not follow (measured: the first mode
 * change, 640x480 to 720x400, ends the connection with "Rect too large").
 */
static int set_encodings(rfbClient *cl)
{
	static const int32_t enc[] = { rfbEncodingRaw, rfbEncodingNewFBSize,
				       rfbEncodingQemuExtendedKeyEvent };
	uint8_t msg[4 + 4 * sizeof(enc) / sizeof(enc[0])];

	msg[0] = rfbSetEncodings;
	msg[1] = 0;
	msg[2] = 0;
	msg[3] = sizeof(enc) / sizeof(enc[0]);
	for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
		uint32_t e = (uint32_t)enc[i];

		msg[4 + 4 * i] = (uint8_t)(e >> 24);
		msg[5 + 4 * i] = (uint8_t)(e >> 16);
		msg[6 + 4 * i] = (uint8_t)(e >> 8);
		msg[7 + 4 * i] = (uint8_t)e;
	}
	return WriteToRFBServer(cl, (const char *)msg, sizeof(msg)) ? 0 : -1;
}

struct sv_vnc *sv_vnc_open(const char *addr, int *why, char *err, size_t errlen)
{
	struct sv_vnc *v = calloc(1, sizeof(*v));
	struct stat st;
	char *argv[] = { (char *)"streamcd-view", NULL };
	int argc = 1, unix_socket;

	*why = -EIO;
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* STREAMCD_VIEW_DEBUG=1: libvncclient's own account, on stderr. */
	if (!getenv("STREAMCD_VIEW_DEBUG")) {
		rfbClientLog = quiet;
		rfbClientErr = keep_error;
	}
	last_error[0] = 0;
	v->cl = rfbGetClient(8, 3, 4);
	if (!v->cl) {
		free(v);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rfbClientSetClientData(v->cl, &tag, v);
	v->cl->format.redShift = 16;
	v->cl->format.greenShift = 8;
	v->cl->format.blueShift = 0;
	v->cl->canHandleNewFBSize = TRUE;
	v->cl->MallocFrameBuffer = alloc_fb;
	v->cl->GotFrameBufferUpdate = got_update;
	v->cl->FinishedFrameBufferUpdate = update_done;
	v->cl->appData.encodingsString = "raw";
	v->cl->connectTimeout = 10;
	free(v->cl->serverHost); /* rfbGetClient's empty default */
	v->cl->serverHost = NULL;
	if (stat(addr, &st) == 0 && S_ISSOCK(st.st_mode)) {
		/* libvncclient takes a host that is a socket's path as one. */
		v->cl->serverHost = strdup(addr);
		v->cl->serverPort = 0;
	} else {
		const char *colon = strrchr(addr, ':');
		char *end;
		long port = colon ? strtol(colon + 1, &end, 10) : -1;

		if (!colon || colon == addr || *end || port <= 0 || port > 65535) {
			if (strchr(addr, '/')) {
				*why = -ENOENT;
				snprintf(err, errlen, "%s: no such socket (is the guest running?)",
					 addr);
			} else {
				*why = -EINVAL;
				snprintf(err, errlen, "%s: neither a socket nor HOST:PORT", addr);
			}
			rfbClientCleanup(v->cl);
			free(v);
			return NULL;
		}
		v->cl->serverHost = strndup(addr, (size_t)(colon - addr));
		v->cl->serverPort = (int)port;
	}
	/* rfbInitClient frees the client when it fails. */
	unix_socket = v->cl->serverPort == 0;
	if (!rfbInitClient(v->cl, &argc, argv)) {
		/* A socket's file without its server: the guest has stopped.
		 * (The client is freed by now.) */
		if (unix_socket || errno == ECONNREFUSED)
			*why = -ENOENT;
		snprintf(err, errlen, "no VNC server at %s%s%s", addr, last_error[0] ? ": " : "",
			 last_error);
		free(v->fb);
		free(v);
		return NULL;
	}
	if (set_encodings(v->cl) < 0) {
		snprintf(err, errlen, "the VNC server at %s closed the connection", addr);
		sv_vnc_close(v);
		return NULL;
	}
	return v;
}

void sv_vnc_close(struct sv_vnc *v)
{
	if (!v)
		return;
	rfbClientCleanup(v->cl);
	free(v->fb);
	free(v);
}

int sv_vnc_fd(const struct sv_vnc *v)
{
	return v->cl->sock;
}

int sv_vnc_pump(struct sv_vnc *v, int timeout_ms)
{
	/* What libvncclient read ahead into its buffer poll() cannot see. */
	int n = v->cl->buffered
		    ? 1
		    : WaitForMessage(v->cl, timeout_ms > 0 ? (unsigned)timeout_ms * 1000u : 0);
	int got = 0;

	while (n > 0) {
		if (!HandleRFBServerMessage(v->cl))
			return -1;
		got = 1;
		/* What is already here, without waiting. */
		n = v->cl->buffered ? 1 : WaitForMessage(v->cl, 0);
	}
	return n < 0 ? -1 : got;
}

void sv_vnc_image(const struct sv_vnc *v, struct sv_image *im)
{
	im->px = v->fb;
	im->w = (unsigned)v->cl->width;
	im->h = (unsigned)v->cl->height;
	im->stride = (size_t)v->cl->width;
}

struct sv_rect sv_vnc_take_changes(struct sv_vnc *v, bool *resized)
{
	struct sv_rect r = v->changed;

	*resized = v->resized;
	if (v->resized)
		r = (struct sv_rect){ 0, 0, (unsigned)v->cl->width, (unsigned)v->cl->height };
	v->changed = (struct sv_rect){ 0, 0, 0, 0 };
	v->resized = false;
	return r;
}

bool sv_vnc_complete(const struct sv_vnc *v)
{
	return v->fb && !v->sized && v->seen.x == 0 && v->seen.y == 0 &&
	       v->seen.w >= (unsigned)v->cl->width && v->seen.h >= (unsigned)v->cl->height;
}

int sv_vnc_key(struct sv_vnc *v, unsigned qnum, uint32_t keysym, bool down)
{
	if (qnum && SendExtendedKeyEvent(v->cl, keysym, qnum, down))
		return 0;
	if (keysym && SendKeyEvent(v->cl, keysym, down))
		return 0;
	return -EIO;
}

int sv_vnc_pointer(struct sv_vnc *v, unsigned x, unsigned y, unsigned buttons)
{
	return SendPointerEvent(v->cl, (int)x, (int)y, (int)buttons) ? 0 : -EIO;
}
