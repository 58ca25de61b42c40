// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: struct vdpa_config_ops, shared by virtio-vdpa and
 * vhost-vdpa.
 *
 * Control operations take @dev->lock for writing; workers hold it for
 * reading during each pass, so the two never race.  Operations that must
 * wait for in-flight requests (reset, suspend) drop the lock to let the
 * workers reap.
 */

#include <linux/log2.h>
#include <linux/nospec.h>
#include <uapi/linux/vhost_types.h>
#include <uapi/linux/virtio_config.h>
#include <uapi/linux/virtio_ids.h>

#include "vdpa_blk_sw.h"

#define VBS_VENDOR_ID		0	/* as vdpa_sim's */
#define VBS_VQ_ALIGN		PAGE_SIZE

static struct vbs_vq *vbs_get_vq(struct vbs_dev *dev, u16 idx)
{
	if (idx >= dev->nvqs)
		return NULL;
	return &dev->vqs[array_index_nospec(idx, dev->nvqs)];
}

static int vbs_set_vq_address(struct vdpa_device *vdpa, u16 idx,
			      u64 desc_area, u64 driver_area, u64 device_area)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	struct vbs_vq *vq = vbs_get_vq(dev, idx);

	if (!vq)
		return -EINVAL;
	down_write(&dev->lock);
	vq->desc_addr = desc_area;
	vq->driver_addr = driver_area;
	vq->device_addr = device_area;
	up_write(&dev->lock);
	return 0;
}

/* Any size: vbs_set_vq_ready() checks it. */
static void vbs_set_vq_num(struct vdpa_device *vdpa, u16 idx, u32 num)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	struct vbs_vq *vq = vbs_get_vq(dev, idx);

	if (!vq)
		return;
	down_write(&dev->lock);
	vq->num = num;
	up_write(&dev->lock);
}

static u16 vbs_get_vq_size(struct vdpa_device *vdpa, u16 idx)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	struct vbs_vq *vq = vbs_get_vq(dev, idx);

	if (vq && (READ_ONCE(dev->status) & VIRTIO_CONFIG_S_DRIVER_OK))
		return READ_ONCE(vq->num);
	return vbs_config_queue_size(dev);
}

/*
 * From the driver, in any context but NMI (its submitter for virtio_vdpa,
 * vhost's worker for vhost-vdpa): only wakes a worker, and none while
 * suspended, since resume() wakes them all.
 */
static void vbs_kick_vq(struct vdpa_device *vdpa, u16 idx)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	struct vbs_vq *vq = vbs_get_vq(dev, idx);

	if (!vq)
		return;
	atomic64_inc(&vq->stats.notifies);
	if (READ_ONCE(dev->suspended))
		return;
	vbs_vq_wake(vq);
}

static void vbs_set_vq_cb(struct vdpa_device *vdpa, u16 idx,
			  struct vdpa_callback *cb)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	struct vbs_vq *vq = vbs_get_vq(dev, idx);

	if (!vq)
		return;
	down_write(&dev->lock);
	vq->cb = *cb;
	up_write(&dev->lock);
}

/* Bytes of a used ring of @num entries the device writes. */
static u32 vbs_used_bytes(struct vbs_dev *dev, u32 num)
{
	u32 n = offsetof(struct vring_used, ring) +
		num * sizeof(struct vring_used_elem);

	if (dev->driver_features & BIT_ULL(VIRTIO_RING_F_EVENT_IDX))
		n += sizeof(__virtio16);	/* avail_event */
	return n;
}

/**
 * vbs_set_vq_ready() - enable or disable a virtqueue
 * @vdpa: the vDPA device
 * @idx: virtqueue index
 * @ready: new state
 *
 * A ring size that is not a power of two or exceeds the maximum leaves the
 * queue disabled.  A used ring that the address space maps without write
 * permission breaks the device (see iotlb.c).
 */
static void vbs_set_vq_ready(struct vdpa_device *vdpa, u16 idx, bool ready)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	struct vbs_vq *vq = vbs_get_vq(dev, idx);

	if (!vq)
		return;
	down_write(&dev->lock);
	if (ready && !vq->ready) {
		if (!vq->num || !is_power_of_2(vq->num) ||
		    vq->num > vbs_config_queue_size(dev)) {
			dev_dbg(&vdpa->dev, "vq %u: bad size %u\n", idx,
				vq->num);
			goto unlock;
		}
		vbs_vq_setup_ring(vq);
		if (vbs_iotlb_watch_used(dev, vq, vq->device_addr,
					 vbs_used_bytes(dev, vq->num))) {
			vq->broken = true;
			vbs_dev_set_broken(dev, vq, "used ring mapped read-only",
					   -EPERM);
		}
	} else if (!ready && vq->ready) {
		vbs_iotlb_watch_used(dev, vq, 0, 0);
	}
	vq->ready = ready;
