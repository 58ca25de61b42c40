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
# migrate: live migration of a guest whose disk is ours, in the libblkio
# form (QEMU's own virtio-blk-pci owns the guest's queues, so QEMU migrates
# its state as for any disk; vhost-vdpa-device-pci cannot migrate, see
# Documentation/vhost-vdpa.rst). Two devices, blk0 and blk1, both shared=1
# on one backing file, both bound to vhost_vdpa (VA mode, guest RAM on a
# shared memfd). The source QEMU boots the guest on blk0; the destination
# QEMU, same command line on blk1 plus -incoming, waits. The guest runs
# one fio job, 4k randwrite at iodepth 16 over NESTED_MIGRATE_SIZE (8M)
# with verify=crc32c: fio writes every block, then reads each back and
# checks it. As soon as blk0 has served writes, the source migrates over
# QMP to a unix socket; fio's write phase outlasts the migration, so its
# whole verify phase reads, through blk1, blocks written through blk0
# before the switch (and blk1 after). fio comes in the initramfs (the
# guest's libraries appended as a second cpio archive), not over virtio-9p:
# a mounted 9p export blocks migration. Checked: the migration's status
# "completed" (its time and downtime are logged); the source QEMU stopped
# ("postmigrate"), then quit; the destination ran the guest to its end;
# fio status 0, no error, exactly the size written and verified, no verify
# error on either console; blk0 wrote some but not all of it and blk1 the
# rest (the sum is the size), blk1 read exactly all of it back after the
# switch; then the lab VM verifies the backing file with the same job (fio
# --verify_only). Its two QEMUs get twice NESTED_TIMEOUT: booting with
# 57 MiB of libraries in the initramfs and loading them take minutes.
#
# NESTED_RUNS: runs to do, among va-dev va-blk pa-dev pa-blk va-noshare
# pa-fio va-fio migrate, "all" (make check-nested) or "pa-fio" (make check,
# unless it is set); default "va-dev pa-blk". Each nested QEMU has a hard time limit,
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
[ "$RUNS" = all ] && RUNS="va-dev va-blk pa-dev pa-blk va-noshare pa-fio va-fio migrate"
NESTED_FIO_SIZE=${NESTED_FIO_SIZE:-4M}
NESTED_MIGRATE_SIZE=${NESTED_MIGRATE_SIZE:-8M}
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
# FIO_ARGs, its /init runs fio with them from the lab VM's root (9p), or
# from the initramfs if NESTED_INITRD (default $INITRD) has fio. QEMU gets
# NESTED_QEMU_ARGS (an array) besides.
NESTED_INITRD=$INITRD
NESTED_QEMU_ARGS=()
nested_qemu()
{
	local name=$1 memory=$2 form=$3 vhost=$4 seed=$5 args append rc=0

	shift 5
	append="console=ttyS0 panic=-1 no_timer_check NESTED_SEED=$seed NESTED_BYTES=$BYTES"
	args=(-accel tcg -m "${MEM_MB}M" -smp 1 -bios "$QBOOT"
	      -nodefaults -display none -no-reboot
	      -serial "file:$RESULTS_DIR/$name.console" -pidfile "$RESULTS_DIR/$name.pid"
	      -kernel "$KERNEL" -initrd "$NESTED_INITRD"
	      -trace vhost_vdpa_set_vring_num "${NESTED_QEMU_ARGS[@]}")
	if [ $# -gt 0 ]; then
		# the kernel hands the words after "--" to /init as arguments
		append="console=ttyS0 panic=-1 no_timer_check loglevel=4 -- $*"
		[ "$NESTED_INITRD" != "$INITRD" ] ||
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

# fio_console_check NAME BYTES: what the nested guest's fio printed on
# $RESULTS_DIR/NAME.console.txt (its console without CRs): the result line,
# fio's JSON document (to NAME.json) and no verify error; fio must have
# written and read back (verified) exactly BYTES.
fio_console_check()
{
	local name=$1 want=$2 console=$RESULTS_DIR/$1.console.txt json=$RESULTS_DIR/$1.json line

	line=$(grep '^NESTED-IO result=' "$console") ||
		fail "$name: the nested guest reported nothing (console: $console)"
	log "$name: $line"
	# fio's JSON document, between the markers; what fio wrote besides
	sed -n '/^NESTED-IO fio-begin$/,/^NESTED-IO fio-end$/p' "$console" |
		sed -n '/^{$/,/^}$/p' > "$json"
	sed -n '/^NESTED-IO fio-begin$/,/^{$/p' "$console" |
		grep -v '^NESTED-IO\|^{$' | sed "s/^/  fio $name: /" >&2
	case $line in *' result=ok fio_status=0 '*) ;; *) fail "$name: nested guest: $line" ;; esac
	expect_eq "$name: fio jobs with an error" \
		"$(jq '[.jobs[] | select(.error != 0)] | length' "$json")" 0
	expect_eq "$name: bytes fio wrote" "$(jq '.jobs[0].write.io_bytes' "$json")" "$want"
	expect_eq "$name: bytes fio read back and verified" \
		"$(jq '.jobs[0].read.io_bytes' "$json")" "$want"
	log "$name: $(fio_summary "$json")"
	if grep -q '^verify: \|bad magic\|crc32c: verify failed' "$console"; then
		fail "$name: fio reported a verify error"
	fi
}

