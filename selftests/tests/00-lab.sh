#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The lab itself: the pinned kernel booted, the repository and results are
# mounted, the guest tools are there and the vdpa stack (with the
# out-of-tree vringh and vdpa_sim_blk) loads.
# timeout=120

. "$(dirname "$0")/../lib.sh"

require_root

kver=$(uname -r)
log "kernel $kver"
case $kver in
6.12.*) ;;
*) fail "kernel $kver is not the pinned 6.12" ;;
esac
if [ -n "${LAB_KVER:-}" ] && [ "$kver" != "$LAB_KVER" ]; then
	fail "kernel $kver, expected $LAB_KVER"
fi

[ -f "$REPO/selftests/lib.sh" ] || fail "repository not mounted at $REPO"
touch "$RESULTS_DIR/probe" || fail "results directory $RESULTS_DIR not writable"

for c in vdpa fio qemu-io qemu-storage-daemon jq python3 modprobe dmsetup mkfs.xfs; do
	command -v "$c" > /dev/null || fail "$c missing in the guest"
done
qemu-io --version | head -n 1 >&2

vdpa_setup
load_modules vringh vdpa_sim vdpa_sim_blk
for m in vringh vdpa_sim_blk vhost_vdpa virtio_vdpa; do
	grep -q "^$m " /proc/modules || fail "$m not loaded"
done
vdpa_mgmtdev_present vdpasim_blk || fail "vdpasim_blk management device missing"
vdpa mgmtdev show >&2
