// SPDX-License-Identifier: GPL-2.0
/*
 * vdpa_fuzz: generation.  Requests built from pieces placed in the
 * regions (good, malformed or aimed at the victim), laid out as
 * descriptors in the ring, and collected from the used ring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdpa_fuzz.h"

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

static const uint32_t odd_types[] = {
	2, 3, 5, 6, 7, 9, 10, 12, 14, 15, 16, 24, 25, 26, 0x80000000,
	0x80000001, 0x80000004, 0xffffffff, 0x7fffffff,
};

/*
 * Generate one request.  @mal: malformed knobs on; @victim: data pieces in
 * the victim region.  Returns false when it does not fit this batch.
 */
bool gen(struct req *r, bool mal, bool victim)
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

void pool_reset(void)
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
bool lay(struct req *r)
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

void free_batch(void)
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

void describe(const struct req *r)
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

void fail_req(const struct req *r, const char *fmt, ...)
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
bool collect(unsigned int want, int timeout_ms, bool reset_ok)
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
