/* hcloop command line: make, mount, info, verify, keygen, gc. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "gc.h"
#include "index.h"
#include "make.h"
#include "mount.h"
#include "profile.h"
#include "select.h"
#include "sign.h"
#include "tools.h"
#include "util.h"

#define HCLOOP_VERSION "1.0"

static const char usage[] =
    "Usage: hcloop COMMAND [OPTIONS] ARGS\n"
    "\n"
    "Streams a block-device image from static files on any web server: the image\n"
    "is cut into fixed-size blocks, each compressed and stored once under the\n"
    "SHA-256 of its contents; an index per image version lists them.\n"
    "\n"
    "Commands:\n"
    "  make [OPTIONS] IMAGE STORE_DIR NAME [VERSION]\n"
    "      Add IMAGE (a file or block device) to the store as NAME, version\n"
    "      VERSION (default: the next serial number), and point NAME's latest\n"
    "      version at it (an older version made again gets the next serial).\n"
    "      Only blocks the store lacks are written.\n"
    "      -b, --block-size SIZE  block size, a power of two, 4K..4M (128K)\n"
    "      -c, --compress ALG     zstd, zlib or none (zstd)\n"
    "      -l, --level N          compression level (zstd 3, zlib 6)\n"
    "      -j, --jobs N           worker threads (number of CPUs)\n"
    "      -m, --mirror URL       record a mirror URL in the index (repeatable)\n"
    "      -p, --profile FILE     attach a boot profile (block numbers, one per\n"
    "                             line, as mount --trace writes them): mounts\n"
    "                             fetch those blocks ahead, in that order\n"
    "          --force            replace an existing version with other contents\n"
    "          --no-latest        do not move the latest pointer\n"
    "          --sign KEY.sec     sign the index (see keygen); an existing version\n"
    "                             with the same blocks gets the signature added\n"
    "      -q, --quiet            no progress or summary\n"
    "      SOURCE_DATE_EPOCH, if set, is the index's creation time.\n"
    "\n"
    "  mount [OPTIONS] URL[,URL...] NAME MOUNTPOINT\n"
    "      Expose image NAME of the store at URL (http://, https://, file:// or a\n"
    "      directory) as the read-only file MOUNTPOINT/NAME, for losetup -r or\n"
    "      mount -o ro,loop; MOUNTPOINT/.stats shows live counters. Returns once\n"
    "      mounted; unmount with fusermount3 -u MOUNTPOINT, umount or SIGTERM.\n"
    "      Several URLs are mirrors, best first: a fetch that fails or stalls\n"
    "      moves to the next at once; a mirror that serves a wrong block is\n"
    "      avoided for 5 minutes; a faster or recovered one is used again.\n"
    "      -V, --version V        mount version V instead of the latest\n"
    "      -C, --cache-dir DIR    keep verified blocks in DIR across mounts; with\n"
    "                             every block cached no network is needed\n"
    "      -S, --cache-size SIZE  bound of the disk cache (1G)\n"
    "      -M, --mem-cache SIZE   decompressed blocks kept in memory (16M)\n"
    "      -r, --readahead N      blocks fetched ahead of sequential reads (32)\n"
    "      -n, --connections N    HTTP transfers in flight (32)\n"
    "      -w, --workers N        threads that check, cache and decompress (8)\n"
    "      -t, --timeout SECONDS  connect / stall timeout per request (10)\n"
    "      -R, --retries N        retries of a failed block fetch (4)\n"
    "          --cacert FILE      CA certificates for https:// (default: the system's)\n"
    "      -P, --prefetch MODE    download-ahead: profile (default: the index's boot\n"
    "                             profile's blocks, in order, in the background),\n"
    "                             fill (then the whole image: the network may go\n"
    "                             away later) or off\n"
    "          --profile FILE     prefetch this profile instead of the index's\n"
    "          --prefetch-connections N  transfers the download-ahead may use (24)\n"
    "          --prefetch-rate RATE      its bytes/s at most, e.g. 2M (no limit)\n"
    "          --prefetch-mem SIZE       without --cache-dir, prefetched blocks wait\n"
    "                             compressed in memory, up to SIZE (256M)\n"
    "          --trace FILE       write each block's number to FILE when it is\n"
    "                             first read: a boot profile for make --profile\n"
    "          --pubkey KEY.pub   accept only an index signed by this key, fetched\n"
    "                             or cached\n"
    "          --peers URL        a demo booth's peer list (one URL per line:\n"
    "                             booted machines serving their caches), read\n"
    "                             now and every --peers-interval seconds (10):\n"
    "                             blocks are fetched from peers first; a peer\n"
    "                             without a block (404) is passed over, one that\n"
    "                             lies is avoided like a mirror\n"
    "      -f, --foreground       stay in the foreground\n"
    "          --rootfs           the mount backs the root filesystem: survive\n"
    "                             switch_root and the new init (argv[0] '@')\n"
    "          --allow-other      let other users read the mount\n"
    "      -o OPTIONS             extra FUSE mount options\n"
    "          --log FILE         log here once in the background (default: the\n"
    "                             standard error the command started with)\n"
    "      With --cache-dir, the highest index serial accepted for NAME is kept in\n"
    "      DIR/seen/NAME: a latest pointer leading to a lower serial is refused (no\n"
    "      silent downgrade); --version V rolls back to an older version on purpose.\n"
    "\n"
    "  info [--blocks] [--cache-dir DIR] [--file INDEX] [URL NAME [VERSION]]\n"
    "      Print an index: sizes, blocks, compression, sections, its boot profile\n"
    "      (blocks, or none) and its signature (signer, or none); --blocks adds\n"
    "      one line per block: \"block N CODEC SIZE PATH\"; --cache-dir adds the\n"
    "      block files a mount with that disk cache would still download.\n"
    "\n"
    "  verify [-q] URL NAME [VERSION]\n"
    "      Fetch every block of an index, check its SHA-256 name and that it\n"
    "      decodes; exit status 1 if any block is missing or bad.\n"
    "\n"
    "  select [--list] NAME URL[,URL...] [URL...]\n"
    "      Rank mirrors of a store by what fetching image NAME's blocks costs on\n"
    "      each: the round trip (best of 3 requests for the latest pointer) and\n"
    "      one real block, checked against its SHA-256. --list prints only the\n"
    "      working mirrors, best first, as a list for mount. Exit status 1 if\n"
    "      none works.\n"
    "\n"
    "  keygen NAME\n"
    "      Make an Ed25519 key pair for signed indexes: NAME.sec, the secret key for\n"
    "      make --sign (mode 0600: keep it private), and NAME.pub for --pubkey.\n"
    "      Never replaces an existing file.\n"
    "\n"
    "  gc [OPTIONS] STORE_DIR --keep N\n"
    "      For each image in a local store, keep the N newest versions by serial\n"
    "      and the one latest names; remove the other index files, then the block\n"
    "      files no kept index uses and stale temporaries (*.tmp.*). Safe while\n"
    "      clients read and make writes: a block of a kept index is never removed,\n"
    "      and no file younger than the grace period is.\n"
    "      -k, --keep N           versions kept per image, at least 1\n"
    "      -g, --grace SECONDS    age under which files are left (3600)\n"
    "      -n, --dry-run          only print what would be removed\n"
    "\n"
    "info, verify and select also take --cacert FILE and -t SECONDS; info and\n"
    "verify also --pubkey KEY.pub.\n"
    "Common options: -v, --verbose (repeat for debug); -h, --help; --version.\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "hcloop: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'hcloop --help'.\n");
	return 2;
}

/* -v, -h and unknown options, alike for every command: -1 to go on,
 * otherwise the exit status. */
