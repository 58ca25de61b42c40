// SPDX-License-Identifier: GPL-2.0
/*
 * vdpa_drv: a small userspace virtio-blk driver for /dev/vhost-vdpa-N.
 * See vdpa_drv.h for the API and its layers.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/virtio_config.h>

#include "vdpa_drv.h"

#define VD_POISON_GAP		64
#define VD_WAIT_SLICE_MS	5

int vd_verbose;
char vd_last_error[256];

static int vd_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vd_last_error, sizeof(vd_last_error), fmt, ap);
	va_end(ap);
	if (vd_verbose)
		fprintf(stderr, "vdpa_drv: %s: %s\n", vd_last_error,
			strerror(err));
	return -err;
}

static int vd_ioctl(struct vd_dev *dev, unsigned long req, void *arg,
		    const char *name)
{
	if (ioctl(dev->fd, req, arg) < 0)
		return vd_err(errno, "%s: %s", dev->path, name);
	return 0;
}

#define VD_IOCTL(dev, req, arg) vd_ioctl(dev, req, arg, #req)

uint64_t vd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint64_t vd_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int vd_dut_args(int argc, char **argv, char *path, size_t path_len,
		char *mgmtdev, size_t mgmtdev_len)
{
	const char *env;
	int i, j;

	env = getenv("VDPA_DEV");
	if (env)
		snprintf(path, path_len, "%s", env);
	env = getenv("VDPA_MGMTDEV");
	if (env)
		snprintf(mgmtdev, mgmtdev_len, "%s", env);
	for (i = 1, j = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dev") && i + 1 < argc)
			snprintf(path, path_len, "%s", argv[++i]);
		else if (!strcmp(argv[i], "--mgmtdev") && i + 1 < argc)
			snprintf(mgmtdev, mgmtdev_len, "%s", argv[++i]);
		else
			argv[j++] = argv[i];
	}
	argv[j] = NULL;
	return j;
}

const char *vd_status_name(uint8_t status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK:
		return "OK";
	case VIRTIO_BLK_S_IOERR:
		return "IOERR";
	case VIRTIO_BLK_S_UNSUPP:
		return "UNSUPP";
	case 0xff:
		return "unwritten";
	default:
		return "invalid";
	}
}

/* ---- control ---------------------------------------------------------- */

bool vd_has_backend(const struct vd_dev *dev, unsigned int bit)
{
	return dev->backend_acked & (1ULL << bit);
}

bool vd_has_feature(const struct vd_dev *dev, unsigned int bit)
{
	return dev->features & (1ULL << bit);
}

uint64_t vd_capacity(const struct vd_dev *dev)
{
	return le64toh(dev->cfg.capacity);
}

int vd_get_status(struct vd_dev *dev, uint8_t *status)
{
	return VD_IOCTL(dev, VHOST_VDPA_GET_STATUS, status);
}

int vd_set_status(struct vd_dev *dev, uint8_t status)
{
	return VD_IOCTL(dev, VHOST_VDPA_SET_STATUS, &status);
}

int vd_read_config(struct vd_dev *dev)
{
	size_t len = dev->config_size;
	struct vhost_vdpa_config *c;
	int ret;

	if (len > sizeof(dev->cfg))
		len = sizeof(dev->cfg);
	c = calloc(1, sizeof(*c) + len);
	if (!c)
		return -ENOMEM;
	c->off = 0;
	c->len = len;
	ret = VD_IOCTL(dev, VHOST_VDPA_GET_CONFIG, c);
	if (!ret) {
		memset(&dev->cfg, 0, sizeof(dev->cfg));
		memcpy(&dev->cfg, c->buf, len);
	}
	free(c);
	return ret;
}

static int vd_backend_features(struct vd_dev *dev)
{
	uint64_t f;
	int ret;

	ret = VD_IOCTL(dev, VHOST_GET_BACKEND_FEATURES, &dev->backend_offered);
	if (ret)
		return ret;
	if (!(dev->backend_offered & (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2)))
		return vd_err(EOPNOTSUPP, "%s: no IOTLB_MSG_V2", dev->path);
	f = dev->backend_offered & VD_WANT_BACKEND_FEATURES;
	ret = VD_IOCTL(dev, VHOST_SET_BACKEND_FEATURES, &f);
	if (ret)
		return ret;
	dev->backend_acked = f;
	return 0;
}

