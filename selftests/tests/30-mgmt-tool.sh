#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tools/vdpa-blk-mgmt against the real module: every subcommand (create
# with each option, list, show, stats, set, resize, bind, qemu-args with
# QEMU started on its output, apply, destroy, --help) and every error path with its documented exit code (usage, not
# root, module not loaded, backing missing / unusable / in use, name taken,
# no such device, kernel refused with its extack message, apply
# differences). JSON output is checked with jq; show --json's block config
# fields must equal what was configured: this is the check that the kernel
# sends the blk config over netlink (VDPA_ATTR_DEV_BLK_CFG_*). The live
# polling tunables (poll_idle_us, poll_adaptive) are checked in sysfs after
# set, create and apply change them.
# timeout=600

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

require_root
require_cmd jq setpriv mkfs.ext4
T=${VDPA_BLK_MGMT:-$REPO/tools/vdpa-blk-mgmt/vdpa-blk-mgmt}
[ -x "$T" ] || fail "$T not built (make -C tools/vdpa-blk-mgmt)"

# expect_rc CODE PATTERN CMD...: CMD exits with CODE and its stderr matches
# PATTERN (grep -E; "" for anything). Its stdout is left in $OUT.
expect_rc()
{
	local code=$1 pat=$2 rc=0 errf

	shift 2
	errf=$(mktemp)
	OUT=$("$@" 2> "$errf") || rc=$?
	ERR=$(cat "$errf")
	rm -f "$errf"
	[ "$rc" = "$code" ] || fail "'$*': exit $rc, expected $code; stderr: $ERR"
	[ -z "$pat" ] || grep -qE "$pat" <<< "$ERR" ||
		fail "'$*': stderr '$ERR' does not match '$pat'"
	log "[$SECONDS s] ok: exit $rc: $* ${ERR:+-> $(head -n 1 <<< "$ERR")}"
}

# jq_eq WHAT JSON FILTER WANT
jq_eq()
{
	local got

	got=$(jq -r "$3" <<< "$2") || fail "$1: invalid JSON or filter '$3'"
	[ "$got" = "$4" ] || fail "$1: $3 is '$got', expected '$4'"
}

