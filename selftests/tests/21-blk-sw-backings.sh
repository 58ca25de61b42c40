#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Data integrity on every kind of backing, through /dev/vdX: fio writes
# with crc32c headers and reads everything back, for block sizes 512 B to
# 1 MiB, queue depths 1 to 64, one job on one queue and four jobs on four
# queues. Backings: the embedded memory backing, a file on ext4 (direct and
# buffered), a file on xfs (direct and buffered), a block device (null_blk)
# and a 4096-byte logical block device. After each run the device's own
# counters must show the bytes fio moved and no error.
# timeout=1200

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
bsw_setup

# run_matrix NAME QUEUES: the fio matrix on the device NAME
run_matrix()
{
	local name=$1 queues=$2 dev req0 wr0 used q

	dev=$(vdpa_bind_virtio "$name") || exit
	expect_eq "$name num_queues" "$(bsw_attr "$name" num_queues)" "$queues"
	req0=$(bsw_stat "$name" requests)
	wr0=$(bsw_stat "$name" write_bytes)

	fio_verify "$dev" 1M --bs=512 --iodepth=1 --rw=randwrite
	fio_verify "$dev" 8M --bs=4k --iodepth=64 --rw=randwrite
	fio_verify "$dev" 16M --bs=64k --iodepth=8 --rw=write
	fio_verify "$dev" 16M --bs=1M --iodepth=4 --rw=randwrite
	fio_verify "$dev" 8M --bsrange=4k-128k --iodepth=16 --rw=randwrite
	if [ "$queues" -gt 1 ]; then
		# Four jobs, each on its own region and (blk-mq) queue.
		fio_verify "$dev" 4M --bs=4k --iodepth=16 --numjobs=4 \
			--offset_increment=16M --rw=randwrite
	fi

	[ "$(bsw_stat "$name" requests)" -gt "$req0" ] ||
		fail "$name: queue 0 completed no request"
	[ "$(bsw_stat "$name" write_bytes)" -gt "$wr0" ] ||
		fail "$name: queue 0 wrote no byte"
	# virtio_blk uses at most one queue per CPU.
	used=$((queues < $(nproc) ? queues : $(nproc)))
	for ((q = 0; q < queues; q++)); do
		expect_eq "$name q$q errors" "$(bsw_qstat "$name" "$q" errors)" 0
		expect_eq "$name q$q inflight" "$(bsw_qstat "$name" "$q" inflight)" 0
		[ "$q" -ge "$used" ] || [ "$(bsw_qstat "$name" "$q" requests)" -gt 0 ] ||
			fail "$name: queue $q was never used"
	done
	log "$name: $(fio_summary "$RESULTS_DIR/verify-$(basename "$dev").json")"
	vdpa_unbind "$name"
	vdpa_dev_del "$name"
}

# embedded memory backing, 1 and 4 queues
bsw_add mem1 num_queues=1 size=$((256 << 20))
run_matrix mem1 1
bsw_add mem4 num_queues=4 size=$((256 << 20))
run_matrix mem4 4

# files on ext4 and xfs, direct and buffered
for fs in ext4 xfs; do
	bsw_mkfs "$fs" 1G
	for direct in 1 0; do
		img=$BSW_MNT/disk-$direct.img
		truncate -s 256M "$img" || fail "truncate failed"
		name=${fs}d$direct
		bsw_add "$name" backing="$img" direct="$direct" num_queues=4
		expect_eq "$name backing" "$(bsw_attr "$name" backing)" "$img"
		expect_eq "$name backing_type" "$(bsw_attr "$name" backing_type)" file
		expect_eq "$name direct" "$(bsw_attr "$name" direct)" "$direct"
		expect_eq "$name capacity" "$(bsw_attr "$name" capacity)" $((256 << 11))
		run_matrix "$name" 4
	done
done

# a block device, with the default number of queues: one per online CPU
# (at most 16)
nq=$(nproc)
nq=$((nq < 16 ? nq : 16))
bsw_nullb
bsw_add nullb backing="$BSW_NULLB" direct=1
expect_eq "nullb backing_type" "$(bsw_attr nullb backing_type)" block
expect_eq "nullb capacity" "$(bsw_attr nullb capacity)" $((1 << 21))
run_matrix nullb "$nq"

# 4096-byte logical blocks on a 4k null_blk
bsw_nullb bs=4096
bsw_add nb4k backing="$BSW_NULLB" direct=1 block_size=4096
dev=$(vdpa_bind_virtio nb4k) || exit
expect_eq "nb4k logical_block_size" \
	"$(cat "/sys/block/$(basename "$dev")/queue/logical_block_size")" 4096
fio_verify "$dev" 8M --bs=4k --iodepth=16
fio_verify "$dev" 16M --bs=256k --iodepth=4 --rw=write
vdpa_unbind nb4k
vdpa_dev_del nb4k
