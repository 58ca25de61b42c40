# SPDX-License-Identifier: GPL-2.0
"""Unit tests of make bench-scale's report (stdlib only, no VM):
python3 -m unittest discover -s scripts/bench"""

import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def load_report():
    loader = importlib.machinery.SourceFileLoader(
        'scale_report', os.path.join(HERE, 'scale-report'))
    spec = importlib.util.spec_from_loader('scale_report', loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


sr = load_report()


def meminfo(avail, slab, sunreclaim):
    return ('MemTotal:        4000000 kB\nMemFree:         %d kB\n'
            'MemAvailable:    %d kB\nSlab:            %d kB\n'
            'SUnreclaim:      %d kB\n' % (avail, avail, slab, sunreclaim))


def fio(iops_per_job):
    return json.dumps({'jobs': [
        {'jobname': 'd%d' % i, 'error': 0, 'read': {'iops': x},
         'write': {'iops': 0}} for i, x in enumerate(iops_per_job)]})


def fio_verify(jobs):
    """fio's JSON of a write + verify run: (name, error, written, read)
    per job."""
    return json.dumps({'fio version': 'fio-3.39', 'jobs': [
        {'jobname': name, 'error': err, 'read': {'iops': 100, 'io_bytes': rd},
         'write': {'iops': 100, 'io_bytes': wr}}
        for name, err, wr, rd in jobs]})


MB4 = 4 << 20


class ScaleReport(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def put(self, name, text):
        with open(os.path.join(self.d, name), 'w') as f:
            f.write(text)

    def cpu(self, name, busy, idle):
        # user nice system idle iowait irq softirq steal
        self.put(name, 'cpu  100 0 100 1000 0 0 0 0 0 0\n'
                 'cpu  %d 0 100 %d 0 0 0 0 0 0\n' % (100 + busy, 1000 + idle))

    def tasks(self, name, ticks):
        # tid (comm) state ppid ... utime (14th field) stime (15th)
        self.put(name, ''.join(
            '%d (%s) S 2 0 0 0 -1 69238880 0 0 0 0 %d %d 0 0 20 0 1 0\n' %
            (tid, comm, t, t) for tid, comm, t in ticks))

    def system(self, s, avail_lost, slab, tasks_added, create_us, delete_us,
               busy, agg, one, own_ticks=0):
        n = 4
        own = 'vbs-s0/0' if s == 'ours' else 'kworker/u4:1-loop0'
        self.tasks(s + '-idle.tasks0', [(1, 'init', 5), (30, own, 10),
                                        (31, 'gone', 0)])
        # own_ticks in utime and in stime; "gone" ended, "new" began
        self.tasks(s + '-idle.tasks1', [(1, 'init', 6), (30, own, 10 + own_ticks),
                                        (32, 'new', 50)])
        self.put(s + '-base.meminfo', meminfo(3000000, 100000, 50000))
        self.put(s + '-idle.meminfo', meminfo(3000000 - n * avail_lost,
                                              100000 + n * slab,
                                              50000 + n * slab))
        self.put(s + '-deleted.meminfo', meminfo(3000000 - 8, 100000, 50000))
        self.put(s + '-base.loadavg', '0.00 0.00 0.00 1/100 200\n')
        self.put(s + '-idle.loadavg',
                 '0.00 0.00 0.00 1/%d 300\n' % (100 + tasks_added))
        self.put(s + '-deleted.loadavg', '0.00 0.00 0.00 1/100 400\n')
        self.put(s + '-base.comm', 'init\nkthreadd\n')
        self.put(s + '-idle.comm', 'init\nkthreadd\n' +
                 'vbs-1-0\n' * tasks_added)
        self.cpu(s + '-idle.stat', busy, 1000 - busy)
        lines = []
        for i in range(n):
            t0 = 1000000 + i * 1000000
            if s == 'ours':
                lines.append('add\t%d\t%d\t%d' % (i, t0, t0 + create_us - 1000))
                lines.append('bind\t%d\t%d\t%d' % (i, t0, t0 + 1000))
            else:
                lines.append('create\t%d\t%d\t%d' % (i, t0, t0 + create_us))
            lines.append('delete\t%d\t%d\t%d' % (i, t0, t0 + delete_us))
        self.put(s + '-times.tsv', '\n'.join(lines) + '\n')
        for r in (1, 2, 3):
            self.put('%s-16x4-%d.json' % (s, r), fio([agg / 16 * r] * 16))
            self.put('%s-16x4p1-%d.json' % (s, r), fio([agg * 1.05 * r]))
            self.put('%s-1x64-%d.json' % (s, r), fio([one * r]))

    def test_values_ratios_targets(self):
        self.put('env.txt', 'n 4\ncpus 2\nsize_mb 32\n')
        self.cpu('none-idle.stat', 1, 999)
        self.system('ours', 300, 200, 7, 100000, 50000, 2, 900, 1000, 1)
        self.system('loop', 100, 40, 0, 80000, 100000, 1, 1000, 1000)
        res = sr.build(self.d, 'make bench-scale SCALE_N=4')
        ours = res['systems']['ours']
        self.assertEqual(ours['mem_per_dev_kib']['MemAvailable'], 300)
        self.assertEqual(ours['mem_per_dev_kib']['SUnreclaim'], 200)
        self.assertEqual(ours['mem_kept_after_delete_kib']['MemAvailable'], 8)
        self.assertEqual(ours['tasks']['added'], 7)
        self.assertEqual(ours['tasks_added_by_name'], [('vbs-N-N', 7)])
        self.assertAlmostEqual(ours['times']['create']['mean_ms'], 100.0)
        self.assertAlmostEqual(ours['times']['delete']['mean_ms'], 50.0)
        self.assertAlmostEqual(ours['idle_cpu_busy_pct'], 0.2)
        self.assertAlmostEqual(ours['idle_cpu_over_none'], 0.1)
        # 2 of 1000 jiffies; init's 2 are not the device's
        self.assertAlmostEqual(ours['idle_own_threads_cpu_pct'], 0.2)
        self.assertEqual(ours['idle_busiest_tasks'],
                         [('init', 0.2), ('vbs-s0/0', 0.2)])
        self.assertEqual(res['systems']['loop']['idle_own_threads_cpu_pct'], 0)
        # medians of 3 repetitions: the second
        self.assertAlmostEqual(ours['fio']['16x4']['median'], 1800)
        self.assertAlmostEqual(ours['fio']['1x64']['median'], 2000)
        self.assertAlmostEqual(ours['fio']['ratio_16x4_1x64'], 0.9)
        # one process over the 16 devices: its own median and ratio
        self.assertAlmostEqual(ours['fio']['16x4p1']['median'], 1890)
        self.assertAlmostEqual(ours['fio']['ratio_16x4p1_1x64'], 0.945)
        t = {}
        for r in res['table']:  # the first row of each name: the mean
            t.setdefault(r['value'].split(' (')[0], r)
        create = t['create per device']
        self.assertAlmostEqual(create['ours_loop'], 1.25)
        self.assertIs(create['met'], False)
        self.assertIs(t['memory per idle device: MemAvailable lost']['met'],
                      False)
        self.assertIs(t['tasks added in total']['met'], False)
        self.assertIs(t['aggregate: 16xQD4 / 1xQD64']['met'], True)
        self.assertIs(t["CPU of the devices' threads, all idle"]['met'],
                      False)
        self.assertEqual(res['kernel_warnings'], [])
        md = sr.markdown(res)
        self.assertIn('| tasks added in total | 7 | 0 | - | <= online CPUs + 4 '
                      '| **no** |', md)

    def verify_run(self, sample=(0, 2, 3), status=0, jobs=None,
                   backing=None, device=None):
        """ours-verify.* of a run on sample: every device's bytes and its
        backing's sha256 equal and distinct unless backing or device
        ({index: sha}) say otherwise."""
        self.put('env.txt', 'n 4\ncpus 2\n')
        self.system('ours', 150, 50, 6, 90000, 50000, 1, 950, 1000)
        if jobs is None:
            jobs = [('s%d' % i, 0, MB4, MB4) for i in sample]
        self.put('ours-verify.json', 'note: fio prints this first\n' +
                 fio_verify(jobs))
        self.put('ours-verify.cmd', 'fio --output-format=json '
                 '--output=ours-verify.json --verify=crc32c --do_verify=1 '
                 '--verify_fatal=1 ' +
                 ' '.join('--name=s%d --filename=/dev/vd%s' % (i, 'abcd'[i])
                          for i in sample))
        lines = ['seed 4242', 'spread 2', 'random 1', 'size_mb 4',
                 'sample ' + ' '.join(str(i) for i in sample)]
        if status is not None:
            lines.append('status %d' % status)
        for i in sample:
            lines.append('device %d /dev/vd%s %s' % (
                i, 'abcd'[i], (device or {}).get(i, '%064x' % (i + 1))))
        for i in sample:
            lines.append('backing %d %s' % (
                i, (backing or {}).get(i, '%064x' % (i + 1))))
        self.put('ours-verify.txt', '\n'.join(lines) + '\n')

    def main(self):
        prefix = os.path.join(self.d, 'out')
        with open(os.devnull, 'w') as null:
            out, err = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = null
            try:
                rc = sr.main(['scale-report', self.d, prefix, 'make x'])
            finally:
                sys.stdout, sys.stderr = out, err
        with open(prefix + '.md') as f:
            md = f.read()
        with open(prefix + '.json') as f:
            doc = json.load(f)
        return rc, md, doc

    def test_verify_pass(self):
        self.verify_run()
        rc, md, doc = self.main()
        self.assertEqual(rc, 0)
        v = doc['verify']
        self.assertEqual((v['result'], v['devices'], v['of'], v['seed']),
                         ('pass', 3, 4, 4242))
        self.assertEqual(v['reasons'], [])
        self.assertEqual(v['sample'], [0, 2, 3])
        self.assertEqual(v['jobs']['s2'], {'error': 0, 'write_bytes': MB4,
                                           'read_bytes': MB4})
        self.assertIn('**fio verify on 3 of 4 devices: pass**', md)
        self.assertIn('    fio --output-format=json --output=ours-verify.json '
                      '--verify=crc32c', md)
        self.assertIn('seed 4242): s0 s2 s3.', md)

    def test_verify_fio_error_fails(self):
        # verify_fatal: the first bad block ends the job with EILSEQ
        self.verify_run(status=1, jobs=[('s0', 0, MB4, MB4),
                                        ('s2', 84, MB4, 8192),
                                        ('s3', 0, MB4, MB4)])
        rc, md, doc = self.main()
        self.assertEqual(rc, 3)
        v = doc['verify']
        self.assertEqual(v['result'], 'fail')
        self.assertEqual(v['reasons'], ['fio exited with status 1',
                                        'job s2: error 84'])
        self.assertIn('**fio verify on 3 of 4 devices: fail**', md)
        self.assertIn('- job s2: error 84', md)
        # the rest of the report is there all the same
        self.assertIn('| tasks added in total | 6 |', md)

    def test_verify_short_job_fails(self):
        # no error, but a job that verified less than it wrote
        self.verify_run(jobs=[('s0', 0, MB4, MB4), ('s2', 0, MB4, MB4),
                              ('s3', 0, MB4, 0)])
        rc, _, doc = self.main()
        self.assertEqual(rc, 3)
        self.assertEqual(doc['verify']['reasons'],
                         ['job s3: wrote %d and verified 0 bytes, not %d' %
                          (MB4, MB4)])

    def test_verify_missing_job_or_status_fails(self):
        self.verify_run(status=None, jobs=[('s0', 0, MB4, MB4),
                                           ('s3', 0, MB4, MB4)])
        v = sr.build(self.d, 'x')['verify']
        self.assertEqual(v['result'], 'fail')
        self.assertEqual(v['reasons'], [
            'no exit status of fio (it did not finish)',
            'fio jobs s0 s3, sampled devices s0 s2 s3'])

    def test_verify_no_json_fails(self):
        self.verify_run()
        os.unlink(os.path.join(self.d, 'ours-verify.json'))
        v = sr.build(self.d, 'x')['verify']
        self.assertEqual(v['result'], 'fail')
        self.assertTrue(v['reasons'][0].startswith('no fio JSON'), v)

    def test_verify_backing_differs_fails(self):
        # fio read back what it wrote, the backing holds something else
        self.verify_run(backing={2: 'f' * 64})
        v = sr.build(self.d, 'x')['verify']
        self.assertEqual(v['result'], 'fail')
        self.assertEqual(v['reasons'], [
            "s2: its bytes through /dev/vdc differ from its backing's"])

    def test_verify_same_bytes_fails(self):
        # two devices with the same bytes: one wrote the other's backing,
        # or neither wrote at all
        same = {0: 'e' * 64, 3: 'e' * 64}
        self.verify_run(device=same, backing=same)
        v = sr.build(self.d, 'x')['verify']
        self.assertEqual(v['result'], 'fail')
        self.assertEqual(v['reasons'], ['s3 holds the same bytes as s0'])

    def test_verify_not_run(self):
        self.put('env.txt', 'n 4\ncpus 2\n')
        self.system('ours', 150, 50, 6, 90000, 50000, 1, 950, 1000)
        rc, md, doc = self.main()
        self.assertEqual(rc, 0)
        self.assertIsNone(doc['verify'])
        self.assertIn('fio verify: not run', md)

    def test_kernel_warnings(self):
        self.put('env.txt', 'n 4\ncpus 2\n')
        self.system('ours', 150, 50, 6, 90000, 50000, 1, 950, 1000)
        self.put('dmesg.txt', '[ 1.0] vdpa_blk_sw: loaded\n'
                 '[ 2.0] watchdog: BUG: soft lockup - CPU#0 stuck for 26s!\n')
        res = sr.build(self.d, 'x')
        self.assertEqual(len(res['kernel_warnings']), 1)
        self.assertIn('    [ 2.0] watchdog: BUG: soft lockup', sr.markdown(res))

    def test_targets_met(self):
        self.put('env.txt', 'n 4\ncpus 2\n')
        self.cpu('none-idle.stat', 1, 999)
        self.system('ours', 150, 50, 6, 90000, 50000, 1, 950, 1000)
        self.system('loop', 100, 40, 0, 80000, 100000, 1, 1000, 1000)
        res = sr.build(self.d, 'x')
        met = {r['value'].split(' (')[0]: r['met'] for r in res['table']
               if r['target']}
        self.assertEqual(set(met.values()), {True}, met)

    def test_missing_system(self):
        self.put('env.txt', 'n 4\ncpus 2\n')
        self.system('loop', 100, 40, 0, 80000, 100000, 1, 1000, 1000)
        res = sr.build(self.d, 'x')
        self.assertEqual(list(res['systems']), ['loop'])
        self.assertTrue(all(r['met'] is None for r in res['table']))
        sr.markdown(res)


if __name__ == '__main__':
    unittest.main()
