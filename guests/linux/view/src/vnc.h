/* A guest's screen, keyboard and mouse through QEMU's VNC server (on a
 * unix socket in dom0, or HOST:PORT), with Debian's libvncclient. */
#ifndef SV_VNC_H
#define SV_VNC_H

#include "image.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sv_vnc;

/* Connects to ADDR (a unix socket's path, or HOST:PORT) and asks for the
 * whole screen. NULL with the reason in ERR when it cannot, and in *WHY
 * -ENOENT (nothing listens there: the guest is gone), -EINVAL (ADDR is no
 * address) or -EIO. */
struct sv_vnc *sv_vnc_open(const char *addr, int *why, char *err, size_t errlen);
void sv_vnc_close(struct sv_vnc *v);

/* The socket, for poll(). */
int sv_vnc_fd(const struct sv_vnc *v);

/* Handles what the server sent within TIMEOUT_MS: 1 something came, 0
 * nothing did, -1 the connection is gone (the guest stopped). */
int sv_vnc_pump(struct sv_vnc *v, int timeout_ms);

/* The screen as it is now; its pixels stay valid until the next pump. */
void sv_vnc_image(const struct sv_vnc *v, struct sv_image *im);

/* What changed since the last call, and whether the size did (then the
 * whole screen is new). */
struct sv_rect sv_vnc_take_changes(struct sv_vnc *v, bool *resized);

/* True once a whole screen has arrived. */
bool sv_vnc_complete(const struct sv_vnc *v);

/* A key by its scancode (QEMU's numbering) and keysym: the scancode when
 * the server takes QEMU's extended key events, else the keysym. */
int sv_vnc_key(struct sv_vnc *v, unsigned qnum, uint32_t keysym, bool down);

/* The pointer at X, Y of the guest's screen, BUTTONS a mask (1 left,
 * 2 middle, 4 right, 8 and 16 the wheel). */
int sv_vnc_pointer(struct sv_vnc *v, unsigned x, unsigned y, unsigned buttons);

#endif
