// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: a virtio-blk request, from its fetch to its used element.
 *
 * Everything here comes from the guest and is hostile until checked: the
 * shape of the chain first (status byte, header), then the type, then the
 * ranges with overflow-safe arithmetic.  Whatever goes wrong, the request
 * ends with a status byte (when there is one to write) and its head is
 * given back through the one completion path, vbs_req_complete().
 *
 * A request's whole life is here: vbs_req_start() starts it on the
 * backing, completes it at once, or gives its slot back to be fetched
 * again (-EAGAIN); vbs_req_complete() hands it to the worker, whose reap
 * calls vbs_req_retire() to publish it; vbs_req_release() gives back what
 * it holds, after a retry as after a reap.
 */

#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/virtio_byteorder.h>
#include <uapi/linux/vhost_types.h>
#include <uapi/linux/virtio_config.h>

#include "vdpa_blk_sw.h"

static bool vbs_has_feature(struct vbs_dev *dev, unsigned int bit)
{
	return dev->driver_features & BIT_ULL(bit);
}

/*
 * The status byte is the last byte of the device-writable part.  A buffer
 * that wraps past the end of the address space has no last byte.
 */
static int vbs_req_find_status(struct vbs_dev *dev, struct vbs_vq *vq,
			       struct vbs_req *req)
{
	struct vringh_kiov *w = &vq->wiov;
	int i;

	for (i = w->used - 1; i >= (int)w->i; i--) {
		struct kvec *v = &w->iov[i];
		u64 iova = (u64)(uintptr_t)v->iov_base, last;

		if (!v->iov_len)
			continue;
		if (check_add_overflow(iova, (u64)v->iov_len - 1, &last))
			return -EFAULT;
		if (vbs_iotlb_locate(dev, last, VHOST_MAP_WO, !!dev->mm,
				     &req->status_page, &req->status_off))
			return -EFAULT;
		req->status_pinned = !!dev->mm;
		return 0;
	}
	return -EINVAL;
}

/* [sector, sector + bytes / 512) must be whole sectors inside the disk. */
static bool vbs_range_ok(struct vbs_dev *dev, u64 sector, u64 bytes)
{
	u64 end;

	if (bytes & (SECTOR_SIZE - 1))
		return false;
	if (check_add_overflow(sector, bytes >> SECTOR_SHIFT, &end))
		return false;
	return end <= READ_ONCE(dev->capacity);
}

/*
 * The bio_vecs @len bytes of @kiov need if none of their pages are
 * physically contiguous: one per page each segment touches. Capped at
 * VBS_MAX_BVECS. An IOTLB that splits a segment into more pieces can make
 * a request need more; mapping then fails with -E2BIG and the request
 * falls back to a VBS_MAX_BVECS array.
 */
static unsigned int vbs_kiov_bvecs(const struct vringh_kiov *kiov, size_t len)
{
	unsigned int i, n = 0;

	for (i = kiov->i; i < kiov->used && len; i++) {
		u64 iova = (u64)(uintptr_t)kiov->iov[i].iov_base;
		size_t seg = min_t(size_t, kiov->iov[i].iov_len, len);

		/* seg < 2^32: the sum cannot wrap before the cap stops it */
		n += DIV_ROUND_UP(offset_in_page(iova) + seg, PAGE_SIZE);
		if (n >= VBS_MAX_BVECS)
			return VBS_MAX_BVECS;
		len -= seg;
	}
	return n;
}

/*
 * Point @req->bvec at room for @nr bio_vecs: its inline array, a kmalloc()
 * of just that size, or the device's pool of VBS_MAX_BVECS arrays, which
 * keeps a reserve. The worker must not sleep here, and the pool's elements
 * come back when the worker reaps, so it must not wait for one: false
 * means fetch the request again later.
 */
static bool vbs_req_alloc_bvec(struct vbs_dev *dev, struct vbs_req *req,
			       unsigned int nr)
{
	req->bvec_pooled = false;
	if (nr <= VBS_INLINE_BVECS) {
		req->bvec = req->inline_bvec;
		req->bvec_max = VBS_INLINE_BVECS;
		return true;
	}
	if (nr < VBS_MAX_BVECS) {
		req->bvec = kmalloc_array(nr, sizeof(*req->bvec),
					  GFP_NOWAIT | __GFP_NOWARN);
		req->bvec_max = nr;
		if (req->bvec)
			return true;
	}
	req->bvec = mempool_alloc(dev->bvec_pool, GFP_NOWAIT | __GFP_NOWARN);
	req->bvec_max = VBS_MAX_BVECS;
	req->bvec_pooled = true;
	return req->bvec;
}

