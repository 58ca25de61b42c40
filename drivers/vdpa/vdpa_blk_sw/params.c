// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: the parameters of a device, from the table in
 * include/uapi/linux/vdpa_blk_sw_params.h: their defaults and module
 * parameters, how configfs and sysfs read and write them, and the check of
 * a whole set before a device is created.
 */

#include <linux/cpumask.h>
#include <linux/ctype.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "vdpa_blk_sw.h"

/*
 * checkpatch wants each named argument of a macro used: the columns a
 * consumer of the table does not need are passed on to its "...".
 */
#define VBS_PARAM(_name, _type, _min, _max, _def, _flags)		\
	VBS_PARAM_INFO(_name, _type, _min, _max, _flags, _def)
#define VBS_PARAM_INFO(_name, _type, _min, _max, _flags, ...)		\
	[VBS_P_##_name] = {						\
		.name = #_name,						\
		.type = VBS_PT_##_type,					\
		.flags = _flags,					\
		.offset = offsetof(struct vbs_params, _name),		\
		.min = _min,						\
		.max = _max,						\
	},
const struct vbs_param_info vbs_param_table[VBS_NR_PARAMS] = {
#include <uapi/linux/vdpa_blk_sw_params.h>
};

static_assert(VBS_BACKING_MAX + 1 == PATH_MAX);
static_assert(VBS_SERIAL_MAX == VIRTIO_BLK_ID_BYTES);

#define VBS_PARAM(_name, _type, _min, _max, _def, ...)		\
	VBS_PARAM_DEFAULT(_name, _def, _type, _min, _max)
#define VBS_PARAM_DEFAULT(_name, _def, ...)	._name = _def,
static struct vbs_params vbs_defaults = {
#include <uapi/linux/vdpa_blk_sw_params.h>
};

static unsigned int default_size_mb = VBS_SIZE_DEFAULT >> 20;
module_param(default_size_mb, uint, 0444);
MODULE_PARM_DESC(default_size_mb,
		 "Size of the embedded (memory) backing in MiB. Default: 128");

