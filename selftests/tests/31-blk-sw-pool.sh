#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The shared pool: threads do not grow with devices. Several default
# devices (num_workers 0), a queue per CPU each, bound to virtio_vdpa: the
# module runs exactly one pool thread per online CPU (vbs_pool/N, counted
# in /sys/module/vdpa_blk_sw/parameters/pool_threads) and no thread of
# any device; each queue is served by the pool thread of the one CPU
# blk-mq maps to it (/sys/block/vdX/mq/N/cpu_list = blk_sw_qN/worker_cpu),
# which may run on that CPU alone. fio verifies on every device at once,
# then again while other devices are added, bound, written, unbound and
# deleted on the same pool threads. A device asking for num_workers 1
# gets its own thread and leaves the pool alone. More idle devices add no
# pool thread (the tasks they add are logged). Unbound, a queue has no
# worker (PID 0, CPU -1); the threads stay. A CPU going offline moves its
# pool thread off it, I/O keeps verifying, and the thread comes back.
# Through vhost-vdpa, whose queues have no CPU mask, queue q goes to the
# thread of CPU q mod CPUs, until the administrator's cpu_list moves it.
# Placement is asserted while I/O runs, so spilling (test 32) is off.
# timeout=900

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
require_cmd fio jq
bsw_setup

ncpu=$(nproc)
nq=$((ncpu < 16 ? ncpu : 16))
ndev=3
param=/sys/module/vdpa_blk_sw/parameters/pool_threads
# worker_pids of a device whose queues have no worker: a 0 per queue
no_workers=$(printf '0 %.0s' $(seq "$nq") | sed 's/ $//')
S=$VDPA_SYSFS/devices

allowed()
{
	awk '/^Cpus_allowed_list/ { print $2 }' "/proc/$1/status"
}

pool_count()
{
	pgrep -c '^vbs_pool/' || true
}

# check_dev NAME VD: each queue of NAME is served by the pool thread of
# the CPU its hardware queue of VD maps
check_dev()
{
	local name=$1 vd=$2 q cpu pid

	expect_eq "$name hardware queues" "$(find "/sys/block/$vd/mq" -mindepth 1 -maxdepth 1 | wc -l)" "$nq"
	for ((q = 0; q < nq; q++)); do
		cpu=$(bsw_qstat "$name" "$q" worker_cpu)
		pid=$(bsw_qstat "$name" "$q" worker_pid)
		expect_eq "$name q$q mq cpu_list" "$(cat "/sys/block/$vd/mq/$q/cpu_list")" "$cpu"
		expect_eq "$name q$q worker" "$(cat "/proc/$pid/comm")" "vbs_pool/$cpu"
		expect_eq "$name q$q worker CPUs" "$(allowed "$pid")" "$cpu"
	done
}

[ -r "$param" ] || fail "no $param"
spill=/sys/module/vdpa_blk_sw/parameters/pool_spill
echo N > "$spill" || fail "cannot turn pool_spill off"
defer sh -c "echo Y > $spill"
expect_eq "pool_threads read-only" "$(stat -c %a "$param")" 444
expect_eq "pool threads as counted" "$(pool_count)" "$(cat "$param")"

for ((i = 0; i < ndev; i++)); do
	bsw_add "pool$i" size=$((64 << 20))
	expect_eq "pool$i num_workers" "$(bsw_attr "pool$i" num_workers)" 0
	expect_eq "pool$i worker_pids unbound" "$(bsw_attr "pool$i" worker_pids)" \
		"$no_workers"
	expect_eq "pool$i q0 worker_cpu unbound" "$(bsw_qstat "pool$i" 0 worker_cpu)" -1
done
expect_eq "dedicated threads" "$(pgrep -c '^vbs-' || true)" 0

for ((i = 0; i < ndev; i++)); do
	devs[i]=$(vdpa_bind_virtio "pool$i") || exit
	check_dev "pool$i" "$(basename "${devs[i]}")"
done
expect_eq "pool threads, $ndev devices bound" "$(pool_count)" "$ncpu"
expect_eq pool_threads "$(cat "$param")" "$ncpu"
expect_eq "dedicated threads, $ndev devices bound" "$(pgrep -c '^vbs-' || true)" 0
log "$ndev devices x $nq queues on $(pool_count) pool threads"

# --- fio verify on every device at once --------------------------------------
pids=()
for ((i = 0; i < ndev; i++)); do
	fio_verify "${devs[i]}" 32M --numjobs=1 &
	pids[i]=$!
done
for ((i = 0; i < ndev; i++)); do
	wait "${pids[i]}" || fail "fio verify on pool$i (all at once) failed"
