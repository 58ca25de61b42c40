#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Where the time of deleting a device goes (issue 18's "delete as fast as
# losetup -d"): run in the lab guest, for example
#   scripts/lab/vm-run -- bash /repo/scripts/bench/delete-trace-guest.sh
# after make lab-module.  Creates DELTRACE_N (default 12) default devices
# on tmpfs files, binds them to virtio_vdpa and times, per device:
# "vdpa dev show" (what the vdpa tool costs by itself), unbinding from
# virtio_vdpa (virtio_blk's disk removal) and "vdpa dev del" of the
# unbound device (ours), each under the function_graph tracer limited to
# the kernel entry point (vdpa_nl_cmd_dev_del_set_doit at depth 5,
# virtio_vdpa_remove at depth 4), so that the trace names the calls that
# take the time.  Timings are inflated a little by the tracer.
# Output: $RESULTS_DIR (default /results)/deltrace/{times.txt,del.trace,
# unbind.trace}.

RESULTS_DIR=${RESULTS_DIR:-/results}
. /repo/selftests/lib.sh
. /repo/selftests/blk_sw.sh

n=${DELTRACE_N:-12}
[ "$n" -ge 12 ] || fail "DELTRACE_N=$n: at least 12"
out=$RESULTS_DIR/deltrace
mkdir -p "$out" /scratch/deltrace
times=$out/times.txt
: > "$times"
tr=/sys/kernel/tracing

bsw_setup
[ -e "$tr/trace" ] || mount -t tracefs none "$tr" || fail "no tracefs"

# NAME T0 T1: one line "NAME MS"
elapsed()
{
	awk -v n="$1" -v a="$2" -v b="$3" \
		'BEGIN { printf "%s %.2f\n", n, (b - a) * 1000 }' >> "$times"
}

for ((i = 0; i < n; i++)); do
	truncate -s 32M "/scratch/deltrace/b$i"
	bsw_stage "d$i" "backing=/scratch/deltrace/b$i"
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name "d$i" || fail "add d$i"
	echo virtio_vdpa > "$VDPA_SYSFS/devices/d$i/driver_override"
	echo "d$i" > "$VDPA_SYSFS/drivers/virtio_vdpa/bind" || fail "bind d$i"
done
udevadm settle 2> /dev/null
sleep 1

for ((i = 0; i < 4; i++)); do
	t0=$EPOCHREALTIME
	vdpa dev show "d$i" > /dev/null
	elapsed vdpa_dev_show "$t0" "$EPOCHREALTIME"
done

echo function_graph > "$tr/current_tracer"
echo 1 > "$tr/options/funcgraph-abstime"
echo vdpa_nl_cmd_dev_del_set_doit > "$tr/set_graph_function"
echo 5 > "$tr/max_graph_depth"
for ((i = 0; i < 6; i++)); do
	echo "d$i" > "$VDPA_SYSFS/drivers/virtio_vdpa/unbind"
	echo 1 > "$tr/tracing_on"
	t0=$EPOCHREALTIME
	vdpa dev del "d$i"
	t1=$EPOCHREALTIME
	echo 0 > "$tr/tracing_on"
	elapsed vdpa_dev_del_unbound "$t0" "$t1"
done
cp "$tr/trace" "$out/del.trace"
echo > "$tr/trace"

echo virtio_vdpa_remove > "$tr/set_graph_function"
echo 4 > "$tr/max_graph_depth"
for ((i = 6; i < 9; i++)); do
	echo 1 > "$tr/tracing_on"
	t0=$EPOCHREALTIME
	echo "d$i" > "$VDPA_SYSFS/drivers/virtio_vdpa/unbind"
	t1=$EPOCHREALTIME
	echo 0 > "$tr/tracing_on"
	elapsed unbind "$t0" "$t1"
	vdpa dev del "d$i"
done
cp "$tr/trace" "$out/unbind.trace"
echo nop > "$tr/current_tracer"

for ((i = 9; i < n; i++)); do
	t0=$EPOCHREALTIME
	vdpa dev del "d$i"
	elapsed vdpa_dev_del_bound_untraced "$t0" "$EPOCHREALTIME"
done
cat "$times"
# the calls over 1 ms inside each traced entry point
grep -E '\) +[*#@$] ' "$out/del.trace" "$out/unbind.trace" |
	grep -vE 'do_idle|schedule|text_poke|rcu_gp|sys_|vfs_write' || true
