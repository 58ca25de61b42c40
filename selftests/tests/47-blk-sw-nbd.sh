#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=1200
#
# Network storage as the backing: a file exported by qemu-nbd on TCP
# loopback, attached with the kernel NBD client (nbd-client, netlink mode,
# request timeout NBD_TIMEOUT), is the backing of a vdpa_blk_sw device
# bound to virtio_vdpa.
#  - fio verify (crc32c) through /dev/vdX, no error counted;
#  - the server killed with fio writing: fio fails with EIO (errno 5)
#    within a bound, nothing hangs, the device counts errors and has no
#    request left in flight; with the connection dead, one 4 KiB read
#    fails with EIO at once and counts exactly one error;
#  - the server restarted and a new socket handed to nbd0
#    (NBD_CMD_RECONFIGURE, what nbd-client's persist mode does): the same
#    vdpa device works again, a pattern written before the failure reads
#    back, one written after it reaches the server's file;
#  - with a dead-connection timeout (NBD_ATTR_DEAD_CONN_TIMEOUT), a server
#    killed and back within it is invisible to the guest: fio verify
#    running across it passes, no error counted; a server that never comes
#    back gives EIO once it has run out, not before, and nothing hangs;
#  - the device is unbound and deleted with its backing still dead.
# Timings and error codes: $RESULTS_DIR/nbd-faults.txt.

. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../blk_sw.sh"

NBD_PORT=10809
NBD_EXPORT=vbs
NBD_DEV=/dev/nbd0
NBD_INDEX=0
# nbd-client -t: a request unanswered this long (s) is failed or requeued
NBD_TIMEOUT=5
# the bound on the guest seeing EIO once the server is gone (s)
EIO_BOUND=60
MB=$((1 << 20))
SIZE=$((256 * MB))

require_root
require_cmd qemu-nbd nbd-client python3 fio jq timeout ss
require_module nbd
bsw_setup
load_modules nbd
# the lab guest's loopback interface starts down
ip link set lo up || fail "cannot bring lo up"

# The failures log "I/O error, dev vda", nbd's "Connection timed out" and
# the device's "write of 4096 bytes at sector N failed: -5", none of which
# run.sh counts as a kernel problem: no dmesg_allow, so a hung task or a
# warning still fails the test.

report=$RESULTS_DIR/nbd-faults.txt
: > "$report"
# note MSG: log it and keep it for the closing report
note()
{
	log "$*"
	printf '%s\n' "$*" >> "$report"
}

now_ms()
{
	echo $(($(date +%s%N) / 1000000))
}

