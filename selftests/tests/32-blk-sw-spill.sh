#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Spilling: a queue served by the pool thread of the CPU that submits to it
# moves to an idle CPU's thread while that CPU is also busy with the
# submitter, and comes back when it goes idle. One default device (a queue
# per CPU) bound to virtio_vdpa; fio pinned to CPU 0 keeps 32 requests in
# flight on queue 0 (blk-mq maps CPU 0 there).
# - pool_spill=N: queue 0 never leaves vbs_pool/0 (sampled during the run)
#   and its spills counter does not move;
# - pool_spill=Y (the default): a verifying write job moves it to another
#   CPU's thread (the spills counter grows, and worker_cpu was seen off CPU
#   0 during the run) and the data verifies; once idle, the queue is back
#   on CPU 0's thread within seconds (2 ms in the driver), and a job at QD1
#   on CPU 0 never spills it;
# - an administrator's cpu_list of CPU 0 alone keeps it there under QD32;
# - the device is deleted while its queue is spilled and fio still runs,
#   and a new device on the same threads verifies afterwards;
# - many shallow queues: one fio job on CPU 0 at QD16 over 4 devices,
#   round robin (QD4 each, which alone never spills), moves some of their
#   queue 0s off CPU 0 and verifies; with pool_spill=N none moves.
# timeout=600

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
require_cmd fio jq taskset
bsw_setup

[ "$(nproc)" -ge 2 ] || skip "spilling needs 2 CPUs"
param=/sys/module/vdpa_blk_sw/parameters/pool_spill
[ -w "$param" ] || fail "no $param"
expect_eq "pool_spill default" "$(cat "$param")" Y
expect_eq "pool_spill mode" "$(stat -c %a "$param")" 644
defer sh -c "echo Y > $param"

# sample NAME FILE: queue 0's worker_cpu every 50 ms into FILE, until killed
sample()
{
	local f=$VDPA_SYSFS/devices/$1/blk_sw_q0/worker_cpu

	while :; do
		cat "$f"
		sleep 0.05
	done > "$2" 2> /dev/null
}

# deep NAME DEV RW SECONDS [fio options]: fio on CPU 0 only, QD32, with
# queue 0's worker_cpu sampled into $RESULTS_DIR/spill-NAME-RW.cpus
deep()
{
	local name=$1 dev=$2 rw=$3 secs=$4 sampler rc=0

	shift 4
	sample "$name" "$RESULTS_DIR/spill-$name-$rw.cpus" &
	sampler=$!
	taskset -c 0 fio --name="spill-$rw" --filename="$dev" --rw="$rw" --bs=4k \
		--iodepth=32 --ioengine=io_uring --direct=1 --size=64M \
		--runtime="$secs" --output-format=json \
		--output="$RESULTS_DIR/spill-$name-$rw.json" "$@" || rc=$?
	kill "$sampler"
	wait "$sampler" 2> /dev/null
	return "$rc"
}

# cpus_seen NAME RW: the distinct worker_cpu values the sampler saw
cpus_seen()
{
	sort -un "$RESULTS_DIR/spill-$1-$2.cpus" | tr '\n' ' ' | sed 's/ $//'
}

bsw_add sp0 size=$((128 << 20))
vd=$(vdpa_bind_virtio sp0) || exit
home=$(cat "/sys/block/$(basename "$vd")/mq/0/cpu_list")
expect_eq "sp0 q0 maps CPU 0" "$home" 0
expect_eq "sp0 q0 on CPU 0's thread" "$(bsw_qstat sp0 0 worker_cpu)" 0
expect_eq "sp0 q0 spills at start" "$(bsw_qstat sp0 0 spills)" 0

# --- pool_spill=N: the queue stays where it is -------------------------------
echo N > "$param" || fail "cannot write pool_spill"
deep sp0 "$vd" randread 5 --time_based || fail "fio randread QD32 (pool_spill=N) failed"
expect_eq "sp0 q0 spills with pool_spill=N" "$(bsw_qstat sp0 0 spills)" 0
expect_eq "sp0 q0 worker CPUs seen with pool_spill=N" "$(cpus_seen sp0 randread)" 0
[ "$(bsw_qstat sp0 0 requests)" -gt 1000 ] || fail "sp0 q0 served $(bsw_qstat sp0 0 requests) requests"

# --- pool_spill=Y: it spills, verifies and comes home ------------------------
echo Y > "$param" || fail "cannot write pool_spill"
deep sp0 "$vd" randwrite 60 --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--verify_dump=1 --loops=4 || fail "fio verify QD32 on CPU 0 failed"
spills=$(bsw_qstat sp0 0 spills)
seen=$(cpus_seen sp0 randwrite)
log "sp0 q0: $spills spills, worker CPUs seen: $seen"
[ "$spills" -gt 0 ] || fail "sp0 q0 never spilled with fio QD32 on its CPU"
[ "$seen" != 0 ] || fail "sp0 q0 was never seen off CPU 0 ($spills spills)"
wait_for 5 bsw_qstat_is sp0 0 worker_cpu = 0 ||
	fail "sp0 q0 not home once idle: worker_cpu $(bsw_qstat sp0 0 worker_cpu)"
