// SPDX-License-Identifier: GPL-2.0
/*
 * What the owner of /dev/vhost-vdpa-N can do to the host: kselftest tests
 * that each prove one defect of a vDPA block device (issue 16).  Each
 * asserts the behaviour the device must have, so each fails on a device
 * with the defect and passes once it is fixed.  README.rst ("Owner
 * tests") describes every case; tests/45-blk-sw-owner.sh prepares the
 * devices, backings and files they need and runs them one at a time
 * (-t NAME), several of them as an unprivileged user.
 *
 *   --dev PATH / VDPA_DEV        the device (/dev/vhost-vdpa-N)
 *   --mgmtdev NAME / VDPA_MGMTDEV  "vdpasim_blk" relaxes what only a
 *                                device-level check can give
 *   OWNER_VDPA_NAME   the vdpa device's name (per-queue statistics in sysfs)
 *   OWNER_RO_FILE     a root-owned read-only file of 4096 bytes
 *   OWNER_WORKER_PID, OWNER_WORKER_CPU   the device's worker thread and
 *                     the one CPU it may run on
 *   OWNER_TEST_CPU    the CPU owner_uaf_* pin themselves to (0)
 *   OWNER_UAF_REUSE=0 leave freed pages free (a KASAN kernel reports the
 *                     device's writes into them)
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

/* As in vhost_vdpa_test.c: the harness trips these under -Wextra. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "vdpa_drv.h"

#ifndef MAP_HUGE_1GB
#define MAP_HUGE_1GB		(30U << MAP_HUGE_SHIFT)
#endif

#define PG			4096UL
#define IO_TIMEOUT_MS		10000
#define NEEDS_RESET_MS		5000
#define RING_QSIZE		256
#define DATA_REGION		(4UL << 20)

static char dut_path[256];
static char dut_mgmtdev[64];

static bool dut_is_sim(void)
{
	return !strcmp(dut_mgmtdev, "vdpasim_blk");
}

/* IOVA slot @n: 1 GiB apart, so that tables and 1 GiB aliases fit. */
static uint64_t pick_iova(unsigned int n)
{
	return 0x100000ULL + (uint64_t)n * (1ULL << 30);
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 0) : def;
}

static uint64_t ms_since(uint64_t t0)
{
	return (vd_now_ns() - t0) / 1000000ULL;
}

FIXTURE(owner) {
	struct vd_dev *dev;
	struct vd_region *ring;
	struct vd_region *data;
	struct vd_vq *vq;
	unsigned int qsize;
	/* scratch for raw requests: header, status, indirect table */
	struct virtio_blk_outhdr *hdr;
	uint8_t *status;
	struct vring_desc *tbl;
	unsigned int tbl_max;
};

FIXTURE_SETUP(owner)
{
	if (!dut_path[0])
		SKIP(return, "no /dev/vhost-vdpa-* (set VDPA_DEV)");
}

FIXTURE_TEARDOWN(owner)
{
	vd_close(self->dev);
}

/*
 * Open the device with a ring region for @nq queues of @qsize entries and
 * a data region of @data_size bytes, both mapped read-write; negotiate
 * @want.  False (and SKIP) if it is not a block device.
 */
static bool owner_open(struct __test_metadata *_metadata,
		       FIXTURE_DATA(owner) *self, uint64_t want,
		       unsigned int nq, unsigned int qsize, size_t data_size)
{
	struct vd_dev *dev;
	int ret;

	ret = vd_open(dut_path, &self->dev);
	if (ret == -ENOENT)
		SKIP(return false, "%s: %s", dut_path, vd_last_error);
	ASSERT_EQ(0, ret) TH_LOG("open: %s", vd_last_error);
	dev = self->dev;
	if (dev->device_id != VIRTIO_ID_BLOCK)
		SKIP(return false, "%s is not virtio-blk", dut_path);
	self->qsize = dev->vq_num_max < qsize ? dev->vq_num_max : qsize;
	ASSERT_EQ(0, vd_region_create(dev, nq * vd_vq_mem_size(self->qsize),
				      &self->ring));
	ASSERT_EQ(0, vd_region_map(self->ring, pick_iova(0), VHOST_ACCESS_RW))
		TH_LOG("map ring region: %s", vd_last_error);
	ASSERT_EQ(0, vd_region_create(dev, data_size, &self->data));
	ASSERT_EQ(0, vd_region_map(self->data, pick_iova(1), VHOST_ACCESS_RW))
		TH_LOG("map data region: %s (ulimit -l?)", vd_last_error);
	ASSERT_EQ(0, vd_negotiate(dev, want)) TH_LOG("%s", vd_last_error);
	self->tbl_max = 512;
	self->hdr = vd_alloc(self->data, sizeof(*self->hdr), 16);
	self->status = vd_alloc(self->data, 1, 1);
	self->tbl = vd_alloc(self->data, self->tbl_max * 16, 16);
	ASSERT_NE(NULL, self->hdr);
	ASSERT_NE(NULL, self->status);
	ASSERT_NE(NULL, self->tbl);
	return true;
}

/* Set up @nq queues and set DRIVER_OK. */
static void owner_run(struct __test_metadata *_metadata,
		      FIXTURE_DATA(owner) *self, unsigned int nq)
{
	unsigned int q;

	for (q = 0; q < nq; q++) {
		ASSERT_EQ(0, vd_vq_setup(self->dev, q, self->qsize, self->ring))
			TH_LOG("vq %u: %s", q, vd_last_error);
		vd_vq_set_interrupts(&self->dev->vqs[q], true);
	}
	ASSERT_EQ(0, vd_driver_ok(self->dev)) TH_LOG("%s", vd_last_error);
	self->vq = &self->dev->vqs[0];
}

static bool owner_start(struct __test_metadata *_metadata,
			FIXTURE_DATA(owner) *self, uint64_t want,
			size_t data_size)
{
	if (!owner_open(_metadata, self, want, 1, RING_QSIZE, data_size))
		return false;
	owner_run(_metadata, self, 1);
	return true;
}

static uint32_t cfg_seg_max(const struct vd_dev *dev)
{
	return le32toh(dev->cfg.seg_max);
}

static uint32_t cfg_size_max(const struct vd_dev *dev)
{
	return le32toh(dev->cfg.size_max);
}

static void tbl_set(struct vring_desc *t, unsigned int i, uint64_t addr,
		    uint32_t len, bool write, bool last)
{
	t[i].addr = htole64(addr);
	t[i].len = htole32(len);
	t[i].flags = htole16((write ? VRING_DESC_F_WRITE : 0) |
			     (last ? 0 : VRING_DESC_F_NEXT));
	t[i].next = htole16(last ? 0 : i + 1);
}

/* Expose an indirect table of @n descriptors as one head; the head. */
static int push_indirect(struct vd_vq *vq, struct vring_desc *t, size_t n)
{
	int head = vd_desc_alloc(vq);

	if (head < 0)
		return head;
	vd_desc_set(vq, head, vd_iova(vq->dev, t), n * 16,
		    VRING_DESC_F_INDIRECT, 0);
	vd_avail_push(vq, head);
	return head;
}

enum outcome { DONE, NEEDS_RESET, NO_ANSWER };

static const char *outcome_name(enum outcome o)
{
	return o == DONE ? "completed" : o == NEEDS_RESET ?
		"DEVICE_NEEDS_RESET" : "no answer";
}

/*
 * The clock of a wait for the device.  Under TCG the whole lab VM now and
 * then stands still for seconds (its host does not run it): every clock
 * in it jumps when it runs again, and a timeout on the wall clock would
 * blame the device for time in which nothing ran, the device included.
 * So a step of a waiting loop (one short sleep) counts for at most
 * STEP_MAX_MS, and what a wait lost that way is kept for the log.  A
 * device that takes the waiting task's CPU away still fails: the case's
 * own time limit is on the wall clock.
 */
#define STEP_MAX_MS		1000

static struct {
	uint64_t t0, last;	/* ns */
	uint64_t ran_ms;	/* the time that counts */
	uint64_t stood_ms;	/* what steps of more than STEP_MAX_MS lost */
	uint64_t longest_ms;	/* the longest step */
} wclock;

static void wclock_start(void)
{
	wclock.t0 = wclock.last = vd_now_ns();
	wclock.ran_ms = wclock.stood_ms = wclock.longest_ms = 0;
}

