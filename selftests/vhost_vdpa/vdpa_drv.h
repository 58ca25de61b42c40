/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vdpa_drv: a small userspace virtio-blk driver for /dev/vhost-vdpa-N.
 *
 * Three layers, each usable on its own:
 *
 *  1. Control: open, owner, backend features, device features, config,
 *     status handshake, reset, suspend/resume, vring state (vd_open() ...).
 *  2. Memory: memfd-backed shared regions mapped into the device IOTLB with
 *     VHOST_IOTLB_MSG_V2 at chosen IOVAs; a bump allocator inside a region
 *     that surrounds every buffer with poison so stray device writes are
 *     found (vd_region_*(), vd_alloc(), vd_check_poison()).
 *  3. Rings and requests: split virtqueues whose descriptors and avail
 *     entries can be written raw (vd_desc_set(), vd_avail_put_raw() ...)
 *     for hostile-guest tests, and a high-level virtio-blk request API
 *     (struct vd_io, vd_submit(), vd_wait() ...).
 *
 * Functions return 0 or a negative errno and print nothing unless
 * vd_verbose is set; vd_strerror-style context is left in vd_last_error.
 * Nothing here is thread-safe: one thread drives one struct vd_dev.
 */
#ifndef VDPA_DRV_H
#define VDPA_DRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_ring.h>

#include "compat.h"

#define VD_SECTOR_SHIFT		9
#define VD_SECTOR_SIZE		(1U << VD_SECTOR_SHIFT)
#define VD_MAX_VQS		16
#define VD_MAX_REGIONS		16
#define VD_MAX_ALLOCS		4096
#define VD_POISON		0xa5
/* Descriptors an indirect table of the high-level API may hold. */
#define VD_MAX_INDIRECT		64
/* DISCARD/WRITE_ZEROES segments one high-level request may carry. */
#define VD_MAX_DWZ_SEGS		16

/*
 * Per-head request area of the high-level API (vd_vq.slots + head *
 * VD_SLOT_SIZE), carved once per vq: the request header, the status byte,
 * DISCARD/WRITE_ZEROES segments and an indirect table.
 */
#define VD_SLOT_HDR		0
#define VD_SLOT_STATUS		16
#define VD_SLOT_DWZ		32
#define VD_SLOT_INDIRECT	(VD_SLOT_DWZ + VD_MAX_DWZ_SEGS * 16)
#define VD_SLOT_SIZE							\
	((VD_SLOT_INDIRECT + VD_MAX_INDIRECT * 16 + 63) & ~63)

/* Features the library understands and asks for by default. */
#define VD_DEFAULT_FEATURES					\
	((1ULL << VIRTIO_F_VERSION_1) |				\
	 (1ULL << VIRTIO_F_ACCESS_PLATFORM) |			\
	 (1ULL << VIRTIO_F_ANY_LAYOUT) |			\
	 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |		\
	 (1ULL << VIRTIO_BLK_F_SIZE_MAX) |			\
	 (1ULL << VIRTIO_BLK_F_SEG_MAX) |			\
	 (1ULL << VIRTIO_BLK_F_GEOMETRY) |			\
	 (1ULL << VIRTIO_BLK_F_RO) |				\
	 (1ULL << VIRTIO_BLK_F_BLK_SIZE) |			\
	 (1ULL << VIRTIO_BLK_F_FLUSH) |				\
	 (1ULL << VIRTIO_BLK_F_TOPOLOGY) |			\
	 (1ULL << VIRTIO_BLK_F_CONFIG_WCE) |			\
	 (1ULL << VIRTIO_BLK_F_MQ) |				\
	 (1ULL << VIRTIO_BLK_F_DISCARD) |			\
	 (1ULL << VIRTIO_BLK_F_WRITE_ZEROES))

/* Backend features asked for when the kernel offers them. */
#define VD_WANT_BACKEND_FEATURES				\
	((1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) |		\
	 (1ULL << VHOST_BACKEND_F_IOTLB_BATCH) |		\
	 (1ULL << VHOST_BACKEND_F_SUSPEND) |			\
	 (1ULL << VHOST_BACKEND_F_RESUME) |			\
	 (1ULL << VHOST_BACKEND_F_IOTLB_PERSIST))

extern int vd_verbose;
/* Human-readable context of the last failure (static buffer). */
extern char vd_last_error[256];

struct vd_dev;

/* One memfd-backed shared mapping and its place in the device IOTLB. */
struct vd_region {
	struct vd_dev *dev;
	int memfd;
	uint8_t *va;		/* start of the mapping */
	size_t size;		/* bytes, a multiple of the page size */
	uint64_t iova;		/* IOVA of va[0] while mapped */
	uint8_t perm;		/* VHOST_ACCESS_* */
	bool mapped;
	bool wrapped;		/* the caller's memory: see vd_region_wrap() */
	/*
	 * Bump allocator: [off, off + len) of live buffers, sorted; @gap
	 * poison bytes before each buffer (64; a page gives canary pages).
	 */
	size_t gap;
	size_t brk;
	unsigned int nallocs;
	struct { size_t off, len; } allocs[VD_MAX_ALLOCS];
};

