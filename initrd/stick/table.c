#include "table.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* hcloop's little-endian helpers: static inline, nothing else of it is linked. */
#include "bytes.h"

/* Offsets in the ISO 9660 primary volume descriptor, the MBR and the GPT
 * header and entries (ECMA-119, UEFI 2.10 section 5). */
#define PVD_OFFSET	32768
#define PVD_VOLID	40
#define PVD_SPACE	80
#define PVD_BLOCK	128
#define MBR_TABLE	446
#define GPT_HDR_SIZE	12
#define GPT_HDR_CRC	16
#define GPT_MY_LBA	24
#define GPT_ALT_LBA	32
#define GPT_LAST_USABLE 48
#define GPT_ENTRIES_LBA 72
#define GPT_N_ENTRIES	80
#define GPT_ENTRY_SIZE	84
#define GPT_ENTRIES_CRC 88
#define GPT_E_FIRST	32
#define GPT_E_LAST	40
#define GPT_E_NAME	56
#define GPT_NAME_CHARS	36
#define GPT_ENTRIES_MAX (4u << 20)

/* The GPT's "Linux filesystem data" type, in its on-disk byte order. */
static const uint8_t linux_fs_guid[16] = { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
					   0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 };

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* Bit by bit: the tables are a few KiB once per boot, and a lookup table
 * would be 1 KiB more in a static binary that zlib's crc32 would have to
 * be linked into. */
uint32_t stick_crc32(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t c = 0xffffffffu;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		got += (size_t)n;
	}
	return 0;
}

static int write_at(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t put = 0;

	while (put < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + put, len - put, (off_t)(off + put));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		put += (size_t)n;
	}
	return 0;
}

static uint32_t header_crc(const uint8_t *hdr)
{
	uint8_t copy[STICK_SECTOR];
	uint32_t size = hc_get32(hdr + GPT_HDR_SIZE);

	memcpy(copy, hdr, sizeof(copy));
	hc_put32(copy + GPT_HDR_CRC, 0);
	return stick_crc32(copy, size);
}

static int gpt_entry_used(const uint8_t *e)
{
	static const uint8_t zero[16];

	return memcmp(e, zero, 16) != 0;
}

static int gpt_entry_is_cache(const uint8_t *e)
{
	const char *name = STICK_CACHE_NAME;
	size_t i;

	for (i = 0; name[i]; i++)
		if (e[GPT_E_NAME + 2 * i] != (uint8_t)name[i] || e[GPT_E_NAME + 2 * i + 1])
			return 0;
	return e[GPT_E_NAME + 2 * i] == 0 && e[GPT_E_NAME + 2 * i + 1] == 0;
}

static uint32_t gpt_entry_size(const struct stick *s)
{
	return hc_get32(s->gpt_hdr + GPT_ENTRY_SIZE);
}

static uint32_t gpt_entry_count(const struct stick *s)
{
	return (uint32_t)(s->gpt_entries_len / gpt_entry_size(s));
}

/* The GPT at LBA 1, when its header and entries pass their checksums:
 * anything else is left alone, and said in WHY. */