/* Account for the step that just ended; true once @timeout_ms ran. */
static bool wclock_expired(int timeout_ms)
{
	uint64_t now = vd_now_ns(), step = (now - wclock.last) / 1000000ULL;

	wclock.last = now;
	if (step > wclock.longest_ms)
		wclock.longest_ms = step;
	if (step > STEP_MAX_MS) {
		wclock.stood_ms += step - STEP_MAX_MS;
		step = STEP_MAX_MS;
	}
	wclock.ran_ms += step;
	return wclock.ran_ms >= (uint64_t)timeout_ms;
}

/* Wait for the next used element, or for the device to need a reset. */
static enum outcome wait_used(struct vd_dev *dev, struct vd_vq *vq,
			      int timeout_ms, uint32_t *id, uint32_t *len)
{
	uint8_t st;

	wclock_start();
	for (;;) {
		if (vd_used_pop(vq, id, len))
			return DONE;
		if (!vd_get_status(dev, &st) &&
		    (st & VIRTIO_CONFIG_S_NEEDS_RESET))
			return NEEDS_RESET;
		if (wclock_expired(timeout_ms))
			return NO_ANSWER;
		vd_used_wait(vq, 20);
	}
}

/*
 * The same without asking the device for its status: a vhost-vdpa ioctl
 * waits for any IOTLB message another thread has in progress.
 */
static enum outcome wait_used_quiet(struct vd_vq *vq, int timeout_ms,
				    uint32_t *id, uint32_t *len)
{
	wclock_start();
	while (!vd_used_pop(vq, id, len)) {
		if (wclock_expired(timeout_ms))
			return NO_ANSWER;
		vd_used_wait(vq, 20);
	}
	return DONE;
}

/* A per-queue statistic of the vdpa device in OWNER_VDPA_NAME; -1 if none. */
static long vq_stat(unsigned int q, const char *stat)
{
	const char *name = getenv("OWNER_VDPA_NAME");
	char path[PATH_MAX], buf[32];
	long v = -1;
	int fd;
	ssize_t n;

	if (!name || !*name)
		return -1;
	snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s/blk_sw_q%u/%s",
		 name, q, stat);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = 0;
		v = strtol(buf, NULL, 10);
	}
	close(fd);
	return v;
}

/*
 * A request got no answer in time: log what the queue's statistics and
 * its worker's state show, then wait up to LATE_MS more and say whether
 * the answer came, so that a run's log tells a late answer from a lost
 * one.  The statistics need OWNER_VDPA_NAME, the worker's stack root.
 */
#define LATE_MS			20000

static void report_no_answer(struct __test_metadata *_metadata,
			     struct vd_vq *vq)
{
	static const char * const stats[] = {
		"inflight", "requests", "notifies", "polls", "interrupts",
		"slots", "worker_cpu",
	};
	char line[512], path[64], stack[1024] = "";
	long pid = vq_stat(vq->index, "worker_pid");
	uint32_t id, len;
	unsigned int i;
	size_t off;
	ssize_t n;
	int fd;

	off = snprintf(line, sizeof(line), "queue %u: worker_pid=%ld",
		       vq->index, pid);
	for (i = 0; i < ARRAY_SIZE(stats) && off < sizeof(line); i++)
		off += snprintf(line + off, sizeof(line) - off, " %s=%ld",
				stats[i], vq_stat(vq->index, stats[i]));
	TH_LOG("no answer after %llu ms (%llu ms on the wall clock; longest step %llu ms, %llu ms lost in steps over %d ms): %s",
	       (unsigned long long)wclock.ran_ms,
	       (unsigned long long)ms_since(wclock.t0),
	       (unsigned long long)wclock.longest_ms,
	       (unsigned long long)wclock.stood_ms, STEP_MAX_MS, line);
	if (pid > 0) {
		snprintf(path, sizeof(path), "/proc/%ld/stack", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			n = read(fd, stack, sizeof(stack) - 1);
			stack[n > 0 ? n : 0] = 0;
			close(fd);
			TH_LOG("worker %ld's stack:\n%s", pid, stack);
		}
	}
	if (wait_used_quiet(vq, LATE_MS, &id, &len) == DONE) {
		TH_LOG("late answer (head %u) %llu ms after the timeout (%llu on the wall clock)",
		       id, (unsigned long long)wclock.ran_ms,
		       (unsigned long long)ms_since(wclock.t0));
		vd_desc_free(vq, id);
	} else {
		TH_LOG("still no answer %d ms after the timeout", LATE_MS);
	}
}

/*
 * One request in the scratch indirect table: header, one data descriptor
 * per @iov element, status.  Returns the outcome; *st is the status byte.
 */
static enum outcome ind_io(struct __test_metadata *_metadata,
			   FIXTURE_DATA(owner) *self, struct vd_vq *vq,
			   uint32_t type, uint64_t sector,
			   const struct iovec *iov, unsigned int n, uint8_t *st)
{
	bool in = type == VIRTIO_BLK_T_IN;
	uint32_t id, len;
	enum outcome o;
	unsigned int i;
	int head;

	*st = 0xff;
	if (n + 2 > self->tbl_max) {
		EXPECT_LE(n + 2, self->tbl_max);
		return NO_ANSWER;
	}
	self->hdr->type = htole32(type);
	self->hdr->ioprio = 0;
	self->hdr->sector = htole64(sector);
	*self->status = 0xff;
	tbl_set(self->tbl, 0, vd_iova(self->dev, self->hdr), 16, false, false);
	for (i = 0; i < n; i++)
		tbl_set(self->tbl, 1 + i, vd_iova(self->dev, iov[i].iov_base),
			iov[i].iov_len, in, false);
	tbl_set(self->tbl, n + 1, vd_iova(self->dev, self->status), 1, true,
		true);
	head = push_indirect(vq, self->tbl, n + 2);
	if (head < 0) {
		EXPECT_LE(0, head);
		return NO_ANSWER;
	}
	EXPECT_EQ(0, vd_kick(vq));
	o = wait_used(self->dev, vq, IO_TIMEOUT_MS, &id, &len);
	if (o == NO_ANSWER)
		report_no_answer(_metadata, vq);
	if (o == DONE) {
		EXPECT_EQ(head, id);
		*st = __atomic_load_n(self->status, __ATOMIC_ACQUIRE);
		vd_desc_free(vq, head);
	}
	return o;
}

/* @n segments of @seg bytes each, back to back from @buf. */
static void iov_split(struct iovec *iov, uint8_t *buf, unsigned int n,
		      uint32_t seg)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		iov[i].iov_base = buf + (size_t)i * seg;
		iov[i].iov_len = seg;
	}
}

/* Reset, start again and check a write reads back: the device works. */
static void verify_usable(struct __test_metadata *_metadata,
			  FIXTURE_DATA(owner) *self, uint64_t want,
			  uint64_t sector, uint64_t seed)
{
	uint8_t *buf = vd_alloc(self->data, 8192, 512);
	struct vd_io io;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, vd_negotiate(self->dev, want)) TH_LOG("%s", vd_last_error);
	owner_run(_metadata, self, 1);
	vd_pattern_fill(buf, 8192, seed, 0);
	vd_io_init(&io, VIRTIO_BLK_T_OUT, sector, buf, 8192, 2);
	ASSERT_EQ(0, vd_io_sync(self->vq, &io, IO_TIMEOUT_MS))
		TH_LOG("write after reset: %s", vd_last_error);
	ASSERT_EQ(VIRTIO_BLK_S_OK, io.status);
	memset(buf, 0, 8192);
	vd_io_init(&io, VIRTIO_BLK_T_IN, sector, buf, 8192, 3);
	ASSERT_EQ(0, vd_io_sync(self->vq, &io, IO_TIMEOUT_MS))
		TH_LOG("read after reset: %s", vd_last_error);
	ASSERT_EQ(VIRTIO_BLK_S_OK, io.status);
	ASSERT_EQ(-1, vd_pattern_check(buf, 8192, seed, 0));
}

/* ---- the kernel log and the machine ----------------------------------- */

static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* Log the records since kmsg_open() that report a kernel problem. */
static int kmsg_problems(struct __test_metadata *_metadata, int fd)
{
	static const char *const bad[] = {
		"WARNING:", "BUG:", "Call Trace", "page allocation failure",
		"KASAN", "Oops", "general protection",
	};
	char rec[8192];
	int found = 0;

	while (fd >= 0) {
		ssize_t len = read(fd, rec, sizeof(rec) - 1);
		const char *msg;
		unsigned int i;

		if (len < 0 && errno == EPIPE)
			continue;	/* overwritten records: go on */
		if (len <= 0)
			break;
		rec[len] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		rec[strcspn(rec, "\n")] = 0;
		for (i = 0; i < ARRAY_SIZE(bad); i++) {
			if (strstr(msg, bad[i])) {
				TH_LOG("kernel: %s", msg);
				found++;
				break;
			}
		}
	}
	return found;
}

