#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What the owner of /dev/vhost-vdpa-N must not be able to do to the host
# (issue 16): selftests/vhost_vdpa/owner_test, one case at a time, each
# against a device made for it (selftests/vhost_vdpa/README.rst, "Owner
# tests", says what each asserts and why):
#  - owner_ro_used, owner_ro_used_remap, owner_ro_avail_event: as the
#    unprivileged user nobody, a root-owned read-only file's page mapped
#    VHOST_ACCESS_RO where the device writes the used ring (PA mode);
#    owner_ro_used also against vdpa_sim_blk, first with the stock vringh
#    (which writes the file: the upstream bug, an expected finding), then
#    with vringh built with upstream/0001-vringh-*.patch (which does not);
#  - owner_used_gap, owner_used_gap_event_idx: the used ring unmapped
#    while its queue goes idle, then mapped again; on a pooled device and
#    on one with a thread of its own, both polling for 200 ms;
#  - owner_indirect_huge, owner_indirect_seg_max, owner_huge_request, and
#    owner_indirect_memory on 16 queues;
#  - owner_huge_alias: one 1 GiB huge page at five IOVAs, a 5 GiB read
#    from a null_blk of 8 GiB without memory (skipped without the page);
#  - owner_va_exit (VA mode) and owner_uaf_unmap, owner_uaf_batch (PA
#    mode) on a dm-delay backing whose reads take 2 s;
#  - last, because a failing run leaves the device wedged: a vhost-vdpa
#    user with IOTLB_PERSIST starts the device without mapping anything,
#    then virtio_vdpa must give a /dev/vdX that reads within 60 s.
# Every case runs; the test fails at the end naming each failed case and
# why. On the module of issue 16 owner_uaf_* write into freed memory:
# they may crash the VM. OWNER_CASES (default "sim ro gap indirect alias
# va uaf persist") selects parts when run by hand.
# timeout=900

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

bin=$REPO/selftests/vhost_vdpa/owner_test
cases=${OWNER_CASES:-sim ro gap indirect alias va uaf persist}
RO_USER=nobody
DLY_MS=2000

require_root
require_cmd dmsetup python3 setpriv taskset pgrep timeout
require_module null_blk dm_mod dm_delay
[ -x "$bin" ] || skip "$bin not built (make -C selftests on the host)"
export DM_DISABLE_UDEV=1

passed=()
failed=()
skipped=()
wdir=$(mktemp -d /tmp/owner.XXXXXX) || fail "mktemp failed"
defer rm -rf "$wdir"

want()
{
	case " $cases " in *" $1 "*) return 0 ;; esac
	return 1
}

# The harness's explanation of a failed case: the message after the
# first failed expectation, else a timeout, else the exit status.
case_reason()
{
	local out=$1 rc=$2 r

	r=$(grep -A1 -m1 ':Expected ' "$out" | sed -n '2s/^# [^:]*:[0-9]*:[^:]*://p')
	[ -n "$r" ] || r=$(grep -m1 -iE 'timeout|timed out' "$out")
	echo "${r:-exit status $rc}"
}

# note LABEL RC OUT: count a case's result (0 pass, 4 skip, else fail)
note()
{
	local label=$1 rc=$2 out=$3 r

	case $rc in
	0)
		passed+=("$label")
		log "== $label: ok"
		;;
	4)
		r=$(sed -n 's/.*# SKIP *//p' "$out" | head -n 1)
		skipped+=("$label: ${r:-skipped}")
		log "== $label: SKIP ${r:-}"
		;;
	*)
		r=$(case_reason "$out" "$rc")
		failed+=("$label: $r")
		log "== $label: FAILED: $r"
		;;
	esac
}

