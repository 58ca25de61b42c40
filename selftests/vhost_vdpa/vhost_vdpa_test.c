// SPDX-License-Identifier: GPL-2.0
/*
 * kselftest tests of a virtio-blk vDPA device through /dev/vhost-vdpa-N,
 * driven by the userspace driver in vdpa_drv.c.
 *
 * Device under test:
 *   --dev PATH      or VDPA_DEV=PATH       (default: first /dev/vhost-vdpa-*)
 *   --mgmtdev NAME  or VDPA_MGMTDEV=NAME   (default: read from sysfs)
 * The management device name selects per-device expectations: the
 * reference vdpa_sim_blk ("vdpasim_blk") answers unknown request types with
 * IOERR where the spec asks for UNSUPP, and reports 256-entry rings.
 *
 * Every test runs in three fixture variants: with used-buffer interrupts
 * (poll() on the call eventfd), with VRING_AVAIL_F_NO_INTERRUPT (polling
 * used->idx only), and with interrupts driven by VIRTIO_RING_F_EVENT_IDX
 * (skipped unless the device offers it).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

/*
 * Built with -Wextra -Werror: the harness has an unused parameter, its
 * ASSERT_*(literal, value) macros compare an int literal with unsigned
 * values by design, and its setjmp-based wrappers trip -Wclobbered.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "vdpa_drv.h"

#define IO_TIMEOUT_MS	10000
#define QUIET_MS	300
/* Small enough for the default 8 MiB RLIMIT_MEMLOCK in PA mode. */
#define RING_REGION	(1UL << 20)
#define DATA_REGION	(4UL << 20)
#define TEST_TIMEOUT	120

static char dut_path[256];
static char dut_mgmtdev[64];

static bool dut_is_sim(void)
{
	return !strcmp(dut_mgmtdev, "vdpasim_blk");
}

/* Pick the IOVA of the n-th region, 256 MiB apart, inside the range. */
static uint64_t pick_iova(const struct vd_dev *dev, unsigned int n)
{
	uint64_t base = dev->iova_first > 0x100000 ? dev->iova_first : 0x100000;

	base = (base + 0xfffff) & ~0xfffffULL;
	return base + (uint64_t)n * 0x10000000ULL;
}

FIXTURE(blk) {
	struct vd_dev *dev;
	struct vd_region *ring;
	struct vd_region *data;
	struct vd_vq *vq;
	unsigned int qsize;
	uint64_t capacity;
};

FIXTURE_VARIANT(blk) {
	bool interrupts;
	bool event_idx;		/* negotiate VIRTIO_RING_F_EVENT_IDX */
};

FIXTURE_VARIANT_ADD(blk, irq) {
	.interrupts = true,
};

FIXTURE_VARIANT_ADD(blk, poll) {
	.interrupts = false,
};

/* Interrupts driven by used_event; skipped unless the device offers it. */
FIXTURE_VARIANT_ADD(blk, event_idx) {
	.interrupts = true,
	.event_idx = true,
};

static void blk_start(struct __test_metadata *_metadata,
		      FIXTURE_DATA(blk) *self,
		      const FIXTURE_VARIANT(blk) *variant, unsigned int nq)
{
	uint64_t want = VD_DEFAULT_FEATURES;
	unsigned int q;

	if (variant->event_idx)
		want |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	ASSERT_EQ(0, vd_negotiate(self->dev, want))
		TH_LOG("negotiate: %s", vd_last_error);
	for (q = 0; q < nq; q++) {
		ASSERT_EQ(0, vd_vq_setup(self->dev, q, self->qsize, self->ring))
			TH_LOG("vq %u setup: %s", q, vd_last_error);
		vd_vq_set_interrupts(&self->dev->vqs[q], variant->interrupts);
	}
	ASSERT_EQ(0, vd_driver_ok(self->dev))
		TH_LOG("DRIVER_OK: %s", vd_last_error);
	self->vq = &self->dev->vqs[0];
	self->capacity = vd_capacity(self->dev);
}

FIXTURE_SETUP(blk)
{
	struct vd_dev *dev;
	int ret;

	if (!dut_path[0])
		SKIP(return, "no /dev/vhost-vdpa-* (set VDPA_DEV)");
	ret = vd_open(dut_path, &self->dev);
	if (ret == -ENOENT)
		SKIP(return, "%s: %s", dut_path, vd_last_error);
	ASSERT_EQ(0, ret) TH_LOG("open: %s", vd_last_error);
	dev = self->dev;
	if (dev->device_id != VIRTIO_ID_BLOCK)
		SKIP(return, "%s is device id %u, not virtio-blk", dut_path,
		     dev->device_id);
	if (variant->event_idx &&
	    !(dev->dev_features & (1ULL << VIRTIO_RING_F_EVENT_IDX)))
		SKIP(return, "VIRTIO_RING_F_EVENT_IDX not offered");
	self->qsize = dev->vq_num_max < 256 ? dev->vq_num_max : 256;
	ASSERT_EQ(0, vd_region_create(dev, RING_REGION, &self->ring));
	ASSERT_EQ(0, vd_region_map(self->ring, pick_iova(dev, 0),
				   VHOST_ACCESS_RW))
		TH_LOG("map ring region: %s", vd_last_error);
	ASSERT_EQ(0, vd_region_create(dev, DATA_REGION, &self->data));
	ASSERT_EQ(0, vd_region_map(self->data, pick_iova(dev, 1),
				   VHOST_ACCESS_RW))
		TH_LOG("map data region: %s (PA mode pins pages: ulimit -l?)",
		       vd_last_error);
	blk_start(_metadata, self, variant, 1);
}

FIXTURE_TEARDOWN(blk)
{
	vd_close(self->dev);
}

/* Submit one request and wait; returns the status byte (0xff on timeout). */
static uint8_t blk_io(struct __test_metadata *_metadata, struct vd_vq *vq,
		      struct vd_io *io)
{
	int ret = vd_io_sync(vq, io, IO_TIMEOUT_MS);

	EXPECT_EQ(0, ret) TH_LOG("%s", vd_last_error);
	if (ret)
		return 0xff;
	return io->status;
}

static uint8_t blk_rw(struct __test_metadata *_metadata, struct vd_vq *vq,
		      uint32_t type, uint64_t sector, void *buf, uint32_t len,
		      unsigned int nsegs)
{
	struct vd_io io;

	vd_io_init(&io, type, sector, buf, len, nsegs);
	return blk_io(_metadata, vq, &io);
}

/* Smallest descriptor count that honours size_max for @len bytes. */
static unsigned int min_segs(const struct vd_dev *dev, uint32_t len)
{
	uint32_t size_max = le32toh(dev->cfg.size_max);

	if (!vd_has_feature(dev, VIRTIO_BLK_F_SIZE_MAX) || !size_max)
		return 1;
	return (len + size_max - 1) / size_max;
}

static unsigned int max_segs(const struct vd_dev *dev)
{
	uint32_t seg_max = le32toh(dev->cfg.seg_max);

	if (!vd_has_feature(dev, VIRTIO_BLK_F_SEG_MAX) || !seg_max)
		return 128;
	return seg_max;
}

static void check_poison(struct __test_metadata *_metadata,
			 FIXTURE_DATA(blk) *self)
{
	EXPECT_EQ(0, vd_check_poison(self->data)) TH_LOG("%s", vd_last_error);
	EXPECT_EQ(0, vd_check_poison(self->ring)) TH_LOG("%s", vd_last_error);
	EXPECT_EQ(0, self->vq->spurious);
}

