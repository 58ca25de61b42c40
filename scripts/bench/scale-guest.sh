#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of "make bench-scale" (issue 18, item 5): SCALE_N devices of
# each system on the same SCALE_N backing files (sparse files of
# SCALE_SIZE_MB on the /scratch tmpfs), one system after the other:
#   ours   vdpa_blk_sw (mgmtdev vdpasim_blk-sw, default parameters but
#          the backing), each bound to virtio_vdpa: a /dev/vdX each
#   loop   losetup --direct-io=on on the same files
# Per system: a snapshot before, every device created (each step timed
# with $EPOCHREALTIME: no process of ours in the timed window but the
# command itself), a snapshot with all devices idle, SCALE_IDLE_S seconds
# of /proc/stat with nothing running, the fio aggregate on the first 16
# devices (16 jobs at QD4, one per device; one job at QD64 over the same
# 16 devices, round robin, so QD4 each on average, without 16 fio
# processes competing for the guest's CPUs; and one job at QD64 on the
# first device; SCALE_REPS times each, alternated), every device deleted,
# a snapshot after. Ours only: between the fio aggregate and the delete,
# fio verify on a sample of the devices (see ours_verify). A snapshot is
# /proc/meminfo and /proc/loadavg (its task count) after a sync and
# drop_caches. Nothing is computed here:
# scripts/bench/scale-report reads what this leaves in
# $RESULTS_DIR/scale/:
#   env.txt                       the inputs
#   SYSTEM-STATE.meminfo/.loadavg STATE: base, idle, deleted
#   SYSTEM-STATE.comm             the name of every task (base and idle)
#   SYSTEM-idle.stat              /proc/stat's cpu line, start and end
#                                 (SYSTEM "none": before any device)
#   SYSTEM-idle.tasks0, .tasks1   /proc/*/task/*/stat before and after
#   SYSTEM-times.tsv              step index start_us end_us, per device
#                                 (steps: stage, add, bind, create, delete,
#                                 unstage)
#   SYSTEM-16x4-REP.json, SYSTEM-16x4p1-REP.json (one process),
#   SYSTEM-1x64-REP.json          fio's JSON
#   ours-verify.json, .cmd, .log  fio verify's JSON, its command line (as
#                                 run in this directory), its other output
#   ours-verify.txt               the verify's inputs, fio's exit status
#                                 and the sha256 per sampled device
#   dmesg.txt                     the kernel log at the end
# Results are written to tmpfs and copied to /results (9p) at the end
# (see full-guest.sh: 9p writeback under load stalled fio once).

. /repo/selftests/lib.sh
. /repo/selftests/blk_sw.sh

n=${SCALE_N:-1024}
size_mb=${SCALE_SIZE_MB:-32}
idle_s=${SCALE_IDLE_S:-10}
reps=${SCALE_REPS:-3}
runtime=${SCALE_RUNTIME:-5}
systems=${SCALE_SYSTEMS:-ours loop}
verify_spread=${SCALE_VERIFY_SPREAD:-16}
verify_random=${SCALE_VERIFY_RANDOM:-2}
verify_seed=${SCALE_VERIFY_SEED:-$(($(date +%s%N) / 1000 % 1000000))}
verify_mb=${SCALE_VERIFY_MB:-4}
nfio=16
[ "$n" -ge "$nfio" ] || fail "SCALE_N=$n: at least $nfio devices are needed"
[ "$verify_mb" -ge 1 ] && [ "$verify_mb" -le "$size_mb" ] ||
	fail "SCALE_VERIFY_MB=$verify_mb: 1 to SCALE_SIZE_MB ($size_mb)"
[ "$verify_spread" -ge 2 ] || fail "SCALE_VERIFY_SPREAD=$verify_spread: at least 2"

final_out=$RESULTS_DIR/scale
out=/run/scale-results
mkdir -p "$out" "$final_out"
copy_out()
{
	dmesg > "$out/dmesg.txt"
	cp -r "$out"/. "$final_out"/
}
defer copy_out

