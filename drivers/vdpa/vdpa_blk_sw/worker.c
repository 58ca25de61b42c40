// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: the dedicated polling kthreads.
 *
 * A device with num_workers >= 1, or in VA mode, has its own workers (the
 * others share the per-CPU pool of pool.c, which follows the same rules);
 * queue i belongs to worker i % nworkers,
 * the only context that touches its ring.  Each pass, with @dev->lock held
 * for reading, a worker publishes finished requests (status byte, used
 * ring, one batched notification), reaps IOPOLL completions, and starts at
 * most VBS_BUDGET new requests per virtqueue (queue.c).  When a pass finds
 * nothing it keeps polling with guest notifications suppressed, like
 * io_uring's SQPOLL, for a window of at most poll_idle_us; then it
 * re-enables notifications, looks once more and sleeps until a kick or a
 * completion wakes it.  It stops polling early when another task is
 * waiting for its CPU: on a small machine the submitter is often that
 * task.
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

/*
 * The bound of @w's window in ns, and whether it adapts: its device's
 * settings, or for a pool worker those its last pass found (@w->max_ns,
 * @w->adaptive).
 */
static u64 vbs_worker_bound(struct vbs_worker *w, bool *adaptive)
{
	if (w->dev) {
		*adaptive = READ_ONCE(w->dev->p.poll_adaptive);
		return vbs_poll_max_ns(w->dev);
	}
	*adaptive = READ_ONCE(w->adaptive);
	return READ_ONCE(w->max_ns);
}

/**
 * vbs_worker_window() - the busy-poll window a worker uses now
 * @w: the worker
 *
 * Return: the window in nanoseconds: @w->poll_ns capped at the bound
 * (poll_idle_us) when adaptive, the bound itself otherwise.
 */
u64 vbs_worker_window(struct vbs_worker *w)
{
	bool adaptive;
	u64 max = vbs_worker_bound(w, &adaptive);

	if (!adaptive)
		return max;
	return min(READ_ONCE(w->poll_ns), max);
}

/*
 * An idle period of @idle ns just ended with work: size the next window
 * within @max (KVM's grow/shrink rule, see the top of the file).
 */
static void vbs_worker_adapt(struct vbs_worker *w, u64 idle, u64 max)
{
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
 * vbs_worker_keep_polling() - account for a pass; pass again at once?
 * @w: the worker, from its own thread (@w->last_busy and @w->idle_since
 *	are its own)
 * @busy: the pass found work
 * @window: the window the pass ran with (vbs_worker_window())
 *
 * The step every polling loop, dedicated or pooled, takes after a pass:
 * when work ends an idle period, size the next window by how long the
 * driver left the device idle; without work, keep polling within @window
 * while no other task waits for the CPU.
 *
 * Return: true to run another pass now; false when the worker should turn
 * notifications back on, look once more and sleep.
 */
bool vbs_worker_keep_polling(struct vbs_worker *w, bool busy, u64 window)
{
	u64 now = ktime_get_ns();

	if (busy) {
		if (w->idle_since) {
			u64 end = READ_ONCE(w->kick_ns);
			bool adaptive;
			u64 max = vbs_worker_bound(w, &adaptive);

			/* A wake-up's own latency is not idle time. */
			if (end < w->idle_since || end > now)
				end = now;
			if (adaptive)
				vbs_worker_adapt(w, end - w->idle_since, max);
			w->idle_since = 0;
		}
		WRITE_ONCE(w->last_busy, now);
		cond_resched();
		return true;
	}
	if (!w->idle_since)
		w->idle_since = now;
	if (window && now - w->last_busy < window && single_task_running()) {
		atomic_set(&w->kicked, 0);
		cond_resched();
		cpu_relax();
		return true;
	}
	return false;
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

	for (i = w->index; i < dev->nvqs; i += dev->nworkers)
		busy |= vbs_vq_serve(&dev->vqs[i], !vbs_worker_lost_mm(w),
				     polling);
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

	if (vbs_worker_lost_mm(w))
		return true;
	for (i = w->index; i < dev->nvqs; i += dev->nworkers)
		quiet &= vbs_vq_set_notify(&dev->vqs[i], enable);
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
	int idx;

	while (!kthread_should_stop()) {
		u64 window = vbs_worker_window(w);
		bool busy;

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
		if (vbs_worker_keep_polling(w, busy, window))
			continue;

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
 * vbs_worker_stop() - stop the worker threads
 * @dev: the device, with no request in flight
 *
 * Waits for an RCU grace period so that no completion is still waking one.
 * A pooled device has none: its completions wake pool workers, which live
 * as long as the module, and the queues they read are freed after a grace
 * period (vbs_dev_free_vqs()), which nothing has to wait for.
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

/**
 * vbs_worker_start() - create the device's worker threads
 * @dev: the device, with its queues allocated
 *
 * None for a pooled device: its queues join the pool at DRIVER_OK.
 * Queue i goes to worker i % @dev->p.num_workers.  The threads are named
 * vbs-NAME/N and take any CPU affinity set with sched_setaffinity()
 * (taskset).
 *
 * Return: 0, or -errno from kthread creation with no thread left.
 */
int vbs_worker_start(struct vbs_dev *dev)
{
	u32 i;

	init_waitqueue_head(&dev->worker_wq);
	if (dev->pooled)
		return 0;
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
		if (IS_ERR(t)) {
			vbs_worker_stop(dev);
			return PTR_ERR(t);
		}
		get_task_struct(t);
		w->task = t;
		dev->nworkers = i + 1;
	}
	for (i = 0; i < dev->nworkers; i++)
		wake_up_process(dev->workers[i].task);
	return 0;
}
