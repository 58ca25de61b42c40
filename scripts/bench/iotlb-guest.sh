#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# In the lab VM: what set_map() costs vdpa_blk_sw for a guest of
# IOTLB_MIB MiB (default 4096) in PA mode, through iotlb_bench, for each
# module in IOTLB_MODULES (default "repo": the one the lab installed; a
# path names another build of vdpa_blk_sw.ko, e.g. an older commit's),
# interleaved over IOTLB_REPS repetitions (default 3).  Guest memory is
# THP-backed anonymous memory and 2 MiB hugetlb pages, each mapped in one
# IOTLB batch (as QEMU does) and, for THP, with plain updates too (one
# set_map() per physically contiguous run).  Prints one iotlb_bench line
# per run, prefixed with the module.
#
# Needs guest RAM above twice IOTLB_MIB (vm-run --mem 10G for 4096).
set -euo pipefail

mib=${IOTLB_MIB:-4096}
reps=${IOTLB_REPS:-3}
read -r -a modules <<< "${IOTLB_MODULES:-repo}"
bench=/repo/selftests/vhost_vdpa/iotlb_bench
vdpa=/sys/bus/vdpa

ulimit -l unlimited
modprobe -a vdpa vringh vhost_iotlb vhost_vdpa
echo always > /sys/kernel/mm/transparent_hugepage/enabled

one()
{
	local mod=$1 kind=$2 batch=${3:-} dev

	if [ "$mod" = repo ]; then
		modprobe vdpa_blk_sw
	else
		insmod "$mod"
	fi
	vdpa dev add mgmtdev vdpasim_blk-sw name ib0
	echo vhost_vdpa > "$vdpa/devices/ib0/driver_override"
	echo ib0 > "$vdpa/drivers_probe"
	dev=/dev/$(basename "$(ls -d "$vdpa"/devices/ib0/vhost-vdpa-*)")
	if [ "$kind" = hugetlb ]; then
		echo $((mib / 2 + 16)) > /proc/sys/vm/nr_hugepages
	fi
	# shellcheck disable=SC2086
	echo "$(basename "$mod") $("$bench" -d "$dev" -s "$mib" -k "$kind" -n 50 $batch)"
	echo 0 > /proc/sys/vm/nr_hugepages
	vdpa dev del ib0
	rmmod vdpa_blk_sw
}

for rep in $(seq "$reps"); do
	for kind in "thp -B" "hugetlb -B" "thp"; do
		for mod in "${modules[@]}"; do
			# shellcheck disable=SC2086
			one "$mod" $kind
		done
	done
	echo "# repetition $rep done"
done
