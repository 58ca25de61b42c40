// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: the virtio-blk config space.
 *
 * Built from the backing when the device is created, read and written by
 * the driver (wce is its only writable field), and updated when the
 * backing is resized.  @dev->config_lock protects it with its generation.
 */

#include <linux/blkdev.h>
#include <linux/log2.h>
#include <linux/virtio_byteorder.h>
#include <uapi/linux/virtio_config.h>

#include "vdpa_blk_sw.h"

/**
 * vbs_config_queue_size() - the largest ring the bound driver may set up
 * @dev: the device
 *
 * queue_size if set.  Otherwise (0, the default) VBS_QUEUE_SIZE_KERNEL
 * while virtio_vdpa is bound, else VBS_QUEUE_SIZE_MAX.  virtio_vdpa gives
 * every ring the largest size offered, and virtio_blk then allocates a
 * blk-mq request for each entry of each ring up front: an idle disk with
 * two rings of 1024 held some 930 KiB for that.  A vhost-vdpa user picks
 * its rings' size itself, up to this one, and QEMU 10.0's
 * vhost-vdpa-device-pci needs 1024 (Documentation/vhost-vdpa.rst).
 *
 * The driver core sets the driver before calling its probe and clears it
 * after its remove, and both drivers reset the device before they ask
 * (virtio_vdpa in register_virtio_device(), vhost_vdpa at every open):
 * vbs_config_reset() notes then whether the driver is virtio_vdpa, by
 * name, from the driver's own call.  Here the bound driver is only
 * compared with that note, never dereferenced: the netlink query (vdpa
 * dev show) may run while the driver unbinds and its module goes away.
 *
 * Return: a power of two from VBS_QUEUE_SIZE_MIN to VBS_QUEUE_SIZE_MAX.
 */
u32 vbs_config_queue_size(struct vbs_dev *dev)
{
	const struct device_driver *drv = READ_ONCE(dev->vdpa.dev.driver);

	if (dev->p.queue_size)
		return dev->p.queue_size;
	if (drv && drv == READ_ONCE(dev->kernel_drv))
		return VBS_QUEUE_SIZE_KERNEL;
	return VBS_QUEUE_SIZE_MAX;
}

/*
 * Room for the header and the status in a full ring; under config_lock,
 * or before the device is registered.  The config space offers no more
 * than a polled bio of the backing takes, but a driver that sends more
 * (or never read seg_max) is still served, through the workqueue.
 */
static void vbs_config_seg_max(struct vbs_dev *dev)
{
	u32 offer;

	dev->seg_max = min_t(u32, VBS_SEG_MAX, vbs_config_queue_size(dev) - 2);
	offer = dev->seg_max;
	if (dev->poll_seg_max)
		offer = min(offer, dev->poll_seg_max);
	dev->config.seg_max = __cpu_to_virtio32(true, offer);
}

/**
 * vbs_config_reset() - size the config space for the driver now bound
 * @dev: the device, being reset (@dev->lock held for writing): no
 *	request in flight
 *
 * seg_max follows the largest ring (vbs_config_queue_size()), which may
 * depend on the driver, and every driver resets the device before it
 * reads the config space.  Called from the bound driver's own reset, or
 * with none bound (the device going away), so the driver, if any, is
 * there to look at.
 */
void vbs_config_reset(struct vbs_dev *dev)
{
	const struct device_driver *drv = READ_ONCE(dev->vdpa.dev.driver);

	lockdep_assert_held_write(&dev->lock);
	WRITE_ONCE(dev->kernel_drv,
		   drv && !strcmp(drv->name, "virtio_vdpa") ? drv : NULL);
	spin_lock(&dev->config_lock);
	vbs_config_seg_max(dev);
	spin_unlock(&dev->config_lock);
}

/**
 * vbs_config_fill() - build the virtio-blk config space
 * @dev: the device, with its backing open and @dev->capacity set
 */
void vbs_config_fill(struct vbs_dev *dev)
{
	struct virtio_blk_config *c = &dev->config;
	u32 bs = dev->p.block_size;
	struct block_device *bdev = vbs_backing_bdev(dev);
	unsigned int pbs = bs, io_min = bs, io_opt = 0;
	u32 max_discard, discard_align;

	if (bdev) {
		pbs = max(bdev_physical_block_size(bdev), bs);
		io_min = max(bdev_io_min(bdev), bs);
		io_opt = bdev_io_opt(bdev);
	}
	vbs_backend_discard_limits(dev, &max_discard, &discard_align);

	memset(c, 0, sizeof(*c));
	c->capacity = __cpu_to_virtio64(true, dev->capacity);
	c->size_max = __cpu_to_virtio32(true, VBS_SIZE_MAX);
	vbs_config_seg_max(dev);
	c->blk_size = __cpu_to_virtio32(true, bs);
	c->physical_block_exp = ilog2(pbs / bs);
	c->alignment_offset = 0;
	c->min_io_size = __cpu_to_virtio16(true, min_t(u32, io_min / bs,
						       U16_MAX));
	c->opt_io_size = __cpu_to_virtio32(true, io_opt / bs);
	c->num_queues = __cpu_to_virtio16(true, dev->nvqs);
	c->max_discard_sectors = __cpu_to_virtio32(true, max_discard);
	c->max_discard_seg = __cpu_to_virtio32(true, VBS_MAX_DWZ_SEGS);
	c->discard_sector_alignment = __cpu_to_virtio32(true, discard_align);
	c->max_write_zeroes_sectors = __cpu_to_virtio32(true,
							VBS_MAX_DWZ_SECTORS);
	c->max_write_zeroes_seg = __cpu_to_virtio32(true, VBS_MAX_DWZ_SEGS);
	c->write_zeroes_may_unmap = 1;
	/* Write through until a driver negotiates FLUSH: vbs_cache_init(). */
	c->wce = 0;
	dev->writethrough = true;
}

