#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vdpa_blk_sw through the unmodified iproute2 vdpa tool: the management
# device and its features, a default device on the embedded backing with
# the documented defaults, device_features provisioning (a subset reaches
# the driver, an invalid set is refused), duplicate names, and several
# devices at once, each verified with fio.
# timeout=400

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
bsw_setup

# --- the management device ---------------------------------------------
mgmt=$(vdpa mgmtdev show "$BSW_MGMTDEV") || fail "vdpa mgmtdev show failed"
log "$mgmt"
grep -q 'supported_classes block' <<< "$mgmt" || fail "class is not block"
grep -q 'max_supported_vqs 16' <<< "$mgmt" || fail "max_supported_vqs is not 16"
for f in VERSION_1 ACCESS_PLATFORM RING_EVENT_IDX RING_INDIRECT_DESC; do
	grep -qw "$f" <<< "$mgmt" || fail "mgmtdev does not offer $f"
done
supported=$(vdpa -j mgmtdev show "$BSW_MGMTDEV" |
	jq -r '.mgmtdev[] | .dev_features // empty | join(" ")')
log "features: $supported"

# --- a default device: embedded 128 MiB memory backing ------------------
# a queue per online CPU, at most 16, as QEMU gives virtio-blk-pci, and a
# worker per queue
nq=$(nproc)
nq=$((nq < 16 ? nq : 16))
vdpa_dev_add "$BSW_MGMTDEV" blk0
show=$(vdpa dev show blk0) || fail "vdpa dev show failed"
log "$show"
grep -q "type block mgmtdev $BSW_MGMTDEV" <<< "$show" || fail "bad vdpa dev show"
grep -q "max_vqs $nq " <<< "$show" || fail "max_vqs is not $nq"
# queue_size 0: 1024 to any driver but virtio_vdpa (none yet)
grep -q 'max_vq_size 1024' <<< "$show" || fail "max_vq_size is not 1024"

expect_eq capacity "$(bsw_attr blk0 capacity)" $((128 << 11))
expect_eq backing "$(bsw_attr blk0 backing)" ""
expect_eq backing_type "$(bsw_attr blk0 backing_type)" memory
expect_eq queue_size "$(bsw_attr blk0 queue_size)" 0
expect_eq num_queues "$(bsw_attr blk0 num_queues)" "$nq"
# 0: the queues are served by the shared per-CPU pool
expect_eq num_workers "$(bsw_attr blk0 num_workers)" 0
# not bound: no queue is attached to a pool worker yet
expect_eq worker_pids "$(bsw_attr blk0 worker_pids)" \
	"$(printf '0 %.0s' $(seq "$nq") | sed 's/ $//')"
expect_eq block_size "$(bsw_attr blk0 block_size)" 512
expect_eq serial "$(bsw_attr blk0 serial)" blk0
expect_eq read_only "$(bsw_attr blk0 read_only)" 0
expect_eq iopoll "$(bsw_attr blk0 iopoll)" 0
expect_eq poll_idle_us "$(bsw_attr blk0 poll_idle_us)" 50
expect_eq poll_adaptive "$(bsw_attr blk0 poll_adaptive)" 1
# adaptive windows start at 0: an idle device costs no CPU (one per queue:
# its pool worker's)
expect_eq poll_window_ns "$(bsw_attr blk0 poll_window_ns)" \
	"$(printf '0 %.0s' $(seq "$nq") | sed 's/ $//')"

dev0=$(vdpa_bind_virtio blk0) || exit
# to virtio_vdpa, rings of 64: as many blk-mq requests per queue, and
# seg_max 62 (room for the header and the status)
blk0sys=/sys/block/$(basename "$dev0")
expect_eq "max_vq_size bound to virtio_vdpa" \
	"$(vdpa -j dev show blk0 | jq -r '.dev.blk0.max_vq_size')" 64
expect_eq "$dev0 nr_tags per hardware queue" \
	"$(cat "$blk0sys"/mq/*/nr_tags | sort -u | tr '\n' ' ')" "64 "
