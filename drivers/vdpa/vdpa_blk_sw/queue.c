// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: a virtqueue's life and its requests' way through it.
 *
 * A queue's request slots are allocated with the device, one per ring
 * entry, so the data path never allocates a request.  The driver's rings
 * are given to vringh when the queue becomes ready and forgotten at reset.
 * Its worker (worker.c) serves it each pass: it publishes what completed
 * since the last pass and fetches at most VBS_BUDGET new requests, which
 * req.c starts.  Only the worker touches the ring, holding @dev->lock for
 * reading; control operations that wait for the requests in flight
 * (vbs_dev_quiesce()) must not hold it.
 */

#include <linux/slab.h>

#include "vdpa_blk_sw.h"

static int vbs_vq_alloc_slots(struct vbs_vq *vq)
{
	u32 i, n = vq->dev->p.queue_size;

	vq->slots = kvcalloc(n, sizeof(*vq->slots), GFP_KERNEL);
	if (!vq->slots)
		return -ENOMEM;
	vq->nr_slots = n;
	init_llist_head(&vq->free);
	init_llist_head(&vq->done);
	INIT_LIST_HEAD(&vq->polled);
	for (i = 0; i < n; i++) {
		vq->slots[i].vq = vq;
		llist_add(&vq->slots[i].node, &vq->free);
	}
	return 0;
}

/**
 * vbs_vq_init() - set up a virtqueue of a new device
 * @vq: the virtqueue, zeroed
 * @dev: its device
 * @index: its index
 *
 * Return: 0 or -ENOMEM.
 */
int vbs_vq_init(struct vbs_vq *vq, struct vbs_dev *dev, u16 index)
{
	vq->dev = dev;
	vq->index = index;
	atomic64_set(&vq->stats.notifies, 0);
	vringh_kiov_init(&vq->riov, NULL, 0);
	vringh_kiov_init(&vq->wiov, NULL, 0);
	return vbs_vq_alloc_slots(vq);
}

/**
 * vbs_vq_destroy() - release what vbs_vq_init() and the rings allocated
 * @vq: the virtqueue, with no request in flight
 */
void vbs_vq_destroy(struct vbs_vq *vq)
{
	vringh_kiov_cleanup(&vq->riov);
	vringh_kiov_cleanup(&vq->wiov);
	kvfree(vq->slots);
	vq->slots = NULL;
	vq->nr_slots = 0;
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
		if (!node)
			break;	/* every slot busy: a completion wakes us */
		req = llist_entry(node, struct vbs_req, node);

		/*
		 * vringh grows the iovecs to the chain's length, which an
		 * indirect table makes up to 2^28: a failed allocation only
		 * breaks the device (vbs_req_start() fails a chain longer
		 * than a legal request).
		 */
		ret = vringh_getdesc_iotlb(&vq->vring, &vq->riov, &vq->wiov,
					   &head, GFP_KERNEL | __GFP_NOWARN);
		if (ret <= 0) {
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