/**
 * vbs_cache_init() - the cache mode the features imply
 * @dev: the device; caller holds @dev->lock for writing
 * @features: the driver's features, 0 before it set them
 *
 * As the virtio spec (1.2, 5.2.5) and QEMU's virtio_blk_set_features()
 * have it: a driver without FLUSH never flushes and takes the disk for
 * write through, so the device writes through; with FLUSH it writes back
 * until a driver that negotiated CONFIG_WCE clears wce.  Before a driver
 * sets its features, the device writes through.
 */
void vbs_cache_init(struct vbs_dev *dev, u64 features)
{
	bool wt = !(features & BIT_ULL(VIRTIO_BLK_F_FLUSH));

	spin_lock(&dev->config_lock);
	dev->config.wce = !wt;
	WRITE_ONCE(dev->writethrough, wt);
	dev->generation++;
	spin_unlock(&dev->config_lock);
}

/*
 * Tell the driver the config space changed.  The callback runs under
 * @dev->lock, as the virtqueue callbacks do, so that a reset or an unbind
 * cannot free its private data under it.
 */
static void vbs_config_changed(struct vbs_dev *dev)
{
	down_read(&dev->lock);
	if (dev->config_cb.callback)
		dev->config_cb.callback(dev->config_cb.private);
	up_read(&dev->lock);
}

/**
 * vbs_config_resize() - the backing grew (or shrank): take its new size
 * @dev: the device
 *
 * Updates the capacity and the config space, then raises a configuration
 * interrupt.
 *
 * Return: 0, or -EINVAL for a backing of less than one block.
 */
int vbs_config_resize(struct vbs_dev *dev)
{
	u64 sectors = vbs_backend_sectors(dev);

	if (!sectors)
		return -EINVAL;
	spin_lock(&dev->config_lock);
	WRITE_ONCE(dev->capacity, sectors);
	dev->config.capacity = __cpu_to_virtio64(true, sectors);
	WRITE_ONCE(dev->generation, dev->generation + 1);
	spin_unlock(&dev->config_lock);
	vbs_config_changed(dev);
	return 0;
}

/**
 * vbs_get_config() - read the config space
 * @vdpa: the vDPA device
 * @offset: first byte
 * @buf: destination
 * @len: bytes to read; out-of-range reads give zeroes
 */
void vbs_get_config(struct vdpa_device *vdpa, unsigned int offset,
		    void *buf, unsigned int len)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	size_t size = sizeof(dev->config);

	if (offset > size || len > size - offset) {
		memset(buf, 0, len);
		return;
	}
	spin_lock(&dev->config_lock);
	memcpy(buf, (u8 *)&dev->config + offset, len);
	spin_unlock(&dev->config_lock);
}

/**
 * vbs_set_config() - write the config space
 * @vdpa: the vDPA device
 * @offset: first byte
 * @buf: source
 * @len: bytes
 *
 * The only writable field is wce, once CONFIG_WCE is negotiated: 0 makes
 * the device write through (every write durable when it completes), 1
 * back (durability on FLUSH), the latter only if FLUSH was negotiated too:
 * a driver that cannot flush gets no write-back cache.  Other writes are
 * ignored.
 */
void vbs_set_config(struct vdpa_device *vdpa, unsigned int offset,
		    const void *buf, unsigned int len)
{
	struct vbs_dev *dev = vdpa_to_vbs(vdpa);
	u64 features = READ_ONCE(dev->driver_features);
	u8 wce;

	if (offset != offsetof(struct virtio_blk_config, wce) || len != 1 ||
	    !(features & BIT_ULL(VIRTIO_BLK_F_CONFIG_WCE))) {
		dev_dbg(&vdpa->dev, "ignored config write of %u bytes at %u\n",
			len, offset);
		return;
	}
	wce = !!*(const u8 *)buf;
	if (wce && !(features & BIT_ULL(VIRTIO_BLK_F_FLUSH))) {
		dev_dbg(&vdpa->dev, "ignored wce = 1 without FLUSH\n");
		return;
	}
	spin_lock(&dev->config_lock);
	dev->config.wce = wce;
	WRITE_ONCE(dev->writethrough, !wce);
	dev->generation++;
	spin_unlock(&dev->config_lock);
}
