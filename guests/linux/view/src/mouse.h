/* The PC's mouse on a guest's screen: /dev/input/mice, where dom0's kernel
 * (mousedev) merges every mouse and touchpad into one PS/2 stream, read
 * as moves of a pointer on the guest's screen and VNC's button mask. */
#ifndef SV_MOUSE_H
#define SV_MOUSE_H

#include <stdbool.h>
#include <stdint.h>

/* VNC's pointer buttons (RFB PointerEvent). */
#define SV_BUTTON_LEFT	 1u
#define SV_BUTTON_MIDDLE 2u
#define SV_BUTTON_RIGHT	 4u
#define SV_WHEEL_UP	 8u
#define SV_WHEEL_DOWN	 16u

struct sv_mouse {
	uint8_t pkt[4];
	unsigned n;	    /* bytes of the packet so far */
	unsigned size;	    /* 3, or 4 with a wheel (IntelliMouse) */
	int x, y;	    /* the pointer on the guest's screen */
	unsigned buttons;   /* SV_BUTTON_* held */
	unsigned long lost; /* bytes dropped to find a packet's start */
};

/* A pointer in the middle of a W x H screen; SIZE as sv_mouse_open said. */
void sv_mouse_init(struct sv_mouse *m, unsigned size, unsigned w, unsigned h);

/* One byte of the stream. True when it completed a packet: then the
 * pointer has moved (kept on the W x H screen), m->buttons is what is
 * held, and *WHEEL the wheel's clicks (negative up). */
bool sv_mouse_feed(struct sv_mouse *m, uint8_t byte, unsigned w, unsigned h, int *wheel);

/* Opens PATH (e.g. /dev/input/mice) without blocking and asks for the
 * wheel (IntelliMouse's sample-rate knock); *SIZE becomes the packet size
 * it gave. The descriptor, or -errno. */
int sv_mouse_open(const char *path, unsigned *size);

#endif
