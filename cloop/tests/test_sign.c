/*
 * test_sign.c - signed indexes (sign.c) and what load.c and make.c do
 * with them, without network: key files (modes, no overwrite, wrong kind,
 * damage); signing and verifying in memory against FORMAT.md's layout
 * (checked with libsodium directly); a changed byte, another key, no
 * signature, a malformed section; make --sign over a file:// store,
 * re-signing an existing version; cached indexes checked too; the
 * remembered serial (no silent downgrade, explicit rollback).
 */
#include "../src/load.h"
#include "../src/make.h"
#include "../src/sign.h"
#include "../src/util.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define SHIFT	   14
#define IMAGE_SIZE ((size_t)40 * 16384 + 777)

static char root[PATH_MAX], store[PATH_MAX], cache[PATH_MAX];
static char *url;

/* Expected failures log errors; keep them out of the test's output. */
static void quiet(int on)
{
	hc_log_init("test_sign", on ? -1 : HC_LOG_WARN);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	uint8_t *buf = NULL;

	return hc_read_file(path, &buf, len, HC_INDEX_MAX) == 0 ? buf : NULL;
}

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* ---- key files ------------------------------------------------------ */

static void test_keys(struct hc_seckey *sk, struct hc_seckey *other, struct hc_pubkey *pk,
		      struct hc_pubkey *other_pk)
{
	char base[PATH_MAX], sec[PATH_MAX], pub[PATH_MAX], bad[PATH_MAX], why[512];
	struct hc_pubkey gen, p;
	struct hc_seckey s;
	struct stat st;
	uint8_t *buf;
	size_t len;

	pathf(base, "%s/key", root);
	pathf(sec, "%s.sec", base);
	pathf(pub, "%s.pub", base);
	check(hc_key_generate(base, &gen, why, sizeof(why)) == 0, "keygen: %s", why);
	check(stat(sec, &st) == 0 && (st.st_mode & 0777) == 0600, "keygen: %s mode %o, not 0600",
	      sec, st.st_mode & 0777);
	check(stat(pub, &st) == 0, "keygen: no %s", pub);
	check(strlen(gen.id) == 16, "keygen: key ID \"%s\" is not 16 hex digits", gen.id);
	buf = slurp(pub, &len);
	check(buf && len == 22 + 64 + 1 && !memcmp(buf, "hcloop-ed25519-public ", 22),
	      "keygen: %s is not one line \"hcloop-ed25519-public HEX\"", pub);
	free(buf);

	/* Never replaced: a second keygen fails and leaves both as they were. */
	buf = slurp(sec, &len);
	check(hc_key_generate(base, &p, why, sizeof(why)) == -EEXIST && strstr(why, "refusing"),
	      "keygen over existing keys: %s", why);
	{
		size_t len2;
		uint8_t *again = slurp(sec, &len2);

		check(again && len2 == len && !memcmp(again, buf, len),
		      "keygen over existing keys changed %s", sec);
		free(again);
	}
	free(buf);
	/* Only the .sec there: still refused, and no .pub made. */
	pathf(bad, "%s/lone", root);
	pathf(sec, "%s/lone.sec", root);
	write_file(sec, "x", 1);
	check(hc_key_generate(bad, &p, why, sizeof(why)) == -EEXIST, "keygen over a lone .sec: %s",
	      why);
	pathf(pub, "%s/lone.pub", root);
	check(!exists(pub), "keygen over a lone .sec left %s", pub);

	/* Loading: the pair matches, the key ID is the same. */
	pathf(sec, "%s.sec", base);
	pathf(pub, "%s.pub", base);
	check(hc_seckey_load(sec, sk, why, sizeof(why)) == 0, "load %s: %s", sec, why);
	check(hc_pubkey_load(pub, pk, why, sizeof(why)) == 0, "load %s: %s", pub, why);
	check(!memcmp(sk->pub.pk, pk->pk, sizeof(pk->pk)) && !strcmp(pk->id, gen.id) &&
		  !strcmp(sk->pub.id, gen.id),
	      "the secret key's public half is not the public key");