# nbdpy MODE ARGS...: NBD netlink control and direct-I/O helpers
#   reconf INDEX DEAD [HOST PORT EXPORT]
#       NBD_CMD_RECONFIGURE of nbd INDEX: dead-connection timeout DEAD
#       seconds; with HOST PORT EXPORT, also connect to the server, do the
#       fixed-newstyle handshake and hand the socket to the kernel
#   fill DEV OFF COUNT SEED       write COUNT 4 KiB blocks of a pattern
#   check DEV OFF COUNT SEED      read them back; exit 1 on a mismatch
#   read1 DEV OFF                 one 4 KiB read: prints "ok" or the errno
#                                 name, and the time the read took (ms)
#   Every I/O is O_DIRECT, but on a regular file (the server's image).
nbdpy()
{
	timeout --kill-after=5 120 python3 - "$@" << 'EOF'
import errno, mmap, os, socket, stat, struct, sys, time

def nla(t, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, t) + payload + b"\0" * (-n % 4)

def attrs(buf):
    out = {}
    while len(buf) >= 4:
        n, t = struct.unpack_from("=HH", buf)
        out[t & 0x3fff] = buf[4:n]
        buf = buf[(n + 3) & ~3:]
    return out

def genl(sk, family, cmd, payload):
    NLM_F_REQUEST, NLM_F_ACK, NLMSG_ERROR = 1, 4, 2
    body = struct.pack("=BBH", cmd, 1, 0) + payload
    sk.send(struct.pack("=IHHII", 16 + len(body), family,
                        NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body)
    reply = None
    while True:
        data = sk.recv(65536)
        while data:
            n, typ = struct.unpack_from("=IH", data)
            if typ == NLMSG_ERROR:
                err = struct.unpack_from("=i", data, 16)[0]
                if err:
                    raise OSError(-err, os.strerror(-err))
                return reply
            reply = data[20:n]
            data = data[(n + 3) & ~3:]

def nbd_family(sk):
    GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3
    CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2
    reply = genl(sk, GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                 nla(CTRL_ATTR_FAMILY_NAME, b"nbd\0"))
    return struct.unpack("=H", attrs(reply)[CTRL_ATTR_FAMILY_ID][:2])[0]

def recvall(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError(errno.ECONNRESET, "server closed the connection")
        buf += chunk
    return buf

def nbd_connect(host, port, export):
    s = socket.create_connection((host, int(port)), timeout=10)
    magic, opt, hflags = struct.unpack(">8s8sH", recvall(s, 18))
    if magic != b"NBDMAGIC" or opt != b"IHAVEOPT" or not hflags & 1:
        raise OSError(errno.EPROTO, "not a fixed-newstyle NBD server")
    no_zeroes = hflags & 2
    s.sendall(struct.pack(">I", 1 | no_zeroes))
    name = export.encode()
    NBD_OPT_EXPORT_NAME = 1
    s.sendall(b"IHAVEOPT" + struct.pack(">II", NBD_OPT_EXPORT_NAME, len(name)) + name)
    size, tflags = struct.unpack(">QH", recvall(s, 10))
    if not no_zeroes:
        recvall(s, 124)
    s.settimeout(None)
    return s, size

def pat(seed, blk):
    return ((b"%s-%08d|" % (seed.encode(), blk)) * 512)[:4096]

def open_dev(dev):
    direct = 0 if stat.S_ISREG(os.stat(dev).st_mode) else os.O_DIRECT
    return os.open(dev, os.O_RDWR | direct)

mode = sys.argv[1]
if mode == "reconf":
    NBD_CMD_RECONFIGURE = 3
    NBD_ATTR_INDEX, NBD_ATTR_SOCKETS, NBD_ATTR_DEAD_CONN_TIMEOUT = 1, 7, 8
    NBD_SOCK_ITEM, NBD_SOCK_FD = 1, 1
    sk = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    sk.bind((0, 0))
    fam = nbd_family(sk)
    msg = nla(NBD_ATTR_INDEX, struct.pack("=I", int(sys.argv[2])))
    msg += nla(NBD_ATTR_DEAD_CONN_TIMEOUT, struct.pack("=Q", int(sys.argv[3])))
    if len(sys.argv) > 4:
        s, size = nbd_connect(*sys.argv[4:7])
        item = nla(NBD_SOCK_FD, struct.pack("=I", s.fileno()))
        msg += nla(NBD_ATTR_SOCKETS, nla(NBD_SOCK_ITEM, item))
    genl(sk, fam, NBD_CMD_RECONFIGURE, msg)
    sys.exit(0)
fd = open_dev(sys.argv[2])
buf = mmap.mmap(-1, 4096)
off = int(sys.argv[3])
if mode == "read1":
    t0 = time.monotonic()
    try:
        os.preadv(fd, [buf], off)
        res = "ok"
    except OSError as e:
        res = errno.errorcode.get(e.errno, str(e.errno))
    print("%s %d" % (res, (time.monotonic() - t0) * 1000))
    sys.exit(0)
count, seed = int(sys.argv[4]), sys.argv[5]
bad = 0
for blk in range(count):
    if mode == "fill":
        buf.seek(0); buf.write(pat(seed, blk))
        os.pwritev(fd, [buf], off + blk * 4096)
    elif mode == "check":
        os.preadv(fd, [buf], off + blk * 4096)
        if buf[:4096] != pat(seed, blk):
            bad += 1
if bad:
    print("%d of %d blocks differ from pattern %s" % (bad, count, seed))
sys.exit(1 if bad else 0)
EOF
}

img=$(mktemp /scratch/nbd.XXXXXX) || fail "mktemp failed"
truncate -s $SIZE "$img" || fail "truncate failed"
defer rm -f "$img"

nbd_pid=
_nbd_listening()
{
	ss -Hltn "sport = :$NBD_PORT" | grep -q .
}

# nbd_start: qemu-nbd serving $img on 127.0.0.1:$NBD_PORT, many clients
# in turn (--persistent)
nbd_start()
{
	qemu-nbd --format=raw --export-name="$NBD_EXPORT" --bind=127.0.0.1 \
		--port="$NBD_PORT" --persistent "$img" &
	nbd_pid=$!
	wait_for 20 _nbd_listening || fail "qemu-nbd is not listening on $NBD_PORT"
}

# nbd_kill: SIGKILL the server, as a crash would
nbd_kill()
{
	[ -n "$nbd_pid" ] || return 0
	kill -KILL "$nbd_pid" 2> /dev/null
	wait "$nbd_pid" 2> /dev/null
	nbd_pid=
	return 0
}
defer nbd_kill

_nbd_disconnect()
{
	nbd-client -d "$NBD_DEV" > /dev/null 2>&1
	return 0
}

_nbd_connected()
{
	[ -e "/sys/block/nbd$NBD_INDEX/pid" ]
}

nbd_start
wait_for 10 test -b "$NBD_DEV" || fail "$NBD_DEV did not appear"
nbd-client -c "$NBD_DEV" > /dev/null 2>&1 && fail "$NBD_DEV is already connected"
nbd-client 127.0.0.1 "$NBD_PORT" "$NBD_DEV" -N "$NBD_EXPORT" -b 512 \
	-t "$NBD_TIMEOUT" || fail "nbd-client failed"
defer _nbd_disconnect
wait_for 10 _nbd_connected || fail "$NBD_DEV: not connected"
expect_eq "$NBD_DEV size" "$(blockdev --getsize64 "$NBD_DEV")" $SIZE
expect_eq "$NBD_DEV timeout" "$(cat /sys/block/nbd$NBD_INDEX/queue/io_timeout)" \
	$((NBD_TIMEOUT * 1000))

bsw_add net0 backing="$NBD_DEV" direct=1
expect_eq "net0 backing_type" "$(bsw_attr net0 backing_type)" block
expect_eq "net0 capacity" "$(bsw_attr net0 capacity)" $((SIZE / 512))
dev=$(vdpa_bind_virtio net0) || exit
log "$dev over $NBD_DEV over qemu-nbd 127.0.0.1:$NBD_PORT ($img)"

# --- data integrity over NBD --------------------------------------------
fio_verify "$dev" 32M --bs=4k --iodepth=16
fio_verify "$dev" 32M --offset=64M --bsrange=4k-256k --iodepth=8
expect_eq "net0 errors after fio verify" "$(bsw_stat net0 errors)" 0
note "fio verify: $(fio_summary "$RESULTS_DIR/verify-$(basename "$dev").json")"

# a pattern before any failure, checked after each recovery
nbdpy fill "$dev" $((200 * MB)) 256 before || fail "cannot write the pattern"
nbdpy check "$img" $((200 * MB)) 256 before ||
	fail "the pattern did not reach the server's file"

# --- the server killed with fio writing ---------------------------------
# dead_conn_timeout 0 (nbd-client's netlink mode): no wait for a new socket
errs0=$(bsw_stat net0 errors)
fio --name=killed --filename="$dev" --size=128M --rw=randwrite --bs=4k \
	--iodepth=16 --ioengine=io_uring --direct=1 --time_based --runtime=120 \
	--output-format=json --output="$RESULTS_DIR/killed.json" --eta=never &
fio_pid=$!
_fio_busy()
{
	[ "$(bsw_stat net0 write_bytes)" -gt "$w0" ]
}
w0=$(bsw_stat net0 write_bytes)
wait_for 30 _fio_busy || fail "fio is not writing"
sleep 1
[ "$(bsw_stat net0 inflight)" -gt 0 ] || log "note: no request in flight at the kill"
t0=$(now_ms)
nbd_kill
_fio_done()
{
	! kill -0 "$fio_pid" 2> /dev/null
}
# fio_ended TAG: wait (at most EIO_BOUND s) for the fio started as $fio_pid,
# with --output=$RESULTS_DIR/TAG.json, to end after the server was killed at
# t0; sets fio_rc, fio_err (its error code) and ms (since the kill).
fio_ended()
{
	if ! wait_for "$EIO_BOUND" _fio_done; then
		kill -KILL "$fio_pid" 2> /dev/null
		vdpa_dev_wedged net0
		fail "fio still running ${EIO_BOUND} s after the server was killed (hang)"
	fi
	fio_rc=0
	wait "$fio_pid" || fio_rc=$?
	ms=$(($(now_ms) - t0))
	sed -i -n '/^{/,$p' "$RESULTS_DIR/$1.json"
	fio_err=$(jq '.jobs[0].error' "$RESULTS_DIR/$1.json") ||
		fail "fio: unreadable JSON"
}
fio_ended killed
note "server killed mid-write: fio exited $fio_rc with error=$fio_err after $ms ms"
expect_eq "fio error after the kill" "$fio_err" 5
[ "$fio_rc" != 0 ] || fail "fio exited 0 after the server was killed"
wait_for 10 bsw_stat_is net0 inflight = 0 ||
	fail "requests still in flight: $(bsw_stat net0 inflight)"
errs1=$(bsw_stat net0 errors)
# fio stops at its first error: at most its queue depth (16) failed
if [ "$errs1" -le "$errs0" ] || [ $((errs1 - errs0)) -gt 16 ]; then
	fail "$((errs1 - errs0)) errors counted after the kill, expected 1 to 16"
fi
note "errors counted: $((errs1 - errs0)), inflight $(bsw_stat net0 inflight)"

# the connection is dead: a new request fails at once, one error each
read -r r ms < <(nbdpy read1 "$dev" 0) || fail "read1 failed to run"
note "4 KiB read with the server down: $r after $ms ms"
expect_eq "read with the server down" "$r" EIO
[ "$ms" -lt $((NBD_TIMEOUT * 1000)) ] ||
	fail "a read on the dead connection took $ms ms, not failed at once"
expect_eq "errors after one failed read" "$(bsw_stat net0 errors)" $((errs1 + 1))
t0=$(now_ms)
dd_out=$(dd if=/dev/zero of="$dev" bs=4k count=1 seek=10 oflag=direct 2>&1) &&
	fail "dd write with the server down succeeded"
ms=$(($(now_ms) - t0))
note "dd write with the server down: '$(printf '%s' "$dd_out" | head -n 1)' after $ms ms (dd's start included)"
case $dd_out in *"Input/output error"*) ;; *) fail "dd: not EIO: $dd_out" ;; esac
expect_eq "errors after one failed write" "$(bsw_stat net0 errors)" $((errs1 + 2))
expect_eq "net0 capacity with the server down" "$(bsw_attr net0 capacity)" $((SIZE / 512))

