# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers for the selftests. Source it from a test:
#
#	. "$(dirname "$0")/../lib.sh"
#
# Conventions
#   - A test is an executable bash script selftests/tests/NN-name.sh (NN sets
#     the order), listed in TEST_PROGS in selftests/Makefile. run.sh runs each
#     in the lab guest as root, in its own empty working directory, with a
#     timeout (selftests/settings, or a line "# timeout=SECONDS" near the top
#     of the test). make -C selftests run_tests runs them with kselftest's
#     runner instead: in selftests/tests, with the timeout of settings, and
#     without the dmesg, leak and leftover-device checks of run.sh.
#   - Exit status: 0 pass, 4 skip (use skip), anything else fails. Each test
#     is checked against dmesg afterwards: a WARNING, BUG, Oops, KASAN/UBSAN
#     report, hung task, soft lockup or refcount_t message fails it. A test
#     that provokes a message on purpose declares it with dmesg_allow.
#   - Print diagnostics with log; run.sh turns output into TAP "# " lines
#     and keeps it in /results/tests/NAME.log.
#   - Undo what you set up with defer (LIFO, runs on any exit). Devices made
#     with vdpa_dev_add are deleted automatically.
#   - Never assume /dev/vdX or /dev/vhost-vdpa-N numbers: ask the helpers.
#     Helpers that print a value run in a subshell, where fail and skip only
#     end the subshell; propagate with "|| exit":
#		dev=$(vdpa_bind_virtio blk0) || exit
#   - log, fail and skip write to stderr, so they work inside $(...) too.
#   - vdpa_setup turns off the vdpa bus autoprobe, so a new device stays
#     unbound until a test binds it (vdpa_bind_virtio / vdpa_bind_vhost).
#
# Environment (set by run.sh; defaults allow running a test by hand):
#   RESULTS_DIR   per-test directory for artefacts (fio JSON, dumps)
#   REPO          the repository (/repo; by default the one holding lib.sh)
#   TEST_NAME     the test's name (NN-name)
#
# Helpers (all fail the test on error unless stated):
#   log MSG...                   print a diagnostic
#   fail MSG...                  fail the test now
#   skip REASON...               skip the test now (exit 4)
#   defer CMD [ARG...]           run CMD at exit, last deferred first
#   require_root                 skip unless root
#   require_cmd CMD...           skip unless every CMD is installed
#   require_module MOD...        skip unless every module exists
#   load_modules MOD...          modprobe each
#   wait_for SECONDS CMD [ARG...]   retry CMD every 0.1 s; status 1 on timeout
#                                   (SECONDS times $SELFTESTS_TIMEOUT_SCALE)
#   dmesg_allow REGEX            do not fail the test on dmesg lines matching REGEX
#   vdpa_setup                   load the vdpa bus, virtio_vdpa, vhost_vdpa, virtio_blk
#   vdpa_mgmtdev_load MGMTDEV    load the module that provides MGMTDEV; skip if none
#   vdpa_dev_add MGMTDEV NAME [vdpa dev add ATTR VALUE...]   create (deleted at exit)
#   vdpa_dev_del NAME            delete
#   vdpa_dev_del_all             delete every vdpa device (but wedged ones)
#   vdpa_dev_wedged NAME         a failing test left I/O on NAME that will never
#                                end, so deleting it would hang: nobody deletes
#                                it any more, in this test or later (run.sh)
#   vdpa_dev_is_wedged NAME      status 0 if NAME was declared wedged
#   vdpa_bind NAME DRIVER        (re)bind NAME to virtio_vdpa or vhost_vdpa
#   vdpa_unbind NAME             unbind NAME from its driver, if any
#   vdpa_bind_virtio NAME        bind to virtio_vdpa; prints /dev/vdX
#   vdpa_bind_vhost NAME         bind to vhost_vdpa; prints /dev/vhost-vdpa-N
#   virtio_blk_polled N CMD [ARG...]   run CMD (e.g. a bind) with virtio_blk's
#                                poll_queues at N, then put it back; CMD's status
#   vdpa_blkdev NAME             prints the /dev/vdX of NAME (bound to virtio_vdpa)
#   vdpa_vhostdev NAME           prints the /dev/vhost-vdpa-N of NAME (bound to vhost_vdpa)
#   disk_by_serial SERIAL        prints the /dev/vdX of a VM disk (vm-run --disk/--scratch-disk)
#   fio_run TAG FIO-ARG...       run fio, JSON to $RESULTS_DIR/TAG.json; fails on
#                                an fio error or a verification error
#   fio_verify DEV [SIZE [FIO-ARG...]]   write DEV (default 64M) with crc32c
#                                headers, then read everything back and verify
#   fio_summary JSON             print read/write IOPS and latency of a fio JSON

RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/selftest.XXXXXX)}
REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
VDPA_WEDGED_FILE=${VDPA_WEDGED_FILE:-/tmp/vdpa-wedged}
export RESULTS_DIR REPO TEST_NAME VDPA_WEDGED_FILE

log()
{
	printf '%s\n' "$*" >&2
}

fail()
{
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

skip()
{
	printf 'SKIP: %s\n' "$*" >&2
	exit 4
}

# Deferred cleanups, run in reverse order by the EXIT trap. A failing
# cleanup is reported but does not change the test's exit status.
_deferred=()

defer()
{
	_deferred+=("$(printf '%q ' "$@")")
}

_run_deferred()
{
	local rc=$? i

	for ((i = ${#_deferred[@]} - 1; i >= 0; i--)); do
		eval "${_deferred[i]}" || log "cleanup failed: ${_deferred[i]}"
	done
	_deferred=()
	exit "$rc"
}
trap _run_deferred EXIT

require_root()
{
	[ "$(id -u)" = 0 ] || skip "needs root"
}

require_cmd()
{
	local c

	for c in "$@"; do
		command -v "$c" > /dev/null || skip "$c not installed"
	done
}

require_module()
{
	local m

	for m in "$@"; do
		modinfo "$m" > /dev/null 2>&1 || skip "module $m not available"
	done
}

load_modules()
{
	local m

	for m in "$@"; do
		modprobe "$m" || fail "modprobe $m failed"
	done
}

wait_for()
{
	# SELFTESTS_TIMEOUT_SCALE: see run.sh (the debug kernel is slower)
	local deadline=$(($(date +%s%N) + ${1%.*} * ${SELFTESTS_TIMEOUT_SCALE:-1} * 1000000000))

	shift
	until "$@" > /dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

dmesg_allow()
{
	[ -n "${DMESG_ALLOW_FILE:-}" ] && printf '%s\n' "$1" >> "$DMESG_ALLOW_FILE"
	return 0
}

# --- vdpa ---------------------------------------------------------------

VDPA_SYSFS=/sys/bus/vdpa

vdpa_setup()
{
	load_modules vdpa virtio_vdpa vhost_vdpa virtio_blk
	echo 0 > "$VDPA_SYSFS/drivers_autoprobe" || fail "cannot turn off vdpa autoprobe"
}

# mgmtdev name -> module that registers it
vdpa_mgmtdev_module()
{
	case $1 in
	vdpasim_blk) echo vdpa_sim_blk ;;
	vdpasim_net) echo vdpa_sim_net ;;
	vduse) echo vduse ;;
	vdpasim_blk-sw) echo vdpa_blk_sw ;;
	*) echo "${VDPA_MGMTDEV_MODULE:-}" ;;
	esac
}

vdpa_mgmtdev_present()
{
	vdpa mgmtdev show 2> /dev/null | grep -q "^\(.*/\)\?$1:"
}

