#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the selftests in the lab guest (as root) and report in TAP 13.
# SELFTESTS_TIMEOUT=SECONDS replaces every test's own limit (make stress).
#
# usage: run.sh [-l] [PATTERN...]
#   -l        list the tests and exit
#   PATTERN   run only tests whose name contains PATTERN (also $SELFTESTS)
#
# The tests follow kselftest's conventions (selftests/Makefile lists them in
# TEST_PROGS, exit 4 skips, TAP 13), and make -C selftests run_tests runs
# them with kselftest's runner. This is the lab's runner (scripts/lab/check):
# the guest has only /repo, no kernel tree with that runner, and the runner
# cannot give a test the checks below. What run.sh adds:
#   - a verdict that includes the kernel log: dmesg is cleared before each
#     test and scanned after it (the test's dmesg_allow lines excepted);
#   - vdpa devices a test left behind are deleted (not wedged ones);
#   - a file a test left where a disk's node goes (/dev/vdX, not a device
#     node) is removed, and fails the test;
#   - on a kernel with kmemleak, a last TAP point "kmemleak" unloads the
#     vdpa modules, scans and fails on any leak since the suite started;
#   - each test's own timeout ("# timeout=SECONDS" in its first lines, else
#     ./settings), times $SELFTESTS_TIMEOUT_SCALE (an integer, 1: the debug
#     kernel is several times slower); kselftest has one per directory;
#   - each test runs in its own empty directory (/repo is read-only);
#   - selection by name, and results: TAP to stdout and to
#     $SELFTESTS_RESULTS/selftests.tap (/results by default), each test's
#     output and dmesg to $SELFTESTS_RESULTS/tests/NAME/, and a last line
#     "N passed, N failed, N skipped" (scripts/lab/check reads both).
# A test is any executable selftests/tests/NN-name[.sh] (the Makefile checks
# that TEST_PROGS lists the same); see lib.sh for the conventions. Exits 1
# if anything failed.

set -u

here=$(cd "$(dirname "$0")" && pwd)
results=${SELFTESTS_RESULTS:-/results}
default_timeout=$(sed -n 's/^timeout=//p' "$here/settings" 2> /dev/null)
default_timeout=${default_timeout:-600}
timeout_scale=${SELFTESTS_TIMEOUT_SCALE:-1}
dmesg_bad='WARNING:|BUG:|Oops|general protection|KASAN|UBSAN|Call Trace|hung_task|soft lockup|refcount_t'
# the debug kernel's checkers (most also print WARNING: or BUG:)
dmesg_bad+='|KFENCE:|kmemleak:.*suspected|unreferenced object|circular locking|inconsistent lock state'
dmesg_bad+='|possible recursive locking|suspicious RCU usage|sleeping function called|list_(add|del) corruption'
kmemleak=/sys/kernel/debug/kmemleak
[ -w "$kmemleak" ] || kmemleak=
extra=$([ -n "$kmemleak" ] && echo 1 || echo 0)

list=0
if [ "${1:-}" = -l ]; then
	list=1
	shift
fi
# shellcheck disable=SC2206
patterns=("$@" ${SELFTESTS:-})

selected()
{
	local p

	[ ${#patterns[@]} -eq 0 ] && return 0
	for p in "${patterns[@]}"; do
		case $1 in *"$p"*) return 0 ;; esac
	done
	return 1
}

tests=()
for t in "$here"/tests/[0-9][0-9]-*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	case $t in *.c|*.h|*.o|*~) continue ;; esac
	name=$(basename "$t")
	selected "${name%.sh}" && tests+=("$t")
done

if [ "$list" = 1 ]; then
	for t in "${tests[@]}"; do
		basename "$t"
	done
	exit 0
fi

mkdir -p "$results/tests"
tap=$results/selftests.tap
: > "$tap"

emit()
{
	printf '%s\n' "$*" | tee -a "$tap"
}

test_timeout()
{
	local t

	t=$(head -n 20 "$1" | tr -d '\0' | sed -n 's/^#[[:space:]]*timeout=\([0-9][0-9]*\).*/\1/p' | head -n 1)
	echo $(( ${t:-$default_timeout} * timeout_scale ))
}

