#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# IOPOLL: a device on a null_blk with poll queues, and on a file on ext4 over
# such a null_blk, submits with IOCB_HIPRI and reaps with ->iopoll(); data
# verifies. Backings that cannot poll (buffered, or a file system without
# ->iopoll such as tmpfs) are refused at creation. A guest that polls its
# own queue (virtio_blk poll_queues) gets no interrupt on it.
# timeout=400

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
bsw_setup
bsw_nullb poll_queues=2 submit_queues=2

# refusals first: buffered, and a file on tmpfs
bsw_stage bad0 backing="$BSW_NULLB" direct=0 iopoll=1
expect_fail "iopoll on a buffered backing" vdpa dev add mgmtdev "$BSW_MGMTDEV" name bad0
truncate -s 16M /scratch/tmpfs.img
bsw_stage bad1 backing=/scratch/tmpfs.img direct=1 iopoll=1
expect_fail "iopoll on tmpfs" vdpa dev add mgmtdev "$BSW_MGMTDEV" name bad1
[ ! -e "$VDPA_SYSFS/devices/bad0" ] && [ ! -e "$VDPA_SYSFS/devices/bad1" ] ||
	fail "a refused device exists"

# the block device itself
bsw_add pollb backing="$BSW_NULLB" direct=1 iopoll=1
expect_eq iopoll "$(bsw_attr pollb iopoll)" 1
dev=$(vdpa_bind_virtio pollb) || exit
fio_verify "$dev" 32M --bs=4k --iodepth=32
fio_verify "$dev" 32M --bs=128k --iodepth=4 --rw=write
fio_verify "$dev" 8M --bs=4k --iodepth=1
expect_eq errors "$(bsw_qstat pollb 0 errors)" 0
log "pollb: $(fio_summary "$RESULTS_DIR/verify-$(basename "$dev").json")"
vdpa_unbind pollb
vdpa_dev_del pollb

# Polling end to end: virtio_blk's poll_queues=1 gives queue 1 no callback,
# io_uring IOPOLL (fio hipri) on /dev/vdX submits there and reaps by
# polling the used ring, and the device polls the backing. Every request
# of fio takes queue 1 (16M of 4k writes, then as many verify reads), and
# the device never interrupts for it.
bsw_add gpoll backing="$BSW_NULLB" direct=1 iopoll=1 num_queues=2
dev=$(virtio_blk_polled 1 vdpa_bind_virtio gpoll) || exit
fio_verify "$dev" 16M --bs=4k --iodepth=8 --hipri=1
expect_eq "gpoll q1 requests" "$(bsw_qstat gpoll 1 requests)" 8192
expect_eq "gpoll q1 interrupts" "$(bsw_qstat gpoll 1 interrupts)" 0
expect_eq "gpoll q1 errors" "$(bsw_qstat gpoll 1 errors)" 0
log "gpoll: $(fio_summary "$RESULTS_DIR/verify-$(basename "$dev").json")"
vdpa_unbind gpoll
vdpa_dev_del gpoll

# poll_over_tags NAME BACKING: more polled requests in flight than a poll
# queue of null_blk has tags (64): four jobs at QD32 on four queues, and
# no queue reports an error. The worker must not sleep for a tag only its
# own polling frees (IOCB_NOWAIT on a block device; the in-flight cap for
# ext4, whose direct I/O drops NOWAIT); before, the requests timed out
# (EIO) after 30 s.
poll_over_tags()
{
	local name=$1 backing=$2 dev q

	bsw_add "$name" backing="$backing" direct=1 iopoll=1 num_queues=4
	dev=$(vdpa_bind_virtio "$name") || exit
	fio_verify "$dev" 8M --bs=4k --iodepth=32 --numjobs=4 --offset_increment=8M
	for q in 0 1 2 3; do
		expect_eq "$name q$q errors" "$(bsw_qstat "$name" $q errors)" 0
	done
	vdpa_unbind "$name"
	vdpa_dev_del "$name"
}

poll_over_tags pollq "$BSW_NULLB"

# a file on ext4 on the polling null_blk
mkfs.ext4 -q -F "$BSW_NULLB" > /dev/null || fail "mkfs.ext4 failed"
mnt=$(mktemp -d)
mount "$BSW_NULLB" "$mnt" || fail "mount failed"
defer rmdir "$mnt"
defer umount "$mnt"
fallocate -l 128M "$mnt/poll.img" || fail "fallocate failed"
bsw_add pollf backing="$mnt/poll.img" direct=1 iopoll=1
dev=$(vdpa_bind_virtio pollf) || exit
fio_verify "$dev" 32M --bs=4k --iodepth=16
expect_eq errors "$(bsw_qstat pollf 0 errors)" 0
vdpa_unbind pollf
vdpa_dev_del pollf
poll_over_tags pollfq "$mnt/poll.img"
