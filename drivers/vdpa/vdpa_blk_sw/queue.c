// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: a virtqueue's life and its requests' way through it.
 *
 * A queue's first request slots are allocated when the driver starts it
 * (at DRIVER_OK, or when it enables the queue after that): VBS_SLOTS_FIRST,
 * or one per ring entry of a smaller ring.  Its worker adds VBS_SLOTS_GROW
 * at a time, up to the ring's size, when every slot is busy and the ring
 * holds one more request, without sleeping: a queue holds as many as the
 * driver kept in flight, and an unbound device none.  Reset frees them,
 * once no request is in flight.  The driver's rings are given to vringh
 * when the queue becomes ready and forgotten at reset.
 * Its worker (worker.c) serves it each pass: it publishes what completed
 * since the last pass and fetches at most VBS_BUDGET new requests, which
 * req.c starts.  Only the worker touches the ring, holding @dev->lock for
 * reading; control operations that wait for the requests in flight
 * (vbs_dev_quiesce()) must not hold it.
 */

#include <linux/debugfs.h>
#include <linux/slab.h>

#include "vdpa_blk_sw.h"

static void vbs_vq_init_lists(struct vbs_vq *vq)
{
	init_llist_head(&vq->free);
	init_llist_head(&vq->done);
	INIT_LIST_HEAD(&vq->polled);
}

/*
 * Every request slot of every queue, each allocated on its own: a queue
 * holds what it has needed so far, and growing it never asks for more
 * than one object, so it needs no high-order page and no vmalloc().
 * vringh copies a DISCARD or WRITE_ZEROES request's ranges into @dwz
 * with the user-copy routines in VA mode and with hardened usercopy's
 * checks in both: that field (shared with @inline_bvec) is the cache's
 * user-copy region, the rest of a slot is not.
 */
static struct kmem_cache *vbs_req_cache;

/*
 * Test hook, /sys/kernel/debug/vdpa_blk_sw/fail_slot_grow: while it is
 * above zero, each allocation of a slot by vbs_vq_grow() fails as a
 * GFP_NOWAIT one would, and takes one from it.  The kernels the module
 * targets have no failslab to make that allocation fail otherwise;
 * selftests/tests/24-blk-sw-lifecycle.sh checks that a queue whose growth
 * fails goes on with the slots it has and grows again once it may.
 */
static atomic_t vbs_fail_slot_grow = ATOMIC_INIT(0);
static struct dentry *vbs_debugfs;

/**
 * vbs_queue_module_init() - create the cache of request slots, and the
 *	debugfs test hook (if debugfs fails, the module goes on without it)
 *
 * Return: 0 or -ENOMEM.
 */
int vbs_queue_module_init(void)
{
	vbs_req_cache = KMEM_CACHE_USERCOPY(vbs_req, 0, dwz);
	if (!vbs_req_cache)
		return -ENOMEM;
	vbs_debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_atomic_t("fail_slot_grow", 0600, vbs_debugfs,
				&vbs_fail_slot_grow);
	return 0;
}

/**
 * vbs_queue_module_exit() - remove the test hook and destroy the cache;
 *	every device is gone
 */
void vbs_queue_module_exit(void)
{
	debugfs_remove_recursive(vbs_debugfs);
	kmem_cache_destroy(vbs_req_cache);
}

static struct vbs_req *vbs_slot_new(struct vbs_vq *vq, gfp_t gfp)
{
	struct vbs_req *req = kmem_cache_zalloc(vbs_req_cache, gfp);

	if (req)
		req->vq = vq;
	return req;
}

/* A slot for vbs_vq_grow(), unless the test hook makes it fail. */
static struct vbs_req *vbs_slot_grow_new(struct vbs_vq *vq)
{
	if (atomic_dec_if_positive(&vbs_fail_slot_grow) >= 0)
		return NULL;
	return vbs_slot_new(vq, GFP_NOWAIT | __GFP_NOWARN);
}

/*
 * The queue may add slots: it has its first batch (vbs_vq_start()), fewer
 * slots than its ring has entries, and its last try did not fail for lack
 * of memory since a request completed.
 */
static bool vbs_vq_may_grow(struct vbs_vq *vq)
{
	return vq->nr_slots && vq->nr_slots < vq->vring.vring.num &&
	       !vq->grow_stalled;
}

