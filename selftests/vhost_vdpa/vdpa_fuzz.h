/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vdpa_fuzz: what its parts share.  vdpa_fuzz.c has the helpers, the
 * device set-up and main; fuzz_gen.c builds requests, fuzz_model.c
 * predicts and checks them, fuzz_scenarios.c drives them.
 */
#ifndef VDPA_FUZZ_H
#define VDPA_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdpa_drv.h"

#define PG		4096ULL
#define WAIT_MS		15000
#define WATCHDOG_S	180
#define MAXP		640	/* pieces per request */
#define MAXREQ		32	/* requests per batch */
#define BVEC_LIMIT	508	/* device: bio_vecs per request (VBS_MAX_BVECS) */
#define DWZ_MAX_SECT	0xfffffe00U
#define ID_BYTES	20

enum { RG_RING, RG_DATA, RG_SCAT, RG_RO, RG_WO, RG_VICT, NRG };

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

struct fuzz_state {
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
};

extern struct fuzz_state fz;

static const char *const breakers[] = {
	"loop", "self-loop", "next-out-of-ring", "head-out-of-ring",
	"readable-after-writable", "nested-indirect", "indirect-len-odd",
	"indirect-len-0", "indirect-unmapped", "indirect-write-only",
	"indirect-straddle", "indirect-loop", "indirect-next-out",
};

#define NBREAK (sizeof(breakers) / sizeof(breakers[0]))

/* vdpa_fuzz.c */
uint64_t rnd(void);
uint64_t rn(uint64_t n);
bool chance(unsigned int pct);
void fail(const char *fmt, ...);
void msleep(unsigned int ms);
uint8_t *host(uint64_t iova);
bool acc(uint64_t iova, uint64_t len, uint8_t need);
uint64_t ralloc(unsigned int ri, size_t len, size_t align);
void rg_reset_alloc(void);
void rg_check_clean(unsigned int ri, const char *when);
void dev_restart(void);
uint8_t dev_status(void);

/* fuzz_gen.c */
bool gen(struct req *r, bool mal, bool victim);
void pool_reset(void);
bool lay(struct req *r);
void free_batch(void);
void describe(const struct req *r);
void fail_req(const struct req *r, const char *fmt, ...);
bool collect(unsigned int want, int timeout_ms, bool reset_ok);

/* fuzz_model.c */
void expect(struct req *r);
uint64_t stream_pages(const struct req *r, bool w, uint64_t from,
		      uint64_t to);
void check_req(struct req *r);
void apply_req(struct req *r);
void repoison_and_check(const char *when);
void check_ring_poison(void);
void finish_batch(void);

/* fuzz_scenarios.c */
void sc_batch(void);
void sc_breaker(unsigned int kind);
void sc_avail_jump(void);
void sc_reset_mid(void);
void sc_suspend_mid(void);
void sc_unmap_race(void);
int case_bvec(void);
int case_status_wrap(void);
int case_iotlb_limit(void);

#endif /* VDPA_FUZZ_H */
