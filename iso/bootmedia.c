/*
 * bootmedia.c32: runs the rest of its line as a boot command (as if typed
 * at the boot prompt), with every "streamcd.media=detect" in it replaced by
 * the medium ISOLINUX was started from: "streamcd.media=cd" (El Torito) or
 * "streamcd.media=disk" (the isohybrid MBR of a USB stick or a disk).
 *
 * Why: the initrd keeps its block cache on the stick it was booted from,
 * and a USB disk shows up seconds after Linux starts, later still on a
 * slow or busy machine. Only the boot loader knows whether there is a disk
 * to wait for; the kernel cannot tell a CD boot from a stick that is still
 * being probed.
 *
 * Built in iso/syslinux.stage.sh against Debian's syslinux source, as a
 * com32 module of that tree (it must match the CD's ldlinux.c32).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslinux/boot.h>
#include <syslinux/config.h>

#define TOKEN "streamcd.media=detect"

static const char *medium(void)
{
	const union syslinux_derivative_info *di = syslinux_derivative_info();

	/* cd_mode: 0 El Torito, 1 and 2 a hybrid boot through CHS or EDD
	 * (core/isolinux-c.c). Another derivative (a user's SYSLINUX stick
	 * copying our files) reads from a disk too. */
	if (di->c.filesystem == SYSLINUX_FS_ISOLINUX && di->iso.cd_mode == 0)
		return "cd";
	return "disk";
}

int main(int argc, char **argv)
{
	const char *media = medium();
	size_t len = 1;
	char *line, *p;
	int i;

	if (argc < 2) {
		printf("bootmedia.c32: no command to run: give a kernel or module and its line\n");
		return 1;
	}
	for (i = 1; i < argc; i++)
		len += strlen(argv[i]) + 1;
	/* "disk" and "cd" are no longer than "detect". */
	line = malloc(len);
	if (!line) {
		printf("bootmedia.c32: out of memory\n");
		return 1;
	}
	p = line;
	for (i = 1; i < argc; i++) {
		if (i > 1)
			*p++ = ' ';
		if (!strcmp(argv[i], TOKEN))
			p += sprintf(p, "streamcd.media=%s", media);
		else
			p += sprintf(p, "%s", argv[i]);
	}
	syslinux_run_command(line);
	/* Only a command that could not be loaded comes back here. */
	printf("bootmedia.c32: cannot boot '%s'\n", line);
	free(line);
	return 1;
}
