// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: the CPUs each virtqueue is served on.
 *
 * Each queue has a CPU mask: the administrator's list (sysfs cpu_list),
 * kept across resets, else the mask the driver gave (set_vq_affinity(),
 * which virtio_vdpa calls with the masks blk-mq then maps to the queues),
 * dropped at reset, else every CPU.  get_vq_affinity() returns it, so
 * blk_mq_virtio_map_queues() maps exactly those CPUs to the queue.
 *
 * A worker may run on the union of the masks of the queues it serves,
 * online CPUs only; a worker whose queues have no online CPU left may run
 * anywhere.  Its CPUs are set (set_cpus_allowed_ptr()) whenever that union
 * changes: a driver's masks, a reset, a cpu_list write, a CPU going online
 * or offline (one CPU hotplug state for the module, over every device).
 * An affinity set by hand (taskset) lasts until then.
 *
 * Everything here is under vbs_aff_mutex, taken inside the CPU hotplug
 * lock (the hotplug callbacks run with it held; the other paths take it
 * for reading first) and inside vbs_pool_mutex (pool.c, which asks for a
 * queue's CPU), outside nothing else of the module: callers hold no lock
 * of the device.  A pooled device has no worker of its own: its queues'
 * masks only choose their pool worker's CPU (vbs_affinity_pick_cpu());
 * pool.c follows CPU hotplug for its own workers.  This file calls
 * nothing else of the module.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/cpumask.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/nospec.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "vdpa_blk_sw.h"

/**
 * struct vbs_vq_cpus - the CPUs of one virtqueue
 * @driver: the mask the driver gave, valid if @driver_set
 * @admin: the administrator's list, valid if @admin_set
 * @mask: the mask in force, what get_vq_affinity() returns
 * @driver_set: set_vq_affinity() was called since the last reset
 * @admin_set: cpu_list was written with a list
 */
struct vbs_vq_cpus {
	cpumask_var_t driver;
	cpumask_var_t admin;
	cpumask_var_t mask;
	bool driver_set;
	bool admin_set;
};

/**
 * struct vbs_affinity - a device's CPU masks
 * @node: in vbs_aff_devs
 * @dev: the device
 * @q: one per virtqueue
 * @applied: one per worker, the CPUs last given to its thread
 * @tmp: scratch mask
 */
struct vbs_affinity {
	struct list_head node;
	struct vbs_dev *dev;
	struct vbs_vq_cpus *q;
	cpumask_var_t *applied;
	cpumask_var_t tmp;
};

static DEFINE_MUTEX(vbs_aff_mutex);
static LIST_HEAD(vbs_aff_devs);
static enum cpuhp_state vbs_aff_hp_state;

/* The mask in force for queue @q, from what is set. */
static void vbs_aff_update_mask(struct vbs_vq_cpus *q)
{
	if (q->admin_set)
		cpumask_copy(q->mask, q->admin);
	else if (q->driver_set)
		cpumask_copy(q->mask, q->driver);
	else
		cpumask_copy(q->mask, cpu_possible_mask);
}

/* @dst = @src's online CPUs but @dying (-1: none), or all of those if none */
static void vbs_aff_online(struct cpumask *dst, const struct cpumask *src,
			   int dying)
{
	cpumask_and(dst, src, cpu_online_mask);
	if (dying >= 0)
		cpumask_clear_cpu(dying, dst);
	if (!cpumask_empty(dst))
		return;
	cpumask_copy(dst, cpu_online_mask);
	if (dying >= 0)
		cpumask_clear_cpu(dying, dst);
}

/*
 * Give each worker the union of its queues' masks, online CPUs but @dying.
 * Under vbs_aff_mutex and the CPU hotplug lock.
 */
static void vbs_aff_apply(struct vbs_affinity *aff, int dying)
{
	struct vbs_dev *dev = aff->dev;
	u32 w, i;
	int ret;

	for (w = 0; w < dev->nworkers; w++) {
		cpumask_clear(aff->tmp);
		for (i = 0; i < dev->nvqs; i++)
			if (dev->vqs[i].worker == &dev->workers[w])
				cpumask_or(aff->tmp, aff->tmp, aff->q[i].mask);
		vbs_aff_online(aff->tmp, aff->tmp, dying);
		if (cpumask_equal(aff->tmp, aff->applied[w]))
			continue;
		ret = set_cpus_allowed_ptr(dev->workers[w].task, aff->tmp);
		if (ret) {
			dev_dbg(&dev->vdpa.dev, "worker %u: affinity %*pbl: %d\n",
				w, cpumask_pr_args(aff->tmp), ret);
			continue;
		}
		cpumask_copy(aff->applied[w], aff->tmp);
	}
}

static void vbs_aff_free(struct vbs_affinity *aff, u32 nvqs, u32 nworkers)
{
	u32 i;

	if (aff->q)
		for (i = 0; i < nvqs; i++) {
			free_cpumask_var(aff->q[i].driver);
			free_cpumask_var(aff->q[i].admin);
			free_cpumask_var(aff->q[i].mask);
		}
	if (aff->applied)
		for (i = 0; i < nworkers; i++)
			free_cpumask_var(aff->applied[i]);
	free_cpumask_var(aff->tmp);
	kfree(aff->q);
	kfree(aff->applied);
	kfree(aff);
}

/**
 * vbs_affinity_init() - give a device's queues their CPU masks
 * @dev: the device, with its workers started
 *
 * Every queue starts with every CPU, and each worker with every online
 * CPU.  From then on CPU hotplug updates the workers.
 *
 * Return: 0 or -ENOMEM.
 */
int vbs_affinity_init(struct vbs_dev *dev)
{
	struct vbs_affinity *aff;
	u32 i;

	aff = kzalloc(sizeof(*aff), GFP_KERNEL);
	if (!aff)
		return -ENOMEM;
	aff->dev = dev;
	aff->q = kcalloc(dev->nvqs, sizeof(*aff->q), GFP_KERNEL);
	aff->applied = kcalloc(dev->nworkers, sizeof(*aff->applied),
			       GFP_KERNEL);
	if (!aff->q || !aff->applied ||
	    !zalloc_cpumask_var(&aff->tmp, GFP_KERNEL))
		goto nomem;
	for (i = 0; i < dev->nvqs; i++) {
		if (!zalloc_cpumask_var(&aff->q[i].driver, GFP_KERNEL) ||
		    !zalloc_cpumask_var(&aff->q[i].admin, GFP_KERNEL) ||
		    !zalloc_cpumask_var(&aff->q[i].mask, GFP_KERNEL))
			goto nomem;
		vbs_aff_update_mask(&aff->q[i]);
	}
	for (i = 0; i < dev->nworkers; i++)
		if (!zalloc_cpumask_var(&aff->applied[i], GFP_KERNEL))
			goto nomem;

	cpus_read_lock();
	mutex_lock(&vbs_aff_mutex);
	dev->aff = aff;
	list_add_tail(&aff->node, &vbs_aff_devs);
	vbs_aff_apply(aff, -1);
	mutex_unlock(&vbs_aff_mutex);
	cpus_read_unlock();
	return 0;

nomem:
	vbs_aff_free(aff, dev->nvqs, dev->nworkers);
	return -ENOMEM;
}

/**
 * vbs_affinity_exit() - forget a device's CPU masks
 * @dev: the device, with its workers still there and no driver left
 */
void vbs_affinity_exit(struct vbs_dev *dev)
{
	struct vbs_affinity *aff = dev->aff;

	mutex_lock(&vbs_aff_mutex);
	list_del(&aff->node);
	dev->aff = NULL;
	mutex_unlock(&vbs_aff_mutex);
	vbs_aff_free(aff, dev->nvqs, dev->nworkers);
}

/**
 * vbs_affinity_reset() - drop the masks the driver gave
 * @dev: the device, being reset
 *
 * The administrator's lists stay.
 */
void vbs_affinity_reset(struct vbs_dev *dev)
{
	struct vbs_affinity *aff = dev->aff;
	bool any = false;
	u32 i;

	cpus_read_lock();
	mutex_lock(&vbs_aff_mutex);
	for (i = 0; i < dev->nvqs; i++) {
		any |= aff->q[i].driver_set;
		aff->q[i].driver_set = false;
		vbs_aff_update_mask(&aff->q[i]);
	}
	if (any)
		vbs_aff_apply(aff, -1);
	mutex_unlock(&vbs_aff_mutex);
	cpus_read_unlock();
}

/**
 * vbs_set_vq_affinity() - the driver's CPU mask for a virtqueue
 * @vdpa: the vDPA device
 * @idx: the virtqueue
 * @cpu_mask: the CPUs the driver submits to it from
 *
 * Held until reset; an administrator's cpu_list overrides it.  An empty
 * mask (more queues than CPUs) is kept as it is: get_vq_affinity() then
 * maps no CPU to the queue, whose worker may run on any online CPU.
 *
 * Return: 0, or -EINVAL for a queue the device does not have.
 */
int vbs_set_vq_affinity(struct vdpa_device *vdpa, u16 idx,
			const struct cpumask *cpu_mask)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	struct vbs_affinity *aff = dev->aff;
	struct vbs_vq_cpus *q;

	if (idx >= dev->nvqs)
		return -EINVAL;
	q = &aff->q[array_index_nospec(idx, dev->nvqs)];
	cpus_read_lock();
	mutex_lock(&vbs_aff_mutex);
	cpumask_and(q->driver, cpu_mask, cpu_possible_mask);
	q->driver_set = true;
	vbs_aff_update_mask(q);
	vbs_aff_apply(aff, -1);
	mutex_unlock(&vbs_aff_mutex);
	cpus_read_unlock();
	return 0;
}

