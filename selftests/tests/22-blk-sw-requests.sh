#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Request semantics checked on the backing itself: FLUSH makes data written
# to /dev/vdX reach the backing's disk (with periodic writeback off, the
# loop device under the backing file system sees the writes only after
# fsync on /dev/vdX); DISCARD punches a hole (SEEK_HOLE) that reads back as
# zeroes; WRITE_ZEROES zeroes the range without and (fallocate -p) with
# UNMAP; switching the write cache off (CONFIG_WCE, cache_type "write
# through") makes each write reach the backing's disk; a read-only device
# reaches the driver as read-only and leaves the backing untouched; GET_ID gives the configured serial; the topology and
# limits reach /sys/block/vdX/queue. On block device backings, DISCARD is a
# real discard: a null_blk counts it and reads the range back as zeroes,
# only whole granules of the backing go (a partly covered one keeps its
# data), a loop device over a sparse file punches holes in it; a null_blk
# that cannot discard gets no DISCARD feature, and provisioning it fails.
# timeout=600

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
require_cmd python3 blkdiscard fallocate
bsw_setup

bsw_mkfs ext4 512M
loop=$(basename "$(findmnt -no SOURCE "$BSW_MNT")")
img=$BSW_MNT/req.img
truncate -s 64M "$img" || fail "truncate failed"
serial=SN-VDPA-BLK-SW-00001

# queue_size 1024: rings of 1024 and seg_max 254, the largest requests
# (the default's 64 and 62 bound to virtio_vdpa: test 20)
bsw_add req backing="$img" direct=0 serial="$serial" queue_size=1024
dev=$(vdpa_bind_virtio req) || exit
q=/sys/block/$(basename "$dev")/queue

# --- GET_ID and topology --------------------------------------------------
expect_eq serial "$(cat "/sys/block/$(basename "$dev")/serial")" "$serial"
expect_eq logical_block_size "$(cat "$q/logical_block_size")" 512
expect_eq physical_block_size "$(cat "$q/physical_block_size")" 512
expect_eq max_segments "$(cat "$q/max_segments")" 254
expect_eq discard_granularity "$(cat "$q/discard_granularity")" 512
expect_eq max_discard_segments "$(cat "$q/max_discard_segments")" 16
[ "$(cat "$q/write_zeroes_max_bytes")" -gt 0 ] || fail "no write zeroes"
expect_eq write_cache "$(cat "$q/write_cache")" "write back"

# --- FLUSH reaches the backing's disk -------------------------------------
loop_writes()
{
	awk '{ print $7 }' "/sys/block/$loop/stat"
}
old_wb=$(sysctl -n vm.dirty_writeback_centisecs)
old_exp=$(sysctl -n vm.dirty_expire_centisecs)
defer sysctl -q vm.dirty_writeback_centisecs="$old_wb"
defer sysctl -q vm.dirty_expire_centisecs="$old_exp"
sysctl -q vm.dirty_writeback_centisecs=0 vm.dirty_expire_centisecs=360000
sync
head -c 4M /dev/urandom > pattern
w0=$(loop_writes)
dd if=pattern of="$dev" bs=1M oflag=direct status=none || fail "write failed"
w1=$(loop_writes)
log "loop writes: $w0 before, $w1 after the write (sectors)"
[ $((w1 - w0)) -lt 8192 ] || skip "the backing wrote back before any flush"
python3 -c "import os, sys; fd = os.open(sys.argv[1], os.O_RDWR); os.fsync(fd)" "$dev" ||
	fail "fsync $dev failed"
w2=$(loop_writes)
log "loop writes after fsync on $dev: $w2"
[ $((w2 - w0)) -ge 8192 ] || fail "FLUSH did not write the data to the backing's disk"
cmp -n $((4 << 20)) pattern "$img" || fail "backing file differs from what was written"

# --- CONFIG_WCE: in write-through mode every write is durable at once ------
cache=/sys/block/$(basename "$dev")/cache_type
expect_eq cache_type "$(cat "$cache")" "write back"
expect_eq "device write_cache" "$(bsw_attr req write_cache)" "write back"
echo "write through" > "$cache" || fail "cannot switch $dev to write through"
expect_eq "device write_cache" "$(bsw_attr req write_cache)" "write through"
w0=$(loop_writes)
dd if=pattern of="$dev" bs=1M seek=8 oflag=direct status=none || fail "write failed"
w1=$(loop_writes)
log "loop writes: $w0 before, $w1 after a write-through write"
[ $((w1 - w0)) -ge 8192 ] || fail "write through: the write did not reach the backing's disk"
echo "write back" > "$cache" || fail "cannot switch $dev back to write back"
expect_eq "device write_cache" "$(bsw_attr req write_cache)" "write back"

