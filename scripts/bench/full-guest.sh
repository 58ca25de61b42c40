#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of "make bench": every system on the same backing, the same
# jobs, BENCH_REPS repetitions interleaved (each repetition runs every
# backing and every system once, in a rotated order), one line per run in
# $RESULTS_DIR/bench/runs.tsv; scripts/bench/report turns it into tables.
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
# CPU: guest-wide busy share of all vCPUs from /proc/stat, and the share of
# the device's own threads (vbs-* kthreads, qemu-storage-daemon, the
# vdpa_sim worker) from /proc/PID/stat, both over the whole run.
# Profiles (BENCH_PROFILE=HZ): each job also runs under perf record -a at
# HZ samples per second per vCPU (cpu-clock: TCG has no PMU), and
# $RESULTS_DIR/bench/prof/ gets, per job, where the CPU time went by
# thread and code, in microseconds of CPU per I/O.

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
# Results are written to tmpfs and copied to /results (9p) after each
# repetition: fio's exec_prerun writes, appended to a 9p file job after job,
# stalled for good in netfs writeback (folio_wait_writeback_killable() in
# netfs_perform_write(), sysrq-w) and took fio down with them.
final_out=$RESULTS_DIR/bench
out=/run/bench-results
tsv=$out/runs.tsv
mkdir -p "$out" "$final_out"
if [ -n "$profile_hz" ]; then
	command -v perf > /dev/null || fail "BENCH_PROFILE: no perf in the guest"
	echo -1 > /proc/sys/kernel/perf_event_paranoid
	echo 0 > /proc/sys/kernel/kptr_restrict
	mkdir -p "$out/prof" /run/bench-prof
fi

# NAME:fio arguments. The full set runs on ext4 for the main systems, the
# core set for the others and on the other backings (BENCH_JOBS=full, core
# or an extended regular expression of job names overrides).
full_jobs=()
for rw in randread randwrite; do
	for j in 1 4; do
		for qd in 1 8 32; do
			full_jobs+=("$rw-qd$qd-${j}j:--rw=$rw --bs=4k --iodepth=$qd --numjobs=$j")
		done
	done
done
seq_jobs=("read-128k-qd8-1j:--rw=read --bs=128k --iodepth=8 --numjobs=1"
	"write-128k-qd8-1j:--rw=write --bs=128k --iodepth=8 --numjobs=1")
full_jobs+=("${seq_jobs[@]}")
core_jobs=()
for j in "${full_jobs[@]}"; do
	case ${j%%:*} in
	rand*-qd1-1j | rand*-qd32-1j | randread-qd32-4j) core_jobs+=("$j") ;;
	esac
done

# jobs_for BACKING SYSTEM: the job names and arguments, one per line
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
	full) printf '%s\n' "${full_jobs[@]}" ;;
	core) printf '%s\n' "${core_jobs[@]}" ;;
	# a job name or a pattern: the matching jobs of the full set
	*) printf '%s\n' "${full_jobs[@]}" | grep -E "^($set):" ;;
	esac
}

# vdpa_bench arguments of a one-job fio job, or nothing if it has none
vb_args()
{
	local name=$1 args=$2 rw bs qd

	case $name in *-4j) return 0 ;; esac
	rw=$(sed -n 's/.*--rw=\([a-z]*\).*/\1/p' <<< "$args")
	bs=$(sed -n 's/.*--bs=\([0-9]*\)k.*/\1/p' <<< "$args")
	qd=$(sed -n 's/.*--iodepth=\([0-9]*\).*/\1/p' <<< "$args")
	echo "-m $rw -b $((bs * 1024)) -q $qd -Q 1"
}

# systems_for BACKING: the systems to run on it, BENCH_SYSTEMS (in its
# order) if set. Variants of ours: a suffix -pN sets the poll window to N
# us, -wN the number of workers; on any system -cN pins the device's
# threads (ours, vduse) and the fio jobs to CPU N, -kN only the device's
# threads (ours-p200, ours-np-w2, ours-np-c0, vduse-c0, raw-c0).
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

