/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The only home of uapi shims for the vhost-vdpa test driver.
 *
 * The driver is built on a Debian bookworm host whose linux-libc-dev ships
 * 6.1 uapi headers, and runs against a 6.12 kernel.  Everything newer than
 * 6.1 that the driver uses is defined here, guarded, with the kernel version
 * that introduced it.  The values are ABI and cannot change.
 */
#ifndef VDPA_DRV_COMPAT_H
#define VDPA_DRV_COMPAT_H

#include <linux/vhost.h>
#include <linux/vhost_types.h>
#include <linux/virtio_blk.h>

/* 6.0: VHOST_VDPA_SUSPEND and its backend feature (6.1 headers have both). */
#ifndef VHOST_BACKEND_F_SUSPEND
#define VHOST_BACKEND_F_SUSPEND			0x4
#endif
#ifndef VHOST_VDPA_SUSPEND
#define VHOST_VDPA_SUSPEND			_IO(VHOST_VIRTIO, 0x7D)
#endif

/* 6.3: VHOST_VDPA_RESUME. */
#ifndef VHOST_BACKEND_F_RESUME
#define VHOST_BACKEND_F_RESUME			0x5
#endif
#ifndef VHOST_VDPA_RESUME
#define VHOST_VDPA_RESUME			_IO(VHOST_VIRTIO, 0x7E)
#endif

/* 6.4: virtqueues may be enabled after DRIVER_OK. */
#ifndef VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK
#define VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK	0x6
#endif

/* 6.7: descriptor group ASID and IOTLB persisting across reset. */
#ifndef VHOST_BACKEND_F_DESC_ASID
#define VHOST_BACKEND_F_DESC_ASID		0x7
#endif
#ifndef VHOST_BACKEND_F_IOTLB_PERSIST
#define VHOST_BACKEND_F_IOTLB_PERSIST		0x8
#endif

/* 6.9: per-virtqueue size query. */
#ifndef VHOST_VDPA_GET_VRING_SIZE
#define VHOST_VDPA_GET_VRING_SIZE		_IOWR(VHOST_VIRTIO, 0x82, \
						      struct vhost_vring_state)
#endif

/* 6.3: zoned virtio-blk (only the feature bit, to name it in dumps). */
#ifndef VIRTIO_BLK_F_ZONED
#define VIRTIO_BLK_F_ZONED			17
#endif

#endif /* VDPA_DRV_COMPAT_H */
