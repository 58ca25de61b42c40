// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: software vDPA virtio-blk device backed by a file or a block
 * device.
 *
 * The module registers the vDPA management device "vdpasim_blk-sw".  Each
 * "vdpa dev add mgmtdev vdpasim_blk-sw name NAME" creates a device whose
 * parameters come from the configfs item of the same name
 * (/sys/kernel/config/vdpa_blk_sw/NAME) when it exists, or from the module
 * parameters, so the device is complete before any driver can bind.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <uapi/linux/vdpa.h>
#include <uapi/linux/virtio_config.h>
#include <uapi/linux/virtio_ids.h>
#include <uapi/linux/virtio_ring.h>

#include "vdpa_blk_sw.h"

#define VBS_FEATURES	(BIT_ULL(VIRTIO_F_VERSION_1) |		\
			 BIT_ULL(VIRTIO_F_ACCESS_PLATFORM) |	\
			 BIT_ULL(VIRTIO_F_ANY_LAYOUT) |		\
			 BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) |	\
			 BIT_ULL(VIRTIO_RING_F_EVENT_IDX) |	\
			 BIT_ULL(VIRTIO_BLK_F_SIZE_MAX) |	\
			 BIT_ULL(VIRTIO_BLK_F_SEG_MAX) |	\
			 BIT_ULL(VIRTIO_BLK_F_BLK_SIZE) |	\
			 BIT_ULL(VIRTIO_BLK_F_TOPOLOGY) |	\
			 BIT_ULL(VIRTIO_BLK_F_MQ) |		\
			 BIT_ULL(VIRTIO_BLK_F_FLUSH) |		\
			 BIT_ULL(VIRTIO_BLK_F_CONFIG_WCE) |	\
			 BIT_ULL(VIRTIO_BLK_F_DISCARD) |	\
			 BIT_ULL(VIRTIO_BLK_F_WRITE_ZEROES))
#define VBS_SUPPORTED_FEATURES	(VBS_FEATURES | BIT_ULL(VIRTIO_BLK_F_RO))
#define VBS_REQUIRED_FEATURES	(BIT_ULL(VIRTIO_F_VERSION_1) |	\
				 BIT_ULL(VIRTIO_F_ACCESS_PLATFORM))

static void vbs_root_release(struct device *dev)
{
}

static struct device vbs_root = {
	.init_name = VBS_MGMTDEV_NAME,
	.release = vbs_root_release,
};

static u64 vbs_features_for(const struct vbs_params *p)
{
	u64 features = VBS_FEATURES;

	if (p->read_only)
		features |= BIT_ULL(VIRTIO_BLK_F_RO);
	return features;
}

/**
 * vbs_dev_add() - create a device (vdpa dev add)
 * @mdev: our management device
 * @name: name of the new device
 * @config: netlink attributes; only device_features is accepted
 *
 * Return: 0 or -errno; -EINVAL for invalid parameters or features, -EEXIST
 * for a name in use, -EBUSY for a backing another device has open,
 * -EOPNOTSUPP for DISCARD provisioned on a backing that cannot discard.
 */