static int common_option(int c, const char *what)
{
	switch (c) {
	case 'v':
		hc_log_init("hcloop", hc_log_level() + 1);
		return -1;
	case 'h':
		fputs(usage, stdout);
		return 0;
	default:
		return usage_error("%s", what);
	}
}

/* --cacert and -t of the commands that only fetch, then common_option. */
static int fetch_option(int c, struct hc_fetch_opts *fo, const char *what)
{
	char *end;

	switch (c) {
	case 'A':
		fo->cacert = optarg;
		return -1;
	case 't':
		fo->timeout = strtod(optarg, &end);
		return *end || !(fo->timeout > 0) ? usage_error("bad timeout: %s", optarg) : -1;
	default:
		return common_option(c, what);
	}
}

static int size_arg(const char *s, uint64_t *ret)
{
	return hc_parse_size(s, ret) < 0 ? usage_error("bad size: %s", s) : 0;
}

static int uint_arg(const char *s, uint64_t max, unsigned *ret)
{
	uint64_t v;

	if (hc_parse_uint(s, max, &v) < 0)
		return usage_error("bad number: %s", s);
	*ret = (unsigned)v;
	return 0;
}

/* --pubkey FILE: 0, or the exit status after saying why. */
static int pubkey_arg(const char *path, struct hc_pubkey *pk)
{
	char why[512];

	if (hc_pubkey_load(path, pk, why, sizeof(why)) == 0)
		return 0;
	hc_err("%s", why);
	return 1;
}

