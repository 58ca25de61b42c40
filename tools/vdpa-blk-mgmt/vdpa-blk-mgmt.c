// SPDX-License-Identifier: GPL-2.0
/*
 * vdpa-blk-mgmt: create, bind, inspect, tune and delete vdpa_blk_sw
 * devices in one step each.
 *
 * Lifecycle goes through vdpa generic netlink (nl.c), the medium and its
 * parameters through the configfs item the module copies at creation
 * (/sys/kernel/config/vdpa_blk_sw/NAME), run-time attributes and counters
 * through /sys/bus/vdpa/devices/NAME/blk_sw*, and binding through the vdpa
 * bus's driver_override and bind files.  See vdpa-blk-mgmt.8.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib.h"
#include "nl.h"

#ifndef VBM_VERSION
#define VBM_VERSION "0.1"
#endif

#define VDPA_BUS	"/sys/bus/vdpa"
#define VDPA_DEVS	VDPA_BUS "/devices"
#define CONFIGFS	"/sys/kernel/config"
#define CFS_ROOT	CONFIGFS "/" VBS_DRV_NAME
#define LOCK_FILE	"/run/vdpa-blk-mgmt.lock"

static const char *prog = "vdpa-blk-mgmt";
static const char *g_cmd = "";
static bool g_json;
static unsigned int g_timeout = 10;
static volatile sig_atomic_t g_stop;

/* --- messages ------------------------------------------------------------- */

