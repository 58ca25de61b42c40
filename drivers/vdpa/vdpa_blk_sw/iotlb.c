// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa-blk-sw: guest address translation.
 *
 * vringh's own translator is static and its pull/push helpers copy, so
 * the data path translates descriptor IOVAs here, into bio_vecs over the
 * guest's pages, checking every range and the access direction.
 *
 * One address space per device.  Until a vhost-vdpa user installs a
 * mapping, the IOTLB is an identity map (IOVA == physical address), which
 * is what virtio-vdpa's DMA API gives a device without an IOMMU, as in
 * vdpa_sim.  That map reaches all of the host's memory, so it is honoured
 * only for the in-kernel virtio_vdpa driver: any other driver (vhost-vdpa's
 * userspace) that starts the device without installing a mapping gets an
 * empty address space instead.
 *
 * Lifetime of what a translation gives.  In PA mode the tree holds
 * physical addresses of pages vhost-vdpa pinned, but vhost-vdpa unpins
 * them before it tells the device (vhost_vdpa_pa_unmap() runs before
 * set_map(), and inside an IOTLB batch set_map() waits for a BATCH_END the
 * owner may never send).  So every entry of the device's copy holds a
 * reference of its own on each of its pages (VBS_MAP_HELD), taken while
 * vhost-vdpa still pins them and dropped only after a grace period of
 * @iotlb_srcu once the entry left the copy.  An entry that stays the same
 * across set_map() keeps its references: taking and dropping them is in
 * proportion to what changed (finding the change still walks both
 * trees).  A request holds an SRCU read-side section from translation
 * until its completion is published, the worker holds one
 * over each pass (vringh's ring accesses), and a set_map() that removes or
 * changes a mapping waits for a grace period, so no request uses a page of
 * it once set_map() returns.  A set_map() that only adds mappings never
 * waits: vhost-vdpa calls it holding the owner's mmap_lock (its map path),
 * while a VA-mode worker may be faulting on that mm inside its read-side
 * section, and waiting there would close a cycle with any queued mmap_lock
 * writer (khugepaged, mmap()).  vhost-vdpa also removes under that lock,
 * but only when a map ioctl fails half way, the ranges it had just added.
 * In VA mode the tree holds user addresses and each request pins what it
 * uses, so the copy holds no page.
 *
 * The used rings.  vringh writes used->flags, used->idx and avail_event
 * after translating them for reading (putu16_iotlb() asks VHOST_MAP_RO), so
 * an owner could have them written into a page it may only read, such as
 * the page cache of a read-only file.  The device refuses that itself:
 * while a queue runs, no byte of its used ring may be mapped without write
 * permission.  A queue that becomes ready over such a mapping breaks the
 * device at once (under @dev->lock: no pass runs), and set_map() leaves
 * such an entry out of the copy it installs, so that vringh finds nothing
 * to write through, and breaks the device too.
 *
 * The tree's pointer never changes (vringh reads it outside the lock):
 * set_map() builds the new tree aside and exchanges the contents under
 * @iotlb_lock, so readers see the old or the new address space whole.
 */

#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <uapi/linux/vhost_types.h>

#include "vdpa_blk_sw.h"

static int vbs_iotlb_add_identity(struct vhost_iotlb *iotlb)
{
	return vhost_iotlb_add_range(iotlb, 0, ULLONG_MAX, 0, VHOST_MAP_RW);
}

/* An entry of the device's copy that holds a reference on each of its pages. */
#define VBS_MAP_HELD	((void *)1UL)

static void vbs_pages_put(unsigned long pfn, unsigned long npages)
{
	while (npages) {
		struct page *page = pfn_to_page(pfn);
		struct folio *folio = page_folio(page);
		unsigned long n = folio_nr_pages(folio) -
				  folio_page_idx(folio, page);

		n = min(n, npages);
		folio_put_refs(folio, n);
		pfn += n;
		npages -= n;
		cond_resched();
	}
}

/*
 * Take a reference on every page of @map, one atomic per folio.  The pages
 * are pinned by vhost-vdpa while it calls set_map(), so they are alive; a
 * range with a page the kernel does not manage is refused.
 */
static bool vbs_pages_get(const struct vhost_iotlb_map *map)
{
	unsigned long first = PHYS_PFN(map->addr), pfn = first, npages;
	u64 last;

	if (!map->size || check_add_overflow(map->addr, map->size - 1, &last))
		return false;
	npages = PHYS_PFN(last) - first + 1;
	while (pfn - first < npages) {
		struct page *page;
		struct folio *folio;
		unsigned long n;

		if (!pfn_valid(pfn))
			goto fail;
		page = pfn_to_page(pfn);
		folio = page_folio(page);
		n = min_t(unsigned long,
			  folio_nr_pages(folio) - folio_page_idx(folio, page),
			  npages - (pfn - first));
		if (!folio_ref_add_unless(folio, n, 0))
			goto fail;
		pfn += n;
		cond_resched();
	}
	return true;

fail:
	vbs_pages_put(first, pfn - first);
	return false;
}

/* Drop the references vbs_pages_get() took on @map's pages. */
static void vbs_map_pages_put(const struct vhost_iotlb_map *map)
{
	vbs_pages_put(PHYS_PFN(map->addr), PHYS_PFN(map->addr + map->size - 1) -
		      PHYS_PFN(map->addr) + 1);
}

/* Drop the page references @tree's entries hold and free the entries. */
static void vbs_iotlb_release(struct vhost_iotlb *tree)
{
	struct vhost_iotlb_map *map;

	for (map = vhost_iotlb_itree_first(tree, 0, ULLONG_MAX); map;
	     map = vhost_iotlb_itree_next(map, 0, ULLONG_MAX))
		if (map->opaque == VBS_MAP_HELD)
			vbs_map_pages_put(map);
	vhost_iotlb_reset(tree);
}

/**
 * vbs_iotlb_init() - allocate the address space as an identity map
 * @dev: the device
 *
 * Return: 0 or -ENOMEM.
 */
int vbs_iotlb_init(struct vbs_dev *dev)
{
	int ret;

	spin_lock_init(&dev->iotlb_lock);
	mutex_init(&dev->iotlb_mutex);
	dev->iotlb = vhost_iotlb_alloc(VBS_MAX_IOTLB_ENTRIES, 0);
	if (!dev->iotlb)
		return -ENOMEM;
	ret = vbs_iotlb_add_identity(dev->iotlb);
	if (ret) {
		vhost_iotlb_free(dev->iotlb);
		dev->iotlb = NULL;
		return ret;
	}
	dev->iotlb_pt = true;
	return 0;
}

/**
 * vbs_iotlb_free() - release the address space
 * @dev: the device, with no request in flight
 */
void vbs_iotlb_free(struct vbs_dev *dev)
{
	if (dev->iotlb) {
		vbs_iotlb_release(dev->iotlb);
		vhost_iotlb_free(dev->iotlb);
	}
	dev->iotlb = NULL;
}

/*
 * Exchange the entries of two trees: O(1), nothing allocated, so it cannot
 * fail half way.  vhost_iotlb has no such operation; its members are the
 * interval tree's root (no node points back at it) and the list of maps.
 */
static void vbs_iotlb_swap(struct vhost_iotlb *a, struct vhost_iotlb *b)
{
	LIST_HEAD(tmp);

	swap(a->root, b->root);
	list_splice_init(&a->list, &tmp);
	list_splice_init(&b->list, &a->list);
	list_splice(&tmp, &b->list);
	swap(a->limit, b->limit);
	swap(a->nmaps, b->nmaps);
	swap(a->flags, b->flags);
}

/**
 * vbs_iotlb_reset_pt() - go back to the identity map
 * @dev: the device
 *
 * Waits until no request uses a page of the old mapping, then drops the
 * references the old mapping held.
 */
void vbs_iotlb_reset_pt(struct vbs_dev *dev)
{
	struct vhost_iotlb old;

	mutex_lock(&dev->iotlb_mutex);
	if (dev->iotlb_pt) {
		mutex_unlock(&dev->iotlb_mutex);
		return;
	}
	vhost_iotlb_init(&old, dev->iotlb->limit, dev->iotlb->flags);
	spin_lock(&dev->iotlb_lock);
	vbs_iotlb_swap(dev->iotlb, &old);
	/* Cannot fail on an empty tree but for -ENOMEM. */
	if (!vbs_iotlb_add_identity(dev->iotlb))
		dev->iotlb_pt = true;
	spin_unlock(&dev->iotlb_lock);
	mutex_unlock(&dev->iotlb_mutex);
	synchronize_srcu(&dev->iotlb_srcu);
	vbs_iotlb_release(&old);
}

/**
 * vbs_iotlb_check_pt() - the address space a starting driver gets
 * @dev: the device, being started (DRIVER_OK)
 *
 * virtio_vdpa gets the identity map, restored if a vhost-vdpa user left
 * its mappings behind (IOTLB_PERSIST) or an empty space; any other driver
 * that did not install a mapping gets an empty address space.
 */
void vbs_iotlb_check_pt(struct vbs_dev *dev)
{
	struct device_driver *drv = READ_ONCE(dev->vdpa.dev.driver);

	if (drv && !strcmp(drv->name, "virtio_vdpa")) {
		vbs_iotlb_reset_pt(dev);
		return;
	}
	mutex_lock(&dev->iotlb_mutex);
	spin_lock(&dev->iotlb_lock);
	if (dev->iotlb_pt) {
		/* The identity map holds no page. */
		vhost_iotlb_reset(dev->iotlb);
		dev->iotlb_pt = false;
		dev_dbg(&dev->vdpa.dev,
			"started by %s without a mapping: address space empty\n",
			drv ? drv->name : "no driver");
	}
	spin_unlock(&dev->iotlb_lock);
	mutex_unlock(&dev->iotlb_mutex);
}

static bool vbs_map_same(const struct vhost_iotlb_map *a,
			 const struct vhost_iotlb_map *b)
{
	return a->start == b->start && a->last == b->last &&
	       a->addr == b->addr && a->perm == b->perm;
}

/* The entry of @tree identical to @map, or NULL. */
static struct vhost_iotlb_map *vbs_iotlb_same(struct vhost_iotlb *tree,
					      const struct vhost_iotlb_map *map)
{
	/* Entries of a tree from vhost-vdpa do not overlap. */
	struct vhost_iotlb_map *m = vhost_iotlb_itree_first(tree, map->start,
							    map->start);

	return m && vbs_map_same(m, map) ? m : NULL;
}

/* Is every entry of @old also in @new, unchanged? */
static bool vbs_iotlb_subset(struct vhost_iotlb *old, struct vhost_iotlb *new)
{
	struct vhost_iotlb_map *o;

	for (o = vhost_iotlb_itree_first(old, 0, ULLONG_MAX); o;
	     o = vhost_iotlb_itree_next(o, 0, ULLONG_MAX))
		if (!vbs_iotlb_same(new, o))
			return false;
	return true;
}

/*
 * PA mode: give every entry of @tree its page references, moved from the
 * identical entry of @old where there is one (so that the work is in
 * proportion to what changed), else taken anew.  An entry whose pages
 * cannot be held is left out: nothing translates into it.
 * Called with @dev->iotlb_mutex held.
 */
static void vbs_iotlb_hold_pages(struct vbs_dev *dev, struct vhost_iotlb *tree)
{
	struct vhost_iotlb *old = dev->iotlb;
	struct vhost_iotlb_map *map, *next, *o;

	for (map = vhost_iotlb_itree_first(tree, 0, ULLONG_MAX); map;
	     map = next) {
		next = vhost_iotlb_itree_next(map, 0, ULLONG_MAX);
		o = vbs_iotlb_same(old, map);
		if (o && o->opaque == VBS_MAP_HELD) {
			o->opaque = NULL;
			map->opaque = VBS_MAP_HELD;
		} else if (vbs_pages_get(map)) {
			map->opaque = VBS_MAP_HELD;
		} else {
			dev_dbg_ratelimited(&dev->vdpa.dev,
					    "mapping of unmanaged memory at 0x%llx ignored\n",
					    map->start);
			vhost_iotlb_map_free(tree, map);
		}
	}
}

/*
 * Does @map give read-only access to part of a running queue's used ring?
 * Called with @dev->iotlb_mutex held.
 */
static struct vbs_vq *vbs_map_ro_used(struct vbs_dev *dev,
				      const struct vhost_iotlb_map *map)
{
	u32 i;

	if (map->perm & VHOST_MAP_WO)
		return NULL;
	for (i = 0; i < dev->nvqs; i++) {
		struct vbs_vq *vq = &dev->vqs[i];
		u64 last;

		/* A ring past the top of the address space broke at ready. */
		if (!vq->used_len ||
		    check_add_overflow(vq->used_iova, (u64)vq->used_len - 1,
				       &last))
			continue;
		if (map->start <= last && map->last >= vq->used_iova)
			return vq;
	}
	return NULL;
}

/* Is any byte of [iova, iova + len) mapped without write permission? */
static bool vbs_iotlb_range_ro(struct vhost_iotlb *tree, u64 iova, u64 len)
{
	struct vhost_iotlb_map *map;
	u64 last;

	if (!len)
		return false;
	if (check_add_overflow(iova, len - 1, &last))
		return true;
	for (map = vhost_iotlb_itree_first(tree, iova, last); map;
	     map = vhost_iotlb_itree_next(map, iova, last))
		if (!(map->perm & VHOST_MAP_WO))
			return true;
	return false;
}

/*
 * Leave out of @tree every entry that maps part of a running queue's used
 * ring without write permission, and break the device: vringh's writes
 * there then find no mapping and fail.  Called with @dev->iotlb_mutex held.
 */
static void vbs_iotlb_drop_ro_used(struct vbs_dev *dev,
				   struct vhost_iotlb *tree)
{
	struct vhost_iotlb_map *map, *next;
	struct vbs_vq *vq;

	for (map = vhost_iotlb_itree_first(tree, 0, ULLONG_MAX); map;
	     map = next) {
		next = vhost_iotlb_itree_next(map, 0, ULLONG_MAX);
		vq = vbs_map_ro_used(dev, map);
		if (vq) {
			vhost_iotlb_map_free(tree, map);
			vbs_dev_break_async(dev, vq,
					    "used ring mapped read-only");
		}
	}
}

/**
 * vbs_iotlb_watch_used() - start or stop checking a queue's used ring
 * @dev: the device
 * @vq: the queue, becoming ready (@len > 0) or stopping (@len 0)
 * @iova: address of its used ring
 * @len: bytes the device may write there (flags, idx, ring, avail_event)
 *
 * From then on every set_map() checks the ring too (see the top of the
 * file).  Serialised with set_map() by @dev->iotlb_mutex, so that no map
 * goes unchecked between the two.
 *
 * Return: 0, or -EPERM when the current address space maps part of the
 * ring without write permission (the caller breaks the device).
 */
int vbs_iotlb_watch_used(struct vbs_dev *dev, struct vbs_vq *vq, u64 iova,
			 u32 len)
{
	int ret = 0;

	mutex_lock(&dev->iotlb_mutex);
	vq->used_iova = iova;
	vq->used_len = len;
	if (vbs_iotlb_range_ro(dev->iotlb, iova, len))
		ret = -EPERM;
	mutex_unlock(&dev->iotlb_mutex);
	return ret;
}

/*
 * Walk @old and @new in address order (the entries of each do not overlap)
 * and call @fn for every entry of @old that @new lacks (@gone) and every
 * entry of @new that @old lacks; an entry that changed is both.  Stops at
 * the first non-zero result of @fn and returns it.
 */
static int vbs_iotlb_diff(struct vhost_iotlb *old, struct vhost_iotlb *new,
			  int (*fn)(struct vhost_iotlb_map *map, bool gone,
				    void *ctx),
			  void *ctx)
{
	struct vhost_iotlb_map *o = vhost_iotlb_itree_first(old, 0, ULLONG_MAX);
	struct vhost_iotlb_map *n = vhost_iotlb_itree_first(new, 0, ULLONG_MAX);
	int ret = 0;

	while ((o || n) && !ret) {
		if (o && n && vbs_map_same(o, n)) {
			o = vhost_iotlb_itree_next(o, 0, ULLONG_MAX);
			n = vhost_iotlb_itree_next(n, 0, ULLONG_MAX);
		} else if (o && (!n || o->start <= n->start)) {
			ret = fn(o, true, ctx);
			o = vhost_iotlb_itree_next(o, 0, ULLONG_MAX);
		} else {
			ret = fn(n, false, ctx);
			n = vhost_iotlb_itree_next(n, 0, ULLONG_MAX);
		}
	}
	return ret;
}

/* Entries set_map() adds in place at most; more are copied aside. */
#define VBS_ADD_IN_PLACE	32

/* What a set_map() changes, for the in-place paths. */
struct vbs_delta {
	unsigned int added;
	struct vhost_iotlb_map *add[VBS_ADD_IN_PLACE];
	struct vhost_iotlb *removed;
};

/*
 * Note one difference found by vbs_iotlb_diff(): a removal goes into
 * @d->removed, an addition into @d->add.  -E2BIG ends the walk as soon as
 * the change is not one the in-place paths take: both kinds, or too many
 * additions.
 */
static int vbs_delta_collect(struct vhost_iotlb_map *map, bool gone,
			     void *ctx)
{
	struct vbs_delta *d = ctx;

	if (gone) {
		if (d->added)
			return -E2BIG;
		return vhost_iotlb_add_range_ctx(d->removed, map->start,
						 map->last, map->addr,
						 map->perm, map->opaque);
	}
	if (d->removed->nmaps || d->added == VBS_ADD_IN_PLACE)
		return -E2BIG;
	d->add[d->added++] = map;
	return 0;
}

/*
 * set_map() that only adds a few entries (vhost-vdpa's map path calls it
 * once per physically contiguous run): insert them under the lock rather
 * than copy the whole tree.  On failure nothing changed.
 * Called with @dev->iotlb_mutex held.
 */
static int vbs_iotlb_add_in_place(struct vbs_dev *dev, struct vbs_delta *d)
{
	void *held = dev->vdpa.use_va ? NULL : VBS_MAP_HELD;
	unsigned int i, done;
	struct vbs_vq *vq;
	int ret = 0;

	for (i = 0; i < d->added; i++) {
		vq = vbs_map_ro_used(dev, d->add[i]);
		if (vq) {
			vbs_dev_break_async(dev, vq,
					    "used ring mapped read-only");
			d->add[i] = NULL;
		} else if (held && !vbs_pages_get(d->add[i])) {
			d->add[i] = NULL;
		}
	}

	spin_lock(&dev->iotlb_lock);
	for (done = 0; done < d->added && !ret; done++)
		if (d->add[done])
			ret = vhost_iotlb_add_range_ctx(dev->iotlb,
							d->add[done]->start,
							d->add[done]->last,
							d->add[done]->addr,
							d->add[done]->perm,
							held);
	if (ret) {
		/* The last one failed: take the others out again. */
		for (i = 0; i + 1 < done; i++)
			if (d->add[i])
				vhost_iotlb_map_free(dev->iotlb,
						     vbs_iotlb_same(dev->iotlb,
								    d->add[i]));
	}
	spin_unlock(&dev->iotlb_lock);

	if (ret && held)
		for (i = 0; i < d->added; i++)
			if (d->add[i])
				vbs_map_pages_put(d->add[i]);
	return ret;
}

/*
 * set_map() that only removes entries (vhost-vdpa's unmap path): take
 * those in @d->removed out under the lock; the caller releases them after
 * a grace period.  Called with @dev->iotlb_mutex held.
 */
static void vbs_iotlb_remove_in_place(struct vbs_dev *dev,
				      struct vbs_delta *d)
{
	struct vhost_iotlb_map *map;

	spin_lock(&dev->iotlb_lock);
	for (map = vhost_iotlb_itree_first(d->removed, 0, ULLONG_MAX); map;
	     map = vhost_iotlb_itree_next(map, 0, ULLONG_MAX))
		vhost_iotlb_map_free(dev->iotlb,
				     vbs_iotlb_same(dev->iotlb, map));
	spin_unlock(&dev->iotlb_lock);
}

/*
 * The usual set_map()s change a few entries of a large tree: apply those
 * in place, after one walk of both trees that finds them.  Returns 0 when
 * done (@removed then holds what went away), else the whole tree must be
 * copied.  Called with @dev->iotlb_mutex held.
 */
static int vbs_iotlb_set_in_place(struct vbs_dev *dev, struct vhost_iotlb *src,
				  struct vhost_iotlb *removed)
{
	struct vbs_delta d = { .removed = removed };
	int ret;

	if (dev->iotlb_pt)
		return -EINVAL;
	ret = vbs_iotlb_diff(dev->iotlb, src, vbs_delta_collect, &d);
	if (ret) {
		vhost_iotlb_reset(removed);
		return ret;
	}
	if (d.added)
		return vbs_iotlb_add_in_place(dev, &d);
	vbs_iotlb_remove_in_place(dev, &d);
	return 0;
}

/**
 * vbs_iotlb_set() - replace the address space with @src's
 * @dev: the device
 * @src: vhost-vdpa's tree for the address space
 *
 * The device's tree takes every entry of @src: vhost-vdpa already bounded
 * their number (max_iotlb_entries; in PA mode, RLIMIT_MEMLOCK too), and
 * refusing some would fail a guest whose memory vhost-vdpa accepted, such
 * as 256 MiB of 4 KiB shmem pages.  A change of only additions (up to
 * VBS_ADD_IN_PLACE) or only removals is applied in place; any other is
 * built aside, in a copy of @src, and exchanged whole.  Either way readers,
 * under @dev->iotlb_lock, see the old or the new address space whole, and
 * a failure leaves the old one in place.  The work is a walk of both trees
 * plus what changed.  In PA mode the entries hold their pages (see the top
 * of the file).  An entry that maps a running queue's used ring read-only
 * is left out and breaks the device.  Neither @dev->lock nor a worker is
 * waited for, only requests using a mapping that went away: vhost-vdpa
 * calls this for an UPDATE outside a batch with the owner's mmap_lock held
 * in VA mode, where such a wait could deadlock with a request faulting in
 * that mm, and an UPDATE only adds.
 *
 * Return: 0 or -ENOMEM.
 */
int vbs_iotlb_set(struct vbs_dev *dev, struct vhost_iotlb *src)
{
	struct vhost_iotlb_map *map;
	struct vhost_iotlb tree;
	bool shrunk;
	int ret;

	vhost_iotlb_init(&tree, UINT_MAX, 0);
	mutex_lock(&dev->iotlb_mutex);
	ret = vbs_iotlb_set_in_place(dev, src, &tree);
	mutex_unlock(&dev->iotlb_mutex);
	if (!ret) {
		/* @tree holds the entries removed. */
		if (tree.nmaps)
			synchronize_srcu(&dev->iotlb_srcu);
		vbs_iotlb_release(&tree);
		return 0;
	}

	vhost_iotlb_init(&tree, max_t(unsigned int, src->nmaps,
				      VBS_MAX_IOTLB_ENTRIES), 0);
	for (map = vhost_iotlb_itree_first(src, 0, ULLONG_MAX); map;
	     map = vhost_iotlb_itree_next(map, 0, ULLONG_MAX)) {
		ret = vhost_iotlb_add_range(&tree, map->start, map->last,
					    map->addr, map->perm);
		if (ret) {
			vhost_iotlb_reset(&tree);
			return ret;
		}
	}

	mutex_lock(&dev->iotlb_mutex);
	vbs_iotlb_drop_ro_used(dev, &tree);
	/*
	 * The identity map holds no page, and its only user, virtio_vdpa,
	 * left with a reset before vhost-vdpa could send this: replacing it
	 * waits for no one.  That matters, as vhost-vdpa's first UPDATE after
	 * a reset (without IOTLB_PERSIST) comes here under the owner's
	 * mmap_lock in VA mode, and a request holding iotlb_srcu may be
	 * faulting pages of that mm.
	 */
	shrunk = !dev->iotlb_pt && !vbs_iotlb_subset(dev->iotlb, &tree);
	if (!dev->vdpa.use_va)
		vbs_iotlb_hold_pages(dev, &tree);
	spin_lock(&dev->iotlb_lock);
	vbs_iotlb_swap(dev->iotlb, &tree);
	dev->iotlb_pt = false;
	spin_unlock(&dev->iotlb_lock);
	mutex_unlock(&dev->iotlb_mutex);

	/* @tree now holds the old entries. */
	if (shrunk)
		synchronize_srcu(&dev->iotlb_srcu);
	vbs_iotlb_release(&tree);
	return 0;
}

/*
 * Translate [iova, iova + *len) as far as one mapping reaches.  On success
 * *len is cut to the part that mapping covers and *pa is its address.
 * Called with iotlb_lock held.
 */
static int vbs_iotlb_lookup(struct vbs_dev *dev, u64 iova, u64 *len,
			    u32 perm, u64 *pa)
{
	struct vhost_iotlb_map *map;
	u64 last, reach;

	if (!*len || check_add_overflow(iova, *len - 1, &last))
		return -EFAULT;

	map = vhost_iotlb_itree_first(dev->iotlb, iova, last);
	if (!map || map->start > iova)
		return -EFAULT;
	if ((map->perm & perm) != perm)
		return -EPERM;

	/* Bytes from iova to the map's end, minus one: cannot overflow. */
	reach = map->last - iova;
	if (*len - 1 > reach)
		*len = reach + 1;
	if (check_add_overflow(map->addr, iova - map->start, pa))
		return -EFAULT;
	return 0;
}

/*
 * A physically contiguous range becomes one multi-page bio_vec; both ends
 * must be memory the kernel manages.
 */
static int vbs_pa_to_bvec(u64 pa, u64 len, struct bio_vec *bv)
{
	u64 last = pa + len - 1;

	if (len > UINT_MAX || last < pa)
		return -EFAULT;
	if (!pfn_valid(PHYS_PFN(pa)) || !pfn_valid(PHYS_PFN(last)))
		return -EFAULT;
	bvec_set_page(bv, pfn_to_page(PHYS_PFN(pa)), len, offset_in_page(pa));
	return 0;
}

/* One translation step: the part of [iova, iova + *len) one mapping covers. */
static int vbs_iotlb_chunk(struct vbs_dev *dev, u64 iova, u64 *len, u32 perm,
			   u64 *addr)
{
	int ret;

	spin_lock(&dev->iotlb_lock);
	ret = vbs_iotlb_lookup(dev, iova, len, perm, addr);
	spin_unlock(&dev->iotlb_lock);
	return ret;
}

/*
 * Release user pages pinned by vbs_va_to_bvecs(), one per bio_vec; @dirty:
 * the device wrote to them.  Process context only (marking a page dirty
 * may sleep).
 */
static void vbs_unpin_bvecs(struct bio_vec *bv, unsigned int n, bool dirty)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		unpin_user_pages_dirty_lock(&bv[i].bv_page, 1, dirty);
}

