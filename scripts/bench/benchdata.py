# SPDX-License-Identifier: GPL-2.0
"""The runs of make bench and make bench-quick, and their medians.

A run is one job of one system on one backing in one repetition. The
guest leaves, per system and repetition (TAG = BACKING-SYSTEM-REP):
TAG.json (fio --output-format=json over bench/jobs/matrix.fio), or
TAG-JOB.txt (one vdpa_bench line per job), and TAG.snap (the lines of
scripts/bench/hook). Values are kept as the strings of runs.tsv, so that
a median is one of the measured values, printed as it was measured.
"""

import json
import os
import re

COLUMNS = ('rep', 'backing', 'system', 'job', 'iops', 'lat_mean_us',
           'lat_p99_us', 'cpu_pct', 'dev_cpu_pct', 'ctxt_per_io',
           'intr_per_io', 'ipi_per_io', 'spills')
VALUES = COLUMNS[4:]
BACKINGS = ('ext4', 'nullb', 'vdisk', 'mem', 'tmpfs')
NONE = '-'

TAG_RE = re.compile(r'^(?P<backing>[a-z0-9]+)-(?P<system>.+)-(?P<rep>[0-9]+)$')
VB_RE = re.compile(r'^(?P<tag>.+-[0-9]+)-(?P<job>(rand)?(read|write)-.+)\.txt$')
VB_LINE = re.compile(r' iops=([0-9.]+) .*lat_mean_us=([0-9.]+) .*'
                     r'lat_p99_us=([0-9.]+)')


def num(s):
    """The float of a value string, None for "-" or nothing."""
    if s is None or s == NONE or s == '':
        return None
    return float(s)


def fmt(x):
    """A computed value as jq prints it: the shortest exact form."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def median(values):
    """The lower median of the values that are numbers (strings), or "-".

    The lower one of the two middle values for an even count: a value
    that was measured, never a mean of two.
    """
    v = sorted((s for s in values if num(s) is not None), key=float)
    if not v:
        return NONE
    return v[(len(v) - 1) // 2]


def ratio(a, b):
    """a / b to 2 decimals, "n/a" without both or with b = 0."""
    a, b = num(a), num(b)
    if a is None or b is None or b == 0:
        return 'n/a'
    return '%.2f' % (a / b)


def has_device_threads(system):
    """Whether the system's device has its own threads to account."""
    return system.startswith(('ours', 'vb-', 'vduse', 'sim'))


def parse_tag(tag):
    m = TAG_RE.match(tag)
    if not m or m.group('backing') not in BACKINGS:
        return None
    return m.group('rep'), m.group('backing'), m.group('system')


def load_fio_json(path):
    """fio's JSON; fio writes exec_prerun notes before it in the file."""
    with open(path) as f:
        text = f.read()
    start = re.search(r'^\{', text, re.M)
    if not start:
        raise ValueError('no JSON')
    return json.loads(text[start.start():])


def fio_results(doc):
    """(job, iops, mean latency us, p99 completion latency us) per job
    that ended without error, as strings."""
    out = []
    for j in doc.get('jobs', []):
        if j.get('error', 0) != 0:
            continue
        rd, wr = j['read'], j['write']
        d = rd if rd['iops'] > 0 else wr
        p99 = d.get('clat_ns', {}).get('percentile', {}).get('99.000000', 0)
        out.append((j['jobname'], fmt(rd['iops'] + wr['iops']),
                    fmt(d['lat_ns']['mean'] / 1000), fmt(p99 / 1000)))
    return out


def load_snaps(path):
    """{job: (first pre, last post)} of a hook file, each a list of ints:
    busy, total, dev, ctxt, intr, ipi, spills (None in a file from before
    the hook counted spills)."""
    pre, post = {}, {}
    try:
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) not in (8, 9):
                    continue
                vals = [int(x) for x in w[2:]] + [None] * (9 - len(w))
                if w[1] == 'pre':
                    pre.setdefault(w[0], vals)
                elif w[1] == 'post':
                    post[w[0]] = vals
    except FileNotFoundError:
        pass
    return {j: (pre[j], post[j]) for j in pre if j in post}


