/*
 * test_keys.c - the PC keyboard as the guest's (keys.c): scancodes of the
 * main block, the E0 keys and F11/F12; keysyms; medium raw bytes of short
 * and long key codes; Ctrl-] leaves and is never given to the guest; a
 * release the guest never saw pressed stays here; the keys held down at
 * the end are known, to be released; characters to keys for --type.
 */
#include "../src/keys.h"

#include <string.h>

#include "check.h"

static void test_qnum(void)
{
	check(sv_key_qnum(1) == 0x01, "Esc is scancode 1");
	check(sv_key_qnum(30) == 0x1e, "A is 0x1e");
	check(sv_key_qnum(87) == 0x57 && sv_key_qnum(88) == 0x58, "F11 and F12");
	check(sv_key_qnum(103) == 0xc8, "Up is E0 48: 0xc8");
	check(sv_key_qnum(97) == 0x9d, "right Ctrl is E0 1D: 0x9d");
	check(sv_key_qnum(111) == 0xd3, "Delete is E0 53");
	check(sv_key_qnum(84) == 0 && sv_key_qnum(200) == 0, "no scancode for what a PC lacks");
	check(sv_key_keysym(30) == 'a' && sv_key_keysym(2) == '1' && sv_key_keysym(57) == ' ',
	      "keysyms of letters, digits and space");
	check(sv_key_keysym(28) == 0xff0d && sv_key_keysym(59) == 0xffbe &&
		  sv_key_keysym(103) == 0xff52 && sv_key_keysym(79) == 0xffb1,
	      "Return, F1, Up, keypad 1");
}

static enum sv_kbd_event feed(struct sv_kbd *k, const unsigned char *b, size_t n, unsigned *code,
			      bool *down)
{
	enum sv_kbd_event e = SV_KBD_NONE;

	for (size_t i = 0; i < n; i++)
		e = sv_kbd_feed(k, b[i], code, down);
	return e;
}

static void test_mediumraw(void)
{
	struct sv_kbd k;
	unsigned code = 0;
	bool down = false;
	static const unsigned char a_down[] = { 30 }, a_up[] = { 30 | 0x80 };
	/* Code 183 (KEY_F13): 0, then bits 13..7 and 6..0 with 0x80. */
	static const unsigned char f13_down[] = { 0, 0x80 | 1, 0x80 | 55 };
	static const unsigned char f13_up[] = { 0x80, 0x80 | 1, 0x80 | 55 };

	memset(&k, 0, sizeof(k));
	check(feed(&k, a_down, 1, &code, &down) == SV_KBD_KEY && code == 30 && down, "A down");
	check(feed(&k, a_up, 1, &code, &down) == SV_KBD_KEY && code == 30 && !down, "A up");
	check(sv_kbd_feed(&k, f13_down[0], &code, &down) == SV_KBD_NONE &&
		  sv_kbd_feed(&k, f13_down[1], &code, &down) == SV_KBD_NONE,
	      "a long code waits for its three bytes");
	check(sv_kbd_feed(&k, f13_down[2], &code, &down) == SV_KBD_KEY && code == 183 && down,
	      "code 183 down from three bytes");
	check(feed(&k, f13_up, 3, &code, &down) == SV_KBD_KEY && code == 183 && !down, "and up");
	/* The Enter that started the viewer comes up without a press. */
	static const unsigned char enter_up[] = { 28 | 0x80 };

	check(feed(&k, enter_up, 1, &code, &down) == SV_KBD_NONE,
	      "a release never pressed stays here");
}

static void test_escape(void)
{
	struct sv_kbd k;
	unsigned code;
	bool down;
	static const unsigned char ctrl[] = { 29 }, shift[] = { 42 }, bracket[] = { 27 },
				   bracket_up[] = { 27 | 0x80 }, rctrl[] = { 97 };

	memset(&k, 0, sizeof(k));
	check(feed(&k, bracket, 1, &code, &down) == SV_KBD_KEY, "] alone goes to the guest");
	feed(&k, bracket_up, 1, &code, &down);
	check(feed(&k, ctrl, 1, &code, &down) == SV_KBD_KEY, "Ctrl goes to the guest");
	feed(&k, shift, 1, &code, &down);
	check(feed(&k, bracket, 1, &code, &down) == SV_KBD_ESCAPE, "Ctrl-] leaves");
	check(feed(&k, bracket_up, 1, &code, &down) == SV_KBD_NONE,
	      "the ] of Ctrl-] is never the guest's");
	int first = sv_kbd_next_down(&k, -1), second = sv_kbd_next_down(&k, first);

	check(first == 29 && second == 42 && sv_kbd_next_down(&k, second) == -1,
	      "held at the end: Ctrl and Shift, to be released (%d %d)", first, second);
	memset(&k, 0, sizeof(k));
	feed(&k, rctrl, 1, &code, &down);
	check(feed(&k, bracket, 1, &code, &down) == SV_KBD_ESCAPE, "right Ctrl-] leaves too");
}

static void test_chars(void)
{
	unsigned code;
	bool shift;

	check(sv_key_for_char('a', &code, &shift) == 0 && code == 30 && !shift, "a");
	check(sv_key_for_char('A', &code, &shift) == 0 && code == 30 && shift, "A is shift a");
	check(sv_key_for_char('!', &code, &shift) == 0 && code == 2 && shift, "! is shift 1");
	check(sv_key_for_char('\n', &code, &shift) == 0 && code == 28, "newline is Enter");
	check(sv_key_for_char('|', &code, &shift) == 0 && code == 43 && shift, "| is shift \\");
	check(sv_key_for_char('\x01', &code, &shift) < 0, "no key types ^A");
}

int main(void)
{
	test_qnum();
	test_mediumraw();
	test_escape();
	test_chars();
	printf("test_keys: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
