/* Signed indexes: see sign.h. The secret key file holds the 32-byte
 * Ed25519 seed, from which libsodium derives the key pair. */
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define PUB_TAG "hcloop-ed25519-public"
#define SEC_TAG "hcloop-ed25519-secret"

static int sodium_ready(char *why, size_t whylen)
{
	if (sodium_init() >= 0)
		return 0;
	snprintf(why, whylen, "libsodium failed to initialise");
	return -EIO;
}

static void key_id(struct hc_pubkey *k)
{
	uint8_t sum[HC_SHA256_LEN];

	hc_sha256(k->pk, sizeof(k->pk), sum);
	hc_hex(sum, (HC_KEYID_LEN - 1) / 2, k->id);
}

/* "TAG HEX\n" into path, which must not exist yet. */
static int write_key(const char *path, const char *tag, const uint8_t *key, size_t n, int mode,
		     char *why, size_t whylen)
{
	char line[128], hex[2 * 32 + 1];
	int fd, len, r = 0;
	ssize_t w;

	hc_hex(key, n, hex);
	len = snprintf(line, sizeof(line), "%s %s\n", tag, hex);
	sodium_memzero(hex, sizeof(hex));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		r = -errno;
		snprintf(why, whylen, "%s: %s%s", path, strerror(-r),
			 r == -EEXIST ? " (refusing to replace a key)" : "");
		sodium_memzero(line, sizeof(line));
		return r;
	}
	w = write(fd, line, (size_t)len);
	if (w != len)
		r = w < 0 ? -errno : -EIO;
	else if (fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	sodium_memzero(line, sizeof(line));
	if (r < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(-r));
		unlink(path);
	}
	return r;
}

int hc_key_generate(const char *base, struct hc_pubkey *ret, char *why, size_t whylen)
{
	struct hc_seckey k;
	char sec[4096], pub[4096];
	int r = sodium_ready(why, whylen);

	if (r < 0)
		return r;
	if (hc_pathf(sec, sizeof(sec), "%s.sec", base) < 0 ||
	    hc_pathf(pub, sizeof(pub), "%s.pub", base) < 0) {
		snprintf(why, whylen, "%s: name too long", base);
		return -ENAMETOOLONG;
	}
	if (access(pub, F_OK) == 0) {
		snprintf(why, whylen, "%s: already exists (refusing to replace a key)", pub);
		return -EEXIST;
	}
	crypto_sign_keypair(k.pub.pk, k.sk);
	r = write_key(sec, SEC_TAG, k.sk, crypto_sign_SEEDBYTES, 0600, why, whylen);
	if (r == 0) {
		r = write_key(pub, PUB_TAG, k.pub.pk, sizeof(k.pub.pk), 0644, why, whylen);
		if (r < 0)
			unlink(sec);
	}
	key_id(&k.pub);
	*ret = k.pub;
	hc_seckey_wipe(&k);
	return r;
}

/* The key bytes of a key file "TAG HEX\n" into out. */
static int read_key(const char *path, const char *tag, const char *other, uint8_t *out, size_t n,
		    char *why, size_t whylen)
{
	size_t taglen = strlen(tag), len;
	uint8_t *buf;
	int r = hc_read_file(path, &buf, &len, 256);

	if (r < 0) {
		snprintf(why, whylen, "%s: %s", path,
			 r == -EFBIG ? "not a key file" : strerror(-r));
		return r;
	}
	if (len > strlen(other) && !memcmp(buf, other, strlen(other))) {
		snprintf(why, whylen, "%s: this is a %s key, a %s one is needed here", path,
			 strstr(other, "secret") ? "secret" : "public",
			 strstr(tag, "secret") ? "secret" : "public");
		r = -EINVAL;
	} else if (len != taglen + 1 + 2 * n + 1 || memcmp(buf, tag, taglen) ||
		   buf[taglen] != ' ' || buf[len - 1] != '\n') {
		snprintf(why, whylen, "%s: not an hcloop key file (want one line \"%s HEX\")", path,
			 tag);
		r = -EINVAL;
	} else {
		buf[len - 1] = '\0';
		r = hc_unhex((const char *)buf + taglen + 1, out, n);
		if (r < 0)
			snprintf(why, whylen, "%s: bad hex in the key", path);
	}
	sodium_memzero(buf, len);
	free(buf);
	return r;
}

int hc_pubkey_load(const char *path, struct hc_pubkey *ret, char *why, size_t whylen)
{
	int r = read_key(path, PUB_TAG, SEC_TAG, ret->pk, sizeof(ret->pk), why, whylen);

	if (r == 0)
		key_id(ret);
	return r;
}

