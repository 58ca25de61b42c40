# SPDX-License-Identifier: GPL-2.0
"""Unit tests of the bench report's data code (stdlib only, no VM):
python3 -m unittest discover -s scripts/bench"""

import importlib.machinery
import importlib.util
import json
import os
import tempfile
import unittest

import benchdata as bd
import profiles

HERE = os.path.dirname(os.path.abspath(__file__))


def load_report():
    loader = importlib.machinery.SourceFileLoader(
        'bench_report', os.path.join(HERE, 'report'))
    spec = importlib.util.spec_from_loader('bench_report', loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def fio_job(name, read_iops, write_iops, lat_ns, p99_ns, error=0):
    def side(iops):
        return {'iops': iops, 'lat_ns': {'mean': lat_ns},
                'clat_ns': {'percentile': {'99.000000': p99_ns}}}
    return {'jobname': name, 'error': error,
            'read': side(read_iops), 'write': side(write_iops)}


def write_fio(path, jobs, runtime='2'):
    with open(path, 'w') as f:
        # fio puts its notes on the hooks' output before the JSON
        f.write('randread-qd1-1j : Saving output of prerun in '
                'randread-qd1-1j.prerun.txt\n')
        json.dump({'global options': {'runtime': runtime}, 'jobs': jobs}, f)


class Median(unittest.TestCase):
    def test_odd(self):
        self.assertEqual(bd.median(['30', '10', '20']), '20')

    def test_even_is_the_lower_middle(self):
        self.assertEqual(bd.median(['4', '1', '3', '2']), '2')

    def test_numeric_not_lexical(self):
        self.assertEqual(bd.median(['9', '10', '100']), '10')

    def test_keeps_the_measured_string(self):
        self.assertEqual(bd.median(['0.10', '0.3', '0.2']), '0.2')
        self.assertEqual(bd.median(['5845.077461']), '5845.077461')

    def test_missing_values(self):
        self.assertEqual(bd.median(['-', '7', '-']), '7')
        self.assertEqual(bd.median(['-', '-']), '-')
        self.assertEqual(bd.median([]), '-')


class Ratio(unittest.TestCase):
    def test_two_decimals(self):
        self.assertEqual(bd.ratio('4863.9', '7023.1'), '0.69')
        self.assertEqual(bd.ratio('2', '1'), '2.00')

    def test_not_available(self):
        self.assertEqual(bd.ratio('5', '0'), 'n/a')
        self.assertEqual(bd.ratio('5', ''), 'n/a')
        self.assertEqual(bd.ratio(None, '5'), 'n/a')
        self.assertEqual(bd.ratio('-', '5'), 'n/a')


class Runs(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_fio_snap_and_vdpa_bench(self):
        write_fio(self.path('ext4-ours-1.json'), [
            fio_job('randread-qd1-1j', 1000.5, 0, 250000, 512000),
            fio_job('randwrite-qd1-1j', 0, 800, 300000, 0),
            fio_job('randread-qd32-1j', 5, 0, 1, 1, error=5)])
        with open(self.path('ext4-ours-1.snap'), 'w') as f:
            f.write('randread-qd1-1j pre 100 1000 10 0 0 0 7\n'
                    'randread-qd1-1j pre 101 1001 11 1 1 1 8\n'
                    'randread-qd1-1j post 300 1200 60 4002 2001 1000 12\n'
                    'randwrite-qd1-1j pre 0 100 0 0 0 0\n'
                    'randwrite-qd1-1j post 50 200 0 0 0 0\n')
        with open(self.path('nullb-vb-ours-bp-2-read-128k-qd8-1j.txt'), 'w') as f:
            f.write('ios=9000 errors=0 iops=4500 MB/s=562.50 lat_mean_us=1.5 '
                    'lat_p50_us=1 lat_p99_us=3\n')
        with open(self.path('env.txt'), 'w') as f:
            f.write('fio fio-3.39, runtime 2s, reps 3\n')
        runs = bd.load_dir(self.dir)
        self.assertEqual(len(runs), 3)
        r = runs[0]
        self.assertEqual((r['rep'], r['backing'], r['system'], r['job']),
                         ('1', 'ext4', 'ours', 'randread-qd1-1j'))
        self.assertEqual((r['iops'], r['lat_mean_us'], r['lat_p99_us']),
                         ('1000.5', '250', '512'))
        # first pre to last post: 200 of 200 jiffies busy, 50 for the
        # device; 2001 I/Os (1000.5 IOPS for 2 s); 5 spills
        self.assertEqual([r[c] for c in bd.COLUMNS[7:]],
                         ['100.0', '25.0', '2.00', '1.00', '0.50', '5'])
        # a hook line from before spills were counted
        w = runs[1]
        self.assertEqual((w['job'], w['iops'], w['lat_p99_us'], w['cpu_pct'],
                          w['spills']),
                         ('randwrite-qd1-1j', '800', '0', '50.0', '-'))
        v = runs[2]
        self.assertEqual((v['rep'], v['backing'], v['system'], v['job']),
                         ('2', 'nullb', 'vb-ours-bp', 'read-128k-qd8-1j'))
        self.assertEqual((v['iops'], v['lat_mean_us'], v['lat_p99_us']),
                         ('4500', '1.5', '3'))

    def test_medians_of_interleaved_repetitions(self):
        for rep, iops in enumerate((300, 100, 200), 1):
            write_fio(self.path('tmpfs-raw-%d.json' % rep),
                      [fio_job('randread-qd1-1j', iops, 0, 1000, 1000)])
            write_fio(self.path('tmpfs-ours-%d.json' % rep),
                      [fio_job('randread-qd1-1j', iops / 2, 0, 1000, 1000)])
        write_fio(self.path('tmpfs-sim-1.json'), [])
        med = bd.medians(bd.load_dir(self.dir))
        self.assertEqual(med[('tmpfs', 'raw', 'randread-qd1-1j')]['iops'], '200')
        self.assertEqual(med[('tmpfs', 'ours', 'randread-qd1-1j')]['n'], 3)
        table = load_report().quick(bd.load_dir(self.dir)).splitlines()
        self.assertEqual(table[0], '| job | raw | ours | ours/raw |')
        self.assertEqual(table[2], '| randread-qd1-1j | 200 | 100 | 0.50 |')

    def test_unreadable_json_is_skipped(self):
        with open(self.path('ext4-raw-1.json'), 'w') as f:
            f.write('{\n  "jobs" : [\n')
        warnings = []
        self.assertEqual(bd.load_dir(self.dir, warnings.append), [])
        self.assertEqual(len(warnings), 1)

    def test_tsv_round_trip(self):
        runs = [dict(zip(bd.COLUMNS, ['1', 'mem', 'sim', 'randread-qd1-1j',
                                      '10.5', '2', '3', '50.0', '-', '1.00',
                                      '2.00', '0.00', '3']))]
        bd.write_tsv(runs, self.path('r.tsv'))
        self.assertEqual(bd.read_tsv(self.path('r.tsv')), runs)


class Profiles(unittest.TestCase):
    def test_classify(self):
        busy, by_code, by_sym = profiles.classify([
            '# Overhead;Command;Shared Object;Symbol\n',
            '    50.00%;swapper;[kernel.kallsyms];[k] default_idle\n',
            '    30.00%;vbs-d0/0;[kernel.kallsyms];[k] vbs_worker_fn\n',
            '    15.00%;fio;[kernel.kallsyms];[k] blk_mq_poll\n',
            '     5.00%;fio;fio;[.] td_io_queue\n'])
        self.assertAlmostEqual(busy, 50.0)
        self.assertEqual(by_code, {('idle', 'idle loop'): 50.0,
                                   ('our worker', 'vdpa_blk_sw'): 30.0,
                                   ('app (fio)', 'polling for completions'): 15.0,
                                   ('app (fio)', 'user space'): 5.0})
        self.assertEqual(by_sym[('our worker', 'vbs_worker_fn [kernel.kallsyms]')], 30.0)


if __name__ == '__main__':
    unittest.main()