def cpu_of(snap, has_dev, iops, runtime):
    """cpu_pct dev_cpu_pct ctxt_per_io intr_per_io ipi_per_io spills of a
    job from its (pre, post) snapshots; spills is how many times the
    device's queues moved to another CPU's worker during the job."""
    if snap is None:
        return [NONE] * 6
    (b0, t0, d0, c0, i0, x0, s0), (b1, t1, d1, c1, i1, x1, s1) = snap
    t = t1 - t0
    if t <= 0:
        return [NONE] * 6
    out = ['%.1f' % (100 * (b1 - b0) / t),
           '%.1f' % (100 * (d1 - d0) / t) if has_dev else NONE]
    n = (num(iops) or 0) * runtime
    if n > 0:
        out += ['%.2f' % ((c1 - c0) / n), '%.2f' % ((i1 - i0) / n),
                '%.2f' % ((x1 - x0) / n)]
    else:
        out += [NONE] * 3
    out.append(str(s1 - s0) if None not in (s0, s1) else NONE)
    return out


def env_runtime(directory):
    """BENCH_RUNTIME as the guest recorded it in env.txt, or None."""
    try:
        with open(os.path.join(directory, 'env.txt')) as f:
            m = re.search(r'runtime ([0-9.]+)s', f.read())
    except FileNotFoundError:
        return None
    return float(m.group(1)) if m else None


def load_dir(directory, warn=None):
    """Every run of a results directory, as dicts of COLUMNS."""
    runs = []
    runtime = env_runtime(directory)
    names = sorted(os.listdir(directory))
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith('.json'):
            tag = name[:-5]
            key = parse_tag(tag)
            if key is None:
                continue
            try:
                doc = load_fio_json(path)
            except ValueError as e:  # json's errors are ValueErrors
                if warn:
                    warn('%s: %s' % (name, e))
                continue
            rt = num(doc.get('global options', {}).get('runtime')) or runtime
            results = fio_results(doc)
        else:
            m = VB_RE.match(name)
            key = parse_tag(m.group('tag')) if m else None
            if key is None:
                continue
            tag = m.group('tag')
            with open(path) as f:
                v = VB_LINE.search(f.read())
            if not v:
                if warn:
                    warn('%s: no result' % name)
                continue
            rt = runtime
            results = [(m.group('job'),) + v.groups()]
        snaps = load_snaps(os.path.join(directory, tag + '.snap'))
        rep, backing, system = key
        for job, iops, lat, p99 in results:
            cpu = cpu_of(snaps.get(job), has_device_threads(system), iops,
                         rt or 0)
            runs.append(dict(zip(COLUMNS, [rep, backing, system, job, iops,
                                           lat, p99] + cpu)))
    runs.sort(key=lambda r: (int(r['rep']), backing_order(r['backing'])))
    return runs


def backing_order(b):
    return BACKINGS.index(b) if b in BACKINGS else len(BACKINGS)


def read_tsv(path):
    with open(path) as f:
        head = f.readline().rstrip('\n').split('\t')
        runs = []
        for line in f:
            cells = line.rstrip('\n').split('\t')
            cells += [NONE] * (len(head) - len(cells))
            r = dict(zip(head, cells))
            for c in COLUMNS:
                r.setdefault(c, NONE)
            runs.append(r)
    return runs


def write_tsv(runs, path, columns=COLUMNS):
    with open(path, 'w') as f:
        f.write('\t'.join(columns) + '\n')
        for r in runs:
            f.write('\t'.join(r[c] for c in columns) + '\n')


def medians(runs, keys=('backing', 'system', 'job'), values=VALUES):
    """{(key values): {column: median, 'n': repetitions}} of the runs
    that share the columns @keys, for each column of @values."""
    cells = {}
    for r in runs:
        cells.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = {}
    for key, rs in cells.items():
        m = {c: median([r[c] for r in rs]) for c in values}
        m['n'] = len(rs)
        out[key] = m
    return out


def read(directory, name):
    """The text of a result file, or None if the run left none."""
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read()
    except FileNotFoundError:
        return None


def kv_lines(text):
    """{key: value} of "key value..." lines."""
    out = {}
    for line in (text or '').splitlines():
        w = line.split(None, 1)
        if w:
            out[w[0]] = w[1] if len(w) > 1 else ''
    return out


def job_key(job):
    """Order of jobs: random read, random write, read, write; then job
    count, then queue depth (names as in bench/jobs/matrix.fio)."""
    rw = job.split('-')[0]
    order = ('randread', 'randwrite', 'read', 'write')
    jobs = re.search(r'-([0-9]+)j$', job)
    qd = re.search(r'-qd([0-9]+)', job)
    return (order.index(rw) if rw in order else len(order),
            int(jobs.group(1)) if jobs else 0,
            int(qd.group(1)) if qd else 0, job)
