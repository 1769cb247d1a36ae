/*
 * sha256.c - SHA-256 (FIPS 180-4).
 *
 * Two block functions share one streaming front end: a portable C one
 * that works on any CPU, and on x86-64 one built on the SHA-NI
 * instructions.  The SHA-NI one is compiled with a per-function target
 * attribute so the file needs no -m flags, and is only called after a
 * run-time CPU check, so the binary still runs on CPUs (or QEMU guests)
 * without those instructions.
 */
#include "sha256.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define HC_SHA256_HAVE_SHANI 1
#else
#define HC_SHA256_HAVE_SHANI 0
#endif

typedef void (*compress_fn)(uint32_t h[8], const uint8_t *p, size_t nblocks);

/* 16-byte alignment lets the SHA-NI path use aligned loads. */
static _Alignas(16) const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

static const uint32_t H0[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* Byte-wise access keeps the portable code independent of host
 * endianness and of the alignment of the caller's buffer. */
static inline uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t ror32(uint32_t x, unsigned int n)
{
	return (x >> n) | (x << (32 - n));
}

static void compress_portable(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
	uint32_t w[64];

	for (; nblocks; nblocks--, p += 64) {
		uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
		uint32_t e = h[4], f = h[5], g = h[6], hh = h[7];
		int i;

		for (i = 0; i < 16; i++)
			w[i] = load_be32(p + 4 * i);
		for (; i < 64; i++) {
			uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
			uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);

			w[i] = w[i - 16] + s0 + w[i - 7] + s1;
		}

		for (i = 0; i < 64; i++) {
			uint32_t S1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
			uint32_t ch = (e & f) ^ (~e & g);
			uint32_t t1 = hh + S1 + ch + K[i] + w[i];
			uint32_t S0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
			uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
			uint32_t t2 = S0 + maj;

			hh = g;
			g = f;
			f = e;
			e = d + t1;
			d = c;
			c = b;
			b = a;
			a = t1 + t2;
		}

		h[0] += a;
		h[1] += b;
		h[2] += c;
		h[3] += d;
		h[4] += e;
		h[5] += f;
		h[6] += g;
		h[7] += hh;
	}
}

#if HC_SHA256_HAVE_SHANI
/*
 * SHA256RNDS2 works on the state split as {A,B,E,F} and {C,D,G,H} (most
 * significant lane first) and does two rounds per instruction, taking
 * the two W+K words from the low half of its third operand.  Each call
 * turns the old ABEF into the new CDGH, so alternating the destination
 * keeps the names right after every pair of calls.
 */
#define SHANI_4ROUNDS(msg, kp)                                                                     \
	do {                                                                                       \
		__m128i wk_ = _mm_add_epi32((msg), _mm_load_si128((const __m128i *)(kp)));         \
		cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk_);                                     \
		wk_ = _mm_shuffle_epi32(wk_, 0x0e);                                                \
		abef = _mm_sha256rnds2_epu32(abef, cdgh, wk_);                                     \
	} while (0)

/*
 * Next four schedule words into m0, given m0..m3 = W[t-16..t-1]:
 * MSG1 adds sigma0(W[t-15]) to W[t-16], the alignr supplies W[t-7],
 * and MSG2 adds sigma1(W[t-2]), handling the dependency of the upper
 * two words on the lower two it just produced.
 */
#define SHANI_SCHED(m0, m1, m2, m3)                                                                \
	((m0) = _mm_sha256msg2_epu32(                                                              \
	     _mm_add_epi32(_mm_sha256msg1_epu32((m0), (m1)), _mm_alignr_epi8((m3), (m2), 4)),      \
	     (m3)))

__attribute__((target("sha,sse4.1,ssse3"))) static void
compress_shani(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
	/* Message words are big-endian; flip bytes within each lane. */
	const __m128i bswap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
	__m128i abef, cdgh, t;

	t = _mm_loadu_si128((const __m128i *)&h[0]);	/* d c b a */
	cdgh = _mm_loadu_si128((const __m128i *)&h[4]); /* h g f e */
	t = _mm_shuffle_epi32(t, 0xb1);			/* c d a b */
	cdgh = _mm_shuffle_epi32(cdgh, 0x1b);		/* e f g h */
	abef = _mm_alignr_epi8(t, cdgh, 8);		/* a b e f */
	cdgh = _mm_blend_epi16(cdgh, t, 0xf0);		/* c d g h */

	for (; nblocks; nblocks--, p += 64) {
		const __m128i save_abef = abef, save_cdgh = cdgh;
		__m128i m0, m1, m2, m3;
		int i;

		m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), bswap);
		SHANI_4ROUNDS(m0, &K[0]);
		m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), bswap);
		SHANI_4ROUNDS(m1, &K[4]);
		m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), bswap);
		SHANI_4ROUNDS(m2, &K[8]);
		m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), bswap);
		SHANI_4ROUNDS(m3, &K[12]);

		for (i = 16; i < 64; i += 16) {
			SHANI_SCHED(m0, m1, m2, m3);
			SHANI_4ROUNDS(m0, &K[i]);
			SHANI_SCHED(m1, m2, m3, m0);
			SHANI_4ROUNDS(m1, &K[i + 4]);
			SHANI_SCHED(m2, m3, m0, m1);
			SHANI_4ROUNDS(m2, &K[i + 8]);
			SHANI_SCHED(m3, m0, m1, m2);
			SHANI_4ROUNDS(m3, &K[i + 12]);
		}

		abef = _mm_add_epi32(abef, save_abef);
		cdgh = _mm_add_epi32(cdgh, save_cdgh);
	}

	t = _mm_shuffle_epi32(abef, 0x1b);     /* f e b a */
	cdgh = _mm_shuffle_epi32(cdgh, 0xb1);  /* d c h g */
	abef = _mm_blend_epi16(t, cdgh, 0xf0); /* d c b a */
	cdgh = _mm_alignr_epi8(cdgh, t, 8);    /* h g f e */
	_mm_storeu_si128((__m128i *)&h[0], abef);
	_mm_storeu_si128((__m128i *)&h[4], cdgh);
}

