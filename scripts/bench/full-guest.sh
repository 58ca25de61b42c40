#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of "make bench": every system on the same backing, the same
# jobs (bench/jobs/matrix.fio), BENCH_REPS repetitions interleaved (each
# repetition runs every backing and every system once, in a rotated
# order). This script brings the systems up and down and runs the jobs;
# what they measured stays as they wrote it, in $RESULTS_DIR/bench/
# (TAG = BACKING-SYSTEM-REP): TAG.json (fio), TAG-JOB.txt (vdpa_bench),
# TAG.snap (scripts/bench/hook), prof/TAG-JOB.perf.txt (perf samples);
# scripts/bench/report turns them into tables on the host.
#
# Backings (BENCH_BACKINGS, default all):
#   ext4   a file on ext4 on a memory-backed null_blk with poll queues
#   nullb  a memory-backed null_blk with poll queues (a block device)
#   vdisk  a file on ext4 on a virtio disk of the lab VM (serial scratch)
#   mem    in-memory: our embedded memory backing against vdpa_sim_blk
# Systems (BENCH_SYSTEMS, default all that apply to a backing):
#   raw         fio io_uring O_DIRECT on the backing itself (the limit)
#   raw-hipri   the same with hipri (IOPOLL), where the backing polls
#   ours-np     vdpa_blk_sw via virtio_vdpa, poll_idle_us=0
#   ours        vdpa_blk_sw via virtio_vdpa, poll_idle_us=$BENCH_POLL_US
#               (adaptive, the default; the suffix -fx: a fixed window)
#   ours-iopoll vdpa_blk_sw with iopoll=1 (and polling), where it polls
#   loop        losetup --direct-io=on on the backing
#   vduse       qemu-storage-daemon --export vduse-blk, via virtio_vdpa
#   vb-ours     vdpa_bench through vhost_vdpa on vdpa_blk_sw
#   vb-vduse    vdpa_bench through vhost_vdpa on the vduse-blk export
#               (suffix -bp on either: vdpa_bench busy-polls the used
#               ring, -p, instead of waiting for the call eventfd)
#   ours-mem    vdpa_blk_sw on its embedded memory backing
#   sim         vdpa_sim_blk (RAM, copies every request)
#   (suffix -gp on ours, ours-mem or vduse: the guest polls too: the
#   device gets a second queue, virtio_blk's poll_queues=1 leaves that
#   queue without interrupts, and fio submits with hipri, io_uring IOPOLL,
#   which reaps by polling the used ring: ours-gp, ours-mem-gp, vduse-gp)
# CPU: scripts/bench/hook snapshots /proc/stat and the device's own threads
# (vbs-* and vbs_pool/* kthreads, qemu-storage-daemon, the vdpa_sim
# worker) before and after each job. Profiles (BENCH_PROFILE=HZ): each job
# also runs under perf record -a at HZ samples per second per vCPU
# (scripts/bench/profile).

. /repo/selftests/lib.sh
. /repo/selftests/blk_sw.sh

reps=${BENCH_REPS:-3}
runtime=${BENCH_RUNTIME:-2}
poll_us=${BENCH_POLL_US:-50}
queues=${BENCH_QUEUES:-4}
workers=${BENCH_WORKERS:-1}
size_mb=${BENCH_SIZE_MB:-256}
profile_hz=${BENCH_PROFILE:-}
backings=${BENCH_BACKINGS:-ext4 nullb vdisk mem}
want_systems=${BENCH_SYSTEMS:-}
bench_bin=/repo/selftests/vhost_vdpa/vdpa_bench
matrix=/repo/bench/jobs/matrix.fio
hook=/repo/scripts/bench/hook
profile=/repo/scripts/bench/profile
# Results are written to tmpfs and copied to /results (9p) after each
# repetition: fio's exec_prerun writes, appended to a 9p file job after job,
# stalled for good in netfs writeback (folio_wait_writeback_killable() in
# netfs_perform_write(), sysrq-w) and took fio down with them.
final_out=$RESULTS_DIR/bench
out=/run/bench-results
mkdir -p "$out" "$final_out" /run/bench-fio
if [ -n "$profile_hz" ]; then
	command -v perf > /dev/null || fail "BENCH_PROFILE: no perf in the guest"
	echo -1 > /proc/sys/kernel/perf_event_paranoid
	echo 0 > /proc/sys/kernel/kptr_restrict
	mkdir -p "$out/prof" /run/bench-prof