TEST_F(blk, features_config)
{
	struct vd_dev *dev = self->dev;
	const struct virtio_blk_config *c = &dev->cfg;
	uint32_t bs = le32toh(c->blk_size);

	TH_LOG("dev %s mgmtdev %s features 0x%llx/0x%llx backend 0x%llx/0x%llx",
	       dut_path, dut_mgmtdev, (unsigned long long)dev->features,
	       (unsigned long long)dev->dev_features,
	       (unsigned long long)dev->backend_acked,
	       (unsigned long long)dev->backend_offered);
	TH_LOG("capacity %llu blk_size %u seg_max %u size_max %u num_queues %u vq_num_max %u nvqs %u iova [0x%llx, 0x%llx]",
	       (unsigned long long)self->capacity, bs, le32toh(c->seg_max),
	       le32toh(c->size_max), le16toh(c->num_queues), dev->vq_num_max,
	       dev->nvqs, (unsigned long long)dev->iova_first,
	       (unsigned long long)dev->iova_last);
	ASSERT_TRUE(vd_has_feature(dev, VIRTIO_F_VERSION_1));
	ASSERT_TRUE(vd_has_feature(dev, VIRTIO_F_ACCESS_PLATFORM));
	ASSERT_FALSE(vd_has_feature(dev, VIRTIO_F_RING_PACKED));
	ASSERT_EQ(variant->event_idx,
		  vd_has_feature(dev, VIRTIO_RING_F_EVENT_IDX));
	ASSERT_GT(self->capacity, 0);
	ASSERT_GE(dev->nvqs, 1);
	ASSERT_GE(dev->vq_num_max, 1);
	ASSERT_EQ(0, dev->vq_num_max & (dev->vq_num_max - 1));
	ASSERT_LE(dev->config_size, 4096);
	if (vd_has_feature(dev, VIRTIO_BLK_F_BLK_SIZE)) {
		ASSERT_GE(bs, 512);
		ASSERT_EQ(0, bs & (bs - 1));
	}
	if (vd_has_feature(dev, VIRTIO_BLK_F_SEG_MAX))
		ASSERT_GE(le32toh(c->seg_max), 1);
	if (vd_has_feature(dev, VIRTIO_BLK_F_SIZE_MAX))
		ASSERT_GE(le32toh(c->size_max), 512);
	if (vd_has_feature(dev, VIRTIO_BLK_F_MQ)) {
		ASSERT_GE(le16toh(c->num_queues), 1);
		ASSERT_LE(le16toh(c->num_queues), dev->nvqs);
	}
	if (vd_has_feature(dev, VIRTIO_BLK_F_DISCARD)) {
		ASSERT_GE(le32toh(c->max_discard_sectors), 1);
		ASSERT_GE(le32toh(c->max_discard_seg), 1);
	}
	if (vd_has_feature(dev, VIRTIO_BLK_F_WRITE_ZEROES)) {
		ASSERT_GE(le32toh(c->max_write_zeroes_sectors), 1);
		ASSERT_GE(le32toh(c->max_write_zeroes_seg), 1);
	}
	ASSERT_TRUE(vd_has_backend(dev, VHOST_BACKEND_F_IOTLB_MSG_V2));
	/* Ours must serve QEMU's vhost-vdpa-device-pci (1024 entries). */
	if (!dut_is_sim())
		EXPECT_GE(dev->vq_num_max, 1024);
}

/* The same write and read again, each chain in an indirect table. */
static void rw_indirect(struct __test_metadata *_metadata,
			FIXTURE_DATA(blk) *self, uint64_t sector, uint8_t *wbuf,
			uint8_t *rbuf, uint32_t len, unsigned int nsegs,
			uint64_t seed)
{
	struct vd_io io;

	vd_pattern_fill(wbuf, len, seed + 1000, 0);
	vd_io_init(&io, VIRTIO_BLK_T_OUT, sector, wbuf, len, nsegs);
	io.indirect = true;
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_io(_metadata, self->vq, &io));
	memset(rbuf, 0, len);
	vd_io_init(&io, VIRTIO_BLK_T_IN, sector, rbuf, len, nsegs);
	io.indirect = true;
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_io(_metadata, self->vq, &io));
	ASSERT_EQ(-1, vd_pattern_check(rbuf, len, seed + 1000, 0))
		TH_LOG("indirect, len %u segs %u", len, nsegs);
}

/* Write a pattern, read it back, over sizes, offsets and chain shapes
 * (and indirect tables when the device offers them).
 */
TEST_F_TIMEOUT(blk, write_read_verify, TEST_TIMEOUT)
{
	static const uint32_t sizes[] = { 512, 4096, 8192, 65536, 131072 };
	static const unsigned int extra[] = { 0, 1, 3, 7 };
	struct vd_dev *dev = self->dev;
	bool indirect = vd_has_feature(dev, VIRTIO_RING_F_INDIRECT_DESC);
	uint64_t seed = 1;
	unsigned int s, e;

	for (s = 0; s < ARRAY_SIZE(sizes); s++) {
		for (e = 0; e < ARRAY_SIZE(extra); e++) {
			uint32_t len = sizes[s];
			unsigned int nsegs = min_segs(dev, len) + extra[e];
			uint64_t nsec = len >> VD_SECTOR_SHIFT;
			uint64_t sector;
			uint8_t *wbuf, *rbuf;
			long bad;

			if (nsegs > max_segs(dev) || nsegs > len / 8)
				continue;
			/* Alternate between the start, middle and end. */
			if (seed % 3 == 0)
				sector = 0;
			else if (seed % 3 == 1)
				sector = self->capacity / 2 + seed;
			else
				sector = self->capacity - nsec;
			wbuf = vd_alloc(self->data, len, 8);
			rbuf = vd_alloc(self->data, len, 8);
			ASSERT_NE(NULL, wbuf);
			ASSERT_NE(NULL, rbuf);
			vd_pattern_fill(wbuf, len, seed, 0);
			ASSERT_EQ(VIRTIO_BLK_S_OK,
				  blk_rw(_metadata, self->vq, VIRTIO_BLK_T_OUT,
					 sector, wbuf, len, nsegs))
				TH_LOG("write len %u segs %u sector %llu", len,
				       nsegs, (unsigned long long)sector);
			ASSERT_EQ(VIRTIO_BLK_S_OK,
				  blk_rw(_metadata, self->vq, VIRTIO_BLK_T_IN,
					 sector, rbuf, len, nsegs));
			bad = vd_pattern_check(rbuf, len, seed, 0);
			ASSERT_EQ(-1, bad)
				TH_LOG("len %u segs %u sector %llu: mismatch at byte %ld",
				       len, nsegs, (unsigned long long)sector,
				       bad);
			/* Read with a different split than the write. */
			memset(rbuf, 0, len);
			ASSERT_EQ(VIRTIO_BLK_S_OK,
				  blk_rw(_metadata, self->vq, VIRTIO_BLK_T_IN,
					 sector, rbuf, len,
					 min_segs(dev, len)));
			ASSERT_EQ(-1, vd_pattern_check(rbuf, len, seed, 0));
			if (indirect && nsegs + 2 <= VD_MAX_INDIRECT)
				rw_indirect(_metadata, self, sector, wbuf, rbuf,
					    len, nsegs, seed);
			seed++;
		}
		vd_region_reset_alloc(self->data);
	}
	check_poison(_metadata, self);
}

