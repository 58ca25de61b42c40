// SPDX-License-Identifier: GPL-2.0
/*
 * vdpa_bench: closed-loop benchmark of a virtio-blk vDPA device through
 * /dev/vhost-vdpa-N, using the vdpa_drv library.  One thread keeps @depth
 * requests in flight on each of @queues virtqueues and reports IOPS,
 * throughput and completion latency.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdpa_drv.h"

#define LAT_BUCKETS	1000000	/* 1 us each up to 1 s, last one is "more" */
#define IO_TIMEOUT_MS	10000

enum mode { M_READ, M_WRITE, M_RANDREAD, M_RANDWRITE };

static const char *const mode_names[] = {
	"read", "write", "randread", "randwrite",
};

struct bench {
	struct vd_dev *dev;
	enum mode mode;
	unsigned int depth, bs, queues, nsegs, runtime;
	bool interrupts;
	uint64_t span_sectors, next_sector, rng;
	uint64_t ios, errors;
	uint64_t lat_sum_ns;
	uint32_t *lat;
	struct vd_io *reqs[VD_MAX_VQS];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-d /dev/vhost-vdpa-N] [-m read|write|randread|randwrite]\n"
		"          [-b block_size] [-q depth] [-Q queues] [-t seconds]\n"
		"          [-s span_bytes] [-n descriptors_per_request] [-p]\n"
		"  -d  device (default $VDPA_DEV or /dev/vhost-vdpa-0)\n"
		"  -m  access pattern (default randread)\n"
		"  -b  bytes per request, multiple of 512 (default 4096)\n"
		"  -q  requests in flight per queue (default 16)\n"
		"  -Q  virtqueues used (default 1)\n"
		"  -t  runtime in seconds (default 10)\n"
		"  -s  bytes of the disk to touch from sector 0 (default all)\n"
		"  -n  data descriptors per request (default: fewest allowed)\n"
		"  -p  busy-poll used rings, no interrupts (default: wait for\n"
		"      used-buffer interrupts on the call eventfds)\n",
		argv0);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void prep(struct bench *b, struct vd_io *io)
{
	uint64_t blocks = b->span_sectors / (b->bs >> VD_SECTOR_SHIFT);
	uint64_t sector;

	if (b->mode == M_RANDREAD || b->mode == M_RANDWRITE) {
		sector = (xorshift(&b->rng) % blocks) *
			 (b->bs >> VD_SECTOR_SHIFT);
	} else {
		sector = b->next_sector;
		b->next_sector += b->bs >> VD_SECTOR_SHIFT;
		if (b->next_sector + (b->bs >> VD_SECTOR_SHIFT) >
		    b->span_sectors)
			b->next_sector = 0;
	}
	vd_io_init(io, (b->mode == M_READ || b->mode == M_RANDREAD) ?
		   VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, sector, io->buf,
		   b->bs, b->nsegs);
}

static void account(struct bench *b, struct vd_io *io)
{
	uint64_t ns = io->t_done_ns - io->t_submit_ns;
	uint64_t us = ns / 1000;

	if (io->status != VIRTIO_BLK_S_OK)
		b->errors++;
	b->ios++;
	b->lat_sum_ns += ns;
	b->lat[us < LAT_BUCKETS ? us : LAT_BUCKETS - 1]++;
}

static double percentile(const struct bench *b, double p)
{
	uint64_t want = (uint64_t)(b->ios * p), seen = 0;
	unsigned int i;

	for (i = 0; i < LAT_BUCKETS; i++) {
		seen += b->lat[i];
		if (seen > want)
			return i;
	}
	return LAT_BUCKETS;
}