# fio in the nested guest (pa-fio, va-fio): see the top of this file.
run_fio()
{
	local name=$1 use_va=0 memory=private t0 rc=0 want got job

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
	fio_console_check "$name" "$want"
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

# fio_initramfs OUT: $INITRD with fio appended as a second newc archive:
# /usr/bin/fio, the loader, every library ldd finds (at the paths it
# prints) and /etc/ld.so.cache. The kernel unpacks both archives.
fio_initramfs()
{
	{
		echo /usr/bin/fio
		echo /etc/ld.so.cache
		ldd /usr/bin/fio | grep -o '/[^ ]*'
	} | python3 -c '
import os, sys
base, out = sys.argv[1:3]
paths = sorted({l.strip() for l in sys.stdin if l.strip()})
dirs = set()
for p in paths:
    d = os.path.dirname(p)
    while d != "/":
        dirs.add(d)
        d = os.path.dirname(d)
with open(base, "rb") as f:
    data = bytearray(f.read())
data += bytes(-len(data) % 4)
ino = 1 << 20
def entry(name, mode, body):
    global ino, data
    ino += 1
    name = name.encode() + b"\0"
    data += ("070701" + "%08X" * 13 % (ino, mode, 0, 0, 2 if mode >> 12 == 4 else 1,
             0, len(body), 0, 0, 0, 0, len(name), 0)).encode() + name
    data += bytes(-len(data) % 4) + body
    data += bytes(-len(data) % 4)
for d in sorted(dirs):
    entry(d.lstrip("/"), 0o40755, b"")
for p in paths:
    with open(p, "rb") as f:
        entry(p.lstrip("/"), 0o100755, f.read())
entry("TRAILER!!!", 0, b"")
data += bytes(-len(data) % 512)
with open(out, "wb") as f:
    f.write(data)
' "$INITRD" "$1"
}

# blk0's and blk1's byte counters, for the log
migrate_stats()
{
	local d

	for d in blk0 blk1; do
		printf '%s: write_bytes %s read_bytes %s; ' "$d" \
			"$(bsw_stat "$d" write_bytes)" "$(bsw_stat "$d" read_bytes)"
	done
}

# Live migration of the guest, fio running, from a QEMU on blk0 to one on
# blk1 (migrate): see the top of this file.
migrate_kill()
{
	local f

	for f in "$@"; do
		[ -f "$f" ] && kill "$(cat "$f")" 2> /dev/null
	done
	return 0
}

run_migrate()
{
	local name=migrate want job dir vhost0 vhost1 t0 i rc=0 src dst reply status
	local w0 w1 r1 q tb=
	# both QEMUs boot, fio loads 60 libraries, then the migration: twice
	# the time limit of the other runs
	local TIMEOUT=$((TIMEOUT * 2))
	local NESTED_INITRD

	want=$(numfmt --from=iec "$NESTED_MIGRATE_SIZE") ||
		fail "NESTED_MIGRATE_SIZE=$NESTED_MIGRATE_SIZE"
	job=(--name=nested-fio --rw=randwrite --bs=4k --size="$NESTED_MIGRATE_SIZE"
	     --verify=crc32c --verify_fatal=1 --output-format=json)
	# unix socket paths must stay short
	dir=$(mktemp -d /tmp/nested-migrate.XXXXXX)
	defer rm -rf "$dir"
	NESTED_INITRD=$dir/initrd.cpio
	fio_initramfs "$NESTED_INITRD" || fail "$name: cannot build the initramfs with fio"
	log "$name: initramfs with fio: $(stat -c %s "$NESTED_INITRD") bytes"

	truncate -s 0 /scratch/nested.img
	truncate -s 64M /scratch/nested.img
	bsw_stage blk0 backing=/scratch/nested.img use_va=1 queue_size=1024 shared=1
	vdpa_dev_add "$BSW_MGMTDEV" blk0
	bsw_stage blk1 backing=/scratch/nested.img use_va=1 queue_size=1024 shared=1
	vdpa_dev_add "$BSW_MGMTDEV" blk1
	expect_eq "blk0 shared" "$(bsw_attr blk0 shared)" 1
	expect_eq "blk1 shared" "$(bsw_attr blk1 shared)" 1
	vhost0=$(vdpa_bind_vhost blk0) || exit
	vhost1=$(vdpa_bind_vhost blk1) || exit
	defer migrate_kill "$RESULTS_DIR/$name-src.pid" "$RESULTS_DIR/$name-dst.pid"

	# the same command line on each device; the destination waits
	t0=$SECONDS
	{
		NESTED_QEMU_ARGS=(-qmp "unix:$dir/dst.qmp,server=on,wait=off"
				  -incoming "unix:$dir/migrate.sock")
		nested_qemu "$name-dst" shared blk "$vhost1" 0 "${job[@]}" \
			--filename=/dev/vda --ioengine=io_uring --iodepth=16 --direct=1
	} &
	dst=$!
	{
		NESTED_QEMU_ARGS=(-qmp "unix:$dir/src.qmp,server=on,wait=off")
		nested_qemu "$name-src" shared blk "$vhost0" 0 "${job[@]}" \
			--filename=/dev/vda --ioengine=io_uring --iodepth=16 --direct=1
	} &
	src=$!
	reply=$(qmp "$dir/dst.qmp" '{"execute": "query-status"}' | tail -n 1)
	expect_eq "$name: destination status before" "$(jq -r .return.status <<< "$reply")" inmigrate

	# migrate once fio has written through blk0
	for ((i = 0; i < TIMEOUT; i++)); do
		[ -n "$tb" ] || ! grep -q 'fio-begin' "$RESULTS_DIR/$name-src.console" ||
			tb=$((SECONDS - t0))
		[ "$(bsw_stat blk0 write_bytes)" -gt 0 ] && break
		kill -0 "$src" 2> /dev/null || break
		sleep 1
	done
	[ "$(bsw_stat blk0 write_bytes)" -gt 0 ] ||
		fail "$name: no write through blk0 after $i s (console: $RESULTS_DIR/$name-src.console)"
	log "$name: fio began ${tb:-?} s, wrote through blk0 $((SECONDS - t0)) s after the start; $(migrate_stats)"
	qmp "$dir/src.qmp" \
		'{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 1073741824}}' \
		"{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"unix:$dir/migrate.sock\"}}" |
		sed "s/^/  qmp $name-src: /" >&2
	for ((i = 0; i < TIMEOUT; i++)); do
		reply=$(qmp "$dir/src.qmp" '{"execute": "query-migrate"}' | tail -n 1)
		status=$(jq -r .return.status <<< "$reply")
		case $status in active | setup | device | pre-switchover) ;; *) break ;; esac
		sleep 1
	done
	log "$name: query-migrate: $reply"
	log "$name: at the switch: $(migrate_stats)"
	r1=$(bsw_stat blk1 read_bytes)
	expect_eq "$name: migration status" "$status" completed
	log "$name: migration took $(jq .return[\"total-time\"] <<< "$reply") ms, downtime $(jq .return.downtime <<< "$reply") ms, RAM transferred $(jq .return.ram.transferred <<< "$reply") bytes"
	reply=$(qmp "$dir/src.qmp" '{"execute": "query-status"}' | tail -n 1)
	expect_eq "$name: source status after" "$(jq -r .return.status <<< "$reply")" postmigrate
	reply=$(qmp "$dir/dst.qmp" '{"execute": "query-status"}' | tail -n 1)
	expect_eq "$name: destination status after" "$(jq -r .return.status <<< "$reply")" running
	qmp "$dir/src.qmp" '{"execute": "quit"}' > /dev/null
	wait "$src" || rc=$?
	expect_eq "$name: source QEMU's status" "$rc" 0
	w0=$(bsw_stat blk0 write_bytes)

	# the guest goes on on blk1 until fio ends and it reboots
	for ((i = 1; i < TIMEOUT; i++)); do
		kill -0 "$dst" 2> /dev/null || break
		((i % 30)) || log "$name: $((SECONDS - t0)) s: $(migrate_stats)"
		sleep 1
	done
	rc=0
	wait "$dst" || rc=$?
	timing "$name" $((SECONDS - t0))
	for q in src dst; do
		sed 's/^/  | /' "$RESULTS_DIR/$name-$q.qemu" | grep -v vhost_vdpa_set_vring_num >&2
	done
	case $rc in 124 | 137) fail "$name: nested QEMU still running after $TIMEOUT s (status $rc)" ;; esac
	[ "$rc" = 0 ] || fail "$name: destination QEMU exited with status $rc"
	log "$name: at the end: $(migrate_stats)"
	# the guest's console: up to the switch from the source, then the destination
	cat "$RESULTS_DIR/$name-src.console" "$RESULTS_DIR/$name-dst.console" |
		tr -d '\r' > "$RESULTS_DIR/$name.console.txt"
	grep -q '^NESTED-IO result=' "$RESULTS_DIR/$name-dst.console" ||
		fail "$name: the guest did not end on the destination"
	fio_console_check "$name" "$want"

	# fio wrote every block once: part through blk0 before the switch,
	# the rest through blk1; then read all back through blk1
	w1=$(bsw_stat blk1 write_bytes)
	r1=$(($(bsw_stat blk1 read_bytes) - r1))
	[ "$w0" -gt 0 ] && [ "$w0" -lt "$want" ] ||
		fail "$name: blk0 wrote $w0 of $want bytes: the switch was not in fio's write phase"
	expect_eq "$name: bytes written through blk0 and blk1" $((w0 + w1)) "$want"
	expect_eq "$name: bytes read (verified) through blk1 after the switch" "$r1" "$want"

	# the lab VM verifies the backing file with the same job
	vdpa_unbind blk0
	vdpa_unbind blk1
	fio_run "$name-backing" "${job[@]}" --filename=/scratch/nested.img \
		--ioengine=psync --verify_only
	expect_eq "$name: bytes of the backing file verified" \
		"$(jq '.jobs[0].read.io_bytes' "$RESULTS_DIR/$name-backing.json")" "$want"
	vdpa_dev_del blk1
	vdpa_dev_del blk0
	_bsw_rmdir "$BSW_CFS/blk1"
	_bsw_rmdir "$BSW_CFS/blk0"
}

for run in $RUNS; do
	case $run in
	va-dev | va-blk | pa-dev | pa-blk) run_io "$run" ;;
	va-noshare) run_noshare ;;
	pa-fio | va-fio) run_fio "$run" ;;
	migrate) run_migrate ;;
	*) fail "NESTED_RUNS: unknown run '$run'" ;;
	esac
done