# --- the server back, a new socket for nbd0 -----------------------------
nbd_start
t0=$(now_ms)
nbdpy reconf "$NBD_INDEX" 0 127.0.0.1 "$NBD_PORT" "$NBD_EXPORT" ||
	fail "NBD_CMD_RECONFIGURE with a new socket failed"
note "reconnected (NBD_CMD_RECONFIGURE) in $(($(now_ms) - t0)) ms (python's start included)"
errs2=$(bsw_stat net0 errors)
read -r r ms < <(nbdpy read1 "$dev" 0) || fail "read1 failed to run"
expect_eq "read after the reconnection" "$r" ok
nbdpy check "$dev" $((200 * MB)) 256 before ||
	fail "the pattern written before the failure did not read back"
nbdpy fill "$dev" $((220 * MB)) 256 after || fail "write after the reconnection failed"
nbdpy check "$img" $((220 * MB)) 256 after ||
	fail "a write after the reconnection did not reach the server"
fio_verify "$dev" 16M --offset=128M
expect_eq "errors after the recovery" "$(bsw_stat net0 errors)" "$errs2"
note "after the restart: same vdpa device, pattern intact, fio verify passed"

# --- a dead-connection timeout rides over a restart ---------------------
DEAD=30
nbdpy reconf "$NBD_INDEX" "$DEAD" || fail "cannot set dead_conn_timeout"
errs3=$(bsw_stat net0 errors)
fio --name=persist --filename="$dev" --size=16M --offset=160M --rw=randwrite \
	--bs=4k --iodepth=16 --ioengine=io_uring --direct=1 --verify=crc32c \
	--do_verify=1 --verify_fatal=1 --rate_iops=200 \
	--output-format=json --output="$RESULTS_DIR/persist.json" --eta=never &
