#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Hostile control-plane input: out-of-range, malformed and oversized values
# for every configfs attribute, every writable sysfs attribute, vdpa
# netlink and the module parameters are refused with an error, and change
# nothing (the value reads back as before, no device appears).
# timeout=300

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
bsw_setup

long=$(head -c 5000 /dev/zero | tr '\0' a)
# Values no numeric attribute takes.
bad_num=("abc" "-1" "1.5" "0x" "12abc" "4294967296" "99999999999999999999" " " "$long")

# reject FILE VALUE: the write fails and FILE reads back unchanged
reject()
{
	local f=$1 v=$2 before after

	before=$(cat "$f")
	if printf '%s' "$v" 2> /dev/null > "$f"; then
		fail "$f: '${v:0:40}' (${#v} bytes) was accepted"
	fi
	after=$(cat "$f")
	[ "$before" = "$after" ] || fail "$f: changed from '$before' to '$after' by a refused write"
}

# accept FILE VALUE EXPECTED: the write works and reads back as EXPECTED
accept()
{
	printf '%s' "$2" > "$1" || fail "$1: '$2' refused"
	expect_eq "$1" "$(cat "$1")" "$3"
}

# --- configfs -----------------------------------------------------------
bsw_stage in0
c=$BSW_CFS/in0
for v in "${bad_num[@]}" 0 17 65536; do reject "$c/num_queues" "$v"; done
# queue_size: 0 is the device's choice, 1 a power of two but too small
for v in "${bad_num[@]}" 1 3 1000 2048 4096 65536; do reject "$c/queue_size" "$v"; done
for v in "${bad_num[@]}" 0 256 511 513 1000 8192 65536; do reject "$c/block_size" "$v"; done
for v in "${bad_num[@]}" 1000001 4294967295; do reject "$c/poll_idle_us" "$v"; done
# size is a u64: 4294967296 is a valid size
for v in "${bad_num[@]}" 0 1 511 513 18446744073709551615; do
	[ "$v" = 4294967296 ] || reject "$c/size" "$v"
done
for a in read_only direct iopoll use_va; do
	[ -e "$c/$a" ] || continue
	for v in 2 -1 abc "$long"; do reject "$c/$a" "$v"; done
done
reject "$c/serial" "123456789012345678901"
reject "$c/serial" "$long"
reject "$c/serial" "$(printf 'a\tb')"
reject "$c/serial" "$(printf 'a\001b')"
reject "$c/backing" /nonexistent/file
reject "$c/backing" /tmp
reject "$c/backing" /dev/null
reject "$c/backing" "/$long"
reject "$c/live" 1
# well-formed values still work, with the documented spelling
accept "$c/num_queues" 0x10 16
accept "$c/num_queues" 2 2
accept "$c/queue_size" 64 64
accept "$c/queue_size" 0 0
accept "$c/block_size" 4096 4096
accept "$c/size" $((4 << 20)) $((4 << 20))
accept "$c/serial" "12345678901234567890" "12345678901234567890"
accept "$c/poll_idle_us" 1000000 1000000
accept "$c/poll_idle_us" 0 0

# a staged item that vbs_params_validate() refuses as a whole: iopoll on
# the memory backing; vdpa dev add fails and creates nothing
accept "$c/iopoll" 1 1
expect_fail "iopoll on memory" vdpa dev add mgmtdev "$BSW_MGMTDEV" name in0
[ ! -e "$VDPA_SYSFS/devices/in0" ] || fail "in0 created from invalid parameters"
accept "$c/iopoll" 0 0
# size not a multiple of the block size
accept "$c/size" $((4 << 20 | 512)) $((4 << 20 | 512))
expect_fail "size % block_size" vdpa dev add mgmtdev "$BSW_MGMTDEV" name in0
[ ! -e "$VDPA_SYSFS/devices/in0" ] || fail "in0 created with a partial block"
accept "$c/size" $((4 << 20)) $((4 << 20))

# live: every (otherwise valid) write is EBUSY and changes nothing
vdpa_dev_add "$BSW_MGMTDEV" in0
expect_eq "in0 live" "$(cat "$c/live")" 1
touch /tmp/in0.img
for kv in num_queues=1 queue_size=128 block_size=512 poll_idle_us=5 \
	  size=1048576 read_only=1 direct=0 iopoll=0 serial=abc \
	  backing=/tmp/in0.img; do
	a=${kv%%=*}
	before=$(cat "$c/$a")
	out=$(echo "${kv#*=}" 2>&1 > "$c/$a") && fail "$c/$a writable while live"
	case $out in *busy*) ;; *) fail "$c/$a while live: '$out', expected EBUSY" ;; esac
	expect_eq "$c/$a while live" "$(cat "$c/$a")" "$before"
done

