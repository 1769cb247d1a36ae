/* Block fetcher: see fetch.h. The loop follows curl's own pattern:
 * perform, drain finished transfers, refill from the queues, poll.
 *
 * Mirrors: each transfer goes to the best usable mirror, where "best" is
 * the order the user gave unless a later mirror has proved clearly faster.
 * A mirror that fails is down for a while (doubling with each failure in a
 * row); one that serves a block with a wrong hash is distrusted for
 * opts.distrust seconds. Now and then a transfer goes to another mirror
 * to measure it, so a recovered or faster one is used again.
 *
 * Peers (a demo booth's booted machines serving their caches) come from a
 * list the booth publishes, re-read by a thread of their own; they take
 * slots after the mirrors and are tried first, each block at the peer its
 * hash picks, so that a room's load spreads over them. A peer's 404 only
 * means it does not hold that block: on to the next, nothing held against
 * it. A peer that lies is distrusted like a mirror; one that leaves fails
 * like a mirror, and the next one takes over at once. */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index.h"
#include "util.h"

enum { Q_NONE, Q_URGENT, Q_BACKGROUND, Q_RETRY, Q_ACTIVE };

struct queue {
	hc_fetch_req *head, *tail;
	unsigned n;
};

/* Time of the last byte, so a transfer that stops moving for the
 * timeout is given up however much it sent before. */
struct stall {
	double last;
	double limit;
};

#define MAX_MIRRORS 64
/* A later mirror takes over when its transfers take less than this share
 * of the preferred one's: measurements are noisy, switching is not free. */
#define FASTER 0.7
/* Peers asked for one block in a round before the mirrors: a block that
 * two peers lack is likely new to the room, and a round trip to every
 * peer in it would cost more than the store's copy. */
#define PEER_TRIES 2

struct mirror {
	char *url;
	double score;	       /* EWMA of seconds per transfer; 0: not measured */
	double measured;       /* when score last changed */
	double down_until;     /* failing: avoided until then */
	double distrust_until; /* served a wrong block: avoided until then */
	unsigned fails;	       /* failures in a row */
	uint64_t fetched, bytes, errors, bad;
	int peer;	  /* from the peer list: tried before the mirrors */
	int gone;	  /* a peer no longer listed: never picked */
	uint64_t missing; /* a peer's 404s: blocks it does not hold */
};

struct xfer {
	struct stall stall; /* first: on_progress gets it as its data */
	CURL *easy;
	hc_fetch_req *req;
	int background;
	char errbuf[CURL_ERROR_SIZE];
	struct xfer *next_free;
};

struct hc_fetcher {
	struct mirror *m;
	unsigned nm;
	struct hc_fetch_opts o;
	unsigned bg_active;
	/* bg_rate's token bucket: bytes background transfers may still
	 * start (negative: in debt), as of bg_at. */
	double bg_tokens, bg_at;
	double next_probe;
	CURLM *multi;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	int stop;
	struct queue q[Q_ACTIVE + 1];
	struct xfer *xfers, *free_xfers;
	uint64_t requests, fetched, bytes, retries, failures, http2, failovers;
	/* The peer list's thread: woken early only to stop. */
	pthread_t peers_thread;
	int peers_started;
	pthread_cond_t peers_cond;
	unsigned npeers;
	uint64_t peer_lists, peer_list_errors;
};

void hc_fetch_opts_default(struct hc_fetch_opts *o)
{
	/* Enough in flight that a download-ahead fills a long fat link while
	 * a reader's miss still finds a free connection. */
	o->connections = 32;
	o->timeout = 10;
	o->retries = 4;
	o->backoff = 0.25;
	o->cacert = NULL;
	o->bg_connections = 24;
	o->bg_rate = 0;
	o->distrust = 300;
	o->probe_interval = 10;
	o->peers = NULL;
	o->peers_interval = 10;
}

int hc_fetch_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void hc_fetch_global_cleanup(void)
{
	curl_global_cleanup();
}

static void q_push(struct queue *q, hc_fetch_req *r, int which)
{
	r->queue = which;
	r->next = NULL;
	r->prev = q->tail;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->n++;
}

