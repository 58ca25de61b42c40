# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Shared settings and helpers of the VM lab. Sourced by every scripts/lab/*
# step; never executed. Everything the lab produces lives in $LAB_CACHE,
# outside the repository.
#
# Override with environment variables:
#   VDPA_BLK_SW_CACHE        cache root              (/var/cache/vdpa-blk-sw)
#   VDPA_BLK_SW_KERNEL       Debian package version of the target kernel
#                            (6.12.117-1~deb12u1); every kernel-derived step
#                            is keyed on it, so a bump rebuilds what depends on it
#   VDPA_BLK_SW_KABI         kernel ABI name if it cannot be derived (6.12.117+deb12)
#   VDPA_BLK_SW_GUEST_SUITE  Debian suite of the guest userspace (trixie)
#   VDPA_BLK_SW_MIRROR       Debian mirror URI (default: read from the host's
#                            apt sources at run time)
#   VDPA_BLK_SW_FLAVOUR      guest kernel: "distro" (Debian's, the default) or
#                            "debug" (built from linux-source by debug-kernel
#                            with scripts/lab/debug.config: KASAN, lockdep...)

LAB_CACHE=${VDPA_BLK_SW_CACHE:-/var/cache/vdpa-blk-sw}
LAB_KERNEL_PKGVER=${VDPA_BLK_SW_KERNEL:-6.12.117-1~deb12u1}

# 6.12.117-1~deb12u1 -> upstream 6.12.117, series 6.12, ABI 6.12.117+deb12
LAB_KERNEL_UPSTREAM=${LAB_KERNEL_PKGVER%%-*}
LAB_KERNEL_SERIES=$(echo "$LAB_KERNEL_UPSTREAM" | cut -d. -f1-2)
_lab_debrel=$(echo "$LAB_KERNEL_PKGVER" | sed -n 's/.*~deb\([0-9][0-9]*\)u[0-9]*$/\1/p')
LAB_KABI=${VDPA_BLK_SW_KABI:-$LAB_KERNEL_UPSTREAM+deb${_lab_debrel:-12}}
LAB_KVER=$LAB_KABI-amd64
unset _lab_debrel

LAB_GUEST_SUITE=${VDPA_BLK_SW_GUEST_SUITE:-trixie}

LAB_DEBS=$LAB_CACHE/debs
LAB_STAMPS=$LAB_CACHE/stamps
LAB_KROOT=$LAB_CACHE/kernel/$LAB_KVER
LAB_KDIR=$LAB_KROOT/usr/src/linux-headers-$LAB_KVER
LAB_VMLINUZ=$LAB_KROOT/boot/vmlinuz-$LAB_KVER
LAB_KMODS=$LAB_KROOT/lib/modules/$LAB_KVER
LAB_SRC=$LAB_CACHE/src/$LAB_KERNEL_PKGVER/linux-source-$LAB_KERNEL_SERIES
LAB_EXT=$LAB_CACHE/ext/$LAB_KVER
# The guest root: debootstrap of $LAB_GUEST_SUITE plus these packages (keep
# them sorted). Each definition gets its own directory, named by a hash of
# LAB_ROOTFS_KEY, and a directory is never rebuilt in place: a lab VM that
# runs from one tree keeps its root while another tree (a branch with a
# longer package list) builds its own beside it.
# dkms, gcc-12 (the compiler of Debian's 6.12), linux-base and pahole are
# for DKMS builds against the lab kernel's headers, which the root gets
# too, from the lab's kernel packages (LAB_ROOTFS_KERNEL_PACKAGES, hence
# "kernel=" in the key): test 50 installs the project's Debian packages.
LAB_ROOTFS_PACKAGES=(
	bc bsdextrautils busybox dkms dmsetup e2fsprogs fio gcc-12 iproute2 jq
	kmod libblkio1 linux-base linux-perf mount nbd-client pahole pciutils
	procps psmisc python3 qemu-block-extra qemu-system-common qemu-system-x86
	qemu-utils strace util-linux xfsprogs xz-utils
)
LAB_ROOTFS_KEY="suite=$LAB_GUEST_SUITE variant=minbase packages=${LAB_ROOTFS_PACKAGES[*]}"
LAB_ROOTFS_KEY+=" kernel=$LAB_KERNEL_PKGVER rev=1"
LAB_ROOTFS_ID=$LAB_GUEST_SUITE-$(printf '%s' "$LAB_ROOTFS_KEY" | sha256sum | cut -c1-12)
LAB_ROOTFS=$LAB_CACHE/rootfs/$LAB_ROOTFS_ID
LAB_INITRAMFS=$LAB_CACHE/initramfs/$LAB_KVER/initramfs.cpio.gz

