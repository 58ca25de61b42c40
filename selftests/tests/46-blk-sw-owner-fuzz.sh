#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Hostile owner: selftests/vhost_vdpa/vdpa_fuzz --owner against vdpa_blk_sw
# through vhost-vdpa, on an 8 MiB two-queue memory-backed device in PA mode,
# then on one in VA mode (use_va=1). The owner of /dev/vhost-vdpa-N mixes
# guest I/O with IOTLB batches it may never end, read-only maps under rings
# and buffers, munmap() and invalidations under requests in flight, ring
# bases, addresses, features and status in odd orders, resets, suspends,
# forks, exits and SCM_RIGHTS hand-offs of its fd; the fuzzer checks every
# answer, that nothing it may not write changes, and that each next session
# finds the device working (see the top of fuzz_owner.c). Then:
#  - the PA run ends with the device started by its owner without any
#    mapping and closed (IOTLB_PERSIST): virtio_vdpa must still get a
#    working disk (it reads the partition table, then 64 KiB direct);
#  - with the devices deleted, MemAvailable and unreclaimable slab come
#    back within bounds (pinned pages, the device's page references).
# Before each random run, fixed sequences (--case) for two defects this
# mode found: base-jump (PA: SET_VRING_BASE on a suspended queue without
# EVENT_IDX, the next completion must land at the new base) and reset-map
# (VA: the first UPDATE after a reset runs under the owner's mmap_lock and
# must not wait for requests; on the debug kernel lockdep reports it).
# run.sh fails the test on any kernel warning, and on the debug kernel on
# a kmemleak report.
#
# In make check each mode runs FUZZ_OWNER_SECONDS (default 35) or
# FUZZ_OWNER_OPS operations, whichever ends first (65,000-75,000 in 35 s
# under TCG). On the debug kernel (uname -r ending in -vbs-debug: make
# check-debug) there is no time limit and each mode runs FUZZ_OWNER_OPS
# operations (default 60000, 120,000 in all: about 25 minutes, PA mode
# being the slower at some 45 a second). An operation is an IOTLB message,
# a request, a kick, an ioctl, a munmap() or a process event.
#
#   FUZZ_SEED=S FUZZ_OWNER_OPS=N FUZZ_OWNER_SECONDS=T FUZZ_BIN=PATH
#
# Replay a failure in the lab (the fuzzer prints the line):
#   vdpa_fuzz --owner --dev /dev/vhost-vdpa-N --seed S --iterations N
# timeout=900

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

fuzz=${FUZZ_BIN:-$REPO/selftests/vhost_vdpa/vdpa_fuzz}
seed=${FUZZ_SEED:-$(date +%s)}
ops=${FUZZ_OWNER_OPS:-100000}
secs=${FUZZ_OWNER_SECONDS:-35}
case $(uname -r) in
*-vbs-debug)
	ops=${FUZZ_OWNER_OPS:-60000}
	secs=${FUZZ_OWNER_SECONDS:-0}
	;;
esac

require_root
[ -x "$fuzz" ] || skip "$fuzz not built (make -C selftests on the host)"
bsw_setup
# Pinned pages of the fuzzer's regions (PA mode) count against this.
ulimit -l unlimited

meminfo()
{
	sync
	echo 3 > /proc/sys/vm/drop_caches
	awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo
}

avail_before=$(meminfo MemAvailable)
slab_before=$(meminfo SUnreclaim)

run_owner()
{
	local tag=$1 rc=0 limit=1700

	shift
	# a backstop: the fuzzer bounds each of its waits itself
	[ -z "$secs" ] || limit=$(( (secs * 3 + 120) * ${SELFTESTS_TIMEOUT_SCALE:-1} ))
	log "$tag: $vhost, seed $1, up to $ops operations${secs:+ or $secs s}"
	timeout --kill-after=10 "$limit" \
		"$fuzz" --owner --dev "$vhost" --seed "$@" --iterations "$ops" \
		${secs:+--seconds "$secs"} > "$RESULTS_DIR/owner-$tag.log" 2>&1 || rc=$?
	grep -v ' sessions, .* operations, ' "$RESULTS_DIR/owner-$tag.log" |
		sed "s/^/$tag: /" | tail -n 60 >&2
	return "$rc"
}
[ "$secs" != 0 ] || secs=

# run_case CASE: one fixed sequence of the owner mode on $vhost
run_case()
{
	local rc=0

	log "case $1 on $vhost"
	timeout --kill-after=10 $((300 * ${SELFTESTS_TIMEOUT_SCALE:-1})) \
		"$fuzz" --owner --dev "$vhost" --seed "$seed" --case "$1" \
		> "$RESULTS_DIR/owner-case-$1.log" 2>&1 || rc=$?
	[ "$rc" = 0 ] || tail -n 30 "$RESULTS_DIR/owner-case-$1.log" | sed "s/^/$1: /" >&2
	return "$rc"
}

bsw_add fzo size=$((8 << 20)) num_queues=2 queue_size=256
vhost=$(vdpa_bind_vhost fzo) || exit
run_case base-jump || fail "vdpa_fuzz --owner --case base-jump failed"
run_owner pa "$seed" --end-bare || fail "vdpa_fuzz --owner failed in PA mode (seed $seed)"
# Its last owner started it with no mapping and closed it.
vdpa_unbind fzo
blk=$(vdpa_bind_virtio fzo) || exit
timeout 60 dd if="$blk" of=/dev/null bs=64k count=1 iflag=direct status=none ||
	fail "virtio_vdpa cannot read the disk the last owner left without a mapping"
vdpa_unbind fzo
vdpa_dev_del fzo

if [ -e "$BSW_CFS/fzo/use_va" ]; then
	bsw_add fzova size=$((8 << 20)) num_queues=2 queue_size=256 use_va=1
	vhost=$(vdpa_bind_vhost fzova) || exit
	run_case reset-map || fail "vdpa_fuzz --owner --case reset-map failed"
	run_owner va $((seed + 1)) || fail "vdpa_fuzz --owner failed in VA mode (seed $((seed + 1)))"
	vdpa_unbind fzova
	vdpa_dev_del fzova
fi

# Everything the device and vhost-vdpa held is given back.
avail_after=$(meminfo MemAvailable)
slab_after=$(meminfo SUnreclaim)
log "MemAvailable: $avail_before kB before, $avail_after kB after; unreclaimable slab: $slab_before kB, $slab_after kB"
[ $((avail_before - avail_after)) -lt $((32 * 1024)) ] ||
	fail "MemAvailable dropped by $((avail_before - avail_after)) kB"
[ $((slab_after - slab_before)) -lt $((16 * 1024)) ] ||
	fail "unreclaimable slab grew by $((slab_after - slab_before)) kB"
