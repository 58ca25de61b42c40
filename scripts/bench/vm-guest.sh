#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of "make bench-vm" (issue 19): in the lab VM (L1), boot the
# same nested guest (L2: QEMU TCG, the tiny kernel /nested/vmlinux and
# selftests/nested's initramfs, as test 28's pa-fio) once per disk
# configuration and repetition, interleaved (rep 1 of every configuration,
# then rep 2, ...). Its /init runs the lab's own fio (the L1 root, shared
# read-only over virtio-9p) on its /dev/vda: the five jobs of $jobs below
# in sequence, each time-based (BENCH_VM_RUNTIME s), its JSON on the
# console. Every configuration: the same preallocated raw file
# (BENCH_VM_SIZE of random data on L1's /scratch), L2 memory
# (BENCH_VM_L2_MEM), 1 vCPU, 1 queue of BENCH_VM_QSIZE entries (1024; see
# qsize below):
#   pa         ours, -device vhost-vdpa-device-pci, use_va=0, private RAM
#              (its queue has no CPU mask: CPU 0's pool thread serves it,
#              and it may spill to CPU 1's while CPU 0 is contended)
#   pa-cpu0    the same with cpu_list 0 written by hand: the same thread,
#              which the queue never leaves (cpu_list binds, so no
#              spilling), for comparing placements (2026-12-05: pa on an
#              unbound pool thread against it, slower and reverted)
#   pa-w1      the same with num_workers=1: its own thread, on any CPU, as
#              in VA mode, instead of a pool thread
#   va         ours, the same, use_va=1, memfd share=on RAM
#   blkio      ours through libblkio: -blockdev virtio-blk-vhost-vdpa
#              (use_va=0, memfd RAM, as test 28's pa-blk) + virtio-blk-pci
#   qemu-uring QEMU's virtio-blk-pci on the file, aio=io_uring,
#              cache.direct=on, an iothread
#   qemu-native the same with aio=native
#   vhost-user vhost-user-blk-pci, qemu-storage-daemon --export
#              vhost-user-blk (io_uring, cache.direct=on, an iothread),
#              memfd RAM
#   vduse      qemu-storage-daemon --export vduse-blk (the same), added
#              with vdpa dev add, bound to vhost_vdpa and attached as va
#              (VDUSE is a VA-mode vDPA device)
# Each fio job runs exec_prerun/exec_postrun scripts that print
# "NESTED-IO job-begin JOB" / "job-end JOB" on L2's console; a watcher in
# L1 (tail -F on the console file, inotify) stamps each with L1's time and
# /proc/stat's cpu line: the job's L1 CPU window.
#
# Nothing is computed here: scripts/bench/vm-report reads what this
# leaves in $RESULTS_DIR/bench-vm/:
#   env.txt              the inputs and versions
#   fio.cmd              fio's command line in L2 (and the marker scripts)
#   cells.tsv            rep config status wall_s, one line per L2 boot
#   REP-CONFIG.cmd       the command lines of that cell (QEMU, daemon, setup)
#   REP-CONFIG.json      fio's JSON
#   REP-CONFIG.marks     MARK JOB L1_EPOCH cpu-line-of-/proc/stat
#   REP-CONFIG.spills    ours: blk_sw_q0/spills once L2 has ended
#   REP-CONFIG.console   L2's console; .qemu, .qsd: their messages
#   dmesg.txt
# Results go to tmpfs and are copied to /results (9p) after every L2 boot
# and at the end. BENCH_VM_BUDGET (s, 0: none): start no L2 boot after
# that much time; the configurations run in the order of
# BENCH_VM_CONFIGS, so the first ones get the repetitions on a slow host.
# BENCH_VM_PEEK (s, 0: off; development): copy the running L2's console to
# /results/bench-vm/current.console that often.
#
# BENCH_VM_PROFILE=HZ (off by default): L1's perf profile of the jobs named
# in BENCH_VM_PROFILE_JOBS (randread-4k-qd1), in every cell: one perf
# record -a -g -e cpu-clock (HZ samples per second per CPU; TCG has no
# PMU) per job, started before L2 with its events off, switched on and off
# through its control FIFO by the watcher at the job's begin and end
# markers; after L2, perf report's samples by thread, object and symbol in
# prof/REP-CONFIG-JOB.perf.txt and the folded call chains by thread in
# .perf.txt.graph. L2's QEMU then runs with -name
# debug-threads=on, so that its threads have names ("CPU 0/TCG", "IO io0",
# "worker"; the main loop keeps the process's name).