_tool_destroy_all()
{
	local d

	for d in /sys/bus/vdpa/devices/*; do
		[ -e "$d" ] && "$T" destroy "$(basename "$d")"
	done
	umount /tmp/mgmt-ro 2> /dev/null
	return 0
}
defer _tool_destroy_all

# --- help, usage ---------------------------------------------------------------
expect_rc 0 "" "$T" --help
grep -q '^usage: vdpa-blk-mgmt' <<< "$OUT" || fail "--help: $OUT"
for c in create destroy list show stats set resize bind qemu-args apply; do
	expect_rc 0 "" "$T" "$c" --help
	grep -q "^usage: vdpa-blk-mgmt $c" <<< "$OUT" || fail "$c --help: $OUT"
done
expect_rc 2 "unknown command" "$T" frobnicate
expect_rc 2 "usage" "$T"
# (the parsers are covered by make -C tools/vdpa-blk-mgmt check; these are
# the ones that reach the guest's exit codes)
expect_rc 2 "missing device name" "$T" create
expect_rc 2 "invalid device name" "$T" create 'a/b'
expect_rc 2 "invalid size" "$T" create e0 --size 1000
expect_rc 2 "unknown feature name 'FOO'" "$T" create e0 --features VERSION_1,FOO
expect_rc 2 "unknown option" "$T" create e0 --frob
expect_rc 2 "virtio, vhost or none" "$T" create e0 --bind qemu
expect_rc 2 "nothing to set" "$T" set e0
expect_rc 2 "out of range" "$T" set e0 --poll-idle-us 2000000
expect_rc 2 "expected on or off, got 'maybe'" "$T" set e0 --poll-adaptive maybe
expect_rc 2 "only --poll-idle-us and --poll-adaptive" "$T" set e0 --num-queues 2
expect_rc 2 "only --poll-idle-us and --poll-adaptive" "$T" set e0 --queues 2
expect_rc 2 "poll-adaptive: expected on or off" "$T" create e0 --poll-adaptive maybe

# --- not root ----------------------------------------------------------------------
expect_rc 3 "must be run as root" setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$T" create nr0
expect_rc 3 "must be run as root" setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$T" destroy nr0

# --- modules not loaded ---------------------------------------------------------------
vdpa_dev_del_all || fail "cannot delete leftover devices"
modprobe -r -a vdpa_blk_sw vdpa_sim_blk vdpa_sim virtio_vdpa vhost_vdpa 2> /dev/null
modprobe -r vdpa 2> /dev/null
if [ ! -e /sys/module/vdpa ]; then
	expect_rc 4 "vdpa module is not loaded" "$T" create e0
	expect_rc 4 "vdpa module is not loaded" "$T" list
else
	log "vdpa cannot be unloaded here; not checking its absence"
fi
load_modules vdpa virtio_blk
# each check only where the module could be unloaded (nothing holds it)
if [ ! -e /sys/module/vdpa_blk_sw ]; then
	expect_rc 4 "vdpa_blk_sw module is not loaded" "$T" create e0
else
	log "vdpa_blk_sw cannot be unloaded here; not checking its absence"
fi
load_modules vdpa_blk_sw
if ! grep -q ' /sys/kernel/config configfs' /proc/mounts; then
	mount -t configfs none /sys/kernel/config || fail "cannot mount configfs"
fi
for m in virtio_vdpa vhost_vdpa; do
	if [ -e "/sys/module/$m" ]; then
		log "$m cannot be unloaded here; not checking its absence"
		continue
	fi
	expect_rc 4 "$m module is not loaded" "$T" create e0 --bind "${m%_vdpa}"
done
bsw_setup
# the tool must not depend on the bus autoprobe: turn it back on
echo 1 > /sys/bus/vdpa/drivers_autoprobe

# --- create on the memory backing, bound to virtio ----------------------------------------
expect_rc 0 "" "$T" create m0 --size 64M --num-queues 2 --queue-size 128 --block-size 4096 \
	--serial m0-serial --poll-idle-us 20 --buffered
dev=$OUT
[ -b "$dev" ] || fail "create printed '$dev', not a block device"
expect_eq "autoprobe restored" "$(cat /sys/bus/vdpa/drivers_autoprobe)" 1
expect_eq "$dev size" "$(bsw_sectors "$dev")" $((64 << 11))
expect_eq "$dev logical_block_size" \
	"$(cat "/sys/block/$(basename "$dev")/queue/logical_block_size")" 4096
expect_eq "$dev serial" "$(cat "/sys/block/$(basename "$dev")/serial")" m0-serial

expect_rc 0 "" "$T" show m0 --json
show=$OUT
log "$show"
# block config decoded from VDPA_CMD_DEV_CONFIG_GET equals what was configured
jq_eq "config capacity" "$show" .config.capacity $((64 << 11))
jq_eq "config blk_size" "$show" .config.blk_size 4096
jq_eq "config seg_max" "$show" .config.seg_max 126
jq_eq "config size_max" "$show" .config.size_max 4096
jq_eq "config num_queues" "$show" .config.num_queues 2
jq_eq "config max_discard_seg" "$show" .config.max_discard_seg 16
jq_eq "config max_write_zeroes_seg" "$show" .config.max_write_zeroes_seg 16
jq_eq "config discard_sector_alignment" "$show" .config.discard_sector_alignment 8
jq_eq "config read_only" "$show" .config.read_only 0
jq_eq "config flush" "$show" .config.flush 1
jq_eq "max_vqs" "$show" .max_vqs 2
jq_eq "max_vq_size" "$show" .max_vq_size 128
jq_eq "driver" "$show" .driver virtio_vdpa
jq_eq "node" "$show" .node "$dev"
jq_eq "backing_type" "$show" .backing_type memory
jq_eq "capacity_bytes" "$show" .capacity_bytes $((64 << 20))
jq_eq "serial" "$show" .serial m0-serial
jq_eq "poll_idle_us" "$show" .poll_idle_us 20
jq_eq "direct" "$show" .direct false
jq_eq "block_size" "$show" .block_size 4096
jq_eq "features VERSION_1" "$show" '.features | index("VERSION_1") != null' true
jq_eq "features DISCARD" "$show" '.features | index("DISCARD") != null' true
jq_eq "negotiated VERSION_1" "$show" '.negotiated_features | index("VERSION_1") != null' true
jq_eq "queues" "$show" '.queues | length' 2
# adaptive polling is the module's default; one window per worker
expect_eq "m0 sysfs poll_adaptive" "$(bsw_attr m0 poll_adaptive)" 1
jq_eq "poll_adaptive" "$show" .poll_adaptive true
nw=$(bsw_attr m0 num_workers)
expect_eq "m0 num_workers: the shared pool" "$nw" 0
jq_eq "num_workers" "$show" .num_workers "$nw"
# a pooled device shows one window per queue, its pool worker's
nwin=2
jq_eq "poll_window_ns per queue" "$show" '.poll_window_ns | length' "$nwin"
jq_eq "poll_window_ns numbers within poll_idle_us" "$show" \
	'.poll_window_ns | all(type == "number" and . >= 0 and . <= 20000)' true
expect_rc 0 "" "$T" show m0
grep -q 'seg_max 126' <<< "$OUT" || fail "show: $OUT"
grep -q 'poll_idle_us 20, poll_adaptive 1, use_va 0' <<< "$OUT" ||
	fail "show: no 'poll_adaptive 1' in: $OUT"
grep -qE "workers: +num_workers $nw, poll_window_ns [0-9]+" <<< "$OUT" ||
	fail "show: no poll_window_ns in: $OUT"
grep -q 'negotiated:.*VERSION_1' <<< "$OUT" || fail "show: $OUT"

# the container flow: a file system on the disk
mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 $dev failed"
mnt=$(mktemp -d)
mount "$dev" "$mnt" || fail "mount $dev failed"
echo hello > "$mnt/file" && sync || fail "write on $mnt failed"
umount "$mnt" || fail "umount failed"
rmdir "$mnt"

# --- stats, set ------------------------------------------------------------------------------
expect_rc 0 "" "$T" stats m0 --json
jq_eq "stats queues" "$OUT" '.queues | length' 2
jq_eq "stats requests > 0" "$OUT" '([.queues[].requests] | add) > 0' true
jq_eq "stats write_bytes > 0" "$OUT" '([.queues[].write_bytes] | add) > 0' true
jq_eq "stats spills" "$OUT" "[.queues[].spills] == [$(cat "$VDPA_SYSFS"/devices/m0/blk_sw_q0/spills),$(cat "$VDPA_SYSFS"/devices/m0/blk_sw_q1/spills)]" true
expect_rc 0 "" "$T" stats m0
grep -q '^QUEUE' <<< "$OUT" || fail "stats: $OUT"
dd if="$dev" of=/dev/null bs=64k count=256 iflag=direct status=none &
expect_rc 0 "" "$T" stats m0 --watch 1 --count 2 --json
wait
expect_eq "stats --watch samples" "$(wc -l <<< "$OUT")" 2
jq -e -s 'length == 2 and (.[0].queues | length) == 2 and
	(.[0].queues[0] | has("requests_per_s"))' <<< "$OUT" > /dev/null ||
	fail "stats --watch --json: $OUT"
expect_rc 0 "" "$T" stats m0 --watch 1 --count 1
grep -q 'requests/s' <<< "$OUT" || fail "stats --watch: $OUT"

# --poll-us: the older spelling of --poll-idle-us, still taken
expect_rc 0 "" "$T" set m0 --poll-us 100
expect_eq poll_idle_us "$(bsw_attr m0 poll_idle_us)" 100
# not adaptive: every worker polls the whole poll_idle_us
expect_rc 0 "" "$T" set m0 --poll-adaptive off
expect_eq "poll_adaptive off" "$(bsw_attr m0 poll_adaptive)" 0
expect_rc 0 "" "$T" show m0 --json
jq_eq "poll_adaptive off" "$OUT" .poll_adaptive false
jq_eq "poll_window_ns not adaptive" "$OUT" \
	'.poll_window_ns | length == '"$nwin"' and all(. == 100000)' true
expect_eq "sysfs poll_window_ns not adaptive" "$(bsw_attr m0 poll_window_ns)" \
	"$(printf '100000 %.0s' $(seq "$nwin") | sed 's/ $//')"
expect_rc 0 "" "$T" show m0
grep -q 'poll_idle_us 100, poll_adaptive 0,' <<< "$OUT" || fail "show: $OUT"
# a refused value changes nothing, not even the valid option before it
expect_rc 2 "expected on or off, got 'maybe'" "$T" set m0 --poll-idle-us 5 --poll-adaptive maybe
expect_eq "poll_adaptive after 'maybe'" "$(bsw_attr m0 poll_adaptive)" 0
expect_eq "poll_idle_us after 'maybe'" "$(bsw_attr m0 poll_idle_us)" 100
# both at once
expect_rc 0 "" "$T" set m0 --poll-idle-us 50 --poll-adaptive yes
expect_eq "poll_idle_us with poll-adaptive" "$(bsw_attr m0 poll_idle_us)" 50
expect_eq "poll_adaptive yes" "$(bsw_attr m0 poll_adaptive)" 1
expect_rc 0 "" "$T" show m0 --json
jq_eq "poll_adaptive back on" "$OUT" .poll_adaptive true

# --- list ---------------------------------------------------------------------------------------
expect_rc 0 "" "$T" list
grep -qE "^m0 +vdpasim_blk-sw +virtio_vdpa +$dev +64M +2 +\(memory\)" <<< "$OUT" ||
	fail "list: $OUT"
expect_rc 0 "" "$T" list --json
jq_eq "list node" "$OUT" '.devices[] | select(.name == "m0") | .node' "$dev"
jq_eq "list capacity" "$OUT" '.devices[] | select(.name == "m0") | .capacity_bytes' $((64 << 20))

# --- file backing, vhost, resize, rebinding ---------------------------------------------------------
img=/scratch/mgmt-f0.img
truncate -s 16M "$img" || fail "truncate failed"
expect_rc 0 "" "$T" create f0 --backing "$img" --bind vhost --num-queues 1
vdev=$OUT
[ -c "$vdev" ] || fail "create --bind vhost printed '$vdev'"
expect_rc 0 "" "$T" show f0 --json
jq_eq "f0 driver" "$OUT" .driver vhost_vdpa
jq_eq "f0 node" "$OUT" .node "$vdev"
jq_eq "f0 backing" "$OUT" .backing "$img"
jq_eq "f0 backing_type" "$OUT" .backing_type file
jq_eq "f0 capacity" "$OUT" .config.capacity $((16 << 11))
jq_eq "f0 blk_size" "$OUT" .config.blk_size 512
jq_eq "f0 seg_max" "$OUT" .config.seg_max 254
jq_eq "f0 num_queues" "$OUT" .config.num_queues 1
jq_eq "f0 use_va (PA mode by default)" "$OUT" .use_va false
expect_eq "f0 sysfs use_va" "$(bsw_attr f0 use_va)" 0
jq_eq "f0 shared (exclusive by default)" "$OUT" .shared false

# --shared: a device on a backing another has exclusively is refused, as
# is one without --shared on a shared backing; two with it share one
expect_rc 5 "in use" "$T" create s0 --backing "$img" --bind none --shared
simg=/scratch/mgmt-shared.img
truncate -s 16M "$simg" || fail "truncate $simg failed"
defer rm -f "$simg"
expect_rc 0 "" "$T" create s0 --backing "$simg" --bind none --shared
expect_rc 0 "" "$T" create s1 --backing "$simg" --bind none --shared
expect_rc 5 "already used by vdpa device s[01]" "$T" create s2 --backing "$simg" --bind none
expect_rc 0 "" "$T" show s1 --json
jq_eq "s1 shared" "$OUT" .shared true
expect_rc 0 "" "$T" destroy s1
expect_rc 0 "" "$T" destroy s0

# --poll-adaptive at creation: written to sysfs before the driver binds
expect_rc 0 "" "$T" create pa0 --size 16M --bind none --poll-adaptive off
expect_eq "pa0 sysfs poll_adaptive" "$(bsw_attr pa0 poll_adaptive)" 0
expect_rc 0 "" "$T" bind pa0 virtio
expect_eq "pa0 poll_adaptive after bind" "$(bsw_attr pa0 poll_adaptive)" 0
expect_rc 0 "" "$T" destroy pa0

# --use-va: vhost-vdpa VA mode, staged before the device exists
expect_rc 0 "" "$T" create va0 --size 16M --bind vhost --use-va
[ -c "$OUT" ] || fail "create --use-va printed '$OUT'"
expect_eq "va0 sysfs use_va" "$(bsw_attr va0 use_va)" 1
expect_rc 0 "" "$T" show va0 --json
jq_eq "va0 use_va" "$OUT" .use_va true
expect_rc 0 "" "$T" show va0
grep -q 'use_va 1' <<< "$OUT" || fail "show va0: no 'use_va 1' in: $OUT"
vaconf=$(mktemp /tmp/mgmt-va.XXXXXX.conf)
printf '[va0]\nsize = 16M\nbind = vhost\nuse_va = no\n' > "$vaconf"
expect_rc 8 "" "$T" apply "$vaconf"
grep -q '^va0: differs: use_va is 1, wanted 0' <<< "$OUT" || fail "apply use_va = no: $OUT"
printf '[va0]\nsize = 16M\nbind = vhost\nuse-va = yes\n' > "$vaconf"
expect_rc 0 "" "$T" apply "$vaconf"
rm -f "$vaconf"
expect_rc 0 "" "$T" destroy va0

truncate -s 24M "$img"
expect_rc 0 "" "$T" resize f0
grep -q '16M -> 24M' <<< "$OUT" || fail "resize: $OUT"
expect_rc 0 "" "$T" show f0 --json
jq_eq "f0 capacity after resize" "$OUT" .config.capacity $((24 << 11))
expect_rc 0 "" "$T" resize m0
grep -q 'unchanged' <<< "$OUT" || fail "resize m0: $OUT"

expect_rc 0 "" "$T" bind f0 virtio
fdev=$OUT
[ -b "$fdev" ] || fail "bind virtio printed '$fdev'"
expect_eq "$fdev size" "$(bsw_sectors "$fdev")" $((24 << 11))
expect_rc 0 "" "$T" bind f0 none
[ -z "$OUT" ] || fail "bind none printed '$OUT'"
expect_rc 0 "" "$T" show f0 --json
jq_eq "f0 unbound" "$OUT" .driver ""
jq_eq "f0 override" "$OUT" .driver_override none
expect_rc 0 "" "$T" bind f0 vhost
[ -c "$OUT" ] || fail "bind vhost printed '$OUT'"

# --- error paths against the kernel ----------------------------------------------------------------
expect_rc 6 "name m0 is taken" "$T" create m0
expect_rc 5 "does not exist" "$T" create e0 --backing /nonexistent.img
expect_rc 5 "neither a regular file nor a block device" "$T" create e0 --backing /tmp
expect_rc 5 "already used by vdpa device f0" "$T" create e0 --backing "$img"
mkdir -p /tmp/mgmt-ro
mount -t tmpfs -o size=32M tmpfs /tmp/mgmt-ro || fail "mount tmpfs failed"
truncate -s 8M /tmp/mgmt-ro/ro.img
mount -o remount,ro /tmp/mgmt-ro || fail "remount ro failed"
expect_rc 5 "read-only file system" "$T" create e0 --backing /tmp/mgmt-ro/ro.img
[ ! -e /sys/kernel/config/vdpa_blk_sw/e0 ] || fail "a refused create left its configfs item"
expect_rc 0 "" "$T" create r0 --backing /tmp/mgmt-ro/ro.img --ro --buffered --bind none
expect_rc 0 "" "$T" show r0 --json
jq_eq "r0 read_only" "$OUT" .read_only true
jq_eq "r0 config read_only" "$OUT" .config.read_only 1
jq_eq "r0 features RO" "$OUT" '.features | index("RO") != null' true
jq_eq "r0 unbound" "$OUT" .negotiated_features null
expect_rc 0 "" "$T" destroy r0
umount /tmp/mgmt-ro

# device_features provisioning: accepted subset, then refused sets
expect_rc 0 "" "$T" create p0 --features VERSION_1,ACCESS_PLATFORM,FLUSH,BLK_SIZE,SEG_MAX \
	--bind none
[ -z "$OUT" ] || fail "create --bind none printed '$OUT'"
expect_rc 0 "" "$T" show p0 --json
jq_eq "p0 features" "$OUT" '.features | join(",")' SEG_MAX,BLK_SIZE,FLUSH,VERSION_1,ACCESS_PLATFORM
jq_eq "p0 no discard config" "$OUT" '.config | has("max_discard_sectors")' false
jq_eq "p0 no mq config" "$OUT" '.config | has("num_queues")' false
jq_eq "p0 seg_max" "$OUT" .config.seg_max 254
expect_rc 0 "" "$T" destroy p0
expect_rc 1 "kernel refused: Invalid argument" "$T" create e0 --features VERSION_1 --bind none
grep -q 'requires: ACCESS_PLATFORM' <<< "$ERR" || fail "no hint about ACCESS_PLATFORM: $ERR"
expect_rc 1 "kernel refused" "$T" create e0 --features 0x300000010 --bind none
grep -q 'not offered by the management device: GEOMETRY' <<< "$ERR" || fail "no hint: $ERR"
[ ! -e /sys/bus/vdpa/devices/e0 ] && [ ! -e /sys/kernel/config/vdpa_blk_sw/e0 ] ||
	fail "a refused device or its configfs item exists"
# the kernel's extack message: vdpa_sim_blk takes no device_features
if modinfo vdpa_sim_blk > /dev/null 2>&1; then
	load_modules vdpa_sim_blk
	expect_rc 1 "kernel refused: .*: .*[Ss]ome provided attributes are not supported" \
		"$T" create e0 --mgmtdev vdpasim_blk --features VERSION_1,ACCESS_PLATFORM --bind none
	expect_rc 2 "only --features and --bind" "$T" create e0 --mgmtdev vdpasim_blk --num-queues 2
	expect_rc 0 "" "$T" create s0 --mgmtdev vdpasim_blk --bind none
	expect_rc 0 "" "$T" list --all --json
	jq_eq "list --all" "$OUT" '.devices[] | select(.name == "s0") | .mgmtdev' vdpasim_blk
	expect_rc 0 "" "$T" list --json
	jq_eq "list without --all" "$OUT" '[.devices[] | select(.name == "s0")] | length' 0
	expect_rc 0 "" "$T" destroy s0
else
	log "vdpa_sim_blk not available: extack message not checked"
fi

expect_rc 7 "no vdpa device named nope" "$T" show nope
expect_rc 7 "no vdpa device named nope" "$T" destroy nope
expect_rc 7 "no vdpa device named nope" "$T" stats nope
expect_rc 7 "no vdpa device named nope" "$T" resize nope
expect_rc 7 "no vdpa device named nope" "$T" set nope --poll-idle-us 1
expect_rc 7 "no vdpa device named nope" "$T" bind nope virtio

# --- apply ---------------------------------------------------------------------------------------------
conf=$(mktemp)
cat > "$conf" <<EOF
# devices for this boot
[a0]
size = 32M
num_queues = 2
serial = apply-a0
poll_idle_us = 10

[m0]
queues = 3   # m0 has 2: needs recreation (queues: the older key)
EOF
sed -i 's/   # m0.*//' "$conf"
expect_rc 8 "" "$T" apply "$conf"
log "$OUT"
grep -q '^a0: created /dev/vd' <<< "$OUT" || fail "apply: $OUT"
grep -q '^m0: differs: num_queues is 2, wanted 3' <<< "$OUT" || fail "apply: $OUT"
expect_eq "a0 serial" "$(bsw_attr a0 serial)" apply-a0
expect_eq "a0 driver" "$(basename "$(readlink /sys/bus/vdpa/devices/a0/driver)")" virtio_vdpa
cat > "$conf" <<EOF
[a0]
size = 32M
num-queues = 2
serial = apply-a0
poll-us = 10
bind = virtio
EOF
expect_rc 0 "" "$T" apply "$conf"
expect_eq "apply again" "$OUT" "a0: unchanged"
sed -i 's/poll-us = 10/poll_idle_us = 30/' "$conf"
expect_rc 0 "" "$T" apply "$conf"
expect_eq "apply poll-us" "$OUT" "a0: poll_idle_us set to 30"
expect_eq "a0 poll_idle_us" "$(bsw_attr a0 poll_idle_us)" 30
echo 'poll_adaptive = off' >> "$conf"
expect_rc 0 "" "$T" apply "$conf"
expect_eq "apply poll-adaptive" "$OUT" "a0: poll_adaptive set to 0"
expect_eq "a0 poll_adaptive" "$(bsw_attr a0 poll_adaptive)" 0
expect_rc 0 "" "$T" apply "$conf"
expect_eq "apply poll-adaptive again" "$OUT" "a0: unchanged"
# a section creating its device applies poll-adaptive as well
printf '[pa1]\nsize = 16M\nbind = none\npoll-adaptive = off\n' > "$conf"
expect_rc 0 "" "$T" apply "$conf"
expect_eq "apply creates pa1" "$OUT" "pa1: created"
expect_eq "pa1 poll_adaptive" "$(bsw_attr pa1 poll_adaptive)" 0
expect_rc 0 "" "$T" apply "$conf"
expect_eq "apply pa1 again" "$OUT" "pa1: unchanged"
expect_rc 0 "" "$T" destroy pa1
printf '[pa2]\npoll_adaptive = maybe\n' > "$conf"
expect_rc 2 ":2: poll_adaptive: expected on or off" "$T" apply "$conf"
[ ! -e /sys/bus/vdpa/devices/pa2 ] || fail "apply created pa2 from a refused section"
printf '[a1]\nqueues = many\n' > "$conf"
expect_rc 2 ":2: queues" "$T" apply "$conf"
printf 'queues = 1\n' > "$conf"
expect_rc 2 ":1: .*outside a \\[NAME\\] section" "$T" apply "$conf"
rm -f "$conf"

# --- qemu-args: the QEMU options, and QEMU started with exactly them ---------------------------
# In each mode and form: the options (the memory each mode needs, the
# traps the tool warns about), then QEMU (-S, no guest) started with
# them: it realizes the device on /dev/vhost-vdpa-N; with libblkio the
# guest's disk (virtio-blk-pci, its QEMU id vbs-q0) also writes through
# the device at once (HMP qemu-io -d over QMP), which the backing file and
# the queue counters must show.
expect_rc 2 "missing device name" "$T" qemu-args
expect_rc 2 "invalid form 'dev': expected generic or blkio" "$T" qemu-args m0 --form dev
expect_rc 2 "invalid mode 'x': expected pa or va" "$T" qemu-args m0 --mode x
expect_rc 2 "invalid memory 'shared'" "$T" qemu-args m0 --memory shared
expect_rc 2 "unknown option '--frob'" "$T" qemu-args m0 --frob
expect_rc 7 "no vdpa device named nope" "$T" qemu-args nope
expect_rc 1 "m0 is bound to virtio_vdpa \(this host's /dev/vdX\), not vhost_vdpa" "$T" qemu-args m0
grep -q "hint: vdpa-blk-mgmt bind m0 vhost" <<< "$ERR" || fail "qemu-args m0: no hint: $ERR"
expect_rc 0 "" "$T" create qn0 --size 16M --bind none
expect_rc 1 "qn0 is bound to no driver" "$T" qemu-args qn0
expect_rc 0 "" "$T" destroy qn0

thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled)
shmem_thp=$(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled)
expect_eq "vhost_vdpa max_iotlb_entries" \
	"$(cat /sys/module/vhost_vdpa/parameters/max_iotlb_entries)" 2048
