#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The configuration interface: configfs items validate what they are given
# (exact errors), the device gets exactly what was staged, a live item
# refuses changes with EBUSY, fixed sysfs attributes are read-only (0444,
# EACCES even for root), the poll window changes live, and resize grows the
# disk the driver sees after the backing grew.
# timeout=300

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
bsw_setup

# expect_errno ERRNO-TEXT VALUE FILE: writing VALUE to FILE fails with it
expect_errno()
{
	local out

	out=$( (echo "$2" > "$3") 2>&1) && fail "writing '$2' to $3 succeeded"
	grep -q "$1" <<< "$out" || fail "writing '$2' to $3: '$out', expected $1"
}

bsw_mkfs ext4 512M
img=$BSW_MNT/cfg.img
truncate -s 32M "$img" || fail "truncate failed"

bsw_stage cfg
c=$BSW_CFS/cfg
# defaults come from the module parameters: a queue per online CPU (at
# most 16), and 0 workers, which is one per queue
nq=$(nproc)
nq=$((nq < 16 ? nq : 16))
expect_eq "default num_queues" "$(bsw_cfg cfg num_queues)" "$nq"
expect_eq "default num_workers" "$(bsw_cfg cfg num_workers)" 0
# queue_size 0: 64 to virtio_vdpa, 1024 to vhost_vdpa (test 20)
expect_eq "default queue_size" "$(bsw_cfg cfg queue_size)" 0
expect_eq "default block_size" "$(bsw_cfg cfg block_size)" 512
expect_eq "default size" "$(bsw_cfg cfg size)" $((128 << 20))
expect_eq "default direct" "$(bsw_cfg cfg direct)" 1
expect_eq "default live" "$(bsw_cfg cfg live)" 0

expect_errno "Invalid argument" 0 "$c/num_queues"
expect_errno "Invalid argument" 17 "$c/num_queues"
expect_errno "Invalid argument" 1000 "$c/queue_size"
expect_errno "Invalid argument" 2048 "$c/queue_size"
expect_errno "Invalid argument" 1536 "$c/block_size"
expect_errno "Invalid argument" 256 "$c/block_size"
expect_errno "Invalid argument" 2000000 "$c/poll_idle_us"
expect_errno "Invalid argument" abc "$c/num_queues"
expect_errno "Invalid argument" 12345678901234567890123 "$c/serial"
expect_errno "Invalid argument" 1000 "$c/size"
expect_errno "No such file or directory" /nonexistent "$c/backing"
expect_errno "Invalid argument" /tmp "$c/backing"
expect_eq "num_queues unchanged" "$(bsw_cfg cfg num_queues)" "$nq"

# more workers than queues is refused when the device is created
echo 1 > "$c/num_queues" || fail "cannot set num_queues"
echo 2 > "$c/num_workers" || fail "cannot set num_workers"
expect_fail "num_workers > num_queues" vdpa dev add mgmtdev "$BSW_MGMTDEV" name cfg
[ ! -e "$VDPA_SYSFS/devices/cfg" ] || fail "device created with 2 workers for 1 queue"

for kv in backing="$img" num_queues=2 queue_size=256 block_size=4096 \
	serial=cfg-serial poll_idle_us=0 direct=0; do
	echo "${kv#*=}" > "$c/${kv%%=*}" || fail "cannot set $kv"
	expect_eq "${kv%%=*}" "$(bsw_cfg cfg "${kv%%=*}")" "${kv#*=}"
done

vdpa_dev_add "$BSW_MGMTDEV" cfg
expect_eq live "$(bsw_cfg cfg live)" 1
expect_errno "Device or resource busy" 4 "$c/num_queues"
expect_errno "Device or resource busy" "$img" "$c/backing"
# the device has exactly what was staged
expect_eq backing "$(bsw_attr cfg backing)" "$img"
expect_eq num_queues "$(bsw_attr cfg num_queues)" 2
expect_eq queue_size "$(bsw_attr cfg queue_size)" 256
expect_eq block_size "$(bsw_attr cfg block_size)" 4096
expect_eq serial "$(bsw_attr cfg serial)" cfg-serial
expect_eq poll_idle_us "$(bsw_attr cfg poll_idle_us)" 0
expect_eq direct "$(bsw_attr cfg direct)" 0
expect_eq capacity "$(bsw_attr cfg capacity)" $((32 << 11))
expect_eq num_workers "$(bsw_attr cfg num_workers)" 2
# one thread per worker, named after the device, and its affinity settable
read -r -a pids <<< "$(bsw_attr cfg worker_pids)"
expect_eq "worker threads" "${#pids[@]}" 2
expect_eq "worker 1 name" "$(cat "/proc/${pids[1]}/comm")" "vbs-cfg/1"
# and no other: blocking work runs on the module's one workqueue, whose
# rescuer is the module's only other thread
expect_eq "threads named after the device" \
	"$(cat /proc/[0-9]*/comm 2> /dev/null | grep -c 'vbs-cfg')" 2
