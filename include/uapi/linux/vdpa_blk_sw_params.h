/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The parameters of a vdpa_blk_sw device, one line each: define
 * VBS_PARAM(name, type, min, max, default, flags), then include this file
 * (which undefines it), as kvm-x86-ops.h is used.  Each parameter is an
 * attribute of the device's configfs item
 * (/sys/kernel/config/vdpa_blk_sw/NAME/) and of its sysfs directory
 * (/sys/bus/vdpa/devices/NAME/blk_sw/), read and written as text.
 *
 *   name     the attribute, the field of the module's struct vbs_params
 *            (a u32, u64, bool, or char array of max + 1 bytes), and
 *            vdpa-blk-mgmt's key; its option is the name with '-' for '_'
 *            (Documentation/naming.rst)
 *   type     VBS_PT_* without its prefix (vdpa_blk_sw.h)
 *   min, max the range of a number; for PATH and TEXT, max is the longest
 *            string in bytes
 *   default  the module's; some have a default_* module parameter.
 *            num_queues' 0 is min(online CPUs, VBS_MAX_QUEUES), as QEMU
 *            gives virtio-blk-pci, taken when a configfs item is made
 *            or a device created without one; num_workers' 0 is the
 *            shared per-CPU pool (one worker per queue with use_va),
 *            taken when the device is created; queue_size's 0 is a
 *            ring size for the driver bound at the time (see
 *            vbs_config_queue_size())
 *   flags    VBS_PF_* (vdpa_blk_sw.h)
 *
 * A number out of range is refused with EINVAL, as is a string too long,
 * except a path: ENAMETOOLONG.  A configfs item refuses writes with EBUSY
 * while a device of its name exists.  vdpa-blk-mgmt stages them in this
 * order.  Document a new one in Documentation/vdpa_blk_sw.rst,
 * Documentation/ABI/testing/sysfs-bus-vdpa-blk-sw and
 * tools/vdpa-blk-mgmt/vdpa-blk-mgmt.8.rst (make -C tools/vdpa-blk-mgmt
 * check fails until it is).
 */
VBS_PARAM(backing,	 PATH, 0, VBS_BACKING_MAX, "", 0)
VBS_PARAM(size,		 U64, 512, ~0ULL, VBS_SIZE_DEFAULT, VBS_PF_SECTORS | VBS_PF_NOSHOW)
VBS_PARAM(read_only,	 BOOL, 0, 1, 0, 0)
VBS_PARAM(direct,	 BOOL, 0, 1, 1, 0)
VBS_PARAM(num_queues,	 U32, 1, VBS_MAX_QUEUES, 0, 0)
VBS_PARAM(num_workers,	 U32, 0, VBS_MAX_QUEUES, 0, 0)
VBS_PARAM(queue_size,	 U32, VBS_QUEUE_SIZE_MIN, VBS_QUEUE_SIZE_MAX, 0, VBS_PF_POW2 | VBS_PF_AUTO)
VBS_PARAM(block_size,	 U32, 512, 4096, 512, VBS_PF_POW2)
VBS_PARAM(serial,	 TEXT, 0, VBS_SERIAL_MAX, "", 0)
VBS_PARAM(poll_idle_us,	 U32, 0, 1000000, 50, VBS_PF_LIVE)
VBS_PARAM(poll_adaptive, BOOL, 0, 1, 1, VBS_PF_LIVE | VBS_PF_NOSTAGE)
VBS_PARAM(iopoll,	 BOOL, 0, 1, 0, 0)
VBS_PARAM(use_va,	 BOOL, 0, 1, 0, 0)
VBS_PARAM(shared,	 BOOL, 0, 1, 0, 0)

#undef VBS_PARAM