int vd_open(const char *path, struct vd_dev **devp)
{
	struct vhost_vdpa_iova_range range;
	struct vd_dev *dev;
	uint16_t num;
	int ret;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	snprintf(dev->path, sizeof(dev->path), "%s", path);
	dev->fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev->fd < 0) {
		ret = vd_err(errno, "open %s", path);
		free(dev);
		return ret;
	}
	ret = VD_IOCTL(dev, VHOST_SET_OWNER, NULL);
	if (ret)
		goto err;
	ret = vd_backend_features(dev);
	if (ret)
		goto err;
	ret = VD_IOCTL(dev, VHOST_VDPA_GET_DEVICE_ID, &dev->device_id);
	if (ret)
		goto err;
	ret = VD_IOCTL(dev, VHOST_GET_FEATURES, &dev->dev_features);
	if (ret)
		goto err;
	ret = VD_IOCTL(dev, VHOST_VDPA_GET_CONFIG_SIZE, &dev->config_size);
	if (ret)
		goto err;
	ret = vd_read_config(dev);
	if (ret)
		goto err;
	ret = VD_IOCTL(dev, VHOST_VDPA_GET_VRING_NUM, &num);
	if (ret)
		goto err;
	dev->vq_num_max = num;
	ret = VD_IOCTL(dev, VHOST_VDPA_GET_VQS_COUNT, &dev->nvqs);
	if (ret)
		goto err;
	ret = VD_IOCTL(dev, VHOST_VDPA_GET_IOVA_RANGE, &range);
	if (ret)
		goto err;
	dev->iova_first = range.first;
	dev->iova_last = range.last;
	for (unsigned int i = 0; i < VD_MAX_VQS; i++) {
		dev->vqs[i].dev = dev;
		dev->vqs[i].index = i;
		dev->vqs[i].kickfd = -1;
		dev->vqs[i].callfd = -1;
	}
	*devp = dev;
	return 0;
err:
	close(dev->fd);
	free(dev);
	return ret;
}

void vd_close(struct vd_dev *dev)
{
	unsigned int i;

	if (!dev)
		return;
	/*
	 * Closing the fd resets the device and drops the IOTLB, so the
	 * device cannot touch the regions once they are unmapped below.
	 */
	close(dev->fd);
	dev->fd = -1;
	for (i = 0; i < VD_MAX_VQS; i++)
		vd_vq_release(&dev->vqs[i]);
	for (i = 0; i < VD_MAX_REGIONS; i++)
		vd_region_destroy(dev->regions[i]);
	free(dev);
}

static void vd_vq_forget(struct vd_vq *vq)
{
	unsigned int i;

	for (i = 0; vq->inflight && i < vq->num; i++) {
		if (vq->inflight[i])
			vq->inflight[i]->done = false;
		vq->inflight[i] = NULL;
	}
	vq->ninflight = 0;
	vq->avail_idx = 0;
	vq->last_used = 0;
	vq->nfree = 0;
	for (i = vq->num; i > 0; i--)
		vq->free_stack[vq->nfree++] = i - 1;
}

static int vd_reset_common(struct vd_dev *dev, bool keep_rings)
{
	unsigned int i;
	int ret;

	ret = vd_set_status(dev, 0);
	if (ret)
		return ret;
	dev->features = 0;
	for (i = 0; !keep_rings && i < VD_MAX_VQS; i++)
		if (dev->vqs[i].num)
			vd_vq_forget(&dev->vqs[i]);
	if (vd_has_backend(dev, VHOST_BACKEND_F_IOTLB_PERSIST))
		return 0;
	/* The device dropped its mappings; vhost-vdpa still lists them. */
	for (i = 0; i < VD_MAX_REGIONS; i++) {
		struct vd_region *r = dev->regions[i];

		if (!r || !r->mapped)
			continue;
		ret = vd_region_unmap(r);
		if (!ret)
			ret = vd_region_map(r, r->iova, r->perm);
		if (ret)
			return ret;
	}
	return 0;
}

int vd_reset(struct vd_dev *dev)
{
	return vd_reset_common(dev, false);
}

int vd_reset_keep_rings(struct vd_dev *dev)
{
	return vd_reset_common(dev, true);
}

int vd_set_features_raw(struct vd_dev *dev, uint64_t features)
{
	int ret = VD_IOCTL(dev, VHOST_SET_FEATURES, &features);

	if (!ret)
		dev->features = features;
	return ret;
}

int vd_negotiate(struct vd_dev *dev, uint64_t want)
{
	int ret = vd_reset(dev);

	return ret ? ret : vd_handshake(dev, want);
}

int vd_handshake(struct vd_dev *dev, uint64_t want)
{
	uint64_t f;
	uint8_t st;
	int ret;

	ret = vd_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	if (!ret)
		ret = vd_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE |
				    VIRTIO_CONFIG_S_DRIVER);
	if (ret)
		return ret;
	f = (want & dev->dev_features) | (1ULL << VIRTIO_F_VERSION_1) |
	    (1ULL << VIRTIO_F_ACCESS_PLATFORM);
	/* Split rings only. */
	f &= ~(1ULL << VIRTIO_F_RING_PACKED);
	ret = vd_set_features_raw(dev, f);
	if (ret)
		return ret;
	ret = vd_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE |
			    VIRTIO_CONFIG_S_DRIVER |
			    VIRTIO_CONFIG_S_FEATURES_OK);
	if (ret)
		return ret;
	ret = vd_get_status(dev, &st);
	if (ret)
		return ret;
	if (!(st & VIRTIO_CONFIG_S_FEATURES_OK))
		return vd_err(EPROTO, "%s: device refused features 0x%llx",
			      dev->path, (unsigned long long)f);
	/* Config fields may depend on the negotiated features. */
	return vd_read_config(dev);
}

