// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: the backing file or block device.
 *
 * Reads and writes go through the backing's ->read_iter()/->write_iter()
 * with a bio_vec iterator over the guest's own pages: no bounce copy.
 * Direct I/O is asynchronous (ki_complete), optionally polled with
 * IOCB_HIPRI and ->iopoll() (then also IOCB_NOWAIT: see vbs_rw_punt()).
 * Buffered I/O is first tried with IOCB_NOWAIT when the file supports it
 * and otherwise, like flush, discard and write zeroes, runs on a workqueue
 * so that it never blocks the polling worker; so does a write to a file
 * while its file system freezes (vbs_start_write_nowait()).  That
 * workqueue is the module's, shared by every device as nvmet's
 * buffered_io_wq is by every namespace: a device then costs no rescuer
 * thread, and creating or deleting one starts and stops nothing.  The
 * requests in flight hold a device up (its reset waits for them), and a
 * work item's last touch of its request and device is its completion
 * (vbs_req_complete(), under RCU), so nothing needs to flush it for one
 * device; the module's exit destroys it.
 * Every path ends in the request's @end_io, given what the backing
 * returned; what that means for the driver is req.c's business.
 */

#include <linux/blkdev.h>
#include <linux/falloc.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/namei.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "vdpa_blk_sw.h"

/*
 * Unbound, and allowed to make progress under memory pressure: a disk of
 * ours may hold swap or a file system's writeback.  As many work items run
 * at once as the workqueue code allows, so that one device's slow flushes
 * hold back another's as little as possible.
 */
static struct workqueue_struct *vbs_io_wq;

/*
 * Regular files a device has open.  Two devices writing one file would see
 * each other's data behind their page caches' backs, so a file is given to
 * one device at a time (block devices get the same from O_EXCL), unless
 * every device that opens it asks to share it (@shared: live migration
 * from one device to another over one medium).  A shared block device is
 * claimed with vbs_claims as its holder, which lets it be claimed again by
 * the same holder and by nobody else.
 */
struct vbs_claim {
	struct list_head node;
	struct inode *inode;
	bool shared;
	unsigned int users;
};

static LIST_HEAD(vbs_claims);
/* Protects vbs_claims; taken alone, when a backing is opened or closed. */
static DEFINE_MUTEX(vbs_claims_lock);

static int vbs_claim_inode(struct inode *inode, bool shared)
{
	struct vbs_claim *c;
	int ret = 0;

	mutex_lock(&vbs_claims_lock);
	list_for_each_entry(c, &vbs_claims, node) {
		if (c->inode != inode)
			continue;
		if (shared && c->shared)
			c->users++;
		else
			ret = -EBUSY;
		goto out;
	}
	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c) {
		ret = -ENOMEM;
		goto out;
	}
	c->inode = inode;
	c->shared = shared;
	c->users = 1;
	list_add(&c->node, &vbs_claims);
out:
	mutex_unlock(&vbs_claims_lock);
	return ret;
}

static void vbs_release_inode(struct inode *inode)
{
	struct vbs_claim *c;

	mutex_lock(&vbs_claims_lock);
	list_for_each_entry(c, &vbs_claims, node) {
		if (c->inode == inode) {
			if (!--c->users) {
				list_del(&c->node);
				kfree(c);
			}
			break;
		}
	}
	mutex_unlock(&vbs_claims_lock);
}

static bool vbs_backing_is_bdev(struct vbs_dev *dev)
{
	return S_ISBLK(file_inode(dev->file)->i_mode);
}

static bool vbs_backing_is_reg(struct vbs_dev *dev)
{
	return S_ISREG(file_inode(dev->file)->i_mode);
}

/**
 * vbs_backing_bdev() - the block device under the backing
 * @dev: the device, with its backing open
 *
 * Return: the backing itself if it is a block device, else the block
 * device of the file's file system; NULL for one without (tmpfs, shmem).
 */