static void q_remove(struct queue *q, hc_fetch_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		q->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		q->tail = r->prev;
	r->next = r->prev = NULL;
	r->queue = Q_NONE;
	q->n--;
}

static int on_progress(void *opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct stall *st = opaque;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return hc_now() - st->last > st->limit;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *opaque)
{
	struct xfer *x = opaque;
	hc_fetch_req *r = x->req;
	size_t n = size * nmemb;

	x->stall.last = hc_now();
	/* Never buffer more than the index promised: a longer body is a
	 * wrong block whatever else it holds. */
	if (n > r->size - r->got) {
		r->overflow = 1;
		return 0;
	}
	memcpy(r->buf + r->got, ptr, n);
	r->got += n;
	return n;
}

static void set_common(CURL *e, const struct hc_fetch_opts *o, char *errbuf)
{
	long t = (long)o->timeout;

	if ((double)t < o->timeout)
		t++;

	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->timeout * 1000));
	/* Stalls are caught by on_progress; curl's own low-speed check
	 * averages over seconds and lets a stalled body hang on longer. */
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "hcloop/1");
	if (o->cacert)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->cacert);
}

/* 0 if the transfer gave exactly the promised bytes with a success
 * status; otherwise why says what went wrong. */
static int transfer_result(CURL *e, CURLcode res, const char *errbuf, int overflow, size_t got,
			   size_t want, char *why, size_t whylen, int *ret_missing)
{
	long code = 0;
	char *scheme = NULL;

	*ret_missing = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(e, CURLINFO_SCHEME, &scheme);
	if (overflow) {
		snprintf(why, whylen, "body longer than the expected %zu bytes", want);
		return -EIO;
	}
	if (res == CURLE_FILE_COULDNT_READ_FILE) {
		*ret_missing = 1;
		snprintf(why, whylen, "no such file");
		return -ENOENT;
	}
	if (res == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(why, whylen, "stalled: no data within the timeout");
		return -EIO;
	}
	if (res != CURLE_OK) {
		const char *what = curl_easy_strerror(res);
		/* The error buffer often repeats the generic text. */
		int same = !*errbuf || !strcmp(errbuf, what);

		snprintf(why, whylen, "%s%s%s", what, same ? "" : ": ", same ? "" : errbuf);
		return -EIO;
	}
	if (scheme && strcasecmp(scheme, "file") && code != 200) {
		*ret_missing = code == 404 || code == 410;
		snprintf(why, whylen, "HTTP %ld", code);
		return *ret_missing ? -ENOENT : -EIO;
	}
	if (want != (size_t)-1 && got != want) {
		snprintf(why, whylen, "got %zu bytes, expected %zu", got, want);
		return -EIO;
	}
	return 0;
}

unsigned hc_fetch_bg_limit(const struct hc_fetch_opts *o)
{
	unsigned n = o->bg_connections;

	return n && n < o->connections ? n : o->connections;
}

/* The mirrors in use, a bit each: all but peers no longer listed. */
static uint64_t live_mask(const hc_fetcher *f)
{
	uint64_t all = 0;

	for (unsigned i = 0; i < f->nm; i++)
		if (!f->m[i].gone)
			all |= 1ull << i;
	return all;
}

/* With the lock held: the mirror for r's next attempt, one it has not
 * tried in this round. A usable peer first (PEER_TRIES at most), the one
 * r's hash picks among them; then the first usable mirror in the user's order unless a later
 * one is clearly faster; the least recently measured one when a probe is
 * due; with none usable, the one that comes back first. */
