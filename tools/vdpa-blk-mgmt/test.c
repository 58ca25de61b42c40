// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of vdpa-blk-mgmt's parsing and formatting (lib.c): no
 * kernel, no root.  Prints TAP and ends with "N passed, N failed".
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"

static int npass, nfail;

#define CHECK(cond, ...) do {						\
		if (cond) {						\
			npass++;					\
			printf("ok %d - ", npass + nfail);		\
		} else {						\
			nfail++;					\
			printf("not ok %d - ", npass + nfail);		\
		}							\
		printf(__VA_ARGS__);					\
		printf("\n");						\
	} while (0)

static char e[512];

/* Split a command line on spaces (no quoting) into argv. */
static int split(char *line, char **argv, int max)
{
	int n = 0;
	char *tok, *save = NULL;

	for (tok = strtok_r(line, " ", &save); tok && n < max; tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	return n;
}

static int parse(const char *cmdline, struct vbm_spec *s)
{
	char buf[512], *argv[32];
	int argc;

	snprintf(buf, sizeof(buf), "%s", cmdline);
	argc = split(buf, argv, 32);
	vbm_spec_free(s);
	vbm_spec_init(s);
	e[0] = '\0';
	return vbm_parse_create_args(argc, argv, s, e, sizeof(e));
}

static void test_sizes(void)
{
	static const struct {
		const char *in;
		uint64_t out;
	} good[] = {
		{ "512", 512 }, { "4096", 4096 }, { "1K", 1024 }, { "64M", 64ULL << 20 },
		{ "64MiB", 64ULL << 20 }, { "2g", 2ULL << 30 }, { "1T", 1ULL << 40 },
		{ "3GB", 3ULL << 30 },
	};
	static const char *const bad[] = {
		"", "0", "1000", "513", "12Q", "-1", "1M2", "abc", "99999999999999999999",
		"17179869184T", "1KX",
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(!vbm_parse_size(good[i].in, &v, e, sizeof(e)) && v == good[i].out,
		      "size '%s' = %" PRIu64, good[i].in, good[i].out);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(vbm_parse_size(bad[i], &v, e, sizeof(e)) && strstr(e, "invalid size"),
		      "size '%s' refused (%s)", bad[i], e);
}

static void test_u32(void)
{
	uint32_t v;

	CHECK(!vbm_parse_u32("16", 1, 16, &v, e, sizeof(e)) && v == 16, "u32 16 in 1..16");
	CHECK(!vbm_parse_u32("0x10", 1, 16, &v, e, sizeof(e)) && v == 16, "u32 0x10");
	CHECK(vbm_parse_u32("17", 1, 16, &v, e, sizeof(e)) && strstr(e, "out of range"),
	      "u32 17 out of range");
	CHECK(vbm_parse_u32("-1", 0, 16, &v, e, sizeof(e)), "u32 -1 refused");
	CHECK(vbm_parse_u32("4x", 0, 16, &v, e, sizeof(e)), "u32 4x refused");
	CHECK(vbm_parse_u32("", 0, 16, &v, e, sizeof(e)), "u32 empty refused");
}

static void test_features(void)
{
	char buf[1024];
	uint64_t f;

	CHECK(!vbm_parse_features("VERSION_1,ACCESS_PLATFORM", &f, e, sizeof(e)) &&
	      f == 0x300000000ULL, "features VERSION_1,ACCESS_PLATFORM");
	CHECK(!vbm_parse_features("version_1 VIRTIO_F_ACCESS_PLATFORM,VIRTIO_BLK_F_FLUSH",
				  &f, e, sizeof(e)) && f == (0x300000000ULL | (1 << 9)),
	      "features: case, spaces and VIRTIO_*_F_ prefixes");
	CHECK(!vbm_parse_features("EVENT_IDX,RING_INDIRECT_DESC,VIRTIO_RING_F_EVENT_IDX",
				  &f, e, sizeof(e)) && f == ((1ULL << 29) | (1ULL << 28)),
	      "features: ring aliases");
	CHECK(!vbm_parse_features("DISCARD,WRITE_ZEROES,RO,MQ,BLK_SIZE,SEG_MAX,SIZE_MAX,TOPOLOGY",
				  &f, e, sizeof(e)) && f == 0x7466, "features: blk names");
	CHECK(!vbm_parse_features("0x300000200", &f, e, sizeof(e)) && f == 0x300000200ULL,
	      "features: hex");
	CHECK(vbm_parse_features("VERSION_1,NOPE", &f, e, sizeof(e)) &&
	      strstr(e, "unknown feature name 'NOPE'"), "features: unknown name (%s)", e);
	CHECK(vbm_parse_features("0x", &f, e, sizeof(e)), "features: '0x' refused");
	CHECK(vbm_parse_features("0xZZ", &f, e, sizeof(e)), "features: '0xZZ' refused");
	CHECK(vbm_parse_features(",", &f, e, sizeof(e)) && strstr(e, "empty"),
	      "features: empty list refused");
	CHECK(!strcmp(vbm_features_str(0x300000200ULL, buf, sizeof(buf)),
		      "FLUSH VERSION_1 ACCESS_PLATFORM"), "features_str: '%s'", buf);
	CHECK(!strcmp(vbm_features_str((1ULL << 63) | 2, buf, sizeof(buf)), "SIZE_MAX bit63"),
	      "features_str unknown bit: '%s'", buf);
	CHECK(!strcmp(vbm_features_str(0, buf, sizeof(buf)), ""), "features_str 0");
	vbm_features_str(~0ULL, buf, 16);
	CHECK(strlen(buf) < 16, "features_str truncates safely: '%s'", buf);
	CHECK(!strcmp(vbm_feature_name(29), "RING_EVENT_IDX") && !vbm_feature_name(3),
	      "feature_name");
}

static void test_create_args(void)
{
	struct vbm_spec s;

	vbm_spec_init(&s);
	CHECK(!parse("blk0", &s) && !strcmp(s.name, "blk0") && !VBM_SET(&s, backing) &&
	      !VBM_SET(&s, read_only) && !VBM_SET(&s, direct) && !VBM_SET(&s, iopoll) &&
	      !VBM_SET(&s, num_queues) && s.bind == VBM_BIND_UNSET,
	      "create NAME: defaults untouched");
	CHECK(!parse("d0 --backing /img --read-only --buffered --num-queues 4 --queue-size 256 --block-size 4096 --serial abc --poll-idle-us 0 --bind vhost",
		     &s) && !strcmp(VBM_STR(&s, backing), "/img") && VBM_NUM(&s, read_only) == 1 &&
	      VBM_SET(&s, direct) && VBM_NUM(&s, direct) == 0 && VBM_NUM(&s, num_queues) == 4 &&
	      VBM_NUM(&s, queue_size) == 256 && VBM_NUM(&s, block_size) == 4096 &&
	      !strcmp(VBM_STR(&s, serial), "abc") && VBM_SET(&s, poll_idle_us) &&
	      VBM_NUM(&s, poll_idle_us) == 0 &&
	      s.bind == VBM_BIND_VHOST, "create: every option");
	CHECK(!parse("--size=64M d1 --direct --iopoll --backing=/dev/nvme0n1 --features=0x300000000",
		     &s) == false && strstr(e, "--size is the size of the memory backing"),
	      "create: --size with --backing refused (%s)", e);
	CHECK(!parse("d0 --ro --queues 3 --workers 3 --poll-us 7", &s) &&
	      VBM_NUM(&s, read_only) == 1 && VBM_NUM(&s, num_queues) == 3 &&
	      VBM_NUM(&s, num_workers) == 3 && VBM_NUM(&s, poll_idle_us) == 7,
	      "create: the older spellings --ro, --queues, --workers, --poll-us (%s)", e);
	CHECK(!parse("d0 --num_queues 2 --num-workers=2 --read_only --use_va --poll_idle_us=9", &s) &&
	      VBM_NUM(&s, num_queues) == 2 && VBM_NUM(&s, num_workers) == 2 &&
	      VBM_NUM(&s, read_only) == 1 && VBM_NUM(&s, use_va) == 1 &&
	      VBM_NUM(&s, poll_idle_us) == 9, "create: '_' as '-' in options (%s)", e);
	CHECK(parse("d0 --num--queues 2", &s) && strstr(e, "unknown option"),
	      "create: '--num--queues' is no spelling of --num-queues");
	CHECK(!parse("--size=64M d1 --features=VERSION_1,ACCESS_PLATFORM --bind=none", &s) &&
	      VBM_NUM(&s, size) == 64ULL << 20 && s.has_features && s.features == 0x300000000ULL &&
	      s.bind == VBM_BIND_NONE && !strcmp(s.name, "d1"), "create: --opt=value form");
	CHECK(!parse("d2 --backing /x --iopoll", &s) && VBM_NUM(&s, iopoll) == 1, "create: --iopoll");
	CHECK(parse("d2 --iopoll", &s) && strstr(e, "--iopoll needs"), "create: --iopoll alone");
	CHECK(!parse("d3", &s) && !VBM_SET(&s, use_va), "create: use_va unset by default");
	CHECK(!parse("d3 --use-va --bind vhost", &s) && VBM_NUM(&s, use_va) == 1 && s.bind == VBM_BIND_VHOST,
	      "create: --use-va");
	CHECK(parse("d3 --use-va=yes", &s) && strstr(e, "option '--use-va' takes no value"),
	      "create: --use-va=yes refused (%s)", e);
	CHECK(parse("d3 --mgmtdev vdpasim_blk --use-va", &s) &&
	      strstr(e, "only --features and --bind"), "create: --use-va on another mgmtdev");
	CHECK(parse("d2 --backing /x --iopoll --buffered", &s) && strstr(e, "--iopoll needs"),
	      "create: --iopoll --buffered");
	CHECK(parse("", &s) && strstr(e, "missing device name"), "create: no name");
	CHECK(parse("a b", &s) && strstr(e, "unexpected argument 'b'"), "create: two names");
	CHECK(parse("a/b", &s) && strstr(e, "invalid device name"), "create: name with /");
	CHECK(parse("..", &s) && strstr(e, "invalid device name"), "create: name ..");
	CHECK(parse("x --frob", &s) && strstr(e, "unknown option '--frob'"), "create: unknown option");
	CHECK(parse("x -q", &s) && strstr(e, "unknown option '-q'"), "create: unknown short option");
	CHECK(parse("x --num-queues", &s) && strstr(e, "needs a value"), "create: missing value");
	CHECK(parse("x --read-only=1", &s) && strstr(e, "takes no value"), "create: flag with value");
	CHECK(parse("x --ro=1", &s) && strstr(e, "takes no value"), "create: older flag with value");
	CHECK(parse("x --num-queues 0", &s) && strstr(e, "num-queues: "), "create: 0 queues");
	CHECK(parse("x --num-queues 17", &s), "create: 17 queues");
	CHECK(parse("x --queue-size 1000", &s) && strstr(e, "power of two"),
	      "create: queue size not a power of two");
	CHECK(parse("x --queue-size 2048", &s), "create: queue size too big");
	CHECK(!parse("x --queue-size 0", &s) && VBM_NUM(&s, queue_size) == 0,
	      "create: queue size 0, the device's choice");
	CHECK(parse("x --queue-size 1", &s), "create: queue size 1");
	CHECK(parse("x --block-size 256", &s), "create: block size too small");
	CHECK(parse("x --block-size 1536", &s), "create: block size not a power of two");
	CHECK(parse("x --size 1M --block-size 4096", &s) == 0, "create: size multiple of block");
	CHECK(parse("x --size 1536 --block-size 1024", &s) && strstr(e, "multiple of --block-size"),
	      "create: size not a multiple of the block size");
	CHECK(parse("x --serial 123456789012345678901", &s) && strstr(e, "longer than 20"),
	      "create: serial too long");
	CHECK(parse("x --poll-idle-us 1000001", &s), "create: poll-idle-us too big");
	CHECK(parse("x --backing relative.img", &s) && strstr(e, "absolute"),
	      "create: relative backing");
	CHECK(parse("x --bind qemu", &s) && strstr(e, "virtio, vhost or none"), "create: bad bind");
	CHECK(parse("x --mgmtdev vdpasim_blk --num-queues 2", &s) &&
	      strstr(e, "only --features and --bind"), "create: other mgmtdev, our option");
	CHECK(!parse("d3 --poll-adaptive off", &s) && VBM_SET(&s, poll_adaptive) &&
	      VBM_NUM(&s, poll_adaptive) == 0,
	      "create: --poll-adaptive off");
	CHECK(!parse("d3 --poll-adaptive=yes", &s) && VBM_NUM(&s, poll_adaptive) == 1,
	      "create: --poll-adaptive=yes");
	CHECK(!parse("d3 --poll-idle-us 50", &s) && !VBM_SET(&s, poll_adaptive),
	      "create: poll-adaptive unset by default");
	CHECK(parse("d3 --poll-adaptive maybe", &s) &&
	      strstr(e, "poll-adaptive: expected on or off, got 'maybe'"),
	      "create: --poll-adaptive maybe (%s)", e);
	CHECK(parse("d3 --poll-adaptive", &s) && strstr(e, "needs a value"),
	      "create: --poll-adaptive without a value (%s)", e);
	CHECK(parse("x --mgmtdev vdpasim_blk --poll-adaptive on", &s) &&
	      strstr(e, "only --features and --bind"), "create: poll-adaptive on another mgmtdev");
	CHECK(!parse("x --mgmtdev vdpasim_blk --features VERSION_1 --bind none", &s) &&
	      !strcmp(s.mgmtdev, "vdpasim_blk"), "create: other mgmtdev");
	CHECK(!parse("x --num-queues 4 --num-workers 2", &s) && VBM_NUM(&s, num_workers) == 2,
	      "create: --num-workers");
	CHECK(!parse("x --num-workers 3", &s) && VBM_NUM(&s, num_workers) == 3,
	      "create: --num-workers alone (the module checks it against its default queues)");
	CHECK(!parse("x --num-workers 0", &s) && VBM_SET(&s, num_workers) &&
	      VBM_NUM(&s, num_workers) == 0, "create: 0 workers (one per queue)");
	CHECK(parse("x --num-workers 17", &s) && strstr(e, "out of range"), "create: 17 workers");
	CHECK(parse("x --num-queues 2 --num-workers 3", &s) &&
	      strstr(e, "--num-workers must not be more"),
	      "create: more workers than queues (%s)", e);
	CHECK(parse("x --buffered=yes", &s) && strstr(e, "takes no value"),
	      "create: --buffered=yes refused");
	CHECK(!parse("x --buffered", &s) && VBM_SET(&s, direct) && VBM_NUM(&s, direct) == 0,
	      "create: --buffered is direct 0");
	vbm_spec_free(&s);
}

/* Every parameter of the module's table is an option, parsed as its type. */
static void test_params(void)
{
	static const char *const good[] = {
		[VBS_PT_U64] = "1M", [VBS_PT_BOOL] = "yes", [VBS_PT_PATH] = "/x",
		[VBS_PT_TEXT] = "abc",
	};
	char val[32], buf[32];
	struct vbm_spec s;
	int i, bad = 0;

	for (i = 0; i < VBS_NR_PARAMS; i++) {
		const struct vbm_param *pm = &vbm_params[i];

		vbm_spec_init(&s);
		/* a number's smallest value is in range, a power of two too */
		snprintf(val, sizeof(val), "%s", good[pm->type] ? good[pm->type] : "");
		if (pm->type == VBS_PT_U32)
			snprintf(val, sizeof(val), "%" PRIu64, pm->min);
		if (vbm_param_by_option(vbm_param_option(i)) != i ||
		    vbm_spec_set(&s, vbm_param_option(i), val, e, sizeof(e)) || !s.p[i].set ||
		    !*vbm_param_text(&s, i, buf, sizeof(buf))) {
			printf("# %s (--%s): %s\n", pm->name, vbm_param_option(i), e);
			bad++;
		}
		vbm_spec_free(&s);
	}
	CHECK(!bad, "every parameter of the table has an option taking its type");
	vbm_spec_init(&s);
	CHECK(!vbm_spec_set(&s, "workers", "2", e, sizeof(e)) &&
	      !strcmp(vbm_param_text(&s, VBS_P_num_workers, buf, sizeof(buf)), "2") &&
	      !vbm_spec_set(&s, "ro", "yes", e, sizeof(e)) &&
	      !strcmp(vbm_param_text(&s, VBS_P_read_only, buf, sizeof(buf)), "1") &&
	      !vbm_spec_set(&s, "serial", "s/n", e, sizeof(e)) &&
	      !strcmp(vbm_param_text(&s, VBS_P_serial, buf, sizeof(buf)), "s/n"),
	      "values as the module's attributes take them");
	CHECK(vbm_param_is_flag(VBS_P_iopoll) && !vbm_param_is_flag(VBS_P_poll_adaptive) &&
	      !vbm_param_is_flag(VBS_P_num_queues), "fixed booleans are flags, live ones not");
	vbm_spec_free(&s);
}

/*
 * The naming rule of Documentation/naming.rst, for every parameter of the
 * table and every older spelling: a new parameter that breaks it fails here.
 */
static bool snake_case(const char *s)
{
	const char *p;

	if (!s[0] || s[0] < 'a' || s[0] > 'z')
		return false;
	for (p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      (*p == '_' && p[1] && p[1] != '_')))
			return false;
	return true;
}

static void test_naming(void)
{
	/*
	 * Names taken by something else: the tool's other options, the other
	 * configfs and sysfs attributes, show --json's other keys.
	 */
	static const char *const taken[] = {
		"features", "bind", "mgmtdev", "json", "timeout", "help", "version",
		"watch", "count", "all", "live", "backing_type", "capacity",
		"write_cache", "worker_pids", "poll_window_ns", "resize", "name",
		"device_id", "vendor_id", "driver", "driver_override", "node",
		"max_vqs", "max_vq_size", "min_vq_size", "capacity_bytes", "config",
		"negotiated_features", "queues", "form", "mode", "memory",
		"memory_size", "args", "warnings", "iotlb_entries", "max_iotlb_entries",
	};
	int i, k, bad = 0;
	size_t t;

	for (i = 0; i < VBS_NR_PARAMS; i++) {
		const char *n = vbm_params[i].name, *o = vbm_param_option(i);
		char want[64];

		snprintf(want, sizeof(want), "%s", n);
		for (k = 0; want[k]; k++)
			if (want[k] == '_')
				want[k] = '-';
		if (!snake_case(n) || strlen(n) > 24 || !strncmp(n, "default_", 8)) {
			printf("# %s: not a lower-case snake_case name of at most 24 characters, or default_*\n",
			       n);
			bad++;
		}
		if (strcmp(o, want) || vbm_param_by_option(o) != i || vbm_param_by_option(n) != i) {
			printf("# %s: option '--%s', found as %d and %d\n", n, o,
			       vbm_param_by_option(o), vbm_param_by_option(n));
			bad++;
		}
		for (t = 0; t < sizeof(taken) / sizeof(taken[0]); t++)
			if (!strcmp(n, taken[t])) {
				printf("# %s: a name the tool or the module uses for something else\n",
				       n);
				bad++;
			}
	}
	CHECK(!bad, "every parameter: snake_case name, option = name with '-' for '_'");

	bad = 0;
	for (k = 0; k < vbm_nr_aliases; k++) {
		const struct vbm_alias *a = &vbm_aliases[k];
		int j;

		for (j = 0; j < vbm_nr_aliases; j++)
			if (j != k && !strcmp(a->key, vbm_aliases[j].key)) {
				printf("# older spelling '%s' twice\n", a->key);
				bad++;
			}
		for (i = 0; i < VBS_NR_PARAMS; i++)
			if (!strcmp(a->key, vbm_param_option(i)) || !strcmp(a->key, vbm_params[i].name)) {
				printf("# older spelling '%s' is parameter %s's own\n", a->key,
				       vbm_params[i].name);
				bad++;
			}
		if (vbm_param_by_option(a->key) != (int)a->id) {
			printf("# older spelling '%s' does not find %s\n", a->key,
			       vbm_params[a->id].name);
			bad++;
		}
	}
	CHECK(!bad, "older spellings: unique, none a parameter's own, each finds its parameter");
}

/* The file as one string (at most 256 KiB), or NULL */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = calloc(1, 256 << 10);
	n = buf ? fread(buf, 1, (256 << 10) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

static bool word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* text has pre + word, not as part of a longer name */
static bool has_word(const char *text, const char *pre, const char *word)
{
	char w[128];
	const char *p;
	size_t len;

	snprintf(w, sizeof(w), "%s%s", pre, word);
	len = strlen(w);
	for (p = strstr(text, w); p; p = strstr(p + 1, w))
		if ((p == text || !word_char(p[-1]) || pre[0]) && !word_char(p[len]))
			return true;
	return false;
}

/*
 * Every parameter is documented under its names: the man page, the bash
 * completion and create's --help (./vdpa-blk-mgmt, built before this runs)
 * show its option; the module's documentation and the sysfs ABI file its
 * name.  The man page also lists every older spelling.
 */
static void test_docs(void)
{
	static const struct {
		const char *path;
		bool names;	/* the parameters' names, else their options */
	} docs[] = {
		{ "vdpa-blk-mgmt.8.rst", false },
		{ "vdpa-blk-mgmt.bash-completion", false },
		{ "create-help.out", false },
		{ "../../Documentation/vdpa_blk_sw.rst", true },
		{ "../../Documentation/ABI/testing/sysfs-bus-vdpa-blk-sw", true },
	};
	size_t d;
	int i, k, bad;

	for (d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
		char *text = slurp(docs[d].path);
		bool abi = strstr(docs[d].path, "ABI/");

		bad = 0;
		for (i = 0; text && i < VBS_NR_PARAMS; i++) {
			const struct vbm_param *pm = &vbm_params[i];

			if (abi && (pm->flags & VBS_PF_NOSHOW))
				continue;
			if (docs[d].names ? !has_word(text, abi ? VBS_SYSFS_DIR "/" : "", pm->name) :
			    !has_word(text, "--", vbm_param_option(i))) {
				printf("# %s: no %s%s\n", docs[d].path, docs[d].names ? "" : "--",
				       docs[d].names ? pm->name : vbm_param_option(i));
				bad++;
			}
		}
		for (k = 0; text && d == 0 && k < vbm_nr_aliases; k++)
			if (!has_word(text, "--", vbm_aliases[k].key)) {
				printf("# %s: no older spelling --%s\n", docs[d].path,
				       vbm_aliases[k].key);
				bad++;
			}
		CHECK(text && !bad, "%s documents every parameter%s", docs[d].path,
		      text ? "" : " (cannot read it)");
		free(text);
	}
}

static int parse_conf(const char *text, struct vbm_config *c)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int ret;

	e[0] = '\0';
	ret = vbm_parse_config(f, "test.conf", c, e, sizeof(e));
	fclose(f);
	return ret;
}

static void test_config(void)
{
	struct vbm_config c;

	CHECK(!parse_conf("# comment\n\n[a0]\nbacking = /img/a0.img\nqueues=4\n"
			  "read-only = yes\ndirect = no\nbind = vhost\n; other comment\n"
			  "[b1]\n  size = 32M  \npoll-us = 10\nfeatures = VERSION_1, ACCESS_PLATFORM\n",
			  &c) && c.n == 2 && !strcmp(c.devs[0].name, "a0") &&
	      !strcmp(VBM_STR(&c.devs[0], backing), "/img/a0.img") &&
	      VBM_NUM(&c.devs[0], num_queues) == 4 && VBM_NUM(&c.devs[0], read_only) == 1 &&
	      VBM_SET(&c.devs[0], direct) && VBM_NUM(&c.devs[0], direct) == 0 &&
	      c.devs[0].bind == VBM_BIND_VHOST && c.devs[0].line == 3 &&
	      !strcmp(c.devs[1].name, "b1") && VBM_NUM(&c.devs[1], size) == 32ULL << 20 &&
	      VBM_NUM(&c.devs[1], poll_idle_us) == 10 && c.devs[1].features == 0x300000000ULL &&
	      c.devs[1].line == 10, "config: two sections (%s)", e);
	vbm_config_free(&c);
	CHECK(!parse_conf("", &c) && c.n == 0, "config: empty file");
	vbm_config_free(&c);
	CHECK(parse_conf("queues = 1\n", &c) && strstr(e, "test.conf:1: ") &&
	      strstr(e, "outside a [NAME] section"), "config: key outside a section (%s)", e);
	vbm_config_free(&c);
	CHECK(parse_conf("[a]\nnum_queues = many\n", &c) && strstr(e, "test.conf:2: num_queues"),
	      "config: bad value with line (%s)", e);
	vbm_config_free(&c);
	CHECK(parse_conf("[a]\nfrob = 1\n", &c) && strstr(e, "unknown option 'frob'"),
	      "config: unknown key (%s)", e);
	vbm_config_free(&c);
	CHECK(parse_conf("[a]\n[a]\n", &c) && strstr(e, "defined twice"),
	      "config: duplicate section (%s)", e);
	vbm_config_free(&c);
	CHECK(parse_conf("[a\n", &c) && strstr(e, "expected [NAME]"), "config: broken header");
	vbm_config_free(&c);
	CHECK(parse_conf("[a/b]\n", &c) && strstr(e, "invalid device name"), "config: bad name");
	vbm_config_free(&c);
	CHECK(parse_conf("[a]\nqueues\n", &c) && strstr(e, "expected 'key = value'"),
	      "config: no '='");
	vbm_config_free(&c);
	CHECK(parse_conf("[a]\niopoll = maybe\n", &c) && strstr(e, "expected yes or no"),
	      "config: bad boolean (%s)", e);
	vbm_config_free(&c);
	CHECK(!parse_conf("[a]\nuse-va = yes\n[b]\nuse-va = no\n[c]\n", &c) && c.n == 3 &&
	      VBM_NUM(&c.devs[0], use_va) == 1 && VBM_SET(&c.devs[1], use_va) &&
	      VBM_NUM(&c.devs[1], use_va) == 0 && !VBM_SET(&c.devs[2], use_va),
	      "config: use-va yes, no, unset");
	vbm_config_free(&c);
	CHECK(!parse_conf("[a]\npoll-adaptive = off\n[b]\npoll-adaptive = on\n[c]\n", &c) &&
	      c.n == 3 && VBM_SET(&c.devs[0], poll_adaptive) && VBM_NUM(&c.devs[0], poll_adaptive) == 0 &&
	      VBM_NUM(&c.devs[1], poll_adaptive) == 1 && !VBM_SET(&c.devs[2], poll_adaptive), "config: poll-adaptive off, on, unset");
	vbm_config_free(&c);
	CHECK(parse_conf("[a]\npoll-adaptive = 2\n", &c) &&
	      strstr(e, "test.conf:2: poll-adaptive: expected on or off"),
	      "config: bad poll-adaptive (%s)", e);
	vbm_config_free(&c);
	CHECK(!parse_conf("[a]\nqueues = 4\nworkers = 4\n", &c) &&
	      VBM_NUM(&c.devs[0], num_workers) == 4, "config: workers (%s)", e);
	vbm_config_free(&c);
	CHECK(!parse_conf("[a]\nnum_queues = 2\nnum_workers = 2\nblock_size = 4096\n"
			  "poll_idle_us = 5\npoll_adaptive = off\nuse_va = yes\nread_only = yes\n",
			  &c) && VBM_NUM(&c.devs[0], num_queues) == 2 &&
	      VBM_NUM(&c.devs[0], num_workers) == 2 && VBM_NUM(&c.devs[0], block_size) == 4096 &&
	      VBM_NUM(&c.devs[0], poll_idle_us) == 5 && VBM_SET(&c.devs[0], poll_adaptive) &&
	      VBM_NUM(&c.devs[0], poll_adaptive) == 0 && VBM_NUM(&c.devs[0], use_va) == 1 &&
	      VBM_NUM(&c.devs[0], read_only) == 1, "config: parameters by their names (%s)", e);
	vbm_config_free(&c);
	CHECK(parse_conf("[a]\nbacking = /x\nsize = 1M\n", &c) && strstr(e, "test.conf:1: [a]"),
	      "config: section checked as a whole (%s)", e);
	vbm_config_free(&c);
}

static char *json(void (*fn)(struct vbm_json *j), bool pretty)
{
	static char out[2048];
	FILE *f = fmemopen(out, sizeof(out), "w");
	struct vbm_json j;

	vbm_json_init(&j, f, pretty);
	fn(&j);
	fclose(f);
	return out;
}

static void json_doc(struct vbm_json *j)
{
	vbm_json_open(j, NULL, '{');
	vbm_json_str(j, "name", "a\"b\\c\n\t\x01");
	vbm_json_u64(j, "n", UINT64_MAX);
	vbm_json_bool(j, "t", true);
	vbm_json_null(j, "z");
	vbm_json_open(j, "list", '[');
	vbm_json_str(j, NULL, "x");
	vbm_json_u64(j, NULL, 1);
	vbm_json_close(j, ']');
	vbm_json_open(j, "empty", '{');
	vbm_json_close(j, '}');
	vbm_json_double(j, "r", 2.25);
	vbm_json_close(j, '}');
	vbm_json_end(j);
}

static void test_json(void)
{
	const char *want = "{\"name\":\"a\\\"b\\\\c\\n\\t\\u0001\",\"n\":18446744073709551615,"
			   "\"t\":true,\"z\":null,\"list\":[\"x\",1],\"empty\":{},\"r\":2.2}\n";
	const char *wantp = "{\n  \"name\": \"a\\\"b\\\\c\\n\\t\\u0001\",\n"
			    "  \"n\": 18446744073709551615,\n  \"t\": true,\n  \"z\": null,\n"
			    "  \"list\": [\n    \"x\",\n    1\n  ],\n  \"empty\": {},\n"
			    "  \"r\": 2.2\n}\n";
	char *got = json(json_doc, false);

	CHECK(!strcmp(got, want), "json compact: %s", got);
	got = json(json_doc, true);
	CHECK(!strcmp(got, wantp), "json pretty");
	if (strcmp(got, wantp))
		printf("# got:\n%s", got);
}

static void test_human(void)
{
	char b[32];

	CHECK(!strcmp(vbm_human_size(512, b, sizeof(b)), "512"), "human 512");
	CHECK(!strcmp(vbm_human_size(64ULL << 20, b, sizeof(b)), "64M"), "human 64M");
	CHECK(!strcmp(vbm_human_size(3ULL << 29, b, sizeof(b)), "1.5G"), "human 1.5G: %s", b);
	CHECK(!strcmp(vbm_human_size(1ULL << 40, b, sizeof(b)), "1T"), "human 1T");
	CHECK(!strcmp(vbm_human_size(0, b, sizeof(b)), "0"), "human 0");
}

static void test_u64_list(void)
{
	uint64_t v[4] = { 7, 7, 7, 7 };

	CHECK(vbm_parse_u64_list("20000 0", v, 4, e, sizeof(e)) == 2 && v[0] == 20000 &&
	      v[1] == 0 && v[2] == 7, "u64 list: two windows");
	CHECK(vbm_parse_u64_list("18446744073709551615", v, 4, e, sizeof(e)) == 1 &&
	      v[0] == UINT64_MAX, "u64 list: UINT64_MAX");
	CHECK(vbm_parse_u64_list(" 1  2 3 ", v, 4, e, sizeof(e)) == 3 && v[0] == 1 &&
	      v[1] == 2 && v[2] == 3, "u64 list: extra spaces");
	CHECK(vbm_parse_u64_list("", v, 4, e, sizeof(e)) == 0, "u64 list: empty");
	CHECK(vbm_parse_u64_list("1 2 3 4 5", v, 4, e, sizeof(e)) == -1 &&
	      strstr(e, "more than 4"), "u64 list: too many (%s)", e);
	CHECK(vbm_parse_u64_list("1 x", v, 4, e, sizeof(e)) == -1 &&
	      strstr(e, "not a list of numbers"), "u64 list: not a number (%s)", e);
	CHECK(vbm_parse_u64_list("12a", v, 4, e, sizeof(e)) == -1, "u64 list: trailing garbage");
	CHECK(vbm_parse_u64_list("-1", v, 4, e, sizeof(e)) == -1, "u64 list: negative");
	CHECK(vbm_parse_u64_list("18446744073709551616", v, 4, e, sizeof(e)) == -1,
	      "u64 list: overflow");
}

static void test_misc(void)
{
	enum vbm_bind b;
	int v;

	CHECK(!vbm_parse_bind("virtio_vdpa", &b, e, sizeof(e)) && b == VBM_BIND_VIRTIO &&
	      !strcmp(vbm_bind_driver(b), "virtio_vdpa"), "bind virtio_vdpa");
	CHECK(!vbm_parse_bind("vhost", &b, e, sizeof(e)) && b == VBM_BIND_VHOST &&
	      !strcmp(vbm_bind_driver(b), "vhost_vdpa"), "bind vhost");
	CHECK(!vbm_parse_bind("none", &b, e, sizeof(e)) && !strcmp(vbm_bind_driver(b), ""),
	      "bind none");
	CHECK(!vbm_parse_bool("On", &v) && v == 1 && !vbm_parse_bool("0", &v) && v == 0 &&
	      vbm_parse_bool("2", &v), "booleans");
	CHECK(!vbm_parse_bool("off", &v) && v == 0 && !vbm_parse_bool("yes", &v) && v == 1 &&
	      !vbm_parse_bool("no", &v) && v == 0 && !vbm_parse_bool("1", &v) && v == 1 &&
	      vbm_parse_bool("maybe", &v) && v == 1 && vbm_parse_bool("", &v),
	      "booleans: on/off spellings; a refused one leaves the value");
	CHECK(!vbm_check_name("blk-0_a.b:c", e, sizeof(e)), "name with - _ . :");
	CHECK(vbm_check_name("-x", e, sizeof(e)), "name starting with -");
	CHECK(vbm_check_name("a b", e, sizeof(e)), "name with a space");
	CHECK(vbm_check_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", e,
			     sizeof(e)) && strstr(e, "longer"), "name too long");
}

