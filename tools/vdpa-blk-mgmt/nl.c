// SPDX-License-Identifier: GPL-2.0
/*
 * vdpa-blk-mgmt: generic netlink to the "vdpa" family with libmnl.
 *
 * Every request asks for an ACK and extended ACKs, so a refusal comes back
 * with the kernel's message (NLMSGERR_ATTR_MSG), which the caller prints.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "nl.h"

char vbm_nl_extack[512];

static int attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type >= 0 && type <= VBM_ATTR_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int ctrl_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type >= 0 && type <= CTRL_ATTR_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int extack_cb(const struct nlattr *attr, void *data)
{
	(void)data;
	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		snprintf(vbm_nl_extack, sizeof(vbm_nl_extack), "%s",
			 mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static int handle_error(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*e), plen;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
		return -EBADMSG;
	if (e->error && (nlh->nlmsg_flags & NLM_F_ACK_TLVS)) {
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(e->msg);
		plen = mnl_nlmsg_get_payload_len(nlh);
		if (off < plen)
			mnl_attr_parse_payload((const char *)e + off, plen - off,
					       extack_cb, NULL);
	}
	return e->error;
}

/*
 * Send one request and process replies until the ACK (or the end of a
 * dump). Returns 0 or -errno.
 */
static int transact(struct vbm_nl *nl, struct nlmsghdr *req, uint16_t type,
		    vbm_nl_cb cb, void *data, bool ctrl)
{
	char *buf;
	size_t bufsz = MNL_SOCKET_BUFFER_SIZE > 32768 ? MNL_SOCKET_BUFFER_SIZE : 32768;
	uint32_t seq = req->nlmsg_seq;
	bool dump = req->nlmsg_flags & NLM_F_DUMP;
	int ret = 0;

	vbm_nl_extack[0] = '\0';
	if (mnl_socket_sendto(nl->sock, req, req->nlmsg_len) < 0)
		return -errno;
	buf = malloc(bufsz);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, buf, bufsz);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int len = (int)n;

		if (n < 0) {
			ret = -errno;
			break;
		}
		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			const struct nlattr *tb[VBM_ATTR_MAX + 1] = { NULL };

			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				ret = handle_error(nlh);
				goto out;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				if (dump)
					goto out;
				continue;
			}
			if (nlh->nlmsg_type != type)
				continue;
			if (mnl_attr_parse(nlh, sizeof(struct genlmsghdr),
					   ctrl ? ctrl_attr_cb : attr_cb, tb) < 0) {
				ret = -EBADMSG;
				goto out;
			}
			if (cb) {
				ret = cb(tb, data);
				if (ret)
					goto out;
			}
		}
	}
out:
	free(buf);
	return ret;
}

static struct nlmsghdr *put_header(struct vbm_nl *nl, char *buf, uint16_t type,
				   uint8_t cmd, uint16_t flags, uint8_t version)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++nl->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = version;
	return nlh;
}

static int family_cb(const struct nlattr **tb, void *data)
{
	uint16_t *id = data;

	if (tb[CTRL_ATTR_FAMILY_ID])
		*id = mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	return 0;
}

int vbm_nl_open(struct vbm_nl *nl)
{
	char buf[256];
	struct nlmsghdr *nlh;
	int one = 1, ret;

	memset(nl, 0, sizeof(*nl));
	nl->seq = (uint32_t)time(NULL);
	nl->sock = mnl_socket_open(NETLINK_GENERIC);
	if (!nl->sock)
		return -errno;
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return ret;
	}
	/* Best effort: older kernels answer without the messages. */
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));

	nlh = put_header(nl, buf, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_ACK, 1);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, VDPA_GENL_NAME);
	ret = transact(nl, nlh, GENL_ID_CTRL, family_cb, &nl->family, true);
	if (!ret && !nl->family)
		ret = -ENOENT;
	if (ret) {
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
	}
	return ret;
}

void vbm_nl_close(struct vbm_nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
}

int vbm_nl_request(struct vbm_nl *nl, uint8_t cmd, bool dump,
		   const char *mgmtdev, const char *dev, const uint64_t *features,
		   vbm_nl_cb cb, void *data)
{
	char buf[1024];
	struct nlmsghdr *nlh;

	nlh = put_header(nl, buf, nl->family, cmd, dump ? NLM_F_DUMP : NLM_F_ACK,
			 VDPA_GENL_VERSION);
	if (mgmtdev)
		mnl_attr_put_strz(nlh, VDPA_ATTR_MGMTDEV_DEV_NAME, mgmtdev);
	if (dev)
		mnl_attr_put_strz(nlh, VDPA_ATTR_DEV_NAME, dev);
	if (features)
		mnl_attr_put_u64(nlh, VDPA_ATTR_DEV_FEATURES, *features);
	return transact(nl, nlh, nl->family, cb, data, false);
}

uint64_t vbm_attr_uint(const struct nlattr *a)
{
	switch (mnl_attr_get_payload_len(a)) {
	case 1: return mnl_attr_get_u8(a);
	case 2: return mnl_attr_get_u16(a);
	case 4: return mnl_attr_get_u32(a);
	case 8: return mnl_attr_get_u64(a);
	default: return 0;
	}
}

const char *vbm_attr_str(const struct nlattr *a)
{
	if (!a || mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
		return "";
	return mnl_attr_get_str(a);
}