/*
 * VA mode: pin the user pages of [uaddr, uaddr + len) in the adopted mm
 * (the worker runs with kthread_use_mm()), one bio_vec per page.
 */
static int vbs_va_to_bvecs(u64 uaddr, u64 len, bool write,
			   struct bio_vec *bv, unsigned int *n,
			   unsigned int max)
{
	unsigned int gup = write ? FOLL_WRITE : 0;
	struct page *pages[16];

	while (len) {
		unsigned int off = offset_in_page(uaddr), i;
		u64 span = min_t(u64, len, ARRAY_SIZE(pages) * PAGE_SIZE - off);
		int nr = DIV_ROUND_UP(off + span, PAGE_SIZE), got;

		if (uaddr > TASK_SIZE_MAX || *n + nr > max)
			return uaddr > TASK_SIZE_MAX ? -EFAULT : -E2BIG;
		got = pin_user_pages_fast(uaddr & PAGE_MASK, nr, gup, pages);
		if (got != nr) {
			if (got > 0)
				unpin_user_pages(pages, got);
			return -EFAULT;
		}
		for (i = 0; i < nr; i++) {
			unsigned int plen = min_t(u64, span, PAGE_SIZE - off);

			bvec_set_page(&bv[(*n)++], pages[i], plen, off);
			span -= plen;
			len -= plen;
			uaddr += plen;
			off = 0;
		}
	}
	return 0;
}