	/* The wrong kind of key file, and damaged ones. */
	check(hc_pubkey_load(sec, &p, why, sizeof(why)) == -EINVAL && strstr(why, "secret key"),
	      "a .sec as --pubkey: %s", why);
	check(hc_seckey_load(pub, &s, why, sizeof(why)) == -EINVAL && strstr(why, "public key"),
	      "a .pub as secret key: %s", why);
	pathf(bad, "%s/bad.pub", root);
	write_file(bad, "hcloop-ed25519-public 00\n", 25);
	check(hc_pubkey_load(bad, &p, why, sizeof(why)) == -EINVAL &&
		  strstr(why, "not an hcloop key"),
	      "short key: %s", why);
	buf = slurp(pub, &len);
	if (buf) {
		buf[30] = 'g';
		write_file(bad, buf, len);
		check(hc_pubkey_load(bad, &p, why, sizeof(why)) == -EINVAL && strstr(why, "hex"),
		      "bad hex: %s", why);
		free(buf);
	}
	pathf(bad, "%s/missing.pub", root);
	check(hc_pubkey_load(bad, &p, why, sizeof(why)) == -ENOENT && strstr(why, "missing.pub"),
	      "missing key file: %s", why);

	pathf(base, "%s/other", root);
	pathf(sec, "%s.sec", base);
	check(hc_key_generate(base, other_pk, why, sizeof(why)) == 0, "keygen other: %s", why);
	check(hc_seckey_load(sec, other, why, sizeof(why)) == 0, "load other: %s", why);
	check(strcmp(other_pk->id, pk->id) != 0, "two keys with one ID");
}

/* ---- signing in memory ---------------------------------------------- */

static hc_index *sample_index(void)
{
	static const char mirrors[] = "https://a.example/store\n";
	hc_index *idx = hc_index_new("img", "v1", 5 * 4096 + 100, 12, HC_CODEC_ZSTD);

	if (!idx)
		return NULL;
	idx->serial = 3;
	idx->created = 1700000000;
	for (uint32_t i = 0; i < idx->block_count; i++) {
		idx->entries[i].codec = HC_CODEC_RAW;
		idx->entries[i].size = hc_index_block_len(idx, i);
		hc_sha256(&i, sizeof(i), idx->entries[i].hash);
	}
	hc_index_add_section(idx, HC_SECT_MIRRORS, 0, mirrors, strlen(mirrors));
	return idx;
}

/* buf changed in place, with its trailer made right again: only the
 * signature can tell. */
static void retrail(uint8_t *buf, size_t len)
{
	hc_sha256(buf, len - HC_SHA256_LEN, buf + len - HC_SHA256_LEN);
}

static int verify_buf(const uint8_t *buf, size_t len, const struct hc_pubkey *pk, char *why,
		      size_t whylen)
{
	hc_index *idx;
	const char *bad = NULL;
	int r = hc_index_parse(buf, len, &idx, &bad);

	if (r < 0) {
		snprintf(why, whylen, "parse: %s", bad);
		return 1; /* no errno a verification gives */
	}
	r = hc_index_verify(buf, len, idx, pk, why, whylen);
	hc_index_free(idx);
	return r;
}

