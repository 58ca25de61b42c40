// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: configfs staging of device parameters.
 *
 * vdpa netlink carries no block attributes, so a device's medium is staged
 * here first, as null_blk and nvmet do:
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
#include <linux/ctype.h>
#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "vdpa_blk_sw.h"

struct vbs_cfg_item {
	struct config_group group;
	struct vbs_params p;
	bool live;
};

/* Protects every item's parameters and live flag. */
static DEFINE_MUTEX(vbs_cfg_lock);

static struct vbs_cfg_item *to_vbs_cfg(struct config_item *item)
{
	return container_of(to_config_group(item), struct vbs_cfg_item, group);
}

/* Strip one trailing newline, as echo adds it. */
static size_t vbs_cfg_strip(const char *page, size_t count)
{
	if (count && page[count - 1] == '\n')
		count--;
	return count;
}

static ssize_t vbs_cfg_store_u32(struct config_item *item, const char *page,
				 size_t count, u32 *field, u32 min, u32 max,
				 bool pow2)
{
	struct vbs_cfg_item *c = to_vbs_cfg(item);
	u32 val;
	int ret;

	ret = kstrtou32(page, 0, &val);
	if (ret)
		return ret;
	if (val < min || val > max)
		return -EINVAL;
	if (pow2 && !is_power_of_2(val))
		return -EINVAL;
	mutex_lock(&vbs_cfg_lock);
	if (c->live) {
		ret = -EBUSY;
	} else {
		*field = val;
		ret = count;
	}
	mutex_unlock(&vbs_cfg_lock);
	return ret;
}

static ssize_t vbs_cfg_store_bool(struct config_item *item, const char *page,
				  size_t count, bool *field)
{
	struct vbs_cfg_item *c = to_vbs_cfg(item);
	bool val;
	int ret;

	ret = kstrtobool(page, &val);
	if (ret)
		return ret;
	mutex_lock(&vbs_cfg_lock);
	if (c->live) {
		ret = -EBUSY;
	} else {
		*field = val;
		ret = count;
	}
	mutex_unlock(&vbs_cfg_lock);
	return ret;
}

static ssize_t vbs_cfg_num_queues_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%u\n", to_vbs_cfg(item)->p.num_queues);
}

static ssize_t vbs_cfg_num_queues_store(struct config_item *item,
					const char *page, size_t count)
{
	return vbs_cfg_store_u32(item, page, count, &to_vbs_cfg(item)->p.num_queues,
				 1, VBS_MAX_QUEUES, false);
}
CONFIGFS_ATTR(vbs_cfg_, num_queues);

static ssize_t vbs_cfg_num_workers_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%u\n", to_vbs_cfg(item)->p.num_workers);
}

static ssize_t vbs_cfg_num_workers_store(struct config_item *item,
					 const char *page, size_t count)
{
	return vbs_cfg_store_u32(item, page, count,
				 &to_vbs_cfg(item)->p.num_workers,
				 1, VBS_MAX_QUEUES, false);
}
CONFIGFS_ATTR(vbs_cfg_, num_workers);

static ssize_t vbs_cfg_queue_size_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%u\n", to_vbs_cfg(item)->p.queue_size);
}

static ssize_t vbs_cfg_queue_size_store(struct config_item *item,
					const char *page, size_t count)
{
	return vbs_cfg_store_u32(item, page, count, &to_vbs_cfg(item)->p.queue_size,
				 VBS_QUEUE_SIZE_MIN, VBS_QUEUE_SIZE_MAX, true);
}
CONFIGFS_ATTR(vbs_cfg_, queue_size);

static ssize_t vbs_cfg_block_size_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%u\n", to_vbs_cfg(item)->p.block_size);
}

static ssize_t vbs_cfg_block_size_store(struct config_item *item,
					const char *page, size_t count)
{
	return vbs_cfg_store_u32(item, page, count, &to_vbs_cfg(item)->p.block_size,
				 SECTOR_SIZE, PAGE_SIZE, true);
}
CONFIGFS_ATTR(vbs_cfg_, block_size);

static ssize_t vbs_cfg_poll_idle_us_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%u\n", to_vbs_cfg(item)->p.poll_idle_us);
}

static ssize_t vbs_cfg_poll_idle_us_store(struct config_item *item,
					  const char *page, size_t count)
{
	return vbs_cfg_store_u32(item, page, count, &to_vbs_cfg(item)->p.poll_idle_us,
				 0, USEC_PER_SEC, false);
}
CONFIGFS_ATTR(vbs_cfg_, poll_idle_us);

static ssize_t vbs_cfg_read_only_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%d\n", to_vbs_cfg(item)->p.read_only);
}

static ssize_t vbs_cfg_read_only_store(struct config_item *item,
				       const char *page, size_t count)
{
	return vbs_cfg_store_bool(item, page, count, &to_vbs_cfg(item)->p.read_only);
}
CONFIGFS_ATTR(vbs_cfg_, read_only);

static ssize_t vbs_cfg_direct_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%d\n", to_vbs_cfg(item)->p.direct);
}

static ssize_t vbs_cfg_direct_store(struct config_item *item,
				    const char *page, size_t count)
{
	return vbs_cfg_store_bool(item, page, count, &to_vbs_cfg(item)->p.direct);
}
CONFIGFS_ATTR(vbs_cfg_, direct);