spills=$(bsw_qstat sp0 0 spills)
deep sp0 "$vd" randread 3 --iodepth=1 --time_based || fail "fio QD1 on CPU 0 failed"
expect_eq "sp0 q0 spills at QD1" "$(bsw_qstat sp0 0 spills)" "$spills"
expect_eq "sp0 q0 worker CPUs seen at QD1" "$(cpus_seen sp0 randread)" 0
pid=$(bsw_qstat sp0 0 worker_pid)
expect_eq "sp0 q0 home thread" "$(cat "/proc/$pid/comm")" vbs_pool/0
expect_eq "sp0 q0 inflight once idle" "$(bsw_qstat sp0 0 inflight)" 0

# --- the administrator's list binds -----------------------------------------
echo 0 > "$VDPA_SYSFS/devices/sp0/blk_sw_q0/cpu_list" || fail "cannot write sp0 cpu_list"
deep sp0 "$vd" randread 5 --time_based || fail "fio QD32 with cpu_list 0 failed"
expect_eq "sp0 q0 spills with cpu_list 0" "$(bsw_qstat sp0 0 spills)" "$spills"
expect_eq "sp0 q0 worker CPUs seen with cpu_list 0" "$(cpus_seen sp0 randread)" 0
echo > "$VDPA_SYSFS/devices/sp0/blk_sw_q0/cpu_list" || fail "cannot clear sp0 cpu_list"

# --- delete while spilled ----------------------------------------------------
# allow_file_create=0: see test 24 (delete while fio runs)
taskset -c 0 fio --name=bg --filename="$vd" --allow_file_create=0 \
	--rw=randread --bs=4k --iodepth=32 --ioengine=io_uring --direct=1 \
	--time_based --runtime=60 --output=/dev/null > /dev/null 2>&1 &
bg=$!
wait_for 30 bsw_qstat_is sp0 0 spills -gt "$spills" ||
	fail "sp0 q0 did not spill again under fio QD32"
wait_for 10 bsw_qstat_is sp0 0 worker_cpu != 0 ||
	log "sp0 q0 back home before the delete (worker_cpu 0)"
log "deleting sp0 with fio running, q0 on CPU $(bsw_qstat sp0 0 worker_cpu)"
vdpa_dev_del sp0
wait "$bg" || true
_bsw_rmdir "$BSW_CFS/sp0"

bsw_add sp1 size=$((64 << 20))
vd=$(vdpa_bind_virtio sp1) || exit
deep sp1 "$vd" randwrite 60 --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--verify_dump=1 || fail "fio verify on sp1 after the delete failed"
log "sp1 q0: $(bsw_qstat sp1 0 spills) spills"
vdpa_dev_del sp1

# --- many shallow queues on one CPU -----------------------------------------
# sum_spills: the spills of m0-m3's queue 0
sum_spills()
{
	local n t=0

	for n in m0 m1 m2 m3; do
		t=$((t + $(bsw_qstat "$n" 0 spills)))
	done
	echo "$t"
}
files=
for n in m0 m1 m2 m3; do
	bsw_add "$n" size=$((32 << 20))
	files+=${files:+:}$(vdpa_bind_virtio "$n") || exit
done
shallow()
{
	taskset -c 0 fio --name=shallow --filename="$files" \
		--file_service_type=roundrobin --bs=4k --iodepth=16 \
		--ioengine=io_uring --direct=1 --output-format=json "$@"
}
echo N > "$param" || fail "cannot write pool_spill"
shallow --rw=randread --size=16M --time_based --runtime=5 \
	--output="$RESULTS_DIR/spill-shallow-N.json" ||
	fail "fio over 4 devices (pool_spill=N) failed"
expect_eq "m0-m3 q0 spills with pool_spill=N" "$(sum_spills)" 0
echo Y > "$param" || fail "cannot write pool_spill"
shallow --rw=randwrite --size=8M --verify=crc32c --do_verify=1 \
	--verify_fatal=1 --verify_dump=1 --loops=8 \
	--output="$RESULTS_DIR/spill-shallow.json" ||
	fail "fio verify over 4 devices at QD4 each on CPU 0 failed"
log "m0-m3 q0 spills: $(for n in m0 m1 m2 m3; do bsw_qstat "$n" 0 spills; done | tr '\n' ' ')"
[ "$(sum_spills)" -gt 0 ] ||
	fail "4 devices at QD4 each from CPU 0 never spilled a queue"
for n in m0 m1 m2 m3; do
	wait_for 5 bsw_qstat_is "$n" 0 worker_cpu = 0 ||
		fail "$n q0 not home once idle: worker_cpu $(bsw_qstat "$n" 0 worker_cpu)"
	vdpa_dev_del "$n"
done
exit 0