/* Many requests in flight at once, one kick, completion in any order. */
TEST_F_TIMEOUT(blk, queue_depth, TEST_TIMEOUT)
{
	unsigned int depth = self->qsize / 4 < 64 ? self->qsize / 4 : 64;
	const uint32_t len = 4096;
	struct vd_io *ios;
	uint8_t **bufs;
	unsigned int i, done;
	int pass;

	if (depth < 2)
		SKIP(return, "queue size %u too small", self->qsize);
	ios = calloc(depth, sizeof(*ios));
	bufs = calloc(depth, sizeof(*bufs));
	ASSERT_NE(NULL, ios);
	ASSERT_NE(NULL, bufs);
	for (i = 0; i < depth; i++) {
		bufs[i] = vd_alloc(self->data, len, 512);
		ASSERT_NE(NULL, bufs[i]);
	}
	for (pass = 0; pass < 2; pass++) {
		uint32_t type = pass ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;

		for (i = 0; i < depth; i++) {
			if (!pass)
				vd_pattern_fill(bufs[i], len, 100 + i, 0);
			else
				memset(bufs[i], 0, len);
			vd_io_init(&ios[i], type, 8 * i + 1, bufs[i], len,
				   1 + i % 3);
			ASSERT_EQ(0, vd_submit(self->vq, &ios[i]));
		}
		ASSERT_EQ(0, vd_kick(self->vq));
		for (done = 0; done < depth;) {
			struct vd_io *io;

			ASSERT_EQ(0, vd_wait_one(self->vq, IO_TIMEOUT_MS, &io))
				TH_LOG("%u of %u completed", done, depth);
			ASSERT_EQ(VIRTIO_BLK_S_OK, io->status);
			done++;
		}
		ASSERT_EQ(0, self->vq->ninflight);
	}
	for (i = 0; i < depth; i++)
		ASSERT_EQ(-1, vd_pattern_check(bufs[i], len, 100 + i, 0))
			TH_LOG("request %u", i);
	check_poison(_metadata, self);
	free(ios);
	free(bufs);
}

TEST_F(blk, flush)
{
	struct vd_io io;

	if (!vd_has_feature(self->dev, VIRTIO_BLK_F_FLUSH))
		SKIP(return, "VIRTIO_BLK_F_FLUSH not offered");
	vd_io_init(&io, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 1);
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_io(_metadata, self->vq, &io));
	ASSERT_GE(io.used_len, 1);
	check_poison(_metadata, self);
}

/* Write one byte of the config space; 0 or -errno. */
static int cfg_write8(struct vd_dev *dev, unsigned int off, uint8_t v)
{
	struct vhost_vdpa_config *c = calloc(1, sizeof(*c) + 1);
	int ret;

	if (!c)
		return -ENOMEM;
	c->off = off;
	c->len = 1;
	c->buf[0] = v;
	ret = ioctl(dev->fd, VHOST_VDPA_SET_CONFIG, c) ? -errno : 0;
	free(c);
	return ret;
}

static int cfg_wce(struct vd_dev *dev)
{
	return vd_read_config(dev) ? -1 : dev->cfg.wce;
}

/*
 * The write cache follows the negotiated features (virtio 1.2, 5.2.5):
 * without FLUSH the device writes through (wce 0), and a driver that
 * negotiated CONFIG_WCE cannot turn write back on; with FLUSH the device
 * writes back (wce 1) until a CONFIG_WCE driver clears wce.
 */
TEST_F(blk, cache_mode)
{
	const uint64_t flush = 1ULL << VIRTIO_BLK_F_FLUSH;
	const uint64_t cwce = 1ULL << VIRTIO_BLK_F_CONFIG_WCE;
	const unsigned int off = offsetof(struct virtio_blk_config, wce);
	struct vd_dev *dev = self->dev;

	if (dut_is_sim())
		SKIP(return, "vdpa_sim_blk has no write cache");
	if ((dev->dev_features & (flush | cwce)) != (flush | cwce))
		SKIP(return, "FLUSH and CONFIG_WCE not both offered");

	/* both negotiated (the fixture): write back, the driver decides */
	ASSERT_EQ(1, cfg_wce(dev));
	ASSERT_EQ(0, cfg_write8(dev, off, 0));
	ASSERT_EQ(0, cfg_wce(dev));
	ASSERT_EQ(0, cfg_write8(dev, off, 1));
	ASSERT_EQ(1, cfg_wce(dev));

	/* CONFIG_WCE without FLUSH: write through, and it stays so */
	ASSERT_EQ(0, vd_negotiate(dev, VD_DEFAULT_FEATURES & ~flush))
		TH_LOG("negotiate: %s", vd_last_error);
	ASSERT_TRUE(vd_has_feature(dev, VIRTIO_BLK_F_CONFIG_WCE));
	ASSERT_EQ(0, cfg_wce(dev));
	ASSERT_EQ(0, cfg_write8(dev, off, 1));
	ASSERT_EQ(0, cfg_wce(dev));

	/* neither: write through */
	ASSERT_EQ(0, vd_negotiate(dev, VD_DEFAULT_FEATURES & ~(flush | cwce)))
		TH_LOG("negotiate: %s", vd_last_error);
	ASSERT_EQ(0, cfg_wce(dev));

	/* FLUSH without CONFIG_WCE: write back, wce is not the driver's */
	ASSERT_EQ(0, vd_negotiate(dev, VD_DEFAULT_FEATURES & ~cwce))
		TH_LOG("negotiate: %s", vd_last_error);
	ASSERT_EQ(1, cfg_wce(dev));
	ASSERT_EQ(0, cfg_write8(dev, off, 0));
	ASSERT_EQ(1, cfg_wce(dev));
}

TEST_F(blk, get_id)
{
	uint8_t *id = vd_alloc(self->data, VIRTIO_BLK_ID_BYTES, 1);
	char str[VIRTIO_BLK_ID_BYTES + 1];
	struct vd_io io;
	unsigned int i;

	ASSERT_NE(NULL, id);
	vd_io_init(&io, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES, 1);
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_io(_metadata, self->vq, &io));
	memcpy(str, id, VIRTIO_BLK_ID_BYTES);
	str[VIRTIO_BLK_ID_BYTES] = 0;
	TH_LOG("serial \"%s\" used_len %u", str, io.used_len);
	/* NUL-padded printable string; no 0xa5 poison left. */
	for (i = 0; i < VIRTIO_BLK_ID_BYTES && id[i]; i++)
		ASSERT_TRUE(id[i] >= 0x20 && id[i] < 0x7f) TH_LOG("byte %u", i);
	for (; i < VIRTIO_BLK_ID_BYTES; i++)
		ASSERT_EQ(0, id[i]) TH_LOG("byte %u after NUL", i);
	ASSERT_GT(strlen(str), 0);
	if (dut_is_sim())
		ASSERT_STREQ("vdpa_blk_sim", str);
	/* Split over two descriptors. */
	memset(id, 0, VIRTIO_BLK_ID_BYTES);
	vd_io_init(&io, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES, 2);
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_io(_metadata, self->vq, &io));
	ASSERT_EQ(0, memcmp(str, id, VIRTIO_BLK_ID_BYTES));
	check_poison(_metadata, self);
}

static void fill_and_write(struct __test_metadata *_metadata,
			   FIXTURE_DATA(blk) *self, uint64_t sector,
			   uint32_t len, uint64_t seed)
{
	uint8_t *buf = vd_alloc(self->data, len, 512);

	ASSERT_NE(NULL, buf);
	vd_pattern_fill(buf, len, seed, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_rw(_metadata, self->vq,
					  VIRTIO_BLK_T_OUT, sector, buf, len,
					  min_segs(self->dev, len)));
}

/* Read @len bytes at @sector; 1 if all zero, 0 if not. */
static int read_is_zero(struct __test_metadata *_metadata,
			FIXTURE_DATA(blk) *self, uint64_t sector, uint32_t len)
{
	uint8_t *buf = vd_alloc(self->data, len, 512);
	uint32_t i;

	if (!buf)
		return -1;
	EXPECT_EQ(VIRTIO_BLK_S_OK, blk_rw(_metadata, self->vq,
					  VIRTIO_BLK_T_IN, sector, buf, len,
					  min_segs(self->dev, len)));
	for (i = 0; i < len; i++)
		if (buf[i])
			return 0;
	return 1;
}