vdpa_mgmtdev_load()
{
	local mgmtdev=$1 mod

	mod=$(vdpa_mgmtdev_module "$mgmtdev")
	if [ -n "$mod" ]; then
		require_module "$mod"
		load_modules "$mod"
	fi
	wait_for 5 vdpa_mgmtdev_present "$mgmtdev" ||
		skip "no vdpa management device $mgmtdev"
}

vdpa_dev_add()
{
	local mgmtdev=$1 name=$2

	shift 2
	vdpa dev add mgmtdev "$mgmtdev" name "$name" "$@" ||
		fail "vdpa dev add mgmtdev $mgmtdev name $name $* failed"
	defer _vdpa_dev_del_quiet "$name"
	wait_for 5 test -e "$VDPA_SYSFS/devices/$name" || fail "$name: no sysfs device"
}

_vdpa_dev_del_quiet()
{
	[ -e "$VDPA_SYSFS/devices/$1" ] || return 0
	vdpa_dev_is_wedged "$1" && return 0
	vdpa dev del "$1"
}

vdpa_dev_wedged()
{
	echo "$1" >> "$VDPA_WEDGED_FILE"
	log "$1 is wedged (I/O that never ends): it stays until the next boot"
}

vdpa_dev_is_wedged()
{
	[ -f "$VDPA_WEDGED_FILE" ] && grep -qxF "$1" "$VDPA_WEDGED_FILE"
}

vdpa_dev_del()
{
	vdpa dev del "$1" || fail "vdpa dev del $1 failed"
	wait_for 10 test ! -e "$VDPA_SYSFS/devices/$1" || fail "$1 still present after deletion"
}

vdpa_dev_del_all()
{
	local d

	for d in "$VDPA_SYSFS"/devices/*; do
		[ -e "$d" ] || continue
		vdpa_dev_is_wedged "$(basename "$d")" && continue
		vdpa dev del "$(basename "$d")" || return 1
	done
}

vdpa_unbind()
{
	local dev=$VDPA_SYSFS/devices/$1

	[ -e "$dev" ] || fail "no vdpa device $1"
	[ -e "$dev/driver" ] || return 0
	echo "$1" > "$dev/driver/unbind" || fail "cannot unbind $1"
}

vdpa_bind()
{
	local name=$1 drv=$2 dev=$VDPA_SYSFS/devices/$1

	[ -e "$dev" ] || fail "no vdpa device $name"
	if [ -e "$dev/driver" ]; then
		[ "$(basename "$(readlink "$dev/driver")")" = "$drv" ] && return 0
		vdpa_unbind "$name"
	fi
	[ -d "$VDPA_SYSFS/drivers/$drv" ] || load_modules "$drv"
	echo "$drv" > "$dev/driver_override" || fail "cannot set driver_override of $name"
	echo "$name" > "$VDPA_SYSFS/drivers/$drv/bind" || fail "cannot bind $name to $drv"
}

_vdpa_sysfs_child()
{
	local g

	for g in "$VDPA_SYSFS/devices/$1"/$2; do
		[ -e "$g" ] && basename "$g" && return 0
	done
	return 1
}

# " (a regular file is in its place ...)" when PATH exists, or nothing:
# devtmpfs makes no node where a file already is (a program that opened
# the path of a deleted disk with O_CREAT made it)
_dev_squatter()
{
	[ -e "$1" ] || return 0
	printf ' (a %s is in its place: %s)' "$(stat -c %F "$1")" "$(ls -ld "$1")"
}

vdpa_blkdev()
{
	local blk

	wait_for 10 _vdpa_sysfs_child "$1" 'virtio*/block/*' ||
		fail "$1: no block device (not bound to virtio_vdpa?)"
	blk=$(_vdpa_sysfs_child "$1" 'virtio*/block/*')
	wait_for 5 test -b "/dev/$blk" ||
		fail "$1: /dev/$blk did not appear$(_dev_squatter "/dev/$blk")"
	echo "/dev/$blk"
}

vdpa_vhostdev()
{
	local chr

	wait_for 10 _vdpa_sysfs_child "$1" 'vhost-vdpa-*' ||
		fail "$1: no vhost-vdpa device (not bound to vhost_vdpa?)"
	chr=$(_vdpa_sysfs_child "$1" 'vhost-vdpa-*')
	wait_for 5 test -c "/dev/$chr" ||
		fail "$1: /dev/$chr did not appear$(_dev_squatter "/dev/$chr")"
	echo "/dev/$chr"
}

vdpa_bind_virtio()
{
	vdpa_bind "$1" virtio_vdpa
	vdpa_blkdev "$1"
}

vdpa_bind_vhost()
{
	vdpa_bind "$1" vhost_vdpa
	vdpa_vhostdev "$1"
}

# virtio_blk reads poll_queues when it probes a device: that many of the
# device's queues get no callback, and io_uring IOPOLL polls them.
virtio_blk_polled()
{
	local param=/sys/module/virtio_blk/parameters/poll_queues n=$1 old rc=0

	shift
	old=$(cat "$param") || fail "cannot read $param"
	echo "$n" > "$param" || fail "cannot set $param to $n"
	# a subshell: CMD's own fail must not skip the restore
	("$@") || rc=$?
	echo "$old" > "$param" || fail "cannot restore $param"
	return "$rc"
}

disk_by_serial()
{
	local s

	for s in /sys/block/vd*/serial; do
		[ -e "$s" ] && [ "$(cat "$s")" = "$1" ] || continue
		s=${s%/serial}
		echo "/dev/${s##*/}"
		return 0
	done
	fail "no disk with serial $1"
}