/*
 * Every slot of @vq is busy and the ring holds one more request: add up to
 * VBS_SLOTS_GROW slots, at most up to the ring's size.  The worker, which
 * may serve the queues of many devices, never sleeps for them, nor dips
 * into the reserves: on failure the queue goes on with the slots it has,
 * and tries again after a completion (vbs_vq_reap()); a batch cut short
 * keeps what it got.  debugfs's fail_slot_grow fails these allocations on
 * demand (vbs_slot_grow_new()).  Return: the node of one new slot, for the
 * request; the others are free.  NULL if none.
 */
static struct llist_node *vbs_vq_grow(struct vbs_vq *vq)
{
	u32 want = min_t(u32, VBS_SLOTS_GROW,
			 vq->vring.vring.num - vq->nr_slots);
	struct vbs_req *first, *req;
	u32 n;

	first = vbs_slot_grow_new(vq);
	if (!first) {
		vq->grow_stalled = true;
		return NULL;
	}
	for (n = 1; n < want; n++) {
		req = vbs_slot_grow_new(vq);
		if (!req)
			break;
		llist_add(&req->node, &vq->free);
	}
	WRITE_ONCE(vq->nr_slots, vq->nr_slots + n);
	return &first->node;
}

static void vbs_slots_free_list(struct llist_node *list)
{
	struct vbs_req *req, *tmp;

	llist_for_each_entry_safe(req, tmp, list, node)
		kmem_cache_free(vbs_req_cache, req);
}

/* Free the slots of @vq, with no request in flight: all are free. */
static void vbs_vq_free_slots(struct vbs_vq *vq)
{
	struct llist_node *list, *node;
	u32 n = 0;

	/* A request must never outlive its slot: keep them, leaked. */
	if (WARN_ON_ONCE(vq->inflight))
		return;
	list = llist_del_all(&vq->free);
	llist_for_each(node, list)
		n++;
	WARN_ON_ONCE(n != vq->nr_slots);
	vbs_slots_free_list(list);
	WRITE_ONCE(vq->nr_slots, 0);
	vq->grow_stalled = false;
	vbs_vq_init_lists(vq);
}

/**
 * vbs_vq_start() - give a started queue its first request slots
 * @vq: the virtqueue; called without @dev->lock, by the control operation
 *	that starts it (DRIVER_OK, or a queue enabled after DRIVER_OK)
 *
 * A queue that is ready and has no slots gets VBS_SLOTS_FIRST, or one per
 * entry of a smaller ring (fewer if memory is short); its worker adds more
 * as the driver keeps more requests in flight (vbs_vq_grow()).  The slots
 * are allocated without the lock, which the workers need to make progress
 * while memory is reclaimed, and installed under it if the queue still
 * wants them: a reset in between (the queue no longer ready) drops them.
 * A queue that keeps its slots across a disable and enable keeps them as
 * they are: requests may be in flight.  Until it has slots, a ready queue
 * fetches nothing.  Not even one slot: the device needs a reset.
 */
void vbs_vq_start(struct vbs_vq *vq)
{
	struct vbs_dev *dev = vq->dev;
	struct llist_node *list = NULL;
	struct vbs_req *req, *tmp;
	u32 num, n;

	down_read(&dev->lock);
	/* The ring's size as vringh has it: checked when it became ready. */
	num = vq->ready && !READ_ONCE(vq->nr_slots) ? vq->vring.vring.num : 0;
	up_read(&dev->lock);
	if (!num)
		return;

	num = min_t(u32, num, VBS_SLOTS_FIRST);
	for (n = 0; n < num; n++) {
		req = vbs_slot_new(vq, GFP_KERNEL | __GFP_NOWARN);
		if (!req)
			break;
		req->node.next = list;
		list = &req->node;
	}
	if (n && n < num)
		dev_info_ratelimited(&dev->vdpa.dev,
				     "vq %u: %u request slots of %u (low memory)\n",
				     vq->index, n, num);
	down_write(&dev->lock);
	if (vq->ready && !vq->nr_slots) {
		if (n) {
			llist_for_each_entry_safe(req, tmp, list, node)
				llist_add(&req->node, &vq->free);
			WRITE_ONCE(vq->nr_slots, n);
			vq->grow_stalled = false;
		} else {
			vbs_dev_set_broken(dev, vq, "cannot allocate a request slot",
					   -ENOMEM);
		}
		list = NULL;
	}
	up_write(&dev->lock);
	vbs_slots_free_list(list);
}