fi

# The full set of jobs runs on ext4 for the main systems, the core set for
# the others and on the other backings (BENCH_JOBS=full, core or an
# extended regular expression of job names overrides). The memory
# backing's core set adds QD16, where issue 18 compares the default
# medium with vdpa_sim_blk.
all_jobs=$(sed -n 's/^\[\(.*\)\]$/\1/p' "$matrix" | grep -v '^global$')
core_jobs='rand(read|write)-qd(1|32)-1j|randread-qd32-4j'
mem_core_jobs="$core_jobs|rand(read|write)-qd16-1j"

# jobs_for BACKING SYSTEM: the names of its jobs, in the matrix's order
jobs_for()
{
	local set=${BENCH_JOBS:-}

	if [ -z "$set" ]; then
		set=core
		case $1:$2 in
		ext4:raw | ext4:ours | ext4:ours-np | ext4:loop | ext4:vduse | ext4:vb-*) set=full ;;
		esac
	fi
	case $set in
	full) set='.*' ;;
	core) set=$core_jobs
		[ "$1" != mem ] || set=$mem_core_jobs ;;
	esac
	grep -E "^($set)\$" <<< "$all_jobs"
}

# job_opt JOB KEY: the value of KEY in the section of JOB in the matrix
job_opt()
{
	awk -F= -v s="[$1]" -v k="$2" '$0 == s { in_s = 1; next } /^\[/ { in_s = 0 }
		in_s && $1 == k { print $2; exit }' "$matrix"
}

# vdpa_bench arguments of a one-process job, or nothing if it has none
vb_args()
{
	local bs

	[ "$(job_opt "$1" numjobs)" = 1 ] || return 0
	bs=$(job_opt "$1" bs)
	echo "-m $(job_opt "$1" rw) -b $((${bs%k} * 1024)) -q $(job_opt "$1" iodepth) -Q 1"
}

# systems_for BACKING: the systems to run on it, BENCH_SYSTEMS (in its
# order) if set. Variants of ours: a suffix -pN sets the poll window to N
# us, -wN the number of workers, -qN the queue_size, -ns turns the pool's
# spilling off (the module's pool_spill=N while it runs); on any system
# -cN pins the device's threads (ours, vduse) and the fio jobs to CPU N,
# -kN only the device's threads (ours-p200, ours-np-w2, ours-q128,
# ours-np-c0, vduse-c0, raw-c0).
systems_for()
{
	local all s

	case $1 in
	ext4 | nullb) all="raw raw-hipri ours-np ours ours-iopoll ours-gp loop vduse vduse-gp vb-ours vb-vduse vb-ours-bp vb-vduse-bp" ;;
	vdisk) all="raw ours-np ours ours-gp loop vduse vduse-gp vb-ours vb-vduse vb-ours-bp vb-vduse-bp" ;;
	mem) all="ours-mem ours-mem-gp sim" ;;
	esac
	[ -n "$want_systems" ] || { echo "$all"; return; }
	for s in ${want_systems//,/ }; do
		case $1:$s in
		mem:ours-mem* | mem:sim) ;;
		mem:* | *:ours-mem* | *:sim) continue ;;
		vdisk:raw-hipri* | vdisk:*iopoll*) continue ;;
		esac
		echo -n "$s "
	done
}

# dev_pids REGEX: the processes whose name matches
dev_pids()
{
	[ -n "$1" ] || return 0
	# the name is between the first "(" and the last ") X "
	awk -v re="$1" 'FNR == 1 {
		o = index($0, "("); c = match($0, /\) [A-Za-z] /);
		if (c && substr($0, o + 1, c - o - 1) ~ re) print $1
	}' /proc/[0-9]*/stat 2> /dev/null | tr '\n' ' '
}

dev_regex()
{
	case $1 in
	# a device's own threads (vbs-NAME/N) or the shared pool's (vbs_pool/N)
	ours* | vb-ours*) echo '^vbs[-_]' ;;
	vduse* | vb-vduse*) echo '^qemu-storage' ;;
	sim) echo '^vDPA sim' ;;
	*) echo '' ;;
	esac
}

# --- systems --------------------------------------------------------------

declare -A backing_path
path=
vhost=
qsd_pid=
vduse_seq=0
vdev=bench0