/*
 * Give back what vbs_req_alloc_bvec() allocated; the inline array stays.
 * The caller has unpinned the pages first.
 */
static void vbs_req_free_bvec(struct vbs_req *req)
{
	if (req->bvec && req->bvec != req->inline_bvec) {
		if (req->bvec_pooled)
			mempool_free(req->bvec, req->vq->dev->bvec_pool);
		else
			kfree(req->bvec);
	}
	req->bvec = NULL;
	req->bvec_pooled = false;
}

/*
 * Hand a finished request, with @req->status set, to the worker: the one
 * way out for every request; callable from any context but NMI.  The
 * worker writes the status byte and the used element, and releases the
 * request's pages and bio_vec array.
 */
static void vbs_req_complete(struct vbs_req *req)
{
	struct vbs_vq *vq = req->vq;

	/* The device is freed only after a grace period: see vbs_worker_stop(). */
	rcu_read_lock();
	if (llist_add(&req->node, &vq->done))
		wake_up_process(vq->worker->task);
	rcu_read_unlock();
}

/* End a request that never reached the backing, with @status. */
static int vbs_req_end(struct vbs_req *req, u8 status)
{
	req->status = status;
	vbs_req_complete(req);
	return 0;
}

/* The backing is done with @req: @ret as vbs_backend_submit() says. */
static void vbs_req_end_io(struct vbs_req *req, long ret)
{
	struct vbs_dev *dev = req->vq->dev;

	if (req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_OUT) {
		if (ret == req->len) {
			req->status = VIRTIO_BLK_S_OK;
		} else {
			req->status = VIRTIO_BLK_S_IOERR;
			dev_warn_ratelimited(&dev->vdpa.dev,
					     "%s of %zu bytes at sector %llu failed: %ld\n",
					     req->type == VIRTIO_BLK_T_OUT ?
					     "write" : "read",
					     req->len, req->sector, ret);
		}
	} else {
		if (ret)
			dev_warn_ratelimited(&dev->vdpa.dev,
					     "request type %u failed: %ld\n",
					     req->type, ret);
		req->status = ret ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	}
	vbs_req_complete(req);
}

/* Publish one finished request; false if the ring could not be written. */
static bool vbs_req_publish(struct vbs_vq *vq, struct vbs_req *req)
{
	if (req->status_page) {
		u8 *p = kmap_local_page(req->status_page);

		p[req->status_off] = req->status;
		kunmap_local(p);
	}
	if (req->status != VIRTIO_BLK_S_OK)
		vq->stats.errors++;
	else if (req->type == VIRTIO_BLK_T_IN)
		vq->stats.read_bytes += req->len;
	else if (req->type == VIRTIO_BLK_T_OUT)
		vq->stats.write_bytes += req->len;
	vq->stats.requests++;
	return !vringh_complete_iotlb(&vq->vring, req->head, req->in_len);
}

/*
 * Give back what a request holds: its pinned pages (VA mode), a large
 * bio_vec array, its hold on the address space.  @ended: the request was
 * completed, and its status byte written if it was published; false for a
 * request that gives its slot back to be fetched again, before anything
 * was written.
 */
static void vbs_req_release(struct vbs_req *req, bool ended)
{
	if (req->pinned)
		vbs_unpin_bvecs(req->bvec, req->nr_bvec,
				req->type == VIRTIO_BLK_T_IN);
	if (req->status_pinned)
		unpin_user_pages_dirty_lock(&req->status_page, 1, ended);
	vbs_req_free_bvec(req);
	req->pinned = false;
	req->status_pinned = false;
	vbs_iotlb_unhold(req->vq->dev, req->srcu_idx);
}

/**
 * vbs_req_retire() - publish a completed request and release it
 * @req: a request that went through vbs_req_complete(); called by the
 *	worker of its virtqueue only
 * @publish: write its status byte and used element; false drops the
 *	completion (a reset since, a driver not running, no address space)
 *
 * A used ring that cannot be written breaks the device.
 *
 * Return: true if a used element was added.
 */
bool vbs_req_retire(struct vbs_req *req, bool publish)
{
	struct vbs_vq *vq = req->vq;
	bool pushed = false;

	if (publish) {
		pushed = vbs_req_publish(vq, req);
		if (!pushed)
			vbs_dev_set_broken(vq->dev, vq,
					   "cannot write the used ring", -EFAULT);
	}
	vbs_req_release(req, true);
	return pushed;
}

