#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lifecycle races, each repeated, with I/O running during the disruption
# and the data checked afterwards. Test 24 covers each operation once; this
# one repeats them under load.
#
#   RACE_CYCLES=N       cycles of (a) and (b) (default 10); under TCG each
#                       takes 4 s (10 s with other VMs)
#   RACE_RMMODS=N       rmmod cycles of (d) (default RACE_CYCLES/5, at least 1)
#   RACE_FAST_CYCLES=N  cycles of (e) on distinct names (default 20), N/2
#                       and N/4 on one name; each add + del takes about
#                       0.9 s under TCG (several with other VMs), and the
#                       vdpa core serializes them
#   RACE_RESETS=N       at least N/2 resets and N/2 suspends in (c)
#                       (default 100; about 3 a second)
# "make stress" runs RACE_CYCLES=500 RACE_FAST_CYCLES=1000 RACE_RESETS=4000.
# timeout=1800
#
#  a) virtio_vdpa unbind/bind while fio writes;
#  b) "vdpa dev del" while fio writes, then add again on the same backing;
#  c) reset and suspend/resume with requests in flight from the userspace
#     vhost-vdpa driver (vdpa_fuzz --lifecycle, whose disk model checks
#     every read), then the model compared with the backing through a
#     fresh device;
#  d) rmmod vdpa_blk_sw with devices present and fio writing (it deletes
#     them, as documented), modprobe, add on the same backing; and rmmod
#     while /dev/vhost-vdpa-N is held open (waits for the close);
#  e) "vdpa dev add"/"del" from several processes at once, on distinct
#     names (all succeed) and on one name, with and without a staged
#     backing (exactly one add and one del win, the others get EEXIST and
#     ENODEV);
#  f) two devices asked to share one writable backing: the second is
#     refused with EBUSY (a file, also under another path; a block device);
#     once the first is deleted the backing can be used again; with
#     shared=1 on both, both are created and one reads what the other
#     wrote, while a device without it is still refused;
#  g) "resize" (a config interrupt) from two writers while virtio_vdpa
#     unbinds and binds: the callback must not run once the driver let go
#     of its data (a use-after-free the debug kernel's KASAN reports).
# In (a), (b) and (d) fio first writes a verify pattern to the first 16 MiB
# of a file backing and the disruptions hit writes to the rest: after the
# cycles, a fresh device on the same backing must read the pattern back.
# At the end nothing may be left: no vdpa device, worker thread or configfs
# item, the module unloads, and unreclaimable slab has not grown without
# bound.

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

CYCLES=${RACE_CYCLES:-10}
FAST=${RACE_FAST_CYCLES:-20}
RESETS=${RACE_RESETS:-100}
MB=$((1 << 20))
SIZE=$((64 * MB))
PROCS=4
fuzz=$REPO/selftests/vhost_vdpa/vdpa_fuzz
LOAD=$REPO/selftests/durability/dur_writer

require_root
require_cmd fio python3 losetup timeout
[ -x "$LOAD" ] || skip "$LOAD not built (make -C selftests on the host)"
bsw_setup
load_modules loop
# fio sees the device disappear under it.
dmesg_allow 'I/O error'
dmesg_allow 'Buffer I/O error'

vdpa_dev_del_all || fail "cannot delete the devices already present"
slab_before=$(sync; echo 3 > /proc/sys/vm/drop_caches; awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)

img=/scratch/races.img
truncate -s $SIZE "$img" || fail "truncate failed"
defer rm -f "$img"

# The verify pattern (region A, first 16 MiB) and the busy region (the rest).
seed_args=(--name=seed --size=16M --offset=0 --rw=write --bs=64k
	--ioengine=io_uring --direct=1 --verify=crc32c)

seed_write()
{
	fio_run seed --filename="$1" "${seed_args[@]}" --do_verify=0
}