static unsigned pick_mirror(hc_fetcher *f, const hc_fetch_req *r, double now)
{
	unsigned best = f->nm, stalest = f->nm, any = f->nm, npeers = 0, peers[MAX_MIRRORS];
	unsigned peers_tried = 0;
	double soonest = 0;

	for (unsigned i = 0; i < f->nm; i++)
		peers_tried += f->m[i].peer && (r->tried >> i & 1);
	for (unsigned i = 0; i < f->nm; i++) {
		const struct mirror *m = &f->m[i];
		double back = m->down_until > m->distrust_until ? m->down_until : m->distrust_until;

		if (m->gone || r->tried >> i & 1)
			continue;
		if (any == f->nm || back < soonest) {
			any = i;
			soonest = back;
		}
		if (back > now)
			continue;
		if (m->peer) {
			if (peers_tried < PEER_TRIES)
				peers[npeers++] = i;
			continue;
		}
		if (best == f->nm ||
		    (m->score > 0 && f->m[best].score > 0 && m->score < FASTER * f->m[best].score))
			best = i;
		if (stalest == f->nm || m->measured < f->m[stalest].measured)
			stalest = i;
	}
	if (npeers)
		return peers[((unsigned)r->hash[0] << 8 | r->hash[1]) % npeers];
	if (best == f->nm)
		return any == f->nm ? 0 : any;
	if (stalest != best && now >= f->next_probe) {
		f->next_probe = now + f->o.probe_interval;
		return stalest;
	}
	return best;
}

/* 0, or -ENOMEM with the request not started. */
static int start_one(hc_fetcher *f, hc_fetch_req *r, double now)
{
	char rel[HC_BLOCK_PATH_LEN];
	struct xfer *x = f->free_xfers;
	char *url;

	/* Allocated only now: a download-ahead may queue thousands. */
	r->buf = malloc(r->size ? r->size : 1);
	if (!r->buf)
		return -ENOMEM;
	f->free_xfers = x->next_free;
	x->req = r;
	x->errbuf[0] = '\0';
	x->background = !r->urgent;
	if (x->background) {
		f->bg_active++;
		f->bg_tokens -= r->size;
	}
	r->got = 0;
	r->overflow = 0;
	r->attempts++;
	r->mirror = pick_mirror(f, r, now);
	hc_block_path(r->hash, rel);
	url = hc_url_join(f->m[r->mirror].url, rel);
	curl_easy_setopt(x->easy, CURLOPT_URL, url);
	free(url);
	x->stall.last = now;
	x->stall.limit = f->o.timeout;
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_XFERINFODATA, &x->stall);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->size);
	curl_multi_add_handle(f->multi, x->easy);
	return 0;
}

static void complete(hc_fetcher *f, hc_fetch_req *r, int err);

/* With the lock held: whether bg_rate lets another background transfer
 * start now. A transfer is charged whole when it starts: a block file
 * arrives in a few reads, too fast for a per-transfer speed limit. */
static int bg_may_start(hc_fetcher *f, double now)
{
	double burst;

	if (!f->o.bg_rate)
		return 1;
	burst = (double)f->o.bg_rate / 4;
	f->bg_tokens += (double)f->o.bg_rate * (now - f->bg_at);
	if (f->bg_tokens > burst)
		f->bg_tokens = burst;
	f->bg_at = now;
	return f->bg_tokens >= 0;
}

/* Runs with the lock held: moves due retries back and fills free slots,
 * urgent first; background fetches only up to their share. */
static void refill(hc_fetcher *f, double now)
{
	hc_fetch_req *r, *next;

	for (r = f->q[Q_RETRY].head; r; r = next) {
		next = r->next;
		if (r->not_before <= now) {
			q_remove(&f->q[Q_RETRY], r);
			q_push(&f->q[r->urgent ? Q_URGENT : Q_BACKGROUND], r,
			       r->urgent ? Q_URGENT : Q_BACKGROUND);
		}
	}
	while (f->free_xfers) {
		struct queue *q = &f->q[Q_URGENT];

		if (!q->head && f->bg_active < hc_fetch_bg_limit(&f->o) && bg_may_start(f, now))
			q = &f->q[Q_BACKGROUND];
		r = q->head;
		if (!r)
			break;
		q_remove(q, r);
		if (start_one(f, r, now) < 0) {
			snprintf(r->why, sizeof(r->why), "block %llu: out of memory",
				 (unsigned long long)r->block);
			complete(f, r, -ENOMEM);
			continue;
		}
		q_push(&f->q[Q_ACTIVE], r, Q_ACTIVE);
	}
}

