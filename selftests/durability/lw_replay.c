// SPDX-License-Identifier: GPL-2.0
/*
 * lw_replay: replay a dm-log-writes log onto an image and check it.
 *
 * The log format is the one drivers/md/dm-log-writes.c writes (see
 * Documentation/admin-guide/device-mapper/log-writes.rst).  All fields are
 * little-endian; "ss" is the data device's logical block size, recorded in
 * the super block:
 *
 *   byte 0:  struct log_write_super (magic, version, nr_entries, ss)
 *   byte ss: nr_entries entries, one after the other:
 *            one ss-sized block holding struct log_write_entry (sector,
 *            nr_sectors, flags, data_len), followed for a mark by the mark's
 *            text (data_len bytes); then, unless it is a discard,
 *            nr_sectors * ss bytes of the data written.
 *   sector and nr_sectors count ss-sized blocks of the data device.
 *
 * An entry is logged when the write is durable on the data device: a
 * normal write at the first FLUSH after it completed (the FLUSH entry
 * follows it), a FUA write as soon as it completed.  Replaying entries in
 * order therefore gives what the disk would hold after a power cut at that
 * point.  nr_entries in the super is rewritten after FUA writes and marks
 * and when the target is removed, which also logs every write not yet
 * flushed and a final mark "dm-log-writes-end": remove the target before
 * reading the log.
 *
 * usage: lw_replay --log LOGDEV --image FILE [--end-mark NAME]
 *                  [--journal FILE] [--expect-fua]
 *                  [--expect MARK:OFFSET:FILE ...] [-v]
 *        lw_replay --journal FILE --check-mark NAME --image FILE
 *
 *   --image FILE     the replay target, a file as large as the data device
 *                    that holds what the data device held when the target
 *                    was created (all zeroes for a new one)
 *   --end-mark NAME  stop after the mark NAME (default: the whole log)
 *   --journal FILE   at each mark named in dur_writer's journal, check the
 *                    image: MUST_HOLD marks must have every acknowledged
 *                    write (or a later one), MUST_MISS marks (negative
 *                    control) must lack at least one; every block that is
 *                    not all zeroes must be a complete block dur_writer wrote
 *   --expect-fua     fail if any write entry lacks the FUA flag
 *   --expect MARK:OFFSET:FILE  at the mark MARK, the image from byte
 *                    OFFSET on must equal FILE (for instance what a guest
 *                    wrote, or zeroes where it discarded); repeatable
 *   --check-mark NAME  no replay: check FILE (for instance the backing file
 *                    read from a replayed, mounted file system) against the
 *                    journal's mark NAME
 *
 * Exit status: 0 all checks passed, 1 a check failed, 2 a bad log or usage.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dur.h"

/* From drivers/md/dm-log-writes.c */
#define LOG_FLUSH_FLAG		(1 << 0)
#define LOG_FUA_FLAG		(1 << 1)
#define LOG_DISCARD_FLAG	(1 << 2)
#define LOG_MARK_FLAG		(1 << 3)
#define WRITE_LOG_VERSION	1ULL
#define WRITE_LOG_MAGIC		0x6a736677736872ULL

struct log_write_super {
	uint64_t magic;
	uint64_t version;
	uint64_t nr_entries;
	uint32_t sectorsize;
} __attribute__((packed));

struct log_write_entry {
	uint64_t sector;
	uint64_t nr_sectors;
	uint64_t flags;
	uint64_t data_len;
};

