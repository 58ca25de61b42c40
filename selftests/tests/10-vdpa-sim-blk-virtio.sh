#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Reference peer through the kernel's virtio-blk driver: vdpa_sim_blk bound
# to virtio_vdpa gives a /dev/vdX of the simulator's size, which fio writes
# and reads back with crc32c verification (sequential and random, several
# queue depths).
# timeout=300

. "$(dirname "$0")/../lib.sh"

require_root
vdpa_setup
vdpa_mgmtdev_load vdpasim_blk
vdpa_dev_add vdpasim_blk blk0

dev=$(vdpa_bind_virtio blk0) || exit
log "blk0 -> $dev"
blk=$(basename "$dev")
sectors=$(cat "/sys/block/$blk/size")
[ "$sectors" = $((128 << 11)) ] || fail "$dev has $sectors sectors, expected 128 MiB"

fio_verify "$dev" 128M --rw=write --bs=64k --iodepth=4
fio_verify "$dev" 64M --rw=randwrite --bs=4k --iodepth=16
fio_summary "$RESULTS_DIR/verify-$blk.json" >&2

# randrw with interleaved verification of what was written
fio_run randrw --name=randrw --filename="$dev" --size=64M --rw=randrw \
	--bs=4k --iodepth=16 --ioengine=io_uring --direct=1 \
	--verify=crc32c --verify_backlog=256 --verify_fatal=1 \
	--runtime=5 --time_based
fio_summary "$RESULTS_DIR/randrw.json" >&2

vdpa_unbind blk0
vdpa_dev_del blk0