static void complete(hc_fetcher *f, hc_fetch_req *r, int err)
{
	uint8_t *data = NULL;

	if (err == 0) {
		data = r->buf;
		f->fetched++;
		f->bytes += r->size;
	} else {
		free(r->buf);
		f->failures++;
	}
	r->buf = NULL;
	/* Unlocked: the callback may take its owner's locks. */
	pthread_mutex_unlock(&f->lock);
	r->cb(r, err, data, r->opaque);
	pthread_mutex_lock(&f->lock);
}

/* With the lock held: how a finished transfer reflects on its mirror. */
static void judge_mirror(hc_fetcher *f, struct xfer *x, int err, int missing, double now)
{
	struct mirror *m = &f->m[x->req->mirror];
	curl_off_t total = 0, pre = 0;

	if (err == 0) {
		m->fetched++;
		m->bytes += x->req->size;
		m->fails = 0;
		m->down_until = 0;
		/* Capped transfers say nothing about the mirror's speed. */
		if (!(x->background && f->o.bg_rate) &&
		    curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total) == CURLE_OK &&
		    curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK) {
			double t = (double)(total - pre) / 1e6;

			m->score = m->score > 0 ? 0.7 * m->score + 0.3 * t : t;
			m->measured = now;
		}
		return;
	}
	if (missing && m->peer) {
		m->missing++;
		return;
	}
	m->errors++;
	if (err == -EBADMSG) {
		m->bad++;
		if (m->distrust_until <= now && f->nm > 1)
			hc_warn("mirror %s served a block that does not match its SHA-256 name: "
				"avoided for %.0f s",
				m->url, f->o.distrust);
		m->distrust_until = now + f->o.distrust;
	} else if (!missing) {
		/* A missing file is that mirror lagging, not the mirror down. */
		double hold = 0.5 * (double)(1u << (m->fails < 6 ? m->fails : 6));

		if (m->down_until <= now && f->nm > 1)
			hc_warn("mirror %s failing (%s): using the others for %.1f s", m->url,
				x->req->why, hold);
		m->fails++;
		m->down_until = now + hold;
	}
}

static void finish_one(hc_fetcher *f, CURLMsg *msg, double now)
{
	struct xfer *x;
	hc_fetch_req *r;
	char rel[HC_BLOCK_PATH_LEN], why[256];
	uint8_t sum[HC_SHA256_LEN];
	int missing, err;
	long version = 0;
	uint64_t all = live_mask(f);
	unsigned limit = f->o.retries + f->nm;

	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
	r = x->req;
	err = transfer_result(x->easy, msg->data.result, x->errbuf, r->overflow, r->got, r->size,
			      why, sizeof(why), &missing);
	curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &version);
	if (err == 0) {
		hc_sha256(r->buf, r->size, sum);
		if (memcmp(sum, r->hash, HC_SHA256_LEN)) {
			snprintf(why, sizeof(why), "content does not match its SHA-256 name");
			err = -EBADMSG;
		}
	}
	hc_block_path(r->hash, rel);
	snprintf(r->why, sizeof(r->why), "block %llu (%s) from %s: %s (attempt %u of %u)",
		 (unsigned long long)r->block, rel, f->m[r->mirror].url, why, r->attempts, limit);
	judge_mirror(f, x, err, missing, now);
	/* msg is gone after this. */
	curl_multi_remove_handle(f->multi, x->easy);
	if (x->background)
		f->bg_active--;
	x->req = NULL;
	x->next_free = f->free_xfers;
	f->free_xfers = x;
	q_remove(&f->q[Q_ACTIVE], r);
	if (err == 0) {
		if (version == CURL_HTTP_VERSION_2_0)
			f->http2++;
		r->why[0] = '\0';
		complete(f, r, 0);
		return;
	}
	free(r->buf);
	r->buf = NULL;
	r->tried |= 1ull << r->mirror;
	if (r->attempts < limit && !f->stop) {
		f->retries++;
		if ((r->tried & all) != all) {
			/* Another mirror may have it: no reason to wait. */
			f->failovers++;
			hc_debug("%s; trying another mirror", r->why);
			r->not_before = now;
		} else {
			hc_debug("%s; retrying", r->why);
			r->tried = 0;
			r->not_before = now + f->o.backoff * (double)(1u << r->rounds++);
		}
		q_push(&f->q[Q_RETRY], r, Q_RETRY);
		return;
	}
	if (f->nm > 1) {
		char last[sizeof(r->why)];

		memcpy(last, r->why, sizeof(last));
		snprintf(r->why, sizeof(r->why), "every mirror failed; last: %.480s", last);
	}
	complete(f, r, -EIO);
}