LAB_LOCKFILE=$LAB_CACHE/.lock
# QEMU machine type. The debug flavour boots on q35: on i440fx ("pc") every
# PCI device's _PRT is an AML While loop over 128 entries, which under
# KASAN + lockdep + TCG runs into ACPI's 30 s loop timeout; q35's _PRT
# returns static packages.
LAB_MACHINE=pc

# The debug flavour swaps the kernel, its modules, build tree and initramfs
# for its own, all under $LAB_DEBUG; the rest of the lab (guest root, source,
# host packages) is the distro flavour's.
# The steps that set up that shared part always work on the distro flavour.
LAB_FLAVOUR=${VDPA_BLK_SW_FLAVOUR:-distro}
case $(basename "$0") in
host-deps|fetch-kernel|unpack-kernel|unpack-source|build-ext|rootfs|nested-kernel) LAB_FLAVOUR=distro ;;
esac
case $LAB_FLAVOUR in
distro) ;;
debug)
	LAB_DEBUG=$LAB_CACHE/debug
	LAB_KVER=$LAB_KERNEL_UPSTREAM-vbs-debug
	LAB_STAMPS=$LAB_DEBUG/stamps
	LAB_LOCKFILE=$LAB_DEBUG/.lock
	LAB_KROOT=$LAB_DEBUG/root
	LAB_KDIR=$LAB_DEBUG/build
	LAB_VMLINUZ=$LAB_KROOT/boot/vmlinuz-$LAB_KVER
	LAB_KMODS=$LAB_KROOT/lib/modules/$LAB_KVER
	LAB_EXT=$LAB_DEBUG/ext
	LAB_INITRAMFS=$LAB_DEBUG/initramfs/initramfs.cpio.gz
	LAB_MACHINE=q35
	;;
*)
	echo "[lab] error: VDPA_BLK_SW_FLAVOUR=$LAB_FLAVOUR: want distro or debug" >&2
	exit 1
	;;
esac

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REPO=$(cd "$LAB_DIR/../.." && pwd)

# The nested guest's kernel (scripts/lab/nested-kernel): one directory per
# fragment and kernel version (LAB_NESTED_KEY's hash), never rebuilt in
# place, like the guest root: a tree with another nested.config builds its
# kernel beside the one other trees' VMs boot.
LAB_NESTED_KEY="pkgver=$LAB_KERNEL_PKGVER"
LAB_NESTED_KEY+=" config=$(sha256sum < "$LAB_DIR/nested.config" | cut -d' ' -f1) rev=2"
LAB_NESTED=$LAB_CACHE/nested/$(printf '%s' "$LAB_NESTED_KEY" | sha256sum | cut -c1-12)

# Host packages the lab and the build need.
LAB_HOST_PACKAGES=(
	bc bison busybox-static ca-certificates cpio debian-archive-keyring
	debootstrap dwarves flex gcc kmod libc6-dev libelf-dev
	libmnl-dev libssl-dev make perl pkg-config python3 qemu-system-x86
	qemu-utils sparse xz-utils zstd
)