#undef SHANI_4ROUNDS
#undef SHANI_SCHED
#endif /* HC_SHA256_HAVE_SHANI */

/*
 * CPU detection is done once and cached.  Relaxed atomics are enough:
 * every thread that races on the first call computes the same answer.
 */
enum { BE_UNKNOWN, BE_PORTABLE, BE_SHANI };

static atomic_int detected = BE_UNKNOWN;
static atomic_int force_portable;

#if HC_SHA256_HAVE_SHANI
/*
 * Read CPUID directly for SHA: clang (at least up to 14) rejects
 * __builtin_cpu_supports("sha"), and one code path for both compilers
 * is easier to trust than two.
 */
static int cpu_has_sha(void)
{
	unsigned int eax, ebx, ecx, edx;

	if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
		return 0;
	return (ebx >> 29) & 1;
}
#endif

static int detect_backend(void)
{
	int be = atomic_load_explicit(&detected, memory_order_relaxed);

	if (be != BE_UNKNOWN)
		return be;
	be = BE_PORTABLE;
#if HC_SHA256_HAVE_SHANI
	/* May run before libgcc's constructor when called from another
	 * constructor, so initialise the CPU model explicitly. */
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3") && cpu_has_sha())
		be = BE_SHANI;
#endif
	atomic_store_explicit(&detected, be, memory_order_relaxed);
	return be;
}

static int current_backend(void)
{
	if (atomic_load_explicit(&force_portable, memory_order_relaxed))
		return BE_PORTABLE;
	return detect_backend();
}

static compress_fn pick_compress(void)
{
#if HC_SHA256_HAVE_SHANI
	if (current_backend() == BE_SHANI)
		return compress_shani;
#endif
	return compress_portable;
}

void hc_sha256_force_portable(int on)
{
	atomic_store_explicit(&force_portable, on != 0, memory_order_relaxed);
}

const char *hc_sha256_backend(void)
{
	return current_backend() == BE_SHANI ? "sha-ni" : "portable";
}

void hc_sha256_init(hc_sha256_ctx *ctx)
{
	memcpy(ctx->h, H0, sizeof(ctx->h));
	ctx->total = 0;
	ctx->fill = 0;
}

void hc_sha256_update(hc_sha256_ctx *ctx, const void *data, size_t len)
{
	const uint8_t *p = data;
	compress_fn compress;
	size_t n;

	/* Callers may pass (NULL, 0); memcpy must not see a NULL. */
	if (len == 0)
		return;
	compress = pick_compress();
	ctx->total += len;

	if (ctx->fill) {
		n = sizeof(ctx->buf) - ctx->fill;
		if (n > len)
			n = len;
		memcpy(ctx->buf + ctx->fill, p, n);
		ctx->fill += n;
		p += n;
		len -= n;
		if (ctx->fill < sizeof(ctx->buf))
			return;
		compress(ctx->h, ctx->buf, 1);
		ctx->fill = 0;
	}

	/* Whole blocks straight from the caller's memory, no copy. */
	n = len / 64;
	if (n) {
		compress(ctx->h, p, n);
		p += n * 64;
		len -= n * 64;
	}

	if (len) {
		memcpy(ctx->buf, p, len);
		ctx->fill = len;
	}
}

void hc_sha256_final(hc_sha256_ctx *ctx, uint8_t out[HC_SHA256_LEN])
{
	compress_fn compress = pick_compress();
	uint64_t bits = ctx->total * 8;
	size_t fill = ctx->fill;
	int i;

	ctx->buf[fill++] = 0x80;
	/* The 8-byte length must fit; otherwise it goes in an extra block. */
	if (fill > 56) {
		memset(ctx->buf + fill, 0, 64 - fill);
		compress(ctx->h, ctx->buf, 1);
		fill = 0;
	}
	memset(ctx->buf + fill, 0, 56 - fill);
	store_be32(ctx->buf + 56, (uint32_t)(bits >> 32));
	store_be32(ctx->buf + 60, (uint32_t)bits);
	compress(ctx->h, ctx->buf, 1);

	for (i = 0; i < 8; i++)
		store_be32(out + 4 * i, ctx->h[i]);

	/* The buffer may have held key material (e.g. in an HMAC). */
	memset(ctx, 0, sizeof(*ctx));
}

void hc_sha256(const void *data, size_t len, uint8_t out[HC_SHA256_LEN])
{
	hc_sha256_ctx ctx;

	hc_sha256_init(&ctx);
	hc_sha256_update(&ctx, data, len);
	hc_sha256_final(&ctx, out);
}