static long poll_timeout_ms(hc_fetcher *f, double now)
{
	double t = 1.0;

	for (hc_fetch_req *r = f->q[Q_RETRY].head; r; r = r->next)
		if (r->not_before - now < t)
			t = r->not_before - now;
	/* Background work waiting for the rate's tokens. */
	if (f->q[Q_BACKGROUND].head && f->o.bg_rate && f->bg_tokens < 0 &&
	    -f->bg_tokens / (double)f->o.bg_rate < t)
		t = -f->bg_tokens / (double)f->o.bg_rate;
	return t <= 0 ? 0 : (long)(t * 1000) + 1;
}

static void cancel_all(hc_fetcher *f)
{
	for (int q = Q_URGENT; q <= Q_ACTIVE; q++) {
		hc_fetch_req *r;

		while ((r = f->q[q].head)) {
			q_remove(&f->q[q], r);
			snprintf(r->why, sizeof(r->why), "block %llu: fetcher stopped",
				 (unsigned long long)r->block);
			complete(f, r, -ECANCELED);
		}
	}
}

static void *fetch_thread(void *arg)
{
	hc_fetcher *f = arg;

	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		int running, left;
		CURLMsg *msg;
		long timeout;

		refill(f, hc_now());
		pthread_mutex_unlock(&f->lock);
		curl_multi_perform(f->multi, &running);
		pthread_mutex_lock(&f->lock);
		while ((msg = curl_multi_info_read(f->multi, &left)))
			if (msg->msg == CURLMSG_DONE)
				finish_one(f, msg, hc_now());
		refill(f, hc_now());
		timeout = poll_timeout_ms(f, hc_now());
		pthread_mutex_unlock(&f->lock);
		curl_multi_poll(f->multi, NULL, 0, (int)timeout, NULL);
		pthread_mutex_lock(&f->lock);
	}
	for (struct xfer *x = f->xfers; x < f->xfers + f->o.connections; x++)
		if (x->req)
			curl_multi_remove_handle(f->multi, x->easy);
	cancel_all(f);
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* With the lock held: whether a transfer is in flight to mirror i (its
 * slot may not be given to another peer yet). */
static int in_use(const hc_fetcher *f, unsigned i)
{
	for (unsigned k = 0; k < f->o.connections; k++)
		if (f->xfers[k].req && f->xfers[k].req->mirror == i)
			return 1;
	return 0;
}

unsigned hc_fetcher_set_peers(hc_fetcher *f, char *const *urls, size_t n)
{
	unsigned listed = 0, full = 0;

	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->nm; i++)
		if (f->m[i].peer)
			f->m[i].gone = 1;
	for (size_t k = 0; k < n; k++) {
		unsigned i, slot = f->nm;
		char *url;

		for (i = 0; i < f->nm; i++)
			if (!strcmp(f->m[i].url, urls[k]))
				break;
		if (i < f->nm) {
			/* A mirror's own URL, a peer listed twice, or a peer back. */
			if (f->m[i].peer && f->m[i].gone) {
				f->m[i].gone = 0;
				listed++;
			}
			continue;
		}
		for (i = 0; i < f->nm; i++)
			if (f->m[i].peer && f->m[i].gone && !in_use(f, i)) {
				slot = i;
				break;
			}
		if (slot == f->nm && f->nm == MAX_MIRRORS) {
			full++;
			continue;
		}
		url = strdup(urls[k]);
		if (!url)
			continue;
		if (slot < f->nm)
			free(f->m[slot].url);
		memset(&f->m[slot], 0, sizeof(f->m[slot]));
		f->m[slot].url = url;
		f->m[slot].peer = 1;
		if (slot == f->nm)
			f->nm++;
		listed++;
	}
	f->npeers = listed;
	pthread_mutex_unlock(&f->lock);
	if (full)
		hc_warn("%u peers left out: at most %d mirrors and peers", full, MAX_MIRRORS);
	curl_multi_wakeup(f->multi);
	return listed;
}

