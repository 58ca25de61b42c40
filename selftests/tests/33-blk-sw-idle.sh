#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Idle queues leave the pool's passes. A pool thread looks only at the
# queues that found work within the last millisecond or have requests in
# flight; a kick brings an idle one back, counted in blk_sw_qN/wakes.
# Nine default devices bound to virtio_vdpa: every queue 0 is served by
# CPU 0's pool thread (spilling off, so none moves).
# - Idle for a second, no queue is woken: wakes does not move. (A queue
#   leaves the passes at the first pass a millisecond after its last work:
#   one read on another device makes one.)
# - One O_DIRECT read from CPU 0 wakes queue 0 of its device exactly once,
#   and no other queue.
# - fio on CPU 0: eight devices at QD1 with think times from 0.5 to 3 ms
#   around that millisecond, writes verified, while the ninth keeps the
#   thread busy at QD8. Every request completes (fio does not hang), the
#   data verifies, and the eight queues were woken at least 100 times.
# timeout=600

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
require_cmd fio taskset
bsw_setup

spill=/sys/module/vdpa_blk_sw/parameters/pool_spill
echo N > "$spill" || fail "cannot write $spill"
defer sh -c "echo Y > $spill"

names="i0 i1 i2 i3 i4 i5 i6 i7"
declare -A vd
for n in $names busy; do
	bsw_add "$n" size=$((16 << 20))
	vd[$n]=$(vdpa_bind_virtio "$n") || exit
	expect_eq "$n q0 worker_cpu" "$(bsw_qstat "$n" 0 worker_cpu)" 0
done
udevadm settle 2> /dev/null || true

# wakes [NAME]: queue 0's wakes of every device ($names, then busy) but
# NAME, on one line
wakes()
{
	local n

	for n in $names busy; do
		[ "$n" = "${1-}" ] || bsw_qstat "$n" 0 wakes
	done | tr '\n' ' '
}

# sum_wakes: queue 0's wakes of the eight at QD1
sum_wakes()
{
	local n t=0

	for n in $names; do
		t=$((t + $(bsw_qstat "$n" 0 wakes)))
	done
	echo "$t"
}

# --- idle: nothing wakes ---------------------------------------------------
# a queue leaves the passes at the first pass 1 ms after its last work:
# one read on busy, a second after the setup's last I/O, makes that pass
sleep 1
taskset -c 0 dd if="${vd[busy]}" of=/dev/null bs=4k count=1 iflag=direct \
	status=none || fail "read of ${vd[busy]} failed"
before=$(wakes)
sleep 1
expect_eq "wakes of idle queues over 1 s" "$(wakes)" "$before"

# --- one read wakes its queue once ------------------------------------------
before=$(bsw_qstat i3 0 wakes)
others=$(wakes i3)
taskset -c 0 dd if="${vd[i3]}" of=/dev/null bs=4k count=1 iflag=direct \
	status=none || fail "read of ${vd[i3]} failed"
expect_eq "i3 q0 wakes after one read" "$(bsw_qstat i3 0 wakes)" \
	$((before + 1))
expect_eq "other queues' wakes after one read of i3" "$(wakes i3)" "$others"

# --- think times around the retirement delay, next to a busy queue ---------
job=$RESULTS_DIR/idle.fio
{
	printf '[global]\nbs=4k\nioengine=io_uring\ndirect=1\n'
	printf '[busy]\nfilename=%s\nrw=randread\niodepth=8\n' "${vd[busy]}"
	printf 'time_based=1\nruntime=20\n'
	t=0
	for n in $names; do
		printf '[%s]\nfilename=%s\nrw=randwrite\niodepth=1\nsize=2M\n' \
			"$n" "${vd[$n]}"
		printf 'thinktime=%s\nverify=crc32c\ndo_verify=1\n' \
			"$((500 + t * 350))"
		printf 'verify_fatal=1\nverify_dump=1\n'
		t=$((t + 1))
	done
} > "$job"
before=$(sum_wakes)
rc=0
timeout 300 taskset -c 0 fio --output="$RESULTS_DIR/idle.json" \
	--output-format=json "$job" || rc=$?
[ "$rc" -ne 124 ] || fail "fio with think times hung (a lost wake-up?)"
[ "$rc" -eq 0 ] || fail "fio with think times failed ($rc)"
after=$(sum_wakes)
log "queue 0 wakes during fio: $((after - before)) (per device: $(wakes))"
[ $((after - before)) -ge 100 ] ||
	fail "eight queues with think times woken $((after - before)) times, want >= 100"
for n in $names busy; do
	expect_eq "$n q0 inflight at the end" "$(bsw_qstat "$n" 0 inflight)" 0
	vdpa_dev_del "$n"
done
exit 0