#ifndef HC_NO_MAKE
static int cmd_make(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "block-size", 1, NULL, 'b' }, { "compress", 1, NULL, 'c' },
		{ "level", 1, NULL, 'l' },	{ "jobs", 1, NULL, 'j' },
		{ "mirror", 1, NULL, 'm' },	{ "force", 0, NULL, 'F' },
		{ "profile", 1, NULL, 'p' },	{ "no-latest", 0, NULL, 'N' },
		{ "sign", 1, NULL, 'K' },	{ "quiet", 0, NULL, 'q' },
		{ "verbose", 0, NULL, 'v' },	{ "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hc_make_opts o = { .block_shift = HC_DEFAULT_SHIFT, .codec = HC_CODEC_ZSTD };
	const char *profile_file = NULL;
	CLEANUP_FREE uint32_t *profile = NULL;
	struct hc_seckey key;
	const char *keyfile = NULL;
	char why[512];
	CLEANUP_FREE const char **mirrors = calloc((size_t)argc, sizeof(char *));
	struct hc_make_stats st;
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t v;
	int c, quiet = 0, level = -1, r;

	if (!mirrors) {
		hc_err("make: out of memory");
		return 1;
	}
	o.threads = n > 0 ? (unsigned)n : 1;
	while ((c = getopt_long(argc, argv, "b:c:l:j:m:p:qvh", lo, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (size_arg(optarg, &v))
				return 2;
			if (v < 4096 || v > (4u << 20) || (v & (v - 1)))
				return usage_error("block size must be a power of two, 4K..4M: %s",
						   optarg);
			o.block_shift = (unsigned)__builtin_ctzll(v);
			break;
		case 'c':
			if ((r = hc_codec_from_name(optarg)) < 0)
				return usage_error("unknown compression: %s", optarg);
			o.codec = (unsigned)r;
			break;
		case 'l':
			if (hc_parse_uint(optarg, 22, &v) < 0)
				return usage_error("bad level: %s", optarg);
			level = (int)v;
			break;
		case 'j':
			if (uint_arg(optarg, 256, &o.threads) || !o.threads)
				return usage_error("bad job count: %s", optarg);
			break;
		case 'm':
			mirrors[o.nmirrors++] = optarg;
			break;
		case 'p':
			profile_file = optarg;
			break;
		case 'F':
			o.force = 1;
			break;
		case 'N':
			o.no_latest = 1;
			break;
		case 'K':
			keyfile = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			if ((r = common_option(c, "bad option for make")) >= 0)
				return r;
			break;
		}
	}
	if (argc - optind < 3 || argc - optind > 4)
		return usage_error("%s", "make needs IMAGE STORE_DIR NAME [VERSION]");
	o.image = argv[optind];
	o.store = argv[optind + 1];
	o.name = argv[optind + 2];
	o.version = argc - optind == 4 ? argv[optind + 3] : NULL;
	o.level = level >= 0 ? level : hc_codec_default_level(o.codec);
	if (o.codec == HC_CODEC_ZLIB && o.level > 9)
		return usage_error("zlib levels are 0..9: %s", "");
	o.mirrors = mirrors;
	o.progress = !quiet && isatty(2);
	o.created = (uint64_t)time(NULL);
	if (sde && hc_parse_uint(sde, UINT64_MAX, &v) == 0)
		o.created = v;
	if (profile_file && hc_profile_read(profile_file, &profile, &o.nprofile) < 0)
		return 1;
	o.profile = profile;
	if (keyfile && hc_seckey_load(keyfile, &key, why, sizeof(why)) < 0) {
		hc_err("%s", why);
		return 1;
	}
	o.sign_key = keyfile ? &key : NULL;
	r = hc_make(&o, &st);
	hc_seckey_wipe(&key);
	if (r == 0 && !quiet)
		hc_make_print_summary(&o, &st);
	return r == 0 ? 0 : 1;
}
#endif /* HC_NO_MAKE */

static int cmd_mount(int argc, char **argv)
{
	enum {
		O_ROOTFS = 256,
		O_ALLOW,
		O_LOG,
		O_CACERT,
		O_PROFILE,
		O_PF_CONN,
		O_PF_RATE,
		O_PF_MEM,
		O_TRACE,
		O_PUBKEY,
		O_PEERS,
		O_PEERS_INTERVAL
	};
	static const struct option lo[] = {
		{ "version", 1, NULL, 'V' },
		{ "cache-dir", 1, NULL, 'C' },
		{ "cache-size", 1, NULL, 'S' },
		{ "mem-cache", 1, NULL, 'M' },
		{ "readahead", 1, NULL, 'r' },
		{ "connections", 1, NULL, 'n' },
		{ "workers", 1, NULL, 'w' },
		{ "timeout", 1, NULL, 't' },
		{ "retries", 1, NULL, 'R' },
		{ "foreground", 0, NULL, 'f' },
		{ "rootfs", 0, NULL, O_ROOTFS },
		{ "allow-other", 0, NULL, O_ALLOW },
		{ "log", 1, NULL, O_LOG },
		{ "cacert", 1, NULL, O_CACERT },
		{ "prefetch", 1, NULL, 'P' },
		{ "profile", 1, NULL, O_PROFILE },
		{ "prefetch-connections", 1, NULL, O_PF_CONN },
		{ "prefetch-rate", 1, NULL, O_PF_RATE },
		{ "prefetch-mem", 1, NULL, O_PF_MEM },
		{ "trace", 1, NULL, O_TRACE },
		{ "pubkey", 1, NULL, O_PUBKEY },
		{ "peers", 1, NULL, O_PEERS },
		{ "peers-interval", 1, NULL, O_PEERS_INTERVAL },
		{ "verbose", 0, NULL, 'v' },
		{ "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hc_mount_opts o = { .cache_size = 1ull << 30 };
	const char *profile_file = NULL;
	uint32_t *profile = NULL;
	struct hc_pubkey pk;
	char *url, *end;
	int c, r;

	hc_dev_opts_default(&o.dev);
	while ((c = getopt_long(argc, argv, "V:C:S:M:r:n:w:t:R:P:fo:vh", lo, NULL)) != -1) {
		switch (c) {
		case 'V':
			o.version = optarg;
			break;
		case 'C':
			o.cache_dir = optarg;
			break;
		case 'S':
			if (size_arg(optarg, &o.cache_size))
				return 2;
			break;
		case 'M':
			if (size_arg(optarg, &o.dev.mem_cache))
				return 2;
			break;
		case 'r':
			if (uint_arg(optarg, 4096, &o.dev.readahead))
				return 2;
			break;
		case 'n':
			if (uint_arg(optarg, 256, &o.dev.fetch.connections) ||
			    !o.dev.fetch.connections)
				return usage_error("bad connection count: %s", optarg);
			break;
		case 'w':
			if (uint_arg(optarg, 64, &o.dev.workers) || !o.dev.workers)
				return usage_error("bad worker count: %s", optarg);
			break;
		case 't':
			o.dev.fetch.timeout = strtod(optarg, &end);
			if (*end || !(o.dev.fetch.timeout > 0 && o.dev.fetch.timeout < 86400))
				return usage_error("bad timeout: %s", optarg);
			break;
		case 'R':
			if (uint_arg(optarg, 30, &o.dev.fetch.retries))
				return 2;
			break;
		case 'f':
			o.foreground = 1;
			break;
		case 'o':
			o.fuse_opts = optarg;
			break;
		case O_ROOTFS:
			o.rootfs = 1;
			break;
		case O_ALLOW:
			o.allow_other = 1;
			break;
		case O_LOG:
			o.log_file = optarg;
			break;
		case O_CACERT:
			o.dev.fetch.cacert = optarg;
			break;
		case O_PEERS:
			if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8) &&
			    strncmp(optarg, "file://", 7))
				return usage_error("--peers %s: give the peer list's URL", optarg);
			o.dev.fetch.peers = optarg;
			break;
		case O_PEERS_INTERVAL:
			o.dev.fetch.peers_interval = strtod(optarg, &end);
			if (*end || !(o.dev.fetch.peers_interval >= 0.1 &&
				      o.dev.fetch.peers_interval < 86400))
				return usage_error("bad --peers-interval: %s", optarg);
			break;
		case 'P':
			if (!strcmp(optarg, "off"))
				o.dev.prefetch = HC_PREFETCH_OFF;
			else if (!strcmp(optarg, "profile"))
				o.dev.prefetch = HC_PREFETCH_PROFILE;
			else if (!strcmp(optarg, "fill"))
				o.dev.prefetch = HC_PREFETCH_FILL;
			else
				return usage_error("--prefetch takes off, profile or fill: %s",
						   optarg);
			break;
		case O_PROFILE:
			profile_file = optarg;
			break;
		case O_PF_CONN:
			if (uint_arg(optarg, 256, &o.dev.fetch.bg_connections) ||
			    !o.dev.fetch.bg_connections)
				return usage_error("bad connection count: %s", optarg);
			break;
		case O_PF_RATE:
			if (size_arg(optarg, &o.dev.fetch.bg_rate))
				return 2;
			break;
		case O_PF_MEM:
			if (size_arg(optarg, &o.dev.prefetch_mem))
				return 2;
			break;
		case O_TRACE:
			o.trace_file = optarg;
			break;
		case O_PUBKEY:
			if (pubkey_arg(optarg, &pk))
				return 1;
			o.pubkey = &pk;
			break;
		default:
			if ((r = common_option(c, "bad option for mount")) >= 0)
				return r;
			break;
		}
	}
	if (argc - optind != 3)
		return usage_error("%s", "mount needs URL[,URL...] NAME MOUNTPOINT");
	if (profile_file) {
		if (hc_profile_read(profile_file, &profile, &o.dev.nprofile) < 0)
			return 1;
		o.dev.profile = profile;
	}
	url = hc_url_from_arg(argv[optind]);
	if (!url) {
		hc_err("%s: %s", argv[optind], strerror(errno));
		return 1;
	}
	o.url = url;
	o.name = argv[optind + 1];
	o.mountpoint = argv[optind + 2];
	r = hc_mount_main(&o, argv[0]);
	free(url);
	free(profile);
	return r;
}

static int cmd_info_verify(int argc, char **argv, int verify)
{
	static const struct option lo[] = {
		{ "file", 1, NULL, 'F' },      { "quiet", 0, NULL, 'q' },
		{ "timeout", 1, NULL, 't' },   { "blocks", 0, NULL, 'B' },
		{ "cacert", 1, NULL, 'A' },    { "verbose", 0, NULL, 'v' },
		{ "help", 0, NULL, 'h' },      { "pubkey", 1, NULL, 'P' },
		{ "cache-dir", 1, NULL, 'C' }, { NULL, 0, NULL, 0 },
	};
	struct hc_fetch_opts fo;
	struct hc_pubkey key, *pk = NULL;
	const char *file = NULL, *cache_dir = NULL;
	char *url = NULL;
	int c, r, quiet = 0, nargs, blocks = 0;

	hc_fetch_opts_default(&fo);
	while ((c = getopt_long(argc, argv, "F:qt:vh", lo, NULL)) != -1) {
		switch (c) {
		case 'F':
			if (verify)
				return usage_error("%s", "verify takes URL NAME [VERSION]");
			file = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'B':
			blocks = 1;
			break;
		case 'C':
			if (verify)
				return usage_error("%s", "--cache-dir is for info");
			cache_dir = optarg;
			break;
		case 'P':
			if (pubkey_arg(optarg, &key))
				return 1;
			pk = &key;
			break;
		default:
			if ((r = fetch_option(c, &fo, "bad option")) >= 0)
				return r;
			break;
		}
	}
	nargs = argc - optind;
	if (file ? nargs != 0 : (nargs < 2 || nargs > 3))
		return usage_error("%s", verify ? "verify needs URL NAME [VERSION]"
						: "info needs URL NAME [VERSION] or --file INDEX");
	if (verify && strchr(argv[optind], ','))
		return usage_error("%s",
				   "verify checks one store: give one URL, not a mirror list");
	if (!file) {
		url = hc_url_from_arg(argv[optind]);
		if (!url) {
			hc_err("%s: %s", argv[optind], strerror(errno));
			return 1;
		}
	}
	if (verify)
		r = hc_verify_main(url, argv[optind + 1], nargs == 3 ? argv[optind + 2] : NULL, &fo,
				   pk, !quiet && isatty(2));
	else
		r = hc_info_main(url, file ? NULL : argv[optind + 1],
				 !file && nargs == 3 ? argv[optind + 2] : NULL, file, &fo, pk,
				 blocks, cache_dir);
	free(url);
	return r;
}

static int cmd_select(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "list", 0, NULL, 'L' },   { "timeout", 1, NULL, 't' },
		{ "cacert", 1, NULL, 'A' }, { "verbose", 0, NULL, 'v' },
		{ "help", 0, NULL, 'h' },   { NULL, 0, NULL, 0 },
	};
	struct hc_fetch_opts fo;
	char *urls, **v;
	size_t n;
	int c, r, list = 0;

	hc_fetch_opts_default(&fo);
	fo.timeout = 5;
	while ((c = getopt_long(argc, argv, "t:vh", lo, NULL)) != -1) {
		switch (c) {
		case 'L':
			list = 1;
			break;
		default:
			if ((r = fetch_option(c, &fo, "bad option for select")) >= 0)
				return r;
			break;
		}
	}
	if (argc - optind < 2)
		return usage_error("%s", "select needs NAME URL[,URL...] [URL...]");
	/* Mirrors given as several arguments or as one list, alike. */
	n = (size_t)(argc - optind - 1);
	v = calloc(n, sizeof(*v));
	for (size_t i = 0; v && i < n; i++)
		if (!(v[i] = hc_url_from_arg(argv[optind + 1 + i]))) {
			hc_err("%s: %s", argv[optind + 1 + i], strerror(errno));
			hc_urls_free(v, n);
			return 1;
		}
	urls = v ? hc_urls_join(v, n) : NULL;
	hc_urls_free(v, v ? n : 0);
	if (!urls)
		return 1;
	r = hc_select_main(urls, argv[optind], &fo, list);
	free(urls);
	return r;
}

