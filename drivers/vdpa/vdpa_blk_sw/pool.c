// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: the shared pool of polling workers, one per CPU.
 *
 * A device created with num_workers 0 (the default) and without use_va
 * has no thread of its own.  At DRIVER_OK each of its queues is attached
 * to the pool worker of one online CPU of the queue's mask (affinity.c:
 * the (index mod weight)-th, so a single-CPU mask from virtio_vdpa gives
 * that CPU and an unset mask spreads the queues), and reset detaches them.
 * A pool worker is created the first time a queue is attached to its CPU
 * and lives until the module is unloaded: the thread count is at most the
 * number of CPUs ever used, whatever the number of devices
 * (/sys/module/vdpa_blk_sw/parameters/pool_threads).  It runs on its CPU
 * (set_cpus_allowed_ptr(), not kthread_bind(): when its CPU goes offline
 * it moves to the other online CPUs and keeps serving its queues, and
 * comes back with the CPU; its queues are re-homed at the next DRIVER_OK).
 * Likewise a queue's mask changed while it runs (cpu_list) takes effect at
 * the next DRIVER_OK.
 *
 * A pass serves every active queue of the worker, each under its own
 * device's @dev->lock (read) and iotlb_srcu section, exactly as a
 * dedicated worker does (worker.c), with one adaptive window for the
 * worker: bounded by the largest poll_idle_us of the active queues'
 * devices, fixed at that bound if one of them has poll_adaptive off.  It
 * polls only while no other task waits for its CPU, and before sleeping it
 * re-enables notifications on every active queue and looks at each once
 * more.  A kick or a completion sets @kicked and wakes it, so the last
 * check before schedule() needs no lock.  Blocking backing work goes to
 * the module's workqueue (backend.c): a worker never waits for one
 * device's flush or buffered write while others have requests.  Its
 * allocations are GFP_NOIO (memalloc_noio_save()): reclaim must not wait
 * for I/O that this very worker would have to serve.
 *
 * Active queues: a queue with nothing in flight that has found no work
 * for VBS_POOL_RETIRE_NS (its device's poll_idle_us if longer) leaves the
 * passes, at the next one, with its notifications on
 * (vbs_pool_retire()); the driver's next kick, or any control operation
 * that wakes the device, brings it back (vbs_pool_wake_vq(), counted in
 * its stats.wakes, under the worker's @wake_lock, a raw spinlock since
 * kicks come in any context).  So a pass costs what the queues in use
 * cost: a worker serving one busy device and a thousand idle ones does not
 * look at a thousand rings between two requests, as SPDK's pollers and
 * io_uring's SQPOLL leave an idle ring alone.  The window's bound follows
 * the devices of the queues in use (sysfs's poll_window_ns takes it over
 * every device of the worker, in use or not).
 *
 * Attach and detach: the queues of a worker are on its list, under its
 * @pass_lock, which the worker holds for a whole pass (and on its active
 * list or its woken list, or idle, under @wake_lock too); vbs_pool_mutex
 * serialises attaching, detaching and creating workers.  Detach takes
 * @pass_lock, so when it returns the worker is not in a pass and will
 * never see the queue again.  It is called once no request is in flight
 * (after vbs_dev_quiesce()), so no completion will name the worker
 * either; @vq->worker keeps pointing at it (a late reader only wakes it
 * for nothing, and pool workers outlive every device).  Lock order:
 * the CPU hotplug lock (held by pool.c's own hotplug callbacks),
 * vbs_pool_mutex, vbs_aff_mutex (affinity.c);
 * vbs_pool_mutex, @pass_lock, @dev->lock, @wake_lock.  Callers hold no
 * lock of the device.
 *
 * Spilling: serving a queue on the CPU that submits to it halves the
 * wake-ups of a shallow queue, but a deep one then shares that CPU with
 * its submitter while the others idle.  A queue's depth in a pass is the
 * number of its requests the pass completes, or those it leaves in
 * flight if that is VBS_SPILL_BATCH or more; a pass is deep when its own
 * queues' depths add up to at least VBS_SPILL_BATCH: a submitter at
 * queue depth 1 never makes one, one deep queue makes them whether its
 * backing completes inline or later, and so do many shallow ones (many
 * devices used from one CPU) by the work they make, not by requests that
 * wait for a slow backing and cost the worker nothing.  When
 * VBS_SPILL_PASSES deep passes, each within VBS_SPILL_GAP_NS of the
 * last, end with another task waiting for the worker's CPU (the
 * submitter, woken by those completions), the worker, if it holds none
 * of another worker's queues, hands its busiest queue, and every other
 * queue of its own that found work within VBS_SPILL_GAP_NS, to the
 * worker of an idle CPU (vbs_pool_may_take()), none
 * outside an administrator's cpu_list for it (vbs_affinity_may_spill()):
 * the first of them in that order that some idle CPU may take chooses
 * the CPU.
 * A spilled queue never moves on from there, which would bounce it
 * between two busy CPUs, but it goes home when the worker it went to
 * counts such passes of its own queues, whose submitters now compete for
 * that CPU.  Served elsewhere, the queue is no longer deep: its
 * submitter has a CPU to itself and the other worker takes each request
 * as it comes.  So it goes home once it has been idle (nothing in
 * flight, no pass finding work on it) for VBS_SPILL_IDLE_NS, or at once
 * with nothing in flight if pool_spill is turned off: the worker serving
 * it looks when it is about to sleep, then after sleeping that long
 * (schedule_timeout()), and every VBS_SPILL_GAP_NS while it polls.
 * A worker that sent its guests home for its own queues' sake takes none
 * for VBS_SPILL_COOLDOWN_NS: every CPU has submitters, and several fio
 * jobs spread over the CPUs would otherwise send queues to and fro.  Its
 * lock is vbs_pool_mutex, which attach holds across allocations and
 * thread creation: a pool worker only ever tries it
 * (mutex_trylock()), and tries again later.
 * A queue is on one worker's list at a time, moved under vbs_pool_mutex,
 * the old worker's @pass_lock and then the new one's, so it is never in
 * two passes at once.  Moving publishes the new @vq->worker and issues a
 * full barrier before the new worker can look at the queue: a completion
 * (llist_add(), a full barrier, then READ_ONCE(@vq->worker)) or a kick
 * that still found the old worker added its work before that barrier,
 * so the new worker's first pass, which the move forces, sees it.
 *
 * VA mode (use_va) keeps dedicated workers: a VA-mode ring is read
 * through the vhost-vdpa owner's address space, which a worker adopts
 * (kthread_use_mm()) and keeps while busy; switching it for every queue
 * of every pass would cost a TLB flush each, and a fault there, under the
 * owner's mmap_lock, would stall every other device of the CPU.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/cpumask.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/stat.h>
#include <linux/slab.h>

#include "vdpa_blk_sw.h"

/* Depth a pass must find in a worker's own queues to count as deep. */
#define VBS_SPILL_BATCH		8
/* Deep passes ending with the CPU contended, each within the gap: spill. */
#define VBS_SPILL_PASSES	4
#define VBS_SPILL_GAP_NS	(10 * NSEC_PER_MSEC)
/*
 * Idle this long: a spilled queue goes home, and a worker may take one
 * (vbs_pool_may_take()).
 */
#define VBS_SPILL_IDLE_NS	(2 * NSEC_PER_MSEC)
/* A worker that sent its guests home takes none for this long (see top). */
#define VBS_SPILL_COOLDOWN_NS	(1000 * NSEC_PER_MSEC)
/* A queue that found no work for this long leaves its worker's passes. */
#define VBS_POOL_RETIRE_NS	(1 * NSEC_PER_MSEC)

/**
 * struct vbs_pool_worker - the shared polling thread of one CPU
 * @w: the thread and its window; @w.dev is NULL
 * @cpu: the CPU it serves
 * @pass_lock: held by the thread over a pass, and by attach, detach and
 *	moves
 * @vqs: the queues it serves, linked by their @pool_node
 * @nvqs: number of @vqs; changed under vbs_pool_mutex and @pass_lock
 * @active: the queues of @vqs its passes look at, linked by their
 *	@active_node; under @pass_lock, and @wake_lock to add or remove one
 * @woken: idle queues kicked since its last pass, linked by their
 *	@active_node; under @wake_lock
 * @wake_lock: guards @woken and the @idle_on of its queues; raw, for
 *	kicks from any context
 * @guests: how many of @vqs spilled here from another worker; written
 *	under @pass_lock, read by the thread without it
 * @hot: the busiest queue of its own (@home is this worker) if its last
 *	pass found its own queues deep together, NULL if not; written under
 *	@pass_lock, which the thread alone may skip to test it for NULL
 * @contended: deep passes that ended with another task waiting for @cpu,
 *	each within VBS_SPILL_GAP_NS of the last; the thread's own
 * @contended_ns: when the last of them ended; the thread's own
 * @home_ns: when it last looked for queues to send home; the thread's own
 * @evicted_ns: when it last sent (or tried to send) its guests home
 *	because its own queues contended its CPU; written by the thread
 *	before it takes vbs_pool_mutex, read by others under it
 * @waiting: a queue of its own had requests in flight at the end of its
 *	last pass: its submitter waits for them, and will want the CPU back
 *	as soon as they complete; written by the thread, a hint to others
 * @asleep: the thread is (about to be) asleep with nothing to do, so
 *	another worker may spill to it; read without a lock, as a hint
 */
struct vbs_pool_worker {
	struct vbs_worker w;
	unsigned int cpu;
	struct mutex pass_lock;	/* see above */
	struct list_head vqs;
	unsigned int nvqs;
	struct list_head active;
	struct list_head woken;
	raw_spinlock_t wake_lock;	/* see above */
	unsigned int guests;
	struct vbs_vq *hot;
	unsigned int contended;
	u64 contended_ns;
	u64 home_ns;
	u64 evicted_ns;
	bool waiting;
	bool asleep;
};

static DEFINE_MUTEX(vbs_pool_mutex);
/* nr_cpu_ids entries, under vbs_pool_mutex */
static struct vbs_pool_worker **vbs_pool;
static unsigned int vbs_pool_threads;
module_param_named(pool_threads, vbs_pool_threads, uint, 0444);
MODULE_PARM_DESC(pool_threads,
		 "Polling threads of the shared pool (one per CPU used so far)");
static bool vbs_pool_spill = true;
module_param_named(pool_spill, vbs_pool_spill, bool, 0644);
MODULE_PARM_DESC(pool_spill,
		 "Hand a busy queue to an idle CPU's pool thread while its own CPU is contended (default: Y)");

enum vbs_pool_pass {
	VBS_POOL_SERVE,		/* serve each queue */
	VBS_POOL_QUIET,		/* notifications off, then serve */
	VBS_POOL_ARM,		/* notifications on, and look once more */
};

/*
 * Put @vq, idle on @pw, on @pw's woken list for its next pass, under
 * @pw->wake_lock; false if it is not idle there (woken already, or moved
 * to another worker, which looks at it).
 */
static bool vbs_pool_unidle(struct vbs_pool_worker *pw, struct vbs_vq *vq)
{
	lockdep_assert_held(&pw->wake_lock);
	if (vq->idle_on != pw)
		return false;
	WRITE_ONCE(vq->idle_on, NULL);
	vq->pool_fresh = true;
	list_add_tail(&vq->active_node, &pw->woken);
	return true;
}

/*
 * Take @vq, with nothing left to do, out of @pw's passes: under
 * @pw->pass_lock and @dev->lock (read), from @pw's thread.  Its
 * notifications are turned on after @idle_on is published, and the ring
 * looked at once more: the full barrier between pairs with the one in
 * vbs_pool_wake_vq(), so a request the driver made available before that
 * look is either seen by it or kicked to a waker that finds @idle_on
 * set.  Returns false if the queue had work after all; it is then on
 * @pw->woken for the next pass.
 */
static bool vbs_pool_retire(struct vbs_pool_worker *pw, struct vbs_vq *vq)
{
	raw_spin_lock_irq(&pw->wake_lock);
	list_del_init(&vq->active_node);
	WRITE_ONCE(vq->idle_on, pw);
	raw_spin_unlock_irq(&pw->wake_lock);
	smp_mb();	/* @idle_on before the ring; see vbs_pool_wake_vq() */
	if (vbs_vq_set_notify(vq, true))
		return true;
	raw_spin_lock_irq(&pw->wake_lock);
	vbs_pool_unidle(pw, vq);
	raw_spin_unlock_irq(&pw->wake_lock);
	return false;
}

/*
 * One pass over the active queues of @pw; true if there was anything to
 * do.  First the queues kicked while idle join them; a queue with
 * nothing in flight that has found no work for VBS_POOL_RETIRE_NS, or its
 * device's poll_idle_us if longer, leaves them (vbs_pool_retire()): a
 * pass costs what the queues in use cost, not what every queue of the
 * CPU would.  Not sooner: a queue at queue depth 1 would pay a wake-up
 * for every request.  Also takes the window's bound and mode from the
 * devices of the active queues.
 */
static bool vbs_pool_pass(struct vbs_pool_worker *pw, enum vbs_pool_pass how,
			  bool polling)
{
	bool busy = false, adaptive = true, waiting = false, found;
	struct vbs_vq *vq, *next, *top = NULL;
	u64 max = 0, now = 0, done, depth = 0, most = 0, n, idle_ns;
	int idx;

	mutex_lock(&pw->pass_lock);
	if (!list_empty(&pw->woken)) {
		raw_spin_lock_irq(&pw->wake_lock);
		list_splice_tail_init(&pw->woken, &pw->active);
		raw_spin_unlock_irq(&pw->wake_lock);
	}
	list_for_each_entry_safe(vq, next, &pw->active, active_node) {
		struct vbs_dev *dev = vq->dev;

		idle_ns = (u64)READ_ONCE(dev->p.poll_idle_us) * NSEC_PER_USEC;
		max = max(max, idle_ns);
		adaptive &= READ_ONCE(dev->p.poll_adaptive);

		down_read(&dev->lock);
		idx = srcu_read_lock(&dev->iotlb_srcu);
		/* A set_map() broke the device: say so, holding @dev->lock. */
		if (atomic_read(&dev->announce) &&
		    atomic_xchg(&dev->announce, 0) && dev->config_cb.callback)
			dev->config_cb.callback(dev->config_cb.private);
		found = false;
		if (how == VBS_POOL_ARM) {
			if (!vbs_vq_set_notify(vq, true) ||
			    !llist_empty(&vq->done))
				found = true;
		} else {
			if (how == VBS_POOL_QUIET ||
			    (polling && vq->pool_fresh))
				vbs_vq_set_notify(vq, false);
			done = vq->stats.requests;
			found = vbs_vq_serve(vq, true, polling);
			n = vq->stats.requests - done;
			if (vq->inflight >= VBS_SPILL_BATCH)
				n = max_t(u64, n, vq->inflight);
			if (vq->home == pw && n) {
				depth += n;
				if (n > most) {
					most = n;
					top = vq;
				}
			}
		}
		vq->pool_fresh = false;
		if (!now)
			now = ktime_get_ns();
		if (found)
			vq->busy_ns = now;
		else if (!vq->inflight && llist_empty(&vq->done) &&
			 list_empty(&vq->polled) && now - vq->busy_ns >
			 max_t(u64, VBS_POOL_RETIRE_NS, idle_ns))
			found = !vbs_pool_retire(pw, vq);
		busy |= found;
		if (vq->home == pw && vq->inflight)
			waiting = true;
		srcu_read_unlock(&dev->iotlb_srcu, idx);
		up_read(&dev->lock);
	}
	WRITE_ONCE(pw->hot, depth >= VBS_SPILL_BATCH ? top : NULL);
	WRITE_ONCE(pw->waiting, waiting);
	mutex_unlock(&pw->pass_lock);
	WRITE_ONCE(pw->w.max_ns, max);
	WRITE_ONCE(pw->w.adaptive, adaptive);
	return busy;
}

/**
 * vbs_pool_wake_vq() - bring an idle pooled queue back into its worker's
 *	passes
 * @vq: a queue of a pooled device, kicked by the driver or woken by a
 *	control operation
 * @w: its worker as the caller read it (READ_ONCE(@vq->worker)), which
 *	the caller kicks next
 *
 * A queue not attached, attached and not idle, or idle on another worker
 * (it moved: its new worker looks at it) is left as it is.  The full
 * barrier pairs with vbs_pool_retire()'s: if the worker's last look at the
 * ring missed a request the driver made available before this, @idle_on
 * is seen set here.  Callable from any context but NMI.
 */
void vbs_pool_wake_vq(struct vbs_vq *vq, struct vbs_worker *w)
{
	struct vbs_pool_worker *pw = container_of(w, struct vbs_pool_worker, w);
	unsigned long flags;

	smp_mb();	/* the driver's ring before @idle_on */
	if (READ_ONCE(vq->idle_on) != pw)
		return;
	raw_spin_lock_irqsave(&pw->wake_lock, flags);
	if (vbs_pool_unidle(pw, vq))
		WRITE_ONCE(vq->stats.wakes, vq->stats.wakes + 1);
	raw_spin_unlock_irqrestore(&pw->wake_lock, flags);
}

/*
 * Put @vq on @pw's list, or take it off (which waits for @pw's current
 * pass); under vbs_pool_mutex.  @vq->home must be set.
 */
static void vbs_pool_link(struct vbs_vq *vq, struct vbs_pool_worker *pw)
{
	lockdep_assert_held(&vbs_pool_mutex);
	mutex_lock(&pw->pass_lock);
	list_add_tail(&vq->pool_node, &pw->vqs);
	pw->nvqs++;
	raw_spin_lock_irq(&pw->wake_lock);
	WRITE_ONCE(vq->idle_on, NULL);
	vq->pool_fresh = true;
	list_add_tail(&vq->active_node, &pw->active);
	raw_spin_unlock_irq(&pw->wake_lock);
	if (vq->home != pw)
		WRITE_ONCE(pw->guests, pw->guests + 1);
	mutex_unlock(&pw->pass_lock);
}

static void vbs_pool_unlink(struct vbs_vq *vq, struct vbs_pool_worker *pw)
{
	lockdep_assert_held(&vbs_pool_mutex);
	mutex_lock(&pw->pass_lock);
	list_del_init(&vq->pool_node);
	pw->nvqs--;
	raw_spin_lock_irq(&pw->wake_lock);
	WRITE_ONCE(vq->idle_on, NULL);
	list_del_init(&vq->active_node);
	raw_spin_unlock_irq(&pw->wake_lock);
	if (vq->home != pw)
		WRITE_ONCE(pw->guests, pw->guests - 1);
	if (pw->hot == vq)
		WRITE_ONCE(pw->hot, NULL);
	mutex_unlock(&pw->pass_lock);
}

/*
 * Move @vq from @from's list to @to's, under vbs_pool_mutex; neither
 * worker is in a pass when it holds its @pass_lock (see the top of the
 * file for the barrier).
 */
static void vbs_pool_move(struct vbs_vq *vq, struct vbs_pool_worker *from,
			  struct vbs_pool_worker *to)
{
	lockdep_assert_held(&vbs_pool_mutex);
	vbs_pool_unlink(vq, from);
	WRITE_ONCE(vq->pool, to);
	WRITE_ONCE(vq->worker, &to->w);
	smp_mb();	/* vq->worker before @to's passes; see the top */
	vbs_pool_link(vq, to);
	vbs_worker_kick(&to->w);
}

/*
 * May @pw take a spilled queue?  Under vbs_pool_mutex.  Its CPU is online
 * and it serves queues of its own there, none of another worker's; it is
 * asleep, found no work for VBS_SPILL_IDLE_NS and has none of its own
 * queues' requests in flight: a worker that sleeps only between the
 * requests of its own busy queue, or while a slow backing serves them,
 * shares its CPU with their submitter, and would just trade places with
 * the one spilling.  Nor within VBS_SPILL_COOLDOWN_NS of sending guests
 * home for its own queues' sake.
 */
static bool vbs_pool_may_take(struct vbs_pool_worker *pw, u64 now)
{
	return pw && cpu_online(pw->cpu) && pw->nvqs && !pw->guests &&
	       READ_ONCE(pw->asleep) && !READ_ONCE(pw->waiting) &&
	       now - READ_ONCE(pw->w.last_busy) > VBS_SPILL_IDLE_NS &&
	       (s64)(now - READ_ONCE(pw->evicted_ns)) > VBS_SPILL_COOLDOWN_NS;
}

/* Queues one spill looks at, its busiest first (vbs_pool_spill_some()). */
#define VBS_SPILL_MAX_MOVE	32

/*
 * @pw's CPU is contended while its own queues keep it busy: hand the
 * busiest of them to a worker that may take it, with every other queue of
 * its own that found work within VBS_SPILL_GAP_NS (list order, at most
 * VBS_SPILL_MAX_MOVE); if an administrator's cpu_list keeps the busiest
 * where it is, the next that may go chooses the CPU.  All of them, as one
 * deep queue moves whole: the idle CPU serves them while the submitters
 * keep theirs (moving half left the other half competing with them: one
 * fio job over 16 devices made half the IOPS of one device at QD64).
 * From @pw's thread, between passes; gives up rather than wait for
 * vbs_pool_mutex, which keeps @pw's list as it is while held (only moves,
 * attach and detach change it).
 */
static void vbs_pool_spill_some(struct vbs_pool_worker *pw)
{
	unsigned int i, c, cpu, nq = 0, moved = 0;
	struct vbs_vq *q, *vqs[VBS_SPILL_MAX_MOVE];
	struct vbs_pool_worker *to = NULL;
	u64 now;

	if (!mutex_trylock(&vbs_pool_mutex))
		return;
	now = ktime_get_ns();
	mutex_lock(&pw->pass_lock);
	if (pw->hot)
		vqs[nq++] = pw->hot;
	list_for_each_entry(q, &pw->vqs, pool_node) {
		if (q->home != pw || now - q->busy_ns > VBS_SPILL_GAP_NS)
			continue;
		if (nq && q != vqs[0] && nq < ARRAY_SIZE(vqs))
			vqs[nq++] = q;
	}
	mutex_unlock(&pw->pass_lock);
	/* Start after @pw's CPU, so that spills spread over the CPUs. */
	for (c = 0; c < nq && !to; c++) {
		for (i = 1; i < nr_cpu_ids && !to; i++) {
			cpu = (pw->cpu + i) % nr_cpu_ids;
			if (vbs_pool_may_take(vbs_pool[cpu], now) &&
			    vbs_affinity_may_spill(vqs[c]->dev, vqs[c]->index,
						   cpu))
				to = vbs_pool[cpu];
		}
	}
	if (!to)
		goto unlock_pool;
	WRITE_ONCE(to->asleep, false);
	for (c--; c < nq; c++) {
		if (moved &&
		    !vbs_affinity_may_spill(vqs[c]->dev, vqs[c]->index, to->cpu))
			continue;
		vbs_pool_move(vqs[c], pw, to);
		WRITE_ONCE(vqs[c]->stats.spills, vqs[c]->stats.spills + 1);
		moved++;
	}
unlock_pool:
	mutex_unlock(&vbs_pool_mutex);
}

/*
 * Send home the queues that spilled to @pw: with @force all of them (its
 * CPU is contended with its own work), else those that have been idle for
 * VBS_SPILL_IDLE_NS, or all those with nothing in flight once pool_spill
 * is off (it found all its queues idle).  Returns true if it should look
 * again after that long: a queue was left only because it has not been
 * idle long enough, or vbs_pool_mutex was busy.
 */
static bool vbs_pool_send_home(struct vbs_pool_worker *pw, bool force)
{
	bool spill = READ_ONCE(vbs_pool_spill), later = false;
	struct vbs_vq *vq, *guest;
	u64 now = ktime_get_ns();

	pw->home_ns = now;
	if (!mutex_trylock(&vbs_pool_mutex))
		return true;
	do {
		guest = NULL;
		mutex_lock(&pw->pass_lock);
		list_for_each_entry(vq, &pw->vqs, pool_node) {
			if (vq->home == pw)
				continue;
			if (force) {
				guest = vq;
				break;
			}
			if (READ_ONCE(vq->inflight))
				continue;
			if (!spill || now - vq->busy_ns > VBS_SPILL_IDLE_NS) {
				guest = vq;
				break;
			}
			later = true;
		}
		mutex_unlock(&pw->pass_lock);
		if (guest)
			vbs_pool_move(guest, pw, guest->home);
	} while (guest);
	mutex_unlock(&vbs_pool_mutex);
	return later;
}

/*
 * After a pass: count the deep passes of its own queues at whose end
 * another task waits for the CPU; at VBS_SPILL_PASSES of them in close
 * succession, send home the queues that spilled here, if any (their
 * submitters now compete with its own), else spill.
 */
static void vbs_pool_contention(struct vbs_pool_worker *pw)
{
	u64 now;

	if (!READ_ONCE(pw->hot) || single_task_running() ||
	    !READ_ONCE(vbs_pool_spill))
		return;
	now = ktime_get_ns();
	if (now - pw->contended_ns > VBS_SPILL_GAP_NS)
		pw->contended = 0;
	pw->contended_ns = now;
	if (++pw->contended < VBS_SPILL_PASSES)
		return;
	pw->contended = 0;
	if (READ_ONCE(pw->guests)) {
		WRITE_ONCE(pw->evicted_ns, now);
		vbs_pool_send_home(pw, true);
	} else {
		vbs_pool_spill_some(pw);
	}
}

/* The loop of worker.c's vbs_worker_fn(), over several devices. */
static int vbs_pool_fn(void *data)
{
	struct vbs_pool_worker *pw = data;
	struct vbs_worker *w = &pw->w;
	bool notify_off = false, later;

	memalloc_noio_save();
	while (!kthread_should_stop()) {
		u64 window = vbs_worker_window(w);
		enum vbs_pool_pass how = VBS_POOL_SERVE;
		bool busy;

		if (window && !notify_off) {
			how = VBS_POOL_QUIET;
			notify_off = true;
		}
		busy = vbs_pool_pass(pw, how, notify_off);
		vbs_pool_contention(pw);
		/* Polling may never let it sleep: look now and then too. */
		if (!busy && READ_ONCE(pw->guests) &&
		    ktime_get_ns() - pw->home_ns > VBS_SPILL_GAP_NS)
			vbs_pool_send_home(pw, false);
		if (vbs_worker_keep_polling(w, busy, window))
			continue;

		/* Idle: notifications back on, one more look, then sleep. */
		busy = vbs_pool_pass(pw, VBS_POOL_ARM, false);
		notify_off = false;
		if (busy)
			continue;
		later = READ_ONCE(pw->guests) && vbs_pool_send_home(pw, false);

		WRITE_ONCE(w->kick_ns, 0);
		set_current_state(TASK_INTERRUPTIBLE);
		if (atomic_xchg(&w->kicked, 0) || kthread_should_stop()) {
			__set_current_state(TASK_RUNNING);
			continue;
		}
		WRITE_ONCE(pw->asleep, true);
		if (later)
			schedule_timeout(nsecs_to_jiffies(VBS_SPILL_IDLE_NS) + 1);
		else
			schedule();
		WRITE_ONCE(pw->asleep, false);
	}
	return 0;
}

/* @cpu's pool worker, created if need be; under vbs_pool_mutex. */
static struct vbs_pool_worker *vbs_pool_get(unsigned int cpu)
{
	struct vbs_pool_worker *pw = vbs_pool[cpu];
	struct task_struct *t;

	if (pw)
		return pw;
	pw = kzalloc(sizeof(*pw), GFP_KERNEL);
	if (!pw)
		return NULL;
	pw->cpu = cpu;
	mutex_init(&pw->pass_lock);
	INIT_LIST_HEAD(&pw->vqs);
	INIT_LIST_HEAD(&pw->active);
	INIT_LIST_HEAD(&pw->woken);
	raw_spin_lock_init(&pw->wake_lock);
	atomic_set(&pw->w.kicked, 0);
	pw->w.index = cpu;
	pw->w.adaptive = true;
	t = kthread_create(vbs_pool_fn, pw, "vbs_pool/%u", cpu);
	if (IS_ERR(t)) {
		kfree(pw);
		return NULL;
	}
	/* Preferred, not bound: see the top of the file. */
	set_cpus_allowed_ptr(t, cpumask_of(cpu));
	get_task_struct(t);
	pw->w.task = t;
	vbs_pool[cpu] = pw;
	vbs_pool_threads++;
	wake_up_process(t);
	return pw;
}

/**
 * vbs_pool_attach() - attach a pooled device's queues to the pool
 * @dev: the device, at DRIVER_OK; no lock of it held
 *
 * Each queue not attached yet goes to the worker of the CPU
 * vbs_affinity_pick_cpu() gives.  A worker that cannot be created leaves
 * its queue unserved and the device needing a reset.
 */
void vbs_pool_attach(struct vbs_dev *dev)
{
	bool failed = false;
	u32 i;

	if (!dev->pooled)
		return;
	cpus_read_lock();
	mutex_lock(&vbs_pool_mutex);
	for (i = 0; i < dev->nvqs; i++) {
		struct vbs_vq *vq = &dev->vqs[i];
		struct vbs_pool_worker *pw;

		if (vq->pool)
			continue;
		pw = vbs_pool_get(vbs_affinity_pick_cpu(dev, i));
		if (!pw) {
			failed = true;
			continue;
		}
		vq->home = pw;
		WRITE_ONCE(vq->pool, pw);
		vbs_pool_link(vq, pw);
		WRITE_ONCE(vq->worker, &pw->w);
	}
	mutex_unlock(&vbs_pool_mutex);
	cpus_read_unlock();
	if (failed) {
		down_write(&dev->lock);
		vbs_dev_set_broken(dev, &dev->vqs[0], "cannot start a pool worker",
				   -ENOMEM);
		up_write(&dev->lock);
	}
}

/**
 * vbs_pool_detach() - take a pooled device's queues out of the pool
 * @dev: the device, with no request in flight; no lock of it held
 *
 * When it returns no pool worker touches the queues any more.
 */
void vbs_pool_detach(struct vbs_dev *dev)
{
	u32 i;

	if (!dev->pooled)
		return;
	mutex_lock(&vbs_pool_mutex);
	for (i = 0; i < dev->nvqs; i++) {
		struct vbs_vq *vq = &dev->vqs[i];
		struct vbs_pool_worker *pw = vq->pool;

		if (!pw)
			continue;
		WARN_ON_ONCE(READ_ONCE(vq->inflight));
		vbs_pool_unlink(vq, pw);
		WRITE_ONCE(vq->pool, NULL);
		vq->home = NULL;
	}
	mutex_unlock(&vbs_pool_mutex);
}

/*
 * @pw's window as its next pass will size it: from its devices' settings
 * now, not as of its last pass, so that sysfs shows a change at once.
 */
static u64 vbs_pool_window(struct vbs_pool_worker *pw)
{
	bool adaptive = true;
	struct vbs_vq *vq;
	u64 max = 0;

	mutex_lock(&pw->pass_lock);
	list_for_each_entry(vq, &pw->vqs, pool_node) {
		max = max_t(u64, max, (u64)READ_ONCE(vq->dev->p.poll_idle_us) *
			    NSEC_PER_USEC);
		adaptive &= READ_ONCE(vq->dev->p.poll_adaptive);
	}
	mutex_unlock(&pw->pass_lock);
	return adaptive ? min(READ_ONCE(pw->w.poll_ns), max) : max;
}

/**
 * vbs_pool_vq_show() - the pool worker of a queue, for sysfs
 * @vq: a queue of a pooled device
 * @what: its PID, its CPU or its window in ns
 *
 * Return: the value; 0 (PID, window) or -1 (CPU) for a queue not
 * attached.
 */
long long vbs_pool_vq_show(struct vbs_vq *vq, enum vbs_worker_attr what)
{
	struct vbs_pool_worker *pw;
	long long val;

	mutex_lock(&vbs_pool_mutex);
	pw = vq->pool;
	if (!pw)
		val = what == VBS_WORKER_CPU ? -1 : 0;
	else if (what == VBS_WORKER_PID)
		val = task_pid_nr(pw->w.task);
	else if (what == VBS_WORKER_CPU)
		val = pw->cpu;
	else
		val = vbs_pool_window(pw);
	mutex_unlock(&vbs_pool_mutex);
	return val;
}

/* A CPU came (back): its worker runs on it again.  Hotplug lock held. */
static int vbs_pool_cpu_online(unsigned int cpu)
{
	mutex_lock(&vbs_pool_mutex);
	if (vbs_pool[cpu])
		set_cpus_allowed_ptr(vbs_pool[cpu]->w.task, cpumask_of(cpu));
	mutex_unlock(&vbs_pool_mutex);
	return 0;
}

/*
 * A CPU goes (still in cpu_online_mask here): its worker moves to the
 * others and serves its queues from there until they are re-homed at
 * their next DRIVER_OK.
 */
static int vbs_pool_cpu_offline(unsigned int cpu)
{
	cpumask_var_t mask;

	if (!alloc_cpumask_var(&mask, GFP_KERNEL))
		return 0;
	cpumask_copy(mask, cpu_online_mask);
	cpumask_clear_cpu(cpu, mask);
	mutex_lock(&vbs_pool_mutex);
	if (vbs_pool[cpu] && !cpumask_empty(mask))
		set_cpus_allowed_ptr(vbs_pool[cpu]->w.task, mask);
	mutex_unlock(&vbs_pool_mutex);
	free_cpumask_var(mask);
	return 0;
}

static enum cpuhp_state vbs_pool_hp_state;

/**
 * vbs_pool_module_init() - make room for a worker per possible CPU, and
 *	follow CPUs going offline and online
 *
 * Return: 0, -ENOMEM or -errno from cpuhp_setup_state_nocalls().
 */
int vbs_pool_module_init(void)
{
	int ret;

	vbs_pool = kcalloc(nr_cpu_ids, sizeof(*vbs_pool), GFP_KERNEL);
	if (!vbs_pool)
		return -ENOMEM;
	ret = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN,
					"vdpa_blk_sw/pool:online",
					vbs_pool_cpu_online,
					vbs_pool_cpu_offline);
	if (ret < 0) {
		kfree(vbs_pool);
		vbs_pool = NULL;
		return ret;
	}
	vbs_pool_hp_state = ret;
	return 0;
}

/**
 * vbs_pool_module_exit() - stop the pool workers
 *
 * Every device is gone: no queue is attached.  A completion may still be
 * kicking a worker, inside rcu_read_lock() (vbs_req_complete()): deleting
 * a pooled device does not wait for it, so the workers are freed only
 * after a grace period.
 */
void vbs_pool_module_exit(void)
{
	unsigned int cpu;

	cpuhp_remove_state_nocalls(vbs_pool_hp_state);
	/* All stopped before any is freed: a worker looks at the others. */
	for (cpu = 0; cpu < nr_cpu_ids; cpu++) {
		struct vbs_pool_worker *pw = vbs_pool[cpu];

		if (!pw)
			continue;
		WARN_ON_ONCE(!list_empty(&pw->vqs));
		kthread_stop(pw->w.task);
	}
	synchronize_rcu();
	for (cpu = 0; cpu < nr_cpu_ids; cpu++) {
		struct vbs_pool_worker *pw = vbs_pool[cpu];

		if (!pw)
			continue;
		put_task_struct(pw->w.task);
		mutex_destroy(&pw->pass_lock);
		kfree(pw);
	}
	kfree(vbs_pool);
	vbs_pool = NULL;
	vbs_pool_threads = 0;
}
