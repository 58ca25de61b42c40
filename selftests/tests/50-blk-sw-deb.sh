#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Debian packages (make deb), installed as a new user would: dpkg -i
# both, DKMS builds vdpa_blk_sw.ko and vringh.ko against the lab kernel's
# headers (vringh.c from the guest root's linux-source-6.12); modprobe,
# vdpa-blk-mgmt create on a file, fio verify on its /dev/vdX; then
# /etc/vdpa-blk.conf applied twice by the installed unit's commands (the
# lab has no systemd); then dpkg --purge both: no module, no DKMS tree, no
# file outside dpkg's lists may remain (the watched directories must list
# what they listed before). The DKMS build takes most of the time (44
# minutes under TCG on a host loaded with other lab VMs, one make job
# then). See Documentation/packaging.rst.
# timeout=3300

# The lab's own vdpa_blk_sw.ko and vringh.ko are hidden for the test (a
# writable overlay on the module tree, with the build link the headers
# package makes), so every module loaded comes from the package. Skips
# when the packages are not in $VDPA_BLK_SW_DEBS (/repo/build/deb: "make
# deb" on the host; make check builds them) or the running kernel's
# headers are not installed (the debug kernel).

. "$(dirname "$0")/../lib.sh"

require_root
require_cmd dpkg dkms fio jq
debs=${VDPA_BLK_SW_DEBS:-$REPO/build/deb}
kver=$(uname -r)
dkms_deb=$(find "$debs" -maxdepth 1 -name 'vdpa-blk-sw-dkms_*_all.deb' 2> /dev/null | sort | tail -n 1)
mgmt_deb=$(find "$debs" -maxdepth 1 -name 'vdpa-blk-mgmt_*_amd64.deb' 2> /dev/null | sort | tail -n 1)
if [ -z "$dkms_deb" ] || [ -z "$mgmt_deb" ]; then
	skip "no packages in $debs: run make deb on the host"
fi
[ -d "/usr/src/linux-headers-$kver" ] || skip "no linux-headers-$kver in the guest root"
if dpkg -s vdpa-blk-sw-dkms > /dev/null 2>&1 || dpkg -s vdpa-blk-mgmt > /dev/null 2>&1; then
	fail "a package is already installed"
fi
log "packages: $(basename "$dkms_deb") $(basename "$mgmt_deb")"

mods=/lib/modules/$kver
T=/usr/sbin/vdpa-blk-mgmt
# The directories the packages and DKMS write to (/lib/... as dpkg names them).
watched=(/etc /lib/systemd /usr/sbin /usr/src /usr/share/bash-completion
	 /usr/share/doc /usr/share/man/man8 /var/lib/dkms /var/lib/systemd "$mods")

# snapshot FILE: every path and its type under the watched directories
snapshot()
{
	find "${watched[@]}" -printf '%p %y\n' 2> /dev/null | sort > "$1"
}

# Every vdpa module (and vringh) out, so that the package's modules load.
unload_all()
{
	local m

	for m in vdpa_blk_sw vdpa_sim_blk vdpa_sim_net vdpa_sim vringh; do
		[ ! -e "/sys/module/$m" ] || rmmod "$m" || return 1
	done
}
unload_all || fail "cannot unload the lab's vdpa modules: $(lsmod | grep -E 'vdpa|vringh')"

# A writable module tree without the lab's vdpa_blk_sw.ko and vringh.ko,
# with the build link of linux-headers-$kver (the lab's module tree,
# mounted over the root's, hides it); removed at exit.
ov=/scratch/deb-modules
mkdir -p "$ov/upper" "$ov/work"
mount -t overlay overlay -o "lowerdir=$mods,upperdir=$ov/upper,workdir=$ov/work" "$mods" ||
	fail "cannot mount a writable overlay on $mods"
defer rm -rf "$ov"
defer umount "$mods"
rm -f "$mods/updates/vdpa_blk_sw.ko" "$mods/updates/vringh.ko"
ln -sfn "/usr/src/linux-headers-$kver" "$mods/build"
depmod -a "$kver" || fail "depmod failed"
modinfo vdpa_blk_sw > /dev/null 2>&1 && fail "vdpa_blk_sw still available before the install"
modinfo vringh > /dev/null 2>&1 && fail "vringh still available before the install"