# run_owner NAME DEV [ENV=VALUE...]: one case of owner_test, its output
# in $RESULTS_DIR/NAME$TAG.tap (also in ours); sets $rc and $out. $AS
# names a user to run it as, $MEMLOCK its RLIMIT_MEMLOCK in KiB,
# $MGMTDEV the management device.
run_owner()
{
	local name=$1 dev=$2 pre=() t0=$SECONDS

	shift 2
	out=$RESULTS_DIR/$name${TAG:-}.tap
	rc=0
	[ -z "${AS:-}" ] || pre=(setpriv --reuid="$AS" --regid="$(id -g "$AS")" --clear-groups --)
	log "-- $name${TAG:-} on $dev${AS:+ as $AS}"
	(
		[ -z "${MEMLOCK:-}" ] || ulimit -l "$MEMLOCK"
		exec env "$@" timeout --kill-after=10 300 "${pre[@]}" \
			"$bin" -t "$name" --dev "$dev" --mgmtdev "${MGMTDEV:-$BSW_MGMTDEV}"
	) > "$out" 2>&1 < /dev/null || rc=$?
	sed "s/^/   /" "$out" >&2
	log "   ($name: $((SECONDS - t0)) s)"
}

# owner_dev NAME [ATTR=VALUE...]: a device of ours bound to vhost_vdpa;
# sets $vhost
owner_dev()
{
	bsw_add "$@"
	vhost=$(vdpa_bind_vhost "$1") || exit
}

owner_dev_del()
{
	vdpa_unbind "$1"
	vdpa_dev_del "$1"
	[ ! -d "$BSW_CFS/$1" ] || rmdir "$BSW_CFS/$1" ||
		fail "cannot remove the configfs item $1"
}

# --- a read-only file, and a 1 GiB huge page while there is one --------

ro_dir=/scratch/owner-ro
rofile=$ro_dir/file
mkdir -p "$ro_dir" && chmod 0755 "$ro_dir" || fail "cannot make $ro_dir"
defer rm -rf "$ro_dir"
python3 -c 'import sys; sys.stdout.buffer.write(b"\xa5" * 4096)' > "$ro_dir/ref" ||
	fail "cannot write $ro_dir/ref"
chmod 0400 "$ro_dir/ref"

# ro_reset: the file as it must stay (root's, 0444, 4096 x 0xa5)
ro_reset()
{
	rm -f "$rofile"
	cp "$ro_dir/ref" "$rofile" && chown root:root "$rofile" && chmod 0444 "$rofile" ||
		fail "cannot write $rofile"
}

hp=/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages
have_1g=0
_hp_free()
{
	echo 0 > "$hp"
}
if want alias && [ -w "$hp" ]; then
	defer _hp_free
	sync
	echo 3 > /proc/sys/vm/drop_caches
	echo 1 > /proc/sys/vm/compact_memory
	echo 1 > "$hp" 2> /dev/null
	[ "$(cat "$hp")" -ge 1 ] && have_1g=1
fi

# --- vdpa_sim_blk and the upstream vringh bug --------------------------

# vringh_use stock|FILE: the stock vringh, or FILE loaded in its place;
# status 1 (logged) if the modules that use vringh cannot be unloaded
vringh_patched=0
vringh_use()
{
	local m

	for m in vdpa_sim_blk vdpa_sim vdpa_blk_sw vringh; do
		grep -q "^$m " /proc/modules || continue
		modprobe -r "$m" || { log "cannot unload $m to swap vringh"; return 1; }
	done
	if [ "$1" = stock ]; then
		modprobe vringh || fail "cannot load the stock vringh"
		vringh_patched=0
	else
		vringh_patched=1
		cp "$1" "$wdir/vringh.ko" && insmod "$wdir/vringh.ko" ||
			fail "cannot insmod $1"
	fi
}

# At exit, if a failure left the patched vringh loaded
_vringh_restore()
{
	[ "$vringh_patched" = 0 ] || vringh_use stock
}