# Delete vdpa devices a test left behind, so the next test starts clean;
# not those a test declared wedged (lib.sh, vdpa_dev_wedged): deleting
# them would hang.
export VDPA_WEDGED_FILE=/tmp/vdpa-wedged
rm -f "$VDPA_WEDGED_FILE"
reap_vdpa_devices()
{
	local d

	for d in /sys/bus/vdpa/devices/*; do
		[ -e "$d" ] || continue
		if grep -qxF "$(basename "$d")" "$VDPA_WEDGED_FILE" 2> /dev/null; then
			emit "# $1: left vdpa device $(basename "$d") wedged; not deleting it"
			continue
		fi
		emit "# $1: left vdpa device $(basename "$d") behind; deleting it"
		vdpa dev del "$(basename "$d")" || emit "# could not delete $(basename "$d")"
	done
}

# Remove what a test left in /dev where a disk's node goes (/dev/vdX,
# /dev/vhost-vdpa-N) that is no device node: a program that opens the path
# of a deleted disk with O_CREAT (fio does, at each pass of a time_based
# job, unless allow_file_create=0) makes a regular file there, and
# devtmpfs then gives the next disk of that name no node, failing every
# later test at its first bind. Prints what it removed.
reap_dev_files()
{
	local f

	for f in /dev/vd* /dev/vhost-vdpa-*; do
		if [ -e "$f" ] && [ ! -b "$f" ] && [ ! -c "$f" ]; then
			printf '%s ' "$(stat -c %F "$f") $f"
			rm -rf "$f"
		fi
	done
}

# kmemleak_check N: the last TAP point on a kernel with kmemleak. With
# the vdpa modules gone, two scans (an object must stay unreferenced
# across one) report what leaked since the suite started.
kmemleak_check()
{
	local log=$results/tests/kmemleak.log leaks

	# unloading would delete a wedged device, and hang
	if [ -s "$VDPA_WEDGED_FILE" ]; then
		emit "# kmemleak: wedged vdpa devices ($(tr '\n' ' ' < "$VDPA_WEDGED_FILE")): modules left loaded"
	else
		modprobe -r -a vdpa_blk_sw vdpa_sim_blk vdpa_sim vduse virtio_vdpa vhost_vdpa 2> /dev/null
	fi
	sleep 6
	echo scan > "$kmemleak"
	echo scan > "$kmemleak"
	cat "$kmemleak" > "$log"
	leaks=$(grep -c '^unreferenced object' "$log")
	if [ "$leaks" = 0 ]; then
		emit "ok $1 - kmemleak # no leak"
		pass=$((pass + 1))
	else
		sed -n '1,40s/^/# kmemleak: /p' "$log" | tee -a "$tap"
		emit "not ok $1 - kmemleak # $leaks unreferenced objects: see tests/kmemleak.log"
		fail=$((fail + 1))
	fi
}

# The lab VM is TCG inside a virtual machine, and now and then stands
# still for seconds: nothing in it runs, and every clock jumps when it
# runs again (or, under a nested guest, its own tasks wait that long for
# a CPU). A timing-sensitive failure means little without knowing that,
# so a watcher notes each time 200 ms of sleep took over 2 s, and every
# test's line says how often it happened during the test.
stalls=$results/vm-stalls.log
: > "$stalls"
(
	prev=${EPOCHREALTIME/./}
	while sleep 0.2; do
		now=${EPOCHREALTIME/./}
		gap=$(( (now - prev) / 1000 ))
		[ "$gap" -le 2000 ] ||
			echo "$(cut -d' ' -f1 /proc/uptime) $gap" >> "$stalls"
		prev=$now
	done
) < /dev/null > /dev/null 2>&1 &
stall_watcher=$!
trap 'kill $stall_watcher 2> /dev/null' EXIT

# stall_note FIRST_LINE: " (200 ms sleeps took over 2 s N times, longest M ms)"
# for the lines of $stalls from FIRST_LINE on, or nothing
stall_note()
{
	awk -v from="$1" 'NR >= from { n++; if ($2 > m) m = $2 }
		END { if (n) printf " (200 ms sleeps took over 2 s %d times, longest %d ms)", n, m }' "$stalls"
}

pass=0 fail=0 skip=0 n=0
emit "TAP version 13"
emit "1..$(( ${#tests[@]} + extra ))"
if [ -n "$kmemleak" ]; then
	# forget what booting leaked: only the suite's leaks count
	echo scan > "$kmemleak"
	echo clear > "$kmemleak"
fi
for t in "${tests[@]}"; do
	n=$((n + 1))
	name=$(basename "$t")
	name=${name%.sh}
	rdir=$results/tests/$name
	rm -rf "$rdir"
	mkdir -p "$rdir"
	wdir=$(mktemp -d "/tmp/$name.XXXXXX")
	allow=$(mktemp "/tmp/$name.dmesg-allow.XXXXXX")
	limit=${SELFTESTS_TIMEOUT:-$(test_timeout "$t")}

	emit "# $name: start (timeout $limit s)"
	dmesg -C
	echo "selftest: $name: start" > /dev/kmsg
	start=$(date +%s)
	stall_from=$(( $(wc -l < "$stalls") + 1 ))
	(
		cd "$wdir" &&
		RESULTS_DIR=$rdir REPO=$(dirname "$here") TEST_NAME=$name \
		DMESG_ALLOW_FILE=$allow exec timeout --kill-after=10 "$limit" "$t"
	) < /dev/null 2>&1 | tee "$rdir/output.log" | sed -u 's/^/# /' | tee -a "$tap"
	rc=${PIPESTATUS[0]}
	secs=$(( $(date +%s) - start ))
	note=$(stall_note "$stall_from")

	reap_vdpa_devices "$name"
	squat=$(reap_dev_files)
	[ -z "$squat" ] || emit "# $name: left in /dev, removed: ${squat% }"
	dmesg > "$rdir/dmesg.log"
	if [ -s "$allow" ]; then
		bad=$(grep -E "$dmesg_bad" "$rdir/dmesg.log" | grep -vEf "$allow")
	else
		bad=$(grep -E "$dmesg_bad" "$rdir/dmesg.log")
	fi
	rm -rf "$wdir" "$allow"

	if [ -n "$bad" ]; then
		printf '%s\n' "$bad" | head -n 20 | sed 's/^/# dmesg: /' | tee -a "$tap"
		# The first report whole (its stack does not match the
		# pattern), so that a CI log alone can tell what happened.
		first=$(grep -nF -m 1 -- "$(printf '%s\n' "$bad" | head -n 1)" \
			"$rdir/dmesg.log" | cut -d: -f1)
		[ -z "$first" ] ||
			sed -n "$first,$((first + 40))p" "$rdir/dmesg.log" |
			sed 's/^/# dmesg report: /' | tee -a "$tap"
		emit "not ok $n - $name # kernel log: see tests/$name/dmesg.log (exit $rc, $secs s)$note"
		fail=$((fail + 1))
	elif [ "$rc" = 0 ] && [ -n "$squat" ]; then
		emit "not ok $n - $name # left a file where a disk's node goes ($secs s)$note"
		fail=$((fail + 1))
	elif [ "$rc" = 0 ]; then
		emit "ok $n - $name # $secs s$note"
		pass=$((pass + 1))
	elif [ "$rc" = 4 ]; then
		reason=$(sed -n 's/^SKIP: //p' "$rdir/output.log" | tail -n 1)
		emit "ok $n - $name # SKIP ${reason:-no reason given}"
		skip=$((skip + 1))
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		emit "not ok $n - $name # TIMEOUT after $limit s$note"
		fail=$((fail + 1))
	else
		emit "not ok $n - $name # exit status $rc ($secs s)$note"
		fail=$((fail + 1))
	fi
done

[ -z "$kmemleak" ] || kmemleak_check $((n + 1))
emit "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