TEST_F(blk, discard)
{
	struct vd_io io;

	if (!vd_has_feature(self->dev, VIRTIO_BLK_F_DISCARD))
		SKIP(return, "VIRTIO_BLK_F_DISCARD not offered");
	fill_and_write(_metadata, self, 64, 8192, 7);
	vd_io_init_dwz(&io, VIRTIO_BLK_T_DISCARD, 64, 16, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_io(_metadata, self->vq, &io));
	/* The spec: DISCARD with the unmap flag set gets UNSUPP. */
	vd_io_init_dwz(&io, VIRTIO_BLK_T_DISCARD, 64, 16,
		       VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP, blk_io(_metadata, self->vq, &io));
	/* Past the end. */
	vd_io_init_dwz(&io, VIRTIO_BLK_T_DISCARD, self->capacity - 1, 2, 0);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, blk_io(_metadata, self->vq, &io));
	check_poison(_metadata, self);
}

TEST_F(blk, write_zeroes)
{
	struct vd_io io;
	int flags;

	if (!vd_has_feature(self->dev, VIRTIO_BLK_F_WRITE_ZEROES))
		SKIP(return, "VIRTIO_BLK_F_WRITE_ZEROES not offered");
	for (flags = 0; flags < 2; flags++) {
		uint64_t sector = 128 + 64 * flags;

		fill_and_write(_metadata, self, sector, 16384, 9 + flags);
		ASSERT_EQ(0, read_is_zero(_metadata, self, sector, 16384));
		/* Zero the middle 8 KiB only. */
		vd_io_init_dwz(&io, VIRTIO_BLK_T_WRITE_ZEROES, sector + 8, 16,
			       flags ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0);
		ASSERT_EQ(VIRTIO_BLK_S_OK, blk_io(_metadata, self->vq, &io))
			TH_LOG("flags %d", flags);
		ASSERT_EQ(1, read_is_zero(_metadata, self, sector + 8, 8192));
		/* Neighbours untouched. */
		ASSERT_EQ(0, read_is_zero(_metadata, self, sector, 4096));
		ASSERT_EQ(0, read_is_zero(_metadata, self, sector + 24, 4096));
	}
	vd_io_init_dwz(&io, VIRTIO_BLK_T_WRITE_ZEROES, self->capacity, 1, 0);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, blk_io(_metadata, self->vq, &io));
	check_poison(_metadata, self);
}

TEST_F(blk, out_of_range)
{
	uint8_t *buf = vd_alloc(self->data, 4096, 512);
	uint64_t cap = self->capacity;
	struct {
		uint32_t type;
		uint64_t sector;
		uint32_t len;
	} cases[] = {
		{ VIRTIO_BLK_T_IN, cap, 512 },
		{ VIRTIO_BLK_T_OUT, cap, 512 },
		{ VIRTIO_BLK_T_IN, cap - 1, 1024 },
		{ VIRTIO_BLK_T_OUT, cap - 7, 4096 },
		{ VIRTIO_BLK_T_IN, cap + 1000, 512 },
		{ VIRTIO_BLK_T_IN, ~0ULL >> VD_SECTOR_SHIFT, 512 },
		{ VIRTIO_BLK_T_OUT, ~0ULL, 512 },
		{ VIRTIO_BLK_T_IN, ~0ULL - 3, 4096 },
	};
	unsigned int i;

	ASSERT_NE(NULL, buf);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(buf, VD_POISON, 4096);
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  blk_rw(_metadata, self->vq, cases[i].type,
				 cases[i].sector, buf, cases[i].len, 1))
			TH_LOG("case %u: type %u sector %llu len %u", i,
			       cases[i].type,
			       (unsigned long long)cases[i].sector,
			       cases[i].len);
	}
	/* The last sector itself is fine. */
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_rw(_metadata, self->vq, VIRTIO_BLK_T_IN,
					  cap - 1, buf, 512, 1));
	check_poison(_metadata, self);
}

TEST_F(blk, unknown_type)
{
	static const uint32_t types[] = { 3, 5, 0xff, 0x7fffffff };
	uint8_t *buf = vd_alloc(self->data, 512, 512);
	unsigned int i;

	ASSERT_NE(NULL, buf);
	for (i = 0; i < ARRAY_SIZE(types); i++) {
		struct vd_io io;
		uint8_t st;

		vd_io_init(&io, types[i], 0, buf, 512, 1);
		io.dir = VD_DIR_OUT;
		st = blk_io(_metadata, self->vq, &io);
		if (dut_is_sim()) {
			/* vdpa_sim_blk answers IOERR; the spec says UNSUPP. */
			ASSERT_TRUE(st == VIRTIO_BLK_S_UNSUPP ||
				    st == VIRTIO_BLK_S_IOERR)
				TH_LOG("type %u: %s", types[i],
				       vd_status_name(st));
		} else {
			ASSERT_EQ(VIRTIO_BLK_S_UNSUPP, st)
				TH_LOG("type %u: %s", types[i],
				       vd_status_name(st));
		}
	}
	check_poison(_metadata, self);
}

/* Reset, set everything up again: data persists and I/O works. */
TEST_F_TIMEOUT(blk, reset_resetup, TEST_TIMEOUT)
{
	uint8_t *buf = vd_alloc(self->data, 8192, 512);
	int round;

	ASSERT_NE(NULL, buf);
	for (round = 0; round < 3; round++) {
		vd_pattern_fill(buf, 8192, 40 + round, 0);
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  blk_rw(_metadata, self->vq, VIRTIO_BLK_T_OUT,
				 256 + 16 * round, buf, 8192, 2));
		ASSERT_EQ(0, vd_reset(self->dev)) TH_LOG("%s", vd_last_error);
		blk_start(_metadata, self, variant, 1);
		memset(buf, 0, 8192);
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  blk_rw(_metadata, self->vq, VIRTIO_BLK_T_IN,
				 256 + 16 * round, buf, 8192, 3))
			TH_LOG("round %d", round);
		ASSERT_EQ(-1, vd_pattern_check(buf, 8192, 40 + round, 0));
	}
	check_poison(_metadata, self);
}

/*
 * Control-plane rules at the vhost-vdpa boundary: refused features,
 * features after FEATURES_OK, clearing status bits, bad ring sizes and
 * indexes, config reads past the end, overlapping and empty IOTLB updates.
 * Afterwards a clean setup still works.
 */