int vd_driver_ok(struct vd_dev *dev)
{
	uint8_t st;
	int ret;

	ret = vd_get_status(dev, &st);
	if (ret)
		return ret;
	return vd_set_status(dev, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

int vd_suspend(struct vd_dev *dev)
{
	if (!vd_has_backend(dev, VHOST_BACKEND_F_SUSPEND))
		return vd_err(EOPNOTSUPP, "%s: suspend not offered", dev->path);
	return VD_IOCTL(dev, VHOST_VDPA_SUSPEND, NULL);
}

int vd_resume(struct vd_dev *dev)
{
	if (!vd_has_backend(dev, VHOST_BACKEND_F_RESUME))
		return vd_err(EOPNOTSUPP, "%s: resume not offered", dev->path);
	return VD_IOCTL(dev, VHOST_VDPA_RESUME, NULL);
}

int vd_get_vring_base(struct vd_dev *dev, unsigned int idx, uint16_t *base)
{
	struct vhost_vring_state s = { .index = idx };
	int ret = VD_IOCTL(dev, VHOST_GET_VRING_BASE, &s);

	if (!ret)
		*base = s.num;
	return ret;
}

int vd_set_vring_base(struct vd_dev *dev, unsigned int idx, uint16_t base)
{
	struct vhost_vring_state s = { .index = idx, .num = base };

	return VD_IOCTL(dev, VHOST_SET_VRING_BASE, &s);
}

int vd_set_vring_enable(struct vd_dev *dev, unsigned int idx, bool on)
{
	struct vhost_vring_state s = { .index = idx, .num = on };

	return VD_IOCTL(dev, VHOST_VDPA_SET_VRING_ENABLE, &s);
}

int vd_get_vring_size(struct vd_dev *dev, unsigned int idx, uint16_t *num)
{
	struct vhost_vring_state s = { .index = idx };

	if (ioctl(dev->fd, VHOST_VDPA_GET_VRING_SIZE, &s) < 0)
		return errno == ENOTTY ? -EOPNOTSUPP : -errno;
	*num = s.num;
	return 0;
}

/* ---- memory ----------------------------------------------------------- */

int vd_iotlb_msg(struct vd_dev *dev, uint8_t type, uint64_t iova,
		 uint64_t size, uint64_t uaddr, uint8_t perm)
{
	struct vhost_msg_v2 msg;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.type = VHOST_IOTLB_MSG_V2;
	msg.iotlb.type = type;
	msg.iotlb.iova = iova;
	msg.iotlb.size = size;
	msg.iotlb.uaddr = uaddr;
	msg.iotlb.perm = perm;
	n = write(dev->fd, &msg, sizeof(msg));
	if (n < 0)
		return vd_err(errno, "%s: IOTLB msg %u iova 0x%llx size 0x%llx",
			      dev->path, type, (unsigned long long)iova,
			      (unsigned long long)size);
	if (n != sizeof(msg))
		return vd_err(EIO, "%s: IOTLB msg short write %zd", dev->path,
			      n);
	return 0;
}

int vd_iotlb_update(struct vd_dev *dev, uint64_t iova, uint64_t size,
		    uint64_t uaddr, uint8_t perm)
{
	return vd_iotlb_msg(dev, VHOST_IOTLB_UPDATE, iova, size, uaddr, perm);
}

int vd_iotlb_invalidate(struct vd_dev *dev, uint64_t iova, uint64_t size)
{
	return vd_iotlb_msg(dev, VHOST_IOTLB_INVALIDATE, iova, size, 0, 0);
}

int vd_iotlb_batch(struct vd_dev *dev, bool begin, bool force)
{
	if (!force && !vd_has_backend(dev, VHOST_BACKEND_F_IOTLB_BATCH))
		return 0;
	return vd_iotlb_msg(dev, begin ? VHOST_IOTLB_BATCH_BEGIN :
			    VHOST_IOTLB_BATCH_END, 0, 0, 0, 0);
}

int vd_region_create(struct vd_dev *dev, size_t size, struct vd_region **rp)
{
	size_t pg = sysconf(_SC_PAGESIZE);
	struct vd_region *r;
	unsigned int slot;
	int ret;

	for (slot = 0; slot < VD_MAX_REGIONS; slot++)
		if (!dev->regions[slot])
			break;
	if (slot == VD_MAX_REGIONS)
		return vd_err(ENOSPC, "too many regions");
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->dev = dev;
	r->gap = VD_POISON_GAP;
	r->size = (size + pg - 1) & ~(pg - 1);
	r->memfd = memfd_create("vdpa_drv", MFD_CLOEXEC);
	if (r->memfd < 0) {
		ret = vd_err(errno, "memfd_create");
		goto err_free;
	}
	if (ftruncate(r->memfd, r->size) < 0) {
		ret = vd_err(errno, "ftruncate memfd to %zu", r->size);
		goto err_close;
	}
	/* MAP_SHARED and file-backed: VA-mode devices skip anything else. */
	r->va = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED,
		     r->memfd, 0);
	if (r->va == MAP_FAILED) {
		ret = vd_err(errno, "mmap memfd of %zu bytes", r->size);
		goto err_close;
	}
	memset(r->va, VD_POISON, r->size);
	dev->regions[slot] = r;
	*rp = r;
	return 0;
err_close:
	close(r->memfd);
err_free:
	free(r);
	return ret;
}

int vd_region_map(struct vd_region *r, uint64_t iova, uint8_t perm)
{
	int ret;

	ret = vd_iotlb_batch(r->dev, true, false);
	if (ret)
		return ret;
	ret = vd_iotlb_update(r->dev, iova, r->size, (uintptr_t)r->va, perm);
	/* End the batch even when the update failed. */
	if (vd_iotlb_batch(r->dev, false, false) && !ret)
		ret = -EIO;
	if (ret)
		return ret;
	r->iova = iova;
	r->perm = perm;
	r->mapped = true;
	return 0;
}

int vd_region_unmap(struct vd_region *r)
{
	int ret;

	if (!r->mapped)
		return 0;
	ret = vd_iotlb_batch(r->dev, true, false);
	if (ret)
		return ret;
	ret = vd_iotlb_invalidate(r->dev, r->iova, r->size);
	if (vd_iotlb_batch(r->dev, false, false) && !ret)
		ret = -EIO;
	if (!ret)
		r->mapped = false;
	return ret;
}

int vd_region_wrap(struct vd_dev *dev, void *va, size_t size,
		   struct vd_region **rp)
{
	struct vd_region *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->dev = dev;
	r->memfd = -1;
	r->va = va;
	r->size = size;
	r->gap = VD_POISON_GAP;
	r->wrapped = true;
	*rp = r;
	return 0;
}

void vd_region_destroy(struct vd_region *r)
{
	unsigned int i;

	if (!r)
		return;
	if (r->wrapped) {
		free(r);
		return;
	}
	if (r->dev->fd >= 0)
		vd_region_unmap(r);
	for (i = 0; i < VD_MAX_REGIONS; i++)
		if (r->dev->regions[i] == r)
			r->dev->regions[i] = NULL;
	munmap(r->va, r->size);
	close(r->memfd);
	free(r);
}

void *vd_alloc(struct vd_region *r, size_t len, size_t align)
{
	size_t off;

	if (!align)
		align = 1;
	if (align & (align - 1) || r->nallocs == VD_MAX_ALLOCS)
		return NULL;
	off = (r->brk + r->gap + align - 1) & ~(align - 1);
	if (off > r->size || len > r->size - off)
		return NULL;
	r->allocs[r->nallocs].off = off;
	r->allocs[r->nallocs].len = len;
	r->nallocs++;
	r->brk = off + len;
	memset(r->va + off, VD_POISON, len);
	return r->va + off;
}

void vd_region_reset_alloc(struct vd_region *r)
{
	r->nallocs = 0;
	r->brk = 0;
	memset(r->va, VD_POISON, r->size);
}

int vd_free(struct vd_region *r, void *p)
{
	size_t off = (uint8_t *)p - r->va;
	unsigned int i;

	for (i = 0; i < r->nallocs; i++) {
		if (r->allocs[i].off != off)
			continue;
		memset(r->va + off, VD_POISON, r->allocs[i].len);
		memmove(&r->allocs[i], &r->allocs[i + 1],
			(r->nallocs - i - 1) * sizeof(r->allocs[0]));
		r->nallocs--;
		return 0;
	}
	return -ENOENT;
}

static int vd_check_range(struct vd_region *r, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		if (r->va[i] != VD_POISON)
			return vd_err(EFAULT,
				      "poison overwritten at region offset 0x%zx (iova 0x%llx): 0x%02x",
				      i, (unsigned long long)(r->iova + i),
				      r->va[i]);
	return 0;
}

int vd_check_poison(struct vd_region *r)
{
	size_t pos = 0;
	unsigned int i;
	int ret;

	for (i = 0; i < r->nallocs; i++) {
		ret = vd_check_range(r, pos, r->allocs[i].off);
		if (ret)
			return ret;
		pos = r->allocs[i].off + r->allocs[i].len;
	}
	return vd_check_range(r, pos, r->size);
}

uint64_t vd_iova(struct vd_dev *dev, const void *p)
{
	const uint8_t *b = p;
	unsigned int i;

	for (i = 0; i < VD_MAX_REGIONS; i++) {
		struct vd_region *r = dev->regions[i];

		if (r && r->mapped && b >= r->va && b < r->va + r->size)
			return r->iova + (b - r->va);
	}
	return ~0ULL;
}

/* ---- virtqueues ------------------------------------------------------- */

/* Bytes of a ring's parts: descriptors, avail, used, per-head slots. */
static void vd_vq_parts(unsigned int num, size_t len[4])
{
	len[0] = 16 * num;
	len[1] = 6 + 2 * num;
	len[2] = 6 + 8 * num;
	len[3] = (size_t)VD_SLOT_SIZE * num;
}

size_t vd_vq_mem_size(unsigned int num)
{
	size_t pg = sysconf(_SC_PAGESIZE);
	size_t len[4], total = 0;
	unsigned int i;

	vd_vq_parts(num, len);
	/* Each part: a poison gap, then page-aligned (see vd_alloc()). */
	for (i = 0; i < 4; i++)
		total += pg + ((len[i] + pg - 1) & ~(pg - 1));
	return total;
}

static int vd_vq_alloc_rings(struct vd_vq *vq, unsigned int num,
			     struct vd_region *r)
{
	size_t pg = sysconf(_SC_PAGESIZE);
	void *mem[4];
	size_t len[4];
	unsigned int i;

	vd_vq_parts(num, len);
	if (vq->region == r && vq->ring_num == num)
		goto zero;
	free(vq->free_stack);
	free(vq->inflight);
	vq->free_stack = calloc(num, sizeof(*vq->free_stack));
	vq->inflight = calloc(num, sizeof(*vq->inflight));
	for (i = 0; i < 4; i++)
		mem[i] = vd_alloc(r, len[i], pg);
	if (!vq->free_stack || !vq->inflight || !mem[0] || !mem[1] ||
	    !mem[2] || !mem[3])
		return vd_err(ENOMEM, "vq %u: rings of %u do not fit",
			      vq->index, num);
	vq->desc = mem[0];
	vq->avail = mem[1];
	vq->used = mem[2];
	vq->slots = mem[3];
	vq->region = r;
	vq->ring_num = num;
zero:
	memset(vq->desc, 0, len[0]);
	memset(vq->avail, 0, len[1]);
	memset(vq->used, 0, len[2]);
	memset(vq->slots, 0, len[3]);
	return 0;
}

/* Tell the device where the ring is and start it at @base. */
static int vd_vq_program(struct vd_dev *dev, struct vd_vq *vq, uint16_t base)
{
	struct vhost_vring_state s = { .index = vq->index, .num = vq->num };
	struct vhost_vring_addr a = { .index = vq->index };
	struct vhost_vring_file f = { .index = vq->index };
	int ret;

	vq->desc_iova = vd_iova(dev, vq->desc);
	vq->avail_iova = vd_iova(dev, vq->avail);
	vq->used_iova = vd_iova(dev, vq->used);
	if (vq->kickfd < 0)
		vq->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->callfd < 0)
		vq->callfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->kickfd < 0 || vq->callfd < 0)
		return vd_err(errno, "eventfd");

	ret = VD_IOCTL(dev, VHOST_SET_VRING_NUM, &s);
	if (ret)
		return ret;
	a.desc_user_addr = vq->desc_iova;
	a.avail_user_addr = vq->avail_iova;
	a.used_user_addr = vq->used_iova;
	ret = VD_IOCTL(dev, VHOST_SET_VRING_ADDR, &a);
	if (ret)
		return ret;
	ret = vd_set_vring_base(dev, vq->index, base);
	if (ret)
		return ret;
	f.fd = vq->kickfd;
	ret = VD_IOCTL(dev, VHOST_SET_VRING_KICK, &f);
	if (ret)
		return ret;
	f.fd = vq->callfd;
	ret = VD_IOCTL(dev, VHOST_SET_VRING_CALL, &f);
	if (ret)
		return ret;
	return vd_set_vring_enable(dev, vq->index, true);
}