static long meminfo_kb(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/*
 * Wait until queue 0 has at least @n requests in flight; false after
 * @timeout_ms.  Without OWNER_VDPA_NAME, just waits a little.
 */
static bool wait_inflight(long n, int timeout_ms)
{
	uint64_t t0 = vd_now_ns();

	if (vq_stat(0, "inflight") < 0) {
		usleep(500000);
		return true;
	}
	while (vq_stat(0, "inflight") < n) {
		if (ms_since(t0) > (uint64_t)timeout_ms)
			return false;
		usleep(5000);
	}
	return true;
}

/* State letter of a task ("R", "S", "D"...) from /proc; 0 if unknown. */
static char task_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static int pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* ---- 1: use after free of unmapped pages (PA mode) -------------------- */

/*
 * The backing holds this at the start of every sector (the shell writes
 * it); fresh memory is filled with UAF_MARK.
 */
#define UAF_MAGIC	"VBS-OWNER-UAF:"
#define UAF_FRESH	(64UL << 20)
#define UAF_MARK	0x5a
#define UAF_STATUS_OFF	0x123

struct uaf_inval {
	struct vd_dev *dev;
	uint64_t iova, size;
	atomic_int tid;
	atomic_bool done;
	int ret;
	uint64_t ns;
};

static void *uaf_inval_fn(void *arg)
{
	struct uaf_inval *u = arg;
	uint64_t t0 = vd_now_ns();

	atomic_store(&u->tid, (int)syscall(SYS_gettid));
	u->ret = vd_iotlb_invalidate(u->dev, u->iova, u->size);
	u->ns = vd_now_ns() - t0;
	atomic_store(&u->done, true);
	return NULL;
}

/* Wait until @u's INVALIDATE sleeps in the kernel or returned. */
static void uaf_wait_blocked(struct uaf_inval *u)
{
	uint64_t t0 = vd_now_ns();

	while (!atomic_load(&u->done) && ms_since(t0) < 5000) {
		int tid = atomic_load(&u->tid);

		if (tid && task_state(getpid(), tid) == 'D')
			return;
		usleep(1000);
	}
}

struct uaf_scan {
	size_t changed, magic_pages, first_off;
	uint8_t first_byte;
	size_t status_like;
};

static void uaf_scan(const uint8_t *mem, size_t len, struct uaf_scan *s)
{
	size_t off, i;

	memset(s, 0, sizeof(*s));
	s->first_off = ~(size_t)0;
	for (off = 0; off < len; off += PG) {
		size_t n = 0;

		for (i = 0; i < PG; i++) {
			if (mem[off + i] == UAF_MARK)
				continue;
			if (s->first_off == ~(size_t)0) {
				s->first_off = off + i;
				s->first_byte = mem[off + i];
			}
			n++;
		}
		s->changed += n;
		if (n && !memcmp(mem + off, UAF_MAGIC, strlen(UAF_MAGIC)))
			s->magic_pages++;
		if (n == 1 && mem[off + UAF_STATUS_OFF] != UAF_MARK)
			s->status_like++;
	}
}

static void uaf(struct __test_metadata *_metadata, FIXTURE_DATA(owner) *self,
		bool batch)
{
	bool reuse = env_long("OWNER_UAF_REUSE", 1) != 0;
	int cpu = env_long("OWNER_TEST_CPU", 0);
	struct uaf_inval u = { 0 };
	struct virtio_blk_outhdr *hdr;
	uint64_t t0, t_inval, t_fill, t_done, buf_iova = pick_iova(3);
	struct uaf_scan scan = { 0 };
	size_t blen, off;
	unsigned int segs, i;
	uint8_t *buf, *fresh;
	struct vring_desc *t;
	pthread_t thr;
	enum outcome o;
	uint32_t id, len;
	int head;

	ASSERT_EQ(0, pin_cpu(cpu)) TH_LOG("cannot pin to CPU %d", cpu);
	if (!owner_start(_metadata, self, VD_DEFAULT_FEATURES, 1UL << 20))
		return;
	ASSERT_TRUE(vd_has_feature(self->dev, VIRTIO_RING_F_INDIRECT_DESC));
	ASSERT_TRUE(vd_has_feature(self->dev, VIRTIO_BLK_F_SEG_MAX));
	segs = cfg_seg_max(self->dev) < 254 ? cfg_seg_max(self->dev) : 254;
	/* One page per segment, then the page holding the status byte. */
	blen = (segs + 1) * PG;
	buf = mmap(NULL, blen, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	madvise(buf, blen, MADV_NOHUGEPAGE);
	memset(buf, 0x11, blen);
	/*
	 * Fresh memory with its page tables built beforehand: only data
	 * pages get allocated when it is touched again, from the head of
	 * this CPU's free lists, where the unpinned pages went.
	 */
	fresh = mmap(NULL, UAF_FRESH, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, fresh);
	madvise(fresh, UAF_FRESH, MADV_NOHUGEPAGE);
	for (off = 0; off < UAF_FRESH; off += PG)
		fresh[off] = 1;
	ASSERT_EQ(0, madvise(fresh, UAF_FRESH, MADV_DONTNEED));

	ASSERT_EQ(0, vd_iotlb_update(self->dev, buf_iova, blen, (uintptr_t)buf,
				     VHOST_ACCESS_RW))
		TH_LOG("map the anonymous buffer: %s", vd_last_error);
	hdr = self->hdr;
	t = self->tbl;
	hdr->type = htole32(VIRTIO_BLK_T_IN);
	hdr->ioprio = 0;
	hdr->sector = 0;
	tbl_set(t, 0, vd_iova(self->dev, hdr), 16, false, false);
	for (i = 0; i < segs; i++)
		tbl_set(t, 1 + i, buf_iova + i * PG, PG, true, false);
	tbl_set(t, segs + 1, buf_iova + segs * PG + UAF_STATUS_OFF, 1, true,
		true);
	head = push_indirect(self->vq, t, segs + 2);
	ASSERT_LE(0, head);
	ASSERT_EQ(0, vd_kick(self->vq));
	t0 = vd_now_ns();
	ASSERT_TRUE(wait_inflight(1, 5000))
		TH_LOG("the read never started");
	usleep(100000);
	ASSERT_EQ(self->vq->last_used, vd_used_idx(self->vq))
		TH_LOG("the read completed before the unmap (%llu ms): the backing is not slow, nothing to test",
		       (unsigned long long)ms_since(t0));

	/* The owner gives the memory back while the device reads into it. */
	ASSERT_EQ(0, munmap(buf, blen));
	u.dev = self->dev;
	u.iova = buf_iova;
	u.size = blen;
	if (batch) {
		ASSERT_EQ(0, vd_iotlb_batch(self->dev, true, true));
		uaf_inval_fn(&u);
		ASSERT_EQ(0, u.ret) TH_LOG("%s", vd_last_error);
	} else {
		ASSERT_EQ(0, pthread_create(&thr, NULL, uaf_inval_fn, &u));
		uaf_wait_blocked(&u);
	}
	t_inval = ms_since(t0);
	if (reuse) {
		for (off = 0; off < UAF_FRESH; off += PG)
			memset(fresh + off, UAF_MARK, PG);
	}
	t_fill = ms_since(t0);

	o = wait_used_quiet(self->vq, 20000, &id, &len);
	t_done = ms_since(t0);
	if (!batch) {
		uint64_t tw = vd_now_ns();

		while (!atomic_load(&u.done) && ms_since(tw) < 20000)
			usleep(10000);
		ASSERT_TRUE(atomic_load(&u.done))
			TH_LOG("INVALIDATE still blocked 20 s after the read ended");
		pthread_join(thr, NULL);
		EXPECT_EQ(0, u.ret) TH_LOG("INVALIDATE: %s", vd_last_error);
	}
	usleep(200000);
	TH_LOG("read of %u pages: INVALIDATE%s sent at %llu ms, in the kernel for %llu ms; fresh memory filled by %llu ms; request %s at %llu ms (used len %u)",
	       segs, batch ? " (in an open batch)" : "",
	       (unsigned long long)t_inval,
	       (unsigned long long)(u.ns / 1000000),
	       (unsigned long long)t_fill, outcome_name(o),
	       (unsigned long long)t_done, o == DONE ? len : 0);
	EXPECT_NE(NO_ANSWER, o) TH_LOG("the request never completed");
	if (reuse) {
		uaf_scan(fresh, UAF_FRESH, &scan);
		EXPECT_EQ(0, scan.changed)
			TH_LOG("use after free: the device wrote into pages it no longer held, now our fresh memory: %zu bytes changed in it, %zu pages hold the backing's data, %zu a lone byte at the status byte's offset; first at +0x%zx (0x%02x)",
			       scan.changed, scan.magic_pages,
			       scan.status_like, scan.first_off,
			       scan.first_byte);
	} else {
		TH_LOG("OWNER_UAF_REUSE=0: the freed pages stay free; the kernel log (KASAN) decides");
	}
	/* Closing resets the device and drops the rest, open batch or not. */
	t0 = vd_now_ns();
	vd_close(self->dev);
	self->dev = NULL;
	TH_LOG("closed in %llu ms", (unsigned long long)ms_since(t0));
	munmap(fresh, UAF_FRESH);
}

/*
 * The owner unmaps (munmap + IOTLB INVALIDATE) a buffer a read is still
 * filling; the pages must not be reused before the read is done.
 */
TEST_F_TIMEOUT(owner, owner_uaf_unmap, 120)
{
	uaf(_metadata, self, false);
}

/* The same, the INVALIDATE inside a batch that is never ended. */
TEST_F_TIMEOUT(owner, owner_uaf_batch, 120)
{
	uaf(_metadata, self, true);
}

/* ---- 2: used ring writes through read-only mappings (PA mode) --------- */

enum ro_case { RO_AT_READY, RO_REMAP, RO_AVAIL_EVENT };

/* Replace the page at @iova with the read-only @fmap. */
static int ro_map(struct vd_dev *dev, uint64_t iova, void *fmap)
{
	int ret = vd_iotlb_batch(dev, true, false);

	if (ret)
		return ret;
	ret = vd_iotlb_invalidate(dev, iova, PG);
	if (!ret)
		ret = vd_iotlb_update(dev, iova, PG, (uintptr_t)fmap,
				      VHOST_ACCESS_RO);
	if (vd_iotlb_batch(dev, false, false) && !ret)
		ret = -EIO;
	return ret;
}

static void ro_used(struct __test_metadata *_metadata,
		    FIXTURE_DATA(owner) *self, enum ro_case c)
{
	const char *path = getenv("OWNER_RO_FILE");
	uint64_t want = VD_DEFAULT_FEATURES, w_iova = pick_iova(2), t0;
	uint8_t before[PG], after[PG], st = 0;
	size_t used_off, ro_off;
	unsigned int i, ndiff = 0, first = 0;
	struct vd_region *w;
	struct vd_io io;
	struct stat sb;
	uint8_t *fmap, *buf;
	int fd, fd2;

	if (!path || !*path)
		SKIP(return, "OWNER_RO_FILE not set (a root-owned read-only file)");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", path, strerror(errno));
	ASSERT_EQ(0, fstat(fd, &sb));
	ASSERT_EQ(PG, pread(fd, before, PG, 0));
	fmap = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, fmap);
	TH_LOG("owner uid %u; %s: uid %u mode %o, mapped read-only",
	       geteuid(), path, sb.st_uid, sb.st_mode & 07777);
	if (c == RO_AVAIL_EVENT)
		want |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (!owner_open(_metadata, self, want, 1, RING_QSIZE, 1UL << 16))
		return;
	if (c == RO_AVAIL_EVENT &&
	    !vd_has_feature(self->dev, VIRTIO_RING_F_EVENT_IDX))
		SKIP(return, "VIRTIO_RING_F_EVENT_IDX not offered");
	ASSERT_EQ(0, vd_vq_setup(self->dev, 0, self->qsize, self->ring))
		TH_LOG("%s", vd_last_error);
	self->vq = &self->dev->vqs[0];

	/*
	 * The used ring in three pages of its own, mapped one by one so that
	 * one of them can be replaced alone.  (a), (b): the ring starts 4
	 * bytes before the end of the first page, which holds flags and idx
	 * (the elements are writable, so a device that writes them goes on
	 * to write idx); (c): avail_event, after the last element, starts
	 * the second page.
	 */
	ASSERT_EQ(0, vd_region_create(self->dev, 3 * PG, &w));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, vd_iotlb_update(self->dev, w_iova + i * PG, PG,
					     (uintptr_t)w->va + i * PG,
					     VHOST_ACCESS_RW))
			TH_LOG("%s", vd_last_error);
	w->iova = w_iova;
	w->perm = VHOST_ACCESS_RW;
	w->mapped = true;
	if (c == RO_AVAIL_EVENT) {
		used_off = PG - (4 + 8 * self->qsize);
		ro_off = PG;
	} else {
		used_off = PG - 4;
		ro_off = 0;
	}
	if (c != RO_REMAP)
		ASSERT_EQ(0, ro_map(self->dev, w_iova + ro_off, fmap))
			TH_LOG("map the file read-only: %s", vd_last_error);
	ASSERT_EQ(0, vd_vq_set_used(self->vq, w->va + used_off))
		TH_LOG("%s", vd_last_error);
	vd_vq_set_interrupts(self->vq, true);
	ASSERT_EQ(0, vd_driver_ok(self->dev));
	buf = vd_alloc(self->data, PG, 512);
	ASSERT_NE(NULL, buf);
	if (c == RO_REMAP) {
		vd_pattern_fill(buf, PG, 61, 0);
		vd_io_init(&io, VIRTIO_BLK_T_OUT, 8, buf, PG, 1);
		ASSERT_EQ(0, vd_io_sync(self->vq, &io, IO_TIMEOUT_MS))
			TH_LOG("%s", vd_last_error);
		ASSERT_EQ(VIRTIO_BLK_S_OK, io.status);
		memset(buf, 0, PG);
		vd_io_init(&io, VIRTIO_BLK_T_IN, 8, buf, PG, 1);
		ASSERT_EQ(0, vd_io_sync(self->vq, &io, IO_TIMEOUT_MS));
		ASSERT_EQ(VIRTIO_BLK_S_OK, io.status);
		ASSERT_EQ(-1, vd_pattern_check(buf, PG, 61, 0));
		/* The queue runs: its used ring becomes the file's page. */
		ASSERT_EQ(0, ro_map(self->dev, w_iova + ro_off, fmap))
			TH_LOG("remap: %s", vd_last_error);
	}
	vd_io_init(&io, VIRTIO_BLK_T_IN, 8, buf, PG, 1);
	ASSERT_EQ(0, vd_submit(self->vq, &io));
	ASSERT_EQ(0, vd_kick(self->vq));
	/* vdpa_sim_blk never needs a reset: until the file changes, 2 s. */
	t0 = vd_now_ns();
	while (ms_since(t0) < (dut_is_sim() ? 2000 : NEEDS_RESET_MS)) {
		ASSERT_EQ(0, vd_get_status(self->dev, &st));
		if (st & VIRTIO_CONFIG_S_NEEDS_RESET)
			break;
		if (dut_is_sim() && memcmp(fmap, before, PG))
			break;
		usleep(20000);
	}
	usleep(300000);

	fd2 = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(PG, read(fd2, after, PG));
	close(fd2);
	for (i = 0; i < PG; i++) {
		if (before[i] == after[i])
			continue;
		if (!ndiff++)
			first = i;
		if (ndiff <= 8)
			TH_LOG("file offset %u: 0x%02x -> 0x%02x", i,
			       before[i], after[i]);
	}
	TH_LOG("device status 0x%02x after %llu ms; used ring at IOVA 0x%llx, read-only page at 0x%llx",
	       st, (unsigned long long)ms_since(t0),
	       (unsigned long long)(w_iova + used_off),
	       (unsigned long long)(w_iova + ro_off));
	EXPECT_EQ(0, ndiff)
		TH_LOG("read-only file modified: %u bytes, first at offset %u (the device wrote the used ring through a VHOST_ACCESS_RO mapping)",
		       ndiff, first);
	if (!dut_is_sim())
		EXPECT_TRUE(st & VIRTIO_CONFIG_S_NEEDS_RESET)
			TH_LOG("no DEVICE_NEEDS_RESET within %d ms of a used ring it may not write",
			       NEEDS_RESET_MS);
	vd_close(self->dev);
	self->dev = NULL;
	munmap(fmap, PG);
	close(fd);
}

