// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: sysfs attributes of a device, under
 * /sys/bus/vdpa/devices/NAME/blk_sw/ (configuration, tunables, resize) and
 * /sys/bus/vdpa/devices/NAME/blk_sw_qN/ (per-queue statistics, the
 * queue's CPUs and its worker).
 *
 * Parameters fixed at creation are read-only (0444), the live ones 0644.
 */

#include <linux/device.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "vdpa_blk_sw.h"

static struct vbs_dev *to_vbs(struct device *d)
{
	return vdpa_to_vbs(dev_to_vdpa(d));
}

struct vbs_param_attr {
	struct device_attribute attr;
	enum vbs_param_id id;
};

static enum vbs_param_id to_vbs_param(struct device_attribute *attr)
{
	return container_of(attr, struct vbs_param_attr, attr)->id;
}

static ssize_t vbs_param_attr_show(struct device *d,
				   struct device_attribute *attr, char *buf)
{
	return vbs_param_show(to_vbs_param(attr), &to_vbs(d)->p, buf);
}

static ssize_t vbs_param_attr_store(struct device *d,
				    struct device_attribute *attr,
				    const char *buf, size_t count)
{
	enum vbs_param_id id = to_vbs_param(attr);
	struct vbs_dev *dev = to_vbs(d);
	struct vbs_param_val val;
	int ret;

	/* 0444 unless live; refused still if someone made it writable */
	if (!(vbs_param_table[id].flags & VBS_PF_LIVE))
		return -EBUSY;
	ret = vbs_param_parse(id, buf, count, &val);
	if (ret)
		return ret;
	vbs_param_set(id, &dev->p, &val);
	kfree(val.str);
	vbs_worker_wake(dev);
	return count;
}

#define VBS_PARAM(name, ...)						\
	[VBS_P_##name] = {						\
		.attr = __ATTR(name, 0444, vbs_param_attr_show,		\
			       vbs_param_attr_store),			\
		.id = VBS_P_##name,					\
	},
static struct vbs_param_attr vbs_param_attrs[VBS_NR_PARAMS] = {
#include <uapi/linux/vdpa_blk_sw_params.h>
};

static ssize_t backing_type_show(struct device *d,
				 struct device_attribute *attr, char *buf)
{
	struct vbs_dev *dev = to_vbs(d);
	umode_t mode = file_inode(dev->file)->i_mode;

	if (!dev->p.backing[0])
		return sysfs_emit(buf, "memory\n");
	return sysfs_emit(buf, "%s\n", S_ISBLK(mode) ? "block" : "file");
}
static DEVICE_ATTR_RO(backing_type);

/* @what of a dedicated worker: its PID, last CPU or window in ns. */
static long long vbs_worker_show(struct vbs_worker *w,
				 enum vbs_worker_attr what)
{
	switch (what) {
	case VBS_WORKER_PID:
		return task_pid_nr(w->task);
	case VBS_WORKER_CPU:
		return task_cpu(w->task);
	default:
		return vbs_worker_window(w);
	}
}

/*
 * @what of the worker serving @vq; for a pooled queue, of its pool worker,
 * or 0 (PID, window) and -1 (CPU) while it has none (no DRIVER_OK since
 * the last reset).
 */
static long long vbs_vq_worker_show(struct vbs_vq *vq,
				    enum vbs_worker_attr what)
{
	if (vq->dev->pooled)
		return vbs_pool_vq_show(vq, what);
	return vbs_worker_show(vq->worker, what);
}

/*
 * One value per worker, space-separated, worker 0 first; for a pooled
 * device, one per queue: its pool worker's.
 */
static ssize_t vbs_emit_per_worker(struct vbs_dev *dev, char *buf,
				   enum vbs_worker_attr what)
{
	u32 i, n = dev->pooled ? dev->nvqs : dev->nworkers;
	int len = 0;

	for (i = 0; i < n; i++)
		len += sysfs_emit_at(buf, len, "%s%lld", i ? " " : "",
				     dev->pooled ?
				     vbs_vq_worker_show(&dev->vqs[i], what) :
				     vbs_worker_show(&dev->workers[i], what));
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}

/* PIDs of the worker threads, worker 0 first, for taskset. */
static ssize_t worker_pids_show(struct device *d,
				struct device_attribute *attr, char *buf)
{
	return vbs_emit_per_worker(to_vbs(d), buf, VBS_WORKER_PID);
}
static DEVICE_ATTR_RO(worker_pids);

/* Each worker's current busy-poll window in ns, worker 0 first. */
static ssize_t poll_window_ns_show(struct device *d,
				   struct device_attribute *attr, char *buf)
{
	return vbs_emit_per_worker(to_vbs(d), buf, VBS_WORKER_WINDOW);
}
static DEVICE_ATTR_RO(poll_window_ns);

static ssize_t write_cache_show(struct device *d,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", READ_ONCE(to_vbs(d)->writethrough) ?
			  "write through" : "write back");
}
static DEVICE_ATTR_RO(write_cache);