static void test_memory(const struct hc_seckey *sk, const struct hc_seckey *other,
			const struct hc_pubkey *pk, const struct hc_pubkey *other_pk)
{
	hc_index *idx = sample_index(), *back = NULL;
	uint8_t *buf = NULL, *plain = NULL, *again = NULL, *copy;
	size_t len, plain_len, again_len, sect;
	const char *bad = NULL;
	char why[512];
	int r;

	if (!check(idx != NULL, "sample index"))
		return;
	r = hc_index_serialize(idx, &plain, &plain_len);
	check(r == 0, "serialize unsigned: %d", r);
	r = hc_index_serialize_signed(idx, sk, &buf, &len);
	if (!check(r == 0, "serialize signed: %d", r))
		goto out;
	check(len == plain_len + 16 + HC_SIG_SECT_LEN, "signed index is %zu bytes, unsigned %zu",
	      len, plain_len);
	check(hc_index_serialize_signed(idx, sk, &again, &again_len) == -EEXIST,
	      "signing a signed index again: not -EEXIST");

	/* FORMAT.md's layout, checked without sign.c: the section header,
	 * algorithm, key, and the signature over every byte before it. */
	sect = len - HC_SHA256_LEN - 16 - HC_SIG_SECT_LEN;
	check(hc_get32(buf + 60) == 2, "section count %u, not 2", hc_get32(buf + 60));
	check(hc_get32(buf + sect) == 3 && hc_get32(buf + sect + 4) == 0 &&
		  hc_get64(buf + sect + 8) == HC_SIG_SECT_LEN,
	      "signature section header");
	check(hc_get32(buf + sect + 16) == 1 && hc_get32(buf + sect + 20) == 0 &&
		  !memcmp(buf + sect + 24, pk->pk, 32),
	      "signature section: algorithm, reserved, key");
	check(crypto_sign_verify_detached(buf + sect + 56, buf, sect, pk->pk) == 0,
	      "libsodium does not verify the signature over bytes [0, %zu)", sect);
	check(hc_index_parse(buf, len, &back, &bad) == 0, "parse signed: %s", bad);
	if (back) {
		uint8_t sum[HC_SHA256_LEN];

		hc_sha256(buf, len, sum);
		check(!memcmp(back->digest, sum, sizeof(sum)) &&
			  !memcmp(idx->digest, sum, sizeof(sum)),
		      "digest is not that of the signed file");
		hc_index_free(back);
	}

	check(verify_buf(buf, len, pk, why, sizeof(why)) == 0, "good signature refused: %s", why);
	/* Deterministic: the same index signs to the same bytes. */
	free(again);
	again = NULL;
	hc_index_free(idx);
	idx = sample_index();
	r = idx ? hc_index_serialize_signed(idx, sk, &again, &again_len) : -ENOMEM;
	check(r == 0 && again_len == len && !memcmp(again, buf, len),
	      "signing the same index twice gave other bytes");

	/* Unsigned, another key, altered anywhere before the signature or
	 * in it: each refused with its own error and message. */
	r = verify_buf(plain, plain_len, pk, why, sizeof(why));
	check(r == -ENOKEY && strstr(why, "is not signed") && strstr(why, pk->id),
	      "unsigned: %d %s", r, why);
	r = verify_buf(buf, len, other_pk, why, sizeof(why));
	check(r == -EKEYREJECTED && strstr(why, pk->id) && strstr(why, other_pk->id),
	      "other key: %d %s", r, why);
	copy = malloc(len);
	if (!copy)
		goto out;
	static const size_t spots[] = { 8 + 32, 64, 70, 100, 200, 300 };
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]) + 2; i++) {
		size_t at = i < 6 ? spots[i] : i == 6 ? sect - 1 : sect + 60;

		memcpy(copy, buf, len);
		copy[at] ^= 0x01;
		retrail(copy, len);
		r = verify_buf(copy, len, pk, why, sizeof(why));
		check(r == -EBADMSG && strstr(why, "bad signature"), "byte %zu changed: %d %s", at,
		      r, why);
	}
	/* Malformed sections: an unknown algorithm, reserved bytes. */
	memcpy(copy, buf, len);
	copy[sect + 16] = 2;
	retrail(copy, len);
	r = verify_buf(copy, len, pk, why, sizeof(why));
	check(r == -EBADMSG && strstr(why, "unknown algorithm 2"), "algorithm 2: %d %s", r, why);
	memcpy(copy, buf, len);
	copy[sect + 21] = 1;
	retrail(copy, len);
	r = verify_buf(copy, len, pk, why, sizeof(why));
	check(r == -EBADMSG && strstr(why, "malformed"), "reserved bytes: %d %s", r, why);
	free(copy);
	/* Another key's signature over the same index is simply another. */
	free(again);
	again = NULL;
	hc_index_free(idx);
	idx = sample_index();
	r = idx ? hc_index_serialize_signed(idx, other, &again, &again_len) : -ENOMEM;
	check(r == 0 && verify_buf(again, again_len, other_pk, why, sizeof(why)) == 0,
	      "other key's signature: %s", why);
out:
	free(buf);
	free(plain);
	free(again);
	hc_index_free(idx);
}

/* ---- a store ------------------------------------------------------- */

