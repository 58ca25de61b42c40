/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vdpa-blk-sw: software vDPA virtio-blk device backed by a file or a block
 * device.  Internal definitions shared by the files of the module.
 */
#ifndef _VDPA_BLK_SW_H
#define _VDPA_BLK_SW_H

#include <linux/bvec.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/log2.h>
#include <linux/llist.h>
#include <linux/mempool.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/vdpa.h>
#include <linux/vhost_iotlb.h>
#include <linux/virtio_blk.h>
#include <linux/vringh.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <uapi/linux/vdpa_blk_sw.h>
#include <uapi/linux/virtio_config.h>

#include "compat.h"

/*
 * Largest ring offered to virtio_vdpa when queue_size is 0 (the default),
 * which is also virtio_blk's blk-mq queue depth per queue, as null_blk's
 * default (vbs_config_queue_size()).  make bench measured no IOPS lost
 * against 1024 from QD1 to four jobs at QD32; seg_max is then 62.
 */
#define VBS_QUEUE_SIZE_KERNEL	64
/* Data segments per request; the guest is told seg_max = this (at most). */
#define VBS_SEG_MAX		254
/*
 * Bytes per segment (size_max).  One page: a segment then spans at most two
 * pages, so a request of seg_max segments always fits VBS_MAX_BVECS
 * bio_vecs however scattered the guest's memory is.
 */
#define VBS_SIZE_MAX		PAGE_SIZE
/* iovec entries a vringh_kiov keeps between requests: a legal chain's */
#define VBS_KIOV_KEEP		roundup_pow_of_two(VBS_SEG_MAX + 2)
/* bio_vecs one request may use: 4 MiB in pinned pages (VA mode). */
#define VBS_MAX_BVECS		1024
/* 64 KiB in pages; as large as @dwz, which shares its room */
#define VBS_INLINE_BVECS	16
/*
 * Arrays of VBS_MAX_BVECS bio_vecs a running device keeps in reserve: one
 * lets its requests progress, one at a time, when kmalloc() fails (each
 * array is 16 KiB that every idle bound device holds).
 */
#define VBS_BVEC_POOL_MIN	1
/* Ranges in one DISCARD or WRITE_ZEROES request. */
#define VBS_MAX_DWZ_SEGS	16
#define VBS_MAX_DWZ_SECTORS	(UINT_MAX >> SECTOR_SHIFT << SECTOR_SHIFT)
/* Requests one virtqueue may start in one pass of the worker. */
#define VBS_BUDGET		64
/*
 * Request slots a queue gets when the driver starts it: the requests a
 * QD1 to QD16 workload keeps in flight on it (one fio job, make demo's
 * QD16), 8 KiB.  More only for a driver that keeps more in flight.
 */
#define VBS_SLOTS_FIRST		16
/* Slots a queue adds at a time, from its worker, up to its ring's size */
#define VBS_SLOTS_GROW		16
/*
 * IOTLB entries the device keeps at least; set_map() takes as many as
 * vhost-vdpa's tree holds (its max_iotlb_entries), since in PA mode each
 * physically contiguous run of pinned pages is one entry.
 */
#define VBS_MAX_IOTLB_ENTRIES	16384

/**
 * struct vbs_params - everything that defines a device: a field for each
 *	line of include/uapi/linux/vdpa_blk_sw_params.h, of its type
 * @backing: path of the backing file or block device, empty for the
 *	embedded memory (shmem) backing
 * @size: size in bytes of the embedded backing
 * @read_only: expose the disk read-only (VIRTIO_BLK_F_RO)
 * @direct: open the backing with O_DIRECT
 * @num_queues: number of request virtqueues
 * @num_workers: dedicated polling threads; queue i is served by thread
 *	i % num_workers; 0: the queues are served by the shared per-CPU pool
 *	(pool.c), or by one dedicated thread per queue with @use_va
 * @queue_size: maximum virtqueue size reported to drivers
 * @block_size: logical block size reported to the guest
 * @serial: identifier returned by GET_ID (at most 20 bytes)
 * @poll_idle_us: busy-poll window in microseconds after the last pass
 *	that found work (a request or a completion): the window itself, or
 *	its bound with @poll_adaptive; 0 disables polling
 * @poll_adaptive: each worker sizes its window within @poll_idle_us from
 *	the idle periods it sees
 * @iopoll: submit with IOCB_HIPRI and reap with ->iopoll()
 * @use_va: offer vhost-vdpa's VA mode (guest memory by user address)
 * @shared: let other devices with @shared open the same backing
 *
 * A device gets a copy at creation.  The live ones (VBS_PF_LIVE:
 * @poll_idle_us, @poll_adaptive) change later through sysfs: read them
 * with READ_ONCE().
 */
