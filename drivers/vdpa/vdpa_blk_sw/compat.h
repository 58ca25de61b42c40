/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vdpa-blk-sw: the only home of kernel-version shims.
 *
 * HAVE_* macros come from compile probes (scripts/conftest.sh), which test
 * signatures rather than version numbers, so .c files need no #ifdef.
 */
#ifndef _VDPA_BLK_SW_COMPAT_H
#define _VDPA_BLK_SW_COMPAT_H

#include "compat_generated.h"

#ifndef HAVE_SRCU_DOWN_READ
#error "vdpa-blk-sw needs srcu_down_read()/srcu_up_read() (Linux 6.2 or a backport)"
#endif

/*
 * vdpa_config_ops members the device cannot work without on the vhost-vdpa
 * path (1024-entry rings for QEMU, persistent IOTLB across reset).
 */
#if !defined(HAVE_VDPA_GET_VQ_SIZE) || !defined(HAVE_VDPA_COMPAT_RESET) || \
	!defined(HAVE_VDPA_RESET_MAP) || !defined(HAVE_VDPA_GET_VQ_DMA_DEV) || \
	!defined(HAVE_VDPA_BACKEND_FEATURES)
#error "vdpa-blk-sw needs the vdpa_config_ops of Linux 6.9 to 6.12 (see conftest.sh)"
#endif

#endif /* _VDPA_BLK_SW_COMPAT_H */
