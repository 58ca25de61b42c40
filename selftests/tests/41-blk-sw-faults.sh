#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Failing backings under vdpa_blk_sw, seen from /dev/vdX (virtio_vdpa):
#  - device-mapper "error" in the middle of the backing: reads and writes
#    of that range fail with EIO, fio verify passes on the ranges around it,
#    the device counts the errors;
#  - "flakey" (1 s up, 1 s down): direct 4 KiB writes succeed or fail, and
#    every block the guest was told was written reads back intact once the
#    backing is reliable again;
#  - "delay" (3 s): "vdpa dev del" with requests stuck on the backing waits
#    for them and then completes; nothing hangs (every step has a timeout).
# timeout=600

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

MB=$((1 << 20))
SIZE=$((64 * MB))

require_root
require_cmd dmsetup losetup python3 timeout
require_module dm_mod dm_flakey dm_delay loop
bsw_setup
load_modules dm_mod dm_flakey dm_delay loop
# No udev in the lab: libdevmapper makes the /dev/mapper nodes itself.
export DM_DISABLE_UDEV=1

# Lines the failures are expected to produce.
dmesg_allow 'I/O error'
dmesg_allow 'vdpa_blk_sw.*failed'
dmesg_allow 'Buffer I/O error'
dmesg_allow 'device-mapper'

img=$(mktemp /scratch/faults.XXXXXX) || fail "mktemp failed"
truncate -s $SIZE "$img" || fail "truncate failed"
defer rm -f "$img"
loopdev=$(losetup --find --show "$img") || fail "losetup failed"
defer losetup -d "$loopdev"
sectors=$((SIZE / 512))

_dm_remove()
{
	dmsetup remove --noudevsync --retry "$1" 2> /dev/null
	return 0
}

# dm_create NAME TABLE: a device-mapper device; prints its path
dm_create()
{
	printf '%s\n' "$2" | dmsetup create --noudevsync "$1" ||
		fail "dmsetup create $1 failed"
	defer _dm_remove "$1"
	dmsetup mknodes "$1"
	wait_for 5 test -b "/dev/mapper/$1" || fail "/dev/mapper/$1 did not appear"
}

# pyio MODE DEV ARGS...: direct-I/O helper, see the python below
pyio()
{
	timeout --kill-after=5 120 python3 - "$@" << 'EOF'
import mmap, os, sys, time
mode, dev = sys.argv[1], sys.argv[2]
fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
def pat(blk):
    return ((b"blk%08d" % blk) * 400)[:4096]
if mode == "probe":          # probe OFF: exit 0 if a 4 KiB read works
    try:
        os.preadv(fd, [buf], int(sys.argv[3]))
    except OSError as e:
        print("read at %s: %s" % (sys.argv[3], e.strerror)); sys.exit(1)
    sys.exit(0)
if mode == "pwrite":         # pwrite OFF: exit 0 if a 4 KiB write works
    buf.write(pat(0)); buf.seek(0)
    try:
        os.pwritev(fd, [buf], int(sys.argv[3]))
    except OSError as e:
        print("write at %s: %s" % (sys.argv[3], e.strerror)); sys.exit(1)
    sys.exit(0)
if mode == "flakey":         # flakey N STRIDE OUT: write N blocks, log the good ones
    n, stride, out = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    good = bad = 0
    with open(out, "w") as f:
        for blk in range(n):
            buf.seek(0); buf.write(pat(blk)); buf.seek(0)
            try:
                os.pwritev(fd, [buf], blk * stride)
                f.write("%d\n" % blk); good += 1
            except OSError:
                bad += 1
            if blk % 8 == 7:
                time.sleep(0.05)
    print("flakey writes: %d succeeded, %d failed" % (good, bad))
    sys.exit(0 if good and bad else 3)
if mode == "verify":         # verify STRIDE LIST: every listed block intact
    stride, lst = int(sys.argv[3]), sys.argv[4]
    bad = 0
    for line in open(lst):
        blk = int(line)
        os.preadv(fd, [buf], blk * stride)
        if buf[:4096] != pat(blk):
            print("block %d lost or corrupted" % blk); bad += 1
    sys.exit(1 if bad else 0)
sys.exit(2)
EOF
}