/* Reads the peer list once with o's timeouts and puts its peers in place;
 * a list that cannot be read leaves the peers as they are (said once
 * until it can be read again: *failing). */
static void read_peer_list(hc_fetcher *f, const struct hc_fetch_opts *o, int *failing)
{
	uint8_t *text = NULL;
	size_t len = 0, n = 0;
	char **v = NULL, why[256];
	int r;

	r = hc_fetch_file(f->o.peers, o, 1 << 20, &text, &len, why, sizeof(why));
	if (r == 0)
		r = hc_peers_parse((const char *)text, len, MAX_MIRRORS, &v, &n);
	free(text);
	if (r == 0) {
		unsigned listed = hc_fetcher_set_peers(f, v, n);

		if (*failing)
			hc_warn("peer list %s readable again: %u peers", f->o.peers, listed);
		*failing = 0;
		hc_debug("peer list %s: %u peers", f->o.peers, listed);
	} else if (!*failing) {
		hc_warn("peer list %s: %s: keeping the peers known so far", f->o.peers,
			r == -ENOMEM ? "out of memory" : why);
		*failing = 1;
	}
	hc_urls_free(v, n);
	pthread_mutex_lock(&f->lock);
	if (r == 0)
		f->peer_lists++;
	else
		f->peer_list_errors++;
	pthread_mutex_unlock(&f->lock);
}

/* Reads the peer list every peers_interval seconds until the fetcher
 * stops (hc_fetcher_new read it first). */
static void *peers_thread(void *arg)
{
	hc_fetcher *f = arg;
	double wait = f->o.peers_interval > 0.1 ? f->o.peers_interval : 0.1;
	int failing = f->peer_list_errors > 0;

	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		struct timespec until;
		int stopped;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)wait;
		until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		/* Woken early only by hc_fetcher_free. */
		while (!f->stop &&
		       pthread_cond_timedwait(&f->peers_cond, &f->lock, &until) != ETIMEDOUT)
			;
		stopped = f->stop;
		pthread_mutex_unlock(&f->lock);
		if (!stopped)
			read_peer_list(f, &f->o, &failing);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

hc_fetcher *hc_fetcher_new(const char *urls, const struct hc_fetch_opts *o)
{
	hc_fetcher *f = calloc(1, sizeof(*f));
	char **v = NULL;
	size_t n = 0;

	if (!f)
		return NULL;
	f->o = *o;
	if (!f->o.connections)
		f->o.connections = 1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->peers_cond, NULL);
	if (hc_urls_split(urls, &v, &n) < 0 || n > MAX_MIRRORS) {
		hc_urls_free(v, n);
		goto fail;
	}
	/* Room for peers to join. */
	f->m = calloc(MAX_MIRRORS, sizeof(*f->m));
	for (size_t i = 0; f->m && i < n; i++) {
		f->m[i].url = v[i];
		v[i] = NULL;
	}
	hc_urls_free(v, n);
	f->nm = f->m ? (unsigned)n : 0;
	f->next_probe = f->bg_at = hc_now();
	f->next_probe += f->o.probe_interval;
	f->multi = curl_multi_init();
	f->xfers = calloc(f->o.connections, sizeof(*f->xfers));
	if (!f->m || !f->multi || !f->xfers)
		goto fail;
	curl_multi_setopt(f->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)f->o.connections);
	curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS,
			  (long)(f->o.connections * (f->o.peers ? MAX_MIRRORS / 4 : f->nm)));
	for (unsigned i = 0; i < f->o.connections; i++) {
		struct xfer *x = &f->xfers[i];

		x->easy = curl_easy_init();
		if (!x->easy)
			goto fail;
		set_common(x->easy, &f->o, x->errbuf);
		curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
		x->next_free = f->free_xfers;
		f->free_xfers = x;
	}
	if (f->o.peers) {
		/* Before the first transfer, so that a download-ahead's first
		 * wave goes to peers too; quickly, since a booth's list server
		 * is on the same network, and a dead one must not hold the mount. */
		struct hc_fetch_opts first = f->o;
		int failing = 0;

		first.timeout = first.timeout < 2 ? first.timeout : 2;
		first.retries = 0;
		read_peer_list(f, &first, &failing);
	}
	if (pthread_create(&f->thread, NULL, fetch_thread, f))
		goto fail;
	f->started = 1;
	if (f->o.peers) {
		if (pthread_create(&f->peers_thread, NULL, peers_thread, f))
			goto fail;
		f->peers_started = 1;
	}
	return f;