static int verbose;

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("lw_replay: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void read_at(int fd, void *buf, size_t len, uint64_t pos)
{
	ssize_t n;

	while (len) {
		n = pread(fd, buf, len, pos);
		if (n <= 0)
			die(2, "log read at %" PRIu64 ": %s", pos,
			    n ? strerror(errno) : "end of log device");
		buf = (char *)buf + n;
		len -= n;
		pos += n;
	}
}

/* dur_writer's journal, all in memory */
struct jmark {
	struct dur_jmark m;
	uint64_t *seq;
	bool seen;
};

static struct jmark *jm;
static unsigned int njm;
static struct dur_jhdr jh;

static void journal_load(const char *path)
{
	FILE *f = fopen(path, "r");
	struct dur_jmark m;

	if (!f)
		die(2, "%s: %s", path, strerror(errno));
	if (fread(&jh, sizeof(jh), 1, f) != 1 || jh.magic != DUR_JMAGIC ||
	    !jh.nblocks || !jh.bs || jh.bs % 512)
		die(2, "%s: not a dur_writer journal", path);
	while (fread(&m, sizeof(m), 1, f) == 1) {
		jm = realloc(jm, (njm + 1) * sizeof(*jm));
		if (!jm)
			die(2, "no memory");
		jm[njm].m = m;
		jm[njm].m.name[DUR_NAME_MAX - 1] = 0;
		jm[njm].seen = false;
		jm[njm].seq = malloc(jh.nblocks * 8);
		if (!jm[njm].seq ||
		    fread(jm[njm].seq, 8, jh.nblocks, f) != jh.nblocks)
			die(2, "%s: truncated", path);
		njm++;
	}
	fclose(f);
}

/*
 * Check the image at a journal mark.  Returns true when the mark shows
 * what its kind demands.
 */
static bool check_mark(struct jmark *j, const uint8_t *img, uint64_t size)
{
	uint64_t b, missing = 0, bad = 0, newer = 0, first_missing = UINT64_MAX;
	uint8_t *want;
	bool ok;

	if (jh.offset + jh.nblocks * jh.bs > size)
		die(2, "journal covers more than the image");
	want = malloc(jh.bs);
	if (!want)
		die(2, "no memory");
	for (b = 0; b < jh.nblocks; b++) {
		const uint8_t *p = img + jh.offset + b * jh.bs;
		struct dur_hdr h;
		uint64_t s = j->seq[b];

		memcpy(&h, p, sizeof(h));
		if (h.magic == 0 && !memcmp(p, p + 1, jh.bs - 1)) {
			/* all zeroes: never written as far as the log knows */
			if (s) {
				missing++;
				if (first_missing == UINT64_MAX)
					first_missing = b;
			}
			continue;
		}
		dur_fill(want, jh.bs, b, h.seq, h.epoch);
		if (h.magic != DUR_MAGIC || h.block != b || !h.seq) {
			bad++;
			if (verbose)
				fprintf(stderr, "%s: block %" PRIu64 ": not a written block\n",
					j->m.name, b);
			continue;
		}
		if (memcmp(p, want, jh.bs)) {
			bad++;
			if (verbose)
				fprintf(stderr, "%s: block %" PRIu64 " seq %" PRIu64 ": torn or corrupt\n",
					j->m.name, b, h.seq);
			continue;
		}
		if (h.seq < s) {
			missing++;
			if (first_missing == UINT64_MAX)
				first_missing = b;
		} else if (h.seq > s) {
			newer++;
		}
	}
	free(want);
	if (j->m.kind == DUR_MUST_HOLD)
		ok = !missing && !bad;
	else
		ok = missing && !bad;
	printf("lw_replay: mark %s (%s): %" PRIu64 " blocks missing or stale, %" PRIu64
	       " corrupt, %" PRIu64 " newer than acknowledged%s",
	       j->m.name, j->m.kind == DUR_MUST_HOLD ? "must hold" :
	       "negative control, must miss", missing, bad, newer,
	       ok ? ": OK\n" : ": FAIL\n");
	if (missing && first_missing != UINT64_MAX)
		printf("lw_replay:   first missing block %" PRIu64 " (acknowledged seq %" PRIu64 ")\n",
		       first_missing, j->seq[first_missing]);
	return ok;
}

/* --expect: at a mark, a range of the image must equal a file */
struct expect {
	const char *mark, *path;
	uint64_t off;
	bool seen;
};

static struct expect *ex;
static unsigned int nex;

static void expect_add(const char *arg)
{
	const char *c1 = strchr(arg, ':'), *c2;
	char *end;

	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c1 || c1 == arg || !c2 || !c2[1])
		die(2, "--expect %s: not MARK:OFFSET:FILE", arg);
	ex = realloc(ex, (nex + 1) * sizeof(*ex));
	if (!ex)
		die(2, "no memory");
	ex[nex].mark = strndup(arg, c1 - arg);
	ex[nex].off = strtoull(c1 + 1, &end, 0);
	if (end != c2 || !ex[nex].mark)
		die(2, "--expect %s: bad offset", arg);
	ex[nex].path = c2 + 1;
	ex[nex].seen = false;
	nex++;
}

