// SPDX-License-Identifier: GPL-2.0
/*
 * vdpa-blk-mgmt: argument and file parsing, feature names, formatting.
 * No system calls beyond stdio here: everything is unit-tested on the host
 * (test.c).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib.h"

static int errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

const struct vbm_param vbm_params[VBS_NR_PARAMS] = {
#define VBS_PARAM(name, type, min, max, def, flags) \
	[VBS_P_##name] = { #name, VBS_PT_##type, min, max, flags },
#include <linux/vdpa_blk_sw_params.h>
};

const char *vbm_param_option(enum vbs_param_id id)
{
	static char opts[VBS_NR_PARAMS][32];
	char *o = opts[id];
	size_t i;

	if (!o[0]) {
		snprintf(o, sizeof(opts[id]), "%s", vbm_params[id].name);
		for (i = 0; o[i]; i++)
			if (o[i] == '_')
				o[i] = '-';
	}
	return o;
}

bool vbm_param_is_flag(enum vbs_param_id id)
{
	return vbm_params[id].type == VBS_PT_BOOL && !(vbm_params[id].flags & VBS_PF_LIVE);
}

void vbm_spec_init(struct vbm_spec *s)
{
	memset(s, 0, sizeof(*s));
}

void vbm_spec_free(struct vbm_spec *s)
{
	int i;

	free(s->mgmtdev);
	s->mgmtdev = NULL;
	for (i = 0; i < VBS_NR_PARAMS; i++) {
		free(s->p[i].str);
		s->p[i].str = NULL;
	}
}

const char *vbm_param_text(const struct vbm_spec *s, enum vbs_param_id id,
			   char *buf, size_t len)
{
	const struct vbm_val *v = &s->p[id];

	if (vbm_params[id].type == VBS_PT_PATH || vbm_params[id].type == VBS_PT_TEXT)
		return v->str ? v->str : "";
	snprintf(buf, len, "%" PRIu64, v->num);
	return buf;
}

int vbm_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out,
		  char *err, size_t errlen)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return errf(err, errlen, "'%s' is not a number", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return errf(err, errlen, "'%s' is not a number", s);
	if (v < min || v > max)
		return errf(err, errlen, "%s is out of range (%" PRIu32 " to %" PRIu32 ")",
			    s, min, max);
	*out = (uint32_t)v;
	return 0;
}

int vbm_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
	static const char units[] = "KMGTPE";
	unsigned long long v;
	unsigned int shift = 0;
	const char *u;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return errf(err, errlen, "invalid size '%s': expected bytes, or a number with K, M, G or T",
			    s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return errf(err, errlen, "invalid size '%s': too large", s);
	if (*end) {
		u = strchr(units, toupper((unsigned char)*end));
		if (!u)
			return errf(err, errlen, "invalid size '%s': unknown unit '%s'", s, end);
		shift = 10 * (unsigned int)(u - units + 1);
		end++;
		if (!strcasecmp(end, "iB") || !strcasecmp(end, "B"))
			end += strlen(end);
		if (*end)
			return errf(err, errlen, "invalid size '%s': unknown unit", s);
		if (v > (UINT64_MAX >> shift))
			return errf(err, errlen, "invalid size '%s': too large", s);
		v <<= shift;
	}
	if (v == 0 || v % 512)
		return errf(err, errlen, "invalid size '%s': must be a positive multiple of 512 bytes",
			    s);
	*out = v;
	return 0;
}

/* Bit numbers from the virtio 1.3 spec (blk device and reserved bits). */
static const struct {
	unsigned int bit;
	const char *name;
	const char *alias;
} vbm_features[] = {
	{ 0, "BARRIER", NULL },
	{ 1, "SIZE_MAX", NULL },
	{ 2, "SEG_MAX", NULL },
	{ 4, "GEOMETRY", NULL },
	{ 5, "RO", "READ_ONLY" },
	{ 6, "BLK_SIZE", NULL },
	{ 7, "SCSI", NULL },
	{ 9, "FLUSH", NULL },
	{ 10, "TOPOLOGY", NULL },
	{ 11, "CONFIG_WCE", NULL },
	{ 12, "MQ", NULL },
	{ 13, "DISCARD", NULL },
	{ 14, "WRITE_ZEROES", NULL },
	{ 15, "LIFETIME", NULL },
	{ 16, "SECURE_ERASE", NULL },
	{ 17, "ZONED", NULL },
	{ 24, "NOTIFY_ON_EMPTY", NULL },
	{ 27, "ANY_LAYOUT", NULL },
	{ 28, "RING_INDIRECT_DESC", "INDIRECT_DESC" },
	{ 29, "RING_EVENT_IDX", "EVENT_IDX" },
	{ 32, "VERSION_1", NULL },
	{ 33, "ACCESS_PLATFORM", "IOMMU_PLATFORM" },
	{ 34, "RING_PACKED", NULL },
	{ 35, "IN_ORDER", NULL },
	{ 36, "ORDER_PLATFORM", NULL },
	{ 37, "SR_IOV", NULL },
	{ 38, "NOTIFICATION_DATA", NULL },
	{ 39, "NOTIF_CONFIG_DATA", NULL },
	{ 40, "RING_RESET", NULL },
	{ 41, "ADMIN_VQ", NULL },
};

