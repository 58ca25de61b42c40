#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=3300
#
# Real QEMU clients through vhost-vdpa: a nested guest (QEMU TCG inside the
# lab VM) boots the tiny kernel of scripts/lab/nested-kernel (shared as
# /nested) with selftests/nested's initramfs, whose /init writes a seeded
# pattern to its /dev/vda, reads it back, compares and prints its checksum.
# The disk is our device on a backing file, given to QEMU
#   dev: whole, -device vhost-vdpa-device-pci (the guest's virtio-blk
#        driver on our virtqueues; QEMU 10 sets up 1024-entry rings)
#   blk: as a block node, -blockdev driver=virtio-blk-vhost-vdpa (libblkio)
#        behind QEMU's own virtio-blk-pci
# in both memory modes: va (use_va=1; guest RAM from a shared memfd) and pa
# (use_va=0; vhost-vdpa pins all guest RAM, so RLIMIT_MEMLOCK is raised to
# cover it; QEMU's default private RAM for dev, the memfd for blk). The guest's checksum must equal the pattern's, and the lab
# VM reads the same back from the backing file and through virtio_vdpa.
#
# va-noshare: VA mode with QEMU's default private anonymous RAM, which
# vhost-vdpa silently leaves out of the device's address space. The device
# must say so and mark itself DEVICE_NEEDS_RESET at the first kick rather
# than leave the guest waiting silently; afterwards a reset device works.
#
# pa-fio, va-fio: fio in the nested guest, the short form of a VM on our
# disk. The lab VM's root is shared read-only with the nested guest over
# virtio-9p (-virtfs, mount tag l1root); its /init chroots there and runs
# the lab's Debian fio: one 4k randwrite job at iodepth 16 (io_uring,
# O_DIRECT) over NESTED_FIO_SIZE (default 4M) of /dev/vda with
# verify=crc32c, through -device vhost-vdpa-device-pci, PA mode on QEMU's
# default RAM (pa) or VA mode on a shared memfd (va). fio's status must be
# 0, its JSON must show no error and exactly NESTED_FIO_SIZE written and
# read back (verified); then the lab VM verifies the backing file with the
# same job (fio --verify_only).
#
# NESTED_RUNS: runs to do, among va-dev va-blk pa-dev pa-blk va-noshare
# pa-fio va-fio, "all" (make check-nested) or "pa-fio" (make check, unless
# it is set); default "va-dev pa-blk". Each nested QEMU has a hard time limit,
# NESTED_TIMEOUT seconds (600); reaching it fails the run. Wall times go to
# $RESULTS_DIR/timings.

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

KERNEL=/nested/vmlinux
NESTED=$REPO/selftests/nested
INITRD=$NESTED/nested_initramfs.cpio
QBOOT=/usr/share/qemu/qboot.rom
MEM_MB=256
BYTES=$((4 << 20))
TIMEOUT=${NESTED_TIMEOUT:-600}
RUNS=${NESTED_RUNS:-va-dev pa-blk}
[ "$RUNS" = all ] && RUNS="va-dev va-blk pa-dev pa-blk va-noshare pa-fio va-fio"
NESTED_FIO_SIZE=${NESTED_FIO_SIZE:-4M}
[ "$RUNS" != none ] || skip "NESTED_RUNS=none"

require_root
require_cmd qemu-system-x86_64 timeout fio jq
[ -f "$KERNEL" ] ||
	skip "no nested kernel at $KERNEL (scripts/lab/check builds it and shares it)"
[ -f "$INITRD" ] && [ -x "$NESTED/nested_io" ] ||
	skip "selftests/nested not built (make -C selftests)"
[ -f "$QBOOT" ] || skip "no qboot firmware ($QBOOT)"
bsw_setup
# va-noshare provokes this on purpose
dmesg_allow 'device needs reset; VA mode maps only shared file-backed memory'
dmesg_allow 'vringh:|Failed to access avail idx'