/* Returns true when the image holds the file's bytes at the offset. */
static bool check_expect(const struct expect *e, const uint8_t *img,
			 uint64_t size)
{
	uint64_t i, len, nbad = 0, first = 0;
	uint8_t *want;
	struct stat st;
	int fd;

	fd = open(e->path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st))
		die(2, "%s: %s", e->path, strerror(errno));
	len = st.st_size;
	if (!len || e->off > size || len > size - e->off)
		die(2, "--expect %s: %" PRIu64 " bytes at %" PRIu64
		    " do not fit the image", e->path, len, e->off);
	want = malloc(len);
	if (!want)
		die(2, "no memory");
	read_at(fd, want, len, 0);
	close(fd);
	/* count the 512-byte sectors that differ */
	for (i = 0; i < len; i += 512) {
		uint64_t n = len - i < 512 ? len - i : 512;

		if (memcmp(img + e->off + i, want + i, n)) {
			if (!nbad)
				first = e->off + i;
			nbad++;
		}
	}
	free(want);
	if (!nbad) {
		printf("lw_replay: mark %s: bytes %" PRIu64 "+%" PRIu64
		       " equal %s: OK\n", e->mark, e->off, len, e->path);
		return true;
	}
	printf("lw_replay: mark %s: bytes %" PRIu64 "+%" PRIu64 " differ from %s in %"
	       PRIu64 " sectors, the first at byte %" PRIu64 ": FAIL\n",
	       e->mark, e->off, len, e->path, nbad, first);
	return false;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "image", required_argument, NULL, 'i' },
		{ "end-mark", required_argument, NULL, 'e' },
		{ "journal", required_argument, NULL, 'j' },
		{ "expect-fua", no_argument, NULL, 'f' },
		{ "check-mark", required_argument, NULL, 'c' },
		{ "expect", required_argument, NULL, 'x' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	const char *logp = NULL, *imgp = NULL, *end_mark = NULL, *jp = NULL;
	const char *check = NULL;
	uint64_t nwrite = 0, nfua = 0, nflush = 0, ndiscard = 0, nmark = 0;
	uint64_t nonfua = 0, i, pos, ss, size;
	unsigned int k, checked = 0, failed = 0;
	struct log_write_super super;
	bool expect_fua = false, ended = false;
	struct stat st;
	uint8_t *img, *blk;
	int lfd, ifd, c;

	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 'l': logp = optarg; break;
		case 'i': imgp = optarg; break;
		case 'e': end_mark = optarg; break;
		case 'j': jp = optarg; break;
		case 'f': expect_fua = true; break;
		case 'c': check = optarg; break;
		case 'x': expect_add(optarg); break;
		case 'v': verbose++; break;
		default: die(2, "bad option (see the comment at the top)");
		}
	}
	if (!imgp || !(logp || (check && jp)))
		die(2, "--image and --log, or --journal and --check-mark, are required");
	if (jp)
		journal_load(jp);

	ifd = open(imgp, check ? O_RDONLY : O_RDWR);
	if (ifd < 0 || fstat(ifd, &st))
		die(2, "%s: %s", imgp, strerror(errno));
	size = st.st_size;
	img = mmap(NULL, size, PROT_READ | (check ? 0 : PROT_WRITE), MAP_SHARED,
		   ifd, 0);
	if (img == MAP_FAILED)
		die(2, "mmap %s: %s", imgp, strerror(errno));
	if (check) {
		for (k = 0; k < njm; k++)
			if (!strcmp(jm[k].m.name, check))
				return check_mark(&jm[k], img, size) ? 0 : 1;
		die(2, "no mark %s in the journal", check);
	}

	lfd = open(logp, O_RDONLY);
	if (lfd < 0)
		die(2, "%s: %s", logp, strerror(errno));

	read_at(lfd, &super, sizeof(super), 0);
	if (le64toh(super.magic) != WRITE_LOG_MAGIC ||
	    le64toh(super.version) != WRITE_LOG_VERSION)
		die(2, "%s: not a dm-log-writes log", logp);
	ss = le32toh(super.sectorsize);
	if (ss < 512 || ss & (ss - 1))
		die(2, "bad sector size %" PRIu64, ss);
	blk = malloc(ss);
	if (!blk)
		die(2, "no memory");

	pos = ss;
	for (i = 0; i < le64toh(super.nr_entries) && !ended; i++) {
		struct log_write_entry e;
		uint64_t sector, nr, flags, dlen;

		read_at(lfd, blk, ss, pos);
		memcpy(&e, blk, sizeof(e));
		sector = le64toh(e.sector);
		nr = le64toh(e.nr_sectors);
		flags = le64toh(e.flags);
		dlen = le64toh(e.data_len);
		pos += ss;

		if (flags & LOG_MARK_FLAG) {
			char name[512];

			if (dlen >= sizeof(name) || dlen > ss - sizeof(e))
				die(2, "entry %" PRIu64 ": mark of %" PRIu64 " bytes", i, dlen);
			memcpy(name, blk + sizeof(e), dlen);
			name[dlen] = 0;
			nmark++;
			if (verbose)
				fprintf(stderr, "entry %" PRIu64 ": mark %s\n", i, name);
			for (k = 0; k < njm; k++) {
				if (jm[k].seen || strcmp(jm[k].m.name, name))
					continue;
				jm[k].seen = true;
				checked++;
				if (!check_mark(&jm[k], img, size))
					failed++;
			}
			for (k = 0; k < nex; k++) {
				if (ex[k].seen || strcmp(ex[k].mark, name))
					continue;
				ex[k].seen = true;
				checked++;
				if (!check_expect(&ex[k], img, size))
					failed++;
			}
			if (end_mark && !strcmp(end_mark, name))
				ended = true;
			continue;
		}
		if (sector * ss + nr * ss > size || sector > size || nr > size)
			die(2, "entry %" PRIu64 ": sectors %" PRIu64 "+%" PRIu64
			    " beyond the image", i, sector, nr);
		if (flags & LOG_DISCARD_FLAG) {
			/* the data device reads discarded blocks as zeroes */
			memset(img + sector * ss, 0, nr * ss);
			ndiscard++;
			continue;
		}
		if (nr) {
			read_at(lfd, img + sector * ss, nr * ss, pos);
			pos += nr * ss;
			nwrite++;
			if (flags & LOG_FUA_FLAG)
				nfua++;
			else
				nonfua++;
		}
		if (flags & LOG_FLUSH_FLAG)
			nflush++;
	}
	if (msync(img, size, MS_SYNC))
		die(2, "msync: %s", strerror(errno));

	printf("lw_replay: %" PRIu64 " of %" PRIu64 " entries replayed: %" PRIu64
	       " writes (%" PRIu64 " FUA), %" PRIu64 " flushes, %" PRIu64
	       " discards, %" PRIu64 " marks; %u marks checked, %u failed\n",
	       i, (uint64_t)le64toh(super.nr_entries), nwrite, nfua, nflush,
	       ndiscard, nmark, checked, failed);
	if (end_mark && !ended)
		die(1, "mark %s is not in the log", end_mark);
	for (k = 0; k < njm; k++) {
		if (!jm[k].seen && !end_mark) {
			printf("lw_replay: journal mark %s is not in the log: FAIL\n",
			       jm[k].m.name);
			failed++;
		}
	}
	for (k = 0; k < nex; k++) {
		if (!ex[k].seen && !end_mark) {
			printf("lw_replay: mark %s (--expect) is not in the log: FAIL\n",
			       ex[k].mark);
			failed++;
		}
	}
	if (expect_fua && nonfua) {
		printf("lw_replay: %" PRIu64 " writes without FUA: FAIL\n", nonfua);
		failed++;
	}
	return failed ? 1 : 0;
}
