# SPDX-License-Identifier: GPL-2.0
#
# vdpa_blk_sw: out-of-tree build (objects listed in Kbuild) and the VM lab.
#
#   make [KDIR=<kernel build dir>] [W=1] [C=1]
#                      build vdpa_blk_sw.ko (default KDIR: the running kernel)
#   make install       modules_install into updates/, then depmod; and
#                      tools/vdpa-blk-mgmt (tool, man page, completion, unit)
#   make dkms-install  copy the sources to /usr/src and dkms install them
#   make deb           Debian packages vdpa-blk-sw-dkms and vdpa-blk-mgmt
#                      in DEB_DIR (build/deb), checked with lintian
#   make clean
#
#   make lab           set up the VM lab in the cache (idempotent, as root)
#   make lab-module    build against the lab's Linux 6.12
#   make check-style   checkpatch --strict and kernel-doc -Wall on every source
#   make check         lab + module + all selftests in one VM boot, test
#                      28 with its short form only (fio verify in one
#                      nested guest; builds the tiny nested kernel);
#                      ends with "N passed, N failed, N skipped"
#   make check-nested  the nested-guest test (28) with all its QEMU runs:
#                      both memory modes x both QEMU forms, VA mode
#                      on private RAM, fio in the guest in both modes, and
#                      live migration of a guest running fio (libblkio form)
#   make check-debug   make check under the debug kernel (KASAN, lockdep,
#                      kmemleak, KFENCE, UBSAN), built first if not cached
#   make demo          the device under fio in the lab VM
#                      (DEMO_MGMTDEV=vdpasim_blk for the reference peer)
#   make vm-shell      interactive shell in the lab VM
#   make fuzz          hostile-guest fuzzer, FUZZ_REQUESTS (10^6) per seed
#                      (FUZZ_SEEDS="S..." to choose them), in the lab VM
#   make bench-quick   ours vs raw io_uring, loop-dio, vdpa_sim_blk: IOPS ratios
#   make bench-memsize memory per idle device, ours and blk-mq's, in the lab
#                      VM (MEMSIZE_COUNTS="1 64": devices per run)
#   make stress        tests 43 (durability) and 44 (lifecycle races) with
#                      thousands of cycles (RACE_CYCLES, RACE_FAST_CYCLES,
#                      DUR_ROUNDS, STRESS_TIMEOUT), in the lab VM
#   make bench         every peer, every backing, one VM run: bench/results/
#   make bench-scale   SCALE_N (1024) devices of ours, then of loop, in one
#                      VM: create/delete time, memory, tasks and CPU per
#                      idle device, 16xQD4 against 1xQD64, fio verify on a
#                      sample of ours (fails the target if it fails):
#                      bench/results/
#   make bench-vm      fio in a nested guest (L2) on ours (vhost-vdpa-device-
#                      pci PA/VA, libblkio) against QEMU's virtio-blk,
#                      vhost-user-blk and VDUSE, one VM: bench/results/
#
# W=, C=, V= and KBUILD_EXTRA_SYMBOLS= reach the kernel build unchanged.

KDIR ?= /lib/modules/$(shell uname -r)/build
LAB := $(CURDIR)/scripts/lab
COMPAT_H ?= drivers/vdpa/vdpa_blk_sw/compat_generated.h
DEMO_MGMTDEV ?= vdpasim_blk-sw

# Evaluated only when a lab target needs them.
LAB_KDIR = $(shell $(LAB)/env KDIR)
LAB_EXT = $(shell $(LAB)/env EXT)

all: modules

modules: compat
	@test -f Kbuild || { echo "no Kbuild: nothing to build" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) \
		$(if $(KBUILD_EXTRA_SYMBOLS),KBUILD_EXTRA_SYMBOLS="$(KBUILD_EXTRA_SYMBOLS)") modules

