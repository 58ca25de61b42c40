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
# run are reported. Prints a markdown table to stdout.

. /repo/selftests/lib.sh
. /repo/selftests/blk_sw.sh

reps=${BENCH_REPS:-3}
poll_us=${BENCH_POLL_US:-50}
runtime=${BENCH_RUNTIME:-5}
jobs=("randread-qd1:--rw=randread --iodepth=1" "randread-qd32:--rw=randread --iodepth=32"
	"randwrite-qd1:--rw=randwrite --iodepth=1" "randwrite-qd32:--rw=randwrite --iodepth=32")
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

# fio takes over a second to start under TCG: one fio process per system
# and repetition runs the jobs one after the other (stonewall).
jobfile=/tmp/bench-quick.fio
for ((r = 1; r <= reps; r++)); do
	for s in "${systems[@]}"; do
		case $s in
		ours) echo "$poll_us" > "$poll" && echo 1 > "$adaptive" ;;
		ours-fx) echo "$poll_us" > "$poll" && echo 0 > "$adaptive" ;;
		ours-np) echo 0 > "$poll" ;;
		esac
		{
			printf '[global]\nfilename=%s\nbs=4k\nsize=128M\nioengine=io_uring\n' "${path[$s]}"
			printf 'direct=1\ntime_based=1\nruntime=%s\n' "$runtime"
			for j in "${jobs[@]}"; do
				printf '\n[%s]\nstonewall\n' "${j%%:*}"
				for kv in ${j#*:}; do
					echo "${kv#--}"
				done
			done
		} > "$jobfile"
		fio --output-format=json --output="$out/$s-$r.json" "$jobfile" \
			> /dev/null 2>&1 || fail "fio $s failed"
		[ "$s" != ours ] ||
			log "ours, repetition $r: poll windows at the end (ns): $(cat "$VDPA_SYSFS/devices/ours/blk_sw/poll_window_ns")"
	done
done

# median IOPS of a system for a job
median()
{
	local s=$1 job=$2 f

	for f in "$out/$s-"[0-9]*.json; do
		jq --arg j "$job" '.jobs[] | select(.jobname == $j) | .read.iops + .write.iops' "$f"
	done | sort -g | awk '{ v[NR] = $1 } END { print int(v[int((NR + 1) / 2)]) }'
}

printf '| job | %s | ours/raw | ours/loop | ours/sim | ours/ours-np | ours/ours-fx |\n' "$(IFS='|'; echo "${systems[*]}" | sed 's/|/ | /g')"
printf '|---|%s---|---|---|---|---|\n' "$(printf -- '---|%.0s' "${systems[@]}")"
for j in "${jobs[@]}"; do
	job=${j%%:*}
	declare -A m
	row="| $job |"
	for s in "${systems[@]}"; do
		m[$s]=$(median "$s" "$job")
		row+=" ${m[$s]} |"
	done
	for peer in raw loop sim ours-np ours-fx; do
		row+=" $(awk -v a="${m[ours]}" -v b="${m[$peer]}" 'BEGIN { printf (b > 0 ? "%.2f" : "n/a"), a / b }') |"
	done
	echo "$row"
done