TEST_F(blk, control_errors)
{
	struct vd_dev *dev = self->dev;
	uint8_t ack = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	struct vhost_vring_state s;
	struct {
		struct vhost_vdpa_config c;
		uint8_t buf[16];
	} cfg;
	uint8_t st;

	ASSERT_EQ(0, vd_reset(dev));
	ASSERT_EQ(0, vd_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE));
	ASSERT_EQ(0, vd_set_status(dev, ack));
	/* ACCESS_PLATFORM is mandatory for a vDPA device. */
	ASSERT_NE(0, vd_set_features_raw(dev, 1ULL << VIRTIO_F_VERSION_1));
	ASSERT_EQ(0, vd_set_features_raw(dev,
					 (1ULL << VIRTIO_F_VERSION_1) |
					 (1ULL << VIRTIO_F_ACCESS_PLATFORM)));
	ASSERT_EQ(0, vd_set_status(dev, ack | VIRTIO_CONFIG_S_FEATURES_OK));
	ASSERT_EQ(0, vd_get_status(dev, &st));
	ASSERT_TRUE(st & VIRTIO_CONFIG_S_FEATURES_OK);
	/* No feature change after FEATURES_OK. */
	ASSERT_EQ(-EBUSY, vd_set_features_raw(dev,
					      (1ULL << VIRTIO_F_VERSION_1) |
					      (1ULL << VIRTIO_F_ACCESS_PLATFORM)));
	/* Status bits only go away through a reset. */
	ASSERT_EQ(-EINVAL, vd_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE));
	/* Ring sizes: a power of two no larger than the maximum. */
	s.index = 0;
	s.num = dev->vq_num_max * 2;
	ASSERT_EQ(-1, ioctl(dev->fd, VHOST_SET_VRING_NUM, &s));
	ASSERT_EQ(EINVAL, errno);
	s.num = 3;
	ASSERT_EQ(-1, ioctl(dev->fd, VHOST_SET_VRING_NUM, &s));
	ASSERT_EQ(EINVAL, errno);
	s.num = 0;
	ASSERT_EQ(-1, ioctl(dev->fd, VHOST_SET_VRING_NUM, &s));
	ASSERT_EQ(EINVAL, errno);
	s.index = dev->nvqs;
	s.num = 16;
	ASSERT_EQ(-1, ioctl(dev->fd, VHOST_SET_VRING_NUM, &s));
	ASSERT_EQ(ENOBUFS, errno);
	/* Config space: reads past the end are refused. */
	cfg.c.off = dev->config_size;
	cfg.c.len = 1;
	ASSERT_EQ(-1, ioctl(dev->fd, VHOST_VDPA_GET_CONFIG, &cfg));
	ASSERT_EQ(EINVAL, errno);
	cfg.c.off = dev->config_size - 4;
	cfg.c.len = 8;
	ASSERT_EQ(-1, ioctl(dev->fd, VHOST_VDPA_GET_CONFIG, &cfg));
	ASSERT_EQ(EINVAL, errno);
	/* IOTLB: overlapping an existing mapping, or empty. */
	ASSERT_EQ(-EFAULT, vd_iotlb_update(dev, self->data->iova + 4096, 4096,
					   (uintptr_t)self->data->va,
					   VHOST_ACCESS_RW));
	ASSERT_EQ(-EINVAL, vd_iotlb_update(dev, pick_iova(dev, 9), 0,
					   (uintptr_t)self->data->va,
					   VHOST_ACCESS_RW));
	/* A clean start still works. */
	blk_start(_metadata, self, variant, 1);
	fill_and_write(_metadata, self, 0, 4096, 78);
	check_poison(_metadata, self);
}

/* Close and reopen the char device (EBUSY on reopen is a known bug). */
TEST_F(blk, reopen)
{
	struct vd_dev *dev2;
	int i;

	for (i = 0; i < 3; i++) {
		vd_close(self->dev);
		self->dev = NULL;
		ASSERT_EQ(0, vd_open(dut_path, &dev2))
			TH_LOG("reopen %d: %s", i, vd_last_error);
		self->dev = dev2;
	}
	ASSERT_EQ(0, vd_region_create(self->dev, RING_REGION, &self->ring));
	ASSERT_EQ(0, vd_region_map(self->ring, pick_iova(self->dev, 2),
				   VHOST_ACCESS_RW));
	ASSERT_EQ(0, vd_region_create(self->dev, DATA_REGION, &self->data));
	ASSERT_EQ(0, vd_region_map(self->data, pick_iova(self->dev, 3),
				   VHOST_ACCESS_RW));
	blk_start(_metadata, self, variant, 1);
	fill_and_write(_metadata, self, 0, 4096, 77);
	check_poison(_metadata, self);
}

/*
 * IOTLB updates under the owner's mmap_lock while the device faults.
 *
 * vhost-vdpa calls set_map() holding this process's mmap_lock for reading
 * (in VA mode, and in PA mode when it maps).  A worker that must fault on
 * our memory (VA mode: the pages were zapped) takes that lock too, and a
 * thread that mmap()s queues a writer between them.  If set_map() waited
 * for the worker there, the three would deadlock: this test then times
 * out.  The mapper maps and unmaps a spare region without batching, the
 * churner mmap()s and munmap()s, and the main thread writes, zaps and
 * reads back data for MMAP_RACE_S seconds (or until both have done 20
 * rounds, at most MMAP_RACE_MAX_S times $SELFTESTS_TIMEOUT_SCALE, which
 * run.sh sets for slow kernels: each map/unmap pair copies the whole
 * IOTLB, and a debug kernel sharing the host with other VMs managed only
 * 17 pairs in 60 s).
 */
#define MMAP_RACE_S		4
#define MMAP_RACE_MAX_S		60
#define MMAP_RACE_MAX_SCALE	8
#define MMAP_RACE_TIMEOUT	(MMAP_RACE_MAX_S * MMAP_RACE_MAX_SCALE + 60)

struct mmap_race {
	struct vd_dev *dev;
	struct vd_region *spare;
	uint64_t iova;
	atomic_bool stop;
	atomic_ulong maps;
	atomic_ulong mmaps;
	int err;
};

static void *mmap_race_mapper(void *arg)
{
	struct mmap_race *mr = arg;

	while (!atomic_load(&mr->stop)) {
		if (vd_iotlb_update(mr->dev, mr->iova, mr->spare->size,
				    (uintptr_t)mr->spare->va,
				    VHOST_ACCESS_RW) ||
		    vd_iotlb_invalidate(mr->dev, mr->iova, mr->spare->size)) {
			mr->err = errno ? errno : EIO;
			break;
		}
		atomic_fetch_add(&mr->maps, 1);
	}
	return NULL;
}

static void *mmap_race_churner(void *arg)
{
	struct mmap_race *mr = arg;

	while (!atomic_load(&mr->stop)) {
		void *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			mr->err = errno;
			break;
		}
		munmap(p, 1 << 16);
		atomic_fetch_add(&mr->mmaps, 1);
	}
	return NULL;
}

/* The race's time cap in ns, scaled like every selftest timeout. */
static uint64_t mmap_race_max_ns(void)
{
	const char *env = getenv("SELFTESTS_TIMEOUT_SCALE");
	unsigned long scale = env ? strtoul(env, NULL, 10) : 1;

	scale = scale < 1 ? 1 : scale > MMAP_RACE_MAX_SCALE ?
		MMAP_RACE_MAX_SCALE : scale;
	return scale * MMAP_RACE_MAX_S * 1000000000ULL;
}

TEST_F_TIMEOUT(blk, iotlb_update_vs_faults, MMAP_RACE_TIMEOUT)
{
	const uint32_t len = 4 * 4096;
	struct mmap_race mr = { .dev = self->dev };
	pthread_t mapper, churner;
	uint8_t *buf = vd_alloc(self->data, len, 4096);
	uint64_t start, rounds = 0, max_ns = mmap_race_max_ns();

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, vd_region_create(self->dev, 1 << 16, &mr.spare));
	mr.iova = pick_iova(self->dev, 12);
	ASSERT_EQ(0, pthread_create(&mapper, NULL, mmap_race_mapper, &mr));
	ASSERT_EQ(0, pthread_create(&churner, NULL, mmap_race_churner, &mr));
	/*
	 * At least MMAP_RACE_S seconds, and on until both sides did 20
	 * rounds (PA mode pins at every map: slow under a debug kernel).
	 */
	start = vd_now_ns();
	while (!mr.err) {
		uint64_t t = vd_now_ns() - start;

		if (t > MMAP_RACE_S * 1000000000ULL &&
		    ((rounds >= 20 && atomic_load(&mr.maps) >= 20) ||
		     t > max_ns))
			break;
		uint64_t sector = 1024 + (rounds % 64) * (len / 512);
		uint8_t st;

		vd_pattern_fill(buf, len, 900 + rounds, 0);
		/* No PTEs: the device must fault the pages back in. */
		madvise(buf, len, MADV_DONTNEED);
		madvise(self->ring->va, self->ring->size, MADV_DONTNEED);
		st = blk_rw(_metadata, self->vq, VIRTIO_BLK_T_OUT, sector, buf,
			    len, 4);
		if (st != VIRTIO_BLK_S_OK)
			break;
		memset(buf, 0, len);
		madvise(buf, len, MADV_DONTNEED);
		st = blk_rw(_metadata, self->vq, VIRTIO_BLK_T_IN, sector, buf,
			    len, 4);
		if (st != VIRTIO_BLK_S_OK ||
		    vd_pattern_check(buf, len, 900 + rounds, 0) != -1) {
			EXPECT_EQ(VIRTIO_BLK_S_OK, st) TH_LOG("round %llu",
				(unsigned long long)rounds);
			EXPECT_EQ(-1, vd_pattern_check(buf, len, 900 + rounds,
						       0));
			break;
		}
		rounds++;
	}
	atomic_store(&mr.stop, true);
	pthread_join(mapper, NULL);
	pthread_join(churner, NULL);
	EXPECT_EQ(0, mr.err) TH_LOG("helper thread: %s", strerror(mr.err));
	TH_LOG("%llu write+read rounds, %lu map/unmap pairs, %lu mmap/munmap",
	       (unsigned long long)rounds, atomic_load(&mr.maps),
	       atomic_load(&mr.mmaps));
	EXPECT_LE(20, rounds);
	EXPECT_LE(20, atomic_load(&mr.maps));
	vd_region_destroy(mr.spare);
	check_poison(_metadata, self);
}