# nested_qemu NAME MEMORY FORM VHOST SEED [FIO_ARG...]: boot the nested
# guest, its console in $RESULTS_DIR/NAME.console, QEMU's messages in
# NAME.qemu; returns timeout's status (124: time limit reached). With
# FIO_ARGs, its /init runs fio with them from the lab VM's root (9p).
nested_qemu()
{
	local name=$1 memory=$2 form=$3 vhost=$4 seed=$5 args append rc=0

	shift 5
	append="console=ttyS0 panic=-1 NESTED_SEED=$seed NESTED_BYTES=$BYTES"
	args=(-accel tcg -m "${MEM_MB}M" -smp 1 -bios "$QBOOT"
	      -nodefaults -display none -no-reboot
	      -serial "file:$RESULTS_DIR/$name.console" -pidfile "$RESULTS_DIR/$name.pid"
	      -kernel "$KERNEL" -initrd "$INITRD"
	      -trace vhost_vdpa_set_vring_num)
	if [ $# -gt 0 ]; then
		# the kernel hands the words after "--" to /init as arguments
		append="console=ttyS0 panic=-1 loglevel=4 -- $*"
		args+=(-virtfs "local,path=/,mount_tag=l1root,security_model=none,readonly=on,multidevs=remap")
	fi
	args+=(-append "$append")
	case $memory in
	shared)
		args+=(-object "memory-backend-memfd,id=m,size=${MEM_MB}M,share=on"
		       -machine pc,memory-backend=m) ;;
	private)
		args+=(-machine pc) ;;
	esac
	case $form in
	dev)
		args+=(-device "vhost-vdpa-device-pci,vhostdev=$vhost") ;;
	blk)
		args+=(-blockdev "node-name=d0,driver=virtio-blk-vhost-vdpa,path=$vhost,cache.direct=on"
		       -device virtio-blk-pci,drive=d0) ;;
	esac
	# PA mode: vhost-vdpa pins every mapped page and counts it against
	# RLIMIT_MEMLOCK (no exemption for root): cover guest RAM and QEMU's
	# own buffers (libblkio maps those too).
	(ulimit -l $(((MEM_MB + 256) * 1024)) &&
	 exec timeout -k 10 "$TIMEOUT" qemu-system-x86_64 "${args[@]}") \
		< /dev/null > "$RESULTS_DIR/$name.qemu" 2>&1 || rc=$?
	return "$rc"
}

# A fresh device on a fresh backing file, bound to vhost_vdpa; sets VHOST.
nested_device()
{
	local use_va=$1

	truncate -s 0 /scratch/nested.img
	truncate -s 64M /scratch/nested.img
	bsw_stage blk0 backing=/scratch/nested.img use_va="$use_va" queue_size=1024
	vdpa_dev_add "$BSW_MGMTDEV" blk0
	expect_eq "use_va" "$(bsw_attr blk0 use_va)" "$use_va"
	VHOST=$(vdpa_bind_vhost blk0) || exit
}

nested_device_del()
{
	vdpa_dev_del blk0
	_bsw_rmdir "$BSW_CFS/blk0"
}

timing()
{
	log "$1: $2 s"
	printf '%s %s\n' "$1" "$2" >> "$RESULTS_DIR/timings"
}