/*
 * Build bio_vecs over @len bytes of @kiov, from its current position, into
 * @bv (@max entries); *@nr says how many were filled.  @perm: VHOST_MAP_RO
 * when the device reads, VHOST_MAP_WO when it writes.  @va: the address
 * space holds user addresses (vhost-vdpa VA mode): pin the pages, one
 * bio_vec each.  On failure nothing stays pinned.
 *
 * Return: 0, -EFAULT for an address outside every mapping (or not memory),
 * -EPERM for a mapping without @perm, -E2BIG when @max is too small.
 */
static int vbs_iotlb_map_kiov(struct vbs_dev *dev, struct vringh_kiov *kiov,
			      size_t len, u32 perm, bool va, struct bio_vec *bv,
			      unsigned int max, unsigned int *nr)
{
	unsigned int i, n = 0;
	u64 end = 0;	/* PA mode: physical address just past bv[n - 1] */
	int ret = 0;

	for (i = kiov->i; i < kiov->used && len; i++) {
		u64 iova = (u64)(uintptr_t)kiov->iov[i].iov_base;
		u64 left = min_t(u64, kiov->iov[i].iov_len, len);

		len -= left;
		while (left) {
			u64 chunk = left, addr;

			ret = vbs_iotlb_chunk(dev, iova, &chunk, perm, &addr);
			if (ret)
				goto fail;
			if (va) {
				ret = vbs_va_to_bvecs(addr, chunk,
						      perm & VHOST_MAP_WO,
						      bv, &n, max);
				if (ret)
					goto fail;
			} else if (n && end == addr &&
				   (u64)bv[n - 1].bv_len + chunk <= UINT_MAX) {
				/* Physically contiguous: one bio_vec. */
				if (!pfn_valid(PHYS_PFN(addr + chunk - 1))) {
					ret = -EFAULT;
					goto fail;
				}
				bv[n - 1].bv_len += chunk;
				end += chunk;
			} else {
				ret = n == max ? -E2BIG :
				      vbs_pa_to_bvec(addr, chunk, &bv[n]);
				if (ret)
					goto fail;
				n++;
				end = addr + chunk;
			}
			iova += chunk;
			left -= chunk;
		}
	}
	if (len) {
		ret = -EFAULT;
		goto fail;
	}
	*nr = n;
	return 0;

fail:
	if (va)
		vbs_unpin_bvecs(bv, n, false);
	*nr = 0;
	return ret;
}