/* Unmap the data region, then I/O to it fails; remap elsewhere, works. */
TEST_F_TIMEOUT(blk, iotlb_unmap_remap, TEST_TIMEOUT)
{
	uint8_t *buf = vd_alloc(self->data, 8192, 512);
	uint64_t old_iova;
	struct vd_io io;
	uint8_t st;
	int i;

	ASSERT_NE(NULL, buf);
	vd_pattern_fill(buf, 8192, 55, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_rw(_metadata, self->vq,
					  VIRTIO_BLK_T_OUT, 512, buf, 8192, 2));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, vd_region_unmap(self->data))
			TH_LOG("%s", vd_last_error);
		ASSERT_EQ(0, vd_region_map(self->data,
					   pick_iova(self->dev, 1 + i % 2),
					   VHOST_ACCESS_RW))
			TH_LOG("%s", vd_last_error);
		memset(buf, 0, 8192);
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  blk_rw(_metadata, self->vq, VIRTIO_BLK_T_IN, 512,
				 buf, 8192, 1 + i))
			TH_LOG("round %d", i);
		ASSERT_EQ(-1, vd_pattern_check(buf, 8192, 55, 0));
	}
	/*
	 * A read into an IOVA that is no longer mapped: the request header
	 * and status live in the (mapped) ring region, the data does not.
	 */
	memset(buf, 0, 4096);
	old_iova = vd_iova(self->dev, buf);
	ASSERT_EQ(0, vd_region_unmap(self->data));
	vd_io_init(&io, VIRTIO_BLK_T_IN, 512, buf, 4096, 1);
	io.use_iova = true;
	io.data_iova = old_iova;
	ASSERT_EQ(0, vd_submit(self->vq, &io));
	ASSERT_EQ(0, vd_kick(self->vq));
	st = 0xff;
	if (!vd_wait_one(self->vq, IO_TIMEOUT_MS, NULL))
		st = io.status;
	if (dut_is_sim()) {
		ASSERT_EQ(VIRTIO_BLK_S_IOERR, st);
	} else if (st != VIRTIO_BLK_S_IOERR) {
		uint8_t dst = 0;

		/* Or the device says it needs a reset, but never hangs. */
		ASSERT_EQ(0, vd_get_status(self->dev, &dst));
		ASSERT_TRUE(dst & VIRTIO_CONFIG_S_NEEDS_RESET)
			TH_LOG("status byte %s, device status 0x%x",
			       vd_status_name(st), dst);
		return;
	}
	/* The buffer was not mapped: the device must not have touched it. */
	for (i = 0; i < 4096; i++)
		ASSERT_EQ(0, buf[i]) TH_LOG("byte %d", i);
	ASSERT_EQ(0, vd_region_map(self->data, pick_iova(self->dev, 1),
				   VHOST_ACCESS_RW));
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_rw(_metadata, self->vq, VIRTIO_BLK_T_IN,
					  512, buf, 8192, 2));
	ASSERT_EQ(-1, vd_pattern_check(buf, 8192, 55, 0));
	check_poison(_metadata, self);
}

/* Several regions at chosen IOVAs, one request spanning all of them. */
TEST_F(blk, multi_region)
{
	struct vd_region *r[3];
	struct iovec iov[3];
	uint8_t *p[3], *rd;
	struct vd_io io;
	int i;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, vd_region_create(self->dev, 65536, &r[i]));
		ASSERT_EQ(0, vd_region_map(r[i], pick_iova(self->dev, 4 + i) +
					   0x3000 * i, VHOST_ACCESS_RW));
		r[i]->gap = 4096;	/* a whole canary page before */
		p[i] = vd_alloc(r[i], 4096, 4096);
		ASSERT_NE(NULL, p[i]);
		vd_pattern_fill(p[i], 4096, 31, 4096 * i);
	}
	/* One write whose three data descriptors live in three regions. */
	for (i = 0; i < 3; i++) {
		iov[i].iov_base = p[i];
		iov[i].iov_len = 4096;
	}
	vd_io_init(&io, VIRTIO_BLK_T_OUT, 1024, NULL, 0, 1);
	io.iov = iov;
	io.iovcnt = 3;
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_io(_metadata, self->vq, &io));
	rd = vd_alloc(self->data, 12288, 512);
	ASSERT_NE(NULL, rd);
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_rw(_metadata, self->vq, VIRTIO_BLK_T_IN,
					  1024, rd, 12288,
					  min_segs(self->dev, 12288)));
	ASSERT_EQ(-1, vd_pattern_check(rd, 12288, 31, 0));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, vd_check_poison(r[i])) TH_LOG("%s", vd_last_error);
	check_poison(_metadata, self);
}

/* Raw descriptors: header, data and status in separate hand-built descs,
 * exposed twice in avail with one kick (the fuzzer's level of control).
 */
