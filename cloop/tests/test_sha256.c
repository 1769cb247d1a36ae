/*
 * test_sha256.c - unit test for the SHA-256 module: FIPS 180-4 known
 * answers, portable vs SHA-NI agreement over many lengths and update
 * split patterns, and a cross-check against the sha256sum command.
 */
#include "../src/sha256.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

__attribute__((format(printf, 2, 3))) static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		passed++;
		return;
	}
	failed++;
	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void to_hex(const uint8_t d[HC_SHA256_LEN], char hex[2 * HC_SHA256_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < HC_SHA256_LEN; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[2 * HC_SHA256_LEN] = '\0';
}

/* Fixed-seed generator so a failure reproduces exactly. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)rng();
}

/* Feed data in random-sized pieces (including empty ones) so every
 * buffer-fill and direct-block path in update gets exercised. */
static void hash_pieces(const uint8_t *p, size_t len, size_t max_piece, uint8_t out[HC_SHA256_LEN])
{
	hc_sha256_ctx ctx;

	hc_sha256_init(&ctx);
	while (len) {
		size_t n = (size_t)(rng() % (max_piece + 1));

		if (n > len)
			n = len;
		hc_sha256_update(&ctx, p, n);
		p += n;
		len -= n;
	}
	hc_sha256_final(&ctx, out);
}

struct kat {
	const char *name;
	const char *msg;
	size_t repeat; /* msg is hashed this many times */
	const char *hex;
};

static const struct kat kats[] = {
	{ "empty", "", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "abc", "abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "448-bit", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
	  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	{ "896-bit",
	  "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
	  "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	  1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
	{ "million-a", "a", 1000000,
	  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
};

static void test_kats(const char *backend)
{
	size_t k;

	for (k = 0; k < sizeof(kats) / sizeof(kats[0]); k++) {
		const struct kat *t = &kats[k];
		size_t mlen = strlen(t->msg), i;
		uint8_t d[HC_SHA256_LEN];
		char hex[2 * HC_SHA256_LEN + 1];
		hc_sha256_ctx ctx;

		hc_sha256_init(&ctx);
		for (i = 0; i < t->repeat; i++)
			hc_sha256_update(&ctx, t->msg, mlen);
		hc_sha256_final(&ctx, d);
		to_hex(d, hex);
		check(!strcmp(hex, t->hex), "kat %s (%s): got %s want %s", t->name, backend, hex,
		      t->hex);

		if (t->repeat == 1) {
			hc_sha256(t->msg, mlen, d);
			to_hex(d, hex);
			check(!strcmp(hex, t->hex), "kat %s one-shot (%s): got %s", t->name,
			      backend, hex);
		}
	}
}

/* Both back-ends, one-shot and streamed, must all give the same digest. */
static void test_agree(const uint8_t *buf, size_t len, size_t max_piece)
{
	uint8_t port1[HC_SHA256_LEN], port2[HC_SHA256_LEN];
	uint8_t auto1[HC_SHA256_LEN], auto2[HC_SHA256_LEN];

	hc_sha256_force_portable(1);
	hc_sha256(buf, len, port1);
	hash_pieces(buf, len, max_piece, port2);
	hc_sha256_force_portable(0);
	hc_sha256(buf, len, auto1);
	hash_pieces(buf, len, max_piece, auto2);

	check(!memcmp(port1, port2, HC_SHA256_LEN),
	      "agree len %zu: portable one-shot != portable pieces", len);
	check(!memcmp(port1, auto1, HC_SHA256_LEN),
	      "agree len %zu: portable one-shot != auto one-shot", len);
	check(!memcmp(port1, auto2, HC_SHA256_LEN),
	      "agree len %zu: portable one-shot != auto pieces", len);
}

/* Anchor against an independent implementation. */
static void test_sha256sum(const uint8_t *buf, size_t len)
{
	char path[] = "/tmp/test_sha256.XXXXXX";
	char cmd[64], line[256], want[2 * HC_SHA256_LEN + 1];
	uint8_t d[HC_SHA256_LEN];
	FILE *fp;
	int fd, st;

	fd = mkstemp(path);
	if (fd < 0) {
		check(0, "sha256sum len %zu: mkstemp failed", len);
		return;
	}
	fp = fdopen(fd, "wb");
	if (!fp || fwrite(buf, 1, len, fp) != len || fclose(fp)) {
		unlink(path);
		check(0, "sha256sum len %zu: writing temp file failed", len);
		return;
	}

	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	fp = popen(cmd, "r");
	line[0] = '\0';
	if (fp) {
		if (!fgets(line, sizeof(line), fp))
			line[0] = '\0';
		st = pclose(fp);
	} else {
		st = -1;
	}
	unlink(path);
	if (st != 0 || strlen(line) < 2 * HC_SHA256_LEN) {
		check(0, "sha256sum len %zu: running sha256sum failed", len);
		return;
	}

	hc_sha256_force_portable(1);
	hc_sha256(buf, len, d);
	to_hex(d, want);
	check(!strncmp(line, want, 2 * HC_SHA256_LEN),
	      "sha256sum len %zu: portable differs from sha256sum", len);
	hc_sha256_force_portable(0);
	hc_sha256(buf, len, d);
	to_hex(d, want);
	check(!strncmp(line, want, 2 * HC_SHA256_LEN),
	      "sha256sum len %zu: auto back-end differs from sha256sum", len);
}

int main(void)
{
	const size_t big = (1u << 20) + 13;
	uint8_t *buf;
	size_t len;

	hc_sha256_force_portable(1);
	check(!strcmp(hc_sha256_backend(), "portable"), "backend: force_portable not honoured");
	test_kats("portable");
	hc_sha256_force_portable(0);
	test_kats(hc_sha256_backend());
	if (strcmp(hc_sha256_backend(), "sha-ni"))
		fprintf(stderr, "note: no SHA-NI on this CPU; "
				"agreement tests compare portable with itself\n");

	buf = malloc(big);
	if (!buf) {
		fprintf(stderr, "FAIL: out of memory\n");
		return 1;
	}
	fill_random(buf, big);

	for (len = 0; len <= 1000; len++)
		test_agree(buf, len, 150);
	test_agree(buf, 64 * 1024, 5000);
	test_agree(buf, big, 70000);
	/* Unaligned start, in case a back-end assumes aligned input. */
	test_agree(buf + 3, 64 * 1024 + 7, 300);

	test_sha256sum(buf, 1u << 20);

	free(buf);
	printf("test_sha256: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