# sim_ro_run TAG: owner_ro_used against a fresh vdpa_sim_blk (PA mode)
sim_ro_run()
{
	modprobe -r vdpa_sim_blk vdpa_sim 2> /dev/null
	modprobe vdpa_sim use_va=0 && modprobe vdpa_sim_blk ||
		fail "cannot load vdpa_sim (use_va=0) and vdpa_sim_blk"
	expect_eq "vdpa_sim use_va" "$(cat /sys/module/vdpa_sim/parameters/use_va)" N
	vdpa_mgmtdev_load vdpasim_blk
	vdpa_dev_add vdpasim_blk osim0
	vhost=$(vdpa_bind_vhost osim0) || exit
	chown "$RO_USER" "$vhost" || fail "chown $vhost"
	ro_reset
	AS=$RO_USER MGMTDEV=vdpasim_blk TAG=-$1 run_owner owner_ro_used "$vhost" OWNER_RO_FILE="$rofile"
	vdpa_unbind osim0
	vdpa_dev_del osim0
	ro_reset
}

if want sim; then
	vdpa_setup
	fixko=/lib/modules/$(uname -r)/updates/vringh-ro-fix.ko.patched
	if ! modinfo vdpa_sim_blk > /dev/null 2>&1; then
		skipped+=("vdpa_sim_blk: module not available")
	else
		sim_ro_run stock
		if [ "$rc" = 0 ]; then
			failed+=("vdpa_sim_blk, stock vringh: the read-only file stayed intact, so this test cannot see the upstream bug it must see there")
		elif grep -q 'read-only file modified' "$out"; then
			passed+=("vdpa_sim_blk, stock vringh (expected finding)")
			log "== vdpa_sim_blk, stock vringh: ok: expected finding: vringh's putu16_iotlb() writes used->idx through a read-only mapping (the upstream bug fixed by upstream/0001-vringh-*.patch)"
		else
			note "vdpa_sim_blk, stock vringh" "$rc" "$out"
		fi
		if [ ! -f "$fixko" ]; then
			skipped+=("vdpa_sim_blk, patched vringh: no $fixko (scripts/lab/build-ext builds it for the distro kernel)")
			log "== vdpa_sim_blk, patched vringh: SKIP no $fixko"
		elif defer _vringh_restore && vringh_use "$fixko"; then
			sim_ro_run patched
			note "vdpa_sim_blk, patched vringh" "$rc" "$out"
			vringh_use stock || fail "cannot load the stock vringh again"
		else
			failed+=("vdpa_sim_blk, patched vringh: cannot swap vringh modules (see above)")
		fi
		modprobe -r vdpa_sim_blk vdpa_sim
	fi
fi

bsw_setup

# --- 2: used ring writes through read-only mappings, unprivileged -------

if want ro; then
	owner_dev oro0
	chown "$RO_USER" "$vhost" || fail "chown $vhost"
	for c in owner_ro_used owner_ro_used_remap owner_ro_avail_event; do
		ro_reset
		AS=$RO_USER run_owner "$c" "$vhost" OWNER_RO_FILE="$rofile"
		note "$c" "$rc" "$out"
	done
	ro_reset
	owner_dev_del oro0
fi

# --- 2b: the used ring unmapped while its queue goes idle ----------------

if want gap; then
	for nw in 0 1; do
		owner_dev ogap$nw num_workers=$nw poll_idle_us=200000
		echo 0 > "$VDPA_SYSFS/devices/ogap$nw/blk_sw/poll_adaptive" ||
			fail "ogap$nw: cannot turn poll_adaptive off"
		chown "$RO_USER" "$vhost" || fail "chown $vhost"
		for c in owner_used_gap owner_used_gap_event_idx; do
			AS=$RO_USER TAG=-w$nw run_owner "$c" "$vhost"
			note "$c, num_workers=$nw" "$rc" "$out"
		done
		owner_dev_del ogap$nw
	done
fi

# --- 4, 6: indirect tables and the size of a request --------------------