unlock:
	up_write(&dev->lock);
	if (!ready)
		return;
	/* Enabled after DRIVER_OK: DRIVER_OK did not give it its slots. */
	if (READ_ONCE(dev->status) & VIRTIO_CONFIG_S_DRIVER_OK)
		vbs_vq_start(vq);
	vbs_worker_wake(dev);
}

static bool vbs_get_vq_ready(struct vdpa_device *vdpa, u16 idx)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	struct vbs_vq *vq = vbs_get_vq(dev, idx);

	return vq && READ_ONCE(vq->ready);
}

/**
 * vbs_set_vq_state() - set where a virtqueue resumes
 * @vdpa: the vDPA device
 * @idx: virtqueue index
 * @state: the available index to continue from
 *
 * Return: 0, or -EINVAL for a bad index.
 */
static int vbs_set_vq_state(struct vdpa_device *vdpa, u16 idx,
			    const struct vdpa_vq_state *state)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	struct vbs_vq *vq = vbs_get_vq(dev, idx);

	if (!vq)
		return -EINVAL;
	down_write(&dev->lock);
	vq->vring.last_avail_idx = state->split.avail_index;
	vq->vring.last_used_idx = state->split.avail_index;
	/*
	 * vringh publishes the next used entry at last_used_idx + completed
	 * and, without EVENT_IDX, never folds completed into last_used_idx:
	 * the next completion must land at the new base, not past it.
	 */
	vq->vring.completed = 0;
	up_write(&dev->lock);
	return 0;
}

/**
 * vbs_get_vq_state() - where a virtqueue is
 * @vdpa: the vDPA device
 * @idx: virtqueue index
 * @state: filled with the last available index the device fetched
 *
 * Consistent with the used ring once the device is suspended, since
 * suspend waits for every fetched request to complete.
 *
 * Return: 0, or -EINVAL for a bad index.
 */
static int vbs_get_vq_state(struct vdpa_device *vdpa, u16 idx,
			    struct vdpa_vq_state *state)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	struct vbs_vq *vq = vbs_get_vq(dev, idx);

	if (!vq)
		return -EINVAL;
	down_write(&dev->lock);
	state->split.avail_index = vq->vring.last_avail_idx;
	up_write(&dev->lock);
	return 0;
}

static u32 vbs_get_vq_align(struct vdpa_device *vdpa)
{
	return VBS_VQ_ALIGN;
}

static u64 vbs_get_device_features(struct vdpa_device *vdpa)
{
	return vdpa_to_vbs(vdpa)->features;
}

/* Queues may be enabled after DRIVER_OK: a worker checks each pass. */
static u64 vbs_get_backend_features(const struct vdpa_device *vdpa)
{
	return BIT_ULL(VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK);
}

static int vbs_set_driver_features(struct vdpa_device *vdpa, u64 features)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);

	if (!(features & BIT_ULL(VIRTIO_F_VERSION_1)) ||
	    !(features & BIT_ULL(VIRTIO_F_ACCESS_PLATFORM)))
		return -EINVAL;
	if (features & ~dev->features)
		return -EINVAL;
	down_write(&dev->lock);
	dev->driver_features = features;
	vbs_cache_init(dev, features);
	up_write(&dev->lock);
	return 0;
}

static u64 vbs_get_driver_features(struct vdpa_device *vdpa)
{
	return READ_ONCE(vdpa_to_vbs(vdpa)->driver_features);
}

static void vbs_set_config_cb(struct vdpa_device *vdpa,
			      struct vdpa_callback *cb)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);

	down_write(&dev->lock);
	dev->config_cb = *cb;
	up_write(&dev->lock);
}

static u16 vbs_get_vq_num_max(struct vdpa_device *vdpa)
{
	return vbs_config_queue_size(vdpa_to_vbs(vdpa));
}

static u16 vbs_get_vq_num_min(struct vdpa_device *vdpa)
{
	return VBS_QUEUE_SIZE_MIN;
}

static u32 vbs_get_device_id(struct vdpa_device *vdpa)
{
	return VIRTIO_ID_BLOCK;
}

static u32 vbs_get_vendor_id(struct vdpa_device *vdpa)
{
	return VBS_VENDOR_ID;
}

static u8 vbs_get_status(struct vdpa_device *vdpa)
{
	return READ_ONCE(vdpa_to_vbs(vdpa)->status);
}