bsw_setup
load_modules loop
command -v fio > /dev/null || fail "no fio in the guest"

{
	echo "n $n"
	echo "size_mb $size_mb"
	echo "idle_s $idle_s"
	echo "reps $reps"
	echo "runtime $runtime"
	echo "fio_devices $nfio"
	echo "cpus $(nproc)"
	echo "mem_kb $(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
	echo "kernel $(uname -r)"
	echo "fio $(fio --version)"
	echo "default_num_queues $(cat /sys/module/vdpa_blk_sw/parameters/default_num_queues 2> /dev/null)"
} > "$out/env.txt"
log "bench-scale: $n devices per system ($systems), backings ${size_mb} MiB, $(nproc) CPUs"

# The backings: sparse, but the first $nfio hold data (fio reads them).
dir=/scratch/scale
mkdir -p "$dir"
dd if=/dev/urandom of="$dir/fill" bs=1M count="$size_mb" status=none ||
	fail "cannot write $dir/fill"
for ((i = 0; i < n; i++)); do
	if ((i < nfio)); then
		cp "$dir/fill" "$dir/b$i"
	else
		truncate -s "${size_mb}M" "$dir/b$i"
	fi || fail "cannot make $dir/b$i"
done
rm -f "$dir/fill"

snap()
{
	sync
	echo 3 > /proc/sys/vm/drop_caches
	sleep 2
	cat /proc/meminfo > "$out/$1.meminfo"
	cat /proc/loadavg > "$out/$1.loadavg"
}

comm_list()
{
	cat /proc/[0-9]*/task/*/comm 2> /dev/null | sort > "$out/$1.comm"
}

# The whole guest's CPU over $idle_s, and every task's around that window
# (its own reads outside the window)
idle_cpu()
{
	local f=$out/$1-idle.stat

	sleep 2
	cat /proc/[0-9]*/task/[0-9]*/stat > "$out/$1-idle.tasks0" 2> /dev/null
	grep '^cpu ' /proc/stat > "$f"
	sleep "$idle_s"
	grep '^cpu ' /proc/stat >> "$f"
	cat /proc/[0-9]*/task/[0-9]*/stat > "$out/$1-idle.tasks1" 2> /dev/null
}

# Per device path of the current system
declare -a dev
times=

# t STEP INDEX CMD...: run CMD and append its wall time; fail on error
t()
{
	local step=$1 i=$2 t0 t1

	shift 2
	t0=$EPOCHREALTIME
	"$@" || fail "$step $i: '$*' failed"
	t1=$EPOCHREALTIME
	printf '%s\t%s\t%s\t%s\n' "$step" "$i" "${t0/./}" "${t1/./}" >> "$times"
}

ours_bind()
{
	local d=$VDPA_SYSFS/devices/$1

	echo virtio_vdpa > "$d/driver_override" &&
		echo "$1" > "$VDPA_SYSFS/drivers/virtio_vdpa/bind"
}

ours_stage()
{
	mkdir "$BSW_CFS/$1" && echo "$2" > "$BSW_CFS/$1/backing"
}

ours_create_all()
{
	local i

	for ((i = 0; i < n; i++)); do
		t stage "$i" ours_stage "s$i" "$dir/b$i"
	done
	for ((i = 0; i < n; i++)); do
		t add "$i" vdpa dev add mgmtdev "$BSW_MGMTDEV" name "s$i"
		t bind "$i" ours_bind "s$i"
	done
	# fio needs the first ones; the others must have a disk as well
	for ((i = 0; i < nfio; i++)); do
		dev[i]=$(vdpa_blkdev "s$i") || exit
	done
	wait_for 30 all_have_disks || fail "not every device of ours has a disk"
	dev[n - 1]=$(vdpa_blkdev "s$((n - 1))") || exit
}

