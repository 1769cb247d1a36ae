/*
 * delayproxy: a TCP proxy that makes a loopback connection behave like a WAN
 * link (there is no tc netem here). Every byte is held for half a round trip
 * in each direction, a new connection's data waits one more round trip (the
 * handshake a real link costs), and an optional token bucket per direction
 * caps the throughput of all connections together, as one shared link.
 * SIGUSR1 and SIGUSR2 toggle a hung link and a resetting one, for failover
 * tests. Single-threaded: one ppoll loop, timers from the queue heads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000LL
#define NS_PER_S  1000000000LL
#define READ_SIZE 65536
/* Reads shorter than this are copied out of the read buffer. */
#define SMALL_READ 4096
/*
 * Read buffers kept for reuse: malloc would give 64 KiB buffers back to the
 * kernel at every free (they sit at the top of the heap), and brk plus page
 * faults cost more than the copying.
 */
#define SPARES_MAX 64
/* Bytes held per connection and direction: enough for 100 MB/s at 80 ms. */
#define QUEUE_CAP_MAX (4u << 20)
#define QUEUE_CAP_MIN (64u << 10)
/* Rate-limited writes wait for this much credit, not for a few bytes. */
#define QUANTUM		4096.0
#define ACCEPT_PAUSE_NS (100 * NS_PER_MS)
#define RTT_MAX_MS	60000.0

/* Sides and directions share indexes: queue i carries bytes read from side i. */
enum { CLIENT, SERVER };

enum chunk_kind { CK_DATA, CK_EOF, CK_RST };

struct chunk {
	struct chunk *next;
	int64_t due;
	size_t len, off, size;
	enum chunk_kind kind;
	unsigned char data[];
};

struct queue {
	struct chunk *head, *tail;
	size_t bytes;
	bool want_out; /* the receiving socket was full: wait for POLLOUT */
};

struct side {
	int fd;
	bool rd_done; /* EOF or error read, or nothing more wanted */
	bool wr_shut; /* EOF delivered to it */
};

struct conn {
	struct side side[2];
	struct queue q[2];
	int64_t ready;	 /* when the emulated handshake is over */
	bool connecting; /* upstream connect() in progress */
	bool doomed;	 /* one side failed: a reset is on its way to the other */
	bool done, rst;	 /* to be closed (with RST) */
};

struct bucket {
	double tokens;
	int64_t last;
};

static struct {
	int64_t rtt, half;
	double rate, burst; /* bytes per second; 0 = no cap */
	size_t cap;
	bool quiet;
	struct sockaddr_storage to;
	socklen_t to_len;
	int lfd;
	int64_t accept_paused_until;
	struct conn **conns;
	size_t nconns, conns_size, rr;
	struct pollfd *fds;
	size_t fds_size;
	struct bucket bucket[2];
	struct chunk *spares;
	size_t nspares;
	bool stall, reset;
	unsigned long long accepted, bytes[2];
} P = { .lfd = -1 };

static volatile sig_atomic_t sig_stall, sig_reset, sig_stop;

static const char usage_text[] =
    "Usage: delayproxy --to IP:PORT --rtt MS [--listen IP:PORT] [--rate RATE]\n"
    "                  [--port-file FILE] [--quiet]\n"
    "A TCP proxy that emulates a WAN link between a client and a local server.\n"
    "\n"
    "  --listen IP:PORT   where to accept connections (default 127.0.0.1:0; port 0\n"
    "                     picks a free one and prints it on stdout once listening)\n"
    "  --to IP:PORT       the server to forward to\n"
    "  --rtt MS           round-trip time to add: each byte is forwarded RTT/2 after\n"
    "                     it arrived; a new connection carries data only after one\n"
    "                     RTT (its handshake)\n"
    "  --rate RATE        cap on the throughput of all connections together, per\n"
    "                     direction, in bytes per second: 800K, 12.5M, 1G (K = 1000)\n"
    "  --port-file FILE   write the listening port to FILE once listening\n"
    "  --quiet            nothing on stderr but fatal errors\n"
    "  --help             this text\n"
    "\n"
    "Signals: SIGUSR1 toggles stall (connections stay open, nothing is forwarded);\n"
    "SIGUSR2 toggles reset (every connection is reset, new ones are reset at once).\n"
    "SIGTERM or SIGINT ends it. Exit status: 0 after a signal, 1 on error,\n"
    "2 on bad usage.\n";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	if (P.quiet)
		return;
	va_start(ap, fmt);
	fputs("delayproxy: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("delayproxy: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(" (see delayproxy --help)\n", stderr);
	va_end(ap);
	exit(2);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* "IP:PORT" or "[IPv6]:PORT", numeric only: tests must not depend on DNS. */
static void parse_addr(const char *opt, const char *arg, bool port0_ok, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(arg, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res;
	char *end;
	size_t hlen;
	long port;

	if (!colon || colon == arg || colon[1] == '\0')
		die_usage("%s: '%s' is not IP:PORT", opt, arg);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || port < (port0_ok ? 0 : 1) || port > 65535)
		die_usage("%s: '%s': bad port", opt, arg);
	hlen = (size_t)(colon - arg);
	if (arg[0] == '[' && hlen >= 2 && arg[hlen - 1] == ']') {
		arg++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		die_usage("%s: '%s': address too long", opt, arg);
	memcpy(host, arg, hlen);
	host[hlen] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		die_usage("%s: '%s' is not a numeric IP address", opt, host);
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
}

static double parse_number(const char *opt, const char *arg, double max, const char **suffix)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || !(v >= 0 && v <= max) || (!suffix && *end))
		die_usage("%s: '%s' is not a number from 0 to %g", opt, arg, max);
	if (suffix)
		*suffix = end;
	return v;
}

