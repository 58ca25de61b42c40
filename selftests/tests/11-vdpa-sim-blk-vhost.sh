#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Reference peer through vhost-vdpa: vdpa_sim_blk written from virtio_vdpa,
# rebound to vhost_vdpa (/dev/vhost-vdpa-N appears), then written and read
# with verification by QEMU's libblkio driver (virtio-blk-vhost-vdpa) from
# userspace, and finally rebound to virtio_vdpa to check that both paths
# see the same data.
#
# VHOST_MGMTDEV=NAME runs the same on another management device (the
# caller stages its parameters); the device is left unbound, not deleted,
# when KEEP_DEVICE=1, so the caller can check its backing.
# timeout=300

. "$(dirname "$0")/../lib.sh"

require_root
require_cmd qemu-io
vdpa_setup
mgmtdev=${VHOST_MGMTDEV:-vdpasim_blk}
vdpa_mgmtdev_load "$mgmtdev"
vdpa_dev_add "$mgmtdev" blk0

dev=$(vdpa_bind_virtio blk0) || exit
# 0x5a at 1 MiB, through the kernel driver
pattern()
{
	python3 -c 'import sys; sys.stdout.buffer.write(bytes([int(sys.argv[1], 0)]) * int(sys.argv[2]))' "$@"
}
pattern 0x5a 1048576 > pattern-5a
dd if=pattern-5a of="$dev" bs=1M seek=1 oflag=direct status=none || fail "dd to $dev failed"

vhost=$(vdpa_bind_vhost blk0) || exit
log "blk0 -> $vhost"

qemu_io()
{
	local out rc=0

	out=$(qemu-io --image-opts \
		"driver=virtio-blk-vhost-vdpa,path=$vhost,cache.direct=on" "$@" 2>&1) || rc=$?
	printf '%s\n' "$out" | tee -a "$RESULTS_DIR/qemu-io.log" >&2
	[ "$rc" = 0 ] || fail "qemu-io $* failed with status $rc"
	if grep -qiE 'mismatch|verification failed|error|failed' <<< "$out"; then
		fail "qemu-io $*: reported a failure"
	fi
}

qemu_io -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M'
# the data written through virtio_vdpa is visible here
qemu_io -c 'read -P 0x5a 1M 1M'
# a second open of the same device works after the first closed it
qemu_io -c 'write -P 0xcd 4M 64k' -c 'read -P 0xcd 4M 64k' -c 'read -P 0xab 0 4k'

# and back: the kernel driver sees what libblkio wrote
dev=$(vdpa_bind_virtio blk0) || exit
pattern 0xab 1048576 > pattern-ab
cmp <(dd if="$dev" bs=1M count=1 iflag=direct status=none) pattern-ab ||
	fail "$dev: data written through vhost-vdpa differs"
vdpa_unbind blk0
[ "${KEEP_DEVICE:-0}" = 1 ] || vdpa_dev_del blk0
