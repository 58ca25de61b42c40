// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: configfs staging of device parameters.
 *
 * Linux 6.12's vdpa netlink takes no block parameter when it creates a
 * device: its VDPA_ATTR_DEV_BLK_CFG_* attributes only report a block
 * device's config space (vdpa dev config show), and dev_add() gets a
 * struct vdpa_dev_set_config whose one field for a block device is
 * device_features (MAC, MTU and queue pairs are a net device's).  So a
 * device's backing, size, queues and the rest are staged here first, as
 * null_blk and nvmet do:
 *
 *   mkdir /sys/kernel/config/vdpa_blk_sw/blk0
 *   echo /var/lib/disk.img > /sys/kernel/config/vdpa_blk_sw/blk0/backing
 *   vdpa dev add mgmtdev vdpasim_blk-sw name blk0
 *
 * dev_add() copies the item of the same name, so the device exists with its
 * final medium before any driver can bind: no driver ever sees another one.
 * While a device of that name exists ("live" reads 1) the item refuses
 * writes with -EBUSY; runtime tunables live in the device's sysfs instead.
 */

#include <linux/configfs.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "vdpa_blk_sw.h"

struct vbs_cfg_item {
	struct config_group group;
	struct vbs_params p;
	bool live;
};

/*
 * Serialises the writes of every item's parameters with its live flag and
 * with dev_add()'s copy of them (vbs_configfs_lookup()), where it is taken
 * inside vbs_cfg_subsys.su_mutex.  Parameter shows read without it.
 */
static DEFINE_MUTEX(vbs_cfg_lock);

static struct vbs_cfg_item *to_vbs_cfg(struct config_item *item)
{
	return container_of(to_config_group(item), struct vbs_cfg_item, group);
}

static ssize_t vbs_cfg_store(struct config_item *item, enum vbs_param_id id,
			     const char *page, size_t count)
{
	struct vbs_cfg_item *c = to_vbs_cfg(item);
	struct vbs_param_val val;
	ssize_t ret;

	ret = vbs_param_parse(id, page, count, &val);
	if (ret)
		return ret;
	mutex_lock(&vbs_cfg_lock);
	if (c->live) {
		ret = -EBUSY;
	} else {
		vbs_param_set(id, &c->p, &val);
		ret = count;
	}
	mutex_unlock(&vbs_cfg_lock);
	kfree(val.str);
	return ret;
}

/* A show and a store for each parameter, as null_blk's NULLB_DEVICE_ATTR */
#define VBS_PARAM(name, ...)						\
static ssize_t vbs_cfg_##name##_show(struct config_item *item,	\
				     char *page)			\
{									\
	return vbs_param_show(VBS_P_##name, &to_vbs_cfg(item)->p, page); \
}									\
static ssize_t vbs_cfg_##name##_store(struct config_item *item,	\
				      const char *page, size_t count)	\
{									\
	return vbs_cfg_store(item, VBS_P_##name, page, count);		\
}

#include <uapi/linux/vdpa_blk_sw_params.h>

#define VBS_PARAM(name, ...)						\
	[VBS_P_##name] = {						\
		.ca_name = #name,					\
		.ca_owner = THIS_MODULE,				\
		.ca_mode = 0644,					\
		.show = vbs_cfg_##name##_show,				\
		.store = vbs_cfg_##name##_store,			\
	},
static struct configfs_attribute vbs_cfg_param_attrs[VBS_NR_PARAMS] = {
#include <uapi/linux/vdpa_blk_sw_params.h>
};

static ssize_t vbs_cfg_live_show(struct config_item *item, char *page)
{
	bool live;

	mutex_lock(&vbs_cfg_lock);
	live = to_vbs_cfg(item)->live;
	mutex_unlock(&vbs_cfg_lock);
	return sysfs_emit(page, "%d\n", live);
}
CONFIGFS_ATTR_RO(vbs_cfg_, live);

/* Filled by vbs_configfs_init(): the staged parameters, then live. */
static struct configfs_attribute *vbs_cfg_attrs[VBS_NR_PARAMS + 2];

static void vbs_cfg_release(struct config_item *item)
{
	kfree(to_vbs_cfg(item));
}

static struct configfs_item_operations vbs_cfg_item_ops = {
	.release = vbs_cfg_release,
};

static const struct config_item_type vbs_cfg_item_type = {
	.ct_item_ops = &vbs_cfg_item_ops,
	.ct_attrs = vbs_cfg_attrs,
	.ct_owner = THIS_MODULE,
};

static struct config_group *vbs_cfg_make_group(struct config_group *parent,
					       const char *name)
{
	struct vbs_cfg_item *c;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return ERR_PTR(-ENOMEM);
	vbs_params_init(&c->p);
	config_group_init_type_name(&c->group, name, &vbs_cfg_item_type);
	return &c->group;
}

static struct configfs_group_operations vbs_cfg_group_ops = {
	.make_group = vbs_cfg_make_group,
};

static const struct config_item_type vbs_cfg_subsys_type = {
	.ct_group_ops = &vbs_cfg_group_ops,
	.ct_owner = THIS_MODULE,
};

static struct configfs_subsystem vbs_cfg_subsys = {
	.su_group = {
		.cg_item = {
			.ci_namebuf = VBS_DRV_NAME,
			.ci_type = &vbs_cfg_subsys_type,
		},
	},
};

static struct vbs_cfg_item *vbs_cfg_find(const char *name)
{
	struct config_item *item;

	list_for_each_entry(item, &vbs_cfg_subsys.su_group.cg_children,
			    ci_entry) {
		if (!strcmp(config_item_name(item), name))
			return to_vbs_cfg(item);
	}
	return NULL;
}

/**
 * vbs_configfs_lookup() - copy the staged parameters of a device
 * @name: device name
 * @p: filled if an item of that name exists
 *
 * Return: true if the item exists.
 */
bool vbs_configfs_lookup(const char *name, struct vbs_params *p)
{
	struct vbs_cfg_item *c;

	mutex_lock(&vbs_cfg_subsys.su_mutex);
	mutex_lock(&vbs_cfg_lock);
	c = vbs_cfg_find(name);
	if (c)
		*p = c->p;
	mutex_unlock(&vbs_cfg_lock);
	mutex_unlock(&vbs_cfg_subsys.su_mutex);
	return c;
}

/**
 * vbs_configfs_set_live() - mark the item of a device in use, or not
 * @name: device name
 * @live: whether a device of that name exists
 */
void vbs_configfs_set_live(const char *name, bool live)
{
	struct vbs_cfg_item *c;

	mutex_lock(&vbs_cfg_subsys.su_mutex);
	mutex_lock(&vbs_cfg_lock);
	c = vbs_cfg_find(name);
	if (c)
		c->live = live;
	mutex_unlock(&vbs_cfg_lock);
	mutex_unlock(&vbs_cfg_subsys.su_mutex);
}

/**
 * vbs_configfs_init() - register /sys/kernel/config/vdpa_blk_sw
 *
 * Return: 0 or -errno.
 */
int vbs_configfs_init(void)
{
	unsigned int i, n = 0;

	for (i = 0; i < VBS_NR_PARAMS; i++)
		if (!(vbs_param_table[i].flags & VBS_PF_NOSTAGE))
			vbs_cfg_attrs[n++] = &vbs_cfg_param_attrs[i];
	vbs_cfg_attrs[n] = &vbs_cfg_attr_live;
	config_group_init(&vbs_cfg_subsys.su_group);
	mutex_init(&vbs_cfg_subsys.su_mutex);
	return configfs_register_subsystem(&vbs_cfg_subsys);
}

/**
 * vbs_configfs_exit() - unregister the configfs subsystem
 */
void vbs_configfs_exit(void)
{
	configfs_unregister_subsystem(&vbs_cfg_subsys);
}