. /repo/selftests/lib.sh
. /repo/selftests/blk_sw.sh

reps=${BENCH_VM_REPS:-3}
runtime=${BENCH_VM_RUNTIME:-10}
wsize=${BENCH_VM_WRITE_SIZE:-4M}
configs=${BENCH_VM_CONFIGS:-pa va blkio qemu-uring qemu-native vhost-user vduse}
size=${BENCH_VM_SIZE:-1G}
mem_mb=${BENCH_VM_L2_MEM:-256}
l2_timeout=${BENCH_VM_L2_TIMEOUT:-1200}
loglevel=${BENCH_VM_L2_LOGLEVEL:-4}
budget=${BENCH_VM_BUDGET:-0}
peek=${BENCH_VM_PEEK:-0}
profile_hz=${BENCH_VM_PROFILE:-}
profile_jobs=${BENCH_VM_PROFILE_JOBS:-randread-4k-qd1}
# The ring size, the same for every configuration: ours (queue_size), the
# VDUSE export (queue-size) and QEMU's devices (queue-size) all get it.
# Debian trixie's QEMU 10.0.13 gives the guest VIRTQUEUE_MAX_SIZE (1024)
# entries on every virtio device, whatever queue-size says
# (hw/virtio/virtio.c, virtio_add_queue: "Always set to max queue size for
# qemu <11.1"). The guest takes the size offered, QEMU asks vhost-vdpa for
# it at DRIVER_OK, and vhost-vdpa refuses more than the device's maximum:
# with ours at queue_size=256 or VDUSE at queue-size=256,
# "vhost_set_vring_num failed: Invalid argument" and a dead disk, while
# QEMU's own devices silently ran 1024 where their command line said 256.
# So on that QEMU 1024 is the one size all configurations can share;
# ring_probe checks what this QEMU gives a guest and stops the run before
# any L2 boot when it is not $qsize. At iodepth <= 16 no ring size limits
# fio. (blkio: $qsize is the guest's ring, QEMU's; libblkio sets up its
# own ring to our device, at libblkio's default size.)
qsize=${BENCH_VM_QSIZE:-1024}

KERNEL=/nested/vmlinux
NESTED=/repo/selftests/nested
INITRD=$NESTED/nested_initramfs.cpio
QBOOT=/usr/share/qemu/qboot.rom
IMG=/scratch/bench-vm.img
RUN=/run/bv
final_out=$RESULTS_DIR/bench-vm
out=/run/bench-vm
mkdir -p "$out" "$final_out" "$RUN"

copy_out()
{
	dmesg > "$out/dmesg.txt"
	cp -r "$out"/. "$final_out"/
}
defer copy_out

require_root
require_cmd qemu-system-x86_64 qemu-storage-daemon timeout fio vdpa
[ -f "$KERNEL" ] || fail "no nested kernel at $KERNEL (scripts/bench-vm shares it)"
[ -f "$INITRD" ] || fail "no $INITRD (make -C selftests)"
[ -f "$QBOOT" ] || fail "no qboot firmware ($QBOOT)"
if [ -n "$profile_hz" ]; then
	command -v perf > /dev/null || fail "BENCH_VM_PROFILE: no perf in the lab VM"
	mkdir -p "$out/prof" "$RUN/prof"
fi
bsw_setup
for c in $configs; do
	case $c in
	pa | pa-cpu0 | pa-w1 | va | blkio | qemu-uring | qemu-native | vhost-user) ;;
	vduse) vdpa_mgmtdev_load vduse ;;
	*) fail "BENCH_VM_CONFIGS: unknown configuration '$c'" ;;
	esac
done