done
for ((i = 0; i < ndev; i++)); do
	[ "$(bsw_stat "pool$i" requests)" -gt 0 ] || fail "pool$i served nothing"
done

# --- add, bind, write, unbind, delete while the others verify ---------------
pids=()
for ((i = 0; i < ndev - 1; i++)); do
	fio_verify "${devs[i]}" 64M --loops=4 &
	pids[i]=$!
done
for ((r = 0; r < 4; r++)); do
	bsw_add poolx size=$((16 << 20))
	x=$(vdpa_bind_virtio poolx) || exit
	check_dev poolx "$(basename "$x")"
	fio_verify "$x" 8M
	vdpa_unbind poolx
	expect_eq "poolx q0 worker_pid unbound" "$(bsw_qstat poolx 0 worker_pid)" 0
	x=$(vdpa_bind_virtio poolx) || exit
	# delete bound with requests in flight, once fio's have begun (it
	# takes seconds to start under TCG); allow_file_create=0: see test
	# 24 (delete while fio runs)
	before=$(bsw_stat poolx requests)
	fio --name=bg --filename="$x" --allow_file_create=0 --rw=randwrite \
		--bs=4k --iodepth=32 --ioengine=io_uring --direct=1 --time_based \
		--runtime=30 --output=/dev/null > /dev/null 2>&1 &
	bg=$!
	wait_for 60 bsw_stat_is poolx requests -ge $((before + 64)) ||
		fail "fio served no I/O on poolx: did it start?"
	vdpa_dev_del poolx
	wait "$bg" || true
	[ ! -e "$x" ] || fail "$x is still there after the delete: $(ls -l "$x")"
	_bsw_rmdir "$BSW_CFS/poolx"
done
for ((i = 0; i < ndev - 1; i++)); do
	wait "${pids[i]}" || fail "fio verify on pool$i under adds and deletes failed"
done
expect_eq "pool threads after adds and deletes" "$(pool_count)" "$ncpu"

# --- isolation: a device with its own thread ---------------------------------
bsw_add iso0 size=$((16 << 20)) num_workers=1
expect_eq "iso0 num_workers" "$(bsw_attr iso0 num_workers)" 1
pid=$(bsw_attr iso0 worker_pids)
expect_eq "iso0 worker" "$(cat "/proc/$pid/comm")" "vbs-iso0/0"
iso=$(vdpa_bind_virtio iso0) || exit
for ((q = 0; q < nq; q++)); do
	expect_eq "iso0 q$q worker_pid" "$(bsw_qstat iso0 "$q" worker_pid)" "$pid"
done
fio_verify "$iso" 16M
expect_eq "pool threads with iso0" "$(pool_count)" "$ncpu"
vdpa_dev_del iso0
expect_eq "dedicated threads after iso0" "$(pgrep -c '^vbs-' || true)" 0

# --- CPU hotplug -------------------------------------------------------------
last=$((ncpu - 1))
hp=/sys/devices/system/cpu/cpu$last/online
if [ "$ncpu" -ge 2 ] && [ -w "$hp" ]; then
	wpid=$(pgrep -x "vbs_pool/$last") || fail "no vbs_pool/$last"
	log "CPU $last offline and back"
	defer sh -c "echo 1 > $hp"
	echo 0 > "$hp" || fail "cannot take CPU $last offline"
	a=$(allowed "$wpid")
	[ "$a" = "$(cat /sys/devices/system/cpu/online)" ] ||
		fail "vbs_pool/$last on $a with CPU $last offline"
	for ((i = 0; i < ndev; i++)); do
		fio_verify "${devs[i]}" 16M
	done
	echo 1 > "$hp" || fail "cannot bring CPU $last back"
	expect_eq "vbs_pool/$last back on CPU $last" "$(allowed "$wpid")" "$last"
	for ((i = 0; i < ndev; i++)); do
		fio_verify "${devs[i]}" 16M
	done
fi

# --- many idle devices: the pool does not grow --------------------------------
many=${POOL_MANY:-16}
tasks0=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)
for ((i = 0; i < many; i++)); do
	bsw_add "idle$i" size=$((1 << 20))
	vdpa_bind_virtio "idle$i" > /dev/null || exit