int vd_vq_setup(struct vd_dev *dev, unsigned int idx, unsigned int num,
		struct vd_region *r)
{
	struct vd_vq *vq;
	int ret;

	if (idx >= VD_MAX_VQS || idx >= dev->nvqs)
		return vd_err(EINVAL, "vq %u out of range (%u)", idx,
			      dev->nvqs);
	if (!r->mapped)
		return vd_err(EINVAL, "vq %u: region not mapped", idx);
	vq = &dev->vqs[idx];
	ret = vd_vq_alloc_rings(vq, num, r);
	if (ret)
		return ret;
	vq->num = num;
	vq->no_interrupt = false;
	vq->spurious = 0;
	vd_vq_forget(vq);
	return vd_vq_program(dev, vq, 0);
}

int vd_vq_restore(struct vd_dev *dev, unsigned int idx, uint16_t base)
{
	if (idx >= VD_MAX_VQS || !dev->vqs[idx].num)
		return vd_err(EINVAL, "vq %u was never set up", idx);
	if (!dev->vqs[idx].region->mapped)
		return vd_err(EINVAL, "vq %u: region not mapped", idx);
	return vd_vq_program(dev, &dev->vqs[idx], base);
}

int vd_vq_set_used(struct vd_vq *vq, void *used)
{
	struct vhost_vring_addr a = { .index = vq->index };
	struct vd_dev *dev = vq->dev;
	uint64_t iova = vd_iova(dev, used);
	int ret;

	if (!vq->num)
		return vd_err(EINVAL, "vq %u was never set up", vq->index);
	if (iova == ~0ULL || (iova & 3))
		return vd_err(EINVAL, "vq %u: used ring %p unmapped or misaligned",
			      vq->index, used);
	ret = vd_set_vring_enable(dev, vq->index, false);
	if (ret)
		return ret;
	a.desc_user_addr = vq->desc_iova;
	a.avail_user_addr = vq->avail_iova;
	a.used_user_addr = iova;
	ret = VD_IOCTL(dev, VHOST_SET_VRING_ADDR, &a);
	if (ret)
		return ret;
	memset(used, 0, 6 + 8 * vq->num);
	vq->used = used;
	vq->used_iova = iova;
	return vd_set_vring_enable(dev, vq->index, true);
}