static double parse_rate(const char *arg)
{
	const char *s;
	double v = parse_number("--rate", arg, 1e12, &s);
	double mult = 1;

	if (*s && s[1] == '\0') {
		switch (*s) {
		case 'k':
		case 'K':
			mult = 1e3;
			break;
		case 'm':
		case 'M':
			mult = 1e6;
			break;
		case 'g':
		case 'G':
			mult = 1e9;
			break;
		}
	}
	if ((*s && mult == 1) || v * mult < 1)
		die_usage("--rate: '%s' is not a rate such as 800K, 12.5M or 1G bytes per second",
			  arg);
	return v * mult;
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		sig_stall = 1;
	else if (sig == SIGUSR2)
		sig_reset = 1;
	else
		sig_stop = 1;
}

/* The handlers only run inside ppoll, so the loop sees every flag. */
static void signals_setup(sigset_t *poll_mask)
{
	static const int sigs[] = { SIGUSR1, SIGUSR2, SIGTERM, SIGINT };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigaddset(&block, sigs[i]);
		sigaction(sigs[i], &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_BLOCK, &block, poll_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigdelset(poll_mask, sigs[i]);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "delayproxy: out of memory\n");
		exit(1);
	}
	return p;
}

static void close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static struct chunk *chunk_new(enum chunk_kind kind, size_t size, int64_t due)
{
	struct chunk *c = P.spares;

	if (c && size == READ_SIZE) {
		P.spares = c->next;
		P.nspares--;
	} else {
		c = xrealloc(NULL, sizeof(*c) + size);
	}
	*c = (struct chunk){ .due = due, .size = size, .kind = kind };
	return c;
}

static void chunk_free(struct chunk *c)
{
	if (c->size == READ_SIZE && P.nspares < SPARES_MAX) {
		c->next = P.spares;
		P.spares = c;
		P.nspares++;
	} else {
		free(c);
	}
}

static void queue_append(struct queue *q, struct chunk *c)
{
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	q->bytes += c->len;
}

static void queue_pop(struct queue *q)
{
	struct chunk *c = q->head;

	q->head = c->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= c->len - c->off;
	chunk_free(c);
}

static void queue_clear(struct queue *q)
{
	while (q->head)
		queue_pop(q);
	q->want_out = false;
}

/* Bytes read now count as sent once the emulated handshake is over. */
static int64_t due_time(const struct conn *c, int64_t now)
{
	return (now > c->ready ? now : c->ready) + P.half;
}

/*
 * Side x failed (reset, refused, broken pipe). Its peer learns of it half a
 * round trip later, after the bytes already on their way to it: the reset
 * rides the queue. Nothing is read any more, nothing more goes to x.
 */
static void doom(struct conn *c, int x, int64_t now)
{
	if (c->doomed) {
		c->done = c->rst = true;
		return;
	}
	c->doomed = true;
	c->side[CLIENT].rd_done = c->side[SERVER].rd_done = true;
	queue_clear(&c->q[!x]);
	queue_append(&c->q[x], chunk_new(CK_RST, 0, due_time(c, now)));
}

static void conn_free(struct conn *c, bool rst)
{
	for (int i = 0; i < 2; i++) {
		if (rst)
			close_rst(c->side[i].fd);
		else
			close(c->side[i].fd);
		queue_clear(&c->q[i]);
	}
	free(c);
}