struct vd_io;

/* Split virtqueue state, driver side. */
struct vd_vq {
	struct vd_dev *dev;
	unsigned int index;
	unsigned int num;		/* 0 when not set up */
	struct vd_region *region;	/* holds rings and per-slot areas */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint64_t desc_iova, avail_iova, used_iova;
	int kickfd, callfd;
	uint16_t avail_idx;	/* shadow of avail->idx, next to publish */
	uint16_t last_used;	/* next used entry to consume */
	/* descriptor allocator: stack of free indices */
	uint16_t *free_stack;
	unsigned int nfree;
	/* per-head bookkeeping of the high-level API */
	struct vd_io **inflight;	/* by head */
	unsigned int ninflight;
	uint8_t *slots;			/* num * VD_SLOT_SIZE bytes in region */
	unsigned int ring_num;		/* entries the ring memory holds */
	bool no_interrupt;		/* VRING_AVAIL_F_NO_INTERRUPT set */
	bool busy_poll;			/* vd_used_wait() spins, no poll() */
	unsigned long spurious;		/* used ids with no request */
};

struct vd_dev {
	int fd;
	char path[64];
	uint32_t device_id;
	uint64_t backend_offered, backend_acked;
	uint64_t dev_features, features;	/* offered, negotiated */
	uint32_t config_size;
	struct virtio_blk_config cfg;
	uint16_t vq_num_max;
	uint32_t nvqs;
	uint64_t iova_first, iova_last;
	struct vd_region *regions[VD_MAX_REGIONS];
	struct vd_vq vqs[VD_MAX_VQS];
};

/* ---- control ---------------------------------------------------------- */

/* Open a vhost-vdpa char device, SET_OWNER, negotiate backend features,
 * read device id, features, config, queue limits and IOVA range.
 */
int vd_open(const char *path, struct vd_dev **devp);
/* Tear down all vqs and regions (no reset), close the fd, free. */
void vd_close(struct vd_dev *dev);
int vd_get_status(struct vd_dev *dev, uint8_t *status);
int vd_set_status(struct vd_dev *dev, uint8_t status);
/* Reset (status 0); forget driver-side vq state; re-send the IOTLB
 * mappings unless VHOST_BACKEND_F_IOTLB_PERSIST was acked.
 */
int vd_reset(struct vd_dev *dev);
/* Reset, ACK|DRIVER, SET_FEATURES(VERSION_1|ACCESS_PLATFORM|(want&offered)),
 * FEATURES_OK and check it stuck.  Leaves dev->features.
 */
int vd_negotiate(struct vd_dev *dev, uint64_t want);
/* vd_negotiate() without the reset (after vd_reset_keep_rings()). */
int vd_handshake(struct vd_dev *dev, uint64_t want);
/* Reset the device but keep the driver side of every vq (ring memory,
 * avail/used shadows, requests in flight), as a migration destination
 * sees the guest's rings; continue with vd_handshake(), vd_vq_restore().
 */
int vd_reset_keep_rings(struct vd_dev *dev);
/* Raw VHOST_SET_FEATURES with exactly these bits (fuzzing). */
int vd_set_features_raw(struct vd_dev *dev, uint64_t features);
/* Re-read the whole config space into dev->cfg. */
int vd_read_config(struct vd_dev *dev);
int vd_driver_ok(struct vd_dev *dev);
int vd_suspend(struct vd_dev *dev);
int vd_resume(struct vd_dev *dev);
bool vd_has_backend(const struct vd_dev *dev, unsigned int bit);
bool vd_has_feature(const struct vd_dev *dev, unsigned int bit);
int vd_get_vring_base(struct vd_dev *dev, unsigned int idx, uint16_t *base);
int vd_set_vring_base(struct vd_dev *dev, unsigned int idx, uint16_t base);
int vd_set_vring_enable(struct vd_dev *dev, unsigned int idx, bool on);
/* VHOST_VDPA_GET_VRING_SIZE (6.9+); -EOPNOTSUPP when absent. */
int vd_get_vring_size(struct vd_dev *dev, unsigned int idx, uint16_t *num);
/* Capacity in sectors, from the cached config. */
uint64_t vd_capacity(const struct vd_dev *dev);

/* ---- memory ----------------------------------------------------------- */

/* memfd of @size bytes (rounded up to pages), MAP_SHARED, filled with
 * VD_POISON; not yet mapped into the IOTLB.
 */
