// SPDX-License-Identifier: GPL-2.0
/*
 * vdpa_fuzz: the scenarios.  Batches, ring breakers, avail jumps,
 * resets, suspends and unmaps with requests in flight, and the
 * regression cases (--case).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "vdpa_fuzz.h"

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

void sc_batch(void)
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

/* A chain vringh cannot walk: the device must ask for a reset, alone. */
void sc_breaker(unsigned int kind)
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
void sc_avail_jump(void)
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
void sc_reset_mid(void)
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
void sc_suspend_mid(void)
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
void sc_unmap_race(void)
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

/*
 * The one request of a fixed case, built by hand: the pool and the ring's
 * allocator reset, its pieces and a 16-byte status area allocated.
 */
static struct req *case_req(void)
{
	struct req *r = &fz.req[0];

	pool_reset();
	rg_reset_alloc();
	fz.nr = 1;
	memset(r, 0, sizeof(*r));
	r->p = calloc(MAXP, sizeof(*r->p));
	r->rdata = calloc(16, 1);
	if (!r->p || !r->rdata)
		fail("oom");
	r->rdata_len = 16;
	return r;
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
		r = case_req();
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
int case_bvec(void)
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
int case_status_wrap(void)
{
	struct req *r;
	uint64_t a, target = fz.rg[RG_RING].iova + 16;

	r = case_req();
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
int case_iotlb_limit(void)
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