# --- DISCARD: a hole in the backing file, zeroes on read -------------------
head -c 8M /dev/urandom > pattern8
dd if=pattern8 of="$dev" bs=1M oflag=direct conv=fsync status=none || fail "write failed"
blkdiscard -o $((1 << 20)) -l $((2 << 20)) "$dev" || fail "blkdiscard failed"
cmp -n $((2 << 20)) -i $((1 << 20)):0 "$dev" /dev/zero || fail "discarded range is not zero"
cmp -n $((1 << 20)) pattern8 "$dev" || fail "data before the discarded range changed"
hole=$(python3 -c "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); print(os.lseek(fd, 1 << 20, os.SEEK_HOLE), os.lseek(fd, 1 << 20, os.SEEK_DATA))" "$img")
expect_eq "SEEK_HOLE, SEEK_DATA from 1 MiB" "$hole" "$((1 << 20)) $((3 << 20))"

# --- WRITE_ZEROES without UNMAP (BLKZEROOUT) and with it (punch) -------------
blkdiscard -z -o $((4 << 20)) -l $((1 << 20)) "$dev" || fail "blkdiscard -z failed"
cmp -n $((1 << 20)) -i $((4 << 20)):0 "$img" /dev/zero || fail "write zeroes: backing not zero"
cmp -n $((1 << 20)) -i $((3 << 20)) pattern8 "$dev" || fail "data before the zeroed range changed"
cmp -n $((3 << 20)) -i $((5 << 20)) pattern8 "$dev" || fail "data after the zeroed range changed"
fallocate -p -o $((6 << 20)) -l $((1 << 20)) "$dev" || fail "fallocate -p on $dev failed"
cmp -n $((1 << 20)) -i $((6 << 20)):0 "$dev" /dev/zero || fail "write zeroes+unmap: not zero"
hole=$(python3 -c "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); print(os.lseek(fd, 6 << 20, os.SEEK_HOLE))" "$img")
expect_eq "SEEK_HOLE at 6 MiB after write zeroes with unmap" "$hole" $((6 << 20))
expect_eq "req errors" "$(bsw_stat req errors)" 0

vdpa_unbind req
vdpa_dev_del req

# --- a read-only device: RO reaches the driver, writes fail ---------------
# (virtio_blk stops the writes in the block layer; the device's own refusal
# is checked through vhost-vdpa by the userspace driver's tests.)
bsw_add ro backing="$img" read_only=1
dev=$(vdpa_bind_virtio ro) || exit
expect_eq "$dev ro" "$(cat "/sys/block/$(basename "$dev")/ro")" 1
cmp -n $((1 << 20)) pattern8 "$dev" || fail "read-only device reads wrong data"
blockdev --setrw "$dev" || fail "blockdev --setrw failed"
if dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none 2> /dev/null; then
	fail "a write to a read-only device succeeded"
fi
cmp -n $((1 << 20)) pattern8 "$img" || fail "the read-only device changed its backing"
vdpa_unbind ro
vdpa_dev_del ro

# --- DISCARD on block devices ---------------------------------------------
# A block device backing gets a real discard (not a fallocate() that
# blkdev_fallocate() refuses), within the backing's discard granules and
# limits, which the device reports; one that cannot discard gets no
# DISCARD feature.

# nb_discards: discard I/Os completed by the null_blk (field 12 of its stat)
nb_discards()
{
	awk '{ print $12 }' "/sys/block/$(basename "$BSW_NULLB")/stat"
}

# a null_blk that discards (memory backed: discarded sectors read as zeroes)
bsw_nullb discard=1
bsw_add dnb backing="$BSW_NULLB" direct=1
dev=$(vdpa_bind_virtio dnb) || exit
q=/sys/block/$(basename "$dev")/queue
nq=/sys/block/$(basename "$BSW_NULLB")/queue
[ "$(cat "$q/discard_max_bytes")" -gt 0 ] || fail "dnb: no DISCARD on a null_blk that discards"
expect_eq "dnb discard_granularity" "$(cat "$q/discard_granularity")" \
	"$(cat "$nq/discard_granularity")"
dd if=pattern8 of="$dev" bs=1M oflag=direct status=none || fail "write failed"
d0=$(nb_discards)
blkdiscard -o $((1 << 20)) -l $((2 << 20)) "$dev" || fail "blkdiscard failed"
d1=$(nb_discards)
log "$BSW_NULLB discard I/Os: $d0 before, $d1 after blkdiscard on $dev"
[ "$d1" -gt "$d0" ] || fail "the discard did not reach $BSW_NULLB"
cmp -n $((2 << 20)) -i $((1 << 20)):0 "$dev" /dev/zero || fail "dnb: discarded range is not zero"
cmp -n $((2 << 20)) -i $((1 << 20)):0 "$BSW_NULLB" /dev/zero ||
	fail "dnb: $BSW_NULLB still holds the discarded range"
cmp -n $((1 << 20)) pattern8 "$dev" || fail "dnb: data before the discarded range changed"
cmp -n $((5 << 20)) -i $((3 << 20)) pattern8 "$dev" || fail "dnb: data after the discarded range changed"
expect_eq "dnb errors" "$(bsw_stat dnb errors)" 0
vdpa_unbind dnb
vdpa_dev_del dnb