log "THP: $thp; shmem: $shmem_thp"
qimg=/scratch/mgmt-q.img
QMEM=$((64 << 20))
# PA mode pins guest RAM + what QEMU maps besides (the tool asks for 256M)
QLOCK=$(((QMEM >> 10) + (256 << 10)))
QMP_DIR=$(mktemp -d /tmp/mgmt-qmp.XXXXXX)
defer rm -rf "$QMP_DIR"
# a QEMU left by a failure would hold its device (destroy waits for it)
QPID=
_qemu_kill()
{
	[ -z "$QPID" ] || kill "$QPID" 2> /dev/null
	return 0
}
defer _qemu_kill

# qemu_with NAME ARGS...: QEMU (TCG, paused, no guest) with ARGS, the
# tool's output word by word; realizes the devices, runs $QMP_IO (an HMP
# command) if set, quits over QMP and must exit 0 within 120 s.
qemu_with()
{
	local name=$1 sock rc=0 reply fd

	shift
	# not on the results directory: 9p has no sockets
	sock=$QMP_DIR/$name.qmp
	rm -f "$sock" "$RESULTS_DIR/$name.pid"
	(ulimit -l "$QLOCK" && exec timeout -k 5 120 qemu-system-x86_64 "$@" \
		-machine accel=tcg -nodefaults -display none -S \
		-pidfile "$RESULTS_DIR/$name.pid" -qmp "unix:$sock,server=on,wait=off") \
		< /dev/null > "$RESULTS_DIR/$name.out" 2> "$RESULTS_DIR/$name.qemu" &
	QPID=$!
	reply=$(qmp "$sock" '{"execute": "query-status"}') ||
		{ cat "$RESULTS_DIR/$name.qemu" >&2; fail "$name: no QMP"; }
	grep -q '"status": "prelaunch"' <<< "$reply" || fail "$name: QMP: $reply"
	# QEMU holds the vhost-vdpa device open
	for fd in "/proc/$(cat "$RESULTS_DIR/$name.pid")/fd/"*; do
		[ "$(readlink "$fd")" = "$QNODE" ] && break
	done
	[ "$(readlink "$fd")" = "$QNODE" ] || fail "$name: QEMU does not hold $QNODE open"
	if [ -n "${QMP_IO:-}" ]; then
		reply=$(qmp "$sock" "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"$QMP_IO\"}}")
		log "$name: $QMP_IO: $reply"
		# qemu-io reports on QEMU's standard output: no error here
		[ "$(tail -n 1 <<< "$reply")" = '{"return": ""}' ] ||
			fail "$name: qemu-io: $reply"
	fi
	qmp "$sock" '{"execute": "quit"}' > /dev/null
	wait "$QPID" || rc=$?
	QPID=
	sed 's/^/  | /' "$RESULTS_DIR/$name.out" "$RESULTS_DIR/$name.qemu" >&2
	[ "$rc" = 0 ] || fail "$name: QEMU exited with status $rc"
	[ -z "${QMP_IO:-}" ] ||
		grep -q '^wrote 65536/65536 bytes at offset 1048576$' "$RESULTS_DIR/$name.out" ||
		fail "$name: qemu-io did not write"
	# nothing on stderr, but what the tool warned might happen
	if [ -n "$QWARNED" ]; then
		! grep -v "$QWARNED" "$RESULTS_DIR/$name.qemu" ||
			fail "$name: QEMU complained, and not as the tool warned"
	else
		[ ! -s "$RESULTS_DIR/$name.qemu" ] || fail "$name: QEMU complained"
	fi
}