/**
 * vbs_get_vq_affinity() - the CPU mask of a virtqueue
 * @vdpa: the vDPA device
 * @idx: the virtqueue
 *
 * The administrator's list if set, else the driver's mask, else every
 * possible CPU.  The mask stays valid as long as the device; a cpu_list
 * written meanwhile may be seen half changed (blk-mq then maps a CPU to
 * one queue or the other).
 *
 * Return: the mask, or NULL for a queue the device does not have.
 */
const struct cpumask *vbs_get_vq_affinity(struct vdpa_device *vdpa, u16 idx)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);

	if (idx >= dev->nvqs)
		return NULL;
	return dev->aff->q[array_index_nospec(idx, dev->nvqs)].mask;
}

/**
 * vbs_affinity_pick_cpu() - the CPU of a pooled queue's worker
 * @dev: the device
 * @idx: the virtqueue, one the device has
 *
 * Of the online CPUs of the queue's mask (every online CPU if none is),
 * the (@idx mod their number)-th: a single CPU's mask gives that CPU, and
 * the queues of a device without masks (vhost-vdpa) spread over the CPUs.
 * Called with the CPU hotplug lock held (for reading).
 *
 * Return: the CPU.
 */
int vbs_affinity_pick_cpu(struct vbs_dev *dev, u16 idx)
{
	struct vbs_affinity *aff = dev->aff;
	unsigned int n;
	int cpu;

	mutex_lock(&vbs_aff_mutex);
	vbs_aff_online(aff->tmp, aff->q[idx].mask, -1);
	n = cpumask_weight(aff->tmp);
	cpu = cpumask_nth(idx % n, aff->tmp);
	mutex_unlock(&vbs_aff_mutex);
	return cpu;
}