# --- sysfs --------------------------------------------------------------
s=$VDPA_SYSFS/devices/in0/blk_sw
for v in "${bad_num[@]}" 1000001; do reject "$s/poll_idle_us" "$v"; done
accept "$s/poll_idle_us" 77 77
for v in abc 2 -1 " " "$long"; do reject "$s/poll_adaptive" "$v"; done
accept "$s/poll_adaptive" off 0
accept "$s/poll_adaptive" y 1
reject "$s/poll_window_ns" 5
for v in 0 abc 2 "$long"; do
	printf '%s' "$v" 2> /dev/null > "$s/resize" && fail "resize accepted '${v:0:20}'"
done
cap=$(cat "$s/capacity")
echo 1 > "$s/resize" || fail "resize 1 refused"
expect_eq "capacity after resize" "$(cat "$s/capacity")" "$cap"
for a in backing read_only direct num_queues queue_size block_size serial iopoll; do
	before=$(cat "$s/$a")
	out=$(echo 1 2>&1 > "$s/$a") && fail "$s/$a writable"
	case $out in *denied*) ;; *) fail "$s/$a: '$out', expected EACCES (0444)" ;; esac
	expect_eq "$s/$a" "$(cat "$s/$a")" "$before"
done
for a in capacity backing_type; do
	echo 1 2> /dev/null > "$s/$a" && fail "$s/$a is writable"
done
# every per-queue file but cpu_list (test 29) is read-only
for q in $VDPA_SYSFS/devices/in0/blk_sw_q0/*; do
	[ "${q##*/}" = cpu_list ] && continue
	echo 0 2> /dev/null > "$q" && fail "$q is writable"
done

# --- netlink ------------------------------------------------------------
expect_fail "duplicate name" vdpa dev add mgmtdev "$BSW_MGMTDEV" name in0
# A name only another management device's device has: the vDPA core
# refuses it when the device is registered, after it was built (backing
# open and claimed, threads started), so all of that must be undone: the
# same backing serves a device of another name at once.
vdpa_mgmtdev_load vdpasim_blk
vdpa_dev_add vdpasim_blk in9
truncate -s 16M dup.img
bsw_stage in9 backing="$PWD/dup.img"
expect_fail "name of a vdpasim_blk device" vdpa dev add mgmtdev "$BSW_MGMTDEV" name in9
[ ! -d "$VDPA_SYSFS/devices/in9/blk_sw" ] || fail "in9 became ours"
bsw_add in8 backing="$PWD/dup.img"
d8=$(vdpa_bind_virtio in8) || exit
fio_verify "$d8" 4M
vdpa_unbind in8
vdpa_dev_del in8
vdpa_dev_del in9
_bsw_rmdir "$BSW_CFS/in8"
_bsw_rmdir "$BSW_CFS/in9"
vdpa_unbind in0
vdpa_dev_del in0
n0=$(ls "$VDPA_SYSFS/devices" | wc -l)
expect_fail "no such mgmtdev" vdpa dev add mgmtdev nosuchmgmt name in1
expect_fail "unsupported feature bit" vdpa dev add mgmtdev "$BSW_MGMTDEV" name in1 device_features 0x8000000300000000
expect_fail "no VERSION_1" vdpa dev add mgmtdev "$BSW_MGMTDEV" name in1 device_features 0x200000000
expect_fail "no ACCESS_PLATFORM" vdpa dev add mgmtdev "$BSW_MGMTDEV" name in1 device_features 0x100000000
expect_fail "mac on a block device" vdpa dev add mgmtdev "$BSW_MGMTDEV" name in1 mac 00:11:22:33:44:55
expect_fail "max_vqp" vdpa dev add mgmtdev "$BSW_MGMTDEV" name in1 max_vqp 4
expect_fail "mtu" vdpa dev add mgmtdev "$BSW_MGMTDEV" name in1 mtu 1500
# a long name is the vdpa core's business; the default serial is cut to 20
vdpa dev add mgmtdev "$BSW_MGMTDEV" name "${long:0:200}" || fail "200-byte name refused"
expect_eq "serial of a long name" "$(bsw_attr "${long:0:200}" serial)" "${long:0:20}"
vdpa_dev_del "${long:0:200}"
expect_fail "empty name" vdpa dev add mgmtdev "$BSW_MGMTDEV" name ""
expect_eq "devices after refused adds" "$(ls "$VDPA_SYSFS/devices" | wc -l)" "$n0"
expect_fail "del of no device" vdpa dev del nosuchdev

# --- module parameters --------------------------------------------------
vdpa_dev_del_all
_bsw_rmdir "$c"
modprobe -r vdpa_blk_sw || fail "cannot unload vdpa_blk_sw"
# default_num_queues=0 is valid: a queue per online CPU
for p in default_num_queues=17 default_queue_size=3 \
	 default_queue_size=2048 default_block_size=100 default_block_size=8192 \
	 default_poll_idle_us=1000001 default_size_mb=0; do
	modprobe vdpa_blk_sw "$p" 2> /dev/null && {
		modprobe -r vdpa_blk_sw
		fail "module loaded with $p"
	}
done
load_modules vdpa_blk_sw
vdpa_mgmtdev_load "$BSW_MGMTDEV"
exit 0