static int setup(struct bench *b, const char *path)
{
	struct vd_region *ring, *data;
	unsigned int q, i, qsize;
	struct vd_dev *dev;
	uint32_t seg_max, size_max;
	int ret;

	ret = vd_open(path, &b->dev);
	if (ret)
		return ret;
	dev = b->dev;
	ret = vd_negotiate(dev, VD_DEFAULT_FEATURES);
	if (ret)
		return ret;
	if (b->queues > dev->nvqs || b->queues > VD_MAX_VQS) {
		fprintf(stderr, "vdpa_bench: %u queues asked, device has %u\n",
			b->queues, dev->nvqs);
		return -EINVAL;
	}
	size_max = le32toh(dev->cfg.size_max);
	seg_max = le32toh(dev->cfg.seg_max);
	if (!b->nsegs) {
		b->nsegs = 1;
		if (vd_has_feature(dev, VIRTIO_BLK_F_SIZE_MAX) && size_max)
			b->nsegs = (b->bs + size_max - 1) / size_max;
	}
	if (vd_has_feature(dev, VIRTIO_BLK_F_SEG_MAX) && b->nsegs > seg_max) {
		fprintf(stderr, "vdpa_bench: %u descriptors per request, seg_max %u\n",
			b->nsegs, seg_max);
		return -EINVAL;
	}
	/* The smallest ring that holds depth requests: less memory to pin. */
	for (qsize = 64; qsize < b->depth * (b->nsegs + 2); qsize *= 2)
		;
	if (qsize > dev->vq_num_max) {
		fprintf(stderr, "vdpa_bench: depth %u x %u descriptors exceeds queue size %u\n",
			b->depth, b->nsegs + 2, dev->vq_num_max);
		return -EINVAL;
	}
	if (!b->span_sectors || b->span_sectors > vd_capacity(dev))
		b->span_sectors = vd_capacity(dev);
	if (b->span_sectors < b->bs >> VD_SECTOR_SHIFT) {
		fprintf(stderr, "vdpa_bench: disk smaller than one block\n");
		return -EINVAL;
	}
	ret = vd_region_create(dev, b->queues * vd_vq_mem_size(qsize), &ring);
	if (!ret)
		ret = vd_region_map(ring, 0x100000, VHOST_ACCESS_RW);
	if (!ret)
		ret = vd_region_create(dev, (size_t)b->queues * b->depth *
				       (b->bs + 4096) + 65536, &data);
	if (!ret)
		ret = vd_region_map(data, 0x40000000, VHOST_ACCESS_RW);
	if (ret == -EFAULT)
		fprintf(stderr, "vdpa_bench: IOTLB map failed; in PA mode the pinned pages count against ulimit -l\n");
	for (q = 0; !ret && q < b->queues; q++) {
		ret = vd_vq_setup(dev, q, qsize, ring);
		if (!ret) {
			vd_vq_set_interrupts(&dev->vqs[q], b->interrupts);
			dev->vqs[q].busy_poll = !b->interrupts;
		}
	}
	if (!ret)
		ret = vd_driver_ok(dev);
	if (ret)
		return ret;
	for (q = 0; q < b->queues; q++) {
		struct vd_io *ios = calloc(b->depth, sizeof(*ios));

		if (!ios)
			return -ENOMEM;
		b->reqs[q] = ios;
		for (i = 0; i < b->depth; i++) {
			ios[i].buf = vd_alloc(data, b->bs, 4096);
			if (!ios[i].buf)
				return -ENOMEM;
			vd_pattern_fill(ios[i].buf, b->bs, q, i);
		}
		for (i = 0; i < b->depth && !ret; i++) {
			prep(b, &ios[i]);
			ret = vd_submit(&dev->vqs[q], &ios[i]);
		}
		if (ret)
			return ret;
	}
	return 0;
}

