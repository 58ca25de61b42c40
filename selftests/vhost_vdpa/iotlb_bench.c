// SPDX-License-Identifier: GPL-2.0
/*
 * iotlb_bench: what IOTLB updates cost a vDPA device through
 * /dev/vhost-vdpa-N, as a VMM maps guest memory: the time to map and unmap
 * one region of guest RAM, and of a small map/unmap pair while it is
 * mapped (each a set_map() of the whole address space for a device that
 * implements set_map, as vdpa_sim and vdpa_blk_sw do).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "vdpa_drv.h"

#define SMALL_IOVA	(1ULL << 46)

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-d /dev/vhost-vdpa-N] [-s MiB] [-k 4k|thp|hugetlb]\n"
		"          [-n pairs] [-B]\n"
		"  -d  device (default $VDPA_DEV or /dev/vhost-vdpa-0)\n"
		"  -s  guest memory to map in MiB (default 1024)\n"
		"  -k  its pages: 4k (no THP), thp (MADV_HUGEPAGE, default) or\n"
		"      hugetlb (2 MiB, needs nr_hugepages)\n"
		"  -n  small map/unmap pairs timed while it is mapped (default 100)\n"
		"  -B  map it in one IOTLB batch (one set_map), as QEMU does;\n"
		"      default: a plain update (one set_map per contiguous run in\n"
		"      PA mode)\n",
		argv0);
}

static double ms_since(uint64_t t0)
{
	return (vd_now_ns() - t0) / 1e6;
}

int main(int argc, char **argv)
{
	const char *path = getenv("VDPA_DEV") ?: "/dev/vhost-vdpa-0";
	const char *kind = "thp";
	unsigned int pairs = 100, i;
	size_t size = 1024UL << 20;
	double map_ms, unmap_ms, inc_map = 0, inc_unmap = 0;
	struct vd_dev *dev;
	bool batch = false;
	uint64_t t0;
	uint8_t *mem, *small;
	int opt, flags, ret;

	while ((opt = getopt(argc, argv, "d:s:k:n:Bh")) != -1) {
		switch (opt) {
		case 'd': path = optarg; break;
		case 's': size = strtoull(optarg, NULL, 0) << 20; break;
		case 'k': kind = optarg; break;
		case 'n': pairs = strtoul(optarg, NULL, 0); break;
		case 'B': batch = true; break;
		default: usage(argv[0]); return opt == 'h' ? 0 : 2;
		}
	}
	if (!size || (strcmp(kind, "4k") && strcmp(kind, "thp") &&
		      strcmp(kind, "hugetlb"))) {
		usage(argv[0]);
		return 2;
	}

	ret = vd_open(path, &dev);
	if (ret) {
		fprintf(stderr, "iotlb_bench: %s: %s\n", path, vd_last_error);
		return 1;
	}
	if (batch && !vd_has_backend(dev, VHOST_BACKEND_F_IOTLB_BATCH)) {
		fprintf(stderr, "iotlb_bench: no IOTLB batching\n");
		return 1;
	}

	flags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (!strcmp(kind, "hugetlb"))
		flags |= MAP_HUGETLB;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
	small = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || small == MAP_FAILED) {
		perror("iotlb_bench: mmap");
		return 1;
	}
	madvise(mem, size, strcmp(kind, "thp") ? MADV_NOHUGEPAGE :
						 MADV_HUGEPAGE);
	/* Fault everything in first: the timings are the IOTLB's. */
	memset(mem, 0x5a, size);
	memset(small, 0x5a, 4096);

	t0 = vd_now_ns();
	if (batch)
		ret = vd_iotlb_batch(dev, true, false);
	if (!ret)
		ret = vd_iotlb_update(dev, 0, size, (uintptr_t)mem,
				      VHOST_ACCESS_RW);
	if (!ret && batch)
		ret = vd_iotlb_batch(dev, false, false);
	map_ms = ms_since(t0);
	if (ret) {
		fprintf(stderr, "iotlb_bench: map: %s\n", vd_last_error);
		return 1;
	}

	for (i = 0; i < pairs; i++) {
		t0 = vd_now_ns();
		ret = vd_iotlb_update(dev, SMALL_IOVA, 4096, (uintptr_t)small,
				      VHOST_ACCESS_RW);
		inc_map += ms_since(t0);
		if (ret) {
			fprintf(stderr, "iotlb_bench: small map: %s\n",
				vd_last_error);
			return 1;
		}
		t0 = vd_now_ns();
		ret = vd_iotlb_invalidate(dev, SMALL_IOVA, 4096);
		inc_unmap += ms_since(t0);
		if (ret) {
			fprintf(stderr, "iotlb_bench: small unmap: %s\n",
				vd_last_error);
			return 1;
		}
	}

	t0 = vd_now_ns();
	ret = vd_iotlb_invalidate(dev, 0, size);
	unmap_ms = ms_since(t0);
	if (ret) {
		fprintf(stderr, "iotlb_bench: unmap: %s\n", vd_last_error);
		return 1;
	}
	printf("iotlb_bench: dev=%s size_mib=%zu kind=%s batch=%d map_ms=%.1f small_map_us=%.1f small_unmap_us=%.1f unmap_ms=%.1f\n",
	       path, size >> 20, kind, batch, map_ms,
	       pairs ? inc_map * 1000 / pairs : 0.0,
	       pairs ? inc_unmap * 1000 / pairs : 0.0, unmap_ms);
	vd_close(dev);
	return 0;
}