/* (a) The page holding used->flags and used->idx read-only from the start. */
TEST_F_TIMEOUT(owner, owner_ro_used, 60)
{
	ro_used(_metadata, self, RO_AT_READY);
}

/* (b) The same page writable while the queue works, then remapped RO. */
TEST_F_TIMEOUT(owner, owner_ro_used_remap, 60)
{
	ro_used(_metadata, self, RO_REMAP);
}

/* (c) EVENT_IDX: only the page holding avail_event read-only. */
TEST_F_TIMEOUT(owner, owner_ro_avail_event, 60)
{
	ro_used(_metadata, self, RO_AVAIL_EVENT);
}

/* ---- 2b: the used ring unmapped while its queue goes idle (PA mode) --- */

#define GAP_ROUNDS	5
#define GAP_MS		500
#define GAP_KICK_MS	3000

/*
 * Would a driver that honours the device's notification suppression kick
 * after moving avail->idx to @next (one request)?  Without EVENT_IDX while
 * VRING_USED_F_NO_NOTIFY is clear; with it when avail_event (after the
 * used ring's last element) asks for that request: vring_need_event().
 */
static bool gap_kick_wanted(const struct vd_vq *vq, bool event_idx,
			    uint16_t next)
{
	const volatile uint16_t *p;
	uint16_t ev;

	if (!event_idx) {
		p = (const volatile uint16_t *)&vq->used->flags;
		return !(le16toh(*p) & VRING_USED_F_NO_NOTIFY);
	}
	p = (const volatile uint16_t *)&vq->used->ring[vq->num];
	ev = le16toh(*p);
	return (uint16_t)(next - ev - 1) < (uint16_t)1;
}