static int vbs_req_rw(struct vbs_dev *dev, struct vbs_vq *vq,
		      struct vbs_req *req, size_t data_in, size_t data_out)
{
	bool write = req->type == VIRTIO_BLK_T_OUT;
	struct vringh_kiov *kiov = write ? &vq->riov : &vq->wiov;
	u32 perm = write ? VHOST_MAP_RO : VHOST_MAP_WO;
	bool va = dev->mm;
	int ret;

	req->len = write ? data_out : data_in;
	/* Also keeps bi_size, in_len and MAX_RW_COUNT from overflowing. */
	if (req->len > min_t(size_t, (size_t)dev->seg_max * VBS_SIZE_MAX,
			     MAX_RW_COUNT)) {
		dev_dbg(&dev->vdpa.dev, "request of %zu bytes: over seg_max * size_max\n",
			req->len);
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	}
	if (write && (dev->features & BIT_ULL(VIRTIO_BLK_F_RO))) {
		dev_dbg(&dev->vdpa.dev, "write to a read-only disk\n");
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	}
	if (!vbs_range_ok(dev, req->sector, req->len)) {
		dev_dbg(&dev->vdpa.dev, "%s %zu bytes at sector %llu: out of range\n",
			write ? "write" : "read", req->len, req->sector);
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	}
	if (!req->len)
		return vbs_req_end(req, VIRTIO_BLK_S_OK);
	/* IOPOLL: one more would risk a tag wait nobody polls (backend.c). */
	if (dev->poll_limit &&
	    atomic_read(&dev->polled_inflight) >= dev->poll_limit)
		return -EAGAIN;

	/*
	 * Sized from the request, rather than tried inline first and then
	 * taken from the pool: that would pin the first pages twice, and use
	 * an order-2 array for every request over VBS_INLINE_BVECS pages.
	 */
	if (!vbs_req_alloc_bvec(dev, req, vbs_kiov_bvecs(kiov, req->len)))
		return -EAGAIN;
	ret = vbs_iotlb_map_kiov(dev, kiov, req->len, perm, va, req->bvec,
				 req->bvec_max, &req->nr_bvec);
	if (ret == -E2BIG && req->bvec_max < VBS_MAX_BVECS) {
		/* The IOTLB split a segment: the largest array, once. */
		vbs_req_free_bvec(req);
		if (!vbs_req_alloc_bvec(dev, req, VBS_MAX_BVECS))
			return -EAGAIN;
		ret = vbs_iotlb_map_kiov(dev, kiov, req->len, perm, va,
					 req->bvec, req->bvec_max,
					 &req->nr_bvec);
	}
	req->pinned = va && req->nr_bvec;
	if (ret) {
		dev_dbg(&dev->vdpa.dev, "data buffer translation failed: %d\n",
			ret);
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	}
	if (!write)
		req->in_len += req->len;
	vbs_backend_submit(req, vbs_req_end_io);
	return 0;
}

static int vbs_req_get_id(struct vbs_dev *dev, struct vbs_vq *vq,
			  struct vbs_req *req, size_t data_in)
{
	size_t n = min_t(size_t, data_in, VIRTIO_BLK_ID_BYTES);
	char id[VIRTIO_BLK_ID_BYTES] = {};

	/* Not NUL-terminated when the serial uses all 20 bytes. */
	memcpy(id, dev->p.serial, strnlen(dev->p.serial, sizeof(id)));
	if (vringh_iov_push_iotlb(&vq->vring, &vq->wiov, id, n) != n)
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	req->in_len += n;
	return vbs_req_end(req, VIRTIO_BLK_S_OK);
}

static int vbs_req_dwz(struct vbs_dev *dev, struct vbs_vq *vq,
		       struct vbs_req *req, size_t data_out)
{
	bool discard = req->type == VIRTIO_BLK_T_DISCARD;
	unsigned int feature = discard ? VIRTIO_BLK_F_DISCARD :
					 VIRTIO_BLK_F_WRITE_ZEROES;
	size_t sz = sizeof(req->dwz[0]);
	unsigned int i;