struct vbs_params {
	char backing[VBS_BACKING_MAX + 1];
	u64 size;
	bool read_only;
	bool direct;
	u32 num_queues;
	u32 num_workers;
	u32 queue_size;
	u32 block_size;
	char serial[VBS_SERIAL_MAX + 1];
	u32 poll_idle_us;
	bool poll_adaptive;
	bool iopoll;
	bool use_va;
	bool shared;
};

/**
 * struct vbs_param_info - one line of the parameter table
 * @name: its configfs and sysfs attribute
 * @type: how it is read and written
 * @flags: VBS_PF_*
 * @offset: of its field in struct vbs_params
 * @min: smallest value of a number
 * @max: largest value of a number, longest string
 */
struct vbs_param_info {
	const char *name;
	enum vbs_param_type type;
	unsigned int flags;
	size_t offset;
	u64 min;
	u64 max;
};

extern const struct vbs_param_info vbs_param_table[VBS_NR_PARAMS];

/**
 * struct vbs_param_val - a value written to a parameter, parsed
 * @num: a number or boolean
 * @str: a string, allocated
 */
struct vbs_param_val {
	u64 num;
	char *str;
};

struct vbs_dev;
struct vbs_vq;
struct vbs_affinity;
struct vbs_pool_worker;

/* What sysfs shows of the worker serving a queue (sysfs.c, pool.c). */
enum vbs_worker_attr {
	VBS_WORKER_PID,
	VBS_WORKER_CPU,
	VBS_WORKER_WINDOW,
};

/**
 * struct vbs_worker - a polling thread serving a group of virtqueues
 * @dev: owning device; NULL for a pool worker (pool.c), which serves
 *	queues of any number of devices
 * @task: the kthread
 * @index: serves the virtqueues whose index modulo the number of workers
 *	is @index
 * @kicked: a notification arrived since the thread last looked
 * @mm: the address space the thread has adopted (VA mode), with a
 *	reference on its users
 * @poll_ns: the adaptive busy-poll window; written only by the thread,
 *	and capped when read at the device's poll_idle_us, which may have
 *	been lowered since
 * @kick_ns: when the driver first kicked the thread since it last went to
 *	sleep (0: not yet), so that the adaptive rule measures how long the
 *	driver left the device idle, not how long waking the thread took
 * @max_ns: a pool worker's bound of the window: the largest poll_idle_us
 *	of its queues' devices, in ns, as of its last pass
 * @adaptive: a pool worker's window adapts: every device it serves has
 *	poll_adaptive, as of its last pass
 * @last_busy: when a pass last found work (ktime_get_ns()); written by
 *	the thread alone, read by other pool workers as a hint (pool.c)
 * @idle_since: when the current idle period began, 0 if none; the thread's
 *	own
 */
struct vbs_worker {
	struct vbs_dev *dev;
	struct task_struct *task;
	unsigned int index;
	atomic_t kicked;
	struct mm_struct *mm;
	u64 poll_ns;
	u64 kick_ns;
	u64 max_ns;
	bool adaptive;
	u64 last_busy;
	u64 idle_since;
};

/**
 * struct vbs_stats - per-virtqueue counters, written only by the worker
 * @requests: requests completed
 * @read_bytes: bytes read from the backing for the guest
 * @write_bytes: bytes written to the backing for the guest
 * @errors: requests completed with a status other than VIRTIO_BLK_S_OK
 * @polls: passes that found work while notifications were off
 * @interrupts: used-buffer notifications sent to the driver
 * @notifies: kicks received from the driver (any context, hence atomic)
 * @spills: times the queue was handed from its CPU's pool worker to an
 *	idle CPU's (pool.c; under vbs_pool_mutex)
 * @wakes: times a kick, or a control operation, brought the queue back
 *	into its pool worker's passes after it went idle (pool.c; under the
 *	worker's wake_lock)
 * @reissues: reads and writes issued again, blocking, after a polled
 *	attempt failed with -EAGAIN (backend.c; any context, hence atomic)
 */