seed_check()
{
	fio_run "check-$2" --filename="$1" "${seed_args[@]}" --verify_only=1 \
		--verify_fatal=1 || exit
}

_written()
{
	[ "$(bsw_stat "$1" write_bytes)" != "$2" ]
}

# busy_start NAME DEV CYCLE: writes to DEV (after the pattern) until the
# device goes; returns once the device has seen them. Every tenth cycle
# (and the first) fio (io_uring, QD 16); the others dur_writer's load mode
# (8 threads of O_DIRECT pwrite), which starts in milliseconds where fio
# takes seconds under TCG. Both fail on any error but the device's loss.
busy_start()
{
	local before

	before=$(bsw_stat "$1" write_bytes)
	if [ $(($3 % 10)) = 1 ]; then
		fio --name=busy --filename="$2" --allow_file_create=0 --offset=16M \
			--size=48M --rw=randwrite --bs=4k --iodepth=16 --ioengine=io_uring \
			--direct=1 --time_based --runtime=60 --output=/dev/null > /dev/null 2>&1 &
		BUSY_FIO=1
	else
		"$LOAD" --dev "$2" --mode load --offset $((16 * MB)) --blocks 12288 \
			--threads 8 --rounds 200 --interval-ms 300 > busy.log 2>&1 &
		BUSY_FIO=0
	fi
	BUSY_PID=$!
	wait_for 30 _written "$1" "$before" || {
		busy_dump "$1"
		fail "no write reached $1 from the load"
	}
}

# What the device's queues and their threads were doing, for a failure.
busy_dump()
{
	local p

	grep . "$VDPA_SYSFS/devices/$1"/blk_sw_q*/{inflight,requests,notifies,worker_pid} >&2
	kill -0 "$BUSY_PID" 2> /dev/null || log "the load exited: $(cat busy.log)"
	for p in $(pgrep '^vbs'); do
		log "$(cat "/proc/$p/comm") ($p): $(tr '\n' ' ' < "/proc/$p/stack")"
	done
}

_busy_gone()
{
	! kill -0 "$BUSY_PID" 2> /dev/null
}

busy_wait()
{
	wait_for 90 _busy_gone || fail "the load hangs after $1"
	# fio ends with an error when the disk goes; dur_writer only on others
	wait "$BUSY_PID" || [ "$BUSY_FIO" = 1 ] || fail "load after $1: $(cat busy.log)"
}

# A random pause of 0 to 300 ms, so the disruption hits I/O at any stage.
jitter()
{
	sleep "0.$(printf '%03d' $((RANDOM % 300)))"
}

case_time()
{
	log "$1: $2 cycles in $(( $(date +%s) - T0 )) s"
	T0=$(date +%s)
}

bsw_stage rc backing="$img"
vdpa_dev_add "$BSW_MGMTDEV" rc
dev=$(vdpa_bind_virtio rc) || exit
seed_write "$dev"

# --- a) unbind/bind during I/O ---------------------------------------------
T0=$(date +%s)
for i in $(seq "$CYCLES"); do
	busy_start rc "$dev" "$i"
	jitter
	vdpa_unbind rc
	busy_wait "unbind #$i"
	dev=$(vdpa_bind_virtio rc) || exit
done
seed_check "$dev" unbind
case_time "a) unbind/bind during I/O" "$CYCLES"

# --- b) vdpa dev del during I/O, add again on the same backing ------------
for i in $(seq "$CYCLES"); do
	busy_start rc "$dev" "$i"
	jitter
	vdpa dev del rc || fail "del #$i during I/O failed"
	busy_wait "del #$i"
	[ ! -e "$VDPA_SYSFS/devices/rc" ] || fail "rc still present after del #$i"
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name rc || fail "add #$i failed"
	dev=$(vdpa_bind_virtio rc) || exit
done
seed_check "$dev" del
case_time "b) dev del during I/O + add" "$CYCLES"
vdpa_dev_del rc

