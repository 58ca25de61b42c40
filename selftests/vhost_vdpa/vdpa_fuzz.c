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
#include <endian.h>
#include <errno.h>
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
#include <unistd.h>
#include <linux/virtio_config.h>

#include "vdpa_drv.h"
#include "fuzz_owner.h"

#define PG		4096ULL
#define WAIT_MS		15000
#define WATCHDOG_S	180
#define MAXP		640	/* pieces per request */
#define MAXREQ		32	/* requests per batch */
#define BVEC_LIMIT	508	/* device: bio_vecs per request (VBS_MAX_BVECS) */
#define DWZ_MAX_SECT	0xfffffe00U
#define ID_BYTES	20

enum { RG_RING, RG_DATA, RG_SCAT, RG_RO, RG_WO, RG_VICT, NRG };

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

#define HOLE_IOVA	0x70000000ULL

struct rg {
	struct vd_region *r;
	uint64_t iova;
	size_t size;
	uint8_t perm;
	bool mapped;
	size_t brk;
	size_t lim;
};

enum { PL_DATA, PL_SCAT, PL_RO, PL_WO, PL_VICT, PL_HOLE, PL_STRADDLE,
       PL_WRAP, PL_HUGE, PL_ZERO_BOGUS };

struct piece {
	uint64_t iova;
	uint32_t len;
	uint32_t hlen;		/* leading bytes in memory we own */
	bool w;
	uint8_t pl;
};

enum { EXP_STATUS, EXP_NOSTATUS, EXP_RESET, EXP_ANY, EXP_OK_OR_IOERR };
enum { OP_NONE, OP_READ, OP_WRITE, OP_ZERO, OP_DISCARD };

struct req {
	const char *what;
	uint32_t type;
	uint64_t sector;
	uint8_t *rdata;		/* intended readable stream */
	size_t rdata_len;
	struct piece *p;
	unsigned int np;
	bool indirect;
	uint64_t tbl_iova;
	/* expectation */
	int exp;
	uint8_t exp_st;
	uint32_t exp_len;
	uint64_t st_pos;	/* W stream position of the status byte */
	int op;
	uint64_t op_sector, op_bytes;	/* op range (bounding box) */
	unsigned int ndwz;
	uint64_t dwz_s[16], dwz_n[16];
	uint32_t getid_n;
	bool conflict;
	bool mem_any;		/* W memory may hold anything */
	bool wipe;		/* may have written we do not know where */
	bool vict_gone;		/* victim memory re-poisoned: skip */
	/* result */
	uint16_t head;
	bool done;
	uint32_t got_len;
	uint8_t got_st;
};

static struct {
	struct vd_dev *dev;
	struct vd_vq *vq;
	struct rg rg[NRG];
	unsigned int qsize;
	unsigned int qidx;	/* the virtqueue in use */
	uint64_t cap;		/* sectors */
	/* config: a longer chain, or more data, is a bad request */
	uint32_t seg_max, size_max;
	uint8_t *model;
	uint8_t *known;		/* per sector */
	uint8_t serial[ID_BYTES];
	bool serial_known;
	uint64_t features;
	bool strict;
	bool lifecycle;		/* resets and suspends only */
	bool edge_used;
	/* rng */
	uint64_t rs;
	uint64_t seed;
	/* counters */
	uint64_t nreq, nbatch, nreset, nsuspend, nunmap, nbreak, njump;
	uint64_t njumpfetch;	/* re-fetches of one head by avail jumps */
	uint64_t nst[4], nnostatus, nany, nbvec_skip;
	/* batch */
	struct req req[MAXREQ];
	unsigned int nr;
	uint16_t pool[1024];
	unsigned int npool;
} fz;

static int verbose;

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rnd(void)
{
	return vd_splitmix64(&fz.rs);
}

static uint64_t rn(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned int pct)
{
	return rn(100) < pct;
}

static void fail(const char *fmt, ...)
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

static void msleep(unsigned int ms)
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
static uint8_t *host(uint64_t iova)
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
static bool acc(uint64_t iova, uint64_t len, uint8_t need)
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
static uint64_t ralloc(unsigned int ri, size_t len, size_t align)
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

static void rg_reset_alloc(void)
{
	unsigned int i;

	for (i = 0; i < NRG; i++)
		fz.rg[i].brk = 0;
	fz.edge_used = false;
}

/* Every byte of the region is poison (fast path, word compares). */
static void rg_check_clean(unsigned int ri, const char *when)
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

static void dev_restart(void)
{
	fz.nreset++;
	if (vd_reset(fz.dev))
		fail("reset: %s", vd_last_error);
	dev_start();
}

static uint8_t dev_status(void)
{
	uint8_t st = 0;

	if (vd_get_status(fz.dev, &st))
		fail("get status: %s", vd_last_error);
	return st;
}

/* ---- request building ------------------------------------------------- */

static uint64_t pick_sector(uint64_t nsect)
{
	uint64_t cap = fz.cap;

	switch (rn(20)) {
	case 0:
		return cap > nsect ? cap - nsect : 0;	/* ends at capacity */
	case 1:
		return cap - (nsect ? nsect - 1 : 0);	/* one past */
	case 2:
		return cap;
	case 3:
		return cap + rn(1000);
	case 4:
		return UINT64_MAX - rn(4);		/* sector + n overflows */
	case 5:
		return (1ULL << 55) + rn(8);		/* bytes overflow */
	case 6:
		return 0;
	default:
		return cap > nsect ? rn(cap - nsect + 1) : 0;
	}
}

static uint64_t pick_good_sector(uint64_t nsect)
{
	return fz.cap > nsect ? rn(fz.cap - nsect + 1) : 0;
}

/* Place one piece of @len bytes; @bad allows faulty placements. */
static bool place(struct piece *p, uint32_t len, bool w, bool bad, bool victim,
		  bool last)
{
	unsigned int r = rn(100);
	uint64_t a = 0;

	p->len = len;
	p->w = w;
	p->hlen = len;
	if (bad && len && r < 60) {
		switch (rn(6)) {
		case 0:
			p->pl = PL_HOLE;
			p->iova = HOLE_IOVA + rn(1 << 20);
			p->hlen = 0;
			return true;
		case 1:
			if (len < 2 || fz.edge_used)
				break;
			p->pl = PL_STRADDLE;
			p->hlen = 1 + rn(len - 1 < PG ? len - 1 : PG);
			p->iova = fz.rg[RG_DATA].iova + fz.rg[RG_DATA].size - p->hlen;
			fz.edge_used = true;
			return true;
		case 2:
			if (len < 2)
				break;
			p->pl = PL_WRAP;
			p->iova = 0 - (uint64_t)(1 + rn(len - 1));
			p->hlen = 0;
			return true;
		case 3:
			if (len > 16384)
				break;
			p->pl = w ? PL_RO : PL_WO;	/* wrong permission */
			a = ralloc(w ? RG_RO : RG_WO, len, 1);
			break;
		case 4:
			if (!w && !last)
				break;
			/* we own what the request meant (64 bytes at least) */
			p->pl = PL_HUGE;
			p->hlen = w && len < 64 ? 64 : len;
			a = ralloc(RG_DATA, p->hlen, 1);
			p->len = chance(50) ? UINT32_MAX : (1U << 31) + rn(1 << 20);
			break;
		default:
			p->pl = PL_HOLE;
			p->iova = rn(PG);	/* IOVA 0 page: unmapped */
			p->hlen = 0;
			return true;
		}
		if (a) {
			p->iova = a;
			return true;
		}
	}
	if (!len && chance(30)) {
		/* Zero-length descriptor at a bogus address: harmless. */
		p->pl = PL_ZERO_BOGUS;
		p->iova = chance(50) ? HOLE_IOVA : rnd();
		p->hlen = 0;
		return true;
	}
	r = rn(100);
	if (victim) {
		p->pl = PL_VICT;
		a = ralloc(RG_VICT, len, 1 << rn(13));
	} else if (r < 10 && len <= 8192) {
		p->pl = w ? PL_WO : PL_RO;	/* right permission */
		a = ralloc(w ? RG_WO : RG_RO, len, 1 << rn(10));
	} else if (r < 40) {
		p->pl = PL_SCAT;
		a = ralloc(RG_SCAT, len, 1 << rn(13));
	}
	if (!a) {
		p->pl = PL_DATA;
		a = ralloc(RG_DATA, len, 1 << rn(13));
	}
	if (!a)
		return false;
	p->iova = a;
	return true;
}