# The fio jobs, in the order L2 runs them: name, then its options. The
# read jobs are time-based. fio never verifies a time-based write job
# ("verification read phase will never start because write phase uses
# all of runtime"), so the write jobs write $wsize (every block once,
# random order) and fio's verify phase then reads it all back and checks
# it; that phase's reads are counted under "read", not in the write IOPS.
tb="--time_based --runtime=$runtime"
jobs=(
	"randread-4k-qd1 --rw=randread --bs=4k --iodepth=1 $tb"
	"randread-4k-qd16 --rw=randread --bs=4k --iodepth=16 $tb"
	"randwrite-4k-qd1 --rw=randwrite --bs=4k --iodepth=1 --size=$wsize --verify=crc32c --verify_fatal=1"
	"randwrite-4k-qd16 --rw=randwrite --bs=4k --iodepth=16 --size=$wsize --verify=crc32c --verify_fatal=1"
	"seqread-128k-qd16 --rw=read --bs=128k --iodepth=16 $tb"
)
# Global options first (fio applies options before the first --name to
# every job).
# The kernel hands init at most 32 arguments (CONFIG_INIT_ENV_ARG_LIMIT):
# L2 gets the same jobs as a job file, $RUN/jobs.fio (L1's /run over 9p).
glob=(--filename=/dev/vda --ioengine=io_uring --direct=1 --randrepeat=0)
fio_args=(--output-format=json --eta=never "${glob[@]}")
jobfile=$RUN/jobs.fio
{
	echo "[global]"
	printf '%s\n' "${glob[@]#--}"
} > "$jobfile"
for j in "${jobs[@]}"; do
	read -r name opts <<< "$j"
	# the markers: one script per job and edge, no arguments
	for m in begin end; do
		printf '#!/bin/sh\necho "NESTED-IO job-%s %s" > /dev/console\n' \
			"$m" "$name" > "$RUN/$name.$m"
		chmod +x "$RUN/$name.$m"
	done
	# shellcheck disable=SC2206 # the options are words
	o=(--stonewall $opts --exec_prerun="$RUN/$name.begin"
	   --exec_postrun="$RUN/$name.end")
	fio_args+=(--name="$name" "${o[@]}")
	{
		echo "[$name]"
		printf '%s\n' "${o[@]#--}"
	} >> "$jobfile"
done
l2_fio=(--output-format=json --eta=never "$jobfile")
{
	echo "# in L2, as nested_io's /init runs it (chroot of L1's root, cwd /tmp):"
	echo "/usr/bin/fio ${l2_fio[*]}"
	echo "# $jobfile, the same as a command line:"
	echo "/usr/bin/fio ${fio_args[*]}"
	echo "# $jobfile:"
	sed 's/^/#   /' "$jobfile"
	echo "# the marker scripts (exec_prerun/exec_postrun) only print, e.g. $RUN/${jobs[0]%% *}.begin:"
	sed 's/^/#   /' "$RUN/${jobs[0]%% *}.begin"
} > "$out/fio.cmd"

{
	echo "reps $reps"
	echo "runtime $runtime"
	echo "write_size $wsize"
	echo "configs $configs"
	echo "size $size"
	echo "l2_mem_mb $mem_mb"
	echo "l2_cpus 1"
	echo "queue_size $qsize"
	echo "l1_cpus $(nproc)"
	echo "l1_mem_kb $(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
	echo "l1_kernel $(uname -r)"
	echo "user_hz $(getconf CLK_TCK)"
	echo "qemu $(qemu-system-x86_64 --version | head -n 1)"
	echo "qsd $(qemu-storage-daemon --version | head -n 1)"
	echo "fio $(fio --version)"
	echo "profile_hz ${profile_hz:-0}"
	echo "profile_jobs $profile_jobs"
	echo "l2_kernel $(strings "$KERNEL" 2> /dev/null | grep -m 1 '^Linux version' || echo unknown)"
} > "$out/env.txt"

log "bench-vm: configs '$configs', $reps reps, ${runtime} s per job, backing $size"
run_t0=$SECONDS
dd if=/dev/urandom of="$IMG" bs=1M count="$(($(numfmt --from=iec "$size") >> 20))" \
	status=none conv=fsync || fail "cannot write $IMG"
log "bench-vm: $IMG written in $((SECONDS - run_t0)) s"
printf 'rep\tconfig\tstatus\twall_s\n' > "$out/cells.tsv"