static int __attribute__((format(printf, 2, 3))) err(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s%s", prog, g_cmd, *g_cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static void __attribute__((format(printf, 1, 2))) hint(const char *fmt, ...)
{
	va_list ap;

	fputs("  hint: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* "kernel refused: <errno text> (<extack>)" */
static int kernel_refused(int ret, const char *what)
{
	if (vbm_nl_extack[0])
		return err(VBM_EFAIL, "%s: kernel refused: %s: %s", what,
			   strerror(-ret), vbm_nl_extack);
	return err(VBM_EFAIL, "%s: kernel refused: %s", what, strerror(-ret));
}

/* --- files ------------------------------------------------------------------ */

static int read_str(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n'))
		buf[--n] = '\0';
	return 0;
}

static int read_u64(const char *path, uint64_t *v)
{
	char buf[64];
	int ret = read_str(path, buf, sizeof(buf));

	if (ret)
		return ret;
	*v = strtoull(buf, NULL, 0);
	return 0;
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	size_t len = strlen(val);

	if (fd < 0)
		return -errno;
	/* an empty value still has to reach the store method */
	n = write(fd, len ? val : "\n", len ? len : 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	return 0;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static char *dev_path(char *buf, size_t len, const char *name, const char *rel)
{
	snprintf(buf, len, VDPA_DEVS "/%s%s%s", name, *rel ? "/" : "", rel);
	return buf;
}

static bool dev_exists(const char *name)
{
	char p[512];

	return exists(dev_path(p, sizeof(p), name, ""));
}

static bool module_loaded(const char *mod)
{
	char p[256];

	snprintf(p, sizeof(p), "/sys/module/%s", mod);
	return exists(p);
}

/* The driver NAME is bound to ("" if none). */
static void dev_driver(const char *name, char *buf, size_t len)
{
	char p[512], l[512];
	ssize_t n;

	buf[0] = '\0';
	n = readlink(dev_path(p, sizeof(p), name, "driver"), l, sizeof(l) - 1);
	if (n <= 0)
		return;
	l[n] = '\0';
	snprintf(buf, len, "%s", basename(l));
}

/* /dev/vdX or /dev/vhost-vdpa-N of NAME, or "". */
static void dev_node(const char *name, char *buf, size_t len)
{
	static const char *const pats[] = { "virtio*/block/*", "vhost-vdpa-*" };
	char p[512];
	glob_t g;
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), VDPA_DEVS "/%s/%s", name, pats[i]);
		if (glob(p, 0, NULL, &g) == 0) {
			if (g.gl_pathc)
				snprintf(buf, len, "/dev/%s", basename(g.gl_pathv[0]));
			globfree(&g);
			if (buf[0])
				return;
		}
	}
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- checks ------------------------------------------------------------------ */

static int need_root(void)
{
	if (geteuid() != 0)
		return err(VBM_EPERM, "must be run as root (creating, changing and deleting vdpa devices needs CAP_NET_ADMIN and write access to sysfs and configfs)");
	return 0;
}

static int open_nl(struct vbm_nl *nl)
{
	int ret = vbm_nl_open(nl);

	if (ret == -ENOENT) {
		err(VBM_EMODULE, "the vdpa module is not loaded (no \"vdpa\" generic netlink family)");
		hint("modprobe vdpa_blk_sw (it loads vdpa)");
		return VBM_EMODULE;
	}
	if (ret)
		return err(VBM_EFAIL, "cannot talk to the kernel over generic netlink: %s",
			   strerror(-ret));
	return 0;
}

static int mgmtdev_cb(const struct nlattr **tb, void *data)
{
	uint64_t *supported = data;

	if (tb[VDPA_ATTR_DEV_SUPPORTED_FEATURES])
		*supported = vbm_attr_uint(tb[VDPA_ATTR_DEV_SUPPORTED_FEATURES]);
	return 0;
}

/* The management device is registered: 0, or an exit code after a message. */
static int check_mgmtdev(struct vbm_nl *nl, const char *mgmtdev, uint64_t *supported)
{
	int ret = vbm_nl_request(nl, VDPA_CMD_MGMTDEV_GET, false, mgmtdev, NULL,
				 NULL, mgmtdev_cb, supported);

	if (ret == -ENODEV) {
		if (!strcmp(mgmtdev, VBM_MGMTDEV) && !module_loaded(VBS_DRV_NAME)) {
			err(VBM_EMODULE, "the vdpa_blk_sw module is not loaded (no management device %s)",
			    mgmtdev);
			hint("modprobe vdpa_blk_sw");
		} else {
			err(VBM_EMODULE, "no vdpa management device %s", mgmtdev);
			hint("load the module that provides it; 'vdpa mgmtdev show' lists them");
		}
		return VBM_EMODULE;
	}
	if (ret)
		return kernel_refused(ret, "management device query");
	return 0;
}

static int check_driver(enum vbm_bind b)
{
	char p[256];
	const char *drv = vbm_bind_driver(b);

	if (!*drv)
		return 0;
	snprintf(p, sizeof(p), VDPA_BUS "/drivers/%s", drv);
	if (!exists(p)) {
		err(VBM_EMODULE, "the %s module is not loaded (needed to bind to %s)",
		    drv, vbm_bind_name(b));
		hint("modprobe %s", drv);
		return VBM_EMODULE;
	}
	if (b == VBM_BIND_VIRTIO && !exists("/sys/bus/virtio/drivers/virtio_blk")) {
		err(VBM_EMODULE, "the virtio_blk module is not loaded (no /dev/vdX without it)");
		hint("modprobe virtio_blk");
		return VBM_EMODULE;
	}
	return 0;
}

/* Another vdpa device already uses the file or device st refers to. */
static bool backing_user(const struct stat *st, const char *self, char *user, size_t len)
{
	DIR *d = opendir(VDPA_DEVS);
	struct dirent *e;
	char p[512], b[4200];
	struct stat o;
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.' || (self && !strcmp(e->d_name, self)))
			continue;
		if (read_str(dev_path(p, sizeof(p), e->d_name, VBS_SYSFS_DIR "/backing"), b, sizeof(b)) ||
		    !b[0] || stat(b, &o))
			continue;
		if (S_ISBLK(st->st_mode) ? (S_ISBLK(o.st_mode) && o.st_rdev == st->st_rdev) :
		    (o.st_dev == st->st_dev && o.st_ino == st->st_ino)) {
			snprintf(user, len, "%s", e->d_name);
			found = true;
		}
	}
	closedir(d);
	return found;
}

/*
 * What the kernel would refuse, said better.  A shared backing is left to
 * the kernel: whether the device that has it shares it is its business.
 */
static int check_backing(const char *path, bool ro, bool shared)
{
	char user[256];
	struct stat st;
	int fd, flags;

	if (stat(path, &st)) {
		if (errno == ENOENT)
			return err(VBM_EBACKING, "backing %s does not exist", path);
		return err(VBM_EBACKING, "cannot access backing %s: %s", path, strerror(errno));
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return err(VBM_EBACKING, "backing %s is neither a regular file nor a block device",
			   path);
	if (S_ISREG(st.st_mode) && st.st_size < 512)
		return err(VBM_EBACKING, "backing %s is smaller than one sector (%lld bytes)",
			   path, (long long)st.st_size);
	if (!shared && backing_user(&st, NULL, user, sizeof(user)))
		return err(VBM_EBACKING, "backing %s is already used by vdpa device %s",
			   path, user);
	flags = (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC |
		(S_ISBLK(st.st_mode) && !shared ? O_EXCL : 0);
	fd = open(path, flags);
	if (fd < 0) {
		int e = errno;

		if (e == EBUSY)
			return err(VBM_EBACKING, "backing %s is in use (mounted, or held open exclusively by another device or program)",
				   path);
		if (e == EROFS) {
			err(VBM_EBACKING, "backing %s is on a read-only file system", path);
			hint("use --read-only for a read-only device");
			return VBM_EBACKING;
		}
		return err(VBM_EBACKING, "backing %s cannot be opened %s: %s", path,
			   ro ? "for reading" : "for reading and writing", strerror(e));
	}
	close(fd);
	return 0;
}

/* --- configfs --------------------------------------------------------------- */

static bool configfs_mounted(void)
{
	FILE *f = fopen("/proc/mounts", "re");
	char line[1024];
	bool found = false;

	if (!f)
		return exists(CFS_ROOT);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, " " CONFIGFS " configfs ") != NULL;
	fclose(f);
	return found;
}

static int cfs_ready(void)
{
	if (!configfs_mounted() && mount("configfs", CONFIGFS, "configfs", 0, NULL) &&
	    errno != EBUSY)
		return err(VBM_EFAIL, "cannot mount configfs on " CONFIGFS ": %s",
			   strerror(errno));
	if (!exists(CFS_ROOT)) {
		err(VBM_EMODULE, "no " CFS_ROOT ": the vdpa_blk_sw module is not loaded");
		hint("modprobe vdpa_blk_sw");
		return VBM_EMODULE;
	}
	return 0;
}

static int cfs_write(const char *name, const char *attr, const char *val)
{
	char p[512];

	snprintf(p, sizeof(p), CFS_ROOT "/%s/%s", name, attr);
	return write_str(p, val);
}

static void cfs_remove(const char *name)
{
	char p[512];

	snprintf(p, sizeof(p), CFS_ROOT "/%s", name);
	rmdir(p);
}

/* Stage every parameter given that has a configfs attribute, in table order. */
static int stage(const struct vbm_spec *s)
{
	char p[512], v[64];
	const char *val;
	int i, ret;

	ret = cfs_ready();
	if (ret)
		return ret;
	snprintf(p, sizeof(p), CFS_ROOT "/%s", s->name);
	if (exists(p)) {
		snprintf(p, sizeof(p), CFS_ROOT "/%s/live", s->name);
		if (!read_str(p, v, sizeof(v)) && !strcmp(v, "1"))
			return err(VBM_EEXIST, "a device named %s exists", s->name);
		/* parameters someone staged and never used: start afresh */
		cfs_remove(s->name);
	}
	snprintf(p, sizeof(p), CFS_ROOT "/%s", s->name);
	if (mkdir(p, 0755))
		return err(VBM_EFAIL, "cannot create %s: %s", p, strerror(errno));

	for (i = 0; i < VBS_NR_PARAMS; i++) {
		const struct vbm_param *pm = &vbm_params[i];

		if (!s->p[i].set || (pm->flags & VBS_PF_NOSTAGE))
			continue;
		val = vbm_param_text(s, i, v, sizeof(v));
		ret = cfs_write(s->name, pm->name, val);
		if (!ret)
			continue;
		cfs_remove(s->name);
		if (pm->type == VBS_PT_PATH)
			return err(VBM_EBACKING, "%s %s refused by vdpa_blk_sw: %s", pm->name,
				   val, strerror(-ret));
		return err(VBM_EFAIL, "vdpa_blk_sw refused %s = %s: %s", pm->name, val,
			   strerror(-ret));
	}
	return 0;
}

/* --- binding ------------------------------------------------------------------ */

static int wait_node(const char *name, enum vbm_bind b, char *node, size_t len)
{
	double deadline = now_s() + g_timeout;
	struct stat st;

	node[0] = '\0';
	if (b == VBM_BIND_NONE || b == VBM_BIND_UNSET)
		return 0;
	for (;;) {
		dev_node(name, node, len);
		if (node[0] && !stat(node, &st) &&
		    (b == VBM_BIND_VIRTIO ? S_ISBLK(st.st_mode) : S_ISCHR(st.st_mode)))
			return 0;
		if (now_s() > deadline)
			break;
		sleep_ms(50);
	}
	if (node[0])
		err(VBM_ETIMEDOUT, "%s: %s did not appear within %u s", name, node, g_timeout);
	else
		err(VBM_ETIMEDOUT, "%s: no %s device appeared within %u s", name,
		    b == VBM_BIND_VIRTIO ? "block" : "vhost-vdpa", g_timeout);
	if (b == VBM_BIND_VIRTIO)
		hint("is virtio_blk loaded, and devtmpfs mounted on /dev? dmesg may say more");
	return VBM_ETIMEDOUT;
}

/* Bind NAME to the driver of b (unbinding it from another first). */
static int do_bind(const char *name, enum vbm_bind b, char *node, size_t len)
{
	const char *want = vbm_bind_driver(b);
	char p[512], cur[64];
	int ret;

	dev_driver(name, cur, sizeof(cur));
	ret = write_str(dev_path(p, sizeof(p), name, "driver_override"),
			*want ? want : "none");
	if (ret)
		return err(VBM_EFAIL, "%s: cannot set driver_override: %s", name, strerror(-ret));
	if (cur[0] && strcmp(cur, want)) {
		snprintf(p, sizeof(p), VDPA_BUS "/drivers/%s/unbind", cur);
		ret = write_str(p, name);
		if (ret)
			return err(VBM_EFAIL, "%s: cannot unbind from %s: %s", name, cur,
				   strerror(-ret));
	}
	if (*want && strcmp(cur, want)) {
		ret = check_driver(b);
		if (ret)
			return ret;
		snprintf(p, sizeof(p), VDPA_BUS "/drivers/%s/bind", want);
		ret = write_str(p, name);
		if (ret) {
			err(VBM_EFAIL, "%s: %s refused the device: %s", name, want, strerror(-ret));
			hint("dmesg shows why the driver's probe failed");
			return VBM_EFAIL;
		}
	}
	return wait_node(name, b, node, len);
}

/* --- create ------------------------------------------------------------------ */

static int lock_fd = -1;

static void global_lock(void)
{
	lock_fd = open(LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd >= 0)
		flock(lock_fd, LOCK_EX);
}

static void global_unlock(void)
{
	if (lock_fd >= 0)
		close(lock_fd);
	lock_fd = -1;
}

static void features_hint(uint64_t f, uint64_t supported, bool ours)
{
	char names[1024];
	uint64_t req = (1ULL << 32) | (1ULL << 33);

	if (f & ~supported)
		hint("not offered by the management device: %s",
		     vbm_features_str(f & ~supported, names, sizeof(names)));
	if (ours && (f & req) != req)
		hint("vdpa_blk_sw requires: %s",
		     vbm_features_str(req & ~f, names, sizeof(names)));
	hint("offered: %s", vbm_features_str(supported, names, sizeof(names)));
}

/* Write a live tunable of ours (blk_sw/ATTR); says which, if refused. */
static int set_tunable(const char *name, const char *attr, const char *v)
{
	char p[512], rel[64];
	int ret;

	snprintf(rel, sizeof(rel), VBS_SYSFS_DIR "/%s", attr);
	ret = write_str(dev_path(p, sizeof(p), name, rel), v);
	if (ret == -ENOENT)
		return err(VBM_EFAIL,
			   "%s: the loaded vdpa_blk_sw has no %s (an older module)",
			   name, attr);
	if (ret)
		return err(VBM_EFAIL, "%s: %s %s refused: %s", name, attr, v,
			   strerror(-ret));
	return 0;
}

/* Write parameter id of s to the device's sysfs: a live one. */
static int set_param(const char *name, const struct vbm_spec *s, int id)
{
	char v[64];

	return set_tunable(name, vbm_params[id].name, vbm_param_text(s, id, v, sizeof(v)));
}

static int destroy(struct vbm_nl *nl, const char *name);

static int create(struct vbm_nl *nl, struct vbm_spec *s, bool print)
{
	const char *mgmtdev = s->mgmtdev ? s->mgmtdev : VBM_MGMTDEV;
	bool ours = !strcmp(mgmtdev, VBM_MGMTDEV);
	enum vbm_bind b = s->bind == VBM_BIND_UNSET ? VBM_BIND_VIRTIO : s->bind;
	char node[256], p[512], autoprobe[8] = "";
	uint64_t supported = 0;
	bool created;
	int i, ret;

	ret = check_mgmtdev(nl, mgmtdev, &supported);
	if (ret)
		return ret;
	ret = check_driver(b);
	if (ret)
		return ret;
	if (dev_exists(s->name)) {
		err(VBM_EEXIST, "the name %s is taken: a vdpa device of that name exists", s->name);
		hint("'%s show %s'; '%s destroy %s' removes it", prog, s->name, prog, s->name);
		return VBM_EEXIST;
	}
	if (ours && VBM_SET(s, backing)) {
		ret = check_backing(VBM_STR(s, backing),
				    VBM_SET(s, read_only) && VBM_NUM(s, read_only),
				    VBM_SET(s, shared) && VBM_NUM(s, shared));
		if (ret)
			return ret;
	}

	global_lock();
	if (ours) {
		ret = stage(s);
		if (ret)
			goto unlock;
	}
	/* no driver may probe the device before its driver_override is set */
	if (!read_str(VDPA_BUS "/drivers_autoprobe", autoprobe, sizeof(autoprobe)) &&
	    !strcmp(autoprobe, "1"))
		write_str(VDPA_BUS "/drivers_autoprobe", "0");
	ret = vbm_nl_request(nl, VDPA_CMD_DEV_NEW, false, mgmtdev, s->name,
			     s->has_features ? &s->features : NULL, NULL, NULL);
	created = !ret;
	if (created)
		ret = write_str(dev_path(p, sizeof(p), s->name, "driver_override"),
				b == VBM_BIND_NONE ? "none" : vbm_bind_driver(b));
	if (!strcmp(autoprobe, "1"))
		write_str(VDPA_BUS "/drivers_autoprobe", "1");
	if (ret && created) {
		/* driver_override failed: the device exists but is unbound */
		global_unlock();
		return err(VBM_EFAIL, "%s: cannot set driver_override: %s", s->name,
			   strerror(-ret));
	}
	if (ret) {
		if (ours)
			cfs_remove(s->name);
		switch (-ret) {
		case EEXIST:
			ret = err(VBM_EEXIST, "the name %s is taken", s->name);
			break;
		case EBUSY:
			ret = err(VBM_EBACKING, "backing %s is in use by another device",
				  VBM_SET(s, backing) ? VBM_STR(s, backing) : "(memory)");
			break;
		case EACCES:
		case EPERM:
			if (geteuid()) {
				ret = err(VBM_EPERM, "permission denied: run as root");
				break;
			}
			/* fall through */
		default:
			kernel_refused(ret, "device creation");
			if (-ret == EINVAL && s->has_features)
				features_hint(s->features, supported, ours);
			else if (-ret == EOPNOTSUPP && VBM_SET(s, iopoll) && VBM_NUM(s, iopoll))
				hint("the backing cannot poll (it needs a block device with poll queues, or a file on one)");
			else if (-ret == EINVAL || -ret == EOPNOTSUPP)
				hint("dmesg may say more");
			ret = VBM_EFAIL;
		}
		goto unlock;
	}
	global_unlock();

	/* no configfs attribute: the device's own, before a driver uses it */
	for (i = 0; ours && i < VBS_NR_PARAMS; i++) {
		if (!s->p[i].set || !(vbm_params[i].flags & VBS_PF_NOSTAGE))
			continue;
		ret = set_param(s->name, s, i);
		if (ret) {
			destroy(nl, s->name);
			return ret;
		}
	}
	ret = do_bind(s->name, b, node, sizeof(node));
	if (ret)
		return ret;
	if (print && node[0])
		printf("%s\n", node);
	return 0;
unlock:
	global_unlock();
	return ret;
}

/* --- device information -------------------------------------------------- */

struct blkcfg_field {
	int attr;
	const char *name;
};

static const struct blkcfg_field blkcfg_fields[] = {
	{ VDPA_ATTR_DEV_BLK_CFG_CAPACITY, "capacity" },
	{ VDPA_ATTR_DEV_BLK_CFG_SIZE_MAX, "size_max" },
	{ VDPA_ATTR_DEV_BLK_CFG_SEG_MAX, "seg_max" },
	{ VDPA_ATTR_DEV_BLK_CFG_BLK_SIZE, "blk_size" },
	{ VDPA_ATTR_DEV_BLK_CFG_PHY_BLK_EXP, "physical_block_exp" },
	{ VDPA_ATTR_DEV_BLK_CFG_ALIGN_OFFSET, "alignment_offset" },
	{ VDPA_ATTR_DEV_BLK_CFG_MIN_IO_SIZE, "min_io_size" },
	{ VDPA_ATTR_DEV_BLK_CFG_OPT_IO_SIZE, "opt_io_size" },
	{ VDPA_ATTR_DEV_BLK_CFG_NUM_QUEUES, "num_queues" },
	{ VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEC, "max_discard_sectors" },
	{ VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEG, "max_discard_seg" },
	{ VDPA_ATTR_DEV_BLK_CFG_DISCARD_SEC_ALIGN, "discard_sector_alignment" },
	{ VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEC, "max_write_zeroes_sectors" },
	{ VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEG, "max_write_zeroes_seg" },
	{ VDPA_ATTR_DEV_BLK_READ_ONLY, "read_only" },
	{ VDPA_ATTR_DEV_BLK_FLUSH, "flush" },
};

#define NBLKCFG (sizeof(blkcfg_fields) / sizeof(blkcfg_fields[0]))

struct devinfo {
	char name[VBM_NAME_MAX + 1];
	char mgmtdev[128];
	uint32_t device_id, vendor_id, max_vqs;
	uint32_t max_vq_size, min_vq_size;
	bool have_cfg, have_neg;
	uint64_t features, negotiated;
	bool has[NBLKCFG];
	uint64_t val[NBLKCFG];
};

struct devlist {
	struct devinfo *d;
	int n;
};

static void fill_dev(struct devinfo *d, const struct nlattr **tb)
{
	snprintf(d->name, sizeof(d->name), "%s", vbm_attr_str(tb[VDPA_ATTR_DEV_NAME]));
	if (tb[VDPA_ATTR_MGMTDEV_DEV_NAME]) {
		if (tb[VDPA_ATTR_MGMTDEV_BUS_NAME])
			snprintf(d->mgmtdev, sizeof(d->mgmtdev), "%s/%s",
				 vbm_attr_str(tb[VDPA_ATTR_MGMTDEV_BUS_NAME]),
				 vbm_attr_str(tb[VDPA_ATTR_MGMTDEV_DEV_NAME]));
		else
			snprintf(d->mgmtdev, sizeof(d->mgmtdev), "%s",
				 vbm_attr_str(tb[VDPA_ATTR_MGMTDEV_DEV_NAME]));
	}
	if (tb[VDPA_ATTR_DEV_ID])
		d->device_id = (uint32_t)vbm_attr_uint(tb[VDPA_ATTR_DEV_ID]);
	if (tb[VDPA_ATTR_DEV_VENDOR_ID])
		d->vendor_id = (uint32_t)vbm_attr_uint(tb[VDPA_ATTR_DEV_VENDOR_ID]);
	if (tb[VDPA_ATTR_DEV_MAX_VQS])
		d->max_vqs = (uint32_t)vbm_attr_uint(tb[VDPA_ATTR_DEV_MAX_VQS]);
	if (tb[VDPA_ATTR_DEV_MAX_VQ_SIZE])
		d->max_vq_size = (uint32_t)vbm_attr_uint(tb[VDPA_ATTR_DEV_MAX_VQ_SIZE]);
	if (tb[VDPA_ATTR_DEV_MIN_VQ_SIZE])
		d->min_vq_size = (uint32_t)vbm_attr_uint(tb[VDPA_ATTR_DEV_MIN_VQ_SIZE]);
}

static int dev_get_cb(const struct nlattr **tb, void *data)
{
	fill_dev(data, tb);
	return 0;
}

static int dev_dump_cb(const struct nlattr **tb, void *data)
{
	struct devlist *l = data;
	struct devinfo *d = realloc(l->d, sizeof(*d) * (size_t)(l->n + 1));

	if (!d)
		return -ENOMEM;
	l->d = d;
	d = &l->d[l->n++];
	memset(d, 0, sizeof(*d));
	fill_dev(d, tb);
	return 0;
}

static int config_cb(const struct nlattr **tb, void *data)
{
	struct devinfo *d = data;
	size_t i;

	d->have_cfg = true;
	if (tb[VDPA_ATTR_DEV_FEATURES])
		d->features = vbm_attr_uint(tb[VDPA_ATTR_DEV_FEATURES]);
	if (tb[VDPA_ATTR_DEV_NEGOTIATED_FEATURES]) {
		d->have_neg = true;
		d->negotiated = vbm_attr_uint(tb[VDPA_ATTR_DEV_NEGOTIATED_FEATURES]);
	}
	for (i = 0; i < NBLKCFG; i++) {
		if (tb[blkcfg_fields[i].attr]) {
			d->has[i] = true;
			d->val[i] = vbm_attr_uint(tb[blkcfg_fields[i].attr]);
		}
	}
	return 0;
}

static int no_device(const char *name)
{
	return err(VBM_ENODEV, "no vdpa device named %s ('%s list' shows them)", name, prog);
}

static int get_dev(struct vbm_nl *nl, const char *name, struct devinfo *d)
{
	int ret;

	memset(d, 0, sizeof(*d));
	ret = vbm_nl_request(nl, VDPA_CMD_DEV_GET, false, NULL, name, NULL, dev_get_cb, d);
	if (ret == -ENODEV)
		return no_device(name);
	if (ret)
		return kernel_refused(ret, "device query");
	ret = vbm_nl_request(nl, VDPA_CMD_DEV_CONFIG_GET, false, NULL, name, NULL,
			     config_cb, d);
	if (ret && ret != -EOPNOTSUPP)
		return kernel_refused(ret, "config query");
	return 0;
}

/*
 * Run-time attributes of ours (blk_sw/), as text: the parameters, then
 * these.  A parameter may be missing (a module older than the tool): ""
 * then.
 */
enum rt_type { RT_STR, RT_BOOL, RT_U64, RT_U64_LIST };

static const struct {
	const char *name;
	enum rt_type type;
	bool optional;	/* newer than the first module */
} rt_extra[] = {
	{ "backing_type", RT_STR, false }, { "capacity", RT_U64, false },
	{ "poll_window_ns", RT_U64_LIST, true },
};

#define NRT (VBS_NR_PARAMS + sizeof(rt_extra) / sizeof(rt_extra[0]))

static const char *rt_name(size_t i)
{
	return i < VBS_NR_PARAMS ? vbm_params[i].name : rt_extra[i - VBS_NR_PARAMS].name;
}

static enum rt_type rt_type(size_t i)
{
	if (i >= VBS_NR_PARAMS)
		return rt_extra[i - VBS_NR_PARAMS].type;
	switch (vbm_params[i].type) {
	case VBS_PT_BOOL:
		return RT_BOOL;
	case VBS_PT_U32:
	case VBS_PT_U64:
		return RT_U64;
	default:
		return RT_STR;
	}
}

/* Not in sysfs at all */
static bool rt_hidden(size_t i)
{
	return i < VBS_NR_PARAMS && (vbm_params[i].flags & VBS_PF_NOSHOW);
}

/* false if a mandatory attribute cannot be read */
static bool rt_read(const char *name, char vals[][4200])
{
	char p[512];
	size_t i;
	bool ok = true;

	for (i = 0; i < NRT; i++) {
		vals[i][0] = '\0';
		if (rt_hidden(i))
			continue;
		snprintf(p, sizeof(p), VDPA_DEVS "/%s/" VBS_SYSFS_DIR "/%s", name, rt_name(i));
		if (read_str(p, vals[i], 4200)) {
			vals[i][0] = '\0';
			if (i >= VBS_NR_PARAMS && !rt_extra[i - VBS_NR_PARAMS].optional)
				ok = false;
		}
	}
	return ok;
}

static const char *rt_get(char vals[][4200], const char *attr)
{
	size_t i;

	for (i = 0; i < NRT; i++)
		if (!strcmp(rt_name(i), attr))
			return vals[i];
	return "";
}

/* For text output: an attribute the module does not have shows as "-". */
static const char *rt_text(char vals[][4200], const char *attr)
{
	const char *v = rt_get(vals, attr);

	return v[0] ? v : "-";
}

static void json_rt_attr(struct vbm_json *j, size_t i, const char *v)
{
	const char *name = rt_name(i);
	uint64_t list[64];
	char e[200];
	int n, k;

	if (!v[0] && rt_type(i) != RT_STR) {
		vbm_json_null(j, name);
		return;
	}
	switch (rt_type(i)) {
	case RT_STR:
		vbm_json_str(j, name, v);
		break;
	case RT_BOOL:
		vbm_json_bool(j, name, !strcmp(v, "1"));
		break;
	case RT_U64:
		vbm_json_u64(j, name, strtoull(v, NULL, 10));
		break;
	case RT_U64_LIST:
		n = vbm_parse_u64_list(v, list, 64, e, sizeof(e));
		if (n < 0) {
			vbm_json_null(j, name);
			break;
		}
		vbm_json_open(j, name, '[');
		for (k = 0; k < n; k++)
			vbm_json_u64(j, NULL, list[k]);
		vbm_json_close(j, ']');
		break;
	}
}

static const char *const qstats[] = {
	"requests", "read_bytes", "write_bytes", "errors", "inflight", "polls",
	"notifies", "interrupts", "spills", "wakes",
};

#define NQSTATS (sizeof(qstats) / sizeof(qstats[0]))

/* Counters of every queue of NAME; returns the number of queues. */
static int read_qstats(const char *name, uint64_t (*v)[NQSTATS], int max)
{
	char p[512];
	int q;
	size_t i;

	for (q = 0; q < max; q++) {
		snprintf(p, sizeof(p), VDPA_DEVS "/%s/" VBS_SYSFS_QUEUE_DIR "%d", name, q);
		if (!exists(p))
			break;
		for (i = 0; i < NQSTATS; i++) {
			snprintf(p, sizeof(p), VDPA_DEVS "/%s/" VBS_SYSFS_QUEUE_DIR "%d/%s", name, q,
				 qstats[i]);
			if (read_u64(p, &v[q][i]))
				v[q][i] = 0;
		}
	}
	return q;
}

/* "queues": one object per queue, its index and its counters. */
static void json_qstats(struct vbm_json *j, uint64_t (*v)[NQSTATS], int nq)
{
	size_t k;
	int q;

	vbm_json_open(j, "queues", '[');
	for (q = 0; q < nq; q++) {
		vbm_json_open(j, NULL, '{');
		vbm_json_u64(j, "index", (uint64_t)q);
		for (k = 0; k < NQSTATS; k++)
			vbm_json_u64(j, qstats[k], v[q][k]);
		vbm_json_close(j, '}');
	}
	vbm_json_close(j, ']');
}

static void json_features(struct vbm_json *j, const char *key, uint64_t f)
{
	char names[1024], *tok, *save = NULL, hex[32];

	vbm_json_open(j, key, '[');
	vbm_features_str(f, names, sizeof(names));
	for (tok = strtok_r(names, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		vbm_json_str(j, NULL, tok);
	vbm_json_close(j, ']');
	snprintf(names, sizeof(names), "%s_hex", key);
	snprintf(hex, sizeof(hex), "0x%" PRIx64, f);
	vbm_json_str(j, names, hex);
}

/* --- list / show / stats ---------------------------------------------------- */

static bool is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static int cmd_list(int argc, char **argv)
{
	struct devlist l = { NULL, 0 };
	struct vbm_nl nl;
	struct vbm_json j;
	bool all = false;
	int i, ret;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--all"))
			all = true;
		else
			return err(VBM_EUSAGE, "unexpected argument '%s'", argv[i]);
	}
	ret = open_nl(&nl);
	if (ret)
		return ret;
	ret = vbm_nl_request(&nl, VDPA_CMD_DEV_GET, true, NULL, NULL, NULL, dev_dump_cb, &l);
	if (ret) {
		vbm_nl_close(&nl);
		return kernel_refused(ret, "device list");
	}
	if (g_json) {
		vbm_json_init(&j, stdout, false);
		vbm_json_open(&j, NULL, '{');
		vbm_json_open(&j, "devices", '[');
	} else {
		printf("%-16s %-16s %-12s %-18s %8s %6s  %s\n", "NAME", "MGMTDEV", "DRIVER",
		       "NODE", "SIZE", "QUEUES", "BACKING");
	}
	for (i = 0; i < l.n; i++) {
		struct devinfo *d = &l.d[i];
		char drv[64], node[256], hs[32], rt[NRT][4200];
		bool ours = !strcmp(d->mgmtdev, VBM_MGMTDEV);
		uint64_t bytes = 0;

		if (!ours && !all)
			continue;
		vbm_nl_request(&nl, VDPA_CMD_DEV_CONFIG_GET, false, NULL, d->name, NULL,
			       config_cb, d);
		dev_driver(d->name, drv, sizeof(drv));
		dev_node(d->name, node, sizeof(node));
		if (!ours || !rt_read(d->name, rt))
			memset(rt, 0, sizeof(rt));
		if (d->has[0])
			bytes = d->val[0] * 512;
		else if (is_number(rt_get(rt, "capacity")))
			bytes = strtoull(rt_get(rt, "capacity"), NULL, 10) * 512;
		if (g_json) {
			vbm_json_open(&j, NULL, '{');
			vbm_json_str(&j, "name", d->name);
			vbm_json_str(&j, "mgmtdev", d->mgmtdev);
			vbm_json_str(&j, "driver", drv);
			vbm_json_str(&j, "node", node);
			vbm_json_u64(&j, "capacity_bytes", bytes);
			vbm_json_u64(&j, "num_queues", d->max_vqs);
			if (ours) {
				vbm_json_str(&j, "backing", rt_get(rt, "backing"));
				vbm_json_str(&j, "backing_type", rt_get(rt, "backing_type"));
			}
			vbm_json_close(&j, '}');
		} else {
			printf("%-16s %-16s %-12s %-18s %8s %6" PRIu32 "  %s\n", d->name,
			       d->mgmtdev, drv[0] ? drv : "-", node[0] ? node : "-",
			       vbm_human_size(bytes, hs, sizeof(hs)), d->max_vqs,
			       ours ? (rt_get(rt, "backing")[0] ? rt_get(rt, "backing") :
				       "(memory)") : "-");
		}
	}
	if (g_json) {
		vbm_json_close(&j, ']');
		vbm_json_close(&j, '}');
		vbm_json_end(&j);
	}
	free(l.d);
	vbm_nl_close(&nl);
	return 0;
}

static int one_name(int argc, char **argv, const char **name)
{
	if (argc < 1)
		return err(VBM_EUSAGE, "missing device name");
	if (argc > 1)
		return err(VBM_EUSAGE, "unexpected argument '%s'", argv[1]);
	*name = argv[0];
	return 0;
}

static int cmd_show(int argc, char **argv)
{
	char drv[64], node[256], ovr[128] = "", p[512], rt[NRT][4200], hs[32];
	uint64_t qs[16][NQSTATS];
	const char *name = NULL;
	struct devinfo d;
	struct vbm_json j;
	struct vbm_nl nl;
	bool ours;
	int ret, nq, q;
	size_t i;

	ret = one_name(argc, argv, &name);
	if (ret)
		return ret;
	ret = open_nl(&nl);
	if (ret)
		return ret;
	ret = get_dev(&nl, name, &d);
	vbm_nl_close(&nl);
	if (ret)
		return ret;
	ours = !strcmp(d.mgmtdev, VBM_MGMTDEV);
	dev_driver(name, drv, sizeof(drv));
	dev_node(name, node, sizeof(node));
	read_str(dev_path(p, sizeof(p), name, "driver_override"), ovr, sizeof(ovr));
	if (!strcmp(ovr, "(null)"))
		ovr[0] = '\0';
	if (!ours || !rt_read(name, rt))
		memset(rt, 0, sizeof(rt));
	nq = ours ? read_qstats(name, qs, 16) : 0;

	if (g_json) {
		vbm_json_init(&j, stdout, true);
		vbm_json_open(&j, NULL, '{');
		vbm_json_str(&j, "name", d.name);
		vbm_json_str(&j, "mgmtdev", d.mgmtdev);
		vbm_json_u64(&j, "device_id", d.device_id);
		vbm_json_u64(&j, "vendor_id", d.vendor_id);
		vbm_json_str(&j, "driver", drv);
		vbm_json_str(&j, "driver_override", ovr);
		vbm_json_str(&j, "node", node);
		vbm_json_u64(&j, "max_vqs", d.max_vqs);
		vbm_json_u64(&j, "max_vq_size", d.max_vq_size);
		vbm_json_u64(&j, "min_vq_size", d.min_vq_size);
		if (ours) {
			for (i = 0; i < NRT; i++)
				if (!rt_hidden(i))
					json_rt_attr(&j, i, rt[i]);
			vbm_json_u64(&j, "capacity_bytes",
				     strtoull(rt_get(rt, "capacity"), NULL, 10) * 512);
		}
		vbm_json_open(&j, "config", '{');
		for (i = 0; i < NBLKCFG; i++)
			if (d.has[i])
				vbm_json_u64(&j, blkcfg_fields[i].name, d.val[i]);
		vbm_json_close(&j, '}');
		json_features(&j, "features", d.features);
		if (d.have_neg)
			json_features(&j, "negotiated_features", d.negotiated);
		else
			vbm_json_null(&j, "negotiated_features");
		json_qstats(&j, qs, nq);
		vbm_json_close(&j, '}');
		vbm_json_end(&j);
		return 0;
	}

	printf("%s: mgmtdev %s, device id %" PRIu32 ", %" PRIu32 " queue(s) of up to %" PRIu32 "\n",
	       d.name, d.mgmtdev, d.device_id, d.max_vqs, d.max_vq_size);
	printf("  driver:      %s%s%s%s\n", drv[0] ? drv : "(none)",
	       ovr[0] ? " (driver_override " : "", ovr, ovr[0] ? ")" : "");
	printf("  node:        %s\n", node[0] ? node : "-");
	if (!strcmp(drv, "vhost_vdpa"))
		printf("  qemu:        '%s qemu-args %s' prints QEMU's options (%s)\n",
		       prog, name, !ours ? "give it --mode" :
		       !strcmp(rt_get(rt, "use_va"), "1") ? "VA mode" : "PA mode");
	if (ours) {
		uint64_t cap = strtoull(rt_get(rt, "capacity"), NULL, 10);

		printf("  backing:     %s (%s)\n",
		       rt_get(rt, "backing")[0] ? rt_get(rt, "backing") : "(memory)",
		       rt_get(rt, "backing_type"));
		printf("  capacity:    %s (%" PRIu64 " sectors)\n",
		       vbm_human_size(cap * 512, hs, sizeof(hs)), cap);
		printf("  tunables:    read_only %s, direct %s, iopoll %s, poll_idle_us %s,",
		       rt_get(rt, "read_only"), rt_get(rt, "direct"), rt_get(rt, "iopoll"),
		       rt_get(rt, "poll_idle_us"));
		printf(" poll_adaptive %s, use_va %s, shared %s\n", rt_text(rt, "poll_adaptive"),
		       rt_get(rt, "use_va"), rt_text(rt, "shared"));
		printf("  workers:     num_workers %s, poll_window_ns %s\n",
		       rt_text(rt, "num_workers"), rt_text(rt, "poll_window_ns"));
		printf("  geometry:    num_queues %s, queue_size %s, block_size %s, serial '%s'\n",
		       rt_get(rt, "num_queues"), rt_get(rt, "queue_size"),
		       rt_get(rt, "block_size"), rt_get(rt, "serial"));
	}
	if (d.have_cfg) {
		char names[1024];

		printf("  config:     ");
		for (i = 0; i < NBLKCFG; i++)
			if (d.has[i])
				printf(" %s %" PRIu64, blkcfg_fields[i].name, d.val[i]);
		printf("\n  features:    %s (0x%" PRIx64 ")\n",
		       vbm_features_str(d.features, names, sizeof(names)), d.features);
		if (d.have_neg)
			printf("  negotiated:  %s (0x%" PRIx64 ")\n",
			       vbm_features_str(d.negotiated, names, sizeof(names)),
			       d.negotiated);
		else
			printf("  negotiated:  (not yet: no driver has set FEATURES_OK)\n");
	}
	for (q = 0; q < nq; q++) {
		printf("  queue %d:    ", q);
		for (i = 0; i < NQSTATS; i++)
			printf(" %s %" PRIu64, qstats[i], qs[q][i]);
		printf("\n");
	}
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static int cmd_stats(int argc, char **argv)
{
	uint64_t a[16][NQSTATS], b[16][NQSTATS];
	const char *name = NULL;
	uint32_t watch = 0, count = 0, n = 0;
	char e[200];
	double t0, t1;
	struct vbm_json j;
	int i, q, nq;
	size_t k;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--watch") || !strcmp(argv[i], "--count")) {
			uint32_t *v = argv[i][2] == 'w' ? &watch : &count;

			if (i + 1 >= argc)
				return err(VBM_EUSAGE, "%s needs a value", argv[i]);
			if (vbm_parse_u32(argv[i + 1], 1, 86400, v, e, sizeof(e)))
				return err(VBM_EUSAGE, "%s: %s", argv[i], e);
			i++;
		} else if (argv[i][0] == '-') {
			return err(VBM_EUSAGE, "unknown option '%s'", argv[i]);
		} else if (name) {
			return err(VBM_EUSAGE, "unexpected argument '%s'", argv[i]);
		} else {
			name = argv[i];
		}
	}
	if (!name)
		return err(VBM_EUSAGE, "missing device name");
	if (!dev_exists(name))
		return no_device(name);
	nq = read_qstats(name, a, 16);
	if (!nq)
		return err(VBM_ENODEV, "%s has no vdpa_blk_sw queue counters (not a vdpa_blk_sw device?)",
			   name);
	if (!watch) {
		if (g_json) {
			vbm_json_init(&j, stdout, false);
			vbm_json_open(&j, NULL, '{');
			vbm_json_str(&j, "name", name);
			json_qstats(&j, a, nq);
			vbm_json_close(&j, '}');
			vbm_json_end(&j);
			return 0;
		}
		printf("%-5s", "QUEUE");
		for (k = 0; k < NQSTATS; k++)
			printf(" %12s", qstats[k]);
		printf("\n");
		for (q = 0; q < nq; q++) {
			printf("%-5d", q);
			for (k = 0; k < NQSTATS; k++)
				printf(" %12" PRIu64, a[q][k]);
			printf("\n");
		}
		return 0;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	t0 = now_s();
	if (!g_json)
		printf("%-8s %-5s %10s %10s %11s %8s %8s %10s %10s %12s\n", "TIME", "QUEUE",
		       "requests/s", "read_MiB/s", "write_MiB/s", "errors/s", "inflight",
		       "polls/s", "notifies/s", "interrupts/s");
	while (!g_stop && (!count || n < count)) {
		double dt;
		struct timespec ts = { (time_t)watch, 0 };

		while (nanosleep(&ts, &ts) && !g_stop)
			;
		if (g_stop)
			break;
		if (!dev_exists(name))
			return err(VBM_ENODEV, "%s disappeared", name);
		read_qstats(name, b, nq);
		t1 = now_s();
		dt = t1 - t0;
		if (g_json) {
			vbm_json_init(&j, stdout, false);
			vbm_json_open(&j, NULL, '{');
			vbm_json_str(&j, "name", name);
			vbm_json_double(&j, "interval", dt);
			vbm_json_open(&j, "queues", '[');
		}
		for (q = 0; q < nq; q++) {
			double r[NQSTATS];

			for (k = 0; k < NQSTATS; k++)
				r[k] = (double)(b[q][k] - a[q][k]) / dt;
			if (g_json) {
				vbm_json_open(&j, NULL, '{');
				vbm_json_u64(&j, "index", (uint64_t)q);
				vbm_json_double(&j, "requests_per_s", r[0]);
				vbm_json_double(&j, "read_bytes_per_s", r[1]);
				vbm_json_double(&j, "write_bytes_per_s", r[2]);
				vbm_json_double(&j, "errors_per_s", r[3]);
				vbm_json_u64(&j, "inflight", b[q][4]);
				vbm_json_double(&j, "polls_per_s", r[5]);
				vbm_json_double(&j, "notifies_per_s", r[6]);
				vbm_json_double(&j, "interrupts_per_s", r[7]);
				vbm_json_close(&j, '}');
			} else {
				printf("%-8.1f %-5d %10.0f %10.2f %11.2f %8.0f %8" PRIu64 " %10.0f %10.0f %12.0f\n",
				       t1, q, r[0], r[1] / 1048576, r[2] / 1048576, r[3], b[q][4],
				       r[5], r[6], r[7]);
			}
		}
		if (g_json) {
			vbm_json_close(&j, ']');
			vbm_json_close(&j, '}');
			vbm_json_end(&j);
		}
		fflush(stdout);
		memcpy(a, b, sizeof(a));
		t0 = t1;
		n++;
	}
	return 0;
}

/* --- changing devices -------------------------------------------------------- */

static int require_ours(const char *name)
{
	char p[512];

	if (!dev_exists(name))
		return no_device(name);
	if (!exists(dev_path(p, sizeof(p), name, VBS_SYSFS_DIR)))
		return err(VBM_ENODEV, "%s is not a vdpa_blk_sw device", name);
	return 0;
}

/*
 * The options of the live parameters: "--poll-idle-us and --poll-adaptive",
 * or for usage "--poll-idle-us N, --poll-adaptive on|off".
 */
static char *live_options(char *buf, size_t len, bool usage)
{
	int i, n = 0, nlive = 0;
	size_t off = 0;

	for (i = 0; i < VBS_NR_PARAMS; i++)
		nlive += !!(vbm_params[i].flags & VBS_PF_LIVE);
	buf[0] = '\0';
	for (i = 0; i < VBS_NR_PARAMS && off < len; i++) {
		const struct vbm_param *pm = &vbm_params[i];
		const char *sep = ", ", *arg = "";

		if (!(pm->flags & VBS_PF_LIVE))
			continue;
		if (!n++)
			sep = "";
		else if (!usage && n == nlive)
			sep = " and ";
		if (usage)
			arg = pm->type == VBS_PT_BOOL ? " on|off" : " N";
		off += (size_t)snprintf(buf + off, len - off, "%s--%s%s", sep,
					vbm_param_option(i), arg);
	}
	return buf;
}

/* --- qemu-args ----------------------------------------------------------------- */

#define THP_DIR "/sys/kernel/mm/transparent_hugepage"

/* What this host's settings say about guest memory for vhost-vdpa */
static void qemu_host(struct vbm_qemu_host *h)
{
	char buf[4096];
	struct rlimit rl;

	memset(h, 0, sizeof(*h));
	read_u64("/sys/module/vhost_vdpa/parameters/max_iotlb_entries", &h->max_iotlb_entries);
	if (!read_str(THP_DIR "/enabled", buf, sizeof(buf)))
		h->thp = vbm_thp_madvised(buf);
	if (!read_str(THP_DIR "/shmem_enabled", buf, sizeof(buf)))
		h->shmem_thp = vbm_thp_madvised(buf);
	if (!read_str("/proc/meminfo", buf, sizeof(buf)))
		vbm_parse_meminfo(buf, &h->hugepage_size, &h->hugepages_free);
	if (!getrlimit(RLIMIT_MEMLOCK, &rl))
		h->memlock = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

/* The value of option argv[*i] ("--opt V" or "--opt=V"), or NULL */
static const char *opt_value(int argc, char **argv, int *i, const char *opt)
{
	size_t n = strlen(opt);

	if (strncmp(argv[*i], opt, n))
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] || *i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int cmd_qemu_args(int argc, char **argv)
{
	struct vbm_qemu_req r = { .form = VBM_FORM_GENERIC, .memory_size = 1ULL << 30 };
	static const char *const opts[] = { "--form", "--mode", "--memory", "--memory-size" };
	char e[300], drv[64], node[256], p[512], v[64];
	const char *name = NULL, *val;
	struct vbm_qemu_host h;
	struct vbm_qemu_out o;
	bool mode_set = false, dev_va, ours;
	struct vbm_json j;
	struct stat st;
	uint32_t qs = 0;
	int i, k, ret = 0;

	for (i = 0; i < argc && !ret; i++) {
		if (argv[i][0] != '-') {
			if (name)
				ret = err(VBM_EUSAGE, "unexpected argument '%s'", argv[i]);
			name = argv[i];
			continue;
		}
		for (k = 0; k < 4; k++) {
			int at = i;

			val = opt_value(argc, argv, &at, opts[k]);
			if (!val && !strcmp(argv[i], opts[k]))
				return err(VBM_EUSAGE, "%s needs a value", argv[i]);
			if (!val)
				continue;
			i = at;
			if (k == 0)
				ret = vbm_parse_form(val, &r.form, e, sizeof(e));
			else if (k == 1)
				ret = vbm_parse_mode(val, &r.use_va, e, sizeof(e));
			else if (k == 2)
				ret = vbm_parse_memory(val, &r.memory, e, sizeof(e));
			else
				ret = vbm_parse_size(val, &r.memory_size, e, sizeof(e));
			mode_set |= k == 1;
			if (ret)
				return err(VBM_EUSAGE, "%s: %s", opts[k], e);
			break;
		}
		if (k == 4)
			return err(VBM_EUSAGE, "unknown option '%s'", argv[i]);
	}
	if (ret)
		return ret;
	if (!name)
		return err(VBM_EUSAGE, "missing device name");
	if (!dev_exists(name))
		return no_device(name);

	dev_driver(name, drv, sizeof(drv));
	if (strcmp(drv, "vhost_vdpa")) {
		if (drv[0])
			err(VBM_EFAIL, "%s is bound to %s%s, not vhost_vdpa: QEMU cannot open it",
			    name, drv, strcmp(drv, "virtio_vdpa") ? "" : " (this host's /dev/vdX)");
		else
			err(VBM_EFAIL, "%s is bound to no driver: QEMU needs it bound to vhost_vdpa",
			    name);
		hint("%s bind %s vhost", prog, name);
		return VBM_EFAIL;
	}
	dev_node(name, node, sizeof(node));
	if (!node[0] || stat(node, &st) || !S_ISCHR(st.st_mode)) {
		err(VBM_EFAIL, "%s is bound to vhost_vdpa but has no character device %s", name,
		    node[0] ? node : "/dev/vhost-vdpa-N");
		hint("is devtmpfs mounted on /dev? dmesg may say more");
		return VBM_EFAIL;
	}
	r.name = name;
	r.node = node;

	/* the mode is the device's: ours says it, another device must be told */
	ours = exists(dev_path(p, sizeof(p), name, VBS_SYSFS_DIR));
	if (ours) {
		if (read_str(dev_path(p, sizeof(p), name, VBS_SYSFS_DIR "/use_va"), v, sizeof(v)))
			v[0] = '0';
		dev_va = v[0] == '1';
		if (mode_set && r.use_va != dev_va) {
			err(VBM_EFAIL, "%s is in %s mode (use_va %d), not %s mode: the mode is fixed when the device is created",
			    name, dev_va ? "VA" : "PA", dev_va, r.use_va ? "VA" : "PA");
			hint("'%s destroy %s' and create it again %s --use-va", prog, name,
			     r.use_va ? "with" : "without");
			return VBM_EFAIL;
		}
		r.use_va = dev_va;
		if (!read_str(dev_path(p, sizeof(p), name, VBS_SYSFS_DIR "/queue_size"), v,
			      sizeof(v)))
			qs = (uint32_t)strtoul(v, NULL, 10);
		r.queue_size = qs;
	} else if (!mode_set) {
		return err(VBM_EUSAGE, "%s is not a vdpa_blk_sw device: its memory mode is unknown here; give --mode pa or va",
			   name);
	}

	qemu_host(&h);
	if (vbm_qemu_args(&r, &h, &o, e, sizeof(e)))
		return err(VBM_EUSAGE, "%s", e);
	for (i = 0; i < o.nwarn; i++) {
		err(0, "warning: %s", o.warn[i].text);
		hint("%s", o.warn[i].hint);
	}
	if (g_json) {
		vbm_json_init(&j, stdout, false);
		vbm_json_open(&j, NULL, '{');
		vbm_json_str(&j, "name", name);
		vbm_json_str(&j, "node", node);
		vbm_json_str(&j, "mode", r.use_va ? "va" : "pa");
		vbm_json_str(&j, "form", vbm_form_name(r.form));
		vbm_json_str(&j, "memory", vbm_memory_name(o.memory));
		vbm_json_u64(&j, "memory_size", r.memory_size);
		if (r.use_va)
			vbm_json_null(&j, "iotlb_entries");
		else
			vbm_json_u64(&j, "iotlb_entries", o.iotlb_entries);
		if (h.max_iotlb_entries)
			vbm_json_u64(&j, "max_iotlb_entries", h.max_iotlb_entries);
		else
			vbm_json_null(&j, "max_iotlb_entries");
		vbm_json_open(&j, "args", '[');
		for (i = 0; i < o.nargs; i++)
			vbm_json_str(&j, NULL, o.args[i]);
		vbm_json_close(&j, ']');
		vbm_json_open(&j, "warnings", '[');
		for (i = 0; i < o.nwarn; i++)
			vbm_json_str(&j, NULL, o.warn[i].text);
		vbm_json_close(&j, ']');
		vbm_json_close(&j, '}');
		vbm_json_end(&j);
		return 0;
	}
	for (i = 0; i + 1 < o.nargs; i += 2)
		printf("%s %s\n", o.args[i], o.args[i + 1]);
	return 0;
}

#define VBM_MAX_CPU_LISTS	64

/* One --cpu-list [QUEUE=]LIST: @queue -1 for every queue. */
struct cpu_list_arg {
	long queue;
	const char *list;
};

static bool is_cpu_list_opt(const char *arg)
{
	return !strcmp(arg, "--cpu-list") || !strcmp(arg, "--cpu_list");
}

/* "[QUEUE=]LIST": QUEUE a decimal queue index, LIST what cpu_list takes. */
static int parse_cpu_list(const char *val, struct cpu_list_arg *c)
{
	const char *eq = strchr(val, '=');
	char *end;

	c->queue = -1;
	c->list = val;
	if (!eq)
		return 0;
	errno = 0;
	c->queue = strtol(val, &end, 10);
	if (end != eq || end == val || errno || c->queue < 0 ||
	    c->queue >= VBS_MAX_QUEUES)
		return -1;
	c->list = eq + 1;
	return 0;
}

/* Write a queue's cpu_list (every queue's for @c->queue -1). */
static int set_cpu_list(const char *name, const struct cpu_list_arg *c)
{
	uint64_t nq = 0;
	char p[512], rel[64];
	long q;
	int ret;

	read_u64(dev_path(p, sizeof(p), name, VBS_SYSFS_DIR "/num_queues"), &nq);
	if (c->queue >= (long)nq)
		return err(VBM_EUSAGE, "%s: --cpu-list: no queue %ld (%" PRIu64 " queues)",
			   name, c->queue, nq);
	for (q = c->queue < 0 ? 0 : c->queue; q < (long)nq; q++) {
		snprintf(rel, sizeof(rel), VBS_SYSFS_QUEUE_DIR "%ld/cpu_list", q);
		ret = write_str(dev_path(p, sizeof(p), name, rel), c->list);
		if (ret)
			return err(VBM_EFAIL, "%s: queue %ld: cpu list '%s' refused: %s",
				   name, q, c->list, strerror(-ret));
		if (c->queue >= 0)
			break;
	}
	return 0;
}

static int cmd_set(int argc, char **argv)
{
	struct cpu_list_arg cl[VBM_MAX_CPU_LISTS];
	const char *name = NULL;
	struct vbm_spec s;
	char e[200], opts[200];
	int i, id, ret = 0, ncl = 0;
	bool any = false;

	vbm_spec_init(&s);
	for (i = 0; i < argc && !ret; i++) {
		if (is_cpu_list_opt(argv[i])) {
			if (i + 1 >= argc)
				ret = err(VBM_EUSAGE, "%s needs a value ([QUEUE=]LIST)", argv[i]);
			else if (ncl == VBM_MAX_CPU_LISTS)
				ret = err(VBM_EUSAGE, "too many --cpu-list");
			else if (parse_cpu_list(argv[i + 1], &cl[ncl]))
				ret = err(VBM_EUSAGE, "--cpu-list '%s': QUEUE must be 0 to %d",
					  argv[i + 1], VBS_MAX_QUEUES - 1);
			ncl++;
			any = true;
			i++;
		} else if (argv[i][0] == '-') {
			id = strncmp(argv[i], "--", 2) ? -1 : vbm_param_by_option(argv[i] + 2);
			if (id < 0 || !(vbm_params[id].flags & VBS_PF_LIVE))
				ret = err(VBM_EUSAGE,
					  "unknown option '%s' (only %s and --cpu-list change at run time; other parameters need the device recreated)",
					  argv[i], live_options(opts, sizeof(opts), false));
			else if (i + 1 >= argc)
				ret = err(VBM_EUSAGE, "%s needs a value%s", argv[i],
					  vbm_params[id].type == VBS_PT_BOOL ? " (on or off)" : "");
			else if (vbm_spec_set(&s, argv[i] + 2, argv[i + 1], e, sizeof(e)))
				ret = err(VBM_EUSAGE, "--%s", e);
			any = true;
			i++;
		} else if (name) {
			ret = err(VBM_EUSAGE, "unexpected argument '%s'", argv[i]);
		} else {
			name = argv[i];
		}
	}
	if (!ret && !name)
		ret = err(VBM_EUSAGE, "missing device name");
	if (!ret && !any)
		ret = err(VBM_EUSAGE, "nothing to set (%s, --cpu-list [QUEUE=]LIST)",
			  live_options(opts, sizeof(opts), true));
	if (!ret)
		ret = need_root();
	if (!ret)
		ret = require_ours(name);
	for (i = 0; i < VBS_NR_PARAMS && !ret; i++)
		if (s.p[i].set)
			ret = set_param(name, &s, i);
	for (i = 0; i < ncl && !ret; i++)
		ret = set_cpu_list(name, &cl[i]);
	vbm_spec_free(&s);
	return ret;
}

static int cmd_resize(int argc, char **argv)
{
	uint64_t before = 0, after = 0;
	char p[512], b1[32], b2[32];
	const char *name = NULL;
	int ret;

	ret = one_name(argc, argv, &name);
	if (!ret)
		ret = need_root();
	if (!ret)
		ret = require_ours(name);
	if (ret)
		return ret;
	read_u64(dev_path(p, sizeof(p), name, VBS_SYSFS_DIR "/capacity"), &before);
	ret = write_str(dev_path(p, sizeof(p), name, VBS_SYSFS_DIR "/resize"), "1");
	if (ret == -EINVAL)
		return err(VBM_EFAIL, "%s: resize refused: the backing is empty or unreadable", name);
	if (ret)
		return err(VBM_EFAIL, "%s: resize refused: %s", name, strerror(-ret));
	read_u64(dev_path(p, sizeof(p), name, VBS_SYSFS_DIR "/capacity"), &after);
	if (g_json)
		printf("{\"name\":\"%s\",\"capacity_before\":%" PRIu64 ",\"capacity\":%" PRIu64 "}\n",
		       name, before, after);
	else if (before == after)
		printf("%s: %s, unchanged (%" PRIu64 " sectors)\n", name,
		       vbm_human_size(after * 512, b2, sizeof(b2)), after);
	else
		printf("%s: %s -> %s (%" PRIu64 " sectors)\n", name,
		       vbm_human_size(before * 512, b1, sizeof(b1)),
		       vbm_human_size(after * 512, b2, sizeof(b2)), after);
	return 0;
}

static int cmd_bind(int argc, char **argv)
{
	enum vbm_bind b;
	char e[200], node[256];
	int ret;

	if (argc != 2)
		return err(VBM_EUSAGE, "usage: %s bind NAME virtio|vhost|none", prog);
	if (vbm_parse_bind(argv[1], &b, e, sizeof(e)))
		return err(VBM_EUSAGE, "%s", e);
	ret = need_root();
	if (ret)
		return ret;
	if (!dev_exists(argv[0]))
		return no_device(argv[0]);
	ret = do_bind(argv[0], b, node, sizeof(node));
	if (!ret && node[0])
		printf("%s\n", node);
	return ret;
}

static int destroy(struct vbm_nl *nl, const char *name)
{
	double deadline;
	char p[512];
	int ret;

	if (!dev_exists(name)) {
		snprintf(p, sizeof(p), CFS_ROOT "/%s", name);
		if (exists(p)) {
			cfs_remove(name);
			return 0;
		}
		return no_device(name);
	}
	ret = vbm_nl_request(nl, VDPA_CMD_DEV_DEL, false, NULL, name, NULL, NULL, NULL);
	if (ret == -ENODEV)
		return no_device(name);
	if (ret)
		return kernel_refused(ret, "device deletion");
	deadline = now_s() + g_timeout;
	while (dev_exists(name) && now_s() < deadline)
		sleep_ms(50);
	if (dev_exists(name))
		return err(VBM_ETIMEDOUT, "%s still exists %u s after deletion", name, g_timeout);
	cfs_remove(name);
	return 0;
}

static int cmd_destroy(int argc, char **argv)
{
	struct vbm_nl nl;
	const char *name = NULL;
	int ret;

	ret = one_name(argc, argv, &name);
	if (!ret)
		ret = need_root();
	if (!ret)
		ret = open_nl(&nl);
	if (ret)
		return ret;
	ret = destroy(&nl, name);
	vbm_nl_close(&nl);
	return ret;
}

static int cmd_create(int argc, char **argv)
{
	struct vbm_spec s;
	struct vbm_nl nl;
	char e[300];
	int ret;

	vbm_spec_init(&s);
	if (vbm_parse_create_args(argc, argv, &s, e, sizeof(e))) {
		vbm_spec_free(&s);
		return err(VBM_EUSAGE, "%s", e);
	}
	ret = need_root();
	if (!ret)
		ret = open_nl(&nl);
	if (!ret) {
		ret = create(&nl, &s, true);
		vbm_nl_close(&nl);
	}
	vbm_spec_free(&s);
	return ret;
}

/* --- apply ------------------------------------------------------------------ */

/*
 * Compare an existing device with its section; 0 matches, else mismatches.
 * need[id]: a live parameter differs, to be set.
 */
static int compare(struct vbm_nl *nl, const struct vbm_spec *s, bool need[VBS_NR_PARAMS],
		   bool *need_bind)
{
	char rt[NRT][4200], drv[64];
	struct devinfo d;
	int bad = 0, i;
	enum vbm_bind b = s->bind == VBM_BIND_UNSET ? VBM_BIND_VIRTIO : s->bind;

#define DIFF(what, have, want) do {						\
		printf("%s: differs: %s is %s, wanted %s\n", s->name, what, have, want); \
		bad++;								\
	} while (0)
	memset(need, 0, VBS_NR_PARAMS * sizeof(*need));
	*need_bind = false;
	if (get_dev(nl, s->name, &d))
		return -1;
	if (strcmp(d.mgmtdev, s->mgmtdev ? s->mgmtdev : VBM_MGMTDEV)) {
		DIFF("mgmtdev", d.mgmtdev, s->mgmtdev ? s->mgmtdev : VBM_MGMTDEV);
		return bad;
	}
	if (!s->mgmtdev || !strcmp(s->mgmtdev, VBM_MGMTDEV)) {
		const char *backing = VBM_SET(s, backing) ? VBM_STR(s, backing) : "";
		char want[64];
		const char *w;

		if (!rt_read(s->name, rt)) {
			printf("%s: differs: not a vdpa_blk_sw device\n", s->name);
			return 1;
		}
		/* the medium: a backing, or memory of a size */
		if (strcmp(rt_get(rt, "backing"), backing))
			DIFF("backing", rt_get(rt, "backing")[0] ? rt_get(rt, "backing") : "(memory)",
			     backing[0] ? backing : "(memory)");
		for (i = 0; i < VBS_NR_PARAMS; i++) {
			if (!s->p[i].set || i == VBS_P_backing || rt_hidden(i))
				continue;
			w = vbm_param_text(s, i, want, sizeof(want));
			if (!strcmp(rt[i], w))
				continue;
			/* "" (an older module) differs too: setting it says why it fails */
			if (vbm_params[i].flags & VBS_PF_LIVE)
				need[i] = true;
			else
				DIFF(vbm_params[i].name, rt[i], w);
		}
		if (VBM_SET(s, size) && !VBM_SET(s, backing)) {
			snprintf(want, sizeof(want), "%" PRIu64, VBM_NUM(s, size) / 512);
			if (strcmp(rt_get(rt, "capacity"), want))
				DIFF("capacity", rt_get(rt, "capacity"), want);
		}
	}
	if (s->has_features && d.features != s->features) {
		char h[32], w[32];

		snprintf(h, sizeof(h), "0x%" PRIx64, d.features);
		snprintf(w, sizeof(w), "0x%" PRIx64, s->features);
		DIFF("features", h, w);
	}
	dev_driver(s->name, drv, sizeof(drv));
	if (strcmp(drv, vbm_bind_driver(b))) {
		if (!drv[0])
			*need_bind = true;
		else if (b == VBM_BIND_NONE)
			printf("%s: bound to %s, wanted unbound ('%s bind %s none')\n", s->name,
			       drv, prog, s->name), bad++;
		else
			printf("%s: bound to %s, wanted %s ('%s bind %s %s')\n", s->name, drv,
			       vbm_bind_driver(b), prog, s->name, vbm_bind_name(b)), bad++;
	}
#undef DIFF
	return bad;
}

static int cmd_apply(int argc, char **argv)
{
	struct vbm_config c;
	struct vbm_nl nl;
	char e[600];
	int i, ret = 0, r, mism = 0;
	FILE *f;

	if (argc != 1)
		return err(VBM_EUSAGE, "usage: %s apply FILE", prog);
	f = strcmp(argv[0], "-") ? fopen(argv[0], "re") : stdin;
	if (!f)
		return err(VBM_EUSAGE, "cannot open %s: %s", argv[0], strerror(errno));
	r = vbm_parse_config(f, argv[0], &c, e, sizeof(e));
	if (f != stdin)
		fclose(f);
	if (r) {
		vbm_config_free(&c);
		return err(VBM_EUSAGE, "%s", e);
	}
	r = need_root();
	if (!r)
		r = open_nl(&nl);
	if (r) {
		vbm_config_free(&c);
		return r;
	}
	for (i = 0; i < c.n; i++) {
		struct vbm_spec *s = &c.devs[i];
		bool need[VBS_NR_PARAMS], bind, changed = false;
		char node[256], v[64];
		int k;

		if (!dev_exists(s->name)) {
			r = create(&nl, s, false);
			if (!r) {
				dev_node(s->name, node, sizeof(node));
				printf("%s: created%s%s\n", s->name, node[0] ? " " : "", node);
			}
		} else {
			r = compare(&nl, s, need, &bind);
			if (r < 0) {
				r = VBM_EFAIL;
			} else if (r > 0) {
				printf("%s: left as it is; '%s destroy %s' and apply again to recreate it\n",
				       s->name, prog, s->name);
				mism++;
				r = 0;
			} else {
				for (k = 0; k < VBS_NR_PARAMS && !r; k++) {
					if (!need[k])
						continue;
					r = set_param(s->name, s, k);
					if (!r)
						printf("%s: %s set to %s\n", s->name, vbm_params[k].name,
						       vbm_param_text(s, k, v, sizeof(v)));
					changed = true;
				}
				if (!r && bind) {
					r = do_bind(s->name, s->bind == VBM_BIND_UNSET ?
						    VBM_BIND_VIRTIO : s->bind, node, sizeof(node));
					if (!r)
						printf("%s: bound%s%s\n", s->name,
						       node[0] ? " " : "", node);
				}
				if (!r && !changed && !bind)
					printf("%s: unchanged\n", s->name);
			}
		}
		if (r && !ret)
			ret = r;
	}
	vbm_nl_close(&nl);
	vbm_config_free(&c);
	if (!ret && mism)
		ret = VBM_EMISMATCH;
	return ret;
}

/* --- help ---------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
	const char *help;
} cmds[] = {
	{ "create", cmd_create,
	  "create NAME [--backing PATH | --size BYTES] [--read-only]\n"
	  "       [--direct|--buffered] [--num-queues N] [--num-workers N]\n"
	  "       [--queue-size N] [--block-size N] [--serial S] [--poll-idle-us N]\n"
	  "       [--poll-adaptive on|off] [--iopoll] [--use-va] [--shared]\n"
	  "       [--features LIST|0xHEX] [--bind virtio|vhost|none] [--mgmtdev NAME]",
	  "Stage the parameters in configfs, create the device over vdpa netlink,\n"
	  "bind it (default: virtio) and print its node (/dev/vdX or\n"
	  "/dev/vhost-vdpa-N).  Without --backing the device has a memory backing of\n"
	  "--size bytes (K, M, G, T suffixes; default: the module's default_size_mb).\n"
	  "--num-queues defaults to one per online CPU (at most 16).\n"
	  "--num-workers N: polling threads of the device's own (at most\n"
	  "--num-queues), queue i served by thread i mod N; default 0: the\n"
	  "module's shared pool, one thread per CPU (with --use-va: one per queue).\n"
	  "--features provisions a subset of the management device's features, by\n"
	  "name (VERSION_1,ACCESS_PLATFORM,FLUSH,DISCARD,...) or as a hex mask.\n"
	  "--poll-adaptive has no configfs attribute: it is set in sysfs once the\n"
	  "device exists, before it is bound (default: the module's\n"
	  "default_poll_adaptive).\n"
	  "--shared lets other --shared devices use the same backing (migration\n"
	  "between two devices); the default is exclusive (EBUSY).\n"
	  "A parameter's option is its name (as in sysfs) with '-' for '_'; '_'\n"
	  "is taken too.  Older spellings, still taken: --ro, --queues, --workers,\n"
	  "--poll-us." },
	{ "destroy", cmd_destroy, "destroy NAME",
	  "Delete the device (its driver is unbound first) and its configfs item." },
	{ "list", cmd_list, "list [--all] [--json]",
	  "List vdpa_blk_sw devices (--all: every vdpa device)." },
	{ "show", cmd_show, "show NAME [--json]",
	  "Everything about a device: backing, capacity, block config as the kernel\n"
	  "reports it over netlink, offered and negotiated features, driver, node,\n"
	  "tunables and queue counters." },
	{ "stats", cmd_stats, "stats NAME [--watch SECONDS [--count N]] [--json]",
	  "Per-queue counters; with --watch, per-queue rates every SECONDS." },
	{ "set", cmd_set,
	  "set NAME [--poll-idle-us N] [--poll-adaptive on|off]\n"
	  "       [--cpu-list [QUEUE=]LIST]...",
	  "Change run-time tunables: the longest busy-poll window (0 to 1000000 us),\n"
	  "and whether each worker sizes its window within it from the idle periods\n"
	  "it sees (on, the default) or always polls that long (off).\n"
	  "--cpu-list sets the CPUs of queue QUEUE (of every queue without QUEUE=)\n"
	  "as a list like 0-3,8 (sysfs blk_sw_qN/cpu_list); an empty LIST goes\n"
	  "back to the driver's CPUs.  Repeatable." },
	{ "resize", cmd_resize, "resize NAME",
	  "Read the backing's size again after it changed and tell the driver." },
	{ "bind", cmd_bind, "bind NAME virtio|vhost|none",
	  "Bind the device to virtio_vdpa or vhost_vdpa (unbinding it first), or\n"
	  "leave it unbound; prints the node." },
	{ "qemu-args", cmd_qemu_args,
	  "qemu-args NAME [--form generic|blkio] [--mode pa|va]\n"
	  "       [--memory private|memfd|hugetlb] [--memory-size BYTES]",
	  "Print the QEMU options that give a guest the device, bound to vhost_vdpa:\n"
	  "-m, the guest memory its mode needs, and -device vhost-vdpa-device-pci\n"
	  "(--form generic, the default) or -blockdev virtio-blk-vhost-vdpa with\n"
	  "-device virtio-blk-pci (--form blkio), one option and its value a line.\n"
	  "The mode is the device's (use_va); --mode checks it (and is needed for\n"
	  "another mgmtdev's device).  --memory: QEMU's default private RAM (PA\n"
	  "mode's default), a shared memfd (VA mode's and blkio's) or a shared\n"
	  "hugetlb memfd; --memory-size: guest RAM (default 1G).  Warns on stderr\n"
	  "about what would stop QEMU or hang the guest: VA mode on private RAM, PA\n"
	  "mode needing more IOTLB entries than vhost_vdpa's max_iotlb_entries or\n"
	  "more locked memory than RLIMIT_MEMLOCK, too few huge pages, rings\n"
	  "smaller than 1024.  Exit 1 if the device is not bound to vhost_vdpa." },
	{ "apply", cmd_apply, "apply FILE",
	  "Create the devices FILE describes that do not exist, leave matching ones\n"
	  "alone, update poll_idle_us and poll_adaptive and bind unbound ones; report\n"
	  "devices that differ in what only recreation changes (exit 8).  Format:\n"
	  "vdpa-blk-mgmt(8)." },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: %s [--json] [--timeout SECONDS] COMMAND [ARGS]\n\ncommands:\n", prog);
	for (i = 0; i < NCMDS; i++)
		fprintf(f, "  %s\n", cmds[i].usage);
	fprintf(f, "\n'%s COMMAND --help' for one command; exit codes: 0 ok, 1 failed or\n"
		"refused by the kernel, 2 usage, 3 not root, 4 module not loaded, 5 backing,\n"
		"6 name taken, 7 no such device, 8 apply found differences, 9 timeout.\n"
		"See vdpa-blk-mgmt(8).\n", prog);
}

int main(int argc, char **argv)
{
	char **args;
	int i, n = 0;
	bool help = false;
	char e[200];
	size_t c;

	args = calloc((size_t)argc + 1, sizeof(*args));
	if (!args)
		return VBM_EFAIL;
	/* global options may appear anywhere */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j")) {
			g_json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			help = true;
		} else if (!strcmp(argv[i], "--version")) {
			printf("%s %s\n", prog, VBM_VERSION);
			return 0;
		} else if (!strcmp(argv[i], "--timeout")) {
			if (i + 1 >= argc || vbm_parse_u32(argv[i + 1], 1, 3600, &g_timeout,
							   e, sizeof(e)))
				return err(VBM_EUSAGE, "--timeout: %s",
					   i + 1 < argc ? e : "needs a value");
			i++;
		} else {
			args[n++] = argv[i];
		}
	}
	if (n == 0 || !strcmp(args[0], "help")) {
		if (n > 1) {
			args[0] = args[1];
			help = true;
		} else {
			usage(help || n ? stdout : stderr);
			return help || n ? 0 : VBM_EUSAGE;
		}
	}
	for (c = 0; c < NCMDS; c++) {
		if (strcmp(args[0], cmds[c].name))
			continue;
		if (help) {
			printf("usage: %s %s\n\n%s\n", prog, cmds[c].usage, cmds[c].help);
			return 0;
		}
		g_cmd = cmds[c].name;
		return cmds[c].fn(n - 1, args + 1);
	}
	err(VBM_EUSAGE, "unknown command '%s'", args[0]);
	usage(stderr);
	return VBM_EUSAGE;
}