# make_backings: create and fill every backing the run needs
make_backings()
{
	local b

	load_modules loop null_blk
	modprobe -r null_blk 2> /dev/null
	modprobe null_blk nr_devices=2 gb=1 memory_backed=1 queue_mode=2 \
		submit_queues=2 poll_queues=2 || fail "modprobe null_blk failed"
	defer modprobe -r null_blk
	wait_for 5 test -b /dev/nullb1 || fail "no /dev/nullb1"
	for b in $backings; do
		case $b in
		ext4) mkfs_file ext4 /dev/nullb0 ;;
		nullb)
			backing_path[nullb]=/dev/nullb1
			dd if=/dev/urandom of=/dev/nullb1 bs=1M count="$size_mb" \
				oflag=direct status=none || fail "cannot fill nullb1"
			;;
		vdisk) mkfs_file vdisk "$(disk_by_serial scratch)" ;;
		esac
	done
}

# mkfs_file NAME DEV: ext4 on DEV, a filled file on it
mkfs_file()
{
	local name=$1 dev=$2 mnt=/mnt/bench-$1

	mkfs.ext4 -q -F "$dev" > /dev/null || fail "mkfs.ext4 $dev failed"
	mkdir -p "$mnt"
	mount "$dev" "$mnt" || fail "mount $dev failed"
	defer umount "$mnt"
	dd if=/dev/urandom of="$mnt/disk.img" bs=1M count="$size_mb" \
		oflag=direct status=none || fail "cannot fill $mnt/disk.img"
	sync
	backing_path[$name]=$mnt/disk.img
}

# Set-up steps return 1 (with a log line) instead of failing the run: a
# system that cannot be set up is left out of that repetition.
bail()
{
	log "set-up: $*"
	return 1
}

ours_up()
{
	local b=$1 s=$2 poll=$poll_us iopoll=0 nw=$workers nq=$queues kv attrs
	local qs=()

	[[ $s == *-np* ]] && poll=0
	[[ $s == *-iopoll* ]] && iopoll=1
	[[ $s =~ -p([0-9]+) ]] && poll=${BASH_REMATCH[1]}
	[[ $s =~ -w([0-9]+) ]] && nw=${BASH_REMATCH[1]}
	[[ $s =~ -q([0-9]+) ]] && qs=("queue_size=${BASH_REMATCH[1]}")
	# -gp: a queue for the guest to poll, besides one with interrupts
	[[ $s == *-gp* && $nq -lt 2 ]] && nq=2
	if [[ $s == ours-mem* ]]; then
		attrs=("size=$((size_mb << 20))")
	else
		attrs=("backing=${backing_path[$b]}" direct=1 "iopoll=$iopoll")
	fi
	if [[ $s == *-ns* ]]; then
		echo N > /sys/module/vdpa_blk_sw/parameters/pool_spill ||
			bail "pool_spill N" || return
	fi
	mkdir "$BSW_CFS/bench0" || bail "mkdir $BSW_CFS/bench0" || return
	for kv in "${attrs[@]}" "${qs[@]}" "num_queues=$nq" "num_workers=$nw" \
		"poll_idle_us=$poll"; do
		echo "${kv#*=}" > "$BSW_CFS/bench0/${kv%%=*}" || bail "bench0: $kv" || return
	done
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name bench0 || bail "vdpa dev add ($s)" || return
	if [[ $s == *-fx* ]]; then
		echo 0 > "$VDPA_SYSFS/devices/bench0/blk_sw/poll_adaptive" ||
			bail "bench0: poll_adaptive 0" || return
	fi
	if [[ $s =~ -[ck]([0-9]+) ]]; then
		for kv in $(dev_pids '^vbs-bench0/'); do
			taskset -pc "${BASH_REMATCH[1]}" "$kv" > /dev/null || bail "taskset $kv" || return
		done
	fi
}

vduse_up()
{
	local b=$1 drv=file name nq=1

	# a fresh name each time: a daemon that died leaves its VDUSE device
	vduse_seq=$((vduse_seq + 1))
	name=bench0
	[ "$vduse_seq" = 1 ] || name=bench$vduse_seq
	[ -b "${backing_path[$b]}" ] && drv=host_device
	[[ $2 == *-gp* ]] && nq=2
	qemu-storage-daemon \
		--blockdev "driver=$drv,node-name=b0,filename=${backing_path[$b]},cache.direct=on,aio=io_uring" \
		--export "type=vduse-blk,id=e0,node-name=b0,name=$name,writable=on,num-queues=$nq,queue-size=256" \
		>> "$out/qsd-$b.log" 2>&1 &
	qsd_pid=$!
	wait_for 20 test -e "/dev/vduse/$name" || bail "no /dev/vduse/$name" || return
	if [[ $2 =~ -[ck]([0-9]+) ]]; then
		taskset -apc "${BASH_REMATCH[1]}" "$qsd_pid" > /dev/null ||
			bail "taskset $qsd_pid" || return
	fi
	vdev=$name
	vdpa dev add name "$vdev" mgmtdev vduse || bail "vdpa dev add (vduse $name)"
}

