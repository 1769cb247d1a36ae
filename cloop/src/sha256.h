/*
 * sha256.h - SHA-256 (FIPS 180-4) with a portable C back-end and, on
 * x86-64, a SHA-NI back-end picked at run time.
 */
#ifndef HC_SHA256_H
#define HC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define HC_SHA256_LEN 32

typedef struct hc_sha256_ctx {
	uint32_t h[8];
	uint64_t total; /* bytes hashed so far */
	uint8_t buf[64];
	size_t fill; /* bytes in buf */
} hc_sha256_ctx;

void hc_sha256_init(hc_sha256_ctx *ctx);
void hc_sha256_update(hc_sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and wipes ctx; call hc_sha256_init() to reuse it. */
void hc_sha256_final(hc_sha256_ctx *ctx, uint8_t out[HC_SHA256_LEN]);
/* One-shot. */
void hc_sha256(const void *data, size_t len, uint8_t out[HC_SHA256_LEN]);

/* Test hook: force the portable back-end (1) or automatic choice (0). */
void hc_sha256_force_portable(int on);
/* Name of the back-end in use: "sha-ni" or "portable". */
const char *hc_sha256_backend(void);

#endif /* HC_SHA256_H */
