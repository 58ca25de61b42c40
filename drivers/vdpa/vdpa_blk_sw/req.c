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
 * vbs_req_start() runs a request as a pipeline, each step once: parse and
 * check it (nothing is translated yet), translate the guest memory it uses
 * (iotlb.c), then either hand it to the backing or end it here.  It gives
 * the slot back to be fetched again (-EAGAIN) when the request cannot start
 * yet.  vbs_req_complete() hands a finished request to the worker, whose
 * reap calls vbs_req_retire() to publish it and give back its memory.
 */

#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/overflow.h>
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
 * The status byte is the last byte of the device-writable part: the
 * segment that holds it, or NULL if that part is empty.
 */
static const struct kvec *vbs_req_status_seg(const struct vringh_kiov *w)
{
	int i;

	for (i = w->used - 1; i >= (int)w->i; i--)
		if (w->iov[i].iov_len)
			return &w->iov[i];
	return NULL;
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
 * Hand a finished request, with @req->status set, to the worker: the one
 * way out for every request; callable from any context but NMI.  The
 * worker writes the status byte and the used element, and releases the
 * request's pages and bio_vec array.
 */
static void vbs_req_complete(struct vbs_req *req)
{
	struct vbs_vq *vq = req->vq;

	/*
	 * Once llist_add() published @req, its device may be torn down: what
	 * this reads after it, @vq and its worker, is freed only after a grace
	 * period (a dedicated worker: vbs_worker_stop(); the queues:
	 * vbs_dev_free_vqs(); a pool worker lives as long as the module, see
	 * vbs_pool_module_exit(), so one that a spilled queue just left is
	 * only woken for nothing).  Not vbs_vq_wake(): a completion is not
	 * the driver's kick, which the adaptive window times.
	 */
	rcu_read_lock();
	if (llist_add(&req->node, &vq->done))
		vbs_worker_kick(READ_ONCE(vq->worker));
	rcu_read_unlock();
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
	vbs_iotlb_unmap_req(vq->dev, req, req->type == VIRTIO_BLK_T_IN);
	return pushed;
}

/* What a request asks for, once parsed and checked. */
enum vbs_req_op {
	VBS_REQ_END,		/* nothing to carry out: it ends with its status */
	VBS_REQ_GET_ID,		/* write the serial into its data buffer */
	VBS_REQ_BACKING,	/* hand it to the backing */
};

/* A request with nothing to carry out ends with @status. */
static enum vbs_req_op vbs_req_done(struct vbs_req *req, u8 status)
{
	req->status = status;
	return VBS_REQ_END;
}

static enum vbs_req_op vbs_req_check_rw(struct vbs_dev *dev,
					struct vbs_req *req,
					size_t data_in, size_t data_out)
{
	bool write = req->type == VIRTIO_BLK_T_OUT;

	req->len = write ? data_out : data_in;
	/* Also keeps bi_size, in_len and MAX_RW_COUNT from overflowing. */
	if (req->len > min_t(size_t, (size_t)dev->seg_max * VBS_SIZE_MAX,
			     MAX_RW_COUNT)) {
		dev_dbg(&dev->vdpa.dev, "request of %zu bytes: over seg_max * size_max\n",
			req->len);
		return vbs_req_done(req, VIRTIO_BLK_S_IOERR);
	}
	if (write && (dev->features & BIT_ULL(VIRTIO_BLK_F_RO))) {
		dev_dbg(&dev->vdpa.dev, "write to a read-only disk\n");
		return vbs_req_done(req, VIRTIO_BLK_S_IOERR);
	}
	if (!vbs_range_ok(dev, req->sector, req->len)) {
		dev_dbg(&dev->vdpa.dev, "%s %zu bytes at sector %llu: out of range\n",
			write ? "write" : "read", req->len, req->sector);
		return vbs_req_done(req, VIRTIO_BLK_S_IOERR);
	}
	if (!req->len)
		return vbs_req_done(req, VIRTIO_BLK_S_OK);
	return VBS_REQ_BACKING;
}

static enum vbs_req_op vbs_req_check_dwz(struct vbs_dev *dev,
					 struct vbs_vq *vq,
					 struct vbs_req *req, size_t data_out)
{
	bool discard = req->type == VIRTIO_BLK_T_DISCARD;
	unsigned int feature = discard ? VIRTIO_BLK_F_DISCARD :
					 VIRTIO_BLK_F_WRITE_ZEROES;
	size_t sz = sizeof(req->dwz[0]);
	unsigned int i;

	if (!vbs_has_feature(dev, feature))
		return vbs_req_done(req, VIRTIO_BLK_S_UNSUPP);
	if (dev->features & BIT_ULL(VIRTIO_BLK_F_RO))
		return vbs_req_done(req, VIRTIO_BLK_S_IOERR);
	if (!data_out || data_out % sz || data_out / sz > VBS_MAX_DWZ_SEGS) {
		dev_dbg(&dev->vdpa.dev, "bad discard/write-zeroes payload: %zu\n",
			data_out);
		return vbs_req_done(req, VIRTIO_BLK_S_IOERR);
	}
	req->dwz_count = data_out / sz;
	if (vringh_iov_pull_iotlb(&vq->vring, &vq->riov, req->dwz,
				  data_out) != data_out)
		return vbs_req_done(req, VIRTIO_BLK_S_IOERR);

	for (i = 0; i < req->dwz_count; i++) {
		u64 sector = le64_to_cpu(req->dwz[i].sector);
		u32 num = le32_to_cpu(req->dwz[i].num_sectors);
		u32 flags = le32_to_cpu(req->dwz[i].flags);

		/* Only write zeroes knows a flag, and only UNMAP. */
		if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP ||
		    (discard && flags))
			return vbs_req_done(req, VIRTIO_BLK_S_UNSUPP);
		if (num > VBS_MAX_DWZ_SECTORS ||
		    !vbs_range_ok(dev, sector, (u64)num << SECTOR_SHIFT))
			return vbs_req_done(req, VIRTIO_BLK_S_IOERR);
	}
	return VBS_REQ_BACKING;
}