# --- CPU accounting -----------------------------------------------------
#
# fio starts slowly under TCG (over a second), so one fio process runs all
# the jobs of a system one after the other (stonewall); each job's
# exec_prerun and exec_postrun append a snapshot to $SNAP_FILE: busy and
# total jiffies of all CPUs (/proc/stat) and utime + stime of the device's
# threads ($SNAP_PIDS, /proc/PID/stat), outside the job's timed window;
# and the context switches, interrupts (timer ticks included) and
# rescheduling + function-call IPIs of the guest, per I/O: under TCG a
# wake-up on the other vCPU is what costs.

snap=/run/bench-snap
cat > "$snap" << 'EOF_SNAP'
#!/bin/bash
# snap pre|post JOB
# With $PROF_PREFIX set, perf record runs from before "pre" to after
# "post": it starts with its events off, and its control FIFO switches
# them on and off, so its own start and stop are not profiled. fio runs
# the hooks once per process of a job (numjobs): the first "pre" starts
# perf (mkdir is atomic) and the others wait until it samples; the last
# "post" stops it (one line per hook counts them; mv is atomic).
prof=${PROF_PREFIX:+$PROF_PREFIX-$2}
# prof_ctl enable|disable: switch perf's events, wait for its ack
prof_ctl()
{
	timeout 60 sh -c 'echo "$1" > "$2"' sh "$1" "$prof.ctl" &&
		timeout 60 head -c 4 "$prof.ack" > /dev/null
}
if [ -n "$prof" ] && [ "$1" = pre ]; then
	echo >> "$prof.pres"
	if mkdir "$prof.started" 2> /dev/null; then
		mkfifo "$prof.ctl" "$prof.ack"
		setsid perf record -q -a -F "$PROF_HZ" -e cpu-clock -D -1 \
			--control "fifo:$prof.ctl,$prof.ack" -o "$prof.data" \
			< /dev/null > "$prof.log" 2>&1 &
		echo $! > "$prof.pid.tmp"
		mv "$prof.pid.tmp" "$prof.pid"
		# perf opens both FIFOs read-write: this waits for it to be ready
		prof_ctl enable
		: > "$prof.enabled"
	else
		for _ in $(seq 600); do
			[ -e "$prof.enabled" ] && break
			sleep 0.1
		done
	fi
fi
busy=0 total=0 ctxt=0 intr=0
while read -r k a b c d e f g h _; do
	case $k in
	cpu) busy=$((a + b + c + f + g + h)) total=$((busy + d + e)) ;;
	intr) intr=$a ;;
	ctxt) ctxt=$a ;;
	esac
done < /proc/stat
dev=0
for p in $SNAP_PIDS; do
	read -r line < "/proc/$p/stat" || continue
	read -r -a f <<< "${line##*) }"
	dev=$((dev + f[11] + f[12]))
done
# rescheduling and function-call IPIs (per-CPU columns of RES and CAL)
ipi=0
while read -r k rest; do
	case $k in
	RES: | CAL:)
		for v in $rest; do
			[[ $v == [0-9]* ]] || break
			ipi=$((ipi + v))
		done
		;;
	esac
done < /proc/interrupts
echo "$2 $1 $busy $total $dev $ctxt $intr $ipi" >> "$SNAP_FILE"
if [ -n "$prof" ] && [ "$1" = post ]; then
	echo >> "$prof.posts"
	if [ "$(wc -l < "$prof.posts")" -ge "$(wc -l < "$prof.pres")" ] &&
		mv "$prof.pid" "$prof.stop" 2> /dev/null; then
		prof_ctl disable
		pid=$(cat "$prof.stop")
		kill -INT "$pid"
		for _ in $(seq 600); do
			kill -0 "$pid" 2> /dev/null || break
			sleep 0.1
		done
	fi
