/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vdpa-blk-mgmt: the parts without side effects (argument and file
 * parsing, feature names, output formatting), unit-tested on the host.
 */
#ifndef VBM_LIB_H
#define VBM_LIB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/vdpa_blk_sw.h>

/* Exit codes (documented in vdpa-blk-mgmt.8). */
enum {
	VBM_OK = 0,
	VBM_EFAIL = 1,		/* the operation failed; the kernel refused */
	VBM_EUSAGE = 2,		/* bad command line or configuration file */
	VBM_EPERM = 3,		/* not root */
	VBM_EMODULE = 4,	/* a kernel module is not loaded */
	VBM_EBACKING = 5,	/* backing missing, unusable or in use */
	VBM_EEXIST = 6,		/* the device name is taken */
	VBM_ENODEV = 7,		/* no such device */
	VBM_EMISMATCH = 8,	/* apply: a device differs and needs recreation */
	VBM_ETIMEDOUT = 9,	/* the device node did not appear */
};

#define VBM_NAME_MAX	64
#define VBM_MGMTDEV	VBS_MGMTDEV_NAME

enum vbm_bind { VBM_BIND_UNSET, VBM_BIND_VIRTIO, VBM_BIND_VHOST, VBM_BIND_NONE };

/* A parameter of vdpa_blk_sw: a line of <linux/vdpa_blk_sw_params.h>. */
struct vbm_param {
	const char *name;	/* its attribute, JSON and apply file key */
	enum vbs_param_type type;
	uint64_t min, max;	/* of a number; max: longest string */
	unsigned int flags;	/* VBS_PF_* */
};

extern const struct vbm_param vbm_params[VBS_NR_PARAMS];

/* A parameter's long option without its dashes: its name, '-' for '_'. */
const char *vbm_param_option(enum vbs_param_id id);

/* A fixed boolean is a flag of create; a live one takes on or off. */
bool vbm_param_is_flag(enum vbs_param_id id);

/* Options of older versions, still accepted; negate: yes means 0. */
struct vbm_alias {
	const char *key;
	enum vbs_param_id id;
	bool negate;
};

extern const struct vbm_alias vbm_aliases[];
extern const int vbm_nr_aliases;

/* The value asked for a parameter; set: given at all. */
struct vbm_val {
	bool set;
	uint64_t num;	/* a number; a boolean is 0 or 1 */
	char *str;	/* a path or text */
};

/* What create (and a section of an apply file) asks for. */
struct vbm_spec {
	char name[VBM_NAME_MAX + 1];
	char *mgmtdev;		/* NULL: vdpasim_blk-sw */
	struct vbm_val p[VBS_NR_PARAMS];
	uint64_t features;
	bool has_features;
	enum vbm_bind bind;
	int line;		/* apply: line of the section header */
};

/* The value of parameter NAME of a spec */
#define VBM_SET(s, name)	((s)->p[VBS_P_##name].set)
#define VBM_NUM(s, name)	((s)->p[VBS_P_##name].num)
#define VBM_STR(s, name)	((s)->p[VBS_P_##name].str)

/*
 * A parameter's value as the module's attribute takes and shows it: the
 * string itself, or a number formatted in buf.
 */
const char *vbm_param_text(const struct vbm_spec *s, enum vbs_param_id id,
			   char *buf, size_t len);

void vbm_spec_init(struct vbm_spec *s);
void vbm_spec_free(struct vbm_spec *s);

/*
 * Parsers: 0 on success, else -1 with a message for a person in err
 * (errlen bytes).
 */
int vbm_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out,
		  char *err, size_t errlen);
int vbm_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);
int vbm_parse_features(const char *s, uint64_t *out, char *err, size_t errlen);
int vbm_parse_bind(const char *s, enum vbm_bind *out, char *err, size_t errlen);
int vbm_parse_bool(const char *s, int *out);
/*
 * Up to max space-separated numbers (a sysfs list such as poll_window_ns):
 * their count, or -1 with a message in err.
 */
int vbm_parse_u64_list(const char *s, uint64_t *out, int max, char *err,
		       size_t errlen);
int vbm_check_name(const char *s, char *err, size_t errlen);

/*
 * create's options (argv after "create"), or one "key = value" of an apply
 * file (key without the leading dashes).
 */
int vbm_parse_create_args(int argc, char **argv, struct vbm_spec *s,
			  char *err, size_t errlen);
int vbm_spec_set(struct vbm_spec *s, const char *key, const char *val,
		 char *err, size_t errlen);
/*
 * The parameter whose option or name is key, '-' and '_' alike, or whose
 * older option key is (vbm_aliases); -1 if none.
 */
int vbm_param_by_option(const char *key);
int vbm_spec_check(const struct vbm_spec *s, char *err, size_t errlen);

/* An apply file: sections "[NAME]" of "key = value" lines. */
struct vbm_config {
	struct vbm_spec *devs;
	int n;
};

int vbm_parse_config(FILE *f, const char *fname, struct vbm_config *c,
		     char *err, size_t errlen);
void vbm_config_free(struct vbm_config *c);