run_io()
{
	local name=$1 use_va=0 form=${1#*-} seed t0 rc=0 line sum want got dev memory

	[ "${name%%-*}" = va ] && use_va=1
	seed=$((RANDOM * 32768 + RANDOM))
	# VA mode needs shared file-backed RAM. PA mode: the whole device on
	# QEMU's default RAM (on a memfd, its 4 KiB pages would each be an
	# IOTLB entry, past vhost-vdpa's max_iotlb_entries, 2048 by default);
	# libblkio on the memfd (on private RAM its first request never
	# completes in the guest: see Documentation/vhost-vdpa.rst)
	memory=shared
	[ "$name" != pa-dev ] || memory=private
	nested_device "$use_va"
	t0=$SECONDS
	nested_qemu "$name" "$memory" "$form" "$VHOST" "$seed" || rc=$?
	timing "$name" $((SECONDS - t0))
	sed 's/^/  | /' "$RESULTS_DIR/$name.qemu" | grep -v vhost_vdpa_set_vring_num >&2
	case $rc in 124 | 137) fail "$name: nested QEMU still running after $TIMEOUT s (status $rc)" ;; esac
	[ "$rc" = 0 ] || fail "$name: nested QEMU exited with status $rc"
	line=$(tr -d '\r' < "$RESULTS_DIR/$name.console" | grep '^NESTED-IO result=') ||
		fail "$name: the nested guest reported nothing (console: $RESULTS_DIR/$name.console)"
	log "$name: $line"
	case $line in *' result=ok '*) ;; *) fail "$name: nested guest: $line" ;; esac
	sum=$(sed -n 's/.* sum=\([0-9a-f]*\).*/\1/p' <<< "$line")
	want=$("$NESTED/nested_io" expect "$BYTES" "$seed") || fail "nested_io expect failed"
	expect_eq "$name: checksum the nested guest read back" "$sum" "$want"
	if [ "$form" = dev ]; then
		# QEMU 10's generic device asks for 1024-entry rings
		grep -q 'vhost_vdpa_set_vring_num .* num: 1024' "$RESULTS_DIR/$name.qemu" ||
			fail "$name: QEMU did not set up a 1024-entry ring"
	fi
	got=$(bsw_stat blk0 write_bytes)
	[ "$got" -ge "$BYTES" ] || fail "$name: the device wrote $got bytes, expected >= $BYTES"

	# the lab VM reads the same data: from the backing file ...
	vdpa_unbind blk0
	got=$("$NESTED/nested_io" sum /scratch/nested.img "$BYTES") || fail "nested_io sum failed"
	expect_eq "$name: checksum of the backing file" "$got" "$want"
	# ... and through virtio_vdpa on the same device
	dev=$(vdpa_bind_virtio blk0) || exit
	got=$("$NESTED/nested_io" sum "$dev" "$BYTES") || fail "nested_io sum $dev failed"
	expect_eq "$name: checksum through virtio_vdpa ($dev)" "$got" "$want"
	nested_device_del
}

# fio in the nested guest (pa-fio, va-fio): see the top of this file.
run_fio()
{
	local name=$1 use_va=0 memory=private t0 rc=0 line json want got job

	if [ "${name%%-*}" = va ]; then
		use_va=1
		memory=shared
	fi
	want=$(numfmt --from=iec "$NESTED_FIO_SIZE") || fail "NESTED_FIO_SIZE=$NESTED_FIO_SIZE"
	job=(--name=nested-fio --rw=randwrite --bs=4k --size="$NESTED_FIO_SIZE"
	     --verify=crc32c --verify_fatal=1 --output-format=json)
	nested_device "$use_va"
	t0=$SECONDS
	nested_qemu "$name" "$memory" dev "$VHOST" 0 "${job[@]}" \
		--filename=/dev/vda --ioengine=io_uring --iodepth=16 --direct=1 || rc=$?
	timing "$name" $((SECONDS - t0))
	sed 's/^/  | /' "$RESULTS_DIR/$name.qemu" | grep -v vhost_vdpa_set_vring_num >&2
	case $rc in 124 | 137) fail "$name: nested QEMU still running after $TIMEOUT s (status $rc)" ;; esac
	[ "$rc" = 0 ] || fail "$name: nested QEMU exited with status $rc"
	tr -d '\r' < "$RESULTS_DIR/$name.console" > "$RESULTS_DIR/$name.console.txt"
	line=$(grep '^NESTED-IO result=' "$RESULTS_DIR/$name.console.txt") ||
		fail "$name: the nested guest reported nothing (console: $RESULTS_DIR/$name.console)"
	log "$name: $line"
	# fio's JSON document, between the markers; what fio wrote besides
	json=$RESULTS_DIR/$name.json
	sed -n '/^NESTED-IO fio-begin$/,/^NESTED-IO fio-end$/p' "$RESULTS_DIR/$name.console.txt" |
		sed -n '/^{$/,/^}$/p' > "$json"
	sed -n '/^NESTED-IO fio-begin$/,/^{$/p' "$RESULTS_DIR/$name.console.txt" |
		grep -v '^NESTED-IO\|^{$' | sed "s/^/  fio $name: /" >&2
	case $line in *' result=ok fio_status=0 '*) ;; *) fail "$name: nested guest: $line" ;; esac
	expect_eq "$name: fio jobs with an error" \
		"$(jq '[.jobs[] | select(.error != 0)] | length' "$json")" 0
	expect_eq "$name: bytes fio wrote" "$(jq '.jobs[0].write.io_bytes' "$json")" "$want"
	expect_eq "$name: bytes fio read back and verified" \
		"$(jq '.jobs[0].read.io_bytes' "$json")" "$want"
	log "$name: $(fio_summary "$json")"
	if grep -q '^verify: \|bad magic\|crc32c: verify failed' "$RESULTS_DIR/$name.console.txt"; then
		fail "$name: fio reported a verify error"
	fi
	if ! grep -q 'vhost_vdpa_set_vring_num .* num: 1024' "$RESULTS_DIR/$name.qemu"; then
		fail "$name: QEMU did not set up a 1024-entry ring"
	fi
	got=$(bsw_stat blk0 write_bytes)
	[ "$got" -ge "$want" ] || fail "$name: the device wrote $got bytes, expected >= $want"

	# the lab VM verifies the backing file with the same job
	vdpa_unbind blk0
	fio_run "$name-backing" "${job[@]}" --filename=/scratch/nested.img \
		--ioengine=psync --verify_only
	expect_eq "$name: bytes of the backing file verified" \
		"$(jq '.jobs[0].read.io_bytes' "$RESULTS_DIR/$name-backing.json")" "$want"
	nested_device_del
}

