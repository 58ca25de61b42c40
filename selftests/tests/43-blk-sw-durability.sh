#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Durability: a write acknowledged before a FLUSH, or any acknowledged
# write in write-through mode (the driver cleared wce, or never negotiated
# FLUSH), is on the backing.
#
# The backing is dm-log-writes over a data and a log loop device (files on
# /scratch). dm-log-writes logs a write only once it is durable on the data
# device (at the first FLUSH after it completed, or when a FUA write
# completes), so replaying the log to a point gives what the backing would
# hold after a power cut there. In the lab host, /dev/vdX (virtio_vdpa on
# our device) is written by selftests/durability/dur_writer: 4 threads of
# O_DIRECT 4 KiB writes of self-describing blocks, and at each checkpoint a
# snapshot of what was acknowledged, then (write back) a mark "nf-K", fsync
# (VIRTIO_BLK_T_FLUSH -> vfs_fsync -> REQ_PREFLUSH on the dm device) and a
# mark "f-K", or (write through, "write through" written to the disk's
# cache_type: CONFIG_WCE) a mark "wt-K" and no fsync. lw_replay then replays the
# log and checks the image at every mark:
#  - "f-K" and "wt-K": every acknowledged write (or a later write of the
#    block) is there, complete; no block is torn or misplaced;
#  - "nf-K", the negative control: the point just before the FLUSH, where
#    the same snapshot must show missing writes (else the checker, or the
#    log, could not see a lost write);
#  - write through: every write in the log carries FUA;
#  - the same write-through checks on a device provisioned without FLUSH
#    (device_features), where the driver sends no FLUSH and must get
#    write-through semantics without asking;
#  - write through, WRITE_ZEROES (blkdiscard -z, and fallocate -p for
#    UNMAP) and DISCARD (blkdiscard: a real discard on this block device)
#    over written data: at the mark after each request, the replayed log
#    holds the zeroes (lw_replay --expect), though no FLUSH was sent;
#  - the replay of the whole log equals the data device, byte for byte
#    (the replayer is right).
# Then the same with the backing a file on ext4 over dm-log-writes
# (FLUSH -> ext4 fsync: data and the extent conversion in the journal):
# after each "f-K", the replayed file system, mounted (journal recovery),
# holds every acknowledged block of the file; at each "nf-K" (mounted with
# commit=600, so that only the FLUSH commits) it lacks some.
#
#   DUR_ROUNDS=N   checkpoints per pass (default 8)
# timeout=600

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

ROUNDS=${DUR_ROUNDS:-8}
BIN=$REPO/selftests/durability
MB=$((1 << 20))
DATA_SIZE=$((64 * MB))
LOG_SIZE=$((768 * MB))
BLOCKS=4096	# 16 MiB of 4 KiB blocks

require_root
require_cmd dmsetup losetup cmp mkfs.ext4
require_module dm_mod dm_log_writes loop
[ -x "$BIN/dur_writer" ] && [ -x "$BIN/lw_replay" ] ||
	skip "$BIN not built (make -C selftests on the host)"
bsw_setup
load_modules dm_mod dm_log_writes loop
# No udev in the lab: libdevmapper makes the /dev/mapper nodes itself.
export DM_DISABLE_UDEV=1

_dm_remove()
{
	dmsetup remove --noudevsync --retry "$1" 2> /dev/null
	return 0
}

# lw_create NAME: data and log loop devices over new /scratch files and
# dm-log-writes over them; sets LW_DATA, LW_LOG (loop devices), LW_DEV.
lw_create()
{
	local name=$1 f

	for f in data log; do
		truncate -s "$([ $f = data ] && echo $DATA_SIZE || echo $LOG_SIZE)" \
			"/scratch/$name.$f" || fail "truncate failed"
		defer rm -f "/scratch/$name.$f"
	done
	LW_DATA=$(losetup --find --show "/scratch/$name.data") || fail "losetup failed"
	defer losetup -d "$LW_DATA"
	LW_LOG=$(losetup --find --show "/scratch/$name.log") || fail "losetup failed"
	defer losetup -d "$LW_LOG"
	echo "0 $((DATA_SIZE / 512)) log-writes $LW_DATA $LW_LOG" |
		dmsetup create --noudevsync "$name" || fail "dmsetup create $name failed"
	defer _dm_remove "$name"
	dmsetup mknodes "$name"
	LW_DEV=/dev/mapper/$name
	wait_for 5 test -b "$LW_DEV" || fail "$LW_DEV did not appear"
}

