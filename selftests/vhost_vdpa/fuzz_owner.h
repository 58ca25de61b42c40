/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz_owner: the owner mode of vdpa_fuzz (--owner).  See fuzz_owner.c.
 */
#ifndef FUZZ_OWNER_H
#define FUZZ_OWNER_H

#include <stdbool.h>
#include <stdint.h>

struct owner_opts {
	const char *dev;	/* /dev/vhost-vdpa-N */
	const char *argv0;	/* this program, exec'd as the SCM_RIGHTS peer */
	uint64_t seed;
	uint64_t iterations;	/* operations, all processes together */
	uint64_t seconds;	/* 0: no time limit */
	unsigned int qsize;	/* 0: drawn per session */
	int va;			/* 1 VA mode, 0 PA mode, -1 ask sysfs */
	const char *cas;	/* a fixed scenario, or NULL */
	bool end_bare;		/* leave the device started without a mapping */
	const char *no_ops;	/* steps never drawn, comma-separated */
	int verbose;
};

/* vdpa_fuzz --owner: 0 pass, 1 failure, 4 skip. */
int owner_main(const struct owner_opts *o);
/* vdpa_fuzz --owner-peer FD: the process the owner hands its fd to. */
int owner_peer_main(int sock);

#endif /* FUZZ_OWNER_H */