fio_pid=$!
w0=$(bsw_stat net0 write_bytes)
wait_for 30 _fio_busy || fail "fio is not writing"
sleep 1
t0=$(now_ms)
nbd_kill
sleep 2
nbd_start
nbdpy reconf "$NBD_INDEX" "$DEAD" 127.0.0.1 "$NBD_PORT" "$NBD_EXPORT" ||
	fail "reconnection within dead_conn_timeout failed"
note "server down for $(($(now_ms) - t0)) ms with dead_conn_timeout=$DEAD s"
if ! wait_for 300 _fio_done; then
	kill -KILL "$fio_pid" 2> /dev/null
	vdpa_dev_wedged net0
	fail "fio did not finish after the reconnection (hang)"
fi
fio_rc=0
wait "$fio_pid" || fio_rc=$?
ms=$(($(now_ms) - t0))
sed -i -n '/^{/,$p' "$RESULTS_DIR/persist.json"
note "fio verify across the restart: exit $fio_rc, error=$(jq '.jobs[0].error' "$RESULTS_DIR/persist.json"), done $ms ms after the kill"
expect_eq "fio across the restart" "$fio_rc" 0
expect_eq "fio error across the restart" "$(jq '.jobs[0].error' "$RESULTS_DIR/persist.json")" 0
expect_eq "errors across the restart" "$(bsw_stat net0 errors)" "$errs3"
nbdpy check "$dev" $((200 * MB)) 256 before ||
	fail "the first pattern did not survive the second restart"