	if (!vbs_has_feature(dev, feature))
		return vbs_req_end(req, VIRTIO_BLK_S_UNSUPP);
	if (dev->features & BIT_ULL(VIRTIO_BLK_F_RO))
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	if (!data_out || data_out % sz || data_out / sz > VBS_MAX_DWZ_SEGS) {
		dev_dbg(&dev->vdpa.dev, "bad discard/write-zeroes payload: %zu\n",
			data_out);
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	}
	req->dwz_count = data_out / sz;
	if (vringh_iov_pull_iotlb(&vq->vring, &vq->riov, req->dwz,
				  data_out) != data_out)
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);

	for (i = 0; i < req->dwz_count; i++) {
		u64 sector = le64_to_cpu(req->dwz[i].sector);
		u32 num = le32_to_cpu(req->dwz[i].num_sectors);
		u32 flags = le32_to_cpu(req->dwz[i].flags);

		/* Only write zeroes knows a flag, and only UNMAP. */
		if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP ||
		    (discard && flags))
			return vbs_req_end(req, VIRTIO_BLK_S_UNSUPP);
		if (num > VBS_MAX_DWZ_SECTORS ||
		    !vbs_range_ok(dev, sector, (u64)num << SECTOR_SHIFT))
			return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	}
	vbs_backend_submit(req, vbs_req_end_io);
	return 0;
}

/**
 * vbs_req_start() - parse, validate and start one request
 * @vq: the virtqueue
 * @req: a slot holding the chain's head; the chain is in @vq->riov and
 *	 @vq->wiov
 *
 * A bad request completes with an error status: it is never refused.
 *
 * Return: 0 once the request is started, or completed; -EAGAIN if it could
 * not start for lack of memory or of polled slots and must be fetched again
 * once requests in flight have completed (the slot is clean then).
 */
int vbs_req_start(struct vbs_vq *vq, struct vbs_req *req)
{
	struct vbs_dev *dev = vq->dev;
	struct virtio_blk_outhdr hdr;
	size_t rlen, wlen, data_in, data_out;
	int ret;

	req->srcu_idx = vbs_iotlb_hold(dev);
	req->status_page = NULL;
	req->bvec = NULL;
	req->bvec_pooled = false;
	req->nr_bvec = 0;
	req->in_len = 0;
	req->len = 0;
	req->ret = 0;
	req->polled = false;
	req->pinned = false;
	req->status_pinned = false;
	req->dwz_count = 0;
	req->type = U32_MAX;
	req->status = VIRTIO_BLK_S_IOERR;

	rlen = vringh_kiov_length(&vq->riov);
	wlen = vringh_kiov_length(&vq->wiov);

	if (vbs_req_find_status(dev, vq, req)) {
		/* Nowhere to put a status: give the head back, empty. */
		dev_dbg(&dev->vdpa.dev, "request without a usable status byte\n");
		req->status_page = NULL;
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	}
	req->in_len = 1;
	data_in = wlen - 1;

	/* Header, seg_max data segments and the status at most. */
	if (vq->riov.used + vq->wiov.used > dev->seg_max + 2) {
		dev_dbg(&dev->vdpa.dev, "chain of %u descriptors\n",
			vq->riov.used + vq->wiov.used);
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	}

	if (rlen < sizeof(hdr) ||
	    vringh_iov_pull_iotlb(&vq->vring, &vq->riov, &hdr,
				  sizeof(hdr)) != sizeof(hdr)) {
		dev_dbg(&dev->vdpa.dev, "request header too short: %zu\n", rlen);
		return vbs_req_end(req, VIRTIO_BLK_S_IOERR);
	}
	data_out = rlen - sizeof(hdr);
	req->type = __virtio32_to_cpu(true, hdr.type);
	req->sector = __virtio64_to_cpu(true, hdr.sector);

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		ret = vbs_req_rw(dev, vq, req, data_in, data_out);
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (!vbs_has_feature(dev, VIRTIO_BLK_F_FLUSH)) {
			ret = vbs_req_end(req, VIRTIO_BLK_S_UNSUPP);
			break;
		}
		vbs_backend_submit(req, vbs_req_end_io);
		ret = 0;
		break;
	case VIRTIO_BLK_T_GET_ID:
		ret = vbs_req_get_id(dev, vq, req, data_in);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		ret = vbs_req_dwz(dev, vq, req, data_out);
		break;
	default:
		dev_dbg(&dev->vdpa.dev, "unsupported request type %u\n",
			req->type);
		ret = vbs_req_end(req, VIRTIO_BLK_S_UNSUPP);
		break;
	}
	if (ret == -EAGAIN)
		vbs_req_release(req, false);
	return ret;
}