expect_eq "the module's workqueue rescuer" \
	"$(cat /proc/[0-9]*/comm 2> /dev/null | grep -cx 'kworker/R-vdpa_blk_sw')" 1
taskset -pc 0 "${pids[1]}" > /dev/null || fail "cannot set worker 1's affinity"
expect_eq "worker 1 affinity" \
	"$(awk '/^Cpus_allowed_list/ { print $2 }' "/proc/${pids[1]}/status")" 0
grep -q 'max_vqs 2 max_vq_size 256' <<< "$(vdpa dev show cfg)" ||
	fail "vdpa dev show: $(vdpa dev show cfg)"
# fixed attributes are read-only, for root too; the poll window is live
for a in backing num_queues num_workers queue_size block_size serial direct read_only iopoll \
	use_va shared; do
	expect_eq "$a mode" "$(stat -c %a "$VDPA_SYSFS/devices/cfg/blk_sw/$a")" 444
	expect_errno "Permission denied" 1 "$VDPA_SYSFS/devices/cfg/blk_sw/$a"
done
for a in poll_idle_us poll_adaptive; do
	expect_eq "$a mode" "$(stat -c %a "$VDPA_SYSFS/devices/cfg/blk_sw/$a")" 644
done
[ ! -e "$VDPA_SYSFS/devices/cfg/blk_sw/size" ] || fail "blk_sw/size exists (capacity says it)"
echo 200 > "$VDPA_SYSFS/devices/cfg/blk_sw/poll_idle_us" || fail "poll_idle_us not writable"
expect_eq poll_idle_us "$(bsw_attr cfg poll_idle_us)" 200
expect_errno "Invalid argument" 2000000 "$VDPA_SYSFS/devices/cfg/blk_sw/poll_idle_us"
expect_eq poll_idle_us "$(bsw_attr cfg poll_idle_us)" 200

dev=$(vdpa_bind_virtio cfg) || exit
expect_eq "$dev size" "$(bsw_sectors "$dev")" $((32 << 11))
expect_eq "$dev logical_block_size" \
	"$(cat "/sys/block/$(basename "$dev")/queue/logical_block_size")" 4096
fio_verify "$dev" 16M --bs=8k
# fixed windows: every worker polls for poll_idle_us exactly
echo 0 > "$VDPA_SYSFS/devices/cfg/blk_sw/poll_adaptive" || fail "poll_adaptive not writable"
expect_eq "fixed poll_window_ns" "$(bsw_attr cfg poll_window_ns)" "200000 200000"
fio_verify "$dev" 4M --bs=4k --iodepth=1
# adaptive: requests 50 ms apart on each CPU are idle periods far longer
# than poll_idle_us, so each worker's window halves to 0 or, after a
# completion the window missed, restarts at 10 us; never more
echo 1 > "$VDPA_SYSFS/devices/cfg/blk_sw/poll_adaptive"
for i in $(seq 12); do
	for cpu in 0 1; do
		taskset -c "$cpu" dd if="$dev" of=/dev/null bs=4k count=1 \
			skip=$((i * 2 + cpu)) iflag=direct status=none ||
			fail "spaced read $i on CPU $cpu failed"
		sleep 0.05
	done
done
for w in $(bsw_attr cfg poll_window_ns); do
	[ "$w" -le 10000 ] || fail "adaptive window after spaced reads: $w ns, want <= 10000"
done
# no window at all with poll_idle_us 0, adaptive or not
echo 0 > "$VDPA_SYSFS/devices/cfg/blk_sw/poll_idle_us"
expect_eq "poll_window_ns with polling off" "$(bsw_attr cfg poll_window_ns)" "0 0"
echo 200 > "$VDPA_SYSFS/devices/cfg/blk_sw/poll_idle_us"
# the live poll window: polling on, then off, with I/O in between
echo 0 > "$VDPA_SYSFS/devices/cfg/blk_sw/poll_idle_us"
fio_verify "$dev" 8M --bs=4k --iodepth=1

# --- resize -----------------------------------------------------------------
truncate -s 48M "$img" || fail "truncate failed"
expect_eq "size before resize" "$(bsw_sectors "$dev")" $((32 << 11))
echo 1 > "$VDPA_SYSFS/devices/cfg/blk_sw/resize" || fail "resize failed"
expect_eq capacity "$(bsw_attr cfg capacity)" $((48 << 11))
size_is_48m()
{
	[ "$(bsw_sectors "$dev")" = $((48 << 11)) ]
}
wait_for 10 size_is_48m || fail "$dev is $(bsw_sectors "$dev") sectors after resize"
fio_verify "$dev" 8M --offset=40M
expect_errno "Invalid argument" 0 "$VDPA_SYSFS/devices/cfg/blk_sw/resize"

vdpa_unbind cfg
vdpa_dev_del cfg
expect_eq "live after del" "$(bsw_cfg cfg live)" 0
echo 1 > "$c/num_queues" || fail "item still busy after the device is gone"
