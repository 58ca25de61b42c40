#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vdpa_blk_sw through vhost-vdpa: the userspace driver's whole suite
# (features, config, every request type with data verified, bad requests,
# reset, IOTLB unmap/remap, suspend/resume, several queues) and a short
# benchmark, run by 15-vhost-vdpa-sim.sh against our management device on
# a device with four queues served by two workers.
# timeout=600

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
bsw_setup
# 15-vhost-vdpa-sim.sh creates the device "vvblk0": stage its parameters.
bsw_stage vvblk0 num_queues=4 num_workers=2
VHOST_VDPA_MGMTDEV=$BSW_MGMTDEV "$(dirname "$0")/15-vhost-vdpa-sim.sh"