TEST_F(blk, raw_descriptors)
{
	struct vd_vq *vq = self->vq;
	uint8_t *hdrs = vd_alloc(self->data, 64, 16);
	uint8_t *data = vd_alloc(self->data, 1024, 512);
	uint8_t *st = vd_alloc(self->data, 2, 1);
	struct virtio_blk_outhdr *h = (void *)hdrs;
	uint32_t id, len;
	unsigned int i;
	int got;

	ASSERT_NE(NULL, hdrs);
	ASSERT_NE(NULL, data);
	ASSERT_NE(NULL, st);
	vd_pattern_fill(data, 1024, 3, 0);
	h[0].type = htole32(VIRTIO_BLK_T_OUT);
	h[0].ioprio = 0;
	h[0].sector = htole64(2048);
	h[1].type = htole32(VIRTIO_BLK_T_IN);
	h[1].ioprio = 0;
	h[1].sector = htole64(2049);
	st[0] = 0xff;
	st[1] = 0xff;
	/* Use descriptor indexes at the top of the table. */
	vd_desc_set(vq, vq->num - 1, vd_iova(self->dev, &h[0]), 16,
		    VRING_DESC_F_NEXT, vq->num - 2);
	vd_desc_set(vq, vq->num - 2, vd_iova(self->dev, data), 1024,
		    VRING_DESC_F_NEXT, vq->num - 3);
	vd_desc_set(vq, vq->num - 3, vd_iova(self->dev, &st[0]), 1,
		    VRING_DESC_F_WRITE, 0);
	/* Second request: read 512 bytes back into the second half. */
	vd_desc_set(vq, vq->num - 4, vd_iova(self->dev, &h[1]), 16,
		    VRING_DESC_F_NEXT, vq->num - 5);
	vd_desc_set(vq, vq->num - 5, vd_iova(self->dev, data + 512), 512,
		    VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, vq->num - 6);
	vd_desc_set(vq, vq->num - 6, vd_iova(self->dev, &st[1]), 1,
		    VRING_DESC_F_WRITE, 0);
	/* Keep the allocator off these descriptors. */
	for (i = 1; i <= 6; i++)
		ASSERT_EQ(0, vd_desc_take(vq, vq->num - i));
	vd_avail_put_raw(vq, vq->avail_idx, vq->num - 1);
	vd_avail_put_raw(vq, vq->avail_idx + 1, vq->num - 4);
	vd_avail_set_idx(vq, vq->avail_idx + 2);
	ASSERT_EQ(0, vd_kick(vq));
	for (got = 0; got < 2;) {
		ASSERT_EQ(0, vd_used_wait(vq, IO_TIMEOUT_MS));
		while (vd_used_pop(vq, &id, &len)) {
			/* Device processes in order for split rings here. */
			ASSERT_EQ(got ? vq->num - 4 : vq->num - 1, id);
			ASSERT_EQ(got ? 513 : 1, len)
				TH_LOG("used len of request %d", got);
			got++;
		}
	}
	ASSERT_EQ(VIRTIO_BLK_S_OK, st[0]);
	ASSERT_EQ(VIRTIO_BLK_S_OK, st[1]);
	/* Sector 2049 holds the second half of what was written. */
	ASSERT_EQ(-1, vd_pattern_check(data + 512, 512, 3, 512));
	for (i = 1; i <= 6; i++)
		vd_desc_free(vq, vq->num - i);
	check_poison(_metadata, self);
}

/* @n pattern writes of 4 KiB from @sector0, 1 or 2 descriptors each. */
#define SUSPEND_LEN	4096

static void prep_writes(struct __test_metadata *_metadata,
			FIXTURE_DATA(blk) *self, struct vd_io *ios,
			uint8_t **bufs, unsigned int n, uint64_t sector0,
			uint64_t seed)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		bufs[i] = vd_alloc(self->data, SUSPEND_LEN, 512);
		ASSERT_NE(NULL, bufs[i]);
		vd_pattern_fill(bufs[i], SUSPEND_LEN, seed + i, 0);
		vd_io_init(&ios[i], VIRTIO_BLK_T_OUT, sector0 + 8 * i, bufs[i],
			   SUSPEND_LEN, 1 + i % 2);
	}
}

/*
 * Submit @first requests, kick, suspend as soon as the device has started
 * on them; then every request it fetched must be complete (used idx ==
 * vring base).  Returns the base.
 */
static uint16_t suspend_in_flight(struct __test_metadata *_metadata,
				  FIXTURE_DATA(blk) *self, struct vd_io *ios,
				  unsigned int first)
{
	uint16_t base = 0, used;
	unsigned int i;
	uint64_t t;

	for (i = 0; i < first; i++)
		ASSERT_EQ(0, vd_submit(self->vq, &ios[i]));
	ASSERT_EQ(0, vd_kick(self->vq));
	t = vd_now_ns();
	while (vd_used_idx(self->vq) == 0 &&
	       vd_now_ns() - t < IO_TIMEOUT_MS * 1000000ULL)
		;
	ASSERT_EQ(0, vd_suspend(self->dev)) TH_LOG("%s", vd_last_error);
	ASSERT_EQ(0, vd_get_vring_base(self->dev, 0, &base))
		TH_LOG("%s", vd_last_error);
	used = vd_used_idx(self->vq);
	TH_LOG("after suspend: avail %u base %u used %u", self->vq->avail_idx,
	       base, used);
	ASSERT_LE(base, self->vq->avail_idx);
	ASSERT_EQ(base, used) TH_LOG("fetched requests not completed");
	return base;
}

/* Wait for every one of @n requests; all must succeed. */
static void wait_all_ok(struct __test_metadata *_metadata, struct vd_vq *vq,
			struct vd_io *ios, unsigned int n)
{
	unsigned int i, done = 0;
	struct vd_io *io;

	for (i = 0; i < n; i++)
		done += ios[i].done;
	while (done < n) {
		ASSERT_EQ(0, vd_wait_one(vq, IO_TIMEOUT_MS, &io))
			TH_LOG("%u of %u done", done, n);
		done++;
	}
	for (i = 0; i < n; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, ios[i].status) TH_LOG("request %u", i);
	ASSERT_EQ(0, vq->ninflight);
}

/* Read back what prep_writes() wrote. */
static void verify_writes(struct __test_metadata *_metadata,
			  FIXTURE_DATA(blk) *self, uint8_t **bufs,
			  unsigned int n, uint64_t sector0, uint64_t seed)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		memset(bufs[i], 0, SUSPEND_LEN);
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  blk_rw(_metadata, self->vq, VIRTIO_BLK_T_IN,
				 sector0 + 8 * i, bufs[i], SUSPEND_LEN, 1));
		ASSERT_EQ(-1, vd_pattern_check(bufs[i], SUSPEND_LEN, seed + i,
					       0))
			TH_LOG("request %u", i);
	}
}

/*
 * Suspend with requests in flight: after VHOST_VDPA_SUSPEND returns, every
 * request the device fetched is completed (used idx == vring base), kicks
 * during suspend change nothing, and resume processes the rest.
 */
TEST_F_TIMEOUT(blk, suspend_resume, TEST_TIMEOUT)
{
	struct vd_dev *dev = self->dev;
	/* vdpa_sim_blk handles 5 requests per pass: leave some unfetched. */
	const unsigned int n = 64, first = 48;
	struct vd_io ios[64];
	uint8_t *bufs[64];
	uint16_t base, base2, used;
	unsigned int i;
	uint64_t t;

	if (!vd_has_backend(dev, VHOST_BACKEND_F_SUSPEND) ||
	    !vd_has_backend(dev, VHOST_BACKEND_F_RESUME))
		SKIP(return, "backend features 0x%llx: no SUSPEND/RESUME",
		     (unsigned long long)dev->backend_offered);
	prep_writes(_metadata, self, ios, bufs, n, 4096, 500);
	base = suspend_in_flight(_metadata, self, ios, first);
	used = vd_used_idx(self->vq);
	/* The rest while suspended: nothing may move. */
	for (i = first; i < n; i++)
		ASSERT_EQ(0, vd_submit(self->vq, &ios[i]));
	ASSERT_EQ(0, vd_kick(self->vq));
	t = vd_now_ns();
	while (vd_now_ns() - t < QUIET_MS * 1000000ULL)
		usleep(10000);
	ASSERT_EQ(used, vd_used_idx(self->vq));
	ASSERT_EQ(0, vd_get_vring_base(dev, 0, &base2));
	ASSERT_EQ(base, base2);
	/* The kick made while suspended must be remembered: no new kick. */
	ASSERT_EQ(0, vd_resume(dev)) TH_LOG("%s", vd_last_error);
	wait_all_ok(_metadata, self->vq, ios, n);
	verify_writes(_metadata, self, bufs, n, 4096, 500);
	/* Suspend/resume with nothing in flight is harmless. */
	ASSERT_EQ(0, vd_suspend(dev));
	ASSERT_EQ(0, vd_resume(dev));
	ASSERT_EQ(VIRTIO_BLK_S_OK, blk_rw(_metadata, self->vq, VIRTIO_BLK_T_IN,
					  4096, bufs[0], SUSPEND_LEN, 1));
	check_poison(_metadata, self);
}

