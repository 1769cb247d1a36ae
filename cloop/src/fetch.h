/* Fetching block files from a list of mirrors of one store: one thread
 * drives libcurl's multi interface (keep-alive, many transfers in flight,
 * HTTP/2 where offered), checks each body's length and SHA-256, moves a
 * failed fetch to the next mirror at once and retries with backoff when
 * every mirror failed it. Nothing unverified leaves here. */
#ifndef HC_FETCH_H
#define HC_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

struct hc_fetch_opts {
	unsigned connections; /* transfers in flight at most */
	double timeout;	      /* seconds to connect, or without a byte, before giving up */
	unsigned retries;     /* further attempts after the first */
	double backoff;	      /* seconds before the first retry; doubles each time */
	const char *cacert;   /* CA bundle for https:// (NULL: the system's) */
	/* Background fetches (download-ahead) leave the rest of the
	 * connections to readers, and share at most bg_rate bytes/s. */
	unsigned bg_connections; /* 0: all of them */
	uint64_t bg_rate;	 /* 0: no cap */
	double distrust;	 /* seconds a mirror that served a bad block is avoided */
	double probe_interval;	 /* seconds between probes of the other mirrors */
	/* A booth's peer list (hc_peers_parse's format), fetched now and
	 * every peers_interval seconds: its URLs are tried before the
	 * mirrors; a peer without a block (404) is "not there", not failing. */
	const char *peers; /* NULL: no peers */
	double peers_interval;
};
void hc_fetch_opts_default(struct hc_fetch_opts *o);
/* Transfers background fetches may have in flight at once. */
unsigned hc_fetch_bg_limit(const struct hc_fetch_opts *o);

typedef struct hc_fetcher hc_fetcher;
typedef struct hc_fetch_req hc_fetch_req;

/* Called on the fetch thread; must not block. On success data holds the
 * verified file and belongs to the callee; on failure err < 0, data is
 * NULL and req->why says what went wrong. */
typedef void (*hc_fetch_cb)(hc_fetch_req *req, int err, uint8_t *data, void *opaque);

struct hc_fetch_req {
	uint8_t hash[HC_SHA256_LEN];
	uint32_t size;
	uint64_t block; /* for log lines only */
	int urgent;	/* a reader waits: goes ahead of background fetches */
	hc_fetch_cb cb;
	void *opaque;
	char why[512];
	/* private to fetch.c */
	struct hc_fetch_req *next, *prev;
	int queue;
	unsigned attempts, rounds;
	uint64_t tried; /* mirrors tried in this round (bit per mirror) */
	unsigned mirror;
	double not_before;
	uint8_t *buf;
	size_t got;
	int overflow;
};

/* urls: a comma-separated mirror list, best first (at most 64, peers
 * included). */
hc_fetcher *hc_fetcher_new(const char *urls, const struct hc_fetch_opts *o);
/* Replaces the peers with urls[0..n): new ones join, unlisted ones are no
 * longer used, a mirror's URL is not a peer. Returns how many are listed. */
unsigned hc_fetcher_set_peers(hc_fetcher *f, char *const *urls, size_t n);
/* Stops the thread; pending requests complete with -ECANCELED. */
void hc_fetcher_free(hc_fetcher *f);
void hc_fetcher_submit(hc_fetcher *f, hc_fetch_req *req);
/* A reader now waits for a queued background request: move it ahead. */
void hc_fetcher_make_urgent(hc_fetcher *f, hc_fetch_req *req);

struct hc_fetch_stats {
	uint64_t requests, fetched, bytes, retries, failures;
	uint64_t http2;	    /* transfers that went over HTTP/2 */
	uint64_t failovers; /* fetches moved to another mirror */
	unsigned in_flight, queued, bg_in_flight;
	/* With opts.peers: peers listed now, blocks and bytes they served,
	 * lists read and lists that could not be read. */
	unsigned peers;
	uint64_t peer_fetched, peer_bytes, peer_lists, peer_list_errors;
};
void hc_fetcher_stats(hc_fetcher *f, struct hc_fetch_stats *ret);
/* One block of "mirror.N.KEY VALUE" lines per mirror, for .stats. */
int hc_fetcher_mirrors_text(hc_fetcher *f, char *buf, size_t len);

/* One small file (index, latest pointer) with the same timeouts and
 * retries. -ENOENT when the server says it does not exist. */
int hc_fetch_file(const char *url, const struct hc_fetch_opts *o, size_t max, uint8_t **ret,
		  size_t *ret_len, char *why, size_t whylen);

/* curl_global_init before any thread starts. */
int hc_fetch_global_init(void);
void hc_fetch_global_cleanup(void);

#endif