#ifndef HC_NO_MAKE
static int cmd_keygen(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "verbose", 0, NULL, 'v' },
		{ "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hc_pubkey pk;
	char why[512];
	int c, r;

	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1)
		if ((r = common_option(c, "bad option for keygen")) >= 0)
			return r;
	if (argc - optind != 1)
		return usage_error("%s", "keygen needs NAME (writes NAME.sec and NAME.pub)");
	if (hc_key_generate(argv[optind], &pk, why, sizeof(why)) < 0) {
		hc_err("%s", why);
		return 1;
	}
	printf("%s.sec: secret key (keep it private; make --sign)\n%s.pub: public key (--pubkey)\n"
	       "key ID: %s\n",
	       argv[optind], argv[optind], pk.id);
	return 0;
}

static int cmd_gc(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "keep", 1, NULL, 'k' },    { "grace", 1, NULL, 'g' }, { "dry-run", 0, NULL, 'n' },
		{ "verbose", 0, NULL, 'v' }, { "help", 0, NULL, 'h' },	{ NULL, 0, NULL, 0 },
	};
	struct hc_gc_opts o = { .grace = 3600, .report = stdout };
	struct hc_gc_stats st;
	const char *verb;
	char b1[32], b2[32], b3[32];
	uint64_t v;
	int c, r, keep = 0;

	while ((c = getopt_long(argc, argv, "k:g:nvh", lo, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (uint_arg(optarg, 1u << 30, &o.keep) || !o.keep)
				return usage_error("bad --keep (at least 1): %s", optarg);
			keep = 1;
			break;
		case 'g':
			if (hc_parse_uint(optarg, 100ull * 365 * 86400, &v) < 0)
				return usage_error("bad grace period (seconds): %s", optarg);
			o.grace = (double)v;
			break;
		case 'n':
			o.dry_run = 1;
			break;
		default:
			if ((r = common_option(c, "bad option for gc")) >= 0)
				return r;
			break;
		}
	}
	if (argc - optind != 1 || !keep)
		return usage_error("%s", "gc needs STORE_DIR and --keep N");
	o.store = argv[optind];
	r = hc_gc(&o, &st);
	if (r < 0)
		return 1;
	verb = o.dry_run ? "would remove" : "removed";
	printf("%s: %llu images, kept %llu indexes and %llu blocks; %s %llu indexes (%s), "
	       "%llu blocks (%s), %llu temporaries (%s); left %llu unused blocks younger than "
	       "%.0f s\n",
	       o.store, (unsigned long long)st.images, (unsigned long long)st.indexes_kept,
	       (unsigned long long)st.blocks_kept, verb, (unsigned long long)st.indexes_removed,
	       hc_fmt_bytes(st.index_bytes, b1, sizeof(b1)), (unsigned long long)st.blocks_removed,
	       hc_fmt_bytes(st.block_bytes, b2, sizeof(b2)), (unsigned long long)st.tmp_removed,
	       hc_fmt_bytes(st.tmp_bytes, b3, sizeof(b3)), (unsigned long long)st.blocks_young,
	       o.grace);
	return 0;
}
#endif /* HC_NO_MAKE */

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	hc_log_init("hcloop", HC_LOG_INFO);
	if (!cmd)
		return usage_error("%s", "missing command");
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("hcloop %s\n", HCLOOP_VERSION);
		return 0;
	}
	/* Subcommands parse from their own name on. */
	argv[1] = argv[0];
	argc--;
	argv++;
#ifndef HC_NO_MAKE
	if (!strcmp(cmd, "make"))
		return cmd_make(argc, argv);
	if (!strcmp(cmd, "keygen"))
		return cmd_keygen(argc, argv);
	if (!strcmp(cmd, "gc"))
		return cmd_gc(argc, argv);
#else
	if (!strcmp(cmd, "make") || !strcmp(cmd, "keygen") || !strcmp(cmd, "gc"))
		return usage_error("%s: this hcloop is the initrd's reader, it makes no stores",
				   cmd);
#endif
	if (!strcmp(cmd, "mount"))
		return cmd_mount(argc, argv);
	if (!strcmp(cmd, "info"))
		return cmd_info_verify(argc, argv, 0);
	if (!strcmp(cmd, "verify"))
		return cmd_info_verify(argc, argv, 1);
	if (!strcmp(cmd, "select"))
		return cmd_select(argc, argv);
	return usage_error("unknown command: %s", cmd);
}