#define NFEATURES (sizeof(vbm_features) / sizeof(vbm_features[0]))

const char *vbm_feature_name(unsigned int bit)
{
	size_t i;

	for (i = 0; i < NFEATURES; i++)
		if (vbm_features[i].bit == bit)
			return vbm_features[i].name;
	return NULL;
}

static int feature_bit(const char *tok)
{
	static const char *const prefixes[] = {
		"VIRTIO_BLK_F_", "VIRTIO_RING_F_", "VIRTIO_F_", "VIRTIO_",
	};
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncasecmp(tok, prefixes[i], strlen(prefixes[i]))) {
			tok += strlen(prefixes[i]);
			break;
		}
	for (i = 0; i < NFEATURES; i++)
		if (!strcasecmp(tok, vbm_features[i].name) ||
		    (vbm_features[i].alias && !strcasecmp(tok, vbm_features[i].alias)))
			return (int)vbm_features[i].bit;
	return -1;
}

int vbm_parse_features(const char *s, uint64_t *out, char *err, size_t errlen)
{
	char *copy, *tok, *save = NULL;
	uint64_t f = 0;
	int bit, ret = 0;

	if (!s || !*s)
		return errf(err, errlen, "empty feature list");
	if (!strncasecmp(s, "0x", 2)) {
		unsigned long long v;
		char *end;

		errno = 0;
		v = strtoull(s + 2, &end, 16);
		if (errno || *end || !s[2])
			return errf(err, errlen, "invalid feature mask '%s'", s);
		*out = v;
		return 0;
	}
	copy = strdup(s);
	if (!copy)
		return errf(err, errlen, "out of memory");
	for (tok = strtok_r(copy, ", \t", &save); tok;
	     tok = strtok_r(NULL, ", \t", &save)) {
		bit = feature_bit(tok);
		if (bit < 0) {
			ret = errf(err, errlen,
				   "unknown feature name '%s' (see vdpa-blk-mgmt(8); e.g. VERSION_1,ACCESS_PLATFORM,FLUSH,DISCARD)",
				   tok);
			break;
		}
		f |= 1ULL << bit;
	}
	free(copy);
	if (!ret && !f)
		ret = errf(err, errlen, "empty feature list");
	if (!ret)
		*out = f;
	return ret;
}

char *vbm_features_str(uint64_t f, char *buf, size_t len)
{
	size_t off = 0;
	unsigned int bit;
	const char *n;
	int r;

	if (len)
		buf[0] = '\0';
	for (bit = 0; bit < 64; bit++) {
		if (!(f & (1ULL << bit)))
			continue;
		n = vbm_feature_name(bit);
		if (n)
			r = snprintf(buf + off, len - off, "%s%s", off ? " " : "", n);
		else
			r = snprintf(buf + off, len - off, "%sbit%u", off ? " " : "", bit);
		if (r < 0 || (size_t)r >= len - off)
			break;
		off += (size_t)r;
	}
	return buf;
}

int vbm_parse_bind(const char *s, enum vbm_bind *out, char *err, size_t errlen)
{
	if (s && (!strcmp(s, "virtio") || !strcmp(s, "virtio_vdpa")))
		*out = VBM_BIND_VIRTIO;
	else if (s && (!strcmp(s, "vhost") || !strcmp(s, "vhost_vdpa")))
		*out = VBM_BIND_VHOST;
	else if (s && !strcmp(s, "none"))
		*out = VBM_BIND_NONE;
	else
		return errf(err, errlen, "invalid driver '%s': expected virtio, vhost or none",
			    s ? s : "");
	return 0;
}

const char *vbm_bind_name(enum vbm_bind b)
{
	switch (b) {
	case VBM_BIND_VIRTIO: return "virtio";
	case VBM_BIND_VHOST: return "vhost";
	case VBM_BIND_NONE: return "none";
	default: return "";
	}
}