struct block_device *vbs_backing_bdev(struct vbs_dev *dev)
{
	struct inode *inode = file_inode(dev->file);

	if (S_ISBLK(inode->i_mode))
		return I_BDEV(dev->file->f_mapping->host);
	return inode->i_sb->s_bdev;
}

static int vbs_open_file(struct vbs_dev *dev)
{
	struct vbs_params *p = &dev->p;
	int flags = O_LARGEFILE | O_CLOEXEC;
	struct file *file, *claim;
	umode_t mode;
	int ret;

	if (!p->shared)
		flags |= O_EXCL;
	flags |= p->read_only ? O_RDONLY : O_RDWR;
	if (p->direct)
		flags |= O_DIRECT;
	/* Opened in the context of the caller, with its credentials. */
	file = filp_open(p->backing, flags, 0);
	if (IS_ERR(file))
		return PTR_ERR(file);

	mode = file_inode(file)->i_mode;
	ret = -EINVAL;
	if (!S_ISREG(mode) && !S_ISBLK(mode))
		goto put_file;
	if (!file->f_op->read_iter || !file->f_op->write_iter)
		goto put_file;
	ret = -EOPNOTSUPP;
	if (p->iopoll && (!p->direct || !file->f_op->iopoll))
		goto put_file;
	if (S_ISREG(mode)) {
		ret = vbs_claim_inode(file_inode(file), p->shared);
		if (ret)
			goto put_file;
		dev->inode_claimed = true;
	} else if (p->shared) {
		claim = bdev_file_open_by_dev(I_BDEV(file->f_mapping->host)->bd_dev,
					      BLK_OPEN_READ |
					      (p->read_only ? 0 : BLK_OPEN_WRITE),
					      &vbs_claims, NULL);
		if (IS_ERR(claim)) {
			ret = PTR_ERR(claim);
			goto put_file;
		}
		dev->bdev_claim = claim;
	}
	dev->file = file;
	return 0;

put_file:
	fput(file);
	return ret;
}

/**
 * vbs_backend_open() - open the device's backing and learn its limits
 * @dev: the device, with @dev->p validated
 *
 * An empty backing path gives the embedded backing, an unlinked shmem file
 * of @dev->p.size bytes that goes through the same VFS path as any file.
 * On failure nothing stays open.
 *
 * Return: 0 or -errno (-ENOENT, -EACCES, -EINVAL for neither a regular file
 * nor a block device, -EBUSY when in use, -EOPNOTSUPP for IOPOLL on a
 * backing that cannot poll).
 */
int vbs_backend_open(struct vbs_dev *dev)
{
	struct block_device *bdev;
	int ret;

	if (!dev->p.backing[0]) {
		struct file *file;

		if (dev->p.shared)
			return -EINVAL;	/* nothing else can see it */
		file = shmem_file_setup(dev_name(&dev->vdpa.dev), dev->p.size,
					VM_NORESERVE);
		if (IS_ERR(file))
			return PTR_ERR(file);
		dev->file = file;
		/* Memory: copying inline is cheaper than a context switch. */
		dev->inline_buffered = true;
	} else {
		ret = vbs_open_file(dev);
		if (ret)
			return ret;
	}

	dev->nowait = dev->file->f_mode & FMODE_NOWAIT;
	bdev = vbs_backing_bdev(dev);
	/*
	 * The worker must never sleep for a tag of the queue it polls: only
	 * its own polling frees one.  IOCB_NOWAIT covers block devices
	 * (vbs_rw_punt()), but iomap's direct I/O (ext4, xfs) does not pass
	 * it to its bios, so vbs_req_start() also leaves a request in the
	 * ring while as many polled ones as the queue has tags are in flight.
	 */
	atomic_set(&dev->polled_inflight, 0);
	dev->poll_limit = 0;
	dev->poll_seg_max = 0;
	if (dev->p.iopoll && bdev) {
		struct request_queue *q = bdev_get_queue(bdev);
		u64 segs = ((u64)queue_max_sectors(q) << SECTOR_SHIFT) /
			   VBS_SIZE_MAX;

		dev->poll_limit = q->nr_requests;
		/*
		 * Nor may a polled bio need a split: the block layer fails a
		 * REQ_NOWAIT one that does, and the request goes to the
		 * workqueue, blocking (vbs_rw_punt()).  So offer no request
		 * larger than the queue takes in one bio: each segment is at
		 * most VBS_SIZE_MAX bytes, over at most two pages.  The limits
		 * are those at creation; lowered later, requests still work,
		 * reissued.
		 */
		segs = min_t(u64, segs, queue_max_segments(q) / 2);
		dev->poll_seg_max = clamp_t(u64, segs, 1, VBS_SEG_MAX);
	}
	dev->dio_align_mask = (bdev ? bdev_logical_block_size(bdev) :
			       SECTOR_SIZE) - 1;
	return 0;
}

