/* Code page 437, the character set of the PC's text modes and VGA fonts. */
#ifndef SV_CP437_H
#define SV_CP437_H

/* What glyph G (0..255) shows, as a Unicode code point; '?' beyond 255. */
unsigned sv_cp437_unicode(unsigned g);

/* The glyph that shows Unicode U, or -1. */
int sv_cp437_from_unicode(unsigned u);

#endif
