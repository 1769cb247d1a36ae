/* The partition tables of a streamcd stick: the hybrid ISO's MBR (which
 * Linux reads: xorriso's MBR has no protective 0xEE entry, so the kernel
 * ignores the GPT) and its GPT (which GPT-only tools read), and the cache
 * partition in the free space after the image. Everything works on a file
 * descriptor with pread/pwrite, so a plain image file is as good as a
 * device: the unit tests need no block device. */
#ifndef STICK_TABLE_H
#define STICK_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define STICK_SECTOR	 512u
#define STICK_ALIGN	 2048u /* sectors: partitions start on 1 MiB */
#define STICK_CACHE_NAME "streamcd-cache"
#define STICK_CACHE_TYPE 0x83 /* MBR: Linux */

struct stick_part {
	uint64_t start; /* sectors */
	uint64_t sectors;
	int mbr_slot; /* 1..4 */
	int gpt_slot; /* 1-based, 0: not in the GPT */
};

struct stick {
	uint64_t disk_sectors;
	uint64_t iso_sectors; /* the ISO 9660 volume */
	uint64_t image_end;   /* first sector after everything of the image */
	char volid[33];	      /* the ISO 9660 volume ID, trailing blanks cut */
	uint8_t mbr[STICK_SECTOR];
	/* The GPT, when present and intact (header and entries checksums). */
	int have_gpt;
	uint8_t gpt_hdr[STICK_SECTOR];
	uint8_t *gpt_entries;
	size_t gpt_entries_len;
	/* The cache partition: found (have_cache), or planned by stick_plan. */
	int have_cache;
	struct stick_part cache;
	int gpt_has_cache; /* the GPT already lists it */
};

uint32_t stick_crc32(const void *data, size_t len);

/* Reads the image's tables from FD, whose size is DISK_BYTES. -EINVAL with
 * WHY for anything that is not a hybrid ISO (no ISO 9660 volume, no MBR
 * signature, a sector size other than 512). A damaged GPT is left out
 * (have_gpt 0) with a warning in WHY. */
int stick_read(int fd, uint64_t disk_bytes, struct stick *s, char *why, size_t whylen);
void stick_free(struct stick *s);
/* A struct stick freed when it leaves scope: declare it = { 0 }. */
#define STICK_CLEANUP __attribute__((cleanup(stick_free)))

/* Plans the cache partition after the image: -ENOSPC with WHY when less
 * than MIN_SECTORS are free, -EMLINK when the MBR has no free slot. Only
 * for a stick without one (have_cache 0); sets cache and have_cache. */
int stick_plan(struct stick *s, uint64_t min_sectors, char *why, size_t whylen);

/* Writes the planned partition: the GPT first (its backup moved to the end
 * of the disk, then the primary), the MBR last, each flushed before the
 * next, so a cut at any point leaves tables that still describe either the
 * old or the new layout. UNIQUE is the new GPT entry's partition GUID. */
int stick_write(int fd, struct stick *s, const uint8_t unique[16], char *why, size_t whylen);

#endif