static int vbs_dev_add(struct vdpa_mgmt_dev *mdev, const char *name,
		       const struct vdpa_dev_set_config *config)
{
	struct device *existing;
	struct vbs_params *p;
	u64 features;
	int ret;

	/* The vdpa core would try to register a device with no name. */
	if (!name[0])
		return -EINVAL;
	/*
	 * A name in use is EEXIST, as the vdpa core says at registration;
	 * checked first, or the staged backing, which the existing device
	 * holds, would make it EBUSY.  dev_add and dev_del are serialized
	 * by the vdpa core.
	 */
	existing = device_find_child_by_name(&vbs_root, name);
	if (existing) {
		put_device(existing);
		return -EEXIST;
	}

	p = kmalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	if (!vbs_configfs_lookup(name, p))
		vbs_params_init(p);
	if (!p->serial[0])
		strscpy(p->serial, name, sizeof(p->serial));
	features = vbs_features_for(p);
	if (config->mask & BIT_ULL(VDPA_ATTR_DEV_FEATURES)) {
		features = config->device_features;
		if ((features & ~VBS_SUPPORTED_FEATURES) ||
		    (features & VBS_REQUIRED_FEATURES) !=
		    VBS_REQUIRED_FEATURES) {
			pr_info_ratelimited("%s: device_features 0x%llx: unsupported 0x%llx or missing 0x%llx\n",
					    name, features,
					    features & ~VBS_SUPPORTED_FEATURES,
					    ~features & VBS_REQUIRED_FEATURES);
			ret = -EINVAL;
			goto free_params;
		}
		/* A device offering CONFIG_WCE must offer FLUSH (virtio 1.2, 5.2.5.2). */
		if ((features & BIT_ULL(VIRTIO_BLK_F_CONFIG_WCE)) &&
		    !(features & BIT_ULL(VIRTIO_BLK_F_FLUSH))) {
			pr_info_ratelimited("%s: device_features 0x%llx: CONFIG_WCE without FLUSH\n",
					    name, features);
			ret = -EINVAL;
			goto free_params;
		}
		if (features & BIT_ULL(VIRTIO_BLK_F_RO))
			p->read_only = true;
	}
	if (p->read_only)
		features |= BIT_ULL(VIRTIO_BLK_F_RO);
	ret = vbs_params_validate(p);
	if (ret)
		goto free_params;

	ret = vbs_dev_create(mdev, name, p, features,
			     config->mask & BIT_ULL(VDPA_ATTR_DEV_FEATURES));
	if (ret)
		goto free_params;
	vbs_configfs_set_live(name, true);
	kfree(p);
	return 0;

free_params:
	kfree(p);
	return ret;
}

/* vdpa dev del; module unload deletes every device left this way too. */
static void vbs_dev_del(struct vdpa_mgmt_dev *mdev, struct vdpa_device *vdpa)
{
	vbs_configfs_set_live(dev_name(&vdpa->dev), false);
	vbs_dev_destroy(vdpa_to_vbs(vdpa));
}

static const struct vdpa_mgmtdev_ops vbs_mgmtdev_ops = {
	.dev_add = vbs_dev_add,
	.dev_del = vbs_dev_del,
};

static struct virtio_device_id vbs_id_table[] = {
	{ VIRTIO_ID_BLOCK, VIRTIO_DEV_ANY_ID },
	{ 0 },
};

static struct vdpa_mgmt_dev vbs_mgmt_dev = {
	.device = &vbs_root,
	.id_table = vbs_id_table,
	.ops = &vbs_mgmtdev_ops,
	.config_attr_mask = BIT_ULL(VDPA_ATTR_DEV_FEATURES),
	.supported_features = VBS_SUPPORTED_FEATURES,
	.max_supported_vqs = VBS_MAX_QUEUES,
};

static int __init vbs_init(void)
{
	struct vbs_params *p;
	int ret;

	p = kmalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	vbs_params_init(p);
	ret = vbs_params_validate(p);
	kfree(p);
	if (ret) {
		pr_err("invalid default_* module parameter\n");
		return ret;
	}

	ret = vbs_backend_init();
	if (ret)
		return ret;
	ret = vbs_queue_module_init();
	if (ret)
		goto exit_backend;
	ret = vbs_pool_module_init();
	if (ret)
		goto exit_queue;
	ret = vbs_affinity_module_init();
	if (ret)
		goto exit_pool;
	ret = device_register(&vbs_root);
	if (ret) {
		put_device(&vbs_root);
		goto exit_affinity;
	}
	ret = vbs_configfs_init();
	if (ret)
		goto unregister_root;
	ret = vdpa_mgmtdev_register(&vbs_mgmt_dev);
	if (ret)
		goto exit_configfs;
	return 0;

exit_configfs:
	vbs_configfs_exit();
unregister_root:
	device_unregister(&vbs_root);
exit_affinity:
	vbs_affinity_module_exit();
exit_pool:
	vbs_pool_module_exit();
exit_queue:
	vbs_queue_module_exit();
exit_backend:
	vbs_backend_exit();
	return ret;
}

static void __exit vbs_exit(void)
{
	/* Deletes every device, unbinding its driver first. */
	vdpa_mgmtdev_unregister(&vbs_mgmt_dev);
	vbs_configfs_exit();
	device_unregister(&vbs_root);
	vbs_affinity_module_exit();
	vbs_pool_module_exit();
	vbs_queue_module_exit();
	vbs_backend_exit();
}

module_init(vbs_init);
module_exit(vbs_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Software vDPA virtio-blk device backed by a file or block device");
MODULE_AUTHOR("vdpa-blk-sw developers");
