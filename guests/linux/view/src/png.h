/* Screenshots: an image as a PNG file (8-bit RGB, no interlace). */
#ifndef SV_PNG_H
#define SV_PNG_H

#include "image.h"

#include <stdio.h>

/* IM to F as PNG: 0, or -errno (-ENOMEM, -EIO). */
int sv_png_write(FILE *f, const struct sv_image *im);

#endif