struct vbs_stats {
	u64 requests;
	u64 read_bytes;
	u64 write_bytes;
	u64 errors;
	u64 polls;
	u64 interrupts;
	atomic64_t notifies;
	u64 spills;
	u64 wakes;
	atomic64_t reissues;
};

/**
 * struct vbs_req - one virtio-blk request, a slot of a vq: the first
 *	allocated when the driver starts it (vbs_vq_start()), more as the
 *	driver keeps more requests in flight, all freed at reset
 * @vq: the virtqueue the request came from
 * @node: free list or completion list linkage
 * @iocb: the kiocb for read and write requests
 * @work: blocking execution (flush, discard, write zeroes, fallback)
 * @end_io: what the backing calls when it is done (vbs_backend_submit())
 * @iter: data iterator over @bvec
 * @bvec: bio_vecs over the guest's data pages
 * @status_page: page holding the guest's status byte
 * @status_off: offset of the status byte in @status_page
 * @head: descriptor chain head, given back in the used ring
 * @epoch: vq epoch at submission; a reset in between drops the completion
 * @type: VIRTIO_BLK_T_* of the request
 * @status: VIRTIO_BLK_S_* to write back
 * @polled: submitted with IOCB_HIPRI, reaped by the worker
 * @pinned: the bio_vecs hold pinned user pages (VA mode)
 * @status_pinned: @status_page is a pinned user page (VA mode)
 * @srcu_idx: IOTLB read-side section held while the I/O uses guest pages
 * @nr_bvec: number of entries used in @bvec
 * @bvec_max: number of entries @bvec has room for
 * @bvec_pooled: @bvec came from the device's bvec_pool
 * @len: data length in bytes
 * @in_len: bytes written to the guest, reported in the used ring
 * @sector: first sector
 * @ret: result of the backing operation (bytes or -errno)
 * @poll_node: in-flight polled request list
 * @iopoll_done: the polled I/O completed
 * @issue: VBS_RW_ISSUING while ->read_iter() or ->write_iter() runs,
 *	VBS_RW_REISSUE once the I/O failed with -EAGAIN (backend.c)
 * @inline_bvec: storage for small requests
 * @dwz: DISCARD / WRITE_ZEROES ranges
 * @dwz_count: number of entries in @dwz
 */
struct vbs_req {
	struct vbs_vq *vq;
	struct llist_node node;
	struct kiocb iocb;
	struct work_struct work;
	void (*end_io)(struct vbs_req *req, long ret);
	struct iov_iter iter;
	struct bio_vec *bvec;
	struct page *status_page;
	unsigned int status_off;
	u16 head;
	u32 epoch;
	u32 type;
	u8 status;
	bool polled;
	bool pinned;
	bool status_pinned;
	int srcu_idx;
	unsigned int nr_bvec;
	unsigned int bvec_max;
	bool bvec_pooled;
	size_t len;
	u32 in_len;
	u64 sector;
	long ret;
	struct list_head poll_node;
	bool iopoll_done;
	atomic_t issue;
	union {
		struct bio_vec inline_bvec[VBS_INLINE_BVECS];
		struct virtio_blk_discard_write_zeroes dwz[VBS_MAX_DWZ_SEGS];
	};
	unsigned int dwz_count;
};