/**
 * vbs_backend_close() - close the backing vbs_backend_open() opened
 * @dev: the device, with no request in flight
 */
void vbs_backend_close(struct vbs_dev *dev)
{
	if (dev->inode_claimed)
		vbs_release_inode(file_inode(dev->file));
	dev->inode_claimed = false;
	if (dev->bdev_claim)
		fput(dev->bdev_claim);
	dev->bdev_claim = NULL;
	fput(dev->file);
	dev->file = NULL;
}

/**
 * vbs_backend_sectors() - current size of the backing
 * @dev: the device
 *
 * Return: whole logical blocks of the backing, in 512-byte sectors.
 */
u64 vbs_backend_sectors(struct vbs_dev *dev)
{
	u64 sectors, per_block = dev->p.block_size >> SECTOR_SHIFT;

	if (vbs_backing_is_bdev(dev))
		sectors = bdev_nr_sectors(vbs_backing_bdev(dev));
	else
		sectors = i_size_read(file_inode(dev->file)) >> SECTOR_SHIFT;
	return sectors - sectors % per_block;
}

/**
 * vbs_backend_discard_limits() - what a DISCARD can do on the backing
 * @dev: the device, with its backing open
 * @max_sectors: set to the most 512-byte sectors one range may discard, 0
 *	when the backing cannot discard
 * @align: set to the discard granularity in 512-byte sectors, at least a
 *	logical block of the device
 *
 * A block device discards if its queue takes discards, within its own
 * limits; a regular file always "can": a discard punches a hole, or is
 * skipped on a file system that cannot.
 */
void vbs_backend_discard_limits(struct vbs_dev *dev, u32 *max_sectors,
				u32 *align)
{
	u32 per_block = dev->p.block_size >> SECTOR_SHIFT;
	struct block_device *bdev;

	*max_sectors = VBS_MAX_DWZ_SECTORS;
	*align = per_block;
	if (!vbs_backing_is_bdev(dev))
		return;
	bdev = vbs_backing_bdev(dev);
	*align = max(*align, bdev_discard_granularity(bdev) >> SECTOR_SHIFT);
	*max_sectors = min_t(u32, bdev_max_discard_sectors(bdev),
			     VBS_MAX_DWZ_SECTORS);
	*max_sectors -= *max_sectors % *align;
}

static bool vbs_rw_is_write(struct vbs_req *req)
{
	return req->type == VIRTIO_BLK_T_OUT;
}

static void vbs_rw_punt(struct vbs_req *req);

/*
 * A request that failed with -EAGAIN is issued again from the workqueue
 * (vbs_rw_punt()), but never while the ->read_iter() or ->write_iter()
 * that issued it still runs: the block layer completes a bio that would
 * wait for a tag at once, from inside submit_bio(), and the caller goes on
 * using the kiocb and the iterator after that (blkdev_write_iter()
 * re-expands the iterator, __blkdev_direct_IO_async() stores the bio in
 * ->private), which the work item, running on another CPU, would then
 * see change under it.  As io_uring's REQ_F_REISSUE, such a completion
 * only marks the request, and the issuer punts it once the call returned.
 * Both sides use fully ordered atomics, so whichever runs last punts,
 * after everything the other did to the request.
 */
