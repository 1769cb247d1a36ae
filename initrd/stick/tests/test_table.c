/*
 * test_table.c - unit test for the stick's partition tables (table.c), on
 * images made here in memory files: an ISO volume with an MBR only, and one
 * with a GPT too (as xorriso's -isohybrid-gpt-basdat writes it: no 0xEE
 * entry, the backup GPT at the image's end). The cache partition is added
 * after the image and found again; the GPT stays valid with its backup moved
 * to the disk's end; no room, a full MBR, a damaged GPT, something that is
 * not an ISO, and a write cut between the GPT and the MBR.
 */
#include "table.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bytes.h"
#include "../../../cloop/tests/check.h"

#define MIB	    (1024 * 1024)
#define ISO_SECTORS 6356u /* as in a small xorriso image */
#define ESP_SECTORS 1024u
#define N_ENTRIES   248u /* xorriso's count: 62 sectors */

static const uint8_t guid[16] = { 1, 2, 3, 4, 5, 6, 7, 0x48, 0x89, 10, 11, 12, 13, 14, 15, 16 };

static void pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len) {
		perror("pwrite");
		exit(1);
	}
}

static void pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	if (pread(fd, buf, len, (off_t)off) != (ssize_t)len) {
		perror("pread");
		exit(1);
	}
}

static void mbr_entry(uint8_t *mbr, int slot, uint8_t type, uint32_t start, uint32_t count)
{
	uint8_t *e = mbr + 446 + 16 * (slot - 1);

	e[4] = type;
	hc_put32(e + 8, start);
	hc_put32(e + 12, count);
}

static void gpt_header_crc(uint8_t *h)
{
	hc_put32(h + 16, 0);
	hc_put32(h + 16, stick_crc32(h, 92));
}

/* A GPT describing the ISO and the ESP, its backup at the image's end. */
static void write_gpt(int fd, uint64_t image_sectors)
{
	uint8_t h[512] = { 0 }, *ents = calloc(N_ENTRIES, 128);
	uint64_t esec = N_ENTRIES * 128 / 512, alt = image_sectors - 1;

	memcpy(ents, guid, 16);
	hc_put64(ents + 32, 0);
	hc_put64(ents + 40, ISO_SECTORS - 1);
	memcpy(ents + 128, guid, 16);
	hc_put64(ents + 128 + 32, ISO_SECTORS);
	hc_put64(ents + 128 + 40, ISO_SECTORS + ESP_SECTORS - 1);
	memcpy(h, "EFI PART", 8);
	hc_put32(h + 8, 0x10000);
	hc_put32(h + 12, 92);
	hc_put64(h + 24, 1);
	hc_put64(h + 32, alt);
	hc_put64(h + 40, 64);
	hc_put64(h + 48, alt - esec - 1);
	hc_put64(h + 72, 2);
	hc_put32(h + 80, N_ENTRIES);
	hc_put32(h + 84, 128);
	hc_put32(h + 88, stick_crc32(ents, N_ENTRIES * 128));
	gpt_header_crc(h);
	pwrite_all(fd, h, 512, 512);
	pwrite_all(fd, ents, N_ENTRIES * 128, 2 * 512);
	hc_put64(h + 24, alt);
	hc_put64(h + 32, 1);
	hc_put64(h + 72, alt - esec);
	gpt_header_crc(h);
	pwrite_all(fd, ents, N_ENTRIES * 128, (alt - esec) * 512);
	pwrite_all(fd, h, 512, alt * 512);
	free(ents);
}

/* An image of DISK_MIB MiB holding a hybrid ISO; returns its fd. */
static int make_disk(uint64_t disk_mib, int gpt, uint64_t *image_sectors)
{
	uint8_t pvd[2048] = { 0 }, mbr[512] = { 0 };
	int fd = memfd_create("stick", 0);
	uint64_t img = ISO_SECTORS + ESP_SECTORS + (gpt ? 63 : 0);

	if (fd < 0 || ftruncate(fd, (off_t)(disk_mib * MIB)) < 0) {
		perror("memfd");
		exit(1);
	}
	pvd[0] = 1;
	memcpy(pvd + 1, "CD001", 5);
	memset(pvd + 40, ' ', 32);
	memcpy(pvd + 40, "STREAMCD", 8);
	hc_put32(pvd + 80, ISO_SECTORS / 4);
	pvd[128] = 0x00;
	pvd[129] = 0x08;
	pwrite_all(fd, pvd, sizeof(pvd), 32768);
	mbr_entry(mbr, 1, 0x00, 0, ISO_SECTORS);
	mbr_entry(mbr, 2, 0xef, ISO_SECTORS, ESP_SECTORS);
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	pwrite_all(fd, mbr, sizeof(mbr), 0);
	if (gpt)
		write_gpt(fd, img);
	*image_sectors = img;
	return fd;
}