static ssize_t capacity_show(struct device *d, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%llu\n", READ_ONCE(to_vbs(d)->capacity));
}
static DEVICE_ATTR_RO(capacity);

/* The backing grew (or shrank): new capacity, and tell the driver. */
static ssize_t resize_store(struct device *d, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	bool val;
	int ret;

	ret = kstrtobool(buf, &val);
	if (ret)
		return ret;
	if (!val)
		return -EINVAL;
	ret = vbs_config_resize(to_vbs(d));
	return ret ? ret : count;
}
static DEVICE_ATTR_WO(resize);

/* The parameters first, in the table's order, for vbs_attr_visible(). */
#define VBS_PARAM(name, ...)	(&vbs_param_attrs[VBS_P_##name].attr.attr),
static struct attribute *vbs_attrs[] = {
#include <uapi/linux/vdpa_blk_sw_params.h>
	&dev_attr_backing_type.attr,
	&dev_attr_capacity.attr,
	&dev_attr_write_cache.attr,
	&dev_attr_worker_pids.attr,
	&dev_attr_poll_window_ns.attr,
	&dev_attr_resize.attr,
	NULL,
};

static umode_t vbs_attr_visible(struct kobject *kobj, struct attribute *attr,
				int n)
{
	unsigned int flags;

	if (n >= VBS_NR_PARAMS)
		return attr->mode;
	flags = vbs_param_table[n].flags;
	if (flags & VBS_PF_NOSHOW)
		return 0;
	return flags & VBS_PF_LIVE ? 0644 : 0444;
}

static const struct attribute_group vbs_group = {
	.name = VBS_SYSFS_DIR,
	.attrs = vbs_attrs,
	.is_visible = vbs_attr_visible,
};

static struct vbs_vq *to_vbs_vq(struct device_attribute *attr)
{
	return container_of(attr, struct dev_ext_attribute, attr)->var;
}

#define VBS_QSTAT(_name, _expr)						\
static ssize_t vbs_q_##_name##_show(struct device *d,			\
				    struct device_attribute *attr,	\
				    char *buf)				\
{									\
	struct vbs_vq *vq = to_vbs_vq(attr);				\
									\
	return sysfs_emit(buf, "%llu\n", (u64)(_expr));		\
}

VBS_QSTAT(requests, READ_ONCE(vq->stats.requests))
VBS_QSTAT(read_bytes, READ_ONCE(vq->stats.read_bytes))
VBS_QSTAT(write_bytes, READ_ONCE(vq->stats.write_bytes))
VBS_QSTAT(errors, READ_ONCE(vq->stats.errors))
VBS_QSTAT(inflight, READ_ONCE(vq->inflight))
VBS_QSTAT(slots, READ_ONCE(vq->nr_slots))
VBS_QSTAT(polls, READ_ONCE(vq->stats.polls))
VBS_QSTAT(notifies, atomic64_read(&vq->stats.notifies))
VBS_QSTAT(interrupts, READ_ONCE(vq->stats.interrupts))
VBS_QSTAT(spills, READ_ONCE(vq->stats.spills))
VBS_QSTAT(wakes, READ_ONCE(vq->stats.wakes))
VBS_QSTAT(reissues, atomic64_read(&vq->stats.reissues))

static ssize_t vbs_q_cpu_list_show(struct device *d,
				   struct device_attribute *attr, char *buf)
{
	return vbs_affinity_show(to_vbs(d), to_vbs_vq(attr)->index, false, buf);
}

static ssize_t vbs_q_cpu_list_store(struct device *d,
				    struct device_attribute *attr,
				    const char *buf, size_t count)
{
	int ret = vbs_affinity_store(to_vbs(d), to_vbs_vq(attr)->index, buf);

	return ret ? ret : count;
}

static ssize_t vbs_q_effective_cpu_list_show(struct device *d,
					     struct device_attribute *attr,
					     char *buf)
{
	return vbs_affinity_show(to_vbs(d), to_vbs_vq(attr)->index, true, buf);
}

/* The thread serving the queue, and the CPU it last ran on (signed: -1). */
static ssize_t vbs_q_worker_pid_show(struct device *d,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  vbs_vq_worker_show(to_vbs_vq(attr), VBS_WORKER_PID));
}

