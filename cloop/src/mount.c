/* FUSE front end: a read-only directory holding the image as one file
 * (for losetup -r / mount -o ro,loop) and ".stats" with live counters.
 * Handlers end in exactly one fuse_reply_*; -errno from below becomes the
 * reply's error here and nowhere else. */
#define FUSE_USE_VERSION 312
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <fuse_lowlevel.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diskcache.h"
#include "load.h"
#include "util.h"

enum { INO_ROOT = 1, INO_IMAGE = 2, INO_STATS = 3 };
#define STATS_NAME ".stats"
#define STATS_MAX  65536

struct fs {
	hc_dev *dev;
	const char *mountpoint;
	atomic_int widened;
	const hc_index *idx; /* for attributes before the device starts */
	time_t mtime;
};

static int fill_attr(struct fs *fs, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_mtime = st->st_ctime = st->st_atime = fs->mtime;
	switch (ino) {
	case INO_ROOT:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	case INO_IMAGE:
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)fs->idx->image_size;
		st->st_blksize = (blksize_t)hc_index_block_size(fs->idx);
		st->st_blocks = (blkcnt_t)((fs->idx->image_size + 511) / 512);
		return 0;
	case INO_STATS:
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = 0; /* direct_io: read until EOF */
		return 0;
	default:
		return -ENOENT;
	}
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (parent != INO_ROOT) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (!strcmp(name, fs->idx->name))
		e.ino = INO_IMAGE;
	else if (!strcmp(name, STATS_NAME))
		e.ino = INO_STATS;
	else {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* Nothing here ever changes while mounted. */
	e.attr_timeout = e.entry_timeout = 86400;
	fill_attr(fs, e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (fill_attr(fuse_req_userdata(req), ino, &st) < 0)
		fuse_reply_err(req, ENOENT);
	else
		fuse_reply_attr(req, &st, 86400);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	const char *names[] = { ".", "..", fs->idx->name, STATS_NAME };
	const fuse_ino_t inos[] = { INO_ROOT, INO_ROOT, INO_IMAGE, INO_STATS };
	char buf[1024];
	size_t used = 0;

	(void)fi;
	if (ino != INO_ROOT) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (off_t i = off; i < 4; i++) {
		struct stat st;
		size_t n;

		fill_attr(fs, inos[i], &st);
		n = fuse_add_direntry(req, buf + used, sizeof(buf) - used, names[i], &st, i + 1);
		if (n > sizeof(buf) - used || used + n > size)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

/* The kernel reads ahead on a FUSE mount in 128 KiB steps by default; the
 * image is read mostly in long runs (a loop device, a boot), where 1 MiB
 * requests cost fewer round trips through the daemon. The mount's bdi is
 * named by its device number, found in mountinfo: a stat() of the mount
 * point would wait for this very daemon. It must run after the kernel has
 * taken the INIT reply, which sets the readahead anew: at the first open.
 * Best effort: needs root. */
static void widen_readahead(const char *abs)
{
	char line[PATH_MAX + 256], mp[PATH_MAX], path[128];
	unsigned maj = 0, min = 0;
	int found = 0;
	FILE *f;

	if (!(f = fopen("/proc/self/mountinfo", "re")))
		return;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mp) == 3 &&
			!strcmp(mp, abs);
	fclose(f);
	if (!found ||
	    hc_pathf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min) < 0)
		return;
	f = fopen(path, "we");
	if (!f)
		return;
	fputs("1024\n", f);
	if (fclose(f) != 0)
		hc_debug("%s: cannot widen the readahead", path);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	char *snap;
	int n;

	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (ino == INO_IMAGE) {
		if (fs->mountpoint && atomic_exchange(&fs->widened, 1) == 0)
			widen_readahead(fs->mountpoint);
		fi->keep_cache = 1; /* immutable: the page cache stays valid */
		fuse_reply_open(req, fi);
		return;
	}
	if (ino != INO_STATS) {
		fuse_reply_err(req, ino == INO_ROOT ? EISDIR : ENOENT);
		return;
	}
	/* One snapshot per open, so a reader sees consistent counters. */
	snap = malloc(STATS_MAX);
	n = snap ? hc_dev_stats_text(fs->dev, snap, STATS_MAX) : -ENOMEM;
	if (n < 0) {
		free(snap);
		fuse_reply_err(req, -n);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)snap;
	fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

/* A short reply would tell the kernel the file ends there, so a read
 * larger than one vector of blocks (small blocks, huge requests) is
 * copied together instead. */
static void read_copy(fuse_req_t req, struct fs *fs, size_t size, off_t off)
{
	char *buf = malloc(size);
	ssize_t n = buf ? hc_dev_read(fs->dev, buf, size, (uint64_t)off) : -ENOMEM;

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct hc_dev_vec *v;
	int r;

	if (ino == INO_STATS) {
		const char *snap = (const char *)(uintptr_t)fi->fh;
		size_t len = strlen(snap), n = 0;
		char part[STATS_MAX];

		/* Replied from a copy: once the kernel has the reply the reader
		 * may close the file, and its release frees the snapshot. */
		if ((size_t)off < len) {
			n = len - (size_t)off < size ? len - (size_t)off : size;
			memcpy(part, snap + off, n);
		}
		fuse_reply_buf(req, part, n);
		return;
	}
	v = malloc(sizeof(*v));
	if (!v) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* The reply is written straight from the cached blocks. */
	r = hc_dev_readv(fs->dev, (uint64_t)off, size, v);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (v->len < size && (uint64_t)off + v->len < fs->idx->image_size)
		read_copy(req, fs, size, off); /* more blocks than one vector holds */
	else if (v->n == 0)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_iov(req, v->iov, v->n);
	hc_dev_release(fs->dev, v);
	free(v);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino == INO_STATS)
		free((void *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Let the kernel read ahead as far as it may, in parallel. */
	conn->max_readahead = conn->max_readahead ? conn->max_readahead : 1 << 20;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
};

static int make_args(const struct hc_mount_opts *o, struct fuse_args *args)
{
	char *opts;
	int r;

	r = asprintf(&opts, "ro,default_permissions,fsname=hcloop:%s,subtype=hcloop%s%s%s", o->name,
		     o->allow_other ? ",allow_other" : "", o->fuse_opts ? "," : "",
		     o->fuse_opts ? o->fuse_opts : "");
	if (r < 0)
		return -ENOMEM;
	r = fuse_opt_add_arg(args, "hcloop");
	if (r == 0)
		r = fuse_opt_add_arg(args, "-o");
	if (r == 0)
		r = fuse_opt_add_arg(args, opts);
	free(opts);
	return r ? -ENOMEM : 0;
}

/* The daemon keeps the caller's stderr for its log when it is a terminal,
 * the console during boot or a file, since fuse_daemonize points fd 2 at
 * /dev/null. Not a pipe: whoever reads it would wait for the end of the
 * mount instead of the end of the command. */
static FILE *open_log(const struct hc_mount_opts *o)
{
	struct stat st;
	int fd;

	if (o->log_file)
		return fopen(o->log_file, "ae");
	if (fstat(2, &st) < 0 || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
		return NULL;
	fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? NULL : fdopen(fd, "a");
}

static int serve(const struct hc_mount_opts *o, const struct hc_dev_opts *dev, struct fs *fs,
		 hc_index *idx, hc_diskcache *dc, char *argv0)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *cfg = NULL;
	FILE *log = NULL;
	int r = 1;

	if (make_args(o, &args) < 0)
		goto out;
	se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	if (!se || fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		hc_err("cannot mount on %s (see the message above)", o->mountpoint);
		goto out;
	}
	if (!o->foreground) {
		log = open_log(o);
		if (log)
			hc_log_to(log);
	}
	if (fuse_daemonize(o->foreground) != 0)
		goto unmount;
	if (o->rootfs)
		argv0[0] = '@'; /* systemd spares root-storage daemons */
	/* Threads start only now: fuse_daemonize forked. */
	r = hc_dev_open(o->url, idx, dc, dev, &fs->dev);
	idx = NULL;
	if (r < 0) {
		hc_err("cannot start: %s", strerror(-r));
		r = 1;
		goto unmount;
	}
	hc_info("serving %s version %s from %s on %s", fs->idx->name, fs->idx->version, o->url,
		o->mountpoint);
	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_idle_threads(cfg, 8);
	r = fuse_session_loop_mt(se, cfg);
	hc_debug("FUSE loop ended with %d", r);
	/* libfuse 3.14 reports the signal that ended the loop as its number
	 * (older releases negate it): a requested stop, not a failure. */
	r = abs(r);
	r = r == 0 || r == SIGTERM || r == SIGINT || r == SIGHUP ? 0 : 1;
	fuse_loop_cfg_destroy(cfg);
	hc_info("unmounting %s", o->mountpoint);
unmount:
	fuse_session_unmount(se);
out:
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fuse_opt_free_args(&args);
	hc_dev_close(fs->dev);
	hc_index_free(idx);
	if (log) {
		hc_log_to(NULL);
		fclose(log);
	}
	return r;
}

int hc_mount_main(const struct hc_mount_opts *o, char *argv0)
{
	struct hc_dev_opts dev = o->dev;
	struct fs fs = { .mtime = 0 };
	hc_diskcache *dc = NULL;
	hc_index *idx = NULL;
	char why[1024] = "";
	int r;

	if (hc_fetch_global_init() < 0) {
		hc_err("libcurl failed to initialise");
		return 1;
	}
	/* Blocks and read buffers are 4 KiB..4 MiB and come and go all the
	 * time: from the heap, not a fresh mmap (and page faults) each.
	 * glibc only: musl (the initrd's static hcloop) has no mallopt. */
#ifdef M_MMAP_THRESHOLD
	mallopt(M_MMAP_THRESHOLD, 16 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
	if (o->trace_file) {
		/* Opened here, relative to where the command was given: the
		 * daemon will chdir to /. */
		dev.trace_fd = open(o->trace_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (dev.trace_fd < 0) {
			hc_err("--trace %s: %s", o->trace_file, strerror(errno));
			hc_fetch_global_cleanup();
			return 1;
		}
	}
	if (o->cache_dir) {
		r = hc_diskcache_open(o->cache_dir, o->cache_size, &dc);
		if (r < 0) {
			hc_err("cache %s: %s", o->cache_dir, strerror(-r));
			hc_fetch_global_cleanup();
			if (dev.trace_fd >= 0)
				close(dev.trace_fd);
			return 1;
		}
	}
	struct hc_load_opts lo = { .urls = o->url,
				   .name = o->name,
				   .version = o->version,
				   .fetch = &o->dev.fetch,
				   .dc = dc,
				   .pubkey = o->pubkey };
	r = hc_index_load(&lo, &idx, why, sizeof(why));
	if (r < 0) {
		hc_err("%s", why);
		r = 1;
	} else {
		fs.idx = idx;
		/* Absolute now: the daemon will chdir to /. */
		fs.mountpoint = realpath(o->mountpoint, NULL);
		fs.mtime = (time_t)idx->created;
		r = serve(o, &dev, &fs, idx, dc, argv0);
	}
	free((char *)fs.mountpoint);
	hc_diskcache_close(dc);
	hc_fetch_global_cleanup();
	if (dev.trace_fd >= 0)
		close(dev.trace_fd);
	return r;
}
