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
 * A pass serves every queue of the worker, each under its own device's
 * @dev->lock (read) and iotlb_srcu section, exactly as a dedicated worker
 * does (worker.c), with one adaptive window for the worker: bounded by the
 * largest poll_idle_us of its devices, fixed at that bound if one of them
 * has poll_adaptive off.  It polls only while no other task waits for its
 * CPU, and before sleeping it re-enables notifications on every queue and
 * looks at each once more.  A kick or a completion sets @kicked and wakes
 * it, so the last check before schedule() needs no lock.  Blocking
 * backing work goes to the module's workqueue (backend.c): a worker never
 * waits for one device's flush or buffered write while others have
 * requests.  Its allocations are GFP_NOIO (memalloc_noio_save()): reclaim
 * must not wait for I/O that this very worker would have to serve.
 *
 * Attach and detach: the queues of a worker are on its list, under its
 * @pass_lock, which the worker holds for a whole pass; vbs_pool_mutex
 * serialises attaching, detaching and creating workers.  Detach takes
 * @pass_lock, so when it returns the worker is not in a pass and will
 * never see the queue again.  It is called once no request is in flight
 * (after vbs_dev_quiesce()), so no completion will name the worker
 * either; @vq->worker keeps pointing at it (a late reader only wakes it
 * for nothing, and pool workers outlive every device).  Lock order:
 * the CPU hotplug lock (held by pool.c's own hotplug callbacks),
 * vbs_pool_mutex, vbs_aff_mutex (affinity.c);
 * vbs_pool_mutex, @pass_lock, @dev->lock.  Callers hold no lock of the
 * device.
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
#include <linux/slab.h>

#include "vdpa_blk_sw.h"

/**
 * struct vbs_pool_worker - the shared polling thread of one CPU
 * @w: the thread and its window; @w.dev is NULL
 * @cpu: the CPU it serves
 * @pass_lock: held by the thread over a pass, and by attach and detach
 * @vqs: the attached queues, linked by their @pool_node
 * @nvqs: number of @vqs
 */
struct vbs_pool_worker {
	struct vbs_worker w;
	unsigned int cpu;
	struct mutex pass_lock;	/* see above */
	struct list_head vqs;
	unsigned int nvqs;
};

static DEFINE_MUTEX(vbs_pool_mutex);
/* nr_cpu_ids entries, under vbs_pool_mutex */
static struct vbs_pool_worker **vbs_pool;
static unsigned int vbs_pool_threads;
module_param_named(pool_threads, vbs_pool_threads, uint, 0444);
MODULE_PARM_DESC(pool_threads,
		 "Polling threads of the shared pool (one per CPU used so far)");

enum vbs_pool_pass {
	VBS_POOL_SERVE,		/* serve each queue */
	VBS_POOL_QUIET,		/* notifications off, then serve */
	VBS_POOL_ARM,		/* notifications on, and look once more */
};

/*
 * One pass over every queue of @pw; true if there was anything to do.
 * Also takes the window's bound and mode from the devices it serves.
 */
static bool vbs_pool_pass(struct vbs_pool_worker *pw, enum vbs_pool_pass how,
			  bool polling)
{
	bool busy = false, adaptive = true;
	struct vbs_vq *vq;
	u64 max = 0;
	int idx;

	mutex_lock(&pw->pass_lock);
	list_for_each_entry(vq, &pw->vqs, pool_node) {
		struct vbs_dev *dev = vq->dev;

		max = max_t(u64, max,
			    (u64)READ_ONCE(dev->p.poll_idle_us) * NSEC_PER_USEC);
		adaptive &= READ_ONCE(dev->p.poll_adaptive);

		down_read(&dev->lock);
		idx = srcu_read_lock(&dev->iotlb_srcu);
		/* A set_map() broke the device: say so, holding @dev->lock. */
		if (atomic_read(&dev->announce) &&
		    atomic_xchg(&dev->announce, 0) && dev->config_cb.callback)
			dev->config_cb.callback(dev->config_cb.private);
		if (how == VBS_POOL_ARM) {
			if (!vbs_vq_set_notify(vq, true) ||
			    !llist_empty(&vq->done))
				busy = true;
		} else {
			if (how == VBS_POOL_QUIET)
				vbs_vq_set_notify(vq, false);
			busy |= vbs_vq_serve(vq, true, polling);
		}
		srcu_read_unlock(&dev->iotlb_srcu, idx);
		up_read(&dev->lock);
	}
	mutex_unlock(&pw->pass_lock);
	WRITE_ONCE(pw->w.max_ns, max);
	WRITE_ONCE(pw->w.adaptive, adaptive);
	return busy;
}

/* The loop of worker.c's vbs_worker_fn(), over several devices. */
static int vbs_pool_fn(void *data)
{
	struct vbs_pool_worker *pw = data;
	struct vbs_worker *w = &pw->w;
	bool notify_off = false;

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
		if (vbs_worker_keep_polling(w, busy, window))
			continue;

		/* Idle: notifications back on, one more look, then sleep. */
		busy = vbs_pool_pass(pw, VBS_POOL_ARM, false);
		notify_off = false;
		if (busy)
			continue;

		WRITE_ONCE(w->kick_ns, 0);
		set_current_state(TASK_INTERRUPTIBLE);
		if (atomic_xchg(&w->kicked, 0) || kthread_should_stop()) {
			__set_current_state(TASK_RUNNING);
			continue;
		}
		schedule();
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
		mutex_lock(&pw->pass_lock);
		list_add_tail(&vq->pool_node, &pw->vqs);
		pw->nvqs++;
		mutex_unlock(&pw->pass_lock);
		vq->pool = pw;
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
		/* Waits for the worker's current pass. */
		mutex_lock(&pw->pass_lock);
		list_del_init(&vq->pool_node);
		pw->nvqs--;
		mutex_unlock(&pw->pass_lock);
		vq->pool = NULL;
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
 * Every device is gone: no queue is attached.
 */
void vbs_pool_module_exit(void)
{
	unsigned int cpu;

	cpuhp_remove_state_nocalls(vbs_pool_hp_state);
	for (cpu = 0; cpu < nr_cpu_ids; cpu++) {
		struct vbs_pool_worker *pw = vbs_pool[cpu];

		if (!pw)
			continue;
		WARN_ON_ONCE(!list_empty(&pw->vqs));
		kthread_stop(pw->w.task);
		put_task_struct(pw->w.task);
		mutex_destroy(&pw->pass_lock);
		kfree(pw);
	}
	kfree(vbs_pool);
	vbs_pool = NULL;
	vbs_pool_threads = 0;
}