/**
 * vbs_dev_start() - allocate what a device needs to run, at DRIVER_OK
 * @dev: the device; called without @dev->lock, before DRIVER_OK is set
 *
 * The bio_vec pool, then the slots of every queue the driver enabled
 * (vbs_vq_start()).  What cannot be allocated sets DEVICE_NEEDS_RESET,
 * which DRIVER_OK keeps: the device then fetches nothing.  vbs_dev_reset()
 * frees it all.
 */
void vbs_dev_start(struct vbs_dev *dev)
{
	mempool_t *pool = NULL;
	bool need;
	u32 i;

	down_read(&dev->lock);
	need = !dev->bvec_pool;
	up_read(&dev->lock);
	if (need)
		pool = mempool_create_kmalloc_pool(VBS_BVEC_POOL_MIN,
						   VBS_MAX_BVECS *
						   sizeof(struct bio_vec));
	down_write(&dev->lock);
	if (!dev->bvec_pool) {
		if (pool)
			dev->bvec_pool = pool;
		else
			vbs_dev_set_broken(dev, &dev->vqs[0],
					   "cannot allocate the bio_vec pool",
					   -ENOMEM);
		pool = NULL;
	}
	up_write(&dev->lock);
	mempool_destroy(pool);

	for (i = 0; i < dev->nvqs; i++)
		vbs_vq_start(&dev->vqs[i]);
}

/**
 * vbs_vq_init() - set up a virtqueue of a new device
 * @vq: the virtqueue, zeroed
 * @dev: its device
 * @index: its index
 */
void vbs_vq_init(struct vbs_vq *vq, struct vbs_dev *dev, u16 index)
{
	vq->dev = dev;
	vq->index = index;
	INIT_LIST_HEAD(&vq->pool_node);
	INIT_LIST_HEAD(&vq->active_node);
	atomic64_set(&vq->stats.notifies, 0);
	atomic64_set(&vq->stats.reissues, 0);
	vringh_kiov_init(&vq->riov, NULL, 0);
	vringh_kiov_init(&vq->wiov, NULL, 0);
	vbs_vq_init_lists(vq);
}

/**
 * vbs_vq_destroy() - release what vbs_vq_init() and the rings allocated
 * @vq: the virtqueue, reset: no request in flight, no slot left
 */
void vbs_vq_destroy(struct vbs_vq *vq)
{
	vringh_kiov_cleanup(&vq->riov);
	vringh_kiov_cleanup(&vq->wiov);
	vbs_vq_free_slots(vq);
}

/**
 * vbs_vq_setup_ring() - point vringh at the rings the driver gave
 * @vq: the virtqueue; @dev->lock held
 *
 * Keeps last_avail_idx, which set_vq_state() may have set for a resumed
 * queue, and starts the used index there too, as vhost does; on a queue
 * re-enabled with requests still in flight, the used index is behind by
 * those requests, which will each add one used element.
 */
void vbs_vq_setup_ring(struct vbs_vq *vq)
{
	u16 last_avail = vq->vring.last_avail_idx;
	struct vbs_dev *dev = vq->dev;

	/* With an address space bound (VA mode) ring addresses are user VAs. */
	if (dev->mm)
		vringh_init_iotlb_va(&vq->vring, dev->driver_features, vq->num,
				     true,
				     (struct vring_desc *)(uintptr_t)vq->desc_addr,
				     (struct vring_avail *)(uintptr_t)vq->driver_addr,
				     (struct vring_used *)(uintptr_t)vq->device_addr);
	else
		vringh_init_iotlb(&vq->vring, dev->driver_features, vq->num,
				  true,
				  (struct vring_desc *)(uintptr_t)vq->desc_addr,
				  (struct vring_avail *)(uintptr_t)vq->driver_addr,
				  (struct vring_used *)(uintptr_t)vq->device_addr);
	vringh_set_iotlb(&vq->vring, vq->dev->iotlb, &vq->dev->iotlb_lock);
	vq->vring.last_avail_idx = last_avail;
	vq->vring.last_used_idx = last_avail - (u16)vq->inflight;
}

/**
 * vbs_vq_reset() - forget everything the driver set on a virtqueue
 * @vq: the virtqueue, with no request in flight; @dev->lock held
 *
 * Its request slots go too: the next start sizes them to its new ring.
 */