/**
 * struct vbs_vq - a request virtqueue
 * @dev: owning device
 * @worker: the thread serving this queue: set once for a dedicated
 *	worker; for a pooled queue the pool worker it is attached to, or
 *	NULL, written under vbs_pool_mutex and read with READ_ONCE() (pool
 *	workers live as long as the module, so a stale one is only woken for
 *	nothing)
 * @pool: the pool worker serving the queue now, NULL if none: @home, or
 *	another CPU's while the queue spills (pool.c); under vbs_pool_mutex
 * @home: the pool worker of the queue's CPU, chosen at DRIVER_OK, NULL if
 *	not attached; under vbs_pool_mutex
 * @busy_ns: when a pass of a pool worker last found work on the queue
 *	(pool.c); the serving worker's
 * @pool_node: in @pool's list of queues, under its pass_lock
 * @active_node: in @pool's list of queues it polls, or of those woken
 *	since its last pass, or in none while the queue is idle (pool.c)
 * @idle_on: the pool worker whose passes the queue left (on neither of
 *	its lists: a kick must wake it, vbs_pool_wake_vq()), NULL if none;
 *	under that worker's wake_lock, read with READ_ONCE() without it
 * @pool_fresh: just woken: the pass turns its notifications off if the
 *	worker polls; written under @pool's wake_lock, then @pool's own
 * @index: virtqueue index
 * @vring: vringh state; touched only by @worker (and by control ops, which
 *	hold @dev->lock for writing)
 * @riov: device-readable part of the current chain
 * @wiov: device-writable part of the current chain
 * @desc_addr: descriptor area IOVA
 * @driver_addr: driver (avail) area IOVA
 * @device_addr: device (used) area IOVA
 * @num: ring size set by the driver
 * @used_iova: the used ring while the queue runs, for set_map()'s check
 *	(under @dev->iotlb_mutex)
 * @used_len: bytes of the used ring the device writes; 0 when stopped
 * @ready: the driver enabled the queue
 * @broken: the ring is unusable; the device asked for a reset
 * @cb: used-buffer notification callback
 * @nr_slots: request slots the queue holds (sysfs "slots"): none before
 *	the driver's start, VBS_SLOTS_FIRST then (vbs_vq_start()), grown by
 *	@worker up to the ring's size while every one is busy (holding
 *	@dev->lock for reading), all freed at reset (for writing, with no
 *	request in flight).  Each slot is allocated on its own; a free one
 *	is on @free, a busy one counts in @inflight, so at reset all are
 *	on @free.  Read with READ_ONCE() without the lock
 * @grow_stalled: the last growth found no memory: @worker tries again
 *	after a completion
 * @free: unused slots; only @worker takes them (llist_del_first())
 * @done: completed requests waiting for @worker to publish them; added
 *	from any context but NMI
 * @polled: in-flight IOCB_HIPRI requests; @worker's alone
 * @inflight: slots handed out and not yet given back; written by @worker,
 *	read with READ_ONCE() by vbs_dev_quiesce() and sysfs
 * @epoch: bumped by reset so late completions are dropped
 * @stats: counters exported in sysfs
 * @rcu: the first queue's frees the device's queue array with
 *	kfree_rcu() (vbs_dev_free_vqs(), which says why); the others' are
 *	unused
 */
struct vbs_vq {
	struct vbs_dev *dev;
	struct vbs_worker *worker;
	struct vbs_pool_worker *pool;
	struct vbs_pool_worker *home;
	u64 busy_ns;
	struct list_head pool_node;
	struct list_head active_node;
	struct vbs_pool_worker *idle_on;
	bool pool_fresh;
	u16 index;
	struct vringh vring;
	struct vringh_kiov riov;
	struct vringh_kiov wiov;
	u64 desc_addr;
	u64 driver_addr;
	u64 device_addr;
	u32 num;
	u64 used_iova;
	u32 used_len;
	bool ready;
	bool broken;
	struct vdpa_callback cb;
	u32 nr_slots;
	bool grow_stalled;
	struct llist_head free;
	struct llist_head done;
	struct list_head polled;
	u32 inflight;
	u32 epoch;
	struct vbs_stats stats;
	struct rcu_head rcu;
};