#define VBS_RW_ISSUING	1
#define VBS_RW_REISSUE	2

static void vbs_rw_done(struct kiocb *iocb, long ret)
{
	struct vbs_req *req = container_of(iocb, struct vbs_req, iocb);
	struct vbs_dev *dev = req->vq->dev;

	/* A polled request that would have waited: issue it again, blocking. */
	if ((ret == -EAGAIN || ret == -EOPNOTSUPP) &&
	    (iocb->ki_flags & IOCB_NOWAIT)) {
		if (!(atomic_fetch_or(VBS_RW_REISSUE, &req->issue) &
		      VBS_RW_ISSUING))
			vbs_rw_punt(req);
		return;
	}
	if (vbs_rw_is_write(req) && vbs_backing_is_reg(dev))
		kiocb_end_write(iocb);
	req->ret = ret;
	if (req->polled) {
		/* Pairs with vbs_iopoll(): the kiocb is no longer polled. */
		smp_store_release(&req->iopoll_done, true);
	}
	req->end_io(req, ret);
}

static ssize_t vbs_call_iter(struct vbs_req *req)
{
	struct file *file = req->iocb.ki_filp;

	if (vbs_rw_is_write(req))
		return file->f_op->write_iter(&req->iocb, &req->iter);
	return file->f_op->read_iter(&req->iocb, &req->iter);
}

/*
 * Issue an asynchronous read or write: true if it failed with -EAGAIN
 * before the call returned, and the caller must now punt it.
 */
static bool vbs_call_iter_async(struct vbs_req *req, ssize_t *ret)
{
	atomic_set(&req->issue, VBS_RW_ISSUING);
	*ret = vbs_call_iter(req);
	return atomic_xchg(&req->issue, 0) & VBS_RW_REISSUE;
}

/* Blocking read or write of what is left of the iterator. */
static void vbs_rw_sync(struct vbs_req *req)
{
	long done = req->ret;
	ssize_t ret;

	req->iocb.ki_complete = NULL;
	req->iocb.ki_flags &= ~(IOCB_NOWAIT | IOCB_HIPRI);
	while (iov_iter_count(&req->iter)) {
		ret = vbs_call_iter(req);
		if (ret <= 0) {
			done = ret ? ret : -EIO;
			break;
		}
		done += ret;
	}
	vbs_rw_done(&req->iocb, done);
}

static void vbs_rw_work(struct work_struct *work)
{
	vbs_rw_sync(container_of(work, struct vbs_req, work));
}

/* A write whose freeze protection the worker could not take. */
static void vbs_rw_frozen_work(struct work_struct *work)
{
	struct vbs_req *req = container_of(work, struct vbs_req, work);

	kiocb_start_write(&req->iocb);	/* sleeps until the thaw */
	vbs_rw_sync(req);
}

/*
 * Freeze protection for a write to a regular file, without sleeping, as
 * io_uring takes it for a nonblocking attempt.  A worker asleep in
 * sb_start_write() while a freeze is pending would serve none of its
 * queues until the thaw; and since every write holds the protection until
 * vbs_rw_done(), which a polled write reaches only when the worker polls
 * it, the freeze could wait for the worker forever.  A write that cannot
 * have it now waits on the workqueue (vbs_rw_frozen_work()).
 */
static bool vbs_start_write_nowait(struct vbs_req *req)
{
	struct super_block *sb = file_inode(req->iocb.ki_filp)->i_sb;

	if (!sb_start_write_trylock(sb))
		return false;
	/* Released for lockdep as kiocb_start_write() does: vbs_rw_done(). */
	__sb_writers_release(sb, SB_FREEZE_WRITE);
	return true;
}

static void vbs_rw_iter_init(struct vbs_req *req)
{
	iov_iter_bvec(&req->iter, vbs_rw_is_write(req) ? ITER_SOURCE :
		      ITER_DEST, req->bvec, req->nr_bvec, req->len);
}

