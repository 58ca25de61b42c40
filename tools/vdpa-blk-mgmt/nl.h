/* SPDX-License-Identifier: GPL-2.0 */
#ifndef VBM_NL_H
#define VBM_NL_H

#include <stdbool.h>
#include <stdint.h>

#include "vdpa_compat.h"

struct nlattr;
struct mnl_socket;

struct vbm_nl {
	struct mnl_socket *sock;
	uint16_t family;
	uint32_t seq;
};

/* The kernel's extended ACK message of the last request, or "". */
extern char vbm_nl_extack[512];

/* Called per reply message with its attributes; nonzero stops. */
typedef int (*vbm_nl_cb)(const struct nlattr **tb, void *data);

/* 0, -ENOENT when the vdpa family is not registered, or -errno. */
int vbm_nl_open(struct vbm_nl *nl);
void vbm_nl_close(struct vbm_nl *nl);
int vbm_nl_request(struct vbm_nl *nl, uint8_t cmd, bool dump,
		   const char *mgmtdev, const char *dev, const uint64_t *features,
		   vbm_nl_cb cb, void *data);
uint64_t vbm_attr_uint(const struct nlattr *a);
const char *vbm_attr_str(const struct nlattr *a);

#endif