/* Split @total bytes into at most @maxp pieces appended to @r. */
static bool split(struct req *r, uint64_t total, unsigned int maxp, bool w,
		  bool bad, bool victim, bool zero_pieces)
{
	unsigned int n = 1 + rn(maxp), i;
	uint64_t left = total;

	if (total < n && !zero_pieces)
		n = total ? total : 1;
	if (total > 1024ULL * 1024 * n)	/* size_max */
		n = (total + (1 << 20) - 1) >> 20;
	for (i = 0; i < n; i++) {
		uint64_t len;

		if (r->np == MAXP)
			return false;
		if (i == n - 1)
			len = left;
		else if (zero_pieces && chance(15))
			len = 0;
		else
			len = left / (n - i) + rn(left / (n - i) / 2 + 1);
		if (len > left)
			len = left;
		if (len > (1 << 20))
			len = 1 << 20;
		if (!place(&r->p[r->np], len, w, bad, victim,
			   i == n - 1 && len == left))
			return false;
		r->np++;
		left -= len;
	}
	if (left) {
		if (r->np == MAXP ||
		    !place(&r->p[r->np], left, w, bad, victim, true))
			return false;
		r->np++;
	}
	return true;
}

/* W or R stream: does every byte of [from, to) have @need? */
static bool stream_acc(const struct req *r, bool w, uint64_t from,
		       uint64_t to, uint8_t need)
{
	uint64_t s = 0;
	unsigned int i;

	for (i = 0; i < r->np && s < to; i++) {
		const struct piece *p = &r->p[i];
		uint64_t a, b;

		if (p->w != w)
			continue;
		a = from > s ? from : s;
		b = to < s + p->len ? to : s + p->len;
		if (a < b && !acc(p->iova + (a - s), b - a, need))
			return false;
		s += p->len;
	}
	return true;
}

/* Pages the data part of the stream touches: a bound on the bio_vecs. */
static uint64_t stream_pages(const struct req *r, bool w, uint64_t from,
			     uint64_t to)
{
	uint64_t s = 0, n = 0;
	unsigned int i;

	for (i = 0; i < r->np && s < to; i++) {
		const struct piece *p = &r->p[i];
		uint64_t a, b;

		if (p->w != w)
			continue;
		a = from > s ? from : s;
		b = to < s + p->len ? to : s + p->len;
		if (a < b) {
			uint64_t x = p->iova + (a - s), y = p->iova + (b - s) - 1;

			n += y / PG - x / PG + 1;
		}
		s += p->len;
	}
	return n;
}

static bool ranges_ok(uint64_t sector, uint64_t bytes)
{
	uint64_t end;

	if (bytes & 511)
		return false;
	if (__builtin_add_overflow(sector, bytes >> 9, &end))
		return false;
	return end <= fz.cap;
}

static void set_st(struct req *r, uint8_t st, uint32_t len)
{
	r->exp = EXP_STATUS;
	r->exp_st = st;
	r->exp_len = len;
}

/*
 * The reference: what the virtio spec and Documentation/vdpa_blk_sw.rst
 * say the device answers for this (structurally valid) chain.
 */
