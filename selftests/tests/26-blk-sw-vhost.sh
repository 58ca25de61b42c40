#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vdpa_blk_sw through vhost-vdpa: the userspace driver's whole suite
# (features, config, every request type with data verified, bad requests,
# reset, IOTLB unmap/remap, suspend/resume, several queues) and a short
# benchmark, run by 15-vhost-vdpa-sim.sh against our management device on
# a device with four queues served by two workers, in both of vhost-vdpa's
# memory modes: PA (pinned pages, the default) and VA (use_va=1).  The VA
# run has RLIMIT_MEMLOCK at 64 KiB, far below the driver's mappings: it can
# only pass if vhost-vdpa really maps by user address instead of pinning.
# timeout=900

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
bsw_setup
for va in 0 1; do
	# 15-vhost-vdpa-sim.sh creates the device "vvblk0": stage it.
	bsw_stage vvblk0 num_queues=4 num_workers=2 use_va=$va
	log "--- use_va=$va"
	(
		[ "$va" = 0 ] || ulimit -l 64
		VHOST_VDPA_MGMTDEV=$BSW_MGMTDEV exec "$(dirname "$0")/15-vhost-vdpa-sim.sh"
	) || fail "vhost-vdpa suite failed with use_va=$va"
	rmdir "$BSW_CFS/vvblk0" || fail "cannot remove the configfs item"
done