/*
 * A queue that goes idle turns its notifications on: it clears
 * VRING_USED_F_NO_NOTIFY in used->flags, or with EVENT_IDX writes
 * avail_event.  If its owner unmapped the used ring just then (QEMU does
 * between a region_del and a region_add), that write fails; once the ring
 * is mapped again it must not stay undone, or a driver that honours it
 * never kicks again.  Each round: requests, so that the device polls with
 * notifications off (the device is made with poll_idle_us=200000
 * poll_adaptive=0), the used ring's page unmapped for longer than that
 * window, then mapped again.  The notifications must then be on, and one
 * more request, kicked only if they ask for it, must complete; the device
 * must not need a reset.  A round counts as exercised when they were
 * still off as the page came back: the device's write had failed.
 */
static void used_gap(struct __test_metadata *_metadata,
		     FIXTURE_DATA(owner) *self, bool event_idx)
{
	uint64_t want = VD_DEFAULT_FEATURES, w_iova = pick_iova(2), t0;
	unsigned int round, i, stuck = 0, worst = 0, waited;
	struct vd_region *w;
	struct vd_io io;
	uint8_t *buf, st;
	bool kick, on;

	if (event_idx)
		want |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (!owner_open(_metadata, self, want, 1, RING_QSIZE, 1UL << 16))
		return;
	if (event_idx && !vd_has_feature(self->dev, VIRTIO_RING_F_EVENT_IDX))
		SKIP(return, "VIRTIO_RING_F_EVENT_IDX not offered");
	ASSERT_EQ(0, vd_vq_setup(self->dev, 0, self->qsize, self->ring))
		TH_LOG("%s", vd_last_error);
	self->vq = &self->dev->vqs[0];
	/* The used ring, avail_event included, on a page of its own. */
	ASSERT_EQ(0, vd_region_create(self->dev, PG, &w));
	ASSERT_EQ(0, vd_region_map(w, w_iova, VHOST_ACCESS_RW))
		TH_LOG("%s", vd_last_error);
	ASSERT_EQ(0, vd_vq_set_used(self->vq, w->va))
		TH_LOG("%s", vd_last_error);
	vd_vq_set_interrupts(self->vq, true);
	ASSERT_EQ(0, vd_driver_ok(self->dev));
	buf = vd_alloc(self->data, PG, 512);
	ASSERT_NE(NULL, buf);

	for (round = 0; round < GAP_ROUNDS; round++) {
		for (i = 0; i < 16; i++) {
			vd_io_init(&io, VIRTIO_BLK_T_IN, i * 8, buf, PG, 1);
			ASSERT_EQ(0, vd_io_sync(self->vq, &io, IO_TIMEOUT_MS))
				TH_LOG("round %u: %s", round, vd_last_error);
			ASSERT_EQ(VIRTIO_BLK_S_OK, io.status);
		}
		ASSERT_EQ(0, vd_iotlb_invalidate(self->dev, w_iova, PG))
			TH_LOG("unmap: %s", vd_last_error);
		usleep(GAP_MS * 1000);
		/* The device gave up polling 300 ms ago: its write failed. */
		stuck += !gap_kick_wanted(self->vq, event_idx,
					  self->vq->avail_idx + 1);
		ASSERT_EQ(0, vd_iotlb_update(self->dev, w_iova, PG,
					     (uintptr_t)w->va, VHOST_ACCESS_RW))
			TH_LOG("map again: %s", vd_last_error);
		/*
		 * The remap wakes the device, whose next pass writes them on
		 * (within some 15 ms here); under TCG its thread may run
		 * late, so wait up to GAP_KICK_MS.  Off for good is the stall.
		 */
		t0 = vd_now_ns();
		while (!(on = gap_kick_wanted(self->vq, event_idx,
					      self->vq->avail_idx + 1)) &&
		       ms_since(t0) < GAP_KICK_MS)
			usleep(10 * 1000);
		waited = ms_since(t0);
		if (waited > worst)
			worst = waited;
		EXPECT_TRUE(on)
			TH_LOG("round %u: notifications still off %d ms after the used ring came back",
			       round, GAP_KICK_MS);
		ASSERT_EQ(0, vd_get_status(self->dev, &st));
		ASSERT_EQ(0, st & VIRTIO_CONFIG_S_NEEDS_RESET)
			TH_LOG("round %u: the device needs a reset after an unmap it may see",
			       round);

		/* A driver that honours the suppression. */
		vd_io_init(&io, VIRTIO_BLK_T_IN, 0, buf, PG, 1);
		ASSERT_EQ(0, vd_submit(self->vq, &io));
		kick = gap_kick_wanted(self->vq, event_idx, self->vq->avail_idx);
		if (kick)
			ASSERT_EQ(0, vd_kick(self->vq));
		t0 = vd_now_ns();
		while (!io.done && ms_since(t0) < GAP_KICK_MS)
			if (!vd_used_wait(self->vq, 100))
				vd_reap(self->vq, NULL, 0);
		ASSERT_TRUE(io.done)
			TH_LOG("round %u: a request made after the gap did not complete in %d ms",
			       round, GAP_KICK_MS);
		ASSERT_EQ(VIRTIO_BLK_S_OK, io.status);
	}
	TH_LOG("notifications were still off as the ring came back in %u of %u rounds; on again at most %u ms after it",
	       stuck, GAP_ROUNDS, worst);
	/* Else no write of the device met the gap: the case did not run. */
	ASSERT_LT(0, stuck)
		TH_LOG("the device never polled across the gap: was it made with poll_idle_us=200000 poll_adaptive=0?");
}

TEST_F_TIMEOUT(owner, owner_used_gap, 120)
{
	used_gap(_metadata, self, false);
}

TEST_F_TIMEOUT(owner, owner_used_gap_event_idx, 120)
{
	used_gap(_metadata, self, true);
}

/* ---- 3: VA mode, the rings of a process that is gone ------------------ */

#define VA_REQS		8
#define VA_MARK		0x3c

struct va_report {
	int stage;		/* 1 owner failed, 2 victim done */
	int changed;
	size_t off;
	uint8_t was, now, status;
	size_t nchanged;	/* bytes of the used ring changed */
	uint16_t flags, idx;	/* what they read as, when changed */
	long inflight;
	unsigned long checks;
	char note[320];
};

static void va_send(int wfd, struct va_report *r)
{
	if (write(wfd, r, sizeof(*r)) != sizeof(*r))
		_exit(3);
}

/* First byte of [p, p + len) that is not VA_MARK, or -1. */
static long va_first_change(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != VA_MARK)
			return i;
	return -1;
}

/*
 * The victim: the owner's child, keeping the fd.  Anonymous memory where
 * the owner's rings were, on the worker's CPU, yielding to it.
 */