void vbs_vq_reset(struct vbs_vq *vq)
{
	vbs_iotlb_watch_used(vq->dev, vq, 0, 0);
	vq->ready = false;
	vq->broken = false;
	vq->desc_addr = 0;
	vq->driver_addr = 0;
	vq->device_addr = 0;
	vq->num = 0;
	memset(&vq->cb, 0, sizeof(vq->cb));
	memset(&vq->vring, 0, sizeof(vq->vring));
	vringh_kiov_cleanup(&vq->riov);
	vringh_kiov_cleanup(&vq->wiov);
	vringh_kiov_init(&vq->riov, NULL, 0);
	vringh_kiov_init(&vq->wiov, NULL, 0);
	vbs_vq_free_slots(vq);
}

static void vbs_vq_notify(struct vbs_vq *vq)
{
	if (vq->cb.callback) {
		vq->stats.interrupts++;
		vq->cb.callback(vq->cb.private);
	}
}

/*
 * Publish what finished since the last pass; true if anything did.  With
 * @rings false (VA mode without the owner's address space) the rings are
 * not touched: completions are dropped.
 */
static bool vbs_vq_reap(struct vbs_vq *vq, bool rings)
{
	struct vbs_dev *dev = vq->dev;
	struct llist_node *list;
	struct vbs_req *req, *tmp;
	bool pushed = false;

	list = llist_del_all(&vq->done);
	if (!list)
		return false;
	list = llist_reverse_order(list);
	/* A slot comes back: a failed growth may be tried again. */
	vq->grow_stalled = false;

	llist_for_each_entry_safe(req, tmp, list, node) {
		if (req->polled) {
			list_del(&req->poll_node);
			atomic_dec(&dev->polled_inflight);
		}
		/* Checked each time: a failed write breaks the device. */
		if (vbs_req_retire(req, rings && vq->num &&
				   vbs_dev_running(dev) &&
				   req->epoch == vq->epoch))
			pushed = true;
		vq->inflight--;
		llist_add(&req->node, &vq->free);
	}

	if (pushed && vringh_need_notify_iotlb(&vq->vring) > 0)
		vbs_vq_notify(vq);
	if (!vq->inflight)
		wake_up_all(&dev->worker_wq);
	return true;
}

/*
 * A chain longer than any legal request grew the iovecs: give that memory
 * back rather than keep it until reset.
 */
static void vbs_kiov_trim(struct vringh_kiov *kiov)
{
	if ((kiov->max_num & ~VRINGH_IOV_ALLOCATED) > VBS_KIOV_KEEP) {
		vringh_kiov_cleanup(kiov);
		vringh_kiov_init(kiov, NULL, 0);
	}
}

static void vbs_vq_trim_kiovs(struct vbs_vq *vq)
{
	vbs_kiov_trim(&vq->riov);
	vbs_kiov_trim(&vq->wiov);
}

/* Start new requests; true if any was started. */
static bool vbs_vq_fetch(struct vbs_vq *vq)
{
	struct vbs_dev *dev = vq->dev;
	unsigned int n = 0;

	while (n < VBS_BUDGET) {
		struct llist_node *node;
		struct vbs_req *req;
		u16 head;
		int ret;

		node = llist_del_first(&vq->free);
		if (!node && !vbs_vq_may_grow(vq))
			break;	/* every slot busy: a completion wakes us */

		/*
		 * vringh grows the iovecs to the chain's length, which an
		 * indirect table makes up to 2^28: a failed allocation only
		 * breaks the device (vbs_req_start() fails a chain longer
		 * than a legal request).
		 */
		ret = vringh_getdesc_iotlb(&vq->vring, &vq->riov, &vq->wiov,
					   &head, GFP_KERNEL | __GFP_NOWARN);
		if (ret <= 0) {
			if (node)
				llist_add(node, &vq->free);
			vbs_vq_trim_kiovs(vq);
			if (ret < 0) {
				vq->broken = true;
				vbs_dev_set_broken(dev, vq,
						   "cannot read the available ring or a descriptor chain",
						   ret);
			}
			break;
		}
		/* Every slot busy and one more request: grow, or wait. */
		if (!node) {
			node = vbs_vq_grow(vq);
			if (!node) {
				vringh_abandon_iotlb(&vq->vring, 1);
				vbs_vq_trim_kiovs(vq);
				break;
			}
		}
		req = llist_entry(node, struct vbs_req, node);
		vq->inflight++;
		req->head = head;
		req->epoch = vq->epoch;
		ret = vbs_req_start(vq, req);
		vbs_vq_trim_kiovs(vq);
		if (ret == -EAGAIN) {
			/*
			 * Out of bio_vec arrays, or of polled slots: retry
			 * once some come back.
			 */
			vringh_abandon_iotlb(&vq->vring, 1);
			vq->inflight--;
			llist_add(node, &vq->free);
			break;
		}
		n++;
	}
	return n;
}