_cleanup()
{
	local d

	for d in /sys/bus/vdpa/devices/*; do
		[ -e "$d" ] && "$T" destroy "$(basename "$d")"
	done
	unload_all
	dpkg --purge vdpa-blk-mgmt vdpa-blk-sw-dkms > /dev/null 2>&1
	return 0
}
defer _cleanup

snapshot before.txt
log "[$SECONDS s] $(wc -l < before.txt) paths in the watched directories"

# --- install: DKMS builds the module for the running kernel ----------------------------------
t0=$SECONDS
dpkg -i "$dkms_deb" "$mgmt_deb" > "$RESULTS_DIR/dpkg-install.log" 2>&1 || {
	tail -n 40 "$RESULTS_DIR/dpkg-install.log" >&2
	cat /var/lib/dkms/vdpa-blk-sw/*/build/make.log >&2 2> /dev/null
	fail "dpkg -i failed (log: dpkg-install.log)"
}
log "[$((SECONDS - t0)) s] dpkg -i done (DKMS build included)"
version=$(dpkg-query -W -f '${Version}' vdpa-blk-sw-dkms)
status=$(dkms status "vdpa-blk-sw/$version" -k "$kver")
log "dkms status: $status"
grep -q ': installed' <<< "$status" || fail "DKMS did not install vdpa-blk-sw/$version for $kver"
cp "/var/lib/dkms/vdpa-blk-sw/$version/build/make.log" "$RESULTS_DIR/dkms-make.log" 2> /dev/null
for m in vdpa_blk_sw vringh; do
	path=$(modinfo -n "$m") || fail "modinfo $m: not installed by the package"
	case $path in
	"$mods/updates/dkms/$m.ko"*) log "$m: $path" ;;
	*) fail "$m resolves to $path, not DKMS's" ;;
	esac
done