# What ring size this QEMU gives a guest when asked for $qsize: QEMU's
# virtio-blk-pci on the image, stopped before the guest runs (-S), asked
# over QMP (x-query-virtio-queue-status: vring-num-default, what the guest
# reads as the queue's size). Every configuration's device gets its queues
# from the same virtio_add_queue().
ring_probe()
{
	local sock=$RUN/probe.qmp pid reply got

	rm -f "$sock"
	qemu-system-x86_64 -accel tcg -machine pc -m 64M -nodefaults -display none -S \
		-qmp "unix:$sock,server=on,wait=off" \
		-blockdev "driver=file,node-name=p0,filename=$IMG,read-only=on" \
		-device "virtio-blk-pci,drive=p0,id=probe,queue-size=$qsize" \
		< /dev/null > "$out/ring-probe.qemu" 2>&1 &
	pid=$!
	reply=$(qmp "$sock" '{"execute": "x-query-virtio-queue-status", "arguments": {"path": "/machine/peripheral/probe/virtio-backend", "queue": 0}}' \
		'{"execute": "quit"}' | sed -n 2p)
	kill "$pid" 2> /dev/null
	wait "$pid" 2> /dev/null
	got=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["return"]["vring-num-default"])' \
		"$reply" 2> /dev/null) || fail "ring probe: no answer from QEMU ($reply; $out/ring-probe.qemu)"
	echo "guest_queue_size $got" >> "$out/env.txt"
	[ "$got" = "$qsize" ] ||
		fail "this QEMU gives a guest $got-entry rings when asked for $qsize (QEMU 10.0's virtio_add_queue ignores queue-size): run with BENCH_VM_QSIZE=$got"
	log "bench-vm: QEMU gives the guest $got-entry rings, as every configuration asks"
}
ring_probe

qsd_pid=
qsd_stop()
{
	[ -n "$qsd_pid" ] || return 0
	kill "$qsd_pid" 2> /dev/null
	wait "$qsd_pid" 2> /dev/null
	qsd_pid=
}

cell_cleanup()
{
	[ ! -e "$VDPA_SYSFS/devices/bv" ] || vdpa dev del bv
	[ ! -d "$BSW_CFS/bv" ] || rmdir "$BSW_CFS/bv"
	[ ! -e "$VDPA_SYSFS/devices/bvduse" ] || vdpa dev del bvduse
	qsd_stop
	return 0
}
defer cell_cleanup

# ours: device "bv" on the image, bound to vhost_vdpa; sets VHOST. A
# second argument ATTR=VALUE sets one more configfs attribute.
ours_add()
{
	local use_va=$1 extra=${2:-} cmd

	mkdir "$BSW_CFS/bv" || fail "mkdir $BSW_CFS/bv failed"
	for kv in backing="$IMG" use_va="$use_va" queue_size="$qsize"; do
		echo "${kv#*=}" > "$BSW_CFS/bv/${kv%%=*}" ||
			fail "bv: cannot set ${kv%%=*} to ${kv#*=}"
	done
	if [ -n "$extra" ]; then
		echo "${extra#*=}" > "$BSW_CFS/bv/${extra%%=*}" ||
			fail "bv: cannot set $extra"
		echo "echo ${extra#*=} > $BSW_CFS/bv/${extra%%=*}" >> "$CMD"
	fi
	cmd="vdpa dev add mgmtdev $BSW_MGMTDEV name bv"
	$cmd || fail "$cmd failed"
	vdpa_bind bv vhost_vdpa
	VHOST=$(vdpa_vhostdev bv) || exit
	{
		echo "# ours: stage in configfs, add, bind to vhost_vdpa"
		echo "modprobe vdpa_blk_sw; mount -t configfs none /sys/kernel/config"
		echo "mkdir $BSW_CFS/bv"
		echo "echo $IMG > $BSW_CFS/bv/backing; echo $use_va > $BSW_CFS/bv/use_va"
		echo "echo $qsize > $BSW_CFS/bv/queue_size"
		echo "$cmd"
		echo "echo vhost_vdpa > $VDPA_SYSFS/devices/bv/driver_override"
		echo "echo bv > $VDPA_SYSFS/drivers/vhost_vdpa/bind   # $VHOST"
	} >> "$CMD"
}

