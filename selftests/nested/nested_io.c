// SPDX-License-Identifier: GPL-2.0
/*
 * nested_io: the nested guest's whole userspace, and its checker.
 *
 * As /init of the nested guest's initramfs (started by the kernel, PID 1):
 * mounts devtmpfs, writes a seeded pattern to /dev/vda with O_DIRECT,
 * flushes, reads it back with O_DIRECT, compares it with the pattern and
 * prints one line on the serial console:
 *
 *	NESTED-IO result=ok bytes=4194304 seed=42 sum=0123456789abcdef
 *	NESTED-IO result=fail reason=...
 *
 * then reboots, which with QEMU's -no-reboot ends the VM.  NESTED_SEED and
 * NESTED_BYTES come from the kernel command line (the kernel hands unknown
 * name=value words to init as environment variables).
 *
 * In the lab guest, the same program checks what the nested guest left:
 *
 *	nested_io expect BYTES SEED	print the sum of the pattern
 *	nested_io sum FILE BYTES	print the sum of FILE's first BYTES
 *
 * The sum is a 64-bit FNV-1a hash, printed as 16 hex digits.
 *
 * With arguments on the kernel command line (the words after "--"), /init
 * runs fio with them instead: it mounts the lab VM's root, shared
 * read-only over virtio-9p with mount tag "l1root", on /l1, gives it
 * devtmpfs, proc, sysfs and a tmpfs /tmp (its working directory), chroots
 * there and runs the lab's own (dynamically linked) /usr/bin/fio, its
 * output on the console between
 *
 *	NESTED-IO fio-begin
 *	NESTED-IO fio-end
 *
 * and ends with one result line:
 *
 *	NESTED-IO result=ok fio_status=0 fio_ms=1234
 *	NESTED-IO result=fail fio_status=1 fio_ms=1234
 *
 * If the initramfs holds /usr/bin/fio itself (test 28's migrate run
 * appends fio and its libraries to it: a guest with a virtio-9p export
 * mounted cannot migrate), /init runs that one in place instead, with no
 * virtio-9p and no chroot.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK		(64 * 1024)
#define DISK		"/dev/vda"
#define DISK_WAIT_S	120
#define L1ROOT		"/l1"
#define FIO		"/usr/bin/fio"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Word at byte offset @off of the pattern for @seed (splitmix64). */
static uint64_t pattern_word(uint64_t seed, uint64_t off)
{
	uint64_t z = seed ^ (off * 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void pattern_fill(uint64_t seed, uint64_t off, void *buf, size_t len)
{
	uint64_t *w = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = pattern_word(seed, off + i * 8);
}

static uint64_t fnv1a(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_INIT	0xcbf29ce484222325ULL

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s ? s : "", &end, 0);
	if (errno || !s || !*s || *end) {
		fprintf(stderr, "nested_io: bad %s '%s'\n", what, s ? s : "");
		exit(2);
	}
	return v;
}

static uint64_t parse_bytes(const char *s)
{
	uint64_t bytes = parse_u64(s, "byte count");

	if (!bytes || bytes % CHUNK) {
		fprintf(stderr, "nested_io: byte count must be a multiple of %d\n",
			CHUNK);
		exit(2);
	}
	return bytes;
}

static int cmd_expect(uint64_t bytes, uint64_t seed)
{
	static uint64_t buf[CHUNK / 8];
	uint64_t off, h = FNV_INIT;

	for (off = 0; off < bytes; off += CHUNK) {
		pattern_fill(seed, off, buf, CHUNK);
		h = fnv1a(h, buf, CHUNK);
	}
	printf("%016llx\n", (unsigned long long)h);
	return 0;
}

static int cmd_sum(const char *path, uint64_t bytes)
{
	static unsigned char buf[CHUNK];
	uint64_t off, h = FNV_INIT;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		perror(path);
		return 1;
	}
	for (off = 0; off < bytes; off += CHUNK) {
		ssize_t n = pread(fd, buf, CHUNK, off);

		if (n != CHUNK) {
			fprintf(stderr, "%s: short read at %llu\n", path,
				(unsigned long long)off);
			close(fd);
			return 1;
		}
		h = fnv1a(h, buf, CHUNK);
	}
	close(fd);
	printf("%016llx\n", (unsigned long long)h);
	return 0;
}