static int run(struct bench *b)
{
	uint64_t end = vd_now_ns() + (uint64_t)b->runtime * 1000000000ULL;
	uint64_t last_progress = vd_now_ns();
	struct pollfd pfd[VD_MAX_VQS];
	struct vd_io *done[64];
	unsigned int q;
	int i, n, total;

	for (q = 0; q < b->queues; q++) {
		pfd[q].fd = b->dev->vqs[q].callfd;
		pfd[q].events = POLLIN;
		if (vd_kick(&b->dev->vqs[q]))
			return -EIO;
	}
	while (!stop) {
		uint64_t now = vd_now_ns();

		if (now >= end)
			break;
		total = 0;
		for (q = 0; q < b->queues; q++) {
			struct vd_vq *vq = &b->dev->vqs[q];

			n = vd_reap(vq, done, 64);
			for (i = 0; i < n && i < 64; i++) {
				account(b, done[i]);
				prep(b, done[i]);
				if (vd_submit(vq, done[i]))
					return -EIO;
			}
			if (n && vd_kick(vq))
				return -EIO;
			total += n;
		}
		if (total) {
			last_progress = now;
			continue;
		}
		if (now - last_progress > IO_TIMEOUT_MS * 1000000ULL) {
			fprintf(stderr, "vdpa_bench: no completion for %d ms\n",
				IO_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		if (!b->interrupts) {
			/* The device's worker may share this CPU. */
			sched_yield();
		} else {
			uint64_t cnt;

			if (poll(pfd, b->queues, 5) > 0)
				for (q = 0; q < b->queues; q++)
					if ((pfd[q].revents & POLLIN) &&
					    read(pfd[q].fd, &cnt,
						 sizeof(cnt)) < 0 &&
					    errno != EAGAIN)
						return -errno;
		}
	}
	return 0;
}

/*
 * End as a careful driver does: reap every request still in flight before
 * vd_close() resets the device; they are not counted. A reset with
 * requests in flight is legal, but qemu-storage-daemon's vduse-blk export
 * aborts on it (libvduse asserts that a queue it disables has none in
 * use), which took that peer down for the rest of a bench run.
 */
static int drain(struct bench *b)
{
	uint64_t deadline = vd_now_ns() + IO_TIMEOUT_MS * 1000000ULL;
	unsigned int q, left;

	for (;;) {
		left = 0;
		for (q = 0; q < b->queues; q++) {
			vd_reap(&b->dev->vqs[q], NULL, 0);
			left += b->dev->vqs[q].ninflight;
		}
		if (!left)
			return 0;
		if (vd_now_ns() > deadline) {
			fprintf(stderr, "vdpa_bench: %u requests still in flight after %d ms\n",
				left, IO_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		sched_yield();
	}
}

int main(int argc, char **argv)
{
	struct bench b = {
		.mode = M_RANDREAD, .depth = 16, .bs = 4096, .queues = 1,
		.runtime = 10, .rng = 0x2545f4914f6cdd1dULL, .interrupts = true,
	};
	const char *path = getenv("VDPA_DEV");
	uint64_t t0, span = 0;
	double secs;
	int opt, ret;
	unsigned int m;

	if (!path)
		path = "/dev/vhost-vdpa-0";
	while ((opt = getopt(argc, argv, "d:m:b:q:Q:t:s:n:ph")) != -1) {
		switch (opt) {
		case 'd':
			path = optarg;
			break;
		case 'm':
			for (m = 0; m < 4; m++)
				if (!strcmp(optarg, mode_names[m]))
					break;
			if (m == 4) {
				usage(argv[0]);
				return 2;
			}
			b.mode = m;
			break;
		case 'b':
			b.bs = strtoul(optarg, NULL, 0);
			break;
		case 'q':
			b.depth = strtoul(optarg, NULL, 0);
			break;
		case 'Q':
			b.queues = strtoul(optarg, NULL, 0);
			break;
		case 't':
			b.runtime = strtoul(optarg, NULL, 0);
			break;
		case 's':
			span = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			b.nsegs = strtoul(optarg, NULL, 0);
			break;
		case 'p':
			b.interrupts = false;
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (!b.bs || b.bs % VD_SECTOR_SIZE || !b.depth || !b.queues ||
	    !b.runtime) {
		usage(argv[0]);
		return 2;
	}
	b.span_sectors = span >> VD_SECTOR_SHIFT;
	b.lat = calloc(LAT_BUCKETS, sizeof(*b.lat));
	if (!b.lat)
		return 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ret = setup(&b, path);
	if (ret) {
		fprintf(stderr, "vdpa_bench: setup: %s (%s)\n", strerror(-ret),
			vd_last_error);
		vd_close(b.dev);
		for (m = 0; m < VD_MAX_VQS; m++)
			free(b.reqs[m]);
		free(b.lat);
		return 1;
	}
	t0 = vd_now_ns();
	ret = run(&b);
	secs = (vd_now_ns() - t0) / 1e9;
	if (!ret)
		ret = drain(&b);
	printf("dev=%s mode=%s bs=%u depth=%u queues=%u nsegs=%u wait=%s runtime=%.2fs\n",
	       path, mode_names[b.mode], b.bs, b.depth, b.queues, b.nsegs,
	       b.interrupts ? "interrupt" : "busy-poll", secs);
	printf("ios=%llu errors=%llu iops=%.0f MB/s=%.2f lat_mean_us=%.1f lat_p50_us=%.0f lat_p99_us=%.0f\n",
	       (unsigned long long)b.ios, (unsigned long long)b.errors,
	       b.ios / secs, b.ios * (double)b.bs / secs / 1e6,
	       b.ios ? b.lat_sum_ns / 1e3 / b.ios : 0.0,
	       percentile(&b, 0.50), percentile(&b, 0.99));
	vd_close(b.dev);
	for (m = 0; m < VD_MAX_VQS; m++)
		free(b.reqs[m]);
	free(b.lat);
	return ret || b.errors ? 1 : 0;
}
