# SPDX-License-Identifier: GPL-2.0
"""Unit tests of make bench-vm's report (stdlib only, no VM):
python3 -m unittest discover -s scripts/bench"""

import importlib.machinery
import importlib.util
import json
import os
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def load_report():
    loader = importlib.machinery.SourceFileLoader(
        'vm_report', os.path.join(HERE, 'vm-report'))
    spec = importlib.util.spec_from_loader('vm_report', loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


vr = load_report()


def side(iops, ios=0, io_bytes=0, mean_ns=0, p99_ns=0):
    return {'iops': iops, 'total_ios': ios, 'io_bytes': io_bytes,
            'lat_ns': {'mean': mean_ns + 500000},
            'clat_ns': {'mean': mean_ns,
                        'percentile': {'99.000000': p99_ns}}}


def fio_doc(scale):
    """fio's JSON for the five jobs; IOPS scaled by scale."""
    jobs = []
    for i, name in enumerate(vr.JOBS):
        iops = int(100 * (i + 1) * scale)
        if name.startswith('randwrite'):
            rd = side(50, ios=iops * 10, io_bytes=iops * 10 * 4096)
            wr = side(iops, ios=iops * 10, io_bytes=iops * 10 * 4096,
                      mean_ns=2000000, p99_ns=5000000)
        else:
            rd = side(iops, ios=iops * 10, mean_ns=1000000, p99_ns=3000000)
            wr = side(0)
        jobs.append({'jobname': name, 'error': 0, 'read': rd, 'write': wr})
    return json.dumps({'jobs': jobs}, indent=1)


def stat(busy, idle):
    # cpu user nice system idle iowait irq softirq steal guest guest_nice
    return 'cpu %d 0 0 %d 0 0 0 0 0 0' % (busy, idle)


class VmReport(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        self.put('env.txt', 'reps 3\nruntime 10\nuser_hz 100\n')

    def tearDown(self):
        self.tmp.cleanup()

    def put(self, name, text):
        with open(os.path.join(self.d, name), 'w') as f:
            f.write(text)

    def cell(self, rep, config, scale, busy=100):
        tag = '%d-%s' % (rep, config)
        self.put(tag + '.json', 'fio: a note before the JSON\n' +
                 fio_doc(scale))
        marks = []
        for name in vr.JOBS:
            marks.append('begin %s 1.0 %s' % (name, stat(1000, 1000)))
            marks.append('end %s 2.0 %s' % (name, stat(1000 + busy, 1100)))
        self.put(tag + '.marks', '\n'.join(marks) + '\n')
        self.put(tag + '.cmd', 'qemu-system-x86_64 -the %s line\n' % config)

    def cells(self, rows):
        self.put('cells.tsv', 'rep\tconfig\tstatus\twall_s\n' + ''.join(
            '%d\t%s\t%s\t100.0\n' % r for r in rows))

    def test_marks(self):
        m = vr.load_marks('begin j 1.5 %s\nend j 2.5 %s\nbegin k 1 %s\n'
                          'garbage\n' % (stat(10, 5), stat(30, 25),
                                         stat(1, 1)))
        self.assertEqual(m, {'j': ((10, 15), (30, 55))})

    def test_runs_cpu_and_verify(self):
        self.cells([(1, 'pa', 'result=ok,fio_status=0,fio_ms=1')])
        self.cell(1, 'pa', 1)
        runs = vr.load_runs(self.d)
        self.assertEqual([r['job'] for r in runs], list(vr.JOBS))
        rr1 = runs[0]
        self.assertEqual(rr1['iops'], '100')
        self.assertEqual(rr1['clat_mean_us'], '1000.0')
        self.assertEqual(rr1['lat_mean_us'], '1500.0')
        self.assertEqual(rr1['clat_p99_us'], '3000.0')
        self.assertEqual(rr1['ios'], '1000')
        # 100 busy ticks of 10 ms over 1000 I/Os; 100 busy of 200 ticks
        self.assertEqual(rr1['l1_cpu_us_per_io'], '1000.0')
        self.assertEqual(rr1['l1_busy_pct'], '50.0')
        self.assertEqual(rr1['verified_bytes'], vr.NONE)
        rw1 = [r for r in runs if r['job'] == 'randwrite-4k-qd1'][0]
        # the write phase's IOPS, the verify reads in the I/O count
        self.assertEqual(rw1['iops'], '300')
        self.assertEqual(rw1['clat_mean_us'], '2000.0')
        self.assertEqual(rw1['ios'], '6000')
        self.assertEqual(rw1['verified_bytes'], str(3000 * 4096))

    def test_unverified_write_warns(self):
        self.cells([(1, 'pa', 'result=ok,fio_status=0,fio_ms=1')])
        self.cell(1, 'pa', 1)
        warnings = []
        vr.load_runs(self.d, warnings.append)
        self.assertEqual(warnings, [])
        doc = json.loads(fio_doc(1))
        doc['jobs'][2]['read']['io_bytes'] = 0
        self.put('1-pa.json', json.dumps(doc))
        vr.load_runs(self.d, warnings.append)
        self.assertEqual(warnings, ['1-pa randwrite-4k-qd1: wrote %d bytes, '
                                    'verified 0' % (3000 * 4096)])

    def test_failed_cell_left_out(self):
        self.cells([(1, 'pa', 'result=ok,fio_status=0,fio_ms=1'),
                    (1, 'vduse', 'qemu-status=1,no,result')])
        self.cell(1, 'pa', 1)
        self.put('1-vduse.json', '')
        warnings = []
        runs = vr.load_runs(self.d, warnings.append)
        self.assertEqual({r['config'] for r in runs}, {'pa'})
        self.assertEqual(len(warnings), 1)
        self.assertIn('1-vduse', warnings[0])
        self.put('1-vduse.qemu', 'qemu: vhost_set_vring_num failed\n')
        md = vr.markdown(self.d, 'cmd', runs, vr.medians(runs),
                         vr.load_cells(self.d), warnings)
        self.assertIn('- rep 1 vduse: qemu-status=1,no,result (100.0 s); '
                      'QEMU said: `qemu: vhost_set_vring_num failed`', md)

    def test_ring_size_checked(self):
        self.cells([(1, 'pa', 'result=ok,fio_status=0,fio_ms=1')])
        self.cell(1, 'pa', 1)
        runs = vr.load_runs(self.d)

        def md():
            return vr.markdown(self.d, 'cmd', runs, vr.medians(runs),
                               vr.load_cells(self.d), [])
        self.put('env.txt', 'reps 1\nuser_hz 100\nqueue_size 1024\n')
        self.assertIn('1 queue of 1024 entries in every configuration '
                      '(not checked against QEMU;', md())
        self.put('env.txt', 'reps 1\nuser_hz 100\nqueue_size 1024\n'
                 'guest_queue_size 1024\n')
        self.assertIn('1 queue of 1024 entries in every configuration '
                      '(asked for that size, QEMU gave the guest '
                      '1024-entry rings, checked over QMP', md())

    def test_load_note(self):
        quiet = 'host: 2 CPUs, load average at start 0.3; ' \
            'other QEMU processes at start: 0'
        self.assertEqual('', vr.load_note(quiet))
        loaded = quiet.replace('start: 0', 'start: 2')
        self.assertIn('Other QEMU processes', vr.load_note(loaded))
        self.assertEqual('', vr.load_note('host: 2 CPUs'))

    def test_medians_ratios_targets(self):
        rows = []
        # ours: 3, 1, 2 x the base IOPS; qemu-uring: 1; vhost-user 2;
        # vduse 1.5 x: lower medians 2, 1, 2, 1.5
        for rep, scales in enumerate(((3, 1, 2, 1), (1, 1, 2, 2),
                                      (2, 1, 2, 1.5)), 1):
            for config, s in zip(('pa', 'qemu-uring', 'vhost-user', 'vduse'),
                                 scales):
                rows.append((rep, config, 'result=ok,fio_status=0,fio_ms=1'))
                self.cell(rep, config, s)
        self.cells(rows)
        med = vr.medians(vr.load_runs(self.d))
        self.assertEqual(med[('pa', 'randread-4k-qd1')]['iops'], '200')
        self.assertEqual(med[('pa', 'randread-4k-qd1')]['n'], 3)
        self.assertEqual(med[('vduse', 'randread-4k-qd1')]['iops'], '150')
        t = {(p, j, lab): (r, met)
             for p, j, lab, r, met in vr.target_rows(med)}
        self.assertEqual(t[('qemu-uring', 'randread-4k-qd1', '>= 1.5 (QD1)')],
                         ('2.00', True))
        self.assertEqual(t[('vhost-user', 'randwrite-4k-qd16', '>= 1.5')],
                         ('1.00', False))
        self.assertEqual(t[('vduse', 'seqread-128k-qd16', '>= 2')],
                         ('1.33', False))
        # QD1 targets only at QD1, QD16 only at QD16
        self.assertNotIn(('qemu-uring', 'randread-4k-qd16', '>= 1.5 (QD1)'), t)
        self.assertIn(('qemu-uring', 'seqread-128k-qd16', '>= 1.2 (QD16)'), t)
        self.assertEqual(len(t), 2 + 3 + 5 + 5)

    def test_missing_peer_has_no_data(self):
        self.cells([(1, 'pa', 'result=ok,fio_status=0,fio_ms=1')])
        self.cell(1, 'pa', 1)
        med = vr.medians(vr.load_runs(self.d))
        self.assertTrue(all(met is None for *_, met in vr.target_rows(med)))

    def test_main_writes_everything(self):
        rows = []
        for config in ('pa', 'qemu-uring'):
            rows.append((1, config, 'result=ok,fio_status=0,fio_ms=1'))
            self.cell(1, config, 2 if config == 'pa' else 1)
        self.cells(rows)
        self.put('fio.cmd', '/usr/bin/fio --the-fio-line\n')
        self.put('host.txt', 'host: 2 CPUs, load average at start 3.1\n')
        prefix = os.path.join(self.d, 'out')
        with open(os.devnull, 'w') as null:
            import contextlib
            with contextlib.redirect_stdout(null):
                self.assertEqual(vr.main(['vm-report', self.d, prefix,
                                          'make bench-vm']), 0)
        with open(prefix + '.md') as f:
            md = f.read()
        self.assertIn('| qemu-uring | randread-4k-qd1 | >= 1.5 (QD1) | 2.00 '
                      '| met |', md)
        self.assertIn('| vduse | randread-4k-qd1 | >= 2 | n/a | no data |', md)
        self.assertIn('/usr/bin/fio --the-fio-line', md)
        self.assertIn('qemu-system-x86_64 -the qemu-uring line', md)
        self.assertIn('load average at start 3.1', md)
        self.assertIn('nested TCG', md)
        with open(prefix + '.tsv') as f:
            self.assertEqual(len(f.read().splitlines()), 1 + 2 * 5)
        with open(prefix + '.svg') as f:
            self.assertIn('<svg', f.read())

    def test_profile_section(self):
        self.put('env.txt', 'reps 1\nruntime 10\nuser_hz 100\nl1_cpus 2\n')
        self.cells([(1, 'pa', 'result=ok,fio_status=0,fio_ms=1')])
        self.cell(1, 'pa', 1)
        os.mkdir(os.path.join(self.d, 'prof'))
        self.put('prof/1-pa-randread-4k-qd1.perf.txt', '\n'.join([
            '# Samples: 1K of event \'cpu-clock\'',
            '# Event count (approx.): 2000000000', '#',
            '    50.00%;swapper;[kernel.kallsyms];[k] default_idle',
            '    20.00%;CPU 0/TCG;[unknown];[.] 0x00007f1234',
            '    10.00%;CPU 0/TCG;[JIT] tid 257;[.] 0x00007f12345678',
            '    10.00%;vbs_pool/0;[kernel.kallsyms];[k] vbs_vq_serve',
            '     6.00%;vhost-123;[kernel.kallsyms];[k] handle_vq_kick',
            '     2.00%;qemu-system-x86;qemu-system-x86_64;[.] 0x1234',
            '     2.00%;:4242;qemu-system-x86_64;[.] 0x1234', '']))
        self.put('prof/1-pa-randread-4k-qd1.qstats',
                 'begin blk_sw_q0 requests 10 notifies 10 interrupts 9 polls 0\n'
                 'begin blk_sw_q1 requests 0 notifies 0 interrupts 0 polls 0\n'
                 'end blk_sw_q0 requests 1010 notifies 1010 interrupts 1009 '
                 'polls 2\n'
                 'end blk_sw_q1 requests 0 notifies 0 interrupts 0 polls 0\n')
        self.put('prof/1-pa-randread-4k-qd1.comms',
                 '1\tinit\n4242\tqemu-system-x86\n')
        runs = vr.load_runs(self.d)
        md = vr.markdown(self.d, 'cmd', runs, vr.medians(runs),
                         vr.load_cells(self.d), [])
        # 1 s between the markers, 1000 I/Os, 2 CPUs: 1% is 20 us per I/O
        self.assertIn('| L2 vCPU (QEMU TCG thread) | 600 (30.0%) |', md)
        self.assertIn('| our pool thread (vbs_pool/N) | 200 (10.0%) |', md)
        self.assertIn('| vhost worker (vhost-PID) | 120 (6.0%) |', md)
        self.assertIn('| idle | 1000 (50.0%) |', md)
        self.assertIn('| L2 vCPU (QEMU TCG thread) | user: TCG generated '
                      'code (no object) | 600 (30.0%) |', md)
        self.assertIn('| QEMU main loop | 0x1234 qemu-system-x86_64 | '
                      '80 (4.0%) |', md)
        self.assertIn('perf sampled 2.0 s of CPU time (1.0 s of 2 CPUs); '
                      'ours\' queues: 1000 requests, 1.00 kicks and 1.00 '
                      'interrupts per request, 2 found by polling', md)

    def test_l1_thread(self):
        for comm, group in (('CPU 0/TCG', 'L2 vCPU (QEMU TCG thread)'),
                            ('qemu-system-x86', 'QEMU main loop'),
                            ('IO io0', 'QEMU iothread'),
                            ('vhost-4711', 'vhost worker (vhost-PID)'),
                            ('vbs-bv/0', 'our device thread (vbs-NAME/N)'),
                            ('kworker/0:1H', 'kworkers'),
                            ('mystery', 'other (mystery)')):
            self.assertEqual(vr.l1_thread(comm), group)


if __name__ == '__main__':
    unittest.main()