static void va_victim(int wfd, struct vd_dev *dev, struct vd_vq *vq,
		      int cpu)
{
	struct vd_region *r = vq->region;
	size_t used_off = (uint8_t *)vq->used - r->va;
	size_t used_len = 6 + 8 * vq->num;
	struct va_report rep = { .stage = 2 };
	uint64_t t0 = vd_now_ns(), idle_at = 0, last_stat = 0;
	long at;
	void *p;

	p = mmap(r->va, r->size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p != r->va) {
		snprintf(rep.note, sizeof(rep.note), "victim mmap: %s",
			 strerror(errno));
		va_send(wfd, &rep);
		_exit(1);
	}
	memset(r->va, VA_MARK, r->size);
	if (pin_cpu(cpu))
		snprintf(rep.note, sizeof(rep.note), "cannot pin to CPU %d",
			 cpu);
	while (ms_since(t0) < 15000) {
		at = va_first_change(r->va + used_off, used_len);
		if (at >= 0) {
			rep.changed = 1;
			rep.off = used_off + at;
			break;
		}
		rep.checks++;
		sched_yield();
		if (ms_since(last_stat) < 20)
			continue;
		last_stat = vd_now_ns();
		rep.inflight = vq_stat(vq->index, "inflight");
		if (rep.inflight <= 0 && !idle_at)
			idle_at = vd_now_ns();
		/* All reaped: a second more for the worker to go idle. */
		if (idle_at && ms_since(idle_at) > 1000)
			break;
	}
	if (!rep.changed) {
		at = va_first_change(r->va, r->size);
		if (at >= 0) {
			rep.changed = 1;
			rep.off = at;
		}
	}
	if (rep.changed) {
		size_t i;

		/* Let the worker finish what it was writing, then look. */
		usleep(300000);
		rep.was = VA_MARK;
		rep.now = r->va[rep.off];
		for (i = 0; i < used_len; i++)
			rep.nchanged += r->va[used_off + i] != VA_MARK;
		rep.flags = le16toh(vq->used->flags);
		rep.idx = le16toh(vq->used->idx);
	}
	vd_get_status(dev, &rep.status);
	va_send(wfd, &rep);
	_exit(0);
}

/* The owner: requests in flight, a victim child, then exit. */
static void va_owner(int wfd)
{
	struct va_report rep = { .stage = 1 };
	int cpu = env_long("OWNER_WORKER_CPU", -1);
	pid_t worker = env_long("OWNER_WORKER_PID", 0);
	struct vd_io ios[VA_REQS], io;
	struct vd_region *ring, *data;
	struct vd_dev *dev;
	uint8_t *buf;
	uint64_t t0;
	unsigned int i;
	pid_t v;

	if (vd_open(dut_path, &dev) ||
	    vd_region_create(dev, vd_vq_mem_size(64), &ring) ||
	    vd_region_map(ring, pick_iova(0), VHOST_ACCESS_RW) ||
	    vd_region_create(dev, 1UL << 18, &data) ||
	    vd_region_map(data, pick_iova(1), VHOST_ACCESS_RW) ||
	    vd_negotiate(dev, VD_DEFAULT_FEATURES) ||
	    vd_vq_setup(dev, 0, 64, ring) || vd_driver_ok(dev)) {
		snprintf(rep.note, sizeof(rep.note), "owner setup: %s",
			 vd_last_error);
		goto fail;
	}
	buf = vd_alloc(data, (VA_REQS + 1) * PG, PG);
	vd_pattern_fill(buf, PG, 3, 0);
	vd_io_init(&io, VIRTIO_BLK_T_OUT, 4096, buf, PG, 1);
	if (vd_io_sync(&dev->vqs[0], &io, IO_TIMEOUT_MS) ||
	    io.status != VIRTIO_BLK_S_OK) {
		snprintf(rep.note, sizeof(rep.note),
			 "owner: a write failed (status %s): %s",
			 vd_status_name(io.status), vd_last_error);
		goto fail;
	}
	for (i = 0; i < VA_REQS; i++) {
		vd_io_init(&ios[i], VIRTIO_BLK_T_IN, 8 * i,
			   buf + (i + 1) * PG, PG, 1);
		if (vd_submit(&dev->vqs[0], &ios[i]))
			goto fail;
	}
	vd_kick(&dev->vqs[0]);
	if (!wait_inflight(VA_REQS, 5000)) {
		snprintf(rep.note, sizeof(rep.note),
			 "owner: %ld of %d reads in flight",
			 vq_stat(0, "inflight"), VA_REQS);
		goto fail;
	}
	/* Asleep, the worker has dropped this process's address space. */
	t0 = vd_now_ns();
	while (worker > 0 && task_state(worker, 0) != 'S' &&
	       ms_since(t0) < 3000)
		usleep(2000);
	if (vd_used_idx(&dev->vqs[0]) != 1) {
		snprintf(rep.note, sizeof(rep.note),
			 "owner: reads completed before the owner left: the backing is not slow");
		goto fail;
	}
	v = fork();
	if (v < 0)
		goto fail;
	if (!v)
		va_victim(wfd, dev, &dev->vqs[0], cpu < 0 ? 0 : cpu);
	/* Leave without closing anything: the victim keeps the fd. */
	_exit(0);
fail:
	va_send(wfd, &rep);
	_exit(1);
}

/*
 * VA mode: the owner exits with reads in flight while a child keeps the
 * fd; no process may get the owner's ring writes.
 */