const char *vbm_bind_driver(enum vbm_bind b)
{
	switch (b) {
	case VBM_BIND_VIRTIO: return "virtio_vdpa";
	case VBM_BIND_VHOST: return "vhost_vdpa";
	default: return "";
	}
}

int vbm_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on", "y" };
	static const char *const no[] = { "0", "no", "false", "off", "n" };
	size_t i;

	for (i = 0; i < 5; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

int vbm_parse_u64_list(const char *s, uint64_t *out, int max, char *err,
		       size_t errlen)
{
	unsigned long long v;
	const char *p = s;
	char *end;
	int n = 0;

	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			return n;
		if (*p < '0' || *p > '9')
			return errf(err, errlen, "'%s' is not a list of numbers", s);
		if (n == max)
			return errf(err, errlen, "'%s' has more than %d numbers", s, max);
		errno = 0;
		v = strtoull(p, &end, 10);
		if (errno || (*end && *end != ' '))
			return errf(err, errlen, "'%s' is not a list of numbers", s);
		out[n++] = v;
		p = end;
	}
}

int vbm_check_name(const char *s, char *err, size_t errlen)
{
	const char *p;

	if (!s || !*s)
		return errf(err, errlen, "missing device name");
	if (strlen(s) > VBM_NAME_MAX)
		return errf(err, errlen, "device name '%s' is longer than %d characters",
			    s, VBM_NAME_MAX);
	if (s[0] == '-' || !strcmp(s, ".") || !strcmp(s, ".."))
		return errf(err, errlen, "invalid device name '%s'", s);
	for (p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.:", *p))
			return errf(err, errlen,
				    "invalid device name '%s': use letters, digits, '-', '_', '.' or ':'",
				    s);
	return 0;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d) {
		fputs("vdpa-blk-mgmt: out of memory\n", stderr);
		exit(VBM_EFAIL);
	}
	return d;
}

/*
 * Options of older versions (Documentation/naming.rst), and --buffered, the
 * flag for direct = 0.
 */
const struct vbm_alias vbm_aliases[] = {
	{ "ro", VBS_P_read_only, false },
	{ "buffered", VBS_P_direct, true },
	{ "queues", VBS_P_num_queues, false },
	{ "workers", VBS_P_num_workers, false },
	{ "poll-us", VBS_P_poll_idle_us, false },
};

const int vbm_nr_aliases = sizeof(vbm_aliases) / sizeof(vbm_aliases[0]);

/* key and name equal, with '-' and '_' alike */
static bool key_is(const char *key, const char *name)
{
	for (; *key && *name; key++, name++)
		if (*key != *name && !(strchr("-_", *key) && strchr("-_", *name)))
			return false;
	return !*key && !*name;
}

/* Options of create that are not parameters of the module; all take a value. */
static const char *const other_keys[] = { "features", "bind", "mgmtdev" };

static int param_of(const char *key, bool *negate)
{
	size_t i;

	*negate = false;
	for (i = 0; i < VBS_NR_PARAMS; i++)
		if (key_is(key, vbm_params[i].name))
			return (int)i;
	for (i = 0; i < (size_t)vbm_nr_aliases; i++)
		if (key_is(key, vbm_aliases[i].key)) {
			*negate = vbm_aliases[i].negate;
			return vbm_aliases[i].id;
		}
	return -1;
}

int vbm_param_by_option(const char *key)
{
	bool negate;

	return param_of(key, &negate);
}

/* Options that take no value on the command line (a yes/no in a file). */
static bool is_flag(const char *key)
{
	int id = vbm_param_by_option(key);

	return id >= 0 && vbm_param_is_flag(id);
}

static bool is_key(const char *key)
{
	size_t i;

	if (vbm_param_by_option(key) >= 0)
		return true;
	for (i = 0; i < sizeof(other_keys) / sizeof(other_keys[0]); i++)
		if (!strcmp(key, other_keys[i]))
			return true;
	return false;
}

