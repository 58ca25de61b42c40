#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vdpa_blk_sw through vhost-vdpa: the userspace driver's whole suite
# (features, config, every request type with data verified, bad requests,
# reset, IOTLB unmap/remap, suspend/resume, several queues) and a short
# benchmark, run by 15-vhost-vdpa-sim.sh against our management device.
# timeout=600

VHOST_VDPA_MGMTDEV=vdpasim_blk-sw exec "$(dirname "$0")/15-vhost-vdpa-sim.sh"