static ssize_t vbs_cfg_use_va_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%d\n", to_vbs_cfg(item)->p.use_va);
}

static ssize_t vbs_cfg_use_va_store(struct config_item *item,
				    const char *page, size_t count)
{
	return vbs_cfg_store_bool(item, page, count, &to_vbs_cfg(item)->p.use_va);
}
CONFIGFS_ATTR(vbs_cfg_, use_va);

static ssize_t vbs_cfg_iopoll_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%d\n", to_vbs_cfg(item)->p.iopoll);
}

static ssize_t vbs_cfg_iopoll_store(struct config_item *item,
				    const char *page, size_t count)
{
	return vbs_cfg_store_bool(item, page, count, &to_vbs_cfg(item)->p.iopoll);
}
CONFIGFS_ATTR(vbs_cfg_, iopoll);

static ssize_t vbs_cfg_backing_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%s\n", to_vbs_cfg(item)->p.backing);
}

/*
 * Opened once here to report a missing or unreadable path (or one that is
 * neither a regular file nor a block device) to the operator at once; the
 * device opens it again when created.
 */
static ssize_t vbs_cfg_backing_store(struct config_item *item,
				     const char *page, size_t count)
{
	struct vbs_cfg_item *c = to_vbs_cfg(item);
	size_t len = vbs_cfg_strip(page, count);
	struct file *file;
	char *path;
	int ret;

	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	path = kmemdup_nul(page, len, GFP_KERNEL);
	if (!path)
		return -ENOMEM;
	if (len) {
		file = filp_open(path, O_RDONLY | O_LARGEFILE, 0);
		if (IS_ERR(file)) {
			ret = PTR_ERR(file);
			goto free_path;
		}
		if (!S_ISREG(file_inode(file)->i_mode) &&
		    !S_ISBLK(file_inode(file)->i_mode))
			ret = -EINVAL;
		else
			ret = 0;
		fput(file);
		if (ret)
			goto free_path;
	}

	mutex_lock(&vbs_cfg_lock);
	if (c->live) {
		ret = -EBUSY;
	} else {
		strscpy(c->p.backing, path, sizeof(c->p.backing));
		ret = count;
	}
	mutex_unlock(&vbs_cfg_lock);
free_path:
	kfree(path);
	return ret;
}
CONFIGFS_ATTR(vbs_cfg_, backing);

static ssize_t vbs_cfg_size_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%llu\n", to_vbs_cfg(item)->p.size);
}

static ssize_t vbs_cfg_size_store(struct config_item *item, const char *page,
				  size_t count)
{
	struct vbs_cfg_item *c = to_vbs_cfg(item);
	u64 val;
	int ret;

	ret = kstrtou64(page, 0, &val);
	if (ret)
		return ret;
	if (val < SECTOR_SIZE || val % SECTOR_SIZE)
		return -EINVAL;
	mutex_lock(&vbs_cfg_lock);
	if (c->live) {
		ret = -EBUSY;
	} else {
		c->p.size = val;
		ret = count;
	}
	mutex_unlock(&vbs_cfg_lock);
	return ret;
}
CONFIGFS_ATTR(vbs_cfg_, size);

static ssize_t vbs_cfg_serial_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%s\n", to_vbs_cfg(item)->p.serial);
}

static ssize_t vbs_cfg_serial_store(struct config_item *item,
				    const char *page, size_t count)
{
	struct vbs_cfg_item *c = to_vbs_cfg(item);
	size_t i, len = vbs_cfg_strip(page, count);
	int ret;

	if (len > VBS_SERIAL_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!isprint(page[i]))
			return -EINVAL;
	mutex_lock(&vbs_cfg_lock);
	if (c->live) {
		ret = -EBUSY;
	} else {
		memset(c->p.serial, 0, sizeof(c->p.serial));
		memcpy(c->p.serial, page, len);
		ret = count;
	}
	mutex_unlock(&vbs_cfg_lock);
	return ret;
}
CONFIGFS_ATTR(vbs_cfg_, serial);

static ssize_t vbs_cfg_live_show(struct config_item *item, char *page)
{
	bool live;

	mutex_lock(&vbs_cfg_lock);
	live = to_vbs_cfg(item)->live;
	mutex_unlock(&vbs_cfg_lock);
	return sysfs_emit(page, "%d\n", live);
}
CONFIGFS_ATTR_RO(vbs_cfg_, live);

static struct configfs_attribute *vbs_cfg_attrs[] = {
	&vbs_cfg_attr_backing,
	&vbs_cfg_attr_size,
	&vbs_cfg_attr_read_only,
	&vbs_cfg_attr_direct,
	&vbs_cfg_attr_num_queues,
	&vbs_cfg_attr_num_workers,
	&vbs_cfg_attr_queue_size,
	&vbs_cfg_attr_block_size,
	&vbs_cfg_attr_serial,
	&vbs_cfg_attr_poll_idle_us,
	&vbs_cfg_attr_iopoll,
	&vbs_cfg_attr_use_va,
	&vbs_cfg_attr_live,
	NULL,
};

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