# VA mode, private RAM: the device must give up loudly, not hang silently.
run_noshare()
{
	local name=va-noshare t0 rc=0 pid dev mark i

	nested_device 1
	mark=$(dmesg | wc -l)
	t0=$SECONDS
	nested_qemu "$name" private dev "$VHOST" 1 &
	pid=$!
	for ((i = 0; i < TIMEOUT; i++)); do
		dmesg | tail -n +"$((mark + 1))" | grep -q 'blk0: vq [0-9]*: .*device needs reset' &&
			break
		kill -0 "$pid" 2> /dev/null || break
		sleep 1
	done
	timing "$name (to the message)" $((SECONDS - t0))
	dmesg | tail -n +"$((mark + 1))" | grep 'blk0: vq' | sed 's/^/  dmesg: /' >&2
	# the guest cannot have done any I/O: end it
	[ -f "$RESULTS_DIR/$name.pid" ] && kill "$(cat "$RESULTS_DIR/$name.pid")" 2> /dev/null
	wait "$pid" || rc=$?
	log "$name: nested QEMU ended with status $rc; its guest's console ends with:"
	tail -n 5 "$RESULTS_DIR/$name.console" | sed 's/^/  | /' >&2
	expect_eq "$name: 'device needs reset' messages" \
		"$(dmesg | tail -n +"$((mark + 1))" | grep -c 'blk0: vq [0-9]*: .*device needs reset; VA mode maps only shared file-backed memory')" 1
	if grep -q '^NESTED-IO result=ok' "$RESULTS_DIR/$name.console"; then
		fail "$name: the nested guest reported success on unmapped memory"
	fi
	# closing /dev/vhost-vdpa-N reset the device: it works again
	dev=$(vdpa_bind_virtio blk0) || exit
	fio_verify "$dev" 4M
	nested_device_del
}

for run in $RUNS; do
	case $run in
	va-dev | va-blk | pa-dev | pa-blk) run_io "$run" ;;
	va-noshare) run_noshare ;;
	pa-fio | va-fio) run_fio "$run" ;;
	*) fail "NESTED_RUNS: unknown run '$run'" ;;
	esac
done
