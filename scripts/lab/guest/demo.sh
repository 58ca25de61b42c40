# SPDX-License-Identifier: GPL-2.0
#
# The demo, in the lab guest (run by scripts/lab/demo through vm-run).
# DEMO_MGMTDEV, DEMO_RUNTIME and DEMO_DEV_ARGS come from the host.

RESULTS_DIR=/results/demo
mkdir -p "$RESULTS_DIR"
. /repo/selftests/lib.sh
cd /tmp

mgmtdev=$DEMO_MGMTDEV
runtime=$DEMO_RUNTIME

vdpa_setup
vdpa_mgmtdev_load "$mgmtdev"
# shellcheck disable=SC2086
vdpa_dev_add "$mgmtdev" blk0 $DEMO_DEV_ARGS
vdpa dev show blk0 >&2
dev=$(vdpa_bind_virtio blk0) || exit
bytes=$(blockdev --getsize64 "$dev")
size=$(( bytes < (256 << 20) ? bytes : (256 << 20) ))
log "demo: $mgmtdev device blk0 -> $dev ($((bytes >> 20)) MiB); fio 4k randrw, QD16, io_uring, O_DIRECT, crc32c verify, $runtime s"

fio_run demo --name=demo --filename="$dev" --size="$size" --rw=randrw --bs=4k \
	--ioengine=io_uring --iodepth=16 --direct=1 \
	--verify=crc32c --verify_backlog=1024 --verify_fatal=1 \
	--runtime="$runtime" --time_based
jq -r --arg dev "$dev" '.jobs[0] as $j |
	def ms(x): (x / 1000000 * 100 | round) / 100 | tostring;
	def row(n; d): "  " + n + (d.iops | round | tostring) + " IOPS, latency mean " +
		ms(d.lat_ns.mean) + " ms, p99 " + ms(d.clat_ns.percentile["99.000000"] // 0) + " ms";
	"demo: " + $dev + " results (" + ($j.elapsed | tostring) + " s, no verification errors):",
	row("read : "; $j.read), row("write: "; $j.write)' "$RESULTS_DIR/demo.json" >&2

vdpa_unbind blk0
vdpa_dev_del blk0
log "demo: blk0 deleted; fio JSON in /results/demo/demo.json"