static int make(const char *image, const char *version, const struct hc_seckey *k, int force)
{
	struct hc_make_opts o = {
		.image = image,
		.store = store,
		.name = "img",
		.version = version,
		.block_shift = SHIFT,
		.codec = HC_CODEC_ZSTD,
		.level = 3,
		.threads = 2,
		.created = 1700000000,
		.force = force,
		.sign_key = k,
	};
	struct hc_make_stats st;

	return hc_make(&o, &st);
}

static int load(const char *urls, const char *version, const struct hc_pubkey *pk, hc_diskcache *dc,
		hc_index **ret, char *why, size_t whylen)
{
	struct hc_fetch_opts fo;

	hc_fetch_opts_default(&fo);
	fo.retries = 0;
	fo.timeout = 2;
	struct hc_load_opts lo = { .urls = urls,
				   .name = "img",
				   .version = version,
				   .fetch = &fo,
				   .dc = dc,
				   .pubkey = pk };
	why[0] = '\0';
	*ret = NULL;
	return hc_index_load(&lo, ret, why, whylen);
}

/* 0 if load gives an index of that version, the load's error otherwise. */
static int load_version(const char *urls, const char *version, const struct hc_pubkey *pk,
			hc_diskcache *dc, const char *want, char *why, size_t whylen)
{
	hc_index *idx;
	int r = load(urls, version, pk, dc, &idx, why, whylen);

	if (r == 0 && strcmp(idx->version, want))
		r = 1;
	hc_index_free(idx);
	return r;
}

static void write_image(const char *path, int seed)
{
	uint8_t *img = malloc(IMAGE_SIZE);

	if (!img)
		exit(1);
	for (size_t i = 0; i < IMAGE_SIZE; i++)
		img[i] = (uint8_t)(i % 4096 < 2048 ? (i * 7 + (size_t)seed * (i / 16384)) : i / 3);
	write_file(path, img, IMAGE_SIZE);
	free(img);
}

/* make --sign: the signed index loads with its key only; an existing
 * version with the same blocks gets a signature added; one signed by
 * another key is re-signed only with force. */
static void test_make_sign(const struct hc_seckey *sk, const struct hc_seckey *other,
			   const struct hc_pubkey *pk, const struct hc_pubkey *other_pk,
			   const char *image1)
{
	char ipath[PATH_MAX], lpath[PATH_MAX], why[1024];
	uint8_t *before, *after, *latest_before, *latest_after;
	size_t blen, alen, lblen, lalen;
	hc_index *idx;
	int r;

	pathf(ipath, "%s/index/img/v1", store);
	pathf(lpath, "%s/index/img/latest", store);
	check(make(image1, "v1", NULL, 0) == 0, "make v1 unsigned");
	r = load_version(url, NULL, pk, NULL, "v1", why, sizeof(why));
	check(r == -ENOKEY && strstr(why, "is not signed"), "unsigned v1 with --pubkey: %d %s", r,
	      why);
	check(load_version(url, NULL, NULL, NULL, "v1", why, sizeof(why)) == 0,
	      "unsigned v1 without --pubkey: %s", why);

	/* The same image with --sign: the existing index, signed. */
	before = slurp(ipath, &blen);
	latest_before = slurp(lpath, &lblen);
	check(make(image1, "v1", sk, 0) == 0, "make v1 --sign over the unsigned v1");
	after = slurp(ipath, &alen);
	latest_after = slurp(lpath, &lalen);
	check(before && after && alen == blen + 16 + HC_SIG_SECT_LEN && !memcmp(before, after, 56),
	      "re-signed v1: not the old index with a signature (%zu -> %zu bytes)", blen, alen);
	check(latest_before && latest_after && lblen == lalen &&
		  memcmp(latest_before, latest_after, lblen),
	      "re-signed v1: the latest pointer's digest did not follow");
	r = load(url, NULL, pk, NULL, &idx, why, sizeof(why));
	check(r == 0 && idx->serial == 1, "signed v1 with its key: %d %s", r, why);
	hc_index_free(idx);
	r = load_version(url, NULL, other_pk, NULL, "v1", why, sizeof(why));
	check(r == -EKEYREJECTED && strstr(why, other_pk->id) && strstr(why, pk->id),
	      "signed v1 with another key: %d %s", r, why);
	free(before);
	free(latest_before);

	/* Again with the same key: nothing to do, not a byte changed. */
	check(make(image1, "v1", sk, 0) == 0, "make v1 --sign again");
	before = slurp(ipath, &blen);
	check(before && blen == alen && !memcmp(before, after, alen),
	      "make v1 --sign again changed the index");
	free(before);
	/* Without --sign: the signature stays. */
	check(make(image1, "v1", NULL, 0) == 0, "make v1 unsigned over the signed v1");
	before = slurp(ipath, &blen);
	check(before && blen == alen && !memcmp(before, after, alen),
	      "make v1 without --sign dropped the signature");
	free(before);
	/* Another key: refused unless forced. */
	quiet(1);
	r = make(image1, "v1", other, 0);
	quiet(0);
	check(r == -EEXIST, "make v1 --sign with another key: %d, not -EEXIST", r);
	check(make(image1, "v1", other, 1) == 0, "make v1 --sign other --force");
	check(load_version(url, NULL, other_pk, NULL, "v1", why, sizeof(why)) == 0,
	      "v1 re-signed by the other key: %s", why);
	check(make(image1, "v1", sk, 1) == 0, "make v1 --sign back --force");
	before = slurp(ipath, &blen);
	check(before && blen == alen && !memcmp(before, after, alen),
	      "signed back by the first key: other bytes than before");
	free(before);
	free(after);
	free(latest_after);
}