/* PID 1: report one line, then end the VM. */
static void __attribute__((noreturn, format(printf, 1, 2)))
finish(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("NESTED-IO ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	sync();
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

static void console_open(void)
{
	int fd;

	mkdir("/dev", 0755);
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) && errno != EBUSY)
		return;
	fd = open("/dev/console", O_RDWR);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static void disk_wait(void)
{
	struct stat st;
	int i;

	/* Built-in drivers probe before init runs; wait anyway. */
	for (i = 0; i < DISK_WAIT_S * 10; i++) {
		if (!stat(DISK, &st) && S_ISBLK(st.st_mode))
			break;
		usleep(100000);
	}
}

static long long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Under the root fio runs in; l1 only: not needed in the initramfs. */
static const struct {
	const char *src, *dir, *type, *opts;
	unsigned long flags;
	int l1;
} fio_mounts[] = {
	{ "l1root", "", "9p",
	  "trans=virtio,version=9p2000.L,msize=512000,cache=loose", MS_RDONLY,
	  1 },
	{ "devtmpfs", "/dev", "devtmpfs", NULL, 0, 1 },
	{ "proc", "/proc", "proc", NULL, 0, 0 },
	{ "sysfs", "/sys", "sysfs", NULL, 0, 0 },
	{ "tmpfs", "/tmp", "tmpfs", NULL, 0, 0 },
};

/*
 * PID 1 with arguments: fio with them, in a chroot of the lab VM's root,
 * or in the initramfs if it has fio.
 */
static int init_fio(char **args)
{
	const char *root = L1ROOT;
	char dir[64];
	struct timespec t0;
	size_t i;
	pid_t pid;
	int status;

	disk_wait();
	if (!access(FIO, X_OK))
		root = "";
	for (i = 0; i < ARRAY_SIZE(fio_mounts); i++) {
		if (fio_mounts[i].l1 && !*root)
			continue;
		snprintf(dir, sizeof(dir), "%s%s", root, fio_mounts[i].dir);
		mkdir(dir, 0755);
		if (mount(fio_mounts[i].src, dir, fio_mounts[i].type,
			  fio_mounts[i].flags, fio_mounts[i].opts))
			finish("result=fail reason=mount-%s errno=%d", dir,
			       errno);
	}
	/* fio saves its verify state in the working directory */
	if ((*root && chroot(root)) || chdir("/tmp"))
		finish("result=fail reason=chroot errno=%d", errno);

	printf("NESTED-IO fio-begin\n");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0)
		finish("result=fail reason=fork errno=%d", errno);
	if (!pid) {
		args[0] = FIO;
		execv(FIO, args);
		fprintf(stderr, "nested_io: exec %s: %s\n", FIO,
			strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			finish("result=fail reason=waitpid errno=%d", errno);
	printf("\nNESTED-IO fio-end\n");
	if (!WIFEXITED(status))
		finish("result=fail reason=fio-signal-%d fio_ms=%lld",
		       WIFSIGNALED(status) ? WTERMSIG(status) : -1,
		       ms_since(&t0));
	finish("result=%s fio_status=%d fio_ms=%lld",
	       WEXITSTATUS(status) ? "fail" : "ok", WEXITSTATUS(status),
	       ms_since(&t0));
}

static int init_main(int argc, char **argv)
{
	uint64_t seed, bytes, off, h = FNV_INIT;
	struct timespec t0;
	unsigned char *buf, *want;
	int fd;

	console_open();
	if (argc > 1)
		return init_fio(argv);
	seed = parse_u64(getenv("NESTED_SEED"), "NESTED_SEED");
	bytes = parse_bytes(getenv("NESTED_BYTES"));
	if (posix_memalign((void **)&buf, 4096, CHUNK) ||
	    posix_memalign((void **)&want, 4096, CHUNK))
		finish("result=fail reason=nomem");

	disk_wait();
	fd = open(DISK, O_RDWR | O_DIRECT);
	if (fd < 0)
		finish("result=fail reason=open-%s errno=%d", DISK, errno);
	printf("NESTED-IO start bytes=%llu seed=%llu\n",
	       (unsigned long long)bytes, (unsigned long long)seed);
	clock_gettime(CLOCK_MONOTONIC, &t0);

	for (off = 0; off < bytes; off += CHUNK) {
		pattern_fill(seed, off, buf, CHUNK);
		if (pwrite(fd, buf, CHUNK, off) != CHUNK)
			finish("result=fail reason=write off=%llu errno=%d",
			       (unsigned long long)off, errno);
	}
	if (fsync(fd))
		finish("result=fail reason=fsync errno=%d", errno);
	for (off = 0; off < bytes; off += CHUNK) {
		memset(buf, 0, CHUNK);
		if (pread(fd, buf, CHUNK, off) != CHUNK)
			finish("result=fail reason=read off=%llu errno=%d",
			       (unsigned long long)off, errno);
		pattern_fill(seed, off, want, CHUNK);
		if (memcmp(buf, want, CHUNK))
			finish("result=fail reason=mismatch off=%llu",
			       (unsigned long long)off);
		h = fnv1a(h, buf, CHUNK);
	}
	close(fd);
	finish("result=ok bytes=%llu seed=%llu sum=%016llx io_ms=%lld",
	       (unsigned long long)bytes, (unsigned long long)seed,
	       (unsigned long long)h, ms_since(&t0));
}

int main(int argc, char **argv)
{
	if (getpid() == 1)
		return init_main(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "expect"))
		return cmd_expect(parse_bytes(argv[2]),
				  parse_u64(argv[3], "seed"));
	if (argc == 4 && !strcmp(argv[1], "sum"))
		return cmd_sum(argv[2], parse_bytes(argv[3]));
	fprintf(stderr,
		"usage: nested_io expect BYTES SEED | nested_io sum FILE BYTES\n"
		"       (as PID 1: the nested guest's /init, see the source)\n");
	return 2;
}