int hc_seckey_load(const char *path, struct hc_seckey *ret, char *why, size_t whylen)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	int r = sodium_ready(why, whylen);

	if (r == 0)
		r = read_key(path, SEC_TAG, PUB_TAG, seed, sizeof(seed), why, whylen);
	if (r == 0) {
		crypto_sign_seed_keypair(ret->pub.pk, ret->sk, seed);
		key_id(&ret->pub);
	}
	sodium_memzero(seed, sizeof(seed));
	return r;
}

void hc_seckey_wipe(struct hc_seckey *k)
{
	sodium_memzero(k, sizeof(*k));
}

int hc_index_serialize_signed(hc_index *idx, const struct hc_seckey *k, uint8_t **ret,
			      size_t *ret_len)
{
	uint8_t data[HC_SIG_SECT_LEN] = { 0 }, *buf, *sig;
	struct hc_section *s;
	size_t len;
	char why[64];
	int r = sodium_ready(why, sizeof(why));

	if (r < 0)
		return r;
	if (hc_index_find_section(idx, HC_SECT_SIGNATURE))
		return -EEXIST;
	/* The header's section count must include the signature before
	 * the bytes it covers are signed: a placeholder first. */
	hc_put32(data, HC_SIG_ALG_ED25519);
	memcpy(data + 8, k->pub.pk, HC_SIG_PUBLEN);
	r = hc_index_add_section(idx, HC_SECT_SIGNATURE, 0, data, sizeof(data));
	if (r < 0)
		return r;
	s = &idx->sections[idx->nsections - 1];
	r = hc_index_serialize(idx, &buf, &len);
	if (r < 0) {
		free(s->data);
		idx->nsections--;
		return r;
	}
	sig = buf + s->offset + 16 + 8 + HC_SIG_PUBLEN;
	crypto_sign_detached(sig, NULL, buf, s->offset, k->sk);
	memcpy(s->data + 8 + HC_SIG_PUBLEN, sig, HC_SIG_LEN);
	hc_sha256(buf, len - HC_SHA256_LEN, buf + len - HC_SHA256_LEN);
	hc_sha256(buf, len, idx->digest);
	*ret = buf;
	*ret_len = len;
	return 0;
}

int hc_index_signer(const hc_index *idx, struct hc_pubkey *ret, char *why, size_t whylen)
{
	const struct hc_section *s = hc_index_find_section(idx, HC_SECT_SIGNATURE);

	if (!s) {
		snprintf(why, whylen, "not signed");
		return -ENOKEY;
	}
	if (s->len != HC_SIG_SECT_LEN || hc_get32(s->data + 4)) {
		snprintf(why, whylen, "malformed signature section (%llu bytes)",
			 (unsigned long long)s->len);
		return -EBADMSG;
	}
	if (hc_get32(s->data) != HC_SIG_ALG_ED25519) {
		snprintf(why, whylen, "signed with unknown algorithm %u", hc_get32(s->data));
		return -EBADMSG;
	}
	memcpy(ret->pk, s->data + 8, HC_SIG_PUBLEN);
	key_id(ret);
	return 0;
}

/* Without sodium_init(): libsodium's Ed25519 verification is portable C
 * with no choice of implementation at run time, while sodium_init() picks
 * one for every primitive and so links them all in, 150 KB more in the
 * initrd's static hcloop, which only verifies. */
int hc_index_verify(const uint8_t *buf, size_t len, const hc_index *idx, const struct hc_pubkey *pk,
		    char *why, size_t whylen)
{
	const struct hc_section *s = hc_index_find_section(idx, HC_SECT_SIGNATURE);
	struct hc_pubkey signer;
	int r = hc_index_signer(idx, &signer, why, whylen);

	if (r == -ENOKEY) {
		snprintf(why, whylen, "is not signed, but --pubkey asks for a signature by key %s",
			 pk->id);
		return r;
	}
	if (r < 0)
		return r;
	if (memcmp(signer.pk, pk->pk, HC_SIG_PUBLEN)) {
		snprintf(why, whylen, "is signed by key %s, not by the trusted key %s (--pubkey)",
			 signer.id, pk->id);
		return -EKEYREJECTED;
	}
	if (s->offset > len ||
	    crypto_sign_verify_detached(s->data + 8 + HC_SIG_PUBLEN, buf, s->offset, pk->pk)) {
		snprintf(why, whylen, "has a bad signature by key %s: altered after it was signed",
			 pk->id);
		return -EBADMSG;
	}
	return 0;
}