/* One parameter's value, checked against its line of the table */
static int param_set(struct vbm_spec *s, int id, bool negate, const char *key,
		     const char *val, char *err, size_t errlen)
{
	const struct vbm_param *pm = &vbm_params[id];
	struct vbm_val *v = &s->p[id];
	const char *p;
	uint32_t u;
	char e[200];
	int b;

	switch (pm->type) {
	case VBS_PT_BOOL:
		if (vbm_parse_bool(val, &b))
			return errf(err, errlen, "%s: expected %s, got '%s'", key,
				    vbm_param_is_flag(id) ? "yes or no" : "on or off", val);
		v->num = negate ? !b : b;
		break;
	case VBS_PT_U32:
		if ((pm->flags & VBS_PF_AUTO) && !strcmp(val, "0")) {
			v->num = 0;
			break;
		}
		if (vbm_parse_u32(val, (uint32_t)pm->min, (uint32_t)pm->max, &u, e, sizeof(e)))
			return errf(err, errlen, "%s: %s", key, e);
		if ((pm->flags & VBS_PF_POW2) && (u & (u - 1)))
			return errf(err, errlen, "%s: %s is not a power of two", key, val);
		v->num = u;
		break;
	case VBS_PT_U64:
		/* a size in bytes: a positive multiple of 512, with units */
		if (vbm_parse_size(val, &v->num, e, sizeof(e)))
			return errf(err, errlen, "%s: %s", key, e);
		break;
	case VBS_PT_PATH:
		if (val[0] != '/')
			return errf(err, errlen, "%s: '%s' is not an absolute path", key, val);
		if (strlen(val) > pm->max)
			return errf(err, errlen, "%s: path too long", key);
		free(v->str);
		v->str = xstrdup(val);
		break;
	case VBS_PT_TEXT:
		if (strlen(val) > pm->max)
			return errf(err, errlen, "%s: '%s' is longer than %d characters",
				    key, val, (int)pm->max);
		for (p = val; *p; p++)
			if (!isprint((unsigned char)*p))
				return errf(err, errlen, "%s: only printable characters", key);
		free(v->str);
		v->str = xstrdup(val);
		break;
	}
	v->set = true;
	return 0;
}

int vbm_spec_set(struct vbm_spec *s, const char *key, const char *val,
		 char *err, size_t errlen)
{
	bool negate;
	int id = param_of(key, &negate);
	char e[200];

	if (id >= 0)
		return param_set(s, id, negate, key, val, err, errlen);
	if (!strcmp(key, "features")) {
		if (vbm_parse_features(val, &s->features, e, sizeof(e)))
			return errf(err, errlen, "features: %s", e);
		s->has_features = true;
	} else if (!strcmp(key, "mgmtdev")) {
		if (!*val || strlen(val) > VBM_NAME_MAX || strchr(val, '/'))
			return errf(err, errlen, "mgmtdev: invalid name '%s'", val);
		free(s->mgmtdev);
		s->mgmtdev = xstrdup(val);
	} else if (!strcmp(key, "bind")) {
		if (vbm_parse_bind(val, &s->bind, e, sizeof(e)))
			return errf(err, errlen, "bind: %s", e);
	} else {
		return errf(err, errlen, "unknown option '%s'", key);
	}
	return 0;
}

int vbm_spec_check(const struct vbm_spec *s, char *err, size_t errlen)
{
	bool ours = !s->mgmtdev || !strcmp(s->mgmtdev, VBM_MGMTDEV);
	int i;

	for (i = 0; i < VBS_NR_PARAMS && !ours; i++)
		if (s->p[i].set)
			return errf(err, errlen,
				    "only --features and --bind apply to management device %s",
				    s->mgmtdev);
	if (VBM_SET(s, backing) && VBM_SET(s, size))
		return errf(err, errlen,
			    "--size is the size of the memory backing; a backing file or device has its own size");
	if (VBM_SET(s, iopoll) && VBM_NUM(s, iopoll) &&
	    (!VBM_SET(s, backing) || (VBM_SET(s, direct) && !VBM_NUM(s, direct))))
		return errf(err, errlen, "--iopoll needs --backing and direct I/O");
	if (VBM_SET(s, size) && VBM_SET(s, block_size) &&
	    VBM_NUM(s, size) % VBM_NUM(s, block_size))
		return errf(err, errlen, "--size must be a multiple of --block-size");
	if (VBM_SET(s, num_workers) && VBM_SET(s, num_queues) &&
	    VBM_NUM(s, num_workers) > VBM_NUM(s, num_queues))
		return errf(err, errlen, "--num-workers must not be more than --num-queues");
	return 0;
}

