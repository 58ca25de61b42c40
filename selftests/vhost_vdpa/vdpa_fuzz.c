// SPDX-License-Identifier: GPL-2.0
/*
 * vdpa_fuzz: a seeded hostile-guest fuzzer for a virtio-blk vDPA device
 * bound to vhost_vdpa, on the vdpa_drv library.
 *
 * Every batch builds requests from pieces (descriptors) placed in regions
 * the fuzzer maps through the IOTLB with chosen permissions: a linear RW
 * region, a page-scattered RW region (IOVA page k -> memfd page 37k mod n,
 * so no two IOVA-adjacent pages are physically adjacent), a
 * read-only and a write-only region, a victim region unmapped under
 * in-flight I/O, plus holes, a mapping's end and the top of the 64-bit
 * space.  A reference model of the virtio spec and of
 * Documentation/vdpa_blk_sw.rst predicts each request's answer (status
 * byte and used length, no status at all, or DEVICE_NEEDS_RESET), and a
 * shadow of the disk predicts every byte read back.  After each batch
 * every byte of every region is checked: pieces hold what they must, the
 * rest still holds the poison.  Every wait is bounded; a watchdog turns a
 * stuck ioctl into a failure.  A failure prints the seed and the request
 * count to replay it: vdpa_fuzz --seed S --iterations N.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <glob.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "vdpa_drv.h"
#include "fuzz_owner.h"
#include "vdpa_fuzz.h"

static const struct {
	const char *name;
	uint64_t iova;
	size_t size;
	uint8_t perm;
} rg_def[NRG] = {
	[RG_RING] = { "ring", 0x10000000, 1 << 20, VHOST_ACCESS_RW },
	[RG_DATA] = { "data", 0x20000000, 2 << 20, VHOST_ACCESS_RW },
	[RG_SCAT] = { "scat", 0x30000000, 2 << 20, VHOST_ACCESS_RW },
	[RG_RO] = { "ro", 0x40000000, 64 << 10, VHOST_ACCESS_RO },
	[RG_WO] = { "wo", 0x50000000, 64 << 10, VHOST_ACCESS_WO },
	[RG_VICT] = { "victim", 0x60000000, 256 << 10, VHOST_ACCESS_RW },
};

struct fuzz_state fz;

static int verbose;

/* ---- helpers ---------------------------------------------------------- */

uint64_t rnd(void)
{
	return vd_splitmix64(&fz.rs);
}

uint64_t rn(uint64_t n)
{
	return n ? rnd() % n : 0;
}

bool chance(unsigned int pct)
{
	return rn(100) < pct;
}

void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nFAIL: seed %" PRIu64 " batch %" PRIu64 " after %" PRIu64
		" requests; replay: vdpa_fuzz --seed %" PRIu64 " --iterations %" PRIu64 "\n",
		fz.seed, fz.nbatch, fz.nreq, fz.seed, fz.nreq + MAXREQ);
	if (vd_last_error[0])
		fprintf(stderr, "FAIL: last library error: %s\n", vd_last_error);
	exit(1);
}

static void on_alarm(int sig)
{
	(void)sig;
	fail("watchdog: no progress in %d s (hang)", WATCHDOG_S);
}

void msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* memfd page behind IOVA page @k of the scattered region */
static uint64_t scat_page(uint64_t k)
{
	return (k * 37) % (fz.rg[RG_SCAT].size / PG);
}

/* Host byte behind one IOVA of a mapped region, or NULL. */
uint8_t *host(uint64_t iova)
{
	unsigned int i;

	for (i = 0; i < NRG; i++) {
		struct rg *g = &fz.rg[i];
		uint64_t off;

		if (!g->mapped || iova < g->iova || iova - g->iova >= g->size)
			continue;
		off = iova - g->iova;
		if (i == RG_SCAT)
			off = scat_page(off / PG) * PG + off % PG;
		return g->r->va + off;
	}
	return NULL;
}

/* Does the device have @need (VHOST_ACCESS_RO/WO) on every byte? */
bool acc(uint64_t iova, uint64_t len, uint8_t need)
{
	unsigned int i;
	uint64_t last;

	if (!len)
		return true;
	if (__builtin_add_overflow(iova, len - 1, &last))
		return false;
	for (i = 0; i < NRG; i++) {
		struct rg *g = &fz.rg[i];

		if (!g->mapped || iova < g->iova || iova - g->iova >= g->size)
			continue;
		return last - g->iova < g->size && (g->perm & need) == need;
	}
	return false;
}