/* default_NAME: the default of parameter NAME for new devices */
#define VBS_DEFAULT_PARAM(_name, _type, _desc)				\
	module_param_named(default_##_name, vbs_defaults._name, _type, 0444); \
	MODULE_PARM_DESC(default_##_name, _desc)

VBS_DEFAULT_PARAM(num_queues, uint,
		  "Request virtqueues per device (1-16), 0 for one per online CPU up to 16. Default: 0");
VBS_DEFAULT_PARAM(queue_size, uint,
		  "Maximum virtqueue size, a power of two (2-1024), 0 for 64 to virtio_vdpa and 1024 to other drivers. Default: 0");
VBS_DEFAULT_PARAM(block_size, uint, "Logical block size, a power of two (512-4096). Default: 512");
VBS_DEFAULT_PARAM(poll_idle_us, uint,
		  "Busy-poll window in microseconds, 0 for notifications only. Default: 50");
VBS_DEFAULT_PARAM(poll_adaptive, bool,
		  "Size the busy-poll window within default_poll_idle_us from observed idle times. Default: Y");
VBS_DEFAULT_PARAM(use_va, bool,
		  "vhost-vdpa VA mode (guest memory by user address, shared file-backed memory only) instead of PA mode (pinned pages). Default: N");
VBS_DEFAULT_PARAM(direct, bool, "Open backing files with O_DIRECT. Default: Y");

/**
 * vbs_params_init() - defaults from the table and the module parameters
 * @p: parameters to fill
 */
void vbs_params_init(struct vbs_params *p)
{
	*p = vbs_defaults;
	p->size = (u64)default_size_mb << 20;
	if (!p->num_queues)
		p->num_queues = min_t(u32, num_online_cpus(), VBS_MAX_QUEUES);
}

static bool vbs_param_is_str(const struct vbs_param_info *pi)
{
	return pi->type == VBS_PT_PATH || pi->type == VBS_PT_TEXT;
}

static u64 vbs_param_get(const struct vbs_param_info *pi,
			 const struct vbs_params *p)
{
	const void *f = (const void *)p + pi->offset;

	switch (pi->type) {
	case VBS_PT_U32:
		return READ_ONCE(*(const u32 *)f);
	case VBS_PT_U64:
		return READ_ONCE(*(const u64 *)f);
	case VBS_PT_BOOL:
		return READ_ONCE(*(const bool *)f);
	default:
		return 0;
	}
}

/* A number against its range and flags: 0 or -EINVAL. */
static int vbs_param_check(const struct vbs_param_info *pi, u64 val)
{
	if ((pi->flags & VBS_PF_AUTO) && !val)
		return 0;
	if (val < pi->min || val > pi->max)
		return -EINVAL;
	if ((pi->flags & VBS_PF_POW2) && (val & (val - 1)))
		return -EINVAL;
	if ((pi->flags & VBS_PF_SECTORS) && val % SECTOR_SIZE)
		return -EINVAL;
	return 0;
}

/**
 * vbs_params_validate() - check a device's parameters
 * @p: parameters
 *
 * Each against its line of the table, then together.
 *
 * Return: 0 or -EINVAL.
 */
int vbs_params_validate(const struct vbs_params *p)
{
	const struct vbs_param_info *pi;

	for (pi = vbs_param_table; pi < vbs_param_table + VBS_NR_PARAMS; pi++) {
		if (vbs_param_is_str(pi)) {
			if (strnlen((const char *)p + pi->offset, pi->max + 1) >
			    pi->max)
				return -EINVAL;
		} else if (vbs_param_check(pi, vbs_param_get(pi, p))) {
			return -EINVAL;
		}
	}
	if (p->num_workers > p->num_queues)
		return -EINVAL;
	if (!p->backing[0] &&
	    (p->size < p->block_size || p->size % p->block_size))
		return -EINVAL;
	if (p->iopoll && (!p->backing[0] || !p->direct))
		return -EINVAL;
	return 0;
}

/* Strip one trailing newline, as echo adds it. */
static size_t vbs_strip(const char *buf, size_t count)
{
	if (count && buf[count - 1] == '\n')
		count--;
	return count;
}

/*
 * Opened once here to report a missing or unreadable path (or one that is
 * neither a regular file nor a block device) to the operator at once; the
 * device opens it again when created.
 */
static int vbs_param_check_path(const char *path)
{
	struct file *file;
	umode_t mode;

	if (!path[0])
		return 0;
	file = filp_open(path, O_RDONLY | O_LARGEFILE, 0);
	if (IS_ERR(file))
		return PTR_ERR(file);
	mode = file_inode(file)->i_mode;
	fput(file);
	return S_ISREG(mode) || S_ISBLK(mode) ? 0 : -EINVAL;
}

static int vbs_param_parse_str(const struct vbs_param_info *pi,
			       const char *buf, size_t count, char **str)
{
	size_t i, len = vbs_strip(buf, count);
	int ret;

	if (len > pi->max)
		return pi->type == VBS_PT_PATH ? -ENAMETOOLONG : -EINVAL;
	if (pi->type == VBS_PT_TEXT)
		for (i = 0; i < len; i++)
			if (!isprint(buf[i]))
				return -EINVAL;
	*str = kmemdup_nul(buf, len, GFP_KERNEL);
	if (!*str)
		return -ENOMEM;
	if (pi->type == VBS_PT_PATH) {
		ret = vbs_param_check_path(*str);
		if (ret) {
			kfree(*str);
			*str = NULL;
			return ret;
		}
	}
	return 0;
}

/**
 * vbs_param_parse() - a parameter's value from what was written to it
 * @id: the parameter
 * @buf: the text written, NUL-terminated
 * @count: its length
 * @val: set to the value; free @val->str with kfree() once used
 *
 * Return: 0, or -errno for a value the parameter does not take: -EINVAL
 * out of range, or what kstrto*() and filp_open() return.
 */
int vbs_param_parse(enum vbs_param_id id, const char *buf, size_t count,
		    struct vbs_param_val *val)
{
	const struct vbs_param_info *pi = &vbs_param_table[id];
	u32 u;
	bool b;
	int ret;

	memset(val, 0, sizeof(*val));
	switch (pi->type) {
	case VBS_PT_U32:
		ret = kstrtou32(buf, 0, &u);
		val->num = u;
		break;
	case VBS_PT_U64:
		ret = kstrtou64(buf, 0, &val->num);
		break;
	case VBS_PT_BOOL:
		ret = kstrtobool(buf, &b);
		val->num = b;
		break;
	default:
		return vbs_param_parse_str(pi, buf, count, &val->str);
	}
	return ret ?: vbs_param_check(pi, val->num);
}

/**
 * vbs_param_set() - store a parsed value
 * @id: the parameter
 * @p: the parameters to change
 * @val: from vbs_param_parse()
 *
 * A number is written at once (WRITE_ONCE()), for the live ones.
 */
void vbs_param_set(enum vbs_param_id id, struct vbs_params *p,
		   const struct vbs_param_val *val)
{
	const struct vbs_param_info *pi = &vbs_param_table[id];
	void *f = (void *)p + pi->offset;

	switch (pi->type) {
	case VBS_PT_U32:
		WRITE_ONCE(*(u32 *)f, val->num);
		break;
	case VBS_PT_U64:
		WRITE_ONCE(*(u64 *)f, val->num);
		break;
	case VBS_PT_BOOL:
		WRITE_ONCE(*(bool *)f, val->num);
		break;
	default:
		strscpy_pad(f, val->str, pi->max + 1);
	}
}

/**
 * vbs_param_show() - a parameter as configfs and sysfs show it
 * @id: the parameter
 * @p: the parameters
 * @buf: a sysfs page
 *
 * Return: the length of the text, ending in a newline.
 */
ssize_t vbs_param_show(enum vbs_param_id id, const struct vbs_params *p,
		       char *buf)
{
	const struct vbs_param_info *pi = &vbs_param_table[id];

	switch (pi->type) {
	case VBS_PT_U32:
		return sysfs_emit(buf, "%u\n", (u32)vbs_param_get(pi, p));
	case VBS_PT_U64:
		return sysfs_emit(buf, "%llu\n", vbs_param_get(pi, p));
	case VBS_PT_BOOL:
		return sysfs_emit(buf, "%d\n", (int)vbs_param_get(pi, p));
	default:
		return sysfs_emit(buf, "%s\n", (const char *)p + pi->offset);
	}
}
