/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one compat header of vdpa-blk-mgmt: vDPA netlink definitions the
 * build host's <linux/vdpa.h> may lack.
 *
 * The block config attributes (VDPA_ATTR_DEV_BLK_CFG_*) were added in
 * Linux 6.9; Debian bookworm's linux-libc-dev (6.1) does not have them and
 * has, in their place, VDPA_ATTR_VDPA_DEV_SUPPORTED_FEATURES (21), which
 * later kernels dropped.  The values below are those of Linux 6.12
 * include/uapi/linux/vdpa.h.  The Makefile compiles a probe and defines
 * VBM_HAVE_VDPA_BLK_CFG when the installed header has them.
 */
#ifndef VBM_VDPA_COMPAT_H
#define VBM_VDPA_COMPAT_H

#include <linux/vdpa.h>

#ifndef VBM_HAVE_VDPA_BLK_CFG
#define VDPA_ATTR_DEV_BLK_CFG_CAPACITY			21	/* u64 */
#define VDPA_ATTR_DEV_BLK_CFG_SIZE_MAX			22	/* u32 */
#define VDPA_ATTR_DEV_BLK_CFG_BLK_SIZE			23	/* u32 */
#define VDPA_ATTR_DEV_BLK_CFG_SEG_MAX			24	/* u32 */
#define VDPA_ATTR_DEV_BLK_CFG_NUM_QUEUES		25	/* u16 */
#define VDPA_ATTR_DEV_BLK_CFG_PHY_BLK_EXP		26	/* u8 */
#define VDPA_ATTR_DEV_BLK_CFG_ALIGN_OFFSET		27	/* u8 */
#define VDPA_ATTR_DEV_BLK_CFG_MIN_IO_SIZE		28	/* u16 */
#define VDPA_ATTR_DEV_BLK_CFG_OPT_IO_SIZE		29	/* u32 */
#define VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEC		30	/* u32 */
#define VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEG		31	/* u32 */
#define VDPA_ATTR_DEV_BLK_CFG_DISCARD_SEC_ALIGN		32	/* u32 */
#define VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEC	33	/* u32 */
#define VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEG	34	/* u32 */
#define VDPA_ATTR_DEV_BLK_READ_ONLY			35	/* u8 */
#define VDPA_ATTR_DEV_BLK_FLUSH				36	/* u8 */
#endif

/* Large enough for every attribute of 6.12 and a few more. */
#define VBM_ATTR_MAX	63

_Static_assert(VDPA_ATTR_DEV_FEATURES == 20, "unexpected vdpa uapi numbering");
_Static_assert(VDPA_ATTR_DEV_BLK_FLUSH < VBM_ATTR_MAX, "VBM_ATTR_MAX too small");

#endif