static void nodelay(int fd)
{
	int one = 1;

	/* Nagle plus delayed ACKs would add their own 40 ms to small writes. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void conn_new(int cfd, int64_t now)
{
	struct conn *c;
	int sfd;

	if (P.reset) {
		close_rst(cfd);
		return;
	}
	sfd = socket(P.to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sfd < 0) {
		fprintf(stderr, "delayproxy: socket: %s; connection reset\n", strerror(errno));
		close_rst(cfd);
		return;
	}
	nodelay(cfd);
	nodelay(sfd);
	c = xrealloc(NULL, sizeof(*c));
	*c = (struct conn){ .side = { { .fd = cfd }, { .fd = sfd } }, .ready = now + P.rtt };
	if (P.nconns == P.conns_size) {
		P.conns_size = P.conns_size ? 2 * P.conns_size : 64;
		P.conns = xrealloc(P.conns, P.conns_size * sizeof(*P.conns));
	}
	P.conns[P.nconns++] = c;
	P.accepted++;
	if (connect(sfd, (struct sockaddr *)&P.to, P.to_len) == 0)
		return;
	if (errno == EINPROGRESS) {
		c->connecting = true;
		return;
	}
	say("connect to the server: %s", strerror(errno));
	doom(c, SERVER, now);
}

static void accept_all(int64_t now)
{
	for (;;) {
		int fd = accept4(P.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_new(fd, now);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		/* Out of descriptors or memory: retry later instead of spinning. */
		fprintf(stderr, "delayproxy: accept: %s\n", strerror(errno));
		P.accept_paused_until = now + ACCEPT_PAUSE_NS;
		return;
	}
}

static void conn_connected(struct conn *c, short revents, int64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->side[SERVER].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (!err && !(revents & POLLOUT))
		err = ECONNRESET;
	c->connecting = false;
	if (err) {
		say("connect to the server: %s", strerror(err));
		doom(c, SERVER, now);
	}
}

static void side_read(struct conn *c, int s, int64_t now)
{
	struct queue *q = &c->q[s];

	/* A few reads per wake, so that one busy connection cannot delay the rest. */
	for (int i = 0; i < 4 && !c->side[s].rd_done && q->bytes < P.cap; i++) {
		size_t room = P.cap - q->bytes;
		struct chunk *ch = chunk_new(CK_DATA, READ_SIZE, due_time(c, now));
		ssize_t n = recv(c->side[s].fd, ch->data, room < READ_SIZE ? room : READ_SIZE, 0);

		if (n > 0 && n < SMALL_READ) {
			struct chunk *small = chunk_new(CK_DATA, (size_t)n, ch->due);

			memcpy(small->data, ch->data, (size_t)n);
			chunk_free(ch);
			ch = small;
		}
		if (n > 0) {
			ch->len = (size_t)n;
			queue_append(q, ch);
			continue;
		}
		chunk_free(ch);
		if (n == 0) {
			c->side[s].rd_done = true;
			queue_append(q, chunk_new(CK_EOF, 0, due_time(c, now)));
		} else if (errno != EINTR) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				doom(c, s, now);
			return;
		}
	}
}

static void bucket_refill(struct bucket *b, int64_t now)
{
	b->tokens += (double)(now - b->last) * P.rate / NS_PER_S;
	if (b->tokens > P.burst)
		b->tokens = P.burst;
	b->last = now;
}

/* What a rate-limited write of up to want bytes waits for. */
static double bucket_need(double want)
{
	return want < QUANTUM ? want : QUANTUM;
}

/* Forwards what is due in queue i, as far as the receiver and the rate allow. */
static void queue_flush(struct conn *c, int i, int64_t now)
{
	struct queue *q = &c->q[i];
	struct side *dst = &c->side[!i];
	struct bucket *b = &P.bucket[i];

	if (i == CLIENT && c->connecting)
		return;
	while (q->head && q->head->due <= now && !q->want_out && !c->done) {
		struct chunk *ch = q->head;
		size_t n = ch->len - ch->off;
		ssize_t w;

		if (ch->kind == CK_RST) {
			c->done = c->rst = true;
			return;
		}
		if (ch->kind == CK_EOF) {
			shutdown(dst->fd, SHUT_WR);
			dst->wr_shut = true;
			queue_pop(q);
			continue;
		}
		if (P.rate) {
			bucket_refill(b, now);
			if (b->tokens < bucket_need((double)n))
				return;
			if ((double)n > b->tokens)
				n = (size_t)b->tokens;
		}
		w = send(dst->fd, ch->data + ch->off, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				q->want_out = true;
			else if (errno != EINTR)
				doom(c, !i, now);
			continue;
		}
		ch->off += (size_t)w;
		q->bytes -= (size_t)w;
		P.bytes[i] += (unsigned long long)w;
		if (P.rate)
			b->tokens -= (double)w;
		if (ch->off == ch->len)
			queue_pop(q);
		else if ((size_t)w < n)
			q->want_out = true;
	}
}