void vd_vq_release(struct vd_vq *vq)
{
	if (vq->kickfd >= 0)
		close(vq->kickfd);
	if (vq->callfd >= 0)
		close(vq->callfd);
	vq->kickfd = -1;
	vq->callfd = -1;
	free(vq->free_stack);
	free(vq->inflight);
	vq->free_stack = NULL;
	vq->inflight = NULL;
	vq->num = 0;
	vq->ring_num = 0;
	vq->region = NULL;
}

int vd_kick(struct vd_vq *vq)
{
	uint64_t one = 1;

	/* Order avail->idx before the device can look at it. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (write(vq->kickfd, &one, sizeof(one)) != sizeof(one))
		return vd_err(errno, "vq %u: kick", vq->index);
	return 0;
}

void vd_vq_set_interrupts(struct vd_vq *vq, bool on)
{
	uint16_t flags = on ? 0 : VRING_AVAIL_F_NO_INTERRUPT;

	vq->no_interrupt = !on;
	__atomic_store_n(&vq->avail->flags, htole16(flags), __ATOMIC_RELEASE);
}

void vd_desc_set(struct vd_vq *vq, unsigned int i, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc *d = &vq->desc[i % vq->num];

	d->addr = htole64(addr);
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16(next);
}

void vd_avail_put_raw(struct vd_vq *vq, uint16_t slot, uint16_t head)
{
	vq->avail->ring[slot % vq->num] = htole16(head);
}

void vd_avail_set_idx(struct vd_vq *vq, uint16_t idx)
{
	vq->avail_idx = idx;
	__atomic_store_n(&vq->avail->idx, htole16(idx), __ATOMIC_RELEASE);
}

void vd_avail_push(struct vd_vq *vq, uint16_t head)
{
	vd_avail_put_raw(vq, vq->avail_idx, head);
	vd_avail_set_idx(vq, vq->avail_idx + 1);
}

uint16_t vd_used_idx(const struct vd_vq *vq)
{
	return le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
}

int vd_used_pop(struct vd_vq *vq, uint32_t *id, uint32_t *len)
{
	struct vring_used_elem *e;

	if (vd_used_idx(vq) == vq->last_used)
		return 0;
	e = &vq->used->ring[vq->last_used % vq->num];
	*id = le32toh(e->id);
	*len = le32toh(e->len);
	vq->last_used++;
	return 1;
}

int vd_used_wait(struct vd_vq *vq, int timeout_ms)
{
	uint64_t deadline = vd_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	struct pollfd pfd = { .fd = vq->callfd, .events = POLLIN };
	uint64_t cnt;

	if (vd_has_feature(vq->dev, VIRTIO_RING_F_EVENT_IDX))
		/* used_event: interrupt once the device passes last_used. */
		__atomic_store_n(&vq->avail->ring[vq->num],
				 htole16(vq->last_used), __ATOMIC_SEQ_CST);
	for (;;) {
		uint64_t now;
		int slice;

		if (vd_used_idx(vq) != vq->last_used)
			return 0;
		now = vd_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (vq->busy_poll) {
			/* The device's worker may share this CPU. */
			sched_yield();
			continue;
		}
		slice = (deadline - now) / 1000000ULL + 1;
		if (slice > VD_WAIT_SLICE_MS)
			slice = VD_WAIT_SLICE_MS;
		if (poll(&pfd, 1, slice) > 0 && (pfd.revents & POLLIN)) {
			/* Drain; the used index is the truth. */
			if (read(vq->callfd, &cnt, sizeof(cnt)) < 0 &&
			    errno != EAGAIN)
				return vd_err(errno, "vq %u: read call fd",
					      vq->index);
		}
	}
}

