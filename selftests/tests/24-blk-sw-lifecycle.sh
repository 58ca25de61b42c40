#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lifecycle: unbind and rebind keep the data; a queue holds request slots
# only from DRIVER_OK to the reset: a first batch of 16, grown while the
# driver keeps more in flight, never past its ring; growth that fails
# (debugfs's fail_slot_grow) leaves the queue working with its 16 and
# growing again once allowed; "vdpa dev del" while fio runs
# ends fio with errors and hangs nothing; 100 add/del cycles and 10
# add/bind/verify/del cycles leave nothing behind; rmmod with devices
# present (one bound) removes them all, as documented.
# timeout=600

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
bsw_setup

# --- unbind / rebind --------------------------------------------------------
vdpa_dev_add "$BSW_MGMTDEV" lc
dev=$(vdpa_bind_virtio lc) || exit
fio_run seed --name=seed --filename="$dev" --size=16M --rw=write --bs=64k \
	--ioengine=io_uring --direct=1 --verify=crc32c --do_verify=0
for i in 1 2 3; do
	vdpa_unbind lc
	dev=$(vdpa_bind_virtio lc) || exit
	fio_run "reread$i" --name=seed --filename="$dev" --size=16M --rw=write \
		--bs=64k --ioengine=io_uring --direct=1 --verify=crc32c \
		--verify_only=1 --verify_fatal=1
done

# --- request slots: 16 from DRIVER_OK, grown with use, freed at reset ------
slots()
{
	local f out=

	for f in "$VDPA_SYSFS/devices/$1"/blk_sw_q*/slots; do
		out+="$(cat "$f") "
	done
	echo "${out% }"
}
# virtio_blk uses a queue per CPU, at most num_queues; a ring of queue_size.
# A null_blk that completes each request after 2 ms keeps fio's 64 in
# flight on the device, where a memory backing would complete them as
# fast as the worker fetches them.
first=16
q1=0
[ "$(nproc)" -lt 2 ] || q1=$first
bsw_nullb irqmode=2 completion_nsec=2000000 hw_queue_depth=256
bsw_add sl queue_size=256 num_queues=2 backing="$BSW_NULLB" direct=1
expect_eq "slots of an idle device" "$(slots sl)" "0 0"
sldev=$(vdpa_bind_virtio sl) || exit
expect_eq "slots of an idle bound device" "$(slots sl)" "$first $q1"
fio_verify "$sldev" 2M --iodepth=8
expect_eq "slots after QD8 (no growth)" "$(slots sl)" "$first $q1"

# --- growth that fails: the queue carries on with its slots ---------------
# fail_slot_grow makes each growth fail as GFP_NOWAIT would, until it is
# back to 0: QD64 must then complete and verify with 16 slots (a queue that
# waits for a growth that never comes hangs fio: caught by the deadline).
# Left stalled, the queue would not grow in the QD64 run that follows.
pid_gone()
{
	! kill -0 "$1" 2> /dev/null
}
fio_verify_within()
{
	local secs=$1 pid

	shift
	fio_verify "$@" &
	pid=$!
	wait_for "$secs" pid_gone "$pid" ||
		fail "fio $* did not end in $secs s: requests hang"
	wait "$pid" || exit
}
debugfs=/sys/kernel/debug
if ! grep -q " $debugfs debugfs " /proc/mounts; then
	mount -t debugfs none "$debugfs" && defer umount "$debugfs"
fi
knob=$debugfs/vdpa_blk_sw/fail_slot_grow
if ! grep -q " $debugfs debugfs " /proc/mounts; then
	log "SKIP growth failure: no debugfs (the kernel has none, or refuses it)"
	knob=
else
	[ -f "$knob" ] || fail "no $knob with debugfs mounted"
	expect_eq "fail_slot_grow after load" "$(cat "$knob")" 0
	defer eval "[ ! -f $knob ] || echo 0 > $knob"
	echo 1000000 > "$knob" || fail "cannot write $knob"
	fio_verify_within 180 "$sldev" 16M --iodepth=64 --cpus_allowed=0
	left=$(cat "$knob")
	log "growth attempts failed by fail_slot_grow: $((1000000 - left))"
	[ "$left" -lt 1000000 ] || fail "QD64 tried no growth (fail_slot_grow $left)"
	expect_eq "slots after QD64 with every growth failing" "$(slots sl)" \
		"$first $q1"
	echo 0 > "$knob" || fail "cannot write $knob"