/**
 * struct vbs_dev - one vdpa-blk-sw device
 * @vdpa: the vDPA device; must stay first for vdpa_alloc_device()
 * @p: parameters the device was created with, as its sysfs attributes
 *	show them; the live ones change there
 * @file: the open backing
 * @inode_claimed: this device registered @file's inode as in use
 * @bdev_claim: the exclusive claim on a shared block device backing
 * @nowait: the backing supports IOCB_NOWAIT
 * @poll_seg_max: most data segments a polled request of the backing's
 *	block device fits in one bio with, 0 for no such limit (IOPOLL:
 *	vbs_backend_open())
 * @poll_limit: most polled requests in flight (IOPOLL): the tag depth of
 *	the backing's request queue; 0 for no limit
 * @polled_inflight: polled requests started and not yet reaped
 * @inline_buffered: buffered I/O may run in the worker (memory backing)
 * @dio_align_mask: alignment direct I/O needs, minus one
 * @writethrough: the device writes through (FLUSH not negotiated, or wce
 *	cleared by the driver): writes, discards and write zeroes are
 *	durable when they complete (IOCB_DSYNC, vbs_dwz_sync())
 * @capacity: size in 512-byte sectors seen by the guest
 * @seg_max: data segments per request the device takes: a longer chain,
 *	or more than @seg_max * VBS_SIZE_MAX bytes of data, is a bad
 *	request; the config space's seg_max, at most @poll_seg_max if set
 * @kernel_drv: the bus driver that reset the device last if it was
 *	virtio_vdpa, else NULL; only compared with the bound driver, never
 *	dereferenced (vbs_config_queue_size())
 * @features: device features offered (after provisioning)
 * @driver_features: features the driver accepted
 * @status: virtio device status; read with READ_ONCE()
 * @generation: config generation counter
 * @config: virtio-blk config space, little endian
 * @config_lock: protects @config and @generation, and serialises the
 *	updates of @capacity and @status (set_status() and the marking of
 *	DEVICE_NEEDS_RESET; reset() clears @status under @lock alone).  Taken
 *	alone, inside @lock or inside @iotlb_mutex; nothing is taken inside
 *	it.
 * @config_cb: config change callback
 * @announce: set_map() broke the device; the next worker pass raises the
 *	config interrupt, holding @lock
 * @vqs: the virtqueues
 * @nvqs: number of virtqueues
 * @lock: protects what the driver sets: each queue's ring addresses, size,
 *	callback, readiness and vringh state, @driver_features, @config_cb,
 *	@suspended and @mm.  Workers hold it for reading over a pass, so the
 *	callbacks they call stay valid; control operations hold it for
 *	writing, and drop it before they wait for requests in flight, which
 *	a worker must reap.  Process context only.  Lock order: @lock, the
 *	owner's mmap_lock (a VA-mode worker faults under @lock, hence
 *	set_map(), called under mmap_lock, never takes @lock), @iotlb_mutex,
 *	then @config_lock or @iotlb_lock.
 * @suspended: suspend() was called and resume() not yet
 * @workers: the polling threads; freed only after an RCU grace period
 *	(vbs_worker_stop()), since a completion wakes its worker inside
 *	rcu_read_lock() (vbs_req_complete())
 * @nworkers: number of @workers; 0 for a pooled device
 * @pooled: the queues are served by the shared pool (pool.c), attached at
 *	DRIVER_OK and detached at reset
 * @worker_wq: control operations wait here for the queues to go idle
 * @mm: the vhost-vdpa owner's address space while bound (VA mode); set
 *	under @lock, which the workers hold when they adopt it
 * @iotlb: the single address space; the pointer never changes (vringh
 *	holds it), set_map() replaces the tree's contents
 * @iotlb_lock: protects the contents of @iotlb: vringh (given it with
 *	vringh_set_iotlb()) and the data path translate under it; writers
 *	hold @iotlb_mutex too.  Nothing is taken inside it.
 * @iotlb_mutex: serialises the changes of @iotlb and @iotlb_pt (set_map(),
 *	reset_map(), a reset with VDPA_RESET_F_CLEAN_MAP, DRIVER_OK) with
 *	the queues' used-ring watch (@used_iova and @used_len of struct
 *	vbs_vq).  Taken inside @lock (set_vq_ready(), reset) or inside the
 *	owner's mmap_lock (set_map() from vhost-vdpa).  No SRCU grace
 *	period is waited for under it: a request's read-side section ends
 *	in a worker's pass, under @lock.
 * @iotlb_pt: @iotlb is the identity map used by virtio-vdpa; read under
 *	@iotlb_mutex, written under @iotlb_lock too
 * @iotlb_srcu: read-side sections: a worker's pass (vringh's ring
 *	accesses), and each request from vbs_iotlb_map_req() until
 *	vbs_iotlb_unmap_req(), across contexts.  set_map() and a return to the
 *	identity map wait for a grace period when an entry went away, before
 *	they drop its pages.
 * @bvec_pool: fallback for bio_vec arrays larger than the inline ones;
 *	from DRIVER_OK (vbs_dev_start()) to the reset, NULL otherwise: a
 *	running device always has it.  Under @lock, like @slots
 * @sysfs_groups: NULL-terminated attribute groups of the vdpa device
 * @q_groups: per-queue statistics groups
 * @q_attrs: storage for the per-queue attributes
 * @aff: the CPU masks of the queues and workers (affinity.c)
 */