fi
EOF_SNAP
chmod +x "$snap"

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
	ours* | vb-ours*) echo '^vbs-' ;;
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

	[[ $s == *-np* ]] && poll=0
	[[ $s == *-iopoll* ]] && iopoll=1
	[[ $s =~ -p([0-9]+) ]] && poll=${BASH_REMATCH[1]}
	[[ $s =~ -w([0-9]+) ]] && nw=${BASH_REMATCH[1]}
	# -gp: a queue for the guest to poll, besides one with interrupts
	[[ $s == *-gp* && $nq -lt 2 ]] && nq=2
	if [[ $s == ours-mem* ]]; then
		attrs=("size=$((size_mb << 20))")
	else
		attrs=("backing=${backing_path[$b]}" direct=1 "iopoll=$iopoll")
	fi
	mkdir "$BSW_CFS/bench0" || bail "mkdir $BSW_CFS/bench0" || return
	for kv in "${attrs[@]}" "num_queues=$nq" "num_workers=$nw" \
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

# cpu_of JOB HAS_DEV IOPS: "guest% dev% ctxt/io intr/io ipi/io" of JOB from
# $SNAP_FILE
cpu_of()
{
	awk -v j="$1" -v has_dev="$2" -v iops="$3" -v rt="$runtime" '
		$1 == j && $2 == "pre" && !p { p = 1; b0 = $3; t0 = $4; d0 = $5; c0 = $6; i0 = $7; x0 = $8 }
		$1 == j && $2 == "post" { b1 = $3; t1 = $4; d1 = $5; c1 = $6; i1 = $7; x1 = $8 }
		END { t = t1 - t0; if (!p || t <= 0) { print "-\t-\t-\t-\t-"; exit }
			printf "%.1f\t", 100 * (b1 - b0) / t
			if (has_dev) printf "%.1f\t", 100 * (d1 - d0) / t; else printf "-\t"
			n = iops * rt
			if (n > 0) printf "%.2f\t%.2f\t%.2f\n", (c1 - c0) / n, (i1 - i0) / n, (x1 - x0) / n
			else print "-\t-\t-" }' "$SNAP_FILE"
}

