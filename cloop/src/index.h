/* The store's index format (cloop/FORMAT.md): parse, build, serialize.
 * Pure functions over byte buffers: no I/O here. */
#ifndef HC_INDEX_H
#define HC_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

#define HC_INDEX_MAGIC	 "HCLOOPIX"
#define HC_INDEX_VERSION 1
#define HC_HEADER_LEN	 64
#define HC_ENTRY_LEN	 40
#define HC_NAME_MAX	 128
#define HC_MIN_SHIFT	 12 /* 4 KiB */
#define HC_MAX_SHIFT	 22 /* 4 MiB */
#define HC_DEFAULT_SHIFT 17
#define HC_INDEX_MAX	 ((size_t)1 << 30)
/* "blocks/ab/" + 64 hex + NUL */
#define HC_BLOCK_PATH_LEN (10 + 2 * HC_SHA256_LEN + 1)

enum hc_codec {
	HC_CODEC_ZERO = 0, /* all-zero block: no file */
	HC_CODEC_RAW = 1,
	HC_CODEC_ZSTD = 2,
	HC_CODEC_ZLIB = 3,
};

enum hc_section_type {
	HC_SECT_MIRRORS = 1,   /* text: one store URL per line */
	HC_SECT_PROFILE = 2,   /* u32 LE block numbers: boot read order */
	HC_SECT_SIGNATURE = 3, /* signature over all bytes before it; last */
};
#define HC_SECT_CRITICAL 1u

struct hc_entry {
	uint8_t hash[HC_SHA256_LEN];
	uint32_t size; /* bytes of the block file */
	uint8_t codec;
};

struct hc_section {
	uint32_t type;
	uint32_t flags;
	uint64_t len;
	uint8_t *data;
	uint64_t offset; /* where its header starts in the serialized index */
};

typedef struct hc_index {
	uint64_t image_size;
	uint32_t block_shift;
	uint32_t codec; /* what the builder asked for; blocks may be RAW */
	uint64_t block_count;
	uint64_t serial;  /* grows by one per version of an image */
	uint64_t created; /* Unix seconds */
	char name[HC_NAME_MAX + 1];
	char version[HC_NAME_MAX + 1];
	struct hc_entry *entries;
	size_t nsections;
	struct hc_section *sections;
	uint8_t digest[HC_SHA256_LEN]; /* SHA-256 of the whole index file */
} hc_index;

/* Names and versions become path components and URL parts. */
int hc_name_valid(const char *s);

hc_index *hc_index_new(const char *name, const char *version, uint64_t image_size,
		       unsigned block_shift, unsigned codec);
void hc_index_free(hc_index *idx);
int hc_index_add_section(hc_index *idx, uint32_t type, uint32_t flags, const void *data,
			 size_t len);
const struct hc_section *hc_index_find_section(const hc_index *idx, uint32_t type);

/* -EBADMSG (with *ret_why saying what is wrong) for anything malformed;
 * a parsed index is internally consistent. */
int hc_index_parse(const uint8_t *buf, size_t len, hc_index **ret, const char **ret_why);
/* Also fills idx->digest. */
int hc_index_serialize(hc_index *idx, uint8_t **ret, size_t *ret_len);

static inline uint64_t hc_index_block_size(const hc_index *idx)
{
	return (uint64_t)1 << idx->block_shift;
}
/* Length of block i once decompressed (the last one may be short). */
uint32_t hc_index_block_len(const hc_index *idx, uint64_t i);

void hc_block_path(const uint8_t hash[HC_SHA256_LEN], char out[HC_BLOCK_PATH_LEN]);
const char *hc_codec_name(unsigned codec);
int hc_codec_from_name(const char *s);

/* index/NAME/latest: "VERSION SERIAL SHA256HEX\n". */
struct hc_latest {
	char version[HC_NAME_MAX + 1];
	uint64_t serial;
	uint8_t digest[HC_SHA256_LEN];
};
int hc_latest_parse(const char *buf, size_t len, struct hc_latest *ret);
int hc_latest_format(const struct hc_latest *l, char *buf, size_t len);

#endif