/*
 * The page holding the guest byte at @iova, and the byte's offset in it.
 * @va: VA mode: the page is pinned; release it with unpin_user_page().
 */
static int vbs_iotlb_locate(struct vbs_dev *dev, u64 iova, u32 perm, bool va,
			    struct page **page, unsigned int *off)
{
	u64 len = 1, addr;
	int ret;

	ret = vbs_iotlb_chunk(dev, iova, &len, perm, &addr);
	if (ret)
		return ret;
	*off = offset_in_page(addr);
	if (va) {
		if (addr > TASK_SIZE_MAX)
			return -EFAULT;
		ret = pin_user_pages_fast(addr & PAGE_MASK, 1,
					  perm & VHOST_MAP_WO ? FOLL_WRITE : 0,
					  page);
		return ret == 1 ? 0 : -EFAULT;
	}
	if (!pfn_valid(PHYS_PFN(addr)))
		return -EFAULT;
	*page = pfn_to_page(PHYS_PFN(addr));
	return 0;
}

/*
 * A request's section of @dev->iotlb_srcu ends in another context (the
 * worker's, once the completion is published), which sparse cannot follow:
 * the __release()/__acquire() pair tells it the section leaves the function
 * that takes it.
 */
static int vbs_iotlb_hold(struct vbs_dev *dev)
{
	int idx = srcu_down_read(&dev->iotlb_srcu);

	__release(&dev->iotlb_srcu);
	return idx;
}