static void read_gpt(int fd, struct stick *s, char *why, size_t whylen)
{
	uint8_t *h = s->gpt_hdr;
	uint32_t size, n, esz;
	uint64_t lba, bytes;

	if (read_at(fd, h, STICK_SECTOR, STICK_SECTOR) < 0 || memcmp(h, "EFI PART", 8))
		return;
	size = hc_get32(h + GPT_HDR_SIZE);
	n = hc_get32(h + GPT_N_ENTRIES);
	esz = hc_get32(h + GPT_ENTRY_SIZE);
	lba = hc_get64(h + GPT_ENTRIES_LBA);
	bytes = (uint64_t)n * esz;
	if (size < 92 || size > STICK_SECTOR || header_crc(h) != hc_get32(h + GPT_HDR_CRC) ||
	    hc_get64(h + GPT_MY_LBA) != 1) {
		say(why, whylen, "the GPT header is damaged: the GPT is left as it is");
		return;
	}
	if (esz < 128 || esz % 8 || n == 0 || bytes > GPT_ENTRIES_MAX || lba < 2 ||
	    lba + (bytes + STICK_SECTOR - 1) / STICK_SECTOR > s->disk_sectors) {
		say(why, whylen, "the GPT has an unusual entry array: the GPT is left as it is");
		return;
	}
	s->gpt_entries = malloc(bytes);
	if (!s->gpt_entries)
		return;
	if (read_at(fd, s->gpt_entries, bytes, lba * STICK_SECTOR) < 0 ||
	    stick_crc32(s->gpt_entries, bytes) != hc_get32(h + GPT_ENTRIES_CRC)) {
		say(why, whylen, "the GPT's entries are damaged: the GPT is left as it is");
		free(s->gpt_entries);
		s->gpt_entries = NULL;
		return;
	}
	s->gpt_entries_len = bytes;
	s->have_gpt = 1;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Where the image ends: the ISO volume, every partition but the cache (an
 * MBR Linux partition past everything else, or the GPT entry named
 * STICK_CACHE_NAME) and the GPT's backup while it is still inside. */
static void find_layout(struct stick *s)
{
	uint64_t end = s->iso_sectors;
	const uint8_t *e;
	uint32_t i;
	int again = 1;

	if (s->have_gpt) {
		uint64_t alt = hc_get64(s->gpt_hdr + GPT_ALT_LBA);

		if (alt < s->disk_sectors - 1)
			end = max64(end, alt + 1);
		for (i = 0; i < gpt_entry_count(s); i++) {
			e = s->gpt_entries + (size_t)i * gpt_entry_size(s);
			if (gpt_entry_used(e) && !gpt_entry_is_cache(e))
				end = max64(end, hc_get64(e + GPT_E_LAST) + 1);
		}
	}
	for (i = 0; i < 4; i++) {
		e = s->mbr + MBR_TABLE + 16 * i;
		if (hc_get32(e + 12) && e[4] != STICK_CACHE_TYPE)
			end = max64(end, (uint64_t)hc_get32(e + 8) + hc_get32(e + 12));
	}
	/* A Linux partition that starts inside the image is part of it. */
	while (again) {
		again = 0;
		for (i = 0; i < 4; i++) {
			e = s->mbr + MBR_TABLE + 16 * i;
			if (hc_get32(e + 12) && e[4] == STICK_CACHE_TYPE && hc_get32(e + 8) < end &&
			    (uint64_t)hc_get32(e + 8) + hc_get32(e + 12) > end) {
				end = (uint64_t)hc_get32(e + 8) + hc_get32(e + 12);
				again = 1;
			}
		}
	}
	s->image_end = end;
	for (i = 0; i < 4; i++) {
		e = s->mbr + MBR_TABLE + 16 * i;
		if (hc_get32(e + 12) && e[4] == STICK_CACHE_TYPE && hc_get32(e + 8) >= end) {
			s->have_cache = 1;
			s->cache.start = hc_get32(e + 8);
			s->cache.sectors = hc_get32(e + 12);
			s->cache.mbr_slot = (int)i + 1;
			break;
		}
	}
	for (i = 0; s->have_gpt && i < gpt_entry_count(s); i++) {
		e = s->gpt_entries + (size_t)i * gpt_entry_size(s);
		if (gpt_entry_used(e) && gpt_entry_is_cache(e) &&
		    hc_get64(e + GPT_E_FIRST) >= end &&
		    (!s->have_cache || hc_get64(e + GPT_E_FIRST) == s->cache.start)) {
			s->gpt_has_cache = 1;
			s->cache.gpt_slot = (int)i + 1;
			break;
		}
	}
}

int stick_read(int fd, uint64_t disk_bytes, struct stick *s, char *why, size_t whylen)
{
	uint8_t pvd[2048];
	uint32_t block;
	int r, i;

	memset(s, 0, sizeof(*s));
	why[0] = '\0';
	s->disk_sectors = disk_bytes / STICK_SECTOR;
	if (disk_bytes < PVD_OFFSET + sizeof(pvd)) {
		say(why, whylen, "too small to hold an ISO image (%llu bytes)",
		    (unsigned long long)disk_bytes);
		return -EINVAL;
	}
	if ((r = read_at(fd, pvd, sizeof(pvd), PVD_OFFSET)) < 0) {
		say(why, whylen, "cannot read the ISO volume descriptor: %s", strerror(-r));
		return r;
	}
	if (pvd[0] != 1 || memcmp(pvd + 1, "CD001", 5)) {
		say(why, whylen, "no ISO 9660 volume at its start: not a written ISO image");
		return -EINVAL;
	}
	block = pvd[PVD_BLOCK] | (uint32_t)pvd[PVD_BLOCK + 1] << 8;
	if (block < STICK_SECTOR || block % STICK_SECTOR) {
		say(why, whylen, "the ISO volume has %u-byte blocks", block);
		return -EINVAL;
	}
	s->iso_sectors = (uint64_t)hc_get32(pvd + PVD_SPACE) * (block / STICK_SECTOR);
	memcpy(s->volid, pvd + PVD_VOLID, 32);
	for (i = 31; i >= 0 && (s->volid[i] == ' ' || s->volid[i] == '\0'); i--)
		s->volid[i] = '\0';
	if ((r = read_at(fd, s->mbr, STICK_SECTOR, 0)) < 0) {
		say(why, whylen, "cannot read the MBR: %s", strerror(-r));
		return r;
	}
	if (s->mbr[510] != 0x55 || s->mbr[511] != 0xaa) {
		say(why, whylen, "no MBR partition table: an ISO for CDs only, not a hybrid one");
		return -EINVAL;
	}
	read_gpt(fd, s, why, whylen);
	find_layout(s);
	return 0;
}

void stick_free(struct stick *s)
{
	free(s->gpt_entries);
	s->gpt_entries = NULL;
}

int stick_plan(struct stick *s, uint64_t min_sectors, char *why, size_t whylen)
{
	uint64_t start, last, sectors;
	const uint8_t *e;
	uint32_t i;

	if (s->have_cache) {
		say(why, whylen, "there is a cache partition already");
		return -EEXIST;
	}
	s->cache.mbr_slot = 0;
	for (i = 0; i < 4 && !s->cache.mbr_slot; i++) {
		e = s->mbr + MBR_TABLE + 16 * i;
		if (!hc_get32(e + 12) && !e[4])
			s->cache.mbr_slot = (int)i + 1;
	}
	if (!s->cache.mbr_slot) {
		say(why, whylen, "the MBR has no free slot for a cache partition");
		return -EMLINK;
	}
	if (s->gpt_has_cache) {
		/* A write cut before the MBR: finish it where the GPT says. */
		e = s->gpt_entries + (size_t)(s->cache.gpt_slot - 1) * gpt_entry_size(s);
		start = hc_get64(e + GPT_E_FIRST);
		last = hc_get64(e + GPT_E_LAST);
	} else {
		start = (s->image_end + STICK_ALIGN - 1) / STICK_ALIGN * STICK_ALIGN;
		last = s->disk_sectors - 1;
		if (s->have_gpt)
			last -= 1 + (s->gpt_entries_len + STICK_SECTOR - 1) / STICK_SECTOR;
		s->cache.gpt_slot = 0;
		for (i = 0; s->have_gpt && i < gpt_entry_count(s) && !s->cache.gpt_slot; i++)
			if (!gpt_entry_used(s->gpt_entries + (size_t)i * gpt_entry_size(s)))
				s->cache.gpt_slot = (int)i + 1;
	}
	sectors = last >= start ? last - start + 1 : 0;
	/* The MBR counts in 32 bits; whole 4 KiB blocks for the filesystem. */
	if (sectors > UINT32_MAX)
		sectors = UINT32_MAX;
	sectors &= ~(uint64_t)7;
	if (start > UINT32_MAX || sectors < min_sectors || sectors == 0) {
		say(why, whylen,
		    "%llu MiB free after the image (which ends at %llu MiB of %llu MiB): a cache "
		    "needs %llu MiB",
		    (unsigned long long)(sectors >> 11), (unsigned long long)(s->image_end >> 11),
		    (unsigned long long)(s->disk_sectors >> 11),
		    (unsigned long long)(min_sectors >> 11));
		return -ENOSPC;
	}
	s->cache.start = start;
	s->cache.sectors = sectors;
	return 0;
}

/* The GPT with the cache's entry in it and its backup at the disk's end:
 * the backup first, so that until the primary is whole the old primary
 * (pointing to the old backup) stays valid. */
static int write_gpt(int fd, struct stick *s, const uint8_t unique[16], char *why, size_t whylen)
{
	uint64_t old_alt = hc_get64(s->gpt_hdr + GPT_ALT_LBA), alt = s->disk_sectors - 1;
	uint64_t ents = (s->gpt_entries_len + STICK_SECTOR - 1) / STICK_SECTOR;
	uint8_t backup[STICK_SECTOR], *e, *pad;
	const char *name = STICK_CACHE_NAME;
	uint32_t crc;
	int r;

	e = s->gpt_entries + (size_t)(s->cache.gpt_slot - 1) * gpt_entry_size(s);
	memset(e, 0, gpt_entry_size(s));
	memcpy(e, linux_fs_guid, 16);
	memcpy(e + 16, unique, 16);
	hc_put64(e + GPT_E_FIRST, s->cache.start);
	hc_put64(e + GPT_E_LAST, s->cache.start + s->cache.sectors - 1);
	for (size_t i = 0; name[i] && i < GPT_NAME_CHARS; i++)
		e[GPT_E_NAME + 2 * i] = (uint8_t)name[i];
	crc = stick_crc32(s->gpt_entries, s->gpt_entries_len);

	hc_put32(s->gpt_hdr + GPT_ENTRIES_CRC, crc);
	hc_put64(s->gpt_hdr + GPT_LAST_USABLE, alt - ents - 1);
	hc_put64(s->gpt_hdr + GPT_ALT_LBA, alt);
	memcpy(backup, s->gpt_hdr, sizeof(backup));
	hc_put64(backup + GPT_MY_LBA, alt);
	hc_put64(backup + GPT_ALT_LBA, 1);
	hc_put64(backup + GPT_ENTRIES_LBA, alt - ents);
	hc_put32(backup + GPT_HDR_CRC, header_crc(backup));
	hc_put32(s->gpt_hdr + GPT_HDR_CRC, header_crc(s->gpt_hdr));

	/* The entries array padded to whole sectors, as it is read back. */
	pad = calloc(ents, STICK_SECTOR);
	if (!pad)
		return -ENOMEM;
	memcpy(pad, s->gpt_entries, s->gpt_entries_len);
	if ((r = write_at(fd, pad, ents * STICK_SECTOR, (alt - ents) * STICK_SECTOR)) < 0 ||
	    (r = write_at(fd, backup, STICK_SECTOR, alt * STICK_SECTOR)) < 0 ||
	    (fdatasync(fd) < 0 && (r = -errno) < 0) ||
	    (r = write_at(fd, s->gpt_entries, s->gpt_entries_len,
			  hc_get64(s->gpt_hdr + GPT_ENTRIES_LBA) * STICK_SECTOR)) < 0 ||
	    (r = write_at(fd, s->gpt_hdr, STICK_SECTOR, STICK_SECTOR)) < 0 ||
	    (fdatasync(fd) < 0 && (r = -errno) < 0)) {
		free(pad);
		say(why, whylen, "cannot write the GPT: %s", strerror(-r));
		return r;
	}
	free(pad);
	/* The old backup header describes the old layout: nothing may find it. */
	if (old_alt != alt && old_alt < s->cache.start) {
		memset(backup, 0, sizeof(backup));
		if ((r = write_at(fd, backup, STICK_SECTOR, old_alt * STICK_SECTOR)) < 0) {
			say(why, whylen, "cannot clear the old GPT backup: %s", strerror(-r));
			return r;
		}
	}
	s->gpt_has_cache = 1;
	return 0;
}

int stick_write(int fd, struct stick *s, const uint8_t unique[16], char *why, size_t whylen)
{
	uint8_t *e = s->mbr + MBR_TABLE + 16 * (s->cache.mbr_slot - 1);
	static const uint8_t lba_only_chs[3] = { 0xfe, 0xff, 0xff };
	int r;

	if (!s->cache.sectors || s->cache.mbr_slot < 1 || s->cache.mbr_slot > 4) {
		say(why, whylen, "no cache partition planned");
		return -EINVAL;
	}
	if (s->have_gpt && s->cache.gpt_slot && !s->gpt_has_cache &&
	    (r = write_gpt(fd, s, unique, why, whylen)) < 0)
		return r;
	e[0] = 0;
	memcpy(e + 1, lba_only_chs, 3);
	e[4] = STICK_CACHE_TYPE;
	memcpy(e + 5, lba_only_chs, 3);
	hc_put32(e + 8, (uint32_t)s->cache.start);
	hc_put32(e + 12, (uint32_t)s->cache.sectors);
	if ((r = write_at(fd, s->mbr, STICK_SECTOR, 0)) < 0 ||
	    (fdatasync(fd) < 0 && (r = -errno))) {
		say(why, whylen, "cannot write the MBR: %s", strerror(-r));
		return r;
	}
	s->have_cache = 1;
	return 0;
}