/* Drivers clear bits only by reset(), never here. */
static void vbs_set_status(struct vdpa_device *vdpa, u8 status)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);

	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(READ_ONCE(dev->status) & VIRTIO_CONFIG_S_DRIVER_OK)) {
		vbs_iotlb_check_pt(dev);
		/* Request slots and bio_vec pool, before the workers may run */
		vbs_dev_start(dev);
		/* A pooled device's queues get their worker (pool.c). */
		vbs_pool_attach(dev);
	}
	down_write(&dev->lock);
	/* Keep DEVICE_NEEDS_RESET until the driver resets us. */
	spin_lock(&dev->config_lock);
	status |= dev->status & VIRTIO_CONFIG_S_NEEDS_RESET;
	WRITE_ONCE(dev->status, status);
	spin_unlock(&dev->config_lock);
	up_write(&dev->lock);
	if (status & VIRTIO_CONFIG_S_DRIVER_OK)
		vbs_worker_wake(dev);
}

/**
 * vbs_dev_reset() - reset the device as the virtio spec asks
 * @dev: the device
 * @flags: VDPA_RESET_F_CLEAN_MAP to go back to the identity map too
 *
 * Stops fetching, waits for the requests in flight and drops their
 * completions, then forgets what the driver set (the queues' CPU masks
 * too) and frees what it started: the request slots and the bio_vec pool,
 * which no request uses any more.  Also how a device that goes away
 * stops.
 *
 * Return: 0.
 */
int vbs_dev_reset(struct vbs_dev *dev, u32 flags)
{
	mempool_t *pool;
	u32 i;

	/* Stop fetching and drop late completions, then drain. */
	down_write(&dev->lock);
	WRITE_ONCE(dev->status, 0);
	for (i = 0; i < dev->nvqs; i++) {
		dev->vqs[i].ready = false;
		dev->vqs[i].epoch++;
	}
	up_write(&dev->lock);
	vbs_dev_quiesce(dev);
	/* Nothing in flight: out of the pool until the next DRIVER_OK. */
	vbs_pool_detach(dev);

	down_write(&dev->lock);
	for (i = 0; i < dev->nvqs; i++)
		vbs_vq_reset(&dev->vqs[i]);
	pool = dev->bvec_pool;
	dev->bvec_pool = NULL;
	dev->driver_features = 0;
	dev->suspended = false;
	vbs_cache_init(dev, 0);
	vbs_config_reset(dev);
	memset(&dev->config_cb, 0, sizeof(dev->config_cb));
	atomic_set(&dev->announce, 0);
	spin_lock(&dev->config_lock);
	dev->generation++;
	spin_unlock(&dev->config_lock);
	up_write(&dev->lock);
	mempool_destroy(pool);

	vbs_affinity_reset(dev);
	if (flags & VDPA_RESET_F_CLEAN_MAP)
		vbs_iotlb_reset_pt(dev);
	return 0;
}

/**
 * vbs_reset() - reset the device as the virtio spec asks
 * @vdpa: the vDPA device
 *
 * Waits for the requests in flight and drops their completions.  Keeps the
 * address space, as vhost-vdpa's IOTLB_PERSIST expects: reset_map(), or
 * compat_reset() with VDPA_RESET_F_CLEAN_MAP, goes back to the identity map.
 *
 * Return: 0.
 */
static int vbs_reset(struct vdpa_device *vdpa)
{
	return vbs_dev_reset(vdpa_to_vbs(vdpa), 0);
}

/* VDPA_RESET_F_CLEAN_MAP: vhost-vdpa without IOTLB_PERSIST. */
static int vbs_compat_reset(struct vdpa_device *vdpa, u32 flags)
{
	return vbs_dev_reset(vdpa_to_vbs(vdpa), flags);
}

/**
 * vbs_suspend() - stop fetching requests and drain the ones in flight
 * @vdpa: the vDPA device
 *
 * When it returns every fetched request is in the used ring, so
 * get_vq_state() gives a consistent index.  A kick from now on wakes no
 * worker: resume() wakes them all.
 *
 * Return: 0.
 */
static int vbs_suspend(struct vdpa_device *vdpa)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);

	down_write(&dev->lock);
	WRITE_ONCE(dev->suspended, true);
	up_write(&dev->lock);
	vbs_dev_quiesce(dev);
	return 0;
}

/**
 * vbs_resume() - continue after suspend()
 * @vdpa: the vDPA device
 *
 * Every worker looks at all of its rings again, so no kick that came while
 * suspended is lost.
 *
 * Return: 0.
 */
static int vbs_resume(struct vdpa_device *vdpa)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);

	down_write(&dev->lock);
	WRITE_ONCE(dev->suspended, false);
	up_write(&dev->lock);
	vbs_worker_wake(dev);
	return 0;
}

static size_t vbs_get_config_size(struct vdpa_device *vdpa)
{
	return sizeof(struct virtio_blk_config);
}

static u32 vbs_get_generation(struct vdpa_device *vdpa)
{
	return READ_ONCE(vdpa_to_vbs(vdpa)->generation);
}

static struct vdpa_iova_range vbs_get_iova_range(struct vdpa_device *vdpa)
{
	struct vdpa_iova_range range = {
		.first = 0,
		.last = ULLONG_MAX,
	};

