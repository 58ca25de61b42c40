#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of "make bench-quick": the same fio jobs, interleaved (each
# repetition runs every system once), on
#   raw     fio io_uring O_DIRECT on the backing file itself (the limit)
#   ours    vdpa_blk_sw on that file (virtio_vdpa /dev/vdX), adaptive
#           polling within BENCH_POLL_US (50 us: the defaults)
#   ours-fx vdpa_blk_sw on that file, a fixed BENCH_POLL_US window
#           (poll_adaptive 0)
#   ours-np vdpa_blk_sw on that file, notifications only (poll 0)
#   loop    loop device with --direct-io=on on that file
#   sim     vdpa_sim_blk (RAM; copies every request), the in-kernel peer
# The backing file lives on tmpfs, so every system sees the same memory
# speed. Absolute numbers under TCG mean little: only the ratios of one
# run count. Leaves one fio JSON per system and repetition in
# $RESULTS_DIR/bench/tmpfs-SYSTEM-REP.json for scripts/bench/report
# --quick (on the host: scripts/bench-quick).

. /repo/selftests/lib.sh
. /repo/selftests/blk_sw.sh

reps=${BENCH_REPS:-3}
poll_us=${BENCH_POLL_US:-50}
runtime=${BENCH_RUNTIME:-5}
out=$RESULTS_DIR/bench
mkdir -p "$out"

bsw_setup
load_modules loop vdpa_sim_blk
img=/scratch/bench.img
truncate -s 128M "$img" && dd if=/dev/urandom of="$img" bs=1M count=128 status=none ||
	fail "cannot make $img"

# One device of ours serves "ours", "ours-fx" and "ours-np": a backing
# file belongs to one device, and the poll settings are live.
systems=(raw ours ours-fx ours-np loop sim)
declare -A path
bsw_stage ours backing="$img" direct=1
vdpa_dev_add "$BSW_MGMTDEV" ours
vdpa_dev_add vdpasim_blk sim
path[raw]=$img
path[ours]=$(vdpa_bind_virtio ours) || exit
path[ours-np]=${path[ours]}
path[ours-fx]=${path[ours]}
path[sim]=$(vdpa_bind_virtio sim) || exit
path[loop]=$(losetup --direct-io=on --show -f "$img") || fail "losetup failed"
defer losetup -d "${path[loop]}"
poll=$VDPA_SYSFS/devices/ours/blk_sw/poll_idle_us
adaptive=$VDPA_SYSFS/devices/ours/blk_sw/poll_adaptive
for s in "${systems[@]}"; do
	log "$s: ${path[$s]}"
done

# One fio process per system and repetition runs the jobs one after the
# other (bench/jobs/matrix.fio); scripts/bench/report reads its JSON.
sections=()
for j in randread-qd1-1j randread-qd32-1j randwrite-qd1-1j randwrite-qd32-1j; do
	sections+=("--section=$j")
done
# fio saves the output of the jobs' (empty) hooks in its working directory
mkdir -p /tmp/bench-quick
cd /tmp/bench-quick || fail "no /tmp/bench-quick"
for ((r = 1; r <= reps; r++)); do
	for s in "${systems[@]}"; do
		case $s in
		ours) echo "$poll_us" > "$poll" && echo 1 > "$adaptive" ;;
		ours-fx) echo "$poll_us" > "$poll" && echo 0 > "$adaptive" ;;
		ours-np) echo 0 > "$poll" ;;
		esac
		BENCH_DEV=${path[$s]} BENCH_SIZE=128M BENCH_RUNTIME=$runtime BENCH_HIPRI=0 \
			fio --output-format=json --output="$out/tmpfs-$s-$r.json" "${sections[@]}" \
			/repo/bench/jobs/matrix.fio > /dev/null 2>&1 || fail "fio $s failed"
		[ "$s" != ours ] ||
			log "ours, repetition $r: poll windows at the end (ns): $(cat "$VDPA_SYSFS/devices/ours/blk_sw/poll_window_ns")"
	done
done