fail:
	hc_fetcher_free(f);
	return NULL;
}

void hc_fetcher_free(hc_fetcher *f)
{
	if (!f)
		return;
	if (f->started) {
		pthread_mutex_lock(&f->lock);
		f->stop = 1;
		pthread_cond_broadcast(&f->peers_cond);
		pthread_mutex_unlock(&f->lock);
		curl_multi_wakeup(f->multi);
		pthread_join(f->thread, NULL);
		/* At most one list fetch (opts.timeout and retries) to wait for. */
		if (f->peers_started)
			pthread_join(f->peers_thread, NULL);
	}
	for (unsigned i = 0; f->xfers && i < f->o.connections; i++)
		if (f->xfers[i].easy)
			curl_easy_cleanup(f->xfers[i].easy);
	if (f->multi)
		curl_multi_cleanup(f->multi);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->peers_cond);
	free(f->xfers);
	for (unsigned i = 0; i < f->nm; i++)
		free(f->m[i].url);
	free(f->m);
	free(f);
}

void hc_fetcher_submit(hc_fetcher *f, hc_fetch_req *r)
{
	int which;

	r->attempts = r->rounds = 0;
	r->tried = 0;
	r->why[0] = '\0';
	r->buf = NULL;
	pthread_mutex_lock(&f->lock);
	f->requests++;
	if (f->stop) {
		snprintf(r->why, sizeof(r->why), "block %llu: fetcher stopped",
			 (unsigned long long)r->block);
		complete(f, r, -ECANCELED);
		pthread_mutex_unlock(&f->lock);
		return;
	}
	/* Read under the lock: a reader may be making it urgent right now. */
	which = r->urgent ? Q_URGENT : Q_BACKGROUND;
	q_push(&f->q[which], r, which);
	pthread_mutex_unlock(&f->lock);
	curl_multi_wakeup(f->multi);
}

void hc_fetcher_make_urgent(hc_fetcher *f, hc_fetch_req *r)
{
	pthread_mutex_lock(&f->lock);
	r->urgent = 1;
	if (r->queue == Q_BACKGROUND) {
		q_remove(&f->q[Q_BACKGROUND], r);
		q_push(&f->q[Q_URGENT], r, Q_URGENT);
	}
	pthread_mutex_unlock(&f->lock);
	curl_multi_wakeup(f->multi);
}

void hc_fetcher_stats(hc_fetcher *f, struct hc_fetch_stats *s)
{
	pthread_mutex_lock(&f->lock);
	s->requests = f->requests;
	s->fetched = f->fetched;
	s->bytes = f->bytes;
	s->retries = f->retries;
	s->failures = f->failures;
	s->http2 = f->http2;
	s->failovers = f->failovers;
	s->bg_in_flight = f->bg_active;
	s->in_flight = f->q[Q_ACTIVE].n;
	s->queued = f->q[Q_URGENT].n + f->q[Q_BACKGROUND].n + f->q[Q_RETRY].n;
	s->peers = f->npeers;
	s->peer_fetched = s->peer_bytes = 0;
	for (unsigned i = 0; i < f->nm; i++)
		if (f->m[i].peer) {
			s->peer_fetched += f->m[i].fetched;
			s->peer_bytes += f->m[i].bytes;
		}
	s->peer_lists = f->peer_lists;
	s->peer_list_errors = f->peer_list_errors;
	pthread_mutex_unlock(&f->lock);
}

