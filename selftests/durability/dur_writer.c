// SPDX-License-Identifier: GPL-2.0
/*
 * dur_writer: write self-describing blocks to a disk with O_DIRECT from
 * several threads, and record which writes were acknowledged at each
 * checkpoint, for lw_replay to check against a dm-log-writes log of the
 * disk's backing.
 *
 * Each thread owns the blocks b with b % threads == its index, so writes to
 * one block never overlap and a block's sequence numbers only grow.  A
 * block's sequence number is published (release) only after pwrite()
 * returned the full length.  The main thread takes a checkpoint every
 * --interval-ms, while the writers keep writing:
 *
 *   --mode flush   snapshot; mark "nf-K" (kind MUST_MISS: nothing flushed
 *                  these writes yet, so the log must lack some of them; the
 *                  negative control); fsync(); mark "f-K" with the same
 *                  snapshot (kind MUST_HOLD: every write acknowledged
 *                  before the FLUSH was sent is durable).
 *   --mode wt      (write cache off) snapshot; mark "wt-K" (MUST_HOLD: each
 *                  acknowledged write is already durable, no FLUSH sent).
 *   --mode load    no checkpoint: just load for the lifecycle races (test
 *                  44), until --rounds * --interval-ms pass or the disk
 *                  goes away; a write failing with EIO, ENXIO, ENODEV or
 *                  ENOSPC (a deleted disk has no capacity)
 *                  ends the run with status 0, any other error with 1.
 *
 * A mark is "dmsetup message LW 0 mark NAME"; dm-log-writes puts it in the
 * log after every write it had logged by then (writes are logged at the
 * next FLUSH after they complete, FUA writes as soon as they complete).
 *
 * usage: dur_writer --dev DEV --mode flush|wt|load [--lw DMNAME --journal FILE]
 *                   [--blocks N] [--bs BYTES] [--offset BYTES]
 *                   [--threads T] [--rounds R] [--interval-ms MS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dur.h"

static struct {
	const char *dev, *lw, *journal;
	bool wt;
	uint64_t nblocks, bs, offset;
	unsigned int threads, rounds, interval_ms;
	int fd;
	uint64_t *acked;	/* per block, last acknowledged seq */
	uint64_t seq;		/* last issued (atomic) */
	uint64_t epoch;		/* checkpoint round (atomic) */
	uint64_t nwrites;	/* acknowledged writes (atomic) */
	int stop;		/* (atomic) */
	bool load;
	int err;		/* first write error in load mode (atomic) */
	FILE *jf;
} w = {
	.nblocks = 4096, .bs = 4096, .threads = 4, .rounds = 10,
	.interval_ms = 300,
};

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("dur_writer: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *writer(void *arg)
{
	unsigned int t = (uintptr_t)arg;
	uint64_t rs = dur_mix(t + 1), mine = (w.nblocks - t + w.threads - 1) / w.threads;
	void *buf;

	if (posix_memalign(&buf, 4096, w.bs))
		die("no memory");
	while (!__atomic_load_n(&w.stop, __ATOMIC_ACQUIRE)) {
		uint64_t b, seq;
		ssize_t n;

		rs = dur_mix(rs);
		b = (rs % mine) * w.threads + t;
		seq = __atomic_add_fetch(&w.seq, 1, __ATOMIC_RELAXED);
		dur_fill(buf, w.bs, b, seq,
			 __atomic_load_n(&w.epoch, __ATOMIC_RELAXED));
		n = pwrite(w.fd, buf, w.bs, w.offset + b * w.bs);
		if (n < 0 && w.load) {
			int zero = 0;

			__atomic_compare_exchange_n(&w.err, &zero, errno, false,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
			__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
			break;
		}
		if (n != (ssize_t)w.bs)
			die("write of block %" PRIu64 " (seq %" PRIu64 "): %s",
			    b, seq, n < 0 ? strerror(errno) : "short write");
		/* Acknowledged: from here on it must survive the next FLUSH. */
		__atomic_store_n(&w.acked[b], seq, __ATOMIC_RELEASE);
		__atomic_add_fetch(&w.nwrites, 1, __ATOMIC_RELAXED);
	}
	free(buf);
	return NULL;
}

/* Put a mark in the log; returns only once dm-log-writes queued it. */
static void mark(const char *name)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid) {
		execlp("dmsetup", "dmsetup", "message", w.lw, "0", "mark", name,
		       (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		die("dmsetup message %s 0 mark %s failed", w.lw, name);
}

static void journal(const char *name, uint64_t kind, const uint64_t *snap,
		    uint64_t max_seq)
{
	struct dur_jmark m = { .kind = kind, .max_seq = max_seq };

	snprintf(m.name, sizeof(m.name), "%s", name);
	if (fwrite(&m, sizeof(m), 1, w.jf) != 1 ||
	    fwrite(snap, 8, w.nblocks, w.jf) != w.nblocks)
		die("writing the journal: %s", strerror(errno));
}

static void msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "lw", required_argument, NULL, 'l' },
		{ "journal", required_argument, NULL, 'j' },
		{ "mode", required_argument, NULL, 'm' },
		{ "blocks", required_argument, NULL, 'n' },
		{ "bs", required_argument, NULL, 'b' },
		{ "offset", required_argument, NULL, 'o' },
		{ "threads", required_argument, NULL, 't' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	struct dur_jhdr jh = { .magic = DUR_JMAGIC };
	uint64_t *snap, max_seq, total_snap = 0;
	pthread_t *tids;
	unsigned int t, r;
	const char *mode = NULL;
	char name[DUR_NAME_MAX];
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': w.dev = optarg; break;
		case 'l': w.lw = optarg; break;
		case 'j': w.journal = optarg; break;
		case 'm': mode = optarg; break;
		case 'n': w.nblocks = strtoull(optarg, NULL, 0); break;
		case 'b': w.bs = strtoull(optarg, NULL, 0); break;
		case 'o': w.offset = strtoull(optarg, NULL, 0); break;
		case 't': w.threads = strtoul(optarg, NULL, 0); break;
		case 'r': w.rounds = strtoul(optarg, NULL, 0); break;
		case 'i': w.interval_ms = strtoul(optarg, NULL, 0); break;
		default: die("bad option (see the comment at the top)");
		}
	}
	if (!w.dev || !mode)
		die("--dev and --mode are required");
	if (strcmp(mode, "flush") && strcmp(mode, "wt") && strcmp(mode, "load"))
		die("--mode flush, wt or load");
	w.wt = !strcmp(mode, "wt");
	w.load = !strcmp(mode, "load");
	if (!w.load && (!w.lw || !w.journal))
		die("--lw and --journal are required");
	if (w.load)
		w.journal = "/dev/null";
	if (!w.nblocks || w.bs < 512 || w.bs % 512 || !w.threads ||
	    w.threads > w.nblocks || !w.rounds)
		die("bad sizes");

	w.fd = open(w.dev, O_RDWR | O_DIRECT);
	if (w.fd < 0)
		die("open %s: %s", w.dev, strerror(errno));
	w.acked = calloc(w.nblocks, 8);
	snap = calloc(w.nblocks, 8);
	tids = calloc(w.threads, sizeof(*tids));
	w.jf = fopen(w.journal, "w");
	if (!w.acked || !snap || !tids || !w.jf)
		die("set-up failed: %s", strerror(errno));
	jh.nblocks = w.nblocks;
	jh.bs = w.bs;
	jh.offset = w.offset;
	if (fwrite(&jh, sizeof(jh), 1, w.jf) != 1)
		die("writing the journal: %s", strerror(errno));

	for (t = 0; t < w.threads; t++)
		if (pthread_create(&tids[t], NULL, writer, (void *)(uintptr_t)t))
			die("pthread_create failed");

	for (r = 1; r <= w.rounds; r++) {
		uint64_t b, n = 0;

		msleep(w.interval_ms);
		if (w.load) {
			if (__atomic_load_n(&w.stop, __ATOMIC_ACQUIRE))
				break;
			continue;
		}
		/* Seqs are published after their acknowledgement only. */
		max_seq = __atomic_load_n(&w.seq, __ATOMIC_ACQUIRE);
		for (b = 0; b < w.nblocks; b++) {
			snap[b] = __atomic_load_n(&w.acked[b], __ATOMIC_ACQUIRE);
			n += !!snap[b];
		}
		total_snap = n;
		__atomic_store_n(&w.epoch, r, __ATOMIC_RELAXED);
		if (w.wt) {
			snprintf(name, sizeof(name), "wt-%u", r);
			mark(name);
			journal(name, DUR_MUST_HOLD, snap, max_seq);
			continue;
		}
		snprintf(name, sizeof(name), "nf-%u", r);
		mark(name);
		journal(name, DUR_MUST_MISS, snap, max_seq);
		if (fsync(w.fd))
			die("fsync: %s", strerror(errno));
		snprintf(name, sizeof(name), "f-%u", r);
		mark(name);
		journal(name, DUR_MUST_HOLD, snap, max_seq);
	}
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	for (t = 0; t < w.threads; t++)
		pthread_join(tids[t], NULL);
	if (fclose(w.jf))
		die("writing the journal: %s", strerror(errno));
	if (w.load) {
		if (w.err && w.err != EIO && w.err != ENXIO && w.err != ENODEV &&
		    w.err != ENOSPC)
			die("write: %s", strerror(w.err));
		return 0;
	}
	printf("dur_writer: mode %s, %u checkpoints, %" PRIu64
	       " acknowledged writes, %" PRIu64 " blocks written at the last checkpoint\n",
	       mode, w.rounds, w.nwrites, total_snap);
	return 0;
}
