// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: how the parts of a device tell each other.
 *
 * A kick from the driver, a control operation or a broken address space
 * wakes the workers; a ring the device cannot use sets DEVICE_NEEDS_RESET
 * and raises a configuration interrupt.  Everything else may call these;
 * they call nothing else of the module but vbs_pool_wake_vq(), which
 * brings a pooled queue that went idle back into its worker's passes.
 */

#include <linux/ktime.h>
#include <linux/sched.h>
#include <uapi/linux/virtio_config.h>

#include "vdpa_blk_sw.h"

/**
 * vbs_vq_wake() - make the worker of a virtqueue look at it again
 * @vq: the virtqueue the driver kicked
 *
 * The first kick after the worker went to sleep also notes the time, for
 * the adaptive window; two racing kicks store times of the same wake-up,
 * which is as good.  Callable from any context but NMI.  A pooled queue
 * not attached to the pool (no DRIVER_OK yet) has no worker to wake:
 * DRIVER_OK wakes the one it gets.
 */
void vbs_vq_wake(struct vbs_vq *vq)
{
	struct vbs_worker *w = READ_ONCE(vq->worker);

	if (!w)
		return;
	if (vq->dev->pooled)
		vbs_pool_wake_vq(vq, w);
	if (!READ_ONCE(w->kick_ns))
		WRITE_ONCE(w->kick_ns, ktime_get_ns());
	vbs_worker_kick(w);
}

/**
 * vbs_worker_kick() - make a worker pass over its queues again
 * @w: the worker
 *
 * Sets @w->kicked, which a worker about to sleep checks after setting its
 * state (a pool worker cannot look at every queue then), and wakes it.
 * Callable from any context but NMI.
 */
void vbs_worker_kick(struct vbs_worker *w)
{
	atomic_set(&w->kicked, 1);
	wake_up_process(w->task);
}

/**
 * vbs_worker_wake() - make every worker look at the device again
 * @dev: the device
 *
 * For a pooled device, the pool workers its queues are attached to, which
 * take each queue back into their passes if it went idle.
 */
void vbs_worker_wake(struct vbs_dev *dev)
{
	u32 i;

	if (dev->pooled) {
		for (i = 0; i < dev->nvqs; i++) {
			struct vbs_worker *w = READ_ONCE(dev->vqs[i].worker);

			if (!w)
				continue;
			vbs_pool_wake_vq(&dev->vqs[i], w);
			vbs_worker_kick(w);
		}
		return;
	}
	for (i = 0; i < dev->nworkers; i++)
		vbs_worker_kick(&dev->workers[i]);
}

/*
 * Set DEVICE_NEEDS_RESET: the device stops processing until the driver
 * resets it.  Says so once per reset (rate-limited); true the first time.
 */
static bool vbs_dev_mark_broken(struct vbs_dev *dev, struct vbs_vq *vq,
				const char *what, int err)
{
	spin_lock(&dev->config_lock);
	if (dev->status & VIRTIO_CONFIG_S_NEEDS_RESET) {
		spin_unlock(&dev->config_lock);
		return false;
	}
	WRITE_ONCE(dev->status, dev->status | VIRTIO_CONFIG_S_NEEDS_RESET);
	spin_unlock(&dev->config_lock);
	/* vringh's errors for an address outside every mapping */
	dev_warn_ratelimited(&dev->vdpa.dev,
			     "vq %u: %s (%d), device needs reset%s\n",
			     vq->index, what, err,
			     dev->vdpa.use_va && (err == -EINVAL || err == -EFAULT) ?
			     "; VA mode maps only shared file-backed memory" :
			     "");
	return true;
}

/**
 * vbs_dev_set_broken() - tell the driver the device needs a reset
 * @dev: the device; @dev->lock held, for reading by a worker or for
 *	writing by a control operation
 * @vq: the virtqueue that failed
 * @what: what failed, for the log
 * @err: the error
 *
 * Used when a ring cannot be read or written: the device stops processing
 * and raises a configuration interrupt with DEVICE_NEEDS_RESET set.  In VA
 * mode the usual cause is guest memory that vhost-vdpa did not map: it
 * maps only shared, file-backed memory there, and silently skips the rest.
 */
void vbs_dev_set_broken(struct vbs_dev *dev, struct vbs_vq *vq,
			const char *what, int err)
{
	if (vbs_dev_mark_broken(dev, vq, what, err) && dev->config_cb.callback)
		dev->config_cb.callback(dev->config_cb.private);
}

/**
 * vbs_dev_break_async() - vbs_dev_set_broken() without @dev->lock
 * @dev: the device
 * @vq: the virtqueue at fault
 * @what: what is wrong, for the log
 *
 * For set_map(), which may not take @dev->lock: the configuration
 * interrupt comes from a worker's next pass, which holds it.
 */
void vbs_dev_break_async(struct vbs_dev *dev, struct vbs_vq *vq,
			 const char *what)
{
	if (vbs_dev_mark_broken(dev, vq, what, -EPERM)) {
		atomic_set(&dev->announce, 1);
		vbs_worker_wake(dev);
	}
}
