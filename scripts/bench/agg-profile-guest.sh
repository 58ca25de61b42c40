#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Where the time goes in make bench-scale's aggregate, at a size one can
# profile: 16 default devices of ours on 32 MiB tmpfs files full of
# data, bound to virtio_vdpa, and fio randread 4k (io_uring, direct, 5 s
# after a 1 s ramp), twice each, in this order:
#   qd64: one job at QD64 on one device;
#   16x4: 16 jobs at QD4, one per device;
#   rr:   one job at QD64 round robin over the 16 (QD4 each on average).
# Each under perf record -a (cpu-clock, 999 Hz: TCG has no PMU). In the
# results directory: NAME.json (fio), NAME.sym and NAME.comm (perf report
# by symbol and by command), NAME.before and NAME.after (per device:
# spills wakes requests interrupts notifies polls), and iops.
# Run:  scripts/lab/vm-run --results DIR --script \
#           scripts/bench/agg-profile-guest.sh
# AGG_SPILL=N runs it with pool_spill off.
. /repo/selftests/lib.sh
. /repo/selftests/blk_sw.sh
out=/results/agg-profile
mkdir -p "$out"
dir=/scratch/agg
mkdir -p "$dir"
bsw_setup
echo "${AGG_SPILL:-Y}" > /sys/module/vdpa_blk_sw/parameters/pool_spill ||
	fail "cannot set pool_spill"
command -v perf > /dev/null || echo "no perf" > "$out/noperf"
files=
jobs=()
for i in $(seq 0 15); do
	dd if=/dev/urandom of="$dir/b$i" bs=1M count=32 status=none
	bsw_add "d$i" backing="$dir/b$i"
	v=$(vdpa_bind_virtio "d$i") || exit 1
	files+=${files:+:}$v
	jobs+=(--name="d$i" --filename="$v" --iodepth=4)
	[ "$i" = 0 ] && v0=$v
done
# shellcheck disable=SC2054
common=(--ioengine=io_uring --direct=1 --rw=randread --bs=4k --time_based
	--runtime=5 --ramp_time=1 --output-format=json --eta=never)
stats()
{
	local i c

	for i in $(seq 0 15); do
		printf 'd%s' "$i"
		for c in spills wakes requests interrupts notifies polls; do
			printf ' %s' "$(bsw_stat "d$i" "$c")"
		done
		echo
	done
}
run()
{
	local name=$1

	shift
	stats > "$out/$name.before"
	perf record -q -a -F 999 -e cpu-clock -o "$out/$name.data" -- \
		fio "${common[@]}" "$@" > "$out/$name.json" 2> "$out/$name.err"
	stats > "$out/$name.after"
	perf report -i "$out/$name.data" --sort sym --stdio 2> /dev/null |
		grep -v '^#' | grep -v '^$' | head -60 > "$out/$name.sym"
	perf report -i "$out/$name.data" --sort comm --stdio 2> /dev/null |
		grep -v '^#' | grep -v '^$' | head -20 > "$out/$name.comm"
	rm -f "$out/$name.data"
	echo "$name: $(jq '[.jobs[].read.iops] | add' "$out/$name.json")" |
		tee -a "$out/iops"
}
for r in 1 2; do
	run "qd64-$r" --name=one --filename="$v0" --iodepth=64
	run "16x4-$r" "${jobs[@]}"
	run "rr-$r" --name=all --filename="$files" --iodepth=64 \
		--file_service_type=roundrobin
done
exit 0