# --- c) reset and suspend/resume with requests in flight -------------------
if [ -x "$fuzz" ]; then
	ulimit -l unlimited
	# at least one run: the model check below needs its saved model
	want=$((RESETS / 2 > 0 ? RESETS / 2 : 1))
	truncate -s $((8 * MB)) /scratch/races-fz.img || fail "truncate failed"
	defer rm -f /scratch/races-fz.img
	bsw_stage rfz backing=/scratch/races-fz.img queue_size=256
	vdpa_dev_add "$BSW_MGMTDEV" rfz
	vhost=$(vdpa_bind_vhost rfz) || exit
	resets=0 suspends=0 runs=0
	run_secs=$((want / 4 + 5 < 240 ? want / 4 + 5 : 240))
	while [ $((resets < want || suspends < want)) = 1 ]; do
		runs=$((runs + 1))
		[ "$runs" -le $((20 + want / 50)) ] || fail "reset/suspend: only $resets resets, $suspends suspends in $runs runs"
		# --seconds well inside the kill timeout: make stress once
		# asked for 505 s under a 300 s timeout
		timeout --kill-after=10 $((run_secs + 120)) "$fuzz" --dev "$vhost" --lifecycle \
			--seed $((RANDOM * 32768 + RANDOM)) --iterations 100000000 \
			--seconds "$run_secs" --save-model /tmp/races-model \
			> "$RESULTS_DIR/fuzz-$runs.log" 2>&1 ||
			{ tail -n 20 "$RESULTS_DIR/fuzz-$runs.log" >&2; fail "vdpa_fuzz --lifecycle failed"; }
		line=$(grep ' resets ' "$RESULTS_DIR/fuzz-$runs.log")
		resets=$((resets + $(sed -n 's/.* resets \([0-9]*\) .*/\1/p' <<< "$line")))
		suspends=$((suspends + $(sed -n 's/.* suspends \([0-9]*\) .*/\1/p' <<< "$line")))
	done
	vdpa_unbind rfz
	vdpa_dev_del rfz
	# The model of the last run against the backing, through a new device.
	vdpa_dev_add "$BSW_MGMTDEV" rfz
	fdev=$(vdpa_bind_virtio rfz) || exit
	python3 - "$fdev" /tmp/races-model << 'EOF' || fail "reset/suspend: the backing differs from the model"
import sys
dev, model = sys.argv[1], sys.argv[2]
known = open(model + ".known", "rb").read()
m = open(model, "rb").read()
d = open(dev, "rb").read(len(m))
bad = [s for s in range(len(known)) if known[s] and d[s*512:(s+1)*512] != m[s*512:(s+1)*512]]
print("reset/suspend: %d sectors known to the model, %d differ" % (sum(1 for k in known if k), len(bad)), file=sys.stderr)
sys.exit(1 if bad or not any(known) else 0)
EOF
	vdpa_dev_del rfz
	rmdir "$BSW_CFS/rfz" || fail "rmdir rfz failed"
	rm -f /tmp/races-model /tmp/races-model.known
	case_time "c) $resets resets, $suspends suspends with requests in flight ($runs runs)" \
		$((resets + suspends))
else
	log "c) skipped: $fuzz not built"
fi

# --- d) rmmod with devices present and I/O running --------------------------
# configfs items hold the module: the devices keep their copy, drop the item.
rm_cycles=${RACE_RMMODS:-$(( CYCLES / 5 > 0 ? CYCLES / 5 : 1 ))}
rmdir "$BSW_CFS/rc" || fail "rmdir rc failed"
for i in $(seq "$rm_cycles"); do
	mkdir "$BSW_CFS/rc" && echo "$img" > "$BSW_CFS/rc/backing" || fail "stage rc failed"
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name rc || fail "add rc #$i failed"
	vdpa dev add mgmtdev "$BSW_MGMTDEV" name rc2 || fail "add rc2 #$i failed"
	rmdir "$BSW_CFS/rc" || fail "rmdir rc failed"
	dev=$(vdpa_bind_virtio rc) || exit
	busy_start rc "$dev" "$i"
	jitter
	timeout 120 modprobe -r vdpa_blk_sw || fail "rmmod #$i during I/O failed"
	busy_wait "rmmod #$i"
	[ -z "$(ls "$VDPA_SYSFS/devices")" ] || fail "devices survived rmmod #$i"
	load_modules vdpa_blk_sw