/* Bump allocation in a region for this batch; 0 when full. */
uint64_t ralloc(unsigned int ri, size_t len, size_t align)
{
	struct rg *g = &fz.rg[ri];
	size_t off;

	if (!align)
		align = 1;
	off = (g->brk + 16 + rn(240) + align - 1) & ~(align - 1);
	if (off > g->lim || len > g->lim - off)
		return 0;
	g->brk = off + len;
	return g->iova + off;
}

void rg_reset_alloc(void)
{
	unsigned int i;

	for (i = 0; i < NRG; i++)
		fz.rg[i].brk = 0;
	fz.edge_used = false;
}

/* Every byte of the region is poison (fast path, word compares). */
void rg_check_clean(unsigned int ri, const char *when)
{
	struct rg *g = &fz.rg[ri];
	const uint64_t pat = 0x0101010101010101ULL * VD_POISON;
	const uint64_t *w = (const uint64_t *)g->r->va;
	size_t i, n = g->size / 8;

	for (i = 0; i < n; i++) {
		if (w[i] != pat) {
			size_t b = i * 8;

			while (g->r->va[b] == VD_POISON)
				b++;
			fail("%s: region %s offset 0x%zx holds 0x%02x, expected poison (device wrote outside every request's range)",
			     when, rg_def[ri].name, b, g->r->va[b]);
		}
	}
}

/* ---- device set-up ---------------------------------------------------- */

static void map_scat(void)
{
	struct rg *g = &fz.rg[RG_SCAT];
	size_t n = g->size / PG, k;

	if (vd_iotlb_batch(fz.dev, true, false))
		fail("scat batch begin: %s", vd_last_error);
	for (k = 0; k < n; k++)
		if (vd_iotlb_update(fz.dev, g->iova + k * PG, PG,
				    (uintptr_t)g->r->va + scat_page(k) * PG,
				    g->perm))
			fail("scat map page %zu: %s", k, vd_last_error);
	if (vd_iotlb_batch(fz.dev, false, false))
		fail("scat batch end: %s", vd_last_error);
	g->mapped = true;
}

static void dev_start(void)
{
	uint64_t want = VD_DEFAULT_FEATURES;

	if (chance(50))
		want |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (vd_negotiate(fz.dev, want))
		fail("negotiate: %s", vd_last_error);
	if (!vd_has_backend(fz.dev, VHOST_BACKEND_F_IOTLB_PERSIST))
		map_scat();
	/* one of the first two queues: each may be served by its own worker */
	fz.qidx = rn(fz.dev->nvqs < 2 ? 1 : 2);
	if (vd_vq_setup(fz.dev, fz.qidx, fz.qsize, fz.rg[RG_RING].r))
		fail("vq %u setup: %s", fz.qidx, vd_last_error);
	fz.vq = &fz.dev->vqs[fz.qidx];
	vd_vq_set_interrupts(fz.vq, chance(70));
	if (vd_driver_ok(fz.dev))
		fail("DRIVER_OK: %s", vd_last_error);
	fz.features = fz.dev->features;
}

static void dev_setup(const char *path)
{
	unsigned int i;

	if (vd_open(path, &fz.dev))
		fail("open %s: %s", path, vd_last_error);
	for (i = 0; i < NRG; i++) {
		struct rg *g = &fz.rg[i];

		g->iova = rg_def[i].iova;
		g->perm = rg_def[i].perm;
		if (vd_region_create(fz.dev, rg_def[i].size, &g->r))
			fail("region %s: %s", rg_def[i].name, vd_last_error);
		g->size = g->r->size;
		g->lim = g->size;
		if (i == RG_SCAT)
			continue;
		if (vd_region_map(g->r, g->iova, g->perm))
			fail("map %s: %s (RLIMIT_MEMLOCK?)", rg_def[i].name,
			     vd_last_error);
		g->mapped = true;
	}
	/* The data region's last page is the edge a straddling piece crosses. */
	fz.rg[RG_DATA].lim = fz.rg[RG_DATA].size - PG;
	map_scat();
	dev_start();
	fz.cap = vd_capacity(fz.dev);
	fz.seg_max = fz.features & (1ULL << VIRTIO_BLK_F_SEG_MAX) ?
		     le32toh(fz.dev->cfg.seg_max) : UINT16_MAX;
	fz.size_max = fz.features & (1ULL << VIRTIO_BLK_F_SIZE_MAX) ?
		      le32toh(fz.dev->cfg.size_max) : UINT32_MAX;
	if (!fz.cap || fz.cap > (1ULL << 21))
		fail("capacity %" PRIu64 " sectors: the fuzzer wants 1 sector to 1 GiB",
		     fz.cap);
	fz.model = calloc(fz.cap, 512);
	fz.known = calloc(fz.cap, 1);
	if (!fz.model || !fz.known)
		fail("out of memory for the disk model");
}