int vd_region_create(struct vd_dev *dev, size_t size, struct vd_region **rp);
/* IOTLB UPDATE of the whole region at @iova with @perm (VHOST_ACCESS_*). */
int vd_region_map(struct vd_region *r, uint64_t iova, uint8_t perm);
/* IOTLB INVALIDATE of the whole region. */
int vd_region_unmap(struct vd_region *r);
/* Unmap if mapped, free the memory (a wrapped region's memory stays). */
void vd_region_destroy(struct vd_region *r);
/* A region over @size bytes of the caller's memory at @va (anonymous, a
 * file mapping...), for vd_alloc() and vd_check_poison() only: it is not
 * in dev->regions (vd_iova() does not see it), is never mapped by the
 * library, and vd_region_destroy() frees only the descriptor.  The
 * memory is not poisoned here.
 */
int vd_region_wrap(struct vd_dev *dev, void *va, size_t size,
		   struct vd_region **rp);
/* Carve @len bytes aligned to @align (power of two) with at least
 * r->gap poison bytes before it; NULL when full.  Memory is poisoned.
 */
void *vd_alloc(struct vd_region *r, size_t len, size_t align);
/* Forget all allocations of the region and re-poison it. */
void vd_region_reset_alloc(struct vd_region *r);
/* Forget the allocation that starts at @p: its bytes are poisoned again
 * and checked by vd_check_poison() from now on.  -ENOENT if none does.
 */
int vd_free(struct vd_region *r, void *p);
/* Check every byte of the region outside live allocations still holds
 * VD_POISON; returns 0 or -EFAULT and describes the first bad byte.
 */
int vd_check_poison(struct vd_region *r);
/* Translate a pointer inside a mapped region to its IOVA; ~0 if none. */
uint64_t vd_iova(struct vd_dev *dev, const void *p);
/* One IOTLB message of any type, as given: 0 or -errno. */
int vd_iotlb_msg(struct vd_dev *dev, uint8_t type, uint64_t iova,
		 uint64_t size, uint64_t uaddr, uint8_t perm);
/* Raw IOTLB messages (batch begin/end are sent only if acked unless
 * @force).
 */
int vd_iotlb_update(struct vd_dev *dev, uint64_t iova, uint64_t size,
		    uint64_t uaddr, uint8_t perm);
int vd_iotlb_invalidate(struct vd_dev *dev, uint64_t iova, uint64_t size);
int vd_iotlb_batch(struct vd_dev *dev, bool begin, bool force);

/* ---- virtqueues ------------------------------------------------------- */

/* Lay out a split ring of @num entries (and per-slot request areas) in
 * @r, create kick/call eventfds, and issue SET_VRING_NUM/ADDR/BASE(0)/
 * KICK/CALL and VHOST_VDPA_SET_VRING_ENABLE(1).
 */
int vd_vq_setup(struct vd_dev *dev, unsigned int idx, unsigned int num,
		struct vd_region *r);
/* Program an already laid-out vq again (ring at its region's current
 * IOVA) and start the device at avail index @base; memory and driver
 * state are left alone.
 */
int vd_vq_restore(struct vd_dev *dev, unsigned int idx, uint16_t base);
/* Region bytes vd_vq_setup() carves for a ring of @num entries. */
size_t vd_vq_mem_size(unsigned int num);
/* Move the used ring of a set-up vq to @used (4-byte aligned, inside a
 * mapped region, room for its @num entries and avail_event): the queue
 * is disabled, given the new address and enabled again.  For layouts
 * vd_vq_setup() does not carve, such as a used ring that straddles two
 * pages mapped with different permissions.  Call before DRIVER_OK.
 */
int vd_vq_set_used(struct vd_vq *vq, void *used);
/* Forget driver-side state of a vq (fds closed, ring memory kept). */
void vd_vq_release(struct vd_vq *vq);
/* Signal the kick eventfd. */
int vd_kick(struct vd_vq *vq);
/* Set/clear VRING_AVAIL_F_NO_INTERRUPT. */
void vd_vq_set_interrupts(struct vd_vq *vq, bool on);

/* Raw descriptor access: full control of every field. */
void vd_desc_set(struct vd_vq *vq, unsigned int i, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next);
/* Write avail->ring[@slot % num] = @head (no index change). */
void vd_avail_put_raw(struct vd_vq *vq, uint16_t slot, uint16_t head);
/* Publish avail->idx = @idx (release store) and update the shadow. */
void vd_avail_set_idx(struct vd_vq *vq, uint16_t idx);
/* ring[avail_idx] = head; avail->idx++ (publish). */
void vd_avail_push(struct vd_vq *vq, uint16_t head);
/* Current used->idx (acquire). */
uint16_t vd_used_idx(const struct vd_vq *vq);
/* Pop the next used element if any: 1 and fills id/len, 0 if none. */
int vd_used_pop(struct vd_vq *vq, uint32_t *id, uint32_t *len);
/* Wait until used->idx != last_used or the timeout; poll()s the call
 * eventfd in short slices so it works with or without interrupts.
 * 0 when something is there, -ETIMEDOUT otherwise.
 */
