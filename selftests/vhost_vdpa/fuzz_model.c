// SPDX-License-Identifier: GPL-2.0
/*
 * vdpa_fuzz: the model.  What the virtio spec and
 * Documentation/vdpa_blk_sw.rst say each request must answer, the
 * shadow of the disk, and the checks of answers and memory against them.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <string.h>

#include "vdpa_fuzz.h"

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
uint64_t stream_pages(const struct req *r, bool w, uint64_t from,
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
void expect(struct req *r)
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
void check_req(struct req *r)
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

void apply_req(struct req *r)
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
void repoison_and_check(const char *when)
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

void check_ring_poison(void)
{
	if (vd_check_poison(fz.rg[RG_RING].r))
		fail("ring region: %s", vd_last_error);
}

/* Checks before re-poisoning: pieces checked per request, all regions. */
void finish_batch(void)
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