# --- error: [16M, 32M) fails, the rest is linear -----------------------
dm_create fzerr "0 $((16 * MB / 512)) linear $loopdev 0
$((16 * MB / 512)) $((16 * MB / 512)) error
$((32 * MB / 512)) $((32 * MB / 512)) linear $loopdev $((32 * MB / 512))"
bsw_add err0 backing=/dev/mapper/fzerr direct=1
dev=$(vdpa_bind_virtio err0) || exit
log "error target: $dev over /dev/mapper/fzerr"
fio_verify "$dev" 16M --offset=0
fio_verify "$dev" 32M --offset=32M --bs=64k --iodepth=8
errs0=$(bsw_stat err0 errors)
for off in $((16 * MB)) $((20 * MB + 4096)) $((32 * MB - 4096)); do
	pyio probe "$dev" "$off" && fail "read at $off of the error range succeeded"
	pyio pwrite "$dev" "$off" && fail "write at $off of the error range succeeded"
done
# a request that straddles into the error range fails too
pyio probe "$dev" $((16 * MB - 2048)) 2> /dev/null &&
	fail "read straddling the error range succeeded"
pyio probe "$dev" $((32 * MB)) || fail "read right after the error range failed"
[ "$(bsw_stat err0 errors)" -gt "$errs0" ] || fail "err0: no error counted"
expect_eq "err0 inflight" "$(bsw_stat err0 inflight)" 0
# the good ranges still verify after the errors
fio_verify "$dev" 8M --offset=40M --bs=16k --iodepth=4
vdpa_unbind err0
vdpa_dev_del err0
_dm_remove fzerr

# --- flakey: 1 s up, 1 s down ------------------------------------------
dm_create fzflk "0 $sectors flakey $loopdev 0 1 1"
bsw_add flk0 backing=/dev/mapper/fzflk direct=1
dev=$(vdpa_bind_virtio flk0) || exit
pyio flakey "$dev" 256 $((64 * 1024)) "$RESULTS_DIR/flakey-good.txt" >&2 ||
	fail "flakey: expected some writes to succeed and some to fail"
# reliable again: every acknowledged block must be there
dmsetup suspend --noudevsync fzflk &&
	dmsetup load fzflk --table "0 $sectors linear $loopdev 0" &&
	dmsetup resume --noudevsync fzflk || fail "cannot make fzflk reliable"
pyio verify "$dev" $((64 * 1024)) "$RESULTS_DIR/flakey-good.txt" ||
	fail "flakey: an acknowledged write was lost"
log "flakey: $(wc -l < "$RESULTS_DIR/flakey-good.txt") acknowledged blocks verified, errors counted: $(bsw_stat flk0 errors)"
fio_verify "$dev" 16M
vdpa_unbind flk0
vdpa_dev_del flk0
_dm_remove fzflk

# --- delay: vdpa dev del waits for stuck requests ----------------------
dm_create fzdly "0 $sectors delay $loopdev 0 3000"
bsw_add dly0 backing=/dev/mapper/fzdly direct=1
dev=$(vdpa_bind_virtio dly0) || exit
for i in 1 2 3 4; do
	pyio pwrite "$dev" $((i * MB)) > /dev/null 2>&1 &
done
_dly_busy()
{
	[ "$(bsw_stat dly0 inflight)" -gt 0 ]
}
wait_for 10 _dly_busy || fail "dly0: no request in flight on the delayed backing"
log "dly0: $(bsw_stat dly0 inflight) requests in flight; deleting the device"
t0=$(date +%s%N)
timeout 60 vdpa dev del dly0 || fail "vdpa dev del with stuck requests failed or hung"
ms=$((($(date +%s%N) - t0) / 1000000))
log "vdpa dev del returned after $ms ms"
wait_for 10 test ! -e "$VDPA_SYSFS/devices/dly0" || fail "dly0 still present"
wait || true
[ "$ms" -lt 60000 ] || fail "deletion took $ms ms"
# the backing is free again (the device closed it)
_dm_remove fzdly
dmsetup info fzdly > /dev/null 2>&1 && fail "fzdly still held after deletion"
exit 0