/*
 * Polled requests are submitted with IOCB_NOWAIT: waiting for a tag that
 * only the worker's own polling would free deadlocks until the block
 * layer's timeout fails the requests.  The block layer fails such a
 * request with -EAGAIN instead (returned, or through ->ki_complete()); it
 * is issued again from the workqueue, blocking and not polled, from the
 * start since the failed attempt may have consumed the iterator.
 */
static void vbs_rw_punt(struct vbs_req *req)
{
	if (req->polled) {
		/* Pairs with vbs_iopoll(): this kiocb is no longer polled. */
		smp_store_release(&req->iopoll_done, true);
	}
	atomic64_inc(&req->vq->stats.reissues);
	req->ret = 0;
	req->iocb.ki_pos = req->sector << SECTOR_SHIFT;
	vbs_rw_iter_init(req);
	INIT_WORK(&req->work, vbs_rw_work);
	queue_work(vbs_io_wq, &req->work);
}

static bool vbs_dio_aligned(struct vbs_dev *dev, struct vbs_req *req)
{
	unsigned long mask = dev->dio_align_mask;

	if ((req->iocb.ki_pos | req->len) & mask)
		return false;
	return !(iov_iter_alignment(&req->iter) & mask);
}

static void vbs_rw_submit(struct vbs_req *req)
{
	struct vbs_dev *dev = req->vq->dev;
	struct kiocb *iocb = &req->iocb;
	ssize_t ret;

	vbs_rw_iter_init(req);
	memset(iocb, 0, sizeof(*iocb));
	iocb->ki_filp = dev->file;
	iocb->ki_pos = req->sector << SECTOR_SHIFT;
	iocb->ki_flags = dev->file->f_iocb_flags;
	if (vbs_rw_is_write(req) && READ_ONCE(dev->writethrough))
		iocb->ki_flags |= IOCB_DSYNC;

	/* Unaligned requests on an O_DIRECT backing go through the cache. */
	if ((iocb->ki_flags & IOCB_DIRECT) && !vbs_dio_aligned(dev, req))
		iocb->ki_flags &= ~IOCB_DIRECT;

	if (vbs_rw_is_write(req) && vbs_backing_is_reg(dev) &&
	    !vbs_start_write_nowait(req)) {
		INIT_WORK(&req->work, vbs_rw_frozen_work);
		queue_work(vbs_io_wq, &req->work);
		return;
	}

	if (iocb->ki_flags & IOCB_DIRECT) {
		iocb->ki_complete = vbs_rw_done;
		if (dev->p.iopoll) {
			iocb->ki_flags |= IOCB_HIPRI;
			if (dev->nowait)
				iocb->ki_flags |= IOCB_NOWAIT;	/* vbs_rw_punt() */
			req->polled = true;
			req->iopoll_done = false;
			atomic_inc(&dev->polled_inflight);
			list_add_tail(&req->poll_node, &req->vq->polled);
		}
		if (vbs_call_iter_async(req, &ret))
			vbs_rw_punt(req);
		else if (ret != -EIOCBQUEUED)
			vbs_rw_done(iocb, ret);
		return;
	}

	if (dev->inline_buffered) {
		vbs_rw_sync(req);
		return;
	}

	if (dev->nowait) {
		iocb->ki_flags |= IOCB_NOWAIT;
		ret = vbs_call_iter(req);
		iocb->ki_flags &= ~IOCB_NOWAIT;
		if (ret == req->len ||
		    (ret < 0 && ret != -EAGAIN && ret != -EOPNOTSUPP)) {
			vbs_rw_done(iocb, ret);
			return;
		}
		if (ret > 0)
			req->ret = ret;	/* partial: the rest blocks */
	}
	INIT_WORK(&req->work, vbs_rw_work);
	queue_work(vbs_io_wq, &req->work);
}