done
tasks1=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)
expect_eq "pool threads with $many more devices bound" "$(pool_count)" "$ncpu"
expect_eq "dedicated threads with $many more devices" "$(pgrep -c '^vbs-' || true)" 0
log "$many idle devices bound: $((tasks1 - tasks0)) tasks added"
# blocking work runs on the module's one workqueue: no rescuer per device
expect_eq "per-device workqueue rescuers" "$(pgrep -c '^kworker/R-vbs' || true)" 0
expect_eq "the module's workqueue rescuer" \
	"$(cat /proc/[0-9]*/comm 2> /dev/null | grep -cx 'kworker/R-vdpa_blk_sw')" 1
# issue 18's bound for the whole module: online CPUs + 4, all devices included;
# tasks that are no device's (a kworker woken meanwhile) may come and go
[ $((tasks1 - tasks0)) -le 4 ] ||
	fail "$many idle devices added $((tasks1 - tasks0)) tasks (at most 4 expected)"
for ((i = 0; i < many; i++)); do
	vdpa_dev_del "idle$i"
done

# --- unbound: no worker, the threads stay ------------------------------------
for ((i = 0; i < ndev; i++)); do
	vdpa_unbind "pool$i"
	expect_eq "pool$i worker_pids after unbind" "$(bsw_attr "pool$i" worker_pids)" \
		"$no_workers"
done
for ((i = 0; i < ndev; i++)); do
	vdpa_dev_del "pool$i"
done
expect_eq "pool threads kept" "$(pool_count)" "$ncpu"
expect_eq "pool_threads kept" "$(cat "$param")" "$ncpu"

# --- vhost-vdpa: no CPU mask, the queues spread over the CPUs' threads -------
# Queue q goes to the thread of CPU q mod CPUs (the (q mod n)-th online
# CPU), which runs on that CPU alone; cpu_list moves it at the next
# DRIVER_OK. No thread is added.
bench=$REPO/selftests/vhost_vdpa/vdpa_bench
[ -x "$bench" ] || fail "no $bench (make -C selftests/vhost_vdpa on the host)"

# run_bench VHOST: vdpa_bench on every queue, in the background, until
# stop_bench; returns once every queue has its worker (DRIVER_OK)
run_bench()
{
	timeout --kill-after=10 120 "$bench" -d "$1" -Q "$nq" -q 4 -t 60 \
		> "$RESULTS_DIR/pool-vhost-bench.txt" 2>&1 &
	bench_pid=$!
	wait_for 20 bash -c "! grep -qw 0 $S/vh0/worker_pids" ||
		fail "vh0's queues not attached: $(bsw_attr vh0 worker_pids)"
}

# stop_bench WHAT: vdpa_bench was still running, so the queues were still
# attached when WHAT was checked; SIGTERM (passed on by timeout) makes it
# drain and exit 0 unless a request failed
stop_bench()
{
	kill -TERM "$bench_pid" 2> /dev/null ||
		fail "vdpa_bench ended before $1 was checked: $(tail -1 "$RESULTS_DIR/pool-vhost-bench.txt")"
	wait "$bench_pid" || fail "vdpa_bench $1: status $? ($(tail -1 "$RESULTS_DIR/pool-vhost-bench.txt"))"
}

bsw_add vh0 size=$((64 << 20))
vhost=$(vdpa_bind_vhost vh0) || exit
run_bench "$vhost"
for ((q = 0; q < nq; q++)); do
	pid=$(bsw_qstat vh0 "$q" worker_pid)
	expect_eq "vh0 q$q worker" "$(cat "/proc/$pid/comm")" "vbs_pool/$((q % ncpu))"
	expect_eq "vh0 q$q worker CPUs" "$(allowed "$pid")" "$((q % ncpu))"
	expect_eq "vh0 q$q worker_cpu" "$(bsw_qstat vh0 "$q" worker_cpu)" "$((q % ncpu))"
done
stop_bench "on the CPUs' threads"
expect_eq "pool threads with vh0" "$(pool_count)" "$ncpu"
expect_eq "vh0 worker_pids after reset" "$(bsw_attr vh0 worker_pids)" \
	"$no_workers"

# the administrator's list moves queue 0 to the last CPU's thread
echo "$last" > "$S/vh0/blk_sw_q0/cpu_list" || fail "cannot write vh0 cpu_list"
run_bench "$vhost"
pid=$(bsw_qstat vh0 0 worker_pid)
expect_eq "vh0 q0 worker with cpu_list $last" "$(cat "/proc/$pid/comm")" "vbs_pool/$last"
expect_eq "vh0 q0 worker_cpu with cpu_list $last" "$(bsw_qstat vh0 0 worker_cpu)" "$last"
stop_bench "with cpu_list $last"
expect_eq "pool threads, vh0 moved" "$(pool_count)" "$ncpu"
vdpa_unbind vh0
vdpa_dev_del vh0
exit 0