/* qemu-args: the options joined by spaces */
static const char *qargs(const struct vbm_qemu_out *o)
{
	static char buf[4096];
	size_t off = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < o->nargs && off < sizeof(buf); i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? " " : "",
					o->args[i]);
	return buf;
}

/* o warns once with text matching what, and a hint matching hint */
static bool warns(const struct vbm_qemu_out *o, const char *what, const char *hint)
{
	int i, n = 0;

	for (i = 0; i < o->nwarn; i++)
		n += strstr(o->warn[i].text, what) && strstr(o->warn[i].hint, hint);
	return n == 1;
}

static void test_qemu_args(void)
{
	/* a stock Debian host: THP on madvise, shmem without, 2 MiB huge pages */
	const struct vbm_qemu_host deb = {
		.max_iotlb_entries = 2048, .thp = true, .shmem_thp = false,
		.hugepage_size = 2ULL << 20, .hugepages_free = 1024, .memlock = UINT64_MAX,
	};
	struct vbm_qemu_host h = deb;
	struct vbm_qemu_req r = {
		.name = "blk0", .node = "/dev/vhost-vdpa-0", .form = VBM_FORM_GENERIC,
		.memory_size = 1ULL << 30, .queue_size = 1024,
	};
	struct vbm_qemu_out o;
	enum vbm_memory m;
	enum vbm_form f;
	uint64_t hs, fr;
	bool va;

	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.memory == VBM_MEM_PRIVATE &&
	      !strcmp(qargs(&o), "-m 1G -device vhost-vdpa-device-pci,vhostdev=/dev/vhost-vdpa-0,id=vbs-blk0") &&
	      !o.nwarn && o.iotlb_entries == 512 + VBM_QEMU_EXTRA_ENTRIES,
	      "qemu-args: PA generic on private RAM: %s (%d warnings)", qargs(&o), o.nwarn);
	r.use_va = true;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.memory == VBM_MEM_MEMFD &&
	      !strcmp(qargs(&o), "-m 1G -object memory-backend-memfd,id=vbs-mem,size=1G,share=on "
		      "-machine memory-backend=vbs-mem -device vhost-vdpa-device-pci,vhostdev=/dev/vhost-vdpa-0,id=vbs-blk0") &&
	      !o.nwarn && !o.iotlb_entries, "qemu-args: VA generic on a memfd: %s", qargs(&o));
	r.form = VBM_FORM_BLKIO;
	r.name = "vm:0";
	r.memory_size = 256ULL << 20;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) &&
	      !strcmp(qargs(&o), "-m 256M -object memory-backend-memfd,id=vbs-mem,size=256M,share=on "
		      "-machine memory-backend=vbs-mem "
		      "-blockdev driver=virtio-blk-vhost-vdpa,node-name=vbs-vm_0,path=/dev/vhost-vdpa-0,cache.direct=on "
		      "-device virtio-blk-pci,drive=vbs-vm_0,id=vbs-vm_0") && !o.nwarn,
	      "qemu-args: VA blkio, a node name QEMU takes: %s", qargs(&o));
	r.name = "a-very-long-device-name-of-40-characters";
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) &&
	      strstr(qargs(&o), "node-name=vbs-a-very-long-device-name-of-,") &&
	      strstr(qargs(&o), "drive=vbs-a-very-long-device-name-of-,id=vbs-a-very-long-device-name-of-"),
	      "qemu-args: a node name of at most 31 characters");
	r.name = "blk0";

	/* trap 1: VA mode on private RAM maps nothing */
	r.memory = VBM_MEM_PRIVATE;
	r.form = VBM_FORM_GENERIC;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.nwarn == 1 &&
	      warns(&o, "VA mode with private RAM maps nothing", "--memory memfd") &&
	      !strcmp(qargs(&o), "-m 256M -device vhost-vdpa-device-pci,vhostdev=/dev/vhost-vdpa-0,id=vbs-blk0"),
	      "qemu-args: VA mode on private RAM warns (%s)", o.nwarn ? o.warn[0].text : "");

	/* trap 2: PA mode on a memfd's 4 KiB pages, past max_iotlb_entries */
	r.use_va = false;
	r.memory = VBM_MEM_MEMFD;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.nwarn == 1 &&
	      o.iotlb_entries == 65536 + VBM_QEMU_EXTRA_ENTRIES &&
	      warns(&o, "up to 65600 IOTLB entries", "max_iotlb_entries=66560") &&
	      warns(&o, "(2048): if it does, QEMU stops with 'vhost vdpa map fail!'", "VA mode") &&
	      warns(&o, "max_iotlb_entries (2048)", "--memory hugetlb or private"),
	      "qemu-args: PA mode on a 256M memfd warns (%s / %s)", o.nwarn ? o.warn[0].text : "",
	      o.nwarn ? o.warn[0].hint : "");
	h.max_iotlb_entries = 65600;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && !o.nwarn,
	      "qemu-args: ... not with max_iotlb_entries=65600");
	h.max_iotlb_entries = 65599;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.nwarn == 1,
	      "qemu-args: ... but with 65599");
	h.max_iotlb_entries = 0;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && !o.nwarn,
	      "qemu-args: no IOTLB warning when vhost_vdpa's limit is unknown");
	h = deb;
	h.shmem_thp = true;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && !o.nwarn &&
	      o.iotlb_entries == 128 + VBM_QEMU_EXTRA_ENTRIES,
	      "qemu-args: a memfd of huge pages (shmem THP) fits");
	r.form = VBM_FORM_BLKIO;
	h = deb;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.nwarn == 1 &&
	      warns(&o, "(2048): if it does, QEMU says 'Failed to add blkio mem region'",
		    "max_iotlb_entries="),
	      "qemu-args: PA blkio on a memfd: libblkio's message");
	/* private RAM without THP: 4 KiB pages too */
	r.form = VBM_FORM_GENERIC;
	r.memory = VBM_MEM_PRIVATE;
	h.thp = false;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.nwarn == 1 &&
	      warns(&o, "PA mode on private RAM of 4K pages", "--memory hugetlb,"),
	      "qemu-args: PA mode on private RAM without THP warns");
	h = deb;
	r.memory_size = 8ULL << 30;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.nwarn == 1 &&
	      warns(&o, "up to 4160 IOTLB entries", "max_iotlb_entries=5120"),
	      "qemu-args: PA mode, 8G of 2M pages: past 2048 entries too");

	/* RLIMIT_MEMLOCK in PA mode: guest RAM + 256M */
	r.memory_size = 1ULL << 30;
	h.memlock = 8ULL << 20;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.nwarn == 1 &&
	      warns(&o, "RLIMIT_MEMLOCK (8M here)", "ulimit -l 1310720"),
	      "qemu-args: PA mode with RLIMIT_MEMLOCK 8M warns");
	h.memlock = (1ULL << 30) + (256ULL << 20);
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && !o.nwarn,
	      "qemu-args: ... not with guest RAM + 256M");
	r.use_va = true;
	r.memory = VBM_MEM_UNSET;
	h.memlock = 64 << 10;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && !o.nwarn,
	      "qemu-args: VA mode ignores RLIMIT_MEMLOCK and max_iotlb_entries");

	/* huge pages: a shared hugetlb memfd, in either mode */
	h = deb;
	r.memory = VBM_MEM_HUGETLB;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && !o.nwarn &&
	      strstr(qargs(&o), "-object memory-backend-memfd,id=vbs-mem,size=1G,hugetlb=on,share=on "),
	      "qemu-args: VA mode on hugetlb: %s", qargs(&o));
	r.use_va = false;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && !o.nwarn &&
	      o.iotlb_entries == 512 + VBM_QEMU_EXTRA_ENTRIES, "qemu-args: PA mode on hugetlb fits");
	h.hugepages_free = 511;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.nwarn == 1 &&
	      warns(&o, "511 free huge pages of 2M, fewer than the 512", "nr_hugepages"),
	      "qemu-args: too few free huge pages");
	h = deb;
	r.memory_size = 3ULL << 20;
	CHECK(vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && strstr(e, "multiple of the huge page size"),
	      "qemu-args: hugetlb size not a multiple of 2M (%s)", e);
	r.memory = VBM_MEM_PRIVATE;
	r.memory_size = (1ULL << 20) + 512;
	CHECK(vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && strstr(e, "not a multiple of 1M"),
	      "qemu-args: size not a multiple of 1M (%s)", e);
	r.memory_size = 1536ULL << 20;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && !strncmp(qargs(&o), "-m 1536M ", 9),
	      "qemu-args: -m 1536M");

	/* the other traps: small rings for the generic device, libblkio on private RAM */
	r.queue_size = 256;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.nwarn == 1 &&
	      warns(&o, "at most 256 entries", "--queue-size 1024"),
	      "qemu-args: rings of 256 with the generic device");
	r.form = VBM_FORM_BLKIO;
	CHECK(!vbm_qemu_args(&r, &h, &o, e, sizeof(e)) && o.nwarn == 1 &&
	      warns(&o, "libblkio form on private RAM in PA mode hangs", "--memory memfd"),
	      "qemu-args: libblkio on private RAM in PA mode; small rings are fine");

	/* parsers */
	CHECK(!vbm_parse_form("blkio", &f, e, sizeof(e)) && f == VBM_FORM_BLKIO &&
	      !vbm_parse_form("generic", &f, e, sizeof(e)) && f == VBM_FORM_GENERIC &&
	      vbm_parse_form("dev", &f, e, sizeof(e)) && strstr(e, "generic or blkio"),
	      "qemu-args: --form (%s)", e);
	CHECK(!vbm_parse_mode("va", &va, e, sizeof(e)) && va &&
	      !vbm_parse_mode("pa", &va, e, sizeof(e)) && !va &&
	      vbm_parse_mode("PA", &va, e, sizeof(e)) && strstr(e, "pa or va"),
	      "qemu-args: --mode (%s)", e);
	CHECK(!vbm_parse_memory("memfd", &m, e, sizeof(e)) && m == VBM_MEM_MEMFD &&
	      !vbm_parse_memory("hugetlb", &m, e, sizeof(e)) && m == VBM_MEM_HUGETLB &&
	      !vbm_parse_memory("private", &m, e, sizeof(e)) && m == VBM_MEM_PRIVATE &&
	      vbm_parse_memory("shared", &m, e, sizeof(e)) && strstr(e, "private, memfd or hugetlb"),
	      "qemu-args: --memory (%s)", e);
	CHECK(vbm_thp_madvised("always [madvise] never") && vbm_thp_madvised("[always] madvise never") &&
	      !vbm_thp_madvised("always madvise [never]") &&
	      !vbm_thp_madvised("always within_size advise [never] deny force") &&
	      vbm_thp_madvised("always within_size [advise] never deny force") &&
	      !vbm_thp_madvised("always within_size advise never [deny] force"),
	      "qemu-args: transparent_hugepage settings");
	vbm_parse_meminfo("MemTotal:        4026532 kB\nHugePages_Total:      16\nHugePages_Free:       12\n"
			  "Hugepagesize:       2048 kB\n", &hs, &fr);
	CHECK(hs == 2ULL << 20 && fr == 12, "qemu-args: /proc/meminfo's huge pages");
	vbm_parse_meminfo("MemTotal: 1 kB\n", &hs, &fr);
	CHECK(!hs && !fr, "qemu-args: /proc/meminfo without huge pages");
}

int main(void)
{
	printf("TAP version 13\n");
	test_sizes();
	test_u32();
	test_features();
	test_create_args();
	test_params();
	test_naming();
	test_docs();
	test_config();
	test_json();
	test_human();
	test_u64_list();
	test_misc();
	test_qemu_args();
	printf("1..%d\n", npass + nfail);
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail ? 1 : 0;
}