for mode in pa va; do
	va=()
	[ "$mode" = va ] && va=(--use-va)
	truncate -s 0 "$qimg" && truncate -s 16M "$qimg" || fail "truncate failed"
	expect_rc 0 "" "$T" create q0 --backing "$qimg" --bind vhost "${va[@]}"
	QNODE=$OUT
	other=va
	[ "$mode" = va ] && other=pa
	expect_rc 1 "q0 is in ${mode^^} mode .*, not ${other^^} mode" \
		"$T" qemu-args q0 --mode "$other"

	# generic: the whole device; its default memory, then the trap
	expect_rc 0 "" "$T" show q0
	grep -q "qemu: *'vdpa-blk-mgmt qemu-args q0' prints QEMU's options (${mode^^} mode)" <<< "$OUT" ||
		fail "show q0: no qemu line: $OUT"
	expect_rc 0 "" "$T" qemu-args q0 --memory-size 64M
	gen=$OUT
	if [ "$mode" = pa ]; then
		expect_eq "pa generic" "$gen" "-m 64M
-device vhost-vdpa-device-pci,vhostdev=$QNODE,id=vbs-q0"
		# root's RLIMIT_MEMLOCK is far below 64M + 256M
		grep -q "warning: PA mode pins all guest RAM and counts it in RLIMIT_MEMLOCK" <<< "$ERR" ||
			fail "pa: no RLIMIT_MEMLOCK warning: $ERR"
		grep -q "hint: ulimit -l $QLOCK " <<< "$ERR" || fail "pa: no ulimit hint: $ERR"
		expect_rc 0 "" bash -c "ulimit -l $QLOCK && exec $T qemu-args q0 --memory-size 64M"
		[ -z "$ERR" ] || fail "pa generic: warnings with the memory locked: $ERR"
		expect_rc 0 "" "$T" qemu-args q0 --memory-size 64M --memory memfd --json
		jq_eq "pa memfd iotlb_entries" "$OUT" .iotlb_entries $((16384 + 64))
		if grep -q '\[never\]' <<< "$shmem_thp"; then
			grep -q "warning: PA mode on memfd RAM of 4K pages can take up to 16448 IOTLB entries .*max_iotlb_entries (2048): if it does, QEMU stops with 'vhost vdpa map fail!'" <<< "$ERR" ||
				fail "pa memfd: no IOTLB warning: $ERR"
			grep -q "hint: load vhost_vdpa with max_iotlb_entries=17408 " <<< "$ERR" ||
				fail "pa memfd: no max_iotlb_entries hint: $ERR"
			jq_eq "pa memfd warnings" "$OUT" '.warnings | length' 2
		fi
	else
		expect_eq "va generic" "$gen" "-m 64M