# The kernel packages the guest root installs (not the image: vm-run boots
# the kernel from the cache; a stub package stands for it).
LAB_ROOTFS_KERNEL_PACKAGES=(
	"linux-headers-$LAB_KVER" "linux-headers-$LAB_KABI-common"
	"linux-kbuild-$LAB_KABI" "linux-source-$LAB_KERNEL_SERIES"
)

# The kernel packages, as "name" for apt-get download.
lab_kernel_packages()
{
	echo "linux-image-$LAB_KVER-unsigned"
	echo "linux-headers-$LAB_KVER"
	echo "linux-headers-$LAB_KABI-common"
	echo "linux-kbuild-$LAB_KABI"
	echo "linux-source-$LAB_KERNEL_SERIES"
}

lab_log()
{
	printf '[lab] %s\n' "$*" >&2
}

lab_die()
{
	printf '[lab] error: %s\n' "$*" >&2
	exit 1
}

# lab_stamp_ok NAME KEY: true if step NAME last completed with the same KEY.
lab_stamp_ok()
{
	[ -f "$LAB_STAMPS/$1" ] && [ "$(cat "$LAB_STAMPS/$1")" = "$2" ]
}

lab_stamp_key()
{
	cat "$LAB_STAMPS/$1" 2>/dev/null || echo none
}

lab_stamp_write()
{
	mkdir -p "$LAB_STAMPS"
	printf '%s\n' "$2" > "$LAB_STAMPS/$1.tmp"
	mv "$LAB_STAMPS/$1.tmp" "$LAB_STAMPS/$1"
}

lab_stamp_clear()
{
	rm -f "$LAB_STAMPS/$1"
}

# Serialise steps that write the cache. A step run by 'setup' inherits the
# lock through LAB_LOCKED, so nesting does not deadlock.
lab_lock()
{
	[ "${LAB_LOCKED:-}" = 1 ] && return 0
	mkdir -p "$(dirname "$LAB_LOCKFILE")"
	exec 9>"$LAB_LOCKFILE"
	if ! flock -n 9; then
		lab_log "waiting for another lab setup to finish"
		flock 9
	fi
	export LAB_LOCKED=1
}

lab_require_root()
{
	[ "$(id -u)" = 0 ] || lab_die "$(basename "$0") must run as root"
}

# lab_mirror: the host's Debian archive URI, read from its apt sources
# (deb822 *.sources first, then one-line sources.list). Security, updates
# and backports suites are skipped.
lab_mirror()
{
	local uri

	if [ -n "${VDPA_BLK_SW_MIRROR:-}" ]; then
		echo "$VDPA_BLK_SW_MIRROR"
		return
	fi
	uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
		function flush() {
			if (!found && types ~ /(^| )deb( |$)/ && uris != "" && suites != "") {
				n = split(suites, s, " ")
				for (i = 1; i <= n; i++)
					if (s[i] !~ /-/) { split(uris, u, " "); print u[1]; found = 1; exit }
			}
			types = uris = suites = ""
		}
		/^[ \t]*$/ { flush(); next }
		/^[Tt]ypes:/ { sub(/^[^:]*:[ \t]*/, ""); types = $0 }
		/^URIs:/ { sub(/^[^:]*:[ \t]*/, ""); uris = $0 }
		/^Suites:/ { sub(/^[^:]*:[ \t]*/, ""); suites = $0 }
		END { flush() }')
	if [ -z "$uri" ]; then
		uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		      sed 's/\[[^]]*\]//' |
		      awk '$1 == "deb" && $3 !~ /-/ { print $2; exit }')
	fi
	[ -n "$uri" ] || lab_die "no Debian mirror found in the apt sources; set VDPA_BLK_SW_MIRROR"
	echo "${uri%/}"
}

# lab_elapsed START: seconds since START (from $SECONDS or date +%s).
lab_elapsed()
{
	echo $(( $(date +%s) - $1 ))
}