	return range;
}

/**
 * vbs_set_map() - install a whole new address space (vhost-vdpa)
 * @vdpa: the vDPA device
 * @asid: address space, 0
 * @iotlb: the mappings
 *
 * vhost-vdpa calls this holding its owner's mmap_lock (for reading), so it
 * takes neither @dev->lock nor waits for a worker, which may need that lock
 * to fault; vbs_iotlb_set() has the details.  It returns only once no
 * request uses a page of a mapping it removed or changed.
 *
 * On a running device it then wakes every worker.  A queue that went idle
 * while its used ring was unmapped could not clear VRING_USED_F_NO_NOTIFY
 * there (vringh gives up on the write and reports no error), and a driver
 * that honours the flag would never kick it again; the worker's pass
 * writes the flag again through the new mappings when it next goes idle.
 *
 * Return: 0, -EINVAL for a bad @asid or -ENOMEM.
 */
static int vbs_set_map(struct vdpa_device *vdpa, unsigned int asid,
		       struct vhost_iotlb *iotlb)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	int ret;

	if (asid)
		return -EINVAL;
	ret = vbs_iotlb_set(dev, iotlb);
	if (!ret && vbs_dev_running(dev))
		vbs_worker_wake(dev);
	return ret;
}

static int vbs_reset_map(struct vdpa_device *vdpa, unsigned int asid)
{
	if (asid)
		return -EINVAL;
	vbs_iotlb_reset_pt(vdpa_to_vbs(vdpa));
	return 0;
}

/**
 * vbs_bind_mm() - vhost-vdpa VA mode: use this address space
 * @vdpa: the vDPA device
 * @mm: the vhost-vdpa owner's address space; vhost-vdpa keeps it alive
 *	until vbs_unbind_mm()
 *
 * IOVAs then translate to user addresses in @mm, which the workers adopt.
 *
 * Return: 0.
 */
static int vbs_bind_mm(struct vdpa_device *vdpa, struct mm_struct *mm)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);

	down_write(&dev->lock);
	dev->mm = mm;
	up_write(&dev->lock);
	vbs_worker_wake(dev);
	return 0;
}

/**
 * vbs_unbind_mm() - stop using the address space given to vbs_bind_mm()
 * @vdpa: the vDPA device
 *
 * The workers drop it at their next pass; they hold their own reference
 * until then.
 */
static void vbs_unbind_mm(struct vdpa_device *vdpa)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);

	down_write(&dev->lock);
	dev->mm = NULL;
	up_write(&dev->lock);
	vbs_worker_wake(dev);
}

static struct device *vbs_get_vq_dma_dev(struct vdpa_device *vdpa, u16 idx)
{
	return vdpa->dma_dev;
}

const struct vdpa_config_ops vbs_config_ops = {
	.set_vq_address		= vbs_set_vq_address,
	.set_vq_num		= vbs_set_vq_num,
	.kick_vq		= vbs_kick_vq,
	.set_vq_cb		= vbs_set_vq_cb,
	.set_vq_ready		= vbs_set_vq_ready,
	.get_vq_ready		= vbs_get_vq_ready,
	.set_vq_state		= vbs_set_vq_state,
	.get_vq_state		= vbs_get_vq_state,
	.get_vq_size		= vbs_get_vq_size,
	.get_vq_align		= vbs_get_vq_align,
	.get_device_features	= vbs_get_device_features,
	.get_backend_features	= vbs_get_backend_features,
	.set_driver_features	= vbs_set_driver_features,
	.get_driver_features	= vbs_get_driver_features,
	.set_config_cb		= vbs_set_config_cb,
	.get_vq_num_max		= vbs_get_vq_num_max,
	.get_vq_num_min		= vbs_get_vq_num_min,
	.get_device_id		= vbs_get_device_id,
	.get_vendor_id		= vbs_get_vendor_id,
	.get_status		= vbs_get_status,
	.set_status		= vbs_set_status,
	.reset			= vbs_reset,
	.compat_reset		= vbs_compat_reset,
	.suspend		= vbs_suspend,
	.resume			= vbs_resume,
	.get_config_size	= vbs_get_config_size,
	.get_config		= vbs_get_config,
	.set_config		= vbs_set_config,
	.get_generation		= vbs_get_generation,
	.get_iova_range		= vbs_get_iova_range,
	.set_map		= vbs_set_map,
	.reset_map		= vbs_reset_map,
	.get_vq_dma_dev		= vbs_get_vq_dma_dev,
	.set_vq_affinity	= vbs_set_vq_affinity,
	.get_vq_affinity	= vbs_get_vq_affinity,
	.bind_mm		= vbs_bind_mm,
	.unbind_mm		= vbs_unbind_mm,
};