# qemu-storage-daemon with EXPORT on the image; its command line to $CMD
qsd_start()
{
	local tag=$1 export=$2 args

	args=(qemu-storage-daemon
	      --object "iothread,id=io0"
	      --blockdev "driver=file,node-name=d0,filename=$IMG,aio=io_uring,cache.direct=on"
	      --export "$export,id=e0,node-name=d0,iothread=io0,writable=on,num-queues=1")
	{
		echo "# the daemon"
		printf '%q ' "${args[@]}"
		echo "&"
	} >> "$CMD"
	"${args[@]}" < /dev/null > "$out/$tag.qsd" 2>&1 &
	qsd_pid=$!
}

# prof_ctl PREFIX CMD SECONDS: switch that perf's events (enable or
# disable) and wait for its ack. Shell built-ins only: the watcher calls it
# between a marker and the next line, and an exec over 9p in a TCG guest
# takes a good part of a second.
prof_ctl()
{
	echo "$2" > "$1.ctl" && read -r -t "$3" -N 4 _ < "$1.ack"
}

# before L2 starts: one perf per profiled job, its events off
prof_open()
{
	local tag=$1 job p

	[ -n "$profile_hz" ] || return 0
	for job in $profile_jobs; do
		p=$RUN/prof/$tag-$job
		rm -f "$p".*
		mkfifo "$p.ctl" "$p.ack"
		setsid perf record -q -a -g -F "$profile_hz" -e cpu-clock -D -1 \
			--control "fifo:$p.ctl,$p.ack" -o "$p.data" \
			< /dev/null > "$p.log" 2>&1 &
		echo $! > "$p.pid"
		# perf opens both FIFOs read-write: this waits until it listens.
		# "ping", not "disable": that would switch off perf's tracking
		# of new threads and mappings too (L2's QEMU is not started yet)
		# shellcheck disable=SC2016
		timeout 300 bash -c 'echo ping > "$1.ctl" && head -c 4 "$1.ack"' \
			sh "$p" > /dev/null ||
			log "bench-vm: $tag: perf for $job did not start: $(cat "$p.log")"
	done
}

# the watcher's hook at each marker: a profiled job's perf on or off; at
# the begin, every thread's name by id, for a thread perf did not see
# being named (its report then says :TID). For ours, the counters of
# each queue at both markers (kicks received, notifications sent,
# requests, polls) into prof/REP-CONFIG-JOB.qstats.
prof_mark()
{
	local p=$RUN/prof/$1-$3 t comm q k v

	[ -n "$profile_hz" ] && [ -e "$p.pid" ] || return 0
	for q in "$VDPA_SYSFS"/devices/bv/blk_sw_q*; do
		[ -d "$q" ] || continue
		printf '%s %s' "$2" "${q##*/}"
		for k in requests notifies interrupts polls; do
			read -r v 2> /dev/null < "$q/$k" || v=-
			printf ' %s %s' "$k" "$v"
		done
		echo
	done >> "$out/prof/$1-$3.qstats"
	case $2 in
	begin)
		prof_ctl "$p" enable 30
		for t in /proc/[0-9]*/task/[0-9]*; do
			read -r comm 2> /dev/null < "$t/comm" &&
				printf '%s\t%s\n' "${t##*/}" "$comm"
		done > "$out/prof/$1-$3.comms"
		;;
	end) prof_ctl "$p" disable 30 ;;
	esac
}

# after L2: stop each perf, keep its reports (by thread, object and
# symbol; folded call chains by thread), drop its data
prof_close()
{
	local tag=$1 job p pid

	[ -n "$profile_hz" ] || return 0
	for job in $profile_jobs; do
		p=$RUN/prof/$tag-$job
		[ -e "$p.pid" ] || continue
		pid=$(cat "$p.pid")
		kill -INT "$pid" 2> /dev/null
		wait "$pid" 2> /dev/null
		perf report -i "$p.data" --no-children -g none --sort comm,dso,sym \
			-t ';' --stdio > "$out/prof/$tag-$job.perf.txt" 2> /dev/null ||
			log "bench-vm: $tag: perf report of $job failed"
		perf report -i "$p.data" --no-children --sort comm \
			-g folded,0.5,caller,function,percent --stdio \
			> "$out/prof/$tag-$job.perf.txt.graph" 2> /dev/null
		rm -f "$p".*
	done
}

