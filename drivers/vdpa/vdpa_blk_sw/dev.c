// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: a device's life, set up and torn down side by side.
 *
 * vbs_dev_create() builds a device step by step and registers it; a step
 * that fails undoes the ones before it, in reverse, through the labels at
 * the end, each named for what it undoes.  vbs_dev_destroy() unregisters
 * the device and undoes every step in the same reverse order.  The vDPA
 * core's free op is not used: the device is torn down while the
 * management device deletes it, so nothing has to ask how far its setup
 * got.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dma-mapping.h>
#include <linux/slab.h>

#include "vdpa_blk_sw.h"

/*
 * DISCARD is offered where it does something: not on a block device that
 * cannot discard.  Asked for explicitly there (device_features), it is
 * refused rather than dropped.
 */
static int vbs_dev_check_discard(struct vbs_dev *dev, bool provisioned)
{
	u32 max, align;

	vbs_backend_discard_limits(dev, &max, &align);
	if (max || !(dev->features & BIT_ULL(VIRTIO_BLK_F_DISCARD)))
		return 0;
	if (provisioned) {
		pr_info_ratelimited("%s: device_features: DISCARD, but \"%s\" cannot discard\n",
				    dev_name(&dev->vdpa.dev), dev->p.backing);
		return -EOPNOTSUPP;
	}
	dev->features &= ~BIT_ULL(VIRTIO_BLK_F_DISCARD);
	return 0;
}

/*
 * A completion may still be reading vq->worker, inside rcu_read_lock(),
 * after it published the device's last request (vbs_req_complete()):
 * the array goes after a grace period, without waiting for one.
 */
static void vbs_dev_free_vqs(struct vbs_dev *dev, u32 n)
{
	while (n--)
		vbs_vq_destroy(&dev->vqs[n]);
	kfree_rcu(dev->vqs, rcu);
	dev->vqs = NULL;
}

/* The queues; their request slots come when the driver starts them. */
static int vbs_dev_alloc_vqs(struct vbs_dev *dev)
{
	u32 i;

	dev->vqs = kcalloc(dev->nvqs, sizeof(*dev->vqs), GFP_KERNEL);
	if (!dev->vqs)
		return -ENOMEM;
	for (i = 0; i < dev->nvqs; i++)
		vbs_vq_init(&dev->vqs[i], dev, i);
	return 0;
}

/**
 * vbs_dev_create() - create and register a device
 * @mdev: our management device
 * @name: name of the new device
 * @p: its parameters, validated
 * @features: the features it offers
 * @provisioned: @features came from device_features
 *
 * Return: 0 or -errno; -EBUSY for a backing another device has open,
 * -EOPNOTSUPP for DISCARD provisioned on a backing that cannot discard.
 */
int vbs_dev_create(struct vdpa_mgmt_dev *mdev, const char *name,
		   const struct vbs_params *p, u64 features, bool provisioned)
{
	struct vbs_dev *dev;
	struct device *d;
	int ret;

	dev = vdpa_alloc_device(struct vbs_dev, vdpa, mdev->device,
				&vbs_config_ops, 1, 1, name, p->use_va);
	if (IS_ERR(dev))
		return PTR_ERR(dev);
	dev->p = *p;
	dev->features = features;
	dev->vdpa.mdev = mdev;
	d = &dev->vdpa.dev;

	init_rwsem(&dev->lock);
	spin_lock_init(&dev->config_lock);
	dev->nvqs = dev->p.num_queues;
	/*
	 * 0: the shared pool (pool.c), sysfs shows 0; in VA mode one worker
	 * per queue, and sysfs shows the count.
	 */
	dev->pooled = !dev->p.num_workers && !dev->p.use_va;
	if (!dev->p.num_workers && !dev->pooled)
		dev->p.num_workers = dev->p.num_queues;

	/*
	 * One lockdep class per memory mode, from two call sites.  A VA-mode
	 * worker may fault on its owner's mm inside a read-side section.
	 * set_map() waits for a grace period when a mapping goes away, and
	 * vhost-vdpa holds its owner's mmap_lock when it undoes a failed map
	 * ioctl.  In PA mode no reader touches an mm, so that wait closes no
	 * cycle; one shared class would make lockdep link a PA device's wait
	 * to a VA device's faults.  The VA-mode case is documented in
	 * Documentation/vdpa_blk_sw.rst.
	 */
	if (dev->vdpa.use_va)
		ret = init_srcu_struct(&dev->iotlb_srcu);
	else
		ret = init_srcu_struct(&dev->iotlb_srcu);
	if (ret)
		goto put_dev;

	d->dma_mask = &d->coherent_dma_mask;
	ret = dma_set_mask_and_coherent(d, DMA_BIT_MASK(64));
	if (ret)
		goto cleanup_srcu;
	dev->vdpa.dma_dev = d;

	ret = vbs_iotlb_init(dev);
	if (ret)
		goto cleanup_srcu;

	ret = vbs_backend_open(dev);
	if (ret) {
		dev_dbg(d, "cannot open backing \"%s\": %d\n", dev->p.backing,
			ret);
		goto free_iotlb;
	}
	/* As sysfs shows it: the embedded backing is never O_DIRECT. */
	dev->p.direct = !!(dev->file->f_flags & O_DIRECT);
	dev->capacity = vbs_backend_sectors(dev);
	if (!dev->capacity) {
		ret = -EINVAL;
		goto close_backend;
	}
	ret = vbs_dev_check_discard(dev, provisioned);
	if (ret)
		goto close_backend;
	vbs_config_fill(dev);

	ret = vbs_dev_alloc_vqs(dev);
	if (ret)
		goto close_backend;

	ret = vbs_sysfs_build(dev);
	if (ret)
		goto free_vqs;

	ret = vbs_worker_start(dev);
	if (ret)
		goto free_sysfs;

	ret = vbs_affinity_init(dev);
	if (ret)
		goto stop_workers;

	ret = _vdpa_register_device(&dev->vdpa, dev->nvqs);
	if (ret)
		goto exit_affinity;
	return 0;

exit_affinity:
	vbs_affinity_exit(dev);
stop_workers:
	vbs_worker_stop(dev);
free_sysfs:
	vbs_sysfs_free(dev);
free_vqs:
	vbs_dev_free_vqs(dev, dev->nvqs);
close_backend:
	vbs_backend_close(dev);
free_iotlb:
	vbs_iotlb_free(dev);
cleanup_srcu:
	cleanup_srcu_struct(&dev->iotlb_srcu);
put_dev:
	put_device(d);
	return ret;
}

/**
 * vbs_dev_destroy() - unregister a device and release everything it holds
 * @dev: a device vbs_dev_create() registered
 *
 * Unregistering unbinds its driver.  Then the device is reset, as a driver
 * may have left it running, which waits for the requests in flight, and
 * undone step by step.  Its memory goes with its last reference.
 */
void vbs_dev_destroy(struct vbs_dev *dev)
{
	struct device *d = &dev->vdpa.dev;

	/* Unregistering may drop the last reference: keep one to the end. */
	get_device(d);
	_vdpa_unregister_device(&dev->vdpa);

	vbs_dev_reset(dev, 0);
	vbs_affinity_exit(dev);
	vbs_worker_stop(dev);
	vbs_sysfs_free(dev);
	vbs_dev_free_vqs(dev, dev->nvqs);
	vbs_backend_close(dev);
	vbs_iotlb_free(dev);
	cleanup_srcu_struct(&dev->iotlb_srcu);
	put_device(d);
}