static int read_stick(int fd, struct stick *s, char *why)
{
	off_t size = lseek(fd, 0, SEEK_END);

	return stick_read(fd, (uint64_t)size, s, why, 256);
}

/* Header and entries of the GPT whose header is at LBA: valid, and the
 * entries the same as the primary's. */
static int gpt_valid_at(int fd, uint64_t lba, uint64_t want_alt, const uint8_t *want_entries)
{
	uint8_t h[512], copy[512], ents[N_ENTRIES * 128];
	uint32_t crc;

	pread_all(fd, h, 512, lba * 512);
	memcpy(copy, h, 512);
	crc = hc_get32(h + 16);
	gpt_header_crc(copy);
	if (memcmp(h, "EFI PART", 8) || hc_get32(copy + 16) != crc || hc_get64(h + 24) != lba ||
	    hc_get64(h + 32) != want_alt)
		return 0;
	pread_all(fd, ents, sizeof(ents), hc_get64(h + 72) * 512);
	if (stick_crc32(ents, sizeof(ents)) != hc_get32(h + 88))
		return 0;
	return !want_entries || !memcmp(ents, want_entries, sizeof(ents));
}

static void test_crc(void)
{
	check(stick_crc32("123456789", 9) == 0xcbf43926u, "CRC-32 of the check string");
	check(stick_crc32("", 0) == 0, "CRC-32 of nothing");
}

static void test_mbr_only(void)
{
	struct stick s;
	char why[256];
	uint64_t img;
	int fd = make_disk(256, 0, &img);

	check(read_stick(fd, &s, why) == 0, "MBR-only: read: %s", why);
	check(!s.have_gpt && !s.have_cache, "MBR-only: no GPT, no cache yet");
	check(!strcmp(s.volid, "STREAMCD"), "volume ID '%s'", s.volid);
	check(s.image_end == img, "image ends at %llu (want %llu)", (unsigned long long)s.image_end,
	      (unsigned long long)img);
	check(stick_plan(&s, 64 << 11, why, sizeof(why)) == 0, "MBR-only: plan: %s", why);
	check(s.cache.start == 8192 && s.cache.mbr_slot == 3 && s.cache.gpt_slot == 0,
	      "MBR-only: partition 3 from sector 8192 (got %d from %llu)", s.cache.mbr_slot,
	      (unsigned long long)s.cache.start);
	check(s.cache.sectors == 256u * 2048 - 8192, "MBR-only: to the disk's end (%llu sectors)",
	      (unsigned long long)s.cache.sectors);
	check(stick_write(fd, &s, guid, why, sizeof(why)) == 0, "MBR-only: write: %s", why);
	stick_free(&s);
	check(read_stick(fd, &s, why) == 0 && s.have_cache && s.cache.start == 8192 &&
		  s.cache.mbr_slot == 3 && s.image_end == img,
	      "MBR-only: read again: the cache is found, the image end unchanged");
	check(stick_plan(&s, 64 << 11, why, sizeof(why)) == -EEXIST, "no second cache partition");
	stick_free(&s);
	close(fd);
}