if want indirect; then
	owner_dev oind0
	for c in owner_indirect_huge owner_indirect_seg_max owner_huge_request; do
		MEMLOCK=unlimited run_owner "$c" "$vhost" OWNER_VDPA_NAME=oind0
		note "$c" "$rc" "$out"
	done
	owner_dev_del oind0
	owner_dev omem0 num_queues=16
	MEMLOCK=unlimited run_owner owner_indirect_memory "$vhost"
	note owner_indirect_memory "$rc" "$out"
	owner_dev_del omem0
fi

if want alias; then
	if [ "$have_1g" = 0 ]; then
		skipped+=("owner_huge_alias: no 1 GiB huge page could be allocated ($hp)")
		log "== owner_huge_alias: SKIP no 1 GiB huge page could be allocated"
	else
		bsw_nullb gb=8 memory_backed=0
		owner_dev oal0 backing="$BSW_NULLB" direct=1
		MEMLOCK=unlimited run_owner owner_huge_alias "$vhost"
		note owner_huge_alias "$rc" "$out"
		owner_dev_del oal0
		_hp_free
		_bsw_nullb_unload
	fi
fi

# --- 3, 1: requests in flight on a slow backing -------------------------

_dm_remove()
{
	dmsetup remove --noudevsync --retry "$1" 2> /dev/null
	return 0
}

if want va || want uaf; then
	load_modules dm_mod dm_delay
	bsw_nullb
	# every sector starts with the magic owner_uaf_* look for
	python3 - "$BSW_NULLB" << 'EOF' || fail "cannot fill $BSW_NULLB"
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
buf = b"".join((b"VBS-OWNER-UAF:%010d:" % s).ljust(512, b"\xc3") for s in range(8192))
os.pwrite(fd, buf, 0)
os.fsync(fd)
EOF
	sectors=$(bsw_sectors "$BSW_NULLB")
	printf '0 %s delay %s 0 %s %s 0 0\n' "$sectors" "$BSW_NULLB" "$DLY_MS" "$BSW_NULLB" |
		dmsetup create --noudevsync owdly || fail "dmsetup create owdly failed"
	defer _dm_remove owdly
	dmsetup mknodes owdly
	wait_for 5 test -b /dev/mapper/owdly || fail "/dev/mapper/owdly did not appear"
	cpus=$(nproc)
fi

if want va; then
	owner_dev ova0 backing=/dev/mapper/owdly direct=1 use_va=1 num_workers=1 poll_idle_us=0
	wpid=$(pgrep -x "vbs-ova0/0") || fail "no worker thread vbs-ova0/0"
	wcpu=$((cpus > 1 ? 1 : 0))
	taskset -pc "$wcpu" "$wpid" > /dev/null || fail "cannot pin vbs-ova0/0 to CPU $wcpu"
	run_owner owner_va_exit "$vhost" OWNER_VDPA_NAME=ova0 OWNER_WORKER_PID="$wpid" \
		OWNER_WORKER_CPU="$wcpu"
	note owner_va_exit "$rc" "$out"
	owner_dev_del ova0
fi

if want uaf; then
	# KASAN: leave the freed pages free, so that the device's writes
	# into them are reported
	reuse=1
	grep -q ' kasan_report' /proc/kallsyms && reuse=0
	owner_dev ouaf0 backing=/dev/mapper/owdly direct=1 num_workers=1
	for c in owner_uaf_unmap owner_uaf_batch; do
		run_owner "$c" "$vhost" OWNER_VDPA_NAME=ouaf0 OWNER_UAF_REUSE=$reuse OWNER_TEST_CPU=0
		note "$c" "$rc" "$out"
	done
	owner_dev_del ouaf0
fi

# --- 8: virtio_vdpa after a vhost-vdpa user with IOTLB_PERSIST ----------

