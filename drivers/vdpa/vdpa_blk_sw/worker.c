// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: the polling kthreads.
 *
 * A device has one or more workers; queue i belongs to worker i % nworkers,
 * the only context that touches its ring.  Each pass, with @dev->lock held
 * for reading, a worker publishes finished requests (status byte, used
 * ring, one batched notification), reaps IOPOLL completions, and starts at
 * most VBS_BUDGET new requests per virtqueue.  When a pass finds nothing it keeps
 * polling with guest notifications suppressed, like io_uring's SQPOLL, for
 * a window of at most poll_idle_us; then it re-enables notifications, looks
 * once more and sleeps until a kick or a completion wakes it.  It stops
 * polling early when another task is waiting for its CPU: on a small
 * machine the submitter is often that task.
 *
 * With poll_adaptive (the default) the window follows KVM's halt polling:
 * an idle period longer than poll_idle_us halves it (down to 0: no
 * polling), one that a longer window would have caught doubles it (from
 * VBS_POLL_GROW_START_NS), one the window caught leaves it alone.  A
 * guest that submits back to back gets the full window, one that pauses
 * between requests gets none and costs no CPU.  An idle period that the
 * driver's kick ends is measured to the kick, not to when the sleeping
 * thread gets to run: otherwise a slow wake-up, which is what polling
 * avoids, would itself keep the window shut.  One that a completion of
 * the backing ends is measured to the pass, wake-up included: polling is
 * for the driver's requests, and a slow backing wakes the thread anyway.
 */

#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/stat.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "vdpa_blk_sw.h"

#define VBS_POLL_GROW_START_NS	(10 * NSEC_PER_USEC)

/* The device's poll_idle_us in ns: the window, or its bound when adaptive. */
static u64 vbs_poll_max_ns(struct vbs_dev *dev)
{
	return (u64)READ_ONCE(dev->p.poll_idle_us) * NSEC_PER_USEC;
}

/**
 * vbs_worker_window() - the busy-poll window a worker uses now
 * @w: the worker
 *
 * Return: the window in nanoseconds: @w->poll_ns capped at the device's
 * poll_idle_us when adaptive, poll_idle_us itself otherwise.
 */
u64 vbs_worker_window(struct vbs_worker *w)
{
	u64 max = vbs_poll_max_ns(w->dev);

	if (!READ_ONCE(w->dev->p.poll_adaptive))
		return max;
	return min(READ_ONCE(w->poll_ns), max);
}

/*
 * An idle period of @idle ns just ended with work: size the next window
 * (KVM's grow/shrink rule, see the top of the file).
 */
static void vbs_worker_adapt(struct vbs_worker *w, u64 idle)
{
	u64 max = vbs_poll_max_ns(w->dev);
	u64 cur = min(w->poll_ns, max);

	if (idle <= cur)
		return;
	if (idle > max)
		cur /= 2;
	else
		cur = cur ? cur * 2 : VBS_POLL_GROW_START_NS;
	if (cur < VBS_POLL_GROW_START_NS)
		cur = 0;
	WRITE_ONCE(w->poll_ns, min(cur, max));
}

/**
 * vbs_vq_alloc_slots() - preallocate the request slots of a virtqueue
 * @vq: the virtqueue
 *
 * One slot per ring entry the device may be given, so the data path never
 * allocates a request.
 *
 * Return: 0 or -ENOMEM.
 */
int vbs_vq_alloc_slots(struct vbs_vq *vq)
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
 * vbs_vq_free_slots() - release the request slots
 * @vq: the virtqueue, with no request in flight
 */
void vbs_vq_free_slots(struct vbs_vq *vq)
{
	kvfree(vq->slots);
	vq->slots = NULL;
	vq->nr_slots = 0;
}