int vbm_parse_create_args(int argc, char **argv, struct vbm_spec *s,
			  char *err, size_t errlen)
{
	const char *key, *val;
	char k[32];
	int i;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i], *eq;

		if (strncmp(a, "--", 2) || !a[2]) {
			if (a[0] == '-')
				return errf(err, errlen, "unknown option '%s'", a);
			if (s->name[0])
				return errf(err, errlen, "unexpected argument '%s'", a);
			if (vbm_check_name(a, err, errlen))
				return -1;
			snprintf(s->name, sizeof(s->name), "%s", a);
			continue;
		}
		key = a + 2;
		eq = strchr(key, '=');
		if (eq) {
			if ((size_t)(eq - key) >= sizeof(k))
				return errf(err, errlen, "unknown option '%s'", a);
			memcpy(k, key, (size_t)(eq - key));
			k[eq - key] = '\0';
			key = k;
			val = eq + 1;
			if (is_flag(key))
				return errf(err, errlen, "option '--%s' takes no value", key);
		} else if (is_flag(key)) {
			val = "yes";
		} else if (!is_key(key)) {
			return errf(err, errlen, "unknown option '%s'", a);
		} else {
			if (i + 1 >= argc)
				return errf(err, errlen, "option '--%s' needs a value", key);
			val = argv[++i];
		}
		if (vbm_spec_set(s, key, val, err, errlen))
			return -1;
	}
	if (!s->name[0])
		return errf(err, errlen, "missing device name");
	return vbm_spec_check(s, err, errlen);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int vbm_parse_config(FILE *f, const char *fname, struct vbm_config *c,
		     char *err, size_t errlen)
{
	char line[8192], e[300];
	struct vbm_spec *cur = NULL;
	int lineno = 0, i;

	memset(c, 0, sizeof(*c));
	while (fgets(line, sizeof(line), f)) {
		char *p, *eq, *key, *val;

		lineno++;
		if (!strchr(line, '\n') && !feof(f))
			return errf(err, errlen, "%s:%d: line too long", fname, lineno);
		p = trim(line);
		if (!*p || *p == '#' || *p == ';')
			continue;
		if (*p == '[') {
			struct vbm_spec *d;
			char *end = strchr(p, ']');

			if (!end || trim(end + 1)[0])
				return errf(err, errlen, "%s:%d: expected [NAME]", fname, lineno);
			*end = '\0';
			p = trim(p + 1);
			if (vbm_check_name(p, e, sizeof(e)))
				return errf(err, errlen, "%s:%d: %s", fname, lineno, e);
			for (i = 0; i < c->n; i++)
				if (!strcmp(c->devs[i].name, p))
					return errf(err, errlen, "%s:%d: device %s defined twice (line %d)",
						    fname, lineno, p, c->devs[i].line);
			d = realloc(c->devs, sizeof(*d) * (size_t)(c->n + 1));
			if (!d)
				return errf(err, errlen, "out of memory");
			c->devs = d;
			cur = &c->devs[c->n++];
			vbm_spec_init(cur);
			snprintf(cur->name, sizeof(cur->name), "%s", p);
			cur->line = lineno;
			continue;
		}
		eq = strchr(p, '=');
		if (!eq)
			return errf(err, errlen, "%s:%d: expected 'key = value'", fname, lineno);
		if (!cur)
			return errf(err, errlen, "%s:%d: '%s' outside a [NAME] section",
				    fname, lineno, p);
		*eq = '\0';
		key = trim(p);
		val = trim(eq + 1);
		if (vbm_spec_set(cur, key, val, e, sizeof(e)))
			return errf(err, errlen, "%s:%d: %s", fname, lineno, e);
	}
	if (ferror(f))
		return errf(err, errlen, "%s: read error", fname);
	for (i = 0; i < c->n; i++)
		if (vbm_spec_check(&c->devs[i], e, sizeof(e)))
			return errf(err, errlen, "%s:%d: [%s]: %s", fname, c->devs[i].line,
				    c->devs[i].name, e);
	return 0;
}

void vbm_config_free(struct vbm_config *c)
{
	int i;

	for (i = 0; i < c->n; i++)
		vbm_spec_free(&c->devs[i]);
	free(c->devs);
	c->devs = NULL;
	c->n = 0;
}

char *vbm_human_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	unsigned int i = 0;
	double v = (double)bytes;

	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64, bytes);
		return buf;
	}
	while (v >= 1024 && i < sizeof(units) - 1) {
		v /= 1024;
		i++;
	}
	if (bytes % (1ULL << (10 * i)) == 0)
		snprintf(buf, len, "%.0f%c", v, units[i - 1]);
	else
		snprintf(buf, len, "%.1f%c", v, units[i - 1]);
	return buf;
}

/* --- qemu-args ------------------------------------------------------- */