# --- a dead-connection timeout, and the server never back ---------------
DEAD=10
nbdpy reconf "$NBD_INDEX" "$DEAD" || fail "cannot set dead_conn_timeout"
errs4=$(bsw_stat net0 errors)
fio --name=gone --filename="$dev" --size=128M --rw=randwrite --bs=4k \
	--iodepth=16 --ioengine=io_uring --direct=1 --time_based --runtime=120 \
	--output-format=json --output="$RESULTS_DIR/gone.json" --eta=never &
fio_pid=$!
w0=$(bsw_stat net0 write_bytes)
wait_for 30 _fio_busy || fail "fio is not writing"
sleep 1
t0=$(now_ms)
nbd_kill
fio_ended gone
note "server gone for good, dead_conn_timeout=$DEAD s: fio exited $fio_rc with error=$fio_err after $ms ms"
expect_eq "fio error, server gone" "$fio_err" 5
# nothing fails before the dead-connection timeout has run out
[ "$ms" -ge $((DEAD * 1000)) ] ||
	fail "EIO after $ms ms, before the dead-connection timeout ($DEAD s)"
wait_for 10 bsw_stat_is net0 inflight = 0 ||
	fail "requests still in flight: $(bsw_stat net0 inflight)"
[ "$(bsw_stat net0 errors)" -gt "$errs4" ] || fail "no error counted, server gone"

# the device goes away with its backing dead
vdpa_unbind net0
vdpa_dev_del net0
cat "$report" >&2
exit 0