/*
 * Has the driver made a request available?  Also true if the ring or the
 * chain cannot be read: the next fetch then breaks the device.  vringh
 * takes the entry before it reads the chain, so its index is put back
 * whatever the outcome, not only by vringh_abandon_iotlb() on success.
 */
static bool vbs_vq_peek(struct vbs_vq *vq)
{
	u16 head, last = vq->vring.last_avail_idx;
	int ret;

	ret = vringh_getdesc_iotlb(&vq->vring, &vq->riov, &vq->wiov, &head,
				   GFP_KERNEL | __GFP_NOWARN);
	vq->vring.last_avail_idx = last;
	vbs_vq_trim_kiovs(vq);
	return ret != 0;
}

/**
 * vbs_vq_set_notify() - turn the driver's notifications on or off
 * @vq: the virtqueue; @dev->lock held for reading, by its worker
 * @enable: on (before the worker sleeps) or off (while it polls)
 *
 * Only for a queue that runs: not ready, broken, or its device stopped or
 * suspended, it is left alone.
 *
 * Return: false if a request slipped in while enabling them and a free
 * slot, or one the queue may still grow (vbs_vq_grow()), could take it;
 * true otherwise.
 */
bool vbs_vq_set_notify(struct vbs_vq *vq, bool enable)
{
	struct vbs_dev *dev = vq->dev;
	bool idle;

	if (!vbs_dev_running(dev) || dev->suspended || !vq->ready ||
	    vq->broken)
		return true;
	if (!enable) {
		vringh_notify_disable_iotlb(&vq->vring);
		return true;
	}
	idle = vringh_notify_enable_iotlb(&vq->vring);
	/* Without a slot to take it, a request waits for a completion. */
	if (llist_empty(&vq->free) && !vbs_vq_may_grow(vq))
		return true;
	/*
	 * vringh also says nothing slipped in when it could not write the
	 * flag or avail_event (the used ring unmapped by the owner), without
	 * looking at the available ring: a request made available just
	 * before, whose kick came while the worker still polled, would wait
	 * for a kick the driver already sent (a pool worker does not look
	 * at a retired queue again).  So look here.
	 */
	return idle && !vbs_vq_peek(vq);
}

/**
 * vbs_vq_serve() - one pass of a worker over one of its virtqueues
 * @vq: the virtqueue; @dev->lock held for reading
 * @rings: the rings may be touched: false in VA mode once the owner's
 *	address space is gone, and completions are then dropped
 * @polling: notifications are off: a fetch counts as found by polling
 *
 * Publishes what completed, reaps IOPOLL completions, then fetches new
 * requests if the queue runs.
 *
 * Return: true if there was anything to do.
 */
bool vbs_vq_serve(struct vbs_vq *vq, bool rings, bool polling)
{
	struct vbs_dev *dev = vq->dev;
	bool busy = false, fetched = false;

	if (vbs_vq_reap(vq, rings))
		busy = true;
	if (!list_empty(&vq->polled)) {
		vbs_iopoll(vq);
		busy = true;
	}
	if (!rings)
		return busy;
	if (vq->ready && !vq->broken && !dev->suspended &&
	    vbs_dev_running(dev)) {
		fetched = vbs_vq_fetch(vq);
		if (fetched && polling)
			vq->stats.polls++;
	}
	return busy || fetched;
}

static bool vbs_dev_idle(struct vbs_dev *dev)
{
	u32 i;

	for (i = 0; i < dev->nvqs; i++)
		if (READ_ONCE(dev->vqs[i].inflight))
			return false;
	return true;
}

/**
 * vbs_dev_quiesce() - wait until no request is in flight
 * @dev: the device; the caller already stopped new fetches and does not
 *	 hold @dev->lock, since the worker takes it to reap
 */
void vbs_dev_quiesce(struct vbs_dev *dev)
{
	vbs_worker_wake(dev);
	wait_event(dev->worker_wq, vbs_dev_idle(dev));
}