int vbm_parse_form(const char *s, enum vbm_form *out, char *err, size_t errlen)
{
	if (s && !strcmp(s, "generic"))
		*out = VBM_FORM_GENERIC;
	else if (s && !strcmp(s, "blkio"))
		*out = VBM_FORM_BLKIO;
	else
		return errf(err, errlen, "invalid form '%s': expected generic or blkio",
			    s ? s : "");
	return 0;
}

int vbm_parse_mode(const char *s, bool *use_va, char *err, size_t errlen)
{
	if (s && !strcmp(s, "pa"))
		*use_va = false;
	else if (s && !strcmp(s, "va"))
		*use_va = true;
	else
		return errf(err, errlen, "invalid mode '%s': expected pa or va", s ? s : "");
	return 0;
}

int vbm_parse_memory(const char *s, enum vbm_memory *out, char *err, size_t errlen)
{
	if (s && !strcmp(s, "private"))
		*out = VBM_MEM_PRIVATE;
	else if (s && !strcmp(s, "memfd"))
		*out = VBM_MEM_MEMFD;
	else if (s && !strcmp(s, "hugetlb"))
		*out = VBM_MEM_HUGETLB;
	else
		return errf(err, errlen, "invalid memory '%s': expected private, memfd or hugetlb",
			    s ? s : "");
	return 0;
}

const char *vbm_form_name(enum vbm_form f)
{
	return f == VBM_FORM_BLKIO ? "blkio" : "generic";
}

const char *vbm_memory_name(enum vbm_memory m)
{
	switch (m) {
	case VBM_MEM_PRIVATE:
		return "private";
	case VBM_MEM_MEMFD:
		return "memfd";
	case VBM_MEM_HUGETLB:
		return "hugetlb";
	default:
		return "";
	}
}

bool vbm_thp_madvised(const char *text)
{
	return strstr(text, "[always]") || strstr(text, "[madvise]") ||
	       strstr(text, "[advise]") || strstr(text, "[within_size]") ||
	       strstr(text, "[force]");
}

static uint64_t meminfo_value(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	uint64_t v;

	if (!p || (p != text && p[-1] != '\n'))
		return 0;
	v = strtoull(p + strlen(key), NULL, 10);
	return v;
}

void vbm_parse_meminfo(const char *text, uint64_t *hugepage_size, uint64_t *free)
{
	*hugepage_size = meminfo_value(text, "Hugepagesize:") * 1024;
	*free = meminfo_value(text, "HugePages_Free:");
}

/* A size as QEMU takes it: "4G", "256M", or bytes */
static char *qemu_size(uint64_t bytes, char *buf, size_t len)
{
	if (bytes && !(bytes % (1ULL << 30)))
		snprintf(buf, len, "%" PRIu64 "G", bytes >> 30);
	else if (bytes && !(bytes % (1ULL << 20)))
		snprintf(buf, len, "%" PRIu64 "M", bytes >> 20);
	else
		snprintf(buf, len, "%" PRIu64, bytes);
	return buf;
}

static void qemu_arg(struct vbm_qemu_out *o, const char *opt, const char *fmt, ...)
{
	va_list ap;

	if (o->nargs + 2 > VBM_QEMU_MAX_ARGS)
		return;
	snprintf(o->args[o->nargs++], sizeof(o->args[0]), "%s", opt);
	va_start(ap, fmt);
	vsnprintf(o->args[o->nargs++], sizeof(o->args[0]), fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 3, 4)))
qemu_warn(struct vbm_qemu_out *o, const char *hint, const char *fmt, ...)
{
	va_list ap;

	if (o->nwarn >= VBM_QEMU_MAX_WARN)
		return;
	va_start(ap, fmt);
	vsnprintf(o->warn[o->nwarn].text, sizeof(o->warn[0].text), fmt, ap);
	va_end(ap);
	snprintf(o->warn[o->nwarn].hint, sizeof(o->warn[0].hint), "%s", hint);
	o->nwarn++;
}

/*
 * A QEMU id from the device's name, for the QEMU device and the block node
 * (their names do not clash): a letter first, then letters, digits, '-',
 * '.' and '_', at most 31 characters (a block node's limit).
 */
static void qemu_id(const char *name, char *id, size_t len)
{
	size_t i;

	snprintf(id, len < 32 ? len : 32, "vbs-%s", name);
	for (i = 4; id[i]; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '.' &&
		    id[i] != '_')
			id[i] = '_';
}

