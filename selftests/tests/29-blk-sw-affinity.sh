#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Queue-CPU affinity of dedicated workers (num_workers = num_queues; the
# default, the shared pool, is 31-blk-sw-pool). A default device has a
# queue per online CPU (at most 16), here with a worker per queue. Bound to virtio_vdpa, each hardware queue of
# /dev/vdX maps exactly the CPUs of the queue's mask as the device reports
# it (blk_sw_qN/cpu_list, effective_cpu_list), each worker may run only on
# its queue's CPUs, and fio pinned to a CPU submits to that CPU's queue
# alone, served by a worker whose last CPU is in the queue's mask. An
# administrator's cpu_list reads back exactly, survives a reset (unbind and
# bind), overrides the driver's masks (blk-mq follows it), and an empty
# write gives the driver's back; malformed lists get EINVAL, CPUs beyond
# the last possible one ERANGE. A CPU going offline leaves no worker on
# it, and coming back gives the worker its CPU again. Data verifies.
# timeout=900

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
require_cmd fio taskset jq
bsw_setup

ncpu=$(nproc)
nq=$((ncpu < 16 ? ncpu : 16))
d=$VDPA_SYSFS/devices/aff0

# "0-2,5" -> "0, 1, 2, 5", as /sys/block/vdX/mq/N/cpu_list has it
expand()
{
	local r out="" a b i

	for r in ${1//,/ }; do
		a=${r%-*}
		b=${r#*-}
		for ((i = a; i <= b; i++)); do
			out+="${out:+, }$i"
		done
	done
	echo "$out"
}

allowed()
{
	awk '/^Cpus_allowed_list/ { print $2 }' "/proc/$1/status"
}

# expect_errno MESSAGE VALUE FILE: writing VALUE fails with MESSAGE
expect_errno()
{
	local out

	out=$( (printf '%s\n' "$2" > "$3") 2>&1) && fail "writing '$2' to $3 succeeded"
	grep -q "$1" <<< "$out" || fail "writing '$2' to $3: '$out', expected $1"
}

# check_map: every hardware queue maps the CPUs of its queue's mask, and
# its worker may run on exactly the queue's effective CPUs
check_map()
{
	local q list eff pid

	expect_eq "hardware queues" "$(find "/sys/block/$vd/mq" -mindepth 1 -maxdepth 1 | wc -l)" "$nq"
	for ((q = 0; q < nq; q++)); do
		list=$(cat "$d/blk_sw_q$q/cpu_list")
		eff=$(cat "$d/blk_sw_q$q/effective_cpu_list")
		expect_eq "mq/$q/cpu_list" "$(cat "/sys/block/$vd/mq/$q/cpu_list")" "$(expand "$list")"
		expect_eq "q$q effective_cpu_list (all online)" "$eff" "$list"
		pid=$(cat "$d/blk_sw_q$q/worker_pid")
		expect_eq "q$q worker CPUs" "$(allowed "$pid")" "$eff"
	done
}

bsw_add aff0 num_workers="$nq"
expect_eq num_queues "$(bsw_attr aff0 num_queues)" "$nq"
expect_eq num_workers "$(bsw_attr aff0 num_workers)" "$nq"
read -r -a pids <<< "$(bsw_attr aff0 worker_pids)"
for ((q = 0; q < nq; q++)); do
	expect_eq "q$q worker_pid" "$(cat "$d/blk_sw_q$q/worker_pid")" "${pids[q]}"
	expect_eq "q$q cpu_list mode" "$(stat -c %a "$d/blk_sw_q$q/cpu_list")" 644
	expect_eq "q$q effective_cpu_list mode" "$(stat -c %a "$d/blk_sw_q$q/effective_cpu_list")" 444
done
# unbound: no driver mask, every CPU
all=$(cat /sys/devices/system/cpu/possible)
expect_eq "q0 cpu_list unbound" "$(cat "$d/blk_sw_q0/cpu_list")" "$all"

dev=$(vdpa_bind_virtio aff0) || exit
vd=$(basename "$dev")
check_map
# virtio_vdpa spreads the CPUs evenly: with a queue per CPU, one each
if [ "$nq" = "$ncpu" ]; then
	for ((q = 0; q < nq; q++)); do
		expect_eq "q$q driver mask" "$(cat "$d/blk_sw_q$q/cpu_list")" "$q"
	done
fi

# --- fio on one CPU: its queue alone, served on the queue's CPUs ----------
log "$nq queues on $ncpu CPUs: $(cat "$d"/blk_sw_q*/cpu_list | tr '\n' ' ')"
for ((q = 0; q < nq; q++)); do
	cpu=$(cat "$d/blk_sw_q$q/effective_cpu_list")
	cpu=${cpu%%[,-]*}
	for ((i = 0; i < nq; i++)); do
		before[i]=$(bsw_qstat aff0 "$i" requests)
	done
	fio_run "cpu$cpu" --name="cpu$cpu" --filename="$dev" --rw=randread --bs=4k \
		--iodepth=1 --ioengine=io_uring --direct=1 --size=32M --number_ios=2000 \
		--cpus_allowed="$cpu"
	for ((i = 0; i < nq; i++)); do
		delta=$(($(bsw_qstat aff0 "$i" requests) - before[i]))
		if [ "$i" = "$q" ]; then
			[ "$delta" -ge 2000 ] || fail "fio on CPU $cpu: q$q served $delta requests"
		else
			expect_eq "fio on CPU $cpu: q$i requests" "$delta" 0
		fi
	done
	wcpu=$(cat "$d/blk_sw_q$q/worker_cpu")
	eff=$(cat "$d/blk_sw_q$q/effective_cpu_list")
	grep -qw "$wcpu" <<< "$(expand "$eff")" || fail "q$q served on CPU $wcpu, outside $eff"
done

# --- cpu_list: exact values, errors --------------------------------------
q0=$d/blk_sw_q0/cpu_list
drv0=$(cat "$q0")
echo 0 > "$q0" || fail "cannot write 0 to cpu_list"
expect_eq "cpu_list 0" "$(cat "$q0")" 0
expect_eq "effective_cpu_list 0" "$(cat "$d/blk_sw_q0/effective_cpu_list")" 0
expect_eq "q0 worker on 0" "$(allowed "${pids[0]}")" 0
if [ "$ncpu" -ge 2 ]; then
	echo "1,0" > "$q0" || fail "cannot write 1,0 to cpu_list"
	expect_eq "cpu_list 1,0" "$(cat "$q0")" 0-1
	expect_eq "q0 worker on 0-1" "$(allowed "${pids[0]}")" 0-1
fi
expect_errno "Invalid argument" abc "$q0"
expect_errno "Invalid argument" 1-0 "$q0"
expect_errno "Invalid argument" "0,,x" "$q0"
expect_errno "Invalid argument" "," "$q0"
expect_errno "Numerical result out of range" 100000 "$q0"
expect_errno "Value too large" 99999999999999999999 "$q0"
[ "$ncpu" -ge 2 ] && expect_eq "cpu_list kept after refused writes" "$(cat "$q0")" 0-1
echo > "$q0" || fail "cannot clear cpu_list"
expect_eq "cpu_list cleared: the driver's" "$(cat "$q0")" "$drv0"
check_map

# the same through vdpa-blk-mgmt set --cpu-list [QUEUE=]LIST
T=${VDPA_BLK_MGMT:-$REPO/tools/vdpa-blk-mgmt/vdpa-blk-mgmt}
"$T" set aff0 --cpu-list 0=0 || fail "vdpa-blk-mgmt set --cpu-list 0=0 failed"
expect_eq "tool: q0 cpu_list" "$(cat "$q0")" 0
"$T" set aff0 --cpu-list 0 || fail "vdpa-blk-mgmt set --cpu-list 0 failed"
for ((q = 0; q < nq; q++)); do
	expect_eq "tool: q$q cpu_list" "$(cat "$d/blk_sw_q$q/cpu_list")" 0
done
out=$("$T" set aff0 --cpu-list 0=abc 2>&1) && fail "tool: 0=abc accepted"
grep -q "Invalid argument" <<< "$out" || fail "tool: 0=abc: $out"
rc=0
"$T" set aff0 --cpu-list "$nq=0" 2> /dev/null || rc=$?
expect_eq "tool: queue $nq of $nq" "$rc" 2
"$T" set aff0 --cpu-list "" || fail "vdpa-blk-mgmt set --cpu-list '' failed"
expect_eq "tool: q0 back to the driver's" "$(cat "$q0")" "$drv0"
check_map

# --- an administrator's list survives a reset and overrides the driver ---
if [ "$nq" -ge 2 ]; then
	l0=$(cat "$d/blk_sw_q0/cpu_list")
	l1=$(cat "$d/blk_sw_q1/cpu_list")
	echo "$l1" > "$d/blk_sw_q0/cpu_list" || fail "cannot set q0 to $l1"
	echo "$l0" > "$d/blk_sw_q1/cpu_list" || fail "cannot set q1 to $l0"
	vdpa_unbind aff0
	expect_eq "q0 after reset" "$(cat "$d/blk_sw_q0/cpu_list")" "$l1"
	dev=$(vdpa_bind_virtio aff0) || exit
	vd=$(basename "$dev")
		expect_eq "q0 after bind" "$(cat "$d/blk_sw_q0/cpu_list")" "$l1"
	expect_eq "q1 after bind" "$(cat "$d/blk_sw_q1/cpu_list")" "$l0"
	check_map
	echo > "$d/blk_sw_q0/cpu_list"
	echo > "$d/blk_sw_q1/cpu_list"
	expect_eq "q0 cleared" "$(cat "$d/blk_sw_q0/cpu_list")" "$l0"
	expect_eq "q1 cleared" "$(cat "$d/blk_sw_q1/cpu_list")" "$l1"
fi

# --- CPU hotplug ----------------------------------------------------------
last=$((ncpu - 1))
hp=/sys/devices/system/cpu/cpu$last/online
if [ "$nq" = "$ncpu" ] && [ "$ncpu" -ge 2 ] && [ -w "$hp" ]; then
	log "CPU $last offline and back"
	defer sh -c "echo 1 > $hp"
	echo 0 > "$hp" || fail "cannot take CPU $last offline"
	for ((q = 0; q < nq; q++)); do
		a=$(allowed "${pids[q]}")
		grep -qw "$last" <<< "$(expand "$a")" && fail "worker $q on offline CPU $last ($a)"
	done
	expect_eq "q$last effective with CPU $last offline" \
		"$(cat "$d/blk_sw_q$last/effective_cpu_list")" "$(cat /sys/devices/system/cpu/online)"
	expect_eq "q$last cpu_list with CPU $last offline" "$(cat "$d/blk_sw_q$last/cpu_list")" "$last"
	fio_verify "$dev" 16M
	echo 1 > "$hp" || fail "cannot bring CPU $last back"
	expect_eq "worker $last back on CPU $last" "$(allowed "${pids[last]}")" "$last"
fi

# --- data --------------------------------------------------------------------
fio_verify "$dev" 64M
vdpa_dev_del aff0
exit 0
