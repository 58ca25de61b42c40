#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# IOPOLL: a device on a null_blk with poll queues, and on a file on ext4 over
# such a null_blk, submits with IOCB_HIPRI and reaps with ->iopoll(); data
# verifies. Backings that cannot poll (buffered, or a file system without
# ->iopoll such as tmpfs) are refused at creation. A guest that polls its
# own queue (virtio_blk poll_queues) gets no interrupt on it. A device
# offers no request larger than its block device takes in one polled bio,
# and one the block layer fails with -EAGAIN anyway is issued again,
# blocking, and verifies (the reissue storm). Freezing the file system
# under a device's backing file (fsfreeze) while the guest writes
# completes, polled or not, the device keeps serving reads while the
# writes wait for the thaw, and every write is there after it.
# timeout=900

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
expect_eq errors "$(bsw_stat pollb errors)" 0
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

# Requests a polled bio fits in, and the reissue storm, on a second
# null_blk. The block layer cannot split a REQ_NOWAIT bio: a larger polled
# read or write fails with -EAGAIN from inside submit_bio(), while
# blkdev_write_iter() or blkdev_read_iter() still runs, and is issued again
# from the workqueue, blocking.
# - Created while the null_blk takes at most 4 KiB per request
#   (max_sectors_kb 4), a device offers seg_max 1 (one segment of size_max,
#   4 KiB), so the guest sends nothing larger: no reissue, data verifies.
# - Created with the null_blk's default limits, then the limit lowered to
#   4 KiB: each of the 2048 reads and writes of 64 KiB below is reissued,
#   and the data verifies. Before 2c5697f the work item could run while the
#   issuing call went on re-expanding the iterator it used, and went past
#   the request's bio_vecs (an oops in copy_page_from_iter_atomic() in CI).
_storm_rmdir()
{
	echo 0 > "$1/power"
	rmdir "$1"
}

storm=/sys/kernel/config/nullb/storm
mkdir "$storm" || fail "cannot create the null_blk configfs device"
for kv in size=64 memory_backed=1 queue_mode=2 submit_queues=2 poll_queues=2; do
	echo "${kv#*=}" > "$storm/${kv%%=*}" || fail "null_blk storm: cannot set $kv"
done
echo 1 > "$storm/power" || fail "null_blk storm: cannot power it on"
defer _storm_rmdir "$storm"
# named after its configfs directory (Linux 6.12), else nullbINDEX
_storm_dev()
{
	local d

	for d in /dev/storm "/dev/nullb$(cat "$storm/index")"; do
		[ -b "$d" ] && echo "$d" && return 0
	done
	return 1
}
wait_for 5 _storm_dev > /dev/null || fail "the null_blk storm device did not appear"
storm_dev=$(_storm_dev)
storm_q=/sys/block/$(basename "$storm_dev")/queue
storm_kb=$(cat "$storm_q/max_sectors_kb")
[ "$storm_kb" -ge 64 ] || fail "$storm_dev takes only $storm_kb KiB per request"
# allocate every page through the interrupt queues (see bsw_nullb)
dd if=/dev/zero of="$storm_dev" bs=1M oflag=direct status=none count=64 ||
	fail "cannot prefill $storm_dev"

echo 4 > "$storm_q/max_sectors_kb" || fail "cannot set $storm_dev max_sectors_kb"
bsw_add fit backing="$storm_dev" direct=1 iopoll=1 num_queues=4
dev=$(vdpa_bind_virtio fit) || exit
expect_eq "fit: guest max_segments" "$(cat "/sys/block/$(basename "$dev")/queue/max_segments")" 1
fio_verify "$dev" 16M --bs=64k --iodepth=16 --numjobs=4 --offset_increment=16M
expect_eq "fit errors" "$(bsw_stat fit errors)" 0
expect_eq "fit reissues" "$(bsw_stat fit reissues)" 0
log "fit: $(fio_summary "$RESULTS_DIR/verify-$(basename "$dev").json")"
vdpa_unbind fit
vdpa_dev_del fit

echo "$storm_kb" > "$storm_q/max_sectors_kb" || fail "cannot reset $storm_dev max_sectors_kb"
bsw_add storm backing="$storm_dev" direct=1 iopoll=1 num_queues=4
echo 4 > "$storm_q/max_sectors_kb" || fail "cannot set $storm_dev max_sectors_kb"
dev=$(vdpa_bind_virtio storm) || exit
segs=$(cat "/sys/block/$(basename "$dev")/queue/max_segments")
[ "$segs" -ge 16 ] || fail "storm: guest max_segments $segs, too few for 64 KiB requests"
fio_verify "$dev" 16M --bs=64k --iodepth=16 --numjobs=4 --offset_increment=16M
expect_eq "storm errors" "$(bsw_stat storm errors)" 0
reissues=$(bsw_stat storm reissues)
[ "$reissues" -ge 2048 ] ||
	fail "storm: $reissues reissues, expected at least 2048 (every 64 KiB read and write)"