/**
 * vbs_affinity_show() - a queue's CPUs as a list (0-3,8)
 * @dev: the device
 * @idx: the virtqueue, one the device has
 * @effective: only the CPUs it is served on: the online ones of its mask,
 *	or every online CPU if it has none
 * @buf: a sysfs page
 *
 * Return: the length of the text, ending in a newline.
 */
ssize_t vbs_affinity_show(struct vbs_dev *dev, u16 idx, bool effective,
			  char *buf)
{
	struct vbs_affinity *aff = dev->aff;
	ssize_t len;

	cpus_read_lock();
	mutex_lock(&vbs_aff_mutex);
	if (effective)
		vbs_aff_online(aff->tmp, aff->q[idx].mask, -1);
	else
		cpumask_copy(aff->tmp, aff->q[idx].mask);
	len = sysfs_emit(buf, "%*pbl\n", cpumask_pr_args(aff->tmp));
	mutex_unlock(&vbs_aff_mutex);
	cpus_read_unlock();
	return len;
}

/**
 * vbs_affinity_store() - set or clear the administrator's list of a queue
 * @dev: the device
 * @idx: the virtqueue, one the device has
 * @buf: a CPU list (cpulist_parse()), NUL-terminated; empty (or a newline
 *	alone) to go back to the driver's mask
 *
 * Return: 0, -EINVAL for a malformed list or one without an online CPU,
 * -ERANGE for a CPU number beyond the last possible one, -EOVERFLOW for a
 * number too large to parse, -ENOMEM.
 */
