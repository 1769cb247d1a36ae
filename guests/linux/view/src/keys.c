/*
 * keys.c - key codes to the guest's keyboard. Linux numbers the keys of a
 * PC keyboard by their set 1 scancodes (KEY_ESC 1 .. KEY_F12 88), so the
 * main block maps one to one; the keys behind an 0xE0 prefix (arrows, the
 * right Ctrl and Alt, the Windows keys) have codes of their own from 96 up.
 */
#include "keys.h"

#include <stddef.h>
#include <string.h>

struct extended {
	uint16_t code, qnum;
};

/* Linux code -> 0x80 | the scancode after 0xE0. */
static const struct extended extended[] = {
	{ 96, 0x9c },  /* keypad Enter */
	{ 97, 0x9d },  /* right Ctrl */
	{ 98, 0xb5 },  /* keypad / */
	{ 99, 0xb7 },  /* SysRq, Print Screen */
	{ 100, 0xb8 }, /* right Alt, AltGr */
	{ 102, 0xc7 }, /* Home */
	{ 103, 0xc8 }, /* Up */
	{ 104, 0xc9 }, /* Page Up */
	{ 105, 0xcb }, /* Left */
	{ 106, 0xcd }, /* Right */
	{ 107, 0xcf }, /* End */
	{ 108, 0xd0 }, /* Down */
	{ 109, 0xd1 }, /* Page Down */
	{ 110, 0xd2 }, /* Insert */
	{ 111, 0xd3 }, /* Delete */
	{ 119, 0xc6 }, /* Pause (its make code, as QEMU numbers it) */
	{ 125, 0xdb }, /* left Windows */
	{ 126, 0xdc }, /* right Windows */
	{ 127, 0xdd }, /* Menu */
};

unsigned sv_key_qnum(unsigned code)
{
	/* 84 is unused and 85 a key no PC keyboard has; 86 is the ISO key
	 * left of Z, 87 and 88 are F11 and F12. */
	if (code >= 1 && code <= 83)
		return code;
	if (code >= 86 && code <= 88)
		return code;
	for (size_t i = 0; i < sizeof(extended) / sizeof(extended[0]); i++)
		if (extended[i].code == code)
			return extended[i].qnum;
	return 0;
}

/* US layout, unshifted, codes 1..58: the main block as printed. */
static const char main_block[] = "\0\x1b"
				 "1234567890-=\b\t"
				 "qwertyuiop[]\r\0"
				 "asdfghjkl;'`\0\\"
				 "zxcvbnm,./\0*\0 ";

uint32_t sv_key_keysym(unsigned code)
{
	static const uint32_t special[][2] = {
		{ 1, 0xff1b },	 { 14, 0xff08 },  { 15, 0xff09 },  { 28, 0xff0d },  { 29, 0xffe3 },
		{ 42, 0xffe1 },	 { 54, 0xffe2 },  { 55, 0xffaa },  { 56, 0xffe9 },  { 58, 0xffe5 },
		{ 69, 0xff7f },	 { 70, 0xff14 },  { 87, 0xffc8 },  { 88, 0xffc9 },  { 96, 0xff8d },
		{ 97, 0xffe4 },	 { 98, 0xffaf },  { 99, 0xff61 },  { 100, 0xffea }, { 102, 0xff50 },
		{ 103, 0xff52 }, { 104, 0xff55 }, { 105, 0xff51 }, { 106, 0xff53 }, { 107, 0xff57 },
		{ 108, 0xff54 }, { 109, 0xff56 }, { 110, 0xff63 }, { 111, 0xffff }, { 119, 0xff13 },
		{ 125, 0xffeb }, { 126, 0xffec }, { 127, 0xff67 },
	};

	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (special[i][0] == code)
			return special[i][1];
	if (code >= 59 && code <= 68) /* F1..F10 */
		return 0xffbe + (code - 59);
	if (code >= 71 && code <= 83) { /* the keypad: 789-456+1230. */
		static const char pad[] = "789-456+1230.";

		return pad[code - 71] == '-'   ? 0xffad
		       : pad[code - 71] == '+' ? 0xffab
		       : pad[code - 71] == '.' ? 0xffae
					       : 0xffb0 + (uint32_t)(pad[code - 71] - '0');
	}
	if (code < sizeof(main_block) - 1 && main_block[code])
		return (unsigned char)main_block[code];
	return 0;
}

int sv_key_for_char(char c, unsigned *code, bool *shift)
{
	static const char shifted_block[] = "\0\0"
					    "!@#$%^&*()_+\0\0"
					    "QWERTYUIOP{}\0\0"
					    "ASDFGHJKL:\"~\0|"
					    "ZXCVBNM<>?";

	if (c == '\n')
		c = '\r';
	for (unsigned k = 1; k < sizeof(main_block) - 1; k++) {
		if (main_block[k] == c) {
			*code = k;
			*shift = false;
			return 0;
		}
		if (k < sizeof(shifted_block) - 1 && shifted_block[k] && shifted_block[k] == c) {
			*code = k;
			*shift = true;
			return 0;
		}
	}
	return -1;
}

static bool is_down(const struct sv_kbd *k, unsigned code)
{
	return code < 8 * sizeof(k->down) && (k->down[code / 8] >> (code % 8)) & 1;
}

static void set_down(struct sv_kbd *k, unsigned code, bool down)
{
	if (code >= 8 * sizeof(k->down))
		return;
	if (down)
		k->down[code / 8] |= (uint8_t)(1u << (code % 8));
	else
		k->down[code / 8] &= (uint8_t) ~(1u << (code % 8));
}

/*
 * Medium raw: a code under 128 is one byte, with 0x80 set on release; a
 * larger one is 0 (0x80 on release), then bits 13..7 and 6..0 of the code,
 * each with 0x80 set.
 */
enum sv_kbd_event sv_kbd_feed(struct sv_kbd *k, unsigned char byte, unsigned *code, bool *down)
{
	if (k->nseq == 0 && (byte & 0x7f) != 0) {
		*code = byte & 0x7f;
		*down = !(byte & 0x80);
	} else {
		k->seq[k->nseq++] = byte;
		if (k->nseq < 3)
			return SV_KBD_NONE;
		k->nseq = 0;
		*code = (unsigned)(k->seq[1] & 0x7f) << 7 | (k->seq[2] & 0x7f);
		*down = !(k->seq[0] & 0x80);
	}
	if (*down && *code == SV_KEY_RIGHTBRACE &&
	    (is_down(k, SV_KEY_LEFTCTRL) || is_down(k, SV_KEY_RIGHTCTRL)))
		return SV_KBD_ESCAPE;
	/* A release the guest never saw pressed (the Enter that started the
	 * viewer, the ] of an escape) stays here. */
	if (!*down && !is_down(k, *code))
		return SV_KBD_NONE;
	set_down(k, *code, *down);
	return SV_KBD_KEY;
}

int sv_kbd_next_down(const struct sv_kbd *k, int after)
{
	for (unsigned c = (unsigned)(after + 1); c < 8 * sizeof(k->down); c++)
		if (is_down(k, c))
			return (int)c;
	return -1;
}
