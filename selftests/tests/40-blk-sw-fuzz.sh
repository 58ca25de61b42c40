#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Hostile guest: selftests/vhost_vdpa/vdpa_fuzz against vdpa_blk_sw through
# vhost-vdpa. A time-bounded pass (FUZZ_ITERATIONS requests, default
# 100000, or FUZZ_SECONDS, default 90, whichever comes first) on an 8 MiB,
# two-queue (the fuzzer drives one of them, chosen again at each reset)
# memory-backed device in PA mode, with a seed printed for replay, the
# regression cases, then passes half as long on a device in VA mode
# (use_va=1) and on a block device backing (null_blk, O_DIRECT: the
# asynchronous path). run.sh fails the test on any kernel warning.
#
#   FUZZ_SEED=S FUZZ_ITERATIONS=N FUZZ_SECONDS=T FUZZ_QSIZE=Q
#   FUZZ_STRICT=1   no allowance for requests over the device's bio_vec
#                   array in the main pass (they break size_max)
#   FUZZ_BIN=PATH   the fuzzer binary (default: the one built in the repo)
#
# Replay a failure in the lab:
#   vdpa_fuzz --dev /dev/vhost-vdpa-N --seed S --iterations N
# timeout=600

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

fuzz=${FUZZ_BIN:-$REPO/selftests/vhost_vdpa/vdpa_fuzz}
seed=${FUZZ_SEED:-$(date +%s)}
iters=${FUZZ_ITERATIONS:-100000}
secs=${FUZZ_SECONDS:-90}

require_root
[ -x "$fuzz" ] || skip "$fuzz not built (make -C selftests on the host)"
bsw_setup
# Pinned pages of the fuzzer's regions (PA mode) count against this.
ulimit -l unlimited

bsw_add fz0 size=$((8 << 20)) serial=vdpa-fuzz-serial-01 queue_size=256 num_queues=2
vhost=$(vdpa_bind_vhost fz0) || exit
log "fuzzing $vhost: seed $seed, up to $iters requests or $secs s"

run_fuzz()
{
	local tag=$1 rc=0

	shift
	timeout --kill-after=10 $((secs + 120)) "$fuzz" --dev "$vhost" "$@" \
		> "$RESULTS_DIR/fuzz-$tag.log" 2>&1 || rc=$?
	sed "s/^/$tag: /" "$RESULTS_DIR/fuzz-$tag.log" | tail -n 60 >&2
	return "$rc"
}

run_fuzz main --seed "$seed" --iterations "$iters" --seconds "$secs" \
	${FUZZ_QSIZE:+--qsize "$FUZZ_QSIZE"} || fail "vdpa_fuzz failed (seed $seed)"

# The device must be usable afterwards.
expect_eq "fz0 inflight" "$(bsw_stat fz0 inflight)" 0

# Regression cases (see the report in each case's comment in
# selftests/vhost_vdpa/fuzz_scenarios.c).
run_fuzz status-wrap --seed "$seed" --case status-wrap ||
	fail "status byte written through a descriptor that wraps past 2^64"
# seg_max segments of size_max over scattered pages: taken and intact
run_fuzz bvec --seed "$seed" --case bvec ||
	fail "the largest legal request over scattered pages failed"
grep -q "bvec-legal: 254 segments of 4096 bytes, 508 pages" "$RESULTS_DIR/fuzz-bvec.log" ||
	fail "the bvec case did not send seg_max (254) segments of size_max (4096) over 508 pages"
vdpa_unbind fz0
vdpa_dev_del fz0

# VA mode: the IOTLB holds user addresses, the device pins pages itself.
if [ -e "$BSW_CFS/fz0/use_va" ]; then
	bsw_add fzva size=$((8 << 20)) queue_size=256 use_va=1
	vhost=$(vdpa_bind_vhost fzva) || exit
	log "VA mode: $vhost, seed $((seed + 1))"
	run_fuzz va --seed $((seed + 1)) --iterations "$iters" --seconds $((secs / 2)) ||
		fail "vdpa_fuzz failed in VA mode (seed $((seed + 1)))"
	run_fuzz va-status-wrap --seed "$seed" --case status-wrap ||
		fail "VA mode: status byte written through a wrapping descriptor"
	vdpa_unbind fzva
	vdpa_dev_del fzva
fi

# A block device backing with direct I/O: completions come from the block
# layer, asynchronously.
if modinfo null_blk > /dev/null 2>&1; then
	bsw_nullb
	bsw_add fznb backing="$BSW_NULLB" direct=1 queue_size=256
	vhost=$(vdpa_bind_vhost fznb) || exit
	log "null_blk backing: $vhost, seed $((seed + 2))"
	run_fuzz nullb --seed $((seed + 2)) --iterations "$iters" --seconds $((secs / 2)) ||
		fail "vdpa_fuzz failed on a block device backing (seed $((seed + 2)))"
	vdpa_unbind fznb
	vdpa_dev_del fznb
fi