# bind DRIVER: bind the device $vdev, print its /dev node
bind()
{
	local dev=$VDPA_SYSFS/devices/$vdev pat='virtio*/block/*'

	[ "$1" = vhost_vdpa ] && pat='vhost-vdpa-*'
	wait_for 5 test -e "$dev" || bail "no $dev" || return
	echo "$1" > "$dev/driver_override" && echo "$vdev" > "$VDPA_SYSFS/drivers/$1/bind" ||
		bail "cannot bind $vdev to $1" || return
	wait_for 10 _vdpa_sysfs_child "$vdev" "$pat" || bail "$vdev: nothing under $1" || return
	echo "/dev/$(_vdpa_sysfs_child "$vdev" "$pat")"
}

# sys_up BACKING SYSTEM: create the device of SYSTEM, set $path (or $vhost)
sys_up()
{
	local b=$1 s=$2

	path=
	vhost=
	vdev=bench0
	case $s in
	raw*) path=${backing_path[$b]} ;;
	loop*)
		path=$(losetup --direct-io=on --show -f "${backing_path[$b]}") ||
			bail "losetup" || return
		echo none > "/sys/block/${path#/dev/}/queue/scheduler" ||
			bail "cannot set the scheduler of $path" || return
		;;
	ours*) ours_up "$b" "$s" || return ;;
	vb-ours*) ours_up "$b" "${s#vb-}" || return ;;
	vduse* | vb-vduse*) vduse_up "$b" "$s" || return ;;
	sim) vdpa dev add mgmtdev vdpasim_blk name bench0 || bail "vdpa dev add (sim)" || return ;;
	esac
	case $s in
	vb-*) vhost=$(bind vhost_vdpa) || return ;;
	ours* | vduse* | sim)
		if [[ $s == *-gp* ]]; then
			path=$(virtio_blk_polled 1 bind virtio_vdpa) || return
		else
			path=$(bind virtio_vdpa) || return
		fi
		wait_for 5 test -b "$path" || bail "no $path" || return
		# single-queue devices (vduse, sim) would get mq-deadline
		echo none > "/sys/block/${path#/dev/}/queue/scheduler" ||
			bail "cannot set the scheduler of $path" || return
		case $s in
		ours-mem* | sim)
			dd if=/dev/urandom of="$path" bs=1M count=128 oflag=direct \
				status=none || bail "cannot fill $path" || return
			;;
		esac
		;;
	esac
}

sys_down()
{
	if [ -e "$VDPA_SYSFS/devices/$vdev" ]; then
		[ -e "$VDPA_SYSFS/devices/$vdev/driver" ] &&
			echo "$vdev" > "$VDPA_SYSFS/devices/$vdev/driver/unbind"
		vdpa dev del "$vdev" || log "vdpa dev del $vdev failed"
		wait_for 10 test ! -e "$VDPA_SYSFS/devices/$vdev"
	fi
	[ -d "$BSW_CFS/bench0" ] && rmdir "$BSW_CFS/bench0"
	[ -e /sys/module/vdpa_blk_sw/parameters/pool_spill ] &&
		echo Y > /sys/module/vdpa_blk_sw/parameters/pool_spill
	if [ -n "$qsd_pid" ]; then
		kill "$qsd_pid" 2> /dev/null
		wait "$qsd_pid" 2> /dev/null
		qsd_pid=
	fi
	case $path in /dev/loop*) losetup -d "$path" ;; esac
	path=
	vhost=
	return 0
}

# diagnose TAG: after a failed or killed job, what the kernel says (blocked
# tasks, the log since the run started) and our devices' queue statistics,
# in $out/TAG.diag
diagnose()
{
	{
		echo w > /proc/sysrq-trigger
		sleep 1
		dmesg
		grep -H . "$VDPA_SYSFS"/devices/*/blk_sw_q*/* 2> /dev/null
	} > "$out/$1.diag" 2>&1
	log "$1: kernel log and queue statistics in bench/$1.diag"
}