/* Features: names as in the virtio spec, without the VIRTIO_*_F_ prefix. */
const char *vbm_feature_name(unsigned int bit);
/* Space-separated names (unknown bits as "bit<N>") into buf. */
char *vbm_features_str(uint64_t f, char *buf, size_t len);
const char *vbm_bind_name(enum vbm_bind b);	/* virtio, vhost, none */
const char *vbm_bind_driver(enum vbm_bind b);	/* virtio_vdpa, ... */

/* "128M", "1.5G", "512" (bytes, binary units) */
char *vbm_human_size(uint64_t bytes, char *buf, size_t len);

/*
 * qemu-args: the QEMU options that give a guest a device bound to
 * vhost_vdpa, in one of QEMU's two forms, with guest memory its mode can
 * use, and the traps the host's settings set for that memory.
 */
enum vbm_form {
	VBM_FORM_GENERIC,	/* -device vhost-vdpa-device-pci */
	VBM_FORM_BLKIO,		/* -blockdev virtio-blk-vhost-vdpa + virtio-blk-pci */
};

enum vbm_memory {
	VBM_MEM_UNSET,		/* what the mode and form need */
	VBM_MEM_PRIVATE,	/* QEMU's default anonymous RAM */
	VBM_MEM_MEMFD,		/* memory-backend-memfd,share=on */
	VBM_MEM_HUGETLB,	/* memory-backend-memfd,hugetlb=on,share=on */
};

int vbm_parse_form(const char *s, enum vbm_form *out, char *err, size_t errlen);
int vbm_parse_mode(const char *s, bool *use_va, char *err, size_t errlen);
int vbm_parse_memory(const char *s, enum vbm_memory *out, char *err, size_t errlen);
const char *vbm_form_name(enum vbm_form f);	/* generic, blkio */
const char *vbm_memory_name(enum vbm_memory m);	/* private, memfd, hugetlb */

struct vbm_qemu_req {
	const char *name;	/* the device (QEMU ids are made from it) */
	const char *node;	/* its /dev/vhost-vdpa-N */
	bool use_va;		/* VA mode, else PA mode */
	enum vbm_form form;
	enum vbm_memory memory;
	uint64_t memory_size;	/* guest RAM in bytes */
	uint32_t queue_size;	/* the device's largest ring; 0: unknown or the device's choice */
};

/* What the host's settings say; 0 for a value not known. */
struct vbm_qemu_host {
	uint64_t max_iotlb_entries;	/* vhost_vdpa's module parameter */
	bool thp;		/* anonymous RAM comes in 2 MiB pages (QEMU madvises) */
	bool shmem_thp;		/* so does a memfd's */
	uint64_t hugepage_size;	/* default huge page size in bytes */
	uint64_t hugepages_free;	/* free huge pages of that size */
	uint64_t memlock;	/* RLIMIT_MEMLOCK in bytes, UINT64_MAX: unlimited */
};

/* IOTLB entries QEMU's ROMs and video memory may add, in PA mode */
#define VBM_QEMU_EXTRA_ENTRIES	64
/* what PA mode pins beyond guest RAM, for RLIMIT_MEMLOCK */
#define VBM_QEMU_EXTRA_PINNED	(256ULL << 20)
#define VBM_QEMU_MAX_ARGS	10
#define VBM_QEMU_MAX_WARN	4

struct vbm_qemu_out {
	enum vbm_memory memory;	/* the memory chosen */
	uint64_t iotlb_entries;	/* PA mode: entries guest RAM may take; VA: 0 */
	int nargs;
	char args[VBM_QEMU_MAX_ARGS][512];	/* "-device", "vhost-vdpa-device-pci,..." */
	int nwarn;
	struct {
		char text[400];
		char hint[400];
	} warn[VBM_QEMU_MAX_WARN];
};

/*
 * Build the options for r on host h into o: 0, else -1 with a message in
 * err (a size QEMU or the memory cannot take).
 */
int vbm_qemu_args(const struct vbm_qemu_req *r, const struct vbm_qemu_host *h,
		  struct vbm_qemu_out *o, char *err, size_t errlen);
/*
 * A transparent_hugepage "enabled" or "shmem_enabled" file: does memory
 * QEMU madvises (MADV_HUGEPAGE) get huge pages?
 */
bool vbm_thp_madvised(const char *text);
/* "Hugepagesize:" and "HugePages_Free:" of /proc/meminfo's text */
void vbm_parse_meminfo(const char *text, uint64_t *hugepage_size, uint64_t *free);

/* A minimal JSON writer. */
struct vbm_json {
	FILE *f;
	int depth;
	bool first[32];
	bool pretty;
};

void vbm_json_init(struct vbm_json *j, FILE *f, bool pretty);
void vbm_json_open(struct vbm_json *j, const char *key, char bracket);
void vbm_json_close(struct vbm_json *j, char bracket);
void vbm_json_str(struct vbm_json *j, const char *key, const char *val);
void vbm_json_u64(struct vbm_json *j, const char *key, uint64_t val);
void vbm_json_double(struct vbm_json *j, const char *key, double val);
void vbm_json_bool(struct vbm_json *j, const char *key, bool val);
void vbm_json_null(struct vbm_json *j, const char *key);
void vbm_json_end(struct vbm_json *j);
void vbm_json_escape(FILE *f, const char *s);

#endif