/* PA mode: how many IOTLB entries guest RAM may take, one per run of pages */
static uint64_t pa_entries(const struct vbm_qemu_req *r, const struct vbm_qemu_host *h,
			   uint64_t *page)
{
	switch (r->memory) {
	case VBM_MEM_PRIVATE:
		*page = h->thp ? 2ULL << 20 : 4096;
		break;
	case VBM_MEM_MEMFD:
		*page = h->shmem_thp ? 2ULL << 20 : 4096;
		break;
	default:
		*page = h->hugepage_size ? h->hugepage_size : 2ULL << 20;
		break;
	}
	return (r->memory_size + *page - 1) / *page + VBM_QEMU_EXTRA_ENTRIES;
}

int vbm_qemu_args(const struct vbm_qemu_req *r, const struct vbm_qemu_host *h,
		  struct vbm_qemu_out *o, char *err, size_t errlen)
{
	struct vbm_qemu_req q = *r;
	char id[32], sz[32], b1[32], b2[32], hint[400];
	uint64_t page, need;

	memset(o, 0, sizeof(*o));
	if (q.memory == VBM_MEM_UNSET)
		/* VA mode maps shared file-backed memory only; libblkio hangs on private RAM */
		q.memory = q.use_va || q.form == VBM_FORM_BLKIO ? VBM_MEM_MEMFD :
			   VBM_MEM_PRIVATE;
	o->memory = q.memory;
	if (!q.memory_size || q.memory_size % (1ULL << 20))
		return errf(err, errlen, "memory size %" PRIu64 " is not a multiple of 1M",
			    q.memory_size);
	if (q.memory == VBM_MEM_HUGETLB && h->hugepage_size &&
	    q.memory_size % h->hugepage_size)
		return errf(err, errlen, "memory size %s is not a multiple of the huge page size (%s)",
			    vbm_human_size(q.memory_size, b1, sizeof(b1)),
			    vbm_human_size(h->hugepage_size, b2, sizeof(b2)));

	qemu_size(q.memory_size, sz, sizeof(sz));
	qemu_arg(o, "-m", "%s", sz);
	if (q.memory != VBM_MEM_PRIVATE) {
		qemu_arg(o, "-object", "memory-backend-memfd,id=vbs-mem,size=%s%s,share=on", sz,
			 q.memory == VBM_MEM_HUGETLB ? ",hugetlb=on" : "");
		qemu_arg(o, "-machine", "memory-backend=vbs-mem");
	}
	qemu_id(q.name, id, sizeof(id));
	if (q.form == VBM_FORM_GENERIC) {
		qemu_arg(o, "-device", "vhost-vdpa-device-pci,vhostdev=%s,id=%s", q.node, id);
	} else {
		qemu_arg(o, "-blockdev",
			 "driver=virtio-blk-vhost-vdpa,node-name=%s,path=%s,cache.direct=on",
			 id, q.node);
		qemu_arg(o, "-device", "virtio-blk-pci,drive=%s,id=%s", id, id);
	}