# run_system REP BACKING SYSTEM: every job of SYSTEM, one fio process (fio
# takes over a second to start under TCG) or one vdpa_bench per job
run_system()
{
	local rep=$1 b=$2 s=$3 tag=$2-$3-$1 fsize=${size_mb}M name args
	local hipri=0 vb_poll='' jobs sections=() pin=()

	SNAP_PIDS=$(dev_pids "$(dev_regex "$s")")
	SNAP_FILE=$out/$tag.snap
	PROF_PREFIX=${profile_hz:+/run/bench-prof/$tag}
	PROF_HZ=$profile_hz
	export SNAP_PIDS SNAP_FILE PROF_PREFIX PROF_HZ
	: > "$SNAP_FILE"
	case $s in ours-mem* | sim) fsize=128M ;; esac
	mapfile -t jobs < <(jobs_for "$b" "$s")

	if [ -n "$vhost" ]; then
		[[ $s == *-bp* ]] && vb_poll=-p
		for name in "${jobs[@]}"; do
			args=$(vb_args "$name")
			[ -n "$args" ] || continue
			"$hook" pre "$name"
			# shellcheck disable=SC2086
			timeout --kill-after=5 $((runtime + 60)) "$bench_bin" -d "$vhost" \
				$args $vb_poll -t "$runtime" -s $((size_mb << 20)) \
				> "$out/$tag-$name.txt" 2>&1 ||
				{ log "vdpa_bench $tag $name failed"; diagnose "$tag-$name"; }
			"$hook" post "$name"
		done
	else
		[[ $s == raw-hipri* || $s == *-gp* ]] && hipri=1
		[[ $s =~ -c([0-9]+) ]] && pin=(taskset -c "${BASH_REMATCH[1]}")
		for name in "${jobs[@]}"; do
			sections+=("--section=$name")
		done
		# fio saves the hooks' output in its working directory
		(cd /run/bench-fio &&
			BENCH_DEV=$path BENCH_SIZE=$fsize BENCH_RUNTIME=$runtime \
			BENCH_HIPRI=$hipri BENCH_HOOK=$hook \
			timeout --kill-after=5 $((runtime * 40 + 120)) "${pin[@]}" \
			fio --output-format=json --output="$out/$tag.json" \
			"${sections[@]}" "$matrix" > /dev/null 2>&1) || {
			log "fio $tag failed (status $?); keeping the jobs it finished"
			diagnose "$tag"
		}
	fi
	if [ -n "$profile_hz" ]; then
		for name in "${jobs[@]}"; do
			"$profile" dump "$name" "$out/prof/$tag-$name.perf.txt" ||
				log "$tag $name: perf report failed"
		done
		rm -rf /run/bench-prof/*
	fi
}

# ------------------------------------------------------------------------

bsw_setup
load_modules vdpa_sim_blk vduse
# save_results: copy what the run has so far to /results
save_results()
{
	cp -r "$out/." "$final_out/" || log "cannot copy the results to $final_out"
}

trap 'sys_down; save_results; _run_deferred' EXIT
make_backings
{
	echo "kernel $(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/ { print $2 }' /proc/meminfo) kB"
	echo "fio $(fio --version), runtime ${runtime}s, reps $reps, poll_idle_us $poll_us," \
		"ours num_queues=$queues num_workers=$workers, ${size_mb} MiB backing"
	echo "loadavg at start: $(cat /proc/loadavg)"
} > "$out/env.txt"

start=$(date +%s)
for ((rep = 1; rep <= reps; rep++)); do
	for b in $backings; do
		read -r -a sys <<< "$(systems_for "$b")"
		n=${#sys[@]}
		for ((k = 0; k < n; k++)); do
			s=${sys[(k + rep - 1) % n]}
			case $s in
			vb-*) [ -x "$bench_bin" ] || { log "no $bench_bin: skipping $s"; continue; } ;;
			esac
			if ! sys_up "$b" "$s"; then
				log "rep $rep $b $s: set-up failed, skipped"
				sys_down
				continue
			fi
			log "rep $rep $b $s: ${path:-$vhost} ($(($(date +%s) - start)) s)"
			run_system "$rep" "$b" "$s"
			sys_down
		done
	done
	save_results
done
echo "loadavg at end: $(cat /proc/loadavg), $(($(date +%s) - start)) s" >> "$out/env.txt"
