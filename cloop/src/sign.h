/* Signed indexes (FORMAT.md, section type 3): Ed25519 keys in small text
 * files, signing an index as it is serialized, and checking a fetched
 * index against the key a client trusts. */
#ifndef HC_SIGN_H
#define HC_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"

#define HC_SIG_ALG_ED25519 1
#define HC_SIG_PUBLEN	   32
#define HC_SIG_LEN	   64
/* algorithm (4), reserved (4), public key, signature */
#define HC_SIG_SECT_LEN (8 + HC_SIG_PUBLEN + HC_SIG_LEN)
/* 16 hex digits: the first 8 bytes of the public key's SHA-256. */
#define HC_KEYID_LEN 17

struct hc_pubkey {
	uint8_t pk[HC_SIG_PUBLEN];
	char id[HC_KEYID_LEN];
};

struct hc_seckey {
	uint8_t sk[64]; /* libsodium's: the seed, then the public key */
	struct hc_pubkey pub;
};

/* Writes base.sec (mode 0600) and base.pub; never replaces an existing
 * file. 0, or -errno with why saying what went wrong. */
int hc_key_generate(const char *base, struct hc_pubkey *ret, char *why, size_t whylen);
int hc_pubkey_load(const char *path, struct hc_pubkey *ret, char *why, size_t whylen);
int hc_seckey_load(const char *path, struct hc_seckey *ret, char *why, size_t whylen);
void hc_seckey_wipe(struct hc_seckey *k);

/* hc_index_serialize with a signature section by k appended; idx must
 * not have one yet. Also fills idx->digest. */
int hc_index_serialize_signed(hc_index *idx, const struct hc_seckey *k, uint8_t **ret,
			      size_t *ret_len);
/* The key named in idx's signature section: 0, -ENOKEY when unsigned,
 * -EBADMSG for a section that is not one this reader knows. */
int hc_index_signer(const hc_index *idx, struct hc_pubkey *ret, char *why, size_t whylen);
/* buf is the serialized idx (as parsed). 0 when signed by pk with a good
 * signature; -ENOKEY unsigned, -EKEYREJECTED signed by another key,
 * -EBADMSG a bad signature or section; why says which. */
int hc_index_verify(const uint8_t *buf, size_t len, const hc_index *idx, const struct hc_pubkey *pk,
		    char *why, size_t whylen);

#endif