/* When queue i next needs attention without a poll event; INT64_MAX if never. */
static int64_t queue_wake(const struct conn *c, int i, int64_t now)
{
	const struct queue *q = &c->q[i];
	const struct chunk *ch = q->head;
	double need;

	if (!ch || q->want_out || (i == CLIENT && c->connecting))
		return INT64_MAX;
	if (ch->due > now || ch->kind != CK_DATA || !P.rate)
		return ch->due;
	need = bucket_need((double)(ch->len - ch->off)) - P.bucket[i].tokens;
	return now + (need > 0 ? (int64_t)(need * NS_PER_S / P.rate) + 1000 : 0);
}

static void reset_all(void)
{
	for (size_t k = 0; k < P.nconns; k++)
		conn_free(P.conns[k], true);
	P.nconns = 0;
}

static void reap(void)
{
	size_t k = 0;

	while (k < P.nconns) {
		struct conn *c = P.conns[k];

		if (!c->done && c->side[CLIENT].wr_shut && c->side[SERVER].wr_shut &&
		    !c->q[CLIENT].head && !c->q[SERVER].head)
			c->done = true;
		if (c->done) {
			conn_free(c, c->rst);
			P.conns[k] = P.conns[--P.nconns];
		} else {
			k++;
		}
	}
}

static void handle_signals(void)
{
	if (sig_stall) {
		sig_stall = 0;
		P.stall = !P.stall;
		say("stall %s", P.stall ? "on: nothing is forwarded" : "off");
	}
	if (sig_reset) {
		sig_reset = 0;
		P.reset = !P.reset;
		say("reset %s", P.reset ? "on: every connection is reset" : "off");
		if (P.reset)
			reset_all();
	}
}

static short side_events(const struct conn *c, int s)
{
	short ev = 0;

	if (P.stall || c->done)
		return 0;
	if (s == SERVER && c->connecting)
		return POLLOUT;
	if (!c->side[s].rd_done && c->q[s].bytes < P.cap)
		ev |= POLLIN;
	if (c->q[!s].want_out)
		ev |= POLLOUT;
	return ev;
}

/* fds[0] is the listener, fds[1 + 2k + s] side s of connection k. */
static size_t fds_build(int64_t now)
{
	size_t n = 1 + 2 * P.nconns;

	if (n > P.fds_size) {
		P.fds_size = 2 * n;
		P.fds = xrealloc(P.fds, P.fds_size * sizeof(*P.fds));
	}
	P.fds[0] =
	    (struct pollfd){ .fd = now >= P.accept_paused_until ? P.lfd : -1, .events = POLLIN };
	for (size_t k = 0; k < P.nconns; k++) {
		for (int s = 0; s < 2; s++) {
			short ev = side_events(P.conns[k], s);

			/* Without interest, poll would still report HUP and spin. */
			P.fds[1 + 2 * k + s] =
			    (struct pollfd){ .fd = ev ? P.conns[k]->side[s].fd : -1, .events = ev };
		}
	}
	return n;
}

static void fds_handle(int64_t now)
{
	size_t n = P.nconns; /* accept_all appends after these */

	for (size_t k = 0; k < n; k++) {
		struct conn *c = P.conns[k];

		for (int s = 0; s < 2; s++) {
			const struct pollfd *pf = &P.fds[1 + 2 * k + s];
			short re = pf->revents;

			if (!re || c->done)
				continue;
			if (s == SERVER && c->connecting) {
				conn_connected(c, re, now);
				continue;
			}
			if ((pf->events & POLLOUT) && (re & (POLLOUT | POLLERR | POLLHUP)))
				c->q[!s].want_out = false;
			if ((pf->events & POLLIN) && (re & (POLLIN | POLLERR | POLLHUP)))
				side_read(c, s, now);
		}
	}
	if (P.fds[0].revents & POLLIN)
		accept_all(now);
}

static int64_t next_wake(int64_t now)
{
	int64_t wake = now < P.accept_paused_until ? P.accept_paused_until : INT64_MAX;

	if (P.stall)
		return wake;
	for (size_t k = 0; k < P.nconns; k++) {
		for (int i = 0; i < 2; i++) {
			int64_t t = queue_wake(P.conns[k], i, now);

			if (t < wake)
				wake = t;
		}
	}
	return wake;
}