fi
# QD64 from one CPU: one queue (blk-mq maps each CPU to one); it grows by
# 16 while all its slots are busy, so to 64 at most, never past the ring.
fio_verify_within 180 "$sldev" 16M --iodepth=64 --cpus_allowed=0
grown=$(slots sl)
log "slots after QD64 on CPU 0: $grown"
max=0
for s in $grown; do
	[ "$s" -le 256 ] || fail "a queue grew past its ring of 256: $grown"
	[ "$s" -le "$max" ] || max=$s
done
[ "$max" -gt "$first" ] && [ "$max" -le 64 ] ||
	fail "slots after QD64: $grown, want one queue in ($first, 64]"
[ $((max % 16)) = 0 ] || fail "slots grow by 16: $grown"
vdpa_unbind sl
expect_eq "slots after the reset" "$(slots sl)" "0 0"
sldev=$(vdpa_bind_virtio sl) || exit
expect_eq "slots after a rebind" "$(slots sl)" "$first $q1"
vdpa_dev_del sl
# a configfs item keeps the module in use: rmmod below needs it gone
rmdir "$BSW_CFS/sl" || fail "cannot remove the configfs item of sl"

# --- delete while fio runs ------------------------------------------------
# Deleted once the device has served some of fio's requests: fio takes
# seconds to start under TCG (over 3 s with the debug kernel, where a fixed
# "sleep 3" deleted lc before fio had opened it). allow_file_create=0: fio
# must never make a regular file at $dev, which it does when it opens the
# path after the node went (at its start, or at each pass of a time_based
# job); it would run on in that file without an error, and devtmpfs would
# make no node for the next disk of that name.
before=$(bsw_stat lc requests)
t0=$SECONDS
fio --name=busy --filename="$dev" --allow_file_create=0 --rw=randrw --bs=4k \
	--iodepth=32 --ioengine=io_uring --direct=1 --size=64M --time_based \
	--runtime=60 --output=busy.out > /dev/null 2>&1 &
fio_pid=$!
wait_for 60 bsw_stat_is lc requests -ge $((before + 64)) ||
	fail "fio served no I/O on lc: did it start?"
log "fio's I/O on lc began within $((SECONDS - t0)) s of its start"
kill -0 "$fio_pid" 2> /dev/null || fail "fio ended before the delete"
vdpa dev del lc || fail "vdpa dev del during I/O failed"
wait_for 10 test ! -e "$VDPA_SYSFS/devices/lc" || fail "lc still present"
fio_gone()
{
	! kill -0 "$fio_pid" 2> /dev/null
}
wait_for 60 fio_gone || fail "fio hangs after the device was deleted"
rc=0
wait "$fio_pid" || rc=$?
[ "$rc" != 0 ] || fail "fio exited 0: the delete under its I/O reached it as no error"
log "fio saw the device go: status $rc"
[ ! -e "$dev" ] || fail "$dev is still there after the delete: $(ls -l "$dev")"

# --- add/del cycles ---------------------------------------------------------
for i in $(seq 100); do
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name cyc || fail "add #$i failed"
	vdpa dev del cyc || fail "del #$i failed"
done
for i in $(seq 10); do
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name cyc || fail "add #$i failed"
	dev=$(vdpa_bind_virtio cyc) || exit
	fio_verify "$dev" 2M --iodepth=8
	vdpa dev del cyc || fail "del #$i failed"
done
[ -z "$(ls "$VDPA_SYSFS/devices")" ] || fail "devices left: $(ls "$VDPA_SYSFS/devices")"

# --- rmmod with devices present ----------------------------------------------
vdpa dev add mgmtdev "$BSW_MGMTDEV" name rm0 || fail "add rm0 failed"
vdpa dev add mgmtdev "$BSW_MGMTDEV" name rm1 || fail "add rm1 failed"
dev=$(vdpa_bind_virtio rm0) || exit
fio_verify "$dev" 4M
modprobe -r vdpa_blk_sw || fail "rmmod with devices present failed"
[ ! -e "$VDPA_SYSFS/devices/rm0" ] && [ ! -e "$VDPA_SYSFS/devices/rm1" ] ||
	fail "devices survived rmmod"
[ ! -b "$dev" ] || fail "$dev survived rmmod"
grep -q '^vdpa_blk_sw ' /proc/modules && fail "module still loaded"
[ -z "$knob" ] || [ ! -e "${knob%/*}" ] || fail "${knob%/*} survived rmmod"
load_modules vdpa_blk_sw
[ -z "$knob" ] || expect_eq "fail_slot_grow after reload" "$(cat "$knob")" 0
vdpa_dev_add "$BSW_MGMTDEV" again
dev=$(vdpa_bind_virtio again) || exit
fio_verify "$dev" 4M