static void test_gpt(void)
{
	struct stick s;
	char why[256];
	uint8_t ents[N_ENTRIES * 128], zero[512] = { 0 }, sec[512];
	uint64_t img, disk = 512ull * 2048, esec = N_ENTRIES * 128 / 512;
	int fd = make_disk(512, 1, &img);

	check(read_stick(fd, &s, why) == 0 && s.have_gpt && !why[0], "GPT: read: %s", why);
	check(s.image_end == img, "GPT: the image ends after the backup GPT (%llu, want %llu)",
	      (unsigned long long)s.image_end, (unsigned long long)img);
	check(stick_plan(&s, 64 << 11, why, sizeof(why)) == 0 && s.cache.gpt_slot == 3,
	      "GPT: plan: entry 3: %s", why);
	check(s.cache.start + s.cache.sectors - 1 <= disk - 2 - esec,
	      "GPT: the partition ends before the new backup");
	check(stick_write(fd, &s, guid, why, sizeof(why)) == 0, "GPT: write: %s", why);
	stick_free(&s);
	pread_all(fd, ents, sizeof(ents), 2 * 512);
	check(gpt_valid_at(fd, 1, disk - 1, NULL), "GPT: primary valid, backup at the disk's end");
	check(gpt_valid_at(fd, disk - 1, 1, ents), "GPT: backup valid with the same entries");
	check(hc_get64(ents + 256 + 32) == 8192 && ents[256 + 56] == 's',
	      "GPT: entry 3 starts at 8192, named streamcd-cache");
	pread_all(fd, sec, 512, (img - 1) * 512);
	check(!memcmp(sec, zero, 512), "GPT: the old backup header is cleared");
	check(read_stick(fd, &s, why) == 0 && s.have_cache && s.gpt_has_cache &&
		  s.image_end == ISO_SECTORS + ESP_SECTORS,
	      "GPT: read again: found in both tables; the image is the ISO and the ESP");
	stick_free(&s);

	/* A cut after the GPT: the MBR entry is missing. */
	pread_all(fd, sec, 512, 0);
	memset(sec + 446 + 32, 0, 16);
	pwrite_all(fd, sec, 512, 0);
	check(read_stick(fd, &s, why) == 0 && !s.have_cache && s.gpt_has_cache,
	      "cut write: the GPT has it, the MBR not");
	check(stick_plan(&s, 64 << 11, why, sizeof(why)) == 0 && s.cache.start == 8192,
	      "cut write: planned where the GPT says: %s", why);
	check(stick_write(fd, &s, guid, why, sizeof(why)) == 0, "cut write: finished: %s", why);
	stick_free(&s);
	check(read_stick(fd, &s, why) == 0 && s.have_cache && s.cache.start == 8192,
	      "cut write: the cache is whole again");
	check(gpt_valid_at(fd, 1, disk - 1, NULL), "cut write: the GPT is still valid");
	stick_free(&s);
	close(fd);
}

static void test_damaged_gpt(void)
{
	struct stick s;
	char why[256];
	uint8_t before[512], after[512];
	uint64_t img;
	int fd = make_disk(128, 1, &img);

	pread_all(fd, before, 512, 512);
	before[48] ^= 1; /* last usable LBA, its CRC now wrong */
	pwrite_all(fd, before, 512, 512);
	check(read_stick(fd, &s, why) == 0 && !s.have_gpt && strstr(why, "damaged"),
	      "damaged GPT: left out, said: %s", why);
	check(stick_plan(&s, 64 << 11, why, sizeof(why)) == 0 &&
		  stick_write(fd, &s, guid, why, sizeof(why)) == 0,
	      "damaged GPT: the MBR still gets the cache: %s", why);
	pread_all(fd, after, 512, 512);
	check(!memcmp(before, after, 512), "damaged GPT: not written");
	stick_free(&s);
	close(fd);
}

static void test_refusals(void)
{
	struct stick s;
	char why[256];
	uint8_t sec[512];
	uint64_t img;
	int fd = make_disk(8, 0, &img);

	check(read_stick(fd, &s, why) == 0, "small disk: read");
	check(stick_plan(&s, 64 << 11, why, sizeof(why)) == -ENOSPC && strstr(why, "needs 64 MiB"),
	      "no room: %s", why);
	stick_free(&s);
	close(fd);

	fd = make_disk(256, 0, &img);
	pread_all(fd, sec, 512, 0);
	mbr_entry(sec, 3, 0x0c, 10000, 100);
	mbr_entry(sec, 4, 0x07, 20000, 100);
	pwrite_all(fd, sec, 512, 0);
	check(read_stick(fd, &s, why) == 0 && stick_plan(&s, 64 << 11, why, sizeof(why)) == -EMLINK,
	      "full MBR: %s", why);
	stick_free(&s);
	close(fd);

	fd = make_disk(256, 0, &img);
	memset(sec, 0, sizeof(sec));
	pwrite_all(fd, sec, 512, 32768);
	check(read_stick(fd, &s, why) == -EINVAL && strstr(why, "ISO 9660"), "not an ISO: %s", why);
	stick_free(&s);
	close(fd);

	fd = make_disk(256, 0, &img);
	pread_all(fd, sec, 512, 0);
	sec[511] = 0;
	pwrite_all(fd, sec, 512, 0);
	check(read_stick(fd, &s, why) == -EINVAL && strstr(why, "MBR"), "no MBR: %s", why);
	stick_free(&s);
	close(fd);
}

int main(void)
{
	test_crc();
	test_mbr_only();
	test_gpt();
	test_damaged_gpt();
	test_refusals();
	printf("test_table: %d passed, %d failed\n", passed, failed);
	return failed != 0;
}