struct vbs_dev {
	struct vdpa_device vdpa;
	struct vbs_params p;
	struct file *file;
	bool inode_claimed;
	struct file *bdev_claim;
	bool nowait;
	unsigned int poll_seg_max;
	unsigned int poll_limit;
	atomic_t polled_inflight;
	bool inline_buffered;
	unsigned int dio_align_mask;
	bool writethrough;
	u64 capacity;
	u32 seg_max;
	const struct device_driver *kernel_drv;
	u64 features;
	u64 driver_features;
	u8 status;
	u32 generation;
	struct virtio_blk_config config;
	spinlock_t config_lock;	/* see above */
	struct vdpa_callback config_cb;
	atomic_t announce;
	struct vbs_vq *vqs;
	u32 nvqs;
	struct rw_semaphore lock;	/* see above */
	bool suspended;
	struct vbs_worker *workers;
	u32 nworkers;
	bool pooled;
	wait_queue_head_t worker_wq;
	struct mm_struct *mm;
	struct vhost_iotlb *iotlb;
	spinlock_t iotlb_lock;	/* see above */
	struct mutex iotlb_mutex;	/* see above */
	bool iotlb_pt;
	struct srcu_struct iotlb_srcu;
	mempool_t *bvec_pool;
	const struct attribute_group **sysfs_groups;
	struct attribute_group *q_groups;
	void *q_attrs;
	struct vbs_affinity *aff;
};

static inline struct vbs_dev *vdpa_to_vbs(struct vdpa_device *vdpa)
{
	return container_of(vdpa, struct vbs_dev, vdpa);
}