log "storm: guest max_segments $segs, $reissues reissues; $(fio_summary "$RESULTS_DIR/verify-$(basename "$dev").json")"
vdpa_unbind storm
vdpa_dev_del storm

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
expect_eq errors "$(bsw_stat pollf errors)" 0
vdpa_unbind pollf
vdpa_dev_del pollf
poll_over_tags pollfq "$mnt/poll.img"

# --- fsfreeze under guest writes ---------------------------------------------
# Each write to a file holds the file system's freeze protection
# (sb_start_write) until it completes. A worker that slept taking it for
# the next guest write while a freeze is pending would serve no queue (no
# read, no completion) until the thaw; and a polled write, which completes
# only when the worker polls it, would keep the freeze from ever finishing.
# (Linux 6.12's iomap, ext4 and xfs, does not poll writes: it clears
# IOCB_HIPRI for them, so there the freeze finishes and the worker is stuck
# until the thaw.) Every wait below is bounded: a freeze that does not
# finish in 60 s fails the test (blocked tasks dumped to dmesg; the file
# system then cannot be unmounted and the test ends at its timeout).

_thaw()
{
	fsfreeze -u "$1" 2> /dev/null
	return 0
}

_gone()
{
	! kill -0 "$1" 2> /dev/null
}

# _written NAME BYTES: queue 0 of NAME wrote at least BYTES
_written()
{
	[ "$(bsw_stat "$1" write_bytes)" -ge "$2" ]
}

# _writes_waiting BLK: the guest has writes in flight on the disk BLK
_writes_waiting()
{
	[ "$(awk '{ print $2 }' "$1/inflight")" -gt 0 ]
}

# freeze_under_io NAME MNT IOPOLL: fio random writes with verification on a
# device backed by a file on MNT; freeze MNT with guest writes in flight
# (bounded); while frozen, the guest's writes wait, none completes, and a
# read still completes; thaw; fio verifies everything; the device goes away.
freeze_under_io()
{
	local name=$1 mnt=$2 iopoll=$3 dev blk fio_pid pid w0 w1 infl

	fallocate -l 64M "$mnt/$name.img" || fail "fallocate failed"
	bsw_add "$name" backing="$mnt/$name.img" direct=1 iopoll="$iopoll"
	dev=$(vdpa_bind_virtio "$name") || exit
	blk=/sys/block/$(basename "$dev")
	# at most 500 writes a second (2 MiB/s): 12 s of writes, of which the
	# freeze takes place after the first MiB. With 8 MiB a loaded host's
	# freeze outlasted the 3.5 s left, and no write was then in flight.
	fio_verify "$dev" 24M --bs=4k --iodepth=32 --rate_iops=500 &
	fio_pid=$!
	wait_for 60 _written "$name" $((1 << 20)) ||
		fail "$name: fio did not write 1 MiB in 60 s"

	fsfreeze -f "$mnt" &
	pid=$!
	if ! wait_for 60 _gone "$pid"; then
		echo w > /proc/sysrq-trigger
		fail "$name: fsfreeze -f $mnt did not complete in 60 s with guest writes in flight (iopoll=$iopoll)"
	fi
	wait "$pid" || fail "$name: fsfreeze -f $mnt failed"
	defer _thaw "$mnt"
	_gone "$fio_pid" && fail "$name: fio ended before the freeze (make it write longer)"
	# new guest writes arrived and wait for the thaw
	wait_for 10 _writes_waiting "$blk" ||
		fail "$name: no guest write in flight while $mnt is frozen"
	infl=$(cat "$blk/inflight")
	# the worker is not blocked: a read is served
	dd if="$dev" of=/dev/null bs=4k count=1 skip=$((RANDOM % 1024)) iflag=direct status=none &
	pid=$!
	wait_for 20 _gone "$pid" ||
		fail "$name: a read did not complete in 20 s while $mnt is frozen (the worker waits for the thaw)"
	wait "$pid" || fail "$name: read while frozen failed"
	w0=$(bsw_stat "$name" write_bytes)
	sleep 1
	w1=$(bsw_stat "$name" write_bytes)
	expect_eq "$name: bytes written while $mnt is frozen" "$((w1 - w0))" 0
	log "$name: $mnt frozen; guest reads/writes in flight: $infl; a read was served"

	fsfreeze -u "$mnt" || fail "fsfreeze -u $mnt failed"
	wait "$fio_pid" || fail "$name: fio failed after the thaw"
	expect_eq "$name errors" "$(bsw_stat "$name" errors)" 0
	log "$name: $(fio_summary "$RESULTS_DIR/verify-$(basename "$dev").json")"
	vdpa_unbind "$name"
	vdpa_dev_del "$name"
	rm -f "$mnt/$name.img"
}

freeze_under_io frzpe "$mnt" 1
freeze_under_io frzne "$mnt" 0
umount "$mnt" || fail "umount $mnt failed"
mkfs.xfs -q -f "$BSW_NULLB" > /dev/null || fail "mkfs.xfs failed"
mount "$BSW_NULLB" "$mnt" || fail "mount (xfs) failed"
freeze_under_io frzpx "$mnt" 1