# 4096-byte granules under a disk of 512-byte blocks: a discard of
# [512, 12800) covers the granules [4096, 12288) only, and only those go;
# the partly covered granules keep their data.
bsw_nullb discard=1 bs=4096
bsw_add dn4 backing="$BSW_NULLB" direct=1
dev=$(vdpa_bind_virtio dn4) || exit
q=/sys/block/$(basename "$dev")/queue
expect_eq "dn4 logical_block_size" "$(cat "$q/logical_block_size")" 512
expect_eq "dn4 discard_granularity" "$(cat "$q/discard_granularity")" 4096
dd if=pattern8 of="$dev" bs=1M count=1 oflag=direct status=none || fail "write failed"
d0=$(nb_discards)
blkdiscard -o 512 -l 12288 "$dev" || fail "blkdiscard failed"
d1=$(nb_discards)
[ "$d1" -gt "$d0" ] || fail "dn4: the discard did not reach $BSW_NULLB"
cmp -n 4096 pattern8 "$dev" || fail "dn4: the partly covered first granule changed"
cmp -n 8192 -i 4096:0 "$dev" /dev/zero || fail "dn4: the covered granules are not zero"
cmp -n $(((1 << 20) - 12288)) -i 12288 pattern8 "$dev" ||
	fail "dn4: data from the partly covered last granule on changed"
expect_eq "dn4 errors" "$(bsw_stat dn4 errors)" 0
vdpa_unbind dn4
vdpa_dev_del dn4

# a loop device over a sparse file: the discard punches holes in the file
load_modules loop
lo_img=/scratch/discard-loop.img
truncate -s 64M "$lo_img" || fail "truncate failed"
defer rm -f "$lo_img"
lo=$(losetup --find --show "$lo_img") || fail "losetup failed"
defer losetup -d "$lo"
bsw_add dlo backing="$lo" direct=1
dev=$(vdpa_bind_virtio dlo) || exit
dd if=pattern8 of="$dev" bs=1M oflag=direct status=none || fail "write failed"
b0=$(stat -c %b "$lo_img")
blkdiscard -o $((1 << 20)) -l $((4 << 20)) "$dev" || fail "blkdiscard failed"
b1=$(stat -c %b "$lo_img")
log "$lo_img: $b0 blocks before, $b1 after discarding 4 MiB through $lo"
[ $((b0 - b1)) -ge $((4 << 11)) ] || fail "dlo: the file under $lo did not lose the discarded 4 MiB"
hole=$(python3 -c "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); print(os.lseek(fd, 1 << 20, os.SEEK_HOLE), os.lseek(fd, 1 << 20, os.SEEK_DATA))" "$lo_img")
expect_eq "dlo: SEEK_HOLE, SEEK_DATA from 1 MiB" "$hole" "$((1 << 20)) $((5 << 20))"
cmp -n $((4 << 20)) -i $((1 << 20)):0 "$dev" /dev/zero || fail "dlo: discarded range is not zero"
cmp -n $((3 << 20)) -i $((5 << 20)) pattern8 "$dev" || fail "dlo: data after the discarded range changed"
expect_eq "dlo errors" "$(bsw_stat dlo errors)" 0
vdpa_unbind dlo
vdpa_dev_del dlo

# a null_blk that cannot discard: no DISCARD, and provisioning it fails
bsw_nullb
bsw_add dnd backing="$BSW_NULLB" direct=1
dev=$(vdpa_bind_virtio dnd) || exit
q=/sys/block/$(basename "$dev")/queue
expect_eq "dnd discard_max_bytes" "$(cat "$q/discard_max_bytes")" 0
vfeat=$(cat "$VDPA_SYSFS"/devices/dnd/virtio*/features)
expect_eq "dnd: driver feature bit 13 (DISCARD)" "${vfeat:13:1}" 0
[ "$(cat "$q/write_zeroes_max_bytes")" -gt 0 ] || fail "dnd: no write zeroes"
vdpa_unbind dnd
vdpa_dev_del dnd
# the default features (with DISCARD, bit 13)
all_feat=$(((1 << 1) | (1 << 2) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11) |
	    (1 << 12) | (1 << 13) | (1 << 14) | (1 << 27) | (1 << 28) | (1 << 29) |
	    (1 << 32) | (1 << 33)))
bsw_stage dnd2 backing="$BSW_NULLB" direct=1
expect_fail "DISCARD provisioned on a backing that cannot discard" \
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name dnd2 device_features "$(printf '0x%x' "$all_feat")"
[ ! -e "$VDPA_SYSFS/devices/dnd2" ] || fail "the refused device dnd2 exists"
vdpa_dev_add "$BSW_MGMTDEV" dnd2 device_features "$(printf '0x%x' $((all_feat & ~(1 << 13))))"
