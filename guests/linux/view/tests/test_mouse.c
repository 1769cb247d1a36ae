/*
 * test_mouse.c - the PC's mouse as a pointer on the guest's screen
 * (mouse.c): PS/2 packets from mousedev, 9-bit deltas and y upwards, the
 * pointer kept on the screen, buttons in VNC's order, the wheel of 4-byte
 * packets, acknowledgements and stray bytes passed over; and the real
 * open of a file, which takes the knock and answers nothing.
 */
#include "../src/mouse.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

/* Feeds N bytes; the number of packets they completed, the last wheel. */
static int feed(struct sv_mouse *m, const uint8_t *b, size_t n, int *wheel)
{
	int packets = 0;

	for (size_t i = 0; i < n; i++)
		packets += sv_mouse_feed(m, b[i], 640, 480, wheel);
	return packets;
}

static void test_packets(void)
{
	struct sv_mouse m;
	int wheel = 99;

	sv_mouse_init(&m, 3, 640, 480);
	check(m.x == 320 && m.y == 240 && m.buttons == 0, "starts in the middle, nothing held");
	check(feed(&m, (const uint8_t[]){ 0x08, 10, 5 }, 3, &wheel) == 1 && m.x == 330 &&
		  m.y == 235 && wheel == 0,
	      "right 10, up 5: at %d,%d", m.x, m.y);
	/* Signs in bits 4 and 5: -20 is 0x1EC in 9 bits. */
	check(feed(&m, (const uint8_t[]){ 0x38, 0xec, 0xf6 }, 3, &wheel) == 1 && m.x == 310 &&
		  m.y == 245,
	      "left 20, down 10: at %d,%d", m.x, m.y);
	check(feed(&m, (const uint8_t[]){ 0x09, 0, 0 }, 3, &wheel) == 1 &&
		  m.buttons == SV_BUTTON_LEFT,
	      "left button");
	check(feed(&m, (const uint8_t[]){ 0x0e, 0, 0 }, 3, &wheel) == 1 &&
		  m.buttons == (SV_BUTTON_RIGHT | SV_BUTTON_MIDDLE),
	      "right and middle: VNC's 4 and 2, not PS/2's 2 and 4 (mask %u)", m.buttons);
	for (int i = 0; i < 10; i++)
		feed(&m, (const uint8_t[]){ 0x08, 127, 127 }, 3, &wheel);
	check(m.x == 639 && m.y == 0, "kept on the screen at its corner: %d,%d", m.x, m.y);
	for (int i = 0; i < 10; i++)
		feed(&m, (const uint8_t[]){ 0x38, 0x81, 0x81 }, 3, &wheel);
	check(m.x == 0 && m.y == 479, "and at the other: %d,%d", m.x, m.y);
	/* An acknowledgement and a byte without bit 3 start no packet. */
	check(feed(&m, (const uint8_t[]){ 0xfa, 0x03, 0x08, 1, 0 }, 5, &wheel) == 1 && m.x == 1 &&
		  m.lost == 2,
	      "0xFA and a stray byte passed over (%lu lost), then a packet", m.lost);
}

static void test_wheel(void)
{
	struct sv_mouse m;
	int wheel = 0;

	sv_mouse_init(&m, 4, 100, 100);
	check(feed(&m, (const uint8_t[]){ 0x08, 0, 0 }, 3, &wheel) == 0,
	      "a 4-byte packet is not done after 3");
	check(feed(&m, (const uint8_t[]){ 0xff }, 1, &wheel) == 1 && wheel == -1,
	      "wheel up one click: %d", wheel);
	check(feed(&m, (const uint8_t[]){ 0x08, 0, 0, 2 }, 4, &wheel) == 1 && wheel == 2,
	      "wheel down two: %d", wheel);
	sv_mouse_init(&m, 7, 100, 100);
	check(m.size == 3, "a size other than 4 is 3");
}

static void test_open(void)
{
	char path[] = "/tmp/test_mouse.XXXXXX";
	unsigned size = 0;
	int fd;

	check(sv_mouse_open("/nonexistent/mice", &size) < 0, "no device: an error");
	fd = mkstemp(path);
	check(fd >= 0, "mkstemp");
	if (fd < 0)
		return;
	close(fd);
	/* A file takes the knock and answers nothing. */
	fd = sv_mouse_open(path, &size);
	check(fd >= 0 && size == 3, "a device that does not answer the knock: 3-byte packets");
	if (fd >= 0)
		close(fd);
	unlink(path);
}

int main(void)
{
	test_packets();
	test_wheel();
	test_open();
	printf("test_mouse: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