void dev_restart(void)
{
	fz.nreset++;
	if (vd_reset(fz.dev))
		fail("reset: %s", vd_last_error);
	dev_start();
}

uint8_t dev_status(void)
{
	uint8_t st = 0;

	if (vd_get_status(fz.dev, &st))
		fail("get status: %s", vd_last_error);
	return st;
}

/* ---- main ------------------------------------------------------------- */

static const char *find_dev(void)
{
	static char path[256];
	glob_t g;

	if (getenv("VDPA_DEV"))
		return getenv("VDPA_DEV");
	if (glob("/dev/vhost-vdpa-*", 0, NULL, &g) || !g.gl_pathc)
		return NULL;
	snprintf(path, sizeof(path), "%s", g.gl_pathv[0]);
	globfree(&g);
	return path;
}

static void save_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "w");

	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		fail("cannot write %s", path);
}

/* The disk as the model knows it, to compare with the backing later. */
static void save_model(const char *path)
{
	char known[4096];

	snprintf(known, sizeof(known), "%s.known", path);
	save_file(path, fz.model, fz.cap * 512);
	save_file(known, fz.known, fz.cap);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vdpa_fuzz [--dev /dev/vhost-vdpa-N] [--seed S] [--iterations N]\n"
		"                 [--seconds T] [--qsize Q] [--strict] [--case NAME] [-v]\n"
		"                 [--lifecycle] [--save-model FILE]\n"
		"       vdpa_fuzz --owner [--dev DEV] [--seed S] [--iterations N]\n"
		"                 [--seconds T] [--qsize Q] [--va|--pa] [--case NAME]\n"
		"                 [--end-bare] [--no-op STEP,...] [-v]\n"
		"  --iterations N  stop after N requests (default 10000)\n"
		"  --seconds T     stop after T seconds (whichever first)\n"
		"  --strict        no allowance for known device limits\n"
		"  --case NAME     run one regression case: bvec, status-wrap, iotlb-limit\n"
		"  --lifecycle     well-formed batches, resets and suspends with requests\n"
		"                  in flight, nothing else\n"
		"  --save-model FILE  at the end, write the disk model to FILE and which\n"
		"                  512-byte sectors it knows (one byte each) to FILE.known\n"
		"  --owner         fuzz what the owner of the device controls (IOTLB,\n"
		"                  rings, status, its processes); --iterations counts\n"
		"                  operations; cases: unmap-batch, ro-used, fork-orphan,\n"
		"                  scm-orphan, base-jump, reset-map\n"
		"  --va, --pa      the device's memory mode (default: from sysfs)\n"
		"  --end-bare      owner mode: leave the device started without a mapping\n"
		"  --no-op STEPS   owner mode: never draw these steps (io, reap, quiet,\n"
		"                  batch, unmap, map, errno, vol-new, munmap, suspend,\n"
		"                  resume, base, enable, addr, num, odd, config, reset,\n"
		"                  starve, ro-used, sleep, probe)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 't' },
		{ "qsize", required_argument, NULL, 'q' },
		{ "strict", no_argument, NULL, 'S' },
		{ "case", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "lifecycle", no_argument, NULL, 'L' },
		{ "save-model", required_argument, NULL, 'M' },
		{ "owner", no_argument, NULL, 'O' },
		{ "owner-peer", required_argument, NULL, 'P' },
		{ "va", no_argument, NULL, 'V' },
		{ "pa", no_argument, NULL, 'A' },
		{ "end-bare", no_argument, NULL, 'B' },
		{ "no-op", required_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *cas = NULL, *save = NULL;
	uint64_t iters = 10000, seconds = 0, t0, last_report;
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	struct owner_opts oo = { .va = -1, .argv0 = "/proc/self/exe" };
	unsigned int qsize = 0;
	bool owner = false;
	int c;

	fz.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	while ((c = getopt_long(argc, argv, "d:s:n:t:q:Sc:vLM:", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			path = optarg;
			break;
		case 's':
			fz.seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			iters = strtoull(optarg, NULL, 0);
			break;
		case 't':
			seconds = strtoull(optarg, NULL, 0);
			break;
		case 'q':
			qsize = strtoul(optarg, NULL, 0);
			break;
		case 'S':
			fz.strict = true;
			break;
		case 'c':
			cas = optarg;
			break;
		case 'L':
			fz.lifecycle = true;
			break;
		case 'M':
			save = optarg;
			break;
		case 'O':
			owner = true;
			break;
		case 'P':
			return owner_peer_main(atoi(optarg));
		case 'V':
			oo.va = 1;
			break;
		case 'A':
			oo.va = 0;
			break;
		case 'B':
			oo.end_bare = true;
			break;
		case 'N':
			oo.no_ops = optarg;
			break;
		case 'v':
			verbose++;
			vd_verbose = verbose > 1;
			break;
		default:
			usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!path)
		path = find_dev();
	if (!path) {
		fprintf(stderr, "SKIP: no /dev/vhost-vdpa-* (use --dev)\n");
		return 4;
	}
	if (owner) {
		oo.dev = path;
		oo.seed = fz.seed;
		oo.iterations = iters;
		oo.seconds = seconds;
		oo.qsize = qsize;
		oo.cas = cas;
		oo.verbose = verbose;
		return owner_main(&oo);
	}
	setrlimit(RLIMIT_MEMLOCK, &rl);
	signal(SIGALRM, on_alarm);
	alarm(WATCHDOG_S);
	fz.rs = fz.seed;
	printf("vdpa_fuzz: seed %" PRIu64 " device %s\n", fz.seed, path);
	{
		struct vd_dev *probe;

		if (vd_open(path, &probe))
			fail("open %s: %s", path, vd_last_error);
		if (!qsize) {
			static const unsigned int qs[] = { 16, 64, 128, 256 };

			qsize = qs[rn(4)];
		}
		if (qsize > probe->vq_num_max)
			qsize = probe->vq_num_max;
		vd_close(probe);
	}
	fz.qsize = qsize;
	dev_setup(path);
	printf("vdpa_fuzz: queue size %u, capacity %" PRIu64 " sectors, features 0x%" PRIx64
	       ", backend 0x%" PRIx64 "\n", fz.qsize, fz.cap, fz.features,
	       fz.dev->backend_acked);
	if (cas) {
		if (!strcmp(cas, "bvec"))
			case_bvec();
		else if (!strcmp(cas, "status-wrap"))
			case_status_wrap();
		else if (!strcmp(cas, "iotlb-limit") && case_iotlb_limit())
			return 4;
		else if (strcmp(cas, "iotlb-limit"))
			usage();
		printf("vdpa_fuzz: case %s passed\n", cas);
		vd_close(fz.dev);
		return 0;
	}
	t0 = last_report = vd_now_ns();
	while (fz.nreq < iters) {
		uint64_t now = vd_now_ns();
		unsigned int r;

		if (seconds && now - t0 > seconds * 1000000000ULL)
			break;
		if (now - last_report > 20000000000ULL) {
			printf("vdpa_fuzz: %" PRIu64 " requests, %" PRIu64 " batches, %.0f s\n",
			       fz.nreq, fz.nbatch, (now - t0) / 1e9);
			last_report = now;
		}
		alarm(WATCHDOG_S);
		fz.nbatch++;
		r = rn(100);
		if (fz.lifecycle) {
			if (r < 40)
				sc_batch();
			else if (r < 70)
				sc_reset_mid();
			else
				sc_suspend_mid();
		} else if (r < 72)
			sc_batch();
		else if (r < 82)
			sc_breaker(rn(NBREAK));
		else if (r < 84)
			sc_avail_jump();
		else if (r < 88)
			sc_reset_mid();
		else if (r < 94)
			sc_suspend_mid();
		else
			sc_unmap_race();
		if (fz.nbatch % 32 == 0)
			check_ring_poison();
	}
	alarm(0);
	check_ring_poison();
	if (vd_check_poison(fz.rg[RG_DATA].r))
		fail("data region: %s", vd_last_error);
	printf("vdpa_fuzz: seed %" PRIu64 ": %" PRIu64 " requests in %" PRIu64
	       " batches, %.1f s: OK %" PRIu64 " IOERR %" PRIu64 " UNSUPP %" PRIu64
	       " no-status %" PRIu64 " unchecked %" PRIu64 "; needs-reset %" PRIu64
	       " avail-jumps %" PRIu64 " (%" PRIu64 " fetches) resets %" PRIu64
	       " suspends %" PRIu64
	       " unmap-races %" PRIu64 " bvec-allowance %" PRIu64 "\n",
	       fz.seed, fz.nreq, fz.nbatch, (vd_now_ns() - t0) / 1e9, fz.nst[0],
	       fz.nst[1], fz.nst[2], fz.nnostatus, fz.nany, fz.nbreak, fz.njump,
	       fz.njumpfetch, fz.nreset, fz.nsuspend, fz.nunmap, fz.nbvec_skip);
	vd_close(fz.dev);
	if (save)
		save_model(save);
	printf("vdpa_fuzz: PASS\n");
	return 0;
}