done
bsw_stage rc backing="$img"
vdpa_dev_add "$BSW_MGMTDEV" rc
dev=$(vdpa_bind_virtio rc) || exit
seed_check "$dev" rmmod
vdpa_dev_del rc
rmdir "$BSW_CFS/rc" || fail "rmdir rc failed"
# A held /dev/vhost-vdpa-N: rmmod deletes the device, which waits for the
# close (vhost-vdpa's rule), then unloads.
vdpa dev add mgmtdev "$BSW_MGMTDEV" name rh || fail "add rh failed"
vhost=$(vdpa_bind_vhost rh) || exit
(exec 9<> "$vhost"; sleep 3) &
holder=$!
sleep 1
t=$(date +%s)
timeout 60 modprobe -r vdpa_blk_sw || fail "rmmod with $vhost held open failed"
t=$(( $(date +%s) - t ))
wait "$holder"
[ "$t" -ge 1 ] || fail "rmmod returned while $vhost was still open"
log "d) rmmod waited $t s for $vhost to be closed"
load_modules vdpa_blk_sw
case_time "d) rmmod during I/O" "$rm_cycles"

# --- e) concurrent add/del --------------------------------------------------
# distinct names: every add and del succeeds
churn()
{
	local p=$1 i

	for i in $(seq "$FAST"); do
		vdpa dev add mgmtdev "$BSW_MGMTDEV" name "ch$p" || { echo "add ch$p #$i" ; return 1; }
		vdpa dev del "ch$p" || { echo "del ch$p #$i"; return 1; }
	done
}
pids=()
for p in $(seq $PROCS); do
	churn "$p" > "churn.$p" 2>&1 &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "concurrent add/del on distinct names failed: $(cat churn.*)"
done
[ -z "$(ls "$VDPA_SYSFS/devices")" ] || fail "devices left: $(ls "$VDPA_SYSFS/devices")"
case_time "e) $PROCS processes add/del on distinct names" $((PROCS * FAST))

# one name: exactly one add wins (EEXIST for the others), then one del
# (ENODEV for the others)
race()
{
	local op=$1 name=$2 want=$3 p won=0 msg

	for p in $(seq $PROCS); do
		if [ "$op" = add ]; then
			{ vdpa dev add mgmtdev "$BSW_MGMTDEV" name "$name" 2> "race.$p"; echo $? > "rc.$p"; } &
		else
			{ vdpa dev del "$name" 2> "race.$p"; echo $? > "rc.$p"; } &
		fi
	done
	wait
	for p in $(seq $PROCS); do
		if [ "$(cat "rc.$p")" = 0 ]; then
			won=$((won + 1))
			continue
		fi
		msg=$(cat "race.$p")
		case $msg in *"$want"*) ;; *) fail "$op $name: '$msg', expected '$want'" ;; esac
	done
	[ "$won" = 1 ] || fail "$op $name: $won of $PROCS processes succeeded"
}
# progress I N: log after every 100th round of N (stress runs take long)
progress()
{
	[ $(($1 % 100)) != 0 ] || log "$1 of $2 rounds in $(( $(date +%s) - T0 )) s"
}
for i in $(seq $((FAST / 2))); do
	race add same "File exists"
	race del same "No such device"
	progress "$i" $((FAST / 2))