static uint64_t seen_serial(void)
{
	char path[PATH_MAX];
	unsigned long long n = 0;
	FILE *f;

	pathf(path, "%s/seen/img", cache);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &n) != 1)
		n = 0;
	fclose(f);
	return n;
}

/* The latest pointer as "VERSION SERIAL DIGEST" for an index file. */
static void point_latest_at(const char *version)
{
	char ipath[PATH_MAX], lpath[PATH_MAX], line[256];
	struct hc_latest l = { .serial = 0 };
	size_t len;
	uint8_t *buf;
	hc_index *idx;
	const char *bad;
	int n;

	pathf(ipath, "%s/index/img/%s", store, version);
	pathf(lpath, "%s/index/img/latest", store);
	buf = slurp(ipath, &len);
	if (!buf || hc_index_parse(buf, len, &idx, &bad) < 0) {
		fprintf(stderr, "FAIL: cannot read %s\n", ipath);
		exit(1);
	}
	strcpy(l.version, version);
	l.serial = idx->serial;
	memcpy(l.digest, idx->digest, HC_SHA256_LEN);
	n = hc_latest_format(&l, line, sizeof(line));
	write_file(lpath, line, (size_t)n);
	hc_index_free(idx);
	free(buf);
}

/* With a disk cache: the highest serial accepted is remembered, latest
 * may not lead below it, a named version may; cached indexes are
 * checked against the key like fetched ones. */