run_cell()
{
	local rep=$1 cfg=$2 tag=$1-$2 args memory=shared rc=0 t0 status con watch qpid aio
	local spills

	CMD=$out/$tag.cmd
	: > "$CMD"
	con=$RUN/$tag.console
	args=(qemu-system-x86_64 -accel tcg -m "${mem_mb}M" -smp 1 -bios "$QBOOT"
	      -nodefaults -display none -no-reboot
	      -serial "file:$con" -kernel "$KERNEL" -initrd "$INITRD"
	      -virtfs "local,path=/,mount_tag=l1root,security_model=none,readonly=on,multidevs=remap"
	      -append "console=ttyS0 panic=-1 no_timer_check loglevel=$loglevel -- ${l2_fio[*]}")
	[ -z "$profile_hz" ] || args+=(-name "l2,debug-threads=on")
	case $cfg in
	pa)
		memory=private
		ours_add 0
		args+=(-device "vhost-vdpa-device-pci,vhostdev=$VHOST,queue-size=$qsize") ;;
	pa-cpu0)
		memory=private
		ours_add 0
		echo 0 > "$VDPA_SYSFS/devices/bv/blk_sw_q0/cpu_list" ||
			fail "bv: cannot set cpu_list"
		echo "echo 0 > $VDPA_SYSFS/devices/bv/blk_sw_q0/cpu_list" >> "$CMD"
		args+=(-device "vhost-vdpa-device-pci,vhostdev=$VHOST,queue-size=$qsize") ;;
	pa-w1)
		memory=private
		ours_add 0 num_workers=1
		args+=(-device "vhost-vdpa-device-pci,vhostdev=$VHOST,queue-size=$qsize") ;;
	va)
		ours_add 1
		args+=(-device "vhost-vdpa-device-pci,vhostdev=$VHOST,queue-size=$qsize") ;;
	blkio)
		ours_add 0
		args+=(-object "iothread,id=io0"
		       -blockdev "node-name=d0,driver=virtio-blk-vhost-vdpa,path=$VHOST,cache.direct=on"
		       -device "virtio-blk-pci,drive=d0,iothread=io0,num-queues=1,queue-size=$qsize") ;;
	qemu-uring | qemu-native)
		memory=private
		aio=io_uring
		[ "$cfg" = qemu-uring ] || aio=native
		args+=(-object "iothread,id=io0"
		       -blockdev "driver=file,node-name=d0,filename=$IMG,aio=$aio,cache.direct=on"
		       -device "virtio-blk-pci,drive=d0,iothread=io0,num-queues=1,queue-size=$qsize") ;;
	vhost-user)
		rm -f "$RUN/vub.sock"
		qsd_start "$tag" "type=vhost-user-blk,addr.type=unix,addr.path=$RUN/vub.sock"
		wait_for 30 test -S "$RUN/vub.sock" || fail "$tag: no vhost-user socket"
		args+=(-chardev "socket,id=c0,path=$RUN/vub.sock"
		       -device "vhost-user-blk-pci,chardev=c0,num-queues=1,queue-size=$qsize") ;;
	vduse)
		qsd_start "$tag" "type=vduse-blk,name=bvduse,queue-size=$qsize"
		wait_for 30 test -e /dev/vduse/bvduse || fail "$tag: no /dev/vduse/bvduse"
		vdpa dev add mgmtdev vduse name bvduse || fail "$tag: vdpa dev add vduse failed"
		wait_for 5 test -e "$VDPA_SYSFS/devices/bvduse" || fail "$tag: no vdpa device bvduse"
		vdpa_bind bvduse vhost_vdpa
		VHOST=$(vdpa_vhostdev bvduse) || exit
		{
			echo "vdpa dev add mgmtdev vduse name bvduse"
			echo "echo vhost_vdpa > $VDPA_SYSFS/devices/bvduse/driver_override"
			echo "echo bvduse > $VDPA_SYSFS/drivers/vhost_vdpa/bind   # $VHOST"
		} >> "$CMD"
		args+=(-device "vhost-vdpa-device-pci,vhostdev=$VHOST,queue-size=$qsize") ;;
	esac
	case $memory in
	shared)
		args+=(-object "memory-backend-memfd,id=m,size=${mem_mb}M,share=on"
		       -machine "pc,memory-backend=m") ;;
	private)
		args+=(-machine pc) ;;
	esac
	{
		echo "# L2 (PA mode pins guest RAM: RLIMIT_MEMLOCK raised for every cell)"
		echo "ulimit -l $(((mem_mb + 256) * 1024))"
		printf '%q ' "${args[@]}"
		echo
	} >> "$CMD"

	rm -f "$con"
	: > "$con"
	prof_open "$tag"
	t0=$EPOCHREALTIME
	(ulimit -l $(((mem_mb + 256) * 1024)) &&
	 exec timeout -k 10 "$l2_timeout" "${args[@]}") < /dev/null > "$out/$tag.qemu" 2>&1 &
	qpid=$!
	# stamp each marker line with L1's clock and CPU counters
	tail -n +1 -F --pid="$qpid" "$con" 2> /dev/null | while IFS= read -r line; do
		case $line in
		"NESTED-IO job-"*)
			read -r cpu < /proc/stat
			line=${line%$'\r'}
			printf '%s %s %s\n' "${line#NESTED-IO job-}" "$EPOCHREALTIME" "$cpu"
			read -r edge job <<< "${line#NESTED-IO job-}"
			prof_mark "$tag" "$edge" "$job"
			;;
		esac
	done > "$out/$tag.marks" &
	watch=$!
	if [ "$peek" -gt 0 ]; then
		while kill -0 "$qpid" 2> /dev/null; do
			cp "$con" "$final_out/current.console"
			cp "$out/$tag.qemu" "$final_out/current.qemu"
			dmesg | tail -n 40 > "$final_out/current.dmesg"
			sleep "$peek"
		done &
	fi
	wait "$qpid" || rc=$?
	wait "$watch"
	tr -d '\r' < "$con" > "$out/$tag.console"
	prof_close "$tag"
	sed -n '/^NESTED-IO fio-begin$/,/^NESTED-IO fio-end$/p' "$out/$tag.console" |
		sed -n '/^{$/,/^}$/p' > "$out/$tag.json"
	status=$(grep -m 1 '^NESTED-IO result=' "$out/$tag.console" | cut -d' ' -f2-)
	[ "$rc" = 0 ] || status="qemu-status=$rc ${status:-no result}"
	[ -n "$status" ] || status="no result"
	printf '%s\t%s\t%s\t%s\n' "$rep" "$cfg" "${status// /,}" \
		"$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" \
		>> "$out/cells.tsv"
	spills=
	if [ -r "$VDPA_SYSFS/devices/bv/blk_sw_q0/spills" ]; then
		read -r spills < "$VDPA_SYSFS/devices/bv/blk_sw_q0/spills"
		echo "$spills" > "$out/$tag.spills"
		spills=", spills $spills"
	fi
	log "bench-vm: rep $rep $cfg: $status ($(wc -l < "$out/$tag.marks") marks, $((SECONDS - run_t0)) s into the run$spills)"
	grep -v '^$' "$out/$tag.qemu" | head -n 5 | sed "s/^/  qemu $tag: /" >&2
	cell_cleanup
	cp -r "$out"/. "$final_out"/
}

cd /tmp || fail "no /tmp"
for ((r = 1; r <= reps; r++)); do
	for c in $configs; do
		if [ "$budget" -gt 0 ] && [ $((SECONDS - run_t0)) -ge "$budget" ]; then
			log "bench-vm: BENCH_VM_BUDGET=$budget s spent: rep $r $c and later not run"
			printf 'budget %s s spent at rep %s %s\n' "$budget" "$r" "$c" >> "$out/env.txt"
			break 2
		fi
		run_cell "$r" "$c"
	done
done
log "bench-vm: done in $((SECONDS - run_t0)) s"