static void vbs_iotlb_unhold(struct vbs_dev *dev, int idx)
{
	__acquire(&dev->iotlb_srcu);
	srcu_up_read(&dev->iotlb_srcu, idx);
}

/*
 * The status byte is the last byte of @seg, which the device writes.  A
 * segment that wraps past the end of the address space has no last byte.
 */
static int vbs_iotlb_map_status(struct vbs_dev *dev, struct vbs_req *req,
				const struct kvec *seg)
{
	u64 iova, last;
	bool va = dev->mm;
	int ret;

	if (!seg)
		return -EINVAL;
	iova = (u64)(uintptr_t)seg->iov_base;
	if (check_add_overflow(iova, (u64)seg->iov_len - 1, &last))
		return -EFAULT;
	ret = vbs_iotlb_locate(dev, last, VHOST_MAP_WO, va, &req->status_page,
			       &req->status_off);
	if (ret) {
		req->status_page = NULL;
		return ret;
	}
	req->status_pinned = va;
	return 0;
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
static bool vbs_bvecs_alloc(struct vbs_dev *dev, struct vbs_req *req,
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
 * Give back what vbs_bvecs_alloc() allocated; the inline array stays.
 * The caller has unpinned the pages first.
 */
static void vbs_bvecs_free(struct vbs_dev *dev, struct vbs_req *req)
{
	if (req->bvec && req->bvec != req->inline_bvec) {
		if (req->bvec_pooled)
			mempool_free(req->bvec, dev->bvec_pool);
		else
			kfree(req->bvec);
	}
	req->bvec = NULL;
	req->bvec_pooled = false;
}

/*
 * Build @req->bvec over its @len bytes of data in @kiov.  The array is
 * sized from the request, rather than tried inline first and then taken
 * from the pool: that would pin the first pages twice, and use an order-2
 * array for every request over VBS_INLINE_BVECS pages.
 */
static int vbs_iotlb_map_data(struct vbs_dev *dev, struct vbs_req *req,
			      struct vringh_kiov *kiov, u32 perm)
{
	bool va = dev->mm;
	int ret;

	if (!vbs_bvecs_alloc(dev, req, vbs_kiov_bvecs(kiov, req->len)))
		return -EAGAIN;
	ret = vbs_iotlb_map_kiov(dev, kiov, req->len, perm, va, req->bvec,
				 req->bvec_max, &req->nr_bvec);
	if (ret == -E2BIG && req->bvec_max < VBS_MAX_BVECS) {
		/* The IOTLB split a segment: the largest array, once. */
		vbs_bvecs_free(dev, req);
		if (!vbs_bvecs_alloc(dev, req, VBS_MAX_BVECS))
			return -EAGAIN;
		ret = vbs_iotlb_map_kiov(dev, kiov, req->len, perm, va,
					 req->bvec, req->bvec_max,
					 &req->nr_bvec);
	}
	req->pinned = va && req->nr_bvec;
	return ret;
}

/*
 * Give back what vbs_iotlb_map_req() took.  @data_dirty, @status_dirty:
 * the device wrote to the data pages, to the status byte's page.
 */
static void vbs_iotlb_put_req(struct vbs_dev *dev, struct vbs_req *req,
			      bool data_dirty, bool status_dirty)
{
	if (req->pinned)
		vbs_unpin_bvecs(req->bvec, req->nr_bvec, data_dirty);
	if (req->status_pinned)
		unpin_user_pages_dirty_lock(&req->status_page, 1,
					    status_dirty);
	vbs_bvecs_free(dev, req);
	req->pinned = false;
	req->status_pinned = false;
	vbs_iotlb_unhold(dev, req->srcu_idx);
}

/**
 * vbs_iotlb_map_req() - translate the guest memory one request uses
 * @dev: the device
 * @req: the request; @req->len bytes of data are mapped
 * @status: the segment whose last byte is the status byte, or NULL when
 *	the chain has no device-writable byte
 * @data: the chain part holding the data, from its current position; NULL
 *	for a request without data
 * @perm: VHOST_MAP_RO when the device reads @data, VHOST_MAP_WO when it
 *	writes it
 *
 * Holds the current mappings (a read-side section of @dev->iotlb_srcu)
 * until vbs_iotlb_unmap_req(), so that no set_map() drops a page the
 * request uses.  Then finds the status byte's page (@req->status_page and
 * @req->status_off), and builds @req->bvec over the data: one bio_vec per
 * physically contiguous run (PA mode), or per pinned user page (VA mode).
 * The data is not tried when the status byte cannot be mapped.
 *
 * Called by the worker, which must not sleep waiting for memory: the
 * bio_vec array is taken without waiting, from the device's pool when the
 * request needs more than its inline array.
 *
 * Return: 0 when everything is mapped; -EAGAIN when no bio_vec array was
 * free, with nothing held, so that the request is fetched again once
 * requests in flight give theirs back; any other error is that of the
 * status byte if @req->status_page is NULL, of the data otherwise (-EFAULT
 * for an address outside every mapping or not memory, -EPERM for a
 * mapping without the access needed).  Unless -EAGAIN, the request holds
 * what was mapped until vbs_iotlb_unmap_req().
 */
int vbs_iotlb_map_req(struct vbs_dev *dev, struct vbs_req *req,
		      const struct kvec *status, struct vringh_kiov *data,
		      u32 perm)
{
	int ret;

	req->status_page = NULL;
	req->status_pinned = false;
	req->bvec = NULL;
	req->bvec_pooled = false;
	req->nr_bvec = 0;
	req->pinned = false;

	req->srcu_idx = vbs_iotlb_hold(dev);
	ret = vbs_iotlb_map_status(dev, req, status);
	if (ret || !data)
		return ret;
	ret = vbs_iotlb_map_data(dev, req, data, perm);
	if (ret == -EAGAIN)
		vbs_iotlb_put_req(dev, req, false, false);
	return ret;
}

/**
 * vbs_iotlb_unmap_req() - give back what vbs_iotlb_map_req() mapped
 * @dev: the device
 * @req: a request whose completion was published or dropped: its status
 *	byte's page counts as written
 * @dirty: the device wrote to the data pages (a read from the disk)
 *
 * Unpins the pages (VA mode), frees a bio_vec array larger than the inline
 * one and ends the request's hold on the mappings.  Process context only:
 * marking a page dirty may sleep.
 */
void vbs_iotlb_unmap_req(struct vbs_dev *dev, struct vbs_req *req,
			 bool dirty)
{
	vbs_iotlb_put_req(dev, req, dirty, true);
}
