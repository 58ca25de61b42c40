# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers for the vdpa_blk_sw tests, on top of lib.sh. Source after it:
#
#	. "$(dirname "$0")/../lib.sh"
#	. "$(dirname "$0")/../blk_sw.sh"
#
#   bsw_setup                    vdpa stack + vdpa_blk_sw + configfs mounted
#   bsw_stage NAME [ATTR=VALUE...]   stage a device's parameters in configfs
#                                (item removed at exit)
#   bsw_add NAME [ATTR=VALUE...] stage (if attributes are given) and create
#   bsw_cfg NAME ATTR            print a configfs attribute of NAME
#   bsw_attr NAME ATTR           print a sysfs attribute (blk_sw/ATTR)
#   bsw_qstat NAME Q STAT        print a per-queue statistic
#   expect_eq WHAT GOT WANT      fail unless GOT = WANT
#   expect_fail WHAT CMD...      fail unless CMD fails
#   bsw_mkfs TYPE SIZE           make and mount a TYPE (ext4, xfs) file
#                                system on a loop device over /scratch;
#                                sets BSW_MNT (call it outside $(...))
#   bsw_nullb [PARAM=VALUE...]   load null_blk (memory backed, 1 GiB);
#                                sets BSW_NULLB to its /dev node
#   bsw_sectors DEV              print the size of DEV in 512-byte sectors

BSW_MGMTDEV=vdpasim_blk-sw
BSW_CFS=/sys/kernel/config/vdpa_blk_sw

bsw_setup()
{
	vdpa_setup
	if ! grep -q ' /sys/kernel/config configfs' /proc/mounts; then
		mount -t configfs none /sys/kernel/config || fail "cannot mount configfs"
	fi
	vdpa_mgmtdev_load "$BSW_MGMTDEV"
	[ -d "$BSW_CFS" ] || fail "no $BSW_CFS"
}

_bsw_rmdir()
{
	[ -d "$1" ] && rmdir "$1"
	return 0
}

bsw_stage()
{
	local name=$1 kv

	shift
	mkdir "$BSW_CFS/$name" || fail "mkdir $BSW_CFS/$name failed"
	defer _bsw_rmdir "$BSW_CFS/$name"
	for kv in "$@"; do
		echo "${kv#*=}" > "$BSW_CFS/$name/${kv%%=*}" ||
			fail "$name: cannot set ${kv%%=*} to ${kv#*=}"
	done
}

bsw_add()
{
	local name=$1

	shift
	[ $# -eq 0 ] || bsw_stage "$name" "$@"
	vdpa_dev_add "$BSW_MGMTDEV" "$name"
}

bsw_cfg()
{
	cat "$BSW_CFS/$1/$2"
}

bsw_attr()
{
	cat "$VDPA_SYSFS/devices/$1/blk_sw/$2"
}

bsw_qstat()
{
	cat "$VDPA_SYSFS/devices/$1/blk_sw_q$2/$3"
}

# bsw_stat NAME COUNTER: COUNTER summed over every queue of device NAME
# (a device has a queue per CPU by default, and blk-mq sends each CPU's
# requests to its own queue).
bsw_stat()
{
	local f sum=0

	for f in "$VDPA_SYSFS/devices/$1"/blk_sw_q*/"$2"; do
		sum=$((sum + $(cat "$f")))
	done
	echo "$sum"
}

# bsw_stat_is NAME COUNTER OP VALUE, bsw_qstat_is NAME Q STAT OP VALUE:
# test(1) on a counter, read when called: for wait_for, which runs its
# command again and again (an argument "$(bsw_stat ...)" is read once)
bsw_stat_is()
{
	test "$(bsw_stat "$1" "$2")" "$3" "$4"
}

bsw_qstat_is()
{
	test "$(bsw_qstat "$1" "$2" "$3")" "$4" "$5"
}

expect_eq()
{
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

expect_fail()
{
	local what=$1

	shift
	if "$@" 2> /dev/null; then
		fail "$what: '$*' succeeded, expected a failure"
	fi
	return 0
}

_bsw_umount()
{
	umount "$1" && rmdir "$1" && rm -f "$2"
}

bsw_mkfs()
{
	local type=$1 size=$2 img

	load_modules loop
	img=$(mktemp "/scratch/$type.XXXXXX") || fail "mktemp failed"
	truncate -s "$size" "$img" || fail "truncate $img failed"
	case $type in
	ext4) mkfs.ext4 -q -F "$img" > /dev/null ;;
	xfs) mkfs.xfs -q -f "$img" > /dev/null ;;
	*) fail "bsw_mkfs: unknown file system $type" ;;
	esac || fail "mkfs.$type failed"
	BSW_MNT=$(mktemp -d "/tmp/$type.XXXXXX") || fail "mktemp -d failed"
	mount -o loop "$img" "$BSW_MNT" || fail "mount $img failed"
	defer _bsw_umount "$BSW_MNT" "$img"
}

_bsw_nullb_unload()
{
	wait_for 10 modprobe -r null_blk
}

bsw_nullb()
{
	require_module null_blk
	modprobe -r null_blk 2> /dev/null
	modprobe null_blk nr_devices=1 gb=1 memory_backed=1 queue_mode=2 "$@" ||
		fail "modprobe null_blk $* failed"
	defer _bsw_nullb_unload
	BSW_NULLB=/dev/nullb0
	wait_for 5 test -b "$BSW_NULLB" || fail "$BSW_NULLB did not appear"
	# null_blk bug (6.12): a polled write to a page it has not allocated
	# yet allocates one with GFP_NOIO inside bio_poll()'s RCU read-side
	# section ("sleeping function called from invalid context", seen under
	# the debug kernel).  Write every page once through the interrupt
	# queues, so that polled I/O never allocates.
	case " $* " in
	*" poll_queues="*)
		dd if=/dev/zero of="$BSW_NULLB" bs=1M oflag=direct status=none \
			count=$(($(blockdev --getsize64 "$BSW_NULLB") >> 20)) ||
			fail "cannot prefill $BSW_NULLB"
		;;
	esac
}

bsw_sectors()
{
	cat "/sys/block/$(basename "$1")/size"
}