# persist_virtio: last, since a failing run leaves opst0 wedged.  The
# bind and the read run in the background with bounded waits.  A bind
# that does not return is virtio_blk's probe waiting for its partition
# scan's read, which never ends: killably, so no hung-task report, but
# holding the disk's open_mutex and the device's lock; it is left alone
# (killed, it would wait again, uninterruptibly).  The lab's power-off
# bounds the sync that then waits for open_mutex (scripts/lab/guest/stage2).
persist_virtio()
{
	local img=/scratch/owner-persist.img label=owner_persist_then_virtio
	local dev=$VDPA_SYSFS/devices/opst0 blk='' st bpid dpid t

	python3 -c 'import os, sys; sys.stdout.buffer.write(os.urandom(8 << 20))' > "$img" ||
		fail "cannot write $img"
	defer rm -f "$img"
	owner_dev opst0 backing="$img" direct=0
	run_owner owner_persist_user "$vhost"
	if [ "$rc" != 0 ]; then
		note "$label (vhost-vdpa part)" "$rc" "$out"
		owner_dev_del opst0
		return
	fi
	vdpa_unbind opst0
	echo virtio_vdpa > "$dev/driver_override" || fail "driver_override"
	(echo opst0 > "$VDPA_SYSFS/drivers/virtio_vdpa/bind") \
		> "$RESULTS_DIR/persist-bind.log" 2>&1 < /dev/null &
	bpid=$!
	t=$((SECONDS + 60 * ${SELFTESTS_TIMEOUT_SCALE:-1}))
	while ((SECONDS < t)); do
		if ! kill -0 "$bpid" 2> /dev/null; then
			blk=$(_vdpa_sysfs_child opst0 'virtio*/block/*') && break
		fi
		sleep 0.5
	done
	if [ -z "$blk" ] || kill -0 "$bpid" 2> /dev/null; then
		st=$(cat "$dev"/virtio*/status 2> /dev/null)
		failed+=("$label: virtio_blk on opst0 did not come up within 60 s (bind $(kill -0 "$bpid" 2> /dev/null && echo "still waiting" || echo "returned"), virtio status ${st:-unknown}): the identity map the vhost-vdpa user dropped was not restored for virtio_vdpa")
		log "== $label: FAILED: ${failed[-1]#*: }"
		if kill -0 "$bpid" 2> /dev/null; then
			vdpa_dev_wedged opst0
		else
			owner_dev_del opst0
		fi
		return
	fi
	wait "$bpid" || log "bind: $(cat "$RESULTS_DIR/persist-bind.log")"
	wait_for 5 test -b "/dev/$blk" || fail "/dev/$blk did not appear"
	dd if="/dev/$blk" of="$wdir/persist.read" bs=1M count=1 iflag=direct status=none \
		> "$RESULTS_DIR/persist-dd.log" 2>&1 < /dev/null &
	dpid=$!
	t=$((SECONDS + 60 * ${SELFTESTS_TIMEOUT_SCALE:-1}))
	while ((SECONDS < t)); do
		kill -0 "$dpid" 2> /dev/null || break
		sleep 0.5
	done
	if kill -0 "$dpid" 2> /dev/null; then
		vdpa_dev_wedged opst0
		failed+=("$label: a 1 MiB O_DIRECT read of /dev/$blk did not end within 60 s")
		log "== $label: FAILED: ${failed[-1]#*: }"
		return
	fi
	if ! wait "$dpid" || ! head -c 1M "$img" | cmp -s - "$wdir/persist.read"; then
		failed+=("$label: the 1 MiB O_DIRECT read of /dev/$blk failed or returned other data than the backing's")
		log "== $label: FAILED: ${failed[-1]#*: }"
	else
		passed+=("$label")
		log "== $label: ok: /dev/$blk read 1 MiB of the backing's data"
	fi
	owner_dev_del opst0
}

want persist && persist_virtio

log "passed: ${#passed[@]}, skipped: ${#skipped[@]}, failed: ${#failed[@]}"
for s in "${skipped[@]}"; do
	log "skipped: $s"
done
if [ ${#failed[@]} -gt 0 ]; then
	for s in "${failed[@]}"; do
		log "FAILED: $s"
	done
	fail "${#failed[@]} owner case(s) failed: $(printf '%s; ' "${failed[@]%%:*}")"
fi
exit 0