expect_eq "$dev0 hardware queues" "$(ls -d "$blk0sys"/mq/*/ | wc -l)" "$nq"
expect_eq "$dev0 max_segments" "$(cat "$blk0sys/queue/max_segments")" 62
expect_eq "$dev0 size" "$(bsw_sectors "$dev0")" $((128 << 11))
expect_eq "$dev0 serial" "$(cat "/sys/block/$(basename "$dev0")/serial")" blk0
fio_verify "$dev0" 32M
[ "$(cat "/sys/block/$(basename "$dev0")/queue/discard_max_bytes")" -gt 0 ] ||
	fail "$dev0: discard not offered by default"

# --- device_features provisioning ----------------------------------------
# VERSION_1, ACCESS_PLATFORM, SIZE_MAX, SEG_MAX, BLK_SIZE, FLUSH, TOPOLOGY,
# MQ: no DISCARD, no WRITE_ZEROES.
feat=$(((1 << 32) | (1 << 33) | (1 << 1) | (1 << 2) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 12)))
vdpa_dev_add "$BSW_MGMTDEV" blk1 device_features "$(printf '0x%x' "$feat")"
dev1=$(vdpa_bind_virtio blk1) || exit
q1=/sys/block/$(basename "$dev1")/queue
expect_eq "$dev1 discard_max_bytes" "$(cat "$q1/discard_max_bytes")" 0
expect_eq "$dev1 write_zeroes_max_bytes" "$(cat "$q1/write_zeroes_max_bytes")" 0
vfeat=$(cat "$VDPA_SYSFS"/devices/blk1/virtio*/features)
expect_eq "driver feature bit 13 (DISCARD)" "${vfeat:13:1}" 0
expect_eq "driver feature bit 9 (FLUSH)" "${vfeat:9:1}" 1
expect_eq "driver feature bit 32 (VERSION_1)" "${vfeat:32:1}" 1
fio_verify "$dev1" 16M

# a read-only provisioned device
vdpa_dev_add "$BSW_MGMTDEV" blk2 device_features "$(printf '0x%x' $((feat | (1 << 5))))"
expect_eq "blk2 read_only" "$(bsw_attr blk2 read_only)" 1
dev2=$(vdpa_bind_virtio blk2) || exit
expect_eq "$dev2 ro" "$(cat "/sys/block/$(basename "$dev2")/ro")" 1

# invalid sets: no VERSION_1; an unsupported bit (GEOMETRY, 4); CONFIG_WCE
# (11) without FLUSH (9), which the virtio spec forbids; all refused
expect_fail "features without VERSION_1" \
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name bad0 device_features 0x200000000
expect_fail "unsupported feature bit" \
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name bad1 \
	device_features "$(printf '0x%x' $((feat | (1 << 4))))"
expect_fail "CONFIG_WCE without FLUSH" \
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name bad2 \
	device_features "$(printf '0x%x' $(((feat & ~(1 << 9)) | (1 << 11))))"
for d in bad0 bad1 bad2; do
	[ ! -e "$VDPA_SYSFS/devices/$d" ] || fail "the refused device $d exists"
done

# a taken name is refused
expect_fail "duplicate name" vdpa dev add mgmtdev "$BSW_MGMTDEV" name blk0

# --- several devices at once ------------------------------------------------
vdpa_dev_add "$BSW_MGMTDEV" blk3
dev3=$(vdpa_bind_virtio blk3) || exit
pids=()
for d in "$dev0" "$dev1" "$dev3"; do
	fio_verify "$d" 16M --rw=randwrite --offset=64M &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "concurrent verification failed"
done

# to vhost_vdpa, 1024 again: its user picks the size (QEMU 10.0's
# vhost-vdpa-device-pci needs 1024)
vdpa_bind blk0 vhost_vdpa
expect_eq "max_vq_size bound to vhost_vdpa" \
	"$(vdpa -j dev show blk0 | jq -r '.dev.blk0.max_vq_size')" 1024

for n in blk0 blk1 blk2 blk3; do
	vdpa_unbind "$n"
	vdpa_dev_del "$n"
done
[ -z "$(ls "$VDPA_SYSFS/devices")" ] || fail "devices left: $(ls "$VDPA_SYSFS/devices")"