# --- QEMU ---------------------------------------------------------------

# qmp SOCKET COMMAND...: QMP's greeting, qmp_capabilities, then each
# command (JSON); prints each reply, events left out
qmp()
{
	python3 - "$@" << 'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(1200):
    try:
        s.connect(sys.argv[1])
        break
    except OSError:
        time.sleep(0.1)
f = s.makefile('rw')
json.loads(f.readline())
for c in ['{"execute": "qmp_capabilities"}'] + sys.argv[2:]:
    f.write(c + '\n')
    f.flush()
    while True:
        r = json.loads(f.readline())
        if 'event' not in r:
            break
    print(json.dumps(r))
PY
}

# --- fio ----------------------------------------------------------------

fio_run()
{
	local tag=$1 json=$RESULTS_DIR/$1.json rc=0 errors

	shift
	fio --output-format=json --output="$json.raw" --eta=never "$@" || rc=$?
	# fio may print notes before the JSON document
	sed -n '/^{/,$p' "$json.raw" > "$json"
	sed -n '/^{/q;p' "$json.raw" | sed "s/^/fio $tag: /" >&2
	rm -f "$json.raw"
	[ "$rc" = 0 ] || fail "fio $tag failed with status $rc"
	errors=$(jq '[.jobs[] | select(.error != 0)] | length' "$json") ||
		fail "fio $tag: unreadable JSON output $json"
	[ "$errors" = 0 ] || fail "fio $tag: $errors job(s) reported an error"
}

fio_verify()
{
	local dev=$1 size=${2:-64M} tag

	shift $(($# < 2 ? $# : 2))
	tag=verify-$(basename "$dev")
	fio_run "$tag" --name="$tag" --filename="$dev" --size="$size" \
		--rw=randwrite --bs=4k --iodepth=16 --ioengine=io_uring --direct=1 \
		--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=1 "$@"
}

fio_summary()
{
	jq -r '.jobs[] |
		def lat(d): (d.clat_ns.mean / 1000 | floor | tostring) + " us mean, " +
			((d.clat_ns.percentile["99.000000"] // 0) / 1000 | floor | tostring) + " us p99";
		.jobname + ": read " + (.read.iops | floor | tostring) + " IOPS (" + lat(.read) + "), " +
		"write " + (.write.iops | floor | tostring) + " IOPS (" + lat(.write) + ")"' "$1"
}