done
[ -z "$(ls "$VDPA_SYSFS/devices")" ] || fail "devices left: $(ls "$VDPA_SYSFS/devices")"
# The same with a staged backing: the losers are told the name is taken
# (EEXIST), not that the backing is busy (regression: they got EBUSY).
bsw_stage samef backing="$img"
for i in $(seq $((FAST / 4))); do
	race add samef "File exists"
	race del samef "No such device"
	progress "$i" $((FAST / 4))
done
rmdir "$BSW_CFS/samef" || fail "rmdir samef failed"
[ -z "$(ls "$VDPA_SYSFS/devices")" ] || fail "devices left: $(ls "$VDPA_SYSFS/devices")"
case_time "e) $PROCS processes race for one name" $((FAST / 2 + FAST / 4))

# --- f) two devices, one writable backing ---------------------------------
# expect_add_err NAME MESSAGE: "vdpa dev add" of NAME fails with MESSAGE
# and leaves nothing
expect_add_err()
{
	local out

	if out=$(vdpa dev add mgmtdev "$BSW_MGMTDEV" name "$1" 2>&1); then
		fail "$1: created, expected '$2'"
	fi
	case $out in
	*"$2"*) ;;
	*) fail "$1: '$out', expected '$2'" ;;
	esac
	[ ! -e "$VDPA_SYSFS/devices/$1" ] || fail "$1 exists after a refused add"
	expect_eq "$1 live" "$(bsw_cfg "$1" live)" 0
}

# expect_busy NAME: a second device on a backing in use is refused
expect_busy()
{
	expect_add_err "$1" "Device or resource busy"
}
ln "$img" /scratch/races-link.img || fail "ln failed"
defer rm -f /scratch/races-link.img
ln -s "$img" /scratch/races-sym.img || fail "ln -s failed"
defer rm -f /scratch/races-sym.img
bsw_stage sh1 backing="$img"
bsw_stage sh2 backing="$img"
bsw_stage sh3 backing=/scratch/races-link.img
bsw_stage sh4 backing=/scratch/races-sym.img read_only=1
vdpa_dev_add "$BSW_MGMTDEV" sh1
expect_busy sh2
expect_busy sh3
expect_busy sh4
vdpa_dev_del sh1
vdpa_dev_add "$BSW_MGMTDEV" sh2	# free again
dev=$(vdpa_bind_virtio sh2) || exit
seed_check "$dev" shared
vdpa_dev_del sh2
loopdev=$(losetup --find --show "$img") || fail "losetup failed"
defer losetup -d "$loopdev"
bsw_stage sb1 backing="$loopdev"
bsw_stage sb2 backing="$loopdev"
vdpa_dev_add "$BSW_MGMTDEV" sb1
expect_busy sb2
vdpa_dev_del sb1
vdpa_dev_add "$BSW_MGMTDEV" sb2
vdpa_dev_del sb2

# The opt-in (shared=1 on every device): one device writes a pattern the
# file did not hold, the other (another path to the file) reads it back; a
# device without the opt-in, or the memory backing with it, is refused; a
# shared block device stays closed to other exclusive openers.
# excl_open DEV: prints OK or the errno name of an O_EXCL open of DEV
excl_open()
{
	python3 -c 'import errno, os, sys
try:
	os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL))
	print("OK")
except OSError as e:
	print(errno.errorcode[e.errno])' "$1"
}
pattern=(--verify=pattern --verify_pattern=0x5a5a1e55)
bsw_stage sh5 backing="$img" shared=1
bsw_stage sh6 backing=/scratch/races-link.img shared=1
vdpa_dev_add "$BSW_MGMTDEV" sh5
expect_busy sh1
vdpa_dev_add "$BSW_MGMTDEV" sh6
expect_eq "sh6 shared" "$(bsw_attr sh6 shared)" 1
expect_eq "sh1 shared" "$(bsw_cfg sh1 shared)" 0
dev5=$(vdpa_bind_virtio sh5) || exit
dev6=$(vdpa_bind_virtio sh6) || exit
fio_run shared-write --filename="$dev5" "${seed_args[@]}" "${pattern[@]}" --do_verify=0
fio_run shared-read --filename="$dev6" "${seed_args[@]}" "${pattern[@]}" \
	--verify_only=1 --verify_fatal=1 || exit