all_have_disks()
{
	local g=("$VDPA_SYSFS"/devices/s*/virtio*/block/*)

	[ -e "${g[0]}" ] && [ "${#g[@]}" = "$n" ]
}

ours_delete_all()
{
	local i

	for ((i = 0; i < n; i++)); do
		t delete "$i" vdpa dev del "s$i"
	done
	for ((i = 0; i < n; i++)); do
		t unstage "$i" rmdir "$BSW_CFS/s$i"
	done
}

loop_create_all()
{
	local i t0 t1

	for ((i = 0; i < n; i++)); do
		t0=$EPOCHREALTIME
		dev[i]=$(losetup --direct-io=on --show -f "$dir/b$i") ||
			fail "losetup $dir/b$i failed"
		t1=$EPOCHREALTIME
		printf 'create\t%s\t%s\t%s\n' "$i" "${t0/./}" "${t1/./}" >> "$times"
	done
}

loop_delete_all()
{
	local i

	for ((i = 0; i < n; i++)); do
		t delete "$i" losetup -d "${dev[i]}"
	done
}

# Whatever a failure leaves: every vdpa device, loop device, configfs item.
cleanup_all()
{
	local i

	vdpa_dev_del_all
	losetup -D
	for ((i = 0; i < n; i++)); do
		[ ! -d "$BSW_CFS/s$i" ] || rmdir "$BSW_CFS/s$i"
	done
	return 0
}
defer cleanup_all

fio_agg()
{
	local sys=$1 r=$2 common jobs i

	common=(--ioengine=io_uring --direct=1 --rw=randread --bs=4k
		--time_based --runtime="$runtime" --ramp_time=1
		--norandommap --randrepeat=0)
	jobs=()
	for ((i = 0; i < nfio; i++)); do
		jobs+=(--name="d$i" --filename="${dev[i]}" --iodepth=4)
	done
	fio --output-format=json --output="$out/$sys-16x4-$r.json" \
		"${common[@]}" "${jobs[@]}" > /dev/null 2>&1 ||
		fail "fio 16x4 on $sys failed"
	fio --output-format=json --output="$out/$sys-16x4p1-$r.json" \
		"${common[@]}" --name=all --iodepth=64 --file_service_type=roundrobin \
		--filename="$(IFS=:; echo "${dev[*]:0:nfio}")" > /dev/null 2>&1 ||
		fail "fio 16x4 in one process on $sys failed"
	fio --output-format=json --output="$out/$sys-1x64-$r.json" \
		"${common[@]}" --name=d0 --filename="${dev[0]}" --iodepth=64 \
		> /dev/null 2>&1 || fail "fio 1x64 on $sys failed"
}

# fio verify on ours (issue 18: "1,024 devices work with fio verify on a
# sample"), with all n devices created and bound. The sample:
# $verify_spread devices evenly spaced over the whole range, the first
# and the last among them, and $verify_random more drawn from
# $verify_seed (printed, in ours-verify.txt and the report: a run can be
# repeated with SCALE_VERIFY_SEED). One fio process writes the first
# $verify_mb MiB of every sampled /dev/vdX at once, 4k random writes
# with crc32c headers, then reads every block back and checks it
# (do_verify; verify_fatal: a bad block ends the job with an error).
# Then, per sampled device, the sha256 of that range read again through
# /dev/vdX (O_DIRECT) and, once every device is deleted, of the same
# bytes of its backing file: the report wants the two equal and the
# devices' hashes all different (fio's data differs per job, so a device
# that wrote another's backing, or none, shows). Nothing here stops the
# bench on a mismatch: scripts/bench/scale-report decides pass or fail
# and make bench-scale exits non-zero on a fail.
#
# Where: after the idle snapshot, the idle CPU window and the fio
# aggregate, just before the delete, so that every value measured before
# this existed is measured as it was (the devices idle since they were
# bound, the same reads). The verify writes a sparse backing's first
# MiB; ours_verify_backings makes those backings sparse again before the
# "deleted" snapshot, so the memory kept after deleting all is not
# moved by it either.
declare -a vsample vdev

verify_pick()
{
	local k i x=$verify_seed
	local -A seen=()

	for ((k = 0; k < verify_spread; k++)); do
		i=$(((k * (n - 1) + (verify_spread - 1) / 2) / (verify_spread - 1)))
		seen[$i]=1
	done
	# a plain LCG: the same seed gives the same devices in any bash
	for ((k = 0; k < verify_random && ${#seen[@]} < n; k++)); do
		x=$(((x * 1103515245 + 12345) % 2147483648))
		i=$(((x / 65536) % n))
		if [ -n "${seen[$i]:-}" ]; then
			k=$((k - 1))
			continue
		fi
		seen[$i]=1
	done
	mapfile -t vsample < <(printf '%s\n' "${!seen[@]}" | sort -n)
}

ours_verify()
{
	local info=$out/ours-verify.txt cmd i h rc=0

	verify_pick
	for i in "${vsample[@]}"; do
		vdev[i]=$(vdpa_blkdev "s$i") || exit
	done
	{
		echo "seed $verify_seed"
		echo "spread $verify_spread"
		echo "random $verify_random"
		echo "size_mb $verify_mb"
		echo "sample ${vsample[*]}"
	} > "$info"
	cmd=(fio --output-format=json --output=ours-verify.json --eta=never
		--ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=4
		--size="${verify_mb}M" --verify=crc32c --do_verify=1
		--verify_fatal=1)
	for i in "${vsample[@]}"; do
		cmd+=(--name="s$i" --filename="${vdev[i]}")
	done
	printf '%q ' "${cmd[@]}" | sed 's/ $//' > "$out/ours-verify.cmd"
	log "ours: fio verify on ${#vsample[@]} of $n devices (seed $verify_seed):" \
		"${vsample[*]}"
	(cd "$out" && "${cmd[@]}") > "$out/ours-verify.log" 2>&1 || rc=$?
	echo "status $rc" >> "$info"
	for i in "${vsample[@]}"; do
		h=$(dd if="${vdev[i]}" bs=1M count="$verify_mb" iflag=direct \
			status=none | sha256sum)
		echo "device $i ${vdev[i]} ${h%% *}" >> "$info"
	done
	log "ours: fio verify exited with status $rc"
}

# After every device is deleted: the backings' bytes, and the sparse
# ones sparse again (see above)
ours_verify_backings()
{
	local i h

	for i in "${vsample[@]}"; do
		h=$(head -c $((verify_mb << 20)) "$dir/b$i" | sha256sum)
		echo "backing $i ${h%% *}" >> "$out/ours-verify.txt"
		((i < nfio)) && continue
		truncate -s 0 "$dir/b$i" && truncate -s "${size_mb}M" "$dir/b$i" ||
			fail "cannot make $dir/b$i sparse again"
	done
}

cd /tmp || fail "no /tmp"
# The CPU use of the guest with no device at all, for reference
idle_cpu none
for sys in $systems; do
	times=$out/$sys-times.tsv
	: > "$times"
	comm_list "$sys-base"
	snap "$sys-base"
	s0=$SECONDS
	"${sys}_create_all"
	log "$sys: $n devices created in $((SECONDS - s0)) s (${dev[0]} .. ${dev[n - 1]})"
	snap "$sys-idle"
	comm_list "$sys-idle"
	idle_cpu "$sys"
	for ((r = 1; r <= reps; r++)); do
		fio_agg "$sys" "$r"
	done
	log "$sys: fio done"
	[ "$sys" != ours ] || ours_verify
	s0=$SECONDS
	"${sys}_delete_all"
	log "$sys: $n devices deleted in $((SECONDS - s0)) s"
	[ "$sys" != ours ] || ours_verify_backings
	snap "$sys-deleted"
done
log "bench-scale: done"
