/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by dur_writer (writes and records what was acknowledged) and
 * lw_replay (replays a dm-log-writes log and checks it).
 *
 * Block format: every block the writer writes is self-describing, so the
 * checker can tell a stale, torn or misplaced block from a good one:
 *
 *   struct dur_hdr, then bytes derived from (block, seq) up to the block
 *   size.  A block is good for sequence s when it equals dur_fill(b, s).
 *
 * Journal format (written by dur_writer, read by lw_replay), host-endian:
 *
 *   struct dur_jhdr
 *   then for each checkpoint: struct dur_jmark, then nblocks u64 values:
 *   the sequence number of the last write to each block that had been
 *   acknowledged when the checkpoint was taken (0: never written).
 */
#ifndef DUR_H
#define DUR_H

#include <stdint.h>
#include <string.h>

#define DUR_MAGIC	0x6475722d626c6b31ULL	/* "dur-blk1" */
#define DUR_JMAGIC	0x6475722d6a726e31ULL	/* "dur-jrn1" */
#define DUR_NAME_MAX	32

struct dur_hdr {
	uint64_t magic;
	uint64_t block;
	uint64_t seq;
	uint64_t epoch;
};

struct dur_jhdr {
	uint64_t magic;
	uint64_t nblocks;
	uint64_t bs;
	uint64_t offset;	/* byte offset of block 0 in the disk */
};

/* What the checkpoint's mark must show once the log is replayed to it. */
enum dur_kind {
	/* After a FLUSH (or in write-through mode): every write is there. */
	DUR_MUST_HOLD = 1,
	/* Negative control, no FLUSH since the writes: some must be missing. */
	DUR_MUST_MISS = 2,
};

struct dur_jmark {
	char name[DUR_NAME_MAX];
	uint64_t kind;
	uint64_t max_seq;	/* highest sequence number issued so far */
};

/* splitmix64: the payload of (block, seq), reproducible by the checker. */
static inline uint64_t dur_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline void dur_fill(void *buf, size_t bs, uint64_t block,
			    uint64_t seq, uint64_t epoch)
{
	struct dur_hdr h = { DUR_MAGIC, block, seq, epoch };
	uint64_t *w = buf, x = dur_mix(block * 0x100000001b3ULL ^ seq);
	size_t i;

	for (i = sizeof(h) / 8; i < bs / 8; i++) {
		x = dur_mix(x);
		w[i] = x;
	}
	memcpy(buf, &h, sizeof(h));
}

#endif