# profile_report REP BACKING SYSTEM TAG: for each job of the run that has
# a profile, $out/prof/TAG-JOB.md: the CPU time of both vCPUs by thread and
# by code, in % and in microseconds of CPU per I/O (the job's IOPS from
# runs.tsv), then the hottest symbols of each busy thread
profile_report()
{
	local rep=$1 b=$2 s=$3 tag=$4 j name data iops md

	while IFS= read -r j; do
		name=${j%%:*}
		data=/run/bench-prof/$tag-$name.data
		[ -s "$data" ] || continue
		iops=$(awk -F'\t' -v r="$rep" -v b="$b" -v s="$s" -v j="$name" \
			'$1 == r && $2 == b && $3 == s && $4 == j { print $5; exit }' "$tsv")
		md=$out/prof/$tag-$name.md
		perf report -i "$data" --no-children --sort comm,dso,sym -t ';' \
			--stdio 2> /dev/null | grep -v '^#' | grep . |
		awk -F';' '
		function thread(c) {
			if (c == "swapper") return "idle"
			if (c ~ /^(fio|vdpa_bench)$/) return "app (" c ")"
			if (c ~ /^vbs-/) return "our worker"
			if (c ~ /^qemu-storage/) return "vduse daemon"
			if (c ~ /^vDPA sim/) return "vdpa_sim worker"
			if (c ~ /^(perf|bash|sh|sleep|cat|awk|timeout|head)$/) return "bench tools"
			return "other threads"
		}
		# perf finds no .ko of a module loaded from /repo and reports
		# its symbols as [kernel.kallsyms]: group kernel code by name
		function code(d, y) {
			if (y ~ /(idle|halt|mwait)/) return "idle loop"
			if (d !~ /^\[/) return "user space"
			if (y ~ /poll/ && y ~ /^(virtblk|blk|bio|io_|iocb|nvme|null)/)
				return "polling for completions"
			if (y ~ /^vbs_/) return "vdpa_blk_sw"
			if (y ~ /vringh|iotlb/) return "vringh, vhost iotlb"
			if (y ~ /^(virtblk|virtqueue|vring_|virtio|vp_|vdpa)/) return "virtio_blk, virtio_ring, vdpa"
			if (y ~ /^vduse/) return "vduse"
			if (y ~ /^(null_|nullb)/) return "null_blk"
			if (y ~ /ext4|jbd2/) return "ext4"
			if (y ~ /io_uring|^io_/) return "io_uring"
			if (y ~ /^(__)?(blk|bio|submit_bio|bdev|iomap|dio|elv|sbitmap)/) return "block, iomap"
			if (y ~ /(memcpy|memmove|memset|copy_|clear_page|_copy)/) return "copies"
			if (y ~ /spin_unlock_irq|irqrestore|irq_enable|irq_restore/)
				return "irq-enable points"
			if (y ~ /sched|switch|wake|enqueue|dequeue|pick_next|update_(curr|load)|ttwu/) return "scheduler"
			if (y ~ /irq|apic|sysvec|softirq|ipi|hrtimer|tick|perf/) return "interrupts, timers, perf"
			if (y ~ /^(__)?(x64_)?sys_|entry_SYSCALL|syscall/) return "syscall entry"
			if (d != "[kernel.kallsyms]") return d
			return "other kernel"
		}
		{
			for (i = 1; i <= NF; i++) gsub(/^ +| +$/, "", $i)
			pct = $1; sub(/%/, "", pct); pct += 0
			sym = $4; sub(/^\[[a-zA-Z.]\] /, "", sym)
			t = thread($2); c = code($3, sym); if (t == "idle") c = "idle loop"
			tc[t ";" c] += pct
			if (t != "idle" && c != "idle loop") { ts[t ";" sym " " $3] += pct; busy += pct }
		}
		END {
			printf "1;%.3f\n", busy
			for (k in tc) printf "2;%.3f;%s\n", tc[k], k
			for (k in ts) printf "3;%.3f;%s\n", ts[k], k
		}' | sort -t';' -k1,1n -k2,2gr |
		awk -F';' -v cpus="$(nproc)" -v iops="${iops:-0}" -v title="$b $s $name, repetition $rep" '
		function us(p) { return iops > 0 ? sprintf("%.1f", p / 100 * cpus * 1e6 / iops) : "-" }
		$1 == 1 {
			printf "### %s: %.0f IOPS\n\n", title, iops
			printf "CPU time of both vCPUs (%d), by thread and code, in %% and in us per I/O;" \
				" %.1f%% busy: %s us of CPU per I/O busy, %s in all.\n\n", cpus, $2, us($2), us(100)
		}
		$1 == 2 && !t++ {
			print "| thread | code | % of CPU | us per I/O |"
			print "|---|---|---|---|"
		}
		$1 == 2 && $2 >= 0.5 { printf "| %s | %s | %.1f | %s |\n", $3, $4, $2, us($2) }
		$1 == 3 && !s++ {
			print "\nHottest symbols (self time, busy threads):\n"
			print "| thread | symbol | % of CPU | us per I/O |"
			print "|---|---|---|---|"
		}
		$1 == 3 && s <= 15 { printf "| %s | %s | %.1f | %s |\n", $3, $4, $2, us($2) }
		END { print "" }' > "$md" || log "$tag $name: profile report failed"
	done < <(jobs_for "$b" "$s")
	rm -rf /run/bench-prof/*
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

# run_system REP BACKING SYSTEM: every job of SYSTEM, lines of runs.tsv
run_system()
{
	local rep=$1 b=$2 s=$3 tag=$2-$3-$1 fsize=${size_mb}M j name args kv m has_dev=
	local vb_poll=
	local jobfile=/run/bench-$tag.fio

	SNAP_PIDS=$(dev_pids "$(dev_regex "$s")")
	[ -n "$(dev_regex "$s")" ] && has_dev=1
	SNAP_FILE=$out/$tag.snap
	PROF_PREFIX=${profile_hz:+/run/bench-prof/$tag}
	PROF_HZ=$profile_hz
	export SNAP_PIDS SNAP_FILE PROF_PREFIX PROF_HZ
	: > "$SNAP_FILE"
	case $s in ours-mem* | sim) fsize=128M ;; esac

	if [ -n "$vhost" ]; then
		[[ $s == *-bp* ]] && vb_poll=-p
		while IFS= read -r j; do
			name=${j%%:*}
			args=$(vb_args "$name" "${j#*:}")
			[ -n "$args" ] || continue
			"$snap" pre "$name"
			# shellcheck disable=SC2086
			timeout --kill-after=5 $((runtime + 60)) "$bench_bin" -d "$vhost" \
				$args $vb_poll -t "$runtime" -s $((size_mb << 20)) \
				> "$out/$tag-$name.txt" 2>&1 ||
				{ log "vdpa_bench $tag $name failed"; diagnose "$tag-$name"; continue; }
			"$snap" post "$name"
			m=$(sed -n 's/.* iops=\([0-9.]*\) .*lat_mean_us=\([0-9.]*\) .*lat_p99_us=\([0-9.]*\).*/\1\t\2\t\3/p' \
				"$out/$tag-$name.txt")
			[ -n "$m" ] || { log "$tag $name: no result"; continue; }
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$b" "$s" "$name" "$m" \
				"$(cpu_of "$name" "$has_dev" "${m%%$'\t'*}")" >> "$tsv"
		done < <(jobs_for "$b" "$s")
		[ -z "$profile_hz" ] || profile_report "$rep" "$b" "$s" "$tag"
		return 0
	fi

	{
		printf '[global]\nfilename=%s\nsize=%s\nioengine=io_uring\ndirect=1\n' "$path" "$fsize"
		printf 'time_based=1\nruntime=%s\ngroup_reporting=1\nrandrepeat=0\n' "$runtime"
		[[ $s == raw-hipri* || $s == *-gp* ]] && printf 'hipri=1\n'
		[[ $s =~ -c([0-9]+) ]] && printf 'cpus_allowed=%s\n' "${BASH_REMATCH[1]}"
		while IFS= read -r j; do
			name=${j%%:*}
			printf '\n[%s]\nstonewall\nnew_group\n' "$name"
			for kv in ${j#*:}; do
				echo "${kv#--}"
			done
			printf 'exec_prerun=%s pre %s\nexec_postrun=%s post %s\n' \
				"$snap" "$name" "$snap" "$name"
		done < <(jobs_for "$b" "$s")
	} > "$jobfile"
	timeout --kill-after=5 $((runtime * 40 + 120)) fio --output-format=json \
		--output="$out/$tag.json" "$jobfile" > /dev/null 2>&1 || {
		log "fio $tag failed (status $?); keeping the jobs it finished"
		diagnose "$tag"
	}
	[ -s "$out/$tag.json" ] || return 0
	sed -i -n '/^{/,$p' "$out/$tag.json"
	jq -r '.jobs[] | select(.error == 0) | . as $j |
		(if $j.read.iops > 0 then $j.read else $j.write end) as $d |
		[$j.jobname, $j.read.iops + $j.write.iops, $d.lat_ns.mean / 1000,
		 (($d.clat_ns.percentile // {})["99.000000"] // 0) / 1000] | @tsv' \
		"$out/$tag.json" 2> /dev/null |
	while IFS=$'\t' read -r name m; do
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$b" "$s" "$name" "$m" \
			"$(cpu_of "$name" "$has_dev" "${m%%$'\t'*}")" >> "$tsv"
	done
	[ -z "$profile_hz" ] || profile_report "$rep" "$b" "$s" "$tag"
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
printf 'rep\tbacking\tsystem\tjob\tiops\tlat_mean_us\tlat_p99_us\tcpu_pct\tdev_cpu_pct\tctxt_per_io\tintr_per_io\tipi_per_io\n' > "$tsv"
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