TEST_F_TIMEOUT(owner, owner_va_exit, 90)
{
	struct va_report rep = { 0 };
	struct pollfd pfd;
	uint64_t t0;
	int p[2], status;
	pid_t o, w;
	ssize_t n;

	if (env_long("OWNER_WORKER_CPU", -1) < 0)
		SKIP(return, "OWNER_WORKER_CPU not set (the CPU of the device's worker)");
	ASSERT_EQ(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	o = fork();
	ASSERT_LE(0, o);
	if (!o) {
		close(p[0]);
		va_owner(p[1]);
	}
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	ASSERT_EQ(1, poll(&pfd, 1, 60000)) TH_LOG("no report from owner or victim");
	n = read(p[0], &rep, sizeof(rep));
	ASSERT_EQ(sizeof(rep), n) TH_LOG("short report: %zd", n);
	/* Reap the owner and the victim (ours as subreaper); bounded. */
	t0 = vd_now_ns();
	while (ms_since(t0) < 20000) {
		w = waitpid(-1, &status, WNOHANG);
		if (w < 0)
			break;
		if (!w)
			usleep(20000);
	}
	ASSERT_EQ(2, rep.stage) TH_LOG("%s", rep.note);
	if (rep.note[0])
		TH_LOG("%s", rep.note);
	TH_LOG("victim: %lu checks, %ld requests in flight at the end, device status 0x%02x",
	       rep.checks, rep.inflight, rep.status);
	EXPECT_EQ(0, rep.changed)
		TH_LOG("victim memory changed at ring offset 0x%zx: 0x%02x -> 0x%02x, %zu bytes of where the used ring was (flags 0x%04x idx 0x%04x): the device wrote the gone owner's used ring into another process",
		       rep.off, rep.was, rep.now, rep.nchanged, rep.flags,
		       rep.idx);
}

/* ---- 4: indirect tables ---------------------------------------------- */

/*
 * (a) An indirect table of 262,145 descriptors (4 MiB + 16 bytes), all
 * device-readable: the header, then data.  next is 16 bits, so the chain
 * cycles through the first 65,536 entries; vringh walks as many
 * descriptors as the table's length allows, and grows its readable kiov
 * to hold them: past 262,144 entries, an order-11 allocation.
 */
#define HUGE_TBL	262145

TEST_F_TIMEOUT(owner, owner_indirect_huge, 180)
{
	struct vd_region *tr;
	struct vring_desc *t;
	uint8_t *data, st = 0xff;
	uint32_t id, len;
	enum outcome o;
	uint64_t t0;
	size_t i;
	int kfd, head, bad;

	if (!owner_start(_metadata, self, VD_DEFAULT_FEATURES, 1UL << 20))
		return;
	ASSERT_TRUE(vd_has_feature(self->dev, VIRTIO_RING_F_INDIRECT_DESC));
	ASSERT_EQ(0, vd_region_create(self->dev, HUGE_TBL * 16, &tr));
	ASSERT_EQ(0, vd_region_map(tr, pick_iova(4), VHOST_ACCESS_RO))
		TH_LOG("map the table: %s (ulimit -l?)", vd_last_error);
	t = (struct vring_desc *)tr->va;
	data = vd_alloc(self->data, 512, 512);
	ASSERT_NE(NULL, data);
	self->hdr->type = htole32(VIRTIO_BLK_T_OUT);
	self->hdr->ioprio = 0;
	self->hdr->sector = 0;
	*self->status = 0xff;
	tbl_set(t, 0, vd_iova(self->dev, self->hdr), 16, false, false);
	for (i = 1; i < HUGE_TBL; i++)
		tbl_set(t, i, vd_iova(self->dev, data), 512, false, false);

	kfd = kmsg_open();
	if (kfd < 0)
		TH_LOG("/dev/kmsg: %s; only the suite's dmesg scan will see a warning",
		       strerror(errno));
	head = push_indirect(self->vq, t, HUGE_TBL);
	ASSERT_LE(0, head);
	ASSERT_EQ(0, vd_kick(self->vq));
	t0 = vd_now_ns();
	o = wait_used(self->dev, self->vq, 120000, &id, &len);
	if (o == DONE)
		st = *self->status;
	usleep(200000);
	bad = kmsg_problems(_metadata, kfd);
	TH_LOG("table of %u descriptors (%u bytes): %s after %llu ms, status %s",
	       HUGE_TBL, HUGE_TBL * 16, outcome_name(o),
	       (unsigned long long)ms_since(t0), vd_status_name(st));
	EXPECT_EQ(0, bad) TH_LOG("the kernel warned while the device walked the table");
	EXPECT_NE(NO_ANSWER, o) TH_LOG("neither a completion nor DEVICE_NEEDS_RESET");
	if (o == DONE)
		EXPECT_EQ(VIRTIO_BLK_S_IOERR, st);
	if (kfd >= 0)
		close(kfd);
	verify_usable(_metadata, self, VD_DEFAULT_FEATURES, 2048, 71);
}

/*
 * (b) On each of 16 queues a read of MEM_DESCS descriptors: the header, two
 * indirect tables of MEM_TBL writable data descriptors each (vringh
 * continues a chain after an indirect table that has NEXT), the status.
 * Too many segments, so IOERR; what does the device keep allocated for
 * them once they completed?
 */
#define MEM_TBL			49999
#define MEM_DESCS		(2 + 2 * MEM_TBL)
#define MEM_QUEUES		16
#define MEM_KEEP_MAX_KB		(8 * 1024)

/* Header, @t twice, status: one head on @vq. */
static int push_two_tables(struct vd_vq *vq, FIXTURE_DATA(owner) *self,
			   struct vring_desc *t, size_t n)
{
	int d[4], i;

	for (i = 0; i < 4; i++) {
		d[i] = vd_desc_alloc(vq);
		if (d[i] < 0)
			return d[i];
	}
	vd_desc_set(vq, d[0], vd_iova(self->dev, self->hdr), 16,
		    VRING_DESC_F_NEXT, d[1]);
	vd_desc_set(vq, d[1], vd_iova(self->dev, t), n * 16,
		    VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, d[2]);
	vd_desc_set(vq, d[2], vd_iova(self->dev, t), n * 16,
		    VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, d[3]);
	vd_desc_set(vq, d[3], vd_iova(self->dev, self->status), 1,
		    VRING_DESC_F_WRITE, 0);
	vd_avail_push(vq, d[0]);
	return d[0];
}

TEST_F_TIMEOUT(owner, owner_indirect_memory, 240)
{
	long free0, avail0, free1, avail1, free2;
	unsigned int nq, q, ioerr = 0, resets = 0;
	struct vd_region *tr;
	struct vring_desc *t;
	uint8_t *data;
	uint32_t id, len;
	enum outcome o;
	size_t i;
	uint64_t t0;

	if (!owner_open(_metadata, self, VD_DEFAULT_FEATURES, MEM_QUEUES, 64,
			1UL << 20))
		return;
	nq = vd_has_feature(self->dev, VIRTIO_BLK_F_MQ) ?
		le16toh(self->dev->cfg.num_queues) : 1;
	if (nq < MEM_QUEUES || self->dev->nvqs < MEM_QUEUES)
		SKIP(return, "needs %u queues, the device has %u", MEM_QUEUES,
		     nq);
	ASSERT_TRUE(vd_has_feature(self->dev, VIRTIO_RING_F_INDIRECT_DESC));
	owner_run(_metadata, self, MEM_QUEUES);
	ASSERT_EQ(0, vd_region_create(self->dev, MEM_TBL * 16, &tr));
	ASSERT_EQ(0, vd_region_map(tr, pick_iova(4), VHOST_ACCESS_RO))
		TH_LOG("%s", vd_last_error);
	t = (struct vring_desc *)tr->va;
	data = vd_alloc(self->data, 512, 512);
	ASSERT_NE(NULL, data);
	self->hdr->type = htole32(VIRTIO_BLK_T_IN);
	self->hdr->ioprio = 0;
	self->hdr->sector = 0;
	*self->status = 0xff;
	for (i = 0; i < MEM_TBL; i++)
		tbl_set(t, i, vd_iova(self->dev, data), 512, true,
			i == MEM_TBL - 1);

	usleep(500000);
	free0 = meminfo_kb("MemFree");
	avail0 = meminfo_kb("MemAvailable");
	t0 = vd_now_ns();
	for (q = 0; q < MEM_QUEUES; q++) {
		ASSERT_LE(0, push_two_tables(&self->dev->vqs[q], self, t,
					     MEM_TBL));
		ASSERT_EQ(0, vd_kick(&self->dev->vqs[q]));
	}
	for (q = 0; q < MEM_QUEUES; q++) {
		o = wait_used(self->dev, &self->dev->vqs[q], 120000, &id, &len);
		ASSERT_NE(NO_ANSWER, o) TH_LOG("queue %u: no answer", q);
		if (o == NEEDS_RESET) {
			resets++;
			break;
		}
		ioerr += *self->status == VIRTIO_BLK_S_IOERR;
	}
	usleep(500000);
	free1 = meminfo_kb("MemFree");
	avail1 = meminfo_kb("MemAvailable");
	ASSERT_EQ(0, vd_reset(self->dev));
	usleep(500000);
	free2 = meminfo_kb("MemFree");
	TH_LOG("%u reads of %u descriptors in %llu ms: %u IOERR%s; MemFree %ld -> %ld kB (%+ld), MemAvailable %ld -> %ld kB (%+ld); after a reset MemFree %ld kB",
	       MEM_QUEUES, MEM_DESCS, (unsigned long long)ms_since(t0), ioerr,
	       resets ? ", then DEVICE_NEEDS_RESET" : "", free0, free1,
	       free1 - free0, avail0, avail1, avail1 - avail0, free2);
	if (!resets)
		EXPECT_EQ(MEM_QUEUES, ioerr);
	EXPECT_LT(free0 - free1, MEM_KEEP_MAX_KB)
		TH_LOG("the device keeps %ld kB for %u finished requests (limit %d kB)",
		       free0 - free1, MEM_QUEUES, MEM_KEEP_MAX_KB);
}

/* (c) seg_max + 1 data segments: IOERR; exactly seg_max: data verified. */
TEST_F_TIMEOUT(owner, owner_indirect_seg_max, 60)
{
	static const uint32_t types[] = { VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_IN };
	struct iovec iov[512];
	unsigned int seg_max, k;
	uint8_t *buf, st;
	enum outcome o;

	if (!owner_start(_metadata, self, VD_DEFAULT_FEATURES, 1UL << 20))
		return;
	ASSERT_TRUE(vd_has_feature(self->dev, VIRTIO_RING_F_INDIRECT_DESC));
	ASSERT_TRUE(vd_has_feature(self->dev, VIRTIO_BLK_F_SEG_MAX));
	seg_max = cfg_seg_max(self->dev);
	ASSERT_LT(seg_max + 3, self->tbl_max);
	buf = vd_alloc(self->data, (seg_max + 1) * 512, 512);
	ASSERT_NE(NULL, buf);
	iov_split(iov, buf, seg_max + 1, 512);
	for (k = 0; k < ARRAY_SIZE(types); k++) {
		o = ind_io(_metadata, self, self->vq, types[k], 8192, iov,
			   seg_max + 1, &st);
		EXPECT_EQ(DONE, o);
		EXPECT_EQ(VIRTIO_BLK_S_IOERR, st)
			TH_LOG("%s with %u data segments (seg_max %u): status %s",
			       types[k] == VIRTIO_BLK_T_IN ? "read" : "write",
			       seg_max + 1, seg_max, vd_status_name(st));
	}
	vd_pattern_fill(buf, seg_max * 512, 91, 0);
	o = ind_io(_metadata, self, self->vq, VIRTIO_BLK_T_OUT, 16384, iov,
		   seg_max, &st);
	ASSERT_EQ(DONE, o);
	ASSERT_EQ(VIRTIO_BLK_S_OK, st) TH_LOG("write of seg_max segments");
	memset(buf, 0, seg_max * 512);
	o = ind_io(_metadata, self, self->vq, VIRTIO_BLK_T_IN, 16384, iov,
		   seg_max, &st);
	ASSERT_EQ(DONE, o);
	ASSERT_EQ(VIRTIO_BLK_S_OK, st) TH_LOG("read of seg_max segments");
	ASSERT_EQ(-1, vd_pattern_check(buf, seg_max * 512, 91, 0));
}

/* ---- 6: the size of one request -------------------------------------- */

/*
 * Within seg_max segments, more data than seg_max * size_max: IOERR.
 * Exactly seg_max * size_max: written and read back.
 */
TEST_F_TIMEOUT(owner, owner_huge_request, 120)
{
	static const uint32_t types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT };
	struct iovec iov[512];
	uint32_t seg_max, size_max;
	uint64_t limit;
	unsigned int k;
	uint8_t *big, st;
	enum outcome o;

	if (!owner_start(_metadata, self, VD_DEFAULT_FEATURES, 6UL << 20))
		return;
	ASSERT_TRUE(vd_has_feature(self->dev, VIRTIO_RING_F_INDIRECT_DESC));
	ASSERT_TRUE(vd_has_feature(self->dev, VIRTIO_BLK_F_SEG_MAX));
	ASSERT_TRUE(vd_has_feature(self->dev, VIRTIO_BLK_F_SIZE_MAX));
	seg_max = cfg_seg_max(self->dev);
	size_max = cfg_size_max(self->dev);
	limit = (uint64_t)seg_max * size_max;
	ASSERT_LT(seg_max + 2, self->tbl_max);
	TH_LOG("seg_max %u size_max %u: at most %llu bytes per request",
	       seg_max, size_max, (unsigned long long)limit);
	big = vd_alloc(self->data, 2 * limit, PG);
	ASSERT_NE(NULL, big);
	ASSERT_LE(4 * limit / 512, vd_capacity(self->dev));

	/* seg_max segments of 2 * size_max: twice the limit. */
	iov_split(iov, big, seg_max, 2 * size_max);
	for (k = 0; k < ARRAY_SIZE(types); k++) {
		o = ind_io(_metadata, self, self->vq, types[k], 0, iov, seg_max,
			   &st);
		EXPECT_EQ(DONE, o);
		EXPECT_EQ(VIRTIO_BLK_S_IOERR, st)
			TH_LOG("%s of %llu bytes in %u segments: status %s",
			       types[k] == VIRTIO_BLK_T_IN ? "read" : "write",
			       (unsigned long long)(2 * limit), seg_max,
			       vd_status_name(st));
	}
	/* One sector past the limit. */
	iov_split(iov, big, seg_max, size_max);
	iov[seg_max - 1].iov_len += 512;
	o = ind_io(_metadata, self, self->vq, VIRTIO_BLK_T_IN, 0, iov, seg_max,
		   &st);
	EXPECT_EQ(DONE, o);
	EXPECT_EQ(VIRTIO_BLK_S_IOERR, st)
		TH_LOG("read of %llu bytes (the limit + 512): status %s",
		       (unsigned long long)(limit + 512), vd_status_name(st));
	/* Exactly the limit. */
	iov[seg_max - 1].iov_len -= 512;
	vd_pattern_fill(big, limit, 101, 0);
	o = ind_io(_metadata, self, self->vq, VIRTIO_BLK_T_OUT, 2 * limit / 512,
		   iov, seg_max, &st);
	ASSERT_EQ(DONE, o);
	ASSERT_EQ(VIRTIO_BLK_S_OK, st) TH_LOG("write of exactly the limit");
	memset(big, 0, limit);
	o = ind_io(_metadata, self, self->vq, VIRTIO_BLK_T_IN, 2 * limit / 512,
		   iov, seg_max, &st);
	ASSERT_EQ(DONE, o);
	ASSERT_EQ(VIRTIO_BLK_S_OK, st) TH_LOG("read of exactly the limit");
	ASSERT_EQ(-1, vd_pattern_check(big, limit, 101, 0));
}