/*
 * Parse and check a request whose chain has a status byte, @data_in bytes
 * of device-writable data before it: the chain's length, the header, the
 * type, the ranges.  Nothing is translated here but through vringh's own
 * copies (the header, a discard's ranges), and nothing is written.
 */
static enum vbs_req_op vbs_req_parse(struct vbs_dev *dev, struct vbs_vq *vq,
				     struct vbs_req *req, size_t data_in)
{
	size_t rlen = vringh_kiov_length(&vq->riov), data_out;
	struct virtio_blk_outhdr hdr;

	/* Header, seg_max data segments and the status at most. */
	if (vq->riov.used + vq->wiov.used > dev->seg_max + 2) {
		dev_dbg(&dev->vdpa.dev, "chain of %u descriptors\n",
			vq->riov.used + vq->wiov.used);
		return vbs_req_done(req, VIRTIO_BLK_S_IOERR);
	}

	if (rlen < sizeof(hdr) ||
	    vringh_iov_pull_iotlb(&vq->vring, &vq->riov, &hdr,
				  sizeof(hdr)) != sizeof(hdr)) {
		dev_dbg(&dev->vdpa.dev, "request header too short: %zu\n", rlen);
		return vbs_req_done(req, VIRTIO_BLK_S_IOERR);
	}
	data_out = rlen - sizeof(hdr);
	req->type = __virtio32_to_cpu(true, hdr.type);
	req->sector = __virtio64_to_cpu(true, hdr.sector);

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return vbs_req_check_rw(dev, req, data_in, data_out);
	case VIRTIO_BLK_T_FLUSH:
		if (!vbs_has_feature(dev, VIRTIO_BLK_F_FLUSH))
			return vbs_req_done(req, VIRTIO_BLK_S_UNSUPP);
		return VBS_REQ_BACKING;
	case VIRTIO_BLK_T_GET_ID:
		return VBS_REQ_GET_ID;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return vbs_req_check_dwz(dev, vq, req, data_out);
	default:
		dev_dbg(&dev->vdpa.dev, "unsupported request type %u\n",
			req->type);
		return vbs_req_done(req, VIRTIO_BLK_S_UNSUPP);
	}
}

static void vbs_req_get_id(struct vbs_dev *dev, struct vbs_vq *vq,
			   struct vbs_req *req, size_t data_in)
{
	size_t n = min_t(size_t, data_in, VIRTIO_BLK_ID_BYTES);
	char id[VIRTIO_BLK_ID_BYTES] = {};

	/* Not NUL-terminated when the serial uses all 20 bytes. */
	memcpy(id, dev->p.serial, strnlen(dev->p.serial, sizeof(id)));
	if (vringh_iov_push_iotlb(&vq->vring, &vq->wiov, id, n) != n) {
		req->status = VIRTIO_BLK_S_IOERR;
		return;
	}
	req->in_len += n;
	req->status = VIRTIO_BLK_S_OK;
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
	const struct kvec *status = vbs_req_status_seg(&vq->wiov);
	size_t data_in = vringh_kiov_length(&vq->wiov) - 1;
	enum vbs_req_op op = VBS_REQ_END;
	struct vringh_kiov *data = NULL;
	u32 perm = 0;
	int ret;

	req->in_len = 0;
	req->len = 0;
	req->ret = 0;
	req->polled = false;
	req->dwz_count = 0;
	req->type = U32_MAX;
	req->status = VIRTIO_BLK_S_IOERR;

	if (status)
		op = vbs_req_parse(dev, vq, req, data_in);
	if (op == VBS_REQ_BACKING && req->len) {
		/* IOPOLL: one more would risk a tag wait nobody polls (backend.c). */
		if (dev->poll_limit &&
		    atomic_read(&dev->polled_inflight) >= dev->poll_limit)
			return -EAGAIN;
		if (req->type == VIRTIO_BLK_T_OUT) {
			data = &vq->riov;
			perm = VHOST_MAP_RO;
		} else {
			data = &vq->wiov;
			perm = VHOST_MAP_WO;
		}
	}

	ret = vbs_iotlb_map_req(dev, req, status, data, perm);
	if (ret == -EAGAIN)
		return ret;
	if (req->status_page)
		req->in_len = 1;
	if (!ret && op == VBS_REQ_BACKING) {
		if (req->type == VIRTIO_BLK_T_IN)
			req->in_len += req->len;
		vbs_backend_submit(req, vbs_req_end_io);
		return 0;
	}

	/* Every request that does not reach the backing ends here. */
	if (!req->status_page) {
		/* Nowhere to put a status: give the head back, empty. */
		dev_dbg(&dev->vdpa.dev, "request without a usable status byte\n");
		req->status = VIRTIO_BLK_S_IOERR;
	} else if (ret) {
		dev_dbg(&dev->vdpa.dev, "data buffer translation failed: %d\n",
			ret);
		req->status = VIRTIO_BLK_S_IOERR;
	} else if (op == VBS_REQ_GET_ID) {
		vbs_req_get_id(dev, vq, req, data_in);
	}
	vbs_req_complete(req);
	return 0;
}