# The compile probes (scripts/conftest.sh) write the one compat header;
# it is replaced only when its content changes, to spare rebuilds. "+":
# the probes' kbuild run shares make's jobs (make -j, DKMS).
compat:
	+@if [ -f scripts/conftest.sh ]; then \
		mkdir -p $(dir $(COMPAT_H)) && \
		bash scripts/conftest.sh $(KDIR) > $(COMPAT_H).tmp && \
		{ cmp -s $(COMPAT_H).tmp $(COMPAT_H) || mv $(COMPAT_H).tmp $(COMPAT_H); } && \
		rm -f $(COMPAT_H).tmp; \
	fi

install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_DIR=updates modules_install
	depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) -a $(shell cat $(KDIR)/include/config/kernel.release)
	$(MAKE) -C tools/vdpa-blk-mgmt install

# DKMS (dkms.conf; builds vringh.ko too where the kernel lacks it)
DKMS_VERSION = $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
dkms-install:
	rm -rf /usr/src/vdpa-blk-sw-$(DKMS_VERSION)
	mkdir -p /usr/src/vdpa-blk-sw-$(DKMS_VERSION)
	cp -r Kbuild Makefile dkms.conf drivers include scripts /usr/src/vdpa-blk-sw-$(DKMS_VERSION)/
	dkms install vdpa-blk-sw/$(DKMS_VERSION)

# Debian packages (debian/, scripts/build-deb): built from a copy of the
# tree in $(DEB_DIR)/src, the packages in $(DEB_DIR); the lab's test 50
# installs them from there (/repo/build/deb in the guest).
DEB_DIR ?= $(CURDIR)/build/deb
deb:
	scripts/build-deb $(DEB_DIR)

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2> /dev/null || \
		find . -name .git -prune -o \( -name '*.o' -o -name '*.ko' -o -name '*.mod' \
			-o -name '*.mod.c' -o -name '.*.cmd' -o -name '*.symvers' \
			-o -name 'modules.order' \) -type f -print0 | xargs -0 rm -f
	rm -f $(COMPAT_H)
	@if [ -f selftests/Makefile ]; then $(MAKE) -C selftests clean; fi

lab:
	$(LAB)/setup

# LAB_READY=1: the caller has just run the lab setup.
lab-module: $(if $(LAB_READY),,lab)
	@if [ -f Kbuild ]; then \
		$(MAKE) modules KDIR=$(LAB_KDIR) KBUILD_EXTRA_SYMBOLS=$(LAB_EXT)/Module.symvers; \
	else \
		echo "lab-module: no Kbuild yet, nothing to build"; \
	fi

selftests: lab
	@if [ -f selftests/Makefile ]; then $(MAKE) -C selftests; fi

check-style:
	scripts/check-style

# make check runs test 28's short form, pa-fio: one nested guest running
# fio verify on the device through vhost-vdpa-device-pci, so that a
# regression on the VM path fails CI. It costs the nested kernel's cold
# build once (3.5 min on an idle 2-core host, cached after) and about two
# minutes of nested TCG (Documentation/lab.rst). NESTED_RUNS=none skips it.
check:
	NESTED_RUNS=$(or $(NESTED_RUNS),pa-fio) $(LAB)/check

check-nested:
	NESTED_RUNS=all $(LAB)/check 28-blk-sw-nested

check-debug:
	NESTED_RUNS=$(or $(NESTED_RUNS),none) VDPA_BLK_SW_FLAVOUR=debug $(LAB)/check

demo:
	$(LAB)/demo $(DEMO_MGMTDEV)

bench-quick: lab
	scripts/bench-quick

bench: lab
	scripts/bench-full

bench-scale: lab
	scripts/bench-scale

bench-memsize: lab
	scripts/bench-memsize

bench-vm: lab
	scripts/bench-vm

fuzz: lab
	scripts/fuzz $(or $(FUZZ_REQUESTS),1000000) $(FUZZ_SEEDS)

stress: lab
	scripts/stress

vm-shell: lab
	@$(MAKE) --no-print-directory lab-module || echo "vm-shell: module build failed; booting without it" >&2
	$(LAB)/vm-run --shell

.PHONY: all modules compat install dkms-install deb clean lab lab-module selftests check-style \
	check check-nested check-debug demo vm-shell fuzz bench-quick stress bench bench-scale \
	bench-memsize bench-vm