/*
 * (b) One 1 GiB page mapped at five IOVAs, read into as 5 GiB in five
 * descriptors.
 */
#define ALIAS_N		5
#define GIB		(1UL << 30)

TEST_F_TIMEOUT(owner, owner_huge_alias, 300)
{
	uint64_t base = pick_iova(8), t0;
	uint8_t st = 0xff, *page;
	struct vring_desc *t;
	uint32_t id, len = 0;
	enum outcome o;
	unsigned int i;
	int kfd, head;

	page = mmap(NULL, GIB, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB,
		    -1, 0);
	if (page == MAP_FAILED)
		SKIP(return, "no 1 GiB huge page (%s)", strerror(errno));
	page[0] = 1;
	if (!owner_start(_metadata, self, VD_DEFAULT_FEATURES, 1UL << 20))
		return;
	ASSERT_TRUE(vd_has_feature(self->dev, VIRTIO_RING_F_INDIRECT_DESC));
	if (vd_capacity(self->dev) < ALIAS_N * (GIB / 512))
		SKIP(return, "capacity %llu sectors: less than %u GiB",
		     (unsigned long long)vd_capacity(self->dev), ALIAS_N);
	t0 = vd_now_ns();
	for (i = 0; i < ALIAS_N; i++)
		ASSERT_EQ(0, vd_iotlb_update(self->dev, base + i * GIB, GIB,
					     (uintptr_t)page, VHOST_ACCESS_RW))
			TH_LOG("alias %u: %s (ulimit -l?)", i, vd_last_error);
	TH_LOG("1 GiB page mapped at %u IOVAs in %llu ms", ALIAS_N,
	       (unsigned long long)ms_since(t0));
	t = self->tbl;
	self->hdr->type = htole32(VIRTIO_BLK_T_IN);
	self->hdr->ioprio = 0;
	self->hdr->sector = 0;
	*self->status = 0xff;
	tbl_set(t, 0, vd_iova(self->dev, self->hdr), 16, false, false);
	for (i = 0; i < ALIAS_N; i++)
		tbl_set(t, 1 + i, base + i * GIB, GIB, true, false);
	tbl_set(t, ALIAS_N + 1, vd_iova(self->dev, self->status), 1, true,
		true);
	kfd = kmsg_open();
	head = push_indirect(self->vq, t, ALIAS_N + 2);
	ASSERT_LE(0, head);
	ASSERT_EQ(0, vd_kick(self->vq));
	t0 = vd_now_ns();
	o = wait_used(self->dev, self->vq, 200000, &id, &len);
	if (o == DONE)
		st = *self->status;
	kmsg_problems(_metadata, kfd);
	TH_LOG("read of %u GiB: %s after %llu ms, status %s, used len %u",
	       ALIAS_N, outcome_name(o), (unsigned long long)ms_since(t0),
	       vd_status_name(st), o == DONE ? len : 0);
	EXPECT_EQ(DONE, o);
	EXPECT_EQ(VIRTIO_BLK_S_IOERR, st)
		TH_LOG("a request of %u GiB, far past seg_max * size_max",
		       ALIAS_N);
	if (kfd >= 0)
		close(kfd);
	vd_close(self->dev);
	self->dev = NULL;
	munmap(page, GIB);
}

/* ---- 8: a VHOST_BACKEND_F_IOTLB_PERSIST user that maps nothing -------- */

/*
 * The vhost-vdpa half of 45-blk-sw-owner.sh's case: DRIVER_OK with no
 * mapping, then close.  The shell then binds the device to virtio_vdpa.
 */
TEST_F(owner, owner_persist_user)
{
	uint8_t st = 0;

	ASSERT_EQ(0, vd_open(dut_path, &self->dev)) TH_LOG("%s", vd_last_error);
	if (!vd_has_backend(self->dev, VHOST_BACKEND_F_IOTLB_PERSIST))
		SKIP(return, "VHOST_BACKEND_F_IOTLB_PERSIST not offered");
	ASSERT_EQ(0, vd_negotiate(self->dev, VD_DEFAULT_FEATURES));
	ASSERT_EQ(0, vd_driver_ok(self->dev));
	ASSERT_EQ(0, vd_get_status(self->dev, &st));
	ASSERT_TRUE(st & VIRTIO_CONFIG_S_DRIVER_OK);
	TH_LOG("IOTLB_PERSIST acked, DRIVER_OK (status 0x%02x) with no mapping; closing",
	       st);
	vd_close(self->dev);
	self->dev = NULL;
}

int main(int argc, char **argv)
{
	/* Take our options out before the harness parses the rest. */
	argc = vd_dut_args(argc, argv, dut_path, sizeof(dut_path), dut_mgmtdev,
			   sizeof(dut_mgmtdev));
	if (getenv("VDPA_DRV_VERBOSE"))
		vd_verbose = 1;
	ksft_print_msg("device under test: %s (mgmtdev %s)\n",
		       dut_path[0] ? dut_path : "none",
		       dut_mgmtdev[0] ? dut_mgmtdev : "unknown");
	return test_harness_run(argc, argv);
}