static void run(const sigset_t *poll_mask)
{
	while (!sig_stop) {
		int64_t now = now_ns(), wake;
		struct timespec ts, *tsp = NULL;
		size_t nfds;

		handle_signals();
		if (!P.stall) {
			/* Start at a different connection each round: the rate is shared. */
			for (size_t k = 0; k < P.nconns; k++) {
				struct conn *c = P.conns[(P.rr + k) % P.nconns];

				queue_flush(c, SERVER, now);
				queue_flush(c, CLIENT, now);
			}
			P.rr++;
		}
		reap();
		wake = next_wake(now);
		if (wake != INT64_MAX) {
			int64_t d = wake - now_ns();

			if (d < 0)
				d = 0;

			ts = (struct timespec){ .tv_sec = d / NS_PER_S, .tv_nsec = d % NS_PER_S };
			tsp = &ts;
		}
		nfds = fds_build(now);
		if (ppoll(P.fds, nfds, tsp, poll_mask) < 0) {
			if (errno == EINTR)
				continue;
			perror("delayproxy: ppoll");
			exit(1);
		}
		fds_handle(now_ns());
	}
}

static void write_port_file(const char *path, unsigned port)
{
	size_t len = strlen(path) + 5;
	char *tmp = xrealloc(NULL, len);
	FILE *f;

	/* Renamed into place, so that a script polling for it never reads half. */
	snprintf(tmp, len, "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "delayproxy: --port-file %s: %s\n", path, strerror(errno));
		exit(1);
	}
	free(tmp);
}

static unsigned addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static unsigned listen_on(const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	struct sockaddr_storage got;
	socklen_t got_len = sizeof(got);

	P.lfd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (P.lfd < 0 || setsockopt(P.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(P.lfd, (const struct sockaddr *)ss, len) < 0 || listen(P.lfd, SOMAXCONN) < 0 ||
	    getsockname(P.lfd, (struct sockaddr *)&got, &got_len) < 0) {
		fprintf(stderr, "delayproxy: --listen: %s\n", strerror(errno));
		exit(1);
	}
	return addr_port(&got);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "rtt", required_argument, NULL, 'r' },
		{ "rate", required_argument, NULL, 'b' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_arg = "127.0.0.1:0", *port_file = NULL;
	struct sockaddr_storage laddr;
	socklen_t llen;
	bool have_to = false, have_rtt = false;
	sigset_t poll_mask;
	unsigned port;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen_arg = optarg;
			break;
		case 't':
			parse_addr("--to", optarg, false, &P.to, &P.to_len);
			have_to = true;
			break;
		case 'r':
			P.rtt =
			    (int64_t)(parse_number("--rtt", optarg, RTT_MAX_MS, NULL) * NS_PER_MS);
			have_rtt = true;
			break;
		case 'b':
			P.rate = parse_rate(optarg);
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'q':
			P.quiet = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case ':':
			die_usage("%s needs a value", argv[optind - 1]);
		default:
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!have_to || !have_rtt)
		die_usage("%s is required", have_to ? "--rtt" : "--to");
	parse_addr("--listen", listen_arg, true, &laddr, &llen);

	P.half = P.rtt / 2;
	P.cap = QUEUE_CAP_MAX;
	if (P.rate) {
		/* About one round trip's worth: enough to fill the link, no more. */
		double bdp = P.rate * (double)P.rtt / NS_PER_S;

		P.cap = bdp < QUEUE_CAP_MIN   ? QUEUE_CAP_MIN
			: bdp > QUEUE_CAP_MAX ? QUEUE_CAP_MAX
					      : (size_t)bdp;
		P.burst = P.rate / 200 > 4 * QUANTUM ? P.rate / 200 : 4 * QUANTUM;
	}
	signals_setup(&poll_mask);
	port = listen_on(&laddr, llen);
	if (port_file)
		write_port_file(port_file, port);
	if (addr_port(&laddr) == 0) {
		printf("%u\n", port);
		fflush(stdout);
	}
	say("listening on port %u, rtt %g ms, rate %.0f bytes/s (0 = no cap)", port,
	    (double)P.rtt / NS_PER_MS, P.rate);
	for (int i = 0; i < 2; i++)
		P.bucket[i] = (struct bucket){ .tokens = P.burst, .last = now_ns() };

	run(&poll_mask);

	for (size_t k = 0; k < P.nconns; k++)
		conn_free(P.conns[k], false);
	while (P.spares) {
		struct chunk *c = P.spares;

		P.spares = c->next;
		free(c);
	}
	free(P.conns);
	free(P.fds);
	close(P.lfd);
	say("stopped: %llu connections, %llu bytes up, %llu bytes down", P.accepted,
	    P.bytes[CLIENT], P.bytes[SERVER]);
	return 0;
}