int hc_fetcher_mirrors_text(hc_fetcher *f, char *buf, size_t len)
{
	double now = hc_now();
	size_t off = 0;

	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->nm; i++) {
		const struct mirror *m = &f->m[i];
		const char *state = m->gone		      ? "gone"
				    : m->distrust_until > now ? "distrusted"
				    : m->down_until > now     ? "down"
							      : "up";
		int n = snprintf(buf + off, len - off,
				 "mirror.%u.url %s\nmirror.%u.state %s\nmirror.%u.fetched %llu\n"
				 "mirror.%u.bytes %llu\nmirror.%u.errors %llu\nmirror.%u.bad %llu\n"
				 "mirror.%u.ms_per_block %.1f\n",
				 i, m->url, i, state, i, (unsigned long long)m->fetched, i,
				 (unsigned long long)m->bytes, i, (unsigned long long)m->errors, i,
				 (unsigned long long)m->bad, i, m->score * 1000);

		if (n >= 0 && (size_t)n < len - off && m->peer) {
			off += (size_t)n;
			n = snprintf(buf + off, len - off,
				     "mirror.%u.peer 1\nmirror.%u.missing %llu\n", i, i,
				     (unsigned long long)m->missing);
		}

		if (n < 0 || (size_t)n >= len - off) {
			pthread_mutex_unlock(&f->lock);
			return -ENOSPC;
		}
		off += (size_t)n;
	}
	pthread_mutex_unlock(&f->lock);
	return (int)off;
}

struct membuf {
	struct stall stall;
	uint8_t *buf;
	size_t len, max;
	int overflow;
};

static size_t on_file_data(char *ptr, size_t size, size_t nmemb, void *opaque)
{
	struct membuf *m = opaque;
	size_t n = size * nmemb;
	uint8_t *nb;

	m->stall.last = hc_now();
	if (n > m->max - m->len) {
		m->overflow = 1;
		return 0;
	}
	nb = realloc(m->buf, m->len + n + 1);
	if (!nb)
		return 0;
	m->buf = nb;
	memcpy(m->buf + m->len, ptr, n);
	m->len += n;
	return n;
}

int hc_fetch_file(const char *url, const struct hc_fetch_opts *o, size_t max, uint8_t **ret,
		  size_t *ret_len, char *why, size_t whylen)
{
	char errbuf[CURL_ERROR_SIZE], msg[256];
	CURL *e = curl_easy_init();
	int err = -EIO, missing = 0;

	if (!e)
		return -ENOMEM;
	set_common(e, o, errbuf);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_file_data);
	for (unsigned attempt = 0; attempt <= o->retries; attempt++) {
		struct membuf m = { .max = max, .stall = { hc_now(), o->timeout } };
		CURLcode res;

		if (attempt)
			usleep((useconds_t)(o->backoff * 1e6 * (double)(1u << (attempt - 1))));
		errbuf[0] = '\0';
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &m);
		curl_easy_setopt(e, CURLOPT_XFERINFODATA, &m.stall);
		res = curl_easy_perform(e);
		err = transfer_result(e, res, errbuf, m.overflow, m.len, (size_t)-1, msg,
				      sizeof(msg), &missing);
		if (err == 0) {
			*ret = m.buf ? m.buf : calloc(1, 1);
			*ret_len = m.len;
			break;
		}
		free(m.buf);
		snprintf(why, whylen, "%s: %s", url, msg);
		/* A clear "not there" is an answer, not a transient fault. */
		if (missing)
			break;
	}
	curl_easy_cleanup(e);
	return err;
}