/*
 * Live-migration shape on one device: suspend with requests in flight,
 * read the vring base, queue more while suspended, reset the device but
 * keep the rings and memory, negotiate again, restore the vq at the base
 * and run: every request completes exactly once and the data is there.
 */
TEST_F_TIMEOUT(blk, migrate, TEST_TIMEOUT)
{
	struct vd_dev *dev = self->dev;
	/* Unreaped, 64 requests of 3 or 4 descriptors fit 256 entries. */
	const unsigned int n = 64, first = 48;
	uint64_t features = dev->features;
	struct vd_io ios[64];
	uint8_t *bufs[64];
	unsigned int i;
	uint16_t base;

	if (!vd_has_backend(dev, VHOST_BACKEND_F_SUSPEND))
		SKIP(return, "backend features 0x%llx: no SUSPEND",
		     (unsigned long long)dev->backend_offered);
	prep_writes(_metadata, self, ios, bufs, n, 16384, 900);
	base = suspend_in_flight(_metadata, self, ios, first);
	for (i = first; i < n; i++)
		ASSERT_EQ(0, vd_submit(self->vq, &ios[i]));
	ASSERT_EQ(0, vd_kick(self->vq));

	/*
	 * The "destination": the same guest memory and rings (in flight
	 * descriptors hold their IOVAs), fresh device state.
	 */
	ASSERT_EQ(0, vd_reset_keep_rings(dev)) TH_LOG("%s", vd_last_error);
	ASSERT_EQ(0, vd_handshake(dev, features)) TH_LOG("%s", vd_last_error);
	ASSERT_EQ(features, dev->features);
	ASSERT_EQ(0, vd_vq_restore(dev, 0, base)) TH_LOG("%s", vd_last_error);
	vd_vq_set_interrupts(self->vq, variant->interrupts);
	ASSERT_EQ(0, vd_driver_ok(dev));
	ASSERT_EQ(0, vd_kick(self->vq));
	wait_all_ok(_metadata, self->vq, ios, n);
	ASSERT_EQ(n, vd_used_idx(self->vq));
	verify_writes(_metadata, self, bufs, n, 16384, 900);
	check_poison(_metadata, self);
}

/* All queues at once, each on its own disk area. */
TEST_F_TIMEOUT(blk, multi_queue, TEST_TIMEOUT)
{
	struct vd_dev *dev = self->dev;
	unsigned int nq, q, r;
	const unsigned int per_q = 4, len = 4096;
	struct vd_io ios[VD_MAX_VQS][4];
	uint8_t *bufs[VD_MAX_VQS][4];

	nq = vd_has_feature(dev, VIRTIO_BLK_F_MQ) ?
		le16toh(dev->cfg.num_queues) : 1;
	if (nq > dev->nvqs)
		nq = dev->nvqs;
	if (nq > VD_MAX_VQS)
		nq = VD_MAX_VQS;
	if (nq < 2)
		SKIP(return, "device has %u queue(s)", nq);
	ASSERT_EQ(0, vd_reset(dev));
	self->qsize = self->qsize > 64 ? 64 : self->qsize;
	/* Rings of all queues in a region of their own, at its own IOVA. */
	ASSERT_EQ(0, vd_region_create(dev, nq * vd_vq_mem_size(self->qsize),
				      &self->ring));
	ASSERT_EQ(0, vd_region_map(self->ring, pick_iova(dev, 8),
				   VHOST_ACCESS_RW))
		TH_LOG("%s", vd_last_error);
	blk_start(_metadata, self, variant, nq);
	for (q = 0; q < nq; q++) {
		for (r = 0; r < per_q; r++) {
			bufs[q][r] = vd_alloc(self->data, len, 512);
			ASSERT_NE(NULL, bufs[q][r]);
			vd_pattern_fill(bufs[q][r], len, q * 100 + r, 0);
			vd_io_init(&ios[q][r], VIRTIO_BLK_T_OUT,
				   8192 + (q * per_q + r) * 8, bufs[q][r], len,
				   1 + r);
			ASSERT_EQ(0, vd_submit(&dev->vqs[q], &ios[q][r]));
		}
	}
	for (q = 0; q < nq; q++)
		ASSERT_EQ(0, vd_kick(&dev->vqs[q]));
	for (q = 0; q < nq; q++) {
		for (r = 0; r < per_q; r++) {
			struct vd_io *io;

			ASSERT_EQ(0, vd_wait_one(&dev->vqs[q], IO_TIMEOUT_MS,
						 &io))
				TH_LOG("queue %u", q);
			ASSERT_EQ(VIRTIO_BLK_S_OK, io->status);
		}
	}
	/* Read back each queue's data through the next queue. */
	for (q = 0; q < nq; q++) {
		for (r = 0; r < per_q; r++) {
			memset(bufs[q][r], 0, len);
			ASSERT_EQ(VIRTIO_BLK_S_OK,
				  blk_rw(_metadata, &dev->vqs[(q + 1) % nq],
					 VIRTIO_BLK_T_IN,
					 8192 + (q * per_q + r) * 8,
					 bufs[q][r], len, 1));
			ASSERT_EQ(-1, vd_pattern_check(bufs[q][r], len,
						       q * 100 + r, 0));
		}
	}
	check_poison(_metadata, self);
}

/* ---- device selection ------------------------------------------------- */

static void find_default_dev(void)
{
	struct dirent *de;
	DIR *d = opendir("/dev");
	int best = INT_MAX;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int n;

		if (sscanf(de->d_name, "vhost-vdpa-%d", &n) == 1 && n < best) {
			best = n;
			snprintf(dut_path, sizeof(dut_path), "/dev/%.64s",
				 de->d_name);
		}
	}
	closedir(d);
}

/*
 * /sys/dev/char/MAJ:MIN of /dev/vhost-vdpa-N resolves to
 * .../<vdpa dev>/vhost-vdpa-N; "vdpa dev show <vdpa dev>" names the
 * management device ("blk0: type block mgmtdev vdpasim_blk ...").  The
 * lab passes VDPA_MGMTDEV; this is the fallback for manual runs.
 */
static void find_mgmtdev(void)
{
	char link[64], real[PATH_MAX], cmd[PATH_MAX + 64], line[512];
	struct stat st;
	char *p, *name;
	FILE *f;

	if (stat(dut_path, &st) || !S_ISCHR(st.st_mode))
		return;
	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u", major(st.st_rdev),
		 minor(st.st_rdev));
	if (!realpath(link, real))
		return;
	p = strrchr(real, '/');
	if (!p)
		return;
	*p = 0;
	name = strrchr(real, '/');
	if (!name || strpbrk(name + 1, "'\"$`\\"))
		return;
	snprintf(cmd, sizeof(cmd), "vdpa dev show '%s' 2>/dev/null", name + 1);
	f = popen(cmd, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, " mgmtdev ");
		if (p && sscanf(p, " mgmtdev %63s", dut_mgmtdev) == 1)
			break;
	}
	pclose(f);
}

int main(int argc, char **argv)
{
	/* Take our options out before the harness parses the rest. */
	argc = vd_dut_args(argc, argv, dut_path, sizeof(dut_path), dut_mgmtdev,
			   sizeof(dut_mgmtdev));
	if (!dut_path[0])
		find_default_dev();
	if (!dut_mgmtdev[0] && dut_path[0])
		find_mgmtdev();
	if (getenv("VDPA_DRV_VERBOSE"))
		vd_verbose = 1;
	ksft_print_msg("device under test: %s (mgmtdev %s)\n",
		       dut_path[0] ? dut_path : "none",
		       dut_mgmtdev[0] ? dut_mgmtdev : "unknown");
	return test_harness_run(argc, argv);
}