int vd_desc_alloc(struct vd_vq *vq)
{
	if (!vq->nfree)
		return -ENOSPC;
	return vq->free_stack[--vq->nfree];
}

void vd_desc_free(struct vd_vq *vq, uint16_t i)
{
	if (vq->nfree < vq->num)
		vq->free_stack[vq->nfree++] = i;
}

int vd_desc_take(struct vd_vq *vq, uint16_t i)
{
	unsigned int k;

	for (k = 0; k < vq->nfree; k++) {
		if (vq->free_stack[k] == i) {
			vq->free_stack[k] = vq->free_stack[--vq->nfree];
			return 0;
		}
	}
	return -EBUSY;
}

/* ---- virtio-blk requests ---------------------------------------------- */

void vd_io_init(struct vd_io *io, uint32_t type, uint64_t sector, void *buf,
		uint32_t len, unsigned int nsegs)
{
	memset(io, 0, sizeof(*io));
	io->type = type;
	io->sector = sector;
	io->buf = buf;
	io->len = len;
	io->nsegs = nsegs ? nsegs : 1;
	io->status = 0xff;
}

void vd_io_init_dwz(struct vd_io *io, uint32_t type, uint64_t sector,
		    uint32_t nsectors, uint32_t flags)
{
	vd_io_init(io, type, 0, NULL, 0, 1);
	io->ndwz = 1;
	io->dwz[0].sector = htole64(sector);
	io->dwz[0].num_sectors = htole32(nsectors);
	io->dwz[0].flags = htole32(flags);
}