# Every new file is the packages' (dpkg -L) or DKMS's (its tree, the
# installed modules, the module index) or deb-systemd-helper's state.
snapshot installed.txt
dpkg -L vdpa-blk-sw-dkms vdpa-blk-mgmt | sort -u > owned.txt
comm -13 before.txt installed.txt | while read -r path type; do
	if grep -qxF "$path" owned.txt; then
		continue
	fi
	case $path in
	/var/lib/dkms/vdpa-blk-sw|/var/lib/dkms/vdpa-blk-sw/*) ;;
	"$mods/updates/dkms"|"$mods/updates/dkms/"*) ;;
	/var/lib/systemd/deb-systemd-helper-*) ;;
	*) echo "$path ($type)" ;;
	esac
done > unowned.txt
[ ! -s unowned.txt ] || fail "files of nobody after the install: $(cat unowned.txt)"
[ -f /etc/vdpa-blk.conf ] || fail "/etc/vdpa-blk.conf not installed"
dpkg-query -W -f '${Conffiles}\n' vdpa-blk-mgmt | grep -q ' /etc/vdpa-blk.conf ' ||
	fail "/etc/vdpa-blk.conf is not a conffile"
[ -f /usr/share/man/man8/vdpa-blk-mgmt.8.gz ] || fail "no man page"
[ -f /usr/share/bash-completion/completions/vdpa-blk-mgmt ] || fail "no bash completion"
unit=/lib/systemd/system/vdpa-blk-mgmt.service
[ -f "$unit" ] || fail "no $unit"

# --- the module from the package, a device on a file, fio verify ----------------------------
modprobe -a vdpa_blk_sw virtio_vdpa vhost_vdpa virtio_blk || fail "modprobe failed"
for m in vdpa_blk_sw vringh; do
	[ -e "/sys/module/$m" ] || fail "$m not loaded"
done
"$T" --version >&2
img=/scratch/deb-data0.img
truncate -s 256M "$img"
defer rm -f "$img"
dev=$("$T" create data0 --backing "$img" --num-queues 2) || fail "vdpa-blk-mgmt create failed"
log "data0: $dev"
case $dev in /dev/vd*) ;; *) fail "create printed '$dev', not a /dev/vdX" ;; esac
expect_sectors=$((256 * 1024 * 1024 / 512))
[ "$(cat "/sys/block/${dev#/dev/}/size")" = "$expect_sectors" ] || fail "$dev is not 256 MiB"
fio_verify "$dev" 64M
log "$(fio_summary "$RESULTS_DIR/verify-$(basename "$dev").json")"
"$T" destroy data0 || fail "destroy data0 failed"

# --- /etc/vdpa-blk.conf at boot: the unit's commands ----------------------------------------
boot_img=/scratch/deb-boot0.img
truncate -s 32M "$boot_img"
defer rm -f "$boot_img"
cat >> /etc/vdpa-blk.conf <<EOF
[boot0]
backing = $boot_img
num_queues = 3
serial = deb-boot0
bind = virtio
EOF
# what systemd would run: ExecStartPre then ExecStart ("-": status ignored)
mapfile -t pre < <(sed -n 's/^ExecStartPre=//p' "$unit")
mapfile -t start < <(sed -n 's/^ExecStart=//p' "$unit")
[ ${#start[@]} = 1 ] || fail "$unit: ${#start[@]} ExecStart lines"
for c in "${pre[@]}"; do
	log "ExecStartPre: $c"
	eval "${c#-}" || [ "${c:0:1}" = - ] || fail "ExecStartPre $c failed"
done
log "ExecStart: ${start[0]}"
out=$(eval "${start[0]}") || fail "ExecStart ${start[0]} failed: $out"
log "$out"
grep -q '^boot0: created /dev/vd' <<< "$out" || fail "apply did not create boot0: $out"
json=$("$T" show boot0 --json) || fail "show boot0 failed"
[ "$(jq -r '.config.num_queues' <<< "$json")" = 3 ] || fail "boot0 num_queues: $json"
boot_dev=$(vdpa_blkdev boot0) || exit
[ "$(cat "/sys/block/${boot_dev#/dev/}/serial")" = deb-boot0 ] || fail "boot0 serial"
fio_verify "$boot_dev" 16M
out=$(eval "${start[0]}") || fail "second apply failed: $out"
[ "$out" = "boot0: unchanged" ] || fail "second apply: '$out', expected 'boot0: unchanged'"
"$T" destroy boot0 || fail "destroy boot0 failed"

# --- purge: nothing may be left ---------------------------------------------------------------
unload_all || fail "cannot unload the package's modules: $(lsmod | grep -E 'vdpa|vringh')"
t0=$SECONDS
dpkg --purge vdpa-blk-mgmt vdpa-blk-sw-dkms > "$RESULTS_DIR/dpkg-purge.log" 2>&1 || {
	tail -n 20 "$RESULTS_DIR/dpkg-purge.log" >&2
	fail "dpkg --purge failed"
}
log "[$((SECONDS - t0)) s] dpkg --purge done"
for p in vdpa-blk-sw-dkms vdpa-blk-mgmt; do
	! dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2> /dev/null | grep -q '^[a-z][^n]' ||
		fail "$p still known to dpkg: $(dpkg-query -W -f '${db:Status-Abbrev}' "$p")"
done
modinfo vdpa_blk_sw > /dev/null 2>&1 && fail "vdpa_blk_sw still installed: $(modinfo -n vdpa_blk_sw)"
modinfo vringh > /dev/null 2>&1 && fail "vringh still installed: $(modinfo -n vringh)"
[ ! -e /var/lib/dkms/vdpa-blk-sw ] || fail "/var/lib/dkms/vdpa-blk-sw left behind"
find /lib/modules -name 'vdpa_blk_sw.ko*' | grep . && fail "a vdpa_blk_sw.ko left behind"
snapshot after.txt
if ! diff -u before.txt after.txt > purge.diff; then
	cat purge.diff >&2
	fail "the watched directories differ after the purge (diff above)"
fi
log "purge: $(wc -l < before.txt) paths, as before the install"