/* Write zeroes by writing the zero page, for backings without fallocate. */
static int vbs_write_zeroes_slow(struct vbs_dev *dev, loff_t pos, u64 len)
{
	struct bio_vec bv[16];
	struct iov_iter iter;
	struct kiocb kiocb;
	ssize_t ret;

	while (len) {
		size_t chunk = min_t(u64, len, ARRAY_SIZE(bv) * PAGE_SIZE);
		unsigned int i, nr = DIV_ROUND_UP(chunk, PAGE_SIZE);

		for (i = 0; i < nr; i++)
			bvec_set_page(&bv[i], ZERO_PAGE(0),
				      min_t(size_t, PAGE_SIZE,
					    chunk - i * PAGE_SIZE), 0);
		iov_iter_bvec(&iter, ITER_SOURCE, bv, nr, chunk);
		init_sync_kiocb(&kiocb, dev->file);
		kiocb.ki_pos = pos;
		if ((pos | chunk) & dev->dio_align_mask)
			kiocb.ki_flags &= ~IOCB_DIRECT;
		file_start_write(dev->file);
		ret = dev->file->f_op->write_iter(&kiocb, &iter);
		file_end_write(dev->file);
		if (ret <= 0)
			return ret ? ret : -EIO;
		pos += ret;
		len -= ret;
	}
	return 0;
}

/*
 * DISCARD on a block device, as BLKDISCARD issues it.  fallocate() has no
 * mode for it (blkdev_fallocate() refuses FALLOC_FL_NO_HIDE_STALE, and its
 * punch hole writes zeroes).  The range shrinks to whole discard granules
 * of the device, counted from its start as the block layer splits them: a
 * discard is a hint, and must never reach past what the driver named.
 */
static int vbs_discard_bdev(struct vbs_dev *dev, u64 sector, u64 nr)
{
	struct block_device *bdev = vbs_backing_bdev(dev);
	struct address_space *mapping = dev->file->f_mapping;
	u64 base = get_start_sect(bdev), start, end;
	u32 max, gran;
	int ret;

	vbs_backend_discard_limits(dev, &max, &gran);
	if (!max)
		return 0;
	start = div_u64(base + sector + gran - 1, gran) * gran - base;
	end = div_u64(base + sector + nr, gran) * gran - base;
	if (start >= end)
		return 0;

	inode_lock(mapping->host);
	filemap_invalidate_lock(mapping);
	/* Cached pages of the range, dirty or not, are stale now. */
	truncate_inode_pages_range(mapping, start << SECTOR_SHIFT,
				   (end << SECTOR_SHIFT) - 1);
	ret = blkdev_issue_discard(bdev, start, end - start, GFP_KERNEL);
	filemap_invalidate_unlock(mapping);
	inode_unlock(mapping->host);
	return ret;
}

static int vbs_dwz_one(struct vbs_dev *dev, u32 type,
		       const struct virtio_blk_discard_write_zeroes *seg)
{
	loff_t pos = le64_to_cpu(seg->sector) << SECTOR_SHIFT;
	u64 len = (u64)le32_to_cpu(seg->num_sectors) << SECTOR_SHIFT;
	int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	int ret;

	if (!len)
		return 0;
	if (type == VIRTIO_BLK_T_DISCARD) {
		if (vbs_backing_is_bdev(dev))
			return vbs_discard_bdev(dev, pos >> SECTOR_SHIFT,
						len >> SECTOR_SHIFT);
		ret = vfs_fallocate(dev->file, punch, pos, len);
		/* Discard is a hint: a file system that cannot is no error. */
		return ret == -EOPNOTSUPP ? 0 : ret;
	}

	if (le32_to_cpu(seg->flags) & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) {
		ret = vfs_fallocate(dev->file, punch, pos, len);
		if (ret != -EOPNOTSUPP)
			return ret;
	}
	ret = vfs_fallocate(dev->file, FALLOC_FL_ZERO_RANGE |
			    FALLOC_FL_KEEP_SIZE, pos, len);
	if (ret != -EOPNOTSUPP)
		return ret;
	return vbs_write_zeroes_slow(dev, pos, len);
}