static enum vd_dir vd_io_dir(const struct vd_io *io)
{
	if (io->dir != VD_DIR_AUTO)
		return io->dir;
	switch (io->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		return VD_DIR_IN;
	case VIRTIO_BLK_T_FLUSH:
		return VD_DIR_NONE;
	default:
		return VD_DIR_OUT;
	}
}

struct vd_chain {
	uint64_t addr[VD_MAX_INDIRECT];
	uint32_t len[VD_MAX_INDIRECT];
	uint16_t flags[VD_MAX_INDIRECT];
	unsigned int n;
};

static int vd_chain_add(struct vd_chain *c, uint64_t addr, uint32_t len,
			uint16_t flags)
{
	if (c->n == VD_MAX_INDIRECT)
		return -E2BIG;
	c->addr[c->n] = addr;
	c->len[c->n] = len;
	c->flags[c->n] = flags;
	c->n++;
	return 0;
}

/* Header, data split in nsegs, status: as a list of (addr, len, flags). */
static int vd_io_build(struct vd_vq *vq, struct vd_io *io, uint8_t *slot,
		       struct vd_chain *c)
{
	struct virtio_blk_outhdr *hdr = (void *)(slot + VD_SLOT_HDR);
	enum vd_dir dir = vd_io_dir(io);
	uint8_t *data = io->buf;
	uint32_t len = io->len;
	unsigned int i, nsegs;
	uint32_t off = 0;
	int ret;

	hdr->type = htole32(io->type);
	hdr->ioprio = 0;
	hdr->sector = htole64(io->sector);
	slot[VD_SLOT_STATUS] = 0xff;
	io->status = 0xff;
	c->n = 0;
	ret = vd_chain_add(c, vd_iova(vq->dev, hdr), sizeof(*hdr), 0);
	if (ret)
		return ret;
	if (!data && io->ndwz) {
		if (io->ndwz > VD_MAX_DWZ_SEGS)
			return -E2BIG;
		data = slot + VD_SLOT_DWZ;
		len = io->ndwz * sizeof(io->dwz[0]);
		memcpy(data, io->dwz, len);
	}
	if (io->iov) {
		for (i = 0; i < io->iovcnt; i++) {
			uint64_t iova = vd_iova(vq->dev, io->iov[i].iov_base);

			if (iova == ~0ULL)
				return -EFAULT;
			ret = vd_chain_add(c, iova, io->iov[i].iov_len,
					   dir == VD_DIR_IN ?
					   VRING_DESC_F_WRITE : 0);
			if (ret)
				return ret;
		}
		data = NULL;
	}
	nsegs = io->nsegs ? io->nsegs : 1;
	if (nsegs > len)
		nsegs = len ? len : 1;
	for (i = 0; data && len && dir != VD_DIR_NONE && i < nsegs; i++) {
		uint32_t seg = len / nsegs + (i < len % nsegs);
		uint64_t iova = io->use_iova ? io->data_iova + off :
				vd_iova(vq->dev, data + off);

		if (iova == ~0ULL)
			return -EFAULT;
		ret = vd_chain_add(c, iova, seg, dir == VD_DIR_IN ?
				   VRING_DESC_F_WRITE : 0);
		if (ret)
			return ret;
		off += seg;
	}
	return vd_chain_add(c, vd_iova(vq->dev, slot + VD_SLOT_STATUS), 1,
			    VRING_DESC_F_WRITE);
}

