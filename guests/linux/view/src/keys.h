/* The PC's keyboard, read from the console in medium raw mode (Linux key
 * codes), as the keys of a guest's emulated keyboard: QEMU's extended key
 * events name a key by its PC (XT) scancode, so that every key and every
 * layout reaches the guest as the guest's own keyboard driver expects. */
#ifndef SV_KEYS_H
#define SV_KEYS_H

#include <stdbool.h>
#include <stdint.h>

/* Linux key codes the viewer itself knows by name. */
#define SV_KEY_LEFTCTRL	  29
#define SV_KEY_RIGHTCTRL  97
#define SV_KEY_RIGHTBRACE 27

/* The XT scancode of Linux key CODE in QEMU's numbering (0x80 + the code
 * after an 0xE0 prefix), 0 for a key a PC keyboard does not have. */
unsigned sv_key_qnum(unsigned code);

/* An X keysym for CODE on a US layout, unshifted: what a VNC server that
 * takes no scancodes gets. 0 when there is none. */
uint32_t sv_key_keysym(unsigned code);

/* The key that types C on a US layout: 0 and *CODE, *SHIFT; -1 for a
 * character no key types. */
int sv_key_for_char(char c, unsigned *code, bool *shift);

/* Medium raw bytes to key events, and the one combination that leaves. */
struct sv_kbd {
	unsigned char seq[3];
	unsigned nseq;
	/* Keys down as the guest sees them (its presses less its releases). */
	uint8_t down[96];
};

enum sv_kbd_event {
	SV_KBD_NONE,   /* more bytes needed */
	SV_KBD_KEY,    /* *code went down (*down) or up */
	SV_KBD_ESCAPE, /* Ctrl-]: back to the menu, not for the guest */
};

/* Feed one byte; on SV_KBD_KEY, *CODE and *DOWN say which key did what. */
enum sv_kbd_event sv_kbd_feed(struct sv_kbd *k, unsigned char byte, unsigned *code, bool *down);

/* The keys the guest holds down now, one at a time (for releasing them
 * all when the viewer leaves): the next after AFTER (start at -1), or -1. */
int sv_kbd_next_down(const struct sv_kbd *k, int after);

#endif