	if (q.use_va && q.memory == VBM_MEM_PRIVATE)
		qemu_warn(o, "use --memory memfd (the default in VA mode), or a device in PA mode (create without --use-va)",
			  "VA mode with private RAM maps nothing: vhost-vdpa leaves out all memory that is not shared and file-backed, the device cannot reach the guest's rings and buffers and the guest hangs at its first request (dmesg: 'VA mode maps only shared file-backed memory')");
	if (!q.use_va) {
		o->iotlb_entries = pa_entries(&q, h, &page);
		if (h->max_iotlb_entries && o->iotlb_entries > h->max_iotlb_entries) {
			need = (o->iotlb_entries + 1023) / 1024 * 1024;
			snprintf(hint, sizeof(hint),
				 "load vhost_vdpa with max_iotlb_entries=%" PRIu64 " (modprobe -r vhost_vdpa; modprobe vhost_vdpa max_iotlb_entries=%" PRIu64 "), or use %s, or VA mode (create --use-va)",
				 need, need, q.memory == VBM_MEM_PRIVATE ?
				 "--memory hugetlb" : "--memory hugetlb or private");
			qemu_warn(o, hint,
				  "PA mode on %s RAM of %s pages can take up to %" PRIu64 " IOTLB entries (one per physically contiguous run), more than vhost_vdpa's max_iotlb_entries (%" PRIu64 "): %s",
				  vbm_memory_name(q.memory), vbm_human_size(page, b1, sizeof(b1)),
				  o->iotlb_entries, h->max_iotlb_entries,
				  q.form == VBM_FORM_GENERIC ?
				  "if it does, QEMU stops with 'vhost vdpa map fail!'" :
				  "if it does, QEMU says 'Failed to add blkio mem region'");
		}
		need = q.memory_size + VBM_QEMU_EXTRA_PINNED;
		if (h->memlock && h->memlock < need) {
			snprintf(hint, sizeof(hint),
				 "ulimit -l %" PRIu64 " (KiB) in the shell that starts QEMU, or LimitMEMLOCK=%s in its unit; root is not exempt",
				 need >> 10, qemu_size(need, b2, sizeof(b2)));
			qemu_warn(o, hint,
				  "PA mode pins all guest RAM and counts it in RLIMIT_MEMLOCK (%s here), below guest RAM + %s: QEMU stops with 'vhost vdpa map fail!'",
				  vbm_human_size(h->memlock, b1, sizeof(b1)),
				  qemu_size(VBM_QEMU_EXTRA_PINNED, b2, sizeof(b2)));
		}
		if (q.form == VBM_FORM_BLKIO && q.memory == VBM_MEM_PRIVATE)
			qemu_warn(o, "use --memory memfd (the default for blkio), or --form generic",
				  "the libblkio form on private RAM in PA mode hangs the guest at its first request (an open problem, see Documentation/vhost-vdpa.rst)");
	}
	if (q.memory == VBM_MEM_HUGETLB && h->hugepage_size &&
	    h->hugepages_free * h->hugepage_size < q.memory_size) {
		snprintf(hint, sizeof(hint), "reserve them: echo %" PRIu64 " > /proc/sys/vm/nr_hugepages (more if other programs use them)",
			 q.memory_size / h->hugepage_size);
		qemu_warn(o, hint,
			  "%" PRIu64 " free huge pages of %s, fewer than the %" PRIu64 " guest RAM needs: QEMU cannot allocate it",
			  h->hugepages_free, vbm_human_size(h->hugepage_size, b1, sizeof(b1)),
			  q.memory_size / h->hugepage_size);
	}
	if (q.form == VBM_FORM_GENERIC && q.queue_size && q.queue_size < 1024)
		qemu_warn(o, "create the device with --queue-size 1024 or 0 (the default), or use --form blkio",
			  "the device's rings hold at most %" PRIu32 " entries; QEMU 10.0 gives the guest 1024-entry rings whatever queue-size says, and vhost-vdpa-device-pci then stops with 'vhost_set_vring_num failed: Invalid argument'",
			  q.queue_size);
	return 0;
}

/* --- JSON ------------------------------------------------------------ */

void vbm_json_init(struct vbm_json *j, FILE *f, bool pretty)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->pretty = pretty;
	j->first[0] = true;
}

void vbm_json_escape(FILE *f, const char *s)
{
	const unsigned char *p;

	fputc('"', f);
	for (p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void json_key(struct vbm_json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
	if (j->pretty && j->depth) {
		fputc('\n', j->f);
		fprintf(j->f, "%*s", 2 * j->depth, "");
	}
	if (key) {
		vbm_json_escape(j->f, key);
		fputs(j->pretty ? ": " : ":", j->f);
	}
}

void vbm_json_open(struct vbm_json *j, const char *key, char bracket)
{
	json_key(j, key);
	fputc(bracket, j->f);
	if (j->depth < 31)
		j->depth++;
	j->first[j->depth] = true;
}

void vbm_json_close(struct vbm_json *j, char bracket)
{
	bool empty = j->first[j->depth];

	if (j->depth)
		j->depth--;
	if (j->pretty && !empty) {
		fputc('\n', j->f);
		fprintf(j->f, "%*s", 2 * j->depth, "");
	}
	fputc(bracket, j->f);
}

void vbm_json_str(struct vbm_json *j, const char *key, const char *val)
{
	json_key(j, key);
	vbm_json_escape(j->f, val ? val : "");
}

void vbm_json_u64(struct vbm_json *j, const char *key, uint64_t val)
{
	json_key(j, key);
	fprintf(j->f, "%" PRIu64, val);
}

void vbm_json_double(struct vbm_json *j, const char *key, double val)
{
	json_key(j, key);
	fprintf(j->f, "%.1f", val);
}

void vbm_json_bool(struct vbm_json *j, const char *key, bool val)
{
	json_key(j, key);
	fputs(val ? "true" : "false", j->f);
}

void vbm_json_null(struct vbm_json *j, const char *key)
{
	json_key(j, key);
	fputs("null", j->f);
}

void vbm_json_end(struct vbm_json *j)
{
	fputc('\n', j->f);
}
