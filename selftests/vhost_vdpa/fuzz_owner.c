// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_owner: vdpa_fuzz --owner, a seeded fuzzer of what the owner of
 * /dev/vhost-vdpa-N controls, mixed with guest I/O.
 *
 * The owner (QEMU, usually unprivileged) writes IOTLB messages (batches it
 * may never end, read-only maps under rings and buffers, invalidations of
 * what requests and rings use), munmap()s memory it mapped, moves ring
 * addresses and bases, enables and disables queues, writes features and
 * status in any order, resets and suspends at any point, forks, exits
 * while a child keeps the fd, and passes the fd to another process.
 *
 * Processes.  The supervisor (owner_main()) runs sessions one after the
 * other, each in a process of its own that opens the device, becomes its
 * owner and runs a few hundred operations; a session ends with a close,
 * an exit without one, or by leaving its fd to a forked child or to an
 * unrelated process (this program exec'd, given the fd over SCM_RIGHTS)
 * and exiting: that orphan goes on with what a non-owner may do.  The
 * next session must find the device working.  One memfd shared by all
 * holds the operation count, the counters and the disk model.
 *
 * The model.  The fuzzer knows every IOTLB message it sent, so it keeps
 * vhost-vdpa's view of the address space and the device's (the view at
 * the last set_map(): BATCH_END, or each message outside a batch), one
 * entry per UPDATE ("unit"), each IOVA range bound to one piece of memory
 * for the session.  A request's answer follows from the device's view of
 * its buffer (OK, IOERR, or either when that view changed while it was in
 * flight); a shadow of the disk gives every byte a read returns.
 *
 * Oracles, each a failure with a replay line:
 *  - every wait is bounded; after any abuse a reset and a clean set-up
 *    bring the device back, proven by a write and a verified read;
 *  - memory the device may not write does not change: a read-only file
 *    (root's, mapped read-only) and a read-only memfd mapped under rings
 *    and buffers, a memfd never mapped, canary pages faulted in right
 *    after every invalidation and munmap(), the poison around buffers,
 *    the rings after a reset, after DEVICE_NEEDS_RESET and while
 *    suspended, and the buffer of a read that failed;
 *  - status and answers follow the rules: exact status bytes and used
 *    lengths, exact errnos (EEXIST, EINVAL, EBUSY, EPERM), vring base
 *    read back, DEVICE_NEEDS_RESET when and only when a ring becomes
 *    unusable (a used ring mapped read-only breaks the device at once);
 *  - VA mode: once the owner is gone the device touches no ring and asks
 *    for a reset; PA mode: the orphan's I/O still works.
 * run.sh scans the kernel log after the test; test 46 also checks that
 * MemAvailable comes back once the devices are deleted.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/virtio_config.h>

#include "vdpa_drv.h"
#include "fuzz_owner.h"

#define PG		4096UL
#define NQ		2
#define MAXAREA		32
#define MAXUNIT		80
#define MAXREQ		96
#define MAXCAN		96
#define CAN_BUDGET	(8UL << 20)
#define ORPHAN_SECT	64	/* the last sectors: the orphans' own */
#define LOGN		24
#define VA_BASE		0x200000000000ULL
#define IOVA_RING	0x10000000ULL	/* + queue * IOVA_RING_STEP */
#define IOVA_RING_STEP	0x01000000ULL
#define IOVA_DATA	0x20000000ULL
#define IOVA_ROMEM	0x30000000ULL
#define IOVA_ROFILE	0x31000000ULL
#define IOVA_NEVER	0x32000000ULL
#define IOVA_VOL	0x40000000ULL
#define IOVA_HOLE	0x7f000000ULL
#define DATA_SIZE	(1UL << 20)
#define DATA_UNITS	8
#define RO_SIZE		(64UL << 10)
#define SCRATCH		(2 * PG)
#define ST_NR		VIRTIO_CONFIG_S_NEEDS_RESET
#define ST_RUN		(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | \
			 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK)

/* ---- state ------------------------------------------------------------ */

enum {
	C_SESSION, C_STEP, C_REQ, C_OK, C_IOERR, C_UNSUPP, C_FLUX, C_ANY,
	C_DROPPED, C_RESET, C_RECOVER, C_SUSPEND, C_BATCH_LEFT, C_UPDATE,
	C_INVAL, C_MUNMAP, C_CANARY, C_BREAK, C_RO_USED, C_STARVE, C_JUMP,
	C_ADDR, C_ENABLE, C_ODD, C_ERRNO, C_PROBE, C_END_CLOSE, C_END_EXIT,
	C_END_FORK, C_END_SCM, C_BARE, C_ORPHAN_IO, C_VA_LOST, NCNT
};

static const char *const cnt_name[NCNT] = {
	"sessions", "steps", "requests", "ok", "ioerr", "unsupp",
	"either", "unchecked", "dropped", "resets", "recoveries", "suspends",
	"batches-left-open", "updates", "invalidations", "munmaps",
	"canary-pages", "expected-breaks", "ro-used", "ring-starves",
	"base-jumps", "addr-changes", "enable-toggles", "odd-status",
	"errno-checks", "fork-probes", "end-close", "end-exit", "end-fork",
	"end-scm", "bare-sessions", "orphan-io", "va-owner-lost",
};

/* One memfd for every process of the run. */
struct shared {
	uint64_t ops, limit, end_ns, seed, cap;
	uint32_t session;
	int failed, scale, va;
	uint64_t ro_seed;
	char ro_path[64];
	char op[96];		/* in progress, for a hang report */
	uint64_t n[NCNT];
	/* then the disk model: cap * 512 bytes, then cap "known" bytes */
};

enum { AK_RING, AK_DATA, AK_VOL, AK_ROMEM, AK_ROFILE, AK_NEVER };

/* Memory the owner may map: one IOVA range ("home") for the session. */
struct area {
	int kind;
	const char *name;
	uint8_t *va;
	size_t size;
	uint64_t iova;
	bool alive;		/* still mapped in this process */
	bool unshared;		/* not shared file memory: VA mode skips it */
	bool retired;		/* gone, its units invalidated */
	struct vd_region *r;	/* allocator and poison */
	int q;			/* AK_RING: its queue */
};

enum { U_ABSENT, U_PRESENT, U_MAYBE };
enum { P_DESC, P_AVAIL, P_USED, P_SLOTS, P_SCRATCH, P_NONE };

/* What one IOTLB UPDATE mapped, in vhost-vdpa's view and the device's. */
struct unit {
	int area;
	uint64_t iova, len;
	uint64_t uaddr;		/* memory behind it now */
	uint8_t hperm;		/* home permission */
	uint8_t perm;		/* of vhost-vdpa's entry */
	int v, d;		/* vhost-vdpa's view, the device's */
	uint8_t dperm;
	bool foreign;		/* maps the read-only file, not its area */
	uint32_t dgen;		/* bumped when the device's view changes */
	int q, part;		/* ring part, or P_NONE */
};

struct oq {
	bool setup;		/* vd_vq_setup() since the last reset */
	bool enabled;		/* last ENABLE sent */
	bool ready;		/* the device's vq->ready */
	bool coherent;		/* driver and device indices agree */
	bool home;		/* the device's ring addresses are the driver's */
	uint64_t used_iova;	/* the device's used ring address */
	/* what the last SET_VRING_ADDR gave: the device takes it at ready */
	bool next_home;
	uint64_t next_used_iova;
	uint32_t used_len;	/* bytes watched since ready */
	int u[P_NONE];		/* units of the parts */
	unsigned long spurious;
	bool susp_snap;
	uint16_t susp_used;
};

enum { E_OK, E_IOERR, E_UNSUPP, E_FLUX, E_ANY };

struct oreq {
	bool busy;
	struct vd_io io;
	int q;
	uint32_t type;
	uint64_t sector;
	uint32_t nsect, len;
	uint64_t iova;
	int area;		/* of the buffer, -1 if none of ours */
	uint8_t *mem;		/* buffer in our memory, or NULL */
	bool alloc;		/* mem came from the area's allocator */
	int exp;
	uint64_t pat;		/* OUT: pattern seed, or ... */
	const uint8_t *src;	/* ... OUT from read-only memory */
	unsigned int nu;
	int us[8];
	uint32_t gen[8];
	int slots_unit;
	uint32_t slots_gen;
	bool bad;		/* out of range: touches no sector */
};

struct canary {
	uint8_t *va;
	size_t len;
};

static struct shared *sh;
static uint8_t *model, *known;
static int verbose;

static struct {
	const char *path;
	const char *argv0;
	const char *role;
	struct vd_dev *dev;
	bool va, persist;
	unsigned int nq, qsize;
	uint32_t seg_max, size_max;
	uint64_t rs;
	uint32_t session;
	uint64_t next_va, next_iova;
	struct area area[MAXAREA];
	unsigned int narea;
	struct unit unit[MAXUNIT];
	unsigned int nunit;
	bool in_batch;
	uint8_t status;		/* what the device must report, NEEDS_RESET aside */
	bool needs_reset;	/* seen */
	uint64_t dfeat;		/* features the device took */
	bool suspended, messy, wild, break_ok;
	struct oq q[NQ];
	struct oreq req[MAXREQ];
	struct canary can[MAXCAN];
	unsigned int ncan;
	size_t can_bytes;
	int ring_area[NQ], data_area, romem_area, rofile_area, never_area;
	uint8_t *ro_expect;
	bool frozen;		/* rings must not change until reset */
	uint64_t frozen_sum;
	bool post_reset;	/* rings must not change until set up */
	uint64_t post_reset_sum;
	pid_t peer;
	int peer_sock;
	unsigned int acts;	/* operations of the current step */
	uint64_t feat_off;	/* features never negotiated (cases) */
	const char *cas;
	char log[LOGN][128];
	unsigned int nlog;
} ow;

static bool gen_req(int qi);
static void rofile_check(const char *when);
static void romem_check(const char *when);

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rnd(void)
{
	return vd_splitmix64(&ow.rs);
}

static uint64_t rn(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned int pct)
{
	return rn(100) < pct;
}

static void msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int wait_ms(int ms)
{
	return ms * (sh ? sh->scale : 1);
}

static void count(int c)
{
	__atomic_add_fetch(&sh->n[c], 1, __ATOMIC_RELAXED);
}

static __attribute__((format(printf, 1, 2))) void oplog(const char *fmt, ...)
{
	char *s = ow.log[ow.nlog++ % LOGN];
	va_list ap;
	int n;

	n = snprintf(s, sizeof(ow.log[0]), "#%" PRIu64 " ",
		     __atomic_load_n(&sh->ops, __ATOMIC_RELAXED));
	va_start(ap, fmt);
	vsnprintf(s + n, sizeof(ow.log[0]) - n, fmt, ap);
	va_end(ap);
	snprintf(sh->op, sizeof(sh->op), "%s: %s", ow.role, s);
	if (verbose)
		printf("vdpa_fuzz: %.3f %s %u: %s\n", vd_now_ns() / 1e9, ow.role,
		       ow.session, s);
}

static void replay_line(FILE *f)
{
	fprintf(f, "FAIL: seed %" PRIu64 " session %u after %" PRIu64
		" operations; replay: vdpa_fuzz --owner --seed %" PRIu64
		" --iterations %" PRIu64 " (-v lists every operation)\n",
		sh->seed, ow.session, sh->ops, sh->seed, sh->ops + 1);
}

static __attribute__((noreturn, format(printf, 1, 2))) void ofail(const char *fmt,
								    ...)
{
	unsigned int i, n = ow.nlog < LOGN ? ow.nlog : LOGN;
	va_list ap;

	fprintf(stderr, "FAIL: %s: ", ow.role ? ow.role : "owner");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (vd_last_error[0])
		fprintf(stderr, "FAIL: last library error: %s\n", vd_last_error);
	fprintf(stderr, "FAIL: the session's last operations (%s mode, queue size %u):\n",
		ow.va ? "VA" : "PA", ow.qsize);
	for (i = ow.nlog - n; i < ow.nlog; i++)
		fprintf(stderr, "FAIL:   %s\n", ow.log[i % LOGN]);
	replay_line(stderr);
	sh->failed = 1;
	_exit(1);
}

static void on_alarm(int sig)
{
	(void)sig;
	ofail("watchdog: '%s' did not return (hang)", sh->op);
}

static void watchdog(void)
{
	alarm(120 * sh->scale);
}

/*
 * One step done: its operations (IOTLB messages, requests, ioctls, process
 * events) count; false once the run is over.
 */
static bool op_done(void)
{
	uint64_t n = __atomic_add_fetch(&sh->ops, ow.acts, __ATOMIC_RELAXED);

	ow.acts = 0;
	count(C_STEP);
	watchdog();
	return n < sh->limit && !(sh->end_ns && vd_now_ns() > sh->end_ns);
}

static void act(unsigned int n)
{
	ow.acts += n;
}

static void kick(struct vd_vq *vq)
{
	if (vd_kick(vq))
		ofail("kick: %s", vd_last_error);
	act(1);
}

static bool run_over(void)
{
	return sh->ops >= sh->limit || (sh->end_ns && vd_now_ns() > sh->end_ns);
}

static uint64_t sum_bytes(const void *p, size_t len, uint64_t h)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static void *xcalloc(size_t n, size_t s)
{
	void *p = calloc(n, s);

	if (!p)
		ofail("out of memory");
	return p;
}

/* Fresh addresses, never reused in a session (VA mode: an IOVA that still
 * translates to an old address must not reach newer memory).
 */
static void *map_fresh(size_t size, int prot, int flags, int fd)
{
	void *want = (void *)(uintptr_t)ow.next_va, *p;

	p = mmap(want, size, prot, flags | MAP_FIXED_NOREPLACE, fd, 0);
	if (p == MAP_FAILED || p != want)
		ofail("mmap of %zu bytes at %p: %s", size, want, strerror(errno));
	ow.next_va += (size + (2 << 20) + (2 << 20) - 1) & ~((2ULL << 20) - 1);
	return p;
}

/* ---- areas, units and the two views of the address space -------------- */

static struct unit *U(int i)
{
	return &ow.unit[i];
}

static struct area *A(int i)
{
	return &ow.area[i];
}

static int area_new(int kind, const char *name, uint8_t *va, size_t size,
		    uint64_t iova)
{
	struct area *a;

	if (ow.narea == MAXAREA)
		return -1;
	a = &ow.area[ow.narea];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->name = name;
	a->va = va;
	a->size = size;
	a->iova = iova;
	a->alive = true;
	a->q = -1;
	return ow.narea++;
}

static int unit_new(int ai, size_t off, size_t len, uint8_t hperm, int q,
		    int part)
{
	struct area *a = A(ai);
	struct unit *u;

	if (ow.nunit == MAXUNIT)
		ofail("too many IOTLB units");
	u = &ow.unit[ow.nunit];
	memset(u, 0, sizeof(*u));
	u->area = ai;
	u->iova = a->iova + off;
	u->len = len;
	u->uaddr = (uintptr_t)a->va + off;
	u->hperm = hperm;
	u->perm = hperm;
	u->q = q;
	u->part = part;
	return ow.nunit++;
}

/* The units over [iova, iova + len) give @need on every byte: 1, 0, or -1
 * when it depends on entries the fuzzer cannot know.  Records the units.
 */
static int dview_acc(uint64_t iova, uint64_t len, uint8_t need,
		     struct oreq *r)
{
	uint64_t pos = iova, end = iova + len;
	int res = 1;

	if (!len)
		return 1;
	if (end < iova)
		return 0;
	while (pos < end) {
		struct unit *u = NULL;
		unsigned int i;

		for (i = 0; i < ow.nunit; i++)
			if (U(i)->iova <= pos && pos - U(i)->iova < U(i)->len) {
				u = U(i);
				break;
			}
		if (!u)
			return 0;
		if (r && r->nu < 8) {
			r->us[r->nu] = i;
			r->gen[r->nu++] = u->dgen;
		}
		/* what is left of a MAYBE unit has its permission too */
		if (u->d == U_ABSENT || (u->dperm & need) != need)
			return 0;
		/* VA mode: the address is translated again, in the mm */
		if (ow.va && !A(u->area)->alive && !u->foreign)
			return 0;
		if (u->d == U_MAYBE)
			res = -1;
		pos = u->iova + u->len;
	}
	return res;
}

static bool unit_ok(int ui, uint8_t need)
{
	struct unit *u = U(ui);

	return u->d == U_PRESENT && (u->dperm & need) == need && !u->foreign;
}

static uint32_t used_bytes(uint64_t feat, unsigned int num)
{
	return 4 + 8 * num + (feat & (1ULL << VIRTIO_RING_F_EVENT_IDX) ? 2 : 0);
}

static void frozen_take(void);

/*
 * A used ring of a ready queue over an entry without write permission:
 * 1 in the device's view (it must break), -1 perhaps, 0 no.
 */
static int used_ro(int qi)
{
	struct oq *q = &ow.q[qi];
	unsigned int i;
	int res = 0;

	if (!q->ready || !q->used_len)
		return 0;
	for (i = 0; i < ow.nunit; i++) {
		struct unit *u = U(i);

		if (u->iova >= q->used_iova + q->used_len ||
		    q->used_iova >= u->iova + u->len || u->d == U_ABSENT ||
		    (u->dperm & VHOST_ACCESS_WO))
			continue;
		if (u->d == U_PRESENT)
			return 1;
		res = -1;
	}
	return res;
}

static uint8_t st_get(void);

static void __attribute__((noreturn)) break_missing(int qi, const char *what)
{
	struct vd_vq *vq = &ow.dev->vqs[qi];
	size_t len = used_bytes(1ULL << VIRTIO_RING_F_EVENT_IDX, vq->ring_num);
	uint64_t sum = sum_bytes(vq->used, len, 0);
	unsigned int i;
	uint8_t st;

	/*
	 * Look for the write itself: vringh writes used->flags or
	 * avail_event whenever the worker turns notifications off (a kick
	 * wakes it) or on (it goes idle), then used elements and the index
	 * for a completion.
	 */
	if (ow.suspended)
		vd_resume(ow.dev);
	for (i = 0; i < 6; i++) {
		if (i == 3)
			gen_req(qi);
		vd_kick(vq);
		msleep(50);
		rofile_check(what);
		romem_check(what);
		if (sum_bytes(vq->used, len, 0) != sum)
			ofail("%s: no DEVICE_NEEDS_RESET, and queue %d's used ring memory changed through its read-only mapping",
			      what, qi);
	}
	if (vd_get_status(ow.dev, &st))
		ofail("GET_STATUS: %s", vd_last_error);
	ofail("%s: no DEVICE_NEEDS_RESET (300 ms later: status 0x%02x; nothing written)",
	      what, st);
}

/* set_map(): the device's copy becomes vhost-vdpa's. */
static void dev_set_map(void)
{
	int must_break = -1;
	unsigned int i, qi;

	for (i = 0; i < ow.nunit; i++) {
		struct unit *u = U(i);

		if (u->d != u->v || u->dperm != u->perm) {
			u->d = u->v;
			u->dperm = u->perm;
			u->dgen++;
		}
	}
	/* Entries that map a ready queue's used ring read-only are left out. */
	for (qi = 0; qi < ow.nq; qi++) {
		int ro = used_ro(qi);

		if (!ro)
			continue;
		ow.break_ok = true;
		if (ro > 0)
			must_break = qi;
		for (i = 0; i < ow.nunit; i++) {
			struct unit *u = U(i);
			struct oq *q = &ow.q[qi];

			if (u->iova >= q->used_iova + q->used_len ||
			    q->used_iova >= u->iova + u->len ||
			    u->d == U_ABSENT || (u->dperm & VHOST_ACCESS_WO))
				continue;
			u->d = u->d == U_PRESENT && ro > 0 ? U_ABSENT : U_MAYBE;
			u->dgen++;
		}
	}
	if (must_break >= 0) {
		count(C_BREAK);
		if (!(st_get() & ST_NR))
			break_missing(must_break,
				      "set_map() mapped a ready queue's used ring read-only");
	}
}

/*
 * Any ring unit of a set-up queue that is not usable makes a break legal;
 * so do the slots, which hold the indirect tables.
 */
static void ring_check_break_ok(void)
{
	unsigned int qi, p;
	static const uint8_t need[] = { VHOST_ACCESS_RO, VHOST_ACCESS_RO,
					VHOST_ACCESS_RW, VHOST_ACCESS_RO };

	for (qi = 0; qi < ow.nq; qi++) {
		if (!ow.q[qi].setup)
			continue;
		for (p = P_DESC; p <= P_SLOTS; p++)
			if (!unit_ok(ow.q[qi].u[p], need[p]))
				ow.break_ok = true;
	}
}

static void after_msg(void)
{
	if (!ow.in_batch) {
		dev_set_map();
		ring_check_break_ok();
	}
}

static int raw_msg(uint8_t type, uint64_t iova, uint64_t size, uint64_t uaddr,
		   uint8_t perm)
{
	act(1);
	return vd_iotlb_msg(ow.dev, type, iova, size, uaddr, perm);
}

static void batch_begin(void)
{
	int ret = raw_msg(VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0);

	if (ret)
		ofail("BATCH_BEGIN: %s", strerror(-ret));
	ow.in_batch = true;
}

static void batch_end(void)
{
	int ret = raw_msg(VHOST_IOTLB_BATCH_END, 0, 0, 0, 0);

	if (ret)
		ofail("BATCH_END: %s", strerror(-ret));
	if (ow.in_batch) {
		ow.in_batch = false;
		dev_set_map();
		ring_check_break_ok();
	}
}

/* UPDATE of a whole unit at @uaddr with @perm. */
static void unit_update(int ui, int tai, uint8_t perm)
{
	struct unit *u = U(ui);
	struct area *t = A(tai);
	uint64_t uaddr = tai == u->area ?
			 (uintptr_t)t->va + (u->iova - t->iova) :
			 (uintptr_t)t->va;
	int ret;

	if (u->v != U_ABSENT)
		ofail("update of unit at 0x%" PRIx64 " that is mapped", u->iova);
	if (u->len > t->size)
		ofail("unit of 0x%" PRIx64 " bytes over %s", u->len, t->name);
	/*
	 * Outside a batch vhost-vdpa calls set_map() for each physically
	 * contiguous run: QEMU batches, and so do we, mostly.
	 */
	if (!ow.in_batch && chance(75)) {
		batch_begin();
		unit_update(ui, tai, perm);
		batch_end();
		return;
	}
	ret = raw_msg(VHOST_IOTLB_UPDATE, u->iova, u->len, uaddr, perm);
	if (ret)
		ofail("IOTLB update of %s at iova 0x%" PRIx64 " size 0x%" PRIx64
		      " perm %u: %s", t->name, u->iova, u->len, perm,
		      strerror(-ret));
	count(C_UPDATE);
	u->uaddr = uaddr;
	u->perm = perm;
	u->foreign = tai != u->area;
	/* VA mode maps only shared file-backed memory, silently. */
	if (ow.va && t->unshared)
		return;
	u->v = U_PRESENT;
	after_msg();
}

/* INVALIDATE [iova, iova + len): whole units go, partly covered ones may. */
static void inval(uint64_t iova, uint64_t len)
{
	unsigned int i;
	int ret;

	ret = raw_msg(VHOST_IOTLB_INVALIDATE, iova, len, 0, 0);
	if (ret)
		ofail("IOTLB invalidate iova 0x%" PRIx64 " size 0x%" PRIx64 ": %s",
		      iova, len, strerror(-ret));
	count(C_INVAL);
	for (i = 0; i < ow.nunit; i++) {
		struct unit *u = U(i);

		if (u->iova >= iova + len || iova >= u->iova + u->len ||
		    u->v == U_ABSENT)
			continue;
		/* PA mode: entries are physically contiguous runs */
		if ((u->iova >= iova && u->iova + u->len <= iova + len) ||
		    ow.va)
			u->v = U_ABSENT;
		else
			u->v = U_MAYBE;
	}
	after_msg();
}

static void unit_inval(int ui)
{
	inval(U(ui)->iova, U(ui)->len);
}

/* Back home: the unit's own memory with its home permission. */
static void unit_home(int ui)
{
	struct unit *u = U(ui);

	if (u->v == U_PRESENT && !u->foreign && u->perm == u->hperm)
		return;
	if (u->v != U_ABSENT || u->foreign)
		unit_inval(ui);
	unit_update(ui, u->area, u->hperm);
}

/* ---- memory oracles --------------------------------------------------- */

static void canary_check(const struct canary *c, const char *when)
{
	const uint64_t pat = 0x0101010101010101ULL * VD_POISON;
	const uint64_t *w = (const uint64_t *)c->va;
	size_t i;

	for (i = 0; i < c->len / 8; i++) {
		size_t b = i * 8;

		if (w[i] == pat)
			continue;
		while (c->va[b] == VD_POISON)
			b++;
		ofail("%s: canary page %p (faulted in after an unmap) offset 0x%zx holds 0x%02x: the device wrote memory it was never given",
		      when, c->va + (b & ~(PG - 1)), b & (PG - 1), c->va[b]);
	}
}

/* Pages faulted in right after memory was unmapped: where freed pages go. */
static void canary_add(size_t pages)
{
	struct canary *c;

	if (pages < 16)
		pages = 16;
	if (pages > 256)
		pages = 256;
	while (ow.ncan && (ow.ncan == MAXCAN ||
			   ow.can_bytes + pages * PG > CAN_BUDGET)) {
		c = &ow.can[0];
		canary_check(c, "before release");
		munmap(c->va, c->len);
		ow.can_bytes -= c->len;
		memmove(&ow.can[0], &ow.can[1], --ow.ncan * sizeof(*c));
	}
	c = &ow.can[ow.ncan++];
	c->len = pages * PG;
	c->va = map_fresh(c->len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	madvise(c->va, c->len, MADV_NOHUGEPAGE);
	memset(c->va, VD_POISON, c->len);
	ow.can_bytes += c->len;
	sh->n[C_CANARY] += pages;
}

static void canaries_check(const char *when)
{
	unsigned int i;

	for (i = 0; i < ow.ncan; i++)
		canary_check(&ow.can[i], when);
}

static void rofile_check(const char *when)
{
	static uint8_t buf[RO_SIZE];
	int fd = open(sh->ro_path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	size_t i;

	if (fd < 0)
		ofail("open %s: %s", sh->ro_path, strerror(errno));
	n = pread(fd, buf, RO_SIZE, 0);
	close(fd);
	if (n != (ssize_t)RO_SIZE)
		ofail("read %s: %zd", sh->ro_path, n);
	if (!memcmp(buf, ow.ro_expect, RO_SIZE))
		return;
	for (i = 0; buf[i] == ow.ro_expect[i]; i++)
		;
	ofail("%s: the read-only file %s changed at offset 0x%zx (0x%02x, was 0x%02x): the device wrote a page it was mapped read-only",
	      when, sh->ro_path, i, buf[i], ow.ro_expect[i]);
}

static void romem_check(const char *when)
{
	struct area *a = A(ow.romem_area);
	long off = vd_pattern_check(a->va, a->size, sh->seed ^ 0x524f, 0);

	if (off >= 0)
		ofail("%s: the read-only memfd changed at offset 0x%lx (0x%02x): the device wrote memory mapped read-only",
		      when, off, a->va[off]);
}

static void poison_check(int ai, const char *when)
{
	struct area *a = A(ai);

	if (!a->alive || !a->r)
		return;
	if (vd_check_poison(a->r))
		ofail("%s: %s: %s", when, a->name, vd_last_error);
}

static uint64_t rings_sum(bool idx_only)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned int qi, i;

	for (qi = 0; qi < ow.nq; qi++) {
		struct vd_vq *vq = &ow.dev->vqs[qi];

		if (!vq->ring_num)
			continue;
		if (idx_only) {
			h = sum_bytes(&vq->used->idx, 2, h);
			h = sum_bytes(vq->used->ring, 8 * vq->ring_num, h);
			continue;
		}
		h = sum_bytes(vq->used, used_bytes(1ULL << VIRTIO_RING_F_EVENT_IDX,
						   vq->ring_num), h);
		/* the status bytes: the slots' other bytes are the driver's */
		for (i = 0; i < vq->ring_num; i++)
			h = sum_bytes(vq->slots + i * VD_SLOT_SIZE +
				      VD_SLOT_STATUS, 1, h);
	}
	return h;
}

/* DEVICE_NEEDS_RESET: from now on no ring, no status byte is written. */
static void frozen_take(void)
{
	msleep(10);
	ow.frozen = true;
	ow.frozen_sum = rings_sum(false);
}

static void frozen_check(const char *when)
{
	if (ow.frozen && rings_sum(false) != ow.frozen_sum)
		ofail("%s: the device wrote a used ring or a status byte after it set DEVICE_NEEDS_RESET",
		      when);
	if (ow.post_reset && rings_sum(false) != ow.post_reset_sum)
		ofail("%s: the device wrote a used ring or a status byte after a reset returned",
		      when);
}

/* Everything that must hold whenever no request can legally write. */
static void memory_check(const char *when)
{
	unsigned int i;

	rofile_check(when);
	romem_check(when);
	poison_check(ow.never_area, when);
	canaries_check(when);
	frozen_check(when);
	if (ow.wild)
		return;
	for (i = 0; i < ow.narea; i++)
		if (A(i)->kind == AK_DATA || A(i)->kind == AK_VOL ||
		    A(i)->kind == AK_RING)
			poison_check(i, when);
}

/* ---- status ----------------------------------------------------------- */

static uint8_t st_get(void)
{
	uint8_t s;

	if (vd_get_status(ow.dev, &s))
		ofail("GET_STATUS: %s", vd_last_error);
	if (s & ST_NR) {
		if (!ow.needs_reset) {
			if (!ow.break_ok)
				ofail("DEVICE_NEEDS_RESET without a cause the fuzzer knows of (status 0x%02x)",
				      s);
			ow.needs_reset = true;
			frozen_take();
		}
	} else if (ow.needs_reset) {
		ofail("DEVICE_NEEDS_RESET went away without a reset (status 0x%02x)",
		      s);
	}
	if ((s & ~ST_NR) != ow.status)
		ofail("status 0x%02x, expected 0x%02x", s, ow.status);
	return s;
}

static void st_set(uint8_t s, int want)
{
	int ret = vd_set_status(ow.dev, s);

	act(1);
	if (ret != want)
		ofail("SET_STATUS 0x%02x: %s, expected %s", s,
		      ret ? strerror(-ret) : "success",
		      want ? strerror(-want) : "success");
	if (!ret)
		ow.status = s & ~ST_NR;
}

/* The device must break by itself within the bound. */
static void expect_break(const char *why)
{
	uint64_t end = vd_now_ns() + wait_ms(10000) * 1000000ULL;

	ow.break_ok = true;
	while (!(st_get() & ST_NR)) {
		if (vd_now_ns() > end)
			ofail("%s: no DEVICE_NEEDS_RESET after %d ms", why,
			      wait_ms(10000));
		msleep(2);
	}
	count(C_BREAK);
}

/* ---- requests --------------------------------------------------------- */

static struct oreq *req_slot(void)
{
	unsigned int i;

	for (i = 0; i < MAXREQ; i++)
		if (!ow.req[i].busy)
			return &ow.req[i];
	return NULL;
}

static unsigned int req_busy(int qi)
{
	unsigned int i, n = 0;

	for (i = 0; i < MAXREQ; i++)
		n += ow.req[i].busy && (qi < 0 || ow.req[i].q == qi);
	return n;
}

static bool writes(uint32_t type)
{
	return type == VIRTIO_BLK_T_OUT;
}

/* Would [sector, +n) race an in-flight request? */
static bool conflict(uint64_t sector, uint32_t n, bool w)
{
	unsigned int i;

	for (i = 0; i < MAXREQ; i++) {
		struct oreq *r = &ow.req[i];

		if (!r->busy || !r->nsect || r->bad ||
		    (!w && !writes(r->type)))
			continue;
		if (sector < r->sector + r->nsect && r->sector < sector + n)
			return true;
	}
	return false;
}

static void model_unknown(uint64_t sector, uint32_t n)
{
	if (sector < sh->cap)
		memset(known + sector, 0, n > sh->cap - sector ? sh->cap - sector : n);
}

static void model_write(uint64_t sector, const uint8_t *data, uint32_t n)
{
	memcpy(model + sector * 512, data, (size_t)n * 512);
	memset(known + sector, 1, n);
}

/*
 * The device may now run the driver's old descriptors again (indices or
 * sizes no longer agree): any buffer of ours, any sector, until a reset.
 */
static void set_wild(void)
{
	unsigned int i;

	ow.wild = true;
	ow.break_ok = true;
	memset(known, 0, sh->cap);
	for (i = 0; i < MAXREQ; i++)
		ow.req[i].exp = E_ANY;
}

static void req_release(struct oreq *r)
{
	if (r->alloc && A(r->area)->alive)
		vd_free(A(r->area)->r, r->mem);
	r->busy = false;
}

/* Gone without an answer (reset, close): a write may or may not have hit. */
static void req_drop(struct oreq *r)
{
	if (writes(r->type) && !r->bad)
		model_unknown(r->sector, r->nsect);
	count(C_DROPPED);
	req_release(r);
}

/* The session leaves with requests in flight: their writes may land. */
static void forget_inflight(void)
{
	unsigned int i;

	for (i = 0; i < MAXREQ; i++)
		if (ow.req[i].busy && writes(ow.req[i].type) && !ow.req[i].bad)
			model_unknown(ow.req[i].sector, ow.req[i].nsect);
}

static void drop_all(void)
{
	unsigned int i;

	for (i = 0; i < MAXREQ; i++)
		if (ow.req[i].busy)
			req_drop(&ow.req[i]);
}

static const char *exp_name(int e)
{
	static const char *const n[] = { "OK", "IOERR", "UNSUPP",
					 "OK or IOERR", "anything" };
	return n[e];
}

static __attribute__((noreturn)) void req_fail(const struct oreq *r,
					      const char *what)
{
	ofail("queue %d: %s %u bytes at sector %" PRIu64 ", data iova 0x%" PRIx64
	      " (%s): %s; answered %s (0x%02x), used length %u; expected %s",
	      r->q, r->type == VIRTIO_BLK_T_IN ? "read" :
	      r->type == VIRTIO_BLK_T_OUT ? "write" : "flush", r->len,
	      r->sector, r->iova, r->area >= 0 ? A(r->area)->name : "no memory",
	      what, vd_status_name(r->io.status), r->io.status,
	      r->io.used_len, exp_name(r->exp));
}

/* Check one answer against the model and apply it. */
static void req_done(struct oreq *r)
{
	uint8_t st = r->io.status;
	uint32_t ok_len = r->type == VIRTIO_BLK_T_IN ? 1 + r->len : 1;
	bool mem = r->mem && r->area >= 0 && A(r->area)->alive;
	unsigned int i;
	int exp = r->exp;

	for (i = 0; i < r->nu && exp != E_ANY && exp != E_UNSUPP; i++)
		if (U(r->us[i])->dgen != r->gen[i])
			exp = E_FLUX;
	/* header and status moved under it: perhaps no status at all */
	if (U(r->slots_unit)->dgen != r->slots_gen || ow.wild)
		exp = E_ANY;
	r->exp = exp;
	count(C_REQ);
	switch (exp) {
	case E_OK:
		if (st != VIRTIO_BLK_S_OK || r->io.used_len != ok_len)
			req_fail(r, "wrong answer");
		break;
	case E_IOERR:
		if (st != VIRTIO_BLK_S_IOERR || r->io.used_len != 1)
			req_fail(r, "wrong answer");
		break;
	case E_UNSUPP:
		if (st != VIRTIO_BLK_S_UNSUPP || r->io.used_len != 1)
			req_fail(r, "wrong answer");
		break;
	case E_FLUX:
		if (!(st == VIRTIO_BLK_S_OK && r->io.used_len == ok_len) &&
		    !(st == VIRTIO_BLK_S_IOERR && r->io.used_len == 1))
			req_fail(r, "wrong answer (its mapping changed in flight)");
		break;
	default:
		break;
	}
	count(exp == E_ANY ? C_ANY : exp == E_FLUX ? C_FLUX :
	      st == VIRTIO_BLK_S_OK ? C_OK : st == VIRTIO_BLK_S_IOERR ? C_IOERR :
	      C_UNSUPP);
	if (exp == E_ANY) {
		if (writes(r->type) && !r->bad)
			model_unknown(r->sector, r->nsect);
		req_release(r);
		return;
	}
	if (r->type == VIRTIO_BLK_T_IN && mem && st == VIRTIO_BLK_S_OK) {
		for (i = 0; i < r->nsect; i++) {
			const uint8_t *got = r->mem + i * 512;
			const uint8_t *want = model + (r->sector + i) * 512;
			unsigned int b;

			if (!known[r->sector + i] || !memcmp(got, want, 512))
				continue;
			for (b = 0; got[b] == want[b]; b++)
				;
			fprintf(stderr, "FAIL: sector %" PRIu64 " byte %u: read 0x%02x, written 0x%02x\n",
				r->sector + i, b, got[b], want[b]);
			req_fail(r, "read data differ from what was written");
		}
	}
	if (r->type == VIRTIO_BLK_T_IN && mem && r->alloc &&
	    st == VIRTIO_BLK_S_IOERR) {
		for (i = 0; i < r->len; i++)
			if (r->mem[i] != VD_POISON)
				req_fail(r, "a read that failed wrote its buffer");
	}
	if (writes(r->type) && st == VIRTIO_BLK_S_OK && !r->bad) {
		if (r->src) {
			model_write(r->sector, r->src, r->nsect);
		} else if (!r->alloc) {
			/* memory of ours no more, or never */
			model_unknown(r->sector, r->nsect);
		} else {
			uint8_t *tmp = xcalloc(r->len, 1);

			vd_pattern_fill(tmp, r->len, r->pat, 0);
			model_write(r->sector, tmp, r->nsect);
			free(tmp);
		}
	}
	req_release(r);
}

/* Can the queue make progress (every request in flight must complete)? */
static bool q_live(int qi)
{
	struct oq *q = &ow.q[qi];

	if (ow.messy || ow.wild || ow.needs_reset || ow.suspended)
		return false;
	if ((ow.status & ST_RUN) != ST_RUN)
		return false;
	if (!q->setup || !q->enabled || !q->ready || !q->coherent || !q->home)
		return false;
	return unit_ok(q->u[P_DESC], VHOST_ACCESS_RO) &&
	       unit_ok(q->u[P_AVAIL], VHOST_ACCESS_RO) &&
	       unit_ok(q->u[P_USED], VHOST_ACCESS_RW) &&
	       unit_ok(q->u[P_SLOTS], VHOST_ACCESS_RW);
}

/*
 * A queue the device serves breaks the whole device once a ring of it
 * cannot be used (maybe later: when the worker next looks at it).
 */
static bool q_cannot_break(int qi)
{
	struct oq *q = &ow.q[qi];

	if (!q->setup || !q->ready)
		return true;
	return q->home && unit_ok(q->u[P_DESC], VHOST_ACCESS_RO) &&
	       unit_ok(q->u[P_AVAIL], VHOST_ACCESS_RO) &&
	       unit_ok(q->u[P_USED], VHOST_ACCESS_RW);
}

static void q_reap(int qi)
{
	struct vd_vq *vq = &ow.dev->vqs[qi];
	struct vd_io *done[MAXREQ];
	int n, i;

	if (!vq->num)
		return;
	while ((n = vd_reap(vq, done, MAXREQ)) > 0)
		for (i = 0; i < n && i < MAXREQ; i++)
			req_done(done[i]->priv);
	if (vq->spurious != ow.q[qi].spurious) {
		if (!ow.wild && ow.q[qi].coherent)
			ofail("queue %d: the device completed a head that is not in flight",
			      qi);
		ow.q[qi].spurious = vq->spurious;
	}
}

/* Reap; with @wait, wait (bounded) for all of a live queue's requests. */
static void q_collect(int qi, bool wait)
{
	struct vd_vq *vq = &ow.dev->vqs[qi];
	uint64_t end = vd_now_ns() + wait_ms(15000) * 1000000ULL;
	unsigned int n = 0;

	if (!ow.q[qi].setup)
		return;
	if (wait && q_live(qi) && req_busy(qi))
		kick(vq);
	for (;;) {
		q_reap(qi);
		/* a break elsewhere (legal or not) stops this queue too */
		if (wait && ++n % 5 == 0)
			st_get();
		if (!wait || !req_busy(qi) || !q_live(qi))
			return;
		if (vd_now_ns() > end) {
			st_get();
			if (q_live(qi))
				ofail("queue %d: %u requests did not complete in %d ms on a queue that runs (hang)",
				      qi, req_busy(qi), wait_ms(15000));
			return;
		}
		vd_used_wait(vq, 20);
	}
}

static void collect_all(bool wait)
{
	unsigned int qi;

	for (qi = 0; qi < ow.nq; qi++)
		q_collect(qi, wait);
}

/* A placement for @len bytes: data (area, memory, iova); false if none. */
static bool place_in(struct oreq *r, int ai)
{
	struct area *a = A(ai);
	size_t off;

	r->area = ai;
	if (r->len > a->size)
		return false;
	if (!a->alive || !a->r || a->kind == AK_NEVER) {
		/* no memory of ours to hold it: only the IOVA */
		off = rn((a->size - r->len) / 512 + 1) * 512;
		r->iova = a->iova + off;
		return true;
	}
	if (a->kind == AK_ROMEM) {
		off = rn((a->size - r->len) / 512 + 1) * 512;
		r->mem = a->va + off;
		r->iova = a->iova + off;
		r->src = r->type == VIRTIO_BLK_T_OUT ? r->mem : NULL;
		return true;
	}
	r->mem = vd_alloc(a->r, r->len, 1 << rn(13));
	if (!r->mem)
		return false;
	r->alloc = true;
	r->iova = a->iova + (r->mem - a->va);
	return true;
}

/* Where the data go: our regions, read-only memory, holes. */
static bool place(struct oreq *r, int ai)
{
	unsigned int k = rn(100), i, n = 0;
	int cand[MAXAREA];
	size_t off;

	r->area = -1;
	r->mem = NULL;
	r->alloc = false;
	if (ai >= 0)
		return place_in(r, ai);
	if (k < 14) {
		for (i = 0; i < ow.narea; i++)
			if (A(i)->kind == AK_VOL && !A(i)->retired)
				cand[n++] = i;
		if (n && place_in(r, cand[rn(n)]))
			return true;
	} else if (k < 19) {
		return place_in(r, ow.romem_area);
	} else if (k < 24) {
		/* the read-only file: its contents are known, not its memory */
		off = rn((RO_SIZE - r->len) / 512 + 1) * 512;
		r->area = ow.rofile_area;
		r->iova = A(r->area)->iova + off;
		r->src = r->type == VIRTIO_BLK_T_OUT ? ow.ro_expect + off : NULL;
		return true;
	} else if (k < 28) {
		r->iova = IOVA_HOLE + rn(1 << 20);
		return true;
	} else if (k < 31) {
		return place_in(r, ow.never_area);
	}
	return place_in(r, ow.data_area);
}

static int expect_of(struct oreq *r)
{
	struct oq *q = &ow.q[r->q];
	uint64_t end;
	int acc;

	r->slots_unit = q->u[P_SLOTS];
	r->slots_gen = U(r->slots_unit)->dgen;
	if (ow.wild || !unit_ok(q->u[P_SLOTS], VHOST_ACCESS_RW) ||
	    !(ow.dfeat & (1ULL << VIRTIO_F_VERSION_1)))
		return E_ANY;
	if (r->type == VIRTIO_BLK_T_FLUSH)
		return ow.dfeat & (1ULL << VIRTIO_BLK_F_FLUSH) ? E_OK : E_UNSUPP;
	if (r->len > ow.seg_max * ow.size_max)
		return E_IOERR;
	if (writes(r->type) &&
	    (ow.dev->dev_features & (1ULL << VIRTIO_BLK_F_RO)))
		return E_IOERR;
	if (__builtin_add_overflow(r->sector, r->nsect, &end) || end > sh->cap)
		return E_IOERR;
	acc = dview_acc(r->iova, r->len, r->type == VIRTIO_BLK_T_IN ?
			VHOST_ACCESS_WO : VHOST_ACCESS_RO, r);
	return acc > 0 ? E_OK : acc == 0 ? E_IOERR : E_FLUX;
}

/*
 * Generate, lay out and publish one request on queue @qi: of @type and in
 * area @ai, or drawn when negative.
 */
static bool gen_req_ex(int qi, int type, int ai)
{
	struct vd_vq *vq = &ow.dev->vqs[qi];
	uint64_t lim = sh->cap - ORPHAN_SECT;
	struct oreq *r = req_slot();
	unsigned int k = rn(100), segmax, t, per = ow.size_max / 512;
	int ret;

	if (!r || !vq->num || ow.needs_reset || ow.frozen || ow.post_reset)
		return false;
	memset(r, 0, sizeof(*r));
	r->q = qi;
	r->area = -1;
	if (type >= 0)
		r->type = type;
	else if (k < 45)
		r->type = VIRTIO_BLK_T_IN;
	else if (k < 86)
		r->type = VIRTIO_BLK_T_OUT;
	else if (k < 96)
		r->type = VIRTIO_BLK_T_FLUSH;
	else
		r->type = chance(50) ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
	r->bad = type < 0 && k >= 96;
	vd_io_init(&r->io, r->type, 0, NULL, 0, 1);
	if (r->type != VIRTIO_BLK_T_FLUSH) {
		segmax = ow.seg_max < 16 ? ow.seg_max : 16;
		r->nsect = 1 + rn(chance(25) ? segmax * per : 8);
		if (r->nsect > segmax * per)
			r->nsect = segmax * per;
		r->len = r->nsect * 512;
		for (t = 0; t < 8; t++) {
			r->sector = rn(lim - r->nsect + 1);
			if (r->bad || !conflict(r->sector, r->nsect,
						writes(r->type)))
				break;
		}
		if (t == 8)
			return false;
		if (r->bad) {
			t = r->nsect > 1 ? 1 + rn(r->nsect - 1) : 0;
			r->sector = chance(50) || !t ? sh->cap + rn(64) :
				    sh->cap - t;
		}
		if (!place(r, ai))
			return false;
		if (writes(r->type) && r->alloc) {
			r->pat = rnd();
			vd_pattern_fill(r->mem, r->len, r->pat, 0);
		}
		r->io.sector = r->sector;
		r->io.buf = r->mem ? (void *)r->mem : (void *)ow.dev;
		r->io.len = r->len;
		r->io.use_iova = true;
		r->io.data_iova = r->iova;
		t = (r->len + ow.size_max - 1) / ow.size_max;
		r->io.nsegs = t + rn(r->len / 512 - t + 1);
		if (r->io.nsegs > ow.seg_max)
			r->io.nsegs = ow.seg_max;
		if (r->io.nsegs > 60)
			r->io.nsegs = 60;
		if (r->io.nsegs < t)
			r->io.nsegs = t;
	}
	if (ow.dfeat & (1ULL << VIRTIO_RING_F_INDIRECT_DESC))
		r->io.indirect = chance(30) || r->io.nsegs + 2 > vq->nfree;
	r->io.priv = r;
	r->exp = expect_of(r);
	ret = vd_submit(vq, &r->io);
	if (ret) {
		if (r->alloc)
			vd_free(A(r->area)->r, r->mem);
		if (ret == -ENOSPC)
			return false;
		ofail("submit: %s", strerror(-ret));
	}
	r->busy = true;
	act(1);
	return true;
}

static bool gen_req(int qi)
{
	return gen_req_ex(qi, -1, -1);
}

/* ---- set-up ----------------------------------------------------------- */

static uint64_t pick_features(void)
{
	static const unsigned int optional[] = {
		VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_BLK_F_FLUSH,
		VIRTIO_BLK_F_CONFIG_WCE, VIRTIO_BLK_F_DISCARD,
		VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_F_MQ,
		VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_F_GEOMETRY,
	};
	uint64_t want = VD_DEFAULT_FEATURES;
	unsigned int i;

	for (i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
		if (chance(20))
			want &= ~(1ULL << optional[i]);
	if (chance(50))
		want |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	return want & ~ow.feat_off;
}

static void handshake(void)
{
	if (vd_handshake(ow.dev, pick_features()))
		ofail("feature handshake: %s", vd_last_error);
	act(5);
	ow.status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		    VIRTIO_CONFIG_S_FEATURES_OK;
	ow.dfeat = ow.dev->features;
	ow.seg_max = le32toh(ow.dev->cfg.seg_max);
	ow.size_max = le32toh(ow.dev->cfg.size_max);
	if (!ow.seg_max || ow.size_max < 512 || ow.size_max % 512)
		ofail("config: seg_max %u size_max %u", ow.seg_max, ow.size_max);
	if (le64toh(ow.dev->cfg.capacity) != sh->cap)
		ofail("config: capacity %llu, expected %" PRIu64,
		      (unsigned long long)le64toh(ow.dev->cfg.capacity), sh->cap);
}

static size_t alloc_len(struct vd_region *r, const void *p)
{
	size_t off = (const uint8_t *)p - r->va;
	unsigned int i;

	for (i = 0; i < r->nallocs; i++)
		if (r->allocs[i].off == off)
			return r->allocs[i].len;
	ofail("no allocation at region offset 0x%zx", off);
}

static int part_unit(int ai, const void *p, size_t len, uint8_t perm, int q,
		     int part)
{
	struct area *a = A(ai);
	size_t off = (const uint8_t *)p - a->va;
	size_t end = (off + len + PG - 1) & ~(PG - 1);

	off &= ~(PG - 1);
	return unit_new(ai, off, end - off, perm, q, part);
}

/* Program queue @qi (its ring memory laid out at the first call). */
static void q_setup(int qi)
{
	struct area *a = A(ow.ring_area[qi]);
	struct vd_vq *vq = &ow.dev->vqs[qi];
	struct oq *q = &ow.q[qi];
	bool first = !vq->ring_num;

	if (ow.post_reset) {
		frozen_check("at set-up");
		ow.post_reset = false;
	}
	if (vd_vq_setup(ow.dev, qi, ow.qsize, a->r))
		ofail("queue %d set-up: %s", qi, vd_last_error);
	act(6);
	vd_vq_set_interrupts(vq, chance(70));
	q->setup = q->enabled = q->ready = q->coherent = q->home = true;
	q->next_home = true;
	q->used_iova = q->next_used_iova = vq->used_iova;
	q->used_len = used_bytes(ow.dfeat, ow.qsize);
	q->spurious = vq->spurious;
	q->susp_snap = false;
	if (first) {
		uint8_t *scratch;

		q->u[P_DESC] = part_unit(ow.ring_area[qi], vq->desc,
					 alloc_len(a->r, vq->desc),
					 VHOST_ACCESS_RW, qi, P_DESC);
		q->u[P_AVAIL] = part_unit(ow.ring_area[qi], vq->avail,
					  alloc_len(a->r, vq->avail),
					  VHOST_ACCESS_RW, qi, P_AVAIL);
		q->u[P_USED] = part_unit(ow.ring_area[qi], vq->used,
					 alloc_len(a->r, vq->used),
					 VHOST_ACCESS_RW, qi, P_USED);
		q->u[P_SLOTS] = part_unit(ow.ring_area[qi], vq->slots,
					  alloc_len(a->r, vq->slots),
					  VHOST_ACCESS_RW, qi, P_SLOTS);
		q->u[P_SCRATCH] = -1;
		if (qi == 0) {
			scratch = vd_alloc(a->r, SCRATCH, PG);
			if (!scratch)
				ofail("no room for the orphan's scratch pages");
			q->u[P_SCRATCH] = part_unit(ow.ring_area[qi], scratch,
						    SCRATCH, VHOST_ACCESS_RW,
						    qi, P_SCRATCH);
		}
	}
	/* The used ring is watched from here: is it writable now? */
	if (used_ro(qi) > 0)
		ofail("queue %d set up over a read-only used ring", qi);
}

/* The verified write and read that prove the device works. */
static void verify_io(int qi, const char *when)
{
	struct vd_vq *vq = &ow.dev->vqs[qi];
	struct area *a = A(ow.data_area);
	uint32_t n = 1 + rn(ow.seg_max < 8 ? ow.seg_max * 8 : 64);
	uint64_t sector = rn(sh->cap - ORPHAN_SECT - n + 1), pat = rnd();
	uint8_t *w, *r;
	struct vd_io io;
	int i;

	if (n > ow.seg_max * (ow.size_max / 512))
		n = ow.seg_max * (ow.size_max / 512);
	w = vd_alloc(a->r, n * 512, 512);
	r = vd_alloc(a->r, n * 512, 512);
	if (!w || !r)
		ofail("%s: no room in the data region", when);
	vd_pattern_fill(w, n * 512, pat, 0);
	for (i = 0; i < 2; i++) {
		vd_io_init(&io, i ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, sector,
			   i ? r : w, n * 512,
			   (n * 512 + ow.size_max - 1) / ow.size_max);
		if (vd_io_sync(vq, &io, wait_ms(15000)))
			ofail("%s: queue %d: %s of %u sectors at %" PRIu64
			      " after a clean set-up: %s", when, qi,
			      i ? "read" : "write", n, sector, vd_last_error);
		if (io.status != VIRTIO_BLK_S_OK ||
		    io.used_len != (i ? 1 + n * 512 : 1))
			ofail("%s: queue %d: %s after a clean set-up answered %s, used length %u",
			      when, qi, i ? "read" : "write",
			      vd_status_name(io.status), io.used_len);
	}
	if (memcmp(w, r, n * 512))
		ofail("%s: queue %d: data read back after a clean set-up differ",
		      when, qi);
	model_write(sector, w, n);
	/* and what earlier sessions left: the model knows it */
	sector = rn(sh->cap - ORPHAN_SECT - n + 1);
	vd_io_init(&io, VIRTIO_BLK_T_IN, sector, r, n * 512,
		   (n * 512 + ow.size_max - 1) / ow.size_max);
	if (vd_io_sync(vq, &io, wait_ms(15000)) || io.status != VIRTIO_BLK_S_OK)
		ofail("%s: queue %d: read of %u sectors at %" PRIu64 ": %s",
		      when, qi, n, sector, vd_status_name(io.status));
	for (i = 0; i < (int)n; i++)
		if (known[sector + i] &&
		    memcmp(r + i * 512, model + (sector + i) * 512, 512))
			ofail("%s: queue %d: sector %" PRIu64 " differs from what was last written to it",
			      when, qi, sector + i);
	vd_free(a->r, w);
	vd_free(a->r, r);
	__atomic_add_fetch(&sh->n[C_REQ], 3, __ATOMIC_RELAXED);
	act(3);
}

/* Poison between the allocations of @r again (after a wild phase). */
static void repoison_gaps(struct vd_region *r)
{
	size_t pos = 0;
	unsigned int i;

	for (i = 0; i < r->nallocs; i++) {
		memset(r->va + pos, VD_POISON, r->allocs[i].off - pos);
		pos = r->allocs[i].off + r->allocs[i].len;
	}
	memset(r->va + pos, VD_POISON, r->size - pos);
}

/* The state after status 0 returned: nothing is in flight any more. */
static void after_reset(void)
{
	unsigned int i;

	ow.status = 0;
	ow.dfeat = 0;
	ow.suspended = false;
	ow.needs_reset = false;
	if (ow.frozen)
		frozen_check("at reset");
	ow.frozen = false;
	for (i = 0; i < NQ; i++) {
		ow.q[i].setup = ow.q[i].enabled = ow.q[i].ready = false;
		ow.q[i].used_len = 0;
		ow.q[i].susp_snap = false;
	}
	/* No CLEAN_MAP with IOTLB_PERSIST; else the device forgot its map. */
	if (!ow.persist)
		for (i = 0; i < ow.nunit; i++)
			if (U(i)->d != U_ABSENT) {
				U(i)->d = U_ABSENT;
				U(i)->dgen++;
			}
	drop_all();
	ow.post_reset = true;
	ow.post_reset_sum = rings_sum(false);
	/* Stray writes before the reset are found here, later ones later. */
	memory_check("at reset");
	for (i = 0; i < ow.narea; i++) {
		if ((A(i)->kind == AK_DATA || A(i)->kind == AK_VOL) &&
		    A(i)->alive)
			vd_region_reset_alloc(A(i)->r);
		else if (A(i)->kind == AK_RING && ow.wild)
			repoison_gaps(A(i)->r);
	}
	ow.wild = false;
	ow.messy = true;
	ow.break_ok = false;
	count(C_RESET);
}

static void dev_reset(void)
{
	int ret = vd_set_status(ow.dev, 0);

	act(1);
	if (ret)
		ofail("reset: %s", strerror(-ret));
	after_reset();
	st_get();
}

static void units_home(void)
{
	size_t freed = 0;
	unsigned int i;

	if (chance(90) && !ow.in_batch)
		batch_begin();
	for (i = 0; i < ow.nunit; i++) {
		struct area *a = A(U(i)->area);

		if (a->kind == AK_NEVER)
			continue;
		if (!a->alive) {
			if (U(i)->v != U_ABSENT) {
				unit_inval(i);
				freed += U(i)->len;
			}
			a->retired = true;
			continue;
		}
		unit_home(i);
	}
	/* One set_map() at least: after a reset without IOTLB_PERSIST the
	 * device forgot its mappings, and nothing above may have changed.
	 */
	if (!ow.in_batch)
		batch_begin();
	batch_end();
	if (freed)
		canary_add(2 * freed / PG);
}

/* Reset, every unit home, features, queues, DRIVER_OK, verified I/O. */
static void recover(const char *why)
{
	unsigned int qi;

	oplog("recover (%s)", why);
	if (ow.in_batch)
		batch_end();
	dev_reset();
	units_home();
	handshake();
	for (qi = 0; qi < ow.nq; qi++)
		q_setup(qi);
	/* the rings' own units, at the first set-up */
	units_home();
	if (vd_driver_ok(ow.dev))
		ofail("DRIVER_OK: %s", vd_last_error);
	act(1);
	ow.status |= VIRTIO_CONFIG_S_DRIVER_OK;
	st_get();
	ow.messy = false;
	ow.break_ok = false;
	for (qi = 0; qi < ow.nq; qi++)
		if (!q_live(qi))
			ofail("queue %d not running after a clean set-up", qi);
	for (qi = 0; qi < ow.nq; qi++)
		verify_io(qi, why);
	count(C_RECOVER);
}

/* ---- operations ------------------------------------------------------- */

static int pick_unit(bool (*ok)(const struct unit *u))
{
	int cand[MAXUNIT];
	unsigned int i, n = 0;

	for (i = 0; i < ow.nunit; i++)
		if (ok(U(i)))
			cand[n++] = i;
	return n ? cand[rn(n)] : -1;
}

static bool u_mapped(const struct unit *u)
{
	return u->v != U_ABSENT && A(u->area)->kind != AK_NEVER;
}

static bool u_mappable(const struct unit *u)
{
	return u->v != U_PRESENT && A(u->area)->alive &&
	       A(u->area)->kind != AK_NEVER;
}

static bool u_present_home(const struct unit *u)
{
	return u->v == U_PRESENT && A(u->area)->alive && !u->foreign;
}

static int pick_live(void)
{
	int cand[NQ];
	unsigned int qi, n = 0;

	for (qi = 0; qi < ow.nq; qi++)
		if (q_live(qi))
			cand[n++] = qi;
	return n ? cand[rn(n)] : -1;
}

static void op_io(void)
{
	int qi = pick_live();
	unsigned int n = 1 + rn(6), i, done = 0;

	if (qi < 0 && !ow.messy && chance(30))
		qi = rn(ow.nq);
	if (qi < 0 || !ow.q[qi].setup) {
		oplog("io: no queue");
		return;
	}
	for (i = 0; i < n; i++)
		done += gen_req(qi);
	oplog("io: %u requests on queue %d%s", done, qi,
	      q_live(qi) ? "" : " (not running)");
	if (chance(92))
		kick(&ow.dev->vqs[qi]);
}

static void allocs_reset(void)
{
	unsigned int i;

	for (i = 0; i < ow.narea; i++)
		if ((A(i)->kind == AK_DATA || A(i)->kind == AK_VOL) &&
		    A(i)->alive) {
			if (!ow.wild)
				poison_check(i, "between requests");
			vd_region_reset_alloc(A(i)->r);
		}
}

static void op_reap(void)
{
	bool wait = chance(70);

	oplog("reap%s", wait ? " and wait" : "");
	collect_all(wait);
	if (!req_busy(-1))
		allocs_reset();
}

static void op_quiet(void)
{
	oplog("quiet check");
	collect_all(true);
	memory_check("quiet check");
	if (!req_busy(-1))
		allocs_reset();
}

static void op_batch(void)
{
	if (ow.in_batch) {
		oplog("BATCH_END");
		batch_end();
	} else {
		oplog("BATCH_BEGIN");
		batch_begin();
	}
}

static void op_unmap(void)
{
	int ui = pick_unit(u_mapped);
	struct unit *u;
	uint64_t iova, len;

	if (ui < 0)
		return;
	u = U(ui);
	iova = u->iova;
	len = u->len;
	switch (rn(6)) {
	case 0:
		/* part of it */
		if (len > PG) {
			iova += rn(len / PG) * PG;
			len = PG * (1 + rn((u->iova + u->len - iova) / PG));
		} else {
			len = 1 + rn(len);
		}
		break;
	case 1:
		/* from it to the end of its area */
		len = A(u->area)->iova + A(u->area)->size - iova;
		break;
	default:
		break;
	}
	oplog("invalidate %s iova 0x%" PRIx64 " len 0x%" PRIx64 "%s",
	      A(u->area)->name, iova, len, ow.in_batch ? " (in batch)" : "");
	inval(iova, len);
	canary_add(2 * len / PG);
}

static void op_map(void)
{
	int ui = pick_unit(u_mappable);
	static const uint8_t odd[] = { VHOST_ACCESS_RO, VHOST_ACCESS_WO,
				       VHOST_ACCESS_RW, 0 };
	struct unit *u;
	uint8_t perm;

	if (ui < 0)
		return;
	u = U(ui);
	perm = u->hperm;
	if (chance(20))
		perm = u->hperm == VHOST_ACCESS_RO ? (chance(50) ? 0 :
						       VHOST_ACCESS_RO) :
		       odd[rn(4)];
	oplog("update %s iova 0x%" PRIx64 " len 0x%" PRIx64 " perm %u%s",
	      A(u->area)->name, u->iova, u->len, perm,
	      ow.in_batch ? " (in batch)" : "");
	if (u->v != U_ABSENT || u->foreign)
		unit_inval(ui);
	unit_update(ui, u->area, perm);
}

static void op_errno(void)
{
	int ui = pick_unit(u_present_home), ret, want;
	struct vhost_vring_state s = { 0 };
	const char *what;

	count(C_ERRNO);
	switch (rn(6)) {
	/* vhost_chr_write_iter() turns every error of the message's
	 * handler into EFAULT: EEXIST, EINVAL, EPERM alike.
	 */
	case 0:
		if (ui < 0)
			return;
		what = "UPDATE over a mapping";
		want = -EFAULT;
		ret = raw_msg(VHOST_IOTLB_UPDATE, U(ui)->iova + rn(U(ui)->len),
			      PG, U(ui)->uaddr, VHOST_ACCESS_RO);
		break;
	case 1:
		what = "UPDATE of size 0";
		want = -EINVAL;
		ret = raw_msg(VHOST_IOTLB_UPDATE, IOVA_HOLE, 0,
			      (uintptr_t)A(ow.data_area)->va, VHOST_ACCESS_RW);
		break;
	case 2:
		what = "UPDATE past 2^64";
		want = -EFAULT;
		ret = raw_msg(VHOST_IOTLB_UPDATE, ~0ULL - PG + 1, 2 * PG,
			      (uintptr_t)A(ow.data_area)->va, VHOST_ACCESS_RW);
		break;
	case 3:
		what = "IOTLB message of unknown type";
		want = -EFAULT;
		ret = raw_msg(42, IOVA_HOLE, PG, 0, 0);
		break;
	case 4:
		what = "SET_VRING_ENABLE of a queue past the last";
		want = -ENOBUFS;
		s.index = ow.dev->nvqs + rn(1000);
		s.num = 1;
		ret = ioctl(ow.dev->fd, VHOST_VDPA_SET_VRING_ENABLE, &s) ? -errno : 0;
		break;
	default:
		what = "SET_VRING_NUM of a size not a power of two";
		want = -EINVAL;
		s.index = rn(ow.nq);
		s.num = 3 + 2 * rn(100);
		ret = ioctl(ow.dev->fd, VHOST_SET_VRING_NUM, &s) ? -errno : 0;
		break;
	}
	oplog("%s: %s", what, strerror(-ret));
	act(1);
	if (ret != want)
		ofail("%s: %s, expected %s", what,
		      ret ? strerror(-ret) : "success", strerror(-want));
}

/* Private anonymous memory (PA: munmap() frees its pages) or a memfd. */
static void op_vol_new(void)
{
	unsigned int i, nvol = 0, units;
	size_t size = PG * (4 + rn(33));
	struct area *a;
	uint8_t *va;
	bool anon;
	int ai, fd;

	for (i = 0; i < ow.narea; i++)
		nvol += A(i)->kind == AK_VOL && A(i)->alive;
	if (nvol >= 3 || ow.narea == MAXAREA || ow.nunit + 2 > MAXUNIT)
		return;
	anon = ow.va ? chance(15) : chance(85);
	if (anon) {
		va = map_fresh(size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1);
	} else {
		fd = memfd_create("vdpa_fuzz-vol", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, size))
			ofail("memfd: %s", strerror(errno));
		va = map_fresh(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
		close(fd);
	}
	if (chance(30))
		madvise(va, size, MADV_NOHUGEPAGE);
	memset(va, VD_POISON, size);
	ai = area_new(AK_VOL, anon ? "anonymous memory" : "memfd memory", va,
		      size, ow.next_iova);
	a = A(ai);
	a->unshared = anon;
	ow.next_iova += size + (1 << 20);
	if (vd_region_wrap(ow.dev, va, size, &a->r))
		ofail("out of memory");
	units = size > 2 * PG && chance(40) ? 2 : 1;
	oplog("new %s: %zu KiB at iova 0x%" PRIx64 " in %u units%s", a->name,
	      size >> 10, a->iova, units, ow.in_batch ? " (in batch)" : "");
	if (units == 1) {
		unit_update(unit_new(ai, 0, size, VHOST_ACCESS_RW, -1, P_NONE),
			    ai, VHOST_ACCESS_RW);
	} else {
		size_t half = (size / 2) & ~(PG - 1);

		unit_update(unit_new(ai, 0, half, VHOST_ACCESS_RW, -1, P_NONE),
			    ai, VHOST_ACCESS_RW);
		unit_update(unit_new(ai, half, size - half, VHOST_ACCESS_RW,
				     -1, P_NONE), ai, VHOST_ACCESS_RW);
	}
}

static void area_inval(int ai)
{
	unsigned int i;

	for (i = 0; i < ow.nunit; i++)
		if (U(i)->area == ai && U(i)->v != U_ABSENT)
			unit_inval(i);
}

/* munmap() memory the IOTLB maps and requests use. */
static void vol_munmap(int kind)
{
	int cand[MAXAREA], ai, qi = pick_live();
	unsigned int i, n = 0, k, reads = 0;
	struct area *a;

	for (i = 0; i < ow.narea; i++)
		if (A(i)->kind == AK_VOL && A(i)->alive)
			cand[n++] = i;
	if (!n)
		return op_vol_new();
	ai = cand[rn(n)];
	a = A(ai);
	/* reads into it in flight */
	for (k = 0; qi >= 0 && k < 1 + rn(4); k++)
		reads += gen_req_ex(qi, VIRTIO_BLK_T_IN, ai);
	if (reads)
		kick(&ow.dev->vqs[qi]);
	oplog("munmap %s at iova 0x%" PRIx64 " (%zu KiB, %s, %u reads just sent)",
	      a->name, a->iova, a->size >> 10,
	      kind == 0 ? "left mapped" : kind == 1 ?
	      "invalidated first, in a batch left open" :
	      "invalidated after", reads);
	if (kind == 1) {
		if (!ow.in_batch)
			batch_begin();
		area_inval(ai);
	}
	if (munmap(a->va, a->size))
		ofail("munmap: %s", strerror(errno));
	act(1);
	a->alive = false;
	count(C_MUNMAP);
	for (i = 0; i < MAXREQ; i++)
		if (ow.req[i].busy && ow.req[i].area == ai)
			ow.req[i].mem = NULL;
	/* VA mode: requests now find nothing at those addresses */
	for (i = 0; ow.va && i < ow.nunit; i++)
		if (U(i)->area == ai)
			U(i)->dgen++;
	if (kind == 2)
		area_inval(ai);
	canary_add(2 * a->size / PG);
	if (kind == 1 && qi >= 0 && q_live(qi)) {
		/* the device's view still has it: reads through it */
		for (k = reads = 0; k < 1 + rn(6); k++)
			reads += gen_req_ex(qi, VIRTIO_BLK_T_IN, ai);
		if (reads)
			kick(&ow.dev->vqs[qi]);
	}
}

static void op_vol_munmap(void)
{
	vol_munmap(rn(3));
}

static void op_suspend(void)
{
	unsigned int qi;
	int ret;

	if (!vd_has_backend(ow.dev, VHOST_BACKEND_F_SUSPEND))
		return;
	ret = vd_suspend(ow.dev);
	act(1);
	oplog("suspend (status 0x%02x)", ow.status);
	if (ret)
		ofail("SUSPEND: %s", vd_last_error);
	if (!(ow.status & VIRTIO_CONFIG_S_DRIVER_OK))
		return;
	ow.suspended = true;
	count(C_SUSPEND);
	if (st_get() & ST_NR)
		return;
	for (qi = 0; qi < ow.nq; qi++) {
		struct vd_vq *vq = &ow.dev->vqs[qi];
		struct oq *q = &ow.q[qi];
		uint16_t base;

		if (!q->setup || !q->coherent || !q->home || ow.wild ||
		    !unit_ok(q->u[P_USED], VHOST_ACCESS_RW) ||
		    !unit_ok(q->u[P_SLOTS], VHOST_ACCESS_RW))
			continue;
		if (vd_get_vring_base(ow.dev, qi, &base))
			ofail("GET_VRING_BASE: %s", vd_last_error);
		act(1);
		if (st_get() & ST_NR)
			return;
		if (vd_used_idx(vq) != base)
			ofail("queue %d suspended with fetched requests not in the used ring: used %u, base %u",
			      qi, vd_used_idx(vq), base);
		q_reap(qi);
		q->susp_snap = true;
		q->susp_used = vd_used_idx(vq);
	}
}

static void susp_check(const char *when)
{
	unsigned int qi;

	for (qi = 0; qi < ow.nq; qi++)
		if (ow.q[qi].susp_snap &&
		    vd_used_idx(&ow.dev->vqs[qi]) != ow.q[qi].susp_used)
			ofail("%s: queue %d's used ring moved while suspended (%u, was %u)",
			      when, qi, vd_used_idx(&ow.dev->vqs[qi]),
			      ow.q[qi].susp_used);
}

static void op_resume(void)
{
	unsigned int qi;

	if (!vd_has_backend(ow.dev, VHOST_BACKEND_F_RESUME))
		return;
	oplog("resume");
	susp_check("at resume");
	if (vd_resume(ow.dev))
		ofail("RESUME: %s", vd_last_error);
	act(1);
	ow.suspended = false;
	for (qi = 0; qi < ow.nq; qi++)
		ow.q[qi].susp_snap = false;
}

/* May the owner change ring addresses and bases now? */
static bool ring_state_ok(void)
{
	return !(ow.status & VIRTIO_CONFIG_S_DRIVER_OK) || ow.suspended;
}

static bool q_enable(int qi, bool on);

static void op_base(void)
{
	int qi = rn(ow.nq);
	struct vd_vq *vq = &ow.dev->vqs[qi];
	struct oq *q = &ow.q[qi];
	uint16_t b = rnd(), got;
	bool coherent;
	int ret;

	if (!q->setup)
		return;
	collect_all(false);
	coherent = !req_busy(qi) && !ow.needs_reset && chance(60);
	ret = vd_set_vring_base(ow.dev, qi, b);
	act(2);
	oplog("SET_VRING_BASE queue %d to %u (%s)", qi, b,
	      ring_state_ok() ? coherent ? "driver follows" : "driver does not follow" :
	      "device running");
	count(C_JUMP);
	if (!ring_state_ok()) {
		if (ret != -EINVAL)
			ofail("SET_VRING_BASE while running: %s, expected EINVAL",
			      ret ? strerror(-ret) : "success");
		return;
	}
	if (ret)
		ofail("SET_VRING_BASE: %s", vd_last_error);
	if (vd_get_vring_base(ow.dev, qi, &got))
		ofail("GET_VRING_BASE: %s", vd_last_error);
	if (got != b)
		ofail("queue %d: GET_VRING_BASE gave %u after SET_VRING_BASE %u",
		      qi, got, b);
	if (coherent) {
		/* as a migration destination finds the guest's rings */
		vd_avail_set_idx(vq, b);
		__atomic_store_n(&vq->used->idx, htole16(b), __ATOMIC_RELEASE);
		vq->last_used = b;
		q->susp_used = b;
	} else {
		q->coherent = false;
		set_wild();
	}
}

static bool q_enable(int qi, bool on)
{
	struct oq *q = &ow.q[qi];
	bool was = q->ready;

	if (vd_set_vring_enable(ow.dev, qi, on))
		ofail("SET_VRING_ENABLE: %s", vd_last_error);
	act(1);
	q->enabled = on;
	count(C_ENABLE);
	if (!on) {
		q->ready = false;
		q->used_len = 0;
		return false;
	}
	if (was || !q->setup)
		return false;
	q->ready = true;
	q->home = q->next_home;
	q->used_iova = q->next_used_iova;
	q->used_len = used_bytes(ow.dfeat, ow.qsize);
	if (used_ro(qi)) {
		ow.break_ok = true;
		if (used_ro(qi) > 0) {
			count(C_BREAK);
			if (!(st_get() & ST_NR))
				break_missing(qi, "a queue became ready over a used ring mapped read-only");
			return true;
		}
	}
	return false;
}

static void op_enable(void)
{
	int qi = rn(ow.nq);
	bool enable;

	if (!ow.q[qi].setup)
		return;
	enable = chance(85);
	oplog("queue %d: disable%s", qi, enable ? ", enable" : "");
	q_enable(qi, false);
	if (enable)
		q_enable(qi, true);
}

/* Move the used ring (or another part) elsewhere. */
static void op_addr(void)
{
	int qi = rn(ow.nq), where = rn(5);
	struct vd_vq *vq = &ow.dev->vqs[qi];
	struct oq *q = &ow.q[qi];
	struct vhost_vring_addr a = { .index = qi };
	int ret;

	if (!q->setup)
		return;
	a.desc_user_addr = vq->desc_iova;
	a.avail_user_addr = vq->avail_iova;
	a.used_user_addr = vq->used_iova;
	switch (where) {
	case 0:
		a.used_user_addr = A(ow.rofile_area)->iova + 4 * rn(1024);
		break;
	case 1:
		a.used_user_addr = A(ow.romem_area)->iova + 4 * rn(1024);
		break;
	case 2:
		a.desc_user_addr = IOVA_HOLE + 16 * rn(1024);
		break;
	case 3:
		a.used_user_addr = IOVA_HOLE + 4 * rn(1024);
		break;
	default:
		break;	/* home */
	}
	ret = ioctl(ow.dev->fd, VHOST_SET_VRING_ADDR, &a) ? -errno : 0;
	act(1);
	oplog("SET_VRING_ADDR queue %d variant %d: %s", qi, where,
	      ret ? strerror(-ret) : "ok");
	count(C_ADDR);
	if (!ring_state_ok()) {
		if (ret != -EINVAL)
			ofail("SET_VRING_ADDR while running: %s, expected EINVAL",
			      ret ? strerror(-ret) : "success");
		return;
	}
	if (ret)
		ofail("SET_VRING_ADDR: %s", strerror(-ret));
	/*
	 * The device takes the new rings when the queue next becomes ready:
	 * here, or in a later op_enable().
	 */
	q->next_home = where == 4;
	q->next_used_iova = a.used_user_addr;
	if (!q->next_home)
		ow.break_ok = true;
	if (chance(60)) {
		q_enable(qi, false);
		q_enable(qi, true);
	}
}

static void op_num(void)
{
	int qi = rn(ow.nq);
	struct vhost_vring_state s = { .index = qi };
	unsigned int n = 1U << (2 + rn(8));

	if (!ow.q[qi].setup || n == ow.qsize || n > ow.dev->vq_num_max)
		return;
	s.num = n;
	oplog("SET_VRING_NUM queue %d to %u", qi, n);
	if (ioctl(ow.dev->fd, VHOST_SET_VRING_NUM, &s))
		ofail("SET_VRING_NUM %u: %s", n, strerror(errno));
	act(1);
	/* vringh keeps its size until the queue is enabled again */
	ow.q[qi].coherent = false;
	set_wild();
}

/* Features and status in odd orders; exact answers where they are known. */
static void op_odd(void)
{
	uint64_t f;
	uint8_t s = ow.status;
	int ret, k = rn(6);

	count(C_ODD);
	switch (k) {
	case 0: {
		/* clear a bit without a reset */
		uint8_t bits[8], n = 0, b;

		for (b = 0; b < 8; b++)
			if (s & (1 << b))
				bits[n++] = 1 << b;
		if (n < 2)
			return;
		b = bits[rn(n)];
		oplog("SET_STATUS 0x%02x (clears 0x%02x)", s & ~b, b);
		st_set((s | (ow.needs_reset ? ST_NR : 0)) & ~b, -EINVAL);
		return;
	}
	case 1:
		if (!(s & VIRTIO_CONFIG_S_FEATURES_OK))
			return;
		f = ow.dfeat ^ (1ULL << VIRTIO_BLK_F_FLUSH);
		ret = vd_set_features_raw(ow.dev, f);
		act(1);
		oplog("SET_FEATURES 0x%" PRIx64 " with status 0x%02x: %s", f, s,
		      ret ? strerror(-ret) : "ok");
		if (ret != -EBUSY)
			ofail("SET_FEATURES after FEATURES_OK: %s, expected EBUSY",
			      ret ? strerror(-ret) : "success");
		return;
	case 2:
		/* features the device must refuse, before FEATURES_OK */
		if (s & VIRTIO_CONFIG_S_FEATURES_OK)
			dev_reset();
		f = chance(50) ? (VD_DEFAULT_FEATURES & ~(1ULL << VIRTIO_F_VERSION_1)) :
		    (ow.dev->dev_features | (1ULL << (50 + rn(12)))) &
		    ~(1ULL << VIRTIO_F_RING_PACKED);
		if (!(~ow.dev->dev_features & f) &&
		    (f & (1ULL << VIRTIO_F_VERSION_1)))
			return;
		ret = vd_set_features_raw(ow.dev, f);
		act(1);
		oplog("SET_FEATURES 0x%" PRIx64 " (refused): %s", f,
		      ret ? strerror(-ret) : "ok");
		ow.dev->features = ow.dfeat;
		if (ret != -EINVAL)
			ofail("SET_FEATURES 0x%" PRIx64 ": %s, expected EINVAL", f,
			      ret ? strerror(-ret) : "success");
		return;
	case 3:
		/* DRIVER_OK before (or without) FEATURES_OK */
		if (s & VIRTIO_CONFIG_S_FEATURES_OK)
			dev_reset();
		oplog("SET_STATUS DRIVER_OK without FEATURES_OK");
		st_set(ow.status | VIRTIO_CONFIG_S_ACKNOWLEDGE |
		       VIRTIO_CONFIG_S_DRIVER_OK |
		       (chance(50) ? VIRTIO_CONFIG_S_DRIVER : 0), 0);
		ow.messy = true;
		set_wild();
		return;
	case 4:
		oplog("SET_STATUS FAILED");
		st_set(s | VIRTIO_CONFIG_S_FAILED | (ow.needs_reset ? ST_NR : 0), 0);
		ow.messy = ow.break_ok = true;
		return;
	default:
		oplog("reset, then status 0x%02x at once", ST_RUN);
		dev_reset();
		st_set(ST_RUN, 0);
		ow.messy = true;
		set_wild();
		return;
	}
}

static void op_config(void)
{
	struct {
		struct vhost_vdpa_config c;
		uint8_t buf[64];
	} cfg;
	uint8_t wce = rn(2), got;
	size_t wce_off = offsetof(struct virtio_blk_config, wce);

	memset(&cfg, 0, sizeof(cfg));
	cfg.c.off = ow.dev->config_size + rn(4);
	cfg.c.len = 8;
	oplog("config: out of range read, wce %u", wce);
	act(4);
	count(C_ERRNO);
	if (!ioctl(ow.dev->fd, VHOST_VDPA_GET_CONFIG, &cfg) || errno != EINVAL)
		ofail("GET_CONFIG past the config space: %s, expected EINVAL",
		      strerror(errno));
	cfg.c.off = wce_off;
	cfg.c.len = 1;
	cfg.c.buf[0] = wce;
	if (ioctl(ow.dev->fd, VHOST_VDPA_SET_CONFIG, &cfg))
		ofail("SET_CONFIG wce: %s", strerror(errno));
	cfg.c.buf[0] = 0xff;
	if (ioctl(ow.dev->fd, VHOST_VDPA_GET_CONFIG, &cfg))
		ofail("GET_CONFIG wce: %s", strerror(errno));
	got = cfg.c.buf[0];
	if (vd_read_config(ow.dev))
		ofail("GET_CONFIG: %s", vd_last_error);
	if (le64toh(ow.dev->cfg.capacity) != sh->cap)
		ofail("config: capacity changed to %llu",
		      (unsigned long long)le64toh(ow.dev->cfg.capacity));
	/*
	 * Only wce is writable, once CONFIG_WCE is negotiated, and it turns
	 * on a write-back cache only for a driver that can flush it.
	 */
	if ((ow.dfeat & (1ULL << VIRTIO_BLK_F_CONFIG_WCE)) &&
	    (ow.status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    got != (wce && (ow.dfeat & (1ULL << VIRTIO_BLK_F_FLUSH))))
		ofail("config: wce reads %u after writing %u (FLUSH %snegotiated)",
		      got, wce,
		      ow.dfeat & (1ULL << VIRTIO_BLK_F_FLUSH) ? "" : "not ");
}

static void op_reset(void)
{
	oplog("reset with %u requests in flight%s", req_busy(-1),
	      ow.in_batch ? ", batch open" : "");
	if (chance(30))
		msleep(rn(3));
	dev_reset();
}

/* A ring part unmapped under a running queue: the device must break. */
static void op_starve(void)
{
	int qi = pick_live(), part = rn(3);
	struct vd_vq *vq;
	uint64_t before;

	if (qi < 0 || ow.in_batch)
		return;
	vq = &ow.dev->vqs[qi];
	q_collect(qi, true);
	if (!q_live(qi) || req_busy(qi))
		return;
	before = sum_bytes(&vq->used->idx, 2 + 8 * vq->num, 0);
	oplog("queue %d: %s ring unmapped under it", qi,
	      part == P_DESC ? "descriptor" : part == P_AVAIL ? "available" :
	      "used");
	count(C_STARVE);
	unit_inval(ow.q[qi].u[part]);
	ow.break_ok = true;
	if (!gen_req(qi))
		return;
	kick(vq);
	expect_break("ring unmapped under a running queue");
	if (part != P_USED && sum_bytes(&vq->used->idx, 2 + 8 * vq->num, 0) != before)
		ofail("queue %d completed a request it could not have fetched (its ring was unmapped)",
		      qi);
}

/* A used ring over memory the device may only read. */
/*
 * A used ring over read-only memory: @k 0 its own memory remapped
 * read-only, 1 the read-only memfd or file under its IOVAs (in one batch
 * when @batch, else in two set_map()s, the ring unmapped in between), 2 a
 * queue made ready over a used ring in read-only memory.
 */
static void ro_used(int qi, int k, bool batch)
{
	struct oq *q = &ow.q[qi];
	int ui = q->u[P_USED];
	/* VA mode cannot map the file (opened read-only: not VM_SHARED) */
	int tai = ow.va || (chance(50) && !ow.cas) ? ow.romem_area :
		  ow.rofile_area;
	struct vhost_vring_addr a = { .index = qi };
	struct vd_vq *vq = &ow.dev->vqs[qi];
	bool susp;

	if (!q->setup || !q->ready || !q->home || ow.needs_reset)
		return;
	count(C_RO_USED);
	ow.break_ok = true;
	if (k < 2) {
		oplog("queue %d: %s under the used ring%s", qi,
		      k ? A(tai)->name : "its own memory, read-only,",
		      ow.in_batch ? " (in batch)" : "");
		if (batch && !ow.in_batch)
			batch_begin();
		if (U(ui)->v != U_ABSENT || U(ui)->foreign)
			unit_inval(ui);
		unit_update(ui, k ? tai : U(ui)->area, VHOST_ACCESS_RO);
		if (ow.in_batch && (batch || chance(70)))
			batch_end();
		return;
	}
	/* made ready over a used ring in read-only memory */
	susp = (ow.status & VIRTIO_CONFIG_S_DRIVER_OK) && !ow.suspended;
	if (susp && (!vd_has_backend(ow.dev, VHOST_BACKEND_F_SUSPEND) ||
		     !vd_has_backend(ow.dev, VHOST_BACKEND_F_RESUME)))
		return;
	oplog("queue %d: made ready over a used ring in the %s", qi,
	      A(tai)->name);
	if (susp)
		op_suspend();
	q_enable(qi, false);
	a.desc_user_addr = vq->desc_iova;
	a.avail_user_addr = vq->avail_iova;
	a.used_user_addr = A(tai)->iova + 4 * rn(512);
	if (ioctl(ow.dev->fd, VHOST_SET_VRING_ADDR, &a))
		ofail("SET_VRING_ADDR: %s", strerror(errno));
	act(1);
	q->next_home = false;
	q->next_used_iova = a.used_user_addr;
	q_enable(qi, true);
	if (susp)
		op_resume();
}

static void op_ro_used(void)
{
	ro_used(rn(ow.nq), rn(3), chance(50));
	if (st_get() & ST_NR)
		ow.messy = true;
}

static void op_sleep(void)
{
	unsigned int ms = rn(25);

	oplog("sleep %u ms", ms);
	msleep(ms);
}

/* A child of the owner may not change the device's memory or rings. */
static void op_probe(void)
{
	pid_t pid;
	int st;

	oplog("fork: the child tries owner-only operations");
	act(6);
	count(C_PROBE);
	pid = fork();
	if (pid < 0)
		ofail("fork: %s", strerror(errno));
	if (!pid) {
		struct vhost_vring_state s = { .index = 0 };
		uint8_t status;
		int ret;

		ow.role = "probe child";
		ret = raw_msg(VHOST_IOTLB_UPDATE, IOVA_HOLE, PG,
			      (uintptr_t)A(ow.data_area)->va, VHOST_ACCESS_RW);
		/* EPERM from the handler, EFAULT from write() */
		if (ret != -EFAULT)
			ofail("IOTLB update from a child of the owner: %s, expected EFAULT",
			      ret ? strerror(-ret) : "success");
		ret = raw_msg(VHOST_IOTLB_INVALIDATE, 0, ~0ULL, 0, 0);
		if (ret != -EFAULT)
			ofail("IOTLB invalidate from a child of the owner: %s, expected EFAULT",
			      ret ? strerror(-ret) : "success");
		if (!ioctl(ow.dev->fd, VHOST_SET_VRING_BASE, &s) || errno != EPERM)
			ofail("SET_VRING_BASE from a child of the owner: %s, expected EPERM",
			      strerror(errno));
		if (!ioctl(ow.dev->fd, VHOST_SET_OWNER, NULL) || errno != EBUSY)
			ofail("SET_OWNER from a child of the owner: %s, expected EBUSY",
			      strerror(errno));
		if (vd_get_status(ow.dev, &status))
			ofail("GET_STATUS from a child: %s", vd_last_error);
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		ofail("probe child failed (status 0x%x)", st);
}

/* ---- orphans: the fd outlives its owner --------------------------------- */

struct handoff {
	uint64_t rs, seed;
	uint32_t session, q, num, nfree;
	uint8_t va, healthy, running, suspended, status, pad[3];
	uint64_t features, backend;
	uint64_t ring_va, ring_size, ring_iova;
	uint64_t off_desc, off_avail, off_used, off_slots, off_scratch;
	uint16_t avail_idx, last_used;
	uint64_t sector;
	int scale;
	uint16_t free_idx[1024];
	uint8_t busy[1024 / 8];	/* heads of requests in flight */
};

static void make_handoff(struct handoff *h)
{
	struct vd_vq *vq = &ow.dev->vqs[0];
	struct area *a = A(ow.ring_area[0]);
	struct oq *q = &ow.q[0];
	unsigned int i;

	memset(h, 0, sizeof(*h));
	h->rs = ow.rs;
	h->seed = sh->seed;
	h->session = ow.session;
	h->q = 0;
	h->num = vq->num;
	h->va = ow.va;
	h->status = ow.status | (ow.needs_reset ? ST_NR : 0);
	h->running = (ow.status & VIRTIO_CONFIG_S_DRIVER_OK) && !ow.needs_reset;
	h->suspended = ow.suspended;
	h->healthy = q_live(0) && q->u[P_SCRATCH] >= 0 &&
		     unit_ok(q->u[P_SCRATCH], VHOST_ACCESS_RW);
	for (i = 1; i < ow.nq; i++)
		h->healthy = h->healthy && q_cannot_break(i);
	h->features = ow.dev->features;
	h->backend = ow.dev->backend_acked;
	h->ring_va = (uintptr_t)a->va;
	h->ring_size = a->size;
	h->ring_iova = a->iova;
	if (vq->num) {
		h->off_desc = (uint8_t *)vq->desc - a->va;
		h->off_avail = (uint8_t *)vq->avail - a->va;
		h->off_used = (uint8_t *)vq->used - a->va;
		h->off_slots = vq->slots - a->va;
		h->off_scratch = U(q->u[P_SCRATCH])->iova - a->iova;
		h->avail_idx = vq->avail_idx;
		h->last_used = vq->last_used;
		h->nfree = vq->nfree;
		for (i = 0; i < vq->nfree && i < 1024; i++)
			h->free_idx[i] = vq->free_stack[i];
		for (i = 0; i < vq->num && i < 1024; i++)
			if (vq->inflight[i])
				h->busy[i / 8] |= 1 << (i % 8);
	}
	h->sector = sh->cap - ORPHAN_SECT;
	h->scale = sh->scale;
	model_unknown(h->sector, ORPHAN_SECT);
}

/*
 * One request of the orphan, bounded: -ETIMEDOUT when it did not end, and
 * then it stays in flight, so *iop is never freed.
 */
static int orphan_rw(struct vd_vq *vq, uint32_t type, uint64_t sector,
		     uint8_t *buf, uint32_t len, int ms, struct vd_io **iop)
{
	struct vd_io *io = xcalloc(1, sizeof(*io));

	*iop = io;
	vd_io_init(io, type, sector, buf, len, (len + 4095) / 4096);
	/* the owner's requests may hold most descriptors */
	io->indirect = vq->nfree < 3 &&
		       (vq->dev->features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
	act(1);
	return vd_io_sync(vq, io, ms);
}

static uint64_t orphan_rings_sum(struct vd_vq *vq)
{
	uint64_t h = sum_bytes(vq->used, used_bytes(1ULL << VIRTIO_RING_F_EVENT_IDX,
						    vq->num), 0);
	unsigned int i;

	for (i = 0; i < vq->num; i++)
		h = sum_bytes(vq->slots + i * VD_SLOT_SIZE + VD_SLOT_STATUS, 1, h);
	return h;
}

static uint8_t orphan_status(struct vd_dev *dev)
{
	uint8_t s;

	if (vd_get_status(dev, &s))
		ofail("GET_STATUS: %s", vd_last_error);
	return s;
}

/* VA mode: with the owner's address space gone the device must stop. */
static void orphan_va(struct vd_dev *dev, struct vd_vq *vq,
		      const struct handoff *h, uint8_t *scratch)
{
	uint64_t end = vd_now_ns() + wait_ms(10000) * 1000000ULL, sum;
	unsigned int done = 0, flags_moved = 0;
	uint16_t flags = vq->used->flags;
	struct vd_io *io;

	if (h->suspended && vd_resume(dev))
		ofail("RESUME from the orphan: %s", vd_last_error);
	while (!(orphan_status(dev) & ST_NR)) {
		if (vd_now_ns() > end)
			ofail("VA mode: the owner exited %d ms ago, its address space with it, and the device did not set DEVICE_NEEDS_RESET (%u reads completed, used flags changed %u times)",
			      wait_ms(10000), done, flags_moved);
		if (vq->nfree >= 3 || (vq->nfree && (dev->features &
				       (1ULL << VIRTIO_RING_F_INDIRECT_DESC)))) {
			memset(scratch, VD_POISON, PG);
			if (!orphan_rw(vq, VIRTIO_BLK_T_IN, h->sector, scratch,
				       PG, 100, &io)) {
				if (h->healthy && io->status != VIRTIO_BLK_S_OK)
					ofail("VA orphan: a read answered %s while the owner's address space was still there",
					      vd_status_name(io->status));
				done++;
				free(io);
			}
		}
		if (vq->used->flags != flags) {
			flags = vq->used->flags;
			flags_moved++;
		}
		kick(vq);
		msleep(30);
		op_done();
	}
	count(C_VA_LOST);
	oplog("VA orphan: DEVICE_NEEDS_RESET after %u completions", done);
	msleep(10);
	sum = orphan_rings_sum(vq);
	kick(vq);
	msleep(40);
	kick(vq);
	msleep(40);
	if (orphan_rings_sum(vq) != sum)
		ofail("VA mode: the device wrote a ring after the owner's address space was gone and it set DEVICE_NEEDS_RESET");
}

/* PA mode: the pages stay pinned, the orphan's I/O must work. */
static void orphan_pa(struct vd_vq *vq, const struct handoff *h,
		      uint8_t *scratch)
{
	unsigned int round, n = 1 + rn(4);
	struct vd_io *io;
	uint64_t pat;

	uint64_t end = vd_now_ns() + wait_ms(15000) * 1000000ULL;
	int ret;

	/*
	 * What the owner left in flight completes, once notified: the owner
	 * may have added it and left without a kick, and a device asleep
	 * with notifications on need not look (q_collect() kicks too).
	 */
	if (vq->ninflight)
		kick(vq);
	while (vq->ninflight) {
		if (vd_now_ns() > end)
			ofail("PA orphan: %u requests the owner left did not complete",
			      vq->ninflight);
		vd_used_wait(vq, 20);
		vd_reap(vq, NULL, 0);
	}
	for (round = 0; round < n; round++) {
		uint64_t sector = h->sector + rn(ORPHAN_SECT - 8);

		if (!vq->nfree || (vq->nfree < 3 &&
		    !(vq->dev->features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC))))
			ofail("PA orphan: no descriptor free once every request ended");
		pat = rnd();
		vd_pattern_fill(scratch, PG, pat, 0);
		ret = orphan_rw(vq, VIRTIO_BLK_T_OUT, sector, scratch, PG,
				wait_ms(15000), &io);
		if (ret)
			ofail("PA orphan: write: %s (%s)", strerror(-ret),
			      vd_last_error);
		if (io->status != VIRTIO_BLK_S_OK)
			ofail("PA orphan: write answered %s", vd_status_name(io->status));
		free(io);
		memset(scratch + PG, VD_POISON, PG);
		ret = orphan_rw(vq, VIRTIO_BLK_T_IN, sector, scratch + PG, PG,
				wait_ms(15000), &io);
		if (ret)
			ofail("PA orphan: read: %s (%s)", strerror(-ret),
			      vd_last_error);
		if (io->status != VIRTIO_BLK_S_OK || io->used_len != 1 + PG)
			ofail("PA orphan: read answered %s, used length %u",
			      vd_status_name(io->status), io->used_len);
		free(io);
		if (vd_pattern_check(scratch + PG, PG, pat, 0) >= 0)
			ofail("PA orphan: data read back differ");
		count(C_ORPHAN_IO);
		op_done();
	}
}

/* What a process that holds the fd but does not own the device may do. */
static void orphan_run(struct vd_dev *dev, struct vd_vq *vq,
		       const struct handoff *h, uint8_t *ring)
{
	uint8_t *scratch = ring + h->off_scratch;
	struct vhost_vring_state s = { .index = 0 };
	uint8_t st;
	int ret;

	oplog("orphan: %s mode, status 0x%02x, %s", h->va ? "VA" : "PA",
	      h->status, h->healthy ? "healthy" : "not running");
	ret = raw_msg(VHOST_IOTLB_UPDATE, IOVA_HOLE, PG, (uintptr_t)scratch,
		      VHOST_ACCESS_RW);
	if (ret != -EFAULT)
		ofail("IOTLB update from a process that is not the owner: %s, expected EFAULT (EPERM)",
		      ret ? strerror(-ret) : "success");
	if (!ioctl(dev->fd, VHOST_GET_VRING_BASE, &s) || errno != EPERM)
		ofail("GET_VRING_BASE from a process that is not the owner: %s, expected EPERM",
		      strerror(errno));
	st = orphan_status(dev);
	if ((st & ~ST_NR) != (h->status & ~ST_NR))
		ofail("orphan: status 0x%02x, the owner left 0x%02x", st,
		      h->status);
	op_done();
	if (h->va && h->running && h->num)
		orphan_va(dev, vq, h, scratch);
	else if (!h->va && h->healthy)
		orphan_pa(vq, h, scratch);
	else if (h->num)
		kick(vq);
	/* what else a non-owner may do: suspend, resume, status, reset */
	if (chance(30) && (h->backend & (1ULL << VHOST_BACKEND_F_SUSPEND))) {
		oplog("orphan: suspend, resume");
		if (vd_suspend(dev) || vd_resume(dev))
			ofail("orphan: suspend/resume: %s", vd_last_error);
		op_done();
	}
	if (chance(50)) {
		uint64_t sum;

		oplog("orphan: reset");
		if (vd_set_status(dev, 0))
			ofail("orphan: reset: %s", vd_last_error);
		if (orphan_status(dev))
			ofail("orphan: status 0x%02x after reset", orphan_status(dev));
		if (h->num) {
			sum = orphan_rings_sum(vq);
			msleep(30);
			if (orphan_rings_sum(vq) != sum)
				ofail("orphan: the device wrote a ring after a reset returned");
		}
		if (chance(50) && vd_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE |
						VIRTIO_CONFIG_S_DRIVER_OK))
			ofail("orphan: SET_STATUS: %s", vd_last_error);
		op_done();
	}
	oplog("orphan: close");
	close(dev->fd);
	dev->fd = -1;
	op_done();
}

/* The peer's side of the SCM_RIGHTS hand-off. */
static int recv_fds(int sock, void *buf, size_t len, int *fds, int nfd)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { buf, len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;
	size_t got = 0;
	ssize_t n;

	n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return -1;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int) * nfd))
		return -1;
	memcpy(fds, CMSG_DATA(c), sizeof(int) * nfd);
	got = n;
	while (got < len) {
		n = read(sock, (char *)buf + got, len - got);
		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

static void send_fds(int sock, const void *buf, size_t len, const int *fds,
		     int nfd)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = CMSG_SPACE(sizeof(int) * nfd),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	ssize_t n;
	size_t done;

	memset(cbuf, 0, sizeof(cbuf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nfd);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * nfd);
	n = sendmsg(sock, &m, 0);
	if (n <= 0)
		ofail("sendmsg: %s", strerror(errno));
	for (done = n; done < len; done += n) {
		n = write(sock, (const char *)buf + done, len - done);
		if (n <= 0)
			ofail("write to the peer: %s", strerror(errno));
	}
}

enum { FD_VHOST, FD_RING, FD_KICK, FD_CALL, FD_SHARED, NFD };

int owner_peer_main(int sock)
{
	static struct handoff h;
	struct vd_region *r;
	struct vd_dev *dev;
	struct vd_vq *vq;
	int fds[NFD], i;
	struct stat stt;
	uint8_t *ring;

	if (recv_fds(sock, &h, sizeof(h), fds, NFD))
		return 0;	/* the owner ended otherwise */
	if (fstat(fds[FD_SHARED], &stt))
		return 1;
	sh = mmap(NULL, stt.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		  fds[FD_SHARED], 0);
	if (sh == MAP_FAILED)
		return 1;
	ow.role = "SCM_RIGHTS peer";
	ow.rs = h.rs;
	ow.session = h.session;
	ow.va = h.va;
	verbose = 0;
	signal(SIGALRM, on_alarm);
	watchdog();
	/* Where the owner had it if possible: a device that writes through
	 * a borrowed address space then shows it in the shared memory.
	 */
	ring = mmap((void *)(uintptr_t)h.ring_va, h.ring_size,
		    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE,
		    fds[FD_RING], 0);
	if (ring == MAP_FAILED)
		ring = mmap(NULL, h.ring_size, PROT_READ | PROT_WRITE,
			    MAP_SHARED, fds[FD_RING], 0);
	if (ring == MAP_FAILED)
		ofail("mmap the ring memfd: %s", strerror(errno));
	dev = xcalloc(1, sizeof(*dev));
	ow.dev = dev;
	dev->fd = fds[FD_VHOST];
	snprintf(dev->path, sizeof(dev->path), "fd %d", dev->fd);
	dev->features = h.features;
	dev->backend_acked = h.backend;
	r = xcalloc(1, sizeof(*r));
	r->dev = dev;
	r->memfd = fds[FD_RING];
	r->va = ring;
	r->size = h.ring_size;
	r->iova = h.ring_iova;
	r->mapped = true;
	r->wrapped = true;
	dev->regions[0] = r;
	for (i = 0; i < VD_MAX_VQS; i++) {
		dev->vqs[i].dev = dev;
		dev->vqs[i].index = i;
		dev->vqs[i].kickfd = -1;
		dev->vqs[i].callfd = -1;
	}
	vq = &dev->vqs[h.q];
	if (h.num) {
		vq->num = vq->ring_num = h.num;
		vq->region = r;
		vq->desc = (void *)(ring + h.off_desc);
		vq->avail = (void *)(ring + h.off_avail);
		vq->used = (void *)(ring + h.off_used);
		vq->slots = ring + h.off_slots;
		vq->desc_iova = h.ring_iova + h.off_desc;
		vq->avail_iova = h.ring_iova + h.off_avail;
		vq->used_iova = h.ring_iova + h.off_used;
		vq->kickfd = fds[FD_KICK];
		vq->callfd = fds[FD_CALL];
		vq->avail_idx = h.avail_idx;
		vq->last_used = h.last_used;
		vq->free_stack = xcalloc(h.num, sizeof(uint16_t));
		vq->inflight = xcalloc(h.num, sizeof(void *));
		for (vq->nfree = 0; vq->nfree < h.nfree; vq->nfree++)
			vq->free_stack[vq->nfree] = h.free_idx[vq->nfree];
		/* the owner's requests: their chains come back as they end */
		for (i = 0; i < (int)h.num; i++)
			if (h.busy[i / 8] & (1 << (i % 8))) {
				vq->inflight[i] = xcalloc(1, sizeof(struct vd_io));
				vq->ninflight++;
			}
	}
	orphan_run(dev, vq, &h, ring);
	return 0;
}

/* ---- sessions --------------------------------------------------------- */

static void region(int kind, const char *name, size_t size, uint64_t iova,
		   int *ai)
{
	struct vd_region *r;

	if (vd_region_create(ow.dev, size, &r))
		ofail("region %s: %s", name, vd_last_error);
	*ai = area_new(kind, name, r->va, r->size, iova);
	A(*ai)->r = r;
	/* vd_iova() and vd_vq_setup() use the home; the units say the rest */
	r->iova = iova;
	r->mapped = true;
}

static void session_memory(void)
{
	unsigned int qi, i;
	int fd;

	for (qi = 0; qi < ow.nq; qi++) {
		region(AK_RING, qi ? "ring 1" : "ring 0",
		       vd_vq_mem_size(ow.qsize) + (qi ? 0 : 4 * PG),
		       IOVA_RING + qi * IOVA_RING_STEP, &ow.ring_area[qi]);
		A(ow.ring_area[qi])->q = qi;
	}
	region(AK_DATA, "data", DATA_SIZE, IOVA_DATA, &ow.data_area);
	region(AK_ROMEM, "read-only memfd", RO_SIZE, IOVA_ROMEM, &ow.romem_area);
	vd_pattern_fill(A(ow.romem_area)->va, RO_SIZE, sh->seed ^ 0x524f, 0);
	region(AK_NEVER, "never-mapped memfd", RO_SIZE, IOVA_NEVER,
	       &ow.never_area);
	A(ow.never_area)->r->mapped = false;
	fd = open(sh->ro_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		ofail("open %s: %s", sh->ro_path, strerror(errno));
	ow.rofile_area = area_new(AK_ROFILE, "read-only file",
				  map_fresh(RO_SIZE, PROT_READ, MAP_SHARED, fd),
				  RO_SIZE, IOVA_ROFILE);
	/* opened read-only: not VM_SHARED, so VA mode cannot map it */
	A(ow.rofile_area)->unshared = true;
	close(fd);
	ow.ro_expect = xcalloc(RO_SIZE, 1);
	vd_pattern_fill(ow.ro_expect, RO_SIZE, sh->ro_seed, 0);
	for (i = 0; i < DATA_UNITS; i++)
		unit_new(ow.data_area, i * (DATA_SIZE / DATA_UNITS),
			 DATA_SIZE / DATA_UNITS, VHOST_ACCESS_RW, -1, P_NONE);
	unit_new(ow.romem_area, 0, RO_SIZE, VHOST_ACCESS_RO, -1, P_NONE);
	unit_new(ow.rofile_area, 0, RO_SIZE, VHOST_ACCESS_RO, -1, P_NONE);
	unit_new(ow.never_area, 0, RO_SIZE, 0, -1, P_NONE);
}

static void spawn_peer(void)
{
	int sv[2];
	char fdstr[16];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		ofail("socketpair: %s", strerror(errno));
	ow.peer = fork();
	if (ow.peer < 0)
		ofail("fork: %s", strerror(errno));
	if (!ow.peer) {
		close(sv[0]);
		snprintf(fdstr, sizeof(fdstr), "%d", sv[1]);
		execl(ow.argv0, ow.argv0, "--owner-peer", fdstr, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	ow.peer_sock = sv[0];
}

static int shared_fd = -1;

/* End: hand the fd to a forked child or the peer, and exit. */
static void __attribute__((noreturn)) end_orphan(bool scm)
{
	static struct handoff h;
	struct vd_vq *vq = &ow.dev->vqs[0];
	int p[2];
	pid_t pid;

	if (!ow.q[0].setup && !vq->num)
		recover("before a hand-off");
	make_handoff(&h);
	forget_inflight();
	oplog("%s: hand the fd to %s and exit (%u requests in flight, status 0x%02x%s)",
	      scm ? "SCM_RIGHTS" : "fork", scm ? "the peer" : "a child",
	      req_busy(-1), h.status, ow.in_batch ? ", batch open" : "");
	count(scm ? C_END_SCM : C_END_FORK);
	if (scm) {
		int fds[NFD] = { ow.dev->fd, A(ow.ring_area[0])->r->memfd,
				 vq->kickfd, vq->callfd, shared_fd };

		send_fds(ow.peer_sock, &h, sizeof(h), fds, NFD);
		_exit(0);
	}
	if (pipe(p))
		ofail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		ofail("fork: %s", strerror(errno));
	if (pid) {
		/* the owner goes, its address space with it */
		_exit(0);
	}
	close(p[1]);
	ow.role = "fork orphan";
	/* EOF: the owner's files are closed, so is its address space */
	while (read(p[0], &pid, 1) > 0)
		;
	close(p[0]);
	msleep(rn(20));
	orphan_run(ow.dev, vq, &h, A(ow.ring_area[0])->va);
	_exit(0);
}

/* End: close with whatever is in flight or open, then nothing may change. */
static void end_close(void)
{
	uint64_t sum;

	oplog("close (%u requests in flight, status 0x%02x%s)", req_busy(-1),
	      ow.status, ow.in_batch ? ", batch open" : "");
	if (ow.in_batch)
		count(C_BATCH_LEFT);
	count(C_END_CLOSE);
	close(ow.dev->fd);
	ow.dev->fd = -1;
	/* release() reset the device: what was in flight is over */
	drop_all();
	sum = rings_sum(false);
	msleep(5 + rn(20));
	if (rings_sum(false) != sum)
		ofail("the device wrote a ring after its fd was closed");
	memory_check("after close");
}

/* A session that starts the device without ever mapping anything. */
static void bare_session(bool stay)
{
	struct vd_vq *vq = &ow.dev->vqs[0];
	uint8_t *buf = A(ow.data_area)->va;
	uint64_t sum, used;
	struct vd_io io;

	oplog("bare session: DRIVER_OK without any mapping%s",
	      stay ? " (left so)" : "");
	count(C_BARE);
	st_set(0, 0);
	after_reset();
	handshake();
	q_setup(0);
	st_set(ow.status | VIRTIO_CONFIG_S_DRIVER_OK, 0);
	if (stay)
		return;
	vd_io_init(&io, VIRTIO_BLK_T_IN, 0, buf, 4096, 1);
	if (vd_submit(vq, &io))
		ofail("submit: %s", vd_last_error);
	used = rings_sum(true);
	sum = sum_bytes(buf, DATA_SIZE, 0);
	kick(vq);
	expect_break("a device started without any mapping");
	msleep(20);
	if (rings_sum(true) != used || sum_bytes(buf, DATA_SIZE, 0) != sum)
		ofail("a device started without any mapping wrote the driver's memory");
}

static void session_open(bool persist)
{
	bool has = false;
	uint64_t f;

	if (vd_open(ow.path, &ow.dev))
		ofail("open %s: %s", ow.path, vd_last_error);
	act(3);
	has = vd_has_backend(ow.dev, VHOST_BACKEND_F_IOTLB_PERSIST);
	ow.persist = has && (persist || chance(70));
	if (has && !ow.persist) {
		f = ow.dev->backend_acked & ~(1ULL << VHOST_BACKEND_F_IOTLB_PERSIST);
		if (ioctl(ow.dev->fd, VHOST_SET_BACKEND_FEATURES, &f))
			ofail("SET_BACKEND_FEATURES: %s", strerror(errno));
		ow.dev->backend_acked = f;
	}
	ow.nq = ow.dev->nvqs >= 2 && chance(60) ? 2 : 1;
	ow.status = 0;
	st_get();
}

struct opdef {
	const char *name;
	void (*fn)(void);
	unsigned int w;
};

static const struct opdef ops[] = {
	{ "io", op_io, 300 }, { "reap", op_reap, 120 },
	{ "quiet", op_quiet, 25 }, { "batch", op_batch, 30 },
	{ "unmap", op_unmap, 45 }, { "map", op_map, 50 },
	{ "errno", op_errno, 12 }, { "vol-new", op_vol_new, 15 },
	{ "munmap", op_vol_munmap, 25 }, { "suspend", op_suspend, 25 },
	{ "resume", op_resume, 30 }, { "base", op_base, 15 },
	{ "enable", op_enable, 20 }, { "addr", op_addr, 10 },
	{ "num", op_num, 3 }, { "odd", op_odd, 12 },
	{ "config", op_config, 6 }, { "reset", op_reset, 15 },
	{ "starve", op_starve, 10 }, { "ro-used", op_ro_used, 10 },
	{ "sleep", op_sleep, 8 }, { "probe", op_probe, 3 },
};

#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* Is step @name in the comma-separated list @off? */
static bool op_off(const char *off, const char *name)
{
	size_t n = strlen(name);

	while (off && *off) {
		if (!strncmp(off, name, n) && (off[n] == ',' || !off[n]))
			return true;
		off = strchr(off, ',');
		off = off ? off + 1 : NULL;
	}
	return false;
}

static void run_ops(unsigned int nops, const char *off)
{
	unsigned int i, total = 0, k, w[NOPS];

	for (i = 0; i < NOPS; i++) {
		w[i] = op_off(off, ops[i].name) ? 0 : ops[i].w;
		total += w[i];
	}
	while (nops--) {
		if (ow.messy && chance(60)) {
			recover("after abuse");
		} else {
			k = rn(total);
			for (i = 0; k >= w[i]; i++)
				k -= w[i];
			ops[i].fn();
		}
		st_get();
		if (ow.suspended)
			susp_check("after an operation");
		if (!op_done())
			return;
	}
}

enum { S_NORMAL, S_LAST, S_BARE_LAST };

static void session_init(const struct owner_opts *o, uint32_t session)
{
	setpgid(0, 0);
	ow.path = o->dev;
	ow.argv0 = o->argv0;
	ow.role = "owner";
	ow.session = session;
	ow.rs = sh->seed ^ (0x9e3779b97f4a7c15ULL * (session + 1));
	ow.next_va = VA_BASE;
	ow.next_iova = IOVA_VOL;
	ow.va = sh->va;
	ow.peer = -1;
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	watchdog();
}

static void session_start(const struct owner_opts *o, bool persist)
{
	static const unsigned int qs[] = { 16, 32, 64, 128, 256 };

	ow.qsize = o->qsize ? o->qsize : qs[rn(5)];
	session_open(persist);
	if (ow.qsize > ow.dev->vq_num_max)
		ow.qsize = ow.dev->vq_num_max;
	session_memory();
	count(C_SESSION);
}

static void __attribute__((noreturn)) session_main(const struct owner_opts *o,
						   uint32_t session, int mode)
{
	unsigned int nops, end;

	session_init(o, session);
	nops = 20 + rn(chance(20) ? 1000 : 300);
	end = mode == S_NORMAL ? rn(100) : 0;
	if (end >= 82 && end < 96)
		spawn_peer();
	session_start(o, mode == S_BARE_LAST);
	oplog("session: %s mode, %u queue(s) of %u, IOTLB_PERSIST %s, %u operations, end %u",
	      ow.va ? "VA" : "PA", ow.nq, ow.qsize, ow.persist ? "on" : "off",
	      nops, end);
	if (end >= 96 || mode == S_BARE_LAST) {
		/* the last one leaves it so: for a virtio_vdpa bind next */
		bare_session(mode == S_BARE_LAST);
		if (mode == S_NORMAL)
			end_close();
		_exit(0);
	}
	ow.messy = true;
	recover(session ? "the previous session's abuse" : "first session");
	if (mode == S_NORMAL)
		run_ops(nops, o->no_ops);
	if (mode == S_LAST || run_over() || end < 50) {
		if (mode == S_LAST)
			memory_check("at the end");
		end_close();
		_exit(0);
	}
	if (end < 64) {
		oplog("exit without close (%u requests in flight)", req_busy(-1));
		count(C_END_EXIT);
		forget_inflight();
		_exit(0);
	}
	end_orphan(end >= 82);
}

/* ---- supervisor ------------------------------------------------------- */

static int detect_va(const char *dev)
{
	const char *base = strrchr(dev, '/');
	char pat[256], path[512];
	glob_t g;
	FILE *f;
	int va = 0;

	snprintf(pat, sizeof(pat), "/sys/bus/vdpa/devices/*/%s",
		 base ? base + 1 : dev);
	if (glob(pat, 0, NULL, &g) || !g.gl_pathc)
		return 0;
	snprintf(path, sizeof(path), "%s/../blk_sw/use_va", g.gl_pathv[0]);
	globfree(&g);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &va) != 1)
			va = 0;
		fclose(f);
	}
	return va;
}

static uint64_t mem_available_kb(void)
{
	char line[128];
	uint64_t kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %" SCNu64, &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* Wait for every process of the session (orphans are ours: subreaper). */
static int wait_session(pid_t pgid, uint32_t session)
{
	uint64_t end = vd_now_ns() + 300ULL * sh->scale * 1000000000ULL;
	int st, bad = 0;
	pid_t p;

	for (;;) {
		p = waitpid(-1, &st, WNOHANG);
		if (p < 0 && errno == ECHILD)
			return bad;
		if (p > 0) {
			if ((WIFEXITED(st) && WEXITSTATUS(st)) || WIFSIGNALED(st)) {
				if (!sh->failed)
					fprintf(stderr, "FAIL: process %d of session %u ended with status 0x%x\n",
						p, session, st);
				bad = 1;
			}
			continue;
		}
		if (sh->failed)
			bad = 1;
		if (bad || vd_now_ns() > end) {
			if (!bad) {
				fprintf(stderr, "FAIL: session %u did not end in %d s: '%s' hangs\n",
					session, 300 * sh->scale, sh->op);
				fprintf(stderr, "FAIL: seed %" PRIu64 " after %" PRIu64
					" operations; replay: vdpa_fuzz --owner --seed %" PRIu64
					" --iterations %" PRIu64 "\n", sh->seed, sh->ops,
					sh->seed, sh->ops + 1);
			}
			kill(-pgid, SIGKILL);
			return 1;
		}
		msleep(5);
	}
}

static void summary(uint64_t t0)
{
	unsigned int i;

	printf("vdpa_fuzz: owner seed %" PRIu64 " (%s mode): %.1f s", sh->seed,
	       sh->va ? "VA" : "PA", (vd_now_ns() - t0) / 1e9);
	for (i = 0; i < NCNT; i++)
		printf("%s %s %" PRIu64, i ? "," : ":", cnt_name[i], sh->n[i]);
	printf("\nvdpa_fuzz: %" PRIu64 " operations; to replay (a kernel report too): vdpa_fuzz --owner --seed %" PRIu64
	       " --iterations %" PRIu64 "\n", sh->ops, sh->seed, sh->ops);
}

static int run_case(const struct owner_opts *o);

static int run_session(const struct owner_opts *o, uint32_t session, int mode)
{
	pid_t pid;

	sh->session = session;
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (!pid)
		session_main(o, session, mode);
	setpgid(pid, pid);
	return wait_session(pid, session);
}

int owner_main(const struct owner_opts *o)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	uint64_t t0 = vd_now_ns(), mem0, cap;
	struct vd_dev *probe;
	const char *sc = getenv("SELFTESTS_TIMEOUT_SCALE");
	char tmpl[] = "/tmp/vdpa_fuzz_owner.XXXXXX";
	uint8_t *ro;
	size_t size;
	uint32_t session;
	int fd, bad = 0;

	verbose = o->verbose;
	setrlimit(RLIMIT_MEMLOCK, &rl);
	if (vd_open(o->dev, &probe)) {
		fprintf(stderr, "FAIL: open %s: %s\n", o->dev, vd_last_error);
		return 1;
	}
	cap = vd_capacity(probe);
	vd_close(probe);
	if (cap <= 4 * ORPHAN_SECT || cap > (1ULL << 21)) {
		fprintf(stderr, "FAIL: capacity %" PRIu64 " sectors: the owner mode wants 128 KiB to 1 GiB\n",
			cap);
		return 1;
	}
	size = sizeof(*sh) + cap * 513;
	shared_fd = memfd_create("vdpa_fuzz-shared", 0);
	if (shared_fd < 0 || ftruncate(shared_fd, size))
		return perror("memfd"), 1;
	sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, shared_fd, 0);
	if (sh == MAP_FAILED)
		return perror("mmap"), 1;
	model = (uint8_t *)(sh + 1);
	known = model + cap * 512;
	sh->seed = o->seed;
	sh->cap = cap;
	sh->limit = o->iterations;
	sh->end_ns = o->seconds ? t0 + o->seconds * 1000000000ULL : 0;
	sh->scale = sc && atoi(sc) > 0 ? atoi(sc) : 1;
	sh->va = o->va >= 0 ? o->va : detect_va(o->dev);
	sh->ro_seed = o->seed ^ 0x726f66696c65ULL;
	/* root's file, read-only: the device may read it, never write it */
	fd = mkstemp(tmpl);
	ro = malloc(RO_SIZE);
	if (fd < 0 || !ro)
		return perror("mkstemp"), 1;
	vd_pattern_fill(ro, RO_SIZE, sh->ro_seed, 0);
	if (write(fd, ro, RO_SIZE) != (ssize_t)RO_SIZE || fchmod(fd, 0444) ||
	    fsync(fd))
		return perror("read-only file"), 1;
	close(fd);
	free(ro);
	snprintf(sh->ro_path, sizeof(sh->ro_path), "%s", tmpl);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mem0 = mem_available_kb();
	printf("vdpa_fuzz: owner mode, seed %" PRIu64 ", %s mode, device %s, capacity %" PRIu64
	       " sectors, up to %" PRIu64 " operations%s, MemAvailable %" PRIu64 " kB\n",
	       o->seed, sh->va ? "VA" : "PA", o->dev, cap, sh->limit,
	       o->seconds ? " or the time limit" : "", mem0);
	if (o->cas) {
		bad = run_case(o);
		goto out;
	}
	for (session = 0; !bad; session++) {
		int mode = run_over() ? S_LAST : S_NORMAL;

		bad = run_session(o, session, mode);
		if (mode == S_LAST) {
			/* then leave the device started with no mapping */
			if (!bad && o->end_bare)
				bad = run_session(o, session + 1, S_BARE_LAST);
			break;
		}
		if (verbose || session % 20 == 19)
			printf("vdpa_fuzz: %u sessions, %" PRIu64 " operations, %.0f s\n",
			       session + 1, sh->ops, (vd_now_ns() - t0) / 1e9);
	}
out:
	if (!bad) {
		ow.ro_expect = xcalloc(RO_SIZE, 1);
		vd_pattern_fill(ow.ro_expect, RO_SIZE, sh->ro_seed, 0);
		ow.role = "supervisor";
		rofile_check("at the end");
	}
	unlink(sh->ro_path);
	summary(t0);
	printf("vdpa_fuzz: MemAvailable %" PRIu64 " kB at the start, %" PRIu64 " kB at the end\n",
	       mem0, mem_available_kb());
	if (bad)
		return 1;
	printf("vdpa_fuzz: PASS\n");
	return 0;
}

/* ---- fixed scenarios -------------------------------------------------- */

/*
 * The defects the owner mode was written against, each as a fixed
 * sequence of the same operations:
 *  unmap-batch  anonymous memory invalidated in a batch that never ends,
 *               munmap()ed, read into through the device's stale view,
 *               with canaries faulted in right after (PA mode);
 *  ro-used      the read-only file (PA mode) or memfd under a used ring
 *               (-file), a queue made ready over one (-ready), a used
 *               ring remapped read-only (-remap), or all three;
 *  fork-orphan  the owner forks and exits with the device running, the
 *               child keeps the fd (VA mode: the device must stop);
 *  scm-orphan   the same, the fd handed to an exec'd process;
 *  base-jump    SET_VRING_BASE on a ready, suspended queue without
 *               EVENT_IDX, the driver's indices following: the next
 *               completion must land at the new base (it did not: the
 *               device kept vringh's count of unfolded completions);
 *  reset-map    a reset without IOTLB_PERSIST puts the device back on
 *               the identity map; the next UPDATE outside a batch, on
 *               vhost-vdpa's map path under the owner's mmap_lock,
 *               replaces it, and set_map() waits for an SRCU grace
 *               period there: in VA mode lockdep (debug kernel) reports
 *               mmap_lock -> iotlb_srcu against the worker's
 *               iotlb_srcu -> mmap_lock (a deadlock once a writer
 *               queues on that mmap_lock).  The fuzzer cannot see it;
 *               the kernel log does.
 */
static void __attribute__((noreturn)) case_session(const struct owner_opts *o)
{
	unsigned int round, i;

	session_init(o, 0);
	ow.cas = o->cas;
	session_start(o, true);
	ow.nq = 1;
	if (!strcmp(o->cas, "scm-orphan"))
		spawn_peer();
	ow.messy = true;
	recover(o->cas);
	if (!strcmp(o->cas, "unmap-batch")) {
		for (round = 0; round < 16; round++) {
			op_vol_new();
			if (ow.in_batch)
				batch_end();
			vol_munmap(1);
			collect_all(true);
			canaries_check("unmap-batch");
			op_done();
			if (round % 4 == 3)
				recover("unmap-batch");
		}
	} else if (!strncmp(o->cas, "ro-used", 7)) {
		/* the file (or memfd) first: any write shows in its bytes */
		static const char *const k[] = { "-file", "-ready", "-remap" };

		for (round = 0; round < 6; round++) {
			if (o->cas[7] && strcmp(o->cas + 7, k[round % 3]))
				continue;
			/* nothing in flight: a failed completion would stop it */
			collect_all(true);
			msleep(20);
			ro_used(0, (round + 1) % 3, true);
			if (ow.in_batch)
				batch_end();
			st_get();
			collect_all(false);
			memory_check("ro-used");
			op_done();
			recover("ro-used");
		}
	} else if (!strcmp(o->cas, "base-jump")) {
		struct vd_vq *vq = &ow.dev->vqs[0];

		ow.feat_off = 1ULL << VIRTIO_RING_F_EVENT_IDX;
		recover("base-jump");
		for (round = 0; round < 4; round++) {
			uint16_t b, got;

			for (i = 0; i < 4; i++)
				gen_req_ex(0, VIRTIO_BLK_T_IN, ow.data_area);
			kick(vq);
			collect_all(true);
			op_suspend();
			b = vd_used_idx(vq) + 1000 + round;
			if (vd_set_vring_base(ow.dev, 0, b) ||
			    vd_get_vring_base(ow.dev, 0, &got) || got != b)
				ofail("base-jump: SET/GET_VRING_BASE %u: %s", b,
				      vd_last_error);
			vd_avail_set_idx(vq, b);
			__atomic_store_n(&vq->used->idx, htole16(b),
					 __ATOMIC_RELEASE);
			vq->last_used = b;
			ow.q[0].susp_used = b;
			op_resume();
			gen_req_ex(0, VIRTIO_BLK_T_IN, ow.data_area);
			kick(vq);
			vd_used_wait(vq, wait_ms(15000));
			got = vd_used_idx(vq);
			oplog("base-jump round %u: base %u, used index %u", round,
			      b, got);
			if (got != (uint16_t)(b + 1))
				ofail("after SET_VRING_BASE %u on a ready, suspended queue (EVENT_IDX off) the next completion made the used index %u, expected %u",
				      b, got, (uint16_t)(b + 1));
			collect_all(true);
			op_done();
		}
	} else if (!strcmp(o->cas, "reset-map")) {
		int ui = 0;
		uint64_t f = ow.dev->backend_acked &
			     ~(1ULL << VHOST_BACKEND_F_IOTLB_PERSIST);

		if (ioctl(ow.dev->fd, VHOST_SET_BACKEND_FEATURES, &f))
			ofail("SET_BACKEND_FEATURES: %s", strerror(errno));
		ow.dev->backend_acked = f;
		ow.persist = false;
		while (A(U(ui)->area)->kind != AK_DATA)
			ui++;
		/* VA mode: I/O records iotlb_srcu -> mmap_lock (faults) */
		recover("reset-map");
		unit_inval(ui);
		dev_reset();
		oplog("reset-map: UPDATE outside a batch after a reset without IOTLB_PERSIST");
		if (raw_msg(VHOST_IOTLB_UPDATE, U(ui)->iova, U(ui)->len,
			    U(ui)->uaddr, U(ui)->hperm))
			ofail("UPDATE: %s", strerror(errno));
		U(ui)->v = U_PRESENT;
		U(ui)->perm = U(ui)->hperm;
		after_msg();
		op_done();
		recover("reset-map");
	} else if (!strcmp(o->cas, "fork-orphan") ||
		   !strcmp(o->cas, "scm-orphan")) {
		for (i = 0; i < 4; i++)
			gen_req(0);
		kick(&ow.dev->vqs[0]);
		end_orphan(!strcmp(o->cas, "scm-orphan"));
	} else {
		ofail("unknown case %s (unmap-batch, ro-used[-file|-ready|-remap], fork-orphan, scm-orphan, base-jump, reset-map)",
		      o->cas);
	}
	end_close();
	_exit(0);
}

static int run_case(const struct owner_opts *o)
{
	pid_t pid = fork();

	if (pid < 0)
		return 1;
	if (!pid)
		case_session(o);
	setpgid(pid, pid);
	if (wait_session(pid, 0))
		return 1;
	/* and the device comes back */
	return run_session(o, 1, S_LAST);
}