static void test_seen(const struct hc_seckey *sk, const struct hc_pubkey *pk,
		      const struct hc_pubkey *other_pk, const char *image2)
{
	char why[1024], path[PATH_MAX], gone[PATH_MAX], *gone_url;
	hc_diskcache *dc = NULL;
	uint8_t *buf;
	size_t len;
	int r;

	check(make(image2, "v2", sk, 0) == 0, "make v2 --sign");
	if (!check(hc_diskcache_open(cache, 1 << 26, &dc) == 0, "open the disk cache"))
		return;
	check(seen_serial() == 0, "a new cache has seen a serial");
	r = load_version(url, NULL, pk, dc, "v2", why, sizeof(why));
	check(r == 0 && seen_serial() == 2, "latest v2: %d %s; seen %llu", r, why,
	      (unsigned long long)seen_serial());

	/* The store rolled back under the client: refused, naming both. */
	point_latest_at("v1");
	r = load_version(url, NULL, pk, dc, "v1", why, sizeof(why));
	check(r == -ESTALE && strstr(why, "v1 (serial 1)") && strstr(why, "v2 (serial 2)") &&
		  strstr(why, "--version v1"),
	      "latest back to v1: %d %s", r, why);
	/* Named on purpose: allowed, and the remembered serial stays. */
	quiet(1);
	r = load_version(url, "v1", pk, dc, "v1", why, sizeof(why));
	quiet(0);
	check(r == 0 && seen_serial() == 2, "--version v1: %d %s; seen %llu", r, why,
	      (unsigned long long)seen_serial());
	r = load_version(url, NULL, pk, dc, "v1", why, sizeof(why));
	check(r == -ESTALE, "latest v1 after the explicit rollback: %d %s", r, why);
	point_latest_at("v2");
	check(load_version(url, NULL, pk, dc, "v2", why, sizeof(why)) == 0, "latest v2 again: %s",
	      why);

	/* A refused index does not raise it: a v3 by another key. */
	check(make(image2, "v3", NULL, 0) == 0, "make v3 unsigned");
	r = load_version(url, NULL, pk, dc, "v3", why, sizeof(why));
	check(r == -ENOKEY && seen_serial() == 2, "unsigned v3: %d %s; seen %llu", r, why,
	      (unsigned long long)seen_serial());
	r = load_version(url, NULL, other_pk, dc, "v3", why, sizeof(why));
	check(r == -ENOKEY && seen_serial() == 2, "unsigned v3 other key: %d; seen %llu", r,
	      (unsigned long long)seen_serial());

	/* The store unreachable: the cached pointer and index are used, and
	 * checked. Here the cached v2 is altered (trailer made right). */
	point_latest_at("v2");
	check(load_version(url, NULL, pk, dc, "v2", why, sizeof(why)) == 0, "cache v2: %s", why);
	pathf(gone, "%s/no-store", root);
	gone_url = hc_url_join("file://", gone);
	quiet(1);
	r = gone_url ? load_version(gone_url, NULL, pk, dc, "v2", why, sizeof(why)) : -ENOMEM;
	check(r == 0, "offline from the cache: %d %s", r, why);
	r = gone_url ? load_version(gone_url, NULL, other_pk, dc, "v2", why, sizeof(why)) : -ENOMEM;
	check(r == -EKEYREJECTED && strstr(why, "cached"), "offline, other key: %d %s", r, why);
	pathf(path, "%s/index/img/v2", cache);
	buf = slurp(path, &len);
	if (check(buf != NULL, "no cached v2 at %s", path)) {
		buf[100] ^= 1;
		retrail(buf, len);
		write_file(path, buf, len);
		free(buf);
		r = gone_url ? load_version(gone_url, NULL, pk, dc, "v2", why, sizeof(why))
			     : -ENOMEM;
		check(r == -EBADMSG && strstr(why, "bad signature"),
		      "offline, altered cache: %d %s", r, why);
		r = gone_url ? load_version(gone_url, "v2", pk, dc, "v2", why, sizeof(why))
			     : -ENOMEM;
		check(r == -EBADMSG && strstr(why, "bad signature"),
		      "offline, altered cache, by name: %d %s", r, why);
		/* Online, the digest of the pointer no longer matches the
		 * cached copy: fetched afresh, and good. */
		r = load_version(url, NULL, pk, dc, "v2", why, sizeof(why));
		check(r == 0, "online after the altered cache: %d %s", r, why);
	}
	quiet(0);
	free(gone_url);
	hc_diskcache_close(dc);
}

int main(void)
{
	struct hc_seckey sk, other;
	struct hc_pubkey pk, other_pk;
	char image1[PATH_MAX], image2[PATH_MAX];

	quiet(0);
	if (hc_fetch_global_init() < 0 || sodium_init() < 0) {
		fprintf(stderr, "FAIL: init\n");
		return 1;
	}
	scratch_dir(root, "test_sign");
	pathf(store, "%s/store", root);
	pathf(cache, "%s/cache", root);
	pathf(image1, "%s/image1", root);
	pathf(image2, "%s/image2", root);
	write_image(image1, 1);
	write_image(image2, 2);

	test_keys(&sk, &other, &pk, &other_pk);
	test_memory(&sk, &other, &pk, &other_pk);
	mkdir(store, 0755); /* hc_url_from_arg wants a directory that exists */
	url = hc_url_from_arg(store);
	if (check(url != NULL, "hc_url_from_arg")) {
		test_make_sign(&sk, &other, &pk, &other_pk, image1);
		test_seen(&sk, &pk, &other_pk, image2);
	}
	free(url);
	hc_seckey_wipe(&sk);
	hc_seckey_wipe(&other);
	rm_rf(root);
	hc_fetch_global_cleanup();
	printf("test_sign: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