int vd_submit(struct vd_vq *vq, struct vd_io *io)
{
	struct vd_chain c;
	uint8_t *slot;
	int head, prev = -1, d;
	unsigned int i;
	int ret;

	if (!vq->num)
		return -EINVAL;
	/* The head's slot holds the header: reserve the head first. */
	head = vd_desc_alloc(vq);
	if (head < 0)
		return head;
	slot = vq->slots + (size_t)head * VD_SLOT_SIZE;
	ret = vd_io_build(vq, io, slot, &c);
	if (ret)
		goto err_head;
	if (!io->indirect && vq->nfree < c.n - 1) {
		ret = -ENOSPC;
		goto err_head;
	}
	if (io->indirect) {
		struct vring_desc *t = (void *)(slot + VD_SLOT_INDIRECT);

		for (i = 0; i < c.n; i++) {
			t[i].addr = htole64(c.addr[i]);
			t[i].len = htole32(c.len[i]);
			t[i].flags = htole16(c.flags[i] |
				     (i + 1 < c.n ? VRING_DESC_F_NEXT : 0));
			t[i].next = htole16(i + 1 < c.n ? i + 1 : 0);
		}
		vd_desc_set(vq, head, vd_iova(vq->dev, t), c.n * sizeof(*t),
			    VRING_DESC_F_INDIRECT, 0);
	} else {
		/* Fill back to front so each descriptor knows its next. */
		for (i = c.n; i-- > 0;) {
			d = i ? vd_desc_alloc(vq) : head;
			vd_desc_set(vq, d, c.addr[i], c.len[i], c.flags[i] |
				    (prev >= 0 ? VRING_DESC_F_NEXT : 0),
				    prev >= 0 ? prev : 0);
			prev = d;
		}
	}
	io->head = head;
	io->done = false;
	io->used_len = 0;
	io->t_submit_ns = vd_now_ns();
	vq->inflight[head] = io;
	vq->ninflight++;
	vd_avail_push(vq, head);
	return 0;
err_head:
	vd_desc_free(vq, head);
	return ret;
}

/* Return a completed chain's descriptors to the free stack. */
static void vd_free_chain(struct vd_vq *vq, uint16_t head)
{
	unsigned int n = 0;
	uint16_t i = head;

	for (;;) {
		uint16_t flags = le16toh(vq->desc[i].flags);
		uint16_t next = le16toh(vq->desc[i].next);

		vd_desc_free(vq, i);
		if (!(flags & VRING_DESC_F_NEXT) || ++n >= vq->num)
			break;
		i = next % vq->num;
	}
}

/* Consume used entries up to and including the next one that belongs to a
 * request of ours: 1 and *iop, or 0 when the used ring is drained.
 */
static int vd_reap_one(struct vd_vq *vq, struct vd_io **iop)
{
	uint32_t id, len;

	while (vd_used_pop(vq, &id, &len)) {
		struct vd_io *io = id < vq->num ? vq->inflight[id] : NULL;
		uint8_t *slot;

		if (!io) {
			vq->spurious++;
			continue;
		}
		slot = vq->slots + (size_t)id * VD_SLOT_SIZE;
		io->status = __atomic_load_n(&slot[VD_SLOT_STATUS],
					     __ATOMIC_ACQUIRE);
		io->used_len = len;
		io->t_done_ns = vd_now_ns();
		io->done = true;
		vq->inflight[id] = NULL;
		vq->ninflight--;
		vd_free_chain(vq, id);
		*iop = io;
		return 1;
	}
	return 0;
}

int vd_reap(struct vd_vq *vq, struct vd_io **out, unsigned int max)
{
	struct vd_io *io;
	int n = 0;

	while (vd_reap_one(vq, &io) > 0) {
		if (out && (unsigned int)n < max)
			out[n] = io;
		n++;
	}
	return n;
}

int vd_wait_one(struct vd_vq *vq, int timeout_ms, struct vd_io **iop)
{
	uint64_t deadline = vd_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	struct vd_io *io = NULL;
	int ret;

	for (;;) {
		uint64_t now = vd_now_ns();

		if (now >= deadline)
			return -ETIMEDOUT;
		ret = vd_used_wait(vq, (deadline - now) / 1000000ULL + 1);
		if (ret)
			return ret;
		/* Consume exactly one entry so none gets lost. */
		if (vd_reap_one(vq, &io) > 0)
			break;
	}
	if (iop)
		*iop = io;
	return 0;
}

int vd_io_sync(struct vd_vq *vq, struct vd_io *io, int timeout_ms)
{
	uint64_t deadline;
	int ret;

	ret = vd_submit(vq, io);
	if (ret)
		return ret;
	ret = vd_kick(vq);
	if (ret)
		return ret;
	deadline = vd_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	while (!io->done) {
		uint64_t now = vd_now_ns();

		if (now >= deadline)
			return vd_err(ETIMEDOUT,
				      "vq %u: request type %u sector %llu: no completion in %d ms",
				      vq->index, io->type,
				      (unsigned long long)io->sector,
				      timeout_ms);
		ret = vd_used_wait(vq, (deadline - now) / 1000000ULL + 1);
		if (ret == -ETIMEDOUT)
			continue;
		if (ret)
			return ret;
		vd_reap(vq, NULL, 0);
	}
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static uint8_t vd_pattern_byte(uint64_t seed, uint64_t off)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + (off >> 3);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x >> ((off & 7) * 8);
}

void vd_pattern_fill(void *buf, size_t len, uint64_t seed, uint64_t off)
{
	uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = vd_pattern_byte(seed, off + i);
}

long vd_pattern_check(const void *buf, size_t len, uint64_t seed,
		      uint64_t off)
{
	const uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != vd_pattern_byte(seed, off + i))
			return i;
	return -1;
}