int vd_used_wait(struct vd_vq *vq, int timeout_ms);
/* Descriptor index allocator used by the high-level API. */
int vd_desc_alloc(struct vd_vq *vq);
void vd_desc_free(struct vd_vq *vq, uint16_t i);
/* Take a chosen index off the free stack (for raw chains); -EBUSY if it
 * is in use.  Give it back with vd_desc_free().
 */
int vd_desc_take(struct vd_vq *vq, uint16_t i);

/* ---- virtio-blk requests ---------------------------------------------- */

enum vd_dir { VD_DIR_AUTO, VD_DIR_NONE, VD_DIR_OUT, VD_DIR_IN };

/* One high-level request.  The caller fills the inputs; the library the
 * rest.  @buf must lie in a mapped region (see vd_alloc()).
 */
struct vd_io {
	/* inputs */
	uint32_t type;		/* VIRTIO_BLK_T_* (any value allowed) */
	uint64_t sector;
	void *buf;		/* data; for DISCARD/WRITE_ZEROES, NULL to
				 * use @dwz below
				 */
	uint32_t len;
	unsigned int nsegs;	/* split data across this many descriptors */
	/* or: one data descriptor per element (overrides buf/len/nsegs) */
	const struct iovec *iov;
	unsigned int iovcnt;
	/* or: data at this IOVA, untranslated (need not be mapped) */
	bool use_iova;
	uint64_t data_iova;
	enum vd_dir dir;	/* AUTO: derived from type */
	bool indirect;		/* put the chain in an indirect table */
	/* DISCARD/WRITE_ZEROES ranges when buf is NULL */
	unsigned int ndwz;
	struct virtio_blk_discard_write_zeroes dwz[VD_MAX_DWZ_SEGS];
	/* outputs */
	bool done;
	uint8_t status;		/* VIRTIO_BLK_S_* or 0xff if not written */
	uint32_t used_len;
	uint16_t head;
	uint64_t t_submit_ns, t_done_ns;
	void *priv;		/* caller's */
};

/* Build the chain (header, data split in nsegs, status) and expose it in
 * avail; does not kick.  -ENOSPC when descriptors run out.
 */
int vd_submit(struct vd_vq *vq, struct vd_io *io);
/* Consume available used entries, completing their vd_io; returns the
 * number completed (stores at most @max of them in @out if non-NULL).
 */
int vd_reap(struct vd_vq *vq, struct vd_io **out, unsigned int max);
/* vd_used_wait() + vd_reap() for one completion; -ETIMEDOUT. */
int vd_wait_one(struct vd_vq *vq, int timeout_ms, struct vd_io **iop);
/* Submit, kick, wait for this request (others complete on the way);
 * returns 0 with io->status set, or -ETIMEDOUT / -errno.  After a timeout
 * the request is still in flight: reset the device before @io goes away.
 */
int vd_io_sync(struct vd_vq *vq, struct vd_io *io, int timeout_ms);
/* Fill a vd_io for common requests (len in bytes). */
void vd_io_init(struct vd_io *io, uint32_t type, uint64_t sector,
		void *buf, uint32_t len, unsigned int nsegs);
/* One-segment DISCARD or WRITE_ZEROES (flags: VIRTIO_BLK_WRITE_ZEROES_*). */
void vd_io_init_dwz(struct vd_io *io, uint32_t type, uint64_t sector,
		    uint32_t nsectors, uint32_t flags);

/* ---- helpers ---------------------------------------------------------- */

uint64_t vd_now_ns(void);
/* The next number of a splitmix64 sequence whose state is *state. */
uint64_t vd_splitmix64(uint64_t *state);
/* The device under test: $VDPA_DEV and $VDPA_MGMTDEV, then --dev PATH and
 * --mgmtdev NAME taken out of argv (the rest stays, in order, for the
 * harness).  Returns the new argc.
 */
int vd_dut_args(int argc, char **argv, char *path, size_t path_len,
		char *mgmtdev, size_t mgmtdev_len);
const char *vd_status_name(uint8_t status);
/* Deterministic pattern for (seed, byte offset); fill and check. */
void vd_pattern_fill(void *buf, size_t len, uint64_t seed, uint64_t off);
/* Returns -1 if ok, or the offset of the first mismatching byte. */
long vd_pattern_check(const void *buf, size_t len, uint64_t seed,
		      uint64_t off);

#endif /* VDPA_DRV_H */