static ssize_t vbs_q_worker_cpu_show(struct device *d,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  vbs_vq_worker_show(to_vbs_vq(attr), VBS_WORKER_CPU));
}

static const struct {
	const char *name;
	umode_t mode;
	ssize_t (*show)(struct device *d, struct device_attribute *attr,
			char *buf);
	ssize_t (*store)(struct device *d, struct device_attribute *attr,
			 const char *buf, size_t count);
} vbs_qstats[] = {
	{ "requests", 0444, vbs_q_requests_show },
	{ "read_bytes", 0444, vbs_q_read_bytes_show },
	{ "write_bytes", 0444, vbs_q_write_bytes_show },
	{ "errors", 0444, vbs_q_errors_show },
	{ "inflight", 0444, vbs_q_inflight_show },
	{ "slots", 0444, vbs_q_slots_show },
	{ "polls", 0444, vbs_q_polls_show },
	{ "notifies", 0444, vbs_q_notifies_show },
	{ "interrupts", 0444, vbs_q_interrupts_show },
	{ "spills", 0444, vbs_q_spills_show },
	{ "wakes", 0444, vbs_q_wakes_show },
	{ "reissues", 0444, vbs_q_reissues_show },
	{ "cpu_list", 0644, vbs_q_cpu_list_show, vbs_q_cpu_list_store },
	{ "effective_cpu_list", 0444, vbs_q_effective_cpu_list_show },
	{ "worker_pid", 0444, vbs_q_worker_pid_show },
	{ "worker_cpu", 0444, vbs_q_worker_cpu_show },
};

#define VBS_NR_QSTATS	ARRAY_SIZE(vbs_qstats)

/**
 * vbs_sysfs_free() - free what vbs_sysfs_build() allocated
 * @dev: the device, unregistered
 */
void vbs_sysfs_free(struct vbs_dev *dev)
{
	u32 q;

	if (dev->q_groups) {
		/* All queue groups share one attribute pointer array. */
		kfree(dev->q_groups[0].attrs);
		for (q = 0; q < dev->nvqs; q++)
			kfree(dev->q_groups[q].name);
	}
	kfree(dev->q_groups);
	kfree(dev->q_attrs);
	kfree(dev->sysfs_groups);
	dev->q_groups = NULL;
	dev->q_attrs = NULL;
	dev->sysfs_groups = NULL;
	dev->vdpa.dev.groups = NULL;
}

/**
 * vbs_sysfs_build() - build the attribute groups of a device
 * @dev: the device, with its queues allocated
 *
 * Sets @dev->vdpa.dev.groups, so call before registering the device.
 *
 * Return: 0, or -ENOMEM with nothing left allocated.
 */
int vbs_sysfs_build(struct vbs_dev *dev)
{
	struct dev_ext_attribute *ea;
	struct attribute **attrs;
	u32 q, i;

	dev->sysfs_groups = kcalloc(dev->nvqs + 2, sizeof(*dev->sysfs_groups),
				    GFP_KERNEL);
	dev->q_groups = kcalloc(dev->nvqs, sizeof(*dev->q_groups), GFP_KERNEL);
	ea = kcalloc(dev->nvqs * VBS_NR_QSTATS, sizeof(*ea), GFP_KERNEL);
	dev->q_attrs = ea;
	attrs = kcalloc(dev->nvqs * (VBS_NR_QSTATS + 1), sizeof(*attrs),
			GFP_KERNEL);
	if (!dev->sysfs_groups || !dev->q_groups || !ea || !attrs) {
		kfree(attrs);
		goto free;
	}

	dev->sysfs_groups[0] = &vbs_group;
	for (q = 0; q < dev->nvqs; q++)
		dev->q_groups[q].attrs = &attrs[q * (VBS_NR_QSTATS + 1)];
	for (q = 0; q < dev->nvqs; q++) {
		struct attribute_group *g = &dev->q_groups[q];

		g->name = kasprintf(GFP_KERNEL, VBS_SYSFS_QUEUE_DIR "%u", q);
		if (!g->name)
			goto free;
		for (i = 0; i < VBS_NR_QSTATS; i++, ea++) {
			sysfs_attr_init(&ea->attr.attr);
			ea->attr.attr.name = vbs_qstats[i].name;
			ea->attr.attr.mode = vbs_qstats[i].mode;
			ea->attr.show = vbs_qstats[i].show;
			ea->attr.store = vbs_qstats[i].store;
			ea->var = &dev->vqs[q];
			g->attrs[i] = &ea->attr.attr;
		}
		dev->sysfs_groups[q + 1] = g;
	}
	dev->vdpa.dev.groups = dev->sysfs_groups;
	return 0;

free:
	vbs_sysfs_free(dev);
	return -ENOMEM;
}
