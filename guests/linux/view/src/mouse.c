#include "mouse.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

void sv_mouse_init(struct sv_mouse *m, unsigned size, unsigned w, unsigned h)
{
	*m = (struct sv_mouse){ .size = size == 4 ? 4 : 3, .x = (int)w / 2, .y = (int)h / 2 };
}

static int clamp(int v, unsigned size)
{
	if (v < 0 || size == 0)
		return 0;
	return v >= (int)size ? (int)size - 1 : v;
}

bool sv_mouse_feed(struct sv_mouse *m, uint8_t byte, unsigned w, unsigned h, int *wheel)
{
	const uint8_t *p = m->pkt;
	int dx, dy;

	/* A first byte always has bit 3; mousedev never sets the overflow
	 * bits, so this also passes over the 0xFA acknowledgements of the
	 * commands sv_mouse_open sent. */
	if (m->n == 0 && (byte & 0xc8) != 0x08) {
		m->lost++;
		return false;
	}
	m->pkt[m->n++] = byte;
	if (m->n < m->size)
		return false;
	m->n = 0;
	/* 9-bit deltas, the sign in the first byte; PS/2's y grows upwards. */
	dx = p[1] - ((p[0] & 0x10) ? 256 : 0);
	dy = p[2] - ((p[0] & 0x20) ? 256 : 0);
	m->x = clamp(m->x + dx, w);
	m->y = clamp(m->y - dy, h);
	m->buttons = ((p[0] & 1) ? SV_BUTTON_LEFT : 0) | ((p[0] & 2) ? SV_BUTTON_RIGHT : 0) |
		     ((p[0] & 4) ? SV_BUTTON_MIDDLE : 0);
	/* IntelliMouse: the wheel's clicks as a signed byte, negative up. */
	*wheel = m->size == 4 ? (int8_t)p[3] : 0;
	return true;
}

int sv_mouse_open(const char *path, unsigned *size)
{
	/* Sample rates 200, 100, 80, then "which device are you?": a mouse
	 * with a wheel answers 3 and sends 4-byte packets from then on. */
	static const uint8_t knock[] = { 0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf2 };
	uint8_t reply[16];
	ssize_t n;
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	*size = 3;
	if (write(fd, knock, sizeof(knock)) != (ssize_t)sizeof(knock))
		return fd; /* a plain 3-byte mouse, then */
	/* mousedev answers at once: an 0xFA per command, then the id. */
	n = read(fd, reply, sizeof(reply));
	if (n > 0 && reply[n - 1] == 3)
		*size = 4;
	return fd;
}