_umount_if()
{
	! mountpoint -q "$1" || umount -l "$1"
}

# lw_finish NAME: remove the target (logs what is left, ends the log)
lw_finish()
{
	log "$1: $(dmsetup status "$1" | awk '{print $4 " entries logged"}')"
	dmsetup remove --noudevsync "$1" || fail "dmsetup remove $1 failed"
}

# replay TAG ARGS...: lw_replay onto a new zero image; sets IMG
replay()
{
	local tag=$1 rc=0

	shift
	IMG=/scratch/$tag.img
	rm -f "$IMG"
	truncate -s $DATA_SIZE "$IMG" || fail "truncate failed"
	defer rm -f "$IMG"
	"$BIN/lw_replay" --log "$LW_LOG" --image "$IMG" "$@" > "$RESULTS_DIR/$tag.replay" 2>&1 || rc=$?
	sed "s/^/$tag: /" "$RESULTS_DIR/$tag.replay" >&2
	return "$rc"
}

# count_ok TAG KIND: marks of KIND that passed
count_ok()
{
	grep -c "($2[^)]*): .*: OK$" "$RESULTS_DIR/$1.replay"
}

# --- write back: FLUSH makes acknowledged writes durable ------------------
lw_create lwwb
bsw_add dwb backing="$LW_DEV"
dev=$(vdpa_bind_virtio dwb) || exit
expect_eq "dwb write_cache" "$(bsw_attr dwb write_cache)" "write back"
expect_eq "$dev write_cache" "$(cat "/sys/block/${dev#/dev/}/queue/write_cache")" "write back"
expect_eq "$dev cache_type" "$(cat "/sys/block/${dev#/dev/}/cache_type")" "write back"
"$BIN/dur_writer" --dev "$dev" --lw lwwb --journal wb.journal --mode flush \
	--blocks $BLOCKS --rounds "$ROUNDS" >&2 || fail "dur_writer (write back) failed"
vdpa_unbind dwb
vdpa_dev_del dwb
lw_finish lwwb
replay wb --journal wb.journal || fail "write back: durability check failed"
expect_eq "write back: flush points verified" "$(count_ok wb 'must hold')" "$ROUNDS"
expect_eq "write back: negative controls that saw missing writes" \
	"$(count_ok wb 'negative control')" "$ROUNDS"
grep -q " \([1-9][0-9]*\) flushes," "$RESULTS_DIR/wb.replay" || fail "write back: no FLUSH in the log"
cmp "$IMG" "$LW_DATA" || fail "write back: the replayed log differs from the data device"
log "write back: $ROUNDS flush points replayed and verified, $ROUNDS negative controls detected missing writes"

# wt_check TAG NAME DEV WHAT: dur_writer without FLUSH on DEV (the device
# NAME, on the target lwTAG), delete the device, replay: every
# acknowledged write is there at every mark, every logged write is FUA,
# and the replayed log equals the data device.
wt_check()
{
	local tag=$1 name=$2 dev=$3 what=$4

	"$BIN/dur_writer" --dev "$dev" --lw "lw$tag" --journal "$tag.journal" --mode wt \
		--blocks $BLOCKS --rounds "$ROUNDS" >&2 || fail "dur_writer ($what) failed"
	vdpa_unbind "$name"
	vdpa_dev_del "$name"
	lw_finish "lw$tag"
	replay "$tag" --journal "$tag.journal" --expect-fua ||
		fail "$what: acknowledged writes are not durable, or not FUA"
	expect_eq "$what: checkpoints verified" "$(count_ok "$tag" 'must hold')" "$ROUNDS"
	cmp "$IMG" "$LW_DATA" || fail "$what: the replayed log differs from the data device"
	log "$what: $ROUNDS checkpoints replayed and verified, every logged write FUA"
}

# --- write through: every acknowledged write is durable, FUA --------------
lw_create lwwt
bsw_add dwt backing="$LW_DEV"
dev=$(vdpa_bind_virtio dwt) || exit
# virtio_blk's cache_type writes the config space's wce (CONFIG_WCE);
# queue/write_cache would only stop the host from sending FLUSH.
blk=/sys/block/${dev#/dev/}
echo "write through" > "$blk/cache_type" || fail "cannot turn the write cache off"
expect_eq "dwt write_cache" "$(bsw_attr dwt write_cache)" "write through"
expect_eq "$dev cache_type" "$(cat "$blk/cache_type")" "write through"
expect_eq "$dev queue/write_cache" "$(cat "$blk/queue/write_cache")" "write through"
wt_check wt dwt "$dev" "write through"

# --- no FLUSH: the same on a device provisioned without it -----------------
# A driver that did not negotiate VIRTIO_BLK_F_FLUSH cannot flush and takes
# the disk for write through (virtio 1.2, 5.2.5.1): the device must be.
# Without FLUSH there is no CONFIG_WCE either (a device offering it must
# offer FLUSH). The device's default features without bits 9 and 11:
# SIZE_MAX, SEG_MAX, BLK_SIZE, TOPOLOGY, MQ, DISCARD, WRITE_ZEROES,
# ANY_LAYOUT, INDIRECT_DESC, EVENT_IDX, VERSION_1, ACCESS_PLATFORM.
nf_feat=$(((1 << 1) | (1 << 2) | (1 << 6) | (1 << 10) | (1 << 12) | (1 << 13) |
	   (1 << 14) | (1 << 27) | (1 << 28) | (1 << 29) | (1 << 32) | (1 << 33)))
lw_create lwnf
bsw_stage dnf backing="$LW_DEV"
vdpa_dev_add "$BSW_MGMTDEV" dnf device_features "$(printf '0x%x' "$nf_feat")"
dev=$(vdpa_bind_virtio dnf) || exit
blk=/sys/block/${dev#/dev/}
vfeat=$(cat "$VDPA_SYSFS"/devices/dnf/virtio*/features)
expect_eq "dnf: driver feature bit 9 (FLUSH)" "${vfeat:9:1}" 0
expect_eq "dnf: driver feature bit 32 (VERSION_1)" "${vfeat:32:1}" 1
expect_eq "$dev cache_type" "$(cat "$blk/cache_type")" "write through"
expect_eq "$dev queue/write_cache" "$(cat "$blk/queue/write_cache")" "write through"
# checked after the replay, which shows what a wrong mode costs
nf_cache=$(bsw_attr dnf write_cache)
wt_check nf dnf "$dev" "no FLUSH"
expect_eq "dnf write_cache" "$nf_cache" "write through"

# --- write through: WRITE_ZEROES is durable when it completes ---------------
# With the cache off the guest sends no FLUSH, so a completed WRITE_ZEROES
# must be durable like a write. dm-log-writes has no write-zeroes support:
# the device's zeroing reaches it as plain writes, which it logs only at a
# flush. The replay at the mark after each request must show the zeroes.
lw_create lwwz
bsw_add dwz backing="$LW_DEV"
dev=$(vdpa_bind_virtio dwz) || exit
blk=/sys/block/${dev#/dev/}
echo "write through" > "$blk/cache_type" || fail "cannot turn the write cache off"
expect_eq "dwz write_cache" "$(bsw_attr dwz write_cache)" "write through"
# wz.data: 4 MiB written; wz.zero: [1, 2) MiB zeroed; wz.unmap: also [2, 3);
# wz.discard: also [3, 4)
head -c $((4 * MB)) /dev/urandom > wz.data || fail "cannot make the pattern"
cp wz.data wz.zero && dd if=/dev/zero of=wz.zero bs=1M seek=1 count=1 conv=notrunc status=none ||
	fail "cannot make the expected image"
cp wz.zero wz.unmap && dd if=/dev/zero of=wz.unmap bs=1M seek=2 count=1 conv=notrunc status=none ||
	fail "cannot make the expected image"
cp wz.unmap wz.discard && dd if=/dev/zero of=wz.discard bs=1M seek=3 count=1 conv=notrunc status=none ||
	fail "cannot make the expected image"
dd if=wz.data of="$dev" bs=1M oflag=direct status=none || fail "write to $dev failed"
dmsetup message lwwz 0 mark wz-data || fail "mark wz-data failed"
blkdiscard -z -o $((1 * MB)) -l $((1 * MB)) "$dev" || fail "blkdiscard -z failed"
dmsetup message lwwz 0 mark wz-zero || fail "mark wz-zero failed"
fallocate -p -o $((2 * MB)) -l $((1 * MB)) "$dev" || fail "fallocate -p on $dev failed"
dmsetup message lwwz 0 mark wz-unmap || fail "mark wz-unmap failed"
# DISCARD on this block device backing is a real discard, which
# dm-log-writes logs as one, replayed as zeroes (its loop device punches a
# hole in /scratch: the data device reads zeroes too, see the last cmp)
blkdiscard -o $((3 * MB)) -l $((1 * MB)) "$dev" || fail "blkdiscard failed"
dmsetup message lwwz 0 mark wz-discard || fail "mark wz-discard failed"
cmp -n $((3 * MB)) wz.unmap "$dev" || fail "$dev does not read back what was written and zeroed"
expect_eq "dwz errors" "$(bsw_stat dwz errors)" 0
vdpa_unbind dwz
vdpa_dev_del dwz
lw_finish lwwz
replay wz --expect wz-data:0:wz.data --expect wz-zero:0:wz.zero \
	--expect wz-unmap:0:wz.unmap --expect wz-discard:0:wz.discard ||
	fail "write through: zeroed or discarded ranges are not durable"
grep -q " \([1-9][0-9]*\) discards," "$RESULTS_DIR/wz.replay" || fail "no DISCARD in the log"
cmp "$IMG" "$LW_DATA" || fail "write zeroes: the replayed log differs from the data device"
log "write through: WRITE_ZEROES (without and with UNMAP) and DISCARD durable at completion"

# --- a file on ext4 over dm-log-writes -------------------------------------
# FLUSH is ext4's fsync: the data, and the unwritten-extent conversion of
# the preallocated file, committed in the journal. After each "f-K", the
# replayed file system (journal recovered by mounting it) must hold every
# acknowledged block of the file.
FS_ROUNDS=$(( ROUNDS < 4 ? ROUNDS : 4 ))
lw_create lwfs
mkfs.ext4 -q -F -E nodiscard "$LW_DEV" > /dev/null || fail "mkfs.ext4 failed"
mnt=$(mktemp -d /tmp/dur-fs.XXXXXX) || fail "mktemp -d failed"
# no periodic journal commit: only the guest's FLUSH makes writes durable,
# so the negative controls below must see missing writes
mount -o commit=600 "$LW_DEV" "$mnt" || fail "mount $LW_DEV failed"
defer _umount_if "$mnt"
fallocate -l $((BLOCKS * 4096)) "$mnt/backing" || fail "fallocate failed"
sync
bsw_add dfs backing="$mnt/backing"
dev=$(vdpa_bind_virtio dfs) || exit
"$BIN/dur_writer" --dev "$dev" --lw lwfs --journal fs.journal --mode flush \
	--blocks $BLOCKS --rounds "$FS_ROUNDS" >&2 || fail "dur_writer (ext4) failed"
vdpa_unbind dfs
vdpa_dev_del dfs
umount "$mnt" || fail "umount $mnt failed"
lw_finish lwfs
load_modules loop
rmnt=$(mktemp -d /tmp/dur-replayed.XXXXXX) || fail "mktemp -d failed"
defer _umount_if "$rmnt"
# fs_check MARK: replay to MARK, mount, check the file against MARK
fs_check()
{
	local mark=$1 rc=0

	replay "fs-$mark" --end-mark "$mark" || fail "ext4: replay to $mark failed"
	mount -o loop "$IMG" "$rmnt" || fail "ext4: the file system replayed to $mark does not mount"
	"$BIN/lw_replay" --journal fs.journal --check-mark "$mark" \
		--image "$rmnt/backing" > "$RESULTS_DIR/fs-check-$mark" 2>&1 || rc=$?
	cat "$RESULTS_DIR/fs-check-$mark" >&2
	umount "$rmnt" || fail "umount $rmnt failed"
	rm -f "$IMG"
	return "$rc"
}
nf_ok=0
for k in $(seq "$FS_ROUNDS"); do
	fs_check "f-$k" || fail "ext4: acknowledged writes missing at f-$k"
	# the negative control: lw_replay exits 0 when the mark shows missing writes
	if fs_check "nf-$k"; then
		nf_ok=$((nf_ok + 1))
	else
		log "ext4: negative control nf-$k saw no missing write"
	fi
done
expect_eq "ext4: negative controls that saw missing writes" "$nf_ok" "$FS_ROUNDS"
log "ext4: $FS_ROUNDS flush points replayed, mounted and verified, $nf_ok negative controls detected missing writes"
