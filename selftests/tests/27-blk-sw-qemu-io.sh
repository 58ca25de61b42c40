#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# QEMU's libblkio driver (virtio-blk-vhost-vdpa) on vdpa_blk_sw: the same
# checks as for vdpa_sim_blk (11-vdpa-sim-blk-vhost.sh: patterns written and
# read back by qemu-io, shared with virtio_vdpa), on a device backed by a
# file, whose content is then checked on the file itself.
# timeout=300

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
require_cmd qemu-io cmp
bsw_setup
truncate -s 64M /scratch/qemu-io.img || fail "truncate failed"
bsw_stage blk0 backing=/scratch/qemu-io.img direct=0
VHOST_MGMTDEV=$BSW_MGMTDEV KEEP_DEVICE=1 "$(dirname "$0")/11-vdpa-sim-blk-vhost.sh" ||
	fail "qemu-io checks failed on $BSW_MGMTDEV"
defer vdpa dev del blk0

# what qemu-io wrote is in the backing file: 0xab at 0, 0x5a at 1 MiB
# (written from virtio_vdpa), 0xcd at 4 MiB
check()
{
	cmp -n "$3" -i "$2:0" /scratch/qemu-io.img \
		<(python3 -c 'import sys; sys.stdout.buffer.write(bytes([int(sys.argv[1], 0)]) * int(sys.argv[2]))' "$1" "$3") ||
		fail "backing file: no $1 at $2"
}
check 0xab 0 $((1 << 20))
check 0x5a $((1 << 20)) $((1 << 20))
check 0xcd $((4 << 20)) 65536