-object memory-backend-memfd,id=vbs-mem,size=64M,share=on
-machine memory-backend=vbs-mem
-device vhost-vdpa-device-pci,vhostdev=$QNODE,id=vbs-q0"
		[ -z "$ERR" ] || fail "va generic: warnings: $ERR"
		expect_rc 0 "" "$T" qemu-args q0 --memory private --memory-size 64M
		grep -q "warning: VA mode with private RAM maps nothing" <<< "$ERR" ||
			fail "va private: no warning: $ERR"
		grep -q "hint: use --memory memfd" <<< "$ERR" || fail "va private: no hint: $ERR"
	fi
	# shellcheck disable=SC2086 # the tool's options, word by word
	QWARNED='' QMP_IO='' qemu_with "$mode-generic" $gen

	# blkio: a block node in QEMU, written through at once
	expect_rc 0 "" bash -c "ulimit -l $QLOCK && exec $T qemu-args q0 --form blkio --memory-size 64M"
	blk=$OUT
	log "$mode blkio: $(tr '\n' ' ' <<< "$blk") ${ERR:+(stderr: $ERR)}"
	grep -qx -- "-blockdev driver=virtio-blk-vhost-vdpa,node-name=vbs-q0,path=$QNODE,cache.direct=on" <<< "$blk" &&
		grep -qx -- "-device virtio-blk-pci,drive=vbs-q0,id=vbs-q0" <<< "$blk" &&
		grep -qx -- "-object memory-backend-memfd,id=vbs-mem,size=64M,share=on" <<< "$blk" ||
		fail "$mode blkio: $blk"
	w0=$(bsw_stat q0 write_bytes)
	# shellcheck disable=SC2086
	QWARNED=
	grep -q "Failed to add blkio mem region" <<< "$ERR" &&
		QWARNED="Failed to add blkio mem region"
	QWARNED=$QWARNED QMP_IO='qemu-io -d vbs-q0/virtio-backend \"write -P 0x5a 1M 64k\"' \
		qemu_with "$mode-blkio" $blk
	w1=$(bsw_stat q0 write_bytes)
	[ $((w1 - w0)) -ge 65536 ] || fail "$mode blkio: the device wrote $((w1 - w0)) bytes"
	cmp -n 65536 -i $((1 << 20)):0 "$qimg" \
		<(python3 -c 'import sys; sys.stdout.buffer.write(b"\x5a" * 65536)') ||
		fail "$mode blkio: the backing file does not hold the pattern"
	expect_rc 0 "" "$T" destroy q0
done
rm -f "$qimg"

# --- destroy ------------------------------------------------------------------------------------------------
for n in m0 f0 a0; do
	expect_rc 0 "" "$T" destroy "$n"
	[ ! -e "/sys/bus/vdpa/devices/$n" ] || fail "$n still exists"
	[ ! -e "/sys/kernel/config/vdpa_blk_sw/$n" ] || fail "configfs item $n still exists"
done
expect_rc 0 "" "$T" list --json
jq_eq "no devices left" "$OUT" '.devices | length' 0
echo 0 > /sys/bus/vdpa/drivers_autoprobe