int vbs_affinity_store(struct vbs_dev *dev, u16 idx, const char *buf)
{
	struct vbs_affinity *aff = dev->aff;
	struct vbs_vq_cpus *q = &aff->q[idx];
	cpumask_var_t new;
	int ret = 0;

	if (!alloc_cpumask_var(&new, GFP_KERNEL))
		return -ENOMEM;
	if (buf[0] && strcmp(buf, "\n")) {
		ret = cpulist_parse(buf, new);
		if (ret)
			goto out;
	}

	cpus_read_lock();
	mutex_lock(&vbs_aff_mutex);
	if (!buf[0] || !strcmp(buf, "\n")) {
		q->admin_set = false;
	} else if (!cpumask_intersects(new, cpu_online_mask)) {
		ret = -EINVAL;
	} else {
		cpumask_and(q->admin, new, cpu_possible_mask);
		q->admin_set = true;
	}
	if (!ret) {
		vbs_aff_update_mask(q);
		vbs_aff_apply(aff, -1);
	}
	mutex_unlock(&vbs_aff_mutex);
	cpus_read_unlock();
out:
	free_cpumask_var(new);
	return ret;
}

/**
 * vbs_affinity_may_spill() - may a queue be served on a CPU outside its
 *	mask for a while?
 * @dev: the device
 * @idx: the virtqueue, one the device has
 * @cpu: the CPU it would be served on
 *
 * A driver's mask and the default are where the queue is best served; an
 * administrator's cpu_list is where it must be.  Called from a pool
 * worker holding vbs_pool_mutex, which waits for nobody here.
 *
 * Return: true unless @cpu is outside the administrator's list, or the
 * list is being changed.
 */
bool vbs_affinity_may_spill(struct vbs_dev *dev, u16 idx, unsigned int cpu)
{
	struct vbs_vq_cpus *q = &dev->aff->q[idx];
	bool ok;

	if (!mutex_trylock(&vbs_aff_mutex))
		return false;
	ok = !q->admin_set || cpumask_test_cpu(cpu, q->admin);
	mutex_unlock(&vbs_aff_mutex);
	return ok;
}

static int vbs_aff_cpu_online(unsigned int cpu)
{
	struct vbs_affinity *aff;

	mutex_lock(&vbs_aff_mutex);
	list_for_each_entry(aff, &vbs_aff_devs, node)
		vbs_aff_apply(aff, -1);
	mutex_unlock(&vbs_aff_mutex);
	return 0;
}

/* Still in cpu_online_mask here: leave it out explicitly. */
static int vbs_aff_cpu_offline(unsigned int cpu)
{
	struct vbs_affinity *aff;

	mutex_lock(&vbs_aff_mutex);
	list_for_each_entry(aff, &vbs_aff_devs, node)
		vbs_aff_apply(aff, cpu);
	mutex_unlock(&vbs_aff_mutex);
	return 0;
}

/**
 * vbs_affinity_module_init() - follow CPUs going online and offline
 *
 * Return: 0 or -errno from cpuhp_setup_state_nocalls().
 */
int vbs_affinity_module_init(void)
{
	int ret;

	ret = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN,
					"vdpa_blk_sw:online",
					vbs_aff_cpu_online,
					vbs_aff_cpu_offline);
	if (ret < 0)
		return ret;
	vbs_aff_hp_state = ret;
	return 0;
}

/**
 * vbs_affinity_module_exit() - stop following CPU hotplug
 */
void vbs_affinity_module_exit(void)
{
	cpuhp_remove_state_nocalls(vbs_aff_hp_state);
}
