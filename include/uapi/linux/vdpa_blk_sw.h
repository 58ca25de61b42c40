/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vdpa_blk_sw: what the module and vdpa-blk-mgmt share: the names users
 * see, and what they need to know of a device's parameters.  The
 * parameters themselves are the lines of vdpa_blk_sw_params.h.
 */
#ifndef _UAPI_LINUX_VDPA_BLK_SW_H
#define _UAPI_LINUX_VDPA_BLK_SW_H

/* Names users see (Documentation/naming.rst) */
#define VBS_DRV_NAME		"vdpa_blk_sw"	/* the module, the configfs root */
#define VBS_MGMTDEV_NAME	"vdpasim_blk-sw"
#define VBS_SYSFS_DIR		"blk_sw"	/* under /sys/bus/vdpa/devices/NAME/ */
#define VBS_SYSFS_QUEUE_DIR	"blk_sw_q"	/* then the queue's index */

/* Bounds and defaults the module also needs as constants. */
#define VBS_MAX_QUEUES		16
#define VBS_QUEUE_SIZE_MIN	2
#define VBS_QUEUE_SIZE_MAX	1024
#define VBS_SIZE_DEFAULT	(128ULL << 20)
#define VBS_BACKING_MAX		4095	/* PATH_MAX - 1 */
#define VBS_SERIAL_MAX		20	/* VIRTIO_BLK_ID_BYTES */

enum vbs_param_type {
	VBS_PT_U32,	/* decimal, 0x hexadecimal or 0 octal */
	VBS_PT_U64,	/* the same */
	VBS_PT_BOOL,	/* as kstrtobool() takes it (1, y, on...); reads 1 or 0 */
	VBS_PT_PATH,	/* an existing regular file or block device */
	VBS_PT_TEXT,	/* printable characters */
};

/* Flags.  Only numbers and booleans can be VBS_PF_LIVE. */
#define VBS_PF_POW2	0x01	/* a power of two */
#define VBS_PF_SECTORS	0x02	/* a multiple of 512 */
#define VBS_PF_LIVE	0x04	/* writable in sysfs while the device exists */
#define VBS_PF_NOSTAGE	0x08	/* not in configfs: set in sysfs after creation */
#define VBS_PF_NOSHOW	0x10	/* not in sysfs */
#define VBS_PF_AUTO	0x20	/* a number: 0 too, the device's choice */

enum vbs_param_id {
#define VBS_PARAM(name, ...) VBS_P_##name,
#include "vdpa_blk_sw_params.h"
	VBS_NR_PARAMS
};

#endif /* _UAPI_LINUX_VDPA_BLK_SW_H */
