#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The userspace vhost-vdpa driver's kselftest suite
# (selftests/vhost_vdpa/vhost_vdpa_test) against a vdpa device bound to
# vhost_vdpa, followed by a short vdpa_bench run.  Default device: the
# reference vdpa_sim_blk, in both of vhost-vdpa's memory modes (its
# vdpa_sim module parameter use_va: VA mode, then PA mode with pinned
# pages under the default RLIMIT_MEMLOCK).
#
# The same script serves other devices: VHOST_VDPA_MGMTDEV=vdpasim_blk-sw
# runs it against ours (once, in the device's default mode), e.g. from a
# test that only does
#	VHOST_VDPA_MGMTDEV=vdpasim_blk-sw exec "$(dirname "$0")/15-vhost-vdpa-sim.sh"
#
# The binaries are built on the host (make -C selftests/vhost_vdpa
# KSFT_INC=<linux-source>/tools/testing/selftests); the test skips if they
# are missing.
# timeout=600

. "$(dirname "$0")/../lib.sh"

mgmtdev=${VHOST_VDPA_MGMTDEV:-vdpasim_blk}
bindir=$REPO/selftests/vhost_vdpa
test_bin=$bindir/vhost_vdpa_test
bench_bin=$bindir/vdpa_bench

require_root
[ -x "$test_bin" ] && [ -x "$bench_bin" ] ||
	skip "$test_bin or $bench_bin not built (make -C selftests/vhost_vdpa on the host)"

# run_suite TAG: create the device, bind it to vhost_vdpa, run the tests and
# the benchmark, delete the device.
run_suite()
{
	local tag=$1 vhost rc=0 m

	vdpa_dev_add "$mgmtdev" vvblk0
	vhost=$(vdpa_bind_vhost vvblk0) || exit
	log "$tag: vvblk0 ($mgmtdev) -> $vhost, RLIMIT_MEMLOCK $(ulimit -l) KiB"

	timeout --kill-after=10 $((240 * ${SELFTESTS_TIMEOUT_SCALE:-1})) "$test_bin" --dev "$vhost" --mgmtdev "$mgmtdev" \
		> "$RESULTS_DIR/vhost_vdpa_test-$tag.tap" 2>&1 || rc=$?
	sed "s/^/$tag: /" "$RESULTS_DIR/vhost_vdpa_test-$tag.tap" >&2
	[ "$rc" = 0 ] || fail "$tag: vhost_vdpa_test failed (status $rc)"

	for m in randread randwrite; do
		timeout --kill-after=10 60 "$bench_bin" -d "$vhost" -m "$m" -b 4096 -q 16 -t 2 \
			> "$RESULTS_DIR/vdpa_bench-$tag-$m.txt" 2>&1 || rc=$?
		sed "s/^/$tag: bench: /" "$RESULTS_DIR/vdpa_bench-$tag-$m.txt" >&2
		[ "$rc" = 0 ] || fail "$tag: vdpa_bench -m $m failed (status $rc)"
	done

	vdpa_unbind vvblk0
	vdpa_dev_del vvblk0
}

vdpa_setup
if [ "$mgmtdev" = vdpasim_blk ]; then
	require_module vdpa_sim vdpa_sim_blk
	for va in 1 0; do
		modprobe -r vdpa_sim_blk vdpa_sim 2> /dev/null
		load_modules vhost_vdpa
		modprobe vdpa_sim use_va=$va || fail "modprobe vdpa_sim use_va=$va failed"
		vdpa_mgmtdev_load vdpasim_blk
		[ "$(cat /sys/module/vdpa_sim/parameters/use_va)" = "$([ $va = 1 ] && echo Y || echo N)" ] ||
			fail "vdpa_sim use_va is not $va"
		run_suite "$([ $va = 1 ] && echo va || echo pa)"
	done
	modprobe -r vdpa_sim_blk vdpa_sim
else
	vdpa_mgmtdev_load "$mgmtdev"
	run_suite default
fi