/*
 * In write-through mode the driver sends no FLUSH: a completed discard or
 * write zeroes must be durable like a write (zeroes written as pages, an
 * extent change), or the old data can come back after a power cut.
 */
static int vbs_dwz_sync(struct vbs_dev *dev, struct vbs_req *req)
{
	loff_t start = LLONG_MAX, end = 0;
	unsigned int i;

	for (i = 0; i < req->dwz_count; i++) {
		loff_t pos = le64_to_cpu(req->dwz[i].sector) << SECTOR_SHIFT;
		u64 len = (u64)le32_to_cpu(req->dwz[i].num_sectors) <<
			  SECTOR_SHIFT;

		if (!len)
			continue;
		start = min(start, pos);
		end = max_t(loff_t, end, pos + len - 1);
	}
	if (start > end)
		return 0;
	return vfs_fsync_range(dev->file, start, end, 1);
}

static void vbs_blocking_work(struct work_struct *work)
{
	struct vbs_req *req = container_of(work, struct vbs_req, work);
	struct vbs_dev *dev = req->vq->dev;
	unsigned int i;
	int ret = 0;

	switch (req->type) {
	case VIRTIO_BLK_T_FLUSH:
		/* Data and the metadata needed to read it back: durable. */
		ret = vfs_fsync(dev->file, 0);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		for (i = 0; i < req->dwz_count && !ret; i++)
			ret = vbs_dwz_one(dev, req->type, &req->dwz[i]);
		if (!ret && READ_ONCE(dev->writethrough))
			ret = vbs_dwz_sync(dev, req);
		break;
	default:
		ret = -EOPNOTSUPP;
		break;
	}
	req->ret = ret;
	req->end_io(req, ret);
}

/**
 * vbs_backend_submit() - start a validated request on the backing
 * @req: the request; data requests have their bio_vecs built
 * @end_io: called once the backing is done with @req, in any context but
 *	NMI, possibly before this returns: with the bytes read or written, 0
 *	for the other types, or -errno
 */
void vbs_backend_submit(struct vbs_req *req,
			void (*end_io)(struct vbs_req *req, long ret))
{
	req->end_io = end_io;
	if (req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_OUT) {
		vbs_rw_submit(req);
		return;
	}
	INIT_WORK(&req->work, vbs_blocking_work);
	queue_work(vbs_io_wq, &req->work);
}

/**
 * vbs_iopoll() - reap polled direct I/O of a virtqueue
 * @vq: the virtqueue; called by the worker only
 *
 * Completions run vbs_rw_done() from inside ->iopoll().
 */
void vbs_iopoll(struct vbs_vq *vq)
{
	struct vbs_req *req;

	list_for_each_entry(req, &vq->polled, poll_node) {
		struct file *file = req->iocb.ki_filp;

		/* Pairs with vbs_rw_done(). */
		if (smp_load_acquire(&req->iopoll_done))
			continue;
		file->f_op->iopoll(&req->iocb, NULL, BLK_POLL_ONESHOT);
	}
}

/**
 * vbs_backend_init() - create the workqueue of blocking backing operations
 *
 * Called once at module load, before any device exists.
 *
 * Return: 0 or -ENOMEM.
 */
int vbs_backend_init(void)
{
	vbs_io_wq = alloc_workqueue("vdpa_blk_sw", WQ_UNBOUND | WQ_MEM_RECLAIM,
				    WQ_MAX_ACTIVE);
	return vbs_io_wq ? 0 : -ENOMEM;
}

/**
 * vbs_backend_exit() - destroy that workqueue, waiting for its last items
 *
 * Called at module unload, once every device is gone: their work items
 * have completed their requests, but may still be returning.
 */
void vbs_backend_exit(void)
{
	destroy_workqueue(vbs_io_wq);
}
