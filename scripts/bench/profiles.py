# SPDX-License-Identifier: GPL-2.0
"""Where the CPU time of a profiled job went (make bench BENCH_PROFILE=HZ).

Reads what scripts/bench/profile dump wrote (perf report --no-children
--sort comm,dso,sym -t ';' --stdio) and groups the samples by thread and
by code, in % of all CPUs and in microseconds of CPU per I/O.
"""

import re


def thread(comm):
    if comm == 'swapper':
        return 'idle'
    if re.match(r'^(fio|vdpa_bench)$', comm):
        return 'app (%s)' % comm
    if comm.startswith('vbs-'):
        return 'our worker'
    if comm.startswith('qemu-storage'):
        return 'vduse daemon'
    if comm.startswith('vDPA sim'):
        return 'vdpa_sim worker'
    if re.match(r'^(perf|bash|sh|sleep|cat|awk|timeout|head)$', comm):
        return 'bench tools'
    return 'other threads'


# perf finds no .ko of a module loaded from /repo and reports its
# symbols as [kernel.kallsyms]: kernel code is grouped by symbol name.
CODE = (
    (r'^(virtblk|virtqueue|vring_|virtio|vp_|vdpa)', 'virtio_blk, virtio_ring, vdpa'),
    (r'^vduse', 'vduse'),
    (r'^(null_|nullb)', 'null_blk'),
    (r'ext4|jbd2', 'ext4'),
    (r'io_uring|^io_', 'io_uring'),
    (r'^(__)?(blk|bio|submit_bio|bdev|iomap|dio|elv|sbitmap)', 'block, iomap'),
    (r'(memcpy|memmove|memset|copy_|clear_page|_copy)', 'copies'),
    (r'spin_unlock_irq|irqrestore|irq_enable|irq_restore', 'irq-enable points'),
    (r'sched|switch|wake|enqueue|dequeue|pick_next|update_(curr|load)|ttwu',
     'scheduler'),
    (r'irq|apic|sysvec|softirq|ipi|hrtimer|tick|perf', 'interrupts, timers, perf'),
    (r'^(__)?(x64_)?sys_|entry_SYSCALL|syscall', 'syscall entry'),
)


def code(dso, sym):
    if re.search(r'(idle|halt|mwait)', sym):
        return 'idle loop'
    if not dso.startswith('['):
        return 'user space'
    if re.search(r'poll', sym) and \
       re.match(r'^(virtblk|blk|bio|io_|iocb|nvme|null)', sym):
        return 'polling for completions'
    if sym.startswith('vbs_'):
        return 'vdpa_blk_sw'
    if re.search(r'vringh|iotlb', sym):
        return 'vringh, vhost iotlb'
    for pattern, name in CODE:
        if re.search(pattern, sym):
            return name
    if dso != '[kernel.kallsyms]':
        return dso
    return 'other kernel'


def rows(lines):
    """(pct, comm, dso, symbol) of each sample line of perf report lines
    (--sort comm,dso,sym -t ';'), the symbol without perf's [k]/[.]."""
    for line in lines:
        if line.startswith('#') or not line.strip():
            continue
        f = [x.strip() for x in line.rstrip('\n').split(';')]
        if len(f) < 4:
            continue
        try:
            pct = float(f[0].rstrip('%'))
        except ValueError:
            continue
        yield pct, f[1], f[2], re.sub(r'^\[[a-zA-Z.]\] ', '', f[3])


def classify(lines):
    """(busy %, {(thread, code): %}, {(thread, symbol dso): %}) of perf
    report lines."""
    busy = 0.0
    by_code, by_sym = {}, {}
    for pct, comm, dso, sym in rows(lines):
        t = thread(comm)
        c = 'idle loop' if t == 'idle' else code(dso, sym)
        by_code[(t, c)] = by_code.get((t, c), 0.0) + pct
        if t != 'idle' and c != 'idle loop':
            k = (t, '%s %s' % (sym, dso))
            by_sym[k] = by_sym.get(k, 0.0) + pct
            busy += pct
    return busy, by_code, by_sym


def _ranked(d):
    return sorted(d.items(), key=lambda kv: (-round(kv[1], 3), kv[0]))


def markdown(lines, title, iops, cpus):
    """The section of one profiled job."""
    busy, by_code, by_sym = classify(lines)

    def us(p):
        if iops <= 0:
            return '-'
        return '%.1f' % (p / 100 * cpus * 1e6 / iops)

    out = ['### %s: %.0f IOPS' % (title, iops), '',
           'CPU time of both vCPUs (%d), by thread and code, in %% and in us '
           'per I/O; %.1f%% busy: %s us of CPU per I/O busy, %s in all.'
           % (cpus, busy, us(busy), us(100)), '']
    if by_code:
        out += ['| thread | code | % of CPU | us per I/O |', '|---|---|---|---|']
        out += ['| %s | %s | %.1f | %s |' % (t, c, p, us(p))
                for (t, c), p in _ranked(by_code) if round(p, 3) >= 0.5]
    if by_sym:
        out += ['', 'Hottest symbols (self time, busy threads):', '',
                '| thread | symbol | % of CPU | us per I/O |', '|---|---|---|---|']
        out += ['| %s | %s | %.1f | %s |' % (t, s, p, us(p))
                for (t, s), p in _ranked(by_sym)[:15]]
    out.append('')
    return '\n'.join(out) + '\n'