/* The driver set DRIVER_OK and the device does not need a reset. */
static inline bool vbs_dev_running(struct vbs_dev *dev)
{
	u8 status = READ_ONCE(dev->status);

	return (status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* params.c */
void vbs_params_init(struct vbs_params *p);
int vbs_params_validate(const struct vbs_params *p);
int vbs_param_parse(enum vbs_param_id id, const char *buf, size_t count,
		    struct vbs_param_val *val);
void vbs_param_set(enum vbs_param_id id, struct vbs_params *p,
		   const struct vbs_param_val *val);
ssize_t vbs_param_show(enum vbs_param_id id, const struct vbs_params *p,
		       char *buf);

/* configfs.c */
int vbs_configfs_init(void);
void vbs_configfs_exit(void);
bool vbs_configfs_lookup(const char *name, struct vbs_params *p);
void vbs_configfs_set_live(const char *name, bool live);

/* backend.c */
int vbs_backend_init(void);
void vbs_backend_exit(void);
int vbs_backend_open(struct vbs_dev *dev);
void vbs_backend_close(struct vbs_dev *dev);
u64 vbs_backend_sectors(struct vbs_dev *dev);
struct block_device *vbs_backing_bdev(struct vbs_dev *dev);
void vbs_backend_discard_limits(struct vbs_dev *dev, u32 *max_sectors,
				u32 *align);
void vbs_backend_submit(struct vbs_req *req,
			void (*end_io)(struct vbs_req *req, long ret));
void vbs_iopoll(struct vbs_vq *vq);

/* iotlb.c */
int vbs_iotlb_init(struct vbs_dev *dev);
void vbs_iotlb_free(struct vbs_dev *dev);
void vbs_iotlb_reset_pt(struct vbs_dev *dev);
void vbs_iotlb_check_pt(struct vbs_dev *dev);
int vbs_iotlb_set(struct vbs_dev *dev, struct vhost_iotlb *src);
int vbs_iotlb_watch_used(struct vbs_dev *dev, struct vbs_vq *vq, u64 iova,
			 u32 len);
int vbs_iotlb_map_req(struct vbs_dev *dev, struct vbs_req *req,
		      const struct kvec *status, struct vringh_kiov *data,
		      u32 perm);
void vbs_iotlb_unmap_req(struct vbs_dev *dev, struct vbs_req *req,
			 bool dirty);

/* worker.c */
int vbs_worker_start(struct vbs_dev *dev);
void vbs_worker_stop(struct vbs_dev *dev);
u64 vbs_worker_window(struct vbs_worker *w);
bool vbs_worker_keep_polling(struct vbs_worker *w, bool busy, u64 window);

/* pool.c */
int vbs_pool_module_init(void);
void vbs_pool_module_exit(void);
void vbs_pool_attach(struct vbs_dev *dev);
void vbs_pool_detach(struct vbs_dev *dev);
long long vbs_pool_vq_show(struct vbs_vq *vq, enum vbs_worker_attr what);
void vbs_pool_wake_vq(struct vbs_vq *vq, struct vbs_worker *w);

/* queue.c */
int vbs_queue_module_init(void);
void vbs_queue_module_exit(void);
void vbs_vq_init(struct vbs_vq *vq, struct vbs_dev *dev, u16 index);
void vbs_vq_destroy(struct vbs_vq *vq);
void vbs_vq_start(struct vbs_vq *vq);
void vbs_dev_start(struct vbs_dev *dev);
void vbs_vq_setup_ring(struct vbs_vq *vq);
void vbs_vq_reset(struct vbs_vq *vq);
bool vbs_vq_set_notify(struct vbs_vq *vq, bool enable);
bool vbs_vq_serve(struct vbs_vq *vq, bool rings, bool polling);
void vbs_dev_quiesce(struct vbs_dev *dev);

/* notify.c */
void vbs_vq_wake(struct vbs_vq *vq);
void vbs_worker_kick(struct vbs_worker *w);
void vbs_worker_wake(struct vbs_dev *dev);
void vbs_dev_set_broken(struct vbs_dev *dev, struct vbs_vq *vq,
			const char *what, int err);
void vbs_dev_break_async(struct vbs_dev *dev, struct vbs_vq *vq,
			 const char *what);

/* req.c */
int vbs_req_start(struct vbs_vq *vq, struct vbs_req *req);
bool vbs_req_retire(struct vbs_req *req, bool publish);

/* config.c */
u32 vbs_config_queue_size(struct vbs_dev *dev);
void vbs_config_reset(struct vbs_dev *dev);
void vbs_config_fill(struct vbs_dev *dev);
void vbs_cache_init(struct vbs_dev *dev, u64 features);
int vbs_config_resize(struct vbs_dev *dev);
void vbs_get_config(struct vdpa_device *vdpa, unsigned int offset,
		    void *buf, unsigned int len);
void vbs_set_config(struct vdpa_device *vdpa, unsigned int offset,
		    const void *buf, unsigned int len);

/* ops.c */
extern const struct vdpa_config_ops vbs_config_ops;
int vbs_dev_reset(struct vbs_dev *dev, u32 flags);

/* dev.c */
int vbs_dev_create(struct vdpa_mgmt_dev *mdev, const char *name,
		   const struct vbs_params *p, u64 features, bool provisioned);
void vbs_dev_destroy(struct vbs_dev *dev);

/* affinity.c */
int vbs_affinity_module_init(void);
void vbs_affinity_module_exit(void);
int vbs_affinity_init(struct vbs_dev *dev);
void vbs_affinity_exit(struct vbs_dev *dev);
void vbs_affinity_reset(struct vbs_dev *dev);
int vbs_set_vq_affinity(struct vdpa_device *vdpa, u16 idx,
			const struct cpumask *cpu_mask);
const struct cpumask *vbs_get_vq_affinity(struct vdpa_device *vdpa, u16 idx);
int vbs_affinity_pick_cpu(struct vbs_dev *dev, u16 idx);
bool vbs_affinity_may_spill(struct vbs_dev *dev, u16 idx, unsigned int cpu);
ssize_t vbs_affinity_show(struct vbs_dev *dev, u16 idx, bool effective,
			  char *buf);
int vbs_affinity_store(struct vbs_dev *dev, u16 idx, const char *buf);

/* sysfs.c */
int vbs_sysfs_build(struct vbs_dev *dev);
void vbs_sysfs_free(struct vbs_dev *dev);

#endif /* _VDPA_BLK_SW_H */
