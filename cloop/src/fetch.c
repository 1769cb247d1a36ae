/* Block fetcher: see fetch.h. The loop follows curl's own pattern:
 * perform, drain finished transfers, refill from the queues, poll. */
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

struct xfer {
	struct stall stall; /* first: on_progress gets it as its data */
	CURL *easy;
	hc_fetch_req *req;
	char errbuf[CURL_ERROR_SIZE];
	struct xfer *next_free;
};

struct hc_fetcher {
	char *base;
	struct hc_fetch_opts o;
	CURLM *multi;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	int stop;
	struct queue q[Q_ACTIVE + 1];
	struct xfer *xfers, *free_xfers;
	uint64_t requests, fetched, bytes, retries, failures, http2;
};

void hc_fetch_opts_default(struct hc_fetch_opts *o)
{
	o->connections = 8;
	o->timeout = 10;
	o->retries = 4;
	o->backoff = 0.25;
	o->cacert = NULL;
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

static void start_one(hc_fetcher *f, hc_fetch_req *r)
{
	char rel[HC_BLOCK_PATH_LEN];
	struct xfer *x = f->free_xfers;
	char *url;

	f->free_xfers = x->next_free;
	x->req = r;
	x->errbuf[0] = '\0';
	r->got = 0;
	r->overflow = 0;
	r->attempts++;
	hc_block_path(r->hash, rel);
	url = hc_url_join(f->base, rel);
	curl_easy_setopt(x->easy, CURLOPT_URL, url);
	free(url);
	x->stall.last = hc_now();
	x->stall.limit = f->o.timeout;
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_XFERINFODATA, &x->stall);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->size);
	curl_multi_add_handle(f->multi, x->easy);
}

/* Runs with the lock held: moves due retries back and fills free slots,
 * urgent first. */
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
		struct queue *q = f->q[Q_URGENT].head ? &f->q[Q_URGENT] : &f->q[Q_BACKGROUND];

		r = q->head;
		if (!r)
			break;
		q_remove(q, r);
		q_push(&f->q[Q_ACTIVE], r, Q_ACTIVE);
		start_one(f, r);
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

static void finish_one(hc_fetcher *f, CURLMsg *msg, double now)
{
	struct xfer *x;
	hc_fetch_req *r;
	char rel[HC_BLOCK_PATH_LEN], why[256];
	uint8_t sum[HC_SHA256_LEN];
	int missing, err;
	long version = 0;

	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
	r = x->req;
	err = transfer_result(x->easy, msg->data.result, x->errbuf, r->overflow, r->got, r->size,
			      why, sizeof(why), &missing);
	curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &version);
	/* msg is gone after this. */
	curl_multi_remove_handle(f->multi, x->easy);
	x->req = NULL;
	x->next_free = f->free_xfers;
	f->free_xfers = x;
	q_remove(&f->q[Q_ACTIVE], r);
	if (err == 0) {
		hc_sha256(r->buf, r->size, sum);
		if (memcmp(sum, r->hash, HC_SHA256_LEN)) {
			snprintf(why, sizeof(why), "content does not match its SHA-256 name");
			err = -EBADMSG;
		}
	}
	if (err == 0) {
		if (version == CURL_HTTP_VERSION_2_0)
			f->http2++;
		complete(f, r, 0);
		return;
	}
	hc_block_path(r->hash, rel);
	snprintf(r->why, sizeof(r->why), "block %llu (%s) from %s: %s (attempt %u of %u)",
		 (unsigned long long)r->block, rel, f->base, why, r->attempts, f->o.retries + 1);
	if (r->attempts <= f->o.retries && !f->stop) {
		f->retries++;
		hc_debug("%s; retrying", r->why);
		r->not_before = now + f->o.backoff * (double)(1u << (r->attempts - 1));
		q_push(&f->q[Q_RETRY], r, Q_RETRY);
		return;
	}
	complete(f, r, -EIO);
}

static long poll_timeout_ms(hc_fetcher *f, double now)
{
	double t = 1.0;

	for (hc_fetch_req *r = f->q[Q_RETRY].head; r; r = r->next)
		if (r->not_before - now < t)
			t = r->not_before - now;
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

hc_fetcher *hc_fetcher_new(const char *base_url, const struct hc_fetch_opts *o)
{
	hc_fetcher *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->o = *o;
	if (!f->o.connections)
		f->o.connections = 1;
	f->base = strdup(base_url);
	f->multi = curl_multi_init();
	f->xfers = calloc(f->o.connections, sizeof(*f->xfers));
	pthread_mutex_init(&f->lock, NULL);
	if (!f->base || !f->multi || !f->xfers)
		goto fail;
	curl_multi_setopt(f->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)f->o.connections);
	curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)f->o.connections);
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
	if (pthread_create(&f->thread, NULL, fetch_thread, f))
		goto fail;
	f->started = 1;
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
		pthread_mutex_unlock(&f->lock);
		curl_multi_wakeup(f->multi);
		pthread_join(f->thread, NULL);
	}
	for (unsigned i = 0; f->xfers && i < f->o.connections; i++)
		if (f->xfers[i].easy)
			curl_easy_cleanup(f->xfers[i].easy);
	if (f->multi)
		curl_multi_cleanup(f->multi);
	pthread_mutex_destroy(&f->lock);
	free(f->xfers);
	free(f->base);
	free(f);
}

void hc_fetcher_submit(hc_fetcher *f, hc_fetch_req *r)
{
	int which;

	r->attempts = 0;
	r->why[0] = '\0';
	r->buf = malloc(r->size ? r->size : 1);
	pthread_mutex_lock(&f->lock);
	f->requests++;
	if (!r->buf || f->stop) {
		snprintf(r->why, sizeof(r->why), "block %llu: %s", (unsigned long long)r->block,
			 r->buf ? "fetcher stopped" : "out of memory");
		complete(f, r, r->buf ? -ECANCELED : -ENOMEM);
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
	s->in_flight = f->q[Q_ACTIVE].n;
	s->queued = f->q[Q_URGENT].n + f->q[Q_BACKGROUND].n + f->q[Q_RETRY].n;
	pthread_mutex_unlock(&f->lock);
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