vdpa_dev_del sh6
vdpa_dev_del sh5
bsw_stage sh7 shared=1
expect_add_err sh7 "Invalid argument"
expect_eq "O_EXCL open of an unclaimed $loopdev" "$(excl_open "$loopdev")" OK
bsw_stage sb3 backing="$loopdev" shared=1
bsw_stage sb4 backing="$loopdev" shared=1
vdpa_dev_add "$BSW_MGMTDEV" sb3
expect_busy sb1
vdpa_dev_add "$BSW_MGMTDEV" sb4
expect_eq "O_EXCL open of a shared $loopdev" "$(excl_open "$loopdev")" EBUSY
vdpa_dev_del sb4
vdpa_dev_del sb3
expect_eq "O_EXCL open of $loopdev after the shared devices" "$(excl_open "$loopdev")" OK
case_time "f) shared backing refused (file, hard link, symlink, block device), then shared on opt-in" 1

# --- g) config interrupts while the driver goes -----------------------------
resizer()
{
	local i=0

	while [ -e "$1/resize" ]; do
		echo 1 > "$1/resize" 2> /dev/null || [ ! -e "$1/resize" ] || return 1
		i=$((i + 1))
	done
	echo "$i"
}
bsw_stage rz backing="$img"
vdpa_dev_add "$BSW_MGMTDEV" rz
rz_pids=()
for p in 1 2; do
	resizer "$VDPA_SYSFS/devices/rz/blk_sw" > "resize.$p" 2>&1 &
	rz_pids+=($!)
done
for i in $(seq "$CYCLES"); do
	vdpa_bind_virtio rz > /dev/null || fail "bind $i under resizes failed"
	vdpa_unbind rz
	progress "$i" "$CYCLES"
done
vdpa_dev_del rz
for p in "${rz_pids[@]}"; do
	wait "$p" || fail "a resize failed while the device existed"
done
log "g) $(cat resize.1) + $(cat resize.2) resizes"
case_time "g) unbind/bind under config interrupts" "$CYCLES"

# --- nothing left ------------------------------------------------------------
[ -z "$(ls "$VDPA_SYSFS/devices")" ] || fail "devices left: $(ls "$VDPA_SYSFS/devices")"
threads=$(pgrep -c '^vbs-' || true)
expect_eq "vbs worker threads left" "$threads" 0
# the shared pool keeps its threads, at most one per CPU, until unloaded
pool=$(pgrep -c '^vbs_pool/' || true)
expect_eq "pool threads as counted" "$pool" \
	"$(cat /sys/module/vdpa_blk_sw/parameters/pool_threads)"
[ "$pool" -le "$(nproc)" ] || fail "$pool pool threads for $(nproc) CPUs"
for d in "$BSW_CFS"/*/; do
	[ -d "$d" ] || continue
	expect_eq "$(basename "$d") live" "$(cat "$d/live")" 0
done
for d in "$BSW_CFS"/*/; do
	[ -d "$d" ] && rmdir "$d"
done
[ -z "$(ls "$BSW_CFS")" ] || fail "configfs items left: $(ls "$BSW_CFS")"
modprobe -r vdpa_blk_sw || fail "the module does not unload at the end"
expect_eq "pool threads after unload" "$(pgrep -c '^vbs_pool/' || true)" 0
slab_after=$(sync; echo 3 > /proc/sys/vm/drop_caches; awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
log "unreclaimable slab: $slab_before kB before, $slab_after kB after"
[ $((slab_after - slab_before)) -lt $((32 * 1024)) ] ||
	fail "unreclaimable slab grew by $((slab_after - slab_before)) kB"
