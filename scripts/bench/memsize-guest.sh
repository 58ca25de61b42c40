#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Where an idle device's memory goes (issue 18): run in the lab guest by
# scripts/bench-memsize.  For each count N of MEMSIZE_COUNTS (default
# "1 64") it creates N default devices (vdpa dev add mgmtdev
# vdpasim_blk-sw), binds them all to virtio_vdpa, unbinds them (a driver
# reset) and deletes them.  After each step it records /proc/meminfo,
# /proc/slabinfo and /proc/vmallocinfo and writes the change per device
# since the start, with the request slots the queues hold (sysfs).  Since
# Linux 5.x, kmalloc() beyond two pages counts in Slab (SUnreclaim) too.
# The step "created" is this module's alone; "bound" adds virtio_vdpa,
# virtio_blk and blk-mq (and, since the slots come at DRIVER_OK, the
# slots: the vbs_req slab cache, 16 per queue while idle); "unbound" is
# what a reset leaves.
# Output: $RESULTS_DIR/memsize/N.md.  MEMSIZE_STAGE="attr=value ..."
# stages parameters for every device (configfs) first.

. /repo/selftests/lib.sh
. /repo/selftests/blk_sw.sh

out=$RESULTS_DIR/memsize
mkdir -p "$out"
counts=${MEMSIZE_COUNTS:-1 64}

bsw_setup

# settle: let deferred frees (RCU, workqueues) happen, drop clean caches
settle()
{
	sync
	echo 3 > /proc/sys/vm/drop_caches
	sleep 2
	echo 3 > /proc/sys/vm/drop_caches
}

# snap NAME: record the state after step NAME
snap()
{
	local d=$work/$1

	settle
	mkdir -p "$d"
	cp /proc/meminfo /proc/slabinfo "$d/"
	awk '{ c = $3; sub(/\+0x.*/, "", c); v[c] += $2 }
	     END { for (c in v) print c, v[c] }' /proc/vmallocinfo > "$d/vmalloc"
	find /proc -maxdepth 1 -name '[0-9]*' | wc -l > "$d/tasks"
	cat "$VDPA_SYSFS"/devices/*/blk_sw_q*/slots 2> /dev/null |
		awk '{ s += $1 } END { print s + 0 }' > "$d/slots"
	phases+=("$1")
}

mi()
{
	awk -v k="$2:" '$1 == k { print $2 }' "$work/$1/meminfo"
}

# report N: the meminfo, slab and vmalloc tables of one run
report()
{
	local n=$1 p k b v

	echo "# $n device(s): change since \"base\", KiB per device"
	echo
	echo "MemAvailable and MemFree: KiB lost; tasks: threads added; slots:"
	echo "request slots held (all queues), per device."
	echo
	printf '| step |'
	for k in MemAvailable MemFree Slab SUnreclaim VmallocUsed Percpu \
		 KernelStack tasks slots; do
		printf ' %s |' "$k"
	done
	echo
	echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
	for p in "${phases[@]:1}"; do
		printf '| %s |' "$p"
		for k in MemAvailable MemFree; do
			b=$(mi base "$k") v=$(mi "$p" "$k")
			awk -v a="$b" -v c="$v" -v n="$n" \
				'BEGIN { printf " %.1f |", (a - c) / n }'
		done
		for k in Slab SUnreclaim VmallocUsed Percpu KernelStack; do
			b=$(mi base "$k") v=$(mi "$p" "$k")
			awk -v a="$b" -v c="$v" -v n="$n" \
				'BEGIN { printf " %.1f |", (c - a) / n }'
		done
		awk -v a="$(cat "$work/base/tasks")" -v c="$(cat "$work/$p/tasks")" \
			-v n="$n" 'BEGIN { printf " %.2f |", (c - a) / n }'
		awk -v c="$(cat "$work/$p/slots")" -v n="$n" \
			'BEGIN { printf " %.0f |\n", c / n }'
	done
	echo
	for p in "${phases[@]:1}"; do
		echo "## $p: slab caches (bytes in use), vmalloc callers; KiB per device"
		echo
		echo '| what | KiB/device |'
		echo '|---|---:|'
		awk -v n="$n" '
			FNR == 1 { f++ }
			/^#|^slabinfo/ { next }
			{ u = $2 * $4; if (f == 1) a[$1] = u; else d[$1] = u - a[$1] }
			END { for (c in d) if (d[c] / n >= 2048 || d[c] / n <= -2048)
				printf "| slab %s | %.1f |\n", c, d[c] / n / 1024 }' \
			"$work/base/slabinfo" "$work/$p/slabinfo" | sort -t'|' -k3 -rn
		awk -v n="$n" '
			FNR == 1 { f++ }
			{ if (f == 1) a[$1] = $2; else d[$1] = $2 - a[$1] }
			END { for (c in d) if (d[c] / n >= 2048 || d[c] / n <= -2048)
				printf "| vmalloc %s | %.1f |\n", c, d[c] / n / 1024 }' \
			"$work/base/vmalloc" "$work/$p/vmalloc" | sort -t'|' -k3 -rn
		echo
	done
}

# Warm up: the first device of a boot creates caches and kernfs
# directories that stay; they are no device's cost.
vdpa dev add mgmtdev "$BSW_MGMTDEV" name warm || fail "cannot create warm"
vdpa_bind_virtio warm > /dev/null || exit
vdpa dev del warm || fail "cannot delete warm"

for n in $counts; do
	work=/scratch/memsize-$n
	rm -rf "$work"
	phases=()
	names=()
	for i in $(seq 0 $((n - 1))); do
		names+=("mem$i")
	done
	snap base
	for name in "${names[@]}"; do
		# shellcheck disable=SC2086 # MEMSIZE_STAGE is a list
		[ -z "${MEMSIZE_STAGE:-}" ] || bsw_stage "$name" $MEMSIZE_STAGE
		vdpa dev add mgmtdev "$BSW_MGMTDEV" name "$name" ||
			fail "cannot create $name"
	done
	snap created
	for name in "${names[@]}"; do
		vdpa_bind_virtio "$name" > /dev/null || exit
	done
	snap bound
	for name in "${names[@]}"; do
		vdpa_unbind "$name"
	done
	snap unbound
	for name in "${names[@]}"; do
		vdpa dev del "$name" || fail "cannot delete $name"
		[ -z "${MEMSIZE_STAGE:-}" ] || rmdir "$BSW_CFS/$name"
	done
	snap deleted
	report "$n" > "$out/$n.md"
done