static void vbs_vq_notify(struct vbs_vq *vq)
{
	if (vq->cb.callback) {
		vq->stats.interrupts++;
		vq->cb.callback(vq->cb.private);
	}
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
		 * breaks the device (vbs_req_start() refuses what is longer
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

/*
 * VA mode, and the owner's address space is gone (it exited while another
 * process keeps the vhost-vdpa fd): the ring addresses would resolve in
 * whatever address space the thread runs on lazily, so no ring is
 * touched, and the device asks for a reset.
 */
static bool vbs_worker_lost_mm(struct vbs_worker *w)
{
	return w->dev->mm && !w->mm;
}

/* One pass over the worker's virtqueues; true if there was anything to do. */
static bool vbs_worker_pass(struct vbs_worker *w, bool polling)
{
	struct vbs_dev *dev = w->dev;
	bool busy = false;
	u32 i;

	/* A set_map() broke the device: say so, holding @dev->lock. */
	if (atomic_read(&dev->announce) && atomic_xchg(&dev->announce, 0) &&
	    dev->config_cb.callback)
		dev->config_cb.callback(dev->config_cb.private);
	if (vbs_worker_lost_mm(w) && vbs_dev_running(dev))
		vbs_dev_set_broken(dev, &dev->vqs[w->index],
				   "the owner's address space is gone", -ESRCH);

	for (i = w->index; i < dev->nvqs; i += dev->nworkers) {
		struct vbs_vq *vq = &dev->vqs[i];
		bool fetched = false;

		if (vbs_vq_reap(vq, !vbs_worker_lost_mm(w)))
			busy = true;
		if (!list_empty(&vq->polled)) {
			vbs_iopoll(vq);
			busy = true;
		}
		if (vbs_worker_lost_mm(w))
			continue;
		if (vq->ready && !vq->broken && !dev->suspended &&
		    vbs_dev_running(dev)) {
			fetched = vbs_vq_fetch(vq);
			if (fetched && polling)
				vq->stats.polls++;
		}
		busy |= fetched;
	}
	return busy;
}

/*
 * Turn notifications on (or off) on the worker's running queues.  Returns
 * false if a request slipped in while enabling them.
 */
static bool vbs_worker_set_notify(struct vbs_worker *w, bool enable)
{
	struct vbs_dev *dev = w->dev;
	bool quiet = true;
	u32 i;

	if (!vbs_dev_running(dev) || dev->suspended || vbs_worker_lost_mm(w))
		return true;
	for (i = w->index; i < dev->nvqs; i += dev->nworkers) {
		struct vbs_vq *vq = &dev->vqs[i];

		if (!vq->ready || vq->broken)
			continue;
		if (!enable) {
			vringh_notify_disable_iotlb(&vq->vring);
			continue;
		}
		/* Only look at the ring if we could take a request. */
		if (!vringh_notify_enable_iotlb(&vq->vring) &&
		    !llist_empty(&vq->free))
			quiet = false;
	}
	return quiet;
}

static bool vbs_worker_has_work(struct vbs_worker *w)
{
	struct vbs_dev *dev = w->dev;
	u32 i;

	if (atomic_xchg(&w->kicked, 0))
		return true;
	for (i = w->index; i < dev->nvqs; i += dev->nworkers)
		if (!llist_empty(&dev->vqs[i].done))
			return true;
	return kthread_should_stop();
}

/*
 * VA mode: run with the vhost-vdpa owner's address space, so that vringh's
 * user accessors and pin_user_pages_fast() work on it.  NULL drops it.
 */
static void vbs_worker_adopt_mm(struct vbs_worker *w, struct mm_struct *mm)
{
	if (w->mm == mm)
		return;
	if (w->mm) {
		kthread_unuse_mm(w->mm);
		mmput(w->mm);
		w->mm = NULL;
	}
	if (mm && mmget_not_zero(mm)) {
		kthread_use_mm(mm);
		w->mm = mm;
	}
}

static int vbs_worker_fn(void *data)
{
	struct vbs_worker *w = data;
	struct vbs_dev *dev = w->dev;
	bool notify_off = false;
	u64 last_busy = 0, idle_since = 0;
	int idx;

	while (!kthread_should_stop()) {
		u64 window = vbs_worker_window(w);
		bool busy;
		u64 now;

		down_read(&dev->lock);
		vbs_worker_adopt_mm(w, dev->mm);
		idx = srcu_read_lock(&dev->iotlb_srcu);
		if (window && !notify_off) {
			vbs_worker_set_notify(w, false);
			notify_off = true;
		}
		busy = vbs_worker_pass(w, notify_off);
		srcu_read_unlock(&dev->iotlb_srcu, idx);
		up_read(&dev->lock);

		now = ktime_get_ns();
		if (busy) {
			if (idle_since) {
				u64 end = READ_ONCE(w->kick_ns);

				/* A wake-up's own latency is not idle time. */
				if (end < idle_since || end > now)
					end = now;
				if (READ_ONCE(dev->p.poll_adaptive))
					vbs_worker_adapt(w, end - idle_since);
				idle_since = 0;
			}
			last_busy = now;
			cond_resched();
			continue;
		}
		if (!idle_since)
			idle_since = now;
		if (window && now - last_busy < window && single_task_running()) {
			atomic_set(&w->kicked, 0);
			cond_resched();
			cpu_relax();
			continue;
		}

		/* Idle: notifications back on, one more look, then sleep. */
		down_read(&dev->lock);
		idx = srcu_read_lock(&dev->iotlb_srcu);
		busy = !vbs_worker_set_notify(w, true);
		srcu_read_unlock(&dev->iotlb_srcu, idx);
		up_read(&dev->lock);
		notify_off = false;
		if (busy)
			continue;

		/* Do not keep a process's memory alive while asleep. */
		vbs_worker_adopt_mm(w, NULL);
		WRITE_ONCE(w->kick_ns, 0);
		set_current_state(TASK_INTERRUPTIBLE);
		if (vbs_worker_has_work(w)) {
			__set_current_state(TASK_RUNNING);
			continue;
		}
		schedule();
	}
	vbs_worker_adopt_mm(w, NULL);
	return 0;
}

/**
 * vbs_worker_start() - create the device's worker threads
 * @dev: the device, with its queues allocated
 *
 * Queue i goes to worker i % @dev->p.num_workers.  The threads are named
 * vbs-NAME/N and take any CPU affinity set with sched_setaffinity()
 * (taskset).
 *
 * Return: 0 or -errno from kthread creation.
 */
int vbs_worker_start(struct vbs_dev *dev)
{
	u32 i;

	init_waitqueue_head(&dev->worker_wq);
	dev->workers = kcalloc(dev->p.num_workers, sizeof(*dev->workers),
			       GFP_KERNEL);
	if (!dev->workers)
		return -ENOMEM;
	for (i = 0; i < dev->nvqs; i++)
		dev->vqs[i].worker = &dev->workers[i % dev->p.num_workers];

	for (i = 0; i < dev->p.num_workers; i++) {
		struct vbs_worker *w = &dev->workers[i];
		struct task_struct *t;

		w->dev = dev;
		w->index = i;
		atomic_set(&w->kicked, 0);
		t = kthread_create(vbs_worker_fn, w, "vbs-%s/%u",
				   dev_name(&dev->vdpa.dev), i);
		if (IS_ERR(t))
			return PTR_ERR(t);
		get_task_struct(t);
		w->task = t;
		dev->nworkers = i + 1;
	}
	for (i = 0; i < dev->nworkers; i++)
		wake_up_process(dev->workers[i].task);
	return 0;
}

/**
 * vbs_worker_stop() - stop the worker threads
 * @dev: the device, with no request in flight
 *
 * Waits for an RCU grace period so that no completion is still waking one.
 */
void vbs_worker_stop(struct vbs_dev *dev)
{
	u32 i;

	if (!dev->workers)
		return;
	for (i = 0; i < dev->nworkers; i++)
		kthread_stop(dev->workers[i].task);
	synchronize_rcu();
	for (i = 0; i < dev->nworkers; i++)
		put_task_struct(dev->workers[i].task);
	kfree(dev->workers);
	dev->workers = NULL;
	dev->nworkers = 0;
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