static void expect(struct req *r)
{
	uint64_t rlen = 0, wlen = 0, hdr_sector, data_in, data_out, len;
	unsigned int i, last = MAXP;
	uint32_t type;

	r->op = OP_NONE;
	for (i = 0; i < r->np; i++) {
		if (r->p[i].w) {
			wlen += r->p[i].len;
			if (r->p[i].len)
				last = i;
		} else {
			rlen += r->p[i].len;
		}
	}
	/* The status byte: last byte of the device-writable part. */
	if (last == MAXP) {
		r->exp = EXP_NOSTATUS;
		return;
	}
	{
		uint64_t sa;

		if (__builtin_add_overflow(r->p[last].iova,
					   (uint64_t)r->p[last].len - 1, &sa) ||
		    !acc(sa, 1, VHOST_ACCESS_WO)) {
			r->exp = EXP_NOSTATUS;
			return;
		}
	}
	r->st_pos = wlen - 1;
	data_in = wlen - 1;
	/* header, seg_max data segments and the status at most */
	if (r->np > fz.seg_max + 2) {
		set_st(r, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	if (rlen < 16 || r->rdata_len < 16 ||
	    !stream_acc(r, false, 0, 16, VHOST_ACCESS_RO)) {
		set_st(r, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	type = le32toh(*(uint32_t *)r->rdata);
	hdr_sector = le64toh(*(uint64_t *)(r->rdata + 8));
	data_out = rlen - 16;
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool out = type == VIRTIO_BLK_T_OUT;

		len = out ? data_out : data_in;
		if (!ranges_ok(hdr_sector, len) ||
		    len > (uint64_t)fz.seg_max * fz.size_max) {
			set_st(r, VIRTIO_BLK_S_IOERR, 1);
			return;
		}
		if (!len) {
			set_st(r, VIRTIO_BLK_S_OK, 1);
			return;
		}
		if (out ? !stream_acc(r, false, 16, rlen, VHOST_ACCESS_RO) :
			  !stream_acc(r, true, 0, len, VHOST_ACCESS_WO)) {
			set_st(r, VIRTIO_BLK_S_IOERR, 1);
			return;
		}
		if (out && r->rdata_len < rlen) {
			/* data we did not write: cannot model */
			r->exp = EXP_ANY;
			r->wipe = true;
			return;
		}
		set_st(r, VIRTIO_BLK_S_OK, out ? 1 : 1 + len);
		r->op = out ? OP_WRITE : OP_READ;
		r->op_sector = hdr_sector;
		r->op_bytes = len;
		if (!fz.strict &&
		    (out ? stream_pages(r, false, 16, rlen) :
		     stream_pages(r, true, 0, len)) > BVEC_LIMIT - 8) {
			/* known limit, see --strict and the bvec case */
			r->exp = EXP_OK_OR_IOERR;
			fz.nbvec_skip++;
		}
		return;
	}
	case VIRTIO_BLK_T_FLUSH:
		if (!(fz.features & (1ULL << VIRTIO_BLK_F_FLUSH)))
			set_st(r, VIRTIO_BLK_S_UNSUPP, 1);
		else
			set_st(r, VIRTIO_BLK_S_OK, 1);
		return;
	case VIRTIO_BLK_T_GET_ID:
		r->getid_n = data_in < ID_BYTES ? data_in : ID_BYTES;
		if (!stream_acc(r, true, 0, r->getid_n, VHOST_ACCESS_WO))
			set_st(r, VIRTIO_BLK_S_IOERR, 1);
		else
			set_st(r, VIRTIO_BLK_S_OK, 1 + r->getid_n);
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		bool discard = type == VIRTIO_BLK_T_DISCARD;
		unsigned int feat = discard ? VIRTIO_BLK_F_DISCARD :
				    VIRTIO_BLK_F_WRITE_ZEROES;
		uint64_t lo = UINT64_MAX, hi = 0;

		if (!(fz.features & (1ULL << feat))) {
			set_st(r, VIRTIO_BLK_S_UNSUPP, 1);
			return;
		}
		if (!data_out || data_out % 16 || data_out / 16 > 16 ||
		    !stream_acc(r, false, 16, rlen, VHOST_ACCESS_RO)) {
			set_st(r, VIRTIO_BLK_S_IOERR, 1);
			return;
		}
		if (r->rdata_len < rlen) {
			r->exp = EXP_ANY;
			r->wipe = true;
			return;
		}
		r->ndwz = data_out / 16;
		for (i = 0; i < r->ndwz; i++) {
			const uint8_t *s = r->rdata + 16 + 16 * i;
			uint64_t sec = le64toh(*(const uint64_t *)s);
			uint32_t num = le32toh(*(const uint32_t *)(s + 8));
			uint32_t fl = le32toh(*(const uint32_t *)(s + 12));

			if ((fl & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
			    (discard && fl)) {
				set_st(r, VIRTIO_BLK_S_UNSUPP, 1);
				return;
			}
			if (num > DWZ_MAX_SECT ||
			    !ranges_ok(sec, (uint64_t)num << 9)) {
				set_st(r, VIRTIO_BLK_S_IOERR, 1);
				return;
			}
			r->dwz_s[i] = sec;
			r->dwz_n[i] = num;
			if (num && sec < lo)
				lo = sec;
			if (num && sec + num > hi)
				hi = sec + num;
		}
		set_st(r, VIRTIO_BLK_S_OK, 1);
		if (hi) {
			r->op = discard ? OP_DISCARD : OP_ZERO;
			r->op_sector = lo;
			r->op_bytes = (hi - lo) << 9;
		}
		return;
	}
	default:
		set_st(r, VIRTIO_BLK_S_UNSUPP, 1);
		return;
	}
}

static const uint32_t odd_types[] = {
	2, 3, 5, 6, 7, 9, 10, 12, 14, 15, 16, 24, 25, 26, 0x80000000,
	0x80000001, 0x80000004, 0xffffffff, 0x7fffffff,
};

/*
 * Generate one request.  @mal: malformed knobs on; @victim: data pieces in
 * the victim region.  Returns false when it does not fit this batch.
 */
static bool gen(struct req *r, bool mal, bool victim)
{
	uint64_t dl = 0, wl = 0, sector = 0, rl;
	unsigned int maxseg = 1 + rn(chance(10) ? 254 : 16);
	uint32_t type;
	bool getid = false;
	uint8_t *d;

	memset(r, 0, sizeof(*r));
	r->p = calloc(MAXP, sizeof(*r->p));
	if (!r->p)
		fail("oom");
	switch (rn(victim ? 2 : 10)) {
	case 0: case 1: case 2:
		type = VIRTIO_BLK_T_IN;
		break;
	case 3: case 4: case 5:
		type = VIRTIO_BLK_T_OUT;
		break;
	case 6:
		type = VIRTIO_BLK_T_FLUSH;
		break;
	case 7:
		type = VIRTIO_BLK_T_GET_ID;
		break;
	case 8:
		type = chance(50) ? VIRTIO_BLK_T_DISCARD :
		       VIRTIO_BLK_T_WRITE_ZEROES;
		break;
	default:
		type = mal ? odd_types[rn(sizeof(odd_types) / 4)] :
		       VIRTIO_BLK_T_IN;
		break;
	}
	r->type = type;
	if (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_OUT) {
		dl = 512 * (chance(5) ? rn(2049) : rn(129));
		if (mal && chance(10))
			dl += 1 + rn(511);
		sector = mal ? pick_sector(dl >> 9) : pick_good_sector(dl >> 9);
	} else if (type == VIRTIO_BLK_T_FLUSH) {
		sector = mal && chance(50) ? rnd() : 0;
	} else if (type == VIRTIO_BLK_T_GET_ID) {
		getid = true;
		sector = mal && chance(50) ? rnd() : 0;
	}
	if (victim && dl == 0)
		dl = 4096;
	r->sector = sector;
	r->what = mal ? "malformed" : "well-formed";

	/* readable stream: header, then out data or DISCARD/WZ segments */
	rl = 16;
	if (type == VIRTIO_BLK_T_OUT || (mal && type == VIRTIO_BLK_T_IN &&
					 chance(10)))
		rl += dl;
	if (type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES) {
		unsigned int n = 1 + rn(mal ? 18 : 16);

		if (mal && chance(10))
			n = 0;
		rl += 16 * n;
		if (mal && chance(10))
			rl += 1 + rn(15);
	}
	if (mal && chance(8))
		rl = rn(16);	/* header too short */
	r->rdata = malloc(rl ? rl : 1);
	if (!r->rdata)
		fail("oom");
	r->rdata_len = rl;
	d = r->rdata;
	for (uint64_t i = 0; i < rl; i++)
		d[i] = rnd();
	if (rl >= 16) {
		*(uint32_t *)d = htole32(type);
		*(uint32_t *)(d + 4) = chance(80) ? 0 : rnd();
		*(uint64_t *)(d + 8) = htole64(sector);
	}
	if (type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES) {
		bool discard = type == VIRTIO_BLK_T_DISCARD;
		uint64_t base = pick_good_sector(2048);

		for (uint64_t o = 16; o + 16 <= rl; o += 16) {
			uint32_t num = rn(chance(10) ? 16384 : 256);
			uint64_t sec = base + rn(2048);
			uint32_t fl = 0;

			if (!discard && chance(30))
				fl = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
			if (mal && chance(10)) {
				switch (rn(5)) {
				case 0:
					fl = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
					break;
				case 1:
					fl = 1U << (1 + rn(31));
					break;
				case 2:
					num = DWZ_MAX_SECT + 1 + rn(0x1ff);
					break;
				default:
					sec = pick_sector(num);
					break;
				}
			}
			if (sec > fz.cap || num > fz.cap - sec) {
				if (!mal) {
					sec = 0;
					num = num > fz.cap ? fz.cap : num;
				}
			}
			*(uint64_t *)(d + o) = htole64(sec);
			*(uint32_t *)(d + o + 8) = htole32(num);
			*(uint32_t *)(d + o + 12) = htole32(fl);
		}
	}

	/* writable stream: in data (or GET_ID buffer), then the status */
	if (type == VIRTIO_BLK_T_IN)
		wl = (rl > 16 && rl - 16 == dl) ? 0 : dl;
	if (getid)
		wl = chance(70) ? ID_BYTES : rn(64);
	if (mal && type == VIRTIO_BLK_T_OUT && chance(10))
		wl = dl;	/* out data also offered writable */

	if (mal && chance(3))
		maxseg = 300 + rn(200);	/* more than the device takes */
	if (!split(r, rl, type == VIRTIO_BLK_T_OUT ? maxseg :
		   rl > 16 && chance(50) ? 4 : 2, false,
		   mal && rl >= 16 && chance(30), false, mal))
		return false;
	if ((wl || (mal && chance(20))) &&
	    !split(r, wl, maxseg, true, mal && chance(30), victim, mal))
		return false;
	/* status: its own descriptor, longer, or missing (len 0) */
	{
		uint32_t sl = 1;

		if (mal && chance(10))
			sl = chance(50) ? 0 : 2 + rn(8);
		if (r->np == MAXP || !place(&r->p[r->np], sl, true,
					   mal && chance(10), false, true))
			return false;
		r->np++;
	}
	if (victim) {
		/* move the out data into the victim region */
		for (unsigned int i = 0; i < r->np; i++)
			if (!r->p[i].w && r->p[i].len && i > 0 && dl)
				if (!place(&r->p[i], r->p[i].len, false, false,
					   true, false))
					return false;
	}
	if (mal && chance(3)) {
		/* write-only header: every descriptor device-writable */
		for (unsigned int i = 0; i < r->np; i++)
			r->p[i].w = true;
		r->what = "write-only header";
	}
	r->indirect = chance(25) || r->np > fz.qsize / 2;
	expect(r);
	return true;
}

/* ---- descriptors and the ring ----------------------------------------- */

static void pool_reset(void)
{
	unsigned int i;

	fz.npool = fz.qsize;
	for (i = 0; i < fz.qsize; i++)
		fz.pool[i] = i;
	for (i = fz.qsize - 1; i > 0; i--) {
		unsigned int j = rn(i + 1);
		uint16_t t = fz.pool[i];

		fz.pool[i] = fz.pool[j];
		fz.pool[j] = t;
	}
}

/* Write the R stream bytes into the pieces' memory. */
static void fill_pieces(struct req *r)
{
	uint64_t s = 0;
	unsigned int i;

	for (i = 0; i < r->np; i++) {
		struct piece *p = &r->p[i];

		if (p->w)
			continue;
		for (uint32_t o = 0; o < p->hlen && s + o < r->rdata_len; o++) {
			uint8_t *h = host(p->iova + o);

			if (h)
				*h = r->rdata[s + o];
		}
		s += p->len;
	}
}

/* Lay the chain out (direct or indirect); false if out of descriptors. */
static bool lay(struct req *r)
{
	unsigned int i, n = r->np;

	fill_pieces(r);
	if (r->indirect) {
		struct vring_desc *t;
		uint16_t *perm;

		if (!fz.npool)
			return false;
		r->tbl_iova = ralloc(RG_DATA, 16 * n, 16);
		if (!r->tbl_iova)
			return false;
		t = (struct vring_desc *)host(r->tbl_iova);
		perm = malloc(n * sizeof(*perm));
		if (!perm)
			fail("oom");
		for (i = 0; i < n; i++)
			perm[i] = i;
		/* entry 0 is where the walk starts */
		for (i = n - 1; i > 1; i--) {
			unsigned int j = 1 + rn(i);
			uint16_t x = perm[i];

			perm[i] = perm[j];
			perm[j] = x;
		}
		for (i = 0; i < n; i++) {
			struct vring_desc *e = &t[perm[i]];

			e->addr = htole64(r->p[i].iova);
			e->len = htole32(r->p[i].len);
			e->flags = htole16((r->p[i].w ? VRING_DESC_F_WRITE : 0) |
					   (i + 1 < n ? VRING_DESC_F_NEXT : 0));
			e->next = htole16(i + 1 < n ? perm[i + 1] : rn(2));
		}
		free(perm);
		r->head = fz.pool[--fz.npool];
		vd_desc_set(fz.vq, r->head, r->tbl_iova, 16 * n,
			    VRING_DESC_F_INDIRECT | (chance(20) ?
						     VRING_DESC_F_WRITE : 0),
			    rn(fz.qsize));
		return true;
	}
	if (n > fz.npool)
		return false;
	{
		uint16_t idx[MAXP];

		for (i = 0; i < n; i++)
			idx[i] = fz.pool[--fz.npool];
		for (i = 0; i < n; i++)
			vd_desc_set(fz.vq, idx[i], r->p[i].iova, r->p[i].len,
				    (r->p[i].w ? VRING_DESC_F_WRITE : 0) |
				    (i + 1 < n ? VRING_DESC_F_NEXT : 0),
				    i + 1 < n ? idx[i + 1] : rn(fz.qsize * 2));
		r->head = idx[0];
	}
	return true;
}

static void free_batch(void)
{
	unsigned int i;

	for (i = 0; i < MAXREQ; i++) {
		free(fz.req[i].p);
		free(fz.req[i].rdata);
		fz.req[i].p = NULL;
		fz.req[i].rdata = NULL;
	}
	fz.nr = 0;
}

static void describe(const struct req *r)
{
	unsigned int i;

	fprintf(stderr, "  request head %u (%s, %s): type 0x%x sector %" PRIu64
		", %u pieces, expected %s %s len %u, got %s status 0x%02x len %u\n",
		r->head, r->what, r->indirect ? "indirect" : "direct", r->type,
		r->sector, r->np,
		r->exp == EXP_STATUS ? "status" : r->exp == EXP_NOSTATUS ?
		"no-status" : r->exp == EXP_ANY ? "any" : "ok-or-ioerr",
		vd_status_name(r->exp_st), r->exp_len,
		r->done ? "done" : "pending", r->got_st, r->got_len);
	for (i = 0; i < r->np && i < 24; i++)
		fprintf(stderr, "    %c 0x%016" PRIx64 " len %u (placement %u)\n",
			r->p[i].w ? 'W' : 'R', r->p[i].iova, r->p[i].len,
			r->p[i].pl);
	if (r->np > 24)
		fprintf(stderr, "    ... %u more\n", r->np - 24);
}

static void fail_req(const struct req *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	describe(r);
	fail("%s", msg);
}

/* Collect used entries until every request is done; false on timeout. */
static bool collect(unsigned int want, int timeout_ms, bool reset_ok)
{
	uint64_t deadline = vd_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	unsigned int got = 0, i;

	while (got < want) {
		uint32_t id, len;

		if (vd_now_ns() > deadline)
			return false;
		if (vd_used_wait(fz.vq, 20) == -ETIMEDOUT) {
			if (dev_status() & VIRTIO_CONFIG_S_NEEDS_RESET) {
				if (reset_ok)
					return false;
				for (i = 0; i < fz.nr; i++)
					describe(&fz.req[i]);
				fail("device needs reset in a batch that has no bad chain");
			}
			continue;
		}
		while (vd_used_pop(fz.vq, &id, &len)) {
			struct req *r = NULL;

			for (i = 0; i < fz.nr; i++)
				if (fz.req[i].head == id && !fz.req[i].done)
					r = &fz.req[i];
			if (!r) {
				for (i = 0; i < fz.nr; i++)
					describe(&fz.req[i]);
				fail("used id %u len %u is no request in flight",
				     id, len);
			}
			r->done = true;
			r->got_len = len;
			got++;
		}
	}
	return true;
}

/* ---- checking --------------------------------------------------------- */

static bool overlap(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
	return a < b + bn && b < a + an;
}

static bool op_writes(int op)
{
	return op == OP_WRITE || op == OP_ZERO || op == OP_DISCARD;
}

static void mark_conflicts(void)
{
	unsigned int i, j;

	for (i = 0; i < fz.nr; i++)
		for (j = i + 1; j < fz.nr; j++) {
			struct req *a = &fz.req[i], *b = &fz.req[j];

			if (a->op == OP_NONE || b->op == OP_NONE)
				continue;
			if (!op_writes(a->op) && !op_writes(b->op))
				continue;
			if (overlap(a->op_sector, a->op_bytes >> 9,
				    b->op_sector, b->op_bytes >> 9))
				a->conflict = b->conflict = true;
		}
}

static void model_unknown(uint64_t sector, uint64_t bytes)
{
	uint64_t n = bytes >> 9;

	if (sector >= fz.cap)
		return;
	if (n > fz.cap - sector)
		n = fz.cap - sector;
	memset(fz.known + sector, 0, n);
}

/* Check one finished request's memory and answer; apply it to the model. */
static void check_req(struct req *r)
{
	uint8_t st = 0xff;
	bool ok;
	uint64_t s = 0;
	unsigned int i;

	if (!r->done)
		fail_req(r, "request never completed");
	/* the status byte */
	if (r->exp != EXP_NOSTATUS && r->exp != EXP_RESET) {
		uint64_t ws = 0;

		for (i = 0; i < r->np; i++) {
			if (!r->p[i].w)
				continue;
			if (r->st_pos >= ws && r->st_pos < ws + r->p[i].len) {
				uint8_t *h = host(r->p[i].iova + (r->st_pos - ws));

				st = h ? *h : 0xfe;
			}
			ws += r->p[i].len;
		}
	}
	r->got_st = st;
	switch (r->exp) {
	case EXP_NOSTATUS:
		if (r->got_len)
			fail_req(r, "request without a usable status: used len %u, expected 0",
				 r->got_len);
		fz.nnostatus++;
		break;
	case EXP_STATUS:
		if (st != r->exp_st || r->got_len != r->exp_len)
			fail_req(r, "wrong answer: status %s (0x%02x) len %u, expected %s len %u",
				 vd_status_name(st), st, r->got_len,
				 vd_status_name(r->exp_st), r->exp_len);
		fz.nst[st < 3 ? st : 3]++;
		break;
	case EXP_OK_OR_IOERR:
		if (st == VIRTIO_BLK_S_IOERR && r->got_len == 1) {
			r->op = OP_NONE;
			r->exp_st = st;
		} else if (st != r->exp_st || r->got_len != r->exp_len) {
			fail_req(r, "wrong answer: status %s len %u, expected %s len %u or IOERR",
				 vd_status_name(st), r->got_len,
				 vd_status_name(r->exp_st), r->exp_len);
		}
		fz.nst[st < 3 ? st : 3]++;
		break;
	default:
		fz.nany++;
		break;
	}
	ok = r->exp != EXP_ANY && r->exp != EXP_NOSTATUS;

	/* writable memory: data, GET_ID bytes or untouched */
	for (i = 0; i < r->np; i++) {
		struct piece *p = &r->p[i];

		if (!p->w)
			continue;
		for (uint32_t o = 0; o < p->hlen; o++) {
			uint64_t pos = s + o;
			uint8_t *h = host(p->iova + o), v, want;

			if (!h || r->mem_any || (p->pl == PL_VICT && r->vict_gone))
				continue;
			v = *h;
			if (ok && pos == r->st_pos)
				continue;
			if (ok && r->op == OP_READ && pos < r->op_bytes) {
				uint64_t b = (r->op_sector << 9) + pos;

				if (r->conflict)
					continue;
				if (!fz.known[b >> 9])
					continue;	/* learnt below */
				if (v != fz.model[b])
					fail_req(r, "read data mismatch at disk byte %" PRIu64
						 " (sector %" PRIu64 "): got 0x%02x, model 0x%02x",
						 b, b >> 9, v, fz.model[b]);
				continue;
			}
			if (r->type == VIRTIO_BLK_T_GET_ID && pos < r->getid_n &&
			    r->exp != EXP_NOSTATUS) {
				if (!fz.serial_known && r->exp_st == VIRTIO_BLK_S_OK &&
				    r->getid_n == ID_BYTES) {
					for (uint32_t k = 0; k < ID_BYTES; k++) {
						uint8_t *q = NULL;
						uint64_t ss = 0;

						for (unsigned int m = 0; m < r->np; m++) {
							if (!r->p[m].w)
								continue;
							if (k >= ss && k < ss + r->p[m].len)
								q = host(r->p[m].iova + k - ss);
							ss += r->p[m].len;
						}
						if (!q)
							break;
						fz.serial[k] = *q;
					}
					fz.serial_known = true;
				}
				want = fz.serial[pos];
				if (!fz.serial_known || v == want ||
				    (r->exp_st != VIRTIO_BLK_S_OK && v == VD_POISON))
					continue;
				fail_req(r, "GET_ID byte %" PRIu64 ": got 0x%02x, expected 0x%02x",
					 pos, v, want);
			}
			if (v != VD_POISON)
				fail_req(r, "device wrote 0x%02x at W stream byte %" PRIu64
					 " (iova 0x%" PRIx64 "), outside what the request allows",
					 v, pos, p->iova + o);
		}
		s += p->len;
	}
	/* readable memory: untouched */
	s = 0;
	for (i = 0; i < r->np; i++) {
		struct piece *p = &r->p[i];

		if (p->w)
			continue;
		for (uint32_t o = 0; o < p->hlen && s + o < r->rdata_len; o++) {
			uint8_t *h = host(p->iova + o);

			if (!h || (p->pl == PL_VICT && r->vict_gone))
				continue;
			if (*h != r->rdata[s + o])
				fail_req(r, "device wrote into a device-readable buffer at iova 0x%" PRIx64,
					 p->iova + o);
		}
		s += p->len;
	}
}

static void apply_req(struct req *r)
{
	uint64_t b, n, i;

	if (r->wipe) {
		memset(fz.known, 0, fz.cap);
		return;
	}
	if (r->exp == EXP_ANY || r->exp == EXP_RESET) {
		if (op_writes(r->op))
			model_unknown(r->op_sector, r->op_bytes);
		return;
	}
	if (r->exp_st != VIRTIO_BLK_S_OK || r->exp == EXP_NOSTATUS)
		return;
	b = r->op_sector << 9;
	n = r->op_bytes;
	switch (r->op) {
	case OP_WRITE:
		if (r->conflict) {
			model_unknown(r->op_sector, n);
			break;
		}
		memcpy(fz.model + b, r->rdata + 16, n);
		memset(fz.known + r->op_sector, 1, n >> 9);
		break;
	case OP_READ: {
		uint64_t s = 0;

		if (r->conflict || r->vict_gone)
			break;
		/* learn what the model did not know */
		for (i = 0; i < r->np; i++) {
			struct piece *p = &r->p[i];

			if (!p->w)
				continue;
			for (uint32_t o = 0; o < p->len && s + o < n; o++) {
				uint64_t d = b + s + o;

				if (!fz.known[d >> 9])
					fz.model[d] = *host(p->iova + o);
			}
			s += p->len;
		}
		memset(fz.known + r->op_sector, 1, n >> 9);
		break;
	}
	case OP_ZERO:
	case OP_DISCARD:
		for (i = 0; i < r->ndwz; i++) {
			if (r->conflict || r->op == OP_DISCARD) {
				model_unknown(r->dwz_s[i], r->dwz_n[i] << 9);
				continue;
			}
			memset(fz.model + (r->dwz_s[i] << 9), 0, r->dwz_n[i] << 9);
			memset(fz.known + r->dwz_s[i], 1, r->dwz_n[i]);
		}
		break;
	}
}

/* Re-poison everything the batch used, then every region must be clean. */
static void repoison_and_check(const char *when)
{
	bool all = fz.nbatch % 16 == 0;
	unsigned int i;

	for (i = 0; i < NRG; i++) {
		struct rg *g = &fz.rg[i];

		if (i == RG_RING)
			continue;
		if (i == RG_DATA && fz.edge_used)
			memset(g->r->va + g->size - PG, VD_POISON, PG);
		if (i == RG_SCAT && g->brk) {
			memset(g->r->va, VD_POISON, g->size);
		} else {
			memset(g->r->va, VD_POISON, g->brk);
		}
	}
	for (i = 0; i < NRG; i++)
		if (i != RG_RING && (all || fz.rg[i].brk || i == RG_DATA))
			rg_check_clean(i, when);
	rg_reset_alloc();
}

static void check_ring_poison(void)
{
	if (vd_check_poison(fz.rg[RG_RING].r))
		fail("ring region: %s", vd_last_error);
}

/* Checks before re-poisoning: pieces checked per request, all regions. */
static void finish_batch(void)
{
	unsigned int i;

	mark_conflicts();
	for (i = 0; i < fz.nr; i++)
		check_req(&fz.req[i]);
	for (i = 0; i < fz.nr; i++)
		apply_req(&fz.req[i]);
	/* R pieces re-poisoned by repoison_and_check() through brk */
	repoison_and_check("after batch");
	fz.nreq += fz.nr;
	free_batch();
}

/* ---- scenarios -------------------------------------------------------- */

static unsigned int build_batch(unsigned int max, int mal_pct, bool victim)
{
	unsigned int k = 1 + rn(max);

	pool_reset();
	rg_reset_alloc();
	fz.nr = 0;
	while (fz.nr < k) {
		struct req *r = &fz.req[fz.nr];

		if (!gen(r, chance(mal_pct), victim && chance(70)) || !lay(r)) {
			free(r->p);
			free(r->rdata);
			r->p = NULL;
			r->rdata = NULL;
			break;
		}
		fz.nr++;
	}
	return fz.nr;
}

static void publish(void)
{
	unsigned int i;

	for (i = 0; i < fz.nr; i++)
		vd_avail_push(fz.vq, fz.req[i].head);
	if (vd_kick(fz.vq))
		fail("kick: %s", vd_last_error);
}

static void sc_batch(void)
{
	if (!build_batch(chance(20) ? MAXREQ : 8, 40, false))
		return;
	publish();
	if (!collect(fz.nr, WAIT_MS, false)) {
		unsigned int i;

		for (i = 0; i < fz.nr; i++)
			if (!fz.req[i].done)
				describe(&fz.req[i]);
		fail("batch of %u requests: no completion in %d ms (hang)",
		     fz.nr, WAIT_MS);
	}
	finish_batch();
}

/* A request: well-formed, ready to be broken by the caller. */
static struct req *one_flush(void)
{
	struct req *r;

	pool_reset();
	rg_reset_alloc();
	fz.nr = 1;
	r = &fz.req[0];
	do {
		free(r->p);
		free(r->rdata);
		rg_reset_alloc();
		if (!gen(r, false, false))
			r->np = 0;
	} while (r->np > 8 || r->np < 2);
	r->indirect = false;
	return r;
}

static const char *const breakers[] = {
	"loop", "self-loop", "next-out-of-ring", "head-out-of-ring",
	"readable-after-writable", "nested-indirect", "indirect-len-odd",
	"indirect-len-0", "indirect-unmapped", "indirect-write-only",
	"indirect-straddle", "indirect-loop", "indirect-next-out",
};

#define NBREAK (sizeof(breakers) / sizeof(breakers[0]))

/* A chain vringh cannot walk: the device must ask for a reset, alone. */
static void sc_breaker(unsigned int kind)
{
	struct req *r = one_flush();
	struct vring_desc *t;
	uint16_t used0 = vd_used_idx(fz.vq), h;
	uint64_t deadline;
	unsigned int i, n;

	r->what = breakers[kind];
	r->exp = EXP_RESET;
	switch (kind) {
	case 0:	/* last descriptor points back at the head */
	case 1:
	case 2:
	case 3:
	case 4:
		if (kind == 4) {
			/* swap a W piece before the R ones */
			struct piece x = r->p[0];

			r->p[0] = r->p[r->np - 1];
			r->p[r->np - 1] = x;
		}
		lay(r);
		n = r->np;
		h = r->head;
		if (kind == 0 || kind == 1 || kind == 2) {
			/* find the last descriptor of the chain */
			uint16_t d = h, prev = h;

			for (i = 1; i < n; i++) {
				prev = d;
				d = le16toh(fz.vq->desc[d].next);
			}
			fz.vq->desc[d].flags |= htole16(VRING_DESC_F_NEXT);
			fz.vq->desc[d].next = htole16(kind == 0 ? h : kind == 1 ?
						       d : fz.qsize + rn(1000));
			(void)prev;
		}
		if (kind == 3)
			r->head = fz.qsize + rn(65536 - fz.qsize);
		break;
	default:
		r->indirect = true;
		lay(r);
		t = (struct vring_desc *)host(r->tbl_iova);
		n = r->np;
		switch (kind) {
		case 5:
			t[rn(n)].flags |= htole16(VRING_DESC_F_INDIRECT);
			break;
		case 6:
			fz.vq->desc[r->head].len = htole32(16 * n + 1 + rn(15));
			break;
		case 7:
			fz.vq->desc[r->head].len = 0;
			break;
		case 8:
			fz.vq->desc[r->head].addr = htole64(HOLE_IOVA + 16 * rn(1000));
			break;
		case 9: {
			uint64_t a = ralloc(RG_WO, 16 * n, 16);

			memcpy(host(a), t, 16 * n);
			fz.vq->desc[r->head].addr = htole64(a);
			break;
		}
		case 10: {
			/* table crosses the data region's end */
			uint64_t a = fz.rg[RG_DATA].iova + fz.rg[RG_DATA].size - 16 * (n - 1);

			memcpy(host(a), t, 16 * (n - 1));
			fz.edge_used = true;
			fz.vq->desc[r->head].addr = htole64(a);
			break;
		}
		case 11:
			for (i = 0; i < n; i++)
				if (!(le16toh(t[i].flags) & VRING_DESC_F_NEXT)) {
					t[i].flags |= htole16(VRING_DESC_F_NEXT);
					t[i].next = 0;
				}
			break;
		default:
			for (i = 0; i < n; i++)
				if (!(le16toh(t[i].flags) & VRING_DESC_F_NEXT)) {
					t[i].flags |= htole16(VRING_DESC_F_NEXT);
					t[i].next = htole16(n + rn(100));
				}
			break;
		}
		break;
	}
	vd_avail_push(fz.vq, r->head);
	if (vd_kick(fz.vq))
		fail("kick: %s", vd_last_error);
	deadline = vd_now_ns() + WAIT_MS * 1000000ULL;
	while (!(dev_status() & VIRTIO_CONFIG_S_NEEDS_RESET)) {
		if (vd_used_idx(fz.vq) != used0)
			fail_req(r, "%s: the device completed a chain it cannot walk",
				 breakers[kind]);
		if (vd_now_ns() > deadline)
			fail_req(r, "%s: no DEVICE_NEEDS_RESET (0x40) in %d ms",
				 breakers[kind], WAIT_MS);
		msleep(2);
	}
	if (vd_used_idx(fz.vq) != used0)
		fail_req(r, "%s: used index moved", breakers[kind]);
	fz.nbreak++;
	fz.nreq++;
	free_batch();
	repoison_and_check("after a broken chain");
	dev_restart();
}

/* avail->idx moved more than a ring ahead: NEEDS_RESET, or every entry
 * processed as the (valid) request it names; never a hang.
 */
static void sc_avail_jump(void)
{
	struct req *r = one_flush();
	uint16_t start = fz.vq->avail_idx, used0 = vd_used_idx(fz.vq);
	unsigned int jump = fz.qsize + 1 + rn(fz.qsize * 3), i, n;
	uint64_t deadline;
	uint32_t id, len;

	r->type = VIRTIO_BLK_T_FLUSH;
	*(uint32_t *)r->rdata = htole32(VIRTIO_BLK_T_FLUSH);
	*(uint64_t *)(r->rdata + 8) = 0;
	expect(r);
	lay(r);
	for (i = 0; i < fz.qsize; i++)
		vd_avail_put_raw(fz.vq, start + i, r->head);
	vd_avail_set_idx(fz.vq, start + jump);
	if (vd_kick(fz.vq))
		fail("kick: %s", vd_last_error);
	deadline = vd_now_ns() + WAIT_MS * 1000000ULL;
	for (;;) {
		if (dev_status() & VIRTIO_CONFIG_S_NEEDS_RESET)
			break;
		if ((uint16_t)(vd_used_idx(fz.vq) - used0) == jump)
			break;
		if (vd_now_ns() > deadline)
			fail_req(r, "avail jump of %u on a ring of %u: neither NEEDS_RESET nor %u completions (used moved %u)",
				 jump, fz.qsize, jump,
				 (uint16_t)(vd_used_idx(fz.vq) - used0));
		msleep(2);
	}
	/* whatever was used names our head with a status */
	n = 0;
	while (vd_used_pop(fz.vq, &id, &len)) {
		if (id != r->head || len != 1)
			fail_req(r, "avail jump: used id %u len %u", id, len);
		n++;
	}
	r->done = true;
	r->got_len = 1;
	if (!n) {
		r->exp = EXP_ANY;
		r->mem_any = true;
	}
	fz.njump++;
	fz.nreq++;
	fz.njumpfetch += jump;
	check_req(r);
	free_batch();
	repoison_and_check("after an avail jump");
	dev_restart();
}

static uint64_t mem_sum(void)
{
	uint64_t h = 0;
	unsigned int i;

	for (i = 0; i < NRG; i++) {
		const uint64_t *w = (const uint64_t *)fz.rg[i].r->va;
		size_t n = fz.rg[i].size / 8, k;

		if (i == RG_RING)
			continue;
		for (k = 0; k < n; k++)
			h = (h ^ w[k]) * 0x100000001b3ULL;
	}
	return h;
}

/* Reset with requests in flight: nothing may be written after it. */
static void sc_reset_mid(void)
{
	uint64_t sum;
	uint16_t u;
	unsigned int i;

	if (!build_batch(16, 20, false))
		return;
	publish();
	msleep(rn(4));
	if (vd_set_status(fz.dev, 0))
		fail("reset mid-stream: %s", vd_last_error);
	u = vd_used_idx(fz.vq);
	sum = mem_sum();
	msleep(30);
	if (vd_used_idx(fz.vq) != u || mem_sum() != sum)
		fail("the device wrote guest memory after reset returned");
	for (i = 0; i < fz.nr; i++) {
		fz.req[i].exp = EXP_ANY;
		fz.req[i].mem_any = true;
		fz.req[i].done = true;
	}
	finish_batch();
	dev_restart();
}

/* Suspend with requests in flight: used == base, then the rest on resume. */
static void sc_suspend_mid(void)
{
	uint16_t base, u;

	if (!vd_has_backend(fz.dev, VHOST_BACKEND_F_SUSPEND) ||
	    !vd_has_backend(fz.dev, VHOST_BACKEND_F_RESUME))
		return sc_batch();
	if (!build_batch(16, 20, false))
		return;
	publish();
	msleep(rn(4));
	if (vd_suspend(fz.dev))
		fail("suspend: %s", vd_last_error);
	if (vd_get_vring_base(fz.dev, fz.qidx, &base))
		fail("get vring base: %s", vd_last_error);
	u = vd_used_idx(fz.vq);
	if (u != base)
		fail("suspended with fetched requests not in the used ring: used %u, base %u",
		     u, base);
	msleep(20);
	if (vd_used_idx(fz.vq) != u)
		fail("used ring moved while suspended");
	if (vd_resume(fz.dev))
		fail("resume: %s", vd_last_error);
	if (chance(50) && vd_kick(fz.vq))
		fail("kick: %s", vd_last_error);
	if (!collect(fz.nr, WAIT_MS, false))
		fail("after resume: requests never completed");
	fz.nsuspend++;
	finish_batch();
}

/* Unmap the data's region under in-flight requests. */
static void sc_unmap_race(void)
{
	struct rg *v = &fz.rg[RG_VICT];
	unsigned int i;

	if (!build_batch(12, 0, true))
		return;
	for (i = 0; i < fz.nr; i++) {
		struct req *r = &fz.req[i];
		bool vict = false;

		for (unsigned int j = 0; j < r->np; j++)
			vict |= r->p[j].pl == PL_VICT;
		if (vict && r->exp == EXP_STATUS && r->exp_st == VIRTIO_BLK_S_OK)
			r->exp = EXP_OK_OR_IOERR;
		else if (vict && r->exp == EXP_OK_OR_IOERR)
			r->exp = EXP_OK_OR_IOERR;
	}
	publish();
	msleep(rn(3));
	if (vd_region_unmap(v->r))
		fail("unmap victim: %s", vd_last_error);
	v->mapped = false;
	/* from here on the device must not touch it */
	memset(v->r->va, VD_POISON, v->size);
	for (i = 0; i < fz.nr; i++)
		fz.req[i].vict_gone = true;
	if (!collect(fz.nr, WAIT_MS, false))
		fail("unmap race: requests never completed");
	rg_check_clean(RG_VICT, "after unmap");
	finish_batch();
	if (vd_region_map(v->r, v->iova, v->perm))
		fail("remap victim: %s", vd_last_error);
	v->mapped = true;
	fz.nunmap++;
}

/*
 * One write of @nseg segments of @seg bytes, all reading one buffer at page
 * offset 3 KiB of the scattered region (so each segment spans seg / 4 KiB
 * + 1 physically distinct pages), at sector 0.  @strict: the device must
 * answer OK; otherwise OK or IOERR (a driver ignoring size_max).
 * Returns the status.
 */
static uint8_t bvec_write(unsigned int nseg, uint32_t seg, const char *what,
			  bool strict)
{
	uint64_t a, buf = fz.rg[RG_SCAT].iova + 3072;
	bool was_strict = fz.strict;
	struct req *r;
	unsigned int i;

	if (fz.cap < (uint64_t)nseg * seg / 512)
		fail("%s: needs %" PRIu64 " sectors", what, (uint64_t)nseg * seg / 512);
	if (nseg + 2 > MAXP || 3072 + seg > fz.rg[RG_SCAT].size)
		fail("%s: %u segments of %u bytes do not fit", what, nseg, seg);
	pool_reset();
	rg_reset_alloc();
	fz.nr = 1;
	r = &fz.req[0];
	memset(r, 0, sizeof(*r));
	r->p = calloc(MAXP, sizeof(*r->p));
	r->rdata_len = 16 + (size_t)nseg * seg;
	r->rdata = malloc(r->rdata_len);
	if (!r->p || !r->rdata)
		fail("oom");
	r->what = what;
	r->type = VIRTIO_BLK_T_OUT;
	memset(r->rdata, 0, 16);
	*(uint32_t *)r->rdata = htole32(VIRTIO_BLK_T_OUT);
	for (i = 0; i < seg; i++)
		r->rdata[16 + i] = rnd();
	for (i = 1; i < nseg; i++)
		memcpy(r->rdata + 16 + (size_t)i * seg, r->rdata + 16, seg);
	a = ralloc(RG_DATA, 16, 16);
	r->p[r->np++] = (struct piece){ a, 16, 16, false, PL_DATA };
	for (i = 0; i < nseg; i++)
		r->p[r->np++] = (struct piece){ buf, seg, seg, false, PL_SCAT };
	fz.rg[RG_SCAT].brk = 3072 + seg;
	a = ralloc(RG_DATA, 1, 1);
	r->p[r->np++] = (struct piece){ a, 1, 1, true, PL_DATA };
	r->indirect = true;
	fz.strict = strict;
	expect(r);
	fz.strict = was_strict;
	printf("vdpa_fuzz: %s: %u segments of %u bytes, %" PRIu64 " pages\n", what,
	       nseg, seg, stream_pages(r, false, 16, r->rdata_len));
	lay(r);
	publish();
	if (!collect(1, WAIT_MS, false))
		fail("%s: no completion", what);
	check_req(r);
	apply_req(r);
	i = r->exp_st;
	free_batch();
	repoison_and_check(what);
	return i;
}

/* Read [0, @bytes) back in requests of 128 pieces of @piece bytes. */
static void bvec_read_back(uint64_t bytes, uint32_t piece)
{
	uint64_t off = 0, a;
	struct req *r;

	while (off < bytes) {
		uint64_t len = bytes - off;
		unsigned int k;

		if (len > 128ULL * piece)
			len = 128ULL * piece;
		pool_reset();
		rg_reset_alloc();
		fz.nr = 1;
		r = &fz.req[0];
		memset(r, 0, sizeof(*r));
		r->p = calloc(MAXP, sizeof(*r->p));
		r->rdata = calloc(16, 1);
		if (!r->p || !r->rdata)
			fail("oom");
		r->rdata_len = 16;
		r->what = "bvec read-back";
		r->type = VIRTIO_BLK_T_IN;
		*(uint32_t *)r->rdata = htole32(VIRTIO_BLK_T_IN);
		*(uint64_t *)(r->rdata + 8) = htole64(off >> 9);
		a = ralloc(RG_DATA, 16, 16);
		r->p[r->np++] = (struct piece){ a, 16, 16, false, PL_DATA };
		for (k = 0; (uint64_t)k * piece < len; k++) {
			uint32_t n = len - (uint64_t)k * piece < piece ?
				     len - (uint64_t)k * piece : piece;

			a = ralloc(RG_DATA, n, 4096);
			if (!a)
				fail("bvec read-back: no room for %u bytes", n);
			r->p[r->np++] = (struct piece){ a, n, n, true, PL_DATA };
		}
		r->indirect = true;
		a = ralloc(RG_DATA, 1, 1);
		r->p[r->np++] = (struct piece){ a, 1, 1, true, PL_DATA };
		expect(r);
		lay(r);
		publish();
		if (!collect(1, WAIT_MS, false))
			fail("bvec read-back: no completion");
		check_req(r);
		free_batch();
		repoison_and_check("bvec read-back");
		off += len;
	}
}

/*
 * Regression: the largest request a driver may send, seg_max segments of
 * size_max bytes, over scattered memory.  The device once advertised a
 * 1 MiB size_max: 254 legal segments of 32 KiB at page offset 3 KiB
 * (about 2300 physically distinct pages) overflowed its bio_vec array and
 * were answered IOERR.  It now advertises one page (each segment then
 * spans at most 2 pages, 2 * seg_max within VBS_MAX_BVECS), so:
 *  1. seg_max segments of size_max at page offset 3 KiB must be taken and
 *     read back intact;
 *  2. the old request, now over size_max, may be refused with IOERR or
 *     taken, and either way the disk must read back as the model says.
 */
static int case_bvec(void)
{
	uint32_t size_max = 1U << 20, seg_max = 254;

	if (fz.features & (1ULL << VIRTIO_BLK_F_SIZE_MAX))
		size_max = le32toh(fz.dev->cfg.size_max);
	if (fz.features & (1ULL << VIRTIO_BLK_F_SEG_MAX))
		seg_max = le32toh(fz.dev->cfg.seg_max);
	if (!size_max || !seg_max || size_max > (1U << 20))
		fail("bvec case: size_max %u seg_max %u", size_max, seg_max);
	if (seg_max + 2 > MAXP)
		seg_max = MAXP - 2;
	printf("vdpa_fuzz: bvec case: size_max %u, seg_max %u\n", size_max, seg_max);
	if (bvec_write(seg_max, size_max, "bvec-legal", true) != VIRTIO_BLK_S_OK)
		fail("bvec case: a legal request was refused");
	bvec_read_back((uint64_t)seg_max * size_max, 4096);
	if (size_max < (32U << 10)) {
		uint8_t st = bvec_write(254, 32U << 10, "bvec-over-size_max", false);

		printf("vdpa_fuzz: bvec case: segments over size_max answered %s\n",
		       vd_status_name(st));
		bvec_read_back(254ULL << 15, 4096);
	}
	return 0;
}

/*
 * Regression: a writable descriptor whose end wraps past 2^64: its "last
 * byte" lands on the ring region's poison; no status may be written.
 */
static int case_status_wrap(void)
{
	struct req *r;
	uint64_t a, target = fz.rg[RG_RING].iova + 16;

	pool_reset();
	rg_reset_alloc();
	fz.nr = 1;
	r = &fz.req[0];
	memset(r, 0, sizeof(*r));
	r->p = calloc(MAXP, sizeof(*r->p));
	r->rdata = calloc(16, 1);
	r->rdata_len = 16;
	r->what = "status-wrap";
	r->type = VIRTIO_BLK_T_FLUSH;
	*(uint32_t *)r->rdata = htole32(VIRTIO_BLK_T_FLUSH);
	a = ralloc(RG_DATA, 16, 16);
	r->p[r->np++] = (struct piece){ a, 16, 16, false, PL_DATA };
	r->p[r->np++] = (struct piece){ 0 - 0x100ULL, 0x100 + target + 1, 0,
					true, PL_WRAP };
	expect(r);
	lay(r);
	publish();
	if (!collect(1, WAIT_MS, false))
		fail("status-wrap case: no completion");
	check_req(r);
	check_ring_poison();
	free_batch();
	repoison_and_check("status-wrap case");
	return 0;
}

/*
 * Regression: more IOTLB entries than the device once kept (16384, one per
 * physically contiguous run in PA mode, so a fragmented guest gets there;
 * it now takes whatever vhost-vdpa accepted).  Whether or not the new
 * mappings are taken, the old ones must keep working: a request on them
 * still completes, no DEVICE_NEEDS_RESET.
 */
static int case_iotlb_limit(void)
{
	size_t n = 16384 + 512, k;
	struct vd_region *big;
	struct req *r;
	int ret = 0;

	if (vd_region_create(fz.dev, n * PG, &big))
		fail("iotlb-limit: region: %s", vd_last_error);
	if (vd_iotlb_batch(fz.dev, true, false))
		fail("iotlb-limit: batch: %s", vd_last_error);
	for (k = 0; k < n && !ret; k++)
		ret = vd_iotlb_update(fz.dev, 0x100000000ULL + k * 2 * PG, PG,
				      (uintptr_t)big->va + k * PG,
				      VHOST_ACCESS_RW);
	if (vd_iotlb_batch(fz.dev, false, false) && !ret)
		ret = -EIO;
	{
		struct rlimit rl;

		getrlimit(RLIMIT_MEMLOCK, &rl);
		printf("vdpa_fuzz: %zu single-page mappings: %s%s%s (RLIMIT_MEMLOCK %lld)\n",
		       k, ret ? vd_last_error : "accepted", ret ? ": " : "",
		       ret ? strerror(-ret) : "", (long long)rl.rlim_cur);
	}
	if (ret && k < 16384) {
		printf("vdpa_fuzz: iotlb-limit: vhost-vdpa refused mappings before the device limit: not tested\n");
		vd_region_destroy(big);
		return 4;
	}
	r = one_flush();
	r->what = "iotlb-limit";
	lay(r);
	publish();
	if (!collect(1, WAIT_MS, true))
		fail_req(r, "after %zu IOTLB entries the device lost its old mappings (status 0x%02x)",
			 k, dev_status());
	check_req(r);
	free_batch();
	repoison_and_check("iotlb-limit case");
	return 0;
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
